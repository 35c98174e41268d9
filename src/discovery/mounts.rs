//! The nsfs mounts (pins) of one mount namespace, and how a refresh tells
//! that they cannot have changed: the unique ids of all its mounts, listed
//! with listmount(2) without entering it, are the same as last time. A
//! namespace with a member process is read through `/proc/PID/mountinfo`;
//! one with none, from a helper thread that entered it.

use super::parse::{self, NsfsMount};
use crate::enter;
use crate::model::{Inode, NsType, Pid};
use crate::sys;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::PathBuf;

/// What a mount namespace held when last read: kept between refreshes.
pub struct Table {
    /// The namespace's 64-bit id (never reused, unlike its inode).
    mnt_ns_id: u64,
    /// The ids of all its mounts, as listmount(2) gave them before the read.
    mounts: Vec<u64>,
    /// The nsfs mounts among them.
    pub pins: Vec<NsfsMount>,
}

impl Table {
    /// A table as read: namespace id, mount ids, the nsfs mounts among them.
    pub fn new(mnt_ns_id: u64, mounts: Vec<u64>, pins: Vec<NsfsMount>) -> Table {
        Table { mnt_ns_id, mounts, pins }
    }

    /// Whether the namespace still has exactly the mounts it had.
    pub fn unchanged_on(&self, kernel: &impl super::kernel::Kernel) -> bool {
        kernel.mounts_still(self.mnt_ns_id, &self.mounts)
    }

    /// What `unchanged` compares, for a check made elsewhere (`still`).
    pub fn mnt_ns_id(&self) -> u64 {
        self.mnt_ns_id
    }

    pub fn ids(&self) -> (u64, Vec<u64>) {
        (self.mnt_ns_id, self.mounts.clone())
    }

    /// Whether mount namespace `mnt_ns_id` has exactly `mounts` now.
    pub fn still(mnt_ns_id: u64, mounts: &[u64]) -> bool {
        sys::listmount(mnt_ns_id).is_ok_and(|ids| ids == mounts)
    }
}

/// Where to read a mount namespace from: our own, or a member's.
#[derive(Clone, Copy, Debug)]
pub enum Reader {
    Own,
    Member(Pid),
}

impl Reader {
    fn proc_dir(self) -> String {
        match self {
            Reader::Own => "/proc/self".into(),
            Reader::Member(pid) => format!("/proc/{pid}"),
        }
    }

    /// A path to the mount point `m` as seen from nsfuse's mount namespace.
    pub fn reach(self, m: &NsfsMount) -> PathBuf {
        match self {
            Reader::Own => m.mount_point.clone(),
            Reader::Member(pid) => PathBuf::from(format!("/proc/{pid}/root{}", m.mount_point.display())),
        }
    }
}

/// Read the nsfs mounts of the mount namespace `mntns` through `reader`,
/// and, `with_table`, what tells a later refresh whether they changed: the
/// mount ids, listed first, so a change made during the read shows as a
/// change next time. The `Table` is `None` where the kernel has no
/// listmount(2): such a namespace is read again on every refresh.
pub fn read(reader: Reader, mntns: Inode, with_table: bool) -> (Vec<NsfsMount>, Option<Table>) {
    let dir = reader.proc_dir();
    let ns_path = PathBuf::from(format!("{dir}/ns/mnt"));
    let listed = with_table
        .then(|| super::nsfile::open(&ns_path, mntns))
        .flatten()
        .and_then(|fd| {
            let id = sys::ns_get_mntns_id(fd.as_fd()).ok()?;
            // Watched from before its table is read: a later change is seen.
            super::mount_watch::mark(fd.as_fd(), id);
            Some(id)
        })
        .and_then(|id| sys::listmount(id).ok().map(|mounts| (id, mounts)));
    let pins = match std::fs::File::open(format!("{dir}/mountinfo")).and_then(parse::mountinfo_nsfs_stream) {
        Ok(pins) => pins,
        Err(_) => return (Vec::new(), None),
    };
    let table = listed.map(|(mnt_ns_id, mounts)| Table { mnt_ns_id, mounts, pins: pins.clone() });
    (pins, table)
}

/// The nsfs mounts of a mount namespace with no process, read (and each
/// opened, since its path is not reachable from outside) from a helper
/// thread that entered it.
pub fn read_inside(
    proc: BorrowedFd<'_>,
    mntns: BorrowedFd<'_>,
    wants_fd: &(dyn Fn(Inode) -> bool + Sync),
) -> io::Result<Vec<(NsfsMount, Option<OwnedFd>)>> {
    enter::run_in_one(mntns, NsType::Mnt, || {
        let f = sys::openat(Some(proc), c"thread-self/mountinfo", libc::O_RDONLY)?;
        Ok(parse::mountinfo_nsfs_stream(std::fs::File::from(f))?
            .into_iter()
            .map(|m| {
                let fd = wants_fd(m.inode).then(|| super::nsfile::open(&m.mount_point, m.inode)).flatten();
                (m, fd)
            })
            .collect())
    })
}

/// The mountinfo of the calling thread's mount namespace (on a helper
/// thread that entered one, that namespace's).
pub fn this_thread_mountinfo(proc: BorrowedFd<'_>) -> io::Result<Vec<u8>> {
    let f = sys::openat(Some(proc), c"thread-self/mountinfo", libc::O_RDONLY)?;
    let mut text = Vec::new();
    io::Read::read_to_end(&mut std::fs::File::from(f), &mut text)?;
    Ok(text)
}
