//! The /proc walk for one process: its ns links, the links of threads that
//! differ, and its nsfs and socket file descriptors, plus (when tracking)
//! a `Stamp` per task that tells a later refresh whether the process can
//! have changed. Uses *at() calls from one /proc descriptor and reusable
//! buffers. A process that vanishes before its links are read is
//! `Error::Vanished` (skipped, not logged); one that vanishes later gives a
//! partial answer.

use super::stamp::{cpath, Part::N, Part::S};
pub use super::stamp::{Stamp, StampBudget};
use super::task_table::{TaskRecord, TaskTable};
use super::{nsfile, parse};
use crate::model::{Inode, Link, NsType, Pid, ProcessLinks, LINKS};
use crate::sys;
use std::ffi::CStr;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::Arc;

const LINK_CNAMES: [&CStr; LINKS] = [
    c"cgroup",
    c"ipc",
    c"mnt",
    c"net",
    c"pid",
    c"time",
    c"user",
    c"uts",
    c"pid_for_children",
    c"time_for_children",
];

/// Whose cgroup a read of processes takes in.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum CgroupsOf {
    /// Every process's (the tree lists all of a unit's processes in
    /// `containers/*/processes`).
    #[default]
    Every,
    /// Only a process's that has a link outside these (the host's own
    /// namespaces): owner lines skip the host's namespaces, so a process
    /// wholly in them adds nothing to them.
    OutsideOf(ProcessLinks),
}

impl CgroupsOf {
    /// Whether a process with `links` has its cgroup read.
    pub fn wanted(&self, links: &ProcessLinks) -> bool {
        match self {
            CgroupsOf::Every => true,
            CgroupsOf::OutsideOf(host) => links.0.iter().any(|l| *l != 0 && !host.0.contains(l)),
        }
    }
}

/// Why a process could not be read.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// It exited, or its PID no longer names a process we see.
    #[error("process {pid} is gone")]
    Vanished { pid: Pid },
    /// It is there, but its namespace links cannot be read (another
    /// user's, to a scan without root).
    #[error("cannot read /proc/{pid}/ns: {source}")]
    Unreadable { pid: Pid, source: io::Error },
}

impl Error {
    /// What a failed read of process `pid`'s files means.
    fn of(pid: Pid, source: io::Error) -> Error {
        match source.raw_os_error() {
            Some(libc::ENOENT | libc::ESRCH) => Error::Vanished { pid },
            _ => Error::Unreadable { pid, source },
        }
    }
}

/// What one process holds.
#[derive(Debug, Default)]
pub struct Process {
    pub links: ProcessLinks,
    /// Threads whose links differ from the process's.
    pub threads: Vec<(Pid, ProcessLinks)>,
    /// Open nsfs descriptors: (fd, type, inode).
    pub ns_fds: Vec<(i32, NsType, Inode)>,
    /// Open sockets: (fd, socket inode).
    pub sockets: Vec<(i32, u64)>,
    /// One per task, read before its links; empty when not tracked.
    pub stamps: Vec<Stamp>,
    /// Its cgroup path (v2, else v1 name=systemd), unless it is the host's
    /// root or init.scope: who owns the namespaces it is in.
    pub cgroup: Option<Arc<str>>,
}

impl Process {
    /// Whether it was stamped and every task `unchanged` says so of its stamp.
    pub fn stamps_hold(&self, unchanged: impl Fn(&Stamp) -> bool) -> bool {
        !self.stamps.is_empty() && self.stamps.iter().all(unchanged)
    }

    /// Threads with a readable link that differs from the process's: the
    /// only ones that add anything (a thread caught while it starts or
    /// ends reads as all zeros).
    fn telling_threads(&self) -> impl Iterator<Item = &(Pid, ProcessLinks)> {
        self.threads
            .iter()
            .filter(|(_, l)| (0..LINKS).any(|i| l.get(i).is_some_and(|v| Some(v) != self.links.get(i))))
    }

    /// Whether it holds what `other` holds: the same links (its telling
    /// threads' too), nsfs descriptors, sockets and cgroup. Stamps are not
    /// compared.
    pub fn holds_the_same_as(&self, other: &Process) -> bool {
        self.links == other.links
            && self.telling_threads().eq(other.telling_threads())
            && self.ns_fds == other.ns_fds
            && self.sockets == other.sockets
            && self.cgroup == other.cgroup
    }
}

/// Walks processes through one open /proc directory, reusing its buffers.
pub struct Walker {
    proc: Arc<OwnedFd>,
    dirbuf: Vec<u8>,
    names: Vec<i32>,
}

impl Walker {
    pub fn new(proc: Arc<OwnedFd>) -> Self {
        Walker { proc, dirbuf: Vec::new(), names: Vec::new() }
    }

    /// Read one process (an error if it is gone or unreadable), and its
    /// cgroup where `cgroups` wants it. With a budget, also stamp each task
    /// (before reading it, so a change made after the read shows in the
    /// stamp), keeping the stamp's file open while the budget lasts. Where
    /// `tasks` lists the process with links it trusts, its tasks' links
    /// and stamps come from there (read together, task by task, counters
    /// first); else the tasks it lists are stamped from it.
    pub fn process(
        &mut self,
        pid: Pid,
        with_fds: bool,
        budget: Option<&StampBudget>,
        cgroups: &CgroupsOf,
        tasks: Option<&TaskTable>,
    ) -> Result<Process, Error> {
        if let Some(records) = tasks.and_then(|t| t.process(pid)) {
            if self.user_link_agrees(pid, &records).map_err(|e| Error::of(pid, e))? {
                return self.process_from_table(pid, &records, with_fds, budget.is_some(), cgroups);
            }
        }
        let mut p = [0u8; 64];
        let mut stamps = Vec::new();
        let mut tracked = budget.is_some();
        if let Some(b) = budget {
            self.stamp(&mut stamps, &mut tracked, b, tasks, (pid, None));
        }
        let ns_dir = cpath(&mut p, &[N(pid.get()), S("/ns")]).ok_or(Error::Vanished { pid })?;
        let links = self.links(ns_dir).map_err(|e| Error::of(pid, e))?;
        let mut out = Process { links, ..Default::default() };
        // /proc/PID/task has 2 + (number of threads) links: skip the
        // directory walk for single-threaded processes.
        let multi = cpath(&mut p, &[N(pid.get()), S("/task")])
            .is_some_and(|task| sys::fstatat(Some(self.proc.as_fd()), task).is_ok_and(|st| st.st_nlink > 3));
        if multi {
            self.threads(pid, &mut out, budget, tasks, &mut stamps, &mut tracked);
        }
        if with_fds {
            let _ = self.fds(pid, &mut out);
        }
        if cgroups.wanted(&out.links) {
            out.cgroup = self.cgroup(pid);
        }
        if tracked {
            out.stamps = stamps;
        }
        Ok(out)
    }

    /// Whether /proc lets us read the process's `ns/user` link, and it
    /// names the namespace the table has. It is one readlink, where /proc
    /// makes the same access check as for every `ns` link (another user's
    /// process, to a scan without root; an init we may not inspect): the
    /// table shows no more than /proc would. A process whose number was
    /// taken by another since the table was read, or that changed its user
    /// namespace, disagrees, and is read from /proc.
    fn user_link_agrees(&mut self, pid: Pid, records: &[TaskRecord]) -> io::Result<bool> {
        let mut p = [0u8; 64];
        let path = cpath(&mut p, &[N(pid.get()), S("/ns/user")]).ok_or(io::ErrorKind::InvalidInput)?;
        let mut buf = [0u8; 64];
        let link = sys::readlinkat(self.proc.as_fd(), path, &mut buf)?;
        let user = parse::ns_link(link).map(|(_, inode)| inode.get());
        let leader = records.iter().find(|r| r.tid == pid.get());
        Ok(leader
            .is_some_and(|r| user.is_some() && user == r.links.of(Link::Own(NsType::User)).map(|i| i.get())))
    }

    /// `process` for one listed in the task table (`records`, its tasks):
    /// only its descriptors and cgroup are read here. Its descriptor
    /// directory gone means it has exited since.
    fn process_from_table(
        &mut self,
        pid: Pid,
        records: &[TaskRecord],
        with_fds: bool,
        stamped: bool,
        cgroups: &CgroupsOf,
    ) -> Result<Process, Error> {
        let leader = records.iter().find(|r| r.tid == pid.get()).ok_or(Error::Vanished { pid })?;
        let mut out = Process { links: leader.links, ..Default::default() };
        for r in records.iter().filter(|r| r.tid != pid.get() && r.links != leader.links) {
            out.threads.push((Pid(r.tid), r.links));
        }
        if stamped {
            let task = |r: &TaskRecord| (pid, (r.tid != pid.get()).then_some(Pid(r.tid)));
            out.stamps = records.iter().map(|r| Stamp::counted(task(r), r.counters)).collect();
        }
        if with_fds {
            self.fds(pid, &mut out).map_err(|e| Error::of(pid, e))?;
        }
        if cgroups.wanted(&out.links) {
            out.cgroup = self.cgroup(pid);
        }
        Ok(out)
    }

    /// Stamp `task`: from `tasks` where it lists it (no file to open: the
    /// table was read before this read), else from its schedstat file.
    fn stamp(
        &self,
        stamps: &mut Vec<Stamp>,
        tracked: &mut bool,
        budget: &StampBudget,
        tasks: Option<&TaskTable>,
        task: (Pid, Option<Pid>),
    ) {
        if !*tracked {
            return;
        }
        if let Some(t) = tasks.and_then(|t| t.get(task.0, task.1.unwrap_or(task.0))) {
            stamps.push(Stamp::counted(task, t.counters));
            return;
        }
        match Stamp::take(self.proc.as_fd(), task, budget.take()) {
            Some(s) => stamps.push(s),
            None => {
                *tracked = false;
                stamps.clear();
            }
        }
    }

    /// The process's cgroup path, when it is not the host's own.
    fn cgroup(&mut self, pid: Pid) -> Option<Arc<str>> {
        let mut p = [0u8; 64];
        let file = sys::openat(
            Some(self.proc.as_fd()),
            cpath(&mut p, &[N(pid.get()), S("/cgroup")])?,
            libc::O_RDONLY,
        )
        .ok()?;
        let mut buf = [0u8; 4096];
        let n = sys::pread0(file.as_fd(), &mut buf).ok()?;
        let text = if n < buf.len() {
            String::from_utf8_lossy(&buf[..n]).into_owned()
        } else {
            let mut all = Vec::new();
            std::io::Read::read_to_end(&mut std::fs::File::from(file), &mut all).ok()?;
            String::from_utf8_lossy(&all).into_owned()
        };
        let path = crate::owners::cgroup::path_of(&text)?;
        (!crate::owners::cgroup::is_host(path)).then(|| Arc::from(path))
    }

    /// The links of an `ns` directory below /proc (`links_in`).
    fn links(&mut self, ns_dir: &CStr) -> io::Result<ProcessLinks> {
        links_in(Some(self.proc.as_fd()), ns_dir)
    }

    /// Open `PID/SUB` (a directory of numbered entries: task, fd) and read
    /// its numbers into `self.names`.
    fn numbered(&mut self, pid: Pid, sub: &str) -> io::Result<OwnedFd> {
        let mut p = [0u8; 64];
        let path = cpath(&mut p, &[N(pid.get()), S("/"), S(sub)])
            .ok_or_else(|| io::Error::from_raw_os_error(libc::ENAMETOOLONG))?;
        let dir = sys::openat(Some(self.proc.as_fd()), path, libc::O_RDONLY | libc::O_DIRECTORY)?;
        self.names.clear();
        let names = &mut self.names;
        let _ = sys::for_each_dirent(dir.as_fd(), &mut self.dirbuf, |name, _| {
            if let Some(n) = parse::small_number(name) {
                names.push(n);
            }
        });
        Ok(dir)
    }

    fn threads(
        &mut self,
        pid: Pid,
        out: &mut Process,
        budget: Option<&StampBudget>,
        tasks: Option<&TaskTable>,
        stamps: &mut Vec<Stamp>,
        tracked: &mut bool,
    ) {
        if self.numbered(pid, "task").is_err() {
            *tracked = false;
            return;
        }
        let mut p = [0u8; 64];
        let tids = std::mem::take(&mut self.names);
        for tid in tids.iter().map(|&t| Pid(t)).filter(|&t| t != pid) {
            if let Some(b) = budget {
                self.stamp(stamps, tracked, b, tasks, (pid, Some(tid)));
            }
            let Some(path) = cpath(&mut p, &[N(pid.get()), S("/task/"), N(tid.get()), S("/ns")]) else {
                continue;
            };
            if let Ok(tl) = self.links(path) {
                if tl != out.links {
                    out.threads.push((tid, tl));
                }
            }
        }
        self.names = tids;
    }

    fn fds(&mut self, pid: Pid, out: &mut Process) -> io::Result<()> {
        let dir = self.numbered(pid, "fd")?;
        let mut p = [0u8; 64];
        for &fd in &self.names {
            let Some(name) = cpath(&mut p, &[N(fd)]) else {
                continue;
            };
            // Judged by the file itself: a namespace file opened by a path
            // reads as that path (or `/` once detached).
            match nsfile::classify_fd(dir.as_fd(), name) {
                Some(nsfile::FdKind::Socket(sock)) => out.sockets.push((fd, sock)),
                Some(nsfile::FdKind::Namespace(ty, inode)) => out.ns_fds.push((fd, ty, inode)),
                None => {}
            }
        }
        Ok(())
    }
}

/// The links of an `ns` directory (relative to `dir`, else absolute); the
/// error of the last link that failed if none could be read.
fn links_in(dir: Option<BorrowedFd<'_>>, ns_dir: &CStr) -> io::Result<ProcessLinks> {
    let dir = sys::openat(dir, ns_dir, libc::O_RDONLY | libc::O_DIRECTORY)?;
    let mut links = ProcessLinks::default();
    let mut buf = [0u8; 64];
    let (mut any, mut failed) = (false, None);
    for (i, name) in LINK_CNAMES.iter().enumerate() {
        match sys::readlinkat(dir.as_fd(), name, &mut buf) {
            Ok(target) => {
                if let Some((_, inode)) = parse::ns_link(target) {
                    links.0[i] = u32::try_from(inode.get()).unwrap_or(0);
                    any = true;
                }
            }
            Err(e) => failed = Some(e),
        }
    }
    match (any, failed) {
        (true, _) => Ok(links),
        (false, Some(e)) => Err(e),
        (false, None) => Err(io::Error::from_raw_os_error(libc::ENOENT)),
    }
}

/// Our own thread's links, as /proc reads them (zeros where unreadable).
pub(super) fn own_thread_links() -> ProcessLinks {
    links_in(None, c"/proc/thread-self/ns").unwrap_or_default()
}

/// Process `pid`'s links, as /proc reads them (zeros where unreadable).
#[cfg(test)]
pub(super) fn links_by_readlink(pid: Pid) -> ProcessLinks {
    let path = std::ffi::CString::new(format!("/proc/{pid}/ns")).unwrap_or_default();
    links_in(None, &path).unwrap_or_default()
}

/// Walk `pids` in parallel, returning what each live process holds, in PID
/// order. `skip_fds_of` leaves out one process's descriptors (the daemon's);
/// with a budget, processes are stamped; `tasks`, where given, is the
/// task table their links and stamps come from. A process that does not
/// answer (inside an execve that is itself stuck) is left out, and skipped
/// by later walks until it answers (`crate::bounded`).
pub fn walk_parallel(
    proc: &Arc<OwnedFd>,
    pids: &[Pid],
    skip_fds_of: Option<Pid>,
    budget: Option<&Arc<StampBudget>>,
    cgroups: &CgroupsOf,
    tasks: Option<Arc<TaskTable>>,
) -> Vec<(Pid, Process)> {
    let items: Vec<(String, Pid)> = pids.iter().map(|&p| (stuck_key(p), p)).collect();
    let (proc, budget, cgroups) = (proc.clone(), budget.cloned(), cgroups.clone());
    let threads = crate::parallel::threads();
    let read = crate::bounded::map(
        "reading processes",
        items,
        threads,
        crate::bounded::STALL,
        move || Walker::new(proc.clone()),
        move |w, pid| {
            let mine = skip_fds_of == Some(pid);
            w.process(pid, !mine, budget.as_deref().filter(|_| !mine), &cgroups, tasks.as_deref())
        },
    );
    let mut out = Vec::with_capacity(pids.len());
    for (&pid, answer) in pids.iter().zip(read) {
        match answer {
            Some(Ok(p)) => out.push((pid, p)),
            // Gone between the listing and the read: nothing to say.
            Some(Err(Error::Vanished { .. })) | None => {}
            Some(Err(e)) => log::debug!("{e}"),
        }
    }
    out
}

/// How work on a process is named when it gets stuck.
pub fn stuck_key(pid: Pid) -> String {
    format!("process {pid} (/proc/{pid})")
}

#[cfg(test)]
#[path = "procfs_tests.rs"]
mod tests;
