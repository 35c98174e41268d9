//! The JSON documents, typed: `info.json` (one namespace and its
//! type-specific facts) and the entries of `nsfuse scan --json` (the same,
//! plus what `lsns --json` users look for, under lsns's names). Numbers are
//! numbers, absent things `null`, id maps, holders, owners and interfaces
//! objects; strings are the real text (JSON escapes it), not the escaped
//! form of the text files. `doc/nsfuse.schema.json` describes both.

use crate::discovery::details::{self, Detail, Fact};
use crate::discovery::parse;
use crate::model::{Holder, Inode, Namespace, NsType, Pid, Snapshot};
use crate::owners::Owner;
use serde::Serialize;
use serde_json::{json, Map, Value};
use std::borrow::Cow;

/// A path as a JSON string (bytes that are not UTF-8 become U+FFFD).
fn path(p: &std::path::Path) -> Cow<'_, str> {
    p.to_string_lossy()
}

/// A holder as an object: `{"kind": "task", "pid": 1, "tid": 1}`...
#[derive(Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum HolderDoc<'a> {
    Task {
        pid: Pid,
        tid: Pid,
    },
    Fd {
        pid: Pid,
        fd: i32,
    },
    Socket {
        pid: Pid,
        fd: i32,
    },
    Mount {
        mntns: Inode,
        path: Cow<'a, str>,
    },
    Child {
        #[serde(rename = "type")]
        ns_type: NsType,
        inode: Inode,
    },
    ForChildren {
        pid: Pid,
    },
}

impl<'a> From<&'a Holder> for HolderDoc<'a> {
    fn from(h: &'a Holder) -> Self {
        match h {
            Holder::Task { pid, tid } => HolderDoc::Task { pid: *pid, tid: *tid },
            Holder::Fd { pid, fd } => HolderDoc::Fd { pid: *pid, fd: *fd },
            Holder::Socket { pid, fd } => HolderDoc::Socket { pid: *pid, fd: *fd },
            Holder::Mount { mntns, path: p } => HolderDoc::Mount { mntns: *mntns, path: path(p) },
            Holder::Child { ns_type, inode } => HolderDoc::Child { ns_type: *ns_type, inode: *inode },
            Holder::ForChildren { pid } => HolderDoc::ForChildren { pid: *pid },
        }
    }
}

/// An owner as an object; `was` for one seen before and not now.
#[derive(Serialize)]
pub struct OwnerDoc<'a> {
    kind: &'static str,
    id: &'a str,
    name: Option<&'a str>,
    was: bool,
}

/// A namespace's owners, current ones first, then those it had.
pub fn owners<'a>(now: Option<&'a Vec<Owner>>, was: Option<&'a Vec<Owner>>) -> Vec<OwnerDoc<'a>> {
    let doc = |was: bool| {
        move |o: &'a Owner| OwnerDoc { kind: o.kind.name(), id: &o.id, name: o.name.as_deref(), was }
    };
    let now = now.into_iter().flatten().map(doc(false));
    now.chain(was.into_iter().flatten().map(doc(true))).collect()
}

#[derive(Serialize)]
pub struct TypedInode {
    #[serde(rename = "type")]
    ns_type: NsType,
    inode: Inode,
}

#[derive(Serialize)]
pub struct ProcessDoc {
    pid: Pid,
    comm: Option<String>,
}

#[derive(Serialize)]
pub struct PinDoc<'a> {
    mntns: Inode,
    path: Cow<'a, str>,
}

/// What a namespace is, from the snapshot alone: identity, relatives,
/// members, holders, pins, owners. Serialized straight from the snapshot
/// (no intermediate JSON values: a scan has tens of thousands of holders).
#[derive(Serialize)]
pub struct NamespaceDoc<'a> {
    /// None in a scan entry, which has the type among lsns's columns.
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    ns_type: Option<NsType>,
    inode: Inode,
    id: Option<u64>,
    owner: Option<Inode>,
    parent: Option<Inode>,
    children: &'a [Inode],
    owns: Vec<TypedInode>,
    processes: Vec<ProcessDoc>,
    holders: Vec<HolderDoc<'a>>,
    pins: Vec<PinDoc<'a>>,
    path: Option<Cow<'a, str>>,
    container: Vec<OwnerDoc<'a>>,
}

/// `ns` as a document; `comm_of` names a PID.
pub fn namespace<'a>(
    ns: &'a Namespace,
    comm_of: &dyn Fn(Pid) -> Option<String>,
    owners: Vec<OwnerDoc<'a>>,
) -> NamespaceDoc<'a> {
    NamespaceDoc {
        ns_type: Some(ns.ns_type),
        inode: ns.inode,
        id: ns.id,
        owner: ns.owner,
        parent: ns.parent,
        children: &ns.children,
        owns: ns.owns.iter().map(|&(ns_type, inode)| TypedInode { ns_type, inode }).collect(),
        processes: ns.processes.iter().map(|&pid| ProcessDoc { pid, comm: comm_of(pid) }).collect(),
        holders: ns.holders.iter().map(HolderDoc::from).collect(),
        pins: ns.pins.iter().map(|p| PinDoc { mntns: p.mntns, path: path(&p.path) }).collect(),
        path: ns.path.as_deref().map(path),
        container: owners,
    }
}

/// `info.json`: the namespace, its age, and the type-specific files.
#[derive(Serialize)]
pub struct InfoDoc<'a> {
    #[serde(flatten)]
    pub namespace: NamespaceDoc<'a>,
    /// Seconds since first seen with no process; None while it has one.
    pub age: Option<u64>,
    #[serde(flatten)]
    pub details: Map<String, Value>,
}

/// The type-specific facts of `ns` the kernel lets nsfuse read now, typed.
pub fn details(snap: &Snapshot, ns: &Namespace) -> Map<String, Value> {
    Detail::for_type(ns.ns_type)
        .iter()
        .filter_map(|&d| match details::read(snap, ns, d) {
            Ok(f) => Some((d.name().to_owned(), fact(d, &f))),
            Err(e) => {
                log::debug!("{e}");
                None
            }
        })
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
    /// A scan entry: these columns first, in lsns's order, then the namespace.
    pub fn entry<'a>(self, ns: &Namespace, mut rest: NamespaceDoc<'a>) -> ScanEntry<'a> {
        rest.ns_type = None;
        ScanEntry {
            ns: ns.inode,
            ns_type: ns.ns_type,
            nprocs: self.nprocs,
            pid: self.pid,
            user: self.user,
            netnsid: self.netnsid,
            nsfs: self.nsfs,
            command: self.command,
            rest,
        }
    }
}

/// One namespace of `nsfuse scan --json`.
#[derive(Serialize)]
pub struct ScanEntry<'a> {
    ns: Inode,
    #[serde(rename = "type")]
    ns_type: NsType,
    nprocs: usize,
    pid: Option<Pid>,
    user: Option<String>,
    netnsid: Option<String>,
    nsfs: Option<String>,
    command: Option<String>,
    #[serde(flatten)]
    rest: NamespaceDoc<'a>,
}

/// The scan document: `{"namespaces": [...]}` as lsns prints it, one
/// namespace per line (a population of thousands stays a readable size).
pub fn scan_document(entries: &[ScanEntry<'_>]) -> String {
    let mut out = String::from("{\n  \"namespaces\": [");
    for (i, e) in entries.iter().enumerate() {
        out.push_str(if i == 0 { "\n    " } else { ",\n    " });
        out.push_str(&serde_json::to_string(e).unwrap_or_else(|_| "{}".into()));
    }
    out.push_str(if entries.is_empty() { "]\n}\n" } else { "\n  ]\n}\n" });
    out
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

    fn holder(h: &Holder) -> Value {
        serde_json::to_value(HolderDoc::from(h)).unwrap()
    }

    #[test]
    fn holders_are_objects() {
        assert_eq!(
            holder(&Holder::Task { pid: Pid(5), tid: Pid(6) }),
            json!({"kind": "task", "pid": 5, "tid": 6})
        );
        let m = Holder::Mount { mntns: Inode(9), path: "/run/netns/a\nb".into() };
        assert_eq!(holder(&m), json!({"kind": "mount", "mntns": 9, "path": "/run/netns/a\nb"}));
        let c = Holder::Child { ns_type: NsType::Pid, inode: Inode(3) };
        assert_eq!(holder(&c), json!({"kind": "child", "type": "pid", "inode": 3}));
        assert_eq!(holder(&Holder::ForChildren { pid: Pid(2) }), json!({"kind": "for-children", "pid": 2}));
    }

    #[test]
    fn a_namespace_is_typed() {
        let mut ns = Namespace::new(NsType::User, Inode(100));
        ns.owns = vec![(NsType::Net, Inode(7))];
        ns.processes = vec![Pid(42)];
        ns.pins = vec![Pin { mntns: Inode(1), path: "/run/nsfuse/user/x".into() }];
        let docker = vec![Owner::new(Kind::Docker, "abc")];
        let v = serde_json::to_value(namespace(&ns, &|p| Some(format!("c{p}")), owners(Some(&docker), None)))
            .unwrap();
        assert_eq!(v["type"], "user");
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
        let ns = Namespace::new(NsType::Net, Inode(77));
        let cols = LsnsColumns {
            nprocs: 2,
            pid: Some(Pid(5)),
            netnsid: Some("unassigned".into()),
            ..Default::default()
        };
        let entries = [
            cols.clone().entry(&ns, namespace(&ns, &|_| None, Vec::new())),
            cols.entry(&ns, namespace(&ns, &|_| None, Vec::new())),
        ];
        let text = scan_document(&entries);
        // lsns's columns first, in lsns's order, and `type` only once.
        let line = text.lines().nth(2).unwrap().trim();
        assert!(line.starts_with(r#"{"ns":77,"type":"net","nprocs":2,"pid":5,"user":null,"netnsid":"unassigned","nsfs":null,"command":null,"inode":77,"#), "{line}");
        assert_eq!(line.matches(r#""type""#).count(), 1, "{line}");
        let doc: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(doc["namespaces"].as_array().map(Vec::len), Some(2));
        assert_eq!(serde_json::from_str::<Value>(&scan_document(&[])).unwrap(), json!({"namespaces": []}));
        let v = doc["namespaces"][0].clone();
        assert_eq!((v["ns"].clone(), v["nprocs"].clone(), v["pid"].clone()), (json!(77), json!(2), json!(5)));
        assert_eq!((v["netnsid"].clone(), v["nsfs"].clone()), (json!("unassigned"), Value::Null));
    }
}
