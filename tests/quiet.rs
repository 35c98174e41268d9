//! A refresh of a quiet host: when no process was made or ended, every
//! process that ran holds what it held and every mount table is the same,
//! the tracker serves the last snapshot again instead of deriving it anew.
//! Each such refresh must equal a full scan, namespace by namespace, field
//! by field. Its own test binary, so that the other tests' processes do
//! not keep the host from ever being quiet.

mod common;

use common::*;
use nsfuse::discovery::{scan, ScanOptions, Tracker};
use nsfuse::model::Inode;
use std::time::Duration;

#[test]
fn a_quiet_refresh_serves_what_a_full_scan_finds() {
    let p = Proc::cmd(&["unshare", "--net", "--uts", "--ipc", "sleep", "1000"]);
    let net = wait_unshared(p.pid(), "net");
    let dir = TempDir::new("quiet");
    let pin = dir.join("net");
    std::fs::write(&pin, "").unwrap();
    run(&["mount", "--bind", &format!("/proc/{}/ns/net", p.pid()), pin.to_str().unwrap()]);
    let mut t = Tracker::new(ScanOptions::default());
    t.full().expect("first pass");
    let (mut kept, mut equal) = (0, 0);
    for _ in 0..200 {
        std::thread::sleep(Duration::from_millis(30));
        let snap = t.refresh().expect("refresh");
        if !t.last_pass_kept_the_last() {
            continue;
        }
        kept += 1;
        // Ours, always exactly right.
        let ns = snap.namespaces.get(&Inode(net)).expect("our net namespace");
        assert_eq!(ns.processes, [nsfuse::model::Pid(p.pid())]);
        assert!(ns.pins.iter().any(|x| x.path == pin), "{:?}", ns.pins);
        // All of it, against a full scan (which another process's start
        // or end between the two may make differ: counted, not failed).
        let full = scan(&ScanOptions::default()).expect("scan");
        if full.namespaces == snap.namespaces
            && full.processes == snap.processes
            && full.cgroups == snap.cgroups
        {
            equal += 1;
            if equal == 3 {
                break;
            }
        }
    }
    assert!(kept > 0, "no refresh of 200 found the host quiet");
    assert!(equal > 0, "{kept} quiet refreshes, none equal to a full scan");
    // A change ends the quiet: the pin's release is seen at once.
    run(&["umount", pin.to_str().unwrap()]);
    let snap = t.refresh().expect("refresh");
    assert!(!t.last_pass_kept_the_last(), "an unmount went unnoticed");
    assert!(snap.namespaces.get(&Inode(net)).is_some_and(|n| n.pins.iter().all(|x| x.path != pin)));
}
