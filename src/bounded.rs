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

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// How long one item may go without an answer before it is abandoned.
pub const STALL: Duration = Duration::from_millis(1000);

/// Keys whose abandoned work has not come back yet, each with the flag its
/// thread sets when it does.
fn stuck() -> &'static Mutex<HashMap<String, Arc<AtomicBool>>> {
    static STUCK: OnceLock<Mutex<HashMap<String, Arc<AtomicBool>>>> = OnceLock::new();
    STUCK.get_or_init(Default::default)
}

/// Whether work on `key` was abandoned and has not come back.
pub fn is_stuck(key: &str) -> bool {
    let mut map = stuck().lock().unwrap_or_else(|e| e.into_inner());
    match map.get(key) {
        Some(back) if back.load(Ordering::Acquire) => {
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
    let map = stuck().lock().unwrap_or_else(|e| e.into_inner());
    map.iter().filter(|(_, back)| !back.load(Ordering::Acquire)).map(|(k, _)| k.clone()).collect()
}

fn abandon(what: &str, key: &str, back: Arc<AtomicBool>, stall: Duration) {
    log::warn!("{what}: {key} gave no answer within {stall:?}; left behind and skipped until it answers");
    stuck().lock().unwrap_or_else(|e| e.into_inner()).insert(key.to_owned(), back);
}

/// What a worker tells the caller.
enum Msg<R> {
    Started { worker: usize, item: usize, back: Arc<AtomicBool>, at: Instant },
    Done { item: usize, result: R },
    Exited { worker: usize },
}

/// A worker's state maker, and its work on one item.
type Init<S> = Box<dyn Fn() -> S + Send + Sync>;
type Work<T, S, R> = Box<dyn Fn(&mut S, T) -> R + Send + Sync>;

struct Shared<T, S, R> {
    slots: Mutex<Vec<Option<T>>>,
    next: AtomicUsize,
    init: Init<S>,
    work: Work<T, S, R>,
}

/// One worker's place: set `abandoned` to make it leave without answering.
struct Worker {
    abandoned: Arc<AtomicBool>,
    current: Option<(usize, Arc<AtomicBool>, Instant)>,
}

fn spawn_worker<T, S, R>(
    shared: &Arc<Shared<T, S, R>>,
    id: usize,
    tx: &mpsc::Sender<Msg<R>>,
) -> Option<Worker>
where
    T: Send + 'static,
    S: 'static,
    R: Send + 'static,
{
    let abandoned = Arc::new(AtomicBool::new(false));
    let (shared, tx, gone) = (shared.clone(), tx.clone(), abandoned.clone());
    let spawned = std::thread::Builder::new().name("bounded".into()).spawn(move || {
        let mut state = (shared.init)();
        loop {
            let i = shared.next.fetch_add(1, Ordering::Relaxed);
            let item = {
                let mut slots = shared.slots.lock().unwrap_or_else(|e| e.into_inner());
                match slots.get_mut(i) {
                    Some(slot) => slot.take(),
                    None => break,
                }
            };
            let Some(item) = item else { continue };
            let back = Arc::new(AtomicBool::new(false));
            let _ = tx.send(Msg::Started { worker: id, item: i, back: back.clone(), at: Instant::now() });
            let result = (shared.work)(&mut state, item);
            back.store(true, Ordering::Release);
            if gone.load(Ordering::Acquire) {
                return;
            }
            let _ = tx.send(Msg::Done { item: i, result });
        }
        let _ = tx.send(Msg::Exited { worker: id });
    });
    match spawned {
        Ok(_) => Some(Worker { abandoned, current: None }),
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
    let mut results: Vec<Option<R>> = std::iter::repeat_with(|| None).take(n).collect();
    let mut keys = Vec::with_capacity(n);
    let mut slots = Vec::with_capacity(n);
    let mut open = 0;
    for (key, item) in items {
        let skip = is_stuck(&key);
        open += usize::from(!skip);
        slots.push((!skip).then_some(item));
        keys.push(key);
    }
    if open == 0 {
        return results;
    }
    let shared = Arc::new(Shared {
        slots: Mutex::new(slots),
        next: AtomicUsize::new(0),
        init: Box::new(init),
        work: Box::new(work),
    });
    let (tx, rx) = mpsc::channel();
    let mut workers: Vec<Option<Worker>> = Vec::new();
    for _ in 0..threads.clamp(1, open) {
        let id = workers.len();
        workers.push(spawn_worker(&shared, id, &tx));
    }
    let mut running = workers.iter().filter(|w| w.is_some()).count();
    if running == 0 {
        return results;
    }
    while running > 0 {
        match rx.recv_timeout(Duration::from_millis(50)) {
            Ok(Msg::Started { worker, item, back, at }) => {
                if let Some(Some(w)) = workers.get_mut(worker) {
                    w.current = Some((item, back, at));
                }
            }
            Ok(Msg::Done { item, result }) => results[item] = Some(result),
            Ok(Msg::Exited { worker }) => {
                if let Some(slot) = workers.get_mut(worker) {
                    if slot.take().is_some() {
                        running -= 1;
                    }
                }
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
        // Abandon what is over its time, and replace its thread.
        for id in 0..workers.len() {
            let late = match &workers[id] {
                Some(Worker { current: Some((item, back, at)), .. })
                    if !back.load(Ordering::Acquire) && at.elapsed() > stall =>
                {
                    Some((*item, back.clone()))
                }
                _ => None,
            };
            let Some((item, back)) = late else { continue };
            if let Some(w) = workers[id].take() {
                w.abandoned.store(true, Ordering::Release);
                running -= 1;
            }
            abandon(what, &keys[item], back, stall);
            let id = workers.len();
            workers.push(spawn_worker(&shared, id, &tx));
            running += usize::from(workers[id].is_some());
        }
    }
    results
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
            let f = work.lock().unwrap_or_else(|e| e.into_inner()).take();
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
