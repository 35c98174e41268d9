//! `MOUNT/metrics` and `nsfuse scan --prometheus`: the Prometheus text
//! exposition format (0.0.4) over one snapshot and the daemon's counters.
//! Label values are bounded (types, holder kinds, owner kinds, event
//! names), never IDs, so a fleet's series count stays small.

use crate::model::{Holder, Inode, NsType, PinDirs, Snapshot};
use crate::owners::index::is_orphan;
use crate::owners::Owner;
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;

/// What a daemon counts between scrapes (a one-off scan has none of it).
#[derive(Clone, Debug, Default)]
pub struct Counters {
    /// Events logged, by name.
    pub events: BTreeMap<&'static str, u64>,
    /// Refreshes made, full and incremental.
    pub full_refreshes: u64,
    pub incremental_refreshes: u64,
    /// How long the last of each took, in seconds.
    pub last_full_seconds: Option<f64>,
    pub last_incremental_seconds: Option<f64>,
    /// The daemon's resident memory.
    pub resident_bytes: Option<u64>,
}

/// The resident set size of this process (`/proc/self/statm`).
pub fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * crate::sys::page_size())
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

const HOLDER_KINDS: [&str; 6] = ["task", "fd", "socket", "mount", "child", "for_children"];

fn holder_kind(h: &Holder) -> &'static str {
    match h {
        Holder::Task { .. } => "task",
        Holder::Fd { .. } => "fd",
        Holder::Socket { .. } => "socket",
        Holder::Mount { .. } => "mount",
        Holder::Child { .. } => "child",
        Holder::ForChildren { .. } => "for_children",
    }
}

/// The whole exposition.
pub fn render(snap: &Snapshot, dirs: &PinDirs, owners: &HashMap<Inode, Vec<Owner>>, c: &Counters) -> String {
    let mut out = String::new();
    snapshot_families(&mut out, snap, dirs);
    owner_family(&mut out, owners);
    daemon_families(&mut out, snap, c);
    out
}

/// Namespaces, orphans, pins and holders, counted over the snapshot.
fn snapshot_families(out: &mut String, snap: &Snapshot, dirs: &PinDirs) {
    let mut by_type: BTreeMap<NsType, (u64, u64)> = NsType::ALL.iter().map(|t| (*t, (0, 0))).collect();
    let mut pins: BTreeMap<(NsType, &'static str), u64> = BTreeMap::new();
    let mut holders: BTreeMap<&'static str, u64> = HOLDER_KINDS.iter().map(|k| (*k, 0)).collect();
    for ns in snap.namespaces.values() {
        let e = by_type.entry(ns.ns_type).or_default();
        e.0 += 1;
        e.1 += u64::from(is_orphan(ns));
        for p in &ns.pins {
            let dir = match p.path.parent() {
                Some(d) if p.mntns == snap.own_mntns && d == dirs.netns_dir => "netns",
                Some(d) if p.mntns == snap.own_mntns && d.parent() == Some(dirs.pin_dir.as_path()) => {
                    "nsfuse"
                }
                _ => "other",
            };
            *pins.entry((ns.ns_type, dir)).or_default() += 1;
        }
        for h in &ns.holders {
            *holders.entry(holder_kind(h)).or_default() += 1;
        }
    }
    family(out, "nsfuse_namespaces", "gauge", "Live namespaces, by type.");
    for (t, (n, _)) in &by_type {
        let _ = writeln!(out, "nsfuse_namespaces{{type=\"{t}\"}} {n}");
    }
    family(out, "nsfuse_namespaces_orphaned", "gauge", "Namespaces with no task in them, by type.");
    for (t, (_, n)) in &by_type {
        let _ = writeln!(out, "nsfuse_namespaces_orphaned{{type=\"{t}\"}} {n}");
    }
    family(out, "nsfuse_pins", "gauge", "Bind mounts holding namespaces, by type and directory.");
    for ((t, dir), n) in &pins {
        let _ = writeln!(out, "nsfuse_pins{{type=\"{t}\",dir=\"{dir}\"}} {n}");
    }
    family(out, "nsfuse_holders", "gauge", "References keeping namespaces alive, by kind.");
    for (k, n) in &holders {
        let _ = writeln!(out, "nsfuse_holders{{kind=\"{k}\"}} {n}");
    }
}

/// Namespaces with an owner line, by owner kind.
fn owner_family(out: &mut String, owners: &HashMap<Inode, Vec<Owner>>) {
    let mut by_owner: BTreeMap<&'static str, u64> = BTreeMap::new();
    for o in owners.values().flatten() {
        *by_owner.entry(o.kind.name()).or_default() += 1;
    }
    family(out, "nsfuse_namespaces_by_owner", "gauge", "Namespaces with an owner line, by owner kind.");
    for (k, n) in &by_owner {
        let _ = writeln!(out, "nsfuse_namespaces_by_owner{{kind=\"{k}\"}} {n}");
    }
}

/// The daemon's own counters: events, refreshes, scan times, memory.
fn daemon_families(out: &mut String, snap: &Snapshot, c: &Counters) {
    family(out, "nsfuse_events_total", "counter", "Lifecycle events logged, by event.");
    for e in ["new", "pinned", "released", "orphaned", "adopted", "gone"] {
        let _ =
            writeln!(out, "nsfuse_events_total{{event=\"{e}\"}} {}", c.events.get(e).copied().unwrap_or(0));
    }
    family(out, "nsfuse_refreshes_total", "counter", "Refreshes made, by kind.");
    let _ = writeln!(out, "nsfuse_refreshes_total{{kind=\"full\"}} {}", c.full_refreshes);
    let _ = writeln!(out, "nsfuse_refreshes_total{{kind=\"incremental\"}} {}", c.incremental_refreshes);
    family(out, "nsfuse_scan_duration_seconds", "gauge", "How long the last scan of each kind took.");
    let duration = c.last_full_seconds.or(snap.taken_at.is_some().then_some(snap.duration.as_secs_f64()));
    if let Some(s) = duration {
        let _ = writeln!(out, "nsfuse_scan_duration_seconds{{kind=\"full\"}} {s}");
    }
    if let Some(s) = c.last_incremental_seconds {
        let _ = writeln!(out, "nsfuse_scan_duration_seconds{{kind=\"incremental\"}} {s}");
    }
    if let Some(b) = c.resident_bytes {
        family(out, "nsfuse_daemon_resident_bytes", "gauge", "Resident memory of the nsfuse process.");
        let _ = writeln!(out, "nsfuse_daemon_resident_bytes {b}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Namespace, Pid, Pin};
    use std::sync::Arc;

    #[test]
    fn counts_by_type_orphans_pins_and_holders() {
        let mut s = Snapshot { own_mntns: Inode(9), ..Default::default() };
        let mut a = Namespace::new(NsType::Net, Inode(1));
        a.processes = vec![Pid(5)];
        a.holders = vec![Holder::Task { pid: Pid(5), tid: Pid(5) }];
        let mut b = Namespace::new(NsType::Net, Inode(2));
        b.pins = vec![Pin { mntns: Inode(9), path: "/run/netns/x".into() }];
        b.holders = vec![Holder::Mount { mntns: Inode(9), path: "/run/netns/x".into() }];
        s.namespaces.insert(Inode(1), Arc::new(a));
        s.namespaces.insert(Inode(2), Arc::new(b));
        let text = render(&s, &PinDirs::default(), &HashMap::new(), &Counters::default());
        for want in [
            "nsfuse_namespaces{type=\"net\"} 2",
            "nsfuse_namespaces{type=\"uts\"} 0",
            "nsfuse_namespaces_orphaned{type=\"net\"} 1",
            "nsfuse_pins{type=\"net\",dir=\"netns\"} 1",
            "nsfuse_holders{kind=\"task\"} 1",
            "nsfuse_holders{kind=\"mount\"} 1",
            "nsfuse_events_total{event=\"gone\"} 0",
            "# TYPE nsfuse_refreshes_total counter",
        ] {
            assert!(text.lines().any(|l| l == want), "{want} in:\n{text}");
        }
    }
}
