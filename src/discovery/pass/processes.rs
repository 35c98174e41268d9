//! The process phase of a pass: which processes to read again (their
//! stamps moved, or they are new), reading them, and what each adds to the
//! model; and the quiet shortcut: when nothing changed, the last snapshot
//! serves again.

use super::*;

impl<K: Kernel> Pass<'_, K> {
    /// Every process: the unchanged ones from memory, the rest read now.
    /// Returns those read.
    pub(super) fn walk_processes(&mut self, budget: Option<usize>) -> Result<Vec<Pid>> {
        let pids = self.list_processes()?;
        // A remembered process is re-read unless its stamps prove it has
        // not run. Records stay where they are (a quiet host's refresh
        // moves and rehashes nothing): only those that ran are taken out.
        let same = {
            let remembered: Vec<Option<&procfs::Process>> =
                pids.iter().map(|p| self.prev.procs.get(p).map(|r| &r.found)).collect();
            self.kernel.still_unchanged(&remembered)
        };
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
        let mut records = std::mem::take(&mut self.prev.procs);
        // Beyond the kept ones, what is left is gone: drop their stamps.
        let gone = records.len() > kept.len();
        if gone {
            let listed: HashSet<Pid> = kept.iter().copied().collect();
            records.retain(|p, _| listed.contains(p));
        }
        let held: usize = records.values().flat_map(|r| &r.found.stamps).filter(|s| s.holds_file()).count();
        let budget = budget.map(|b| Arc::new(StampBudget::new(b.saturating_sub(held))));
        let skip = self.opts.skip_own_fds.then_some(self.own_pid);
        let read = self.kernel.read_processes(&dirty, skip, budget.as_ref());
        // Every process that ran was read again and holds what it held (a
        // PID never readable, like an init we may not inspect, stays so).
        let all_alike = read.len() == before.len()
            && read
                .iter()
                .all(|(pid, found)| before.get(pid).is_some_and(|b| b.found.holds_the_same_as(found)));
        let quiet = !gone && all_alike && self.listing_reused && self.prev.tables_complete;
        if quiet && self.prev.last.is_some() && self.tables_unchanged() {
            if let Some(last) = self.prev.last.take() {
                self.keep_last(last, records, read, before);
                return Ok(dirty);
            }
        }
        for pid in &kept {
            if let Some(rec) = records.get(pid) {
                self.add_record(*pid, rec, true);
            }
        }
        if self.tracking {
            self.next.procs = records;
        }
        for (pid, found) in read {
            let rec = Record { found, socket_netns: Vec::new() };
            self.add_record(pid, &rec, false);
            if self.tracking {
                self.next.procs.insert(pid, rec);
            }
        }
        Ok(dirty)
    }

    /// Whether every mount namespace the last pass read still has the
    /// mounts it had (listmount ids; bounded, as the reads are).
    fn tables_unchanged(&self) -> bool {
        let items: Vec<(String, (u64, Vec<u64>))> =
            self.prev.tables.iter().map(|(ns, t)| (format!("mount namespace {ns}"), t.ids())).collect();
        let threads = crate::par::threads();
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
        last: Snapshot,
        kept: HashMap<Pid, Record>,
        read: Vec<(Pid, procfs::Process)>,
        mut before: HashMap<Pid, Record>,
    ) {
        let mut next = std::mem::take(&mut self.next);
        next.procs = kept;
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
        self.unchanged = Some((last, next));
    }

    /// Every PID in /proc: the last pass's listing when no PID was handed
    /// out since (a quiet host's refresh skips the largest directory read).
    fn list_processes(&mut self) -> Result<Vec<Pid>> {
        let last_pid = self.tracking.then(|| self.kernel.last_pid()).flatten();
        if let (Some(now), Some((then, pids))) = (last_pid, self.prev.listing.take()) {
            if self.kernel.only_ours_between(then, now) {
                self.next.listing = Some((now, pids.clone()));
                self.listing_reused = true;
                return Ok(pids);
            }
        }
        let pids = self.kernel.list_pids(self.prev.procs.len() + 64)?;
        // (Read before the listing: a PID handed out between the two reads
        // makes the next pass list again.)
        self.next.listing = last_pid.map(|n| (n, pids.clone()));
        Ok(pids)
    }

    /// Add what one process holds; `same` when it was not re-read.
    fn add_record(&mut self, pid: Pid, rec: &Record, same: bool) {
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
            self.mntns_member.entry(m).or_insert(pid);
        }
        self.add_for_children(pid, None, &links);
        for (tid, tlinks) in &found.threads {
            for link in Link::OWN {
                match tlinks.of(link) {
                    Some(inode) if Some(inode) != links.of(link) => {
                        let path = || format!("/proc/{pid}/task/{tid}/ns/{}", link.name()).into();
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
            self.sockets.extend(found.sockets.iter().map(|&(fd, sock)| (pid, fd, sock)));
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
                Some((tid, _)) => PathBuf::from(format!("/proc/{pid}/task/{tid}/ns/{name}")),
                None => member_path(pid, name),
            };
            self.note_at(child.ns_type(), inode, PathRank::Member, path);
            // Several threads may give the same one: `finish` dedups.
            self.holders.push((inode, Holder::ForChildren { pid }));
        }
    }
}
