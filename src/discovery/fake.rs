//! An in-memory host for unit tests of discovery: processes with their ns
//! links, threads, descriptors and sockets; namespaces with their owners
//! and parents; mount namespaces with their nsfs mounts and mount ids. It
//! implements `Kernel`, so a real pass (and a `Tracker`) runs over it
//! without root, and it logs what the pass asked, so a test can tell what a
//! refresh read again.

use super::kernel::{Kernel, Relations};
use super::mounts::{Reader, Table};
use super::parse::NsfsMount;
use super::procfs::{CgroupsOf, Process, Stamp, StampBudget};
use super::{Error, Result};
use crate::locks::Locked;
use crate::model::{Inode, NsType, Pid, ProcessLinks, LINKS, LINK_TYPES};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

/// Our own PID on the fake host.
pub const OWN_PID: Pid = Pid(1000);

/// The host's namespace of type `ty`: 100 + its index (user: 106).
pub fn host_ns(ty: NsType) -> Inode {
    Inode(100 + ty.index() as u64)
}

/// A namespace as the kernel knows it.
#[derive(Clone, Debug)]
pub struct Ns {
    pub ty: NsType,
    pub id: u64,
    pub owner: Option<Inode>,
    pub parent: Option<Inode>,
    pub owner_uid: Option<u32>,
    /// Whether it can be opened at all (else every open of it fails).
    pub reachable: bool,
}

/// A process as the kernel knows it.
#[derive(Clone, Debug, Default)]
pub struct Proc {
    pub links: ProcessLinks,
    pub threads: Vec<(Pid, ProcessLinks)>,
    pub ns_fds: Vec<(i32, NsType, Inode)>,
    pub sockets: Vec<(i32, u64)>,
    pub cgroup: Option<Arc<str>>,
    /// Times it ran: what its stamp shows.
    pub runs: u64,
    /// The PID count (`World::last_pid`) its PID was handed out at.
    pub born: Pid,
}

/// A mount namespace's mounts: its id, every mount's id, the nsfs ones.
#[derive(Clone, Debug, Default)]
pub struct Mounts {
    pub id: u64,
    pub ids: Vec<u64>,
    pub pins: Vec<NsfsMount>,
    /// The mount id of each pin.
    pub pin_ids: Vec<u64>,
}

/// The whole fake host, and a log of what was asked of it.
#[derive(Debug, Default)]
pub struct World {
    pub own_mntns: Inode,
    pub root: bool,
    pub namespaces: BTreeMap<Inode, Ns>,
    pub procs: BTreeMap<Pid, Proc>,
    /// Socket inode -> its network namespace.
    pub sockets: HashMap<u64, Inode>,
    pub mounts: BTreeMap<Inode, Mounts>,
    pub last_pid: Pid,
    /// Whether the kernel has listmount(2) (else no tables).
    pub listmount: bool,
    /// Paths that lead elsewhere (a trap put in a pin's place).
    pub traps: HashSet<PathBuf>,
    /// Descriptors closed and reused between the walk and a later question.
    pub reused_fds: HashSet<(Pid, i32)>,
    next_id: u64,
    /// What was asked: processes read, mount namespaces read (through a
    /// process or from inside), namespaces whose relations were read.
    pub read: Vec<Pid>,
    pub tables_read: Vec<Inode>,
    pub relations_read: Vec<Inode>,
    pub sockets_read: Vec<(Pid, i32)>,
    /// Times /proc was listed.
    pub listings: usize,
    /// Pins opened from inside a mount namespace.
    pub opened_inside: Vec<Inode>,
}

/// A shared handle on a `World`: what a pass runs on.
#[derive(Clone, Debug, Default)]
pub struct Fake(Arc<Mutex<World>>);

/// An opened namespace on the fake host.
#[derive(Debug)]
pub struct Opened(pub Inode);

impl Fake {
    /// A host with one namespace of each type (`host_ns`), the user one at
    /// the top owning the rest, and our own process in all of them.
    pub fn host() -> Fake {
        let mut w = World { root: true, listmount: true, last_pid: OWN_PID, ..World::default() };
        let user = host_ns(NsType::User);
        for ty in NsType::ALL {
            let owner = (ty != NsType::User).then_some(user);
            w.add_ns(ty, host_ns(ty), owner);
        }
        w.own_mntns = host_ns(NsType::Mnt);
        let id = w.fresh_id();
        w.mounts.insert(w.own_mntns, Mounts { id, ids: vec![1, 2, 3], ..Mounts::default() });
        w.spawn(OWN_PID);
        Fake(Arc::new(Mutex::new(w)))
    }

    /// The world, to change or inspect.
    pub fn world(&self) -> MutexGuard<'_, World> {
        self.0.locked()
    }
}

fn links_of_host() -> ProcessLinks {
    let mut l = ProcessLinks::default();
    for ty in NsType::ALL {
        l.0[ty.index()] = host_ns(ty).get() as u32;
    }
    l.0[8] = host_ns(NsType::Pid).get() as u32;
    l.0[9] = host_ns(NsType::Time).get() as u32;
    l
}

impl World {
    fn fresh_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// A new namespace, owned by `owner`; a pid or user one's parent is
    /// set apart (`ns_mut`).
    pub fn add_ns(&mut self, ty: NsType, inode: Inode, owner: Option<Inode>) -> &mut Ns {
        let id = self.fresh_id();
        if ty == NsType::Mnt {
            let mid = self.fresh_id();
            self.mounts.insert(inode, Mounts { id: mid, ids: vec![mid * 1000], ..Mounts::default() });
        }
        let owner_uid = (ty == NsType::User).then_some(0);
        let ns = Ns { ty, id, owner, parent: None, owner_uid, reachable: true };
        self.namespaces.entry(inode).or_insert(ns)
    }

    /// A new process in the host's namespaces (or `pid` made again).
    pub fn spawn(&mut self, pid: Pid) -> &mut Proc {
        self.last_pid = Pid(self.last_pid.get() + 1);
        self.procs.insert(pid, Proc { links: links_of_host(), born: self.last_pid, ..Proc::default() });
        self.procs.entry(pid).or_default()
    }

    /// Process `pid`, to change without it running (its stamp unmoved).
    pub fn proc_mut(&mut self, pid: Pid) -> &mut Proc {
        self.procs.entry(pid).or_default()
    }

    /// `pid` moves into namespace `inode` of type `ty` (it ran).
    pub fn enter(&mut self, pid: Pid, ty: NsType, inode: Inode) {
        let p = self.proc_mut(pid);
        p.links.0[ty.index()] = inode.get() as u32;
        p.runs += 1;
    }

    /// `pid` ran without changing anything.
    pub fn run(&mut self, pid: Pid) {
        self.proc_mut(pid).runs += 1;
    }

    pub fn exit(&mut self, pid: Pid) {
        self.procs.remove(&pid);
    }

    /// A bind mount of namespace `inode` at `path` in mount namespace `mntns`.
    pub fn pin(&mut self, mntns: Inode, path: &str, ty: NsType, inode: Inode) {
        let id = self.fresh_id();
        let m = self.mounts.entry(mntns).or_default();
        m.ids.push(id);
        m.pin_ids.push(id);
        m.pins.push(NsfsMount { ns_type: ty, inode, mount_point: path.into() });
    }

    /// The bind mount at `path` in `mntns` is gone.
    pub fn unpin(&mut self, mntns: Inode, path: &str) {
        let m = self.mounts.entry(mntns).or_default();
        if let Some(i) = m.pins.iter().position(|p| p.mount_point == Path::new(path)) {
            m.pins.remove(i);
            let id = m.pin_ids.remove(i);
            m.ids.retain(|&x| x != id);
        }
    }

    /// Whether `path` leads to namespace `inode` now.
    fn leads_to(&self, path: &Path, inode: Inode) -> bool {
        if self.traps.contains(path) || !self.namespaces.get(&inode).is_some_and(|n| n.reachable) {
            return false;
        }
        let text = path.to_string_lossy();
        let parts: Vec<&str> = text.split('/').collect();
        // /proc/PID/ns/LINK and /proc/PID/task/TID/ns/LINK: the link now.
        let link = match parts.as_slice() {
            ["", "proc", pid, "ns", name] => Some((pid.parse::<Pid>().ok(), None, *name)),
            ["", "proc", pid, "task", tid, "ns", name] => {
                Some((pid.parse().ok(), tid.parse::<Pid>().ok(), *name))
            }
            _ => None,
        };
        let Some((Some(pid), tid, name)) = link else { return true };
        let Some(i) = crate::model::LINK_NAMES.iter().position(|n| *n == name) else { return false };
        let Some(p) = self.procs.get(&pid) else { return false };
        let links = match tid {
            Some(t) => p.threads.iter().find(|(x, _)| *x == t).map_or(p.links, |(_, l)| *l),
            None => p.links,
        };
        links.get(i) == Some(inode) && self.namespaces.get(&inode).is_some_and(|n| n.ty == LINK_TYPES[i])
    }

    fn mounts_of(&self, reader: Reader) -> Option<&Mounts> {
        let mntns = match reader {
            Reader::Own => self.own_mntns,
            Reader::Member(pid) => self.procs.get(&pid)?.links.get(NsType::Mnt.index())?,
        };
        self.mounts.get(&mntns)
    }
}

impl Kernel for Fake {
    type Ns = Opened;

    fn own_pid(&self) -> Pid {
        OWN_PID
    }

    fn own_mntns(&self) -> Result<Inode> {
        Ok(self.world().own_mntns)
    }

    fn sees_everything(&self) -> bool {
        self.world().root
    }

    fn list_pids(&self, _capacity: usize) -> Result<Vec<Pid>> {
        let mut w = self.world();
        w.listings += 1;
        if w.procs.is_empty() {
            return Err(Error::Io {
                path: "/proc".into(),
                source: io::Error::from_raw_os_error(libc::ENOENT),
            });
        }
        Ok(w.procs.keys().copied().collect())
    }

    fn last_pid(&self) -> Option<Pid> {
        Some(self.world().last_pid)
    }

    /// A process counts as handed out in the range by the count it was
    /// born at (a fake PID is any number).
    fn processes_made_between(&self, from: Pid, to: Pid) -> Option<Vec<Pid>> {
        let w = self.world();
        Some(w.procs.iter().filter(|(_, p)| p.born > from && p.born <= to).map(|(&pid, _)| pid).collect())
    }

    fn still_there(&self, pids: &[Pid]) -> Vec<Pid> {
        let w = self.world();
        pids.iter().copied().filter(|p| w.procs.contains_key(p)).collect()
    }

    fn still_unchanged(&self, procs: &[Option<&Process>]) -> Vec<bool> {
        let w = self.world();
        let ran = |s: &Stamp| {
            let ((pid, _), seen) = s.counters();
            w.procs.get(&pid).map(|p| p.runs) != Some(seen[0])
        };
        procs.iter().map(|p| p.is_some_and(|p| !p.stamps.is_empty() && !p.stamps.iter().any(ran))).collect()
    }

    fn read_processes(
        &self,
        pids: &[Pid],
        skip_fds_of: Option<Pid>,
        budget: Option<&Arc<StampBudget>>,
        cgroups: &CgroupsOf,
    ) -> Vec<(Pid, Process)> {
        let mut w = self.world();
        w.read.extend_from_slice(pids);
        let mut out = Vec::new();
        for &pid in pids {
            let Some(p) = w.procs.get(&pid) else { continue };
            let mine = skip_fds_of == Some(pid);
            out.push((
                pid,
                Process {
                    links: p.links,
                    threads: p.threads.clone(),
                    ns_fds: if mine { Vec::new() } else { p.ns_fds.clone() },
                    sockets: if mine { Vec::new() } else { p.sockets.clone() },
                    stamps: match (budget, mine) {
                        (Some(_), false) => vec![Stamp::counted((pid, None), [p.runs, 0, 0])],
                        _ => Vec::new(),
                    },
                    cgroup: p.cgroup.clone().filter(|_| cgroups.wanted(&p.links)),
                },
            ));
        }
        out
    }

    fn socket_netns(&self, pid: Pid, sockets: &[(i32, u64)]) -> Vec<Option<(Opened, Inode)>> {
        let mut w = self.world();
        w.sockets_read.extend(sockets.iter().map(|&(fd, _)| (pid, fd)));
        let p = w.procs.get(&pid);
        let answer = |&(fd, sock): &(i32, u64)| {
            (p?.sockets.contains(&(fd, sock)) && !w.reused_fds.contains(&(pid, fd))).then_some(())?;
            w.sockets.get(&sock).map(|&n| (Opened(n), n))
        };
        sockets.iter().map(answer).collect()
    }

    fn mounts_still(&self, mnt_ns_id: u64, mounts: &[u64]) -> bool {
        let w = self.world();
        w.listmount && w.mounts.values().any(|m| m.id == mnt_ns_id && m.ids == mounts)
    }

    fn read_mounts(&self, reader: Reader, mntns: Inode, with_table: bool) -> (Vec<NsfsMount>, Option<Table>) {
        let mut w = self.world();
        w.tables_read.push(mntns);
        let Some(m) = w.mounts_of(reader).cloned() else { return (Vec::new(), None) };
        let table = (with_table && w.listmount).then(|| Table::new(m.id, m.ids.clone(), m.pins.clone()));
        (m.pins, table)
    }

    fn read_inside(
        &self,
        mntns: &Opened,
        wants_fd: &(dyn Fn(Inode) -> bool + Sync),
    ) -> io::Result<Vec<(NsfsMount, Option<Opened>)>> {
        let mut w = self.world();
        w.tables_read.push(mntns.0);
        let pins = w.mounts.get(&mntns.0).map(|m| m.pins.clone()).unwrap_or_default();
        w.opened_inside.extend(pins.iter().map(|m| m.inode).filter(|&i| wants_fd(i)));
        let reachable =
            |m: &NsfsMount| wants_fd(m.inode) && w.namespaces.get(&m.inode).is_some_and(|n| n.reachable);
        Ok(pins
            .into_iter()
            .map(|m| (reachable(&m).then_some(Opened(m.inode)), m))
            .map(|(o, m)| (m, o))
            .collect())
    }

    fn open(&self, path: &Path, inode: Inode) -> Option<Opened> {
        self.world().leads_to(path, inode).then_some(Opened(inode))
    }

    fn relations(&self, ns: &Opened, ty: NsType) -> Relations<Opened> {
        let mut w = self.world();
        w.relations_read.push(ns.0);
        let known = w.namespaces.get(&ns.0).cloned();
        let opened = |i: Option<Inode>| i.filter(|i| w.namespaces.contains_key(i)).map(|i| (Opened(i), i));
        Relations {
            ty,
            id: known.as_ref().map(|n| n.id),
            owner: opened(known.as_ref().and_then(|n| n.owner)),
            parent: opened(known.as_ref().and_then(|n| n.parent).filter(|_| ty == NsType::Pid)),
            owner_uid: known.and_then(|n| n.owner_uid),
        }
    }
}

/// All ten links of a process in the host's namespaces but `changes`.
pub fn links_with(changes: &[(usize, Inode)]) -> ProcessLinks {
    let mut l = links_of_host();
    for &(i, inode) in changes.iter().filter(|c| c.0 < LINKS) {
        l.0[i] = inode.get() as u32;
    }
    l
}
