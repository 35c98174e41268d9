//! Running a piece of work inside another namespace without disturbing the
//! rest of the (multi-threaded) daemon: a short-lived helper thread first
//! unshares its filesystem context (required before entering a mount
//! namespace), enters the namespaces with setns(2), runs the closure, and
//! exits, so the namespace change dies with it.

use crate::model::NsType;
use crate::sys;
use std::io;
use std::os::fd::{AsFd, BorrowedFd};

/// Run `f` on a fresh thread that has entered each `(fd, type)` in order.
pub fn run_in<T: Send>(
    targets: &[(BorrowedFd<'_>, NsType)],
    f: impl FnOnce() -> io::Result<T> + Send,
) -> io::Result<T> {
    std::thread::scope(|s| {
        let handle = s.spawn(|| {
            if targets.iter().any(|(_, t)| *t == NsType::Mnt) {
                sys::unshare(libc::CLONE_FS)?;
            }
            for (fd, ty) in targets {
                sys::setns(fd.as_fd(), ty.clone_flag())?;
            }
            f()
        });
        handle.join().unwrap_or_else(|_| Err(io::Error::other("namespace helper thread panicked")))
    })
}

/// Run `f` inside one namespace.
pub fn run_in_one<T: Send>(
    fd: BorrowedFd<'_>,
    ty: NsType,
    f: impl FnOnce() -> io::Result<T> + Send,
) -> io::Result<T> {
    run_in(&[(fd, ty)], f)
}
