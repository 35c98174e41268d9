//! Who may see what (SPEC section 6): for a caller that is not root, the
//! namespaces it could see itself through /proc (those of its own
//! processes, and their owners and parents up to the top), computed once
//! per view and uid.

use super::tree::Ctx;
use super::{Caller, NsFs, View};
use crate::locks::Locked;
use crate::model::{Holder, Inode, Namespace, NsType, Pid, Snapshot};
use std::collections::HashSet;
use std::sync::Arc;

impl NsFs {
    pub(super) fn visible(&self, v: &View, caller: Caller) -> Option<Arc<Visibility>> {
        if caller.uid == 0 {
            return None;
        }
        let mut map = v.visible.locked();
        Some(map.entry(caller.uid).or_insert_with(|| Arc::new(visible_to(&v.snap, caller.uid))).clone())
    }
}

/// What a non-root uid could see itself through /proc: its own processes,
/// their namespaces, and those namespaces' owners and parents up to the top.
pub(super) fn visible_to(snap: &Snapshot, uid: u32) -> Visibility {
    let mut pids = HashSet::new();
    let mut out = HashSet::new();
    for (pid, links) in &snap.processes {
        let owned = std::fs::metadata(format!("/proc/{pid}"))
            .is_ok_and(|m| std::os::unix::fs::MetadataExt::uid(&m) == uid);
        if owned {
            pids.insert(*pid);
            out.extend(links.0.iter().filter(|&&i| i != 0).map(|&i| Inode::from(i)));
        }
    }
    log::debug!("uid {uid} may see {} namespaces of its own processes", out.len());
    let mut todo: Vec<Inode> = out.iter().copied().collect();
    while let Some(i) = todo.pop() {
        if let Some(ns) = snap.namespaces.get(&i) {
            for up in [ns.owner, ns.parent].into_iter().flatten() {
                if out.insert(up) {
                    todo.push(up);
                }
            }
        }
    }
    Visibility { pids, namespaces: out }
}

/// What a non-root caller may see (SPEC section 6): its own processes, and
/// their namespaces with their owners and parents up to the top.
#[derive(Clone, Debug, Default)]
pub struct Visibility {
    pub pids: HashSet<crate::model::Pid>,
    pub namespaces: HashSet<Inode>,
}

impl Ctx<'_> {
    pub(super) fn pid_visible(&self, pid: Pid) -> bool {
        self.visible.is_none_or(|v| v.pids.contains(&pid))
    }

    /// Whether a holder line may be shown (section 6: one rule for names
    /// and contents): its process, namespace or mount namespace is visible.
    pub(super) fn holder_visible(&self, h: &Holder) -> bool {
        if self.visible.is_none() {
            return true;
        }
        match h {
            Holder::Task { pid, .. }
            | Holder::Fd { pid, .. }
            | Holder::Socket { pid, .. }
            | Holder::ForChildren { pid } => self.pid_visible(*pid),
            Holder::Mount { mntns, .. } => self.mntns_visible(*mntns),
            Holder::Child { ns_type, inode } => self.ns(*ns_type, *inode).is_some(),
        }
    }

    /// Pins in nsfuse's own mount namespace, or in one the caller is in.
    pub(super) fn mntns_visible(&self, mntns: Inode) -> bool {
        self.visible.is_none() || mntns == self.snap.own_mntns || self.ns(NsType::Mnt, mntns).is_some()
    }

    /// Whether the `ns` link may be shown: a path through /proc only if
    /// that process is visible.
    pub(super) fn path_visible(&self, path: &std::path::Path) -> bool {
        crate::discovery::parse::proc_pid(path).is_none_or(|p| self.pid_visible(p))
    }

    /// What of `ns` the caller may see: for root all of it; otherwise
    /// without the processes, holders, pins, relatives and path it may not.
    pub fn visible_part<'n>(&self, ns: &'n Namespace) -> std::borrow::Cow<'n, Namespace> {
        if self.visible.is_none() {
            return std::borrow::Cow::Borrowed(ns);
        }
        let mut n = ns.clone();
        n.processes.retain(|p| self.pid_visible(*p));
        n.holders.retain(|h| self.holder_visible(h));
        n.pins.retain(|p| self.mntns_visible(p.mntns));
        n.children.retain(|c| self.ns(ns.ns_type, *c).is_some());
        n.owns.retain(|(t, i)| self.ns(*t, *i).is_some());
        n.owner = n.owner.filter(|o| self.ns(NsType::User, *o).is_some());
        n.parent = n.parent.filter(|p| self.ns(ns.ns_type, *p).is_some());
        n.path = n.path.filter(|p| self.path_visible(p));
        std::borrow::Cow::Owned(n)
    }
}
