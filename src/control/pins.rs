//! Pins as kernel objects: bind mounts of nsfs files in the pin directories
//! (PIN_DIR/TYPE/NAME, net ones in NETNS_DIR/NAME as `ip netns` keeps them),
//! made and removed so that a failure leaves nothing half-made.

use super::Error;
use crate::discovery::parse::{self, NsfsMount};
use crate::model::{Inode, NsType, PinDirs};
use crate::sys;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// Prepare both pin directories at start: PIN_DIR a private mount of
/// itself (pinning mount namespaces needs that), NETNS_DIR a shared one, the
/// way `ip netns add` does it.
pub fn prepare(dirs: &PinDirs) -> io::Result<()> {
    let (pin_dir, netns_dir) = (&dirs.pin_dir, &dirs.netns_dir);
    std::fs::create_dir_all(pin_dir)?;
    if !is_mount_point(pin_dir) {
        sys::mount(Some(pin_dir), pin_dir, None, libc::MS_BIND, None)?;
        sys::mount(None, pin_dir, None, libc::MS_PRIVATE, None)?;
        log::info!("made {} a private mount", pin_dir.display());
    }
    std::fs::create_dir_all(netns_dir)?;
    let shared = libc::MS_SHARED | libc::MS_REC;
    if let Err(e) = sys::mount(None, netns_dir, Some("none"), shared, None) {
        if e.raw_os_error() != Some(libc::EINVAL) {
            return Err(e);
        }
        let bind = libc::MS_BIND | libc::MS_REC;
        sys::mount(Some(netns_dir), netns_dir, Some("none"), bind, None)?;
        sys::mount(None, netns_dir, Some("none"), shared, None)?;
    }
    Ok(())
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

/// The nsfs mounts of our mount namespace, read now.
pub fn nsfs_mounts_here() -> Vec<NsfsMount> {
    std::fs::read("/proc/self/mountinfo").map(|t| parse::mountinfo_nsfs_all(&t)).unwrap_or_default()
}

/// The namespace mounted on top at `path`, if an nsfs mount is there.
pub fn pinned_at(mounts: &[NsfsMount], path: &Path) -> Option<(NsType, Inode)> {
    mounts.iter().rev().find(|m| m.mount_point == path).map(|m| (m.ns_type, m.inode))
}

/// Bind-mount the namespace behind `ns` (already checked to be `inode`) at
/// `path`. Already pinned there: nothing to do. On failure nothing is left.
pub fn pin(ns: BorrowedFd<'_>, ty: NsType, inode: Inode, path: &Path) -> Result<bool, Error> {
    let mounts = nsfs_mounts_here();
    match pinned_at(&mounts, path) {
        Some((_, i)) if i == inode => return Ok(false),
        Some((t, i)) => {
            return Err(Error::Exists(format!("{} is already a pin of {t}:[{i}]", path.display())))
        }
        None => {}
    }
    let parent =
        path.parent().ok_or_else(|| Error::Invalid(format!("{} has no directory", path.display())))?;
    std::fs::create_dir_all(parent).map_err(|e| Error::io(format!("cannot make {}", parent.display()), e))?;
    let created = match std::fs::OpenOptions::new().write(true).create_new(true).mode(0o444).open(path) {
        Ok(_) => true,
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            // An empty plain file left by someone: take it; anything else is in the way.
            let m = std::fs::symlink_metadata(path).map_err(|e| Error::io(path.display().to_string(), e))?;
            if !(m.file_type().is_file() && m.size() == 0) {
                return Err(Error::Exists(format!("{} exists and is not a pin", path.display())));
            }
            false
        }
        Err(e) => return Err(Error::io(format!("cannot create {}", path.display()), e)),
    };
    let source = PathBuf::from(format!("/proc/self/fd/{}", ns.as_raw_fd()));
    if let Err(e) = sys::mount(Some(&source), path, None, libc::MS_BIND, None) {
        if created {
            let _ = std::fs::remove_file(path);
        }
        if e.raw_os_error() == Some(libc::EINVAL) && ty == NsType::Mnt {
            return Err(Error::Invalid(format!(
                "the kernel refuses to pin mount namespace {inode} at {}: a mount namespace that is not newer \
                 than nsfuse's own would make a reference loop",
                path.display()
            )));
        }
        return Err(Error::io(format!("cannot bind-mount {ty}:[{inode}] at {}", path.display()), e));
    }
    Ok(true)
}

/// Unmount every layer of `inode` at `path` (lazily, as `ip netns delete`
/// does) and remove the file if `remove` and nothing is mounted there.
pub fn unpin(path: &Path, inode: Inode, remove: bool) -> Result<(), Error> {
    for _ in 0..16 {
        match pinned_at(&nsfs_mounts_here(), path) {
            Some((_, i)) if i == inode => sys::umount2(path, libc::MNT_DETACH)
                .map_err(|e| Error::io(format!("cannot unmount {}", path.display()), e))?,
            _ => break,
        }
    }
    if remove && !is_mount_point(path) {
        match std::fs::remove_file(path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io(format!("cannot remove {}", path.display()), e)),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pin_paths() {
        let d = PinDirs::default();
        assert_eq!(d.path(NsType::Net, "web"), PathBuf::from("/run/netns/web"));
        assert_eq!(d.path(NsType::Uts, "a"), PathBuf::from("/run/nsfuse/uts/a"));
        assert_eq!(d.name_of(NsType::Uts, Path::new("/run/nsfuse/uts/a")).as_deref(), Some("a"));
        assert_eq!(d.name_of(NsType::Net, Path::new("/run/netns/web")).as_deref(), Some("web"));
        assert_eq!(d.name_of(NsType::Net, Path::new("/run/nsfuse/net/web")), None);
        assert_eq!(d.name_of(NsType::Ipc, Path::new("/run/nsfuse/uts/a")), None);
        assert!(d.holds(Path::new("/run/netns/web")));
        assert!(d.holds(Path::new("/run/nsfuse/mnt/x")));
        assert!(!d.holds(Path::new("/run/nsfuse/x")));
        assert!(!d.holds(Path::new("/run/nsfuse/bogus/x")));
        assert!(!d.holds(Path::new("/tmp/x")));
    }
}
