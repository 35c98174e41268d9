//! Pins as kernel objects: bind mounts of nsfs files in the pin directories
//! (PIN_DIR/TYPE/NAME, net ones in NETNS_DIR/NAME as `ip netns` keeps them),
//! made and removed so that a failure leaves nothing half-made.

use super::host::{is_mount_point, PinHost, Spot};
use super::Error;
use crate::discovery::parse::NsfsMount;
use crate::model::{Inode, NsType, PinDirs};
use crate::sys;
use std::io;
use std::path::Path;

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
/// The namespace mounted on top at `path`, if an nsfs mount is there.
pub fn pinned_at(mounts: &[NsfsMount], path: &Path) -> Option<(NsType, Inode)> {
    mounts.iter().rev().find(|m| m.mount_point == path).map(|m| (m.ns_type, m.inode))
}

/// Bind-mount the namespace behind `ns` (already checked to be `inode`) at
/// `path`. Already pinned there: nothing to do. On failure nothing is left.
pub fn pin<H: PinHost>(host: &H, ns: &H::Ns, ty: NsType, inode: Inode, path: &Path) -> Result<bool, Error> {
    match pinned_at(&host.nsfs_mounts(), path) {
        Some((_, i)) if i == inode => return Ok(false),
        Some((ty, inode)) => return Err(Error::PinOfAnother { path: path.into(), ty, inode }),
        None => {}
    }
    let parent = path.parent().ok_or_else(|| Error::NoDirectory { path: path.into() })?;
    host.make_dirs(parent).map_err(|source| Error::Host { doing: "make", path: parent.into(), source })?;
    let made = match host.make_spot(path) {
        Ok(Spot::Made) => true,
        Ok(Spot::EmptyFile) => false,
        Ok(Spot::Taken) => return Err(Error::InTheWay { path: path.into() }),
        Err(source) => return Err(Error::Host { doing: "create", path: path.into(), source }),
    };
    if let Err(source) = host.bind(ns, path) {
        if made {
            let _ = host.remove_file(path);
        }
        if source.raw_os_error() == Some(libc::EINVAL) && ty == NsType::Mnt {
            return Err(Error::MountLoop { inode, path: path.into() });
        }
        return Err(Error::Bind { ty, inode, path: path.into(), source });
    }
    Ok(true)
}

/// Unmount every layer of `inode` at `path` (lazily, as `ip netns delete`
/// does) and remove the file if `remove` and nothing is mounted there.
pub fn unpin<H: PinHost>(host: &H, path: &Path, inode: Inode, remove: bool) -> Result<(), Error> {
    for _ in 0..16 {
        match pinned_at(&host.nsfs_mounts(), path) {
            Some((_, i)) if i == inode => host.unmount(path).map_err(|source| Error::Host {
                doing: "unmount",
                path: path.into(),
                source,
            })?,
            _ => break,
        }
    }
    if remove && !host.is_mount_point(path) {
        match host.remove_file(path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(source) => return Err(Error::Host { doing: "remove", path: path.into(), source }),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

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
