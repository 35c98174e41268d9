//! The /proc walk on this process and on one that is gone, and the pieces it is built of.

use super::*;

#[test]
fn a_process_that_is_gone_is_vanished_and_one_that_is_there_is_read() {
    let proc = match sys::open_path(std::path::Path::new("/proc"), libc::O_RDONLY | libc::O_DIRECTORY) {
        Ok(p) => Arc::new(p),
        Err(e) => panic!("cannot open /proc: {e}"),
    };
    let mut w = Walker::new(proc);
    // Past pid_max: no process can have it.
    let gone = Pid(i32::MAX - 1);
    assert!(
        matches!(w.process(gone, true, None, &CgroupsOf::Every, None), Err(Error::Vanished { pid }) if pid == gone)
    );
    let me = w.process(sys::getpid(), true, None, &CgroupsOf::Every, None);
    assert!(me.is_ok_and(|p| p.links.get(NsType::Net.index()).is_some()));
}

#[test]
fn what_a_failed_read_means() {
    let p = Pid(7);
    for errno in [libc::ENOENT, libc::ESRCH] {
        assert!(matches!(Error::of(p, io::Error::from_raw_os_error(errno)), Error::Vanished { .. }));
    }
    let denied = Error::of(p, io::Error::from_raw_os_error(libc::EACCES));
    assert!(matches!(denied, Error::Unreadable { .. }));
    assert_eq!(denied.to_string(), "cannot read /proc/7/ns: Permission denied (os error 13)");
}

#[test]
fn paths_are_built_in_place() {
    let mut b = [0u8; 64];
    assert_eq!(cpath(&mut b, &[N(1234), S("/task/"), N(0), S("/ns")]), Some(c"1234/task/0/ns"));
    assert_eq!(cpath(&mut b, &[N(i32::MAX)]), Some(c"2147483647"));
    assert_eq!(cpath(&mut b, &[N(-7)]), Some(c"-7"));
    assert_eq!(cpath(&mut b, &[S(&"x".repeat(63))]).map(|c| c.to_bytes().len()), Some(63));
    assert_eq!(cpath(&mut b, &[S(&"x".repeat(64))]), None);
}

#[test]
fn a_command_name_is_read_whole_and_a_gone_process_has_none() {
    let me = std::fs::read_to_string("/proc/self/comm").expect("comm");
    assert_eq!(crate::discovery::comm(sys::getpid()).as_deref(), Some(me.trim_end_matches('\n')));
    let mut child = std::process::Command::new("sleep").arg("30").spawn().expect("sleep");
    let pid = Pid(child.id() as i32);
    // The parent may see the child before execve has renamed it.
    let named = (0..200).any(|_| {
        crate::discovery::comm(pid).as_deref() == Some("sleep") || {
            std::thread::sleep(std::time::Duration::from_millis(10));
            false
        }
    });
    assert!(named, "{:?}", crate::discovery::comm(pid));
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(crate::discovery::comm(pid), None);
}

#[test]
fn a_process_read_through_the_task_table_holds_what_it_holds_through_proc() {
    if sys::geteuid() != 0 {
        return;
    }
    // A thread of ours in a network namespace of its own: a thread that
    // differs from its process.
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    let thread = std::thread::spawn(move || {
        let _ = ready_tx.send(sys::unshare(libc::CLONE_NEWNET).map(|_| sys::gettid()));
        let _ = done_rx.recv();
    });
    let tid = ready_rx.recv().expect("thread started").expect("unshare in a thread");
    let proc =
        Arc::new(sys::open_path(std::path::Path::new("/proc"), libc::O_RDONLY | libc::O_DIRECTORY).unwrap());
    let table = crate::discovery::task_table::now(crate::discovery::task_table::Records::WithLinks)
        .expect("this host loads BPF iterators");
    let mut w = Walker::new(proc);
    let me = sys::getpid();
    // Room for every stamp to keep its file open: one that does not was
    // made from a table.
    let budget = StampBudget::new(1000);
    let by_table = w.process(me, false, Some(&budget), &CgroupsOf::Every, Some(&table)).unwrap();
    let by_proc = w.process(me, false, None, &CgroupsOf::Every, None).unwrap();
    // Links from /proc (a counters-only table has none), stamps from the table.
    let counters =
        crate::discovery::task_table::now(crate::discovery::task_table::Records::Counters).unwrap();
    let stamped = w.process(me, false, Some(&budget), &CgroupsOf::Every, Some(&counters)).unwrap();
    let _ = done_tx.send(());
    let _ = thread.join();
    assert_eq!(by_table.links, by_proc.links);
    assert!(by_table.holds_the_same_as(&by_proc), "{by_table:?}\n{by_proc:?}");
    let odd = by_table.threads.iter().find(|(t, _)| *t == tid).expect("the thread in its own netns");
    assert_ne!(odd.1.get(NsType::Net.index()), by_table.links.get(NsType::Net.index()));
    // Stamped from the table: one per task, none holding a file.
    assert_eq!(by_table.stamps.len(), table.process(me).map_or(0, |t| t.len()));
    assert!(by_table.stamps.iter().all(|s| !s.holds_file()));
    assert!(stamped.holds_the_same_as(&by_proc));
    // Stamped from the counters wherever they list the task (a thread
    // another test started since is stamped from its file).
    assert!(stamped.stamps.iter().any(|s| !s.holds_file()));
    for s in &stamped.stamps {
        let ((pid, tid), _) = s.counters();
        assert_eq!(s.holds_file(), counters.get(pid, tid.unwrap_or(pid)).is_none(), "{s:?}");
    }
    let by_files = w.process(me, false, Some(&budget), &CgroupsOf::Every, None).unwrap();
    assert!(by_files.stamps.iter().all(|s| s.holds_file()), "the budget lets files stay open");
}
