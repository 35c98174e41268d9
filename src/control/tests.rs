//! Control over the fake host (`control::fake`): every command of SPEC
//! sections 3 and 4, every errno row, and that a refused command changes
//! nothing, without root.

use super::fake::{listing, Fake, Node};
use super::*;
use crate::discovery::parse::NsfsMount;
use crate::model::{Pid, Pin};

const OWN_MNTNS: Inode = Inode(12);

/// A controller on a fake host, and the namespaces its view holds.
struct Rig {
    c: Controller<Fake>,
    nss: Vec<Namespace>,
}

impl Rig {
    fn new() -> Rig {
        Rig { c: Controller::on(Fake::default(), PinDirs::default(), "/mnt/ns".into()), nss: Vec::new() }
    }

    fn host(&self) -> &Fake {
        &self.c.host
    }

    /// A live namespace, reachable through its member's link.
    fn with(mut self, ty: NsType, inode: Inode) -> Rig {
        let path = PathBuf::from(format!("/proc/{inode}/ns/{}", ty.name()));
        self.host().state().paths.insert(path.clone(), (ty, inode));
        let mut ns = Namespace::new(ty, inode);
        ns.path = Some(path);
        self.nss.push(ns);
        self
    }

    /// Put a file at `path` (its directories made), as someone else would.
    fn put(&self, path: &str, node: Node) {
        let path = Path::new(path);
        if let Some(dir) = path.parent() {
            assert!(self.host().make_dirs(dir).is_ok());
        }
        self.host().state().nodes.insert(path.into(), node);
    }

    fn ns_mut(&mut self, inode: Inode) -> &mut Namespace {
        match self.nss.iter_mut().find(|n| n.inode == inode) {
            Some(n) => n,
            None => panic!("no namespace {inode}"),
        }
    }

    /// Write `text` to `target`'s ctl: lines done, and the errno if refused.
    fn write(&self, target: Target, text: &str) -> (usize, Option<i32>) {
        let find =
            |ty: NsType, inode: Inode| self.nss.iter().find(|n| n.ns_type == ty && n.inode == inode).cloned();
        let (done, result) = self.c.execute(&find, OWN_MNTNS, target, text.as_bytes());
        (done, result.err().map(|e| e.errno()))
    }

    fn ok(&self, target: Target, text: &str) {
        let (_, err) = self.write(target, text);
        assert_eq!(err, None, "'{text}' to {target}: {}", self.c.status(target));
    }

    fn refused(&self, target: Target, text: &str, errno: i32) {
        let before = (listing(self.host()), self.host().nsfs_mounts());
        assert_eq!(self.write(target, text).1, Some(errno), "'{text}' to {target}");
        let after = (listing(self.host()), self.host().nsfs_mounts());
        assert_eq!(before, after, "'{text}' was refused but changed something");
        assert!(self.c.status(target).contains("failed:"), "{}", self.c.status(target));
    }
}

fn uts(inode: Inode) -> Target {
    Target::Ns(NsType::Uts, inode)
}

fn net(inode: Inode) -> Target {
    Target::Ns(NsType::Net, inode)
}

#[test]
fn pin_bind_mounts_the_namespace_at_its_inode() {
    let r = Rig::new().with(NsType::Uts, Inode(500));
    r.ok(uts(Inode(500)), "pin");
    assert_eq!(r.host().mounted_at("/run/nsfuse/uts/500"), vec![(NsType::Uts, Inode(500))]);
    assert!(r.c.status(uts(Inode(500))).contains("'pin' succeeded: pinned uts:[500] at /run/nsfuse/uts/500"));
}

#[test]
fn a_net_pin_goes_where_ip_netns_looks() {
    let r = Rig::new().with(NsType::Net, Inode(501));
    r.ok(net(Inode(501)), "pin web");
    assert_eq!(r.host().mounted_at("/run/netns/web"), vec![(NsType::Net, Inode(501))]);
    assert_eq!(r.host().node("/run/netns/web"), Some(Node::EmptyFile));
}

#[test]
fn pinning_twice_at_one_place_changes_nothing() {
    let r = Rig::new().with(NsType::Uts, Inode(502));
    r.ok(uts(Inode(502)), "pin a");
    r.ok(uts(Inode(502)), "pin a");
    assert_eq!(r.host().mounted_at("/run/nsfuse/uts/a").len(), 1);
    assert!(r.c.status(uts(Inode(502))).contains("was already pinned"));
}

#[test]
fn a_name_pinned_by_another_namespace_is_refused_with_eexist() {
    let r = Rig::new().with(NsType::Uts, Inode(503)).with(NsType::Uts, Inode(504));
    r.ok(uts(Inode(503)), "pin shared");
    r.refused(uts(Inode(504)), "pin shared", libc::EEXIST);
    assert_eq!(r.host().mounted_at("/run/nsfuse/uts/shared"), vec![(NsType::Uts, Inode(503))]);
}

#[test]
fn pinning_a_gone_namespace_is_enoent() {
    let r = Rig::new();
    r.refused(uts(Inode(505)), "pin", libc::ENOENT);
}

#[test]
fn a_namespace_whose_path_leads_elsewhere_now_is_gone() {
    let r = Rig::new().with(NsType::Uts, Inode(506));
    // The member exited and its PID went to a process elsewhere.
    r.host().state().paths.insert("/proc/506/ns/uts".into(), (NsType::Uts, Inode(999)));
    r.refused(uts(Inode(506)), "pin", libc::ENOENT);
}

#[test]
fn a_file_in_the_way_is_eexist_and_left_alone() {
    let r = Rig::new().with(NsType::Uts, Inode(507));
    r.put("/run/nsfuse/uts/busy", Node::File);
    r.refused(uts(Inode(507)), "pin busy", libc::EEXIST);
    assert_eq!(r.host().node("/run/nsfuse/uts/busy"), Some(Node::File));
}

#[test]
fn an_empty_file_left_by_someone_is_taken() {
    let r = Rig::new().with(NsType::Uts, Inode(508));
    r.put("/run/nsfuse/uts/left", Node::EmptyFile);
    r.ok(uts(Inode(508)), "pin left");
    assert_eq!(r.host().mounted_at("/run/nsfuse/uts/left"), vec![(NsType::Uts, Inode(508))]);
}

#[test]
fn a_bind_mount_that_fails_leaves_no_file() {
    let r = Rig::new().with(NsType::Uts, Inode(509));
    r.host().make_dirs(Path::new("/run/nsfuse/uts")).ok();
    r.host().state().fail_bind = Some(libc::EPERM);
    r.refused(uts(Inode(509)), "pin", libc::EPERM);
    assert_eq!(r.host().node("/run/nsfuse/uts/509"), None);
}

#[test]
fn a_failed_bind_over_someones_empty_file_keeps_that_file() {
    let r = Rig::new().with(NsType::Uts, Inode(510));
    r.put("/run/nsfuse/uts/theirs", Node::EmptyFile);
    r.host().state().fail_bind = Some(libc::ENOMEM);
    r.refused(uts(Inode(510)), "pin theirs", libc::ENOMEM);
    assert_eq!(r.host().node("/run/nsfuse/uts/theirs"), Some(Node::EmptyFile));
}

#[test]
fn a_mount_namespace_the_kernel_will_not_pin_is_einval_with_the_reason() {
    let r = Rig::new().with(NsType::Mnt, Inode(511));
    r.host().make_dirs(Path::new("/run/nsfuse/mnt")).ok();
    r.host().state().fail_bind = Some(libc::EINVAL);
    r.refused(Target::Ns(NsType::Mnt, Inode(511)), "pin", libc::EINVAL);
    assert!(r.c.status(Target::Ns(NsType::Mnt, Inode(511))).contains("reference loop"));
}

#[test]
fn a_pin_directory_that_cannot_be_made_is_its_errno() {
    let r = Rig::new().with(NsType::Uts, Inode(512));
    r.host().state().fail_mkdir = Some(libc::EROFS);
    r.refused(uts(Inode(512)), "pin", libc::EROFS);
}

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

#[test]
fn new_makes_a_namespace_and_pins_it_by_name_or_inode() {
    let r = Rig::new();
    r.ok(Target::Top, "new net lab\nnew uts");
    let made = r.host().state().made.clone();
    assert_eq!(made.len(), 2);
    assert_eq!(r.host().mounted_at("/run/netns/lab"), vec![made[0]]);
    assert_eq!(r.host().mounted_at(&format!("/run/nsfuse/uts/{}", made[1].1)), vec![made[1]]);
}

#[test]
fn new_with_a_taken_name_is_refused_before_anything_is_made() {
    let r = Rig::new().with(NsType::Net, Inode(527));
    r.ok(net(Inode(527)), "pin lab");
    r.refused(Target::Top, "new net lab", libc::EEXIST);
    r.put("/run/nsfuse/ipc/file", Node::File);
    r.refused(Target::Top, "new ipc file", libc::EEXIST);
    assert!(r.host().state().made.is_empty());
}

#[test]
fn a_new_pid_namespace_whose_pin_fails_ends_its_init() {
    let r = Rig::new();
    r.host().state().fail_bind = Some(libc::EPERM);
    assert_eq!(r.write(Target::Top, "new pid p").1, Some(libc::EPERM));
    let s = r.host().state();
    assert_eq!(s.ended.len(), 1);
    assert!(s.mounts.is_empty());
}

#[test]
fn a_namespace_that_cannot_be_made_is_its_errno() {
    let r = Rig::new();
    r.host().state().fail_new = Some(libc::ENOSPC);
    r.refused(Target::Top, "new user", libc::ENOSPC);
}

#[test]
fn releasing_the_last_pin_of_a_new_pid_namespace_ends_only_its_init() {
    let mut r = Rig::new();
    r.ok(Target::Top, "new pid p");
    let (_, inode) = r.host().state().made[0];
    let init = Pid(30001);
    r.host().state().comms.insert(Pid(4242), "sh".into());
    r = r.with(NsType::Pid, inode);
    r.ns_mut(inode).processes = vec![init, Pid(4242)];
    r.ok(Target::Ns(NsType::Pid, inode), "release p");
    assert_eq!(r.host().state().ended, vec![init]);
}

#[test]
fn a_pid_namespace_still_pinned_elsewhere_keeps_its_init() {
    let mut r = Rig::new();
    r.ok(Target::Top, "new pid p");
    let (_, inode) = r.host().state().made[0];
    r = r.with(NsType::Pid, inode);
    r.ns_mut(inode).processes = vec![Pid(30001)];
    r.ns_mut(inode).pins.push(Pin { mntns: Inode(600), path: "/elsewhere".into() });
    r.ok(Target::Ns(NsType::Pid, inode), "release p");
    assert!(r.host().state().ended.is_empty());
}

#[test]
fn lines_run_in_order_and_stop_at_the_first_refusal() {
    let r = Rig::new().with(NsType::Uts, Inode(528));
    let (done, err) = r.write(uts(Inode(528)), "pin one\nbogus\npin two\n");
    assert_eq!((done, err), (1, Some(libc::EINVAL)));
    assert_eq!(r.host().mounted_at("/run/nsfuse/uts/one").len(), 1);
    assert!(r.host().mounted_at("/run/nsfuse/uts/two").is_empty());
    assert!(r.c.status(uts(Inode(528))).contains("'bogus' failed: unknown command 'bogus'"));
}

#[test]
fn a_line_that_is_not_a_command_is_einval_and_changes_nothing() {
    let r = Rig::new().with(NsType::Uts, Inode(529));
    for line in ["", "pin a b", "pin ..", "pin a/b", "new net", "release rel\0x", "pin \u{1}"] {
        r.refused(uts(Inode(529)), line, libc::EINVAL);
    }
    r.refused(Target::Top, "pin uts 0529", libc::EINVAL);
    r.refused(Target::Top, "new bogus", libc::EINVAL);
}

#[test]
fn a_ctl_file_says_its_grammar_and_the_last_outcome() {
    let r = Rig::new().with(NsType::Uts, Inode(530));
    let before = r.c.status(uts(Inode(530)));
    assert!(before.contains("pin [NAME]") && before.ends_with("Last command: none yet.\n"), "{before}");
    assert!(r.c.status(Target::Top).contains("new TYPE [NAME]"));
    r.ok(uts(Inode(530)), "pin");
    assert!(r.c.status(uts(Inode(530))).contains("Last command: 'pin' succeeded"));
    assert!(r.c.status(uts(Inode(531))).contains("none yet."), "outcomes are per ctl file");
}

#[test]
fn every_error_has_the_errno_of_the_spec() {
    let p = || PathBuf::from("/p");
    let io = || io::Error::from_raw_os_error(libc::EPERM);
    let (ty, inode) = (NsType::Net, 1);
    let rows = [
        (Error::Invalid(command::Invalid::EmptyLine), libc::EINVAL),
        (Error::NoDirectory { path: p() }, libc::EINVAL),
        (Error::MountLoop { inode: Inode(inode), path: p() }, libc::EINVAL),
        (Error::NotAMountOf { path: p(), ty, inode: Inode(inode) }, libc::EINVAL),
        (Error::Taken { path: p() }, libc::EEXIST),
        (Error::PinOfAnother { path: p(), ty, inode: Inode(inode) }, libc::EEXIST),
        (Error::InTheWay { path: p() }, libc::EEXIST),
        (Error::Gone { ty, inode: Inode(inode) }, libc::ENOENT),
        (Error::NotPinnedAs { ty, inode: Inode(inode), name: "n".into(), path: p() }, libc::ENOENT),
        (Error::NotPinned { ty, inode: Inode(inode), dirs: PinDirs::default() }, libc::ENOENT),
        (Error::Host { doing: "make", path: p(), source: io() }, libc::EPERM),
        (Error::Bind { ty, inode: Inode(inode), path: p(), source: io() }, libc::EPERM),
        (Error::UnmountInside { mntns: Inode(2), source: io() }, libc::EPERM),
        (Error::Create { ty, source: io::Error::other("no errno") }, libc::EIO),
    ];
    for (e, errno) in rows {
        assert_eq!(e.errno(), errno, "{e}");
        assert!(!e.to_string().is_empty());
    }
}
