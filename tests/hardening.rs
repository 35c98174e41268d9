//! Hardening: generated bad control input, crashes, signals, logging and
//! churn. nsfuse must refuse what it should, never panic or hang, and never
//! lose or half-make a pin.

mod common;

use common::*;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// nsfs mount points (and namespace inodes) below `dirs`.
fn nsfs_mounts_below(dirs: &[&Path]) -> Vec<(PathBuf, u64)> {
    let text = std::fs::read("/proc/self/mountinfo").unwrap();
    nsfuse::discovery::parse::mountinfo_nsfs_all(&text)
        .into_iter()
        .filter(|m| dirs.iter().any(|d| m.mount_point.starts_with(d)))
        .map(|m| (m.mount_point, m.inode.get()))
        .collect()
}

/// Plain files below `dir` (the pin files).
fn files_below(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            match p.symlink_metadata() {
                Ok(m) if m.is_dir() => out.extend(files_below(&p)),
                Ok(_) => out.push(p),
                Err(_) => {}
            }
        }
    }
    out
}

/// Every file in the pin directories is a live nsfs mount, and every nsfs
/// mount there has its file: nothing half-made, nothing lost.
fn assert_pins_consistent(pin_dir: &Path, netns_dir: &Path) {
    let mounts = nsfs_mounts_below(&[pin_dir, netns_dir]);
    let mut files: Vec<PathBuf> = files_below(pin_dir);
    files.extend(files_below(netns_dir));
    for f in &files {
        assert!(mounts.iter().any(|(m, _)| m == f), "{} is a pin file with no mount", f.display());
        assert_eq!(std::fs::metadata(f).unwrap().ino(), mounts.iter().rev().find(|(m, _)| m == f).unwrap().1);
    }
    for (m, _) in &mounts {
        assert!(files.contains(m), "{} is mounted but has no file", m.display());
    }
}

/// A small deterministic generator (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len() as u64) as usize]
    }
}

/// One generated write: (bytes, number of command lines in it).
fn generate(rng: &mut Rng, inode: u64) -> (Vec<u8>, usize) {
    let bad_names = ["../x", "a/b", ".", "..", "", "x\0y", "a b", "\u{a0}", "../../etc", "/etc/passwd"];
    let kind = rng.below(10);
    let one = |s: String| (s.into_bytes(), 1);
    match kind {
        0 => {
            let len = rng.below(80) as usize;
            ((0..len).map(|_| rng.below(256) as u8).collect(), 1)
        }
        1 => one(format!("pin {}\n", "n".repeat(256 + rng.below(5000) as usize))),
        2 => one(format!("pin {}\n", rng.pick(&bad_names))),
        // An embedded empty line: the first line runs, the empty one fails.
        3 => (format!("release fz-{}\n\npin fz-{}\n", rng.below(4), rng.below(4)).into_bytes(), 2),
        4 => one(format!(
            "release {}\n",
            rng.pick(&["/", "/proc", "/etc/passwd", "/run/../run", "../x", "a/b"])
        )),
        5 => one(format!(
            "pin {}\n",
            rng.pick(&["\u{2603}", "e\u{301}", "\u{202e}x", "\u{1F600}", "\u{3000}x"])
        )),
        6 => {
            // A huge write: only its first line runs (and fails), so it counts once.
            let junk: String = (0..1000).map(|i| format!("junk{i} line with too many words\n")).collect();
            (junk.into_bytes(), 1)
        }
        7 => one(format!("pin fz-{}", rng.below(4))), // a partial last line
        8 => one(format!(
            "{}\n",
            rng.pick(&[
                "pin a b",
                "release a b c",
                "new",
                "new net a b",
                "pin net",
                "release",
                "bogus",
                "pin\t\t"
            ])
        )),
        _ => {
            let line = one(format!("{} fz-{}\n", rng.pick(&["pin", "release"]), rng.below(4)));
            line.pipe_top(rng, inode)
        }
    }
}

trait PipeTop {
    fn pipe_top(self, rng: &mut Rng, inode: u64) -> (Vec<u8>, usize);
}

impl PipeTop for (Vec<u8>, usize) {
    /// Sometimes address the same command from the top-level ctl instead.
    fn pipe_top(self, rng: &mut Rng, inode: u64) -> (Vec<u8>, usize) {
        if rng.below(2) == 0 {
            let line = String::from_utf8_lossy(&self.0).into_owned();
            let mut words = line.split_whitespace();
            let (verb, name) = (words.next().unwrap_or("pin"), words.next().unwrap_or("fz-0"));
            (format!("TOP {verb} net {inode} {name}\n").into_bytes(), 1)
        } else {
            self
        }
    }
}

#[test]
fn fuzzed_control_lines_are_refused_and_lose_nothing() {
    let m = Nsfuse::start(&["refresh_ms=1000"]);
    let mut p = Proc::cmd(&["unshare", "--net", "sleep", "1000"]);
    let net = wait_unshared(p.pid(), "net");
    let ns_ctl = m.path(&format!("net/{net}/ctl"));
    let top_ctl = m.path("ctl");
    let seed = std::process::id() as u64 * 0x9e37_79b9 + 17;
    eprintln!("fuzz seed {seed}");
    let mut rng = Rng(seed);
    let (mut lines, mut writes) = (0usize, 0usize);
    let started = Instant::now();
    while lines < 10_000 {
        let (mut data, n) = generate(&mut rng, net);
        let target = if data.starts_with(b"TOP ") {
            data.drain(..4);
            &top_ctl
        } else {
            &ns_ctl
        };
        let t = Instant::now();
        let r = write_ctl(target, &data);
        assert!(t.elapsed() < Duration::from_secs(10), "a write hung: {:?}", String::from_utf8_lossy(&data));
        if let Err(e) = r {
            assert!(
                [libc::EINVAL, libc::EEXIST, libc::ENOENT].contains(&e),
                "errno {e} for {:?}",
                String::from_utf8_lossy(&data)
            );
        }
        lines += n;
        writes += 1;
    }
    eprintln!("{lines} lines in {writes} writes, {:?}", started.elapsed());
    // Still up and answering.
    assert!(m.read("README").contains("nsfuse"));
    assert_pins_consistent(&m.pin_dir, &m.netns_dir);
    // Nothing outside the pin directories.
    for stray in ["/x", "/etc/x", "/run/x"] {
        assert!(!nsfs_mounts_below(&[Path::new(stray)]).iter().any(|(p, _)| p == Path::new(stray)));
    }
    assert!(nsfs_mounts_below(&[m.dir.path()])
        .iter()
        .all(|(p, _)| p.starts_with(&m.pin_dir) || p.starts_with(&m.netns_dir)));
    write_ctl(&ns_ctl, b"release\n").or_else(|e| if e == libc::ENOENT { Ok(()) } else { Err(e) }).unwrap();
    assert_eq!(nsfs_mounts_below(&[&m.pin_dir, &m.netns_dir]), vec![]);
    p.kill();
}

/// A foreground daemon whose stderr goes to a log file.
struct Foreground {
    proc: Proc,
    log: PathBuf,
}

impl Foreground {
    fn start(dir: &TempDir, mnt: &Path, opts: &str, rust_log: &str) -> Foreground {
        static N: AtomicUsize = AtomicUsize::new(0);
        let log = dir.join(&format!("log-{}", N.fetch_add(1, Ordering::SeqCst)));
        let file = std::fs::File::create(&log).unwrap();
        let proc = Proc(
            Command::new(nsfuse_bin())
                .arg(mnt)
                .args(["-f", "-o", opts])
                .env("RUST_LOG", rust_log)
                .stderr(Stdio::from(file))
                .spawn()
                .unwrap(),
        );
        assert!(wait_for(10.0, || mnt.join("README").exists()), "foreground mount never answered");
        Foreground { proc, log }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

#[test]
fn kill_9_keeps_every_pin_and_a_restart_finds_them_all() {
    let dir = TempDir::new("crash");
    let mnt = dir.join("mnt");
    std::fs::create_dir(&mnt).unwrap();
    let me = std::process::id();
    let opts = format!("pin_dir={},netns_dir=/run/netns,refresh_ms=100", dir.join("pins").display());
    let mut fg = Foreground::start(&dir, &mnt, &opts, "info");
    let mut p = Proc::cmd(&["unshare", "--uts", "--net", "sleep", "1000"]);
    let net = wait_unshared(p.pid(), "net");
    let uts = ino(format!("/proc/{}/ns/uts", p.pid()));
    let net_name = format!("nsfuse-test-crash-{me}");
    let added = format!("nsfuse-test-added-{me}");
    let _g1 = MountGuard::new(format!("/run/netns/{net_name}"));
    let _g2 = MountGuard::new(format!("/run/netns/{added}"));
    let _g3 = MountGuard::new(dir.join("pins").join("uts").join("keep"));
    write_ctl(&mnt.join(format!("uts/{uts}/ctl")), b"pin keep\n").unwrap();
    write_ctl(&mnt.join(format!("net/{net}/ctl")), format!("pin {net_name}\n").as_bytes()).unwrap();
    p.kill();
    nsfuse::sys::kill(nsfuse::model::Pid(fg.proc.pid()), libc::SIGKILL).unwrap();
    let _ = fg.proc.0.wait();
    // The pins outlive the daemon.
    let mounts = nsfs_mounts_below(&[&dir.join("pins"), Path::new("/run/netns")]);
    assert!(mounts.contains(&(dir.join("pins/uts/keep"), uts)));
    assert!(mounts.contains(&(PathBuf::from(format!("/run/netns/{net_name}")), net)));
    // Meanwhile, ip netns adds one.
    run(&["ip", "netns", "add", &added]);
    // Restart on the same (stale) mount point.
    assert_eq!(std::fs::metadata(&mnt).err().and_then(|e| e.raw_os_error()), Some(libc::ENOTCONN));
    let _fg2 = Foreground::start(&dir, &mnt, &opts, "info");
    for (t, name) in [("uts", "keep"), ("net", net_name.as_str()), ("net", added.as_str())] {
        assert!(mnt.join(format!("pinned/{t}/{name}")).exists(), "pinned/{t}/{name} after restart");
    }
    assert!(mnt.join(format!("uts/{uts}")).is_dir() && mnt.join(format!("net/{net}")).is_dir());
    write_ctl(&mnt.join(format!("uts/{uts}/ctl")), b"release\n").unwrap();
    write_ctl(&mnt.join(format!("net/{net}/ctl")), format!("release {net_name}\n").as_bytes()).unwrap();
    run(&["ip", "netns", "delete", &added]);
}

#[test]
fn sighup_rescans_and_logs_name_command_path_and_reason() {
    let dir = TempDir::new("hup");
    let mnt = dir.join("mnt");
    std::fs::create_dir(&mnt).unwrap();
    let opts = format!(
        "pin_dir={},netns_dir={},refresh_ms=600000",
        dir.join("pins").display(),
        dir.join("netns").display()
    );
    let fg = Foreground::start(&dir, &mnt, &opts, "debug");
    let _ = std::fs::read_dir(mnt.join("uts")).unwrap().count();
    let mut p = Proc::cmd(&["unshare", "--uts", "sleep", "1000"]);
    let uts = wait_unshared(p.pid(), "uts");
    let listed = || {
        std::fs::read_dir(mnt.join("uts"))
            .unwrap()
            .flatten()
            .any(|e| e.file_name() == uts.to_string().as_str())
    };
    // A listing is made from a refresh that started after the opendir,
    // whatever the refresh interval.
    assert!(listed(), "a listing right after unshare lacks the namespace");
    nsfuse::sys::kill(nsfuse::model::Pid(fg.proc.pid()), libc::SIGHUP).unwrap();
    assert!(wait_for(5.0, || fg.log().contains("full pass")), "SIGHUP did not make a full pass");
    assert!(wait_for(2.0, || fg.log().contains("SIGHUP")), "SIGHUP not logged");
    // A refused command: one line with the command, the ctl path and the reason.
    let ctl = mnt.join(format!("uts/{uts}/ctl"));
    assert_eq!(write_ctl(&ctl, b"pin ../escape\n"), Err(libc::EINVAL));
    let log = fg.log();
    let line = log.lines().find(|l| l.contains("../escape")).expect("a log line for the refused command");
    assert!(line.contains(&ctl.display().to_string()), "{line}");
    assert!(line.contains("refused") && line.contains("may not hold"), "{line}");
    // RUST_LOG=debug: each refresh with its counts and time.
    assert!(
        log.lines().any(|l| l.contains("refresh:") && l.contains("namespaces") && l.contains("processes in")),
        "{log}"
    );
    p.kill();
}

#[test]
fn sigterm_during_a_burst_of_writes_leaves_no_half_made_pin() {
    let dir = TempDir::new("term");
    let mnt = dir.join("mnt");
    std::fs::create_dir(&mnt).unwrap();
    let (pins, netns) = (dir.join("pins"), dir.join("netns"));
    let opts = format!("pin_dir={},netns_dir={},refresh_ms=100", pins.display(), netns.display());
    let mut fg = Foreground::start(&dir, &mnt, &opts, "warn");
    let mut p = Proc::cmd(&["unshare", "--net", "--uts", "sleep", "1000"]);
    let net = wait_unshared(p.pid(), "net");
    let uts = ino(format!("/proc/{}/ns/uts", p.pid()));
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let (stop, mnt) = (stop.clone(), mnt.clone());
            std::thread::spawn(move || {
                let mut i = 0;
                while !stop.load(Ordering::Relaxed) {
                    let (t, inode) = if w % 2 == 0 { ("net", net) } else { ("uts", uts) };
                    let ctl = mnt.join(format!("{t}/{inode}/ctl"));
                    let _ = write_ctl(&ctl, format!("pin w{w}-{i}\n").as_bytes());
                    if i % 2 == 1 {
                        let _ = write_ctl(&ctl, format!("release w{w}-{}\n", i - 1).as_bytes());
                    }
                    i += 1;
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    nsfuse::sys::kill(nsfuse::model::Pid(fg.proc.pid()), libc::SIGTERM).unwrap();
    let status = fg.proc.0.wait().unwrap();
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.join().unwrap();
    }
    assert!(status.success(), "{status:?}");
    assert!(!is_mounted(&mnt));
    assert_pins_consistent(&pins, &netns);
    for (m, _) in nsfs_mounts_below(&[&pins, &netns]) {
        let _ = std::process::Command::new("umount").arg(&m).status();
    }
    p.kill();
}

#[test]
fn chmod_does_not_open_ctl_to_other_users() {
    let m = Nsfuse::start(&["allow_other"]);
    let ctl = m.path("ctl");
    let e = std::fs::set_permissions(&ctl, std::os::unix::fs::PermissionsExt::from_mode(0o666));
    assert!(e.is_err(), "chmod of a ctl file must be refused");
    assert_eq!(ctl.metadata().unwrap().mode() & 0o777, 0o600);
    let out = Command::new("setpriv")
        .args(["--reuid", "65534", "--regid", "65534", "--clear-groups", "sh", "-c"])
        .arg(format!("echo new net x > '{}'", ctl.display()))
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("Permission denied"));
}

/// 60 s (NSFUSE_CHURN_SECS) of namespaces made and ended (~100/s, with
/// processes, threads, fds and pins) while 4 readers walk the tree and 4
/// writers pin and release. Run by .ci/run; `cargo test -- --ignored`.
#[test]
#[ignore]
fn churn() {
    let secs: u64 = std::env::var("NSFUSE_CHURN_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(60);
    let m = Arc::new(Nsfuse::start(&["refresh_ms=200"]));
    let deadline = Instant::now() + Duration::from_secs(secs);
    let made = Arc::new(AtomicUsize::new(0));
    let reads = Arc::new(AtomicUsize::new(0));
    let mut handles = Vec::new();
    // Churners: short-lived processes in new namespaces, with a thread that
    // unshares (via unshare(1) in a subshell), an nsfs fd, and sometimes a pin.
    for c in 0..2 {
        let (m, made) = (m.clone(), made.clone());
        handles.push(std::thread::spawn(move || {
            let mut i = 0u64;
            while Instant::now() < deadline {
                let pin = m.netns_dir.join(format!("churn{c}-{i}"));
                let script = format!(
                    "exec 3</proc/self/ns/net; (unshare --uts sleep 0.05 &) ; touch '{p}' && mount --bind /proc/self/ns/net '{p}' && sleep 0.02; umount '{p}'; rm -f '{p}'",
                    p = pin.display()
                );
                let _ = Command::new("unshare").args(["--net", "--ipc", "sh", "-c", &script]).stderr(Stdio::null()).status();
                made.fetch_add(3, Ordering::Relaxed);
                i += 1;
            }
        }));
    }
    // Readers: every type and inode file must match its directory.
    for _ in 0..4 {
        let (m, reads) = (m.clone(), reads.clone());
        handles.push(std::thread::spawn(move || {
            while Instant::now() < deadline {
                for t in ["net", "uts", "ipc", "user", "mnt"] {
                    let Ok(rd) = std::fs::read_dir(m.path(t)) else { continue };
                    for e in rd.flatten() {
                        let name = e.file_name().to_string_lossy().into_owned();
                        if let Ok(ty) = std::fs::read_to_string(e.path().join("type")) {
                            assert_eq!(ty, format!("{t}\n"), "type of {t}/{name}");
                        }
                        if let Ok(i) = std::fs::read_to_string(e.path().join("inode")) {
                            assert_eq!(i, format!("{name}\n"), "inode of {t}/{name}");
                        }
                        let _ = std::fs::read(e.path().join("holders"));
                        reads.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }));
    }
    // Writers: pin and release whatever namespaces are there.
    for w in 0..4 {
        let m = m.clone();
        handles.push(std::thread::spawn(move || {
            let mut i = 0;
            while Instant::now() < deadline {
                let Ok(rd) = std::fs::read_dir(m.path("uts")) else { continue };
                for e in rd.flatten().take(5) {
                    let ctl = e.path().join("ctl");
                    if let Err(err) = write_ctl(&ctl, format!("pin cw{w}-{i}\n").as_bytes()) {
                        assert!([libc::ENOENT, libc::EEXIST].contains(&err), "pin: errno {err}");
                    }
                    if let Err(err) = write_ctl(&ctl, format!("release cw{w}-{i}\n").as_bytes()) {
                        assert!([libc::ENOENT].contains(&err), "release: errno {err}");
                    }
                    i += 1;
                }
            }
        }));
    }
    for h in handles {
        h.join().expect("a churn thread failed");
    }
    eprintln!(
        "churn: {} namespaces made, {} directory reads",
        made.load(Ordering::Relaxed),
        reads.load(Ordering::Relaxed)
    );
    assert!(m.read("README").contains("nsfuse"), "nsfuse stayed up");
    // End state: every pin listed in the tree is a mount, and vice versa.
    std::thread::sleep(Duration::from_millis(300));
    let _ = std::fs::read_dir(&m.mnt).unwrap().count();
    assert_pins_consistent(&m.pin_dir, &m.netns_dir);
    let mounts = nsfs_mounts_below(&[&m.pin_dir, &m.netns_dir]);
    for t in ["cgroup", "ipc", "mnt", "net", "pid", "time", "user", "uts"] {
        for e in std::fs::read_dir(m.path(&format!("pinned/{t}"))).unwrap().flatten() {
            let file = if t == "net" {
                m.netns_dir.join(e.file_name())
            } else {
                m.pin_dir.join(t).join(e.file_name())
            };
            assert!(mounts.iter().any(|(p, _)| *p == file), "pinned/{t}/{:?} is not a mount", e.file_name());
        }
    }
    for (p, _) in &mounts {
        let name = p.file_name().unwrap();
        let t = if p.starts_with(&m.netns_dir) {
            "net".to_owned()
        } else {
            p.parent().unwrap().file_name().unwrap().to_string_lossy().into_owned()
        };
        assert!(
            m.path(&format!("pinned/{t}")).join(name).symlink_metadata().is_ok(),
            "{} not listed",
            p.display()
        );
    }
    assert!(made.load(Ordering::Relaxed) > 10 && reads.load(Ordering::Relaxed) > 10);
}
