//! Control: the commands written to `ctl` files (pin, release, new), run in
//! order, one at a time, each refused or done whole. Remembers the outcome
//! of the last command per ctl file, which reading it shows.

pub mod command;
pub mod create;
pub mod pins;

use crate::discovery::{self, details};
use crate::enter;
use crate::model::{Inode, Namespace, NsType, PinDirs};
pub use command::Target;
use command::{Command, Release};
use std::collections::HashMap;
use std::io;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Why a command failed; each kind has the errno SPEC section 3 gives it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Exists(String),
    #[error("{0}")]
    Gone(String),
    #[error("{what}: {source}")]
    Io { what: String, source: io::Error },
}

impl Error {
    pub fn io(what: impl Into<String>, source: io::Error) -> Error {
        Error::Io { what: what.into(), source }
    }

    pub fn errno(&self) -> i32 {
        match self {
            Error::Invalid(_) => libc::EINVAL,
            Error::Exists(_) => libc::EEXIST,
            Error::Gone(_) => libc::ENOENT,
            Error::Io { source, .. } => source.raw_os_error().unwrap_or(libc::EIO),
        }
    }
}

/// Finds a namespace in the freshest view the caller has (rescanning if needed).
pub type Find<'a> = &'a dyn Fn(NsType, Inode) -> Option<Namespace>;

/// Runs control commands.
pub struct Controller {
    dirs: PinDirs,
    /// The tree's mount point, to name ctl files in log lines.
    mountpoint: PathBuf,
    last: Mutex<HashMap<Target, String>>,
    /// One command at a time, so two pins of one NAME cannot race.
    serial: Mutex<()>,
}

const GRAMMAR_NS: &str = "\
Commands (one per line, as root):
  pin [NAME]                 keep this namespace alive with a bind mount
  release [NAME|PATH|all]    let go of its pins (all: every bind mount anywhere)
";
const GRAMMAR_TOP: &str = "\
Commands (one per line, as root):
  new TYPE [NAME]                       create a namespace and pin it
  pin TYPE INODE [NAME]                 pin a namespace
  release TYPE INODE [NAME|PATH|all]    release its pins
";

impl Controller {
    pub fn new(dirs: PinDirs, mountpoint: PathBuf) -> Controller {
        Controller { dirs, mountpoint, last: Mutex::new(HashMap::new()), serial: Mutex::new(()) }
    }

    /// Prepare the pin directories (at start, before serving).
    pub fn prepare(&self) -> io::Result<()> {
        pins::prepare(&self.dirs)
    }

    /// What reading a ctl file shows: the grammar and the last outcome.
    pub fn status(&self, target: Target) -> String {
        let grammar = if target == Target::Top { GRAMMAR_TOP } else { GRAMMAR_NS };
        let last = self.last.lock().unwrap_or_else(|e| e.into_inner()).get(&target).cloned();
        format!("{grammar}Last command: {}\n", last.as_deref().unwrap_or("none yet."))
    }

    /// Run every line of a write in order; stop at the first failure.
    /// Returns how many lines took effect, and the first failure.
    pub fn execute(
        &self,
        find: Find<'_>,
        own_mntns: Inode,
        target: Target,
        data: &[u8],
    ) -> (usize, Result<(), Error>) {
        let _one_at_a_time = self.serial.lock().unwrap_or_else(|e| e.into_inner());
        let path = self.mountpoint.join(target.to_string());
        let mut done_lines = 0;
        for line in command::lines(data) {
            let shown = String::from_utf8_lossy(line).into_owned();
            let result = command::parse(target, line)
                .map_err(Error::Invalid)
                .and_then(|cmd| self.run(find, own_mntns, cmd));
            let shown = shown.escape_debug().to_string();
            let sentence = match &result {
                Ok(done) => {
                    log::info!("{}: '{shown}': {done}", path.display());
                    format!("'{shown}' succeeded: {done}")
                }
                Err(e) => {
                    log::warn!("{}: '{shown}' refused (errno {}): {e}", path.display(), e.errno());
                    format!("'{shown}' failed: {e}")
                }
            };
            self.last.lock().unwrap_or_else(|e| e.into_inner()).insert(target, sentence);
            if let Err(e) = result {
                return (done_lines, Err(e));
            }
            done_lines += 1;
        }
        (done_lines, Ok(()))
    }

    fn run(&self, find: Find<'_>, own_mntns: Inode, cmd: Command) -> Result<String, Error> {
        match cmd {
            Command::Pin { ty, inode, name } => {
                let ns = find(ty, inode).ok_or_else(|| gone(ty, inode))?;
                let fd = ns
                    .path
                    .as_deref()
                    .and_then(|p| discovery::open_checked(p, inode))
                    .ok_or_else(|| gone(ty, inode))?;
                let name = name.unwrap_or_else(|| inode.to_string());
                let path = self.dirs.path(ty, &name);
                Ok(if pins::pin(fd.as_fd(), ty, inode, &path)? {
                    format!("pinned {ty}:[{inode}] at {}", path.display())
                } else {
                    format!("{ty}:[{inode}] was already pinned at {}", path.display())
                })
            }
            Command::New { ty, name } => {
                // Refuse a taken name before making anything.
                if let Some(n) = &name {
                    let path = self.dirs.path(ty, n);
                    if pins::pinned_at(&pins::nsfs_mounts_here(), &path).is_some() || path.exists() {
                        return Err(Error::Exists(format!("{} is already taken", path.display())));
                    }
                }
                let made = create::new_namespace(ty)?;
                let inode = crate::sys::fstat(made.fd.as_fd()).map_err(|e| Error::io("fstat", e))?.st_ino;
                let path = self.dirs.path(ty, &name.unwrap_or_else(|| inode.to_string()));
                match pins::pin(made.fd.as_fd(), ty, inode, &path) {
                    Ok(_) => Ok(format!("created {ty}:[{inode}], pinned at {}", path.display())),
                    Err(e) => {
                        if let Some(init) = made.init {
                            create::end_init(init);
                        }
                        Err(e)
                    }
                }
            }
            Command::Release { ty, inode, what } => self.release(find, own_mntns, ty, inode, what),
        }
    }

    fn release(
        &self,
        find: Find<'_>,
        own_mntns: Inode,
        ty: NsType,
        inode: Inode,
        what: Release,
    ) -> Result<String, Error> {
        let here: Vec<PathBuf> = pins::nsfs_mounts_here()
            .into_iter()
            .filter(|m| m.inode == inode && m.ns_type == ty)
            .map(|m| m.mount_point)
            .collect();
        let ns = find(ty, inode);
        if ns.is_none() && here.is_empty() {
            return Err(gone(ty, inode));
        }
        let mut released: Vec<String> = Vec::new();
        match what {
            Release::Ours => {
                for p in here.iter().filter(|p| self.dirs.holds(p)) {
                    pins::unpin(p, inode, true)?;
                    released.push(p.display().to_string());
                }
            }
            Release::Name(n) => {
                let p = self.dirs.path(ty, &n);
                if !here.contains(&p) {
                    return Err(Error::Gone(format!(
                        "{ty}:[{inode}] is not pinned as '{n}' ({})",
                        p.display()
                    )));
                }
                pins::unpin(&p, inode, true)?;
                released.push(p.display().to_string());
            }
            Release::Path(p) => {
                if !here.contains(&p) {
                    return Err(Error::Invalid(format!(
                        "{} is not an nsfs mount of {ty}:[{inode}]",
                        p.display()
                    )));
                }
                pins::unpin(&p, inode, self.dirs.holds(&p))?;
                released.push(p.display().to_string());
            }
            Release::All => {
                for p in &here {
                    pins::unpin(p, inode, self.dirs.holds(p))?;
                    released.push(p.display().to_string());
                }
                for pin in ns.iter().flat_map(|n| n.pins.iter()).filter(|p| p.mntns != own_mntns) {
                    release_inside(find, pin.mntns, &pin.path)?;
                    released.push(format!("{} in mount namespace {}", pin.path.display(), pin.mntns));
                }
            }
        }
        if released.is_empty() {
            return Err(Error::Gone(format!(
                "{ty}:[{inode}] is not pinned in {} or {}",
                self.dirs.pin_dir.display(),
                self.dirs.netns_dir.display()
            )));
        }
        if ty == NsType::Pid {
            self.end_init_if_unpinned(find, own_mntns, inode);
        }
        Ok(format!("released {ty}:[{inode}] from {}", released.join(", ")))
    }

    /// A pid namespace made by `new pid` keeps its init only while pinned.
    fn end_init_if_unpinned(&self, find: Find<'_>, own_mntns: Inode, inode: Inode) {
        if pins::nsfs_mounts_here().iter().any(|m| m.inode == inode) {
            return;
        }
        let Some(ns) = find(NsType::Pid, inode) else { return };
        if ns.pins.iter().any(|p| p.mntns != own_mntns) {
            return; // still pinned in another mount namespace
        }
        for &pid in &ns.processes {
            if crate::render::comm(pid).as_deref() == Some(create::INIT_COMM) {
                log::info!("pid:[{inode}] has no pin left: ending its {} (pid {pid})", create::INIT_COMM);
                create::end_init(pid);
            }
        }
    }
}

/// Unmount `path` inside another mount namespace, from a helper thread.
fn release_inside(find: Find<'_>, mntns: Inode, path: &Path) -> Result<(), Error> {
    let ns = find(NsType::Mnt, mntns).ok_or_else(|| gone(NsType::Mnt, mntns))?;
    let fd = details::open(&ns).ok_or_else(|| gone(NsType::Mnt, mntns))?;
    let path = path.to_owned();
    enter::run_in_one(fd.as_fd(), NsType::Mnt, move || crate::sys::umount2(&path, libc::MNT_DETACH))
        .map_err(|e| Error::io(format!("cannot unmount it inside mount namespace {mntns}"), e))
}

fn gone(ty: NsType, inode: Inode) -> Error {
    Error::Gone(format!("{ty}:[{inode}] is gone"))
}
