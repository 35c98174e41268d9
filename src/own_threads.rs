//! The thread ids nsfuse's own short-lived workers were given, so that
//! discovery can tell "no process was made since the last pass" (the last
//! PID handed out moved only by our own threads) from a real change, and
//! skip reading /proc again on a quiet host. Each worker notes itself as it
//! starts; the record keeps the most recent `KEEP`.

use crate::locks::Locked;
use crate::model::Pid;
use std::collections::VecDeque;
use std::sync::Mutex;

/// Thread ids remembered: far more than one pass starts.
const KEEP: usize = 4096;

static OURS: Mutex<VecDeque<Pid>> = Mutex::new(VecDeque::new());

/// Note the calling thread as one of ours. Call first thing in a worker.
pub fn note_this_thread() {
    let tid = crate::sys::gettid();
    let mut ours = OURS.locked();
    if ours.len() == KEEP {
        ours.pop_front();
    }
    ours.push_back(tid);
}

/// Whether every PID handed out after `then` up to `now` went to one of
/// our threads (false if PIDs wrapped around, or too many were handed out
/// to check).
pub fn only_ours_between(then: Pid, now: Pid) -> bool {
    covered(&OURS.locked(), then, now)
}

/// Whether every PID in `then+1..=now` is in `ours`.
fn covered(ours: &VecDeque<Pid>, then: Pid, now: Pid) -> bool {
    match now.get().checked_sub(then.get()) {
        Some(0) => true,
        Some(n) if (1..=512).contains(&n) => ((then.get() + 1)..=now.get()).all(|p| ours.contains(&Pid(p))),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_range_is_ours_only_if_every_pid_in_it_is() {
        let ours: VecDeque<Pid> = [101, 102, 104].into_iter().map(Pid).collect();
        assert!(covered(&ours, Pid(100), Pid(100)));
        assert!(covered(&ours, Pid(100), Pid(102)));
        assert!(!covered(&ours, Pid(100), Pid(104)), "103 went to someone else");
        assert!(!covered(&ours, Pid(104), Pid(101)), "a wrap-around is never ours");
        assert!(!covered(&ours, Pid(1), Pid(100_000)), "too many to check");
    }

    #[test]
    fn workers_note_themselves() {
        let tid = std::thread::spawn(|| {
            note_this_thread();
            crate::sys::gettid()
        })
        .join()
        .unwrap();
        assert!(OURS.lock().unwrap().contains(&tid));
        let before = Pid(tid.get() - 1);
        assert!(only_ours_between(before, tid) || !OURS.lock().unwrap().contains(&before));
        assert!(only_ours_between(tid, tid));
    }
}
