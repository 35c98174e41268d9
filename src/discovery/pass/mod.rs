//! One discovery pass: walks processes, sockets, mount namespaces and the
//! ownership hierarchy, and assembles a `Snapshot`. Given what the previous
//! pass left (`Memory`), it re-reads only what can have changed: processes
//! whose stamps moved or that are new, mount namespaces whose mount ids
//! changed, and the relations of namespaces it cannot prove are the same
//! ones as last time (inode numbers are reused as soon as freed).
//!
//! This file holds the model being built (`Pass`: namespaces, their best
//! paths, members, holders) and the pass's start and end (`run`,
//! `finish`). Each phase is its own file and says in its signature what it
//! takes from the phases before and gives to those after, in the order
//! `run` calls them:
//!
//! ```text
//!     processes     last Memory           -> Walked: Quiet(the last snapshot, Memory)
//!                                            or Changed(Handoff: read, sockets,
//!                                            a member per mount namespace, records, listing)
//!     sockets       Handoff.sockets       -> (socket holders; socket namespaces into records)
//!     mount_tables  Handoff.members       -> MountTables (tables to keep, complete?)
//!     owners        last relations        -> the relations to keep
//!     finish        Handoff, MountTables, relations -> (Snapshot, Memory)
//! ```

mod mount_tables;
mod owners;
mod processes;
mod seed;
use mount_tables::MountTables;
use processes::{Handoff, Kept, SocketRef, Walked};
mod sockets;
#[cfg(test)]
mod tests;

use super::assemble;
use super::kernel::Kernel;
use super::mounts::{Reader, Table};
use super::procfs::{self, StampBudget};
use super::{parse, Cgroups, Result, ScanOptions};
use crate::bounded;
use crate::model::{Holder, Inode, Link, Namespace, NsType, Pid, Pin, ProcessLinks, ProcessTable, Snapshot};
// Maps keyed by inode or PID use FxHash: a pass hashes a few hundred
// thousand integers, and SipHash's resistance to chosen keys buys nothing
// against numbers the kernel hands out.
use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};
use std::collections::BTreeMap;
use std::path::PathBuf;
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
    /// The processes the last pass found, brought up to date by the next
    /// one without reading /proc (see `Listing`).
    pub listing: Option<Listing>,
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

/// The processes a pass found, and the PIDs handed out around it
/// (`/proc/loadavg`): the next pass adds the processes made since by
/// probing only the PIDs handed out after `from`
/// (`Kernel::processes_made_between`) instead of listing /proc, and a
/// process gone since fails its stamps. `from` lags one pass behind `to`:
/// a process whose PID was handed out just before a pass may not have been
/// in /proc yet (mid-fork), and is found by the probe after.
#[derive(Clone, Debug)]
pub struct Listing {
    pub from: Pid,
    pub to: Pid,
    /// Ascending.
    pub pids: Vec<Pid>,
}

/// One process as read, with the network namespaces of its sockets.
pub struct Record {
    found: procfs::Process,
    socket_netns: Vec<(i32, Inode)>,
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
fn open_first<K: Kernel>(kernel: &K, paths: &PathsToOpen, inode: Inode) -> Option<K::Ns> {
    paths.iter().flatten().find_map(|p| kernel.open(p, inode))
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

/// How a pass came to its model.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Model {
    /// Nothing changed: the last snapshot served again.
    Kept,
    /// The last model less what the processes that ran or are gone held,
    /// plus what those read now hold (`seed`).
    Patched,
    /// Built from every process (a full pass, or nothing to patch).
    Built,
}

/// What one pass did.
pub struct Outcome {
    pub snapshot: Snapshot,
    pub memory: Memory,
    /// The processes it read, in /proc order (the rest were remembered).
    pub read: Vec<Pid>,
    pub model: Model,
}

/// Run one pass. `budget` (when tracking) caps the stamps it may open.
pub fn run<K: Kernel>(
    kernel: &K,
    opts: &ScanOptions,
    prev: Memory,
    budget: Option<usize>,
) -> Result<Outcome> {
    let started = Instant::now();
    let taken_at = SystemTime::now();
    let mut s = Pass::new(kernel.clone(), opts, prev, budget.is_some())?;
    let mut phases = [Duration::ZERO; 5];
    let mut t = Instant::now();
    let mut lap = |i: usize| {
        phases[i] = t.elapsed();
        t = Instant::now();
    };
    let mut handoff = match s.walk_processes(budget)? {
        Walked::Quiet(kept) => {
            let Kept { snapshot: mut snap, memory, read } = *kept;
            snap.taken_at = Some(taken_at);
            snap.duration = started.elapsed();
            log::debug!(
                "pass: nothing changed ({} processes, {} read) in {:?}",
                snap.processes.len(),
                read.len(),
                snap.duration
            );
            return Ok(Outcome { snapshot: snap, memory, read, model: Model::Kept });
        }
        Walked::Changed(h) => h,
    };
    lap(0);
    s.resolve_sockets(std::mem::take(&mut handoff.sockets), &mut handoff.records);
    lap(1);
    let tables = s.walk_mount_namespaces(&handoff.members);
    lap(2);
    let relations = s.resolve_owners();
    lap(3);
    let tracking = s.tracking;
    let read = std::mem::take(&mut handoff.read);
    let model = if handoff.patched { Model::Patched } else { Model::Built };
    let (mut snap, mut memory) = s.finish(handoff, tables, relations);
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
    Ok(Outcome { snapshot: snap, memory, read, model })
}

struct Pass<'o, K: Kernel> {
    kernel: K,
    opts: &'o ScanOptions,
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
    fds: HashMap<Inode, K::Ns>,
    /// What the last pass left (records, tables, relations, namespaces).
    prev: Memory,
    /// Namespaces proven the same as in the previous pass: held by a
    /// process that has not run, or a mount that is still there.
    same: HashSet<Inode>,
    /// Whether what this pass reads is kept for the next (a tracker's);
    /// a one-off scan keeps nothing.
    tracking: bool,
    /// Namespaces whose relations no path could read (yet).
    unreached: HashSet<Inode>,
}

impl<'o, K: Kernel> Pass<'o, K> {
    fn new(kernel: K, opts: &'o ScanOptions, prev: Memory, tracking: bool) -> Result<Self> {
        let own_mntns = kernel.own_mntns()?;
        // A table large enough for the pass, grown while few threads share it.
        kernel.reserve_fds(3 * prev.namespaces.len() + 4096);
        // Sized like the last pass: a quiet host's refresh grows nothing.
        let (n_procs, n_nss) = (prev.procs.len(), prev.namespaces.len());
        Ok(Pass {
            own_pid: kernel.own_pid(),
            kernel,
            opts,
            own_mntns,
            nss: HashMap::with_capacity_and_hasher(n_nss, Default::default()),
            ranks: HashMap::with_capacity_and_hasher(n_nss, Default::default()),
            member_paths: HashMap::default(),
            procs: Vec::with_capacity(n_procs),
            cgroups: Vec::new(),
            tasks: Vec::with_capacity(n_procs * 9),
            holders: Vec::new(),
            fds: HashMap::default(),
            prev,
            same: HashSet::with_capacity_and_hasher(n_nss, Default::default()),
            tracking,
            unreached: HashSet::default(),
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

    /// The paths the pass opens a namespace by, to try in turn: a
    /// member's before a pin (the pin still serves if the member is gone).
    fn paths_to_open(&self, inode: Inode) -> PathsToOpen {
        let path = self.nss.get(&inode).and_then(|n| n.path.clone());
        match self.member_paths.get(&inode) {
            Some(member) => [Some(member.clone()), path],
            None => [path, None],
        }
    }

    /// The snapshot, and the memory for the next pass: the records of the
    /// process phase, the mount phase's tables, the owner phase's
    /// relations, the namespaces made here.
    fn finish(
        self,
        handoff: Handoff,
        tables: MountTables,
        relations: HashMap<Inode, Rel>,
    ) -> (Snapshot, Memory) {
        let mut nss = self.nss;
        let mut holders = self.holders;
        add_reverse_edges(&mut nss, &mut holders);
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
        let own_mounts = tables.tables.get(&self.own_mntns).map(|t| {
            let (id, mounts) = t.ids();
            (id, Arc::from(mounts))
        });
        let mut next = match self.tracking {
            true => Memory {
                procs: handoff.records,
                tables: tables.tables,
                relations,
                listing: handoff.listing,
                tables_complete: tables.complete,
                ..Memory::default()
            },
            false => Memory::default(),
        };
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
            own_mounts,
            root_userns,
            taken_at: None,
            duration: Default::default(),
            partial: !self.kernel.sees_everything(),
        };
        (snap, next)
    }
}

/// Children, owned namespaces, and the holders they make.
fn add_reverse_edges(nss: &mut HashMap<Inode, Namespace>, holders: &mut Vec<(Inode, Holder)>) {
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
}

fn member_path(pid: Pid, link: &str) -> PathBuf {
    format!("/proc/{pid}/ns/{link}").into()
}

/// The `ns` link of one thread of a process.
fn thread_path(pid: Pid, tid: Pid, link: &str) -> PathBuf {
    format!("/proc/{pid}/task/{tid}/ns/{link}").into()
}
