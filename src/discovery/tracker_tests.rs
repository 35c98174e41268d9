//! The refresh policy over the fake host: what a refresh reads again and
//! what it trusts from memory, and that after any churn an incremental
//! refresh says what a full pass says.

use super::*;
use crate::discovery::fake::{host_ns, links_with, Fake, OWN_PID};
use crate::discovery::kernel::Kernel;
use crate::model::{Holder, Inode, Namespace, NsType};

pub(super) const NET: usize = 3;
const UTS: usize = 7;

pub(super) fn tracker(f: &Fake) -> Tracker<Fake> {
    Tracker::on(f.clone(), ScanOptions { skip_own_fds: true, ..Default::default() }, 1 << 16)
}

pub(super) fn refresh(t: &mut Tracker<Fake>) -> Snapshot {
    t.refresh().unwrap_or_else(|e| panic!("refresh failed: {e}"))
}

pub(super) fn full(t: &mut Tracker<Fake>) -> Snapshot {
    t.full().unwrap_or_else(|e| panic!("full pass failed: {e}"))
}

pub(super) fn ns(s: &Snapshot, inode: Inode) -> &Namespace {
    s.namespaces.get(&inode).map(|n| &**n).unwrap_or_else(|| panic!("namespace {inode} not found"))
}

/// What was asked of the fake since the last call: processes read (but
/// our own, which has no stamps and is read every time), mount tables
/// read, namespaces whose relations were read.
pub(super) fn asked(f: &Fake) -> (Vec<Pid>, Vec<Inode>, Vec<Inode>) {
    let mut w = f.world();
    let read = std::mem::take(&mut w.read).into_iter().filter(|&p| p != OWN_PID).collect();
    (read, std::mem::take(&mut w.tables_read), std::mem::take(&mut w.relations_read))
}

/// A fake host with three processes in two new net namespaces.
pub(super) fn busy_host() -> Fake {
    let f = Fake::host();
    {
        let mut w = f.world();
        for (pid, net) in [(2000, 5000), (2001, 5000), (2002, 5001)] {
            w.add_ns(NsType::Net, Inode(net), Some(host_ns(NsType::User)));
            w.spawn(Pid(pid)).links = links_with(&[(NET, Inode(net))]);
        }
    }
    f
}

/// The model of two snapshots, field by field (times aside). The path a
/// namespace is reached by may be any member's: each must lead to it.
pub(super) fn assert_same_model(f: &Fake, a: &Snapshot, b: &Snapshot) {
    assert_eq!(a.namespaces.len(), b.namespaces.len());
    for (inode, n) in &a.namespaces {
        let Some(other) = b.namespaces.get(inode) else { panic!("namespace {inode} only in one") };
        for p in [&n.path, &other.path].into_iter().flatten() {
            assert!(f.open(p, *inode).is_some(), "{} does not lead to {inode}", p.display());
        }
        assert_eq!(n.path.is_some(), other.path.is_some(), "namespace {inode}");
        let without_path = |n: &Namespace| Namespace { path: None, ..n.clone() };
        assert_eq!(without_path(n), without_path(other), "namespace {inode}");
    }
    assert_eq!(a.processes, b.processes);
    assert_eq!(a.cgroups, b.cgroups);
    assert_eq!(a.named_pins, b.named_pins);
    assert_eq!(a.root_userns, b.root_userns);
}

#[test]
fn the_first_refresh_is_full_and_reads_everything() {
    let f = busy_host();
    let mut t = tracker(&f);
    let s = refresh(&mut t);
    assert!(t.last_pass_was_full());
    assert_eq!(asked(&f).0, vec![Pid(2000), Pid(2001), Pid(2002)]);
    assert_eq!(ns(&s, Inode(5000)).processes, vec![Pid(2000), Pid(2001)]);
}

#[test]
fn a_quiet_host_serves_the_last_snapshot_and_reads_nothing_again() {
    let f = busy_host();
    let mut t = tracker(&f);
    let first = refresh(&mut t);
    asked(&f);
    let again = refresh(&mut t);
    assert!(!t.last_pass_was_full());
    assert!(t.last_pass_kept_the_last());
    assert_eq!(asked(&f), (vec![], vec![], vec![]));
    // Not even nsfuse itself, which ran (it answers the requests).
    assert_eq!(t.last_read(), &[] as &[Pid]);
    assert_same_model(&f, &first, &again);
}

#[test]
fn only_a_process_that_ran_is_read_again() {
    let f = busy_host();
    let mut t = tracker(&f);
    refresh(&mut t);
    asked(&f);
    f.world().enter(Pid(2001), NsType::Net, Inode(5001));
    let s = refresh(&mut t);
    assert_eq!(asked(&f).0, vec![Pid(2001)]);
    assert_eq!(t.last_read(), &[Pid(2001)]);
    assert!(!t.last_pass_kept_the_last());
    assert_eq!(ns(&s, Inode(5000)).processes, vec![Pid(2000)]);
    assert_eq!(ns(&s, Inode(5001)).processes, vec![Pid(2001), Pid(2002)]);
}

#[test]
fn a_process_that_ran_and_holds_the_same_keeps_the_snapshot() {
    let f = busy_host();
    let mut t = tracker(&f);
    refresh(&mut t);
    f.world().run(Pid(2000));
    refresh(&mut t);
    assert_eq!(t.last_read(), &[Pid(2000)]);
    assert!(t.last_pass_kept_the_last());
}

#[test]
fn a_new_process_is_read_and_listed() {
    let f = busy_host();
    let mut t = tracker(&f);
    refresh(&mut t);
    asked(&f);
    f.world().spawn(Pid(2003)).links = links_with(&[(NET, Inode(5001))]);
    let s = refresh(&mut t);
    assert_eq!(asked(&f).0, vec![Pid(2003)]);
    assert_eq!(ns(&s, Inode(5001)).processes, vec![Pid(2002), Pid(2003)]);
}

#[test]
fn a_namespace_goes_with_its_last_member() {
    let f = busy_host();
    let mut t = tracker(&f);
    refresh(&mut t);
    f.world().exit(Pid(2002));
    let s = refresh(&mut t);
    assert!(!s.namespaces.contains_key(&Inode(5001)));
    assert!(!t.last_pass_kept_the_last());
    f.world().exit(Pid(2000));
    let s = refresh(&mut t);
    assert_eq!(ns(&s, Inode(5000)).processes, vec![Pid(2001)]);
}

#[test]
fn stamps_are_trusted_until_the_next_full_pass() {
    // A process cannot change without running: a link changed behind an
    // unmoved stamp (impossible on a real host) shows only in a full pass,
    // which proves the refresh trusted the stamp rather than reading again.
    let f = busy_host();
    let mut t = tracker(&f);
    refresh(&mut t);
    f.world().proc_mut(Pid(2002)).links = links_with(&[(NET, Inode(5000))]);
    assert_eq!(ns(&refresh(&mut t), Inode(5001)).processes, vec![Pid(2002)]);
    let s = full(&mut t);
    assert!(!s.namespaces.contains_key(&Inode(5001)));
    assert_eq!(ns(&s, Inode(5000)).processes, vec![Pid(2000), Pid(2001), Pid(2002)]);
}

#[test]
fn relations_of_namespaces_proven_the_same_are_not_read_again() {
    let f = busy_host();
    let mut t = tracker(&f);
    refresh(&mut t);
    asked(&f);
    f.world().enter(Pid(2000), NsType::Net, Inode(5001));
    refresh(&mut t);
    let (_, _, relations) = asked(&f);
    // 5000 and 5001 are still held by processes that did not run (2001, 2002).
    assert!(!relations.contains(&Inode(5000)) && !relations.contains(&Inode(5001)), "{relations:?}");
}

#[test]
fn an_inode_reused_by_another_namespace_gets_its_own_relations() {
    let f = Fake::host();
    {
        let mut w = f.world();
        w.add_ns(NsType::User, Inode(7000), Some(host_ns(NsType::User)));
        w.add_ns(NsType::Net, Inode(5000), Some(Inode(7000)));
        w.spawn(Pid(2000)).links = links_with(&[(NET, Inode(5000))]);
    }
    let mut t = tracker(&f);
    assert_eq!(ns(&refresh(&mut t), Inode(5000)).owner, Some(Inode(7000)));
    {
        let mut w = f.world();
        w.exit(Pid(2000));
        w.namespaces.remove(&Inode(5000));
        w.namespaces.remove(&Inode(7000));
        // The kernel hands the freed inode to a new uts namespace.
        w.add_ns(NsType::Uts, Inode(5000), Some(host_ns(NsType::User)));
        w.spawn(Pid(2001)).links = links_with(&[(UTS, Inode(5000))]);
    }
    let s = refresh(&mut t);
    assert!(!t.last_pass_was_full());
    let n = ns(&s, Inode(5000));
    assert_eq!(n.ns_type, NsType::Uts);
    assert_eq!(n.owner, Some(host_ns(NsType::User)));
    assert!(!s.namespaces.contains_key(&Inode(7000)));
}

#[test]
fn an_unchanged_mount_table_is_not_read_again() {
    let f = busy_host();
    {
        let mut w = f.world();
        let own = w.own_mntns;
        w.pin(own, "/run/netns/a", NsType::Net, Inode(5001));
    }
    let mut t = tracker(&f);
    refresh(&mut t);
    asked(&f);
    f.world().run(Pid(2000));
    f.world().enter(Pid(2001), NsType::Net, Inode(5001));
    let s = refresh(&mut t);
    assert!(asked(&f).1.is_empty());
    assert_eq!(ns(&s, Inode(5001)).pins.len(), 1);
}

#[test]
fn a_pin_made_from_outside_shows_on_the_next_refresh() {
    let f = busy_host();
    let mut t = tracker(&f);
    refresh(&mut t);
    {
        let mut w = f.world();
        let own = w.own_mntns;
        w.add_ns(NsType::Ipc, Inode(5002), Some(host_ns(NsType::User)));
        w.pin(own, "/run/nsfuse/ipc/p", NsType::Ipc, Inode(5002));
    }
    let s = refresh(&mut t);
    assert!(!t.last_pass_kept_the_last());
    assert_eq!(ns(&s, Inode(5002)).pins.len(), 1);
    assert_eq!(s.named_pins.get(&(NsType::Ipc, "p".to_owned())), Some(&Inode(5002)));
    f.world().unpin(host_ns(NsType::Mnt), "/run/nsfuse/ipc/p");
    let s = refresh(&mut t);
    assert!(!s.namespaces.contains_key(&Inode(5002)));
    assert!(s.named_pins.is_empty());
}

#[test]
fn a_pin_in_a_members_mount_namespace_is_seen_although_no_member_ran() {
    let f = busy_host();
    {
        let mut w = f.world();
        w.add_ns(NsType::Mnt, Inode(6000), Some(host_ns(NsType::User)));
        w.spawn(Pid(2010)).links = links_with(&[(NsType::Mnt.index(), Inode(6000))]);
    }
    let mut t = tracker(&f);
    refresh(&mut t);
    {
        let mut w = f.world();
        w.add_ns(NsType::Uts, Inode(5003), Some(host_ns(NsType::User)));
        w.pin(Inode(6000), "/keep", NsType::Uts, Inode(5003)); // by `nsenter -m`: 2010 did not run
    }
    let s = refresh(&mut t);
    assert!(!t.last_pass_was_full());
    assert_eq!(ns(&s, Inode(5003)).pins.len(), 1);
    assert!(asked(&f).1.contains(&Inode(6000)));
    // Through its member: a mount namespace is entered only when it has none.
    assert_eq!(f.world().opened_inside, vec![]);
}

#[test]
fn a_mount_namespace_only_a_thread_is_in_is_entered_on_a_patched_refresh_too() {
    // A thread made without CLONE_FS may be in a mount namespace its
    // process is not in: the process is no member to read it through.
    let f = busy_host();
    {
        let mut w = f.world();
        w.add_ns(NsType::Mnt, Inode(6002), Some(host_ns(NsType::User)));
        w.add_ns(NsType::Uts, Inode(5004), Some(host_ns(NsType::User)));
        w.pin(Inode(6002), "/inner", NsType::Uts, Inode(5004));
        let thread = links_with(&[(NsType::Mnt.index(), Inode(6002))]);
        w.spawn(Pid(2012)).threads = vec![(Pid(2013), thread)];
    }
    let mut t = tracker(&f);
    let mut reference = tracker(&f);
    refresh(&mut t);
    f.world().enter(Pid(2001), NsType::Net, Inode(5001));
    let s = refresh(&mut t);
    assert_eq!(t.last_model(), crate::discovery::pass::Model::Patched);
    assert_eq!(ns(&s, Inode(5004)).pins.len(), 1, "the pin inside, read from inside");
    assert_same_model(&f, &s, &full(&mut reference));
}

#[test]
fn without_listmount_tables_are_read_every_time_and_nothing_is_kept() {
    let f = busy_host();
    f.world().listmount = false;
    let mut t = tracker(&f);
    refresh(&mut t);
    asked(&f);
    refresh(&mut t);
    assert!(!t.last_pass_kept_the_last());
    assert_eq!(asked(&f).1, vec![host_ns(NsType::Mnt)]);
}

#[test]
fn a_sockets_namespace_is_remembered_while_its_process_does_not_run() {
    let f = busy_host();
    {
        let mut w = f.world();
        w.add_ns(NsType::Net, Inode(5004), Some(host_ns(NsType::User)));
        w.sockets.insert(900, Inode(5004));
        w.proc_mut(Pid(2000)).sockets = vec![(6, 900)];
    }
    let mut t = tracker(&f);
    refresh(&mut t);
    f.world().sockets_read.clear();
    f.world().enter(Pid(2001), NsType::Net, Inode(5001));
    let s = refresh(&mut t);
    assert!(f.world().sockets_read.is_empty());
    assert_eq!(ns(&s, Inode(5004)).holders, vec![Holder::Socket { pid: Pid(2000), fd: 6 }]);
}

#[test]
fn a_thread_that_rejoins_its_process_stops_holding() {
    let f = busy_host();
    {
        let mut w = f.world();
        w.add_ns(NsType::Uts, Inode(5005), Some(host_ns(NsType::User)));
        w.proc_mut(Pid(2000)).threads =
            vec![(Pid(2100), links_with(&[(NET, Inode(5000)), (UTS, Inode(5005))]))];
    }
    let mut t = tracker(&f);
    assert_eq!(
        ns(&refresh(&mut t), Inode(5005)).holders,
        vec![Holder::Task { pid: Pid(2000), tid: Pid(2100) }]
    );
    {
        let mut w = f.world();
        w.proc_mut(Pid(2000)).threads.clear();
        w.run(Pid(2000));
    }
    assert!(!refresh(&mut t).namespaces.contains_key(&Inode(5005)));
}

#[test]
fn forgetting_makes_the_next_refresh_full() {
    let f = busy_host();
    let mut t = tracker(&f);
    refresh(&mut t);
    assert!(t.remembers());
    t.forget();
    assert!(!t.remembers());
    asked(&f);
    refresh(&mut t);
    assert!(t.last_pass_was_full());
    assert_eq!(asked(&f).0.len(), 3);
}

#[test]
fn a_namespace_held_by_a_mount_still_there_keeps_its_relations() {
    let f = busy_host();
    {
        let mut w = f.world();
        let own = w.own_mntns;
        w.add_ns(NsType::Ipc, Inode(5006), Some(host_ns(NsType::User)));
        w.pin(own, "/run/nsfuse/ipc/kept", NsType::Ipc, Inode(5006));
    }
    let mut t = tracker(&f);
    refresh(&mut t);
    asked(&f);
    f.world().enter(Pid(2001), NsType::Net, Inode(5001));
    let s = refresh(&mut t);
    assert!(!asked(&f).2.contains(&Inode(5006)));
    assert_eq!(ns(&s, Inode(5006)).owner, Some(host_ns(NsType::User)));
}

#[test]
fn a_mount_namespace_whose_last_member_left_is_read_from_inside() {
    let f = busy_host();
    {
        let mut w = f.world();
        let own = w.own_mntns;
        w.add_ns(NsType::Mnt, Inode(6001), Some(host_ns(NsType::User)));
        w.add_ns(NsType::Uts, Inode(5007), Some(host_ns(NsType::User)));
        w.spawn(Pid(2011)).links = links_with(&[(NsType::Mnt.index(), Inode(6001))]);
        w.pin(Inode(6001), "/inside", NsType::Uts, Inode(5007));
        w.pin(own, "/run/nsfuse/mnt/m", NsType::Mnt, Inode(6001));
    }
    let mut t = tracker(&f);
    let s = refresh(&mut t);
    assert_eq!(ns(&s, Inode(5007)).path.as_deref(), Some(std::path::Path::new("/proc/2011/root/inside")));
    f.world().exit(Pid(2011));
    let s = refresh(&mut t);
    assert_eq!(
        ns(&s, Inode(5007)).pins,
        vec![crate::model::Pin { mntns: Inode(6001), path: "/inside".into() }]
    );
    assert_eq!(ns(&s, Inode(5007)).path, None);
    assert!(ns(&s, Inode(6001)).processes.is_empty());
}

#[path = "tracker_churn_tests.rs"]
mod churn;
