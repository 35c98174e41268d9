//! The tree's shape over small literal snapshots.

use super::*;
use crate::model::{Holder, Pin, ProcessLinks, ProcessTable};
use std::sync::Arc;

/// A small host: init user/net/uts, a child user ns owning a net ns
/// pinned as "web", and a process in both.
fn host() -> Snapshot {
    let mut s = Snapshot::default();
    let mut add = |ty, inode, owner, parent| {
        let mut n = Namespace::new(ty, inode);
        n.owner = owner;
        n.parent = parent;
        n.id = Some(inode.get() * 10);
        n.path = Some(format!("/proc/1/ns/{ty}").into());
        s.namespaces.insert(inode, Arc::new(n));
    };
    add(NsType::User, Inode(100), None, None);
    add(NsType::Net, Inode(101), Some(Inode(100)), None);
    add(NsType::User, Inode(200), Some(Inode(100)), Some(Inode(100)));
    add(NsType::Net, Inode(201), Some(Inode(200)), None);
    ns_mut(&mut s, Inode(100)).owns = vec![(NsType::Net, Inode(101)), (NsType::User, Inode(200))];
    ns_mut(&mut s, Inode(100)).children = vec![Inode(200)];
    ns_mut(&mut s, Inode(200)).owns = vec![(NsType::Net, Inode(201))];
    ns_mut(&mut s, Inode(200)).owner_uid = Some(1000);
    let n = ns_mut(&mut s, Inode(201));
    n.pins = vec![Pin { mntns: Inode(5), path: "/run/netns/web".into() }];
    n.holders = vec![Holder::Mount { mntns: Inode(5), path: "/run/netns/web".into() }];
    s.named_pins.insert((NsType::Net, "web".into()), Inode(201));
    let mut links = ProcessLinks::default();
    links.0[NsType::User.index()] = 100;
    links.0[NsType::Net.index()] = 101;
    s.processes = ProcessTable::new(vec![(Pid(1), links)]);
    s.root_userns = Some(Inode(100));
    s
}

fn ns_mut(s: &mut Snapshot, inode: Inode) -> &mut Namespace {
    Arc::make_mut(s.namespaces.get_mut(&inode).expect("in the test host"))
}

fn with_ctx<R>(snap: &Snapshot, read_only: bool, f: impl FnOnce(&Ctx<'_>) -> R) -> R {
    let mut pins = PinNames::default();
    pins.register(NsType::Net, "web");
    let owners = Owners::default();
    let ctx = Ctx { snap, pins: &pins, read_only, visible: None, owners: &owners };
    f(&ctx)
}

fn names(list: Option<Vec<(String, Node)>>) -> Vec<String> {
    list.unwrap_or_default().into_iter().map(|(n, _)| n).collect()
}

#[test]
fn root_and_type_dirs() {
    let s = host();
    with_ctx(&s, false, |c| {
        assert_eq!(
            names(c.list(Node::Root)),
            [
                "README",
                "ctl",
                "cgroup",
                "ipc",
                "mnt",
                "net",
                "pid",
                "time",
                "user",
                "uts",
                "pinned",
                "proc",
                "tree",
                "orphans",
                "containers",
                "events",
                "metrics"
            ]
        );
        assert_eq!(names(c.list(Node::TypeDir(NsType::Net))), ["101", "201"]);
        assert_eq!(c.lookup(Node::TypeDir(NsType::Net), "201"), Some(Node::NsDir(NsType::Net, Inode(201))));
        assert_eq!(c.lookup(Node::TypeDir(NsType::Uts), "201"), None, "wrong type");
        assert_eq!(c.lookup(Node::TypeDir(NsType::Net), "0201"), None, "one name only");
        assert_eq!(c.lookup(Node::TypeDir(NsType::Net), "999"), None);
    });
    with_ctx(&s, true, |c| {
        assert!(!names(c.list(Node::Root)).contains(&"ctl".to_string()));
        assert_eq!(c.lookup(Node::Root, "ctl"), None);
    });
}

#[test]
fn namespace_directory() {
    let s = host();
    with_ctx(&s, false, |c| {
        // Every namespace: type inode id owner, [the hierarchy], the
        // rest, then its type-specific files.
        let listing = |hierarchy: &[&str], details: &[&str]| {
            let head = ["type", "inode", "id", "owner"].iter().chain(hierarchy);
            // (The test host's namespaces have no member: all orphans, with an age.)
            let rest = ["processes", "holders", "pins", "ns", "ctl", "info.json", "container", "age"]
                .iter()
                .chain(details);
            head.chain(rest).map(|n| n.to_string()).collect::<Vec<_>>()
        };
        assert_eq!(
            names(c.list(Node::NsDir(NsType::User, Inode(200)))),
            listing(&["parent", "children", "owns"], &["uid_map", "gid_map", "owner_uid", "level"])
        );
        let net = Node::NsDir(NsType::Net, Inode(201));
        assert_eq!(names(c.list(net)), listing(&[], &["interfaces", "netnsid"]));
        let f =
            |e| c.content(Node::NsFile(NsType::Net, Inode(201), e)).map(|b| String::from_utf8(b).unwrap());
        assert_eq!(f(NsEntry::Type).as_deref(), Some("net\n"));
        assert_eq!(f(NsEntry::Inode).as_deref(), Some("201\n"));
        assert_eq!(f(NsEntry::Id).as_deref(), Some("2010\n"));
        assert_eq!(f(NsEntry::Pins).as_deref(), Some("5 /run/netns/web\n"));
        assert_eq!(f(NsEntry::Holders).as_deref(), Some("mount 5 /run/netns/web\n"));
        assert_eq!(c.owner_uid(net), 1000);
        assert_eq!(c.owner_uid(Node::NsFile(NsType::Net, Inode(201), NsEntry::Ctl)), 0);
        assert_eq!(c.lookup(Node::NsDir(NsType::Net, Inode(201)), "parent"), None, "net has no parent");
        assert_eq!(c.lookup(Node::NsDir(NsType::Net, Inode(201)), "hostname"), None, "not a uts ns");
    });
    // With no way in (no path, no member), no type-specific files, and
    // no `ns` link; the user namespace without owner_uid has no file for it.
    let mut s = host();
    for n in s.namespaces.values_mut() {
        Arc::make_mut(n).path = None;
    }
    ns_mut(&mut s, Inode(200)).owner_uid = None;
    s.processes = ProcessTable::default();
    with_ctx(&s, false, |c| {
        let user = names(c.list(Node::NsDir(NsType::User, Inode(200))));
        assert_eq!(&user[user.len() - 2..], ["age", "level"]);
        assert!(!user.contains(&"ns".to_string()));
        assert_eq!(
            names(c.list(Node::NsDir(NsType::Net, Inode(201)))).last().map(String::as_str),
            Some("age")
        );
    });
}

#[test]
fn gone_directories() {
    let old = host();
    assert!(gone_dirs(&old, &old).is_empty());
    let mut new = host();
    new.namespaces.remove(&Inode(201));
    new.processes = ProcessTable::default();
    // 200 now names a user namespace under another parent (a reused number).
    ns_mut(&mut new, Inode(200)).parent = Some(Inode(999));
    let mut gone = gone_dirs(&old, &new);
    gone.sort_by_key(|(n, name)| (n.ino(), name.clone()));
    let mut want = vec![
        (Node::TypeDir(NsType::Net), "201".to_string()),
        (Node::TypeDir(NsType::User), "200".to_string()),
        (Node::TreeUser(Inode(100)), "user:200".to_string()),
        (Node::ProcRoot, "1".to_string()),
    ];
    want.sort_by_key(|(n, name)| (n.ino(), name.clone()));
    assert_eq!(gone, want);
}

#[test]
fn symlinks_are_relative() {
    let s = host();
    with_ctx(&s, false, |c| {
        let l = |n| c.link_target(n);
        assert_eq!(
            l(Node::NsFile(NsType::Net, Inode(201), NsEntry::Owner)).as_deref(),
            Some("../../user/200")
        );
        assert_eq!(l(Node::NsFile(NsType::User, Inode(200), NsEntry::Parent)).as_deref(), Some("../100"));
        let child = c.lookup(Node::NsFile(NsType::User, Inode(100), NsEntry::Children), "200").unwrap();
        assert_eq!(l(child).as_deref(), Some("../../200"));
        let owned = c.lookup(Node::NsFile(NsType::User, Inode(200), NsEntry::Owns), "net:201").unwrap();
        assert_eq!(l(owned).as_deref(), Some("../../../net/201"));
        let pin = c.lookup(Node::PinnedType(NsType::Net), "web").unwrap();
        assert_eq!(l(pin).as_deref(), Some("../../net/201"));
        let proc_net = c.lookup(Node::ProcDir(Pid(1)), "net").unwrap();
        assert_eq!(l(proc_net).as_deref(), Some("../../net/101"));
        assert_eq!(names(c.list(Node::ProcDir(Pid(1)))), ["net", "user"]);
    });
}

#[test]
fn ownership_tree() {
    let s = host();
    with_ctx(&s, false, |c| {
        assert_eq!(names(c.list(Node::TreeRoot)), ["user:100"]);
        assert_eq!(names(c.list(Node::TreeUser(Inode(100)))), ["net:101", "user:200"]);
        assert_eq!(names(c.list(Node::TreeUser(Inode(200)))), ["net:201"]);
        assert_eq!(c.lookup(Node::TreeRoot, "user:200"), None, "nested, not top-level");
        let deep = c.lookup(Node::TreeUser(Inode(200)), "net:201").unwrap();
        // tree/user:100/user:200/net:201 -> ../../../net/201
        assert_eq!(c.link_target(deep).as_deref(), Some("../../../net/201"));
        let top = c.lookup(Node::TreeUser(Inode(100)), "net:101").unwrap();
        assert_eq!(c.link_target(top).as_deref(), Some("../../net/101"));
        assert_eq!(c.lookup(Node::TreeUser(Inode(100)), "net:201"), None, "owned by 200, not 100");
    });
}

#[test]
fn visibility_filter() {
    let s = host();
    let pins = PinNames::default();
    let visible = Visibility { pids: [Pid(1)].into(), namespaces: [Inode(100), Inode(101)].into() };
    let c =
        Ctx { snap: &s, pins: &pins, read_only: false, visible: Some(&visible), owners: &Owners::default() };
    assert_eq!(names(c.list(Node::ProcRoot)), ["1"]);
    assert_eq!(names(c.list(Node::TypeDir(NsType::Net))), ["101"]);
    assert_eq!(c.lookup(Node::TypeDir(NsType::Net), "201"), None);
    assert_eq!(
        names(c.list(Node::NsFile(NsType::User, Inode(100), NsEntry::Children))),
        Vec::<String>::new()
    );
    // Contents follow the same rule: user 100 owns 200, which is hidden.
    let mut s2 = host();
    let user = ns_mut(&mut s2, Inode(100));
    user.holders = vec![
        Holder::Task { pid: Pid(1), tid: Pid(1) },
        Holder::Fd { pid: Pid(77), fd: 3 },
        Holder::Child { ns_type: NsType::User, inode: Inode(200) },
        Holder::Child { ns_type: NsType::Net, inode: Inode(101) },
    ];
    user.processes = vec![Pid(1), Pid(77)];
    let c =
        Ctx { snap: &s2, pins: &pins, read_only: false, visible: Some(&visible), owners: &Owners::default() };
    let text = |n| String::from_utf8(c.content(n).unwrap_or_default()).unwrap();
    assert_eq!(text(Node::NsFile(NsType::User, Inode(100), NsEntry::Holders)), "task 1 1\nchild net 101\n");
    let json = text(Node::NsFile(NsType::User, Inode(100), NsEntry::InfoJson));
    assert!(!json.contains("200") && !json.contains("77"), "{json}");
    let root = Ctx { snap: &s2, pins: &pins, read_only: false, visible: None, owners: &Owners::default() };
    assert_eq!(
        String::from_utf8(root.content(Node::NsFile(NsType::User, Inode(100), NsEntry::Holders)).unwrap())
            .unwrap()
            .lines()
            .count(),
        4
    );
}

#[test]
fn numbers() {
    assert_eq!(number("4026531840"), Some(4026531840));
    assert_eq!(number("0"), Some(0));
    for bad in ["", "01", "+1", "-1", " 1", "1a", "99999999999999999999999"] {
        assert_eq!(number(bad), None, "{bad}");
    }
}
