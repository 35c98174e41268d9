//! One pass over the fake host (`discovery::fake`): what each source adds
//! to the model (members, threads, for-children links, descriptors,
//! sockets, pins here and in other mount namespaces, owners and parents),
//! without root.

mod reach;

use super::*;
use crate::discovery::fake::{host_ns, links_with, Fake, OWN_PID};
use crate::model::PinDirs;
use std::path::Path;

fn opts() -> ScanOptions {
    ScanOptions { skip_own_fds: true, ..Default::default() }
}

fn scan(f: &Fake) -> Snapshot {
    match run(f, &opts(), Memory::default(), None) {
        Ok(out) => out.snapshot,
        Err(e) => panic!("scan of the fake host failed: {e}"),
    }
}

fn ns(s: &Snapshot, inode: Inode) -> &Namespace {
    s.namespaces.get(&inode).map(|n| &**n).unwrap_or_else(|| panic!("namespace {inode} not found"))
}

const NET: usize = 3;
const UTS: usize = 7;
const PID_FOR_CHILDREN: usize = 8;

/// A process `pid` in a new net namespace `inode` owned by the host's user.
fn in_new_net(f: &Fake, pid: Pid, inode: Inode) {
    let mut w = f.world();
    w.add_ns(NsType::Net, inode, Some(host_ns(NsType::User)));
    w.spawn(pid).links = links_with(&[(NET, inode)]);
}

#[test]
fn the_hosts_namespaces_are_found_with_their_owner_and_ids() {
    let f = Fake::host();
    let s = scan(&f);
    let user = host_ns(NsType::User);
    assert_eq!(s.namespaces.len(), 8);
    assert_eq!(s.root_userns, Some(user));
    for ty in NsType::ALL {
        let n = ns(&s, host_ns(ty));
        assert_eq!(n.ns_type, ty);
        assert_eq!(n.processes, vec![OWN_PID]);
        assert_eq!(n.id, f.world().namespaces.get(&n.inode).map(|k| k.id));
        if ty != NsType::User {
            assert_eq!(n.owner, Some(user), "{ty}");
        }
    }
    assert_eq!(ns(&s, user).owner_uid, Some(0));
    assert!(!s.partial);
    assert_eq!(s.own_mntns, host_ns(NsType::Mnt));
}

#[test]
fn a_member_process_is_a_task_holder_and_gives_the_path() {
    let f = Fake::host();
    in_new_net(&f, Pid(2000), Inode(5000));
    let s = scan(&f);
    let n = ns(&s, Inode(5000));
    assert_eq!(n.processes, vec![Pid(2000)]);
    assert_eq!(n.holders, vec![Holder::Task { pid: Pid(2000), tid: Pid(2000) }]);
    assert_eq!(n.path.as_deref(), Some(Path::new("/proc/2000/ns/net")));
    assert_eq!(n.owner, Some(host_ns(NsType::User)));
    assert!(!ns(&s, host_ns(NsType::Net)).processes.contains(&Pid(2000)));
}

#[test]
fn a_thread_in_another_namespace_is_a_holder_by_its_tid() {
    let f = Fake::host();
    {
        let mut w = f.world();
        w.add_ns(NsType::Uts, Inode(5001), Some(host_ns(NsType::User)));
        let p = w.spawn(Pid(2001));
        p.threads = vec![(Pid(2002), links_with(&[(UTS, Inode(5001))])), (Pid(2003), links_with(&[]))];
    }
    let s = scan(&f);
    let n = ns(&s, Inode(5001));
    assert_eq!(n.processes, vec![Pid(2001)]);
    assert_eq!(n.holders, vec![Holder::Task { pid: Pid(2001), tid: Pid(2002) }]);
    assert_eq!(n.path.as_deref(), Some(Path::new("/proc/2001/task/2002/ns/uts")));
    // A thread like its process adds nothing of its own.
    let host_uts = ns(&s, host_ns(NsType::Uts));
    assert!(host_uts.holders.contains(&Holder::Task { pid: Pid(2001), tid: Pid(2001) }));
    assert!(!host_uts.holders.iter().any(|h| matches!(h, Holder::Task { tid: Pid(2003), .. })));
}

#[test]
fn a_pid_for_children_link_is_a_holder_of_its_own() {
    let f = Fake::host();
    {
        let mut w = f.world();
        w.add_ns(NsType::Pid, Inode(5002), Some(host_ns(NsType::User))).parent = Some(host_ns(NsType::Pid));
        let p = w.spawn(Pid(2004));
        p.links = links_with(&[(PID_FOR_CHILDREN, Inode(5002))]);
        // Two threads share it: one holder.
        p.threads = vec![(Pid(2005), links_with(&[(PID_FOR_CHILDREN, Inode(5002))]))];
    }
    let s = scan(&f);
    let n = ns(&s, Inode(5002));
    assert!(n.processes.is_empty());
    assert_eq!(n.holders, vec![Holder::ForChildren { pid: Pid(2004) }]);
    assert_eq!(n.path.as_deref(), Some(Path::new("/proc/2004/ns/pid_for_children")));
    assert_eq!(n.parent, Some(host_ns(NsType::Pid)));
    let parent = ns(&s, host_ns(NsType::Pid));
    assert!(parent.children.contains(&Inode(5002)));
    assert!(parent.holders.contains(&Holder::Child { ns_type: NsType::Pid, inode: Inode(5002) }));
}

#[test]
fn an_open_nsfs_descriptor_holds_its_namespace() {
    let f = Fake::host();
    {
        let mut w = f.world();
        w.add_ns(NsType::Ipc, Inode(5003), Some(host_ns(NsType::User)));
        w.spawn(Pid(2006)).ns_fds = vec![(5, NsType::Ipc, Inode(5003))];
    }
    let s = scan(&f);
    let n = ns(&s, Inode(5003));
    assert!(n.processes.is_empty());
    assert_eq!(n.holders, vec![Holder::Fd { pid: Pid(2006), fd: 5 }]);
    assert_eq!(n.path.as_deref(), Some(Path::new("/proc/2006/fd/5")));
    assert_eq!(n.owner, Some(host_ns(NsType::User)));
}

#[test]
fn our_own_descriptors_are_left_out() {
    let f = Fake::host();
    {
        let mut w = f.world();
        w.add_ns(NsType::Ipc, Inode(5004), Some(host_ns(NsType::User)));
        w.proc_mut(OWN_PID).ns_fds = vec![(9, NsType::Ipc, Inode(5004))];
    }
    assert!(!scan(&f).namespaces.contains_key(&Inode(5004)));
}

#[test]
fn a_socket_holds_the_network_namespace_it_was_made_in() {
    let f = Fake::host();
    {
        let mut w = f.world();
        w.add_ns(NsType::Net, Inode(5005), Some(host_ns(NsType::User)));
        w.sockets.insert(900, Inode(5005));
        w.spawn(Pid(2007)).sockets = vec![(7, 900)];
    }
    let s = scan(&f);
    let n = ns(&s, Inode(5005));
    assert_eq!(n.holders, vec![Holder::Socket { pid: Pid(2007), fd: 7 }]);
    assert!(n.processes.is_empty());
    // Reached through the socket's namespace descriptor: its owner is known.
    assert_eq!(n.owner, Some(host_ns(NsType::User)));
    assert_eq!(n.path, None);
}

#[test]
fn a_socket_shared_by_two_processes_is_asked_about_once() {
    let f = Fake::host();
    {
        let mut w = f.world();
        w.add_ns(NsType::Net, Inode(5006), Some(host_ns(NsType::User)));
        w.sockets.insert(901, Inode(5006));
        w.spawn(Pid(2008)).sockets = vec![(3, 901)];
        w.spawn(Pid(2009)).sockets = vec![(4, 901), (5, 901)];
    }
    let s = scan(&f);
    let holders = &ns(&s, Inode(5006)).holders;
    assert_eq!(holders.len(), 3, "{holders:?}");
    assert_eq!(f.world().sockets_read, vec![(Pid(2008), 3)]);
}

#[test]
fn a_socket_whose_descriptor_was_reused_is_not_counted() {
    let f = Fake::host();
    {
        let mut w = f.world();
        w.add_ns(NsType::Net, Inode(5007), Some(host_ns(NsType::User)));
        w.sockets.insert(902, Inode(5007));
        w.spawn(Pid(2010)).sockets = vec![(7, 902)];
        // Between the walk and the question, fd 7 became another file.
        w.reused_fds.insert((Pid(2010), 7));
    }
    let s = scan(&f);
    assert!(!s.namespaces.contains_key(&Inode(5007)));
    assert_eq!(f.world().sockets_read, vec![(Pid(2010), 7)]);
}

#[test]
fn a_pin_here_is_the_best_path_and_has_a_name() {
    let f = Fake::host();
    {
        let mut w = f.world();
        w.add_ns(NsType::Net, Inode(5008), Some(host_ns(NsType::User)));
        w.spawn(Pid(2011)).links = links_with(&[(NET, Inode(5008))]);
        let own = w.own_mntns;
        w.pin(own, "/run/netns/web", NsType::Net, Inode(5008));
    }
    let s = scan(&f);
    let n = ns(&s, Inode(5008));
    let own = host_ns(NsType::Mnt);
    assert_eq!(n.pins, vec![Pin { mntns: own, path: "/run/netns/web".into() }]);
    assert!(n.holders.contains(&Holder::Mount { mntns: own, path: "/run/netns/web".into() }));
    assert_eq!(n.path.as_deref(), Some(Path::new("/run/netns/web")));
    assert_eq!(s.named_pins.get(&(NsType::Net, "web".to_owned())), Some(&Inode(5008)));
}

#[test]
fn a_pin_outside_the_pin_directories_has_no_name() {
    let f = Fake::host();
    {
        let mut w = f.world();
        w.add_ns(NsType::Uts, Inode(5009), Some(host_ns(NsType::User)));
        let own = w.own_mntns;
        w.pin(own, "/tmp/keep", NsType::Uts, Inode(5009));
    }
    let s = scan(&f);
    assert_eq!(ns(&s, Inode(5009)).path.as_deref(), Some(Path::new("/tmp/keep")));
    assert!(s.named_pins.is_empty());
}

#[test]
fn a_processless_namespace_pinned_here_is_found_with_its_owner() {
    let f = Fake::host();
    {
        let mut w = f.world();
        w.add_ns(NsType::User, Inode(7000), Some(host_ns(NsType::User)));
        w.add_ns(NsType::Ipc, Inode(5010), Some(Inode(7000)));
        let own = w.own_mntns;
        w.pin(own, "/run/nsfuse/ipc/x", NsType::Ipc, Inode(5010));
    }
    let s = scan(&f);
    assert_eq!(ns(&s, Inode(5010)).owner, Some(Inode(7000)));
    let user = ns(&s, Inode(7000));
    assert_eq!(user.owner, Some(host_ns(NsType::User)));
    assert_eq!(user.parent, Some(host_ns(NsType::User)));
    assert_eq!(user.owns, vec![(NsType::Ipc, Inode(5010))]);
    assert!(user.holders.contains(&Holder::Child { ns_type: NsType::Ipc, inode: Inode(5010) }));
    assert_eq!(s.named_pins.get(&(NsType::Ipc, "x".to_owned())), Some(&Inode(5010)));
}

#[test]
fn a_pin_in_a_members_mount_namespace_is_reached_through_its_root() {
    let f = Fake::host();
    {
        let mut w = f.world();
        w.add_ns(NsType::Mnt, Inode(6000), Some(host_ns(NsType::User)));
        w.add_ns(NsType::Uts, Inode(5011), Some(host_ns(NsType::User)));
        w.spawn(Pid(2012)).links = links_with(&[(NsType::Mnt.index(), Inode(6000))]);
        w.pin(Inode(6000), "/run/x", NsType::Uts, Inode(5011));
    }
    let s = scan(&f);
    let n = ns(&s, Inode(5011));
    assert_eq!(n.pins, vec![Pin { mntns: Inode(6000), path: "/run/x".into() }]);
    assert_eq!(n.path.as_deref(), Some(Path::new("/proc/2012/root/run/x")));
    assert!(!s.named_pins.contains_key(&(NsType::Uts, "x".to_owned())));
}

#[test]
fn pins_inside_a_processless_mount_namespace_are_read_from_inside() {
    let f = Fake::host();
    {
        let mut w = f.world();
        w.add_ns(NsType::Mnt, Inode(6001), Some(host_ns(NsType::User)));
        w.add_ns(NsType::Mnt, Inode(6002), Some(host_ns(NsType::User)));
        w.add_ns(NsType::Ipc, Inode(5012), Some(host_ns(NsType::User)));
        let own = w.own_mntns;
        w.pin(own, "/run/nsfuse/mnt/outer", NsType::Mnt, Inode(6001));
        // Transitively: a mount namespace pinned only inside another.
        w.pin(Inode(6001), "/inner", NsType::Mnt, Inode(6002));
        w.pin(Inode(6002), "/deep", NsType::Ipc, Inode(5012));
    }
    let s = scan(&f);
    assert_eq!(ns(&s, Inode(6002)).pins, vec![Pin { mntns: Inode(6001), path: "/inner".into() }]);
    let deep = ns(&s, Inode(5012));
    assert_eq!(deep.pins, vec![Pin { mntns: Inode(6002), path: "/deep".into() }]);
    assert_eq!(deep.owner, Some(host_ns(NsType::User)), "reached through the descriptor read inside");
    assert_eq!(deep.path, None);
}

#[test]
fn an_unseen_owner_is_adopted_with_its_own_owner() {
    let f = Fake::host();
    {
        let mut w = f.world();
        w.add_ns(NsType::User, Inode(7001), Some(host_ns(NsType::User)));
        w.add_ns(NsType::User, Inode(7002), Some(Inode(7001)));
        w.add_ns(NsType::Net, Inode(5013), Some(Inode(7002)));
        w.spawn(Pid(2013)).links = links_with(&[(NET, Inode(5013))]);
    }
    let s = scan(&f);
    assert_eq!(ns(&s, Inode(5013)).owner, Some(Inode(7002)));
    assert_eq!(ns(&s, Inode(7002)).parent, Some(Inode(7001)));
    assert_eq!(ns(&s, Inode(7001)).children, vec![Inode(7002)]);
    assert!(ns(&s, Inode(7002)).processes.is_empty());
    assert!(ns(&s, host_ns(NsType::User)).children.contains(&Inode(7001)));
}

#[test]
fn a_pid_namespaces_parent_chain_is_followed_to_the_top() {
    let f = Fake::host();
    {
        let mut w = f.world();
        w.add_ns(NsType::Pid, Inode(7100), Some(host_ns(NsType::User))).parent = Some(host_ns(NsType::Pid));
        w.add_ns(NsType::Pid, Inode(7101), Some(host_ns(NsType::User))).parent = Some(Inode(7100));
        w.spawn(Pid(2014)).links =
            links_with(&[(NsType::Pid.index(), Inode(7101)), (PID_FOR_CHILDREN, Inode(7101))]);
    }
    let s = scan(&f);
    assert_eq!(ns(&s, Inode(7101)).parent, Some(Inode(7100)));
    assert_eq!(ns(&s, Inode(7100)).parent, Some(host_ns(NsType::Pid)));
    assert_eq!(ns(&s, Inode(7100)).holders, vec![Holder::Child { ns_type: NsType::Pid, inode: Inode(7101) }]);
}

#[test]
fn a_pin_path_that_leads_elsewhere_leaves_the_namespace_without_a_path() {
    let f = Fake::host();
    {
        let mut w = f.world();
        w.add_ns(NsType::Uts, Inode(5014), Some(host_ns(NsType::User)));
        let own = w.own_mntns;
        w.pin(own, "/run/nsfuse/uts/t", NsType::Uts, Inode(5014));
        w.traps.insert("/run/nsfuse/uts/t".into());
    }
    let s = scan(&f);
    let n = ns(&s, Inode(5014));
    assert_eq!(n.path, None);
    assert_eq!(n.owner, None);
    assert_eq!(n.pins.len(), 1, "still listed with its pin");
}

#[test]
fn a_member_path_is_opened_before_a_pin() {
    let f = Fake::host();
    {
        let mut w = f.world();
        w.add_ns(NsType::Uts, Inode(5015), Some(host_ns(NsType::User)));
        w.spawn(Pid(2015)).links = links_with(&[(UTS, Inode(5015))]);
        let own = w.own_mntns;
        w.pin(own, "/run/nsfuse/uts/m", NsType::Uts, Inode(5015));
        // The pin is a trap now; the member still leads to it.
        w.traps.insert("/run/nsfuse/uts/m".into());
    }
    let s = scan(&f);
    let n = ns(&s, Inode(5015));
    assert_eq!(n.path.as_deref(), Some(Path::new("/run/nsfuse/uts/m")));
    assert_eq!(n.owner, Some(host_ns(NsType::User)), "relations read through the member");
}

#[test]
fn a_scan_as_another_user_is_partial() {
    let f = Fake::host();
    f.world().root = false;
    assert!(scan(&f).partial);
}

#[test]
fn cgroups_are_kept_per_process() {
    let f = Fake::host();
    f.world().spawn(Pid(2016)).cgroup = Some("/system.slice/docker-abc.scope".into());
    let s = scan(&f);
    assert_eq!(s.cgroups, vec![(Pid(2016), Arc::from("/system.slice/docker-abc.scope"))]);
}

#[test]
fn a_scan_for_owner_lines_reads_cgroups_only_outside_the_hosts_namespaces() {
    let f = Fake::host();
    f.world().spawn(Pid(1));
    f.world().spawn(Pid(2016)).cgroup = Some("/system.slice/sshd.service".into());
    in_new_net(&f, Pid(2017), Inode(5300));
    f.world().procs.get_mut(&Pid(2017)).expect("spawned").cgroup =
        Some("/system.slice/docker-abc.scope".into());
    let every = scan(&f);
    let opts = ScanOptions { cgroups: Cgroups::ForOwners, ..opts() };
    let for_owners = run(&f, &opts, Memory::default(), None).expect("scan").snapshot;
    assert_eq!(every.cgroups.len(), 2);
    assert_eq!(for_owners.cgroups, vec![(Pid(2017), Arc::from("/system.slice/docker-abc.scope"))]);
    let owners = |s: &Snapshot| crate::owners::index::current(s, &PinDirs::default());
    assert_eq!(owners(&for_owners), owners(&every));
    assert_eq!(owners(&every).len(), 1, "the new netns has an owner line; the host's have none");
}

#[test]
fn a_namespace_owned_by_a_user_namespace_is_listed_under_owns_in_type_order() {
    let f = Fake::host();
    {
        let mut w = f.world();
        w.add_ns(NsType::User, Inode(7003), Some(host_ns(NsType::User)));
        for (i, ty) in [NsType::Uts, NsType::Net, NsType::Ipc].into_iter().enumerate() {
            w.add_ns(ty, Inode(5100 + i as u64), Some(Inode(7003)));
            let own = w.own_mntns;
            w.pin(own, &format!("/run/p{i}"), ty, Inode(5100 + i as u64));
        }
    }
    let s = scan(&f);
    assert_eq!(
        ns(&s, Inode(7003)).owns,
        vec![(NsType::Ipc, Inode(5102)), (NsType::Net, Inode(5101)), (NsType::Uts, Inode(5100))]
    );
}

#[test]
fn no_processes_at_all_is_an_error() {
    let f = Fake::host();
    f.world().procs.clear();
    assert!(run(&f, &opts(), Memory::default(), None).is_err());
}
