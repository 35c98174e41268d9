//! The mount phase of a pass: the nsfs bind mounts (pins) of our own mount
//! namespace and of every other one found, transitively; a table whose
//! mount ids are unchanged is not read again.

use super::*;

impl<K: Kernel> Pass<'_, K> {
    /// nsfs bind mounts in our own mount namespace, then in every other
    /// mount namespace found, until no new one turns up. A namespace read
    /// through a member whose mounts are unchanged is not read again.
    pub(super) fn walk_mount_namespaces(&mut self, members: &HashMap<Inode, Pid>) -> MountTables {
        let mut out = MountTables { tables: HashMap::default(), complete: true };
        let own = self.own_mntns;
        self.note(NsType::Mnt, own);
        let mut done: HashSet<Inode> = HashSet::default();
        let mut first = true;
        loop {
            let mut todo: Vec<(String, Work<K>)> = Vec::new();
            let pending: Vec<Inode> = if first {
                vec![own]
            } else {
                self.nss
                    .values()
                    .filter(|n| n.ns_type == NsType::Mnt && !done.contains(&n.inode))
                    .map(|n| n.inode)
                    .collect()
            };
            first = false;
            for mntns in pending {
                let reader = match (mntns == own, members.get(&mntns)) {
                    (true, _) => Some(Reader::Own),
                    (false, Some(&pid)) => Some(Reader::Member(pid)),
                    (false, None) => None,
                };
                let how = match reader {
                    Some(r) => How::Read(r, self.prev.tables.remove(&mntns)),
                    None => How::Inside(self.fds.remove(&mntns), self.paths_to_open(mntns)),
                };
                done.insert(mntns);
                todo.push((work_key(mntns, &how), Work { mntns, how }));
            }
            if todo.is_empty() {
                break;
            }
            let kernel = self.kernel.clone();
            let tracking = self.tracking;
            let threads = crate::parallel::threads();
            // Only reading from inside needs it; most rounds have none.
            let inside = todo.iter().any(|(_, w)| matches!(w.how, How::Inside(..)));
            let reached = Arc::new(if inside { self.reached_here() } else { HashSet::default() });
            let found = bounded::map(
                "reading mount tables",
                todo,
                threads,
                bounded::STALL,
                || (),
                move |_, w| w.run(&kernel, tracking, &reached),
            );
            for answer in found {
                match answer {
                    Some((work, outcome)) => self.add_mount_table(work, outcome, &mut out),
                    // Stuck: its pins are not known this time.
                    None => out.complete = false,
                }
            }
        }
        out
    }

    /// Namespaces reached by a pin here or a member: a pin of one found
    /// inside another mount namespace need not be opened.
    fn reached_here(&self) -> HashSet<Inode> {
        self.ranks.iter().filter(|(_, r)| **r <= PathRank::Member).map(|(i, _)| *i).collect()
    }

    fn add_mount_table(&mut self, work: Work<K>, outcome: TableRead<K>, out: &mut MountTables) {
        let mntns = work.mntns;
        match (work.how, outcome) {
            (How::Read(reader, Some(table)), TableRead::Unchanged) => {
                for m in &table.pins {
                    self.same.insert(m.inode);
                    self.add_pin(mntns, m.clone(), Some(reach(reader, m)), None);
                }
                out.tables.insert(mntns, table);
            }
            (How::Read(reader, _), TableRead::Read(pins, table)) => {
                for m in pins {
                    let path = reach(reader, &m);
                    self.add_pin(mntns, m, Some(path), None);
                }
                match table {
                    Some(t) => {
                        out.tables.insert(mntns, t);
                    }
                    None => out.complete = false,
                }
            }
            (How::Inside(fd, _), TableRead::Inside(pins)) => {
                out.complete = false;
                if let Some(fd) = fd {
                    self.fds.insert(mntns, fd);
                }
                for (m, fd) in pins {
                    self.add_pin(mntns, m, None, fd);
                }
            }
            _ => out.complete = false,
        }
    }

    fn add_pin(
        &mut self,
        mntns: Inode,
        m: parse::NsfsMount,
        path: Option<(PathBuf, PathRank)>,
        fd: Option<K::Ns>,
    ) {
        let ns = match path {
            Some((p, rank)) => self.note_at(m.ns_type, m.inode, rank, || p),
            None => self.note(m.ns_type, m.inode),
        };
        ns.pins.push(Pin { mntns, path: m.mount_point.clone() });
        self.holders.push((m.inode, Holder::Mount { mntns, path: m.mount_point }));
        // Kept even if it was seen by a path already (see `sockets`).
        if let Some(fd) = fd {
            self.fds.entry(m.inode).or_insert(fd);
        }
    }
}

/// What the mount phase read: the tables to keep (mount ids and pins of
/// each mount namespace read through a process), and whether every mount
/// namespace read has one (only then can the next pass prove its pins
/// unchanged from the tables alone).
pub(super) struct MountTables {
    pub(super) tables: HashMap<Inode, Table>,
    pub(super) complete: bool,
}

/// How to read one mount namespace's pins in this pass.
enum How<K: Kernel> {
    /// Through `/proc/{self,PID}`, with its table from the last pass.
    Read(Reader, Option<Table>),
    /// From inside (no process in it), through this descriptor, or one
    /// opened by these paths.
    Inside(Option<K::Ns>, PathsToOpen),
}

/// How the reading of one mount namespace is named if it gets stuck.
fn work_key<K: Kernel>(mntns: Inode, how: &How<K>) -> String {
    match how {
        How::Read(Reader::Own, _) => "nsfuse's own mount table".to_owned(),
        How::Read(Reader::Member(pid), _) => procfs::stuck_key(*pid),
        How::Inside(_, paths) => stuck_key_of(paths, "mount namespace", mntns),
    }
}

struct Work<K: Kernel> {
    mntns: Inode,
    how: How<K>,
}

enum TableRead<K: Kernel> {
    Unchanged,
    Read(Vec<parse::NsfsMount>, Option<Table>),
    Inside(Vec<(parse::NsfsMount, Option<K::Ns>)>),
}

impl<K: Kernel> Work<K> {
    /// Read it; the work comes back with the outcome (a table to keep, a
    /// descriptor opened).
    fn run(self, kernel: &K, tracking: bool, reached: &HashSet<Inode>) -> (Work<K>, TableRead<K>) {
        let outcome = match &self.how {
            How::Read(_, Some(table)) if table.unchanged_on(kernel) => TableRead::Unchanged,
            How::Read(reader, _) => {
                let (pins, table) = kernel.read_mounts(*reader, self.mntns, tracking);
                TableRead::Read(pins, table)
            }
            How::Inside(fd, paths) => {
                let fd = match fd {
                    Some(_) => None,
                    None => open_first(kernel, paths, self.mntns),
                };
                let work = match fd {
                    Some(fd) => Work { mntns: self.mntns, how: How::Inside(Some(fd), paths.clone()) },
                    None => self,
                };
                let pins = match &work.how {
                    How::Inside(Some(fd), _) => {
                        kernel.read_inside(fd, &|i| !reached.contains(&i)).unwrap_or_else(|e| {
                            log::debug!("cannot look inside mount namespace {}: {e}", work.mntns);
                            Vec::new()
                        })
                    }
                    _ => Vec::new(),
                };
                return (work, TableRead::Inside(pins));
            }
        };
        (self, outcome)
    }
}

fn reach(reader: Reader, m: &parse::NsfsMount) -> (PathBuf, PathRank) {
    let rank = match reader {
        Reader::Own => PathRank::Pin,
        Reader::Member(_) => PathRank::Foreign,
    };
    (reader.reach(m), rank)
}
