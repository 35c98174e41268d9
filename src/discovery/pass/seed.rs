//! The patched model: an incremental pass starts from what the last
//! snapshot says the processes it keeps (those that did not run) hold, and
//! takes out only the contributions of the processes that ran or are gone,
//! instead of adding every remembered process again. The processes read now
//! are then added as a full pass adds them (`add_record`), and the phases
//! after work as in a full pass, so the full pass stays the reference the
//! patched model is tested against (`tracker_churn_tests`).
//!
//! A process's contributions are its entries in the model: `task` holders
//! (a namespace's `processes` with them), `fd`, `socket` and `for-children`
//! holders, its row of the process table and its cgroup. Namespaces no
//! removed process held are copied whole; the rest are filtered by PID.

use super::*;

/// The processes whose contributions to the last snapshot go, and the
/// namespaces they held (only those need their holders filtered).
pub(super) struct Removed {
    pub(super) pids: HashSet<Pid>,
    pub(super) held: HashSet<Inode>,
}

impl Removed {
    pub(super) fn new() -> Removed {
        Removed { pids: HashSet::default(), held: HashSet::default() }
    }

    /// Take out what `rec`, the last pass's record of `pid`, contributed.
    pub(super) fn add(&mut self, pid: Pid, rec: &Record) {
        self.pids.insert(pid);
        let found = &rec.found;
        let links = std::iter::once(&found.links).chain(found.threads.iter().map(|(_, l)| l));
        self.held.extend(links.flat_map(|l| l.0).filter(|&i| i != 0).map(Inode::from));
        self.held.extend(found.ns_fds.iter().map(|&(_, _, i)| i));
        self.held.extend(rec.socket_netns.iter().map(|&(_, i)| i));
    }
}

impl<K: Kernel> Pass<'_, K> {
    /// Seed the model with what `last` says the processes not in `removed`
    /// hold; `kept` are their records (to find a thread's for-children
    /// link). Adds a member of each mount namespace to `out`.
    pub(super) fn seed(
        &mut self,
        last: &Snapshot,
        removed: &Removed,
        kept: &HashMap<Pid, Record>,
        out: &mut Handoff,
    ) {
        let stays = |pid: &Pid| !removed.pids.contains(pid);
        self.procs.extend(last.processes.iter().filter(|(p, _)| stays(p)).map(|(p, l)| (*p, *l)));
        self.cgroups.extend(last.cgroups.iter().filter(|(p, _)| stays(p)).cloned());
        for ns in last.namespaces.values() {
            let filter = removed.held.contains(&ns.inode);
            let (tasks, holders) = (self.tasks.len(), self.holders.len());
            for h in &ns.holders {
                match *h {
                    Holder::Task { pid, tid } if !filter || stays(&pid) => {
                        self.tasks.push((ns.inode, (pid, tid)))
                    }
                    Holder::Fd { pid, .. } | Holder::Socket { pid, .. } | Holder::ForChildren { pid }
                        if !filter || stays(&pid) =>
                    {
                        self.holders.push((ns.inode, h.clone()))
                    }
                    _ => {}
                }
            }
            if self.tasks.len() == tasks && self.holders.len() == holders {
                continue;
            }
            // Held by a process that has not run: the same namespace.
            self.same.insert(ns.inode);
            let (ty, inode) = (ns.ns_type, ns.inode);
            if let Some(&(_, (pid, tid))) = self.tasks.get(tasks) {
                // A member to read the mount table through: a process in it
                // (a thread made without CLONE_FS may be in another).
                let process = self.tasks[tasks..].iter().find(|&&(_, (p, t))| p == t);
                if let (NsType::Mnt, Some(&(_, (member, _)))) = (ty, process) {
                    out.members.entry(inode).or_insert(member);
                }
                let path = || match pid == tid {
                    true => member_path(pid, ty.name()),
                    false => thread_path(pid, tid, ty.name()),
                };
                self.note_at(ty, inode, PathRank::Member, path);
                continue;
            }
            // A member's link before an fd, as a full pass ranks them.
            let held = &self.holders[holders..];
            let member = held.iter().find_map(|(_, h)| match *h {
                Holder::ForChildren { pid } => {
                    kept.get(&pid).and_then(|r| for_children_path(pid, &r.found, ty, inode))
                }
                _ => None,
            });
            let fd = || {
                held.iter().find_map(|(_, h)| match *h {
                    Holder::Fd { pid, fd } => Some(PathBuf::from(format!("/proc/{pid}/fd/{fd}"))),
                    _ => None,
                })
            };
            let way = member.map(|p| (PathRank::Member, p)).or_else(|| fd().map(|p| (PathRank::Fd, p)));
            match way {
                Some((rank, path)) => self.note_at(ty, inode, rank, || path),
                // Held by sockets alone: no path through a process.
                None => self.note(ty, inode),
            };
        }
    }
}

/// The path of the pid_for_children or time_for_children link of `found`
/// (the process's, else a thread's) that leads to `inode`.
fn for_children_path(pid: Pid, found: &procfs::Process, ty: NsType, inode: Inode) -> Option<PathBuf> {
    let link = match ty {
        NsType::Pid => Link::PidForChildren,
        NsType::Time => Link::TimeForChildren,
        _ => return None,
    };
    if found.links.of(link) == Some(inode) {
        return Some(member_path(pid, link.name()));
    }
    let (tid, _) = found.threads.iter().find(|(_, l)| l.of(link) == Some(inode))?;
    Some(thread_path(pid, *tid, link.name()))
}
