//! Directory listings (SPEC section 5). A directory of namespaces or
//! processes is listed from a refresh that started after the call;
//! others from a view no older than the refresh interval. Each listing's
//! hash is remembered, so a directory's mtime moves only when its entries
//! do: the kernel keeps a cached listing while the mtime holds.
//!
//! Two ways in. Where the kernel may cache listings (no `allow_other`),
//! it opens directories without asking (FUSE no-opendir) and reads a
//! listing from offset 0 at its start (`readdir_unopened`): the offset of
//! each entry carries the listing's generation, so a reader goes on in the
//! listing it began. With `allow_other`, listings depend on who asks:
//! `opendir` fixes one per handle, never cached by the kernel.

use super::freshness::lists_what_changes;
use super::*;
use crate::locks::Locked;

/// Listings given from offset 0 without a handle, by (directory,
/// generation), until read to their end (or, past `MAX_SERVED`, dropped
/// oldest first: a reader then goes on in the listing as it is now).
#[derive(Default)]
pub(super) struct Served {
    listings: HashMap<(Ino, u32), Arc<Vec<DirEntry>>>,
    next_generation: u32,
}

/// How many unfinished handle-less listings are kept.
const MAX_SERVED: usize = 256;

impl Served {
    /// A listing of `dir` starts: its first page.
    fn start(&mut self, dir: Ino, entries: Arc<Vec<DirEntry>>) -> Page {
        self.next_generation = self.next_generation.wrapping_add(1).max(1);
        let generation = self.next_generation;
        if self.listings.len() >= MAX_SERVED {
            let oldest = self.listings.keys().max_by_key(|(_, g)| generation.wrapping_sub(*g)).copied();
            if let Some(k) = oldest {
                self.listings.remove(&k);
            }
        }
        self.listings.insert((dir, generation), entries.clone());
        Page { entries, from: 0, generation }
    }

    /// The page at `offset` (from `Page::offset_after`) of the listing it
    /// came from, if still kept; a listing read to its end is let go.
    fn resume(&mut self, dir: Ino, offset: u64) -> std::result::Result<Page, (u32, usize)> {
        let (generation, from) = ((offset >> 32) as u32, (offset & u64::from(u32::MAX)) as usize);
        let Some(entries) = self.listings.get(&(dir, generation)).cloned() else {
            return Err((generation, from));
        };
        if from >= entries.len() {
            self.listings.remove(&(dir, generation));
        }
        Ok(Page { entries, from, generation })
    }
}

/// Part of a listing: its entries from `from` on, each with the offset the
/// kernel gives back to go on after it (`offset_after`).
pub struct Page {
    pub entries: Arc<Vec<DirEntry>>,
    pub from: usize,
    generation: u32,
}

impl Page {
    pub fn offset_after(&self, index: usize) -> u64 {
        (u64::from(self.generation) << 32) | (index as u64 + 1)
    }
}

/// How many entries' attributes `plus_entries` works out at a time (a
/// READDIRPLUS reply of one page holds about 25).
const PLUS_CHUNK: usize = 32;

impl NsFs {
    /// The view a listing of `node` asked for at `asked` is served from:
    /// for a directory of namespaces or processes, one from a refresh that
    /// started after the call (as `ls /proc` would show a process made just
    /// before; concurrent callers share that refresh).
    fn view_for_listing(&self, node: Node, asked: Instant) -> Arc<View> {
        if lists_what_changes(node) {
            *self.scans.last_use.locked() = asked;
            match node {
                Node::PinnedType(_) => self.pins_now(asked),
                _ => self.rescan_after(asked),
            }
        } else {
            self.fresh()
        }
    }

    /// `node`'s entries in view `v`, `.` and `..` first.
    pub(super) fn entries_in(&self, v: &View, caller: Caller, node: Node) -> Result<Vec<DirEntry>> {
        self.with_ctx(v, caller, |ctx| entries(ctx, node))
    }

    /// Open a directory: its listing is fixed for this handle.
    pub fn opendir(&self, caller: Caller, ino: Ino) -> Result<OpenedDir> {
        let asked = Instant::now();
        let node = Self::node(ino)?;
        let v = self.view_for_listing(node, asked);
        let entries = self.entries_in(&v, caller, node)?;
        let unchanged = self.kernel_caches() && self.note_listing(ino, &entries).0;
        let fh = self.open.next_fh.fetch_add(1, Ordering::Relaxed);
        self.open.dirs.locked().insert(fh, Arc::new(entries));
        Ok(OpenedDir { fh, unchanged })
    }

    /// Read a directory the kernel opened without asking. Offset 0 lists
    /// it afresh, as `opendir` would; a later offset goes on in the listing
    /// it came from.
    pub fn readdir_unopened(&self, caller: Caller, ino: Ino, offset: u64) -> Result<Page> {
        let asked = Instant::now();
        let node = Self::node(ino)?;
        if offset == 0 {
            let v = self.view_for_listing(node, asked);
            let entries = self.entries_in(&v, caller, node)?;
            self.note_listing(ino, &entries);
            return Ok(self.served.locked().start(ino, Arc::new(entries)));
        }
        let resumed = self.served.locked().resume(ino, offset);
        match resumed {
            Ok(page) => Ok(page),
            Err((generation, from)) => Ok(Page {
                entries: Arc::new(self.entries_in(&self.current(), caller, node)?),
                from,
                generation,
            }),
        }
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

    /// Remember the listing `dir` now has: whether it is the one it had
    /// when last noted, and since when it has had it (its mtime).
    /// (Forgotten wholesale when it grows large: a forgotten directory is
    /// merely read again, its mtime moved on.)
    pub(super) fn note_listing(&self, dir: Ino, entries: &[DirEntry]) -> (bool, SystemTime) {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        std::hash::Hash::hash(entries, &mut h);
        let hash = std::hash::Hasher::finish(&h);
        let mut listed = self.listed.locked();
        if listed.len() > MAX_LISTINGS_REMEMBERED {
            listed.clear();
        }
        match listed.get(&dir) {
            Some(&(h, since)) if h == hash => (true, since),
            _ => {
                let now = SystemTime::now();
                listed.insert(dir, (hash, now));
                (false, now)
            }
        }
    }

    /// Entries of an open directory.
    pub fn readdir(&self, fh: u64, offset: u64) -> Result<Page> {
        let entries = self.open.dirs.locked().get(&fh).cloned().ok_or(Errno::EBADF)?;
        // One listing per handle: generation 0, offsets are positions.
        Ok(Page { entries, from: offset as usize, generation: 0 })
    }

    /// The entries of `page` from where it starts, each with its index and
    /// the attributes READDIRPLUS sends with it: a subdirectory's, as a
    /// lookup gives them (a walk into it then needs no LOOKUP); none for
    /// files, symlinks, `.` and `..` (a file's size is rendered only when
    /// asked for). Worked out a few at a time, as the reply fills.
    pub fn plus_entries<'p>(
        &'p self,
        caller: Caller,
        dir: Ino,
        page: &'p Page,
    ) -> impl Iterator<Item = (usize, &'p DirEntry, Option<Attr>)> + 'p {
        let rest = page.entries.get(page.from..).unwrap_or_default();
        rest.chunks(PLUS_CHUNK).enumerate().flat_map(move |(c, chunk)| {
            let attrs = self.subdirectory_attrs(caller, dir, chunk);
            let first = page.from + c * PLUS_CHUNK;
            chunk.iter().zip(attrs).enumerate().map(move |(k, (e, a))| (first + k, e, a))
        })
    }

    fn subdirectory_attrs(&self, caller: Caller, dir: Ino, entries: &[DirEntry]) -> Vec<Option<Attr>> {
        let Ok(dir_node) = Self::node(dir) else { return vec![None; entries.len()] };
        let v = self.current();
        self.with_ctx(&v, caller, |ctx| {
            entries
                .iter()
                .map(|e| {
                    if e.kind != Kind::Dir || e.name == "." || e.name == ".." {
                        return None;
                    }
                    let node = ctx.lookup(dir_node, &e.name).filter(|n| n.ino() == e.ino)?;
                    self.attr(&v, ctx, node, caller.uid).ok()
                })
                .collect()
        })
    }

    pub fn releasedir(&self, fh: u64) {
        self.open.dirs.locked().remove(&fh);
    }
}

/// How many directory listings `note_listing` keeps before starting over.
const MAX_LISTINGS_REMEMBERED: usize = 1 << 16;

/// `node`'s entries, `.` and `..` first.
pub(super) fn entries(ctx: &Ctx<'_>, node: Node) -> Result<Vec<DirEntry>> {
    if tree::kind(node) != Kind::Dir {
        return Err(Errno::ENOTDIR);
    }
    let list = ctx.list(node).ok_or(Errno::ENOENT)?;
    let mut out = Vec::with_capacity(list.len() + 2);
    out.push(DirEntry { name: ".".into(), ino: node.ino(), kind: Kind::Dir });
    out.push(DirEntry { name: "..".into(), ino: node.ino(), kind: Kind::Dir });
    out.extend(list.into_iter().map(|(name, n)| DirEntry { name, ino: n.ino(), kind: tree::kind(n) }));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listing(names: &[&str]) -> Arc<Vec<DirEntry>> {
        Arc::new(
            names.iter().map(|n| DirEntry { name: n.to_string(), ino: Ino(7), kind: Kind::File }).collect(),
        )
    }

    fn names(p: &Page) -> Vec<&str> {
        p.entries[p.from..].iter().map(|e| e.name.as_str()).collect()
    }

    #[test]
    fn a_reader_goes_on_in_the_listing_it_began_while_another_starts_over() {
        let mut served = Served::default();
        let dir = Ino(42);
        let first = served.start(dir, listing(&["a", "b", "c"]));
        // Another reader starts over after the directory changed.
        let second = served.start(dir, listing(&["a", "c", "d", "e"]));
        let next = served.resume(dir, first.offset_after(0)).ok().unwrap();
        assert_eq!(names(&next), ["b", "c"]);
        let next = served.resume(dir, second.offset_after(1)).ok().unwrap();
        assert_eq!(names(&next), ["d", "e"]);
        // Read to its end: let go.
        let end = served.resume(dir, first.offset_after(2)).ok().unwrap();
        assert!(names(&end).is_empty());
        assert!(served.resume(dir, first.offset_after(0)).is_err());
        assert!(served.resume(Ino(43), second.offset_after(0)).is_err(), "another directory's offset");
    }

    #[test]
    fn unfinished_listings_are_bounded_oldest_dropped_first() {
        let mut served = Served::default();
        let pages: Vec<Page> =
            (0..MAX_SERVED + 10).map(|i| served.start(Ino(i as u64), listing(&["x", "y"]))).collect();
        assert_eq!(served.listings.len(), MAX_SERVED);
        assert!(served.resume(Ino(0), pages[0].offset_after(0)).is_err(), "the oldest went");
        let last = MAX_SERVED + 9;
        assert!(served.resume(Ino(last as u64), pages[last].offset_after(0)).is_ok());
    }
}
