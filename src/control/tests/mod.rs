//! Control over the fake host (`control::fake`): every command of SPEC
//! sections 3 and 4, every errno row, and that a refused command changes
//! nothing, without root.

mod new;
mod release;

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
