//! The process phase of a pass: which processes to read again (their
//! stamps moved, or they are new), reading them, and what each adds to the
//! model; and the quiet shortcut: when nothing changed, the last snapshot
//! serves again.

use super::seed::Removed;
use super::*;

/// PIDs always worth probing rather than listing /proc (the probe of one
/// costs about what listing a few processes does).
const PROBE_AT_LEAST: usize = 256;

/// How far before the last PID handed out a full listing's next probe
/// starts: PIDs handed out while /proc was read.
const FORK_LAG: i32 = 16;

/// A socket of a process read now: (process, fd, socket inode).
pub(super) type SocketRef = (Pid, i32, u64);

/// What the process phase hands on when something changed.
pub(super) struct Handoff {
    /// The processes read now, in /proc order (the rest were remembered).
    pub(super) read: Vec<Pid>,
    /// Their sockets, for the socket phase.
    pub(super) sockets: Vec<SocketRef>,
    /// A member of each mount namespace, for the mount phase.
    pub(super) members: HashMap<Inode, Pid>,
    /// Every process's record, for the next pass (the socket phase adds
    /// the namespaces of the sockets of those read now).
    pub(super) records: HashMap<Pid, Record>,
    /// The processes found, for the next pass.
    pub(super) listing: Option<Listing>,
    /// Whether the model was seeded from the last one (else every process
    /// was added).
    pub(super) patched: bool,
}

/// The last snapshot served again, the memory for the next pass, and the
/// processes read to prove nothing changed.
pub(super) struct Kept {
    pub(super) snapshot: Snapshot,
    pub(super) memory: Memory,
    pub(super) read: Vec<Pid>,
}

/// What the process phase found.
pub(super) enum Walked {
    /// Nothing changed: the last snapshot again, and the memory for the
    /// next pass.
    Quiet(Box<Kept>),
    Changed(Handoff),
}

impl<K: Kernel> Pass<'_, K> {
    /// Whose cgroups this pass reads. For owner lines only, the host's
    /// namespaces are those `owners::index::current` skips: PID 1's, else
    /// our own.
    fn cgroups_to_read(&self) -> procfs::CgroupsOf {
        if self.opts.cgroups == Cgroups::Every {
            return procfs::CgroupsOf::Every;
        }
        let host = [Pid(1), self.own_pid]
            .into_iter()
            .find_map(|p| self.kernel.read_processes(&[p], Some(p), None, &procfs::CgroupsOf::Every).pop());
        host.map_or(procfs::CgroupsOf::Every, |(_, p)| procfs::CgroupsOf::OutsideOf(p.links))
    }

    /// Every process: the unchanged ones from memory, the rest read now.
    /// Returns those read.
    pub(super) fn walk_processes(&mut self, budget: Option<usize>) -> Result<Walked> {
        let (pids, next_range, nothing_new) = self.list_processes()?;
        // A remembered process is re-read unless its stamps prove it has
        // not run. Records stay where they are (a quiet host's refresh
        // moves and rehashes nothing): only those that ran are taken out.
        let same = {
            let remembered: Vec<Option<&procfs::Process>> =
                pids.iter().map(|p| self.prev.procs.get(p).map(|r| &r.found)).collect();
            let mut same = self.kernel.still_unchanged(&remembered);
            // nsfuse itself runs at every refresh (its threads answer the
            // requests), and changes nothing it holds: its descriptors are
            // not read, and a helper thread's stay in a mount namespace it
            // reads is nsfuse at work, not a holder. What the last read of
            // it found stands (a full pass reads it again). Only where its
            // descriptors are left out (the daemon): elsewhere they are
            // read, and may change.
            let own = pids.iter().position(|p| *p == self.own_pid).filter(|&i| remembered[i].is_some());
            if let Some(i) = own.filter(|_| self.opts.skip_own_fds) {
                same[i] = true;
            }
            same
        };
        let (kept, dirty, before, records, removed) = self.sort_out(&pids, same);
        let gone = removed.pids.len() > before.len();
        let held: usize = records.values().flat_map(|r| &r.found.stamps).filter(|s| s.holds_file()).count();
        let budget = budget.map(|b| Arc::new(StampBudget::new(b.saturating_sub(held))));
        let skip = self.opts.skip_own_fds.then_some(self.own_pid);
        let cgroups = self.cgroups_to_read();
        let read = self.kernel.read_processes(&dirty, skip, budget.as_ref(), &cgroups);
        let listing =
            next_range.map(|(from, to)| Listing { from, to, pids: self.still_listed(&kept, &dirty, &read) });
        // Every process that ran was read again and holds what it held (a
        // PID never readable, like an init we may not inspect, stays so).
        let all_alike = read.len() == before.len()
            && read
                .iter()
                .all(|(pid, found)| before.get(pid).is_some_and(|b| b.found.holds_the_same_as(found)));
        let quiet = !gone && all_alike && nothing_new && self.prev.tables_complete;
        if quiet && self.prev.last.is_some() && self.tables_unchanged() {
            if let Some(last) = self.prev.last.take() {
                let memory = self.keep_last(&last, records, read, before, listing);
                return Ok(Walked::Quiet(Box::new(Kept { snapshot: last, memory, read: dirty })));
            }
        }
        let mut out = Handoff {
            read: Vec::new(),
            sockets: Vec::new(),
            members: HashMap::default(),
            records: HashMap::default(),
            listing,
            patched: false,
        };
        match self.prev.last.take() {
            // The last model, less what the processes that ran or are gone held.
            Some(last) => {
                self.seed(&last, &removed, &records, &mut out);
                out.patched = true;
            }
            None => {
                for pid in &kept {
                    if let Some(rec) = records.get(pid) {
                        self.add_record(*pid, rec, true, &mut out);
                    }
                }
            }
        }
        out.records = records;
        for (pid, found) in read {
            let rec = Record { found, socket_netns: Vec::new() };
            self.add_record(pid, &rec, false, &mut out);
            out.records.insert(pid, rec);
        }
        out.read = dirty;
        Ok(Walked::Changed(out))
    }

    /// Sort the listed processes by their stamps: those that have not run
    /// (their records stay in the map, which is returned), those that ran
    /// or are new (the records of those that ran apart, to compare), and
    /// the remembered ones that ran or are gone (the gone ones' records
    /// dropped): what they held is taken out of the last model.
    #[allow(clippy::type_complexity)]
    fn sort_out(
        &mut self,
        pids: &[Pid],
        same: Vec<bool>,
    ) -> (Vec<Pid>, Vec<Pid>, HashMap<Pid, Record>, HashMap<Pid, Record>, Removed) {
        let (mut kept, mut dirty) = (Vec::with_capacity(pids.len()), Vec::new());
        for (&pid, same) in pids.iter().zip(same) {
            if same {
                kept.push(pid);
            } else {
                dirty.push(pid);
            }
        }
        let before: HashMap<Pid, Record> =
            dirty.iter().filter_map(|p| self.prev.procs.remove_entry(p)).collect();
        let mut removed = Removed::new();
        before.iter().for_each(|(pid, rec)| removed.add(*pid, rec));
        let mut records = std::mem::take(&mut self.prev.procs);
        // Beyond the kept ones, what is left is gone: drop their stamps.
        if records.len() > kept.len() {
            let listed: HashSet<Pid> = kept.iter().copied().collect();
            let gone: Vec<Pid> = records.keys().copied().filter(|p| !listed.contains(p)).collect();
            for pid in gone {
                if let Some(rec) = records.remove(&pid) {
                    removed.add(pid, &rec);
                }
            }
        }
        (kept, dirty, before, records, removed)
    }

    /// Whether every mount namespace the last pass read still has the
    /// mounts it had: known from the mount watch where the kernel has it,
    /// else asked with listmount (bounded, as the reads are).
    fn tables_unchanged(&self) -> bool {
        let ids: Vec<u64> = self.prev.tables.values().map(|t| t.mnt_ns_id()).collect();
        if self.kernel.tables_unchanged_since_read(&ids) {
            return true;
        }
        let items: Vec<(String, (u64, Vec<u64>))> =
            self.prev.tables.iter().map(|(ns, t)| (format!("mount namespace {ns}"), t.ids())).collect();
        let threads = crate::parallel::threads();
        let kernel = self.kernel.clone();
        let same = bounded::map(
            "checking mounts",
            items,
            threads,
            bounded::STALL,
            || (),
            move |_, (id, mounts)| kernel.mounts_still(id, &mounts),
        );
        same.iter().all(|s| *s == Some(true))
    }

    /// Nothing changed: the last snapshot serves again, and the memory
    /// carries over with the records just read (their new stamps, their
    /// sockets' namespaces as before).
    fn keep_last(
        &mut self,
        last: &Snapshot,
        kept: HashMap<Pid, Record>,
        read: Vec<(Pid, procfs::Process)>,
        mut before: HashMap<Pid, Record>,
        listing: Option<Listing>,
    ) -> Memory {
        let mut next = Memory { procs: kept, listing, ..Memory::default() };
        for (pid, found) in read {
            let socket_netns = before.remove(&pid).map(|b| b.socket_netns).unwrap_or_default();
            next.procs.insert(pid, Record { found, socket_netns });
        }
        let prev = &mut self.prev;
        next.tables = std::mem::take(&mut prev.tables);
        next.relations = std::mem::take(&mut prev.relations);
        next.namespaces = std::mem::take(&mut prev.namespaces);
        next.tables_complete = true;
        next.last = Some(last.clone());
        next
    }

    /// Every process, ascending: the last pass's plus those made since
    /// (probed by PID), or /proc listed when too many PIDs were handed out
    /// to probe. Returns the PIDs, the range of PIDs the next pass probes
    /// from and to, and whether no process was added to the last pass's.
    #[allow(clippy::type_complexity)]
    fn list_processes(&mut self) -> Result<(Vec<Pid>, Option<(Pid, Pid)>, bool)> {
        let last_pid = self.tracking.then(|| self.kernel.last_pid()).flatten();
        if let (Some(now), Some(last)) = (last_pid, self.prev.listing.take()) {
            // Probed only while that is cheaper than a listing, and not
            // across a wrap-around of PIDs.
            let limit = last.pids.len() / 4 + PROBE_AT_LEAST;
            let span = now.get().checked_sub(last.from.get()).and_then(|s| usize::try_from(s).ok());
            let made =
                span.filter(|&s| s <= limit).and_then(|_| self.kernel.processes_made_between(last.from, now));
            if let Some(made) = made {
                let mut pids = last.pids;
                let new: Vec<Pid> = made.into_iter().filter(|p| pids.binary_search(p).is_err()).collect();
                let nothing_new = new.is_empty();
                if !nothing_new {
                    pids.extend(new);
                    pids.sort_unstable();
                }
                return Ok((pids, Some((last.to, now)), nothing_new));
            }
        }
        let mut pids = self.kernel.list_pids(self.prev.procs.len() + 64)?;
        pids.sort_unstable();
        // (Read before the listing: a PID handed out around it is probed
        // by the next pass.)
        let range = last_pid.map(|n| (Pid(n.get().saturating_sub(FORK_LAG)), n));
        Ok((pids, range, false))
    }

    /// The processes still there after the walk, ascending: those that did
    /// not run, those read, and those that could not be read but are there.
    fn still_listed(&self, kept: &[Pid], dirty: &[Pid], read: &[(Pid, procfs::Process)]) -> Vec<Pid> {
        let mut pids = kept.to_vec();
        if dirty.is_empty() {
            return pids;
        }
        let unread: Vec<Pid> = {
            let got: HashSet<Pid> = read.iter().map(|r| r.0).collect();
            dirty.iter().copied().filter(|p| !got.contains(p)).collect()
        };
        pids.extend(read.iter().map(|r| r.0));
        pids.extend(self.kernel.still_there(&unread));
        pids.sort_unstable();
        pids
    }

    /// Add what one process holds; `same` when it was not re-read.
    fn add_record(&mut self, pid: Pid, rec: &Record, same: bool, out: &mut Handoff) {
        let found = &rec.found;
        let links = found.links;
        self.procs.push((pid, links));
        if let Some(c) = &found.cgroup {
            self.cgroups.push((pid, c.clone()));
        }
        for link in Link::OWN {
            if let Some(inode) = links.of(link) {
                self.note_at(link.ns_type(), inode, PathRank::Member, || member_path(pid, link.name()));
                self.tasks.push((inode, (pid, pid)));
            }
        }
        if let Some(m) = links.of(Link::Own(NsType::Mnt)) {
            out.members.entry(m).or_insert(pid);
        }
        self.add_for_children(pid, None, &links);
        for (tid, tlinks) in &found.threads {
            for link in Link::OWN {
                match tlinks.of(link) {
                    Some(inode) if Some(inode) != links.of(link) => {
                        let path = || thread_path(pid, *tid, link.name());
                        self.note_at(link.ns_type(), inode, PathRank::Member, path);
                        self.tasks.push((inode, (pid, *tid)));
                    }
                    _ => {}
                }
            }
            self.add_for_children(pid, Some((*tid, &links)), tlinks);
        }
        for &(fd, ty, inode) in &found.ns_fds {
            self.note_at(ty, inode, PathRank::Fd, || format!("/proc/{pid}/fd/{fd}").into());
            self.holders.push((inode, Holder::Fd { pid, fd }));
        }
        if same {
            for &(fd, netns) in &rec.socket_netns {
                self.note(NsType::Net, netns);
                self.holders.push((netns, Holder::Socket { pid, fd }));
            }
            let threads = found.threads.iter().flat_map(|(_, l)| l.0);
            let inodes = links.0.into_iter().chain(threads).filter(|&i| i != 0).map(Inode::from);
            self.same.extend(inodes);
            self.same.extend(found.ns_fds.iter().map(|&(_, _, i)| i));
            self.same.extend(rec.socket_netns.iter().map(|&(_, i)| i));
        } else {
            out.sockets.extend(found.sockets.iter().map(|&(fd, sock)| (pid, fd, sock)));
        }
    }

    /// pid_for_children / time_for_children that differ from the task's own
    /// (and, for a thread, from its process's).
    fn add_for_children(&mut self, pid: Pid, thread: Option<(Pid, &ProcessLinks)>, links: &ProcessLinks) {
        let process = thread.map(|(_, p)| p);
        let pairs = [
            (Link::PidForChildren, Link::Own(NsType::Pid)),
            (Link::TimeForChildren, Link::Own(NsType::Time)),
        ];
        for (child, own) in pairs {
            let Some(inode) = links.of(child) else {
                continue;
            };
            let same_as_process = process.is_some_and(|p| p.of(child) == Some(inode));
            if Some(inode) == links.of(own) || same_as_process {
                continue;
            }
            let name = child.name();
            let path = || match thread {
                Some((tid, _)) => thread_path(pid, tid, name),
                None => member_path(pid, name),
            };
            self.note_at(child.ns_type(), inode, PathRank::Member, path);
            // Several threads may give the same one: `finish` dedups.
            self.holders.push((inode, Holder::ForChildren { pid }));
        }
    }
}
