//! Namespace numbers are global state: the kernel gives a new namespace, of
//! any type, the lowest free nsfs inode, so a number is handed out again
//! as soon as its namespace dies. A test that checks a number is gone
//! (ENOENT, no longer listed) must not run while another test of its binary
//! makes namespaces, or it may find the number on a new namespace. Tests
//! make namespaces while a mount is up, and every mount (`Nsfuse`) holds a
//! shared claim on the numbers; a test that watches a namespace die mounts
//! with `Nsfuse::start_alone`, which waits until no other test holds one.

use std::cell::Cell;
use std::sync::{Condvar, Mutex, PoisonError};

struct Claims {
    shared: usize,
    alone: bool,
    waiting_alone: usize,
}

static CLAIMS: Mutex<Claims> = Mutex::new(Claims { shared: 0, alone: false, waiting_alone: 0 });
static RELEASED: Condvar = Condvar::new();

thread_local! {
    /// Shared claims this test's thread holds, and whether it holds the
    /// numbers alone: a test that already holds a claim never waits for
    /// another (a second mount), so it cannot deadlock against itself or
    /// against a test waiting to be alone.
    static SHARED_HERE: Cell<usize> = const { Cell::new(0) };
    static ALONE_HERE: Cell<bool> = const { Cell::new(false) };
}

/// A claim on the namespace numbers, given back on drop.
pub enum Claim {
    Shared,
    Alone,
}

impl Claim {
    /// Share the numbers with other tests; waits while one is alone, and
    /// lets one waiting to be alone go first.
    pub fn shared() -> Claim {
        let mut c = CLAIMS.lock().unwrap_or_else(PoisonError::into_inner);
        if SHARED_HERE.get() == 0 && !ALONE_HERE.get() {
            while c.alone || c.waiting_alone > 0 {
                c = RELEASED.wait(c).unwrap_or_else(PoisonError::into_inner);
            }
        }
        c.shared += 1;
        SHARED_HERE.set(SHARED_HERE.get() + 1);
        Claim::Shared
    }

    /// The numbers to this test alone: waits until no other test holds a
    /// claim. Taken before any other mount of the test (it would wait for
    /// that one's claim).
    pub fn alone() -> Claim {
        assert_eq!(SHARED_HERE.get(), 0, "take the numbers alone before mounting anything else");
        let mut c = CLAIMS.lock().unwrap_or_else(PoisonError::into_inner);
        c.waiting_alone += 1;
        while c.alone || c.shared > 0 {
            c = RELEASED.wait(c).unwrap_or_else(PoisonError::into_inner);
        }
        c.waiting_alone -= 1;
        c.alone = true;
        ALONE_HERE.set(true);
        Claim::Alone
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        let mut c = CLAIMS.lock().unwrap_or_else(PoisonError::into_inner);
        match self {
            Claim::Shared => {
                c.shared -= 1;
                SHARED_HERE.set(SHARED_HERE.get() - 1);
            }
            Claim::Alone => {
                c.alone = false;
                ALONE_HERE.set(false);
            }
        }
        RELEASED.notify_all();
    }
}
