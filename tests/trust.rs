//! Trust (SPEC section 7): what other users control cannot stall, crash or
//! fool nsfuse. Each case is built for real: namespace files opened by
//! path, a FIFO put where a pin was (as nobody, in its own user and mount
//! namespaces), a process stuck in execve on a stopped FUSE server, names
//! with newlines, contents read as nobody under allow_other, a second mount
//! on a live one, and listings right after unshare.
//!
//! The tests here run one at a time: a stuck process slows every scan on
//! the machine while it lasts, and their timings are asserted.

mod common;

use common::*;
use nsfuse::discovery::{scan, ScanOptions};
use nsfuse::model::Inode;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

/// `nsfuse scan` run with a time limit: (finished in time, stdout, how long).
fn scan_command(limit: Duration) -> (bool, String, Duration) {
    let started = Instant::now();
    let mut child = Command::new(nsfuse_bin())
        .arg("scan")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn nsfuse scan");
    let pid = child.id() as i32;
    // Drained meanwhile: on a busy host the table outgrows a pipe's buffer.
    let mut stdout = child.stdout.take().expect("piped stdout");
    let reader = std::thread::spawn(move || {
        let mut text = Vec::new();
        let _ = std::io::Read::read_to_end(&mut stdout, &mut text);
        text
    });
    let done = wait_for(limit.as_secs_f64(), || matches!(child.try_wait(), Ok(Some(_))));
    if !done {
        let _ = nsfuse::sys::kill(nsfuse::model::Pid(pid), libc::SIGKILL);
    }
    let _ = child.wait();
    let took = started.elapsed();
    let out = reader.join().unwrap_or_default();
    (done, String::from_utf8_lossy(&out).into_owned(), took)
}

/// Whether `nsfuse scan`'s table has a row for this namespace.
fn table_lists(table: &str, ty: &str, inode: u64) -> bool {
    table.lines().any(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        f.len() > 1 && f[0] == inode.to_string() && f[1] == ty
    })
}

/// A tree's directory, listed with a time limit (a hung daemon fails the
/// test instead of hanging it).
fn list_within(dir: &Path, limit: Duration) -> Option<Vec<String>> {
    let dir = dir.to_owned();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let names = std::fs::read_dir(&dir)
            .map(|d| d.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect::<Vec<_>>());
        let _ = tx.send(names);
    });
    rx.recv_timeout(limit).ok()?.ok()
}

/// With a trap set: `nsfuse scan` ends within 5 s and lists namespace
/// (`ty`, `inode`), and a tree mounts and lists it within 5 s each.
fn nothing_stalls(ty: &str, inode: u64) -> Nsfuse {
    let (done, table, took) = scan_command(Duration::from_secs(10));
    assert!(done, "nsfuse scan hung");
    assert!(took < Duration::from_secs(5), "nsfuse scan took {took:?}");
    assert!(table_lists(&table, ty, inode), "{ty} {inode} is not listed:\n{table}");
    let started = Instant::now();
    let m = Nsfuse::start(&[]);
    assert!(started.elapsed() < Duration::from_secs(5), "mount took {:?}", started.elapsed());
    let listing = list_within(&m.path(ty), Duration::from_secs(5)).expect("ls hung");
    assert!(listing.contains(&inode.to_string()), "{listing:?}");
    m
}

/// `CMD PATH` run as nobody.
fn nobody(cmd: &str, path: &Path) -> std::process::Output {
    Command::new(AS_NOBODY[0]).args(&AS_NOBODY[1..]).arg(cmd).arg(path).output().expect("run as nobody")
}

/// Unmount a tree and wait for its daemon to end; how long that took.
fn unmount_and_time_exit(m: &Nsfuse) -> Duration {
    let pids = m.daemon_pids();
    assert!(!pids.is_empty(), "no daemon serves {}", m.mnt.display());
    let started = Instant::now();
    detach(&m.mnt).expect("umount");
    assert!(wait_for(10.0, || daemons_of(&m.mnt).is_empty()), "the daemon did not end");
    started.elapsed()
}

#[test]
fn namespace_files_opened_by_path_are_found_by_what_they_are() {
    let _one = serial();
    let dir = TempDir::new("bypath");
    // Held by a file opened through a bind mount that is then detached:
    // its /proc/PID/fd link reads as the path, then as `/`.
    let mut member = Proc::cmd(&["unshare", "--uts", "sleep", "1000"]);
    let uts = wait_unshared(member.pid(), "uts");
    let pin = dir.join("pin");
    std::fs::write(&pin, b"").unwrap();
    run(&["mount", "--bind", &format!("/proc/{}/ns/uts", member.pid()), pin.to_str().unwrap()]);
    let _guard = MountGuard { path: pin.clone(), remove: false };
    let holder = Proc::sh(&format!("exec 7< '{}'; exec sleep 1000", pin.display()));
    let fd7 = format!("/proc/{}/fd/7", holder.pid());
    assert!(wait_for(5.0, || std::fs::read_link(&fd7).is_ok_and(|l| l == pin)), "the holder did not open it");
    member.kill();
    let mut sc = Scans::start();
    let line = format!("fd {} 7", holder.pid());
    let found = |s: &nsfuse::model::Snapshot| {
        s.namespaces.get(&Inode(uts)).is_some_and(|n| n.holders.iter().any(|h| h.to_string() == line))
    };
    assert!(sc.both(found), "an fd opened by path is not found as a holder");
    detach(&pin).unwrap();
    assert_eq!(std::fs::read_link(&fd7).unwrap(), PathBuf::from("/"), "detached: the link reads as /");
    assert!(sc.both(found), "an fd whose link reads / is not found as a holder");
    // lsns finds it too (its filedesc source): nsfuse lists all lsns lists.
    let lsns = run(&["lsns", "-n", "-o", "NS", "-t", "uts"]);
    if lsns.lines().any(|l| l.trim() == uts.to_string()) {
        assert!(found(&scan(&ScanOptions::default()).unwrap()));
    }
    // `ip netns add`, open by path, `ip netns delete`: held by the fd only.
    let name = format!("nsfuse-trust-{}", std::process::id());
    run(&["ip", "netns", "add", &name]);
    let netns_pin = format!("/run/netns/{name}");
    let _netns_guard = MountGuard::new(&netns_pin);
    let net = ino(&netns_pin);
    let user = Proc::sh(&format!("exec 5< '{netns_pin}'; exec sleep 1000"));
    assert!(wait_for(5.0, || std::fs::read_link(format!("/proc/{}/fd/5", user.pid())).is_ok()));
    run(&["ip", "netns", "delete", &name]);
    let line = format!("fd {} 5", user.pid());
    let held = sc.both(|s| {
        s.namespaces.get(&Inode(net)).map(|n| n.holders.iter().map(|h| h.to_string()).collect::<Vec<_>>())
    });
    assert!(held.is_some_and(|h| h.contains(&line)), "ip netns delete with an fd left open: not found");
    // The command and the tree say the same.
    let (done, table, _) = scan_command(Duration::from_secs(10));
    assert!(done && table_lists(&table, "net", net), "{table}");
    let m = Nsfuse::start(&[]);
    let holders = m.read(&format!("net/{net}/holders"));
    assert!(holders.lines().any(|l| l == line), "{holders}");
}

/// A user's trap: as nobody, in its own user and mount namespaces, a uts
/// namespace is pinned at `d/x`, then a tmpfs holding a FIFO named `x` is
/// mounted over `d`. Returns (nobody's shell, the covered uts namespace).
fn fifo_trap(dir: &TempDir) -> (Proc, u64) {
    let d = dir.join("d");
    std::fs::create_dir(&d).unwrap();
    std::fs::set_permissions(dir.path(), std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    std::fs::set_permissions(&d, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    let ready = dir.join("ready");
    let script = format!(
        "touch {d}/x && unshare --uts={d}/x true && mount -t tmpfs none {d} && mkfifo {d}/x && touch {r} && exec sleep 1000",
        d = d.display(),
        r = ready.display()
    );
    let args: Vec<&str> = AS_NOBODY.into_iter().chain(["unshare", "-Urm", "sh", "-c", &script]).collect();
    let shell = Proc::cmd(&args);
    assert!(wait_for(10.0, || ready.exists()), "could not build the trap as nobody");
    let mountinfo = std::fs::read_to_string(format!("/proc/{}/mountinfo", shell.pid())).unwrap();
    let uts = mountinfo
        .lines()
        .filter(|l| l.contains(" - nsfs "))
        .find_map(|l| l.split(' ').nth(3)?.strip_prefix("uts:[")?.strip_suffix(']')?.parse().ok())
        .expect("the pin in nobody's mount table");
    (shell, uts)
}

#[test]
fn a_fifo_where_a_pin_was_stalls_nothing() {
    let _one = serial();
    let dir = TempDir::new("fifo");
    let (shell, uts) = fifo_trap(&dir);
    let m = nothing_stalls("uts", uts);
    let pins = m.read(&format!("uts/{uts}/pins"));
    assert!(pins.ends_with(&format!("{}/d/x\n", dir.path().display())), "its pin is shown: {pins}");
    assert!(std::fs::symlink_metadata(m.path(&format!("uts/{uts}/ns"))).is_err(), "no ns link to the FIFO");
    let took = unmount_and_time_exit(&m);
    assert!(took < Duration::from_secs(2), "the daemon took {took:?} to end");
    drop(shell);
}

/// A FUSE filesystem (bindfs) whose server can be stopped, and a process
/// caught in execve closing a file on it: everything that reads that
/// process's /proc entries waits. Drop lets it all go.
struct StuckExecve {
    server: Proc,
    stuck: Proc,
    mnt: PathBuf,
    _dir: TempDir,
}

impl StuckExecve {
    fn start() -> StuckExecve {
        let dir = TempDir::new("stuck");
        let (src, mnt) = (dir.join("src"), dir.join("mnt"));
        std::fs::create_dir(&src).unwrap();
        std::fs::create_dir(&mnt).unwrap();
        std::fs::write(src.join("f"), b"x").unwrap();
        let server = Proc::cmd(&["bindfs", "-f", src.to_str().unwrap(), mnt.to_str().unwrap()]);
        assert!(wait_for(5.0, || mnt.join("f").exists()), "bindfs did not mount");
        let script = format!(
            "import os,time\nos.open('{}', os.O_RDONLY | os.O_CLOEXEC)\nopen('{}', 'w').close()\ntime.sleep(0.5)\nos.execv('/bin/sleep', ['sleep', '1000'])\n",
            mnt.join("f").display(),
            dir.join("opened").display()
        );
        let stuck = Proc::cmd(&["python3", "-c", &script]);
        assert!(wait_for(5.0, || dir.join("opened").exists()));
        nsfuse::sys::kill(nsfuse::model::Pid(server.pid()), libc::SIGSTOP).unwrap();
        let trap = StuckExecve { server, stuck, mnt, _dir: dir };
        // Stuck once a readlink of its ns links no longer answers (the
        // waiting thread is let go when the trap is dropped).
        let link = format!("/proc/{}/ns/net", trap.stuck.pid());
        let stuck = wait_for(5.0, || {
            let link = link.clone();
            let (tx, rx) = std::sync::mpsc::channel();
            std::thread::spawn(move || {
                let _ = tx.send(std::fs::read_link(link));
            });
            rx.recv_timeout(Duration::from_millis(500)).is_err()
        });
        assert!(stuck, "could not get a process stuck in execve");
        trap
    }
}

impl Drop for StuckExecve {
    fn drop(&mut self) {
        let _ = nsfuse::sys::kill(nsfuse::model::Pid(self.server.pid()), libc::SIGCONT);
        self.stuck.kill();
        let _ = detach(&self.mnt);
        self.server.kill();
    }
}

#[test]
fn a_process_stuck_in_execve_on_a_stopped_fuse_server_stalls_nothing() {
    let _one = serial();
    let mut in_netns = Proc::cmd(&["unshare", "--net", "sleep", "1000"]);
    let net = wait_unshared(in_netns.pid(), "net");
    let trap = StuckExecve::start();
    let m = nothing_stalls("net", net);
    // Later refreshes skip the stuck process without waiting for it again.
    let started = Instant::now();
    for _ in 0..3 {
        list_within(&m.path("net"), Duration::from_secs(5)).expect("ls hung");
    }
    assert!(started.elapsed() < Duration::from_secs(2), "three listings took {:?}", started.elapsed());
    let took = unmount_and_time_exit(&m);
    assert!(took < Duration::from_secs(2), "the daemon took {took:?} to end");
    drop(trap);
    in_netns.kill();
}

#[test]
fn a_listing_right_after_unshare_has_the_new_namespace() {
    let _one = serial();
    // The default refresh interval: a listing may not be served from it.
    let m = Nsfuse::start(&[]);
    let _ = list_within(&m.path("net"), Duration::from_secs(5)).expect("ls");
    for round in 0..20 {
        let mut p = Proc::cmd(&["unshare", "--net", "sleep", "100"]);
        let net = wait_unshared(p.pid(), "net");
        let listing = list_within(&m.path("net"), Duration::from_secs(5)).expect("ls hung");
        assert!(listing.contains(&net.to_string()), "round {round}: {net} missing from {listing:?}");
        p.kill();
    }
}

#[test]
fn newlines_and_tabs_in_names_cannot_forge_lines() {
    let _one = serial();
    let dir = TempDir::new("names");
    // A command named with a newline and a tab (comm is its first 15 bytes).
    let evil = dir.join("x\n1\tfake");
    std::fs::copy("/bin/sleep", &evil).unwrap();
    let mut p = Proc::cmd(&["unshare", "--uts", evil.to_str().unwrap(), "1000"]);
    let uts = wait_unshared(p.pid(), "uts");
    // A pin whose path holds a newline and what looks like another record.
    let pin = dir.join("a\nmount 1 b");
    std::fs::write(&pin, b"").unwrap();
    run(&["mount", "--bind", &format!("/proc/{}/ns/uts", p.pid()), pin.to_str().unwrap()]);
    let _guard = MountGuard { path: pin.clone(), remove: false };
    let m = Nsfuse::start(&[]);
    let procs = m.read(&format!("uts/{uts}/processes"));
    assert_eq!(procs, format!("{}\tx\\0121\\011fake\n", p.pid()));
    let pins = m.read(&format!("uts/{uts}/pins"));
    assert_eq!(pins.lines().count(), 1, "{pins}");
    assert!(pins.ends_with("/a\\012mount 1 b\n"), "{pins}");
    let holders = m.read(&format!("uts/{uts}/holders"));
    assert_eq!(holders.lines().filter(|l| l.starts_with("mount ")).count(), 1, "{holders}");
    assert!(holders.lines().all(|l| l.starts_with("task ") || l.starts_with("mount ")), "{holders}");
    // nsfuse scan's table: one row, the command line escaped.
    let table = run(&[nsfuse_bin().to_str().unwrap(), "scan", "--type", "uts"]);
    let row = table.lines().find(|l| l.starts_with(&uts.to_string())).expect("a row");
    assert!(row.contains("x\\0121\\011fake 1000"), "{row}");
    assert!(!table.lines().any(|l| l.starts_with("1\tfake")), "{table}");
    // JSON carries the real bytes, escaped by JSON itself.
    let info: serde_json::Value = serde_json::from_str(&m.read(&format!("uts/{uts}/info.json"))).unwrap();
    assert_eq!(info["processes"][0]["comm"], "x\n1\tfake");
    p.kill();
}

#[test]
fn allow_other_contents_show_only_what_the_reader_may_see() {
    let _one = serial();
    let m = Nsfuse::start(&["allow_other"]);
    // A network namespace with a process of nobody's and one of root's, and
    // a socket and an fd of root's in it.
    let mut mine = Proc::nobody_in_new("--net");
    let net = wait_unshared(mine.pid(), "net");
    let netns_path = format!("/proc/{}/ns/net", mine.pid());
    let mut roots = Proc::cmd(&["nsenter", &format!("--net={netns_path}"), "sleep", "1000"]);
    assert!(wait_for(5.0, || std::fs::metadata(format!("/proc/{}/ns/net", roots.pid()))
        .is_ok_and(|md| md.ino() == net)
        && std::fs::read_to_string(format!("/proc/{}/comm", roots.pid()))
            .is_ok_and(|c| c.trim() == "sleep")));
    let fd_holder = Proc::sh(&format!("exec 6< {netns_path}; exec sleep 1000"));
    assert!(wait_for(5.0, || std::fs::read_link(format!("/proc/{}/fd/6", fd_holder.pid())).is_ok()));
    // Root sees all of it.
    let holders = m.read(&format!("net/{net}/holders"));
    for want in [format!("task {} ", roots.pid()), format!("fd {} 6", fd_holder.pid())] {
        assert!(holders.contains(&want), "root sees {want}: {holders}");
    }
    let as_nobody = |file: &str| {
        let out = nobody("cat", &m.path(&format!("net/{net}/{file}")));
        assert!(out.status.success(), "nobody cannot read {file}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let others = [roots.pid(), fd_holder.pid()];
    let pids_in_lines = |text: &str| -> Vec<i32> {
        text.lines()
            .filter_map(|l| {
                l.split(['\t', ' ']).nth(usize::from(!l.starts_with(char::is_numeric)))?.parse().ok()
            })
            .collect()
    };
    for file in ["holders", "processes"] {
        let pids = pids_in_lines(&as_nobody(file));
        assert!(pids.contains(&mine.pid()), "nobody sees its own process in {file}: {pids:?}");
        assert!(others.iter().all(|p| !pids.contains(p)), "nobody sees root's processes in {file}: {pids:?}");
    }
    let info: serde_json::Value = serde_json::from_str(&as_nobody("info.json")).unwrap();
    let procs: Vec<i64> =
        info["processes"].as_array().unwrap().iter().filter_map(|p| p["pid"].as_i64()).collect();
    assert_eq!(procs, [i64::from(mine.pid())], "{info}");
    let holder_pids: Vec<i32> = info["holders"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|h| h["pid"].as_i64().and_then(|p| i32::try_from(p).ok()))
        .collect();
    assert!(holder_pids.contains(&mine.pid()), "{info}");
    assert!(others.iter().all(|p| !holder_pids.contains(p)), "{info}");
    // The ns link leads through a process nobody may see: not shown.
    let link = nobody("readlink", &m.path(&format!("net/{net}/ns")));
    let target = String::from_utf8_lossy(&link.stdout);
    assert!(others.iter().all(|p| !target.contains(&format!("/proc/{p}/"))), "{target}");
    // The initial user namespace: its child lines name only what nobody
    // sees (not a uts namespace of root's).
    let mut root_uts = Proc::cmd(&["unshare", "--uts", "sleep", "1000"]);
    let hidden_uts = wait_unshared(root_uts.pid(), "uts");
    let init_user = ino("/proc/self/ns/user");
    let root_holders = format!("user/{init_user}/holders");
    assert!(
        wait_for(5.0, || m.read(&root_holders).contains(&format!("child uts {hidden_uts}"))),
        "root sees it"
    );
    let out = nobody("cat", &m.path(&format!("user/{init_user}/holders")));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains(&format!("child net {net}")), "nobody sees its own namespace as a child: {text}");
    assert!(!text.contains(&format!("child uts {hidden_uts}")), "{text}");
    assert!(!text.lines().any(|l| l.starts_with("task 1 ")), "{text}");
    root_uts.kill();
    mine.kill();
    roots.kill();
}

#[test]
fn a_second_mount_on_a_live_tree_is_refused_naming_its_daemon() {
    let _one = serial();
    let m = Nsfuse::start(&[]);
    let pids = m.daemon_pids();
    assert_eq!(pids.len(), 1, "{pids:?}");
    let out = Command::new(nsfuse_bin()).arg(&m.mnt).output().expect("run nsfuse");
    assert!(!out.status.success(), "a second nsfuse mounted on a live one");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("already served") && err.contains(&format!("PID {}", pids[0])), "{err}");
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let here = m.mnt.to_string_lossy().to_string();
    assert_eq!(mountinfo.lines().filter(|l| l.split(' ').nth(4) == Some(here.as_str())).count(), 1);
    assert_eq!(daemons_of(&m.mnt), pids, "one daemon, the first");
}

/// A small deterministic generator (xorshift), seeded per run and printed,
/// so a failing topology can be built again with NSFUSE_TOPOLOGY_SEED.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// One thing built, and what a scan must then show: the namespace with
/// this holder line (or a line starting with it).
struct Expect {
    what: String,
    inode: u64,
    line: String,
}

/// Everything a random topology started, ended on drop.
#[derive(Default)]
struct Topology {
    procs: Vec<Proc>,
    mounts: Vec<MountGuard>,
    expect: Vec<Expect>,
}

impl Topology {
    fn member(ty: &str) -> (Proc, u64) {
        let flag = if ty == "mnt" { "--mount".to_owned() } else { format!("--{ty}") };
        let p = Proc::cmd(&["unshare", &flag, "sleep", "1000"]);
        let inode = wait_unshared(p.pid(), ty);
        (p, inode)
    }

    /// Build one random piece in `dir` (`n` makes its names unique).
    fn add(&mut self, rng: &mut Rng, dir: &TempDir, n: usize) {
        const TYPES: [&str; 5] = ["net", "uts", "ipc", "cgroup", "mnt"];
        let ty = TYPES[rng.below(TYPES.len() as u64) as usize];
        match rng.below(6) {
            0 => {
                let (p, inode) = Topology::member(ty);
                let line = format!("task {} {}", p.pid(), p.pid());
                self.expect.push(Expect { what: format!("a process in a new {ty}"), inode, line });
                self.procs.push(p);
            }
            1 => {
                let (mut m, inode) = Topology::member(ty);
                let h = Proc::sh(&format!("exec 5< /proc/{}/ns/{ty}; exec sleep 1000", m.pid()));
                assert!(wait_for(5.0, || std::fs::read_link(format!("/proc/{}/fd/5", h.pid())).is_ok()));
                m.kill();
                let line = format!("fd {} 5", h.pid());
                self.expect.push(Expect { what: format!("an fd by /proc link on a {ty}"), inode, line });
                self.procs.push(h);
            }
            2 | 3 => {
                let (mut m, inode) = Topology::member(ty);
                let pin = dir.join(&format!("pin{n}"));
                std::fs::write(&pin, b"").unwrap();
                run(&["mount", "--bind", &format!("/proc/{}/ns/{ty}", m.pid()), pin.to_str().unwrap()]);
                m.kill();
                if rng.below(2) == 0 {
                    let line = format!("mount {} {}", ino("/proc/self/ns/mnt"), pin.display());
                    self.expect.push(Expect { what: format!("a pin of a {ty}"), inode, line });
                    self.mounts.push(MountGuard::new(pin));
                } else {
                    // Opened by its path, then the pin is detached: only the fd holds it.
                    let h = Proc::sh(&format!("exec 6< '{}'; exec sleep 1000", pin.display()));
                    let fd6 = format!("/proc/{}/fd/6", h.pid());
                    assert!(wait_for(5.0, || std::fs::read_link(&fd6).is_ok()));
                    detach(&pin).unwrap();
                    let line = format!("fd {} 6", h.pid());
                    self.expect.push(Expect { what: format!("an fd by path on a {ty}"), inode, line });
                    self.procs.push(h);
                }
            }
            4 => {
                // A socket made in a new netns by a process that then goes back.
                let script = "import ctypes,os,socket,time\n\
                              libc=ctypes.CDLL(None,use_errno=True)\n\
                              home=os.open('/proc/self/ns/net',os.O_RDONLY)\n\
                              assert libc.unshare(0x40000000)==0\n\
                              s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n\
                              assert libc.setns(home,0x40000000)==0\n\
                              os.close(home)\n\
                              print(s.fileno(),os.stat('/proc/self/fd/%d'%s.fileno()).st_ino,flush=True)\n\
                              time.sleep(1000)\n";
                let mut child = Command::new("python3")
                    .args(["-c", script])
                    .stdout(Stdio::piped())
                    .stdin(Stdio::null())
                    .spawn()
                    .unwrap();
                let mut out = String::new();
                let stdout = child.stdout.take().unwrap();
                std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut out).unwrap();
                let p = Proc(child);
                let fd: i32 = out.split_whitespace().next().unwrap().parse().unwrap();
                // The socket's namespace, as the kernel says (SIOCGSKNS).
                let pidfd = nsfuse::sys::pidfd_open(nsfuse::model::Pid(p.pid())).unwrap();
                let sock = nsfuse::sys::pidfd_getfd(std::os::fd::AsFd::as_fd(&pidfd), fd).unwrap();
                let netns = nsfuse::sys::socket_netns(std::os::fd::AsFd::as_fd(&sock)).unwrap();
                let inode = nsfuse::sys::fstat(std::os::fd::AsFd::as_fd(&netns)).unwrap().st_ino;
                let line = format!("socket {} {fd}", p.pid());
                self.expect.push(Expect { what: "a socket left in a netns".into(), inode, line });
                self.procs.push(p);
            }
            _ => {
                // A user namespace kept only by the netns it owns (pinned).
                let mut p = Proc::cmd(&["unshare", "--user", "--map-root-user", "--net", "sleep", "1000"]);
                let net = wait_unshared(p.pid(), "net");
                let user = ino(format!("/proc/{}/ns/user", p.pid()));
                let pin = dir.join(&format!("owned{n}"));
                std::fs::write(&pin, b"").unwrap();
                run(&["mount", "--bind", &format!("/proc/{}/ns/net", p.pid()), pin.to_str().unwrap()]);
                p.kill();
                self.mounts.push(MountGuard::new(pin));
                let line = format!("child net {net}");
                self.expect.push(Expect {
                    what: "a user namespace held by what it owns".into(),
                    inode: user,
                    line,
                });
            }
        }
    }
}

#[test]
fn random_topologies_are_found_whole_by_scans_and_the_tree() {
    let _one = serial();
    let seed = std::env::var("NSFUSE_TOPOLOGY_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64 | 1
    });
    eprintln!("topology seed {seed} (NSFUSE_TOPOLOGY_SEED={seed} builds it again)");
    let mut rng = Rng(seed);
    for round in 0..3 {
        let dir = TempDir::new("topology");
        let mut sc = Scans::start();
        let mut topo = Topology::default();
        for n in 0..8 {
            topo.add(&mut rng, &dir, n);
        }
        let check = |s: &nsfuse::model::Snapshot| {
            topo.expect
                .iter()
                .filter(|e| {
                    !s.namespaces
                        .get(&Inode(e.inode))
                        .is_some_and(|n| n.holders.iter().any(|h| h.to_string() == e.line))
                })
                .map(|e| format!("{} ({} {})", e.what, e.inode, e.line))
                .collect::<Vec<_>>()
        };
        let missing = sc.both(check);
        assert!(missing.is_empty(), "seed {seed} round {round}: not found: {missing:?}");
        // Every namespace lsns lists is there too.
        let lsns = run(&["lsns", "-n", "-o", "NS"]);
        let listed: Vec<u64> = lsns.lines().filter_map(|l| l.trim().parse().ok()).collect();
        let s = scan(&ScanOptions::default()).unwrap();
        for e in &topo.expect {
            if listed.contains(&e.inode) {
                assert!(
                    s.namespaces.contains_key(&Inode(e.inode)),
                    "seed {seed}: lsns lists {}, the scan does not",
                    e.inode
                );
            }
        }
        // The tree says the same as the scan.
        let m = Nsfuse::start(&[]);
        let snap = scan(&ScanOptions::default()).unwrap();
        for e in &topo.expect {
            let ty = snap.namespaces[&Inode(e.inode)].ns_type;
            let holders = m.read(&format!("{ty}/{}/holders", e.inode));
            assert!(holders.lines().any(|l| l == e.line), "seed {seed}: {} in the tree: {holders}", e.what);
        }
    }
}
