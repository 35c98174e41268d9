//! Control files on a real mount: pin, release and new, checked against the
//! kernel with findmnt, stat -L, nsenter and ip netns; every error row of
//! SPEC section 3 with its errno, and that a refused command changes nothing.

mod common;

use common::*;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

const TYPES: [&str; 8] = ["cgroup", "ipc", "mnt", "net", "pid", "time", "user", "uts"];

/// nsfs mounts in our mount namespace: (mount point, inode of the namespace).
fn nsfs_mounts() -> Vec<(PathBuf, u64)> {
    // findmnt exits 1 when nothing matches: that is an empty list.
    let out = std::process::Command::new("findmnt")
        .args(["-rn", "-t", "nsfs", "-o", "TARGET,FSROOT"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let (target, root) = l.split_once(' ')?;
            let inode = root.split_once('[')?.1.trim_end_matches(']').parse().ok()?;
            Some((PathBuf::from(target.replace("\\x20", " ")), inode))
        })
        .collect()
}

/// Everything in the pin directories: files and nsfs mounts below them.
fn pin_state(m: &Nsfuse) -> (Vec<PathBuf>, Vec<(PathBuf, u64)>) {
    let mut files = Vec::new();
    for dir in [&m.pin_dir, &m.netns_dir] {
        for e in walkdir(dir) {
            files.push(e);
        }
    }
    files.sort();
    let mounts = nsfs_mounts()
        .into_iter()
        .filter(|(p, _)| p.starts_with(&m.pin_dir) || p.starts_with(&m.netns_dir))
        .collect();
    (files, mounts)
}

fn walkdir(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            if e.path().is_dir()
                && !e.path().is_symlink()
                && e.path().symlink_metadata().is_ok_and(|m| m.is_dir())
            {
                out.extend(walkdir(&e.path()));
            } else {
                out.push(e.path());
            }
        }
    }
    out
}

fn pin_path(m: &Nsfuse, t: &str, name: &str) -> PathBuf {
    if t == "net" {
        m.netns_dir.join(name)
    } else {
        m.pin_dir.join(t).join(name)
    }
}

/// A process in a new namespace of type `t` (for pid, the namespace's
/// init too, which no death signal ends); returns them and the inode.
fn member_of_new(t: &str) -> (Member, u64) {
    let flag = match t {
        "mnt" => "--mount".to_owned(),
        other => format!("--{other}"),
    };
    let p = if t == "pid" {
        Proc::cmd(&["unshare", "--pid", "--fork", "--kill-child", "sleep", "1000"])
    } else {
        Proc::cmd(&["unshare", &flag, "sleep", "1000"])
    };
    let pid = p.pid();
    let link = if t == "pid" { "pid_for_children" } else { t };
    let ours = ino(format!("/proc/self/ns/{}", if t == "pid" { "pid" } else { t }));
    assert!(
        wait_for(5.0, || std::fs::metadata(format!("/proc/{pid}/ns/{link}"))
            .is_ok_and(|md| { std::os::unix::fs::MetadataExt::ino(&md) != ours })
            && (t != "pid"
                || std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
                    .is_ok_and(|c| !c.trim().is_empty()))),
        "no new {t} namespace"
    );
    let inode = ino(format!("/proc/{pid}/ns/{link}"));
    let init = (t == "pid").then(|| {
        let c = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap();
        PidGuard(c.trim().parse().unwrap())
    });
    (Member(Some(p), init), inode)
}

/// A member process and, for a pid namespace, its init; both ended on drop or `kill`.
struct Member(Option<Proc>, Option<PidGuard>);

impl Member {
    fn kill(&mut self) {
        if let Some(init) = self.1.take() {
            init.end();
        }
        if let Some(mut p) = self.0.take() {
            p.kill();
        }
    }
}

/// Run `readlink /proc/self/ns/TYPE` inside the namespace pinned at `pin`.
fn entered(t: &str, pin: &Path) -> String {
    let opt = match t {
        "mnt" => format!("--mount={}", pin.display()),
        other => format!("--{other}={}", pin.display()),
    };
    // A user namespace with no uid map: nsenter must not try to setuid into it.
    let keep = if t == "user" { "--preserve-credentials" } else { "--" };
    run(&["nsenter", &opt, keep, "readlink", &format!("/proc/self/ns/{t}")]).trim().to_owned()
}

#[test]
fn pin_kill_enter_release_for_every_type() {
    let m = Nsfuse::start_alone(&["refresh_ms=100"]);
    for t in TYPES {
        let (mut p, inode) = member_of_new(t);
        let pin = pin_path(&m, t, &inode.to_string());
        write_ctl(&m.path(&format!("{t}/{inode}/ctl")), "pin\n")
            .unwrap_or_else(|e| panic!("pin {t}: errno {e}"));
        assert!(nsfs_mounts().contains(&(pin.clone(), inode)), "{t}: no bind mount at {}", pin.display());
        assert_eq!(ino(&pin), inode, "{t}: stat -L of the pin");
        assert!(m.read(&format!("{t}/{inode}/pins")).contains(&pin.display().to_string()), "{t}: pins file");
        assert_eq!(
            std::fs::read_link(m.path(&format!("pinned/{t}/{inode}"))).unwrap(),
            PathBuf::from(format!("../../{t}/{inode}"))
        );
        if t == "pid" {
            // Entering a pid namespace needs its init alive.
            let inside = run(&[
                "nsenter",
                &format!("--pid={}", pin.display()),
                "sh",
                "-c",
                "readlink /proc/self/ns/pid",
            ]);
            assert_eq!(inside.trim(), format!("pid:[{inode}]"));
        }
        p.kill();
        std::thread::sleep(Duration::from_millis(150));
        assert!(m.path(&format!("{t}/{inode}")).is_dir(), "{t}: the pin keeps it in the tree");
        assert!(m.read(&format!("{t}/{inode}/processes")).is_empty() || t == "pid" || t == "user");
        if t != "pid" {
            assert_eq!(entered(t, &pin), format!("{t}:[{inode}]"), "{t}: nsenter through the pin");
        }
        write_ctl(&m.path(&format!("{t}/{inode}/ctl")), "release\n")
            .unwrap_or_else(|e| panic!("release {t}: errno {e}"));
        assert!(!pin.exists(), "{t}: pin file left");
        assert!(!nsfs_mounts().iter().any(|(p, _)| *p == pin), "{t}: mount left");
        assert!(
            wait_for(1.0, || !std::fs::read_dir(m.path(t))
                .unwrap()
                .flatten()
                .any(|e| e.file_name() == inode.to_string().as_str())),
            "{t}: still listed after release"
        );
    }
    assert_eq!(pin_state(&m).1, vec![]);
}

#[test]
fn new_namespaces_of_every_type_are_usable() {
    let m = Nsfuse::start_alone(&["refresh_ms=100"]);
    let me = std::process::id();
    for t in TYPES {
        let name = format!("new-{t}-{me}");
        write_ctl(&m.path("ctl"), format!("new {t} {name}\n"))
            .unwrap_or_else(|e| panic!("new {t}: errno {e}"));
        let pin = pin_path(&m, t, &name);
        let inode = ino(&pin);
        assert!(m.path(&format!("{t}/{inode}")).is_dir(), "new {t} not in the tree");
        assert_eq!(
            std::fs::read_link(m.path(&format!("pinned/{t}/{name}"))).unwrap(),
            PathBuf::from(format!("../../{t}/{inode}"))
        );
        match t {
            "user" => {
                let id = run(&["nsenter", &format!("--user={}", pin.display()), "id", "-u"]);
                assert_eq!(id.trim(), "0", "identity map");
                assert_eq!(
                    m.read(&format!("user/{inode}/uid_map")).split_whitespace().collect::<Vec<_>>(),
                    ["0", "0", "4294967295"]
                );
            }
            "pid" => {
                let procs = m.read(&format!("pid/{inode}/processes"));
                assert!(procs.contains("nsfuse-init"), "{procs}");
                let inside = run(&[
                    "nsenter",
                    &format!("--pid={}", pin.display()),
                    "sh",
                    "-c",
                    "echo $$; readlink /proc/self/ns/pid",
                ]);
                let mut lines = inside.lines();
                assert_ne!(lines.next(), Some("1"), "the shell is not the init");
                assert_eq!(lines.next(), Some(format!("pid:[{inode}]").as_str()));
            }
            "net" => {
                let links = run(&["nsenter", &format!("--net={}", pin.display()), "ip", "-o", "link"]);
                assert_eq!(links.lines().count(), 1, "only lo: {links}");
                assert!(links.contains("lo:") && links.contains("state DOWN"), "{links}");
            }
            _ => assert_eq!(entered(t, &pin), format!("{t}:[{inode}]"), "{t}"),
        }
        write_ctl(&m.path(&format!("{t}/{inode}/ctl")), format!("release {name}\n")).unwrap();
        assert!(!pin.exists());
        if t == "pid" {
            assert!(
                wait_for(2.0, || !std::fs::read_dir(m.path("pid"))
                    .unwrap()
                    .flatten()
                    .any(|e| e.file_name() == inode.to_string().as_str())),
                "the init of a released pid namespace must end"
            );
        }
    }
    assert_eq!(pin_state(&m).1, vec![]);
}

#[test]
fn ip_netns_interop_both_ways() {
    // ip netns only knows /run/netns: use it, with names unique to this run.
    let m = Nsfuse::start(&["netns_dir=/run/netns", "refresh_ms=100"]);
    let me = std::process::id();
    let (mut p, inode) = member_of_new("net");
    let name = format!("nsfuse-test-{me}");
    let _g = MountGuard::new(format!("/run/netns/{name}"));
    write_ctl(&m.path(&format!("net/{inode}/ctl")), format!("pin {name}\n")).unwrap();
    p.kill();
    assert!(run(&["ip", "netns", "list"])
        .lines()
        .any(|l| l.split_whitespace().next() == Some(name.as_str())));
    let inside = run(&["ip", "netns", "exec", &name, "readlink", "/proc/self/ns/net"]);
    assert_eq!(inside.trim(), format!("net:[{inode}]"));
    run(&["ip", "netns", "exec", &name, "ip", "link"]);
    write_ctl(&m.path(&format!("net/{inode}/ctl")), format!("release {name}\n")).unwrap();
    assert!(!run(&["ip", "netns", "list"]).contains(&name));

    // Made by ip netns, released through nsfuse as ip netns delete would.
    let other = format!("nsfuse-test-ipadd-{me}");
    let _h = MountGuard::new(format!("/run/netns/{other}"));
    run(&["ip", "netns", "add", &other]);
    let inode = ino(format!("/run/netns/{other}"));
    assert!(wait_for(2.0, || std::fs::read_link(m.path(&format!("pinned/net/{other}"))).is_ok()));
    assert_eq!(
        std::fs::read_link(m.path(&format!("pinned/net/{other}"))).unwrap(),
        PathBuf::from(format!("../../net/{inode}"))
    );
    write_ctl(&m.path(&format!("net/{inode}/ctl")), format!("release {other}\n")).unwrap();
    assert!(!Path::new(&format!("/run/netns/{other}")).exists());
    assert!(!run(&["ip", "netns", "list"]).contains(&other));
}

#[test]
fn release_all_reaches_into_a_pinned_mount_namespace() {
    let m = Nsfuse::start_alone(&["refresh_ms=100"]);
    let me = std::process::id();
    let name = format!("outer-{me}");
    write_ctl(&m.path("ctl"), format!("new mnt {name}\n")).unwrap();
    let mnt_pin = pin_path(&m, "mnt", &name);
    let mntns = ino(&mnt_pin);
    // Inside it only: a tmpfs holding a pin of a new network namespace.
    let inner = m.dir.join("inner");
    std::fs::create_dir_all(&inner).unwrap();
    let d = inner.display();
    run(&[
        "nsenter",
        &format!("--mount={}", mnt_pin.display()),
        "sh",
        "-c",
        &format!("mount -t tmpfs none {d} && touch {d}/net && unshare --net={d}/net true"),
    ]);
    let net = {
        let text = run(&[
            "nsenter",
            &format!("--mount={}", mnt_pin.display()),
            "stat",
            "-L",
            "-c",
            "%i",
            &format!("{d}/net"),
        ]);
        text.trim().parse::<u64>().unwrap()
    };
    assert!(
        wait_for(2.0, || m.path(&format!("net/{net}")).is_dir()),
        "net pinned inside the mount namespace not found"
    );
    assert!(m.read(&format!("net/{net}/pins")).contains(&format!("{mntns} {d}/net")));
    assert!(m.path(&format!("mnt/{mntns}")).is_dir());
    write_ctl(&m.path(&format!("net/{net}/ctl")), "release all\n").unwrap();
    assert!(wait_for(1.0, || !m.path(&format!("net/{net}")).exists()), "inner pin survived release all");
    write_ctl(&m.path(&format!("mnt/{mntns}/ctl")), format!("release {name}\n")).unwrap();
    assert_eq!(pin_state(&m).1, vec![]);
}

#[test]
fn every_error_has_its_errno_and_changes_nothing() {
    let m = Nsfuse::start(&["refresh_ms=100"]);
    let (mut p, net) = member_of_new("net");
    let (mut q, other) = member_of_new("net");
    let c = m.path(&format!("net/{net}/ctl"));
    write_ctl(&m.path(&format!("net/{other}/ctl")), "pin taken\n").unwrap();
    let before = pin_state(&m);
    let own_mnt = ino("/proc/self/ns/mnt");
    let cases: Vec<(PathBuf, String, i32)> = vec![
        (c.clone(), "frobnicate\n".into(), libc::EINVAL),
        (c.clone(), "\n".into(), libc::EINVAL),
        (c.clone(), "pin .\n".into(), libc::EINVAL),
        (c.clone(), "pin ..\n".into(), libc::EINVAL),
        (c.clone(), "pin a/b\n".into(), libc::EINVAL),
        (c.clone(), "pin ../x\n".into(), libc::EINVAL),
        (c.clone(), "pin a\tb\n".into(), libc::EINVAL),
        (c.clone(), format!("pin {}\n", "x".repeat(256)), libc::EINVAL),
        (c.clone(), "pin x\0y\n".into(), libc::EINVAL),
        (c.clone(), "release /\n".into(), libc::EINVAL),
        (c.clone(), "release /proc\n".into(), libc::EINVAL),
        (c.clone(), format!("release {}\n", pin_path(&m, "net", "taken").display()), libc::EINVAL),
        (c.clone(), "pin taken\n".into(), libc::EEXIST),
        (c.clone(), "release\n".into(), libc::ENOENT),
        (c.clone(), "release nothere\n".into(), libc::ENOENT),
        (m.path("ctl"), "pin net 1\n".into(), libc::ENOENT),
        (m.path("ctl"), "new bogus\n".into(), libc::EINVAL),
        (m.path("ctl"), "new net taken\n".into(), libc::EEXIST),
        (m.path(&format!("mnt/{own_mnt}/ctl")), "pin\n".into(), libc::EINVAL),
    ];
    for (path, cmd, want) in &cases {
        assert_eq!(write_ctl(path, cmd), Err(*want), "{cmd:?} on {}", path.display());
        assert_eq!(pin_state(&m), before, "{cmd:?} changed something");
        assert!(
            std::fs::read_to_string(path).unwrap().contains("failed"),
            "ctl tells the outcome of {cmd:?}"
        );
    }
    assert!(!m.pin_dir.join("mnt").join(own_mnt.to_string()).exists(), "refused mnt pin left a file");

    // Lines run in order: line 1 took effect, line 2 failed, line 3 did not run.
    assert_eq!(write_ctl(&c, "pin one\nbogus\npin three\n"), Err(libc::EINVAL));
    assert!(pin_path(&m, "net", "one").exists());
    assert!(!pin_path(&m, "net", "three").exists());
    write_ctl(&c, "release one\n").unwrap();
    write_ctl(&m.path(&format!("net/{other}/ctl")), "release taken\n").unwrap();
    // Already pinned there: success, nothing changes.
    write_ctl(&c, "pin twice\n").unwrap();
    let once = pin_state(&m);
    write_ctl(&c, "pin twice\n").unwrap();
    assert_eq!(pin_state(&m), once);
    write_ctl(&c, "release\n").unwrap();
    assert_eq!(pin_state(&m).1, vec![]);
    p.kill();
    q.kill();
}

#[test]
fn a_ctl_file_open_acts_only_on_its_namespace_gone_or_not_on_one_that_took_its_number() {
    // Gone while its ctl file is open: ENOENT. And the kernel gives a new
    // namespace the lowest free number at once: that ctl must not pin the
    // next one made either.
    let m = Nsfuse::start_alone(&["refresh_ms=100"]);
    let before = pin_state(&m);
    let (mut r, number) = member_of_new("uts");
    let mut f = std::fs::OpenOptions::new().write(true).open(m.path(&format!("uts/{number}/ctl"))).unwrap();
    r.kill();
    assert!(
        wait_for(5.0, || !m.names("uts").contains(&number.to_string())),
        "uts {number} outlived its process"
    );
    assert_eq!(f.write_all(b"pin\n").map_err(|e| e.raw_os_error()), Err(Some(libc::ENOENT)));
    assert_eq!(pin_state(&m), before);
    // The new one gets the lowest free number: keep those below it alive
    // until one takes `number`. One above it means `number` is not free yet
    // (the daemon may still hold the dead one open for a moment): let it go.
    let mut made = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let reused = loop {
        let (s, again) = member_of_new("uts");
        if again <= number {
            made.push(s);
            if again == number {
                break true;
            }
            continue;
        }
        drop(s);
        if std::time::Instant::now() > deadline {
            break false;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(reused, "the number {number} was never given again: nothing to check");
    assert!(wait_for(5.0, || m.names("uts").contains(&number.to_string())));
    assert_eq!(f.write_all(b"pin\n").map_err(|e| e.raw_os_error()), Err(Some(libc::ENOENT)));
    assert_eq!(pin_state(&m), before);
    // A ctl opened now acts on the new one.
    write_ctl(&m.path(&format!("uts/{number}/ctl")), "pin\n").expect("pin the new one");
    write_ctl(&m.path(&format!("uts/{number}/ctl")), "release\n").expect("release it");
    assert_eq!(pin_state(&m), before);
}

#[test]
fn non_root_writes_get_eacces() {
    let m = Nsfuse::start(&["allow_other", "refresh_ms=100"]);
    // A namespace of nobody's own, which nobody can see.
    let mut p = Proc::nobody_in_new("--net");
    let net = wait_unshared(p.pid(), "net");
    assert!(wait_for(5.0, || std::fs::metadata(format!("/proc/{}", p.pid()))
        .is_ok_and(|md| std::os::unix::fs::MetadataExt::uid(&md) == 65534)));
    let before = pin_state(&m);
    for path in [m.path("ctl"), m.path(&format!("net/{net}/ctl"))] {
        let out = std::process::Command::new("setpriv")
            .args(["--reuid", "65534", "--regid", "65534", "--clear-groups", "sh", "-c"])
            .arg(format!("echo pin > '{}'", path.display()))
            .output()
            .unwrap();
        assert!(!out.status.success());
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("Permission denied"),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert_eq!(pin_state(&m), before);
    p.kill();
}

#[test]
fn read_only_mount_refuses_writes() {
    let m = Nsfuse::start(&["ro"]);
    let net = ino("/proc/self/ns/net");
    for f in ["README", &format!("net/{net}/type"), &format!("net/{net}/holders")] {
        assert_eq!(write_ctl(&m.path(f), "pin\n"), Err(libc::EROFS), "{f}");
    }
    assert!(walkdir(&m.pin_dir).is_empty());
}
