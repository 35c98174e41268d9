//! Work that another user can stall, run so that it never stalls nsfuse.
//!
//! Reading another process (`/proc/PID/ns/*`, its fds, `pidfd_getfd`) waits
//! while that process is inside an `execve` that is itself stuck, for
//! example closing a file on a stopped FUSE server; walking a path that
//! another user controls can wait on their hung filesystem. Such waits are
//! killable but not interruptible by us, so the work runs on detached
//! worker threads: an item that makes no progress within its stall time is
//! abandoned (its thread is left to the kernel and ends when the wait ends,
//! or with the process), its key (`pid 1234`, a path) is logged once and
//! skipped by every later call until that thread comes back, and the rest
//! goes on on a fresh thread. A caller always gets an answer for every item,
//! `None` for the abandoned and skipped ones.

use crate::locks::Locked;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// How long one item may go without an answer before it is abandoned: long
/// enough that a slow but live process (thousands of fds, on a loaded
/// machine) is not taken for a stuck one, short enough that a pass with a
/// stuck process still ends about 2 s past its normal time.
pub const STALL: Duration = Duration::from_millis(2000);

/// Keys whose abandoned work has not come back yet, each with the worker
/// that is still at it.
fn stuck() -> &'static Mutex<HashMap<String, Arc<Worker>>> {
    static STUCK: OnceLock<Mutex<HashMap<String, Arc<Worker>>>> = OnceLock::new();
    STUCK.get_or_init(Default::default)
}

/// Whether work on `key` was abandoned and has not come back.
pub fn is_stuck(key: &str) -> bool {
    let mut map = stuck().locked();
    match map.get(key) {
        Some(w) if w.idle() => {
            log::info!("{key} answers again");
            map.remove(key);
            false
        }
        Some(_) => true,
        None => false,
    }
}

/// The keys stuck now (for tests and logs).
pub fn stuck_keys() -> Vec<String> {
    let map = stuck().locked();
    map.iter().filter(|(_, w)| !w.idle()).map(|(k, _)| k.clone()).collect()
}

fn abandon(what: &str, key: &str, worker: Arc<Worker>, stall: Duration) {
    log::warn!("{what}: {key} gave no answer within {stall:?}; left behind and skipped until it answers");
    stuck().locked().insert(key.to_owned(), worker);
}

/// A worker's state maker, and its work on one item.
type Init<S> = Box<dyn Fn() -> S + Send + Sync>;
type Work<T, S, R> = Box<dyn Fn(&mut S, T) -> R + Send + Sync>;

/// What the workers of one `map` share. Items are taken and results put
/// back under two plain locks: one message per worker, not per item, so
/// a pass over thousands of processes costs little more than before.
struct Shared<T, S, R> {
    items: Mutex<Vec<Option<T>>>,
    results: Mutex<Vec<Option<R>>>,
    next: AtomicUsize,
    base: Instant,
    init: Init<S>,
    work: Work<T, S, R>,
}

/// One worker as the caller watches it.
pub struct Worker {
    /// Set by the caller: leave once the item at hand returns.
    abandoned: AtomicBool,
    /// The item at hand, and since when (ns after `base`, plus one; 0 idle).
    current: AtomicUsize,
    busy_since: AtomicU64,
}

impl Worker {
    fn idle(&self) -> bool {
        self.busy_since.load(Ordering::Acquire) == 0
    }
}

fn spawn_worker<T, S, R>(
    what: &str,
    shared: &Arc<Shared<T, S, R>>,
    done: &mpsc::Sender<()>,
) -> Option<Arc<Worker>>
where
    T: Send + 'static,
    S: 'static,
    R: Send + 'static,
{
    let me = Arc::new(Worker {
        abandoned: AtomicBool::new(false),
        current: AtomicUsize::new(0),
        busy_since: AtomicU64::new(0),
    });
    let (shared, done, w) = (shared.clone(), done.clone(), me.clone());
    let spawned = std::thread::Builder::new().name(what.chars().take(15).collect()).spawn(move || {
        let mut state = (shared.init)();
        loop {
            let i = shared.next.fetch_add(1, Ordering::Relaxed);
            let item = match shared.items.locked().get_mut(i) {
                Some(slot) => slot.take(),
                None => break,
            };
            let Some(item) = item else { continue };
            w.current.store(i, Ordering::Release);
            let since = u64::try_from(shared.base.elapsed().as_nanos()).unwrap_or(u64::MAX - 1) + 1;
            w.busy_since.store(since, Ordering::Release);
            let result = (shared.work)(&mut state, item);
            w.busy_since.store(0, Ordering::Release);
            if w.abandoned.load(Ordering::Acquire) {
                return;
            }
            if let Some(slot) = shared.results.locked().get_mut(i) {
                *slot = Some(result);
            }
        }
        let _ = done.send(());
    });
    match spawned {
        Ok(_) => Some(me),
        Err(e) => {
            log::warn!("cannot start a worker thread: {e}");
            None
        }
    }
}

/// Apply `work` to every item on up to `threads` detached threads, each
/// with its own state from `init`; results in input order. An item whose
/// key is stuck is skipped; one that runs longer than `stall` is abandoned
/// (its key then stuck) and its thread replaced. `what` names the work in
/// the log.
pub fn map<T, S, R>(
    what: &str,
    items: Vec<(String, T)>,
    threads: usize,
    stall: Duration,
    init: impl Fn() -> S + Send + Sync + 'static,
    work: impl Fn(&mut S, T) -> R + Send + Sync + 'static,
) -> Vec<Option<R>>
where
    T: Send + 'static,
    S: 'static,
    R: Send + 'static,
{
    let n = items.len();
    let mut keys = Vec::with_capacity(n);
    let mut slots = Vec::with_capacity(n);
    let mut open = 0;
    for (key, item) in items {
        let skip = is_stuck(&key);
        open += usize::from(!skip);
        slots.push((!skip).then_some(item));
        keys.push(key);
    }
    let shared = Arc::new(Shared {
        items: Mutex::new(slots),
        results: Mutex::new(std::iter::repeat_with(|| None).take(n).collect()),
        next: AtomicUsize::new(0),
        base: Instant::now(),
        init: Box::new(init),
        work: Box::new(work),
    });
    let (done_tx, done_rx) = mpsc::channel();
    let mut workers: Vec<Arc<Worker>> =
        (0..threads.clamp(1, open.max(1))).filter_map(|_| spawn_worker(what, &shared, &done_tx)).collect();
    let mut running = if open == 0 { 0 } else { workers.len() };
    while running > 0 {
        match done_rx.recv_timeout(Duration::from_millis(20)) {
            Ok(()) => running -= 1,
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
        // Abandon a worker over its time, and replace it.
        let abandoned = abandon_overdue(what, &mut workers, &keys, shared.base, stall);
        for _ in 0..abandoned {
            running -= 1;
            if let Some(w) = spawn_worker(what, &shared, &done_tx) {
                workers.push(w);
                running += 1;
            }
        }
    }
    let mut results = shared.results.locked();
    std::mem::take(&mut *results)
}

/// Abandon every worker busy on one item for longer than `stall` (its key
/// becomes stuck); how many were abandoned.
fn abandon_overdue(
    what: &str,
    workers: &mut Vec<Arc<Worker>>,
    keys: &[String],
    base: Instant,
    stall: Duration,
) -> usize {
    let now = u64::try_from(base.elapsed().as_nanos()).unwrap_or(u64::MAX);
    let stall_ns = u64::try_from(stall.as_nanos()).unwrap_or(u64::MAX);
    let before = workers.len();
    workers.retain(|w| {
        let since = w.busy_since.load(Ordering::Acquire);
        if since == 0 || now.saturating_sub(since - 1) <= stall_ns {
            return true;
        }
        w.abandoned.store(true, Ordering::Release);
        abandon(what, &keys[w.current.load(Ordering::Acquire)], w.clone(), stall);
        false
    });
    before - workers.len()
}

/// Run `work` on a detached thread and wait at most `stall` for it; `None`
/// if it did not answer in time (then `key` is stuck) or already is stuck.
pub fn one<R: Send + 'static>(
    what: &str,
    key: String,
    stall: Duration,
    work: impl FnOnce() -> R + Send + 'static,
) -> Option<R> {
    let work = Mutex::new(Some(work));
    map(
        what,
        vec![(key, ())],
        1,
        stall,
        || (),
        move |_, ()| {
            let f = work.locked().take();
            f.map(|f| f())
        },
    )
    .pop()
    .flatten()
    .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_order_and_state_per_thread() {
        let items: Vec<(String, u32)> = (0..500).map(|i| (format!("t1 {i}"), i)).collect();
        let out = map(
            "test",
            items,
            3,
            STALL,
            || 0u32,
            |calls, x| {
                *calls += 1;
                x * 2
            },
        );
        assert_eq!(out, (0..500).map(|x| Some(x * 2)).collect::<Vec<_>>());
    }

    #[test]
    fn a_stuck_item_is_abandoned_logged_and_skipped_until_it_returns() {
        let release = Arc::new(AtomicBool::new(false));
        let r = release.clone();
        let items: Vec<(String, u32)> = (0..20).map(|i| (format!("t2 {i}"), i)).collect();
        let started = Instant::now();
        let out = map(
            "test",
            items,
            2,
            Duration::from_millis(200),
            || (),
            move |_, x| {
                while x == 7 && !r.load(Ordering::Acquire) {
                    std::thread::sleep(Duration::from_millis(5));
                }
                x
            },
        );
        assert!(started.elapsed() < Duration::from_secs(2), "waited {:?}", started.elapsed());
        assert_eq!(out[7], None);
        assert_eq!(out.iter().flatten().count(), 19);
        assert!(is_stuck("t2 7") && stuck_keys().contains(&"t2 7".to_owned()));
        // Skipped while stuck, without waiting.
        let again = Instant::now();
        assert_eq!(one("test", "t2 7".into(), STALL, || 1), None);
        assert!(again.elapsed() < Duration::from_millis(100));
        release.store(true, Ordering::Release);
        assert!((0..200).any(|_| {
            std::thread::sleep(Duration::from_millis(10));
            !is_stuck("t2 7")
        }));
        assert_eq!(one("test", "t2 7".into(), STALL, || 1), Some(1));
    }
}
