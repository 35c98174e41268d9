//! Directory listings (SPEC section 5): `opendir` lists from a view fresh
//! enough for what the directory shows, remembers each listing's hash so
//! a directory's mtime moves only when its entries do, and hands the
//! entries to `readdir` by handle.

use super::freshness::lists_what_changes;
use super::*;
use crate::locks::Locked;

impl NsFs {
    /// Open a directory: its listing is fixed for this handle. A directory
    /// of namespaces or processes is listed from a refresh that started
    /// after this call (section 5: as `ls /proc` would show a process made
    /// just before); concurrent callers share that refresh.
    pub fn opendir(&self, caller: Caller, ino: Ino) -> Result<OpenedDir> {
        let asked = Instant::now();
        let node = Self::node(ino)?;
        let v = if lists_what_changes(node) {
            *self.scans.last_use.locked() = asked;
            match node {
                Node::PinnedType(_) => self.pins_now(asked),
                _ => self.rescan_after(asked),
            }
        } else {
            self.fresh()
        };
        let entries = self.with_ctx(&v, caller, |ctx| {
            if tree::kind(node) != Kind::Dir {
                return Err(Errno::ENOTDIR);
            }
            let list = ctx.list(node).ok_or(Errno::ENOENT)?;
            let mut out = vec![
                DirEntry { name: ".".into(), ino: node.ino(), kind: Kind::Dir },
                DirEntry { name: "..".into(), ino: node.ino(), kind: Kind::Dir },
            ];
            out.extend(list.into_iter().map(|(name, n)| DirEntry {
                name,
                ino: n.ino(),
                kind: tree::kind(n),
            }));
            Ok(out)
        })?;
        let unchanged = self.kernel_caches() && self.note_listing(ino, &entries);
        let fh = self.open.next_fh.fetch_add(1, Ordering::Relaxed);
        self.open.dirs.locked().insert(fh, Arc::new(entries));
        Ok(OpenedDir { fh, unchanged })
    }

    /// A view whose pins in our own mount namespace (all that `pinned/`
    /// shows) are those there now: the current one when the namespace's
    /// mount ids are still those it read, checked after the call; else
    /// one from a refresh that started after `asked`.
    fn pins_now(&self, asked: Instant) -> Arc<View> {
        let v = self.current();
        if crate::discovery::own_mounts_unchanged(&v.snap) {
            return v;
        }
        drop(v);
        self.rescan_after(asked)
    }

    /// Remember the listing `dir` now has; whether it is the one it had
    /// at the last opendir. (Forgotten wholesale when it grows large: a
    /// forgotten directory is merely read again.)
    pub(super) fn note_listing(&self, dir: Ino, entries: &[DirEntry]) -> bool {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        std::hash::Hash::hash(entries, &mut h);
        let hash = std::hash::Hasher::finish(&h);
        let mut listed = self.listed.locked();
        if listed.len() > MAX_LISTINGS_REMEMBERED {
            listed.clear();
        }
        match listed.get(&dir) {
            Some(&(h, _)) if h == hash => true,
            _ => {
                listed.insert(dir, (hash, SystemTime::now()));
                false
            }
        }
    }

    /// Entries of an open directory.
    pub fn readdir(&self, fh: u64) -> Result<Arc<Vec<DirEntry>>> {
        self.open.dirs.locked().get(&fh).cloned().ok_or(Errno::EBADF)
    }

    pub fn releasedir(&self, fh: u64) {
        self.open.dirs.locked().remove(&fh);
    }
}

/// How many directory listings `note_listing` keeps before starting over.
const MAX_LISTINGS_REMEMBERED: usize = 1 << 16;
