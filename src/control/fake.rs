//! An in-memory host for unit tests of control: files and directories,
//! the nsfs mounts of our mount namespace (stacked in order), paths that
//! open namespaces, and switches that make the next bind, mkdir, unmount
//! or namespace creation fail with an errno.

use super::host::{PinHost, Spot};
use super::Error;
use crate::discovery::parse::NsfsMount;
use crate::locks::Locked;
use crate::model::{Inode, NsType, Pid};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

/// What is at a path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Node {
    Dir,
    EmptyFile,
    File,
}

/// The fake host's state.
#[derive(Debug, Default)]
pub struct State {
    pub nodes: BTreeMap<PathBuf, Node>,
    /// nsfs mounts in our mount namespace, oldest first.
    pub mounts: Vec<NsfsMount>,
    /// Paths that open a namespace: path -> (type, inode).
    pub paths: HashMap<PathBuf, (NsType, Inode)>,
    /// Unmounts made inside other mount namespaces: (mntns, path).
    pub unmounted_inside: Vec<(Inode, PathBuf)>,
    /// Process command names, and the inits ended.
    pub comms: HashMap<Pid, String>,
    pub ended: Vec<Pid>,
    /// Namespaces made by `new`.
    pub made: Vec<(NsType, Inode)>,
    pub fail_bind: Option<i32>,
    pub fail_mkdir: Option<i32>,
    pub fail_unmount: Option<i32>,
    pub fail_new: Option<i32>,
    next: u64,
}

/// The fake host.
#[derive(Debug, Default)]
pub struct Fake(Mutex<State>);

/// A namespace opened on the fake host.
#[derive(Debug)]
pub struct Opened(pub NsType, pub Inode);

fn errno(e: i32) -> io::Error {
    io::Error::from_raw_os_error(e)
}

impl Fake {
    pub fn state(&self) -> MutexGuard<'_, State> {
        self.0.locked()
    }

    /// The nsfs mounts at `path`, oldest first, as (type, inode).
    pub fn mounted_at(&self, path: &str) -> Vec<(NsType, Inode)> {
        let s = self.state();
        s.mounts.iter().filter(|m| m.mount_point == Path::new(path)).map(|m| (m.ns_type, m.inode)).collect()
    }

    pub fn node(&self, path: &str) -> Option<Node> {
        self.state().nodes.get(Path::new(path)).copied()
    }
}

impl PinHost for Fake {
    type Ns = Opened;

    fn nsfs_mounts(&self) -> Vec<NsfsMount> {
        self.state().mounts.clone()
    }

    fn is_mount_point(&self, path: &Path) -> bool {
        self.state().mounts.iter().any(|m| m.mount_point == path)
    }

    fn exists(&self, path: &Path) -> bool {
        self.state().nodes.contains_key(path)
    }

    fn open(&self, path: &Path, inode: Inode) -> Option<Opened> {
        let s = self.state();
        let on_top = s.mounts.iter().rev().find(|m| m.mount_point == path).map(|m| (m.ns_type, m.inode));
        let (ty, found) = on_top.or_else(|| s.paths.get(path).copied())?;
        (found == inode).then_some(Opened(ty, inode))
    }

    fn inode_of(&self, ns: &Opened) -> io::Result<Inode> {
        Ok(ns.1)
    }

    fn make_dirs(&self, dir: &Path) -> io::Result<()> {
        let mut s = self.state();
        if let Some(e) = s.fail_mkdir {
            return Err(errno(e));
        }
        for d in dir.ancestors() {
            match s.nodes.get(d) {
                Some(Node::Dir) | None => {
                    s.nodes.insert(d.to_owned(), Node::Dir);
                }
                Some(_) => return Err(errno(libc::ENOTDIR)),
            }
        }
        Ok(())
    }

    fn make_spot(&self, path: &Path) -> io::Result<Spot> {
        let mut s = self.state();
        match s.nodes.get(path) {
            Some(Node::EmptyFile) => Ok(Spot::EmptyFile),
            Some(_) => Ok(Spot::Taken),
            None if path.parent().is_some_and(|p| s.nodes.get(p) == Some(&Node::Dir)) => {
                s.nodes.insert(path.to_owned(), Node::EmptyFile);
                Ok(Spot::Made)
            }
            None => Err(errno(libc::ENOENT)),
        }
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        let mut s = self.state();
        if s.mounts.iter().any(|m| m.mount_point == path) {
            return Err(errno(libc::EBUSY));
        }
        match s.nodes.get(path) {
            Some(Node::Dir) => Err(errno(libc::EISDIR)),
            Some(_) => {
                s.nodes.remove(path);
                Ok(())
            }
            None => Err(errno(libc::ENOENT)),
        }
    }

    fn bind(&self, ns: &Opened, path: &Path) -> io::Result<()> {
        let mut s = self.state();
        if let Some(e) = s.fail_bind.take() {
            return Err(errno(e));
        }
        if !s.nodes.contains_key(path) {
            return Err(errno(libc::ENOENT));
        }
        s.mounts.push(NsfsMount { ns_type: ns.0, inode: ns.1, mount_point: path.to_owned() });
        Ok(())
    }

    fn unmount(&self, path: &Path) -> io::Result<()> {
        let mut s = self.state();
        if let Some(e) = s.fail_unmount.take() {
            return Err(errno(e));
        }
        match s.mounts.iter().rposition(|m| m.mount_point == path) {
            Some(i) => {
                s.mounts.remove(i);
                Ok(())
            }
            None => Err(errno(libc::EINVAL)),
        }
    }

    fn unmount_inside(&self, mntns: &Opened, path: &Path) -> io::Result<()> {
        self.state().unmounted_inside.push((mntns.1, path.to_owned()));
        Ok(())
    }

    fn new_namespace(&self, ty: NsType) -> Result<(Opened, Option<Pid>), Error> {
        let mut s = self.state();
        if let Some(e) = s.fail_new {
            return Err(Error::Create { ty, source: errno(e) });
        }
        s.next += 1;
        let inode = 9000 + s.next;
        s.made.push((ty, Inode(inode)));
        let init = (ty == NsType::Pid).then(|| {
            let pid = Pid(30000 + s.next as i32);
            s.comms.insert(pid, super::create::INIT_COMM.to_owned());
            pid
        });
        Ok((Opened(ty, Inode(inode)), init))
    }

    fn end_init(&self, pid: Pid) {
        self.state().ended.push(pid);
    }

    fn comm(&self, pid: Pid) -> Option<String> {
        self.state().comms.get(&pid).cloned()
    }
}

/// The set of paths under `dir` (files and directories), for "nothing
/// changed" checks.
pub fn listing(f: &Fake) -> BTreeSet<PathBuf> {
    f.state().nodes.keys().cloned().collect()
}
