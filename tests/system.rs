//! nsfuse as part of the system: the install script, mount(8) with both
//! helper paths, an fstab line, the systemd unit's commands, the CLI's
//! documented options, and a real file manager (Midnight Commander in tmux).

mod common;

use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

/// Installing touches fixed system paths: one test at a time.
static SYSTEM: Mutex<()> = Mutex::new(());

/// Files the real-system install writes, saved and put back on drop.
struct Backup(Vec<(PathBuf, Option<Vec<u8>>)>);

impl Backup {
    fn of(paths: &[&str]) -> Backup {
        Backup(paths.iter().map(|p| (PathBuf::from(p), std::fs::read(p).ok())).collect())
    }
}

impl Drop for Backup {
    fn drop(&mut self) {
        for (p, old) in &self.0 {
            match old {
                Some(bytes) => {
                    let _ = std::fs::write(p, bytes);
                }
                None => {
                    let _ = std::fs::remove_file(p);
                }
            }
        }
    }
}

fn opts(dir: &TempDir) -> String {
    format!("pin_dir={},netns_dir={}", dir.join("pins").display(), dir.join("netns").display())
}

fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts").join(name)
}

/// Mount with `args`, check the tree answers and is fuse.nsfuse, unmount.
fn mount_read_umount(args: &[&str], mnt: &Path) {
    let out = Command::new(args[0]).args(&args[1..]).output().unwrap();
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    let guard = MountGuard { path: mnt.to_path_buf(), remove: false };
    assert!(std::fs::read_to_string(mnt.join("README")).unwrap().contains("nsfuse"));
    let fstype = run(&["findmnt", "-n", "-o", "FSTYPE", mnt.to_str().unwrap()]);
    assert_eq!(fstype.trim(), "fuse.nsfuse");
    run(&["umount", mnt.to_str().unwrap()]);
    assert!(wait_for(5.0, || daemons_of(mnt).is_empty() && !is_mounted(mnt)));
    drop(guard);
}

#[test]
fn install_mount_fstab_uninstall() {
    let _one = SYSTEM.lock().unwrap_or_else(|e| e.into_inner());
    let _restore =
        Backup::of(&["/usr/local/sbin/nsfuse", "/usr/local/share/man/man8/nsfuse.8", "/sbin/mount.nsfuse"]);
    let out = Command::new(script("install.sh")).env("NSFUSE_BIN", nsfuse_bin()).output().unwrap();
    assert!(out.status.success(), "install: {}", String::from_utf8_lossy(&out.stderr));
    assert!(Path::new("/usr/local/sbin/nsfuse").exists() && Path::new("/sbin/mount.nsfuse").exists());
    assert!(run(&["man", "-w", "nsfuse"]).contains("nsfuse.8"));

    let dir = TempDir::new("install");
    let mnt = dir.join("mnt");
    std::fs::create_dir(&mnt).unwrap();
    let o = opts(&dir);
    let m = mnt.to_str().unwrap();
    // mount -t nsfuse, through /sbin/mount.nsfuse.
    mount_read_umount(&["mount", "-t", "nsfuse", "none", m, "-o", &o], &mnt);
    // mount -t fuse.nsfuse, through mount.fuse3 (package fuse3).
    if Path::new("/sbin/mount.fuse3").exists() || Path::new("/usr/sbin/mount.fuse3").exists() {
        mount_read_umount(&["mount", "-t", "fuse.nsfuse", "nsfuse", m, "-o", &o], &mnt);
    }
    // An fstab line and mount -a (a private fstab, not the system's).
    let fstab = dir.join("fstab");
    std::fs::write(&fstab, format!("none {m} nsfuse {o} 0 0\n")).unwrap();
    mount_read_umount(&["mount", "-a", "-T", fstab.to_str().unwrap()], &mnt);

    let out = Command::new(script("uninstall.sh")).output().unwrap();
    assert!(out.status.success());
    assert!(!Path::new("/usr/local/sbin/nsfuse").exists() && !Path::new("/sbin/mount.nsfuse").exists());
}

#[test]
fn systemd_unit_commands_start_and_stop_the_tree() {
    let unit = std::fs::read_to_string(script("nsfuse.service")).unwrap();
    let line = |key: &str| {
        unit.lines()
            .find_map(|l| l.strip_prefix(&format!("{key}=")))
            .unwrap_or_else(|| panic!("no {key}"))
            .to_owned()
    };
    assert!(unit.contains("[Install]") && unit.contains("WantedBy=multi-user.target"));
    let dir = TempDir::new("unit");
    let tree = dir.join("tree");
    // The unit's own lines, with the test's binary and a private mount point.
    let fix = |l: String| {
        l.replace("/usr/local/sbin/nsfuse", nsfuse_bin().to_str().unwrap())
            .replace("/run/nsfuse-tree", tree.to_str().unwrap())
    };
    run(&["sh", "-c", &fix(line("ExecStartPre"))]);
    assert!(tree.is_dir());
    let start = format!("{} -o {}", fix(line("ExecStart")), opts(&dir));
    assert!(start.contains(" -f"), "the service runs in the foreground: {start}");
    let mut service = Proc(
        Command::new("sh")
            .args(["-c", &format!("exec {start}")])
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    assert!(wait_for(10.0, || tree.join("README").exists()), "ExecStart did not mount");
    run(&["sh", "-c", &fix(line("ExecStop"))]);
    let status = service.0.wait().unwrap();
    assert!(status.success(), "the daemon exits 0 after ExecStop: {status:?}");
    assert!(!is_mounted(&tree));
}

#[test]
fn every_documented_option_is_accepted_and_others_refused() {
    let help = run(&[nsfuse_bin().to_str().unwrap(), "--help"]);
    for o in [
        "allow_other",
        "ro",
        "pin_dir=",
        "netns_dir=",
        "refresh_ms=",
        "events_max=",
        "fsname=",
        "debug",
        "--foreground",
        "scan",
    ] {
        assert!(help.contains(o), "--help does not mention {o}");
    }
    assert!(run(&[nsfuse_bin().to_str().unwrap(), "--version"]).starts_with("nsfuse "));
    assert!(run(&[nsfuse_bin().to_str().unwrap(), "-V"]).starts_with("nsfuse "));
    for extra in ["allow_other", "ro", "refresh_ms=250", "events_max=5", "fsname=nsfuse-x", "debug"] {
        let dir = TempDir::new("opt");
        let m = Nsfuse::start_in(dir, &[extra]);
        assert!(m.path("README").exists(), "{extra}");
        if extra.starts_with("fsname=") {
            assert_eq!(run(&["findmnt", "-n", "-o", "SOURCE", m.mnt.to_str().unwrap()]).trim(), "nsfuse-x");
        }
    }
    let dir = TempDir::new("badopt");
    let mnt = dir.join("mnt");
    std::fs::create_dir(&mnt).unwrap();
    for bad in [
        vec!["-o", "allow_root"],
        vec!["-o", "refresh_ms=x"],
        vec!["-o", "events_max=0"],
        vec!["--nonsense"],
        vec!["-z"],
    ] {
        let out = Command::new(nsfuse_bin()).arg(&mnt).args(&bad).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{bad:?}");
        assert!(!is_mounted(&mnt));
    }
}

#[test]
fn midnight_commander_shows_namespaces_and_their_files() {
    if Command::new("mc").arg("--version").output().is_err()
        || Command::new("tmux").arg("-V").output().is_err()
    {
        panic!("mc and tmux are needed (.ci/run installs them)");
    }
    let m = Nsfuse::start(&["refresh_ms=100"]);
    let mut p = Proc::cmd(&["unshare", "--net", "sleep", "1000"]);
    let net = wait_unshared(p.pid(), "net");
    // Listings may be refresh_ms old: let one interval pass.
    std::thread::sleep(std::time::Duration::from_millis(200));
    let session = format!("nsfuse-mc-{}", std::process::id());
    let home = TempDir::new("mchome");
    struct Tmux(String);
    impl Drop for Tmux {
        fn drop(&mut self) {
            let _ = Command::new("tmux").args(["kill-session", "-t", &self.0]).status();
        }
    }
    let cmd = format!(
        "HOME={} TERM=xterm mc -u --nocolor '{}' '{}'",
        home.path().display(),
        m.path("net").display(),
        m.path("net").display()
    );
    run(&["tmux", "new-session", "-d", "-s", &session, "-x", "200", "-y", "50", &cmd]);
    let _t = Tmux(session.clone());
    let screen = || run(&["tmux", "capture-pane", "-p", "-t", &session]);
    assert!(wait_for(10.0, || screen().contains("/..")), "mc never listed the directory:\n{}", screen());
    // Type the namespace's name to jump to it (mc's quick search; on a busy
    // host it may be below the first screenful), then enter it.
    run(&["tmux", "send-keys", "-t", &session, "C-s"]);
    run(&["tmux", "send-keys", "-t", &session, "-l", &net.to_string()]);
    run(&["tmux", "send-keys", "-t", &session, "Enter"]);
    let inside = format!("net/{net}");
    assert!(
        wait_for(10.0, || {
            let s = screen();
            s.contains(&inside)
                && s.contains("holders")
                && s.contains("processes")
                && s.contains("interfaces")
        }),
        "finding {net} and entering it did not show its files:\n{}",
        screen()
    );
    run(&["tmux", "send-keys", "-t", &session, "F10"]);
    p.kill();
}
