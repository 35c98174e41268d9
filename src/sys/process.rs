//! Processes and signals: pidfd_open/getfd, ids, kill, fork, setsid,
//! prctl, waitpid, stdio, blocked signals and sigwait.

use super::*;
use crate::model::Pid;

/// pidfd_open(2).
pub fn pidfd_open(pid: Pid) -> io::Result<OwnedFd> {
    // SAFETY: plain syscall with integer arguments; the result is checked.
    let r = unsafe { libc::syscall(libc::SYS_pidfd_open, pid.get(), 0) };
    owned(r as libc::c_int)
}

/// pidfd_getfd(2): a duplicate of another process's descriptor.
pub fn pidfd_getfd(pidfd: BorrowedFd<'_>, target_fd: i32) -> io::Result<OwnedFd> {
    // SAFETY: plain syscall with integer arguments; the result is checked.
    let r = unsafe { libc::syscall(libc::SYS_pidfd_getfd, pidfd.as_raw_fd(), target_fd, 0) };
    owned(r as libc::c_int)
}

/// getpid/gettid/geteuid: never fail.
pub fn getpid() -> Pid {
    Pid(std::process::id() as i32)
}

/// The calling thread's id.
pub fn gettid() -> Pid {
    // SAFETY: gettid cannot fail.
    Pid(unsafe { libc::gettid() })
}

/// The effective uid of this process.
pub fn geteuid() -> u32 {
    // SAFETY: geteuid cannot fail.
    unsafe { libc::geteuid() }
}

/// kill(2).
pub fn kill(pid: Pid, sig: libc::c_int) -> io::Result<()> {
    // SAFETY: kill takes only integers.
    cvt(unsafe { libc::kill(pid.get(), sig) }).map(drop)
}

/// fork(2): 0 in the child, the child's PID in the parent.
///
/// # Safety
///
/// The calling process must have exactly one thread. The child of a
/// threaded process may call only async-signal-safe functions until it
/// execs (another thread may have held the allocator's lock or any other
/// at the fork, and it is not there to release it); nsfuse's children go
/// on running Rust code, which allocates. Callers: the daemon before it
/// starts any thread, and the single-threaded `__nsfuse-helper`.
pub unsafe fn fork() -> io::Result<i32> {
    // SAFETY: the caller guarantees the process is single-threaded, so the
    // child may use any function, not just async-signal-safe ones.
    cvt(unsafe { libc::fork() })
}

/// setsid(2).
pub fn setsid() -> io::Result<()> {
    // SAFETY: setsid takes no arguments.
    cvt(unsafe { libc::setsid() }).map(drop)
}

/// Set the calling thread's name (what /proc/PID/comm shows).
pub fn set_comm(name: &CStr) -> io::Result<()> {
    // SAFETY: PR_SET_NAME reads a NUL-terminated string of at most 16 bytes.
    cvt(unsafe { libc::prctl(libc::PR_SET_NAME, name.as_ptr()) }).map(drop)
}

/// Become a child subreaper: orphaned descendants are reparented to us.
pub fn set_child_subreaper() -> io::Result<()> {
    // SAFETY: PR_SET_CHILD_SUBREAPER takes an integer flag.
    cvt(unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1) }).map(drop)
}

/// waitpid(2); returns the pid reaped (None with WNOHANG if none yet).
pub fn waitpid(pid: Pid, flags: libc::c_int) -> io::Result<Option<Pid>> {
    let mut status = 0;
    // SAFETY: status is a valid out pointer.
    let reaped = cvt(unsafe { libc::waitpid(pid.get(), &mut status, flags) })?;
    Ok((reaped != 0).then_some(Pid(reaped)))
}

/// Redirect stdin, stdout and stderr to /dev/null.
pub fn stdio_to_devnull() -> io::Result<()> {
    let null = open_path(Path::new("/dev/null"), libc::O_RDWR)?;
    for target in 0..3 {
        // SAFETY: dup2 onto the standard descriptors, which we own.
        cvt(unsafe { libc::dup2(null.as_raw_fd(), target) })?;
    }
    Ok(())
}

/// Have a child spawned by `cmd` unshare `flags` between fork and exec.
pub fn unshare_before_exec(cmd: &mut std::process::Command, flags: libc::c_int) {
    use std::os::unix::process::CommandExt;
    let hook = move || unshare(flags);
    // SAFETY: the hook only calls unshare(2), which is async-signal-safe and
    // allocates nothing, as a pre_exec hook must.
    unsafe {
        cmd.pre_exec(hook);
    }
}

/// How often `wait_for_hangup` looks without a mount-table change.
const LOOK_EVERY_MS: libc::c_int = 400;

/// Return once `fuse` (a FUSE device) reports an error or hang-up, as it
/// does once its mount is gone. It is looked at every 400 ms and whenever
/// `mounts` (an open mountinfo) says the mount table changed: a poll(2)
/// sleeping on the device itself would wake at every request it queues.
pub fn wait_for_hangup(fuse: BorrowedFd<'_>, mounts: Option<BorrowedFd<'_>>) -> io::Result<()> {
    let hung_up = || {
        let mut p = libc::pollfd { fd: fuse.as_raw_fd(), events: 0, revents: 0 };
        // SAFETY: p is one valid pollfd, the count passed; a zero timeout
        // never sleeps, so nothing waits on the device.
        let r = unsafe { libc::poll(&mut p, 1, 0) };
        r > 0 && p.revents & (libc::POLLERR | libc::POLLHUP | libc::POLLNVAL) != 0
    };
    loop {
        if hung_up() {
            return Ok(());
        }
        match mounts {
            Some(m) => {
                let mut p = libc::pollfd { fd: m.as_raw_fd(), events: libc::POLLPRI, revents: 0 };
                // SAFETY: p is one valid pollfd, the count passed.
                if unsafe { libc::poll(&mut p, 1, LOOK_EVERY_MS) } < 0 {
                    let e = io::Error::last_os_error();
                    if e.raw_os_error() != Some(libc::EINTR) {
                        return Err(e);
                    }
                }
            }
            None => std::thread::sleep(std::time::Duration::from_millis(LOOK_EVERY_MS as u64)),
        }
    }
}

fn sigset(signals: &[libc::c_int]) -> libc::sigset_t {
    // SAFETY: sigemptyset initialises the zeroed set; sigaddset adds valid signals.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for &s in signals {
            libc::sigaddset(&mut set, s);
        }
        set
    }
}

/// Block `signals` in the calling thread (and threads it spawns later).
pub fn block_signals(signals: &[libc::c_int]) -> io::Result<()> {
    let set = sigset(signals);
    // SAFETY: set is a valid sigset; the old mask is not needed.
    let r = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
    if r != 0 {
        return Err(io::Error::from_raw_os_error(r));
    }
    Ok(())
}

/// Wait for one of `signals` (which must be blocked); returns it.
pub fn sigwait(signals: &[libc::c_int]) -> io::Result<libc::c_int> {
    let set = sigset(signals);
    let mut sig = 0;
    // SAFETY: set is valid and sig a valid out pointer.
    let r = unsafe { libc::sigwait(&set, &mut sig) };
    if r != 0 {
        return Err(io::Error::from_raw_os_error(r));
    }
    Ok(sig)
}
