//! The two numbers everything is keyed by, as types of their own: an nsfs
//! inode (`Inode`) and a process or thread id (`Pid`).

use super::*;

/// An nsfs inode number: the N of `net:[N]` (not a FUSE inode: `fs::inode::Ino`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct Inode(pub u64);

impl fmt::Display for Inode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl From<u64> for Inode {
    fn from(n: u64) -> Inode {
        Inode(n)
    }
}

impl From<u32> for Inode {
    fn from(n: u32) -> Inode {
        Inode(u64::from(n))
    }
}

impl Inode {
    /// The number.
    pub const fn get(self) -> u64 {
        self.0
    }

    /// The inode of what `st` describes.
    pub fn of(st: &libc::stat) -> Inode {
        Inode(st.st_ino)
    }
}
/// A process or thread id in nsfuse's pid namespace.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct Pid(pub i32);

impl fmt::Display for Pid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl std::str::FromStr for Pid {
    type Err = std::num::ParseIntError;
    fn from_str(s: &str) -> Result<Pid, Self::Err> {
        s.parse().map(Pid)
    }
}

impl Pid {
    /// The number, as the kernel's calls take it.
    pub const fn get(self) -> i32 {
        self.0
    }
}
