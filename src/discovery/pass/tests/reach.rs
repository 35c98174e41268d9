//! How a namespace is reached when the path it was first seen by is gone,
//! and which pins are opened at all.

use super::*;

/// A process that held a descriptor of `inode` when the walk listed it and
/// closed it before the owners were read (as another scanner does with
/// the namespaces it opens): that path no longer leads to it.
fn seen_through_a_closed_descriptor(f: &Fake, pid: Pid, ty: NsType, inode: Inode) {
    let mut w = f.world();
    w.spawn(pid).ns_fds = vec![(5, ty, inode)];
    w.traps.insert(format!("/proc/{pid}/fd/5").into());
}

#[test]
fn a_sockets_namespace_is_read_through_the_socket_when_a_path_seen_first_is_gone() {
    let f = Fake::host();
    {
        let mut w = f.world();
        w.add_ns(NsType::Net, Inode(5200), Some(host_ns(NsType::User)));
        w.sockets.insert(950, Inode(5200));
        w.spawn(Pid(2030)).sockets = vec![(4, 950)];
    }
    seen_through_a_closed_descriptor(&f, Pid(2020), NsType::Net, Inode(5200));
    let s = scan(&f);
    let n = ns(&s, Inode(5200));
    assert_eq!(n.owner, Some(host_ns(NsType::User)));
    assert!(n.id.is_some());
}

#[test]
fn a_pin_read_from_inside_is_read_through_its_descriptor_when_a_path_seen_first_is_gone() {
    let f = Fake::host();
    {
        let mut w = f.world();
        w.add_ns(NsType::Mnt, Inode(6100), Some(host_ns(NsType::User)));
        w.add_ns(NsType::Net, Inode(5201), Some(host_ns(NsType::User)));
        let own = w.own_mntns;
        w.pin(own, "/run/nsfuse/mnt/m", NsType::Mnt, Inode(6100));
        w.pin(Inode(6100), "/in/net", NsType::Net, Inode(5201));
    }
    seen_through_a_closed_descriptor(&f, Pid(2021), NsType::Net, Inode(5201));
    let s = scan(&f);
    assert_eq!(ns(&s, Inode(5201)).owner, Some(host_ns(NsType::User)));
}

#[test]
fn an_owner_seen_first_by_a_path_that_is_gone_is_read_through_what_it_owns() {
    let f = Fake::host();
    {
        let mut w = f.world();
        w.add_ns(NsType::User, Inode(7010), Some(host_ns(NsType::User)));
        w.add_ns(NsType::Uts, Inode(5202), Some(Inode(7010)));
        w.spawn(Pid(2031)).links = links_with(&[(UTS, Inode(5202))]);
    }
    seen_through_a_closed_descriptor(&f, Pid(2022), NsType::User, Inode(7010));
    let s = scan(&f);
    let user = ns(&s, Inode(7010));
    assert_eq!(user.owner, Some(host_ns(NsType::User)));
    assert_eq!(user.parent, Some(host_ns(NsType::User)));
    assert_eq!(user.owns, vec![(NsType::Uts, Inode(5202))]);
}

#[test]
fn pins_inside_another_mount_namespace_are_opened_only_for_namespaces_not_reached_here() {
    // An open file on a mount keeps it busy: a copy of a pin in a
    // processless mount namespace is opened only when nothing else reaches
    // its namespace.
    let f = Fake::host();
    {
        let mut w = f.world();
        w.add_ns(NsType::Mnt, Inode(6200), Some(host_ns(NsType::User)));
        w.add_ns(NsType::Net, Inode(5300), Some(host_ns(NsType::User)));
        w.add_ns(NsType::Net, Inode(5301), Some(host_ns(NsType::User)));
        w.spawn(Pid(2040)).links = links_with(&[(NET, Inode(5300))]);
        let own = w.own_mntns;
        w.pin(own, "/run/nsfuse/mnt/copy", NsType::Mnt, Inode(6200));
        w.pin(Inode(6200), "/run/netns/a", NsType::Net, Inode(5300));
        w.pin(Inode(6200), "/run/netns/b", NsType::Net, Inode(5301));
    }
    let s = scan(&f);
    assert_eq!(f.world().opened_inside, vec![Inode(5301)]);
    assert_eq!(ns(&s, Inode(5300)).pins.len(), 1);
    assert_eq!(ns(&s, Inode(5301)).owner, Some(host_ns(NsType::User)));
}
