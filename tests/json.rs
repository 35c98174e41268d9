//! The typed JSON documents (issue: watch, count and script): every
//! `info.json` of a populated tree and `nsfuse scan --json` validate
//! against `doc/nsfuse.schema.json` with a registry validator (Python's
//! `jsonschema`, through `scripts/validate-json`); typed values equal what
//! the kernel and iproute2 say; the lsns-named fields of the scan equal
//! what `lsns --json` prints for the same namespaces.

mod common;

use common::*;
use serde_json::{json, Value};
use std::path::Path;

fn nsfuse(args: &[&str]) -> String {
    let bin = nsfuse_bin();
    let all: Vec<&str> = std::iter::once(bin.to_str().unwrap()).chain(args.iter().copied()).collect();
    run(&all)
}

/// `scripts/validate-json DEF FILES...` must pass.
fn validate(def: &str, files: &[std::path::PathBuf]) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/validate-json");
    let out = std::process::Command::new(&script).arg(def).args(files).output().expect("run validate-json");
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{def} documents do not match the schema:\n{text}");
    assert!(text.contains(&format!("{} documents, 0 violations", files.len())), "{text}");
}

/// A veth pair from our network namespace into `pid`'s: the kernel gives
/// that namespace an nsid here. Removed on drop (by name).
struct Veth(String);

impl Veth {
    fn into_netns_of(pid: i32) -> Veth {
        let name = format!("vj{}", pid);
        run(&["ip", "link", "add", &name, "type", "veth", "peer", "name", "eth0", "netns", &pid.to_string()]);
        Veth(name)
    }

    /// The nsid our namespace has for the peer's (`link_netnsid`).
    fn peer_nsid(&self) -> u64 {
        let v: Value = serde_json::from_str(&run(&["ip", "-j", "link", "show", &self.0])).unwrap();
        v[0]["link_netnsid"].as_u64().expect("link_netnsid")
    }
}

impl Drop for Veth {
    fn drop(&mut self) {
        let _ = run_ok(&["ip", "link", "del", &self.0]);
    }
}

/// `ip -j addr` inside a network namespace, reduced to the fields nsfuse
/// types: what `interfaces` in info.json must equal.
fn ip_addr_in(ns: &Path) -> Value {
    let out = run(&["nsenter", &format!("--net={}", ns.display()), "ip", "-j", "addr"]);
    let list: Vec<Value> = serde_json::from_str(&out).unwrap();
    list.iter()
        .map(|l| {
            let addrs: Vec<Value> = l["addr_info"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| json!({"family": a["family"], "address": a["local"], "prefixlen": a["prefixlen"], "scope": a["scope"]}))
                .collect();
            let up = l["flags"].as_array().unwrap().iter().any(|f| f == "UP");
            json!({"index": l["ifindex"], "name": l["ifname"], "state": l["operstate"], "up": up,
                   "mtu": l["mtu"], "mac": l["address"], "addresses": addrs})
        })
        .collect()
}

#[test]
fn every_document_matches_the_schema_and_the_kernel() {
    // Namespaces of every type in one process tree (user-owned), a veth
    // into its net namespace, an address on it, and processless namespaces
    // made and pinned through ctl (not pid: its init would outlive a test
    // that fails before releasing it).
    let p = Proc::cmd(&[
        "unshare",
        "--user",
        "--map-root-user",
        "--net",
        "--uts",
        "--ipc",
        "--pid",
        "--fork",
        "--kill-child",
        "--mount",
        "--cgroup",
        "--time",
        "sleep",
        "1000",
    ]);
    let net = wait_unshared(p.pid(), "net");
    let user = ino(format!("/proc/{}/ns/user", p.pid()));
    let veth = Veth::into_netns_of(p.pid());
    let ns_net = format!("/proc/{}/ns/net", p.pid());
    run(&["nsenter", &format!("--net={ns_net}"), "ip", "addr", "add", "10.77.0.1/24", "dev", "eth0"]);
    let m = Nsfuse::start(&[]);
    let me = std::process::id();
    for t in ["net", "user", "time", "uts"] {
        write_ctl(&m.path("ctl"), format!("new {t} json{t}{me}\n"))
            .unwrap_or_else(|e| panic!("new {t}: errno {e}"));
    }
    let lone_net = ino(m.netns_dir.join(format!("jsonnet{me}")));

    // Every info.json in the tree, and the scan.
    let out = TempDir::new("json");
    let mut files = Vec::new();
    for t in ["cgroup", "ipc", "mnt", "net", "pid", "time", "user", "uts"] {
        for e in std::fs::read_dir(m.path(t)).unwrap().flatten() {
            // (A namespace of another test may end in between.)
            if let Ok(text) = std::fs::read_to_string(e.path().join("info.json")) {
                let f = out.join(&format!("{t}-{}.json", e.file_name().to_string_lossy()));
                std::fs::write(&f, text).unwrap();
                files.push(f);
            }
        }
    }
    assert!(files.len() >= 16, "too few namespaces: {}", files.len());
    validate("info", &files);
    let scan = out.join("scan.json");
    std::fs::write(&scan, nsfuse(&["scan", "--json"])).unwrap();
    validate("scan", std::slice::from_ref(&scan));

    // Typed values, against the kernel.
    let info =
        |t: &str, i: u64| -> Value { serde_json::from_str(&m.read(&format!("{t}/{i}/info.json"))).unwrap() };
    let u = info("user", user);
    let uid_map = std::fs::read_to_string(format!("/proc/{}/uid_map", p.pid())).unwrap();
    let want: Vec<Value> = uid_map
        .lines()
        .map(|l| {
            let f: Vec<u64> = l.split_whitespace().map(|n| n.parse().unwrap()).collect();
            json!({"inside": f[0], "outside": f[1], "count": f[2]})
        })
        .collect();
    assert_eq!(u["uid_map"], json!(want));
    assert_eq!(
        (u["level"].clone(), u["owner_uid"].clone(), u["age"].clone()),
        (json!(1), json!(0), Value::Null)
    );
    assert!(u["owns"].as_array().unwrap().contains(&json!({"type": "net", "inode": net})), "{u}");
    let n = info("net", net);
    assert_eq!(n["interfaces"], ip_addr_in(Path::new(&ns_net)), "interfaces against ip -j addr");
    assert!(n["interfaces"].to_string().contains("10.77.0.1"), "{n}");
    assert_eq!(n["netnsid"], json!(veth.peer_nsid()));
    assert_eq!(n["owner"], json!(user));
    let task = json!({"kind": "task", "pid": p.pid(), "tid": p.pid()});
    assert!(n["holders"].as_array().unwrap().contains(&task), "{n}");
    // The processless one: only lo, down; no nsid here; an age; its pin.
    let lone = info("net", lone_net);
    let lo = ip_addr_in(&m.netns_dir.join(format!("jsonnet{me}")));
    assert_eq!(lone["interfaces"], lo);
    assert_eq!(lone["interfaces"][0]["state"], "DOWN");
    assert_eq!(lone["netnsid"], Value::Null);
    assert!(lone["age"].is_u64(), "{lone}");
    let pin = m.netns_dir.join(format!("jsonnet{me}"));
    assert!(lone["pins"].as_array().unwrap().iter().any(|p| p["path"] == pin.to_str().unwrap()), "{lone}");
    assert_eq!(
        lone["container"],
        json!([{"kind": "netns", "id": format!("jsonnet{me}"), "name": null, "was": false}])
    );
    // The time namespace: offsets as numbers, equal to the kernel's.
    let child = wait_child(p.pid());
    let time = ino(format!("/proc/{child}/ns/time"));
    let t = info("time", time);
    let offsets = std::fs::read_to_string(format!("/proc/{child}/timens_offsets")).unwrap();
    for l in offsets.lines() {
        let f: Vec<&str> = l.split_whitespace().collect();
        assert_eq!(t["offsets"][f[0]]["seconds"], json!(f[1].parse::<i64>().unwrap()), "{t}");
    }
    // The scan carries the same typed namespace.
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&scan).unwrap()).unwrap();
    let entry = doc["namespaces"].as_array().unwrap().iter().find(|e| e["ns"] == net).expect("in the scan");
    assert_eq!((entry["inode"].clone(), entry["owner"].clone()), (json!(net), json!(user)));
    assert_eq!(entry["netnsid"], json!(veth.peer_nsid().to_string()), "lsns's netnsid is a string");
    drop(m);
}

/// The PID of `pid`'s only child (unshare --fork's command).
fn wait_child(pid: i32) -> i32 {
    let path = format!("/proc/{pid}/task/{pid}/children");
    let mut child = None;
    assert!(wait_for(5.0, || {
        child = std::fs::read_to_string(&path).ok().and_then(|s| s.split_whitespace().next()?.parse().ok());
        child.is_some()
    }));
    child.unwrap()
}

#[test]
fn scan_json_has_lsns_columns_equal_to_lsns() {
    // A process in new net, uts and ipc namespaces; a second one in its
    // net namespace; the net namespace pinned and given an nsid here.
    let a = Proc::cmd(&["unshare", "--net", "--uts", "--ipc", "sleep", "1000"]);
    let net = wait_unshared(a.pid(), "net");
    let ns_net = format!("/proc/{}/ns/net", a.pid());
    let b = Proc::cmd(&["nsenter", &format!("--net={ns_net}"), "sleep", "1000"]);
    assert!(wait_for(5.0, || std::fs::metadata(format!("/proc/{}/ns/net", b.pid()))
        .is_ok_and(|_| ino(format!("/proc/{}/ns/net", b.pid())) == net)));
    let m = Nsfuse::start(&[]);
    write_ctl(&m.path(&format!("net/{net}/ctl")), "pin\n").unwrap();
    let veth = Veth::into_netns_of(a.pid());
    let ours = [a.pid(), b.pid()];
    // The same columns from both, for namespaces whose lowest PID is ours.
    let columns = "NS,TYPE,NPROCS,PID,USER,NETNSID,NSFS,COMMAND";
    let fields = ["ns", "type", "nprocs", "pid", "user", "netnsid", "nsfs", "command"];
    let pick = |v: Value| -> Vec<Value> {
        let mut list: Vec<Value> = v["namespaces"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["pid"].as_i64().is_some_and(|p| ours.contains(&(p as i32))))
            .map(|e| {
                fields
                    .iter()
                    .map(|f| ((*f).to_owned(), e[*f].clone()))
                    .collect::<serde_json::Map<_, _>>()
                    .into()
            })
            .collect();
        list.sort_by_key(|e: &Value| e["ns"].as_u64());
        list
    };
    let lsns = pick(lsns_json(columns));
    let scan = pick(serde_json::from_str(&nsfuse(&["scan", "--json"])).unwrap());
    assert_eq!(lsns.len(), 3, "lsns lists our net, uts and ipc namespaces: {lsns:?}");
    assert_eq!(scan, lsns, "nsfuse scan --json against lsns --json");
    // And they say what was made.
    let n = scan.iter().find(|e| e["ns"] == net).unwrap();
    assert_eq!((n["nprocs"].clone(), n["pid"].clone()), (json!(2), json!(a.pid())));
    assert_eq!(n["netnsid"], json!(veth.peer_nsid().to_string()));
    assert_eq!(n["nsfs"], json!(m.netns_dir.join(net.to_string()).to_str().unwrap()));
    assert_eq!(n["command"], "sleep 1000");
    write_ctl(&m.path(&format!("net/{net}/ctl")), "release\n").unwrap();
}
