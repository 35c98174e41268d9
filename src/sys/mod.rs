//! The syscall layer: thin, safe wrappers over every raw Linux call nsfuse
//! makes (nsfs ioctls, setns, unshare, mount, umount2, pidfd, SIOCGSKNS,
//! getdents64, readlinkat, bpf, fanotify). This is the only module with `unsafe`; each
//! block says why it is sound. Everything returns `std::io::Result` with the
//! kernel's errno inside.

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

mod bpf;
mod fanotify;
mod files;
mod netlink;
mod nsfs;
mod process;
mod resources;

pub use bpf::*;
pub use fanotify::*;
pub use files::*;
pub use netlink::*;
pub use nsfs::*;
pub use process::*;
pub use resources::*;

fn cvt(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

fn cstring(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_bytes()).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
}

/// Take ownership of a file descriptor a syscall just returned.
fn owned(ret: libc::c_int) -> io::Result<OwnedFd> {
    let fd = cvt(ret)?;
    // SAFETY: the kernel just returned this descriptor to us; nobody else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}
