//! The helper re-exec (`nsfuse __nsfuse-helper MODE`): a fresh,
//! single-threaded process for what the kernel refuses a multi-threaded
//! daemon: entering or creating a user namespace, and forking the init of a
//! new pid namespace. Modes: `hold` (wait for stdin to close), `pid-init`,
//! `read-userns FILE` (stdin is a user namespace: print /proc/self/FILE in it).

use crate::model::Pid;
use crate::sys;
use std::ffi::CString;
use std::io::Write;
use std::os::fd::AsFd;
use std::process::{Command, Stdio};

/// The name of the minimal init kept in a new pid namespace.
pub const INIT_COMM: &str = "nsfuse-init";
/// `argv[1]` of the helper re-exec.
pub const HELPER_ARG: &str = "__nsfuse-helper";

/// A command that runs this binary as a helper in `mode`.
pub fn command(mode: &str) -> Command {
    let exe = std::env::current_exe().unwrap_or_else(|_| "/proc/self/exe".into());
    let mut c = Command::new(exe);
    c.arg(HELPER_ARG).arg(mode).stderr(Stdio::null());
    c
}

/// Read `/proc/self/FILE` from inside the user namespace behind `ns`.
pub fn read_in_userns(ns: std::os::fd::BorrowedFd<'_>, file: &str) -> Option<String> {
    let fd = ns.try_clone_to_owned().ok()?;
    let out = command("read-userns").arg(file).stdin(Stdio::from(fd)).stdout(Stdio::piped()).output().ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The helper's main; returns its exit code.
pub fn main(args: &[String]) -> i32 {
    match args.first().map(String::as_str) {
        Some("hold") => {
            let mut sink = String::new();
            let _ = std::io::stdin().read_line(&mut sink);
            0
        }
        // SAFETY: the helper is a fresh exec of this binary that starts no
        // thread before this point.
        Some("pid-init") => match unsafe { sys::fork() } {
            Ok(0) => init_main(),
            Ok(child) => {
                let mut out = std::io::stdout();
                let _ = writeln!(out, "{child}");
                let _ = out.flush();
                0
            }
            Err(_) => 1,
        },
        Some("read-userns") => {
            let Some(file) = args.get(1).filter(|f| matches!(f.as_str(), "uid_map" | "gid_map")) else {
                return 2;
            };
            let stdin = std::io::stdin();
            if sys::setns(stdin.as_fd(), libc::CLONE_NEWUSER).is_err() {
                return 1;
            }
            match std::fs::read(format!("/proc/self/{file}")) {
                Ok(b) => {
                    let _ = std::io::stdout().write_all(&b);
                    0
                }
                Err(_) => 1,
            }
        }
        _ => 2,
    }
}

/// PID 1 of a new pid namespace: reap children, nothing else.
fn init_main() -> ! {
    let _ = sys::setsid();
    let _ = sys::stdio_to_devnull();
    if let Ok(name) = CString::new(INIT_COMM) {
        let _ = sys::set_comm(&name);
    }
    loop {
        if sys::waitpid(Pid(-1), 0).is_err() {
            // No children now (ECHILD); orphans may be reparented to us later.
            std::thread::sleep(std::time::Duration::from_millis(500));
        }
    }
}
