//! Every process's ns links: the ten links of `/proc/PID/ns` by index
//! (`LINK_NAMES`, `LINK_TYPES`), and the sorted table of them.

use super::*;

/// Number of ns links per process: the eight types plus pid_for_children
/// and time_for_children.
pub const LINKS: usize = 10;
/// Link names in /proc/PID/ns, in the order of `ProcessLinks`.
pub const LINK_NAMES: [&str; LINKS] =
    ["cgroup", "ipc", "mnt", "net", "pid", "time", "user", "uts", "pid_for_children", "time_for_children"];
/// The namespace type each entry of `LINK_NAMES` points to.
pub const LINK_TYPES: [NsType; LINKS] = {
    let t = NsType::ALL;
    [t[0], t[1], t[2], t[3], t[4], t[5], t[6], t[7], NsType::Pid, NsType::Time]
};

/// One of a process's ten `ns/*` links, by what it points to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Link {
    /// The namespace of this type the task is in.
    Own(NsType),
    /// The pid namespace its children will be in.
    PidForChildren,
    /// The time namespace its children will be in.
    TimeForChildren,
}

impl Link {
    /// The eight links to the namespaces a task is in, in index order.
    pub const OWN: [Link; 8] = [
        Link::Own(NsType::Cgroup),
        Link::Own(NsType::Ipc),
        Link::Own(NsType::Mnt),
        Link::Own(NsType::Net),
        Link::Own(NsType::Pid),
        Link::Own(NsType::Time),
        Link::Own(NsType::User),
        Link::Own(NsType::Uts),
    ];

    /// Its place in `ProcessLinks`, `LINK_NAMES` and `LINK_TYPES`.
    pub const fn index(self) -> usize {
        match self {
            Link::Own(t) => t as usize,
            Link::PidForChildren => 8,
            Link::TimeForChildren => 9,
        }
    }

    /// Its name in `/proc/PID/ns`.
    pub fn name(self) -> &'static str {
        LINK_NAMES[self.index()]
    }

    /// The type of namespace it points to.
    pub fn ns_type(self) -> NsType {
        LINK_TYPES[self.index()]
    }
}

/// The namespace inodes of one process's `ns/*` links (0 = unreadable).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProcessLinks(pub [u32; LINKS]);

impl ProcessLinks {
    /// The namespace `link` points to, if readable.
    pub fn of(&self, link: Link) -> Option<Inode> {
        self.get(link.index())
    }

    pub fn get(&self, i: usize) -> Option<Inode> {
        match self.0[i] {
            0 => None,
            n => Some(Inode::from(n)),
        }
    }
}

/// Every process's ns links, sorted by PID: one allocation however many
/// processes there are (a map would be one per handful).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProcessTable(Vec<(Pid, ProcessLinks)>);

impl ProcessTable {
    /// A table of these entries, in any order; a later entry for the same
    /// PID wins.
    pub fn new(mut entries: Vec<(Pid, ProcessLinks)>) -> ProcessTable {
        entries.reverse();
        entries.sort_by_key(|e| e.0);
        entries.dedup_by_key(|e| e.0);
        entries.shrink_to_fit();
        ProcessTable(entries)
    }

    pub fn get(&self, pid: &Pid) -> Option<&ProcessLinks> {
        self.0.binary_search_by_key(pid, |e| e.0).ok().map(|i| &self.0[i].1)
    }

    pub fn contains_key(&self, pid: &Pid) -> bool {
        self.get(pid).is_some()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// PIDs in order.
    pub fn keys(&self) -> impl Iterator<Item = &Pid> {
        self.0.iter().map(|e| &e.0)
    }

    /// (PID, links) in PID order.
    pub fn iter(&self) -> <&ProcessTable as IntoIterator>::IntoIter {
        self.into_iter()
    }
}

impl<'a> IntoIterator for &'a ProcessTable {
    type Item = (&'a Pid, &'a ProcessLinks);
    type IntoIter = std::iter::Map<
        std::slice::Iter<'a, (Pid, ProcessLinks)>,
        fn(&'a (Pid, ProcessLinks)) -> (&'a Pid, &'a ProcessLinks),
    >;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter().map(|e| (&e.0, &e.1))
    }
}
