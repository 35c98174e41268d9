//! Incremental refresh against the real kernel: what only a refresh that
//! remembers can get wrong. Each test lets a tracker remember a process at
//! rest (not read again), then changes something behind it — the same PID
//! entering or opening a namespace, a mount made in its mount namespace by
//! someone else, namespaces ending and their inode numbers coming back — and
//! checks the refresh against the kernel and against a full scan.

mod common;

use common::*;
use nsfuse::model::{Inode, NsType, Pid, Snapshot};
use std::path::Path;

/// A shell that waits on a fifo, then runs `then` in place (same PID).
struct Waiting {
    proc: Proc,
    fifo: std::path::PathBuf,
}

impl Waiting {
    fn start(dir: &TempDir, then: &str) -> Waiting {
        Waiting::start_in(dir, &[], then)
    }

    /// The same, with the shell run by `prefix` (`unshare --user ...`).
    fn start_in(dir: &TempDir, prefix: &[&str], then: &str) -> Waiting {
        let fifo = dir.join("go");
        assert!(run_ok(&["mkfifo", fifo.to_str().unwrap()]));
        let script = format!("read x < {}; {then}", fifo.display());
        let proc = Proc::cmd(&[prefix, &["sh", "-c", &script]].concat());
        let pid = proc.pid();
        // Asleep in open(2) of the fifo, waiting for a writer.
        assert!(wait_for(5.0, || std::fs::read_to_string(format!("/proc/{pid}/wchan"))
            .is_ok_and(|w| w.contains("partner") || w.contains("fifo") || w.contains("pipe"))));
        Waiting { proc, fifo }
    }

    fn go(&self) {
        std::fs::write(&self.fifo, "go\n").expect("write fifo");
    }
}

/// A target process in a new `ty` namespace, and a shell remembered at rest
/// by a fresh tracker that, once let go, runs `then` (given the target's
/// PID). Returns (target, its namespace's inode, the shell, the tracker).
fn target_and_waiting(dir: &TempDir, ty: &str, then: impl Fn(i32) -> String) -> (Proc, u64, Waiting, Scans) {
    let target = Proc::cmd(&["unshare", &format!("--{ty}"), "sleep", "1000"]);
    let inode = wait_unshared(target.pid(), ty);
    let w = Waiting::start(dir, &then(target.pid()));
    let mut sc = Scans::start();
    sc.settle(w.proc.pid());
    (target, inode, w, sc)
}

/// Whether `path` (an nsfs link or fd) is namespace `inode`.
fn is_ns(path: String, inode: u64) -> bool {
    std::fs::metadata(path).is_ok_and(|m| std::os::unix::fs::MetadataExt::ino(&m) == inode)
}

fn holders(s: &Snapshot, inode: u64) -> Vec<String> {
    s.namespaces
        .get(&Inode(inode))
        .map(|n| n.holders.iter().map(|h| h.to_string()).collect())
        .unwrap_or_default()
}

#[test]
fn a_remembered_process_that_enters_a_new_namespace_is_read_again() {
    let dir = TempDir::new("reunshare");
    let w = Waiting::start(&dir, "exec unshare --net --uts sleep 1000");
    let pid = w.proc.pid();
    let mut sc = Scans::start();
    sc.settle(pid);
    w.go();
    let net = wait_unshared(pid, "net");
    let uts = wait_unshared(pid, "uts");
    sc.both(|s| {
        for inode in [net, uts] {
            assert_eq!(s.namespaces.get(&Inode(inode)).map(|n| n.processes.clone()), Some(vec![Pid(pid)]));
        }
        assert_eq!(s.processes.get(&Pid(pid)).expect("listed").get(NsType::Net.index()), Some(Inode(net)));
    });
    assert!(sc.0.last_read().contains(&Pid(pid)), "the change was seen by reading the process again");
}

#[test]
fn a_remembered_process_that_joins_an_existing_namespace_is_read_again() {
    let dir = TempDir::new("rejoin");
    let (mut target, ipc, w, mut sc) =
        target_and_waiting(&dir, "ipc", |t| format!("exec nsenter --ipc=/proc/{t}/ns/ipc sleep 1000"));
    let pid = w.proc.pid();
    w.go();
    assert!(wait_for(5.0, || is_ns(format!("/proc/{pid}/ns/ipc"), ipc)));
    target.kill();
    sc.both(|s| {
        assert_eq!(s.namespaces.get(&Inode(ipc)).map(|n| n.processes.clone()), Some(vec![Pid(pid)]));
        assert!(holders(s, ipc).contains(&format!("task {pid} {pid}")));
    });
}

#[test]
fn a_remembered_process_that_opens_a_namespace_file_is_read_again() {
    let dir = TempDir::new("refd");
    let (mut target, uts, w, mut sc) =
        target_and_waiting(&dir, "uts", |t| format!("exec 7</proc/{t}/ns/uts; exec sleep 1000"));
    let pid = w.proc.pid();
    w.go();
    assert!(wait_for(5.0, || is_ns(format!("/proc/{pid}/fd/7"), uts)
        && std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == "sleep")));
    target.kill();
    sc.both(|s| {
        assert!(s.namespaces.get(&Inode(uts)).is_some_and(|n| n.processes.is_empty()));
        assert_eq!(
            holders(s, uts).iter().filter(|h| h.starts_with("fd ")).count(),
            1,
            "{:?}",
            holders(s, uts)
        );
        assert!(holders(s, uts).contains(&format!("fd {pid} 7")));
    });
}

#[test]
fn a_pin_made_in_a_remembered_process_mount_namespace_is_seen() {
    // The member of the mount namespace never runs: someone else enters its
    // mount namespace and mounts there. Only the namespace's mount list
    // (listmount) can tell.
    let dir = TempDir::new("repin");
    let pin = dir.join("net");
    std::fs::File::create(&pin).unwrap();
    let mut member = Proc::cmd(&["unshare", "--mount", "--propagation", "private", "sleep", "1000"]);
    let m = member.pid();
    let mntns = wait_unshared(m, "mnt");
    let mut net_proc = Proc::cmd(&["unshare", "--net", "sleep", "1000"]);
    let net = wait_unshared(net_proc.pid(), "net");
    let mut sc = Scans::start();
    sc.settle(m);
    let (m_s, net_src, pin_s) =
        (m.to_string(), format!("/proc/{}/ns/net", net_proc.pid()), pin.to_str().unwrap());
    assert!(run_ok(&["nsenter", "-t", &m_s, "--mount", "mount", "--bind", &net_src, pin_s]));
    net_proc.kill();
    let line = format!("mount {mntns} {}", pin.display());
    sc.both(|s| {
        assert_eq!(holders(s, net), vec![line.clone()]);
        s.namespaces[&Inode(net)].pins.len()
    });
    assert!(!sc.0.last_read().contains(&Pid(m)), "the member did not run: it is remembered");
    assert!(run_ok(&["nsenter", "-t", &m_s, "--mount", "umount", pin_s]));
    sc.both(|s| assert!(!s.namespaces.contains_key(&Inode(net)), "released in the member's mount namespace"));
    member.kill();
}

#[test]
fn owners_stay_right_when_a_freed_inode_number_comes_back() {
    // The kernel hands a freed inode number to the next namespace made, so
    // remembered relations must never be trusted for a number alone. UTS
    // namespace A (owned by the initial user namespace) is remembered and
    // ends; UTS namespace B, owned by a user namespace made before A ended,
    // is made right after and usually gets A's number (a UTS namespace
    // frees its number at once; a net namespace only later, from a worker).
    let me = ino("/proc/self/ns/user");
    let mut sc = Scans::start();
    let mut reused = 0;
    for _ in 0..5 {
        let dir = TempDir::new("reuse");
        let mut a = Proc::cmd(&["unshare", "--uts", "sleep", "1000"]);
        let a_uts = wait_unshared(a.pid(), "uts");
        let b = Waiting::start_in(
            &dir,
            &["unshare", "--user", "--map-root-user"],
            "exec unshare --uts sleep 1000",
        );
        let user = wait_unshared(b.proc.pid(), "user");
        sc.both(|s| assert_eq!(s.namespaces.get(&Inode(a_uts)).and_then(|n| n.owner), Some(Inode(me))));
        a.kill();
        b.go();
        let b_uts = wait_unshared(b.proc.pid(), "uts");
        reused += usize::from(b_uts == a_uts);
        sc.both(|s| {
            assert_eq!(s.namespaces.get(&Inode(b_uts)).and_then(|n| n.owner), Some(Inode(user)));
            assert_eq!(
                s.namespaces.get(&Inode(user)).and_then(|n| n.owns.first().copied()),
                Some((NsType::Uts, Inode(b_uts)))
            );
        });
    }
    eprintln!("inode numbers reused in {reused} of 5 rounds");
}

#[test]
fn a_refresh_reads_only_what_changed() {
    let mut sleepers: Vec<Proc> = (0..20).map(|_| Proc::cmd(&["sleep", "1000"])).collect();
    let mut sc = Scans::start();
    for p in &sleepers {
        sc.settle(p.pid());
    }
    let s = sc.0.refresh().expect("refresh");
    let read = sc.0.last_read().to_vec();
    for p in &sleepers {
        assert!(s.processes.contains_key(&Pid(p.pid())));
        assert!(!read.contains(&Pid(p.pid())), "sleeper {} was read again", p.pid());
    }
    assert!(read.len() < s.processes.len(), "{} of {} read", read.len(), s.processes.len());
    // One ends: it is gone from the next refresh without being read.
    let gone = sleepers[0].pid();
    sleepers[0].kill();
    let s = sc.0.refresh().expect("refresh");
    assert!(!s.processes.contains_key(&Pid(gone)));
    assert!(Path::new("/proc/self").exists());
}

#[test]
fn a_refresh_shares_the_namespaces_that_did_not_change() {
    use std::sync::Arc;
    let target = Proc::cmd(&["unshare", "--net", "--uts", "sleep", "1000"]);
    let net = wait_unshared(target.pid(), "net");
    let uts = wait_unshared(target.pid(), "uts");
    let mut sc = Scans::start();
    sc.settle(target.pid());
    let before = sc.0.refresh().expect("refresh");
    let again = sc.0.refresh().expect("refresh");
    for inode in [net, uts] {
        assert!(
            Arc::ptr_eq(&before.namespaces[&Inode(inode)], &again.namespaces[&Inode(inode)]),
            "{inode} not shared"
        );
    }
    // A second member changes the net namespace only.
    let joined = Proc::cmd(&["nsenter", &format!("--net=/proc/{}/ns/net", target.pid()), "sleep", "1000"]);
    assert!(wait_for(5.0, || is_ns(format!("/proc/{}/ns/net", joined.pid()), net)));
    let after = sc.0.refresh().expect("refresh");
    assert!(!Arc::ptr_eq(&again.namespaces[&Inode(net)], &after.namespaces[&Inode(net)]));
    assert!(Arc::ptr_eq(&again.namespaces[&Inode(uts)], &after.namespaces[&Inode(uts)]));
    let mut members = vec![Pid(target.pid()), Pid(joined.pid())];
    members.sort_unstable();
    assert_eq!(after.namespaces[&Inode(net)].processes, members);
    sc.both(|s| s.namespaces.get(&Inode(net)).map(|n| (n.processes.clone(), holders(s, net))));
}

#[test]
fn with_no_stamp_file_open_a_refresh_still_reads_only_what_ran() {
    // Beyond the open-file budget, stamps are read again by path.
    let dir = TempDir::new("pathstamps");
    let mut sleepers: Vec<Proc> = (0..5).map(|_| Proc::cmd(&["sleep", "1000"])).collect();
    let w = Waiting::start(&dir, "exec unshare --net sleep 1000");
    let pid = w.proc.pid();
    let mut sc = Scans::start_without_stamp_files();
    for p in sleepers.iter().chain([&w.proc]) {
        sc.settle(p.pid());
    }
    let s = sc.0.refresh().expect("refresh");
    for p in &sleepers {
        assert!(s.processes.contains_key(&Pid(p.pid())));
        assert!(!sc.0.last_read().contains(&Pid(p.pid())), "sleeper {} was read again", p.pid());
    }
    w.go();
    let net = wait_unshared(pid, "net");
    sc.both(|s| assert_eq!(s.namespaces.get(&Inode(net)).map(|n| n.processes.clone()), Some(vec![Pid(pid)])));
    assert!(sc.0.last_read().contains(&Pid(pid)), "the change was seen by reading the process again");
    let gone = sleepers[0].pid();
    sleepers[0].kill();
    assert!(!sc.0.refresh().expect("refresh").processes.contains_key(&Pid(gone)));
}

/// The daemon's refreshes so far, full and incremental, from `metrics`.
fn refreshes(m: &Nsfuse) -> u64 {
    let text = m.read("metrics");
    ["full", "incremental"]
        .iter()
        .map(|kind| metric_value(&text, &format!("nsfuse_refreshes_total{{kind=\"{kind}\"}}")).unwrap_or(0))
        .sum()
}

#[test]
fn a_pin_listing_costs_no_refresh_while_the_mount_table_stands_and_shows_a_new_pin_at_once() {
    // pinned/ shows only pins in nsfuse's own mount namespace: unchanged
    // mount ids (listmount, after the opendir) prove its listing fresh.
    let m = Nsfuse::start(&["refresh_ms=600000"]);
    let names = || -> Vec<String> {
        let dir = std::fs::read_dir(m.path("pinned/net")).expect("pinned/net");
        dir.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect()
    };
    names();
    let before = refreshes(&m);
    for _ in 0..5 {
        names();
    }
    assert_eq!(refreshes(&m), before, "listings of pinned/net refreshed");
    let mut member = Proc::cmd(&["unshare", "--net", "sleep", "1000"]);
    let net = wait_unshared(member.pid(), "net");
    std::fs::create_dir_all(&m.netns_dir).unwrap();
    let name = format!("t{}", std::process::id());
    let pin = m.netns_dir.join(&name);
    std::fs::write(&pin, b"").unwrap();
    let _guard = MountGuard { path: pin.clone(), remove: true };
    run(&["mount", "--bind", &format!("/proc/{}/ns/net", member.pid()), pin.to_str().unwrap()]);
    member.kill();
    assert!(names().contains(&name), "a pin made from outside is not listed at once");
    let target = std::fs::read_link(m.path(&format!("pinned/net/{name}"))).unwrap();
    assert_eq!(target, Path::new(&format!("../../net/{net}")));
    std::fs::read_dir(m.path("net")).unwrap().for_each(drop);
    assert!(refreshes(&m) > before, "a listing of net/ made no refresh");
}
