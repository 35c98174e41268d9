//! The seam between a discovery pass and the host: everything a pass asks
//! the kernel, as one narrow trait (`Kernel`), with `Host`, the real
//! implementation over `sys`, `procfs`, `mounts` and `nsfile`. The pass
//! itself (what is a member, a holder, a pin, an owner; what may be reused
//! from the last pass) is written against the trait, so it is unit-tested
//! on an in-memory host (`discovery::fake`) without root.

use super::mounts::{self, Reader, Table};
use super::parse::{self, NsfsMount};
use super::procfs::{self, CgroupsOf, Process, StampBudget};
use super::task_table::{self, Records, TaskTable};
use super::{nsfile, Error, Result};
use crate::locks::Locked;
use crate::model::{Inode, NsType, Pid};
use crate::sys;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;
use std::sync::{Arc, Mutex};

/// What the kernel says about one namespace's place in the hierarchy, with
/// its owner and parent opened (`N`: an opened namespace).
pub struct Relations<N> {
    pub ty: NsType,
    pub id: Option<u64>,
    /// The owning user namespace, opened, with its inode.
    pub owner: Option<(N, Inode)>,
    /// The parent pid namespace (pid only; a user namespace's parent is its owner).
    pub parent: Option<(N, Inode)>,
    pub owner_uid: Option<u32>,
}

/// Everything a discovery pass reads. Calls that may wait on another
/// user's process or path are made from `bounded` work by the pass.
pub trait Kernel: Clone + Send + Sync + 'static {
    /// An opened namespace: what keeps it reachable while the pass runs.
    type Ns: Send + 'static;

    /// Our own PID.
    fn own_pid(&self) -> Pid;
    /// Our own mount namespace.
    fn own_mntns(&self) -> Result<Inode>;
    /// Whether we may read every process (else the snapshot is partial).
    fn sees_everything(&self) -> bool;
    /// Room in the file table for `n` more descriptors (a hint).
    fn reserve_fds(&self, _n: usize) {}
    /// Every PID in /proc.
    fn list_pids(&self, capacity: usize) -> Result<Vec<Pid>>;
    /// The last PID handed out in our pid namespace, where /proc says it.
    fn last_pid(&self) -> Option<Pid>;
    /// The processes there now whose PIDs were handed out after `from` up
    /// to `to` (threads left out), ascending; None when it cannot tell
    /// (list /proc instead).
    fn processes_made_between(&self, from: Pid, to: Pid) -> Option<Vec<Pid>>;
    /// Those of `pids` that are processes now.
    fn still_there(&self, pids: &[Pid]) -> Vec<Pid>;
    /// For each process read before: whether every task of it is still
    /// there and has not run since (its stamps).
    fn still_unchanged(&self, procs: &[Option<&Process>]) -> Vec<bool>;
    /// Read `pids` (those gone are left out); `skip_fds_of` leaves out one
    /// process's descriptors; with a budget, each task is stamped; the
    /// cgroup of those `cgroups` wants.
    fn read_processes(
        &self,
        pids: &[Pid],
        skip_fds_of: Option<Pid>,
        budget: Option<&Arc<StampBudget>>,
        cgroups: &CgroupsOf,
    ) -> Vec<(Pid, Process)>;
    /// The network namespace of each of `pid`'s sockets (fd, socket inode),
    /// opened, in order; None where the descriptor is no longer that socket.
    fn socket_netns(&self, pid: Pid, sockets: &[(i32, u64)]) -> Vec<Option<(Self::Ns, Inode)>>;
    /// Whether mount namespace `mnt_ns_id` has exactly `mounts` now.
    fn mounts_still(&self, mnt_ns_id: u64, mounts: &[u64]) -> bool;
    /// Whether it is known, without reading them, that no mount came or
    /// went in any of these mount namespaces since their tables were read
    /// (false: ask `mounts_still`).
    fn tables_unchanged_since_read(&self, _mnt_ns_ids: &[u64]) -> bool {
        false
    }
    /// The nsfs mounts of mount namespace `mntns` through `reader`, and
    /// `with_table` what tells a later pass that they are unchanged.
    fn read_mounts(&self, reader: Reader, mntns: Inode, with_table: bool) -> (Vec<NsfsMount>, Option<Table>);
    /// The nsfs mounts of a mount namespace no process is in, each opened
    /// where `wants_fd` says (a namespace reached another way needs none:
    /// an open file would keep that mount busy).
    fn read_inside(
        &self,
        mntns: &Self::Ns,
        wants_fd: &(dyn Fn(Inode) -> bool + Sync),
    ) -> io::Result<Vec<(NsfsMount, Option<Self::Ns>)>>;
    /// Open the namespace at `path`, only if it is still `inode`.
    fn open(&self, path: &Path, inode: Inode) -> Option<Self::Ns>;
    /// Its owner, parent, id and owner uid.
    fn relations(&self, ns: &Self::Ns, ty: NsType) -> Relations<Self::Ns>;
}

/// The real host: /proc, nsfs ioctls, listmount, pidfd_getfd.
#[derive(Clone, Debug, Default)]
pub struct Host {
    /// The task counters `still_unchanged` read last. Reads of processes
    /// that follow stamp the tasks it lists from it: read before their
    /// links, as a stamp must be (an older stamp only makes a later check
    /// more likely to read a task again).
    counters: Arc<Mutex<Option<Arc<TaskTable>>>>,
}

/// Whether `pid` is a process now (a thread group's leader, as /proc
/// lists them): pidfd_open(2) refuses a PID no task has (ESRCH) and a
/// thread that does not lead its group (ENOENT on 6.18, EINVAL before).
/// None if it cannot tell.
fn is_process(pid: Pid) -> Option<bool> {
    match sys::pidfd_open(pid) {
        Ok(_) => Some(true),
        Err(e) if matches!(e.raw_os_error(), Some(libc::ESRCH | libc::ENOENT | libc::EINVAL)) => Some(false),
        Err(_) => None,
    }
}

fn open_proc() -> Result<OwnedFd> {
    let path = Path::new("/proc");
    sys::open_path(path, libc::O_RDONLY | libc::O_DIRECTORY)
        .map_err(|source| Error::Io { path: path.into(), source })
}

impl Host {
    /// `still_unchanged` by reading each stamped task's schedstat file
    /// (where the one-read task counters are not available).
    pub fn still_unchanged_by_files(procs: &[Option<&Process>]) -> Vec<bool> {
        let Ok(proc) = open_proc() else { return vec![false; procs.len()] };
        let proc = proc.as_fd();
        crate::parallel::map(procs, |p| p.is_some_and(|p| p.stamps_hold(|s| s.unchanged(proc))))
    }
}

impl Kernel for Host {
    type Ns = OwnedFd;

    fn own_pid(&self) -> Pid {
        sys::getpid()
    }

    fn own_mntns(&self) -> Result<Inode> {
        let st = sys::fstatat(None, c"/proc/self/ns/mnt")
            .map_err(|source| Error::Io { path: "/proc/self/ns/mnt".into(), source })?;
        Ok(Inode::of(&st))
    }

    fn sees_everything(&self) -> bool {
        sys::geteuid() == 0
    }

    fn reserve_fds(&self, n: usize) {
        sys::reserve_fds(n);
    }

    fn list_pids(&self, capacity: usize) -> Result<Vec<Pid>> {
        let proc = open_proc()?;
        let mut buf = Vec::new();
        let mut pids = Vec::with_capacity(capacity);
        sys::for_each_dirent(proc.as_fd(), &mut buf, |name, _| {
            if let Some(p) = parse::pid_name(name) {
                pids.push(p);
            }
        })
        .map_err(|source| Error::Io { path: "/proc".into(), source })?;
        Ok(pids)
    }

    fn last_pid(&self) -> Option<Pid> {
        let proc = open_proc().ok()?;
        let mut buf = [0u8; 16];
        let me = sys::readlinkat(proc.as_fd(), c"self", &mut buf).ok()?;
        if parse::pid_name(me) != Some(sys::getpid()) {
            return None;
        }
        let f = sys::openat(Some(proc.as_fd()), c"loadavg", libc::O_RDONLY).ok()?;
        let mut text = [0u8; 128];
        let n = sys::pread0(f.as_fd(), &mut text).ok()?;
        parse::loadavg_last_pid(&text[..n])
    }

    fn processes_made_between(&self, from: Pid, to: Pid) -> Option<Vec<Pid>> {
        let mut made = Vec::new();
        for pid in (from.get() + 1..=to.get()).map(Pid) {
            match is_process(pid) {
                Some(true) => made.push(pid),
                Some(false) => {}
                None => return None,
            }
        }
        Some(made)
    }

    fn still_there(&self, pids: &[Pid]) -> Vec<Pid> {
        pids.iter().copied().filter(|&p| is_process(p) != Some(false)).collect()
    }

    fn still_unchanged(&self, procs: &[Option<&Process>]) -> Vec<bool> {
        // Nothing remembered (a first pass, `nsfuse scan`): nothing to check.
        if procs.iter().all(Option::is_none) {
            return vec![false; procs.len()];
        }
        // One read for every task on the host, where the kernel allows it.
        if let Some(now) = task_table::now(Records::Counters) {
            let same = procs.iter().map(|p| p.is_some_and(|p| p.stamps_hold(|s| now.unchanged(s)))).collect();
            *self.counters.locked() = Some(Arc::new(now));
            return same;
        }
        Host::still_unchanged_by_files(procs)
    }

    fn read_processes(
        &self,
        pids: &[Pid],
        skip_fds_of: Option<Pid>,
        budget: Option<&Arc<StampBudget>>,
        cgroups: &CgroupsOf,
    ) -> Vec<(Pid, Process)> {
        // Many processes: their links from one read of every task. Else
        // their stamps from the counters read last.
        let with_links =
            task_table::worth_reading_for(pids.len()).then(|| task_table::now(Records::WithLinks));
        let tasks = match with_links.flatten() {
            Some(t) => Some(Arc::new(t)),
            None => self.counters.locked().clone(),
        };
        match open_proc() {
            Ok(proc) => procfs::walk_parallel(&Arc::new(proc), pids, skip_fds_of, budget, cgroups, tasks),
            Err(e) => {
                log::warn!("{e}");
                Vec::new()
            }
        }
    }

    fn socket_netns(&self, pid: Pid, sockets: &[(i32, u64)]) -> Vec<Option<(OwnedFd, Inode)>> {
        let pidfd = sys::pidfd_open(pid).ok();
        sockets
            .iter()
            .map(|&(fd, sock_inode)| {
                // Checked to be the socket the walk listed: the number may
                // have been closed and reused since.
                let sock = sys::pidfd_getfd(pidfd.as_ref()?.as_fd(), fd).ok()?;
                if sys::fstat(sock.as_fd()).ok()?.st_ino != sock_inode {
                    return None;
                }
                let netns = sys::socket_netns(sock.as_fd()).ok()?;
                let inode = Inode::of(&sys::fstat(netns.as_fd()).ok()?);
                Some((netns, inode))
            })
            .collect()
    }

    fn mounts_still(&self, mnt_ns_id: u64, mounts: &[u64]) -> bool {
        Table::still(mnt_ns_id, mounts)
    }

    fn tables_unchanged_since_read(&self, mnt_ns_ids: &[u64]) -> bool {
        super::mount_watch::unchanged_since_read(mnt_ns_ids)
    }

    fn read_mounts(&self, reader: Reader, mntns: Inode, with_table: bool) -> (Vec<NsfsMount>, Option<Table>) {
        mounts::read(reader, mntns, with_table)
    }

    fn read_inside(
        &self,
        mntns: &OwnedFd,
        wants_fd: &(dyn Fn(Inode) -> bool + Sync),
    ) -> io::Result<Vec<(NsfsMount, Option<OwnedFd>)>> {
        let proc = open_proc().map_err(|Error::Io { source, .. }| source)?;
        mounts::read_inside(proc.as_fd(), mntns.as_fd(), wants_fd)
    }

    fn open(&self, path: &Path, inode: Inode) -> Option<OwnedFd> {
        nsfile::open(path, inode)
    }

    fn relations(&self, ns: &OwnedFd, ty: NsType) -> Relations<OwnedFd> {
        let fd = ns.as_fd();
        let with_inode = |f: OwnedFd| sys::fstat(f.as_fd()).ok().map(|st| (f, Inode::of(&st)));
        Relations {
            ty,
            id: sys::ns_get_id(fd).ok(),
            owner: sys::ns_get_userns(fd).ok().and_then(with_inode),
            parent: (ty == NsType::Pid).then(|| sys::ns_get_parent(fd).ok().and_then(with_inode)).flatten(),
            owner_uid: (ty == NsType::User).then(|| sys::ns_get_owner_uid(fd).ok()).flatten(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_one_read_check_and_the_per_file_check_agree() {
        if sys::geteuid() != 0 {
            return;
        }
        let mut sleeper = std::process::Command::new("sleep").arg("10").spawn().unwrap();
        let mut busy = std::process::Command::new("sh").args(["-c", "while :; do :; done"]).spawn().unwrap();
        let pids = [Pid(sleeper.id() as i32), Pid(busy.id() as i32)];
        std::thread::sleep(std::time::Duration::from_millis(50));
        let budget = Arc::new(StampBudget::new(16));
        let read = Host::default().read_processes(&pids, None, Some(&budget), &CgroupsOf::Every);
        std::thread::sleep(std::time::Duration::from_millis(50));
        let procs: Vec<Option<&Process>> = read.iter().map(|(_, p)| Some(p)).collect();
        let by_counters = task_table::now(Records::Counters).map(|now| {
            procs.iter().map(|p| p.is_some_and(|p| p.stamps_hold(|s| now.unchanged(s)))).collect::<Vec<_>>()
        });
        let by_files = Host::still_unchanged_by_files(&procs);
        let _ = (sleeper.kill(), busy.kill());
        let _ = (sleeper.wait(), busy.wait());
        assert_eq!(read.len(), 2);
        assert_eq!(by_files, vec![true, false], "the sleeper has not run; the busy one has");
        assert_eq!(by_counters, Some(by_files));
    }

    #[test]
    fn the_probe_finds_a_new_process_and_not_a_new_thread() {
        let before = Host::default().last_pid().expect("/proc/loadavg");
        let (tx, rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::spawn(move || {
            let _ = tx.send(sys::gettid());
            let _ = stop_rx.recv();
        });
        let tid = rx.recv().expect("thread id");
        let mut child = std::process::Command::new("sleep").arg("30").spawn().expect("sleep");
        let child_pid = Pid(child.id() as i32);
        let after = Host::default().last_pid().expect("/proc/loadavg");
        let made = Host::default().processes_made_between(before, after);
        let gone = Host::default().still_there(&[child_pid, tid]);
        let _ = child.kill();
        let _ = child.wait();
        let _ = stop_tx.send(());
        let _ = thread.join();
        if after < before {
            return; // PIDs wrapped around meanwhile: nothing to say.
        }
        let made = made.expect("a short range is probed");
        assert!(made.contains(&child_pid), "{made:?} lacks {child_pid}");
        assert!(!made.contains(&tid), "{made:?} has thread {tid}");
        assert_eq!(gone, vec![child_pid], "a thread is not a process");
        assert_eq!(Host::default().still_there(&[child_pid]), Vec::<Pid>::new(), "reaped");
    }
}
