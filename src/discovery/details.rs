//! Type-specific facts read on demand, never during a scan: uid/gid maps,
//! hostname, interfaces, netnsid, mountinfo, time offsets, cgroup root.
//! Each reads through a member process's /proc files when there is one, and
//! otherwise enters the namespace from a short-lived helper thread.
//! A read gives a `Fact` (the file's text, and what `info.json` types) or
//! an `Error` saying why not (the file is then absent).

use super::netlink::{self, Interface};
use crate::enter;
use crate::model::{Inode, Link, Namespace, NsType, Pid, Snapshot};
use crate::sys;
use std::io;
use std::os::fd::{AsFd, OwnedFd};

/// Why a detail could not be read.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No path leads to the namespace any more: it is gone, or its only
    /// path now leads elsewhere.
    #[error("{ty}:[{inode}] cannot be opened")]
    Unreachable { ty: NsType, inode: Inode },
    /// Nothing to read it through (no process in it, or no process whose
    /// time_for_children it is).
    #[error("{what} of {ty}:[{inode}] has nothing to be read through")]
    NoProcess { what: &'static str, ty: NsType, inode: Inode },
    /// The kernel said no, or said something unexpected.
    #[error("cannot read {what} of {ty}:[{inode}]: {source}")]
    Read { what: &'static str, ty: NsType, inode: Inode, source: io::Error },
}

type Result<T> = std::result::Result<T, Error>;

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
    snap.processes.iter().find(|(_, l)| l.of(Link::TimeForChildren) == Some(ns.inode)).map(|(p, _)| *p)
}

/// Open the namespace through its known path, checking it is still the same one.
pub fn open(ns: &Namespace) -> Option<OwnedFd> {
    super::open_checked(ns.path.as_ref()?, ns.inode)
}

fn read_string(path: &str) -> io::Result<String> {
    std::fs::read(path).map(|b| String::from_utf8_lossy(&b).into_owned())
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

/// Read one detail.
pub fn read(snap: &Snapshot, ns: &Namespace, detail: Detail) -> Result<Fact> {
    let what = detail.name();
    let (ty, inode) = (ns.ns_type, ns.inode);
    let failed = |source| Error::Read { what, ty, inode, source };
    let opened = || open(ns).ok_or(Error::Unreachable { ty, inode });
    let pid = member(snap, ns);
    match detail {
        Detail::OwnerUid => {
            let refused = || failed(io::Error::from_raw_os_error(libc::ENOTTY));
            ns.owner_uid.map(|u| Fact::Number(u.into())).ok_or_else(refused)
        }
        Detail::Level => Ok(Fact::Number(snap.level(ns).into())),
        Detail::UidMap | Detail::GidMap => match pid {
            Some(pid) => read_string(&format!("/proc/{pid}/{what}")).map(Fact::Text).map_err(failed),
            // No process in it: a single-threaded helper enters it to read.
            None => crate::helper::read_in_userns(opened()?.as_fd(), what)
                .map(Fact::Text)
                .ok_or_else(|| failed(io::Error::other("the helper could not read it"))),
        },
        Detail::Hostname | Detail::Domainname => {
            let (host, domain) =
                enter::run_in_one(opened()?.as_fd(), NsType::Uts, sys::uname).map_err(failed)?;
            Ok(Fact::Value(if detail == Detail::Hostname { host } else { domain }))
        }
        Detail::Interfaces => enter::run_in_one(opened()?.as_fd(), NsType::Net, netlink::interfaces)
            .map(Fact::Interfaces)
            .map_err(failed),
        Detail::Netnsid => netlink::netnsid(opened()?.as_fd()).map(Fact::Netnsid).map_err(failed),
        Detail::Mountinfo => match pid {
            Some(pid) => read_string(&format!("/proc/{pid}/mountinfo")).map(Fact::Text).map_err(failed),
            None => mountinfo_inside(opened()?).map(Fact::Text).map_err(failed),
        },
        Detail::Offsets => {
            // timens_offsets shows the process's time_for_children namespace.
            let pid = time_for_children_holder(snap, ns).ok_or(Error::NoProcess { what, ty, inode })?;
            read_string(&format!("/proc/{pid}/timens_offsets")).map(Fact::Text).map_err(failed)
        }
        Detail::Root => {
            let pid = pid.ok_or(Error::NoProcess { what, ty, inode })?;
            cgroup_root(opened()?, pid).map(Fact::Value).map_err(failed)
        }
    }
}

/// The mountinfo of a mount namespace no process is in, read from a
/// helper thread that entered it.
fn mountinfo_inside(mntns: OwnedFd) -> io::Result<String> {
    let proc = sys::open_path("/proc".as_ref(), libc::O_RDONLY | libc::O_DIRECTORY)?;
    let text =
        enter::run_in_one(mntns.as_fd(), NsType::Mnt, || super::mounts::this_thread_mountinfo(proc.as_fd()))?;
    Ok(String::from_utf8_lossy(&text).into_owned())
}

/// The cgroup namespace's root: a member's cgroup path as seen from here,
/// minus the same path as seen from inside the namespace.
fn cgroup_root(cgroupns: OwnedFd, pid: Pid) -> io::Result<String> {
    let outside = read_string(&format!("/proc/{pid}/cgroup"))?;
    let proc = sys::open_path("/proc".as_ref(), libc::O_RDONLY | libc::O_DIRECTORY)?;
    let path = std::ffi::CString::new(format!("{pid}/cgroup")).map_err(io::Error::other)?;
    let inside = enter::run_in_one(cgroupns.as_fd(), NsType::Cgroup, || {
        let f = sys::openat(Some(proc.as_fd()), &path, libc::O_RDONLY)?;
        let mut s = String::new();
        io::Read::read_to_string(&mut std::fs::File::from(f), &mut s)?;
        Ok(s)
    })?;
    cgroup_root_from(&outside, &inside)
        .ok_or_else(|| io::Error::other("the member sits outside the namespace's root"))
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
    fn a_detail_that_cannot_be_read_says_why() {
        let snap = Snapshot::default();
        let time = Namespace::new(NsType::Time, Inode(9));
        assert!(matches!(read(&snap, &time, Detail::Offsets), Err(Error::NoProcess { what: "offsets", .. })));
        let cgroup = Namespace::new(NsType::Cgroup, Inode(8));
        assert!(matches!(read(&snap, &cgroup, Detail::Root), Err(Error::NoProcess { .. })));
        // No path to it: nothing is entered.
        let uts = Namespace::new(NsType::Uts, Inode(7));
        let e = read(&snap, &uts, Detail::Hostname);
        assert!(matches!(e, Err(Error::Unreachable { ty: NsType::Uts, inode: Inode(7) })));
        assert_eq!(e.err().map(|e| e.to_string()).as_deref(), Some("uts:[7] cannot be opened"));
        let user = Namespace::new(NsType::User, Inode(6));
        assert!(matches!(read(&snap, &user, Detail::OwnerUid), Err(Error::Read { what: "owner_uid", .. })));
        assert!(matches!(read(&snap, &user, Detail::Level), Ok(Fact::Number(_))));
    }

    #[test]
    fn every_type_has_its_files() {
        assert_eq!(Detail::for_type(NsType::User).len(), 4);
        assert!(Detail::for_type(NsType::Ipc).is_empty());
        let names: Vec<_> = NsType::ALL.iter().flat_map(|t| Detail::for_type(*t)).map(|d| d.name()).collect();
        assert!(names.contains(&"netnsid") && names.contains(&"root") && names.contains(&"offsets"));
    }
}
