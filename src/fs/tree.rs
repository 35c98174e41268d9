//! The shape of the tree (SPEC section 2) over one snapshot: which entries
//! a directory has, what a name looks up to, where a symlink points, who
//! owns an entry. Plain functions of a `Ctx`, tested without FUSE. What a
//! file says is `contents` (the caller caches it); what a non-root caller
//! may see, `visibility`.

use super::inode::{ContainerFile, Node, NsEntry};
use super::visibility::Visibility;
use crate::discovery::details::{self, Detail};
use crate::model::{Inode, Namespace, NsType, Snapshot, LINK_NAMES, LINK_TYPES};
use crate::owners::index::{dir_name, is_orphan, Owners};
use crate::owners::Owner;

use std::collections::BTreeMap;

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

pub const README: &str = include_str!("README.tree");

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

    /// The entries of a directory, or `None` if it is not a live directory.
    pub fn list(&self, dir: Node) -> Option<Vec<(String, Node)>> {
        if kind(dir) != Kind::Dir || !self.exists(dir) {
            return None;
        }
        let named = |n: Node| (name_of(self, n).unwrap_or_default(), n);
        let per_type = |make: fn(NsType) -> Node| NsType::ALL.iter().map(|t| named(make(*t))).collect();
        Some(match dir {
            Node::Root => self.root_entries(),
            Node::TypeDir(t) => self.namespaces_listed(t, |_| true, |i| Node::NsDir(t, i)),
            Node::OrphansType(t) => self.namespaces_listed(t, is_orphan, |i| Node::OrphanLink(t, i)),
            Node::PinnedRoot => per_type(Node::PinnedType),
            Node::OrphansRoot => per_type(Node::OrphansType),
            Node::ContainersRoot => self
                .owners
                .containers
                .keys()
                .filter(|n| self.container(**n).is_some())
                .map(|n| named(Node::ContainerDir(*n)))
                .collect(),
            Node::ContainerDir(n) => self.container_entries(n),
            Node::PinnedType(t) => self.pinned_entries(t),
            Node::ProcRoot => self
                .snap
                .processes
                .keys()
                .filter(|p| self.pid_visible(**p))
                .map(|p| named(Node::ProcDir(*p)))
                .collect(),
            Node::ProcDir(pid) => {
                let links = self.snap.processes.get(&pid)?;
                (0..LINK_NAMES.len())
                    .filter(|l| links.get(*l).is_some())
                    .map(|l| named(Node::ProcLink(pid, l as u8)))
                    .collect()
            }
            Node::TreeRoot => self
                .snap
                .of_type(NsType::User)
                .filter(|n| self.ns(NsType::User, n.inode).is_some())
                .filter(|n| n.parent.is_none_or(|p| self.ns(NsType::User, p).is_none()))
                .map(|n| named(Node::TreeUser(n.inode)))
                .collect(),
            Node::TreeUser(u) => self.tree_user_entries(u)?,
            Node::NsDir(t, i) => {
                let ns = self.ns(t, i)?;
                self.ns_entries(ns).into_iter().map(|e| named(Node::NsFile(t, i, e))).collect()
            }
            Node::NsFile(t, i, NsEntry::Children) => {
                let ns = self.ns(t, i)?;
                let visible = ns.children.iter().filter(|c| self.ns(t, **c).is_some());
                visible.map(|c| named(Node::ChildLink(t, *c))).collect()
            }
            Node::NsFile(t, i, NsEntry::Owns) => {
                let ns = self.ns(t, i)?;
                let visible = ns.owns.iter().filter(|(ot, oi)| self.ns(*ot, *oi).is_some());
                visible.map(|(ot, oi)| named(Node::OwnsLink(*ot, *oi))).collect()
            }
            _ => return None,
        })
    }

    /// The top of the tree, in listing order.
    fn root_entries(&self) -> Vec<(String, Node)> {
        let mut nodes = vec![Node::Readme];
        if !self.read_only {
            nodes.push(Node::TopCtl);
        }
        nodes.extend(NsType::ALL.iter().map(|t| Node::TypeDir(*t)));
        nodes.extend(Node::TOP_LEVEL);
        nodes.into_iter().map(|n| (name_of(self, n).unwrap_or_default(), n)).collect()
    }

    /// The visible namespaces of type `t` that `keep` lets through, each
    /// listed as the node `make` gives it.
    fn namespaces_listed(
        &self,
        t: NsType,
        keep: impl Fn(&Namespace) -> bool,
        make: impl Fn(Inode) -> Node,
    ) -> Vec<(String, Node)> {
        let shown = self.snap.of_type(t).filter(|n| keep(n) && self.ns(t, n.inode).is_some());
        shown.map(|n| make(n.inode)).map(|n| (name_of(self, n).unwrap_or_default(), n)).collect()
    }

    /// `containers/KIND-ID/`: `id`, `processes`, a link per namespace type.
    fn container_entries(&self, n: u32) -> Vec<(String, Node)> {
        let mut nodes =
            vec![Node::ContainerFile(n, ContainerFile::Id), Node::ContainerFile(n, ContainerFile::Processes)];
        let used = NsType::ALL.iter().filter(|t| self.container_ns(n, **t).is_some());
        nodes.extend(used.map(|t| Node::ContainerLink(n, *t)));
        nodes.into_iter().map(|n| (name_of(self, n).unwrap_or_default(), n)).collect()
    }

    /// `pinned/TYPE/`: every pin of that type in the pin directories.
    fn pinned_entries(&self, t: NsType) -> Vec<(String, Node)> {
        self.snap
            .named_pins
            .iter()
            .filter(|((pt, _), inode)| *pt == t && self.ns(t, **inode).is_some())
            .filter_map(|((pt, name), _)| {
                Some((name.clone(), Node::PinnedLink(*pt, self.pins.id(*pt, name)?)))
            })
            .collect()
    }

    /// `tree/.../user:INODE/`: its child user namespaces as directories,
    /// everything else it owns as links.
    fn tree_user_entries(&self, u: Inode) -> Option<Vec<(String, Node)>> {
        let ns = self.ns(NsType::User, u)?;
        let owned = ns.owns.iter().filter(|(t, i)| self.ns(*t, *i).is_some());
        let nodes =
            owned.map(|&(t, i)| if t == NsType::User { Node::TreeUser(i) } else { Node::TreeLink(t, i) });
        Some(nodes.map(|n| (name_of(self, n).unwrap_or_default(), n)).collect())
    }

    /// Look `name` up in `dir`.
    pub fn lookup(&self, dir: Node, name: &str) -> Option<Node> {
        let node = match dir {
            Node::Root => match name {
                "README" => Node::Readme,
                "ctl" => Node::TopCtl,
                "pinned" => Node::PinnedRoot,
                "proc" => Node::ProcRoot,
                "tree" => Node::TreeRoot,
                "orphans" => Node::OrphansRoot,
                "containers" => Node::ContainersRoot,
                "events" => Node::Events,
                "metrics" => Node::Metrics,
                t => Node::TypeDir(t.parse().ok()?),
            },
            Node::TypeDir(t) => Node::NsDir(t, number(name)?),
            Node::PinnedRoot => Node::PinnedType(name.parse().ok()?),
            Node::OrphansRoot => Node::OrphansType(name.parse().ok()?),
            Node::ContainersRoot => {
                Node::ContainerDir(*self.owners.containers.iter().find(|(_, (o, _))| dir_name(o) == name)?.0)
            }
            Node::ContainerDir(n) => match name {
                "id" => Node::ContainerFile(n, ContainerFile::Id),
                "processes" => Node::ContainerFile(n, ContainerFile::Processes),
                t => Node::ContainerLink(n, t.parse().ok()?),
            },
            Node::OrphansType(t) => Node::OrphanLink(t, number(name)?),
            Node::PinnedType(t) => Node::PinnedLink(t, self.pins.id(t, name)?),
            Node::ProcRoot => Node::ProcDir(i32::try_from(number(name)?).ok()?),
            Node::ProcDir(pid) => Node::ProcLink(pid, LINK_NAMES.iter().position(|l| *l == name)? as u8),
            Node::TreeRoot => Node::TreeUser(number(name.strip_prefix("user:")?)?),
            Node::TreeUser(u) => {
                let (t, i) = typed_name(name)?;
                let owner = self.ns(t, i)?.owner;
                if owner != Some(u) {
                    return None;
                }
                if t == NsType::User {
                    Node::TreeUser(i)
                } else {
                    Node::TreeLink(t, i)
                }
            }
            Node::NsDir(t, i) => Node::NsFile(t, i, NsEntry::from_name(t, name)?),
            Node::NsFile(t, i, NsEntry::Children) => {
                let c = number(name)?;
                if self.ns(t, c)?.parent != Some(i) {
                    return None;
                }
                Node::ChildLink(t, c)
            }
            Node::NsFile(_, i, NsEntry::Owns) => {
                let (t, o) = typed_name(name)?;
                if self.ns(t, o)?.owner != Some(i) {
                    return None;
                }
                Node::OwnsLink(t, o)
            }
            _ => return None,
        };
        if dir == Node::TreeRoot {
            // Only top-level user namespaces are directly under tree/.
            let ns = self.ns(
                NsType::User,
                match node {
                    Node::TreeUser(i) => i,
                    _ => return None,
                },
            )?;
            if ns.parent.is_some_and(|p| self.ns(NsType::User, p).is_some()) {
                return None;
            }
        }
        self.exists(node).then_some(node)
    }

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
    Some((t.parse().ok()?, number(i)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Holder, Pin, ProcessLinks, ProcessTable};
    use std::sync::Arc;

    /// A small host: init user/net/uts, a child user ns owning a net ns
    /// pinned as "web", and a process in both.
    fn host() -> Snapshot {
        let mut s = Snapshot::default();
        let mut add = |ty, inode, owner, parent| {
            let mut n = Namespace::new(ty, inode);
            n.owner = owner;
            n.parent = parent;
            n.id = Some(inode * 10);
            n.path = Some(format!("/proc/1/ns/{ty}").into());
            s.namespaces.insert(inode, Arc::new(n));
        };
        add(NsType::User, 100, None, None);
        add(NsType::Net, 101, Some(100), None);
        add(NsType::User, 200, Some(100), Some(100));
        add(NsType::Net, 201, Some(200), None);
        ns_mut(&mut s, 100).owns = vec![(NsType::Net, 101), (NsType::User, 200)];
        ns_mut(&mut s, 100).children = vec![200];
        ns_mut(&mut s, 200).owns = vec![(NsType::Net, 201)];
        ns_mut(&mut s, 200).owner_uid = Some(1000);
        let n = ns_mut(&mut s, 201);
        n.pins = vec![Pin { mntns: 5, path: "/run/netns/web".into() }];
        n.holders = vec![Holder::Mount { mntns: 5, path: "/run/netns/web".into() }];
        s.named_pins.insert((NsType::Net, "web".into()), 201);
        let mut links = ProcessLinks::default();
        links.0[NsType::User.index()] = 100;
        links.0[NsType::Net.index()] = 101;
        s.processes = ProcessTable::new(vec![(1, links)]);
        s.root_userns = Some(100);
        s
    }

    fn ns_mut(s: &mut Snapshot, inode: Inode) -> &mut Namespace {
        Arc::make_mut(s.namespaces.get_mut(&inode).expect("in the test host"))
    }

    fn with_ctx<R>(snap: &Snapshot, read_only: bool, f: impl FnOnce(&Ctx<'_>) -> R) -> R {
        let mut pins = PinNames::default();
        pins.register(NsType::Net, "web");
        let owners = Owners::default();
        let ctx = Ctx { snap, pins: &pins, read_only, visible: None, owners: &owners };
        f(&ctx)
    }

    fn names(list: Option<Vec<(String, Node)>>) -> Vec<String> {
        list.unwrap_or_default().into_iter().map(|(n, _)| n).collect()
    }

    #[test]
    fn root_and_type_dirs() {
        let s = host();
        with_ctx(&s, false, |c| {
            assert_eq!(
                names(c.list(Node::Root)),
                [
                    "README",
                    "ctl",
                    "cgroup",
                    "ipc",
                    "mnt",
                    "net",
                    "pid",
                    "time",
                    "user",
                    "uts",
                    "pinned",
                    "proc",
                    "tree",
                    "orphans",
                    "containers",
                    "events",
                    "metrics"
                ]
            );
            assert_eq!(names(c.list(Node::TypeDir(NsType::Net))), ["101", "201"]);
            assert_eq!(c.lookup(Node::TypeDir(NsType::Net), "201"), Some(Node::NsDir(NsType::Net, 201)));
            assert_eq!(c.lookup(Node::TypeDir(NsType::Uts), "201"), None, "wrong type");
            assert_eq!(c.lookup(Node::TypeDir(NsType::Net), "0201"), None, "one name only");
            assert_eq!(c.lookup(Node::TypeDir(NsType::Net), "999"), None);
        });
        with_ctx(&s, true, |c| {
            assert!(!names(c.list(Node::Root)).contains(&"ctl".to_string()));
            assert_eq!(c.lookup(Node::Root, "ctl"), None);
        });
    }

    #[test]
    fn namespace_directory() {
        let s = host();
        with_ctx(&s, false, |c| {
            // Every namespace: type inode id owner, [the hierarchy], the
            // rest, then its type-specific files.
            let listing = |hierarchy: &[&str], details: &[&str]| {
                let head = ["type", "inode", "id", "owner"].iter().chain(hierarchy);
                // (The test host's namespaces have no member: all orphans, with an age.)
                let rest = ["processes", "holders", "pins", "ns", "ctl", "info.json", "container", "age"]
                    .iter()
                    .chain(details);
                head.chain(rest).map(|n| n.to_string()).collect::<Vec<_>>()
            };
            assert_eq!(
                names(c.list(Node::NsDir(NsType::User, 200))),
                listing(&["parent", "children", "owns"], &["uid_map", "gid_map", "owner_uid", "level"])
            );
            let net = Node::NsDir(NsType::Net, 201);
            assert_eq!(names(c.list(net)), listing(&[], &["interfaces", "netnsid"]));
            let f = |e| c.content(Node::NsFile(NsType::Net, 201, e)).map(|b| String::from_utf8(b).unwrap());
            assert_eq!(f(NsEntry::Type).as_deref(), Some("net\n"));
            assert_eq!(f(NsEntry::Inode).as_deref(), Some("201\n"));
            assert_eq!(f(NsEntry::Id).as_deref(), Some("2010\n"));
            assert_eq!(f(NsEntry::Pins).as_deref(), Some("5 /run/netns/web\n"));
            assert_eq!(f(NsEntry::Holders).as_deref(), Some("mount 5 /run/netns/web\n"));
            assert_eq!(c.owner_uid(net), 1000);
            assert_eq!(c.owner_uid(Node::NsFile(NsType::Net, 201, NsEntry::Ctl)), 0);
            assert_eq!(c.lookup(Node::NsDir(NsType::Net, 201), "parent"), None, "net has no parent");
            assert_eq!(c.lookup(Node::NsDir(NsType::Net, 201), "hostname"), None, "not a uts ns");
        });
        // With no way in (no path, no member), no type-specific files, and
        // no `ns` link; the user namespace without owner_uid has no file for it.
        let mut s = host();
        for n in s.namespaces.values_mut() {
            Arc::make_mut(n).path = None;
        }
        ns_mut(&mut s, 200).owner_uid = None;
        s.processes = ProcessTable::default();
        with_ctx(&s, false, |c| {
            let user = names(c.list(Node::NsDir(NsType::User, 200)));
            assert_eq!(&user[user.len() - 2..], ["age", "level"]);
            assert!(!user.contains(&"ns".to_string()));
            assert_eq!(names(c.list(Node::NsDir(NsType::Net, 201))).last().map(String::as_str), Some("age"));
        });
    }

    #[test]
    fn gone_directories() {
        let old = host();
        assert!(gone_dirs(&old, &old).is_empty());
        let mut new = host();
        new.namespaces.remove(&201);
        new.processes = ProcessTable::default();
        // 200 now names a user namespace under another parent (a reused number).
        ns_mut(&mut new, 200).parent = Some(999);
        let mut gone = gone_dirs(&old, &new);
        gone.sort_by_key(|(n, name)| (n.ino(), name.clone()));
        let mut want = vec![
            (Node::TypeDir(NsType::Net), "201".to_string()),
            (Node::TypeDir(NsType::User), "200".to_string()),
            (Node::TreeUser(100), "user:200".to_string()),
            (Node::ProcRoot, "1".to_string()),
        ];
        want.sort_by_key(|(n, name)| (n.ino(), name.clone()));
        assert_eq!(gone, want);
    }

    #[test]
    fn symlinks_are_relative() {
        let s = host();
        with_ctx(&s, false, |c| {
            let l = |n| c.link_target(n);
            assert_eq!(l(Node::NsFile(NsType::Net, 201, NsEntry::Owner)).as_deref(), Some("../../user/200"));
            assert_eq!(l(Node::NsFile(NsType::User, 200, NsEntry::Parent)).as_deref(), Some("../100"));
            let child = c.lookup(Node::NsFile(NsType::User, 100, NsEntry::Children), "200").unwrap();
            assert_eq!(l(child).as_deref(), Some("../../200"));
            let owned = c.lookup(Node::NsFile(NsType::User, 200, NsEntry::Owns), "net:201").unwrap();
            assert_eq!(l(owned).as_deref(), Some("../../../net/201"));
            let pin = c.lookup(Node::PinnedType(NsType::Net), "web").unwrap();
            assert_eq!(l(pin).as_deref(), Some("../../net/201"));
            let proc_net = c.lookup(Node::ProcDir(1), "net").unwrap();
            assert_eq!(l(proc_net).as_deref(), Some("../../net/101"));
            assert_eq!(names(c.list(Node::ProcDir(1))), ["net", "user"]);
        });
    }

    #[test]
    fn ownership_tree() {
        let s = host();
        with_ctx(&s, false, |c| {
            assert_eq!(names(c.list(Node::TreeRoot)), ["user:100"]);
            assert_eq!(names(c.list(Node::TreeUser(100))), ["net:101", "user:200"]);
            assert_eq!(names(c.list(Node::TreeUser(200))), ["net:201"]);
            assert_eq!(c.lookup(Node::TreeRoot, "user:200"), None, "nested, not top-level");
            let deep = c.lookup(Node::TreeUser(200), "net:201").unwrap();
            // tree/user:100/user:200/net:201 -> ../../../net/201
            assert_eq!(c.link_target(deep).as_deref(), Some("../../../net/201"));
            let top = c.lookup(Node::TreeUser(100), "net:101").unwrap();
            assert_eq!(c.link_target(top).as_deref(), Some("../../net/101"));
            assert_eq!(c.lookup(Node::TreeUser(100), "net:201"), None, "owned by 200, not 100");
        });
    }

    #[test]
    fn visibility_filter() {
        let s = host();
        let pins = PinNames::default();
        let visible = Visibility { pids: [1].into(), namespaces: [100, 101].into() };
        let c = Ctx {
            snap: &s,
            pins: &pins,
            read_only: false,
            visible: Some(&visible),
            owners: &Owners::default(),
        };
        assert_eq!(names(c.list(Node::ProcRoot)), ["1"]);
        assert_eq!(names(c.list(Node::TypeDir(NsType::Net))), ["101"]);
        assert_eq!(c.lookup(Node::TypeDir(NsType::Net), "201"), None);
        assert_eq!(names(c.list(Node::NsFile(NsType::User, 100, NsEntry::Children))), Vec::<String>::new());
        // Contents follow the same rule: user 100 owns 200, which is hidden.
        let mut s2 = host();
        let user = ns_mut(&mut s2, 100);
        user.holders = vec![
            Holder::Task { pid: 1, tid: 1 },
            Holder::Fd { pid: 77, fd: 3 },
            Holder::Child { ns_type: NsType::User, inode: 200 },
            Holder::Child { ns_type: NsType::Net, inode: 101 },
        ];
        user.processes = vec![1, 77];
        let c = Ctx {
            snap: &s2,
            pins: &pins,
            read_only: false,
            visible: Some(&visible),
            owners: &Owners::default(),
        };
        let text = |n| String::from_utf8(c.content(n).unwrap_or_default()).unwrap();
        assert_eq!(text(Node::NsFile(NsType::User, 100, NsEntry::Holders)), "task 1 1\nchild net 101\n");
        let json = text(Node::NsFile(NsType::User, 100, NsEntry::InfoJson));
        assert!(!json.contains("200") && !json.contains("77"), "{json}");
        let root =
            Ctx { snap: &s2, pins: &pins, read_only: false, visible: None, owners: &Owners::default() };
        assert_eq!(
            String::from_utf8(root.content(Node::NsFile(NsType::User, 100, NsEntry::Holders)).unwrap())
                .unwrap()
                .lines()
                .count(),
            4
        );
    }

    #[test]
    fn numbers() {
        assert_eq!(number("4026531840"), Some(4026531840));
        assert_eq!(number("0"), Some(0));
        for bad in ["", "01", "+1", "-1", " 1", "1a", "99999999999999999999999"] {
            assert_eq!(number(bad), None, "{bad}");
        }
    }
}
