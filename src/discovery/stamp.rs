//! Whether a task can have changed since it was read: its scheduler
//! counters (`Stamp`), how many stamps may keep their file open
//! (`StampBudget`), and the in-place paths the /proc walk builds (`cpath`).

use super::parse;
use crate::model::Pid;
use crate::sys;
use std::ffi::CStr;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicIsize, Ordering};

/// A task's scheduler counters (`schedstat`: time on CPU in ns, time
/// waiting, times run). A task whose counters have not moved has not run
/// since, so it cannot have changed its namespaces or its descriptors.
/// Within the open-file budget the file is kept open: it names that very
/// task, and once the task has exited reads fail even if its number was
/// reused. Beyond the budget the file is opened again by path each time: a
/// new task that took the number would have to match all three counters
/// to the nanosecond, and a full pass follows within 60 s anyway.
#[derive(Debug)]
pub struct Stamp {
    file: Option<OwnedFd>,
    /// The task: (process, thread); thread None for the process itself.
    task: (Pid, Option<Pid>),
    seen: [u64; 3],
}

impl Stamp {
    pub(super) fn take(proc: BorrowedFd<'_>, task: (Pid, Option<Pid>), keep_open: bool) -> Option<Stamp> {
        let file = Stamp::open(proc, task)?;
        let seen = Stamp::read(file.as_fd())?;
        Some(Stamp { file: keep_open.then_some(file), task, seen })
    }

    fn open(proc: BorrowedFd<'_>, (pid, tid): (Pid, Option<Pid>)) -> Option<OwnedFd> {
        let mut p = [0u8; 64];
        let path = match tid {
            None => cpath(&mut p, &[N(pid.get()), S("/schedstat")]),
            Some(tid) => cpath(&mut p, &[N(pid.get()), S("/task/"), N(tid.get()), S("/schedstat")]),
        }?;
        sys::openat(Some(proc), path, libc::O_RDONLY).ok()
    }

    fn read(file: BorrowedFd<'_>) -> Option<[u64; 3]> {
        let mut buf = [0u8; 80];
        let n = sys::pread0(file, &mut buf).ok()?;
        parse::schedstat(&buf[..n])
    }

    /// A stamp of counters read elsewhere (by a host that is not /proc).
    pub fn counted(task: (Pid, Option<Pid>), seen: [u64; 3]) -> Stamp {
        Stamp { file: None, task, seen }
    }

    /// The task stamped and the counters it had.
    pub fn counters(&self) -> ((Pid, Option<Pid>), [u64; 3]) {
        (self.task, self.seen)
    }

    /// Whether it keeps its file open (counts against the budget).
    pub fn holds_file(&self) -> bool {
        self.file.is_some()
    }

    /// Whether the task is still there and has not run since it was read.
    pub fn unchanged(&self, proc: BorrowedFd<'_>) -> bool {
        let now = match &self.file {
            Some(f) => Stamp::read(f.as_fd()),
            None => Stamp::open(proc, self.task).and_then(|f| Stamp::read(f.as_fd())),
        };
        now == Some(self.seen)
    }
}

/// How many more `Stamp`s may keep their file open.
pub struct StampBudget(AtomicIsize);

impl StampBudget {
    pub fn new(n: usize) -> Self {
        StampBudget(AtomicIsize::new(isize::try_from(n).unwrap_or(isize::MAX)))
    }

    pub(super) fn take(&self) -> bool {
        self.0.fetch_sub(1, Ordering::Relaxed) > 0
    }
}

/// A piece of a short relative path: a number or literal text.
#[derive(Clone, Copy)]
pub enum Part<'s> {
    N(i32),
    S(&'s str),
}
use Part::{N, S};

/// Write the pieces into `buf` as a C string (None if too long). Hand-made
/// rather than `format!`: a pass builds a few paths for every process.
pub fn cpath<'b>(buf: &'b mut [u8; 64], parts: &[Part<'_>]) -> Option<&'b CStr> {
    let mut len = 0;
    let mut put = |bytes: &[u8]| -> Option<()> {
        buf.get_mut(len..len + bytes.len())?.copy_from_slice(bytes);
        len += bytes.len();
        Some(())
    };
    for part in parts {
        match *part {
            S(s) => put(s.as_bytes())?,
            N(n) => {
                let mut digits = [0u8; 11];
                let mut i = digits.len();
                let mut v = n.unsigned_abs();
                loop {
                    i -= 1;
                    digits[i] = b'0' + (v % 10) as u8;
                    v /= 10;
                    if v == 0 {
                        break;
                    }
                }
                if n < 0 {
                    i -= 1;
                    digits[i] = b'-';
                }
                put(&digits[i..])?;
            }
        }
    }
    put(&[0])?;
    CStr::from_bytes_with_nul(&buf[..len]).ok()
}
