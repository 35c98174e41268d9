//! The mount's life: checks (root, mount point, stale mounts), going to the
//! background only once the tree answers, serving on several threads,
//! refreshing, and unmounting cleanly on SIGINT/SIGTERM or `umount`.

use crate::cli::args::MountConfig;
use crate::control::Controller;
use crate::discovery::ScanOptions;
use crate::fs::{fuse::FuseAdapter, FsConfig, NsFs};
use crate::model::PinDirs;
use crate::sys;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Why the daemon could not mount or serve. Each says what failed, where,
/// and the kernel's reason; the message goes to stderr (or, from the
/// background, through the readiness pipe to the parent) as one line.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{} is already served by nsfuse ({who}): unmount it first", .mountpoint.display())]
    AlreadyServed { mountpoint: PathBuf, who: String },
    #[error("{}: cannot clear the stale mount: {source}", .mountpoint.display())]
    StaleMount { mountpoint: PathBuf, source: io::Error },
    #[error("mount point {}: {source} (create it with mkdir -p)", .mountpoint.display())]
    MountPoint { mountpoint: PathBuf, source: io::Error },
    #[error("mount point {} is not a directory", .mountpoint.display())]
    NotADirectory { mountpoint: PathBuf },
    #[error("cannot block signals: {0}")]
    Signals(#[source] io::Error),
    #[error("cannot prepare {} and {}: {source}", .pin_dir.display(), .netns_dir.display())]
    PinDirs { pin_dir: PathBuf, netns_dir: PathBuf, source: io::Error },
    #[error("first scan failed: {0}")]
    FirstScan(#[from] crate::discovery::Error),
    #[error("cannot mount on {}: {source}", .mountpoint.display())]
    Mount { mountpoint: PathBuf, source: io::Error },
    #[error("cannot start the FUSE session on {}: {source}", .mountpoint.display())]
    Session { mountpoint: PathBuf, source: io::Error },
    #[error("cannot start serving: {0}")]
    Serving(#[source] io::Error),
    #[error("mounted, but {} does not answer: {source}", .mountpoint.display())]
    NotAnswering { mountpoint: PathBuf, source: io::Error },
}

/// Mount and serve; returns the exit code.
pub fn run(mut cfg: MountConfig) -> i32 {
    if sys::geteuid() != 0 {
        eprintln!("nsfuse: needs root (CAP_SYS_ADMIN) to mount and to pin: run it with sudo");
        return 1;
    }
    // The daemon works from `/`: a relative mount point is made absolute
    // against the caller's directory first (without resolving symlinks or
    // touching it: a stale mount there does not answer).
    match std::path::absolute(&cfg.mountpoint) {
        Ok(mp) => cfg.mountpoint = mp,
        Err(e) => {
            eprintln!("nsfuse: mount point {}: {e}", cfg.mountpoint.display());
            return 1;
        }
    }
    if let Err(msg) = check_mountpoint(&cfg.mountpoint) {
        eprintln!("nsfuse: {msg}");
        return 1;
    }
    if cfg.foreground {
        return exit_code(serve(&cfg, None));
    }
    // Background: the child mounts and says "ok" (or why not) on a pipe;
    // the parent returns only then, so `nsfuse X && ls X` never races.
    let (rx, tx) = match sys::pipe() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("nsfuse: cannot make a pipe: {e}");
            return 1;
        }
    };
    // SAFETY: no thread has been started yet (the serving threads, the
    // refresher and the logger's are all made by `serve`, in the child).
    match unsafe { sys::fork() } {
        Ok(0) => {
            drop(rx);
            let _ = sys::setsid();
            let _ = std::env::set_current_dir("/");
            exit_code(serve(&cfg, Some(tx)))
        }
        Ok(_) => {
            drop(tx);
            wait_for_the_child(rx)
        }
        Err(e) => {
            eprintln!("nsfuse: cannot fork: {e}");
            1
        }
    }
}

/// The exit code of a daemon that served until unmounted (its error logged).
fn exit_code(served: Result<(), Error>) -> i32 {
    match served {
        Ok(()) => 0,
        Err(msg) => {
            log::error!("{msg}");
            1
        }
    }
}

/// The parent's exit code: 0 once the child said "ok", else 1 and why.
fn wait_for_the_child(rx: OwnedFd) -> i32 {
    let mut answer = String::new();
    let _ = std::fs::File::from(rx).read_to_string(&mut answer);
    if answer == "ok" {
        return 0;
    }
    let why = if answer.is_empty() { "the daemon died while mounting".to_owned() } else { answer };
    eprintln!("nsfuse: {why}");
    1
}

/// The mount point must be a directory, not a live nsfuse mount (a second
/// daemon would stack on the first); a stale mount of a dead daemon
/// (ENOTCONN) is cleared first.
fn check_mountpoint(mp: &Path) -> Result<(), Error> {
    let mountpoint = mp.to_path_buf();
    if let Some(pid) = live_nsfuse_at(mp) {
        let who = pid.map_or_else(|| "a daemon that does not answer".to_owned(), |p| format!("PID {p}"));
        return Err(Error::AlreadyServed { mountpoint, who });
    }
    match std::fs::metadata(mp) {
        Err(e) if e.raw_os_error() == Some(libc::ENOTCONN) => {
            sys::umount2(mp, libc::MNT_DETACH).map_err(|source| Error::StaleMount { mountpoint, source })?;
            log::info!("cleared a stale mount at {}", mp.display());
            check_mountpoint(mp)
        }
        Err(source) => Err(Error::MountPoint { mountpoint, source }),
        Ok(m) if !m.is_dir() => Err(Error::NotADirectory { mountpoint }),
        Ok(_) => Ok(()),
    }
}

/// If a live nsfuse serves `mp`: Some(its PID, read from the tree's README,
/// or None if it does not answer within a second).
fn live_nsfuse_at(mp: &Path) -> Option<Option<i32>> {
    use std::os::unix::ffi::OsStrExt;
    let canonical = std::fs::canonicalize(mp).ok()?;
    let table = std::fs::read("/proc/self/mountinfo").ok()?;
    let fstype = crate::discovery::parse::mountinfo_fstype_at(&table, canonical.as_os_str().as_bytes())?;
    if fstype != "fuse.nsfuse" {
        return None;
    }
    let readme = canonical.join("README");
    let key = format!("path {}", crate::render::escape_path(&readme));
    let text = crate::bounded::one("asking the mounted tree", key, crate::bounded::STALL, move || {
        std::fs::read_to_string(readme)
    });
    match text {
        // A dead daemon's mount (ENOTCONN) is stale, not live.
        Some(Err(e)) if e.raw_os_error() == Some(libc::ENOTCONN) => None,
        Some(Ok(text)) => Some(text.lines().find_map(|l| {
            l.strip_prefix(crate::fs::tree::SERVED_BY)?.trim().trim_end_matches('.').parse().ok()
        })),
        _ => Some(None),
    }
}

fn say(ready: &mut Option<OwnedFd>, msg: &str) {
    if let Some(fd) = ready.take() {
        let _ = std::fs::File::from(fd).write_all(msg.as_bytes());
    }
}

/// Mount /dev/fuse at the mount point as type `fuse.nsfuse` (so findmnt,
/// fstab and `umount -t` see the subtype) and return the device descriptor.
fn mount_fuse(cfg: &MountConfig) -> std::io::Result<OwnedFd> {
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::MetadataExt;
    let dev = sys::open_path(Path::new("/dev/fuse"), libc::O_RDWR)?;
    let root_mode = std::fs::metadata(&cfg.mountpoint)?.mode() & libc::S_IFMT;
    let mut data = format!("fd={},rootmode={root_mode:o},user_id=0,group_id=0", dev.as_raw_fd());
    if cfg.allow_other {
        data.push_str(",allow_other");
    }
    let mut flags = libc::MS_NOSUID | libc::MS_NODEV;
    if cfg.read_only {
        flags |= libc::MS_RDONLY;
    }
    let source = Path::new(&cfg.fsname);
    sys::mount(Some(source), &cfg.mountpoint, Some("fuse.nsfuse"), flags, Some(&data))?;
    Ok(dev)
}

/// How long the kernel may cache a directory entry (gone ones are
/// invalidated at each refresh).
const DIR_TTL: Duration = Duration::from_secs(10);

/// A thread that tells the kernel to forget the directory entries each
/// refresh found gone (its own thread: the kernel may make a notification
/// wait for a request in the same directory, which may wait for a refresh).
fn start_forgetting(fs: &Arc<NsFs>, notifier: fuser::Notifier) {
    let (tx, rx) = std::sync::mpsc::channel::<crate::fs::Stale>();
    // Ended by the channel closing (the filesystem dropped).
    let spawned = std::thread::Builder::new().name("forget".into()).spawn(move || {
        // ENOENT: the kernel had nothing cached there.
        for stale in rx {
            match stale {
                crate::fs::Stale::Entries(gone) => {
                    for (parent, name) in gone {
                        let _ = notifier.inval_entry(fuser::INodeNo(parent.0), std::ffi::OsStr::new(&name));
                    }
                }
                crate::fs::Stale::Listings(dirs) => {
                    for dir in dirs {
                        let _ = notifier.inval_inode(fuser::INodeNo(dir.0), 0, 0);
                    }
                }
            }
        }
    });
    match spawned {
        Ok(_) => fs.forget_stale_through(tx),
        Err(e) => {
            log::warn!("cannot start the invalidation thread ({e}): directories are cached only briefly")
        }
    }
}

/// How long the daemon may take to end once unmounted, whatever its
/// threads are waiting for (SPEC section 7: within 2 s).
const EXIT_GRACE: Duration = Duration::from_millis(1500);

/// Wait until the FUSE connection ends (the kernel reports an error on
/// the device once unmounted or aborted), then give the orderly shutdown
/// `EXIT_GRACE` and end the process.
fn exit_soon_after_unmount(fuse: OwnedFd, mp: &Path) {
    let mounts = sys::openat(None, c"/proc/self/mountinfo", libc::O_RDONLY).ok();
    if sys::wait_for_hangup(fuse.as_fd(), mounts.as_ref().map(|m| m.as_fd())).is_err() {
        return;
    }
    std::thread::sleep(EXIT_GRACE);
    log::warn!("unmounted {}; ending without waiting for busy threads", mp.display());
    std::process::exit(0);
}

/// The signals the daemon handles on its own thread (blocked everywhere else).
const SIGNALS: [libc::c_int; 3] = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP];

/// Prepare, mount, tell the parent, serve until unmounted or signalled.
fn serve(cfg: &MountConfig, mut ready: Option<OwnedFd>) -> Result<(), Error> {
    let (fs, background, watch_fd) = match mount_and_answer(cfg) {
        Ok(m) => m,
        Err(e) => {
            say(&mut ready, &e.to_string());
            return Err(e);
        }
    };
    log::info!("mounted at {}", cfg.mountpoint.display());
    if ready.is_some() {
        say(&mut ready, "ok");
        let _ = sys::stdio_to_devnull();
    }
    let stop = Arc::new(AtomicBool::new(false));
    let refresher = {
        let (fs, stop) = (fs.clone(), stop.clone());
        std::thread::Builder::new().name("refresh".into()).spawn(move || fs.refresh_loop(&stop))
    };
    start_signal_thread(&fs, &cfg.mountpoint);
    if let Some(fd) = watch_fd {
        let mp = cfg.mountpoint.clone();
        let _ =
            std::thread::Builder::new().name("watch".into()).spawn(move || exit_soon_after_unmount(fd, &mp));
    }
    // Returns when the mount goes away (umount, or a signal).
    let _ = background.join();
    stop.store(true, Ordering::Relaxed);
    if let Ok(r) = refresher {
        // A refresh stuck on another user's process is not waited for.
        let deadline = std::time::Instant::now() + EXIT_GRACE;
        while !r.is_finished() && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    log::info!("unmounted {}", cfg.mountpoint.display());
    Ok(())
}

/// Everything up to a mounted tree that answers: signals blocked, pin
/// directories prepared, the first scan, the mount, the FUSE session on
/// its threads. Returns the filesystem, the session, and a second handle
/// on the FUSE connection (to see it end while every serving thread is busy).
fn mount_and_answer(
    cfg: &MountConfig,
) -> Result<(Arc<NsFs>, fuser::BackgroundSession, Option<OwnedFd>), Error> {
    let mountpoint = || cfg.mountpoint.clone();
    sys::tune_allocator_for_daemon();
    // Before any thread starts, so every thread inherits the mask.
    sys::block_signals(&SIGNALS).map_err(Error::Signals)?;
    let _ = sys::set_child_subreaper();
    let dirs = PinDirs { pin_dir: cfg.pin_dir.clone(), netns_dir: cfg.netns_dir.clone() };
    let control = Controller::new(dirs.clone(), cfg.mountpoint.clone());
    if !cfg.read_only {
        control.prepare().map_err(|source| Error::PinDirs {
            pin_dir: cfg.pin_dir.clone(),
            netns_dir: cfg.netns_dir.clone(),
            source,
        })?;
    }
    let fs_cfg = FsConfig {
        read_only: cfg.read_only,
        refresh: Duration::from_millis(cfg.refresh_ms),
        dir_ttl: if cfg.allow_other { Duration::ZERO } else { DIR_TTL },
        scan: ScanOptions { dirs, skip_own_fds: true, ..Default::default() },
        events_max: cfg.events_max,
    };
    let fs = Arc::new(NsFs::new(fs_cfg, control)?);
    let fuse_fd = mount_fuse(cfg).map_err(|source| Error::Mount { mountpoint: mountpoint(), source })?;
    let acl = if cfg.allow_other { fuser::SessionACL::All } else { fuser::SessionACL::Owner };
    let mut fuse_cfg = fuser::Config::default();
    fuse_cfg.acl = acl;
    fuse_cfg.n_threads = Some(std::thread::available_parallelism().map_or(2, |n| n.get()).clamp(2, 4));
    let watch_fd = fuse_fd.try_clone().ok();
    let session =
        fuser::Session::from_fd(FuseAdapter(fs.clone()), fuse_fd, acl, fuse_cfg).map_err(|source| {
            let _ = sys::umount2(&cfg.mountpoint, libc::MNT_DETACH);
            Error::Session { mountpoint: mountpoint(), source }
        })?;
    let background = session.spawn().map_err(Error::Serving)?;
    start_forgetting(&fs, background.notifier());
    // Answering: a stat of the root goes through our own threads.
    std::fs::metadata(&cfg.mountpoint)
        .map_err(|source| Error::NotAnswering { mountpoint: mountpoint(), source })?;
    Ok((fs, background, watch_fd))
}

/// SIGHUP rescans in full; SIGINT and SIGTERM unmount (which ends `serve`).
fn start_signal_thread(fs: &Arc<NsFs>, mountpoint: &Path) {
    let (fs, mp) = (fs.clone(), mountpoint.to_path_buf());
    let _ = std::thread::Builder::new().name("signals".into()).spawn(move || loop {
        match sys::sigwait(&SIGNALS) {
            Ok(libc::SIGHUP) => {
                log::info!("SIGHUP: rescanning");
                fs.rescan_full();
            }
            Ok(sig) => {
                log::info!("signal {sig}: unmounting {}", mp.display());
                let _ = sys::umount2(&mp, libc::MNT_DETACH);
                return;
            }
            Err(_) => return,
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_mount_point_is_named_with_its_reason_on_one_line() {
        let dir = std::env::temp_dir().join(format!("nsfuse-unit-mp-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let file = dir.join("file");
        std::fs::write(&file, "").unwrap();
        let e = check_mountpoint(&file).unwrap_err();
        assert!(matches!(e, Error::NotADirectory { .. }), "{e:?}");
        assert_eq!(e.to_string(), format!("mount point {} is not a directory", file.display()));
        let missing = dir.join("missing");
        let e = check_mountpoint(&missing).unwrap_err();
        let Error::MountPoint { source, .. } = &e else { panic!("{e:?}") };
        assert_eq!(source.raw_os_error(), Some(libc::ENOENT));
        assert!(e.to_string().contains("create it with mkdir -p") && !e.to_string().contains('\n'), "{e}");
        assert!(check_mountpoint(&dir).is_ok());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
