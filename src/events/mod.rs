//! The lifecycle events behind `MOUNT/events` (SPEC section 8): found by
//! comparing successive snapshots (`diff`, pure) and kept in a bounded
//! `Log` (log.rs) whose byte offsets only grow, so `tail -f` follows it by
//! size and a reader whose place was dropped resumes at the oldest line
//! kept.

mod log;

pub use log::Log;

use crate::model::{Inode, Namespace, Pid, Pin, Snapshot};
use std::time::{SystemTime, UNIX_EPOCH};

/// What happened to a namespace.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    New,
    Pinned,
    Released,
    Orphaned,
    Adopted,
    Gone,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::New => "new",
            Kind::Pinned => "pinned",
            Kind::Released => "released",
            Kind::Orphaned => "orphaned",
            Kind::Adopted => "adopted",
            Kind::Gone => "gone",
        }
    }
}

/// One event, before it is timed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    pub kind: Kind,
    pub ns: crate::model::NsType,
    pub inode: Inode,
    /// `PID COMM` or a pin path for `new`, the path for `pinned` and
    /// `released`; empty otherwise.
    pub detail: String,
}

/// Whether two snapshots' namespaces with one inode are the same one (inode
/// numbers are reused at once; the 64-bit id tells them apart).
fn same(a: &Namespace, b: &Namespace) -> bool {
    a.ns_type == b.ns_type && a.id == b.id
}

/// What changed from `old` to `new`, in inode order. `comm` names a
/// process for `new` events.
pub fn diff(old: &Snapshot, new: &Snapshot, comm: &dyn Fn(Pid) -> Option<String>) -> Vec<Event> {
    let mut out = Vec::new();
    let ev = |kind, n: &Namespace, detail: String| Event { kind, ns: n.ns_type, inode: n.inode, detail };
    for (i, n) in &new.namespaces {
        match old.namespaces.get(i).filter(|o| same(o, n)) {
            None => {
                if let Some(o) = old.namespaces.get(i) {
                    out.push(ev(Kind::Gone, o, String::new()));
                }
                let detail = match (n.processes.first(), n.pins.first()) {
                    (Some(&pid), _) => {
                        format!("{pid} {}", comm(pid).unwrap_or_default()).trim_end().to_owned()
                    }
                    (None, Some(pin)) => pin.path.to_string_lossy().into_owned(),
                    (None, None) => n.holders.first().map(crate::render::holder_line).unwrap_or_default(),
                };
                out.push(ev(Kind::New, n, detail));
                out.extend(n.pins.iter().skip(usize::from(n.processes.is_empty())).map(|p| pinned(n, p)));
            }
            Some(o) => {
                out.extend(n.pins.iter().filter(|p| !o.pins.contains(p)).map(|p| pinned(n, p)));
                let released = o.pins.iter().filter(|p| !n.pins.contains(p));
                out.extend(released.map(|p| ev(Kind::Released, n, p.path.to_string_lossy().into_owned())));
                match (o.processes.is_empty(), n.processes.is_empty()) {
                    (false, true) => out.push(ev(Kind::Orphaned, n, String::new())),
                    (true, false) => out.push(ev(Kind::Adopted, n, String::new())),
                    _ => {}
                }
            }
        }
    }
    for (i, o) in &old.namespaces {
        if !new.namespaces.contains_key(i) {
            out.extend(o.pins.iter().map(|p| ev(Kind::Released, o, p.path.to_string_lossy().into_owned())));
            out.push(ev(Kind::Gone, o, String::new()));
        }
    }
    out
}

fn pinned(n: &Namespace, p: &Pin) -> Event {
    Event { kind: Kind::Pinned, ns: n.ns_type, inode: n.inode, detail: p.path.to_string_lossy().into_owned() }
}

/// RFC 3339 UTC with milliseconds: `2026-11-28T03:12:45.123Z`.
pub fn rfc3339(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let (secs, ms) = (d.as_secs(), d.subsec_millis());
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{ms:03}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::NsType;
    use std::sync::Arc;

    fn snap(nss: &[(u64, u64, Vec<i32>, Vec<&str>)]) -> Snapshot {
        let mut s = Snapshot::default();
        for (inode, id, procs, pins) in nss {
            let mut n = Namespace::new(NsType::Net, Inode(*inode));
            n.id = Some(*id);
            n.processes = procs.iter().map(|&p| Pid(p)).collect();
            n.pins = pins.iter().map(|p| Pin { mntns: Inode(1), path: p.into() }).collect();
            s.namespaces.insert(Inode(*inode), Arc::new(n));
        }
        s
    }

    fn lines(events: &[Event]) -> Vec<String> {
        events
            .iter()
            .map(|e| format!("{} {} {}", e.kind.name(), e.inode, e.detail).trim_end().to_owned())
            .collect()
    }

    #[test]
    fn a_namespace_life_in_events() {
        let comm = |p: Pid| Some(format!("cmd{p}"));
        let empty = snap(&[]);
        let born = snap(&[(5, 50, vec![7], vec![])]);
        let pinned = snap(&[(5, 50, vec![7], vec!["/run/netns/x"])]);
        let orphan = snap(&[(5, 50, vec![], vec!["/run/netns/x"])]);
        let adopted = snap(&[(5, 50, vec![8], vec!["/run/netns/x"])]);
        let released = snap(&[(5, 50, vec![8], vec![])]);
        assert_eq!(lines(&diff(&empty, &born, &comm)), ["new 5 7 cmd7"]);
        assert_eq!(lines(&diff(&born, &pinned, &comm)), ["pinned 5 /run/netns/x"]);
        assert_eq!(lines(&diff(&pinned, &orphan, &comm)), ["orphaned 5"]);
        assert_eq!(lines(&diff(&orphan, &adopted, &comm)), ["adopted 5"]);
        assert_eq!(lines(&diff(&adopted, &released, &comm)), ["released 5 /run/netns/x"]);
        assert_eq!(lines(&diff(&orphan, &empty, &comm)), ["released 5 /run/netns/x", "gone 5"]);
        // Processless and pinned at birth: new names the pin.
        assert_eq!(lines(&diff(&empty, &orphan, &comm)), ["new 5 /run/netns/x"]);
        // The same inode number, another namespace: gone, then new.
        let reused = snap(&[(5, 51, vec![9], vec![])]);
        assert_eq!(lines(&diff(&born, &reused, &comm)), ["gone 5", "new 5 9 cmd9"]);
        assert!(diff(&born, &born, &comm).is_empty());
    }

    #[test]
    fn times_are_rfc3339_utc_with_milliseconds() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        let t = UNIX_EPOCH + std::time::Duration::from_millis(1_795_843_965_123);
        assert_eq!(rfc3339(t), "2026-11-28T05:32:45.123Z");
        let leap = UNIX_EPOCH + std::time::Duration::from_secs(951_782_400);
        assert_eq!(rfc3339(leap), "2000-02-29T00:00:00.000Z");
    }
}
