//! How a refresh knows the processes without listing /proc: the last
//! pass's, plus those whose PIDs were handed out since (probed), less those
//! gone; /proc is listed again only when too many PIDs were handed out to
//! probe.

use super::tests::{asked, busy_host, ns, refresh, tracker, NET};
use crate::discovery::fake::{links_with, Fake, Proc};
use crate::model::{Inode, Pid};

fn listings(f: &Fake) -> usize {
    f.world().listings
}

#[test]
fn a_process_made_since_is_found_without_listing_proc() {
    let f = busy_host();
    let mut t = tracker(&f);
    refresh(&mut t);
    let listed = listings(&f);
    f.world().spawn(Pid(2003)).links = links_with(&[(NET, Inode(5001))]);
    let s = refresh(&mut t);
    assert_eq!(listings(&f), listed, "probed, not listed");
    assert_eq!(ns(&s, Inode(5001)).processes, vec![Pid(2002), Pid(2003)]);
}

#[test]
fn a_process_gone_is_asked_about_once() {
    let f = busy_host();
    let mut t = tracker(&f);
    refresh(&mut t);
    asked(&f);
    f.world().exit(Pid(2002));
    refresh(&mut t);
    assert_eq!(asked(&f).0, vec![Pid(2002)], "its stamp failed: read again, and gone");
    refresh(&mut t);
    assert!(asked(&f).0.is_empty(), "no longer listed");
}

#[test]
fn many_pids_handed_out_make_the_next_refresh_list_proc_and_the_one_after_probe_again() {
    let f = busy_host();
    let mut t = tracker(&f);
    refresh(&mut t);
    let listed = listings(&f);
    {
        let mut w = f.world();
        w.last_pid = Pid(w.last_pid.get() + 100_000);
        w.spawn(Pid(2003)).links = links_with(&[(NET, Inode(5001))]);
    }
    let s = refresh(&mut t);
    assert_eq!(listings(&f), listed + 1);
    assert_eq!(ns(&s, Inode(5001)).processes, vec![Pid(2002), Pid(2003)]);
    f.world().spawn(Pid(2004)).links = links_with(&[(NET, Inode(5001))]);
    let s = refresh(&mut t);
    assert_eq!(listings(&f), listed + 1);
    assert_eq!(ns(&s, Inode(5001)).processes, vec![Pid(2002), Pid(2003), Pid(2004)]);
}

#[test]
fn a_process_not_yet_there_when_its_pid_was_handed_out_is_found_by_the_next_probe() {
    // Mid-fork at a refresh: its PID handed out, the process not in /proc.
    let f = busy_host();
    let mut t = tracker(&f);
    refresh(&mut t);
    let born = {
        let mut w = f.world();
        w.last_pid = Pid(w.last_pid.get() + 1);
        w.last_pid
    };
    refresh(&mut t);
    let forked = Proc { links: links_with(&[(NET, Inode(5001))]), born, ..Proc::default() };
    f.world().procs.insert(Pid(2003), forked);
    let s = refresh(&mut t);
    assert_eq!(ns(&s, Inode(5001)).processes, vec![Pid(2002), Pid(2003)]);
}
