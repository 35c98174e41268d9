//! `new` and the init of a new pid namespace over the fake host.

use super::*;

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
