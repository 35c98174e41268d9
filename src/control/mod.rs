//! Control: the commands written to `ctl` files (pin, release, new), run in
//! order, one at a time, each refused or done whole. Remembers the outcome
//! of the last command per ctl file, which reading it shows.

pub mod command;
pub mod create;
#[cfg(test)]
mod fake;
pub mod host;
pub mod pins;
#[cfg(test)]
mod tests;

use crate::locks::Locked;
use crate::model::{Inode, Namespace, NsType, PinDirs};
pub use command::Target;
use command::{Command, Release};
use host::{PinHost, System};
use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Why a command failed; each kind has the errno SPEC section 3 gives it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Invalid(#[from] command::Invalid),
    #[error("{} has no directory", .path.display())]
    NoDirectory { path: PathBuf },
    #[error(
        "the kernel refuses to pin mount namespace {inode} at {}: a mount namespace that is not newer \
         than nsfuse's own would make a reference loop",
        .path.display()
    )]
    MountLoop { inode: Inode, path: PathBuf },
    #[error("{} is not an nsfs mount of {ty}:[{inode}]", .path.display())]
    NotAMountOf { path: PathBuf, ty: NsType, inode: Inode },
    #[error("{} is already taken", .path.display())]
    Taken { path: PathBuf },
    #[error("{} is already a pin of {ty}:[{inode}]", .path.display())]
    PinOfAnother { path: PathBuf, ty: NsType, inode: Inode },
    #[error("{} exists and is not a pin", .path.display())]
    InTheWay { path: PathBuf },
    #[error("{ty}:[{inode}] is gone")]
    Gone { ty: NsType, inode: Inode },
    #[error("{ty}:[{inode}] is not pinned as '{name}' ({})", .path.display())]
    NotPinnedAs { ty: NsType, inode: Inode, name: String, path: PathBuf },
    #[error("{ty}:[{inode}] is not pinned in {} or {}", .dirs.pin_dir.display(), .dirs.netns_dir.display())]
    NotPinned { ty: NsType, inode: Inode, dirs: PinDirs },
    #[error("cannot {doing} {}: {source}", .path.display())]
    Host { doing: &'static str, path: PathBuf, source: io::Error },
    #[error("cannot bind-mount {ty}:[{inode}] at {}: {source}", .path.display())]
    Bind { ty: NsType, inode: Inode, path: PathBuf, source: io::Error },
    #[error("cannot unmount it inside mount namespace {mntns}: {source}")]
    UnmountInside { mntns: Inode, source: io::Error },
    #[error("cannot create a {ty} namespace: {source}")]
    Create { ty: NsType, source: io::Error },
}

impl Error {
    pub fn errno(&self) -> i32 {
        match self {
            Error::Invalid(_)
            | Error::NoDirectory { .. }
            | Error::MountLoop { .. }
            | Error::NotAMountOf { .. } => libc::EINVAL,
            Error::Taken { .. } | Error::PinOfAnother { .. } | Error::InTheWay { .. } => libc::EEXIST,
            Error::Gone { .. } | Error::NotPinnedAs { .. } | Error::NotPinned { .. } => libc::ENOENT,
            Error::Host { source, .. }
            | Error::Bind { source, .. }
            | Error::UnmountInside { source, .. }
            | Error::Create { source, .. } => source.raw_os_error().unwrap_or(libc::EIO),
        }
    }
}

/// Finds a namespace in the freshest view the caller has (rescanning if needed).
pub type Find<'a> = &'a dyn Fn(NsType, Inode) -> Option<Namespace>;

/// Runs control commands on a host (the real one unless a test says).
pub struct Controller<H: PinHost = System> {
    host: H,
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

impl Controller<System> {
    pub fn new(dirs: PinDirs, mountpoint: PathBuf) -> Controller {
        Controller::on(System, dirs, mountpoint)
    }

    /// Prepare the pin directories (at start, before serving).
    pub fn prepare(&self) -> io::Result<()> {
        pins::prepare(&self.dirs)
    }
}

impl<H: PinHost> Controller<H> {
    /// A controller acting on `host`.
    pub fn on(host: H, dirs: PinDirs, mountpoint: PathBuf) -> Controller<H> {
        Controller { host, dirs, mountpoint, last: Mutex::new(HashMap::new()), serial: Mutex::new(()) }
    }

    /// What reading a ctl file shows: the grammar and the last outcome.
    pub fn status(&self, target: Target) -> String {
        let grammar = if target == Target::Top { GRAMMAR_TOP } else { GRAMMAR_NS };
        let last = self.last.locked().get(&target).cloned();
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
        let _one_at_a_time = self.serial.locked();
        let path = self.mountpoint.join(target.to_string());
        let mut done_lines = 0;
        for line in command::lines(data) {
            let shown = String::from_utf8_lossy(line).into_owned();
            let result = command::parse(target, line)
                .map_err(Error::from)
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
            self.last.locked().insert(target, sentence);
            if let Err(e) = result {
                return (done_lines, Err(e));
            }
            done_lines += 1;
        }
        (done_lines, Ok(()))
    }

    fn run(&self, find: Find<'_>, own_mntns: Inode, cmd: Command) -> Result<String, Error> {
        match cmd {
            Command::Pin { ty, inode, name } => self.pin(find, ty, inode, name),
            Command::New { ty, name } => self.create(ty, name),
            Command::Release { ty, inode, what } => self.release(find, own_mntns, ty, inode, what),
        }
    }

    fn pin(&self, find: Find<'_>, ty: NsType, inode: Inode, name: Option<String>) -> Result<String, Error> {
        let ns = find(ty, inode).ok_or(Error::Gone { ty, inode })?;
        let opened =
            ns.path.as_deref().and_then(|p| self.host.open(p, inode)).ok_or(Error::Gone { ty, inode })?;
        let path = self.dirs.path(ty, &name.unwrap_or_else(|| inode.to_string()));
        Ok(if pins::pin(&self.host, &opened, ty, inode, &path)? {
            format!("pinned {ty}:[{inode}] at {}", path.display())
        } else {
            format!("{ty}:[{inode}] was already pinned at {}", path.display())
        })
    }

    fn create(&self, ty: NsType, name: Option<String>) -> Result<String, Error> {
        // Refuse a taken name before making anything.
        if let Some(n) = &name {
            let path = self.dirs.path(ty, n);
            if pins::pinned_at(&self.host.nsfs_mounts(), &path).is_some() || self.host.exists(&path) {
                return Err(Error::Taken { path });
            }
        }
        let (made, init) = self.host.new_namespace(ty)?;
        let end_init = || init.into_iter().for_each(|pid| self.host.end_init(pid));
        let inode = match self.host.inode_of(&made) {
            Ok(i) => i,
            Err(source) => {
                end_init();
                return Err(Error::Create { ty, source });
            }
        };
        let path = self.dirs.path(ty, &name.unwrap_or_else(|| inode.to_string()));
        match pins::pin(&self.host, &made, ty, inode, &path) {
            Ok(_) => Ok(format!("created {ty}:[{inode}], pinned at {}", path.display())),
            Err(e) => {
                end_init();
                Err(e)
            }
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
        let here: Vec<PathBuf> = self
            .host
            .nsfs_mounts()
            .into_iter()
            .filter(|m| m.inode == inode && m.ns_type == ty)
            .map(|m| m.mount_point)
            .collect();
        let ns = find(ty, inode);
        if ns.is_none() && here.is_empty() {
            return Err(Error::Gone { ty, inode });
        }
        let released = match what {
            Release::Ours => self.unpin_each(here.iter().filter(|p| self.dirs.holds(p)), inode)?,
            Release::Name(name) => {
                let path = self.dirs.path(ty, &name);
                if !here.contains(&path) {
                    return Err(Error::NotPinnedAs { ty, inode, name, path });
                }
                self.unpin_each([&path], inode)?
            }
            Release::Path(path) => {
                if !here.contains(&path) {
                    return Err(Error::NotAMountOf { path, ty, inode });
                }
                self.unpin_each([&path], inode)?
            }
            Release::All => {
                let mut released = self.unpin_each(&here, inode)?;
                for pin in ns.iter().flat_map(|n| n.pins.iter()).filter(|p| p.mntns != own_mntns) {
                    self.release_inside(find, pin.mntns, &pin.path)?;
                    released.push(format!("{} in mount namespace {}", pin.path.display(), pin.mntns));
                }
                released
            }
        };
        if released.is_empty() {
            return Err(Error::NotPinned { ty, inode, dirs: self.dirs.clone() });
        }
        if ty == NsType::Pid {
            self.end_init_if_unpinned(find, own_mntns, inode);
        }
        Ok(format!("released {ty}:[{inode}] from {}", released.join(", ")))
    }

    /// Unpin each of `paths` (removing the file where it lies in a pin
    /// directory); the paths released, as shown.
    fn unpin_each<'p>(
        &self,
        paths: impl IntoIterator<Item = &'p PathBuf>,
        inode: Inode,
    ) -> Result<Vec<String>, Error> {
        let mut released = Vec::new();
        for p in paths {
            pins::unpin(&self.host, p, inode, self.dirs.holds(p))?;
            released.push(p.display().to_string());
        }
        Ok(released)
    }

    /// Unmount `path` inside another mount namespace, from a helper thread.
    fn release_inside(&self, find: Find<'_>, mntns: Inode, path: &Path) -> Result<(), Error> {
        let gone = Error::Gone { ty: NsType::Mnt, inode: mntns };
        let ns = find(NsType::Mnt, mntns).ok_or(gone)?;
        let opened = ns.path.as_deref().and_then(|p| self.host.open(p, mntns));
        let opened = opened.ok_or(Error::Gone { ty: NsType::Mnt, inode: mntns })?;
        self.host.unmount_inside(&opened, path).map_err(|source| Error::UnmountInside { mntns, source })
    }

    /// A pid namespace made by `new pid` keeps its init only while pinned.
    fn end_init_if_unpinned(&self, find: Find<'_>, own_mntns: Inode, inode: Inode) {
        if self.host.nsfs_mounts().iter().any(|m| m.inode == inode) {
            return;
        }
        let Some(ns) = find(NsType::Pid, inode) else { return };
        if ns.pins.iter().any(|p| p.mntns != own_mntns) {
            return; // still pinned in another mount namespace
        }
        for &pid in &ns.processes {
            if self.host.comm(pid).as_deref() == Some(create::INIT_COMM) {
                log::info!("pid:[{inode}] has no pin left: ending its {} (pid {pid})", create::INIT_COMM);
                self.host.end_init(pid);
            }
        }
    }
}
