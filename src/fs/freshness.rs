//! Freshness (SPEC section 5): when the tree scans and which view a
//! request is served. The scanner thread refreshes on request (a listing,
//! a lookup of a name not seen, a ctl write, SIGHUP) and once per interval
//! while the tree is used or watched; a FUSE thread waits for a fresh view
//! at most `MAX_WAIT`; lookups of missing names are rate-limited
//! (`MissGate`).

use super::inode::{Node, NsEntry};
use super::{NsFs, View};
use crate::discovery::Tracker;
use crate::locks::Locked;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// Who scans when: the tracker (held while scanning, so scans coalesce),
/// the scan start callers wait for, and the scanner thread's switches.
pub(super) struct Scans {
    /// Discovery with its memory.
    pub(super) tracker: Mutex<Tracker>,
    /// The newest scan start a caller is waiting for; the scanner thread
    /// takes requests from here and `new_view` wakes the waiters.
    pub(super) wanted: Mutex<Option<Instant>>,
    pub(super) new_view: Condvar,
    /// Whether a scanner thread (`refresh_loop`) runs: FUSE threads then
    /// never scan themselves.
    pub(super) scanner: AtomicBool,
    /// The next refresh must be a full pass (SIGHUP).
    pub(super) full_wanted: AtomicBool,
    /// When the tree was last used (an idle tree stops refreshing).
    pub(super) last_use: Mutex<Instant>,
    /// Spaces out the rescans that lookups of missing names force.
    pub(super) miss_gate: MissGate,
}

impl NsFs {
    /// A view from a scan that started at or after `not_before`. With a
    /// scanner thread, ask it and wait at most `MAX_WAIT`, then serve the
    /// last view: a FUSE thread never blocks on a scan that cannot finish.
    pub(super) fn rescan_after(&self, not_before: Instant) -> Arc<View> {
        // (No view is held while waiting: the one replaced must be freed
        // before the scanner returns free memory to the kernel.)
        let v = self.current();
        if v.started >= not_before {
            return v;
        }
        drop(v);
        if !self.scans.scanner.load(Ordering::Relaxed) {
            return self.scan_inline(not_before);
        }
        let deadline = Instant::now() + MAX_WAIT;
        let mut wanted = self.ask_scanner(not_before);
        loop {
            let now = Instant::now();
            {
                let v = self.current();
                if v.started >= not_before {
                    return v;
                }
                if now >= deadline {
                    log::warn!("no fresh scan within {MAX_WAIT:?}: serving the previous view");
                    return v;
                }
            }
            wanted =
                self.scans.new_view.wait_timeout(wanted, deadline - now).unwrap_or_else(|e| e.into_inner()).0;
        }
    }

    /// Ask the scanner thread for a scan that starts at or after
    /// `not_before`; returns the request lock, to wait on `new_view` with.
    pub(super) fn ask_scanner(&self, not_before: Instant) -> std::sync::MutexGuard<'_, Option<Instant>> {
        let mut wanted = self.scans.wanted.locked();
        if wanted.is_none_or(|w| w < not_before) {
            *wanted = Some(not_before);
        }
        self.scans.new_view.notify_all();
        wanted
    }

    /// Scan on the calling thread (only when no scanner thread runs).
    pub(super) fn scan_inline(&self, not_before: Instant) -> Arc<View> {
        let mut tracker = self.lock_tracker();
        let v = self.current();
        if v.started >= not_before {
            return v;
        }
        self.scan_with(&mut tracker).unwrap_or(v)
    }

    /// A refresh on a thread that ends with it: what the allocator keeps
    /// for each thread (glibc's tcache: freed blocks it holds back for
    /// that thread's next allocations, out of reach of `malloc_trim`)
    /// goes back with the thread, instead of pinning pages of the heap
    /// between refreshes (about 0.1 MiB of RSS over 1000 refreshes). A
    /// thread costs some 30 us; a refresh, milliseconds. If none can be
    /// started, the refresh runs here; if it panics, nsfuse goes on.
    fn scan_on_its_own_thread(&self, tracker: &mut Tracker) {
        let ran = std::thread::scope(|s| {
            let refresh = std::thread::Builder::new().name("nsfuse-refresh".into());
            let t = refresh.spawn_scoped(s, || {
                self.scan_with(tracker);
            });
            t.map(|t| t.join().is_ok()).map_err(|e| log::warn!("no thread for a refresh: {e}")).ok()
        });
        match ran {
            Some(true) => {}
            Some(false) => {
                // What the tracker remembers may be half updated: the next
                // refresh is a full pass.
                log::error!("a refresh panicked; the previous view stays, the next refresh is a full pass");
                tracker.forget();
            }
            None => {
                self.scan_with(tracker);
            }
        }
    }

    pub(super) fn lock_tracker(&self) -> std::sync::MutexGuard<'_, Tracker> {
        self.scans.tracker.locked()
    }

    /// One refresh (incremental unless a full pass is due), installed as
    /// the current view.
    pub(super) fn scan_with(&self, tracker: &mut Tracker) -> Option<Arc<View>> {
        let started = Instant::now();
        let result = if self.scans.full_wanted.swap(false, Ordering::Relaxed) {
            tracker.full()
        } else {
            tracker.refresh()
        };
        match result {
            Ok(snap) => {
                {
                    let mut c = self.watch.counters.locked();
                    let secs = Some(snap.duration.as_secs_f64());
                    if tracker.last_pass_was_full() {
                        c.full_refreshes += 1;
                        c.last_full_seconds = secs;
                    } else {
                        c.incremental_refreshes += 1;
                        c.last_incremental_seconds = secs;
                    }
                }
                log::debug!(
                    "refresh: {} namespaces, {} processes in {:?}",
                    snap.namespaces.len(),
                    snap.processes.len(),
                    snap.duration
                );
                let v = self.install(snap, started, tracker.last_pass_kept_the_last());
                {
                    let _lock = self.scans.wanted.locked();
                    self.scans.new_view.notify_all();
                }
                // The previous view is gone (unless a reader still holds it).
                crate::sys::release_free_memory();
                Some(v)
            }
            Err(e) => {
                log::warn!("refresh failed, keeping the previous view: {e}");
                None
            }
        }
    }

    /// Force a refresh now (after a control command).
    pub fn refresh(&self) {
        self.rescan_after(Instant::now());
    }

    /// Force a full pass now, trusting nothing remembered (SIGHUP).
    pub fn rescan_full(&self) {
        self.scans.full_wanted.store(true, Ordering::Relaxed);
        self.refresh();
    }

    /// The current view, at once; if it is older than the refresh interval,
    /// the scanner is asked for a new one, but nobody waits for it. For
    /// requests on entries already looked up (getattr, open): the lookup
    /// that found them was fresh.
    pub(super) fn latest(&self) -> Arc<View> {
        *self.scans.last_use.locked() = Instant::now();
        let v = self.current();
        if v.started.elapsed() > self.cfg.refresh && self.scans.scanner.load(Ordering::Relaxed) {
            drop(self.ask_scanner(Instant::now() - self.cfg.refresh));
        }
        v
    }

    /// A view no older than the refresh interval (SPEC section 5: listings,
    /// lookups), waiting for the scanner if need be.
    pub(super) fn fresh(&self) -> Arc<View> {
        *self.scans.last_use.locked() = Instant::now();
        let v = self.current();
        if v.started.elapsed() <= self.cfg.refresh {
            return v;
        }
        drop(v);
        self.rescan_after(Instant::now() - self.cfg.refresh)
    }

    /// The scanner thread: runs every scan. Scans when asked (a lookup of
    /// a new name, a ctl write, SIGHUP, a listing) and, while the tree is in
    /// use or watched (`events` open, `metrics` read in the last minute),
    /// once per refresh interval; an idle mount costs nothing, and after
    /// `FORGET_AFTER` holds nothing.
    pub fn refresh_loop(&self, stop: &AtomicBool) {
        self.scans.scanner.store(true, Ordering::Relaxed);
        // Once per interval is what a watched, idle host costs; a listing
        // never waits for one (it asks for its own).
        let due = self.cfg.refresh.max(Duration::from_millis(10));
        while !stop.load(Ordering::Relaxed) {
            let asked = {
                let wanted = self.scans.wanted.locked();
                let (mut wanted, _) = self
                    .scans
                    .new_view
                    .wait_timeout_while(wanted, due.min(Duration::from_millis(100)), |w| w.is_none())
                    .unwrap_or_else(|e| e.into_inner());
                wanted.take().is_some()
            };
            let used = self.scans.last_use.locked().elapsed();
            let stale = self.current().started.elapsed() >= due;
            let scraped = self.watch.metrics_read.locked().is_some_and(|t| t.elapsed() < METRICS_KEEP_FRESH);
            let in_use = used < IDLE_AFTER || self.watch.events_open.load(Ordering::Relaxed) > 0 || scraped;
            let mut tracker = self.lock_tracker();
            if asked || (stale && in_use) {
                self.scan_on_its_own_thread(&mut tracker);
            } else if !in_use && used >= FORGET_AFTER && tracker.remembers() {
                // Long idle: hold no files open for a refresh that may never
                // come (the next one is a full pass).
                tracker.forget();
                crate::sys::release_free_memory();
            }
        }
        self.scans.scanner.store(false, Ordering::Relaxed);
    }
}

/// How long after a read of `metrics` the tree keeps refreshing on its own.
pub(super) const METRICS_KEEP_FRESH: Duration = Duration::from_secs(60);

/// How long after the last request the tree counts as idle.
pub(super) const IDLE_AFTER: Duration = Duration::from_secs(5);

/// How long after the last request the tracker drops what it remembers.
pub(super) const FORGET_AFTER: Duration = Duration::from_secs(60);

/// The longest a FUSE request waits for a fresh scan.
pub(super) const MAX_WAIT: Duration = Duration::from_secs(3);

/// How many rescans lookups of missing names may force in a burst, and
/// per second after it: anyone may ask for `net/123456` in a loop, and
/// each would be a scan.
pub(super) const MISS_BURST: f64 = 5.0;
pub(super) const MISS_RATE: f64 = 5.0;

/// Rate limit of the rescans that missing names force (a token bucket): an
/// occasional miss gets its fresh scan at once; a flood gets at most
/// `MISS_RATE` a second, each still a scan that started after its lookup
/// (misses waiting together share one).
pub(super) struct MissGate(Mutex<(f64, Instant)>);

impl Default for MissGate {
    fn default() -> Self {
        MissGate(Mutex::new((MISS_BURST, Instant::now())))
    }
}

impl MissGate {
    /// Wait for a token if need be; returns `asked`: the scan to wait for
    /// is any that started after the lookup (waiters share one).
    pub(super) fn pass(&self, asked: Instant) -> Instant {
        let wait = {
            let mut g = self.0.locked();
            let now = Instant::now();
            let (tokens, last) = *g;
            let tokens =
                (tokens + now.saturating_duration_since(last).as_secs_f64() * MISS_RATE).min(MISS_BURST);
            // Take a token, now or (going into debt) when it will have come.
            *g = (tokens - 1.0, now);
            Duration::from_secs_f64(((1.0 - tokens) / MISS_RATE).max(0.0))
        };
        if !wait.is_zero() {
            std::thread::sleep(wait);
        }
        asked
    }
}

/// Whether a directory lists namespaces or processes (what changes while
/// nobody writes to the tree): listed from a refresh made after opendir.
pub(super) fn lists_what_changes(dir: Node) -> bool {
    matches!(
        dir,
        Node::TypeDir(_)
            | Node::ProcRoot
            | Node::PinnedType(_)
            | Node::TreeRoot
            | Node::TreeUser(_)
            | Node::OrphansType(_)
            | Node::ContainersRoot
    )
}

/// Whether a name missing from `dir` could be there after a fresh scan.
pub(super) fn might_appear(dir: Node, name: &str) -> bool {
    let numeric = crate::discovery::parse::canonical_decimal(name).is_some();
    match dir {
        Node::TypeDir(_) | Node::ProcRoot | Node::OrphansType(_) => numeric,
        Node::NsFile(_, _, NsEntry::Children) => numeric,
        Node::PinnedType(_)
        | Node::TreeRoot
        | Node::TreeUser(_)
        | Node::NsFile(_, _, NsEntry::Owns)
        | Node::ContainersRoot => true,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Inode, NsType};

    #[test]
    fn forced_rescans_are_spaced_but_never_older_than_the_request() {
        let gate = MissGate::default();
        // A burst passes at once, each scan no older than its request.
        let started = Instant::now();
        for _ in 0..MISS_BURST as usize {
            let asked = Instant::now();
            assert!(gate.pass(asked) >= asked);
        }
        assert!(started.elapsed() < Duration::from_millis(100), "{:?}", started.elapsed());
        // Then a flood is held to the rate.
        let flood = Instant::now();
        for _ in 0..5 {
            let asked = Instant::now();
            assert!(gate.pass(asked) >= asked);
        }
        let took = flood.elapsed().as_secs_f64();
        assert!(took >= 4.0 / MISS_RATE, "5 more misses in {took} s");
        // After a quiet spell, a miss is served at once again.
        std::thread::sleep(Duration::from_secs_f64(1.0 / MISS_RATE));
        let quiet = Instant::now();
        gate.pass(Instant::now());
        assert!(quiet.elapsed() < Duration::from_millis(50));
    }

    #[test]
    fn only_listings_of_what_changes_wait_for_a_refresh() {
        assert!(lists_what_changes(Node::TypeDir(NsType::Net)));
        assert!(lists_what_changes(Node::ProcRoot));
        assert!(!lists_what_changes(Node::Root));
        assert!(!lists_what_changes(Node::NsDir(NsType::Net, Inode(1))));
    }
}
