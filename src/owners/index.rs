//! Owners and orphans over one snapshot: which containers, pods and units
//! each namespace belongs to now (and, given what was seen before, which
//! it belonged to), and which namespaces have no task left in them.

use super::{cgroup, pin_names, Owner};
use crate::model::{Inode, Namespace, Pid, PinDirs, Snapshot};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::time::SystemTime;

/// What the tree shows of owners and orphans, for one view.
#[derive(Clone, Debug, Default)]
pub struct Owners {
    /// Owner lines of each namespace now.
    pub current: HashMap<Inode, Vec<Owner>>,
    /// Owners seen before and not now (shown prefixed `was `).
    pub was: HashMap<Inode, Vec<Owner>>,
    /// When each namespace with no task was first seen so.
    pub orphaned_since: HashMap<Inode, SystemTime>,
    /// Every recognised owner now (`containers/`), by its number in the
    /// daemon's grow-only table, with the namespaces it uses.
    pub containers: BTreeMap<u32, (Owner, Vec<Inode>)>,
}

/// A container's directory name: `KIND-ID`, a 64-digit ID cut to 12 as
/// Docker shows it (kubernetes: by its container ID, else its pod).
pub fn dir_name(o: &Owner) -> String {
    let id = o.name.as_deref().unwrap_or(&o.id);
    let id = if id.len() == 64 { &id[..12] } else { id };
    format!("{}-{}", o.kind.name(), id.replace('/', "_"))
}

/// Container directory names, numbered for inode numbers: only ever
/// grows, so a container keeps its number for the life of the mount.
#[derive(Clone, Debug, Default)]
pub struct ContainerNames {
    by_owner: HashMap<Owner, u32>,
}

impl ContainerNames {
    pub fn number(&mut self, o: &Owner) -> u32 {
        let next = self.by_owner.len() as u32;
        *self.by_owner.entry(o.clone()).or_insert(next)
    }
}

impl Owners {
    /// The `container` file of a namespace.
    pub fn lines(&self, inode: Inode) -> String {
        let now = self.current.get(&inode).into_iter().flatten().map(|o| format!("{o}\n"));
        let was = self.was.get(&inode).into_iter().flatten().map(|o| format!("was {o}\n"));
        now.chain(was).collect()
    }
}

/// Whether a namespace has no task in it (kept by pins, fds, sockets or
/// the namespaces it owns).
pub fn is_orphan(ns: &Namespace) -> bool {
    ns.processes.is_empty()
}

/// The owners of every namespace now: the containers and units of its
/// member processes, except for the host's own namespaces (those of PID 1,
/// or of nsfuse itself where PID 1 cannot be read);
/// for a namespace with no process, what its pins in nsfuse's mount
/// namespace name.
pub fn current(snap: &Snapshot, dirs: &PinDirs) -> HashMap<Inode, Vec<Owner>> {
    let host_links = snap.processes.get(&Pid(1)).or_else(|| snap.processes.get(&crate::sys::getpid()));
    let host: HashSet<Inode> =
        host_links.map(|l| (0..l.0.len()).filter_map(|i| l.get(i)).collect()).unwrap_or_default();
    let mut out: HashMap<Inode, BTreeSet<Owner>> = HashMap::new();
    for (pid, path) in &snap.cgroups {
        let (Some(owner), Some(links)) = (cgroup::owner(path), snap.processes.get(pid)) else { continue };
        for inode in (0..links.0.len()).filter_map(|i| links.get(i)).filter(|i| !host.contains(i)) {
            out.entry(inode).or_default().insert(owner.clone());
        }
    }
    for ns in snap.namespaces.values().filter(|n| is_orphan(n)) {
        let named = ns.pins.iter().filter(|p| p.mntns == snap.own_mntns);
        for owner in named.filter_map(|p| pin_names::owner(&p.path, &dirs.netns_dir)) {
            out.entry(ns.inode).or_default().insert(owner);
        }
    }
    out.into_iter().map(|(i, set)| (i, set.into_iter().collect())).collect()
}

/// What a daemon remembers across views: owners seen per namespace (by
/// inode and 64-bit id, since inode numbers are reused), and since when
/// each namespace has had no task.
#[derive(Default)]
pub struct History {
    seen: HashMap<Inode, (Option<u64>, BTreeSet<Owner>)>,
    orphaned_since: HashMap<Inode, SystemTime>,
    names: ContainerNames,
}

impl History {
    /// Take in a new snapshot; returns what its view shows.
    pub fn update(&mut self, snap: &Snapshot, dirs: &PinDirs, now: SystemTime) -> Owners {
        let current = current(snap, dirs);
        self.seen.retain(|i, (id, _)| snap.namespaces.get(i).is_some_and(|n| n.id == *id));
        for (i, owners) in &current {
            let id = snap.namespaces.get(i).and_then(|n| n.id);
            self.seen.entry(*i).or_insert_with(|| (id, BTreeSet::new())).1.extend(owners.iter().cloned());
        }
        let was = self
            .seen
            .iter()
            .filter_map(|(i, (_, seen))| {
                let now: Vec<&Owner> = current.get(i).map(|v| v.iter().collect()).unwrap_or_default();
                let gone: Vec<Owner> = seen.iter().filter(|o| !now.contains(o)).cloned().collect();
                (!gone.is_empty()).then_some((*i, gone))
            })
            .collect();
        self.orphaned_since.retain(|i, _| snap.namespaces.get(i).is_some_and(|n| is_orphan(n)));
        for ns in snap.namespaces.values().filter(|n| is_orphan(n)) {
            self.orphaned_since.entry(ns.inode).or_insert(now);
        }
        let mut containers: BTreeMap<u32, (Owner, Vec<Inode>)> = BTreeMap::new();
        for (inode, owners) in &current {
            for o in owners.iter().filter(|o| o.kind != super::Kind::Cgroup) {
                let n = self.names.number(o);
                containers.entry(n).or_insert_with(|| (o.clone(), Vec::new())).1.push(*inode);
            }
        }
        for (_, inodes) in containers.values_mut() {
            inodes.sort_unstable();
        }
        Owners { current, was, orphaned_since: self.orphaned_since.clone(), containers }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::NsType;
    use crate::model::{Pin, ProcessLinks, ProcessTable};
    use std::sync::Arc;

    fn snap() -> Snapshot {
        let mut s = Snapshot { own_mntns: Inode(9), ..Default::default() };
        let links = |net: u32| {
            let mut l = ProcessLinks::default();
            l.0[NsType::Net.index()] = net;
            l.0[NsType::Mnt.index()] = 9;
            l
        };
        s.processes =
            ProcessTable::new(vec![(Pid(1), links(100)), (Pid(50), links(200)), (Pid(60), links(200))]);
        s.cgroups = vec![
            (Pid(50), Arc::from("/docker/0123456789abcdef")),
            (Pid(60), Arc::from("/system.slice/x.service")),
        ];
        for (i, procs) in [(100u64, vec![1]), (200, vec![50, 60]), (300, vec![])] {
            let mut n = Namespace::new(NsType::Net, Inode(i));
            n.processes = procs.into_iter().map(Pid).collect();
            n.id = Some(i + 1);
            if i == 300 {
                n.pins = vec![Pin { mntns: Inode(9), path: "/run/netns/cni-abc".into() }];
            }
            s.namespaces.insert(Inode(i), Arc::new(n));
        }
        s
    }

    #[test]
    fn owners_of_members_and_of_pins_but_not_of_the_host() {
        let c = current(&snap(), &PinDirs::default());
        let lines =
            |i| c.get(&i).map(|v| v.iter().map(|o| o.to_string()).collect::<Vec<_>>()).unwrap_or_default();
        assert_eq!(lines(Inode(200)), ["docker 0123456789abcdef", "systemd x.service"]);
        assert_eq!(lines(Inode(300)), ["cni abc"]);
        assert!(lines(Inode(100)).is_empty(), "the host's own namespace");
        assert!(lines(Inode(9)).is_empty(), "the host's mount namespace, shared by all");
    }

    #[test]
    fn owners_that_left_are_kept_as_was_until_the_namespace_goes() {
        let mut h = History::default();
        let t0 = SystemTime::UNIX_EPOCH;
        let s = snap();
        let o = h.update(&s, &PinDirs::default(), t0);
        assert_eq!(o.lines(Inode(200)), "docker 0123456789abcdef\nsystemd x.service\n");
        assert_eq!(o.orphaned_since.get(&Inode(300)), Some(&t0));
        let dirs: Vec<String> = o.containers.values().map(|(c, _)| dir_name(c)).collect();
        assert_eq!(dirs.len(), 3);
        assert!(dirs.contains(&"docker-0123456789abcdef".to_owned()) && dirs.contains(&"cni-abc".to_owned()));
        let numbers: Vec<u32> = o.containers.keys().copied().collect();
        // The container's processes are gone; the namespace lives on, pinned.
        let mut later = s.clone();
        later.cgroups.clear();
        later.processes = ProcessTable::new(vec![(Pid(1), s.processes.get(&Pid(1)).copied().unwrap())]);
        Arc::make_mut(later.namespaces.get_mut(&Inode(200)).unwrap()).processes.clear();
        let t1 = t0 + std::time::Duration::from_secs(5);
        let o = h.update(&later, &PinDirs::default(), t1);
        assert_eq!(o.lines(Inode(200)), "was docker 0123456789abcdef\nwas systemd x.service\n");
        assert!(o.containers.keys().all(|k| numbers.contains(k)), "numbers are kept");
        assert_eq!(o.containers.len(), 1, "only the cni pin's owner is left");
        assert_eq!(o.orphaned_since.get(&Inode(200)), Some(&t1));
        assert_eq!(o.orphaned_since.get(&Inode(300)), Some(&t0), "first seen processless, not last");
        // The same inode number, now another namespace: no history.
        Arc::make_mut(later.namespaces.get_mut(&Inode(200)).unwrap()).id = Some(999);
        let o = h.update(&later, &PinDirs::default(), t1);
        assert_eq!(o.lines(Inode(200)), "");
    }
}
