//! Open files: `open` renders a file once for its handle (or attaches the
//! live `events` log), `read` serves a handle at an offset, `readable` and
//! `wake_on_events` are poll(2) on `events`, `release` forgets a handle.

use super::*;
use crate::locks::Locked;

/// Open files and directories, by handle.
pub(super) struct OpenFiles {
    pub(super) files: Mutex<HashMap<u64, Handle>>,
    pub(super) dirs: Mutex<HashMap<u64, Arc<Vec<DirEntry>>>>,
    pub(super) next_fh: AtomicU64,
}

/// The state behind `events` and `metrics`.
pub(super) struct Watch {
    /// The lifecycle log, and how many handles have it open (while any
    /// does, the tree refreshes on its own).
    pub(super) events: Mutex<events::Log>,
    pub(super) events_open: AtomicU64,
    /// What `metrics` counts, and when it was last read (for a minute
    /// after, the tree refreshes on its own).
    pub(super) counters: Mutex<metrics::Counters>,
    pub(super) metrics_read: Mutex<Option<Instant>>,
    /// poll(2)s waiting for the next events.
    pub(super) wakers: Mutex<Vec<Waker>>,
}

/// What an open file reads.
pub(super) enum Handle {
    /// Bytes fixed at open, shared with the view.
    Bytes(Arc<[u8]>),
    /// A namespace's `ctl`: its status at open, and the 64-bit id of the
    /// namespace it was opened for (where the kernel gives ids): a write
    /// acts on that namespace only, never on one that took its number.
    Ctl { bytes: Arc<[u8]>, ns_id: Option<u64> },
    /// The live events log, read through `shift` (set when the reader's
    /// place had been dropped: it goes on from the oldest line kept), with
    /// what a non-root reader may see.
    Events { shift: u64, read_to: u64, visible: Option<Arc<Visibility>> },
}

impl NsFs {
    /// Open a file; its content is fixed for this handle.
    pub fn open(&self, caller: Caller, ino: Ino, write: bool) -> Result<u64> {
        let node = Self::node(ino)?;
        let v = self.latest();
        self.with_ctx(&v, caller, |ctx| {
            if !ctx.exists(node) {
                return Err(Errno::ENOENT);
            }
            match tree::kind(node) {
                Kind::Dir => return Err(Errno::EISDIR),
                Kind::Symlink => return Err(Errno::EINVAL),
                Kind::File => {}
            }
            let is_ctl = Self::ctl_target(node).is_some();
            if write {
                if self.cfg.read_only {
                    return Err(Errno::EROFS);
                }
                if !is_ctl || caller.uid != 0 {
                    return Err(Errno::EACCES);
                }
            } else if is_ctl && caller.uid != 0 {
                return Err(Errno::EACCES);
            }
            let handle = if node == Node::Events {
                self.watch.events_open.fetch_add(1, Ordering::Relaxed);
                Handle::Events { shift: 0, read_to: 0, visible: self.visible(&v, caller) }
            } else {
                let bytes = self.bytes(&v, ctx, node, caller.uid).ok_or(Errno::ENOENT)?;
                match Self::ctl_target(node) {
                    Some(Target::Ns(t, i)) => {
                        Handle::Ctl { bytes, ns_id: v.snap.get(t, i).and_then(|ns| ns.id) }
                    }
                    _ => Handle::Bytes(bytes),
                }
            };
            let fh = self.open.next_fh.fetch_add(1, Ordering::Relaxed);
            self.open.files.locked().insert(fh, handle);
            Ok(fh)
        })
    }

    pub fn read(&self, fh: u64, offset: u64, size: u32) -> Result<Vec<u8>> {
        let mut files = self.open.files.locked();
        match files.get_mut(&fh).ok_or(Errno::EBADF)? {
            Handle::Bytes(bytes) | Handle::Ctl { bytes, .. } => {
                let start = (offset as usize).min(bytes.len());
                let end = start.saturating_add(size as usize).min(bytes.len());
                Ok(bytes[start..end].to_vec())
            }
            Handle::Events { shift, read_to, visible } => {
                let log = self.watch.events.locked();
                if offset + *shift < log.first() {
                    *shift = log.first() - offset;
                }
                let shown = |i: Inode| visible.as_ref().is_none_or(|v| v.namespaces.contains(&i));
                let bytes = log.read(offset + *shift, size as usize, &shown);
                if bytes.len() < size as usize {
                    // Read to the end: all there is, seen.
                    *read_to = log.end();
                }
                Ok(bytes)
            }
        }
    }

    /// Whether a read of `fh` would give something new (poll(2)): for
    /// `events`, lines logged since the handle last read to the end; any
    /// other file always reads.
    pub fn readable(&self, fh: u64) -> Result<bool> {
        match self.open.files.locked().get(&fh).ok_or(Errno::EBADF)? {
            Handle::Bytes(_) | Handle::Ctl { .. } => Ok(true),
            Handle::Events { read_to, .. } => Ok(self.watch.events.locked().end() > *read_to),
        }
    }

    /// Call `wake` once, when the next events are logged.
    pub fn wake_on_events(&self, wake: Waker) {
        self.watch.wakers.locked().push(wake);
    }

    /// The namespace id a `ctl` handle was opened for.
    pub(super) fn opened_for(&self, fh: u64) -> Option<u64> {
        match self.open.files.locked().get(&fh) {
            Some(Handle::Ctl { ns_id, .. }) => *ns_id,
            _ => None,
        }
    }

    pub fn release(&self, fh: u64) {
        if let Some(Handle::Events { .. }) = self.open.files.locked().remove(&fh) {
            self.watch.events_open.fetch_sub(1, Ordering::Relaxed);
        }
    }
}
