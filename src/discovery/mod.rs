//! Discovery: reads the kernel and builds a `Snapshot` of every live
//! namespace and what keeps it alive. Sources, in order (SPEC section 5):
//! process and thread ns links, nsfs fds, sockets (SIOCGSKNS), nsfs bind
//! mounts in every reachable mount namespace (transitively, processless ones
//! included), then owners and parents up to the top. A process or namespace
//! that vanishes mid-scan is skipped, never an error.

pub mod details;
mod netlink;
pub mod parse;
mod procfs;

use crate::enter;
use crate::model::{Holder, Inode, Namespace, NsType, Pid, Pin, ProcessLinks, Snapshot};
use crate::sys;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime};

/// Errors that stop a scan as a whole (a vanished process never does).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
}

pub type Result<T> = std::result::Result<T, Error>;

/// Where nsfuse keeps its pins, so scans can name them.
#[derive(Clone, Debug)]
pub struct ScanOptions {
    pub pin_dir: PathBuf,
    pub netns_dir: PathBuf,
    /// Leave out the scanning process's own open fds (the daemon sets this:
    /// its transient nsfs fds are not holders anyone cares about).
    pub skip_own_fds: bool,
}

impl Default for ScanOptions {
    fn default() -> Self {
        ScanOptions {
            pin_dir: PathBuf::from("/run/nsfuse"),
            netns_dir: PathBuf::from("/run/netns"),
            skip_own_fds: false,
        }
    }
}

/// How good a path is for reaching a namespace (lower is better): the `ns`
/// symlink prefers a visible pin, then a member's link, then a holder's fd.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum PathRank {
    Pin = 0,
    Member = 1,
    Fd = 2,
    Foreign = 3,
}

/// Scan the whole host once.
pub fn scan(opts: &ScanOptions) -> Result<Snapshot> {
    let started = Instant::now();
    let taken_at = SystemTime::now();
    let mut s = Scan::new(opts)?;
    let mut phases = [std::time::Duration::ZERO; 4];
    let mut t = Instant::now();
    let mut lap = |i: usize| {
        phases[i] = t.elapsed();
        t = Instant::now();
    };
    s.walk_processes()?;
    lap(0);
    s.resolve_sockets();
    lap(1);
    s.walk_mount_namespaces();
    lap(2);
    s.resolve_owners();
    lap(3);
    if sys::has_listns() {
        log::debug!("listns(2) present: its ids are cross-checked by the /proc walk");
    }
    let mut snap = s.finish();
    snap.taken_at = Some(taken_at);
    snap.duration = started.elapsed();
    log::debug!(
        "scan: {} namespaces, {} processes in {:?} (procs {:?}, sockets {:?}, mounts {:?}, owners {:?})",
        snap.namespaces.len(),
        snap.processes.len(),
        snap.duration,
        phases[0],
        phases[1],
        phases[2],
        phases[3]
    );
    Ok(snap)
}

struct Scan<'o> {
    opts: &'o ScanOptions,
    proc: OwnedFd,
    own_pid: Pid,
    own_mntns: Inode,
    nss: HashMap<Inode, Namespace>,
    ranks: HashMap<Inode, PathRank>,
    procs: BTreeMap<Pid, ProcessLinks>,
    /// Namespaces reachable only through a descriptor we hold.
    fds: HashMap<Inode, OwnedFd>,
    sockets: Vec<(Pid, i32, u64)>,
    mntns_member: HashMap<Inode, Pid>,
}

impl<'o> Scan<'o> {
    fn new(opts: &'o ScanOptions) -> Result<Self> {
        let proc_path = Path::new("/proc");
        let proc = sys::open_path(proc_path, libc::O_RDONLY | libc::O_DIRECTORY)
            .map_err(|source| Error::Io { path: proc_path.into(), source })?;
        let own_mnt = Path::new("/proc/self/ns/mnt");
        let own_mntns = sys::fstatat(None, c"/proc/self/ns/mnt")
            .map_err(|source| Error::Io { path: own_mnt.into(), source })?
            .st_ino;
        Ok(Scan {
            opts,
            proc,
            own_pid: sys::getpid(),
            own_mntns,
            nss: HashMap::new(),
            ranks: HashMap::new(),
            procs: BTreeMap::new(),
            fds: HashMap::new(),
            sockets: Vec::new(),
            mntns_member: HashMap::new(),
        })
    }

    /// Record that namespace (type, inode) exists, reachable at `path`.
    fn note(&mut self, ty: NsType, inode: Inode, path: Option<(PathBuf, PathRank)>) -> &mut Namespace {
        if let Some((p, rank)) = path {
            let better = self.ranks.get(&inode).is_none_or(|&r| rank < r);
            if better {
                self.ranks.insert(inode, rank);
                let ns = self.nss.entry(inode).or_insert_with(|| Namespace::new(ty, inode));
                ns.path = Some(p);
                return ns;
            }
        }
        self.nss.entry(inode).or_insert_with(|| Namespace::new(ty, inode))
    }

    fn walk_processes(&mut self) -> Result<()> {
        let mut buf = Vec::new();
        let mut pids = Vec::with_capacity(1024);
        sys::for_each_dirent(self.proc.as_fd(), &mut buf, |name, _| {
            if let Some(p) = parse::pid_name(name) {
                pids.push(p);
            }
        })
        .map_err(|source| Error::Io { path: "/proc".into(), source })?;
        let skip = self.opts.skip_own_fds.then_some(self.own_pid);
        let proc = self.proc.as_fd();
        for (pid, found) in procfs::walk_parallel(proc, &pids, skip) {
            self.add_process(pid, found);
        }
        Ok(())
    }

    fn add_process(&mut self, pid: Pid, found: procfs::Process) {
        let links = found.links;
        self.procs.insert(pid, links);
        for (i, name) in crate::model::LINK_NAMES.iter().enumerate().take(8) {
            if let Some(inode) = links.get(i) {
                let ty = crate::model::LINK_TYPES[i];
                let ns = self.note(ty, inode, Some((member_path(pid, name), PathRank::Member)));
                ns.processes.push(pid);
                ns.holders.push(Holder::Task { pid, tid: pid });
            }
        }
        if let Some(m) = links.get(NsType::Mnt.index()) {
            self.mntns_member.entry(m).or_insert(pid);
        }
        self.add_for_children(pid, None, &links);
        for (tid, tlinks) in found.threads {
            for i in 0..8 {
                match tlinks.get(i) {
                    Some(inode) if Some(inode) != links.get(i) => {
                        let ty = crate::model::LINK_TYPES[i];
                        let path = format!("/proc/{pid}/task/{tid}/ns/{}", crate::model::LINK_NAMES[i]);
                        let ns = self.note(ty, inode, Some((path.into(), PathRank::Member)));
                        ns.processes.push(pid);
                        ns.holders.push(Holder::Task { pid, tid });
                    }
                    _ => {}
                }
            }
            self.add_for_children(pid, Some((tid, &links)), &tlinks);
        }
        for (fd, ty, inode) in found.ns_fds {
            let ns = self.note(ty, inode, Some((format!("/proc/{pid}/fd/{fd}").into(), PathRank::Fd)));
            ns.holders.push(Holder::Fd { pid, fd });
        }
        for (fd, sock) in found.sockets {
            self.sockets.push((pid, fd, sock));
        }
    }

    /// pid_for_children / time_for_children that differ from the task's own
    /// (and, for a thread, from its process's).
    fn add_for_children(&mut self, pid: Pid, thread: Option<(Pid, &ProcessLinks)>, links: &ProcessLinks) {
        let process = thread.map(|(_, p)| p);
        for (child_idx, own_idx) in [(8, NsType::Pid.index()), (9, NsType::Time.index())] {
            let Some(inode) = links.get(child_idx) else {
                continue;
            };
            let same_as_process = process.is_some_and(|p| p.get(child_idx) == Some(inode));
            if Some(inode) == links.get(own_idx) || same_as_process {
                continue;
            }
            let ty = crate::model::LINK_TYPES[child_idx];
            let name = crate::model::LINK_NAMES[child_idx];
            let path = match thread {
                Some((tid, _)) => PathBuf::from(format!("/proc/{pid}/task/{tid}/ns/{name}")),
                None => member_path(pid, name),
            };
            let ns = self.note(ty, inode, Some((path, PathRank::Member)));
            let holder = Holder::ForChildren { pid };
            if !ns.holders.contains(&holder) {
                ns.holders.push(holder);
            }
        }
    }

    /// SIOCGSKNS on every socket, once per socket inode.
    fn resolve_sockets(&mut self) {
        let sockets = std::mem::take(&mut self.sockets);
        let mut by_socket: HashMap<u64, Option<Inode>> = HashMap::new();
        let mut pidfd: Option<(Pid, OwnedFd)> = None;
        for (pid, fd, sock) in sockets {
            let netns = match by_socket.get(&sock) {
                Some(n) => *n,
                None => {
                    if pidfd.as_ref().is_none_or(|(p, _)| *p != pid) {
                        pidfd = sys::pidfd_open(pid).ok().map(|f| (pid, f));
                    }
                    let found = pidfd.as_ref().and_then(|(_, pfd)| self.socket_netns(pfd.as_fd(), fd, sock));
                    by_socket.insert(sock, found);
                    found
                }
            };
            if let Some(inode) = netns {
                self.note(NsType::Net, inode, None).holders.push(Holder::Socket { pid, fd });
            }
        }
    }

    fn socket_netns(&mut self, pidfd: BorrowedFd<'_>, fd: i32, sock_inode: u64) -> Option<Inode> {
        let sock = sys::pidfd_getfd(pidfd, fd).ok()?;
        // The fd number may have been closed and reused since the walk.
        if sys::fstat(sock.as_fd()).ok()?.st_ino != sock_inode {
            return None;
        }
        let netns = sys::socket_netns(sock.as_fd()).ok()?;
        let inode = sys::fstat(netns.as_fd()).ok()?.st_ino;
        if !self.nss.contains_key(&inode) {
            self.fds.insert(inode, netns);
        }
        Some(inode)
    }

    /// nsfs bind mounts in our own mount namespace, then in every other
    /// mount namespace found, until no new one turns up.
    fn walk_mount_namespaces(&mut self) {
        let own = self.own_mntns;
        self.note(NsType::Mnt, own, None);
        if let Ok(text) = std::fs::read("/proc/self/mountinfo") {
            for m in parse::mountinfo_nsfs_all(&text) {
                let path = m.mount_point.clone();
                self.add_pin(own, m, Some((path, PathRank::Pin)), None);
            }
        }
        let mut done: HashSet<Inode> = HashSet::from([own]);
        loop {
            let todo: Vec<(Inode, Option<Pid>, Option<OwnedFd>)> = self
                .nss
                .values()
                .filter(|n| n.ns_type == NsType::Mnt && !done.contains(&n.inode))
                .map(|n| (n.inode, self.mntns_member.get(&n.inode).copied()))
                .collect::<Vec<_>>()
                .into_iter()
                .map(|(m, pid)| (m, pid, if pid.is_none() { self.open_ns(m) } else { None }))
                .collect();
            if todo.is_empty() {
                break;
            }
            let proc = self.proc.as_fd();
            let found = crate::par::map(&todo, |(mntns, pid, fd)| match (pid, fd) {
                (Some(pid), _) => pins_via_member(*pid),
                (None, Some(fd)) => pins_from_inside(proc, fd.as_fd()).unwrap_or_else(|e| {
                    log::debug!("cannot look inside mount namespace {mntns}: {e}");
                    Vec::new()
                }),
                (None, None) => Vec::new(),
            });
            for ((mntns, _, fd), pins) in todo.into_iter().zip(found) {
                done.insert(mntns);
                if let Some(fd) = fd {
                    self.fds.insert(mntns, fd);
                }
                for (m, path, fd) in pins {
                    self.add_pin(mntns, m, path, fd);
                }
            }
        }
    }

    fn add_pin(
        &mut self,
        mntns: Inode,
        m: parse::NsfsMount,
        path: Option<(PathBuf, PathRank)>,
        fd: Option<OwnedFd>,
    ) {
        let known = self.nss.contains_key(&m.inode);
        let ns = self.note(m.ns_type, m.inode, path);
        ns.pins.push(Pin { mntns, path: m.mount_point.clone() });
        ns.holders.push(Holder::Mount { mntns, path: m.mount_point });
        if let (false, Some(fd)) = (known, fd) {
            self.fds.insert(m.inode, fd);
        }
    }

    /// An open descriptor for a namespace: one we hold, or its path.
    fn open_ns(&mut self, inode: Inode) -> Option<OwnedFd> {
        if let Some(fd) = self.fds.remove(&inode) {
            return Some(fd);
        }
        open_checked(self.nss.get(&inode)?.path.as_ref()?, inode)
    }

    /// Owners, parents and ids of everything found, adding any owner or
    /// parent not yet seen (a user namespace kept alive only by what it
    /// owns), round after round until nothing new turns up.
    fn resolve_owners(&mut self) {
        let mut todo: Vec<Inode> = self.nss.keys().copied().collect();
        while !todo.is_empty() {
            let work: Vec<(Inode, NsType, Option<OwnedFd>, Option<PathBuf>)> = todo
                .drain(..)
                .filter_map(|i| {
                    let ns = self.nss.get(&i)?;
                    let (ty, path) = (ns.ns_type, ns.path.clone());
                    Some((i, ty, self.fds.remove(&i), path))
                })
                .collect();
            // Sequential on purpose: in parallel this phase measured 5x slower
            // (the nsfs opens and NS_GET_* ioctls contend in the kernel).
            let found: Vec<Option<Relations>> = work
                .iter()
                .map(|(inode, ty, fd, path)| {
                    let opened;
                    let fd = match (fd, path) {
                        (Some(fd), _) => fd.as_fd(),
                        (None, Some(p)) => {
                            opened = open_checked(p, *inode)?;
                            opened.as_fd()
                        }
                        (None, None) => return None,
                    };
                    Some(relations(fd, *ty))
                })
                .collect();
            for ((inode, ..), rel) in work.into_iter().zip(found) {
                let Some(rel) = rel else { continue };
                let owner = rel.owner.and_then(|o| self.adopt(o, NsType::User, &mut todo));
                let parent = match rel.parent {
                    Some(p) => self.adopt(p, NsType::Pid, &mut todo),
                    None if rel.ty == NsType::User => owner,
                    None => None,
                };
                if let Some(ns) = self.nss.get_mut(&inode) {
                    ns.id = rel.id;
                    ns.owner = owner;
                    ns.parent = parent;
                    ns.owner_uid = rel.owner_uid;
                }
            }
        }
    }

    /// Record the namespace behind `fd` (an owner or parent); returns its inode.
    fn adopt(&mut self, (fd, inode): (OwnedFd, Inode), ty: NsType, todo: &mut Vec<Inode>) -> Option<Inode> {
        if !self.nss.contains_key(&inode) {
            self.note(ty, inode, None);
            self.fds.insert(inode, fd);
            todo.push(inode);
        }
        Some(inode)
    }

    fn finish(self) -> Snapshot {
        let mut nss = self.nss;
        // Reverse edges: children, owned namespaces, and the holders they make.
        let edges: Vec<(Inode, Option<Inode>, Option<Inode>, NsType)> =
            nss.values().map(|n| (n.inode, n.owner, n.parent, n.ns_type)).collect();
        for (inode, owner, parent, ty) in edges {
            if let Some(o) = owner.and_then(|o| nss.get_mut(&o)) {
                o.owns.push((ty, inode));
                o.holders.push(Holder::Child { ns_type: ty, inode });
            }
            if let Some(p) = parent.and_then(|p| nss.get_mut(&p)) {
                p.children.push(inode);
                if ty == NsType::Pid {
                    p.holders.push(Holder::Child { ns_type: ty, inode });
                }
            }
        }
        let mut named_pins = BTreeMap::new();
        for ns in nss.values_mut() {
            ns.processes.sort_unstable();
            ns.processes.dedup();
            ns.holders.sort();
            ns.holders.dedup();
            ns.pins.sort();
            ns.pins.dedup();
            ns.children.sort_unstable();
            ns.owns.sort_unstable();
            for pin in ns.pins.iter().filter(|p| p.mntns == self.own_mntns) {
                if let Some(name) = pin_name(self.opts, ns.ns_type, &pin.path) {
                    named_pins.insert((ns.ns_type, name), ns.inode);
                }
            }
        }
        let root_userns =
            nss.values().find(|n| n.ns_type == NsType::User && n.owner.is_none()).map(|n| n.inode);
        Snapshot {
            namespaces: nss.into_iter().collect(),
            processes: self.procs,
            named_pins,
            own_mntns: self.own_mntns,
            root_userns,
            taken_at: None,
            duration: Default::default(),
            partial: sys::geteuid() != 0,
        }
    }
}

/// Open a namespace by path, checking it is still the one we mean (the
/// path may now name another namespace: a PID reused).
pub fn open_checked(path: &Path, inode: Inode) -> Option<OwnedFd> {
    let fd = sys::open_path(path, libc::O_RDONLY).ok()?;
    (sys::fstat(fd.as_fd()).ok()?.st_ino == inode).then_some(fd)
}

/// What the kernel says about one namespace's place in the hierarchy.
struct Relations {
    ty: NsType,
    id: Option<u64>,
    /// The owning user namespace, opened, with its inode.
    owner: Option<(OwnedFd, Inode)>,
    /// The parent pid namespace (pid only; a user namespace's parent is its owner).
    parent: Option<(OwnedFd, Inode)>,
    owner_uid: Option<u32>,
}

fn relations(fd: BorrowedFd<'_>, ty: NsType) -> Relations {
    let with_inode = |f: OwnedFd| sys::fstat(f.as_fd()).ok().map(|st| (f, st.st_ino));
    Relations {
        ty,
        id: sys::ns_get_id(fd).ok(),
        owner: sys::ns_get_userns(fd).ok().and_then(with_inode),
        parent: (ty == NsType::Pid).then(|| sys::ns_get_parent(fd).ok().and_then(with_inode)).flatten(),
        owner_uid: (ty == NsType::User).then(|| sys::ns_get_owner_uid(fd).ok()).flatten(),
    }
}

/// A pin found in another mount namespace, with a way to reach it.
type ForeignPin = (parse::NsfsMount, Option<(PathBuf, PathRank)>, Option<OwnedFd>);

/// The nsfs mounts of a member's mount namespace, reachable through its root.
fn pins_via_member(pid: Pid) -> Vec<ForeignPin> {
    let Ok(text) = std::fs::read(format!("/proc/{pid}/mountinfo")) else { return Vec::new() };
    parse::mountinfo_nsfs_all(&text)
        .into_iter()
        .map(|m| {
            let path = PathBuf::from(format!("/proc/{pid}/root{}", m.mount_point.display()));
            (m, Some((path, PathRank::Foreign)), None)
        })
        .collect()
}

/// The nsfs mounts of a mount namespace with no process, read (and opened)
/// from a helper thread that entered it.
fn pins_from_inside(proc: BorrowedFd<'_>, mntns: BorrowedFd<'_>) -> io::Result<Vec<ForeignPin>> {
    enter::run_in_one(mntns, NsType::Mnt, || {
        let f = sys::openat(Some(proc), c"thread-self/mountinfo", libc::O_RDONLY)?;
        let text = read_fd_to_end(f)?;
        Ok(parse::mountinfo_nsfs_all(&text)
            .into_iter()
            .map(|m| {
                let fd = sys::open_path(&m.mount_point, libc::O_RDONLY).ok();
                (m, None, fd)
            })
            .collect())
    })
}

fn member_path(pid: Pid, link: &str) -> PathBuf {
    format!("/proc/{pid}/ns/{link}").into()
}

/// The NAME of a pin at `PIN_DIR/TYPE/NAME` (or `NETNS_DIR/NAME` for net).
pub fn pin_name(opts: &ScanOptions, ty: NsType, path: &Path) -> Option<String> {
    let dir = if ty == NsType::Net { opts.netns_dir.clone() } else { opts.pin_dir.join(ty.name()) };
    if path.parent()? != dir {
        return None;
    }
    path.file_name()?.to_str().map(str::to_owned)
}

/// Read a whole (proc) file from an open descriptor.
fn read_fd_to_end(fd: OwnedFd) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    io::Read::read_to_end(&mut std::fs::File::from(fd), &mut out)?;
    Ok(out)
}
