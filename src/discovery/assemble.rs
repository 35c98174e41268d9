//! The last step of a pass: the flat lists of tasks and holders cut per
//! namespace, and each namespace made once — or, where it came out equal
//! to the previous pass's, that one shared (`Arc`), so a refresh of a
//! quiet host allocates little and leaves no holes in the heap.

use crate::model::{Holder, Inode, Namespace, Pid};
use rustc_hash::FxHashMap as HashMap;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Every namespace of a pass, with its processes and holders: `tasks` as
/// (namespace, (PID, TID)), `holders` the others as (namespace, holder),
/// both in any order. Each equal to its entry in `prev` is that entry;
/// all are also put in `keep` when given (for the next pass).
pub fn namespaces(
    nss: HashMap<Inode, Namespace>,
    mut tasks: Vec<(Inode, (Pid, Pid))>,
    mut holders: Vec<(Inode, Holder)>,
    mut prev: HashMap<Inode, Arc<Namespace>>,
    mut keep: Option<&mut HashMap<Inode, Arc<Namespace>>>,
) -> BTreeMap<Inode, Arc<Namespace>> {
    // One integer compare per step: by namespace, then PID, then TID.
    // Stable: a refresh gives the last model's tasks in order, then a few new
    // ones, and a stable sort merges such runs in one pass.
    tasks.sort_by_key(|&(i, (p, t))| {
        (u128::from(i.get()) << 64) | (u128::from(p.get() as u32) << 32) | u128::from(t.get() as u32)
    });
    tasks.dedup();
    holders.sort_unstable();
    holders.dedup();
    let mut nss: Vec<Namespace> = nss.into_values().collect();
    nss.sort_unstable_by_key(|n| n.inode);
    if let Some(k) = keep.as_mut() {
        k.reserve(nss.len());
    }
    let mut out = BTreeMap::new();
    let (mut tasks, mut holders) = (Runs(&tasks), Runs(&holders));
    for mut ns in nss {
        let lists = Lists { tasks: tasks.of(ns.inode), others: holders.of(ns.inode) };
        let shared = match prev.remove(&ns.inode) {
            Some(old) if same_namespace(&old, &ns, &lists) => old,
            _ => {
                ns.processes = lists.processes().collect();
                ns.holders = lists.holders().collect();
                Arc::new(ns)
            }
        };
        if let Some(k) = keep.as_mut() {
            k.insert(shared.inode, shared.clone());
        }
        out.insert(shared.inode, shared);
    }
    out
}

/// Walks a list of (inode, item) sorted by inode, giving the run of each
/// inode in turn (asked for in increasing order).
struct Runs<'a, T>(&'a [(Inode, T)]);

impl<'a, T> Runs<'a, T> {
    fn of(&mut self, inode: Inode) -> &'a [(Inode, T)] {
        let skip = self.0.partition_point(|e| e.0 < inode);
        let len = self.0[skip..].partition_point(|e| e.0 == inode);
        let (run, rest) = self.0[skip..].split_at(len);
        self.0 = rest;
        run
    }
}

/// A namespace's runs of the task and holder lists.
struct Lists<'a> {
    tasks: &'a [(Inode, (Pid, Pid))],
    others: &'a [(Inode, Holder)],
}

impl Lists<'_> {
    /// Its PIDs, in order, each once (the tasks are sorted by PID).
    fn processes(&self) -> impl Iterator<Item = Pid> + '_ {
        let t = self.tasks;
        (0..t.len()).filter(move |&i| i == 0 || t[i - 1].1 .0 != t[i].1 .0).map(move |i| t[i].1 .0)
    }

    /// Its holders, in order: `Task` sorts first.
    fn holders(&self) -> impl Iterator<Item = Holder> + '_ {
        let tasks = self.tasks.iter().map(|&(_, (pid, tid))| Holder::Task { pid, tid });
        tasks.chain(self.others.iter().map(|e| e.1.clone()))
    }

    /// Whether `list` is exactly these holders.
    fn same_holders(&self, list: &[Holder]) -> bool {
        let (t, o) = (self.tasks.len(), self.others.len());
        list.len() == t + o
            && list[..t].iter().zip(self.tasks).all(|(h, &(_, (pid, tid)))| *h == Holder::Task { pid, tid })
            && list[t..].iter().zip(self.others).all(|(h, e)| *h == e.1)
    }
}

/// Whether `old` is `new` with these processes and holders.
fn same_namespace(old: &Namespace, new: &Namespace, lists: &Lists<'_>) -> bool {
    // Destructured so that a field added to `Namespace` must be added here.
    let Namespace {
        ns_type,
        inode,
        id,
        owner,
        parent,
        children,
        owns,
        processes: _,
        holders: _,
        pins,
        path,
        owner_uid,
    } = new;
    old.processes.iter().copied().eq(lists.processes())
        && lists.same_holders(&old.holders)
        && old.ns_type == *ns_type
        && old.inode == *inode
        && old.id == *id
        && old.owner == *owner
        && old.parent == *parent
        && old.children == *children
        && old.owns == *owns
        && old.pins == *pins
        && old.path == *path
        && old.owner_uid == *owner_uid
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::NsType;

    #[test]
    fn runs_cut_a_sorted_list_per_inode() {
        let list = [(Inode(1), 'a'), (Inode(1), 'b'), (Inode(3), 'c'), (Inode(4), 'd'), (Inode(4), 'e')];
        let mut runs = Runs(&list);
        let chars = |run: &[(Inode, char)]| run.iter().map(|e| e.1).collect::<String>();
        assert_eq!(chars(runs.of(Inode(1))), "ab");
        assert!(runs.of(Inode(2)).is_empty());
        assert_eq!(chars(runs.of(Inode(4))), "de");
        assert!(runs.of(Inode(9)).is_empty());
    }

    #[test]
    fn lists_give_each_pid_once_and_tasks_before_other_holders() {
        let tasks =
            [(Inode(7), (Pid(5), Pid(5))), (Inode(7), (Pid(5), Pid(6))), (Inode(7), (Pid(9), Pid(9)))];
        let others = [(Inode(7), Holder::Fd { pid: Pid(2), fd: 3 })];
        let lists = Lists { tasks: &tasks, others: &others };
        assert_eq!(lists.processes().collect::<Vec<_>>(), [Pid(5), Pid(9)]);
        let holders: Vec<Holder> = lists.holders().collect();
        let mut sorted = holders.clone();
        sorted.sort();
        assert_eq!(holders, sorted);
        assert_eq!(holders.len(), 4);
        assert!(lists.same_holders(&holders));
        assert!(!lists.same_holders(&holders[1..]));
        assert!(!lists.same_holders(&[&holders[..3], &[Holder::Fd { pid: Pid(2), fd: 4 }]].concat()));
    }

    #[test]
    fn a_namespace_is_the_same_only_if_every_field_is() {
        let mut old = Namespace::new(NsType::Net, Inode(7));
        old.processes = vec![Pid(5)];
        old.holders = vec![Holder::Task { pid: Pid(5), tid: Pid(5) }];
        let new = Namespace::new(NsType::Net, Inode(7));
        let lists = |tasks| Lists { tasks, others: &[] };
        assert!(same_namespace(&old, &new, &lists(&[(Inode(7), (Pid(5), Pid(5)))])));
        assert!(!same_namespace(&old, &new, &lists(&[(Inode(7), (Pid(6), Pid(6)))])));
        assert!(!same_namespace(&old, &new, &lists(&[(Inode(7), (Pid(5), Pid(6)))])));
        assert!(!same_namespace(&old, &new, &lists(&[])));
        let mut owned = new.clone();
        owned.owner = Some(Inode(1));
        assert!(!same_namespace(&old, &owned, &lists(&[(Inode(7), (Pid(5), Pid(5)))])));
        let mut reached = new.clone();
        reached.path = Some("/proc/5/ns/net".into());
        assert!(!same_namespace(&old, &reached, &lists(&[(Inode(7), (Pid(5), Pid(5)))])));
    }

    #[test]
    fn equal_namespaces_are_shared_and_changed_ones_made_anew() {
        let draft = |inode| (inode, Namespace::new(NsType::Uts, inode));
        let tasks = vec![
            (Inode(2), (Pid(9), Pid(9))),
            (Inode(1), (Pid(5), Pid(5))),
            (Inode(1), (Pid(5), Pid(5))),
            (Inode(1), (Pid(3), Pid(3))),
        ];
        let first = namespaces(
            [draft(Inode(1)), draft(Inode(2))].into_iter().collect(),
            tasks.clone(),
            vec![],
            HashMap::default(),
            None,
        );
        assert_eq!(first[&Inode(1)].processes, [Pid(3), Pid(5)], "sorted, each once");
        assert_eq!(
            first[&Inode(1)].holders,
            [Holder::Task { pid: Pid(3), tid: Pid(3) }, Holder::Task { pid: Pid(5), tid: Pid(5) }]
        );
        let prev: HashMap<_, _> = first.iter().map(|(i, n)| (*i, n.clone())).collect();
        let mut kept = HashMap::default();
        let changed = vec![(Inode(2), (Pid(9), Pid(10)))];
        let mut tasks2 = tasks;
        tasks2.extend(changed);
        let second = namespaces(
            [draft(Inode(1)), draft(Inode(2))].into_iter().collect(),
            tasks2,
            vec![],
            prev,
            Some(&mut kept),
        );
        assert!(Arc::ptr_eq(&first[&Inode(1)], &second[&Inode(1)]), "unchanged: shared");
        assert!(!Arc::ptr_eq(&first[&Inode(2)], &second[&Inode(2)]), "a new thread: made anew");
        assert_eq!(second[&Inode(2)].holders.len(), 2);
        assert!(kept.len() == 2 && Arc::ptr_eq(&kept[&Inode(1)], &second[&Inode(1)]));
    }
}
