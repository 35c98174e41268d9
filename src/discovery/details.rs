//! Type-specific facts read on demand, never during a scan: uid/gid maps,
//! hostname, interfaces, netnsid, mountinfo, time offsets, cgroup root.
//! Each reads through a member process's /proc files when there is one, and
//! otherwise enters the namespace from a short-lived helper thread.
//! `None` means the kernel did not let nsfuse read it (the file is absent).
//! A read gives a `Fact`: the file's text, and what `info.json` types.

use super::netlink::{self, Interface};
use crate::enter;
use crate::model::{Namespace, NsType, Pid, Snapshot};
use crate::sys;
use std::os::fd::{AsFd, OwnedFd};

/// One type-specific file of a namespace directory.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Detail {
    UidMap,
    GidMap,
    OwnerUid,
    Level,
    Hostname,
    Domainname,
    Interfaces,
    Netnsid,
    Mountinfo,
    Offsets,
    Root,
}

impl Detail {
    /// The details a namespace of this type has, in listing order.
    pub fn for_type(ty: NsType) -> &'static [Detail] {
        match ty {
            NsType::User => &[Detail::UidMap, Detail::GidMap, Detail::OwnerUid, Detail::Level],
            NsType::Pid => &[Detail::Level],
            NsType::Uts => &[Detail::Hostname, Detail::Domainname],
            NsType::Net => &[Detail::Interfaces, Detail::Netnsid],
            NsType::Mnt => &[Detail::Mountinfo],
            NsType::Time => &[Detail::Offsets],
            NsType::Cgroup => &[Detail::Root],
            NsType::Ipc => &[],
        }
    }

    /// The file name in the namespace directory.
    pub fn name(self) -> &'static str {
        match self {
            Detail::UidMap => "uid_map",
            Detail::GidMap => "gid_map",
            Detail::OwnerUid => "owner_uid",
            Detail::Level => "level",
            Detail::Hostname => "hostname",
            Detail::Domainname => "domainname",
            Detail::Interfaces => "interfaces",
            Detail::Netnsid => "netnsid",
            Detail::Mountinfo => "mountinfo",
            Detail::Offsets => "offsets",
            Detail::Root => "root",
        }
    }
}

/// A process whose own `ty` link is this namespace (lowest PID first).
pub fn member(snap: &Snapshot, ns: &Namespace) -> Option<Pid> {
    members(snap, ns).next()
}

/// Every process whose own `ty` link is this namespace, lowest PID first
/// (what lsns counts: not processes with only a thread in it).
pub fn members<'a>(snap: &'a Snapshot, ns: &'a Namespace) -> impl Iterator<Item = Pid> + 'a {
    let idx = ns.ns_type.index();
    ns.processes
        .iter()
        .copied()
        .filter(move |p| snap.processes.get(p).and_then(|l| l.get(idx)) == Some(ns.inode))
}

/// Whether `detail` can be read for `ns`, judged from the snapshot alone
/// (no I/O, so listing a directory stays cheap): what it needs — a member
/// process, a path to enter by, a `time_for_children` holder — is there.
/// A read can still fail if the namespace ends meanwhile.
pub fn available(snap: &Snapshot, ns: &Namespace, detail: Detail) -> bool {
    let (member, path) = (member(snap, ns).is_some(), ns.path.is_some());
    match detail {
        Detail::OwnerUid => ns.owner_uid.is_some(),
        Detail::Level => true,
        Detail::UidMap | Detail::GidMap | Detail::Mountinfo => member || path,
        Detail::Hostname | Detail::Domainname | Detail::Interfaces | Detail::Netnsid => path,
        Detail::Offsets => time_for_children_holder(snap, ns).is_some(),
        Detail::Root => member && path,
    }
}

/// A process whose `time_for_children` is this time namespace.
fn time_for_children_holder(snap: &Snapshot, ns: &Namespace) -> Option<Pid> {
    let idx = crate::model::LINK_NAMES.iter().position(|n| *n == "time_for_children")?;
    snap.processes.iter().find(|(_, l)| l.get(idx) == Some(ns.inode)).map(|(p, _)| *p)
}

/// Open the namespace through its known path, checking it is still the same one.
pub fn open(ns: &Namespace) -> Option<OwnedFd> {
    super::open_checked(ns.path.as_ref()?, ns.inode)
}

fn read_string(path: &str) -> Option<String> {
    std::fs::read(path).ok().map(|b| String::from_utf8_lossy(&b).into_owned())
}

/// What one read of a detail gave.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fact {
    /// Text, as the file shows it (the kernel's, or one value and a newline).
    Text(String),
    /// One value (`hostname`, `root`): the file shows it escaped, on one line.
    Value(String),
    /// A number (`owner_uid`, `level`).
    Number(u64),
    /// `netnsid`: None when our namespace has assigned it no id.
    Netnsid(Option<u32>),
    /// `interfaces`, from netlink.
    Interfaces(Vec<Interface>),
}

impl Fact {
    /// The file's content.
    pub fn text(&self) -> String {
        match self {
            Fact::Text(s) => s.clone(),
            Fact::Value(v) => format!("{}\n", crate::render::escape(v)),
            Fact::Number(n) => format!("{n}\n"),
            Fact::Netnsid(None) => "unassigned\n".to_owned(),
            Fact::Netnsid(Some(id)) => format!("{id}\n"),
            Fact::Interfaces(list) => {
                list.iter().map(|i| format!("{}\n", crate::render::escape(&i.name))).collect()
            }
        }
    }
}

/// Read one detail; `None` where the kernel does not let us.
pub fn read(snap: &Snapshot, ns: &Namespace, detail: Detail) -> Option<Fact> {
    let pid = member(snap, ns);
    let text = |s: Option<String>| s.map(Fact::Text);
    match detail {
        Detail::OwnerUid => ns.owner_uid.map(|u| Fact::Number(u.into())),
        Detail::Level => Some(Fact::Number(snap.level(ns).into())),
        Detail::UidMap | Detail::GidMap => {
            let file = detail.name();
            text(match pid {
                Some(pid) => read_string(&format!("/proc/{pid}/{file}")),
                // No process in it: a single-threaded helper enters it to read.
                None => crate::helper::read_in_userns(open(ns)?.as_fd(), file),
            })
        }
        Detail::Hostname | Detail::Domainname => {
            let fd = open(ns)?;
            let (host, domain) = enter::run_in_one(fd.as_fd(), NsType::Uts, sys::uname).ok()?;
            Some(Fact::Value(if detail == Detail::Hostname { host } else { domain }))
        }
        Detail::Interfaces => {
            let fd = open(ns)?;
            enter::run_in_one(fd.as_fd(), NsType::Net, netlink::interfaces).ok().map(Fact::Interfaces)
        }
        Detail::Netnsid => netlink::netnsid(open(ns)?.as_fd()).ok().map(Fact::Netnsid),
        Detail::Mountinfo => text(match pid {
            Some(pid) => read_string(&format!("/proc/{pid}/mountinfo")),
            None => {
                let fd = open(ns)?;
                let proc = sys::open_path("/proc".as_ref(), libc::O_RDONLY | libc::O_DIRECTORY).ok()?;
                let text = enter::run_in_one(fd.as_fd(), NsType::Mnt, || {
                    super::mounts::this_thread_mountinfo(proc.as_fd())
                })
                .ok()?;
                Some(String::from_utf8_lossy(&text).into_owned())
            }
        }),
        Detail::Offsets => {
            // timens_offsets shows the process's time_for_children namespace.
            let pid = time_for_children_holder(snap, ns)?;
            text(read_string(&format!("/proc/{pid}/timens_offsets")))
        }
        Detail::Root => cgroup_root(ns, pid?),
    }
}

/// The cgroup namespace's root: a member's cgroup path as seen from here,
/// minus the same path as seen from inside the namespace.
fn cgroup_root(ns: &Namespace, pid: Pid) -> Option<Fact> {
    let outside = read_string(&format!("/proc/{pid}/cgroup"))?;
    let fd = open(ns)?;
    let proc = sys::open_path("/proc".as_ref(), libc::O_RDONLY | libc::O_DIRECTORY).ok()?;
    let path = std::ffi::CString::new(format!("{pid}/cgroup")).ok()?;
    let inside = enter::run_in_one(fd.as_fd(), NsType::Cgroup, || {
        let f = sys::openat(Some(proc.as_fd()), &path, libc::O_RDONLY)?;
        let mut s = String::new();
        std::io::Read::read_to_string(&mut std::fs::File::from(f), &mut s)?;
        Ok(s)
    })
    .ok()?;
    Some(Fact::Value(cgroup_root_from(&outside, &inside)?))
}

/// Pure part of `cgroup_root`: `0::/a/b/c` outside and `0::/c` inside give `/a/b`.
pub fn cgroup_root_from(outside: &str, inside: &str) -> Option<String> {
    let v2 = |s: &str| s.lines().find_map(|l| l.strip_prefix("0::")).map(str::to_owned);
    let (out, ins) = (v2(outside)?, v2(inside)?);
    if ins == "/" {
        return Some(out);
    }
    let root = out.strip_suffix(ins.as_str())?;
    Some(if root.is_empty() { "/".to_owned() } else { root.to_owned() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cgroup_roots() {
        assert_eq!(cgroup_root_from("0::/a/b/c\n", "0::/c\n").as_deref(), Some("/a/b"));
        assert_eq!(cgroup_root_from("0::/a/b\n", "0::/\n").as_deref(), Some("/a/b"));
        assert_eq!(cgroup_root_from("0::/c\n", "0::/c\n").as_deref(), Some("/"));
        // A member outside its namespace's root: not computable this way.
        assert_eq!(cgroup_root_from("0::/x\n", "0::/../y\n"), None);
        assert_eq!(cgroup_root_from("1:cpu:/x\n", "0::/\n"), None);
    }

    #[test]
    fn every_type_has_its_files() {
        assert_eq!(Detail::for_type(NsType::User).len(), 4);
        assert!(Detail::for_type(NsType::Ipc).is_empty());
        let names: Vec<_> = NsType::ALL.iter().flat_map(|t| Detail::for_type(*t)).map(|d| d.name()).collect();
        assert!(names.contains(&"netnsid") && names.contains(&"root") && names.contains(&"offsets"));
    }
}
