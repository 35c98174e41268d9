//! The syscall layer: thin, safe wrappers over every raw Linux call nsfuse
//! makes (nsfs ioctls, setns, unshare, mount, umount2, pidfd, SIOCGSKNS,
//! getdents64, readlinkat). This is the only module with `unsafe`; each
//! block says why it is sound. Everything returns `std::io::Result` with the
//! kernel's errno inside.

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

const NSIO: libc::c_ulong = 0xb7;
const fn io_none(nr: libc::c_ulong) -> libc::c_ulong {
    (NSIO << 8) | nr
}
const fn io_read_u64(nr: libc::c_ulong) -> libc::c_ulong {
    // _IOR(NSIO, nr, __u64): dir=2 (read), size=8.
    (2 << 30) | (8 << 16) | (NSIO << 8) | nr
}
const NS_GET_USERNS: libc::c_ulong = io_none(0x1);
const NS_GET_PARENT: libc::c_ulong = io_none(0x2);
const NS_GET_NSTYPE: libc::c_ulong = io_none(0x3);
const NS_GET_OWNER_UID: libc::c_ulong = io_none(0x4);
const NS_GET_ID: libc::c_ulong = io_read_u64(13);
const NS_GET_MNTNS_ID: libc::c_ulong = io_read_u64(0x5);
const SIOCGSKNS: libc::c_ulong = 0x894C;
const SYS_LISTNS: libc::c_long = 470;
const SYS_LISTMOUNT: libc::c_long = 458;
/// listmount(2)'s "from the root of the namespace".
const LSMT_ROOT: u64 = u64::MAX;

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

/// listmount(2)'s request (`struct mnt_id_req`, version 1).
#[repr(C)]
struct MntIdReq {
    size: u32,
    spare: u32,
    mnt_id: u64,
    param: u64,
    mnt_ns_id: u64,
}

fn cvt(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

fn cstring(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_bytes()).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
}

/// Take ownership of a file descriptor a syscall just returned.
fn owned(ret: libc::c_int) -> io::Result<OwnedFd> {
    let fd = cvt(ret)?;
    // SAFETY: the kernel just returned this descriptor to us; nobody else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

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

fn ioctl_fd(fd: BorrowedFd<'_>, req: libc::c_ulong) -> io::Result<OwnedFd> {
    // SAFETY: these nsfs ioctls take no argument and return a new descriptor.
    owned(unsafe { libc::ioctl(fd.as_raw_fd(), req as _) })
}

fn ioctl_u64(fd: BorrowedFd<'_>, req: libc::c_ulong) -> io::Result<u64> {
    let mut v: u64 = 0;
    // SAFETY: the request is an _IOR(.., __u64): the kernel writes 8 bytes to &mut v.
    cvt(unsafe { libc::ioctl(fd.as_raw_fd(), req as _, &mut v as *mut u64) })?;
    Ok(v)
}

/// NS_GET_USERNS: the user namespace that owns the namespace behind `fd`.
pub fn ns_get_userns(fd: BorrowedFd<'_>) -> io::Result<OwnedFd> {
    ioctl_fd(fd, NS_GET_USERNS)
}

/// NS_GET_PARENT: the parent of a user or pid namespace.
pub fn ns_get_parent(fd: BorrowedFd<'_>) -> io::Result<OwnedFd> {
    ioctl_fd(fd, NS_GET_PARENT)
}

/// NS_GET_OWNER_UID: the uid that created a user namespace.
pub fn ns_get_owner_uid(fd: BorrowedFd<'_>) -> io::Result<u32> {
    let mut uid: libc::uid_t = 0;
    // SAFETY: NS_GET_OWNER_UID writes one uid_t to the pointer.
    cvt(unsafe { libc::ioctl(fd.as_raw_fd(), NS_GET_OWNER_UID as _, &mut uid as *mut _) })?;
    Ok(uid)
}

/// NS_GET_NSTYPE: the CLONE_NEW* flag of the namespace behind `fd`.
pub fn ns_get_nstype(fd: BorrowedFd<'_>) -> io::Result<libc::c_int> {
    // SAFETY: NS_GET_NSTYPE takes no argument and returns an integer.
    cvt(unsafe { libc::ioctl(fd.as_raw_fd(), NS_GET_NSTYPE as _) })
}

/// NS_GET_ID (Linux 6.18): the 64-bit id of any namespace.
pub fn ns_get_id(fd: BorrowedFd<'_>) -> io::Result<u64> {
    ioctl_u64(fd, NS_GET_ID)
}

/// NS_GET_MNTNS_ID: the 64-bit id of the mount namespace behind `fd`
/// (never reused, unlike inode numbers; what listmount(2) takes).
pub fn ns_get_mntns_id(fd: BorrowedFd<'_>) -> io::Result<u64> {
    ioctl_u64(fd, NS_GET_MNTNS_ID)
}

/// listmount(2): the unique ids of every mount in mount namespace
/// `mnt_ns_id`, read without entering it (Linux 6.11+; ENOSYS before).
pub fn listmount(mnt_ns_id: u64) -> io::Result<Vec<u64>> {
    let req = MntIdReq { size: 32, spare: 0, mnt_id: LSMT_ROOT, param: 0, mnt_ns_id };
    let mut ids = vec![0u64; 256];
    loop {
        // SAFETY: req is a valid mnt_id_req of `size` bytes; ids is writable
        // for ids.len() u64s, the count passed.
        let n =
            unsafe { libc::syscall(SYS_LISTMOUNT, &req as *const MntIdReq, ids.as_mut_ptr(), ids.len(), 0) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        let n = n as usize;
        if n < ids.len() {
            ids.truncate(n);
            return Ok(ids);
        }
        // Full buffer: there may be more; ask again with room to spare.
        ids.resize(ids.len() * 4, 0);
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

/// Give the memory freed since the last call back to the kernel (glibc
/// keeps freed pages in the middle of the heap otherwise, so a daemon that
/// builds and drops a snapshot every second would hold its peak forever).
pub fn release_free_memory() {
    // SAFETY: malloc_trim only walks the allocator's own free lists.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Make the allocator suit a long-running daemon that rebuilds its model
/// every second: one arena for all threads (no per-thread arenas each
/// holding their own free pages), and large blocks (the per-scan tables)
/// always mmapped, so freeing them returns them at once. Call before
/// starting threads.
pub fn tune_allocator_for_daemon() {
    // SAFETY: mallopt only sets allocator parameters.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
        libc::mallopt(libc::M_MMAP_THRESHOLD, 64 * 1024);
    }
}

/// Raise the limit on open files to `want` (both soft and hard: root may
/// raise the hard limit, up to fs.nr_open), else the soft one to the hard
/// one; returns the soft limit in force.
pub fn raise_nofile_limit(want: u64) -> io::Result<u64> {
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: lim is a valid out pointer.
    cvt(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) })?;
    let nr_open = std::fs::read_to_string("/proc/sys/fs/nr_open").ok().and_then(|s| s.trim().parse().ok());
    let want = want.min(nr_open.unwrap_or(lim.rlim_max));
    for target in [want.max(lim.rlim_max), lim.rlim_max] {
        if lim.rlim_cur >= target {
            break;
        }
        let new = libc::rlimit { rlim_cur: target, rlim_max: target.max(lim.rlim_max) };
        // SAFETY: new is a valid rlimit.
        if cvt(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &new) }).is_ok() {
            lim.rlim_cur = target;
            break;
        }
    }
    Ok(lim.rlim_cur)
}

/// How many more files this process may open and still keep `reserve`
/// free: the soft RLIMIT_NOFILE less the files open now (which the kernel
/// gives as the size of /proc/self/fd since Linux 6.2; counted by listing
/// it before that).
pub fn spare_files(reserve: u64) -> io::Result<u64> {
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: lim is a valid out pointer.
    cvt(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) })?;
    let open = match fstatat(None, c"/proc/self/fd")?.st_size {
        n if n > 0 => n as u64,
        _ => std::fs::read_dir("/proc/self/fd")?.count() as u64,
    };
    Ok(lim.rlim_cur.saturating_sub(open).saturating_sub(reserve))
}

/// Grow this process's file table to hold at least `n` descriptors now, in
/// one step: a table grown while other threads share it costs a whole RCU
/// grace period (milliseconds) per doubling, and a pass that opens a
/// thousand namespaces on a worker thread would pay several.
pub fn reserve_fds(n: usize) {
    let Ok(at) = libc::c_int::try_from(n.saturating_sub(1)) else { return };
    // SAFETY: F_DUPFD_CLOEXEC duplicates descriptor 0 (or fails) onto the
    // lowest free number >= `at`, never one in use; the copy is closed at once.
    unsafe {
        let fd = libc::fcntl(0, libc::F_DUPFD_CLOEXEC, at);
        if fd >= 0 {
            libc::close(fd);
        }
    }
}

/// SIOCGSKNS: the network namespace of the socket behind `fd`.
pub fn socket_netns(fd: BorrowedFd<'_>) -> io::Result<OwnedFd> {
    ioctl_fd(fd, SIOCGSKNS)
}

/// pidfd_open(2).
pub fn pidfd_open(pid: i32) -> io::Result<OwnedFd> {
    // SAFETY: plain syscall with integer arguments; the result is checked.
    let r = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    owned(r as libc::c_int)
}

/// pidfd_getfd(2): a duplicate of another process's descriptor.
pub fn pidfd_getfd(pidfd: BorrowedFd<'_>, target_fd: i32) -> io::Result<OwnedFd> {
    // SAFETY: plain syscall with integer arguments; the result is checked.
    let r = unsafe { libc::syscall(libc::SYS_pidfd_getfd, pidfd.as_raw_fd(), target_fd, 0) };
    owned(r as libc::c_int)
}

/// setns(2) for the calling thread.
pub fn setns(fd: BorrowedFd<'_>, nstype: libc::c_int) -> io::Result<()> {
    // SAFETY: fd is a live namespace descriptor; the kernel checks the rest.
    cvt(unsafe { libc::setns(fd.as_raw_fd(), nstype) }).map(drop)
}

/// unshare(2) for the calling thread.
pub fn unshare(flags: libc::c_int) -> io::Result<()> {
    // SAFETY: unshare takes only flags.
    cvt(unsafe { libc::unshare(flags) }).map(drop)
}

/// mount(2) with optional source, fstype and data.
pub fn mount(
    source: Option<&Path>,
    target: &Path,
    fstype: Option<&str>,
    flags: libc::c_ulong,
    data: Option<&str>,
) -> io::Result<()> {
    let source = source.map(cstring).transpose()?;
    let target = cstring(target)?;
    let fstype = fstype
        .map(|s| CString::new(s).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL)))
        .transpose()?;
    let data =
        data.map(|s| CString::new(s).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))).transpose()?;
    let ptr = |c: &Option<CString>| c.as_ref().map_or(std::ptr::null(), |c| c.as_ptr());
    // SAFETY: every pointer is NUL-terminated or null, and outlives the call.
    cvt(unsafe { libc::mount(ptr(&source), target.as_ptr(), ptr(&fstype), flags, ptr(&data).cast()) })
        .map(drop)
}

/// umount2(2).
pub fn umount2(target: &Path, flags: libc::c_int) -> io::Result<()> {
    let target = cstring(target)?;
    // SAFETY: target is NUL-terminated.
    cvt(unsafe { libc::umount2(target.as_ptr(), flags) }).map(drop)
}

/// Whether the running kernel has listns(2) (Linux 6.19+). A call with a
/// zero-sized request fails with EINVAL where the syscall exists and ENOSYS
/// where it does not.
pub fn has_listns() -> bool {
    // SAFETY: a null request with size 0 is rejected before any memory access.
    let r =
        unsafe { libc::syscall(SYS_LISTNS, std::ptr::null::<u8>(), std::ptr::null::<u64>(), 0usize, 0u32) };
    !(r < 0 && io::Error::last_os_error().raw_os_error() == Some(libc::ENOSYS))
}

/// The size of a memory page.
pub fn page_size() -> u64 {
    // SAFETY: sysconf only reads a system constant.
    let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    u64::try_from(n).unwrap_or(4096)
}

/// getpid/gettid/geteuid: never fail.
pub fn getpid() -> i32 {
    std::process::id() as i32
}

/// The calling thread's id.
pub fn gettid() -> i32 {
    // SAFETY: gettid cannot fail.
    unsafe { libc::gettid() }
}

/// The effective uid of this process.
pub fn geteuid() -> u32 {
    // SAFETY: geteuid cannot fail.
    unsafe { libc::geteuid() }
}

/// uname(2) of the calling thread's uts namespace: (nodename, domainname).
pub fn uname() -> io::Result<(String, String)> {
    // SAFETY: zeroed utsname is a valid plain C struct.
    let mut u: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: u is a valid out pointer.
    cvt(unsafe { libc::uname(&mut u) })?;
    let field = |f: &[libc::c_char]| {
        let bytes: Vec<u8> = f.iter().take_while(|&&c| c != 0).map(|&c| c as u8).collect();
        String::from_utf8_lossy(&bytes).into_owned()
    };
    Ok((field(&u.nodename), field(&u.domainname)))
}

/// kill(2).
pub fn kill(pid: i32, sig: libc::c_int) -> io::Result<()> {
    // SAFETY: kill takes only integers.
    cvt(unsafe { libc::kill(pid, sig) }).map(drop)
}

/// Send one request on a fresh NETLINK_ROUTE socket (of the calling
/// thread's network namespace) and hand each reply datagram to `more`
/// until it returns false (a dump's NLMSG_DONE). A silent kernel ends the
/// exchange after a second (SO_RCVTIMEO) rather than hanging the caller.
pub fn netlink_route_exchange(msg: &[u8], more: impl FnMut(&[u8]) -> bool) -> io::Result<()> {
    let sock = netlink_route_socket()?;
    netlink_route_exchange_on(std::os::fd::AsFd::as_fd(&sock), msg, more)
}

/// A NETLINK_ROUTE socket of the calling thread's network namespace, for
/// several `netlink_route_exchange_on` in a row.
/// A silent kernel ends an exchange after a second (SO_RCVTIMEO) rather
/// than hanging the caller.
pub fn netlink_route_socket() -> io::Result<OwnedFd> {
    // SAFETY: plain socket(2) call; the result is checked and owned.
    let sock = owned(unsafe {
        libc::socket(libc::AF_NETLINK, libc::SOCK_RAW | libc::SOCK_CLOEXEC, libc::NETLINK_ROUTE)
    })?;
    let timeout = libc::timeval { tv_sec: 1, tv_usec: 0 };
    // SAFETY: timeout is a valid timeval of the size given.
    cvt(unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            (&timeout as *const libc::timeval).cast(),
            std::mem::size_of::<libc::timeval>() as libc::socklen_t,
        )
    })?;
    Ok(sock)
}

/// `netlink_route_exchange` on a socket the caller keeps (from
/// `netlink_route_socket`, which sets its receive timeout).
pub fn netlink_route_exchange_on(
    sock: BorrowedFd<'_>,
    msg: &[u8],
    mut more: impl FnMut(&[u8]) -> bool,
) -> io::Result<()> {
    // SAFETY: msg is a valid buffer of msg.len() bytes.
    let sent = unsafe { libc::send(sock.as_raw_fd(), msg.as_ptr().cast(), msg.len(), 0) };
    if sent < 0 {
        return Err(io::Error::last_os_error());
    }
    // A dump datagram is at most a page or two; 32 KiB is what iproute2 uses.
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        // SAFETY: buf is writable for buf.len() bytes.
        let n = unsafe { libc::recv(sock.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        if n == 0 || !more(&buf[..n as usize]) {
            return Ok(());
        }
    }
}

/// fork(2): 0 in the child, the child's PID in the parent.
///
/// # Safety
///
/// The calling process must have exactly one thread. The child of a
/// threaded process may call only async-signal-safe functions until it
/// execs (another thread may have held the allocator's lock or any other
/// at the fork, and it is not there to release it); nsfuse's children go
/// on running Rust code, which allocates. Callers: the daemon before it
/// starts any thread, and the single-threaded `__nsfuse-helper`.
pub unsafe fn fork() -> io::Result<i32> {
    // SAFETY: the caller guarantees the process is single-threaded, so the
    // child may use any function, not just async-signal-safe ones.
    cvt(unsafe { libc::fork() })
}

/// setsid(2).
pub fn setsid() -> io::Result<()> {
    // SAFETY: setsid takes no arguments.
    cvt(unsafe { libc::setsid() }).map(drop)
}

/// Set the calling thread's name (what /proc/PID/comm shows).
pub fn set_comm(name: &CStr) -> io::Result<()> {
    // SAFETY: PR_SET_NAME reads a NUL-terminated string of at most 16 bytes.
    cvt(unsafe { libc::prctl(libc::PR_SET_NAME, name.as_ptr()) }).map(drop)
}

/// Become a child subreaper: orphaned descendants are reparented to us.
pub fn set_child_subreaper() -> io::Result<()> {
    // SAFETY: PR_SET_CHILD_SUBREAPER takes an integer flag.
    cvt(unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1) }).map(drop)
}

/// waitpid(2); returns the pid reaped (0 with WNOHANG if none yet).
pub fn waitpid(pid: i32, flags: libc::c_int) -> io::Result<i32> {
    let mut status = 0;
    // SAFETY: status is a valid out pointer.
    cvt(unsafe { libc::waitpid(pid, &mut status, flags) })
}

/// Redirect stdin, stdout and stderr to /dev/null.
pub fn stdio_to_devnull() -> io::Result<()> {
    let null = open_path(Path::new("/dev/null"), libc::O_RDWR)?;
    for target in 0..3 {
        // SAFETY: dup2 onto the standard descriptors, which we own.
        cvt(unsafe { libc::dup2(null.as_raw_fd(), target) })?;
    }
    Ok(())
}

/// Have a child spawned by `cmd` unshare `flags` between fork and exec.
pub fn unshare_before_exec(cmd: &mut std::process::Command, flags: libc::c_int) {
    use std::os::unix::process::CommandExt;
    let hook = move || unshare(flags);
    // SAFETY: the hook only calls unshare(2), which is async-signal-safe and
    // allocates nothing, as a pre_exec hook must.
    unsafe {
        cmd.pre_exec(hook);
    }
}

/// poll(2) `fd` for nothing but an error or hang-up (a FUSE device once
/// its mount is gone): returns when one comes.
pub fn wait_for_error(fd: BorrowedFd<'_>) -> io::Result<()> {
    let mut p = libc::pollfd { fd: fd.as_raw_fd(), events: 0, revents: 0 };
    loop {
        // SAFETY: p is one valid pollfd, the count passed.
        let r = unsafe { libc::poll(&mut p, 1, -1) };
        if r > 0 && p.revents & (libc::POLLERR | libc::POLLHUP | libc::POLLNVAL) != 0 {
            return Ok(());
        }
        if r < 0 {
            let e = io::Error::last_os_error();
            if e.raw_os_error() != Some(libc::EINTR) {
                return Err(e);
            }
        }
    }
}

/// pipe2(2) with O_CLOEXEC: (read end, write end).
pub fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: fds is a valid array of two ints for the kernel to fill.
    cvt(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) })?;
    // SAFETY: both descriptors were just created and are owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

fn sigset(signals: &[libc::c_int]) -> libc::sigset_t {
    // SAFETY: sigemptyset initialises the zeroed set; sigaddset adds valid signals.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for &s in signals {
            libc::sigaddset(&mut set, s);
        }
        set
    }
}

/// Block `signals` in the calling thread (and threads it spawns later).
pub fn block_signals(signals: &[libc::c_int]) -> io::Result<()> {
    let set = sigset(signals);
    // SAFETY: set is a valid sigset; the old mask is not needed.
    let r = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
    if r != 0 {
        return Err(io::Error::from_raw_os_error(r));
    }
    Ok(())
}

/// Wait for one of `signals` (which must be blocked); returns it.
pub fn sigwait(signals: &[libc::c_int]) -> io::Result<libc::c_int> {
    let set = sigset(signals);
    let mut sig = 0;
    // SAFETY: set is valid and sig a valid out pointer.
    let r = unsafe { libc::sigwait(&set, &mut sig) };
    if r != 0 {
        return Err(io::Error::from_raw_os_error(r));
    }
    Ok(sig)
}
