//! Making new namespaces that are usable, not just alive (SPEC section 4).
//! Types a thread may unshare alone (net, uts, ipc, cgroup, mnt, time) are
//! made on a short-lived helper thread; user and pid need a process of
//! their own: a `helper` re-exec of this binary, which is single-threaded
//! and so may unshare and fork freely.

use super::Error;
use crate::model::{NsType, Pid};
use crate::sys;
use std::io::{BufRead, BufReader};
use std::os::fd::OwnedFd;
use std::path::Path;
use std::process::{Command, Stdio};

pub use crate::helper::INIT_COMM;

/// A new namespace: a descriptor holding it, and the init started in it (pid only).
pub struct Made {
    pub fd: OwnedFd,
    pub init: Option<Pid>,
}

/// Create a namespace of `ty`.
pub fn new_namespace(ty: NsType) -> Result<Made, Error> {
    let io = |source| Error::Create { ty, source };
    match ty {
        NsType::User => new_user().map_err(io),
        NsType::Pid => new_pid().map_err(io),
        _ => {
            let fd = std::thread::scope(|s| {
                s.spawn(|| {
                    let (flags, link) = match ty {
                        NsType::Mnt => (libc::CLONE_FS | libc::CLONE_NEWNS, "mnt"),
                        NsType::Time => (libc::CLONE_NEWTIME, "time_for_children"),
                        _ => (ty.clone_flag(), ty.name()),
                    };
                    sys::unshare(flags)?;
                    if ty == NsType::Mnt {
                        // A private copy: nothing propagates back to the host.
                        sys::mount(None, Path::new("/"), None, libc::MS_REC | libc::MS_PRIVATE, None)?;
                    }
                    sys::open_path(Path::new(&format!("/proc/thread-self/ns/{link}")), libc::O_RDONLY)
                })
                .join()
                .unwrap_or_else(|_| Err(std::io::Error::other("helper thread panicked")))
            })
            .map_err(io)?;
            Ok(Made { fd, init: None })
        }
    }
}

fn helper(mode: &str) -> Command {
    let mut c = crate::helper::command(mode);
    c.stdin(Stdio::piped()).stdout(Stdio::piped());
    c
}

/// A user namespace with the identity map, so root in it is root.
fn new_user() -> std::io::Result<Made> {
    let mut cmd = helper("hold");
    sys::unshare_before_exec(&mut cmd, libc::CLONE_NEWUSER);
    let mut child = cmd.spawn()?;
    let pid = child.id();
    let result = (|| {
        for map in ["uid_map", "gid_map"] {
            std::fs::write(format!("/proc/{pid}/{map}"), "0 0 4294967295\n")?;
        }
        sys::open_path(Path::new(&format!("/proc/{pid}/ns/user")), libc::O_RDONLY)
    })();
    drop(child.stdin.take()); // the helper exits at EOF
    let _ = child.wait();
    Ok(Made { fd: result?, init: None })
}

/// A pid namespace with a minimal init in it.
fn new_pid() -> std::io::Result<Made> {
    let mut cmd = helper("pid-init");
    sys::unshare_before_exec(&mut cmd, libc::CLONE_NEWPID);
    let mut child = cmd.spawn()?;
    let mut line = String::new();
    if let Some(out) = child.stdout.take() {
        BufReader::new(out).read_line(&mut line)?;
    }
    let _ = child.wait();
    let init: Pid =
        line.trim().parse().map_err(|_| std::io::Error::other("the pid-init helper said no pid"))?;
    match sys::open_path(Path::new(&format!("/proc/{init}/ns/pid")), libc::O_RDONLY) {
        Ok(fd) => Ok(Made { fd, init: Some(init) }),
        Err(e) => {
            end_init(init);
            Err(e)
        }
    }
}

/// End an init we started (by PID) and reap it if it is our child.
pub fn end_init(pid: Pid) {
    if sys::kill(pid, libc::SIGKILL).is_ok() {
        for _ in 0..100 {
            match sys::waitpid(pid, libc::WNOHANG) {
                Ok(None) => std::thread::sleep(std::time::Duration::from_millis(5)),
                _ => break,
            }
        }
    }
}
