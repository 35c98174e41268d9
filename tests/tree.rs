//! The mounted tree, used the way people use it (ls, cat, find, cp, tree,
//! nsenter) and checked against the kernel (stat -L, /proc, ip).

mod common;

use common::*;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Every entry below `root` (not following symlinks) with its inode number.
fn walk(root: &Path) -> Vec<(PathBuf, u64)> {
    let mut out = Vec::new();
    let mut todo = vec![root.to_path_buf()];
    while let Some(dir) = todo.pop() {
        let Ok(rd) = std::fs::read_dir(&dir) else { continue };
        for e in rd.flatten() {
            let Ok(m) = e.path().symlink_metadata() else { continue };
            out.push((e.path(), m.ino()));
            if m.is_dir() {
                todo.push(e.path());
            }
        }
    }
    out.sort();
    out
}

fn errno_of(r: std::io::Result<impl Sized>) -> Option<i32> {
    r.err().and_then(|e| e.raw_os_error())
}

#[test]
fn namespace_files_match_the_kernel() {
    let m = Nsfuse::start(&["refresh_ms=100"]);
    let mut p = Proc::cmd(&[
        "unshare",
        "--net",
        "--uts",
        "--ipc",
        "sh",
        "-c",
        "hostname nsfuse-test-host && ip link add d0 type ifb && exec sleep 1000",
    ]);
    let pid = p.pid();
    let net = wait_unshared(pid, "net");
    assert!(wait_for(5.0, || std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .is_ok_and(|c| c.trim() == "sleep")));
    for t in ["net", "uts", "ipc"] {
        let inode = ino(format!("/proc/{pid}/ns/{t}"));
        let dir = format!("{t}/{inode}");
        assert_eq!(m.read(&format!("{dir}/type")), format!("{t}\n"));
        assert_eq!(m.read(&format!("{dir}/inode")), format!("{inode}\n"));
        assert_eq!(m.read(&format!("{dir}/processes")), format!("{pid}\tsleep\n"));
        assert!(m.read(&format!("{dir}/holders")).contains(&format!("task {pid} {pid}\n")));
        let (_, id) = ns_ident(format!("/proc/{pid}/ns/{t}"));
        assert_eq!(m.read(&format!("{dir}/id")), format!("{id}\n"));
        let owner = std::fs::read_link(m.path(&format!("{dir}/owner"))).unwrap();
        assert_eq!(owner, PathBuf::from(format!("../../user/{}", ino("/proc/self/ns/user"))));
        // The ns link is a real nsfs file of that namespace.
        assert_eq!(ino(m.path(&format!("{dir}/ns"))), inode);
        let info: serde_json::Value = serde_json::from_str(&m.read(&format!("{dir}/info.json"))).unwrap();
        assert_eq!(info["inode"], inode);
        assert_eq!(info["type"], t);
    }
    let uts = ino(format!("/proc/{pid}/ns/uts"));
    assert_eq!(m.read(&format!("uts/{uts}/hostname")), "nsfuse-test-host\n");
    assert_eq!(m.read(&format!("net/{net}/interfaces")), "lo\nd0\n");
    assert_eq!(m.read(&format!("net/{net}/netnsid")), "unassigned\n");
    // nsenter through the tree runs inside that namespace.
    let through_tree = run(&[
        "nsenter",
        &format!("--net={}", m.path(&format!("net/{net}/ns")).display()),
        "ip",
        "-o",
        "link",
    ]);
    let through_pid = run(&["nsenter", "-t", &pid.to_string(), "-n", "ip", "-o", "link"]);
    assert_eq!(through_tree, through_pid);
    assert!(through_tree.contains("d0"));
    // proc/PID/net resolves to the same directory.
    let a = std::fs::canonicalize(m.path(&format!("proc/{pid}/net"))).unwrap();
    assert_eq!(a, std::fs::canonicalize(m.path(&format!("net/{net}"))).unwrap());
    p.kill();
}

#[test]
fn user_namespace_maps_and_ownership_tree() {
    let m = Nsfuse::start(&["refresh_ms=100"]);
    let mut p = Proc::cmd(&["unshare", "--user", "--map-root-user", "--net", "--uts", "sleep", "1000"]);
    let pid = p.pid();
    let net = wait_unshared(pid, "net");
    assert!(wait_for(5.0, || std::fs::read_to_string(format!("/proc/{pid}/uid_map"))
        .is_ok_and(|s| !s.trim().is_empty())));
    let user = ino(format!("/proc/{pid}/ns/user"));
    let uts = ino(format!("/proc/{pid}/ns/uts"));
    let dir = format!("user/{user}");
    assert_eq!(
        m.read(&format!("{dir}/uid_map")),
        std::fs::read_to_string(format!("/proc/{pid}/uid_map")).unwrap()
    );
    assert_eq!(
        m.read(&format!("{dir}/gid_map")),
        std::fs::read_to_string(format!("/proc/{pid}/gid_map")).unwrap()
    );
    assert_eq!(m.read(&format!("{dir}/owner_uid")), "0\n");
    assert_eq!(m.read(&format!("{dir}/level")), "1\n");
    let root = ino("/proc/self/ns/user");
    assert_eq!(
        std::fs::read_link(m.path(&format!("{dir}/parent"))).unwrap(),
        PathBuf::from(format!("../{root}"))
    );
    assert_eq!(
        std::fs::read_link(m.path(&format!("{dir}/owns/net:{net}"))).unwrap(),
        PathBuf::from(format!("../../../net/{net}"))
    );
    assert_eq!(
        std::fs::read_link(m.path(&format!("user/{root}/children/{user}"))).unwrap(),
        PathBuf::from(format!("../../{user}"))
    );
    // tree/: the user namespace nests under the initial one, with links to what it owns.
    let node = m.path(&format!("tree/user:{root}/user:{user}"));
    assert!(node.is_dir());
    for (t, i) in [("net", net), ("uts", uts)] {
        let link = node.join(format!("{t}:{i}"));
        assert_eq!(std::fs::read_link(&link).unwrap(), PathBuf::from(format!("../../../{t}/{i}")));
        assert_eq!(
            std::fs::canonicalize(&link).unwrap(),
            std::fs::canonicalize(m.path(&format!("{t}/{i}"))).unwrap()
        );
    }
    let out = run(&["tree", m.path("tree").to_str().unwrap()]);
    assert!(out.contains(&format!("user:{user}")) && out.contains(&format!("net:{net}")));
    p.kill();
}

#[test]
fn whole_tree_walks_cleanly_and_sizes_match_reads() {
    let m = Nsfuse::start(&[]);
    let mnt = m.mnt.to_str().unwrap();
    // Other tests end namespaces while we walk (a directory can vanish
    // mid-walk, as under /proc): every error a walk reports must name a
    // path that is gone now; any other error fails.
    for cmd in [
        vec!["ls", "-lR", mnt],
        vec!["tree", "-f", mnt],
        vec!["find", mnt, "-type", "f", "-exec", "cat", "{}", "+"],
    ] {
        let out = Command::new(cmd[0]).args(&cmd[1..]).output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        let errors: Vec<&str> =
            stderr.lines().chain(stdout.lines().filter(|l| l.contains("[error"))).collect();
        for line in &errors {
            let path = line
                .split(['\'', '‘', '’'])
                .nth(1)
                .or_else(|| {
                    line.split(" [error")
                        .next()
                        .map(|p| p.trim_start_matches(['│', '├', '└', '─', ' ', '\u{a0}']))
                })
                .unwrap_or("");
            let gone = !path.is_empty() && std::fs::symlink_metadata(path).is_err();
            assert!(gone, "{cmd:?} reported an error for something that exists: {line}");
        }
        assert!(errors.len() < 20, "{cmd:?}: too many vanished paths: {errors:?}");
        if errors.is_empty() {
            assert!(out.status.success(), "{cmd:?} failed with no error line");
        }
    }
    // st_size equals the bytes a read returns, for every file. Files of
    // namespaces other tests make and end meanwhile may vanish: skip those.
    let mut files = 0;
    for (path, _) in walk(&m.mnt) {
        let Ok(md) = path.symlink_metadata() else { continue };
        if !md.is_file() || path.file_name().is_some_and(|n| n == "ctl") {
            continue;
        }
        let Ok(bytes) = std::fs::read(&path) else { continue };
        let Ok(again) = path.symlink_metadata() else { continue };
        if again.len() == md.len() {
            assert_eq!(bytes.len() as u64, md.len(), "{}", path.display());
        }
        files += 1;
    }
    assert!(files > 50, "only {files} files");
}

#[test]
fn copy_of_a_namespace_directory_is_byte_identical() {
    let m = Nsfuse::start(&["refresh_ms=60000"]);
    let mut p = Proc::cmd(&["unshare", "--net", "sleep", "1000"]);
    let net = wait_unshared(p.pid(), "net");
    let dest = TempDir::new("cp");
    let src = m.path(&format!("net/{net}"));
    run(&["cp", "-r", src.to_str().unwrap(), dest.join("copy").to_str().unwrap()]);
    let mut compared = 0;
    for e in std::fs::read_dir(&src).unwrap().flatten() {
        let name = e.file_name();
        if !e.path().symlink_metadata().unwrap().is_file() || name == "ctl" {
            continue;
        }
        let copied = std::fs::read(dest.join("copy").join(&name)).unwrap();
        assert_eq!(copied, std::fs::read(e.path()).unwrap(), "{name:?}");
        compared += 1;
    }
    assert!(compared >= 6);
    p.kill();
}

#[test]
fn inode_numbers_and_names_are_stable_across_refreshes() {
    let m = Nsfuse::start(&["refresh_ms=50"]);
    let mut p = Proc::cmd(&["unshare", "--user", "--map-root-user", "--net", "--uts", "sleep", "1000"]);
    let pid = p.pid();
    wait_unshared(pid, "uts");
    let user = ino(format!("/proc/{pid}/ns/user"));
    let root = ino("/proc/self/ns/user");
    let watched = [
        m.path(&format!("user/{user}")),
        m.path(&format!("tree/user:{root}/user:{user}")),
        m.path(&format!("proc/{pid}")),
        m.path("pinned"),
    ];
    let snapshot = || watched.iter().flat_map(|w| walk(w)).collect::<Vec<_>>();
    let top = || ["net", "user", "README", "ctl", "proc", "tree"].map(|n| ino(m.path(n)));
    let first = snapshot();
    let first_top = top();
    assert!(first.len() > 10);
    for _ in 0..5 {
        std::thread::sleep(std::time::Duration::from_millis(120));
        let _ = std::fs::read_dir(&m.mnt).unwrap().count(); // forces a refresh
        assert_eq!(snapshot(), first);
        assert_eq!(top(), first_top);
    }
    p.kill();
}

#[test]
fn created_namespace_is_readable_at_once_and_gone_after_death() {
    // A long refresh interval: only the forced rescan on a lookup miss can find it.
    let m = Nsfuse::start(&["refresh_ms=60000"]);
    let _ = std::fs::read_dir(m.path("net")).unwrap().count();
    let mut p = Proc::cmd(&["unshare", "--net", "sleep", "1000"]);
    let net = wait_unshared(p.pid(), "net");
    assert_eq!(m.read(&format!("net/{net}/type")), "net\n");
    drop(m);

    let m = Nsfuse::start_alone(&["refresh_ms=200"]);
    let mut q = Proc::cmd(&["unshare", "--uts", "sleep", "1000"]);
    let uts = wait_unshared(q.pid(), "uts");
    let dir = m.path(&format!("uts/{uts}"));
    assert!(dir.is_dir());
    q.kill();
    std::thread::sleep(std::time::Duration::from_millis(250));
    assert_eq!(errno_of(std::fs::metadata(&dir)), Some(libc::ENOENT));
    assert!(!std::fs::read_dir(m.path("uts"))
        .unwrap()
        .flatten()
        .any(|e| e.file_name() == uts.to_string().as_str()));
    p.kill();
}

#[test]
fn dead_namespace_under_an_open_directory_gives_enoent() {
    let m = Nsfuse::start_alone(&["refresh_ms=100"]);
    let mut p = Proc::cmd(&["unshare", "--ipc", "sleep", "1000"]);
    let ipc = wait_unshared(p.pid(), "ipc");
    let dir = m.path(&format!("ipc/{ipc}"));
    // A shell sitting in the directory, like `cd`, which lists it once
    // (the kernel keeps that listing).
    let handle = std::fs::File::open(&dir).unwrap();
    // Listed through the open directory itself (`.`: no lookup of it).
    let list = || {
        use std::os::fd::AsFd;
        let here = nsfuse::sys::openat(Some(handle.as_fd()), c".", libc::O_RDONLY | libc::O_DIRECTORY)?;
        let mut names = Vec::new();
        nsfuse::sys::for_each_dirent(here.as_fd(), &mut Vec::new(), |n, _| names.push(n.to_vec()))?;
        Ok::<_, std::io::Error>(names)
    };
    assert!(list().is_ok_and(|l| !l.is_empty()));
    p.kill();
    std::thread::sleep(std::time::Duration::from_millis(200));
    assert_eq!(errno_of(std::fs::read(dir.join("type"))), Some(libc::ENOENT));
    assert!(
        wait_for(2.0, || errno_of(list()) == Some(libc::ENOENT)),
        "the dead directory still lists: {:?}",
        list()
    );
    drop(handle);
}

#[test]
fn writes_and_changes_are_refused() {
    let m = Nsfuse::start(&[]);
    let net = ino("/proc/self/ns/net");
    let e = errno_of(std::fs::write(m.path(&format!("net/{net}/type")), "x"));
    assert!(matches!(e, Some(libc::EACCES) | Some(libc::EROFS)), "{e:?}");
    let e = errno_of(std::fs::create_dir(m.path("net/x")));
    assert!(matches!(e, Some(libc::EPERM) | Some(libc::EROFS)), "{e:?}");
    let e = errno_of(std::fs::File::create(m.path("net/newfile")));
    assert!(matches!(e, Some(libc::EPERM) | Some(libc::EROFS) | Some(libc::EACCES)), "{e:?}");
    let e = errno_of(std::fs::remove_file(m.path("README")));
    assert!(matches!(e, Some(libc::EPERM) | Some(libc::EROFS)), "{e:?}");
    let e = errno_of(std::fs::rename(m.path("README"), m.path("README2")));
    assert!(matches!(e, Some(libc::EPERM) | Some(libc::EROFS)), "{e:?}");
    let md = m.path(&format!("net/{net}/ctl")).metadata().unwrap();
    assert_eq!((md.mode() & 0o777, md.uid()), (0o600, 0));
    assert_eq!(m.path("net").metadata().unwrap().mode() & 0o777, 0o555);
}

#[test]
fn read_only_mount_has_no_control_files() {
    let m = Nsfuse::start(&["ro"]);
    let net = ino("/proc/self/ns/net");
    assert!(!m.path("ctl").exists());
    assert!(!m.path(&format!("net/{net}/ctl")).exists());
    assert_eq!(errno_of(std::fs::write(m.path(&format!("net/{net}/type")), "x")), Some(libc::EROFS));
}

#[test]
fn background_mount_answers_at_once_and_umount_stops_the_daemon() {
    let m = Nsfuse::start(&[]);
    // The command returned: the tree must already answer.
    assert!(m.read("README").contains("nsfuse"));
    let pids = m.daemon_pids();
    assert_eq!(pids.len(), 1, "one daemon: {pids:?}");
    run(&["umount", m.mnt.to_str().unwrap()]);
    assert!(wait_for(5.0, || daemons_of(&m.mnt).is_empty()), "daemon still running after umount");
    assert!(!is_mounted(&m.mnt));
}

#[test]
fn a_relative_mount_point_is_taken_from_the_callers_directory() {
    // The daemon works from `/`: it once mounted `nsfuse mnt` on /mnt.
    let dir = TempDir::new("rel");
    let mnt = dir.join("mnt");
    std::fs::create_dir(&mnt).unwrap();
    let _guard = MountGuard { path: mnt.clone(), remove: false };
    let opts = format!("pin_dir={},netns_dir={}", dir.join("pins").display(), dir.join("netns").display());
    let out = Command::new(nsfuse_bin()).current_dir(&dir.0).args(["mnt", "-o", &opts]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(is_mounted(&mnt), "not mounted at {}", mnt.display());
    assert!(std::fs::read_to_string(mnt.join("README")).unwrap().contains("nsfuse"));
    // Its command line names `mnt` as given: found by its (unique) options.
    let daemon = || daemons_of(Path::new(&opts));
    assert_eq!(daemon().len(), 1, "one daemon: {:?}", daemon());
    run(&["umount", mnt.to_str().unwrap()]);
    assert!(wait_for(5.0, || daemon().is_empty()), "daemon still running after umount");
}

/// Start nsfuse in the foreground on `mnt`; wait until it answers.
fn foreground(dir: &TempDir, mnt: &Path) -> Proc {
    let p = Proc(
        Command::new(nsfuse_bin())
            .arg(mnt)
            .arg("-f")
            .arg("-o")
            .arg(format!("pin_dir={},netns_dir={}", dir.join("pins").display(), dir.join("netns").display()))
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    assert!(wait_for(10.0, || mnt.join("README").exists()), "foreground mount never answered");
    p
}

#[test]
fn sigterm_unmounts_cleanly() {
    let dir = TempDir::new("sig");
    let mnt = dir.join("mnt");
    std::fs::create_dir(&mnt).unwrap();
    let mut p = foreground(&dir, &mnt);
    nsfuse::sys::kill(nsfuse::model::Pid(p.pid()), libc::SIGTERM).unwrap();
    let status = p.0.wait().unwrap();
    assert!(status.success(), "{status:?}");
    assert!(!is_mounted(&mnt));
}

#[test]
fn requests_do_not_wake_the_thread_that_waits_for_the_unmount() {
    // It used to poll(2) the FUSE device itself, which wakes at every
    // request queued: a second thread woken per request.
    let m = Nsfuse::start(&[]);
    let pid = m.daemon_pids()[0];
    // (Started just after the mount answers.)
    let find_watcher = || {
        std::fs::read_dir(format!("/proc/{pid}/task"))
            .unwrap()
            .flatten()
            .map(|t| t.path())
            .find(|t| std::fs::read_to_string(t.join("comm")).is_ok_and(|c| c.trim() == "watch"))
    };
    assert!(wait_for(5.0, || find_watcher().is_some()), "no watch thread in the daemon");
    let watcher = find_watcher().expect("the daemon's watch thread");
    let switches = || {
        let status = std::fs::read_to_string(watcher.join("status")).unwrap();
        let line = status.lines().find(|l| l.starts_with("voluntary_ctxt_switches:")).unwrap();
        line.split_whitespace().nth(1).unwrap().parse::<u64>().unwrap()
    };
    let before = switches();
    let requests = 5000;
    for _ in 0..requests {
        // A file's attributes are never cached: each stat is a request.
        std::fs::metadata(m.path("README")).unwrap();
    }
    // Woken by mount-table changes (other tests') and every 400 ms: far
    // fewer than one in ten requests (it was about one and a half each).
    let woken = switches() - before;
    assert!(woken < requests / 10, "{requests} requests woke it {woken} times");
}

#[test]
fn stale_mount_after_kill_9_is_cleared_on_restart() {
    let dir = TempDir::new("stale");
    let mnt = dir.join("mnt");
    std::fs::create_dir(&mnt).unwrap();
    let mut p = foreground(&dir, &mnt);
    nsfuse::sys::kill(nsfuse::model::Pid(p.pid()), libc::SIGKILL).unwrap();
    let _ = p.0.wait();
    assert_eq!(errno_of(std::fs::metadata(&mnt)), Some(libc::ENOTCONN));
    let mut q = foreground(&dir, &mnt);
    assert!(mnt.join("net").is_dir());
    nsfuse::sys::kill(nsfuse::model::Pid(q.pid()), libc::SIGTERM).unwrap();
    let _ = q.0.wait();
}

#[test]
fn bad_options_and_missing_root_are_refused() {
    let dir = TempDir::new("opts");
    let mnt = dir.join("mnt");
    std::fs::create_dir(&mnt).unwrap();
    let out = Command::new(nsfuse_bin()).arg(&mnt).args(["-o", "bogus_option"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("bogus_option"));
    assert!(!is_mounted(&mnt));
    let out = Command::new("setpriv")
        .args(["--reuid", "65534", "--regid", "65534", "--clear-groups"])
        .arg(nsfuse_bin())
        .arg(&mnt)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("root"), "{err}");
    assert!(!is_mounted(&mnt));
}

/// Run `sh -c script` as nobody; (exit ok, stdout, stderr).
fn as_nobody(script: &str) -> (bool, String, String) {
    let out = Command::new("setpriv")
        .args(["--reuid", "65534", "--regid", "65534", "--clear-groups", "sh", "-c", script])
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn who_may_see_what() {
    // Without allow_other, another user cannot even list the mount.
    let private = Nsfuse::start(&[]);
    let (ok, _, _) = as_nobody(&format!("ls '{}'", private.mnt.display()));
    assert!(!ok, "non-root listed a mount without allow_other");
    drop(private);

    let m = Nsfuse::start(&["allow_other", "refresh_ms=100"]);
    let mut mine = Proc::nobody_in_new("--uts");
    let mut root_only = Proc::cmd(&["unshare", "--uts", "sleep", "1000"]);
    let uts_mine = wait_unshared(mine.pid(), "uts");
    let uts_root = wait_unshared(root_only.pid(), "uts");
    assert!(wait_for(5.0, || std::fs::metadata(format!("/proc/{}", mine.pid()))
        .is_ok_and(|md| md.uid() == 65534)));
    // A listing may be up to refresh_ms old: let one interval pass.
    std::thread::sleep(std::time::Duration::from_millis(150));
    let (ok, listing, err) = as_nobody(&format!("ls '{}'", m.path("uts").display()));
    assert!(ok, "{err}");
    assert!(
        listing.lines().any(|l| l == uts_mine.to_string()),
        "nobody's own namespace is visible: {listing}"
    );
    assert!(!listing.lines().any(|l| l == uts_root.to_string()), "root's namespace is hidden: {listing}");
    // Ancestors of what it sees: the initial user namespace.
    let (ok, _, _) = as_nobody(&format!("cat '{}/user/{}/type'", m.mnt.display(), ino("/proc/self/ns/user")));
    assert!(ok);
    let (ok, _, _) = as_nobody(&format!("cat '{}/uts/{uts_root}/type'", m.mnt.display()));
    assert!(!ok, "a hidden namespace cannot be read by path either");
    let (_, procs, _) = as_nobody(&format!("ls '{}'", m.path("proc").display()));
    assert!(procs.lines().any(|l| l == mine.pid().to_string()), "its own process: {procs}");
    assert!(
        !procs.lines().any(|l| l == root_only.pid().to_string() || l == "1"),
        "only its own processes: {procs}"
    );
    mine.kill();
    root_only.kill();
}

#[test]
fn listings_cached_by_the_kernel_follow_every_change() {
    // Directories may be cached by the kernel, but only while nsfuse would
    // list the same: list net/ and a process's proc/PID/ again and again
    // while namespaces come, change and go.
    let m = Nsfuse::start_alone(&["refresh_ms=100"]);
    let names = |rel: &str| m.names(rel);
    let interval = std::time::Duration::from_millis(250);
    for _ in 0..3 {
        let _ = names("net");
    }
    let mut p = Proc::cmd(&["unshare", "--net", "sleep", "1000"]);
    let net = wait_unshared(p.pid(), "net").to_string();
    std::thread::sleep(interval);
    assert!(names("net").contains(&net), "new namespace missing from a re-listed net/");
    let links = names(&format!("proc/{}", p.pid()));
    assert!(links.contains(&"net".to_string()) && links.len() >= 8, "{links:?}");
    p.kill();
    std::thread::sleep(interval);
    assert!(!names("net").contains(&net), "dead namespace still in a re-listed net/");
    assert_eq!(errno_of(std::fs::read_dir(m.path(&format!("proc/{}", p.pid())))), Some(libc::ENOENT));
}

#[test]
fn a_namespace_directory_cached_by_the_kernel_follows_its_listing() {
    // The kernel keeps listings of directories that list neither
    // namespaces nor processes, and checks their mtime at most once a
    // refresh interval: a namespace's directory gains `age` once nothing
    // but a pin holds it, and a listing shows it within that.
    let m = Nsfuse::start(&["refresh_ms=100"]);
    let mut p = Proc::cmd(&["unshare", "--net", "sleep", "1000"]);
    let net = wait_unshared(p.pid(), "net");
    let dir = format!("net/{net}");
    let names = || m.names(&dir);
    write_ctl(&m.path(&format!("{dir}/ctl")), "pin\n").expect("pin");
    for _ in 0..3 {
        assert!(!names().contains(&"age".to_string()), "age before it is orphaned");
    }
    p.kill();
    let shown = wait_for(3.0, || names().contains(&"age".to_string()));
    write_ctl(&m.path(&format!("{dir}/ctl")), "release\n").expect("release");
    assert!(shown, "a cached listing of {dir} never showed age");
}

#[test]
fn a_user_namespaces_owns_listing_cached_by_the_kernel_follows_new_namespaces() {
    // owns/ lists namespaces, but is not a directory of namespaces of one
    // type: the kernel keeps it until a refresh sees the owner change.
    let m = Nsfuse::start(&["refresh_ms=100"]);
    let owner = Proc::cmd(&["unshare", "--user", "--map-root-user", "sleep", "1000"]);
    let user = wait_unshared(owner.pid(), "user");
    let owns = format!("user/{user}/owns");
    let names = || m.names(&owns);
    for _ in 0..3 {
        assert!(!names().iter().any(|n| n.starts_with("uts:")), "{:?}", names());
    }
    let pid = owner.pid().to_string();
    let owned = Proc::cmd(&[
        "nsenter",
        "-t",
        &pid,
        "-U",
        "--preserve-credentials",
        "unshare",
        "--uts",
        "sleep",
        "1000",
    ]);
    let uts = wait_unshared(owned.pid(), "uts");
    let want = format!("uts:{uts}");
    assert!(wait_for(3.0, || names().contains(&want)), "{owns} never listed {want}: {:?}", names());
}

#[test]
fn a_first_listing_gives_each_entry_the_inode_number_and_type_stat_gives() {
    // Listings carry their subdirectories' attributes (READDIRPLUS) and
    // files with no inode made: each entry's d_ino and type must still be
    // the file's, and a directory stat'ed from what the listing left must
    // be as a lookup gives it.
    let sleeper = Proc::cmd(&["unshare", "--net", "sleep", "1000"]);
    let ns = wait_unshared(sleeper.pid(), "net");
    let m = Nsfuse::start(&[]);
    let pid = std::process::id().to_string();
    let mut dirs = 0;
    for rel in [String::new(), "net".into(), format!("net/{ns}"), "proc".into(), format!("proc/{pid}")] {
        let listed: Vec<_> = std::fs::read_dir(m.path(&rel)).unwrap().flatten().collect();
        assert!(!listed.is_empty(), "{rel} lists nothing");
        for e in listed {
            use std::os::unix::fs::{DirEntryExt, FileTypeExt};
            let Ok(md) = e.path().symlink_metadata() else { continue }; // gone meanwhile
            let ty = e.file_type().unwrap();
            assert_eq!(e.ino(), md.ino(), "{}: d_ino", e.path().display());
            assert_ne!(e.ino(), 0, "{}", e.path().display());
            assert_eq!(ty.is_dir(), md.is_dir(), "{}", e.path().display());
            assert_eq!(ty.is_symlink(), md.file_type().is_symlink(), "{}", e.path().display());
            assert!(!ty.is_fifo(), "{}", e.path().display());
            if md.is_dir() {
                dirs += 1;
                assert_eq!(md.mode() & 0o7777, 0o555, "{}", e.path().display());
                assert_eq!((md.uid(), md.nlink()), (0, 2), "{}", e.path().display());
            }
        }
    }
    assert!(dirs > 10, "{dirs} directories");
}
