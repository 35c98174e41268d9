//! Namespaces and mounts: the nsfs ioctls (NS_GET_*), SIOCGSKNS,
//! listmount(2), setns, unshare, mount and umount2.

use super::*;

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

/// listmount(2)'s request (`struct mnt_id_req`, version 1).
#[repr(C)]
struct MntIdReq {
    size: u32,
    spare: u32,
    mnt_id: u64,
    param: u64,
    mnt_ns_id: u64,
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

/// SIOCGSKNS: the network namespace of the socket behind `fd`.
pub fn socket_netns(fd: BorrowedFd<'_>) -> io::Result<OwnedFd> {
    ioctl_fd(fd, SIOCGSKNS)
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
