//! The shape of the tree (SPEC section 2) over one snapshot: which entries
//! a directory has, what a name looks up to, where a symlink points, who
//! owns an entry. Plain functions of a `Ctx`, tested without FUSE. What a
//! file says is `contents` (the caller caches it); what a non-root caller
//! may see, `visibility`.

use super::inode::{ContainerFile, Node, NsEntry};
use super::visibility::Visibility;
use crate::discovery::details::{self, Detail};
use crate::model::{Inode, Namespace, NsType, Pid, Snapshot, LINK_NAMES, LINK_TYPES};
use crate::owners::index::{dir_name, is_orphan, Owners};
use crate::owners::Owner;

use std::collections::BTreeMap;

mod entries;
#[cfg(test)]
mod tests;

/// What kind of file an entry is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    Dir,
    File,
    Symlink,
}

/// Pin names, numbered for inode numbers: only ever grows, so a name keeps
/// its number for the life of the mount.
#[derive(Clone, Debug, Default)]
pub struct PinNames {
    by_name: BTreeMap<(NsType, String), u32>,
    names: Vec<(NsType, String)>,
}

impl PinNames {
    /// The number of (type, name), assigning one if new.
    pub fn register(&mut self, ty: NsType, name: &str) -> u32 {
        if let Some(&id) = self.by_name.get(&(ty, name.to_owned())) {
            return id;
        }
        let id = self.names.len() as u32;
        self.names.push((ty, name.to_owned()));
        self.by_name.insert((ty, name.to_owned()), id);
        id
    }

    pub fn id(&self, ty: NsType, name: &str) -> Option<u32> {
        self.by_name.get(&(ty, name.to_owned())).copied()
    }

    pub fn name(&self, id: u32) -> Option<&(NsType, String)> {
        self.names.get(id as usize)
    }
}

/// Everything the tree functions look at.
pub struct Ctx<'a> {
    pub snap: &'a Snapshot,
    pub pins: &'a PinNames,
    pub read_only: bool,
    /// For a caller that is not root: what it may see.
    pub visible: Option<&'a Visibility>,
    /// Owners (`container`), and orphans with their age.
    pub owners: &'a Owners,
}

pub const README: &str = include_str!("../README.tree");

/// How README's last line names the daemon serving the tree (read back by
/// a second `nsfuse` started on the same mount point).
pub const SERVED_BY: &str = "This tree is served by nsfuse, PID";

impl Ctx<'_> {
    pub(super) fn ns(&self, ty: NsType, inode: Inode) -> Option<&Namespace> {
        let ns = self.snap.get(ty, inode)?;
        match self.visible {
            Some(v) if !v.namespaces.contains(&inode) => None,
            _ => Some(ns),
        }
    }

    /// A container this caller may see: one with a namespace it sees.
    pub(super) fn container(&self, n: u32) -> Option<&(Owner, Vec<Inode>)> {
        let c = self.owners.containers.get(&n)?;
        c.1.iter()
            .any(|i| self.snap.namespaces.get(i).is_some_and(|ns| self.ns(ns.ns_type, *i).is_some()))
            .then_some(c)
    }

    /// The namespace of type `t` a container uses (the first, if several).
    pub(super) fn container_ns(&self, n: u32, t: NsType) -> Option<Inode> {
        self.container(n)?.1.iter().copied().find(|i| self.ns(t, *i).is_some())
    }

    /// The entries of a namespace directory, in listing order.
    pub(super) fn ns_entries(&self, ns: &Namespace) -> Vec<NsEntry> {
        let ty = ns.ns_type;
        let mut out: Vec<NsEntry> = NsEntry::FIXED
            .into_iter()
            .filter(|e| match e {
                NsEntry::Id => ns.id.is_some(),
                NsEntry::Owner => ns.owner.is_some_and(|o| self.ns(NsType::User, o).is_some()),
                NsEntry::Parent => {
                    ty.is_hierarchical() && ns.parent.is_some_and(|p| self.ns(ty, p).is_some())
                }
                NsEntry::Children => ty.is_hierarchical(),
                NsEntry::Owns => ty == NsType::User,
                NsEntry::Ns => ns.path.as_deref().is_some_and(|p| self.path_visible(p)),
                NsEntry::Ctl => !self.read_only,
                NsEntry::Age => is_orphan(ns),
                _ => true,
            })
            .collect();
        out.extend(
            Detail::for_type(ty)
                .iter()
                .filter(|d| details::available(self.snap, ns, **d))
                .map(|d| NsEntry::Detail(*d)),
        );
        out
    }

    /// Whether `node` exists in this view.
    pub fn exists(&self, node: Node) -> bool {
        match node {
            Node::Root
            | Node::Readme
            | Node::TypeDir(_)
            | Node::PinnedRoot
            | Node::PinnedType(_)
            | Node::ProcRoot
            | Node::TreeRoot
            | Node::OrphansRoot
            | Node::OrphansType(_)
            | Node::ContainersRoot
            | Node::Events
            | Node::Metrics => true,
            Node::ContainerDir(n) | Node::ContainerFile(n, _) => self.container(n).is_some(),
            Node::ContainerLink(n, t) => self.container_ns(n, t).is_some(),
            Node::OrphanLink(t, i) => self.ns(t, i).is_some_and(is_orphan),
            Node::TopCtl => !self.read_only,
            Node::PinnedLink(..) => self.pinned_target(node).is_some(),
            Node::ProcDir(pid) => self.snap.processes.contains_key(&pid) && self.pid_visible(pid),
            Node::ProcLink(pid, l) => {
                self.pid_visible(pid)
                    && self.snap.processes.get(&pid).and_then(|x| x.get(l as usize)).is_some()
            }
            Node::TreeUser(i) => self.ns(NsType::User, i).is_some(),
            Node::TreeLink(t, i) => t != NsType::User && self.ns(t, i).is_some_and(|n| n.owner.is_some()),
            Node::NsDir(t, i) => self.ns(t, i).is_some(),
            Node::NsFile(t, i, e) => self.ns(t, i).is_some_and(|ns| self.ns_entries(ns).contains(&e)),
            Node::ChildLink(t, i) => {
                self.ns(t, i).and_then(|n| n.parent).is_some_and(|p| self.ns(t, p).is_some())
            }
            Node::OwnsLink(t, i) => {
                self.ns(t, i).and_then(|n| n.owner).is_some_and(|o| self.ns(NsType::User, o).is_some())
            }
        }
    }

    fn pinned_target(&self, node: Node) -> Option<Inode> {
        let Node::PinnedLink(t, id) = node else { return None };
        let (nt, name) = self.pins.name(id)?;
        if *nt != t {
            return None;
        }
        let inode = *self.snap.named_pins.get(&(t, name.clone()))?;
        self.ns(t, inode).map(|_| inode)
    }
}

impl Ctx<'_> {
    /// Where a symlink points (relative, except `ns`, which names a real nsfs file).
    pub fn link_target(&self, node: Node) -> Option<String> {
        if !self.exists(node) {
            return None;
        }
        let ns_path = |t: NsType, i: Inode| format!("{t}/{i}");
        Some(match node {
            Node::PinnedLink(t, _) => format!("../../{}", ns_path(t, self.pinned_target(node)?)),
            Node::ProcLink(pid, l) => {
                let inode = self.snap.processes.get(&pid)?.get(l as usize)?;
                format!("../../{}", ns_path(LINK_TYPES[l as usize], inode))
            }
            Node::TreeLink(t, i) => {
                let owner = self.ns(t, i)?.owner?;
                format!("{}{}", "../".repeat(self.tree_depth(owner) + 2), ns_path(t, i))
            }
            Node::NsFile(t, i, NsEntry::Owner) => format!("../../user/{}", self.ns(t, i)?.owner?),
            Node::NsFile(t, i, NsEntry::Parent) => format!("../{}", self.ns(t, i)?.parent?),
            Node::NsFile(t, i, NsEntry::Ns) => {
                let path = self.ns(t, i)?.path.as_ref()?;
                self.path_visible(path).then(|| path.to_string_lossy().into_owned())?
            }
            Node::ChildLink(_, i) => format!("../../{i}"),
            Node::OrphanLink(t, i) => format!("../../{}", ns_path(t, i)),
            Node::ContainerLink(n, t) => format!("../../{}", ns_path(t, self.container_ns(n, t)?)),
            Node::OwnsLink(t, i) => format!("../../../{}", ns_path(t, i)),
            _ => return None,
        })
    }

    /// How many user namespaces sit above `u` under tree/.
    pub(super) fn tree_depth(&self, u: Inode) -> usize {
        let mut depth = 0;
        let mut cur = self.ns(NsType::User, u).and_then(|n| n.parent);
        while let Some(p) = cur.filter(|p| self.ns(NsType::User, *p).is_some()) {
            depth += 1;
            cur = self.ns(NsType::User, p).and_then(|n| n.parent);
            if depth > 64 {
                break;
            }
        }
        depth
    }

    /// The uid that owns an entry: a namespace directory is its owning user
    /// namespace's `owner_uid`; control files and the rest are root's.
    pub fn owner_uid(&self, node: Node) -> u32 {
        let (t, i) = match node {
            Node::NsDir(t, i) => (t, i),
            Node::NsFile(t, i, e) if e != NsEntry::Ctl => (t, i),
            _ => return 0,
        };
        let Some(ns) = self.ns(t, i) else { return 0 };
        let user = if t == NsType::User { Some(ns) } else { ns.owner.and_then(|o| self.ns(NsType::User, o)) };
        user.and_then(|u| u.owner_uid).unwrap_or(0)
    }
}

/// The static kind of an entry.
pub fn kind(node: Node) -> Kind {
    match node {
        Node::Root
        | Node::TypeDir(_)
        | Node::PinnedRoot
        | Node::PinnedType(_)
        | Node::ProcRoot
        | Node::ProcDir(_)
        | Node::TreeRoot
        | Node::TreeUser(_)
        | Node::OrphansRoot
        | Node::OrphansType(_)
        | Node::ContainersRoot
        | Node::ContainerDir(_)
        | Node::NsDir(..)
        | Node::NsFile(_, _, NsEntry::Children | NsEntry::Owns) => Kind::Dir,
        Node::PinnedLink(..)
        | Node::ProcLink(..)
        | Node::TreeLink(..)
        | Node::NsFile(_, _, NsEntry::Owner | NsEntry::Parent | NsEntry::Ns)
        | Node::ChildLink(..)
        | Node::OwnsLink(..)
        | Node::OrphanLink(..)
        | Node::ContainerLink(..) => Kind::Symlink,
        _ => Kind::File,
    }
}

/// An entry's own name in its directory.
pub fn name_of(ctx: &Ctx<'_>, node: Node) -> Option<String> {
    Some(match node {
        Node::Root => String::new(),
        Node::Readme => "README".into(),
        Node::TopCtl => "ctl".into(),
        Node::PinnedRoot => "pinned".into(),
        Node::ProcRoot => "proc".into(),
        Node::TreeRoot => "tree".into(),
        Node::OrphansRoot => "orphans".into(),
        Node::ContainersRoot => "containers".into(),
        Node::Events => "events".into(),
        Node::Metrics => "metrics".into(),
        Node::ContainerDir(n) => dir_name(&ctx.container(n)?.0),
        Node::ContainerLink(_, t) => t.name().into(),
        Node::ContainerFile(_, ContainerFile::Id) => "id".into(),
        Node::ContainerFile(_, ContainerFile::Processes) => "processes".into(),
        Node::TypeDir(t) | Node::PinnedType(t) | Node::OrphansType(t) => t.name().into(),
        Node::PinnedLink(_, id) => ctx.pins.name(id)?.1.clone(),
        Node::ProcDir(p) => p.to_string(),
        Node::ProcLink(_, l) => LINK_NAMES.get(l as usize)?.to_string(),
        Node::TreeUser(i) => format!("user:{i}"),
        Node::TreeLink(t, i) | Node::OwnsLink(t, i) => format!("{t}:{i}"),
        Node::NsDir(_, i) | Node::ChildLink(_, i) | Node::OrphanLink(_, i) => i.to_string(),
        Node::NsFile(_, _, e) => e.name().into(),
    })
}

/// The directory entries `old` had that `new` no longer has at the same
/// place — namespace directories (and their places under tree/) whose
/// namespace ended or whose inode number now names another one, and
/// process directories — as (parent directory, name): what the kernel must
/// forget when `new` replaces `old`.
pub fn gone_dirs(old: &Snapshot, new: &Snapshot) -> Vec<(Node, String)> {
    let mut out = Vec::new();
    for (i, ns) in &old.namespaces {
        let same = new.namespaces.get(i).is_some_and(|n| n.ns_type == ns.ns_type && n.parent == ns.parent);
        if same {
            continue;
        }
        out.push((Node::TypeDir(ns.ns_type), i.to_string()));
        if ns.ns_type == NsType::User {
            let parent =
                ns.parent.filter(|p| old.namespaces.contains_key(p)).map_or(Node::TreeRoot, Node::TreeUser);
            out.push((parent, format!("user:{i}")));
        }
    }
    let ended = old.processes.keys().filter(|p| !new.processes.contains_key(p));
    out.extend(ended.map(|p| (Node::ProcRoot, p.to_string())));
    out
}

use crate::discovery::parse::canonical_decimal as number;

/// `TYPE:INODE`.
fn typed_name(s: &str) -> Option<(NsType, Inode)> {
    let (t, i) = s.split_once(':')?;
    Some((t.parse().ok()?, Inode(number(i)?)))
}
