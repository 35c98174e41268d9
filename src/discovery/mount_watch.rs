//! Whether any mount table a pass read has changed since, without reading
//! them again: one fanotify group (Linux 6.15+) with a mark on every mount
//! namespace whose table was read, placed before the read. A mount
//! attached or detached in any of them (propagated ones too) queues an
//! event; a quiet queue proves every marked table unchanged. Where
//! fanotify cannot, the pass asks listmount for each table, as before.

use crate::sys;
use std::collections::HashSet;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::{Mutex, OnceLock};

struct Watch {
    group: OwnedFd,
    /// The mount namespaces marked (by mnt_ns_id, never reused).
    marked: Mutex<HashSet<u64>>,
}

static WATCH: OnceLock<Option<Watch>> = OnceLock::new();

fn watch() -> Option<&'static Watch> {
    WATCH
        .get_or_init(|| match sys::fanotify_mount_group() {
            Ok(group) => Some(Watch { group, marked: Mutex::new(HashSet::new()) }),
            Err(e) => {
                log::info!(
                    "mount tables: checked with listmount at each refresh (no fanotify mount events: {e})"
                );
                None
            }
        })
        .as_ref()
}

/// Watch mount namespace `mnt_ns_id` (open as `ns`) from now on; call it
/// before reading its table.
pub fn mark(ns: BorrowedFd<'_>, mnt_ns_id: u64) {
    let Some(w) = watch() else { return };
    match sys::fanotify_mark_mntns(w.group.as_fd(), ns) {
        Ok(()) => {
            crate::locks::Locked::locked(&w.marked).insert(mnt_ns_id);
        }
        Err(e) => log::debug!("mount namespace {mnt_ns_id}: not watched ({e})"),
    }
}

/// Whether no mount was attached to or detached from any of `tables` (by
/// mnt_ns_id) since they were read: all marked, and nothing queued since
/// the last call. Drains the queue; forgets the marks of namespaces no
/// longer asked about.
pub fn unchanged_since_read(tables: &[u64]) -> bool {
    let Some(w) = watch() else { return false };
    let mut queued = false;
    let mut buf = [0u8; 4096];
    loop {
        match sys::read_queued(w.group.as_fd(), &mut buf) {
            Ok(0) => break,
            Ok(_) => queued = true,
            Err(e) => {
                log::debug!("mount events: {e}");
                return false;
            }
        }
    }
    let mut marked = crate::locks::Locked::locked(&w.marked);
    let all_marked = tables.iter().all(|id| marked.contains(id));
    let asked: HashSet<u64> = tables.iter().copied().collect();
    marked.retain(|id| asked.contains(id));
    !queued && all_marked
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(args: &[&str]) {
        let ok = std::process::Command::new(args[0]).args(&args[1..]).status().is_ok_and(|s| s.success());
        assert!(ok, "{args:?}");
    }

    #[test]
    fn a_mount_in_a_watched_namespace_is_seen_and_the_mark_keeps_nothing_alive() {
        if sys::geteuid() != 0 || watch().is_none() {
            return;
        }
        let mut child = std::process::Command::new("unshare")
            .args(["--mount", "--propagation", "private", "sleep", "30"])
            .spawn()
            .unwrap();
        let pid = child.id();
        let ns_path = format!("/proc/{pid}/ns/mnt");
        let mut id = None;
        for _ in 0..100 {
            // Until unshare has made the namespace (another inode than ours).
            let theirs = std::fs::metadata(&ns_path).map(|m| std::os::unix::fs::MetadataExt::ino(&m));
            let ours =
                std::fs::metadata("/proc/self/ns/mnt").map(|m| std::os::unix::fs::MetadataExt::ino(&m));
            if theirs.is_ok() && theirs.ok() != ours.ok() {
                let ns = std::fs::File::open(&ns_path).unwrap();
                let mnt_ns_id = sys::ns_get_mntns_id(ns.as_fd()).unwrap();
                mark(ns.as_fd(), mnt_ns_id);
                id = Some(mnt_ns_id);
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let id = id.expect("unshare made a mount namespace");
        // Other tests' mounts elsewhere may queue events: drain, then look.
        let settled = (0..50).any(|_| {
            unchanged_since_read(&[id]) || {
                std::thread::sleep(std::time::Duration::from_millis(20));
                false
            }
        });
        assert!(settled, "a quiet namespace never read as unchanged");
        let pid_s = pid.to_string();
        run(&["nsenter", "-t", &pid_s, "-m", "mount", "-t", "tmpfs", "nsfuse-watch-test", "/mnt"]);
        assert!(!unchanged_since_read(&[id]), "a mount inside went unseen");
        assert!(!unchanged_since_read(&[id, id + 1_000_000]), "an unmarked namespace counts as changed");
        let _ = child.kill();
        let _ = child.wait();
        // The namespace is gone: listmount no longer finds it.
        let gone = (0..100).any(|_| {
            sys::listmount(id).is_err() || {
                std::thread::sleep(std::time::Duration::from_millis(20));
                false
            }
        });
        assert!(gone, "the marked namespace outlived its last process");
    }
}
