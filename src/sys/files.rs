//! Files and directories: opens (openat, openat2 with resolve flags,
//! reopen), stat and statx, readlink, getdents64, pread, pipes.

use super::*;

/// statfs(2)'s f_type of nsfs files.
pub const NSFS_MAGIC: i64 = 0x6e73_6673;

/// openat2(2)'s `struct open_how`.
#[repr(C)]
struct OpenHow {
    flags: u64,
    mode: u64,
    resolve: u64,
}

/// openat2(2) resolve flags.
pub const RESOLVE_NO_MAGICLINKS: u64 = 0x02;
pub const RESOLVE_NO_SYMLINKS: u64 = 0x04;
pub const RESOLVE_IN_ROOT: u64 = 0x10;
/// Fail with EAGAIN rather than touch anything not in the dentry cache:
/// a path walk that can never wait for a filesystem.
pub const RESOLVE_CACHED: u64 = 0x20;

/// openat(2) relative to `dir` (or the cwd when `None`), always O_CLOEXEC.
pub fn openat(dir: Option<BorrowedFd<'_>>, path: &CStr, flags: libc::c_int) -> io::Result<OwnedFd> {
    let dirfd = dir.map_or(libc::AT_FDCWD, |d| d.as_raw_fd());
    // SAFETY: `path` is a valid NUL-terminated string; the result is checked.
    owned(unsafe { libc::openat(dirfd, path.as_ptr(), flags | libc::O_CLOEXEC) })
}

/// Open a path read-only (nsfs files, /proc directories).
pub fn open_path(path: &Path, flags: libc::c_int) -> io::Result<OwnedFd> {
    openat(None, &cstring(path)?, flags)
}

/// openat2(2) relative to `dir` (or the cwd), always O_CLOEXEC.
pub fn openat2(
    dir: Option<BorrowedFd<'_>>,
    path: &CStr,
    flags: libc::c_int,
    resolve: u64,
) -> io::Result<OwnedFd> {
    let dirfd = dir.map_or(libc::AT_FDCWD, |d| d.as_raw_fd());
    let how = OpenHow { flags: (flags | libc::O_CLOEXEC) as u64, mode: 0, resolve };
    // SAFETY: path is NUL-terminated, how is a valid open_how of the size passed.
    let r = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            dirfd,
            path.as_ptr(),
            &how as *const OpenHow,
            std::mem::size_of::<OpenHow>(),
        )
    };
    owned(r as libc::c_int)
}

/// Open again, with `flags`, the file an O_PATH descriptor names (through
/// /proc/self/fd, so no path is walked again).
pub fn reopen(fd: BorrowedFd<'_>, flags: libc::c_int) -> io::Result<OwnedFd> {
    let path = CString::new(format!("/proc/self/fd/{}", fd.as_raw_fd()))
        .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    openat(None, &path, flags)
}

/// fstatfs(2)'s f_type: which filesystem a descriptor's file is on.
pub fn fstatfs_type(fd: BorrowedFd<'_>) -> io::Result<i64> {
    // SAFETY: zeroed statfs is a valid value of a plain C struct.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: fd is a live descriptor and st a valid out pointer.
    cvt(unsafe { libc::fstatfs(fd.as_raw_fd(), &mut st) })?;
    Ok(st.f_type as i64)
}

/// statx(2) of `name` in `dir`, following links, with AT_STATX_DONT_SYNC
/// (a network or FUSE filesystem answers from its cache, never asks its
/// server): (device, inode).
pub fn statx_dev_ino(dir: BorrowedFd<'_>, name: &CStr) -> io::Result<(u64, u64)> {
    // SAFETY: zeroed statx is a valid value of a plain C struct.
    let mut st: libc::statx = unsafe { std::mem::zeroed() };
    // SAFETY: name is NUL-terminated and st a valid out pointer.
    cvt(unsafe {
        libc::statx(dir.as_raw_fd(), name.as_ptr(), libc::AT_STATX_DONT_SYNC, libc::STATX_INO, &mut st)
    })?;
    Ok((libc::makedev(st.stx_dev_major, st.stx_dev_minor), st.stx_ino))
}

/// readlinkat(2) into `buf`; returns the link's bytes.
pub fn readlinkat<'b>(dir: BorrowedFd<'_>, name: &CStr, buf: &'b mut [u8]) -> io::Result<&'b [u8]> {
    // SAFETY: buf is a valid writable buffer of buf.len() bytes; name is NUL-terminated.
    let n = unsafe { libc::readlinkat(dir.as_raw_fd(), name.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(&buf[..n as usize])
}

/// fstatat(2) relative to `dir`, following symlinks.
pub fn fstatat(dir: Option<BorrowedFd<'_>>, name: &CStr) -> io::Result<libc::stat> {
    let dirfd = dir.map_or(libc::AT_FDCWD, |d| d.as_raw_fd());
    // SAFETY: zeroed stat is a valid value of a plain C struct.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: name is NUL-terminated and st is a valid out pointer.
    cvt(unsafe { libc::fstatat(dirfd, name.as_ptr(), &mut st, 0) })?;
    Ok(st)
}

/// fstat(2).
pub fn fstat(fd: BorrowedFd<'_>) -> io::Result<libc::stat> {
    // SAFETY: zeroed stat is a valid value of a plain C struct.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: fd is a live descriptor and st a valid out pointer.
    cvt(unsafe { libc::fstat(fd.as_raw_fd(), &mut st) })?;
    Ok(st)
}

/// Reads a directory with getdents64 into a reusable buffer and calls `f`
/// with each entry's name (without "." and ".."), and its d_type.
pub fn for_each_dirent(
    dir: BorrowedFd<'_>,
    buf: &mut Vec<u8>,
    mut f: impl FnMut(&[u8], u8),
) -> io::Result<()> {
    if buf.len() < 32 * 1024 {
        buf.resize(32 * 1024, 0);
    }
    loop {
        // SAFETY: buf is writable for buf.len() bytes; the kernel fills it with dirents.
        let n = unsafe { libc::syscall(libc::SYS_getdents64, dir.as_raw_fd(), buf.as_mut_ptr(), buf.len()) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        if n == 0 {
            return Ok(());
        }
        let mut off = 0usize;
        let n = n as usize;
        while off + 19 <= n {
            // linux_dirent64: u64 ino, i64 off, u16 reclen, u8 type, char name[].
            let reclen = u16::from_ne_bytes([buf[off + 16], buf[off + 17]]) as usize;
            if reclen == 0 || off + reclen > n {
                break;
            }
            let d_type = buf[off + 18];
            let name_area = &buf[off + 19..off + reclen];
            let len = name_area.iter().position(|&b| b == 0).unwrap_or(name_area.len());
            let name = &name_area[..len];
            if name != b"." && name != b".." {
                f(name, d_type);
            }
            off += reclen;
        }
    }
}

/// pread(2) into `buf` from offset 0 (re-reading a /proc file kept open).
pub fn pread0(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: buf is writable for buf.len() bytes.
    let n = unsafe { libc::pread(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(n as usize)
}

/// pipe2(2) with O_CLOEXEC: (read end, write end).
pub fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: fds is a valid array of two ints for the kernel to fill.
    cvt(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) })?;
    // SAFETY: both descriptors were just created and are owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}
