//! Discovery: reads the kernel and builds a `Snapshot` of every live
//! namespace and what keeps it alive. Sources, in order (SPEC section 5):
//! process and thread ns links, nsfs fds, sockets (SIOCGSKNS), nsfs bind
//! mounts in every reachable mount namespace (transitively, processless ones
//! included), then owners and parents up to the top. A process or namespace
//! that vanishes mid-scan is skipped, never an error.
//!
//! `scan` reads everything once; a `Tracker` keeps what it read and
//! refreshes by re-reading only what can have changed.

mod assemble;
mod btf;
pub mod details;
#[cfg(test)]
mod fake;
pub mod kernel;
mod mount_watch;
mod mounts;
pub mod netlink;
pub mod nsfile;
pub mod parse;
mod pass;
mod procfs;
mod stamp;
mod task_programs;
mod task_table;
mod tracker;

use crate::model::{Inode, Pid, PinDirs, Snapshot};
use crate::sys;
use std::io;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
pub use tracker::Tracker;

/// Errors that stop a scan as a whole (a vanished process never does).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
}

pub type Result<T> = std::result::Result<T, Error>;

/// How to scan.
#[derive(Clone, Debug, Default)]
pub struct ScanOptions {
    /// Where nsfuse keeps its pins, so scans can name them.
    pub dirs: PinDirs,
    /// Leave out the scanning process's own open fds (the daemon sets this:
    /// its transient nsfs fds are not holders anyone cares about).
    pub skip_own_fds: bool,
    /// Whose cgroups to read.
    pub cgroups: Cgroups,
}

/// Whose cgroups a scan reads.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Cgroups {
    /// Every process's: the tree's `containers/*/processes` lists them all.
    #[default]
    Every,
    /// Only those owner lines need: of processes with a namespace that is
    /// not the host's (a one-shot scan prints nothing else of them).
    ForOwners,
}

/// Scan the whole host once, keeping nothing.
pub fn scan(opts: &ScanOptions) -> Result<Snapshot> {
    if sys::has_listns() {
        log::debug!("listns(2) present: its ids are cross-checked by the /proc walk");
    }
    pass::run(&kernel::Host::default(), opts, pass::Memory::default(), None).map(|o| o.snapshot)
}

/// Whether nsfuse's own mount namespace still has the mounts `snap` read
/// (listmount), so that its pins there are still those `snap` has.
pub fn own_mounts_unchanged(snap: &Snapshot) -> bool {
    snap.own_mounts.as_ref().is_some_and(|(id, mounts)| mounts::Table::still(*id, mounts))
}

/// A process's command name (`/proc/PID/comm`), if it is still there and
/// is UTF-8. One open and one read: a name is at most 15 bytes.
pub fn comm(pid: Pid) -> Option<String> {
    use stamp::{cpath, Part::N, Part::S};
    let mut p = [0u8; 64];
    let file =
        sys::openat(None, cpath(&mut p, &[S("/proc/"), N(pid.get()), S("/comm")])?, libc::O_RDONLY).ok()?;
    let mut buf = [0u8; 64];
    let n = sys::pread0(std::os::fd::AsFd::as_fd(&file), &mut buf).ok()?;
    let name = buf[..n].strip_suffix(b"\n").unwrap_or(&buf[..n]);
    String::from_utf8(name.to_vec()).ok()
}

/// How bounded work on opening `path` is named if it gets stuck: by its
/// process for a /proc path (skipped with everything else of that
/// process), else by the path.
pub fn stuck_key(path: &Path) -> String {
    match parse::proc_pid(path) {
        Some(pid) => procfs::stuck_key(pid),
        None => format!("path {}", crate::render::escape_path(path)),
    }
}

/// Open a namespace by path, checking it is still the one we mean (the
/// path may now name another namespace: a PID reused, or a trap put in its
/// place), never blocking on what is there (`nsfile`), and giving up on a
/// process stuck in execve (`crate::bounded`). For callers outside a pass
/// (control, type-specific files), which have no bound of their own.
pub fn open_checked(path: &Path, inode: Inode) -> Option<OwnedFd> {
    let key = stuck_key(path);
    let path = path.to_owned();
    crate::bounded::one("opening a namespace", key, crate::bounded::STALL, move || nsfile::open(&path, inode))
        .flatten()
}
