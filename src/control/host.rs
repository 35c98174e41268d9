//! The seam between control and the host: the few kernel and file-system
//! operations a pin, a release or a `new` is made of, as one trait
//! (`PinHost`), with `System`, the real one (bind mounts with mount(2),
//! nsfs opens through `discovery`, helper threads and processes). The
//! rules (what is refused with which errno, what is undone on failure) live
//! in `pins` and `Controller` and are unit-tested over an in-memory host.

use super::create;
use super::Error;
use crate::discovery::{self, parse, parse::NsfsMount};
use crate::model::{Inode, NsType, Pid};
use crate::{enter, sys};
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// What a plain file at a would-be pin path is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Spot {
    /// Nothing was there: an empty file was made for the mount.
    Made,
    /// An empty plain file was there (left by someone): it may be taken.
    EmptyFile,
    /// Something else is in the way.
    Taken,
}

/// Everything control does to the host.
pub trait PinHost: Send + Sync {
    /// An opened namespace.
    type Ns;

    /// The nsfs mounts of our mount namespace, read now.
    fn nsfs_mounts(&self) -> Vec<NsfsMount>;
    /// Whether anything is mounted at `path` in our mount namespace.
    fn is_mount_point(&self, path: &Path) -> bool;
    /// Whether anything is at `path`.
    fn exists(&self, path: &Path) -> bool;
    /// The namespace at `path`, opened, only if it is still `inode`.
    fn open(&self, path: &Path, inode: Inode) -> Option<Self::Ns>;
    /// The inode of an opened namespace.
    fn inode_of(&self, ns: &Self::Ns) -> io::Result<Inode>;
    fn make_dirs(&self, dir: &Path) -> io::Result<()>;
    /// Make an empty mode-0444 file at `path` for a bind mount.
    fn make_spot(&self, path: &Path) -> io::Result<Spot>;
    fn remove_file(&self, path: &Path) -> io::Result<()>;
    /// Bind-mount the namespace at `path`.
    fn bind(&self, ns: &Self::Ns, path: &Path) -> io::Result<()>;
    /// Detach the top mount at `path`.
    fn unmount(&self, path: &Path) -> io::Result<()>;
    /// Detach the top mount at `path` inside mount namespace `mntns`.
    fn unmount_inside(&self, mntns: &Self::Ns, path: &Path) -> io::Result<()>;
    /// A new namespace of `ty`, and the init started in it (pid only).
    fn new_namespace(&self, ty: NsType) -> Result<(Self::Ns, Option<Pid>), Error>;
    /// End an init we started.
    fn end_init(&self, pid: Pid);
    /// A process's command name.
    fn comm(&self, pid: Pid) -> Option<String>;
}

/// The real host.
#[derive(Clone, Copy, Debug, Default)]
pub struct System;

impl PinHost for System {
    type Ns = OwnedFd;

    fn nsfs_mounts(&self) -> Vec<NsfsMount> {
        std::fs::read("/proc/self/mountinfo").map(|t| parse::mountinfo_nsfs_all(&t)).unwrap_or_default()
    }

    fn is_mount_point(&self, path: &Path) -> bool {
        is_mount_point(path)
    }

    fn exists(&self, path: &Path) -> bool {
        path.symlink_metadata().is_ok()
    }

    fn open(&self, path: &Path, inode: Inode) -> Option<OwnedFd> {
        discovery::open_checked(path, inode)
    }

    fn inode_of(&self, ns: &OwnedFd) -> io::Result<Inode> {
        sys::fstat(ns.as_fd()).map(|st| Inode::of(&st))
    }

    fn make_dirs(&self, dir: &Path) -> io::Result<()> {
        std::fs::create_dir_all(dir)
    }

    fn make_spot(&self, path: &Path) -> io::Result<Spot> {
        match std::fs::OpenOptions::new().write(true).create_new(true).mode(0o444).open(path) {
            Ok(_) => Ok(Spot::Made),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                let m = std::fs::symlink_metadata(path)?;
                Ok(if m.file_type().is_file() && m.size() == 0 { Spot::EmptyFile } else { Spot::Taken })
            }
            Err(e) => Err(e),
        }
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        std::fs::remove_file(path)
    }

    fn bind(&self, ns: &OwnedFd, path: &Path) -> io::Result<()> {
        let source = PathBuf::from(format!("/proc/self/fd/{}", ns.as_raw_fd()));
        sys::mount(Some(&source), path, None, libc::MS_BIND, None)
    }

    fn unmount(&self, path: &Path) -> io::Result<()> {
        sys::umount2(path, libc::MNT_DETACH)
    }

    fn unmount_inside(&self, mntns: &OwnedFd, path: &Path) -> io::Result<()> {
        let path = path.to_owned();
        enter::run_in_one(mntns.as_fd(), NsType::Mnt, move || sys::umount2(&path, libc::MNT_DETACH))
    }

    fn new_namespace(&self, ty: NsType) -> Result<(OwnedFd, Option<Pid>), Error> {
        create::new_namespace(ty).map(|m| (m.fd, m.init))
    }

    fn end_init(&self, pid: Pid) {
        create::end_init(pid);
    }

    fn comm(&self, pid: Pid) -> Option<String> {
        crate::discovery::comm(pid)
    }
}

/// Whether `path` is a mount point in our mount namespace.
pub fn is_mount_point(path: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let text = std::fs::read("/proc/self/mountinfo").unwrap_or_default();
    text.split(|&b| b == b'\n').any(|l| {
        l.split(|&b| b == b' ')
            .nth(4)
            .is_some_and(|m| Path::new(std::ffi::OsStr::from_bytes(&parse::unescape_octal(m))) == path)
    })
}
