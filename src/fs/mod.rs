//! The filesystem core: the current view of the kernel (one snapshot behind
//! one lock, swapped whole on refresh), open handles, and an API of plain
//! methods that return `Result<_, Errno>`; `fuse` only translates these to
//! FUSE replies. When to scan and which view serves a request is
//! `freshness` (SPEC section 5); who may see what, `visibility` (section
//! 6); names, `tree` over `inode` numbers, and contents, `contents`; open
//! files, `handles`; directory listings, `listing`.

mod api;
mod contents;
mod freshness;
pub mod fuse;
mod handles;
pub mod inode;
mod listing;
pub mod tree;
mod view;
use crate::locks::Locked;
use freshness::Scans;
use handles::{OpenFiles, Watch};
use view::{View, Views};
pub mod visibility;

use crate::control::{Controller, Target};
use crate::discovery::{self, ScanOptions, Tracker};
use crate::events;
use crate::metrics;
use crate::model::{Inode, NsType, Snapshot};
use crate::owners::index::{History, Owners};
pub use api::{Attr, Caller, DirEntry, Errno, FsConfig, OpenedDir, Result, Stale};
use freshness::{might_appear, MissGate};
use inode::{Ino, Node, NsEntry};
pub use listing::Page;
use std::collections::HashMap;
use std::sync::atomic::AtomicBool;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::Sender;
use std::sync::{Arc, Condvar, Mutex, OnceLock, RwLock};
use std::time::{Duration, Instant, SystemTime};
pub use tree::Kind;
use tree::{Ctx, PinNames};
pub use visibility::Visibility;

/// Called once when new events arrive (a poll(2) waiting on `events`).
pub type Waker = Box<dyn FnOnce() + Send>;

/// The filesystem.
pub struct NsFs {
    cfg: FsConfig,
    /// The views: the one served (behind the snapshot lock) and what
    /// outlives a view (pin names, first sightings, owner history).
    views: Views,
    /// Who scans when: the tracker, the scanner thread's requests.
    scans: Scans,
    /// Open files and directories.
    open: OpenFiles,
    /// The watch files' state: the events log, its pollers, the counters.
    watch: Watch,
    /// A hash of the listing each directory had when last listed, and
    /// since when it has had it: its mtime (the kernel-cache policy).
    listed: Mutex<HashMap<Ino, (u64, SystemTime)>>,
    /// Whether the kernel opens directories without asking (see `listing`),
    /// and the listings it is reading so.
    unopened: AtomicBool,
    served: Mutex<listing::Served>,
    started_at: SystemTime,
    control: Controller,
}

impl NsFs {
    /// Build the filesystem with a first scan.
    pub fn new(cfg: FsConfig, control: Controller) -> std::result::Result<NsFs, discovery::Error> {
        let mut tracker = Tracker::new(cfg.scan.clone());
        let snap = tracker.full()?;
        let fs = NsFs {
            views: Views {
                view: RwLock::new(Arc::new(View::empty())),
                pin_names: Mutex::new(PinNames::default()),
                first_seen: Mutex::new(HashMap::new()),
                history: Mutex::new(History::default()),
                forget_stale: OnceLock::new(),
            },
            scans: Scans {
                tracker: Mutex::new(tracker),
                wanted: Mutex::new(None),
                new_view: Condvar::new(),
                scanner: AtomicBool::new(false),
                full_wanted: AtomicBool::new(false),
                last_use: Mutex::new(Instant::now()),
                miss_gate: MissGate::default(),
            },
            open: OpenFiles {
                files: Mutex::new(HashMap::new()),
                dirs: Mutex::new(HashMap::new()),
                next_fh: AtomicU64::new(1),
            },
            watch: Watch {
                events: Mutex::new(events::Log::new(cfg.events_max)),
                events_open: AtomicU64::new(0),
                // The first view is a full pass.
                counters: Mutex::new(metrics::Counters {
                    full_refreshes: 1,
                    last_full_seconds: Some(snap.duration.as_secs_f64()),
                    ..Default::default()
                }),
                metrics_read: Mutex::new(None),
                wakers: Mutex::new(Vec::new()),
            },
            listed: Mutex::new(HashMap::new()),
            unopened: AtomicBool::new(false),
            served: Mutex::new(listing::Served::default()),
            started_at: SystemTime::now(),
            cfg,
            control,
        };
        fs.install(snap, Instant::now(), false);
        crate::sys::release_free_memory();
        Ok(fs)
    }

    pub fn config(&self) -> &FsConfig {
        &self.cfg
    }

    /// Whether the kernel may cache entries and listings at all (not with
    /// `allow_other`, where they depend on who asks).
    pub fn kernel_caches(&self) -> bool {
        !self.cfg.dir_ttl.is_zero()
    }

    /// Whether directories are opened without asking nsfuse: said once,
    /// when the kernel can (FUSE no-opendir, and an mtime check at the
    /// start of every cached listing) and the kernel may cache listings.
    pub fn open_dirs_unasked(&self) -> bool {
        self.unopened.load(Ordering::Relaxed)
    }

    pub fn set_open_dirs_unasked(&self) {
        self.unopened.store(true, Ordering::Relaxed);
    }

    /// How long the kernel may cache (attributes, entry). Files and
    /// symlinks (whose sizes and targets follow each refresh) are never
    /// cached, nor is the root: a stat of the mount point must reach the
    /// daemon, so a dead one shows as ENOTCONN at once. A directory's
    /// attributes hold its mtime, which the kernel checks before it serves
    /// a cached listing: never cached for a directory of namespaces or
    /// processes (each listing asks nsfuse). Other directories, and every
    /// directory's entry, are cached until a refresh that sees them change
    /// or go tells the kernel (`forget_stale_through`); without that, at
    /// most one refresh interval (and 1 s).
    pub fn ttls(&self, attr: &Attr) -> (Duration, Duration) {
        if attr.kind != Kind::Dir || attr.ino == Node::Root.ino() {
            return (Duration::ZERO, Duration::ZERO);
        }
        let kept = if self.views.forget_stale.get().is_some() {
            self.cfg.dir_ttl
        } else {
            self.cfg.dir_ttl.min(self.cfg.refresh).min(Duration::from_secs(1))
        };
        let listing_changes = Node::from_ino(attr.ino).is_some_and(freshness::lists_what_changes);
        (if listing_changes { Duration::ZERO } else { kept }, kept)
    }

    /// Send, at every view swap, what the kernel must forget (entries that
    /// went away, directories whose listing changed) to `tx`, whose
    /// receiver tells the kernel: directories are cached (see `ttls`).
    pub fn forget_stale_through(&self, tx: Sender<Stale>) {
        let _ = self.views.forget_stale.set(tx);
    }

    /// Run `f` with a tree context for this view and caller.
    fn with_ctx<R>(&self, v: &View, caller: Caller, f: impl FnOnce(&Ctx<'_>) -> R) -> R {
        let visible = self.visible(v, caller);
        let ctx = Ctx {
            snap: &v.snap,
            pins: &v.pins,
            read_only: self.cfg.read_only,
            visible: visible.as_deref(),
            owners: &v.owners,
        };
        f(&ctx)
    }

    fn ctl_target(node: Node) -> Option<Target> {
        match node {
            Node::TopCtl => Some(Target::Top),
            Node::NsFile(t, i, NsEntry::Ctl) => Some(Target::Ns(t, i)),
            _ => None,
        }
    }

    /// The bytes a read of `node` by `uid` returns: rendered once per view
    /// and caller, then shared by every stat and handle (so a stat and a
    /// read agree, and a thousand opens hold one copy). `ctl` reads its
    /// controller's latest outcome instead.
    fn bytes(&self, v: &View, ctx: &Ctx<'_>, node: Node, uid: u32) -> Option<Arc<[u8]>> {
        if let Some(t) = Self::ctl_target(node) {
            return Some(self.control.status(t).into_bytes().into());
        }
        if node == Node::Metrics {
            *self.watch.metrics_read.locked() = Some(Instant::now());
        }
        let key = (node.ino(), uid);
        if let Some(hit) = v.cache.locked().get(&key) {
            return hit.clone();
        }
        let bytes: Option<Arc<[u8]>> = if node == Node::Metrics {
            let mut c = self.watch.counters.locked().clone();
            c.resident_bytes = metrics::resident_bytes();
            Some(metrics::render(&v.snap, &self.cfg.scan.dirs, &v.owners.current, &c).into_bytes().into())
        } else {
            ctx.content(node).map(Into::into)
        };
        v.cache.locked().entry(key).or_insert(bytes).clone()
    }

    fn attr(&self, v: &View, ctx: &Ctx<'_>, node: Node, uid: u32) -> Result<Attr> {
        if !ctx.exists(node) {
            return Err(Errno::ENOENT);
        }
        let kind = tree::kind(node);
        let (size, perm) = match kind {
            _ if node == Node::Events => (self.watch.events.locked().end(), 0o444),
            Kind::Dir => (0, 0o555),
            Kind::Symlink => (ctx.link_target(node).ok_or(Errno::ENOENT)?.len() as u64, 0o777),
            Kind::File => {
                let perm = if Self::ctl_target(node).is_some() { 0o600 } else { 0o444 };
                (self.bytes(v, ctx, node, uid).ok_or(Errno::ENOENT)?.len() as u64, perm)
            }
        };
        let uid = ctx.owner_uid(node);
        let mtime = match node {
            Node::Readme | Node::Root | Node::TopCtl => Some(self.started_at),
            // A directory of namespaces or processes: now. The kernel then
            // never serves a listing of it from its cache, but asks for one
            // (which comes from a refresh made after the call).
            _ if kind == Kind::Dir && freshness::lists_what_changes(node) => Some(SystemTime::now()),
            // Other directories: since their listing is what it is (the
            // kernel keeps a cached listing only while this holds).
            _ if kind == Kind::Dir => Some(self.note_listing(node.ino(), &listing::entries(ctx, node)?).1),
            Node::NsFile(_, i, _) => self.views.first_seen.locked().get(&i).copied(),
            _ => v.snap.taken_at,
        }
        .unwrap_or(self.started_at);
        Ok(Attr { ino: node.ino(), kind, size, perm, uid, gid: uid, mtime })
    }

    fn node(ino: Ino) -> Result<Node> {
        Node::from_ino(ino).ok_or(Errno::ENOENT)
    }

    /// Look `name` up in directory `parent`. A name that could be a
    /// namespace made since the last scan forces one fresh scan.
    pub fn lookup(&self, caller: Caller, parent: Ino, name: &str) -> Result<Attr> {
        let asked = Instant::now();
        let dir = Self::node(parent)?;
        let v = self.fresh();
        let found =
            self.with_ctx(&v, caller, |ctx| ctx.lookup(dir, name).map(|n| self.attr(&v, ctx, n, caller.uid)));
        if let Some(attr) = found {
            return attr;
        }
        if !might_appear(dir, name) {
            return Err(Errno::ENOENT);
        }
        drop(v);
        let v = self.rescan_after(self.scans.miss_gate.pass(asked));
        self.with_ctx(&v, caller, |ctx| match ctx.lookup(dir, name) {
            Some(n) => self.attr(&v, ctx, n, caller.uid),
            None => Err(Errno::ENOENT),
        })
    }

    pub fn getattr(&self, caller: Caller, ino: Ino) -> Result<Attr> {
        let node = Self::node(ino)?;
        let v = self.latest();
        self.with_ctx(&v, caller, |ctx| self.attr(&v, ctx, node, caller.uid))
    }

    pub fn readlink(&self, caller: Caller, ino: Ino) -> Result<String> {
        let node = Self::node(ino)?;
        let v = self.current();
        self.with_ctx(&v, caller, |ctx| ctx.link_target(node).ok_or(Errno::ENOENT))
    }

    /// A write to open file `fh`: only to a `ctl` file, as root, on a
    /// writable mount. A namespace's `ctl` acts on the namespace it was
    /// opened for: if that one is gone and another took its number, ENOENT
    /// (as /proc gives ESRCH for a process gone whose PID was reused).
    pub fn write(&self, caller: Caller, ino: Ino, fh: u64, data: &[u8]) -> Result<usize> {
        let node = Self::node(ino)?;
        if self.cfg.read_only {
            return Err(Errno::EROFS);
        }
        let Some(target) = Self::ctl_target(node) else { return Err(Errno::EACCES) };
        if caller.uid != 0 {
            return Err(Errno::EACCES);
        }
        let asked = Instant::now();
        let v = self.fresh();
        // The namespace the handle was opened for, by id: another that
        // took its number is not it (an id not read this time cannot tell).
        let opened_for = match target {
            Target::Ns(t, i) => self.opened_for(fh).map(|id| (t, i, id)),
            Target::Top => None,
        };
        // A namespace made since the last scan: look again once.
        let find = |t: NsType, i: Inode| {
            let ns = v.snap.get(t, i).cloned().or_else(|| self.rescan_after(asked).snap.get(t, i).cloned());
            ns.filter(|ns| match opened_for {
                Some((ot, oi, id)) if (ot, oi) == (t, i) => ns.id.is_none_or(|n| n == id),
                _ => true,
            })
        };
        let (took_effect, result) = self.control.execute(&find, v.snap.own_mntns, target, data);
        // Whatever took effect is visible at once; a refusal changed nothing.
        if took_effect > 0 {
            self.refresh();
        }
        result.map(|()| data.len()).map_err(|e| Errno(e.errno()))
    }

    /// setattr: only truncating a `ctl` file (as `echo cmd > ctl` does) is allowed.
    pub fn setattr(&self, caller: Caller, ino: Ino, size: Option<u64>, other: bool) -> Result<Attr> {
        let node = Self::node(ino)?;
        if self.cfg.read_only {
            return Err(Errno::EROFS);
        }
        if other || Self::ctl_target(node).is_none() || caller.uid != 0 || size.is_some_and(|s| s != 0) {
            return Err(if Self::ctl_target(node).is_some() || other { Errno::EPERM } else { Errno::EACCES });
        }
        self.getattr(caller, ino)
    }

    /// Creating, renaming or removing anything.
    pub fn refuse_change(&self) -> Errno {
        if self.cfg.read_only {
            Errno::EROFS
        } else {
            Errno::EPERM
        }
    }

    /// The snapshot currently served (for tests and logging).
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.current().snap.clone()
    }
}
