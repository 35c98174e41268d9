//! Inode numbers of the tree: every entry is a `Node`, and its FUSE inode
//! number is a pure function of it (kind, sub-kind, value packed into 64
//! bits), so the same entry keeps its number across refreshes and no table
//! grows with churn. Namespace entries carry the type in the value, so a
//! reused nsfs inode number under another type never aliases.

use crate::discovery::details::Detail;
use crate::model::{Inode, NsType, Pid, LINKS};

/// A FUSE inode number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Ino(pub u64);

/// An entry inside a namespace directory.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NsEntry {
    Type,
    Inode,
    Id,
    Owner,
    Parent,
    Children,
    Owns,
    Processes,
    Holders,
    Pins,
    Ns,
    Ctl,
    InfoJson,
    /// `KIND ID [NAME]` per container, pod or unit it belongs to.
    Container,
    /// Seconds since it was first seen with no task (orphans only).
    Age,
    Detail(Detail),
}

const DETAILS: [Detail; 11] = [
    Detail::UidMap,
    Detail::GidMap,
    Detail::OwnerUid,
    Detail::Level,
    Detail::Hostname,
    Detail::Domainname,
    Detail::Interfaces,
    Detail::Netnsid,
    Detail::Mountinfo,
    Detail::Offsets,
    Detail::Root,
];

impl NsEntry {
    /// The fixed entries, in listing order (details follow them).
    pub const FIXED: [NsEntry; 15] = [
        NsEntry::Type,
        NsEntry::Inode,
        NsEntry::Id,
        NsEntry::Owner,
        NsEntry::Parent,
        NsEntry::Children,
        NsEntry::Owns,
        NsEntry::Processes,
        NsEntry::Holders,
        NsEntry::Pins,
        NsEntry::Ns,
        NsEntry::Ctl,
        NsEntry::InfoJson,
        NsEntry::Container,
        NsEntry::Age,
    ];

    pub fn name(self) -> &'static str {
        match self {
            NsEntry::Type => "type",
            NsEntry::Inode => "inode",
            NsEntry::Id => "id",
            NsEntry::Owner => "owner",
            NsEntry::Parent => "parent",
            NsEntry::Children => "children",
            NsEntry::Owns => "owns",
            NsEntry::Processes => "processes",
            NsEntry::Holders => "holders",
            NsEntry::Pins => "pins",
            NsEntry::Ns => "ns",
            NsEntry::Ctl => "ctl",
            NsEntry::InfoJson => "info.json",
            NsEntry::Container => "container",
            NsEntry::Age => "age",
            NsEntry::Detail(d) => d.name(),
        }
    }

    /// The entry with this file name, for a namespace of type `ty`.
    pub fn from_name(ty: NsType, name: &str) -> Option<NsEntry> {
        NsEntry::FIXED
            .into_iter()
            .find(|e| e.name() == name)
            .or_else(|| Detail::for_type(ty).iter().find(|d| d.name() == name).map(|d| NsEntry::Detail(*d)))
    }

    fn code(self) -> u64 {
        match self {
            NsEntry::Detail(d) => 32 + DETAILS.iter().position(|x| *x == d).unwrap_or(0) as u64,
            e => NsEntry::FIXED.iter().position(|x| *x == e).unwrap_or(0) as u64,
        }
    }

    fn from_code(c: u64) -> Option<NsEntry> {
        if c >= 32 {
            DETAILS.get((c - 32) as usize).map(|d| NsEntry::Detail(*d))
        } else {
            NsEntry::FIXED.get(c as usize).copied()
        }
    }
}

/// Every entry of the tree.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Node {
    Root,
    Readme,
    TopCtl,
    TypeDir(NsType),
    PinnedRoot,
    PinnedType(NsType),
    /// pinned/TYPE/NAME, NAME by its number in the pinned-name table.
    PinnedLink(NsType, u32),
    ProcRoot,
    ProcDir(Pid),
    /// proc/PID/LINK, LINK an index into `model::LINK_NAMES`.
    ProcLink(Pid, u8),
    TreeRoot,
    TreeUser(Inode),
    TreeLink(NsType, Inode),
    NsDir(NsType, Inode),
    NsFile(NsType, Inode, NsEntry),
    /// TYPE/PARENT/children/CHILD: named by the child.
    ChildLink(NsType, Inode),
    /// user/OWNER/owns/TYPE:INODE: named by the owned namespace.
    OwnsLink(NsType, Inode),
    OrphansRoot,
    OrphansType(NsType),
    /// orphans/TYPE/INODE -> ../../TYPE/INODE.
    OrphanLink(NsType, Inode),
    ContainersRoot,
    /// The lifecycle log.
    Events,
    /// Prometheus text.
    Metrics,
    /// containers/KIND-ID, by its number in the daemon's container table.
    ContainerDir(u32),
    /// containers/KIND-ID/TYPE -> ../../TYPE/INODE.
    ContainerLink(u32, NsType),
    /// containers/KIND-ID/{id,processes}.
    ContainerFile(u32, ContainerFile),
}

/// A file in a container's directory.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ContainerFile {
    Id,
    Processes,
}

const VALUE_BITS: u32 = 40;
const SUB_BITS: u32 = 16;

fn pack(kind: u64, sub: u64, value: u64) -> Ino {
    Ino((kind << (VALUE_BITS + SUB_BITS)) | (sub << VALUE_BITS) | (value & ((1 << VALUE_BITS) - 1)))
}

fn ns_value(ty: NsType, inode: Inode) -> u64 {
    ((ty.index() as u64) << 32) | (inode.get() & 0xffff_ffff)
}

fn ns_from(value: u64) -> Option<(NsType, Inode)> {
    let ty = *NsType::ALL.get((value >> 32) as usize)?;
    Some((ty, Inode(value & 0xffff_ffff)))
}

impl Node {
    /// The top-level entries after README, ctl and the type directories,
    /// in listing order.
    pub const TOP_LEVEL: [Node; 7] = [
        Node::PinnedRoot,
        Node::ProcRoot,
        Node::TreeRoot,
        Node::OrphansRoot,
        Node::ContainersRoot,
        Node::Events,
        Node::Metrics,
    ];

    pub fn ino(self) -> Ino {
        match self {
            Node::Root => Ino(1),
            Node::Readme => pack(1, 1, 0),
            Node::TopCtl => pack(1, 2, 0),
            Node::PinnedRoot => pack(1, 3, 0),
            Node::ProcRoot => pack(1, 4, 0),
            Node::TreeRoot => pack(1, 5, 0),
            Node::TypeDir(t) => pack(2, t.index() as u64, 0),
            Node::PinnedType(t) => pack(3, t.index() as u64, 0),
            Node::PinnedLink(t, id) => pack(4, t.index() as u64, id as u64),
            Node::ProcDir(pid) => pack(5, 0, pid.get() as u64),
            Node::ProcLink(pid, link) => pack(6, link as u64, pid.get() as u64),
            Node::TreeUser(i) => pack(7, 0, ns_value(NsType::User, i)),
            Node::TreeLink(t, i) => pack(8, 0, ns_value(t, i)),
            Node::NsDir(t, i) => pack(9, 0, ns_value(t, i)),
            Node::NsFile(t, i, e) => pack(10, e.code(), ns_value(t, i)),
            Node::ChildLink(t, i) => pack(11, 0, ns_value(t, i)),
            Node::OwnsLink(t, i) => pack(12, 0, ns_value(t, i)),
            Node::OrphansRoot => pack(1, 6, 0),
            Node::OrphansType(t) => pack(13, t.index() as u64, 0),
            Node::OrphanLink(t, i) => pack(14, 0, ns_value(t, i)),
            Node::ContainersRoot => pack(1, 7, 0),
            Node::Events => pack(1, 8, 0),
            Node::Metrics => pack(1, 9, 0),
            Node::ContainerDir(n) => pack(15, 0, n as u64),
            Node::ContainerLink(n, t) => pack(16, t.index() as u64, n as u64),
            Node::ContainerFile(n, f) => pack(17, f as u64, n as u64),
        }
    }

    /// The top-level entry with sub-kind `sub` (kind 1).
    fn top_level(sub: u64) -> Option<Node> {
        Some(match sub {
            1 => Node::Readme,
            2 => Node::TopCtl,
            3 => Node::PinnedRoot,
            4 => Node::ProcRoot,
            5 => Node::TreeRoot,
            6 => Node::OrphansRoot,
            7 => Node::ContainersRoot,
            8 => Node::Events,
            9 => Node::Metrics,
            _ => return None,
        })
    }

    pub fn from_ino(ino: Ino) -> Option<Node> {
        if ino.0 == 1 {
            return Some(Node::Root);
        }
        let kind = ino.0 >> (VALUE_BITS + SUB_BITS);
        let sub = (ino.0 >> VALUE_BITS) & ((1 << SUB_BITS) - 1);
        let value = ino.0 & ((1 << VALUE_BITS) - 1);
        let ty = || NsType::ALL.get(sub as usize).copied();
        Some(match kind {
            1 => Node::top_level(sub)?,
            2 => Node::TypeDir(ty()?),
            3 => Node::PinnedType(ty()?),
            4 => Node::PinnedLink(ty()?, u32::try_from(value).ok()?),
            5 => Node::ProcDir(Pid(i32::try_from(value).ok()?)),
            6 if (sub as usize) < LINKS => Node::ProcLink(Pid(i32::try_from(value).ok()?), sub as u8),
            7 => Node::TreeUser(ns_from(value)?.1),
            8..=12 | 14 => {
                let (t, i) = ns_from(value)?;
                match kind {
                    8 => Node::TreeLink(t, i),
                    9 => Node::NsDir(t, i),
                    10 => Node::NsFile(t, i, NsEntry::from_code(sub)?),
                    11 => Node::ChildLink(t, i),
                    12 => Node::OwnsLink(t, i),
                    _ => Node::OrphanLink(t, i),
                }
            }
            13 => Node::OrphansType(ty()?),
            15 => Node::ContainerDir(u32::try_from(value).ok()?),
            16 => Node::ContainerLink(u32::try_from(value).ok()?, ty()?),
            17 => Node::ContainerFile(
                u32::try_from(value).ok()?,
                match sub {
                    0 => ContainerFile::Id,
                    1 => ContainerFile::Processes,
                    _ => return None,
                },
            ),
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_node_round_trips_and_numbers_are_distinct() {
        let mut nodes = vec![Node::Root, Node::Readme, Node::TopCtl];
        nodes.extend(Node::TOP_LEVEL);
        nodes.extend([
            Node::ContainerDir(3),
            Node::ContainerFile(3, ContainerFile::Id),
            Node::ContainerFile(3, ContainerFile::Processes),
            Node::ProcDir(Pid(4194304)),
            Node::TreeUser(Inode(4026531837)),
        ]);
        for t in NsType::ALL {
            let i = 4026532177;
            nodes.extend([
                Node::TypeDir(t),
                Node::PinnedType(t),
                Node::PinnedLink(t, 7),
                Node::TreeLink(t, Inode(i)),
                Node::NsDir(t, Inode(i)),
                Node::ChildLink(t, Inode(i)),
                Node::OwnsLink(t, Inode(i)),
                Node::OrphansType(t),
                Node::OrphanLink(t, Inode(i)),
                Node::ContainerLink(3, t),
            ]);
            nodes.extend(NsEntry::FIXED.iter().map(|e| Node::NsFile(t, Inode(i), *e)));
            nodes.extend(Detail::for_type(t).iter().map(|d| Node::NsFile(t, Inode(i), NsEntry::Detail(*d))));
        }
        for l in 0..LINKS as u8 {
            nodes.push(Node::ProcLink(Pid(1234), l));
        }
        let mut seen = std::collections::HashSet::new();
        for n in &nodes {
            assert_eq!(Node::from_ino(n.ino()), Some(*n), "{n:?}");
            assert!(seen.insert(n.ino()), "duplicate number for {n:?}");
        }
        assert_eq!(Node::from_ino(Ino(0)), None);
        assert_eq!(Node::from_ino(Ino(u64::MAX)), None);
    }

    #[test]
    fn same_inode_other_type_is_another_entry() {
        assert_ne!(Node::NsDir(NsType::Net, Inode(5)).ino(), Node::NsDir(NsType::Uts, Inode(5)).ino());
    }

    #[test]
    fn entry_names() {
        assert_eq!(NsEntry::from_name(NsType::Net, "interfaces"), Some(NsEntry::Detail(Detail::Interfaces)));
        assert_eq!(NsEntry::from_name(NsType::Uts, "interfaces"), None);
        assert_eq!(NsEntry::from_name(NsType::Uts, "info.json"), Some(NsEntry::InfoJson));
        assert_eq!(NsEntry::from_name(NsType::Uts, "bogus"), None);
    }
}
