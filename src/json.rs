//! The JSON documents, typed: `info.json` (one namespace and its
//! type-specific facts) and the entries of `nsfuse scan --json` (the same,
//! plus what `lsns --json` users look for, under lsns's names). Numbers are
//! numbers, absent things `null`, id maps, holders, owners and interfaces
//! objects; strings are the real text (JSON escapes it), not the escaped
//! form of the text files. `doc/nsfuse.schema.json` describes both.

use crate::discovery::details::{self, Detail, Fact};
use crate::discovery::parse;
use crate::model::{Holder, Namespace, Pid, Snapshot};
use crate::owners::Owner;
use serde_json::{json, Map, Value};

/// A path as a JSON string (bytes that are not UTF-8 become U+FFFD).
fn path(p: &std::path::Path) -> Value {
    Value::from(p.to_string_lossy().into_owned())
}

/// A holder as an object: `{"kind": "task", "pid": 1, "tid": 1}`...
pub fn holder(h: &Holder) -> Value {
    match h {
        Holder::Task { pid, tid } => json!({ "kind": "task", "pid": pid, "tid": tid }),
        Holder::Fd { pid, fd } => json!({ "kind": "fd", "pid": pid, "fd": fd }),
        Holder::Socket { pid, fd } => json!({ "kind": "socket", "pid": pid, "fd": fd }),
        Holder::Mount { mntns, path: p } => json!({ "kind": "mount", "mntns": mntns, "path": path(p) }),
        Holder::Child { ns_type, inode } => json!({ "kind": "child", "type": ns_type, "inode": inode }),
        Holder::ForChildren { pid } => json!({ "kind": "for-children", "pid": pid }),
    }
}

/// An owner as an object; `was` for one seen before and not now.
pub fn owner(o: &Owner, was: bool) -> Value {
    json!({ "kind": o.kind.name(), "id": o.id, "name": o.name, "was": was })
}

/// A namespace's owners, current ones first, then those it had.
pub fn owners(now: Option<&Vec<Owner>>, was: Option<&Vec<Owner>>) -> Vec<Value> {
    let now = now.into_iter().flatten().map(|o| owner(o, false));
    now.chain(was.into_iter().flatten().map(|o| owner(o, true))).collect()
}

/// What a namespace is, from the snapshot alone: identity, relatives,
/// members, holders, pins, owners. `comm_of` names a PID.
pub fn namespace(
    ns: &Namespace,
    comm_of: &dyn Fn(Pid) -> Option<String>,
    owners: &[Value],
) -> Map<String, Value> {
    let procs: Vec<Value> =
        ns.processes.iter().map(|&pid| json!({ "pid": pid, "comm": comm_of(pid) })).collect();
    let owns: Vec<Value> = ns.owns.iter().map(|(t, i)| json!({ "type": t, "inode": i })).collect();
    let pins: Vec<Value> =
        ns.pins.iter().map(|p| json!({ "mntns": p.mntns, "path": path(&p.path) })).collect();
    let value = json!({
        "type": ns.ns_type,
        "inode": ns.inode,
        "id": ns.id,
        "owner": ns.owner,
        "parent": ns.parent,
        "children": ns.children,
        "owns": owns,
        "processes": procs,
        "holders": ns.holders.iter().map(holder).collect::<Vec<_>>(),
        "pins": pins,
        "path": ns.path.as_deref().map(path),
        "container": owners,
    });
    match value {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

/// The type-specific facts of `ns` the kernel lets nsfuse read now, typed.
pub fn details(snap: &Snapshot, ns: &Namespace) -> Map<String, Value> {
    Detail::for_type(ns.ns_type)
        .iter()
        .filter_map(|&d| Some((d.name().to_owned(), fact(d, &details::read(snap, ns, d)?))))
        .collect()
}

/// One fact as JSON.
pub fn fact(detail: Detail, fact: &Fact) -> Value {
    match fact {
        Fact::Value(v) => Value::from(v.as_str()),
        Fact::Number(n) => Value::from(*n),
        Fact::Netnsid(id) => json!(id),
        Fact::Interfaces(list) => json!(list),
        Fact::Text(text) => match detail {
            Detail::UidMap | Detail::GidMap => text
                .lines()
                .filter_map(parse::id_map_line)
                .map(|[inside, outside, count]| json!({ "inside": inside, "outside": outside, "count": count }))
                .collect(),
            Detail::Mountinfo => json!(text.lines().filter_map(parse::mountinfo_entry).collect::<Vec<_>>()),
            Detail::Offsets => text
                .lines()
                .filter_map(parse::offset_line)
                .map(|(clock, s, ns)| (clock.to_owned(), json!({ "seconds": s, "nanoseconds": ns })))
                .collect::<Map<_, _>>()
                .into(),
            _ => Value::from(text.trim_end_matches('\n')),
        },
    }
}

/// The `lsns --json` columns nsfuse also fills, under lsns's names and
/// with lsns's types (util-linux 2.38: `netnsid` is a string, "unassigned"
/// when our namespace has given it no id).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LsnsColumns {
    /// Processes whose own link is this namespace (not threads alone).
    pub nprocs: usize,
    /// The lowest of them.
    pub pid: Option<Pid>,
    /// Its owner's user name (or uid).
    pub user: Option<String>,
    /// Its command line (its comm if it has none).
    pub command: Option<String>,
    /// Net only: `"N"`, `"unassigned"`, or None where unreadable.
    pub netnsid: Option<String>,
    /// Mount points of its nsfs mounts in our mount namespace, one per line.
    pub nsfs: Option<String>,
}

impl LsnsColumns {
    /// A scan entry: these columns first, in lsns's order, then `rest`.
    pub fn entry(self, ns: &Namespace, rest: Map<String, Value>) -> Map<String, Value> {
        let mut entry = Map::new();
        entry.insert("ns".into(), ns.inode.into());
        entry.insert("type".into(), json!(ns.ns_type));
        entry.insert("nprocs".into(), self.nprocs.into());
        entry.insert("pid".into(), json!(self.pid));
        entry.insert("user".into(), json!(self.user));
        entry.insert("netnsid".into(), json!(self.netnsid));
        entry.insert("nsfs".into(), json!(self.nsfs));
        entry.insert("command".into(), json!(self.command));
        entry.extend(rest);
        entry
    }
}

/// The scan document: `{"namespaces": [...]}` as lsns prints it, one
/// namespace per line (a population of thousands stays a readable size).
pub fn scan_document(entries: &[Map<String, Value>]) -> String {
    let mut out = String::from("{\n  \"namespaces\": [");
    for (i, e) in entries.iter().enumerate() {
        out.push_str(if i == 0 { "\n    " } else { ",\n    " });
        out.push_str(&serde_json::to_string(e).unwrap_or_else(|_| "{}".into()));
    }
    out.push_str(if entries.is_empty() { "]\n}\n" } else { "\n  ]\n}\n" });
    out
}

/// The members lsns counts: PIDs whose own `TYPE` link is `ns`.
pub fn lsns_members<'a>(snap: &'a Snapshot, ns: &'a Namespace) -> impl Iterator<Item = Pid> + 'a {
    let idx = ns.ns_type.index();
    ns.processes
        .iter()
        .copied()
        .filter(move |p| snap.processes.get(p).and_then(|l| l.get(idx)) == Some(ns.inode))
}

/// lsns's NSFS: the mount points of `ns` in our own mount namespace.
pub fn nsfs_column(snap: &Snapshot, ns: &Namespace) -> Option<String> {
    let own: Vec<String> = ns
        .pins
        .iter()
        .filter(|p| p.mntns == snap.own_mntns)
        .map(|p| p.path.to_string_lossy().into_owned())
        .collect();
    (!own.is_empty()).then(|| own.join("\n"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::discovery::netlink::{Address, Interface};
    use crate::model::{NsType, Pin};
    use crate::owners::Kind;

    #[test]
    fn holders_are_objects() {
        assert_eq!(holder(&Holder::Task { pid: 5, tid: 6 }), json!({"kind": "task", "pid": 5, "tid": 6}));
        let m = Holder::Mount { mntns: 9, path: "/run/netns/a\nb".into() };
        assert_eq!(holder(&m), json!({"kind": "mount", "mntns": 9, "path": "/run/netns/a\nb"}));
        let c = Holder::Child { ns_type: NsType::Pid, inode: 3 };
        assert_eq!(holder(&c), json!({"kind": "child", "type": "pid", "inode": 3}));
        assert_eq!(holder(&Holder::ForChildren { pid: 2 }), json!({"kind": "for-children", "pid": 2}));
    }

    #[test]
    fn a_namespace_is_typed() {
        let mut ns = Namespace::new(NsType::User, 100);
        ns.owns = vec![(NsType::Net, 7)];
        ns.processes = vec![42];
        ns.pins = vec![Pin { mntns: 1, path: "/run/nsfuse/user/x".into() }];
        let own = [owner(&Owner::new(Kind::Docker, "abc"), false)];
        let v = Value::Object(namespace(&ns, &|p| Some(format!("c{p}")), &own));
        assert_eq!(v["inode"], 100);
        assert_eq!(v["id"], Value::Null);
        assert_eq!(v["owns"], json!([{"type": "net", "inode": 7}]));
        assert_eq!(v["processes"], json!([{"pid": 42, "comm": "c42"}]));
        assert_eq!(v["pins"], json!([{"mntns": 1, "path": "/run/nsfuse/user/x"}]));
        assert_eq!(v["container"], json!([{"kind": "docker", "id": "abc", "name": null, "was": false}]));
    }

    #[test]
    fn facts_are_typed() {
        let map = Fact::Text("         0       1000          1\n         1     100000      65536\n".into());
        assert_eq!(
            fact(Detail::UidMap, &map),
            json!([{"inside": 0, "outside": 1000, "count": 1}, {"inside": 1, "outside": 100000, "count": 65536}])
        );
        assert_eq!(fact(Detail::Netnsid, &Fact::Netnsid(None)), Value::Null);
        assert_eq!(fact(Detail::Netnsid, &Fact::Netnsid(Some(3))), json!(3));
        assert_eq!(fact(Detail::Level, &Fact::Number(2)), json!(2));
        assert_eq!(fact(Detail::Hostname, &Fact::Value("a\nb".into())), json!("a\nb"));
        let off = Fact::Text("monotonic 10 0\nboottime -3 5\n".into());
        assert_eq!(
            fact(Detail::Offsets, &off),
            json!({"monotonic": {"seconds": 10, "nanoseconds": 0}, "boottime": {"seconds": -3, "nanoseconds": 5}})
        );
        let mi = Fact::Text("22 1 0:5 / /run rw shared:3 - tmpfs tmpfs rw\n".into());
        let v = fact(Detail::Mountinfo, &mi);
        assert_eq!(
            (v[0]["target"].clone(), v[0]["propagation"].clone()),
            (json!("/run"), json!(["shared:3"]))
        );
        let lo = Interface {
            index: 1,
            name: "lo".into(),
            state: "UNKNOWN",
            up: true,
            mtu: Some(65536),
            mac: Some("00:00:00:00:00:00".into()),
            addresses: vec![Address {
                family: "inet",
                address: "127.0.0.1".into(),
                prefixlen: 8,
                scope: "host".into(),
            }],
        };
        let v = fact(Detail::Interfaces, &Fact::Interfaces(vec![lo]));
        assert_eq!(v[0]["addresses"][0]["address"], "127.0.0.1");
        assert_eq!(v[0]["state"], "UNKNOWN");
    }

    #[test]
    fn lsns_columns_keep_lsns_names() {
        let ns = Namespace::new(NsType::Net, 77);
        let cols =
            LsnsColumns { nprocs: 2, pid: Some(5), netnsid: Some("unassigned".into()), ..Default::default() };
        let entry = cols.entry(&ns, namespace(&ns, &|_| None, &[]));
        let keys: Vec<&str> = entry.keys().map(String::as_str).take(9).collect();
        assert_eq!(keys, ["ns", "type", "nprocs", "pid", "user", "netnsid", "nsfs", "command", "inode"]);
        let doc: Value = serde_json::from_str(&scan_document(&[entry.clone(), entry])).unwrap();
        assert_eq!(doc["namespaces"].as_array().map(Vec::len), Some(2));
        assert_eq!(serde_json::from_str::<Value>(&scan_document(&[])).unwrap(), json!({"namespaces": []}));
        let v = doc["namespaces"][0].clone();
        assert_eq!((v["ns"].clone(), v["nprocs"].clone(), v["pid"].clone()), (json!(77), json!(2), json!(5)));
        assert_eq!((v["netnsid"].clone(), v["nsfs"].clone()), (json!("unassigned"), Value::Null));
    }
}
