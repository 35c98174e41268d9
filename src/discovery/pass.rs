//! One discovery pass: walks processes, sockets, mount namespaces and the
//! ownership hierarchy, and assembles a `Snapshot`. Given what the previous
//! pass left (`Memory`), it re-reads only what can have changed: processes
//! whose stamps moved or that are new, mount namespaces whose mount ids
//! changed, and the relations of namespaces it cannot prove are the same
//! ones as last time (inode numbers are reused as soon as freed).

use super::assemble;
use super::mounts::{self, Reader, Table};
use super::procfs::{self, StampBudget};
use super::{nsfile, parse, Error, Result, ScanOptions};
use crate::bounded;
use crate::model::{
    Holder, Inode, Namespace, NsType, Pid, Pin, ProcessLinks, ProcessTable, Snapshot, LINK_NAMES, LINK_TYPES,
};
use crate::sys;
// Maps keyed by inode or PID use FxHash: a pass hashes a few hundred
// thousand integers, and SipHash's resistance to chosen keys buys nothing
// against numbers the kernel hands out.
use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};
use std::collections::BTreeMap;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

/// What a pass keeps for the next one.
#[derive(Default)]
pub struct Memory {
    /// Every process read, with its stamps.
    pub procs: HashMap<Pid, Record>,
    /// Every member-read mount namespace whose mounts could be listed.
    pub tables: HashMap<Inode, Table>,
    /// Relations of every namespace whose relations were read.
    pub relations: HashMap<Inode, Rel>,
    /// The namespaces of the last snapshot, to share those that have not
    /// changed.
    pub namespaces: HashMap<Inode, Arc<Namespace>>,
    /// The /proc listing of the last pass and the last PID handed out then
    /// (`/proc/loadavg`): while every PID handed out since went to our own
    /// worker threads, no process was made, so the listing is still whole
    /// (those gone fail their stamps) and /proc need not be read again.
    pub listing: Option<(i32, Vec<Pid>)>,
    /// The last snapshot, and whether every mount namespace it read has a
    /// `Table` (so the tables alone prove the pins unchanged): a refresh
    /// that finds every process holding what it held, no process made or
    /// gone and every table unchanged serves it again instead of deriving
    /// the same model from every record (`Pass::unchanged`).
    pub last: Option<Snapshot>,
    pub tables_complete: bool,
}

impl Memory {
    /// Open files held (by stamps).
    pub fn stamp_files(&self) -> usize {
        self.procs.values().flat_map(|r| &r.found.stamps).filter(|s| s.holds_file()).count()
    }
}

/// One process as read, with the network namespaces of its sockets.
pub struct Record {
    found: procfs::Process,
    socket_netns: Vec<(i32, Inode)>,
}

impl Record {
    fn unchanged(&self, proc: BorrowedFd<'_>) -> bool {
        !self.found.stamps.is_empty() && self.found.stamps.iter().all(|s| s.unchanged(proc))
    }
}

/// A namespace's place in the hierarchy, as the kernel said.
#[derive(Clone, Copy)]
pub struct Rel {
    ty: NsType,
    id: Option<u64>,
    owner: Option<Inode>,
    parent: Option<Inode>,
    owner_uid: Option<u32>,
}

/// Paths to open a namespace by, best first.
type PathsToOpen = [Option<PathBuf>; 2];

/// The namespace `inode` opened by the first of `paths` that still leads to
/// it. May wait on a process stuck in execve: call it from bounded work.
fn open_first(paths: &PathsToOpen, inode: Inode) -> Option<OwnedFd> {
    paths.iter().flatten().find_map(|p| nsfile::open(p, inode))
}

/// How work that opens `paths` is named if it gets stuck: by the process
/// the first path goes through, else by the namespace.
fn stuck_key_of(paths: &PathsToOpen, what: &str, inode: Inode) -> String {
    match paths[0].as_deref().and_then(parse::proc_pid) {
        Some(pid) => procfs::stuck_key(pid),
        None => format!("{what} {inode}"),
    }
}

/// How good a path is for reaching a namespace (lower is better): the `ns`
/// symlink prefers a visible pin, then a member's link, then a holder's fd.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum PathRank {
    Pin = 0,
    Member = 1,
    Fd = 2,
    Foreign = 3,
}

/// What one pass did.
pub struct Outcome {
    pub snapshot: Snapshot,
    pub memory: Memory,
    /// The processes it read, in /proc order (the rest were remembered).
    pub read: Vec<Pid>,
    /// Whether it found nothing changed and served the last snapshot again.
    pub kept_last: bool,
}

/// Run one pass. `budget` (when tracking) caps the stamps it may open.
pub fn run(opts: &ScanOptions, prev: Memory, budget: Option<usize>) -> Result<Outcome> {
    let started = Instant::now();
    let taken_at = SystemTime::now();
    let mut s = Pass::new(opts, prev, budget.is_some())?;
    let mut phases = [Duration::ZERO; 5];
    let mut t = Instant::now();
    let mut lap = |i: usize| {
        phases[i] = t.elapsed();
        t = Instant::now();
    };
    let read = s.walk_processes(budget)?;
    lap(0);
    if let Some((mut snap, memory)) = s.unchanged.take() {
        snap.taken_at = Some(taken_at);
        snap.duration = started.elapsed();
        log::debug!(
            "pass: nothing changed ({} processes, {} read) in {:?}",
            snap.processes.len(),
            read.len(),
            snap.duration
        );
        return Ok(Outcome { snapshot: snap, memory, read, kept_last: true });
    }
    s.resolve_sockets();
    lap(1);
    s.walk_mount_namespaces();
    lap(2);
    s.resolve_owners();
    lap(3);
    let tracking = s.tracking;
    let (mut snap, mut memory) = s.finish();
    lap(4);
    if tracking {
        memory.last = Some(snap.clone());
    }
    snap.taken_at = Some(taken_at);
    snap.duration = started.elapsed();
    log::debug!(
        "pass: {} namespaces, {} processes ({} read) in {:?} (procs {:?}, sockets {:?}, mounts {:?}, owners {:?}, model {:?})",
        snap.namespaces.len(),
        snap.processes.len(),
        read.len(),
        snap.duration,
        phases[0],
        phases[1],
        phases[2],
        phases[3],
        phases[4]
    );
    Ok(Outcome { snapshot: snap, memory, read, kept_last: false })
}

struct Pass<'o> {
    opts: &'o ScanOptions,
    proc: Arc<OwnedFd>,
    own_pid: Pid,
    own_mntns: Inode,
    nss: HashMap<Inode, Namespace>,
    ranks: HashMap<Inode, PathRank>,
    /// A member's path for each namespace whose best path became a pin:
    /// what the pass itself opens, since an open file on a pin keeps it
    /// mounted (a user's plain `umount` of it would fail with EBUSY).
    member_paths: HashMap<Inode, PathBuf>,
    procs: Vec<(Pid, ProcessLinks)>,
    /// Processes not in the host's own cgroup, with their cgroup path.
    cgroups: Vec<(Pid, Arc<str>)>,
    /// Every task found in a namespace, as (namespace, (PID, TID)), and
    /// every other holder, as (namespace, holder): one list each, sorted
    /// and cut per namespace at the end, so a pass makes a few large
    /// allocations rather than two per namespace. A namespace's
    /// `processes` and `task` holders both come from the first list.
    tasks: Vec<(Inode, (Pid, Pid))>,
    holders: Vec<(Inode, Holder)>,
    /// Namespaces reachable only through a descriptor we hold.
    fds: HashMap<Inode, OwnedFd>,
    /// Sockets of processes read in this pass: (pid, fd, socket inode).
    sockets: Vec<(Pid, i32, u64)>,
    mntns_member: HashMap<Inode, Pid>,
    prev: Memory,
    next: Memory,
    /// Namespaces proven the same as in the previous pass: held by a
    /// process that has not run, or a mount that is still there.
    same: HashSet<Inode>,
    /// Whether what this pass reads is kept for the next (a tracker's);
    /// a one-off scan keeps nothing in `next`.
    tracking: bool,
    /// Whether the /proc listing is the last pass's (no process made).
    listing_reused: bool,
    /// Whether every mount namespace read got a `Table`.
    tables_complete: bool,
    /// Set when nothing changed since the last pass: its snapshot and the
    /// memory for the next (see `Memory::last`).
    unchanged: Option<(Snapshot, Memory)>,
}

impl<'o> Pass<'o> {
    fn new(opts: &'o ScanOptions, prev: Memory, tracking: bool) -> Result<Self> {
        let proc_path = Path::new("/proc");
        let proc = sys::open_path(proc_path, libc::O_RDONLY | libc::O_DIRECTORY)
            .map_err(|source| Error::Io { path: proc_path.into(), source })?;
        let own_mnt = Path::new("/proc/self/ns/mnt");
        let own_mntns = sys::fstatat(None, c"/proc/self/ns/mnt")
            .map_err(|source| Error::Io { path: own_mnt.into(), source })?
            .st_ino;
        // A table large enough for the pass, grown while few threads share it.
        sys::reserve_fds(3 * prev.namespaces.len() + 4096);
        // Sized like the last pass: a quiet host's refresh grows nothing.
        let (n_procs, n_nss) = (prev.procs.len(), prev.namespaces.len());
        Ok(Pass {
            opts,
            proc: Arc::new(proc),
            own_pid: sys::getpid(),
            own_mntns,
            nss: HashMap::with_capacity_and_hasher(n_nss, Default::default()),
            ranks: HashMap::with_capacity_and_hasher(n_nss, Default::default()),
            member_paths: HashMap::default(),
            procs: Vec::with_capacity(n_procs),
            cgroups: Vec::new(),
            tasks: Vec::with_capacity(n_procs * 9),
            holders: Vec::new(),
            fds: HashMap::default(),
            sockets: Vec::new(),
            mntns_member: HashMap::default(),
            next: Memory {
                procs: HashMap::with_capacity_and_hasher(
                    if tracking { n_procs } else { 0 },
                    Default::default(),
                ),
                ..Memory::default()
            },
            prev,
            same: HashSet::with_capacity_and_hasher(n_nss, Default::default()),
            tracking,
            listing_reused: false,
            tables_complete: true,
            unchanged: None,
        })
    }

    /// Record that namespace (type, inode) exists.
    fn note(&mut self, ty: NsType, inode: Inode) -> &mut Namespace {
        self.nss.entry(inode).or_insert_with(|| Namespace::new(ty, inode))
    }

    /// Record that namespace (type, inode) exists, reachable at the path
    /// `path` makes (made only when it is the best path so far).
    fn note_at(
        &mut self,
        ty: NsType,
        inode: Inode,
        rank: PathRank,
        path: impl FnOnce() -> PathBuf,
    ) -> &mut Namespace {
        let was = self.ranks.get(&inode).copied();
        let ns = self.nss.entry(inode).or_insert_with(|| Namespace::new(ty, inode));
        if was.is_none_or(|r| rank < r) {
            self.ranks.insert(inode, rank);
            let old = ns.path.replace(path());
            if let (Some(PathRank::Member), Some(old)) = (was, old) {
                self.member_paths.insert(inode, old);
            }
        }
        ns
    }

    /// Every process: the unchanged ones from memory, the rest read now.
    /// Returns those read.
    fn walk_processes(&mut self, budget: Option<usize>) -> Result<Vec<Pid>> {
        let pids = self.list_processes()?;
        // A remembered process is re-read unless its stamps prove it has not run.
        let known: Vec<(Pid, Option<Record>)> =
            pids.into_iter().map(|p| (p, self.prev.procs.remove(&p))).collect();
        let proc = self.proc.as_fd();
        let same = crate::par::map(&known, |(_, rec)| rec.as_ref().is_some_and(|r| r.unchanged(proc)));
        let (mut kept, mut dirty, mut before) =
            (Vec::with_capacity(known.len()), Vec::new(), HashMap::default());
        for ((pid, rec), same) in known.into_iter().zip(same) {
            match rec {
                Some(rec) if same => kept.push((pid, rec)),
                Some(rec) => {
                    before.insert(pid, rec);
                    dirty.push(pid);
                }
                None => dirty.push(pid),
            }
        }
        // What is left in memory are processes that are gone: drop their stamps.
        let gone = !self.prev.procs.is_empty();
        self.prev.procs = HashMap::default();
        let held: usize = kept.iter().flat_map(|(_, r)| &r.found.stamps).filter(|s| s.holds_file()).count();
        let budget = budget.map(|b| Arc::new(StampBudget::new(b.saturating_sub(held))));
        let skip = self.opts.skip_own_fds.then_some(self.own_pid);
        let read = procfs::walk_parallel(&self.proc, &dirty, skip, budget.as_ref());
        // Every process that ran was read again and holds what it held (a
        // PID never readable, like an init we may not inspect, stays so).
        let all_alike = read.len() == before.len()
            && read
                .iter()
                .all(|(pid, found)| before.get(pid).is_some_and(|b| b.found.holds_the_same_as(found)));
        let quiet = !gone && all_alike && self.listing_reused && self.prev.tables_complete;
        if quiet && self.prev.last.is_some() && self.tables_unchanged() {
            self.keep_last(kept, read, before);
            return Ok(dirty);
        }
        for (pid, rec) in kept {
            self.add_record(pid, rec, true);
        }
        for (pid, found) in read {
            self.add_record(pid, Record { found, socket_netns: Vec::new() }, false);
        }
        Ok(dirty)
    }

    /// Whether every mount namespace the last pass read still has the
    /// mounts it had (listmount ids; bounded, as the reads are).
    fn tables_unchanged(&self) -> bool {
        let items: Vec<(String, (u64, Vec<u64>))> =
            self.prev.tables.iter().map(|(ns, t)| (format!("mount namespace {ns}"), t.ids())).collect();
        let threads = crate::par::threads();
        let same = bounded::map(
            "checking mounts",
            items,
            threads,
            bounded::STALL,
            || (),
            |_, (id, mounts)| mounts::Table::still(id, &mounts),
        );
        same.iter().all(|s| *s == Some(true))
    }

    /// Nothing changed: the last snapshot serves again, and the memory
    /// carries over with the records just read (their new stamps, their
    /// sockets' namespaces as before).
    fn keep_last(
        &mut self,
        kept: Vec<(Pid, Record)>,
        read: Vec<(Pid, procfs::Process)>,
        mut before: HashMap<Pid, Record>,
    ) {
        let mut next = std::mem::take(&mut self.next);
        next.procs.extend(kept);
        for (pid, found) in read {
            let socket_netns = before.remove(&pid).map(|b| b.socket_netns).unwrap_or_default();
            next.procs.insert(pid, Record { found, socket_netns });
        }
        let prev = &mut self.prev;
        next.tables = std::mem::take(&mut prev.tables);
        next.relations = std::mem::take(&mut prev.relations);
        next.namespaces = std::mem::take(&mut prev.namespaces);
        next.tables_complete = true;
        next.last = prev.last.take();
        if let Some(snap) = next.last.clone() {
            self.unchanged = Some((snap, next));
        }
    }

    /// Every PID in /proc: the last pass's listing when no PID was handed
    /// out since (a quiet host's refresh skips the largest directory read).
    fn list_processes(&mut self) -> Result<Vec<Pid>> {
        let last_pid = self.tracking.then(|| self.last_pid()).flatten();
        if let (Some(now), Some((then, pids))) = (last_pid, self.prev.listing.take()) {
            if crate::own_threads::only_ours_between(then, now) {
                self.next.listing = Some((now, pids.clone()));
                self.listing_reused = true;
                return Ok(pids);
            }
        }
        let mut buf = Vec::new();
        let mut pids = Vec::with_capacity(self.prev.procs.len() + 64);
        sys::for_each_dirent(self.proc.as_fd(), &mut buf, |name, _| {
            if let Some(p) = parse::pid_name(name) {
                pids.push(p);
            }
        })
        .map_err(|source| Error::Io { path: "/proc".into(), source })?;
        // (Read before the listing: a PID handed out between the two reads
        // makes the next pass list again.)
        self.next.listing = last_pid.map(|n| (n, pids.clone()));
        Ok(pids)
    }

    /// The last PID handed out in our pid namespace, if /proc is that of
    /// our pid namespace (`/proc/self` is our PID) and says so.
    fn last_pid(&self) -> Option<i32> {
        let mut buf = [0u8; 16];
        let me = sys::readlinkat(self.proc.as_fd(), c"self", &mut buf).ok()?;
        if parse::pid_name(me) != Some(self.own_pid) {
            return None;
        }
        let f = sys::openat(Some(self.proc.as_fd()), c"loadavg", libc::O_RDONLY).ok()?;
        let mut text = [0u8; 128];
        let n = sys::pread0(f.as_fd(), &mut text).ok()?;
        parse::loadavg_last_pid(&text[..n])
    }

    /// Add what one process holds; `same` when it was not re-read.
    fn add_record(&mut self, pid: Pid, rec: Record, same: bool) {
        let found = &rec.found;
        let links = found.links;
        self.procs.push((pid, links));
        if let Some(c) = &found.cgroup {
            self.cgroups.push((pid, c.clone()));
        }
        for (i, name) in LINK_NAMES.iter().enumerate().take(8) {
            if let Some(inode) = links.get(i) {
                self.note_at(LINK_TYPES[i], inode, PathRank::Member, || member_path(pid, name));
                self.tasks.push((inode, (pid, pid)));
            }
        }
        if let Some(m) = links.get(NsType::Mnt.index()) {
            self.mntns_member.entry(m).or_insert(pid);
        }
        self.add_for_children(pid, None, &links);
        for (tid, tlinks) in &found.threads {
            for i in 0..8 {
                match tlinks.get(i) {
                    Some(inode) if Some(inode) != links.get(i) => {
                        let path = || format!("/proc/{pid}/task/{tid}/ns/{}", LINK_NAMES[i]).into();
                        self.note_at(LINK_TYPES[i], inode, PathRank::Member, path);
                        self.tasks.push((inode, (pid, *tid)));
                    }
                    _ => {}
                }
            }
            self.add_for_children(pid, Some((*tid, &links)), tlinks);
        }
        for &(fd, ty, inode) in &found.ns_fds {
            self.note_at(ty, inode, PathRank::Fd, || format!("/proc/{pid}/fd/{fd}").into());
            self.holders.push((inode, Holder::Fd { pid, fd }));
        }
        if same {
            for &(fd, netns) in &rec.socket_netns {
                self.note(NsType::Net, netns);
                self.holders.push((netns, Holder::Socket { pid, fd }));
            }
            let threads = found.threads.iter().flat_map(|(_, l)| l.0);
            let inodes = links.0.into_iter().chain(threads).filter(|&i| i != 0).map(Inode::from);
            self.same.extend(inodes);
            self.same.extend(found.ns_fds.iter().map(|&(_, _, i)| i));
            self.same.extend(rec.socket_netns.iter().map(|&(_, i)| i));
        } else {
            self.sockets.extend(found.sockets.iter().map(|&(fd, sock)| (pid, fd, sock)));
        }
        if self.tracking {
            self.next.procs.insert(pid, rec);
        }
    }

    /// pid_for_children / time_for_children that differ from the task's own
    /// (and, for a thread, from its process's).
    fn add_for_children(&mut self, pid: Pid, thread: Option<(Pid, &ProcessLinks)>, links: &ProcessLinks) {
        let process = thread.map(|(_, p)| p);
        for (child_idx, own_idx) in [(8, NsType::Pid.index()), (9, NsType::Time.index())] {
            let Some(inode) = links.get(child_idx) else {
                continue;
            };
            let same_as_process = process.is_some_and(|p| p.get(child_idx) == Some(inode));
            if Some(inode) == links.get(own_idx) || same_as_process {
                continue;
            }
            let name = LINK_NAMES[child_idx];
            let path = || match thread {
                Some((tid, _)) => PathBuf::from(format!("/proc/{pid}/task/{tid}/ns/{name}")),
                None => member_path(pid, name),
            };
            self.note_at(LINK_TYPES[child_idx], inode, PathRank::Member, path);
            // Several threads may give the same one: `finish` dedups.
            self.holders.push((inode, Holder::ForChildren { pid }));
        }
    }

    /// SIOCGSKNS on every socket of the processes read now, once per socket
    /// inode; each answer is kept with its process for later passes. Bounded:
    /// pidfd_getfd waits while its process is inside an execve.
    fn resolve_sockets(&mut self) {
        // (stuck key, (process, its sockets as (fd, socket inode))).
        type Sockets = (Pid, Vec<(i32, u64)>);
        let mut per_process: Vec<(String, Sockets)> = Vec::new();
        for (pid, fd, sock) in std::mem::take(&mut self.sockets) {
            match per_process.last_mut() {
                Some((_, (p, socks))) if *p == pid => socks.push((fd, sock)),
                _ => per_process.push((procfs::stuck_key(pid), (pid, vec![(fd, sock)]))),
            }
        }
        let found = bounded::map(
            "reading sockets",
            per_process,
            1,
            bounded::STALL,
            HashMap::<u64, Option<Inode>>::default,
            |seen, (pid, socks)| {
                let pidfd = sys::pidfd_open(pid).ok();
                let mut out = Vec::with_capacity(socks.len());
                for (fd, sock) in socks {
                    if let Some(&known) = seen.get(&sock) {
                        out.push((pid, fd, known, None));
                        continue;
                    }
                    let got = pidfd.as_ref().and_then(|p| socket_netns(p.as_fd(), fd, sock));
                    seen.insert(sock, got.as_ref().map(|g| g.1));
                    match got {
                        Some((netns, inode)) => out.push((pid, fd, Some(inode), Some(netns))),
                        None => out.push((pid, fd, None, None)),
                    }
                }
                out
            },
        );
        for (pid, fd, netns, netns_fd) in found.into_iter().flatten().flatten() {
            let Some(inode) = netns else { continue };
            if let (false, Some(f)) = (self.nss.contains_key(&inode), netns_fd) {
                self.fds.entry(inode).or_insert(f);
            }
            self.note(NsType::Net, inode);
            self.holders.push((inode, Holder::Socket { pid, fd }));
            if let Some(rec) = self.next.procs.get_mut(&pid) {
                rec.socket_netns.push((fd, inode));
            }
        }
    }

    /// nsfs bind mounts in our own mount namespace, then in every other
    /// mount namespace found, until no new one turns up. A namespace read
    /// through a member whose mounts are unchanged is not read again.
    fn walk_mount_namespaces(&mut self) {
        let own = self.own_mntns;
        self.note(NsType::Mnt, own);
        let mut done: HashSet<Inode> = HashSet::default();
        let mut first = true;
        loop {
            let mut todo: Vec<(String, Work)> = Vec::new();
            let pending: Vec<Inode> = if first {
                vec![own]
            } else {
                self.nss
                    .values()
                    .filter(|n| n.ns_type == NsType::Mnt && !done.contains(&n.inode))
                    .map(|n| n.inode)
                    .collect()
            };
            first = false;
            for mntns in pending {
                let reader = match (mntns == own, self.mntns_member.get(&mntns)) {
                    (true, _) => Some(Reader::Own),
                    (false, Some(&pid)) => Some(Reader::Member(pid)),
                    (false, None) => None,
                };
                let how = match reader {
                    Some(r) => How::Read(r, self.prev.tables.remove(&mntns)),
                    None => How::Inside(self.fds.remove(&mntns), self.paths_to_open(mntns)),
                };
                done.insert(mntns);
                todo.push((work_key(mntns, &how), Work { mntns, how }));
            }
            if todo.is_empty() {
                break;
            }
            let proc = self.proc.clone();
            let tracking = self.tracking;
            let threads = crate::par::threads();
            let found = bounded::map(
                "reading mount tables",
                todo,
                threads,
                bounded::STALL,
                || (),
                move |_, w| w.run(proc.as_fd(), tracking),
            );
            for (work, outcome) in found.into_iter().flatten() {
                self.add_mount_table(work, outcome);
            }
        }
    }

    fn add_mount_table(&mut self, work: Work, outcome: TableRead) {
        let mntns = work.mntns;
        match (work.how, outcome) {
            (How::Read(reader, Some(table)), TableRead::Unchanged) => {
                for m in &table.pins {
                    self.same.insert(m.inode);
                    self.add_pin(mntns, m.clone(), Some(reach(reader, m)), None);
                }
                self.next.tables.insert(mntns, table);
            }
            (How::Read(reader, _), TableRead::Read(pins, table)) => {
                for m in pins {
                    let path = reach(reader, &m);
                    self.add_pin(mntns, m, Some(path), None);
                }
                match table {
                    Some(t) => {
                        self.next.tables.insert(mntns, t);
                    }
                    None => self.tables_complete = false,
                }
            }
            (How::Inside(fd, _), TableRead::Inside(pins)) => {
                self.tables_complete = false;
                if let Some(fd) = fd {
                    self.fds.insert(mntns, fd);
                }
                for (m, fd) in pins {
                    self.add_pin(mntns, m, None, fd);
                }
            }
            _ => self.tables_complete = false,
        }
    }

    fn add_pin(
        &mut self,
        mntns: Inode,
        m: parse::NsfsMount,
        path: Option<(PathBuf, PathRank)>,
        fd: Option<OwnedFd>,
    ) {
        let known = self.nss.contains_key(&m.inode);
        let ns = match path {
            Some((p, rank)) => self.note_at(m.ns_type, m.inode, rank, || p),
            None => self.note(m.ns_type, m.inode),
        };
        ns.pins.push(Pin { mntns, path: m.mount_point.clone() });
        self.holders.push((m.inode, Holder::Mount { mntns, path: m.mount_point }));
        if let (false, Some(fd)) = (known, fd) {
            self.fds.insert(m.inode, fd);
        }
    }

    /// The paths the pass opens a namespace by, to try in turn: a
    /// member's before a pin (the pin still serves if the member is gone).
    fn paths_to_open(&self, inode: Inode) -> PathsToOpen {
        let path = self.nss.get(&inode).and_then(|n| n.path.clone());
        match self.member_paths.get(&inode) {
            Some(member) => [Some(member.clone()), path],
            None => [path, None],
        }
    }

    /// Extend `same` to the owners and parents of what is in it: a
    /// namespace holds its owner and parent alive.
    fn close_same_upwards(&mut self) {
        let mut todo: Vec<Inode> = self.same.iter().copied().collect();
        while let Some(i) = todo.pop() {
            let Some(r) = self.prev.relations.get(&i) else { continue };
            for up in [r.owner, r.parent].into_iter().flatten() {
                if self.prev.relations.contains_key(&up) && self.same.insert(up) {
                    todo.push(up);
                }
            }
        }
    }

    /// The remembered relations of `inode`, if it is provably the same
    /// namespace as when they were read.
    fn remembered(&self, inode: Inode, ty: NsType) -> Option<Rel> {
        let r = *self.prev.relations.get(&inode)?;
        let ups_known =
            [r.owner, r.parent].into_iter().flatten().all(|u| self.prev.relations.contains_key(&u));
        (self.same.contains(&inode) && r.ty == ty && ups_known).then_some(r)
    }

    /// Owners, parents and ids of everything found, adding any owner or
    /// parent not yet seen (a user namespace kept alive only by what it
    /// owns), round after round until nothing new turns up. Remembered
    /// relations are used where the namespace is provably the same.
    fn resolve_owners(&mut self) {
        self.close_same_upwards();
        // This phase holds a descriptor per namespace (and per owner).
        sys::reserve_fds(2 * self.nss.len() + self.fds.len() + 1024);
        let mut todo: Vec<Inode> = self.nss.keys().copied().collect();
        while !todo.is_empty() {
            let mut work: Vec<(Inode, NsType, Option<OwnedFd>, PathsToOpen)> = Vec::new();
            for i in std::mem::take(&mut todo) {
                let Some(ns) = self.nss.get(&i) else { continue };
                let ty = ns.ns_type;
                match self.remembered(i, ty) {
                    Some(rel) => self.apply_remembered(i, rel, &mut todo),
                    None => {
                        let paths = self.paths_to_open(i);
                        work.push((i, ty, self.fds.remove(&i), paths));
                    }
                }
            }
            // One thread on purpose: in parallel this phase measured 5x slower
            // (the nsfs opens and NS_GET_* ioctls contend in the kernel).
            let inodes: Vec<Inode> = work.iter().map(|w| w.0).collect();
            let keyed = work.into_iter().map(|w| (stuck_key_of(&w.3, "namespace", w.0), w)).collect();
            let found = bounded::map(
                "reading owners",
                keyed,
                1,
                bounded::STALL,
                || (),
                |_, (inode, ty, fd, paths)| {
                    let fd = fd.or_else(|| open_first(&paths, inode))?;
                    Some(relations(fd.as_fd(), ty))
                },
            );
            for (inode, rel) in inodes.into_iter().zip(found) {
                let Some(rel) = rel.flatten() else {
                    self.unreachable(inode);
                    continue;
                };
                let owner = rel.owner.and_then(|o| self.adopt(o, NsType::User, &mut todo));
                let parent = match rel.parent {
                    Some(p) => self.adopt(p, NsType::Pid, &mut todo),
                    None if rel.ty == NsType::User => owner,
                    None => None,
                };
                let rel = Rel { ty: rel.ty, id: rel.id, owner, parent, owner_uid: rel.owner_uid };
                self.set_relations(inode, rel);
            }
        }
    }

    /// A namespace that no path opens (a pin covered by another mount, a
    /// trap put in its place, a holder gone since the walk): still listed,
    /// with its pins, but no `ns` link to a path that does not lead to it.
    fn unreachable(&mut self, inode: Inode) {
        if let Some(ns) = self.nss.get_mut(&inode) {
            if let Some(path) = ns.path.take() {
                log::debug!(
                    "namespace {inode} cannot be opened (by {})",
                    crate::render::escape(&path.to_string_lossy())
                );
            }
        }
    }

    fn apply_remembered(&mut self, inode: Inode, rel: Rel, todo: &mut Vec<Inode>) {
        for (up, ty) in [(rel.owner, NsType::User), (rel.parent, rel.ty)] {
            if let Some(up) = up.filter(|u| !self.nss.contains_key(u)) {
                self.note(ty, up);
                todo.push(up);
            }
        }
        self.set_relations(inode, rel);
    }

    fn set_relations(&mut self, inode: Inode, rel: Rel) {
        if let Some(ns) = self.nss.get_mut(&inode) {
            ns.id = rel.id;
            ns.owner = rel.owner;
            ns.parent = rel.parent;
            ns.owner_uid = rel.owner_uid;
            if self.tracking {
                self.next.relations.insert(inode, rel);
            }
        }
    }

    /// Record the namespace behind `fd` (an owner or parent); returns its inode.
    fn adopt(&mut self, (fd, inode): (OwnedFd, Inode), ty: NsType, todo: &mut Vec<Inode>) -> Option<Inode> {
        if !self.nss.contains_key(&inode) {
            self.note(ty, inode);
            self.fds.insert(inode, fd);
            todo.push(inode);
        }
        Some(inode)
    }

    fn finish(self) -> (Snapshot, Memory) {
        let mut nss = self.nss;
        let mut holders = self.holders;
        // Reverse edges: children, owned namespaces, and the holders they make.
        let edges: Vec<(Inode, Option<Inode>, Option<Inode>, NsType)> =
            nss.values().map(|n| (n.inode, n.owner, n.parent, n.ns_type)).collect();
        for (inode, owner, parent, ty) in edges {
            if let Some(o) = owner.and_then(|o| nss.get_mut(&o)) {
                o.owns.push((ty, inode));
                holders.push((o.inode, Holder::Child { ns_type: ty, inode }));
            }
            if let Some(p) = parent.and_then(|p| nss.get_mut(&p)) {
                p.children.push(inode);
                if ty == NsType::Pid {
                    holders.push((p.inode, Holder::Child { ns_type: ty, inode }));
                }
            }
        }
        let mut named_pins = BTreeMap::new();
        for ns in nss.values_mut() {
            ns.pins.sort();
            ns.pins.dedup();
            ns.children.sort_unstable();
            ns.owns.sort_unstable();
            for pin in ns.pins.iter().filter(|p| p.mntns == self.own_mntns) {
                if let Some(name) = self.opts.dirs.name_of(ns.ns_type, &pin.path) {
                    named_pins.insert((ns.ns_type, name), ns.inode);
                }
            }
        }
        let root_userns =
            nss.values().find(|n| n.ns_type == NsType::User && n.owner.is_none()).map(|n| n.inode);
        let mut next = self.next;
        next.tables_complete = self.tables_complete;
        let keep = self.tracking.then_some(&mut next.namespaces);
        let namespaces = assemble::namespaces(nss, self.tasks, holders, self.prev.namespaces, keep);
        let snap = Snapshot {
            namespaces,
            processes: ProcessTable::new(self.procs),
            cgroups: {
                let mut c = self.cgroups;
                c.sort_by_key(|e| e.0);
                c.dedup_by_key(|e| e.0);
                c
            },
            named_pins,
            own_mntns: self.own_mntns,
            root_userns,
            taken_at: None,
            duration: Default::default(),
            partial: sys::geteuid() != 0,
        };
        (snap, next)
    }
}

/// How to read one mount namespace's pins in this pass.
enum How {
    /// Through `/proc/{self,PID}`, with its table from the last pass.
    Read(Reader, Option<Table>),
    /// From inside (no process in it), through this descriptor, or one
    /// opened by these paths.
    Inside(Option<OwnedFd>, PathsToOpen),
}

/// How the reading of one mount namespace is named if it gets stuck.
fn work_key(mntns: Inode, how: &How) -> String {
    match how {
        How::Read(Reader::Own, _) => "nsfuse's own mount table".to_owned(),
        How::Read(Reader::Member(pid), _) => procfs::stuck_key(*pid),
        How::Inside(_, paths) => stuck_key_of(paths, "mount namespace", mntns),
    }
}

struct Work {
    mntns: Inode,
    how: How,
}

enum TableRead {
    Unchanged,
    Read(Vec<parse::NsfsMount>, Option<Table>),
    Inside(Vec<(parse::NsfsMount, Option<OwnedFd>)>),
}

impl Work {
    /// Read it; the work comes back with the outcome (a table to keep, a
    /// descriptor opened).
    fn run(self, proc: BorrowedFd<'_>, tracking: bool) -> (Work, TableRead) {
        let outcome = match &self.how {
            How::Read(_, Some(table)) if table.unchanged() => TableRead::Unchanged,
            How::Read(reader, _) => {
                let (pins, table) = mounts::read(*reader, self.mntns, tracking);
                TableRead::Read(pins, table)
            }
            How::Inside(fd, paths) => {
                let fd = match fd {
                    Some(_) => None,
                    None => open_first(paths, self.mntns),
                };
                let work = match fd {
                    Some(fd) => Work { mntns: self.mntns, how: How::Inside(Some(fd), paths.clone()) },
                    None => self,
                };
                let pins = match &work.how {
                    How::Inside(Some(fd), _) => mounts::read_inside(proc, fd.as_fd()).unwrap_or_else(|e| {
                        log::debug!("cannot look inside mount namespace {}: {e}", work.mntns);
                        Vec::new()
                    }),
                    _ => Vec::new(),
                };
                return (work, TableRead::Inside(pins));
            }
        };
        (self, outcome)
    }
}

fn reach(reader: Reader, m: &parse::NsfsMount) -> (PathBuf, PathRank) {
    let rank = match reader {
        Reader::Own => PathRank::Pin,
        Reader::Member(_) => PathRank::Foreign,
    };
    (reader.reach(m), rank)
}

/// What the kernel says about one namespace's place in the hierarchy.
struct Relations {
    ty: NsType,
    id: Option<u64>,
    /// The owning user namespace, opened, with its inode.
    owner: Option<(OwnedFd, Inode)>,
    /// The parent pid namespace (pid only; a user namespace's parent is its owner).
    parent: Option<(OwnedFd, Inode)>,
    owner_uid: Option<u32>,
}

fn relations(fd: BorrowedFd<'_>, ty: NsType) -> Relations {
    let with_inode = |f: OwnedFd| sys::fstat(f.as_fd()).ok().map(|st| (f, st.st_ino));
    Relations {
        ty,
        id: sys::ns_get_id(fd).ok(),
        owner: sys::ns_get_userns(fd).ok().and_then(with_inode),
        parent: (ty == NsType::Pid).then(|| sys::ns_get_parent(fd).ok().and_then(with_inode)).flatten(),
        owner_uid: (ty == NsType::User).then(|| sys::ns_get_owner_uid(fd).ok()).flatten(),
    }
}

fn member_path(pid: Pid, link: &str) -> PathBuf {
    format!("/proc/{pid}/ns/{link}").into()
}

/// The network namespace of socket `fd` of the process behind `pidfd`,
/// opened, with its inode; checked to be the socket the walk listed (the
/// number may have been closed and reused since).
fn socket_netns(pidfd: BorrowedFd<'_>, fd: i32, sock_inode: u64) -> Option<(OwnedFd, Inode)> {
    let sock = sys::pidfd_getfd(pidfd, fd).ok()?;
    if sys::fstat(sock.as_fd()).ok()?.st_ino != sock_inode {
        return None;
    }
    let netns = sys::socket_netns(sock.as_fd()).ok()?;
    let inode = sys::fstat(netns.as_fd()).ok()?.st_ino;
    Some((netns, inode))
}
