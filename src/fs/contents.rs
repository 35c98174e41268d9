//! File contents of the tree: README, a container's `id` and `processes`,
//! and every file of a namespace directory (`processes`, `holders`, `pins`,
//! `info.json`, the type-specific files, `container`, `age`), rendered for
//! one view and caller. `ctl` belongs to control.

use super::inode::{ContainerFile, Node, NsEntry};
use super::tree::{Ctx, README, SERVED_BY};
use crate::discovery::details;
use crate::owners::cgroup;
use crate::{json, render};

impl Ctx<'_> {
    /// A file's content (not `ctl`, which belongs to control). `None` when
    /// it does not exist or the kernel would not tell.
    pub fn content(&self, node: Node) -> Option<Vec<u8>> {
        let text = match node {
            Node::Readme => format!("{README}\n{SERVED_BY} {}.\n", crate::sys::getpid()),
            Node::ContainerFile(n, ContainerFile::Id) => {
                let (o, _) = self.container(n)?;
                match &o.name {
                    Some(name) => format!("{} {}\n", render::escape(&o.id), render::escape(name)),
                    None => format!("{}\n", render::escape(&o.id)),
                }
            }
            Node::ContainerFile(n, ContainerFile::Processes) => {
                let (o, _) = self.container(n)?;
                let members =
                    self.snap.cgroups.iter().filter(|(_, path)| cgroup::owner(path).as_ref() == Some(o));
                render::process_lines(
                    members.map(|(pid, _)| *pid).filter(|p| self.pid_visible(*p)),
                    &crate::discovery::comm,
                )
            }
            Node::NsFile(t, i, e) => {
                let ns = self.ns(t, i)?;
                match e {
                    NsEntry::Type => format!("{t}\n"),
                    NsEntry::Inode => format!("{i}\n"),
                    NsEntry::Id => format!("{}\n", ns.id?),
                    NsEntry::Processes => {
                        render::processes(ns, &|p| self.pid_visible(p), &crate::discovery::comm)
                    }
                    NsEntry::Holders => render::holders(ns, &|h| self.holder_visible(h)),
                    NsEntry::Pins => render::pins(&self.visible_part(ns)),
                    NsEntry::InfoJson => {
                        let shown = self.visible_part(ns);
                        let owners = json::owners(self.owners.current.get(&i), self.owners.was.get(&i));
                        let age = self
                            .owners
                            .orphaned_since
                            .get(&i)
                            .map(|t| t.elapsed().unwrap_or_default().as_secs());
                        let doc = json::InfoDoc {
                            namespace: json::namespace(&shown, &crate::discovery::comm, owners),
                            age,
                            details: json::details(self.snap, &shown),
                        };
                        format!("{}\n", serde_json::to_string_pretty(&doc).ok()?)
                    }
                    NsEntry::Detail(d) => match details::read(self.snap, ns, d) {
                        Ok(fact) => fact.text(),
                        Err(e) => {
                            log::debug!("{e}");
                            return None;
                        }
                    },
                    NsEntry::Container => self.owners.lines(i),
                    NsEntry::Age => {
                        let since = self.owners.orphaned_since.get(&i)?;
                        format!("{}\n", since.elapsed().unwrap_or_default().as_secs())
                    }
                    _ => return None,
                }
            }
            _ => return None,
        };
        Some(text.into_bytes())
    }
}
