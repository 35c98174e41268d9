//! Helpers shared by the integration tests: guards that end what a test
//! started (processes by PID, mounts by path, temporary directories) even
//! when the test fails, and small kernel queries to check answers against.
#![allow(dead_code)]

mod numbers;

pub use numbers::Claim;

use nsfuse::discovery::{scan, ScanOptions, Tracker};
use nsfuse::model::Snapshot;
use std::fmt::Debug;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// The command prefix that runs the rest as nobody (uid and gid 65534).
pub const AS_NOBODY: [&str; 6] = ["setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups"];

/// A child process, killed (by PID) and reaped on drop.
pub struct Proc(pub Child);

impl Proc {
    /// Start `sh -c script` in the background.
    pub fn sh(script: &str) -> Proc {
        let child = Command::new("sh").arg("-c").arg(script).stdin(Stdio::null()).spawn().expect("spawn sh");
        Proc(child)
    }

    /// Start a command (exec'd in place, so its PID is the member's).
    pub fn cmd(args: &[&str]) -> Proc {
        let child = Command::new(args[0]).args(&args[1..]).stdin(Stdio::null()).spawn().expect("spawn");
        Proc(child)
    }

    pub fn pid(&self) -> i32 {
        self.0.id() as i32
    }

    /// `sleep` running as nobody (uid 65534) in a new namespace (`--net`,
    /// `--uts`, ...); returns once it runs as nobody.
    pub fn nobody_in_new(flag: &str) -> Proc {
        let args: Vec<&str> =
            ["unshare", flag].into_iter().chain(AS_NOBODY).chain(["sleep", "1000"]).collect();
        let p = Proc::cmd(&args);
        let pid = p.pid();
        assert!(wait_for(5.0, || std::fs::read_to_string(format!("/proc/{pid}/comm"))
            .is_ok_and(|c| c.trim() == "sleep")
            && std::fs::metadata(format!("/proc/{pid}"))
                .is_ok_and(|m| std::os::unix::fs::MetadataExt::uid(&m) == 65534)));
        p
    }

    /// Kill it now and wait for it.
    pub fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A mount (or pin) unmounted on drop, lazily if busy; its file removed.
pub struct MountGuard {
    pub path: PathBuf,
    pub remove: bool,
}

impl MountGuard {
    pub fn new(path: impl Into<PathBuf>) -> MountGuard {
        MountGuard { path: path.into(), remove: true }
    }
}

impl Drop for MountGuard {
    fn drop(&mut self) {
        // Unmount every layer stacked there (with the syscall: spawning
        // umount(8) can fail when the machine is out of processes).
        while is_mounted(&self.path) {
            if detach(&self.path).is_err() {
                break;
            }
        }
        if self.remove {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Lazily unmount `path` (umount -l), by syscall.
pub fn detach(path: &Path) -> std::io::Result<()> {
    nsfuse::sys::umount2(path, libc::MNT_DETACH)
}

/// A fresh directory under /tmp, removed (after unmounting anything left
/// below it) on drop. The name holds the test's pid and a counter.
pub struct TempDir(pub PathBuf);

static COUNTER: AtomicUsize = AtomicUsize::new(0);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let p = PathBuf::from(format!("/tmp/nsfuse-test-{}-{}-{}", tag, std::process::id(), n));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).expect("mkdir temp");
        TempDir(p)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    pub fn join(&self, p: &str) -> PathBuf {
        self.0.join(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        for m in mounts_below(&self.0) {
            let _ = detach(&m);
        }
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Mount points at or below `dir` in our mount namespace, deepest first.
pub fn mounts_below(dir: &Path) -> Vec<PathBuf> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut v: Vec<PathBuf> = text
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(mount_point)
        .filter(|m| m.starts_with(dir))
        .collect();
    v.sort_by_key(|p| std::cmp::Reverse(p.as_os_str().len()));
    v
}

/// A mountinfo mount point field as a path (octal escapes undone).
fn mount_point(field: &str) -> PathBuf {
    use std::os::unix::ffi::OsStringExt;
    PathBuf::from(std::ffi::OsString::from_vec(nsfuse::discovery::parse::unescape_octal(field.as_bytes())))
}

pub fn is_mounted(path: &Path) -> bool {
    let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    text.lines().filter_map(|l| l.split(' ').nth(4)).any(|m| mount_point(m) == path)
}

/// Run a command; true if it exited 0.
/// `umount PATH` (not lazy), tried again while it fails for a few seconds:
/// a processless namespace's pin is briefly open (so busy) whenever a scan
/// (another test's, a daemon's) reads it.
pub fn umount_when_free(path: &str) {
    assert!(wait_for(5.0, || run_ok(&["umount", path])), "umount {path} kept failing");
}

pub fn run_ok(args: &[&str]) -> bool {
    Command::new(args[0])
        .args(&args[1..])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// One write(2) of `data` to a ctl file, as `echo` does it: the errno on failure.
pub fn write_ctl(path: &Path, data: impl AsRef<[u8]>) -> Result<(), i32> {
    use std::io::Write;
    let mut f =
        std::fs::OpenOptions::new().write(true).open(path).map_err(|e| e.raw_os_error().unwrap_or(-1))?;
    f.write_all(data.as_ref()).map_err(|e| e.raw_os_error().unwrap_or(-1))
}

/// Run a command, panicking with its stderr if it fails; returns stdout.
pub fn run(args: &[&str]) -> String {
    let out = Command::new(args[0]).args(&args[1..]).output().expect("spawn");
    assert!(out.status.success(), "{args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `lsns --json -o COLUMNS`. lsns itself fails now and then when a process
/// vanishes under it (other tests churn alongside): three tries.
pub fn lsns_json(columns: &str) -> serde_json::Value {
    let out = (0..3)
        .find_map(|_| {
            let o = Command::new("lsns").args(["--json", "-o", columns]).output().ok()?;
            o.status.success().then(|| String::from_utf8_lossy(&o.stdout).into_owned())
        })
        .expect("lsns failed three times");
    serde_json::from_str(&out).expect("lsns json")
}

/// The inode of an nsfs file (what `stat -L -c %i` prints).
pub fn ino(path: impl AsRef<Path>) -> u64 {
    std::fs::metadata(path.as_ref()).unwrap_or_else(|e| panic!("stat {}: {e}", path.as_ref().display())).ino()
}

/// The namespace (inode, 64-bit id) behind an nsfs path.
pub fn ns_ident(path: impl AsRef<Path>) -> (u64, u64) {
    let f = std::fs::File::open(path.as_ref()).expect("open ns");
    let id = nsfuse::sys::ns_get_id(std::os::fd::AsFd::as_fd(&f)).expect("NS_GET_ID");
    (ino(path), id)
}

/// Wait until `f` is true (polling), at most `secs`.
pub fn wait_for(secs: f64, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs_f64(secs);
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    f()
}

/// Wait until /proc/PID/ns/TYPE of `pid` differs from ours (the unshare took effect).
pub fn wait_unshared(pid: i32, ty: &str) -> u64 {
    let ours = ino(format!("/proc/self/ns/{ty}"));
    assert!(
        wait_for(5.0, || std::fs::metadata(format!("/proc/{pid}/ns/{ty}")).is_ok_and(|m| m.ino() != ours)),
        "process {pid} never entered a new {ty} namespace"
    );
    ino(format!("/proc/{pid}/ns/{ty}"))
}

/// Path of the built nsfuse binary.
pub fn nsfuse_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_nsfuse"))
}

/// A process this test started indirectly, killed by PID on drop.
pub struct PidGuard(pub i32);

impl Drop for PidGuard {
    fn drop(&mut self) {
        let _ = nsfuse::sys::kill(nsfuse::model::Pid(self.0), libc::SIGKILL);
    }
}

/// A mounted nsfuse on a fresh temporary directory, with its own pin and
/// netns directories unless told otherwise. On drop: unmount, end the
/// daemon (found by PID through its command line), remove everything.
pub struct Nsfuse {
    pub dir: TempDir,
    pub mnt: PathBuf,
    pub pin_dir: PathBuf,
    pub netns_dir: PathBuf,
    /// Last: given back once the mount and its pins are gone.
    _numbers: Claim,
}

impl Nsfuse {
    /// Mount in the background (the default mode) with extra `-o` options.
    pub fn start(opts: &[&str]) -> Nsfuse {
        let dir = TempDir::new("mnt");
        Self::start_in(dir, opts)
    }

    /// The same, for a test that checks a namespace's number is gone: no
    /// other test of the binary has a mount up (makes namespaces) meanwhile.
    pub fn start_alone(opts: &[&str]) -> Nsfuse {
        Self::start_claiming(TempDir::new("mnt"), opts, &[], Claim::alone())
    }

    pub fn start_in(dir: TempDir, opts: &[&str]) -> Nsfuse {
        Self::start_in_env(dir, opts, &[])
    }

    /// The same, with extra environment variables for the daemon.
    pub fn start_in_env(dir: TempDir, opts: &[&str], env: &[(&str, &str)]) -> Nsfuse {
        Self::start_claiming(dir, opts, env, Claim::shared())
    }

    fn start_claiming(dir: TempDir, opts: &[&str], env: &[(&str, &str)], numbers: Claim) -> Nsfuse {
        let mnt = dir.join("mnt");
        std::fs::create_dir_all(&mnt).unwrap();
        let pin_dir = dir.join("pins");
        let netns_dir = if opts.iter().any(|o| o.starts_with("netns_dir=")) {
            PathBuf::from(opts.iter().find_map(|o| o.strip_prefix("netns_dir=")).unwrap())
        } else {
            dir.join("netns")
        };
        let mut all = vec![format!("pin_dir={}", pin_dir.display())];
        if !opts.iter().any(|o| o.starts_with("netns_dir=")) {
            all.push(format!("netns_dir={}", netns_dir.display()));
        }
        all.extend(opts.iter().map(|s| s.to_string()));
        let out = Command::new(nsfuse_bin())
            .arg(&mnt)
            .arg("-o")
            .arg(all.join(","))
            .envs(env.iter().copied())
            .output()
            .expect("run nsfuse");
        assert!(out.status.success(), "nsfuse failed to mount: {}", String::from_utf8_lossy(&out.stderr));
        Nsfuse { dir, mnt, pin_dir, netns_dir, _numbers: numbers }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.mnt.join(rel)
    }

    /// The names a listing of `rel` gives now.
    pub fn names(&self, rel: &str) -> Vec<String> {
        std::fs::read_dir(self.path(rel))
            .unwrap_or_else(|e| panic!("list {rel}: {e}"))
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into())
            .collect()
    }

    pub fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.path(rel)).unwrap_or_else(|e| panic!("read {rel}: {e}"))
    }

    /// PIDs of nsfuse daemons serving this mount point.
    pub fn daemon_pids(&self) -> Vec<i32> {
        daemons_of(&self.mnt)
    }
}

/// The value of one series (`name{labels}`) in a Prometheus text.
pub fn metric_value(text: &str, series: &str) -> Option<u64> {
    text.lines().find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

/// nsfuse processes whose command line names `mnt`.
pub fn daemons_of(mnt: &Path) -> Vec<i32> {
    let want = mnt.to_string_lossy().to_string();
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| {
                let args: Vec<String> =
                    c.split(|&b| b == 0).map(|a| String::from_utf8_lossy(a).into_owned()).collect();
                args.first().is_some_and(|a| a.ends_with("nsfuse")) && args.contains(&want)
            }) && std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| !s.contains(") Z "))
        })
        .collect()
}

impl Drop for Nsfuse {
    fn drop(&mut self) {
        let pids = self.daemon_pids();
        let _ = detach(&self.mnt);
        let gone = wait_for(5.0, || daemons_of(&self.mnt).is_empty());
        if !gone {
            for p in pids {
                let _ = nsfuse::sys::kill(nsfuse::model::Pid(p), libc::SIGKILL);
            }
        }
        // TempDir's drop unmounts the pin directories and removes it all.
    }
}

impl PidGuard {
    /// Kill it now and wait until it is gone (reaped by whoever its parent is).
    pub fn end(self) {
        let pid = self.0;
        drop(self);
        wait_for(5.0, || {
            !std::path::Path::new(&format!("/proc/{pid}")).exists()
                || std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| s.contains(") Z "))
        });
    }
}

/// A tracker that took its first (full) look when the test began.
pub struct Scans(pub Tracker);

impl Scans {
    pub fn start() -> Scans {
        Scans::start_with(Tracker::new(ScanOptions::default()))
    }

    /// The same with a tracker that may keep no stamp file open (every
    /// stamp read by path, as beyond a low open-file limit).
    pub fn start_without_stamp_files() -> Scans {
        Scans::start_with(Tracker::with_stamp_files(ScanOptions::default(), 0))
    }

    fn start_with(mut t: Tracker) -> Scans {
        t.full().expect("first pass");
        Scans(t)
    }

    /// Run `check` on an incremental refresh and on a full scan taken just
    /// after; both must give the same answer, which is returned.
    pub fn both<R: PartialEq + Debug>(&mut self, check: impl Fn(&Snapshot) -> R) -> R {
        let incremental = check(&self.0.refresh().expect("refresh"));
        let full = check(&scan(&ScanOptions::default()).expect("scan"));
        assert_eq!(incremental, full, "an incremental refresh and a full scan disagree");
        full
    }

    /// Refresh until `pid` is remembered, not read (its stamps are still),
    /// so the next refresh must notice a change through them.
    pub fn settle(&mut self, pid: i32) {
        let settled = (0..50).any(|_| {
            std::thread::sleep(Duration::from_millis(20));
            self.0.refresh().expect("refresh");
            !self.0.last_read().contains(&nsfuse::model::Pid(pid))
        });
        assert!(settled, "process {pid} was read on every refresh");
    }
}
