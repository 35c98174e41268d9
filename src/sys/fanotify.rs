//! fanotify(7) for mount namespaces (Linux 6.15+): a group that reports
//! mounts attached to or detached from the namespaces it marks.

use super::owned;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};

const FAN_CLOEXEC: libc::c_uint = 0x1;
const FAN_NONBLOCK: libc::c_uint = 0x2;
const FAN_REPORT_MNT: libc::c_uint = 0x4000;
const FAN_MARK_ADD: libc::c_uint = 0x1;
const FAN_MARK_MNTNS: libc::c_uint = 0x110;
const FAN_MNT_ATTACH: u64 = 0x0100_0000;
const FAN_MNT_DETACH: u64 = 0x0200_0000;

/// A non-blocking group reporting mount events (EINVAL before 6.15).
pub fn fanotify_mount_group() -> io::Result<OwnedFd> {
    // SAFETY: fanotify_init takes only flags.
    owned(unsafe { libc::fanotify_init(FAN_REPORT_MNT | FAN_NONBLOCK | FAN_CLOEXEC, libc::O_RDONLY as u32) })
}

/// Report mounts attached to or detached from mount namespace `mntns`
/// (a mark does not keep the namespace alive).
pub fn fanotify_mark_mntns(group: BorrowedFd<'_>, mntns: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: both descriptors are live; a null path marks `mntns` itself.
    let ret = unsafe {
        libc::fanotify_mark(
            group.as_raw_fd(),
            FAN_MARK_ADD | FAN_MARK_MNTNS,
            FAN_MNT_ATTACH | FAN_MNT_DETACH,
            mntns.as_raw_fd(),
            std::ptr::null(),
        )
    };
    super::cvt(ret).map(drop)
}

/// Read what is queued on a non-blocking descriptor into `buf`: the bytes
/// read, 0 when nothing is (EAGAIN).
pub fn read_queued(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: buf is writable for buf.len() bytes.
    let n = unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
    if n < 0 {
        let e = io::Error::last_os_error();
        return if e.kind() == io::ErrorKind::WouldBlock { Ok(0) } else { Err(e) };
    }
    Ok(n as usize)
}
