//! `release` in all its forms over the fake host.

use super::*;

#[test]
fn release_lets_go_of_every_pin_in_the_pin_directories_only() {
    let mut r = Rig::new().with(NsType::Net, Inode(513));
    r.ok(net(Inode(513)), "pin a\npin b");
    {
        let mut s = r.host().state();
        s.nodes.insert("/srv/keep".into(), Node::EmptyFile);
        s.mounts.push(NsfsMount { ns_type: NsType::Net, inode: Inode(513), mount_point: "/srv/keep".into() });
    }
    r.ns_mut(Inode(513)).pins.push(Pin { mntns: OWN_MNTNS, path: "/srv/keep".into() });
    r.ok(net(Inode(513)), "release");
    assert!(r.host().mounted_at("/run/netns/a").is_empty());
    assert_eq!(r.host().node("/run/netns/a"), None);
    assert_eq!(r.host().node("/run/netns/b"), None);
    assert_eq!(r.host().mounted_at("/srv/keep"), vec![(NsType::Net, Inode(513))]);
}

#[test]
fn release_name_lets_go_of_that_pin_only() {
    let r = Rig::new().with(NsType::Uts, Inode(514));
    r.ok(uts(Inode(514)), "pin a\npin b");
    r.ok(uts(Inode(514)), "release a");
    assert!(r.host().mounted_at("/run/nsfuse/uts/a").is_empty());
    assert_eq!(r.host().mounted_at("/run/nsfuse/uts/b").len(), 1);
}

#[test]
fn releasing_a_name_it_is_not_pinned_as_is_enoent() {
    let r = Rig::new().with(NsType::Uts, Inode(515)).with(NsType::Uts, Inode(516));
    r.ok(uts(Inode(516)), "pin other");
    r.ok(uts(Inode(515)), "pin mine");
    r.refused(uts(Inode(515)), "release other", libc::ENOENT);
    r.refused(uts(Inode(515)), "release nothing", libc::ENOENT);
}

#[test]
fn release_path_unmounts_anywhere_but_removes_only_in_a_pin_directory() {
    let r = Rig::new().with(NsType::Uts, Inode(517));
    {
        let mut s = r.host().state();
        s.nodes.insert("/srv/u".into(), Node::EmptyFile);
        s.mounts.push(NsfsMount { ns_type: NsType::Uts, inode: Inode(517), mount_point: "/srv/u".into() });
    }
    r.ok(uts(Inode(517)), "release /srv/u");
    assert!(r.host().mounted_at("/srv/u").is_empty());
    assert_eq!(r.host().node("/srv/u"), Some(Node::EmptyFile));
}

#[test]
fn release_of_a_path_that_is_not_its_mount_is_einval() {
    let r = Rig::new().with(NsType::Uts, Inode(518)).with(NsType::Uts, Inode(519));
    r.ok(uts(Inode(519)), "pin theirs");
    r.refused(uts(Inode(518)), "release /run/nsfuse/uts/theirs", libc::EINVAL);
    r.refused(uts(Inode(518)), "release /nowhere", libc::EINVAL);
}

#[test]
fn release_of_an_unpinned_namespace_is_enoent() {
    let r = Rig::new().with(NsType::Uts, Inode(520));
    r.refused(uts(Inode(520)), "release", libc::ENOENT);
    assert!(r.c.status(uts(Inode(520))).contains("is not pinned in /run/nsfuse or /run/netns"));
}

#[test]
fn release_of_a_gone_namespace_is_enoent() {
    let r = Rig::new();
    r.refused(uts(Inode(521)), "release", libc::ENOENT);
    assert!(r.c.status(uts(Inode(521))).contains("uts:[521] is gone"));
}

#[test]
fn a_pinned_namespace_not_in_the_view_yet_can_be_released() {
    let r = Rig::new();
    {
        let mut s = r.host().state();
        s.nodes.insert("/run/nsfuse/uts/fresh".into(), Node::EmptyFile);
        s.mounts.push(NsfsMount {
            ns_type: NsType::Uts,
            inode: Inode(522),
            mount_point: "/run/nsfuse/uts/fresh".into(),
        });
    }
    r.ok(uts(Inode(522)), "release");
    assert_eq!(r.host().node("/run/nsfuse/uts/fresh"), None);
}

#[test]
fn release_all_reaches_into_other_mount_namespaces() {
    let mut r = Rig::new().with(NsType::Uts, Inode(523)).with(NsType::Mnt, Inode(600));
    r.ok(uts(Inode(523)), "pin here");
    r.ns_mut(Inode(523)).pins.push(Pin { mntns: Inode(600), path: "/inside/pin".into() });
    r.ok(uts(Inode(523)), "release all");
    assert!(r.host().mounted_at("/run/nsfuse/uts/here").is_empty());
    assert_eq!(r.host().state().unmounted_inside, vec![(Inode(600), PathBuf::from("/inside/pin"))]);
}

#[test]
fn release_all_with_its_mount_namespace_gone_is_enoent() {
    let mut r = Rig::new().with(NsType::Uts, Inode(524));
    r.ns_mut(Inode(524)).pins.push(Pin { mntns: Inode(601), path: "/inside/pin".into() });
    assert_eq!(r.write(uts(Inode(524)), "release all").1, Some(libc::ENOENT));
}

#[test]
fn every_layer_stacked_at_one_path_is_released() {
    let r = Rig::new().with(NsType::Uts, Inode(525));
    r.ok(uts(Inode(525)), "pin x");
    r.host().state().mounts.push(NsfsMount {
        ns_type: NsType::Uts,
        inode: Inode(525),
        mount_point: "/run/nsfuse/uts/x".into(),
    });
    r.ok(uts(Inode(525)), "release x");
    assert!(r.host().mounted_at("/run/nsfuse/uts/x").is_empty());
    assert_eq!(r.host().node("/run/nsfuse/uts/x"), None);
}

#[test]
fn an_unmount_that_fails_is_its_errno() {
    let r = Rig::new().with(NsType::Uts, Inode(526));
    r.ok(uts(Inode(526)), "pin");
    r.host().state().fail_unmount = Some(libc::EPERM);
    r.refused(uts(Inode(526)), "release", libc::EPERM);
}
