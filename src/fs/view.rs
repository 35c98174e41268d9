//! A view: one snapshot and what was rendered from it (contents per file
//! and uid, what each uid may see, owners), and how a new one is swapped
//! in under the snapshot lock, with the events and forgotten entries the
//! swap makes.

use super::*;
use crate::locks::{Locked, ReadWrite};

/// The view served and what outlives a view.
pub(super) struct Views {
    /// The snapshot lock: readers clone the Arc, a refresh swaps it whole.
    pub(super) view: RwLock<Arc<View>>,
    pub(super) pin_names: Mutex<PinNames>,
    pub(super) first_seen: Mutex<HashMap<Inode, SystemTime>>,
    /// Owners seen per namespace, and since when each has had no task.
    pub(super) history: Mutex<History>,
    /// Where to send the directory entries the kernel must forget when a
    /// new view replaces the old (the daemon's invalidator thread).
    pub(super) forget_stale: OnceLock<Sender<Stale>>,
}

/// A file's bytes as rendered once (None: the kernel would not tell).
pub(super) type Rendered = Option<Arc<[u8]>>;

/// One snapshot and what was rendered from it.
pub(super) struct View {
    pub(super) snap: Arc<Snapshot>,
    pub(super) pins: Arc<PinNames>,
    /// Owners of its namespaces (now and before) and its orphans' ages.
    pub(super) owners: Arc<Owners>,
    pub(super) started: Instant,
    /// Contents rendered for this view, by file and by the uid that asked
    /// (what a non-root caller sees is filtered), only of files that were
    /// used (None: the kernel would not tell); shared by every handle and
    /// dropped with the view.
    pub(super) cache: Mutex<HashMap<(Ino, u32), Rendered>>,
    /// What each non-root uid may see.
    pub(super) visible: Mutex<HashMap<u32, Arc<Visibility>>>,
}

impl View {
    /// A view of `snap` with nothing rendered yet.
    fn new(snap: Snapshot, pins: Arc<PinNames>, owners: Arc<Owners>, started: Instant) -> View {
        let (cache, visible) = (Mutex::new(HashMap::new()), Mutex::new(HashMap::new()));
        View { snap: Arc::new(snap), pins, owners, started, cache, visible }
    }

    pub(super) fn empty() -> View {
        View::new(Snapshot::default(), Arc::default(), Arc::default(), Instant::now())
    }
}

impl NsFs {
    pub(super) fn current(&self) -> Arc<View> {
        self.views.view.reading().clone()
    }

    /// Swap in a new snapshot. `same_model`: the refresh proved nothing
    /// changed (the tracker served its last snapshot again), so owners,
    /// events and gone entries are those of the view before.
    pub(super) fn install(&self, snap: Snapshot, started: Instant, same_model: bool) -> Arc<View> {
        let before = self.current();
        if same_model && before.snap.taken_at.is_some() {
            let view = Arc::new(View::new(snap, before.pins.clone(), before.owners.clone(), started));
            *self.views.view.writing() = view.clone();
            return view;
        }
        let (pins, owners) = (self.register_pin_names(&snap), self.note_namespaces(&snap));
        let view = Arc::new(View::new(snap, pins, owners, started));
        let old = std::mem::replace(&mut *self.views.view.writing(), view.clone());
        // Events: what changed since the view before (none for the first).
        if old.snap.taken_at.is_some() {
            self.log_events(&old.snap, &view.snap);
        }
        self.forget_gone(&old.snap, &view.snap);
        self.forget_changed_listings(&old.snap, &view);
        view
    }

    /// The pin names known, with those of `snap` added.
    fn register_pin_names(&self, snap: &Snapshot) -> Arc<PinNames> {
        let mut names = self.views.pin_names.locked();
        for (t, n) in snap.named_pins.keys() {
            names.register(*t, n);
        }
        Arc::new(names.clone())
    }

    /// When each namespace of `snap` was first seen, and its owners now
    /// and before.
    fn note_namespaces(&self, snap: &Snapshot) -> Arc<Owners> {
        {
            let now = SystemTime::now();
            let mut seen = self.views.first_seen.locked();
            seen.retain(|i, _| snap.namespaces.contains_key(i));
            for i in snap.namespaces.keys() {
                seen.entry(*i).or_insert(now);
            }
        }
        Arc::new(self.views.history.locked().update(snap, &self.cfg.scan.dirs, SystemTime::now()))
    }

    /// Log what changed from `old` to `new`, and wake the pollers of `events`.
    fn log_events(&self, old: &Snapshot, new: &Snapshot) {
        let now = SystemTime::now();
        let changes = crate::events::diff(old, new, &crate::discovery::comm);
        let mut log = self.watch.events.locked();
        let mut counters = self.watch.counters.locked();
        for e in &changes {
            log.push(now, e);
            *counters.events.entry(e.kind.name()).or_default() += 1;
        }
        drop((log, counters));
        if !changes.is_empty() {
            let wakers = std::mem::take(&mut *self.watch.wakers.locked());
            for wake in wakers {
                wake();
            }
        }
    }

    /// Tell the kernel to forget the directories that went away.
    fn forget_gone(&self, old: &Snapshot, new: &Snapshot) {
        if let Some(tx) = self.views.forget_stale.get() {
            let gone: Vec<(Ino, String)> =
                tree::gone_dirs(old, new).into_iter().map(|(dir, name)| (dir.ino(), name)).collect();
            if !gone.is_empty() {
                let _ = tx.send(Stale::Entries(gone));
            }
        }
    }

    /// Tell the kernel to drop its copy of every directory it may have
    /// cached whose listing differs in `new`: those of namespaces whose
    /// record changed (a namespace's directory, its `children/` and
    /// `owns/`), and containers' (few) whenever the view changed. A
    /// process's directory lists its links, the same while it lives.
    fn forget_changed_listings(&self, old: &Snapshot, new: &View) {
        let Some(tx) = self.views.forget_stale.get() else { return };
        if !self.open_dirs_unasked() {
            return;
        }
        let listed: Vec<Ino> = self.listed.locked().keys().copied().collect();
        let mut changed = Vec::new();
        for ino in listed {
            let Some(node) = Node::from_ino(ino) else { continue };
            let maybe = match node {
                Node::NsDir(t, i) | Node::NsFile(t, i, NsEntry::Children | NsEntry::Owns) => {
                    old.get(t, i) != new.snap.get(t, i)
                }
                Node::ContainerDir(_) => true,
                _ => false,
            };
            if !maybe {
                continue;
            }
            // Gone (an error) or listed otherwise: the kernel's copy is
            // stale. A gone directory's listing is forgotten here too (else
            // every namespace ever listed stays noted: a listing of `net/`
            // notes each namespace directory for its mtime).
            let stale = match self.entries_in(new, Caller::ROOT, node) {
                Ok(entries) => !self.note_listing(ino, &entries).0,
                Err(_) => {
                    self.listed.locked().remove(&ino);
                    true
                }
            };
            if stale {
                changed.push(ino);
            }
        }
        if !changed.is_empty() {
            let _ = tx.send(Stale::Listings(changed));
        }
    }
}
