//! Random churn on the fake host: after every step, an incremental refresh
//! says what a full pass says.

use super::*;
use crate::discovery::pass::Model;
use crate::model::Link;

const PID_FOR_CHILDREN: usize = Link::PidForChildren.index();

/// A small deterministic generator for the churn below.
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

/// One random change: a process made, gone, moved, run; a pin made or
/// removed; a socket, or an nsfs file, opened; a thread moved; a
/// pid_for_children link (a process's or a thread's) changed.
fn churn_once(f: &Fake, rng: &mut Lcg, step: u64) {
    let mut w = f.world();
    let pids: Vec<Pid> = w.procs.keys().copied().filter(|&p| p != OWN_PID).collect();
    let pick = |rng: &mut Lcg, v: &[Pid]| v.get(rng.below(v.len().max(1) as u64) as usize).copied();
    let net = 5000 + rng.below(6);
    w.add_ns(NsType::Net, Inode(net), Some(host_ns(NsType::User)));
    let pid_ns = 6000 + rng.below(3);
    w.add_ns(NsType::Pid, Inode(pid_ns), Some(host_ns(NsType::User)));
    match rng.below(10) {
        0 => w.spawn(Pid(3000 + step as i32)).links = links_with(&[(NET, Inode(net))]),
        1 => {
            if let Some(p) = pick(rng, &pids) {
                w.exit(p);
            }
        }
        2 | 3 => {
            if let Some(p) = pick(rng, &pids) {
                w.enter(p, NsType::Net, Inode(net));
            }
        }
        4 => {
            let own = w.own_mntns;
            w.pin(own, &format!("/run/netns/c{step}"), NsType::Net, Inode(net));
        }
        5 => {
            let own = w.own_mntns;
            let first = w.mounts.get(&own).and_then(|m| m.pins.first()).map(|p| p.mount_point.clone());
            if let Some(path) = first {
                w.unpin(own, &path.to_string_lossy());
            }
        }
        7 => {
            if let Some(p) = pick(rng, &pids) {
                let proc = w.proc_mut(p);
                let mut links = proc.links;
                links.0[NET] = net as u32;
                proc.threads = vec![(Pid(p.get() + 100_000), links)];
                w.run(p);
            }
        }
        8 => {
            if let Some(p) = pick(rng, &pids) {
                w.proc_mut(p).ns_fds.push((200 + step as i32, NsType::Net, Inode(net)));
                w.run(p);
            }
        }
        9 => {
            if let Some(p) = pick(rng, &pids) {
                let proc = w.proc_mut(p);
                match proc.threads.first_mut() {
                    Some((_, thread)) if step.is_multiple_of(2) => thread.0[PID_FOR_CHILDREN] = pid_ns as u32,
                    _ => proc.links.0[PID_FOR_CHILDREN] = pid_ns as u32,
                }
                w.run(p);
            }
        }
        _ => {
            if let Some(p) = pick(rng, &pids) {
                let sock = 10_000 + step;
                w.sockets.insert(sock, Inode(net));
                w.proc_mut(p).sockets.push((100 + step as i32, sock));
                w.run(p);
            }
        }
    }
}

#[test]
fn after_random_churn_every_refresh_says_what_a_full_pass_says() {
    let f = busy_host();
    let mut t = tracker(&f);
    let mut reference = tracker(&f);
    let mut rng = Lcg(0x5eed);
    refresh(&mut t);
    for step in 0..200 {
        churn_once(&f, &mut rng, step);
        let incremental = refresh(&mut t);
        assert!(!t.last_pass_was_full(), "step {step}");
        assert_ne!(t.last_model(), Model::Built, "step {step}: the last model is patched (or kept)");
        let whole = full(&mut reference);
        assert_same_model(&f, &incremental, &whole);
    }
}
