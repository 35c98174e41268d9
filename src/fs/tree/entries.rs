//! What a directory of the tree lists, and what a name in it looks up to.

use super::*;

impl Ctx<'_> {
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
            Node::Root => root_entry(name)?,
            Node::TypeDir(t) => Node::NsDir(t, Inode(number(name)?)),
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
            Node::OrphansType(t) => Node::OrphanLink(t, Inode(number(name)?)),
            Node::PinnedType(t) => Node::PinnedLink(t, self.pins.id(t, name)?),
            Node::ProcRoot => Node::ProcDir(Pid(i32::try_from(number(name)?).ok()?)),
            Node::ProcDir(pid) => Node::ProcLink(pid, LINK_NAMES.iter().position(|l| *l == name)? as u8),
            Node::TreeRoot => Node::TreeUser(Inode(number(name.strip_prefix("user:")?)?)),
            Node::TreeUser(u) => self.owned_by(u, name)?,
            Node::NsDir(t, i) => Node::NsFile(t, i, NsEntry::from_name(t, name)?),
            Node::NsFile(t, i, NsEntry::Children) => {
                let c = Inode(number(name)?);
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
        if dir == Node::TreeRoot && !self.is_top_level_user(node) {
            return None;
        }
        self.exists(node).then_some(node)
    }

    /// The entry `name` (`TYPE:INODE`) of `tree/.../user:U`: a namespace U owns.
    fn owned_by(&self, u: Inode, name: &str) -> Option<Node> {
        let (t, i) = typed_name(name)?;
        if self.ns(t, i)?.owner != Some(u) {
            return None;
        }
        Some(if t == NsType::User { Node::TreeUser(i) } else { Node::TreeLink(t, i) })
    }

    /// Whether `node` is a user namespace with no parent in view: only
    /// those are directly under tree/.
    fn is_top_level_user(&self, node: Node) -> bool {
        let Node::TreeUser(i) = node else { return false };
        self.ns(NsType::User, i)
            .is_some_and(|ns| ns.parent.is_none_or(|p| self.ns(NsType::User, p).is_none()))
    }
}

/// The top-level entry `name`.
fn root_entry(name: &str) -> Option<Node> {
    Some(match name {
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
    })
}
