//! Who may see what (SPEC section 6): for a caller that is not root, the
//! namespaces it could see itself through /proc (those of its own
//! processes, and their owners and parents up to the top), computed once
//! per view and uid.

use super::tree::Visibility;
use super::{Caller, NsFs, View};
use crate::model::{Inode, Snapshot};
use std::collections::HashSet;
use std::sync::Arc;

impl NsFs {
    pub(super) fn visible(&self, v: &View, caller: Caller) -> Option<Arc<Visibility>> {
        if caller.uid == 0 {
            return None;
        }
        let mut map = v.visible.lock().unwrap_or_else(|e| e.into_inner());
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
            out.extend(links.0.iter().filter(|&&i| i != 0).map(|&i| i as Inode));
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
