//! Opening nsfs files by paths and descriptors that other users control,
//! without ever blocking on what is really there and without trusting how
//! a link reads (SPEC section 7).
//!
//! Every open is first an `O_PATH` open, which never runs a driver's open
//! (a FIFO, a tty, a file on a stopped FUSE server is not opened), made
//! with `openat2`: no symlinks followed (a pin path inside another mount
//! namespace is resolved inside that process's root), and first with
//! `RESOLVE_CACHED`, which walks only the dentry cache and so cannot wait
//! for any filesystem (a mounted pin and its parents are always cached).
//! The file must then be on nsfs (`statfs` magic) with the expected inode;
//! only then is it opened for real, through `/proc/self/fd/N`, with
//! `O_NONBLOCK|O_NOCTTY`. A path whose walk is not cached is walked once
//! more on a bounded thread (`crate::bounded`).

use crate::bounded;
use crate::locks::Locked;
use crate::model::{Inode, NsType};
use crate::sys;
use std::collections::HashSet;
use std::ffi::{CStr, CString};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

/// The flags of every real open of an nsfs file.
const REAL_OPEN: libc::c_int = libc::O_RDONLY | libc::O_NONBLOCK | libc::O_NOCTTY;

/// The device of nsfs files (the same for every namespace).
pub fn nsfs_dev() -> Option<u64> {
    static DEV: OnceLock<Option<u64>> = OnceLock::new();
    *DEV.get_or_init(|| {
        let proc = sys::open_path(Path::new("/proc/self/ns"), libc::O_PATH | libc::O_DIRECTORY).ok()?;
        sys::statx_dev_ino(proc.as_fd(), c"net").ok().map(|(dev, _)| dev)
    })
}

/// Say once per path why it was skipped (a trap does not flood the log
/// every refresh).
fn skip(path: &Path, why: &str) {
    static SAID: OnceLock<Mutex<HashSet<PathBuf>>> = OnceLock::new();
    let mut said = SAID.get_or_init(Default::default).locked();
    if said.len() > 10_000 {
        said.clear();
    }
    if said.insert(path.to_owned()) {
        log::warn!("skipped {}: {why}", crate::render::escape(&path.to_string_lossy()));
    }
}

/// Check that an O_PATH descriptor is the nsfs file of namespace `inode`
/// (any, if `None`), then open it for real.
fn verified(fd: OwnedFd, inode: Option<Inode>) -> Result<OwnedFd, &'static str> {
    if sys::fstatfs_type(fd.as_fd()).map_err(|_| "cannot statfs it")? != sys::NSFS_MAGIC {
        return Err("not an nsfs file (something else was put there)");
    }
    let st = sys::fstat(fd.as_fd()).map_err(|_| "cannot stat it")?;
    if inode.is_some_and(|i| i != Inode::of(&st)) {
        return Err("another namespace is there now");
    }
    sys::reopen(fd.as_fd(), REAL_OPEN).map_err(|_| "cannot open it")
}

/// How a path is walked.
enum Walk {
    /// `/proc/PID/root/REST`: REST inside that process's root.
    InRoot(CString, CString),
    /// `/proc/PID[/task/TID]/ns/TYPE`: procfs's namespace links, which
    /// lead to nsfs and nowhere else, so they are opened for real at once.
    ProcNs(CString),
    /// Any other /proc path (`fd/N`: anything at all), followed.
    Proc(CString),
    /// A path in nsfuse's own mount namespace (or the one a helper thread
    /// entered), no symlinks.
    Plain(CString),
}

fn classify(path: &Path) -> Option<Walk> {
    let bytes = path.as_os_str().as_bytes();
    let c = |b: &[u8]| CString::new(b).ok();
    if let Some(rest) = bytes.strip_prefix(b"/proc/") {
        let slash = rest.iter().position(|&b| b == b'/');
        if let Some(inner) = slash.and_then(|s| rest[s..].strip_prefix(b"/root/")) {
            let root = &bytes[..6 + slash? + 5];
            return Some(Walk::InRoot(c(root)?, c(inner)?));
        }
        let parts: Vec<&[u8]> = rest.split(|&b| b == b'/').collect();
        let numeric = |p: &[u8]| !p.is_empty() && p.iter().all(u8::is_ascii_digit);
        let ns_link = match parts.as_slice() {
            [pid, b"ns", _] => numeric(pid),
            [pid, b"task", tid, b"ns", _] => numeric(pid) && numeric(tid),
            _ => false,
        };
        return Some(if ns_link { Walk::ProcNs(c(bytes)?) } else { Walk::Proc(c(bytes)?) });
    }
    Some(Walk::Plain(c(bytes)?))
}

/// The O_PATH open of a walk; `cached` walks only the dentry cache.
fn o_path(walk: &Walk, cached: bool) -> std::io::Result<OwnedFd> {
    let o_path = libc::O_PATH | libc::O_NOFOLLOW;
    let resolve = sys::RESOLVE_NO_SYMLINKS | if cached { sys::RESOLVE_CACHED } else { 0 };
    match walk {
        Walk::InRoot(root, rest) => {
            let root = sys::openat(None, root, libc::O_PATH | libc::O_DIRECTORY)?;
            sys::openat2(Some(root.as_fd()), rest, o_path, resolve | sys::RESOLVE_IN_ROOT)
        }
        Walk::Proc(p) | Walk::ProcNs(p) => sys::openat(None, p, libc::O_PATH),
        Walk::Plain(p) => sys::openat2(None, p, o_path, resolve),
    }
}

/// Open the namespace `inode` by `path`, never blocking on what is there;
/// `None` (logged once) if the path leads elsewhere or did not answer.
pub fn open(path: &Path, inode: Inode) -> Option<OwnedFd> {
    let walk = classify(path)?;
    if let Walk::ProcNs(p) = &walk {
        let fd = sys::openat(None, p, REAL_OPEN).ok()?;
        return (Inode::of(&sys::fstat(fd.as_fd()).ok()?) == inode).then_some(fd);
    }
    let fd = match o_path(&walk, true) {
        Ok(fd) => fd,
        Err(e) if e.raw_os_error() == Some(libc::EAGAIN) => {
            // Not all in the dentry cache: walk it for real, bounded.
            let key = format!("path {}", crate::render::escape(&path.to_string_lossy()));
            match bounded::one("opening a pin", key, bounded::STALL, move || o_path(&walk, false)) {
                Some(Ok(fd)) => fd,
                Some(Err(_)) => return None,
                None => {
                    skip(path, "its filesystem does not answer");
                    return None;
                }
            }
        }
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
            skip(path, "a symlink was put on its path");
            return None;
        }
        Err(_) => return None,
    };
    verified(fd, Some(inode)).map_err(|why| skip(path, why)).ok()
}

/// The device of socket files (sockfs: one for every socket), learnt
/// from a socket of our own.
fn sockfs_dev() -> Option<u64> {
    static DEV: OnceLock<Option<u64>> = OnceLock::new();
    *DEV.get_or_init(|| {
        let sock = std::os::unix::net::UnixDatagram::unbound().ok()?;
        let fds = sys::open_path(Path::new("/proc/self/fd"), libc::O_PATH | libc::O_DIRECTORY).ok()?;
        let name = CString::new(std::os::fd::AsRawFd::as_raw_fd(&sock).to_string()).ok()?;
        sys::statx_dev_ino(fds.as_fd(), &name).ok().map(|(dev, _)| dev)
    })
}

/// What another process's open file is, as far as discovery cares.
pub enum FdKind {
    Namespace(NsType, Inode),
    /// A socket, by its inode.
    Socket(u64),
}

/// What descriptor `name` of `fd_dir` (a process's `/proc/PID/fd`) is,
/// judged by the file's identity (one statx, which touches no
/// filesystem's server), never by how its link reads: a namespace, a
/// socket, or neither. The link is read only for a namespace (its type).
pub fn classify_fd(fd_dir: BorrowedFd<'_>, name: &CStr) -> Option<FdKind> {
    let (dev, ino) = sys::statx_dev_ino(fd_dir, name).ok()?;
    let mut buf = [0u8; 64];
    if Some(dev) == nsfs_dev() {
        // A long path reads truncated: it is no `TYPE:[N]` link anyway.
        let link = sys::readlinkat(fd_dir, name, &mut buf).unwrap_or_default();
        return identified(fd_dir, name, link, ino).map(|(ty, inode)| FdKind::Namespace(ty, inode));
    }
    match sockfs_dev() {
        Some(sockfs) => (dev == sockfs).then_some(FdKind::Socket(ino)),
        // Sockets told by their link where no socket of our own could be made.
        None => sys::readlinkat(fd_dir, name, &mut buf)
            .ok()
            .and_then(super::parse::socket_link)
            .map(FdKind::Socket),
    }
}

/// The namespace behind nsfs descriptor `name` (inode `ino`), whose link
/// reads `link`.
fn identified(fd_dir: BorrowedFd<'_>, name: &CStr, link: &[u8], ino: u64) -> Option<(NsType, Inode)> {
    // Opened through /proc/PID/ns: the link names the type, and the file
    // is checked to be that nsfs inode, so nothing is opened (an open would
    // keep the namespace alive a moment longer, and every other nsfuse
    // would see that descriptor in turn).
    if let Some((ty, inode)) = super::parse::ns_link(link).filter(|(_, i)| i.get() == ino) {
        return Some((ty, inode));
    }
    let fd = sys::openat(Some(fd_dir), name, libc::O_PATH).ok()?;
    let fd = verified(fd, None).ok()?;
    let ty = NsType::from_clone_flag(sys::ns_get_nstype(fd.as_fd()).ok()?)?;
    Some((ty, Inode::of(&sys::fstat(fd.as_fd()).ok()?)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn walk(p: &str) -> String {
        match classify(Path::new(p)) {
            Some(Walk::InRoot(r, rest)) => {
                format!("root {} + {}", r.to_string_lossy(), rest.to_string_lossy())
            }
            Some(Walk::Proc(p)) => format!("proc {}", p.to_string_lossy()),
            Some(Walk::ProcNs(p)) => format!("ns link {}", p.to_string_lossy()),
            Some(Walk::Plain(p)) => format!("plain {}", p.to_string_lossy()),
            None => "none".into(),
        }
    }

    #[test]
    fn paths_are_walked_by_their_kind() {
        assert_eq!(walk("/proc/12/root/run/netns/x"), "root /proc/12/root + run/netns/x");
        assert_eq!(walk("/proc/12/ns/net"), "ns link /proc/12/ns/net");
        assert_eq!(walk("/proc/12/fd/4"), "proc /proc/12/fd/4");
        assert_eq!(walk("/proc/12/task/13/ns/uts"), "ns link /proc/12/task/13/ns/uts");
        assert_eq!(walk("/proc/12/ns/net/x"), "proc /proc/12/ns/net/x");
        assert_eq!(walk("/proc/self/ns/net"), "proc /proc/self/ns/net");
        assert_eq!(walk("/run/netns/x"), "plain /run/netns/x");
        assert_eq!(walk("/run/a\0b"), "none");
    }
}
