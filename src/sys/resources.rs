//! What the process may use: open-file limits and the file table,
//! the allocator's free memory, the page size, uname.

use super::*;

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
/// holding their own free pages), and blocks up to 32 MiB (every per-pass
/// table below some 200 000 processes) from the heap, which
/// `release_free_memory` returns after each refresh; larger ones are
/// mmapped and returned at once. (Each large block mmapped and unmapped
/// every refresh, as below 64 KiB before, cost 14% of a refresh; keeping
/// freed pages between refreshes too saved no more, for 1.5 MiB of RSS.)
/// Call before starting threads.
pub fn tune_allocator_for_daemon() {
    // SAFETY: mallopt only sets allocator parameters.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
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

/// The size of a memory page.
pub fn page_size() -> u64 {
    // SAFETY: sysconf only reads a system constant.
    let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    u64::try_from(n).unwrap_or(4096)
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
