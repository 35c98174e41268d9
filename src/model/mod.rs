//! The snapshot model: what one scan of the kernel found. A `Snapshot` is
//! immutable once built; readers hold an `Arc` to it and a refresh swaps in
//! a whole new one. Namespaces are keyed by their nsfs inode number, which is
//! unique across all namespace types while the namespace lives.

use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

mod ids;
mod processes;
pub use ids::*;
pub use processes::*;

/// The eight Linux namespace types, in the order nsfuse lists them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum NsType {
    Cgroup,
    Ipc,
    Mnt,
    Net,
    Pid,
    Time,
    User,
    Uts,
}

impl NsType {
    pub const ALL: [NsType; 8] = [
        NsType::Cgroup,
        NsType::Ipc,
        NsType::Mnt,
        NsType::Net,
        NsType::Pid,
        NsType::Time,
        NsType::User,
        NsType::Uts,
    ];

    /// The name used in nsfs links (`net:[N]`) and in the tree.
    pub fn name(self) -> &'static str {
        match self {
            NsType::Cgroup => "cgroup",
            NsType::Ipc => "ipc",
            NsType::Mnt => "mnt",
            NsType::Net => "net",
            NsType::Pid => "pid",
            NsType::Time => "time",
            NsType::User => "user",
            NsType::Uts => "uts",
        }
    }

    /// The type named `name` (as in nsfs links), matched without a search:
    /// discovery parses a few hundred thousand links per pass.
    pub fn from_name(name: &[u8]) -> Option<NsType> {
        Some(match name {
            b"cgroup" => NsType::Cgroup,
            b"ipc" => NsType::Ipc,
            b"mnt" => NsType::Mnt,
            b"net" => NsType::Net,
            b"pid" => NsType::Pid,
            b"time" => NsType::Time,
            b"user" => NsType::User,
            b"uts" => NsType::Uts,
            _ => return None,
        })
    }

    /// The CLONE_NEW* flag of this type (setns, unshare, NS_GET_NSTYPE).
    pub fn clone_flag(self) -> libc::c_int {
        match self {
            NsType::Cgroup => libc::CLONE_NEWCGROUP,
            NsType::Ipc => libc::CLONE_NEWIPC,
            NsType::Mnt => libc::CLONE_NEWNS,
            NsType::Net => libc::CLONE_NEWNET,
            NsType::Pid => libc::CLONE_NEWPID,
            NsType::Time => libc::CLONE_NEWTIME,
            NsType::User => libc::CLONE_NEWUSER,
            NsType::Uts => libc::CLONE_NEWUTS,
        }
    }

    /// The type with this CLONE_NEW* flag.
    pub fn from_clone_flag(flag: libc::c_int) -> Option<NsType> {
        NsType::ALL.into_iter().find(|t| t.clone_flag() == flag)
    }

    /// Index 0..8, for compact per-type arrays.
    pub fn index(self) -> usize {
        self as usize
    }

    /// Whether this type has a parent (hierarchical namespaces).
    pub fn is_hierarchical(self) -> bool {
        matches!(self, NsType::User | NsType::Pid)
    }
}

impl fmt::Display for NsType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for NsType {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        NsType::from_name(s.as_bytes()).ok_or(())
    }
}

/// Where pins live (SPEC section 3): `PIN_DIR/TYPE/NAME`, and net ones at
/// `NETNS_DIR/NAME` as `ip netns` keeps them. One layout, read by discovery
/// (to name the pins it finds) and by control (to make and remove them).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PinDirs {
    pub pin_dir: PathBuf,
    pub netns_dir: PathBuf,
}

impl Default for PinDirs {
    fn default() -> Self {
        PinDirs { pin_dir: PathBuf::from("/run/nsfuse"), netns_dir: PathBuf::from("/run/netns") }
    }
}

impl PinDirs {
    /// The directory that holds pins of this type.
    pub fn dir_of(&self, ty: NsType) -> PathBuf {
        match ty {
            NsType::Net => self.netns_dir.clone(),
            _ => self.pin_dir.join(ty.name()),
        }
    }

    /// The pin file for (type, name).
    pub fn path(&self, ty: NsType, name: &str) -> PathBuf {
        self.dir_of(ty).join(name)
    }

    /// The NAME of the pin of this type at `path`, if that is where one goes.
    pub fn name_of(&self, ty: NsType, path: &std::path::Path) -> Option<String> {
        if path.parent()? != self.dir_of(ty) {
            return None;
        }
        path.file_name()?.to_str().map(str::to_owned)
    }

    /// Whether `path` is a pin file of nsfuse's or `ip netns`'s (any type).
    pub fn holds(&self, path: &std::path::Path) -> bool {
        NsType::ALL.iter().any(|t| path.parent() == Some(self.dir_of(*t).as_path()))
    }
}

/// One reference that keeps a namespace alive. Serialized as its
/// `holders` line (`task 1 1`). Sorted in variant order, `Task` first
/// (discovery builds the task holders apart and puts them in front).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Holder {
    /// A task (thread) that is a member.
    Task { pid: Pid, tid: Pid },
    /// An open nsfs file descriptor.
    Fd { pid: Pid, fd: i32 },
    /// A socket created in this network namespace.
    Socket { pid: Pid, fd: i32 },
    /// A bind mount of the nsfs file.
    Mount { mntns: Inode, path: PathBuf },
    /// A namespace it owns (user) or a child (user, pid).
    Child { ns_type: NsType, inode: Inode },
    /// A process's pid_for_children / time_for_children.
    ForChildren { pid: Pid },
}

impl fmt::Display for Holder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Holder::Task { pid, tid } => write!(f, "task {pid} {tid}"),
            Holder::Fd { pid, fd } => write!(f, "fd {pid} {fd}"),
            Holder::Socket { pid, fd } => write!(f, "socket {pid} {fd}"),
            Holder::Mount { mntns, path } => write!(f, "mount {mntns} {}", path.display()),
            Holder::Child { ns_type, inode } => write!(f, "child {ns_type} {inode}"),
            Holder::ForChildren { pid } => write!(f, "for-children {pid}"),
        }
    }
}

impl Serialize for Holder {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// A bind mount of a namespace's nsfs file.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Pin {
    /// Inode of the mount namespace the mount lives in.
    pub mntns: Inode,
    /// The mount point, as that mount namespace shows it.
    pub path: PathBuf,
}

/// One live namespace and everything known about it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Namespace {
    #[serde(rename = "type")]
    pub ns_type: NsType,
    pub inode: Inode,
    /// The 64-bit namespace id (NS_GET_ID), where the kernel has it.
    pub id: Option<u64>,
    /// Inode of the owning user namespace; None for the initial one.
    pub owner: Option<Inode>,
    /// Parent (user and pid only); None at the top.
    pub parent: Option<Inode>,
    /// Child namespaces (user and pid only), sorted.
    pub children: Vec<Inode>,
    /// Namespaces it owns (user only), sorted by (type, inode).
    pub owns: Vec<(NsType, Inode)>,
    /// PIDs with a task in it, sorted.
    pub processes: Vec<Pid>,
    /// Every reference found keeping it alive, sorted.
    pub holders: Vec<Holder>,
    /// Bind mounts of it, sorted.
    pub pins: Vec<Pin>,
    /// A path to a real nsfs file for it, openable by nsfuse (a pin in its
    /// own mount namespace, `/proc/PID/ns/TYPE`, or `/proc/PID/fd/FD`).
    pub path: Option<PathBuf>,
    /// uid that created it (user namespaces only: NS_GET_OWNER_UID).
    pub owner_uid: Option<u32>,
}

impl Namespace {
    pub fn new(ns_type: NsType, inode: Inode) -> Namespace {
        Namespace {
            ns_type,
            inode,
            id: None,
            owner: None,
            parent: None,
            children: Vec::new(),
            owns: Vec::new(),
            processes: Vec::new(),
            holders: Vec::new(),
            pins: Vec::new(),
            path: None,
            owner_uid: None,
        }
    }
}

/// What one scan found.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    /// Every namespace found, by inode. Shared with the snapshots before
    /// and after it where it has not changed, so a refresh of a quiet host
    /// allocates little.
    pub namespaces: BTreeMap<Inode, Arc<Namespace>>,
    /// Each process's ns links, by PID.
    pub processes: ProcessTable,
    /// The cgroup path of every process not in the host's own cgroup,
    /// sorted by PID (who owns the namespaces it is in).
    pub cgroups: Vec<(Pid, Arc<str>)>,
    /// Pins by the name they have in a pin directory: (type, name) -> inode.
    pub named_pins: BTreeMap<(NsType, String), Inode>,
    /// nsfuse's own mount namespace.
    pub own_mntns: Inode,
    /// Its mount ids (listmount) and their namespace's 64-bit id, as this
    /// snapshot read them: while they are the same, so are its pins there.
    pub own_mounts: Option<(u64, Arc<[u64]>)>,
    /// The initial user namespace (root of the ownership tree), if found.
    pub root_userns: Option<Inode>,
    /// When the scan started.
    pub taken_at: Option<SystemTime>,
    /// How long the scan took.
    pub duration: Duration,
    /// Whether the scan could see everything (root) or only part.
    pub partial: bool,
}

impl Snapshot {
    /// The namespace with this inode, if it is of this type.
    pub fn get(&self, ns_type: NsType, inode: Inode) -> Option<&Namespace> {
        self.namespaces.get(&inode).map(|n| &**n).filter(|n| n.ns_type == ns_type)
    }

    /// Every namespace of one type, by inode.
    pub fn of_type(&self, ns_type: NsType) -> impl Iterator<Item = &Namespace> {
        self.namespaces.values().map(|n| &**n).filter(move |n| n.ns_type == ns_type)
    }

    /// The cgroup path of a process, if it is not the host's own.
    pub fn cgroup_of(&self, pid: Pid) -> Option<&str> {
        self.cgroups.binary_search_by_key(&pid, |e| e.0).ok().map(|i| &*self.cgroups[i].1)
    }

    /// Depth in the parent chain (0 at the top): the `level` file.
    pub fn level(&self, ns: &Namespace) -> u32 {
        let mut level = 0;
        let mut cur = ns.parent;
        while let Some(p) = cur {
            level += 1;
            cur = self.namespaces.get(&p).and_then(|n| n.parent);
            if level > 64 {
                break;
            }
        }
        level
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn links(net: u32) -> ProcessLinks {
        let mut l = ProcessLinks::default();
        l.0[NsType::Net.index()] = net;
        l
    }

    #[test]
    fn process_table_sorts_and_keeps_the_last_entry_of_a_pid() {
        let t = ProcessTable::new(vec![(Pid(30), links(1)), (Pid(10), links(2)), (Pid(30), links(3))]);
        assert_eq!(t.keys().copied().collect::<Vec<_>>(), [Pid(10), Pid(30)]);
        assert_eq!(t.get(&Pid(30)).and_then(|l| l.get(NsType::Net.index())), Some(Inode(3)));
        assert!(t.contains_key(&Pid(10)) && !t.contains_key(&Pid(20)));
        assert_eq!((t.len(), t.is_empty()), (2, false));
        assert!(ProcessTable::default().is_empty());
    }

    #[test]
    fn type_names_round_trip() {
        for t in NsType::ALL {
            assert_eq!(NsType::from_name(t.name().as_bytes()), Some(t));
            assert_eq!(t.name().parse::<NsType>(), Ok(t));
        }
        assert_eq!(NsType::from_name(b"socket"), None);
        assert_eq!(NsType::from_name(b""), None);
    }
}
