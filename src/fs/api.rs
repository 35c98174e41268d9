//! The request API's plain types: the errno a call fails with, who
//! called, a file's attributes, a directory entry, how the tree behaves.

use super::*;

/// An errno for a failed file-system call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Errno(pub i32);

impl Errno {
    pub const ENOENT: Errno = Errno(libc::ENOENT);
    pub const EACCES: Errno = Errno(libc::EACCES);
    pub const EPERM: Errno = Errno(libc::EPERM);
    pub const EROFS: Errno = Errno(libc::EROFS);
    pub const EBADF: Errno = Errno(libc::EBADF);
    pub const ENOTDIR: Errno = Errno(libc::ENOTDIR);
    pub const EISDIR: Errno = Errno(libc::EISDIR);
    pub const EINVAL: Errno = Errno(libc::EINVAL);
}

pub type Result<T> = std::result::Result<T, Errno>;

/// Who is calling (from the FUSE request).
#[derive(Clone, Copy, Debug)]
pub struct Caller {
    pub uid: u32,
    pub gid: u32,
    pub pid: u32,
}

impl Caller {
    pub const ROOT: Caller = Caller { uid: 0, gid: 0, pid: 0 };
}

/// Attributes of one entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Attr {
    pub ino: Ino,
    pub kind: Kind,
    pub size: u64,
    pub perm: u16,
    pub uid: u32,
    pub gid: u32,
    pub mtime: SystemTime,
}

/// What the kernel must forget after a view swap.
#[derive(Debug, PartialEq, Eq)]
pub enum Stale {
    /// Directory entries that went away, as (parent directory, name).
    Entries(Vec<(Ino, String)>),
    /// Directories whose listing changed: their cached attributes and
    /// listing.
    Listings(Vec<Ino>),
}

/// One directory entry of a listing.
#[derive(Clone, Debug, Hash)]
pub struct DirEntry {
    pub name: String,
    pub ino: Ino,
    pub kind: Kind,
}

/// What `opendir` gives back.
pub struct OpenedDir {
    pub fh: u64,
    /// The listing is the one the kernel last read for this directory:
    /// its cached copy may be kept.
    pub unchanged: bool,
}

/// How the tree behaves.
#[derive(Clone, Debug)]
pub struct FsConfig {
    pub read_only: bool,
    pub refresh: Duration,
    /// How long the kernel may keep a directory's entry and attributes
    /// once gone entries are invalidated at each refresh (zero with
    /// `allow_other`: what a name means depends on who asks).
    pub dir_ttl: Duration,
    pub scan: ScanOptions,
    /// How many lines `events` keeps.
    pub events_max: usize,
}
