//! Text of the per-namespace files (`processes`, `holders`, `pins`,
//! `info.json`), rendered from a snapshot. Shared by the mounted tree and
//! `nsfuse scan --json`, so both always say the same thing.

use crate::discovery::details::{self, Detail};
use crate::model::{Namespace, Pid, Snapshot};
use serde_json::{json, Map, Value};

/// A process's command name (`/proc/PID/comm`), if it is still there.
pub fn comm(pid: Pid) -> Option<String> {
    let mut s = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
    if s.ends_with('\n') {
        s.pop();
    }
    Some(s)
}

/// `PID<TAB>COMM` per member process, sorted by PID; processes that exited
/// since the scan are left out.
pub fn processes(ns: &Namespace) -> String {
    let mut out = String::new();
    for &pid in &ns.processes {
        if let Some(c) = comm(pid) {
            out.push_str(&format!("{pid}\t{c}\n"));
        }
    }
    out
}

/// One `holders` line per reference.
pub fn holders(ns: &Namespace) -> String {
    ns.holders.iter().map(|h| format!("{h}\n")).collect()
}

/// One `MNTNS PATH` line per bind mount.
pub fn pins(ns: &Namespace) -> String {
    ns.pins.iter().map(|p| format!("{} {}\n", p.mntns, p.path.display())).collect()
}

/// Everything about one namespace as a JSON object; with `with_details`,
/// the type-specific files too (read from the kernel now). `comm_of` names
/// a PID (`comm`, or a cache of it when rendering many namespaces).
pub fn info_json(
    snap: &Snapshot,
    ns: &Namespace,
    with_details: bool,
    comm_of: &dyn Fn(Pid) -> Option<String>,
) -> Value {
    let procs: Vec<Value> =
        ns.processes.iter().map(|&pid| json!({ "pid": pid, "comm": comm_of(pid) })).collect();
    let mut obj = json!({
        "type": ns.ns_type,
        "inode": ns.inode,
        "id": ns.id,
        "owner": ns.owner,
        "parent": ns.parent,
        "children": ns.children,
        "owns": ns.owns.iter().map(|(t, i)| format!("{t}:{i}")).collect::<Vec<_>>(),
        "processes": procs,
        "holders": ns.holders,
        "pins": ns.pins,
        "path": ns.path,
    });
    if with_details {
        let mut d = Map::new();
        for &detail in Detail::for_type(ns.ns_type) {
            if let Some(text) = details::read(snap, ns, detail) {
                d.insert(detail.name().to_owned(), Value::String(text));
            }
        }
        if let Value::Object(o) = &mut obj {
            o.extend(d);
        }
    }
    obj
}
