//! bpf(2), only as far as nsfuse uses it: load a BPF task iterator
//! program (`iter/task`), link it (to every task, or to one), open one
//! read of it, and make a one-element array map shared with us by mmap
//! for a program to write into. The programs themselves are built
//! elsewhere (`discovery::task_table`).

use super::owned;
use std::ffi::CStr;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};

const BPF_MAP_CREATE: libc::c_long = 0;
const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_LINK_CREATE: libc::c_long = 28;
const BPF_ITER_CREATE: libc::c_long = 33;
const BPF_PROG_TYPE_TRACING: u32 = 26;
const BPF_TRACE_ITER: u32 = 28;
const BPF_MAP_TYPE_ARRAY: u32 = 2;
const BPF_F_MMAPABLE: u32 = 1 << 10;

/// `union bpf_attr` for BPF_MAP_CREATE, up to `map_name`.
#[repr(C)]
#[derive(Default)]
struct MapCreate {
    map_type: u32,
    key_size: u32,
    value_size: u32,
    max_entries: u32,
    map_flags: u32,
    inner_map_fd: u32,
    numa_node: u32,
    map_name: [u8; 16],
}

/// `union bpf_iter_link_info`, its task member: iterate one task only.
#[repr(C)]
#[derive(Default)]
struct TaskLinkInfo {
    tid: u32,
    pid: u32,
    pid_fd: u32,
    _pad: u32,
}

/// `union bpf_attr` for BPF_PROG_LOAD, up to `attach_btf_obj_fd`.
#[repr(C)]
#[derive(Default)]
struct ProgLoad {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
    prog_ifindex: u32,
    expected_attach_type: u32,
    prog_btf_fd: u32,
    func_info_rec_size: u32,
    func_info: u64,
    func_info_cnt: u32,
    line_info_rec_size: u32,
    line_info: u64,
    line_info_cnt: u32,
    attach_btf_id: u32,
    attach_btf_obj_fd: u32,
    _pad: u32,
}

/// `union bpf_attr` for BPF_LINK_CREATE of an iterator.
#[repr(C)]
#[derive(Default)]
struct LinkCreate {
    prog_fd: u32,
    target_fd: u32,
    attach_type: u32,
    flags: u32,
    iter_info: u64,
    iter_info_len: u32,
    _pad: u32,
}

/// `union bpf_attr` for BPF_ITER_CREATE.
#[repr(C)]
#[derive(Default)]
struct IterCreate {
    link_fd: u32,
    flags: u32,
}

/// A program's or map's name as the kernel keeps it: at most 15 bytes
/// and a NUL.
fn object_name(name: &CStr) -> [u8; 16] {
    let mut out = [0u8; 16];
    let n = name.to_bytes().len().min(15);
    out[..n].copy_from_slice(&name.to_bytes()[..n]);
    out
}

fn bpf<T>(cmd: libc::c_long, attr: &mut T) -> io::Result<OwnedFd> {
    // SAFETY: attr is a live, initialised `union bpf_attr` prefix of
    // size_of::<T>() bytes for `cmd`; every pointer inside it points to
    // memory that outlives the call.
    let ret = unsafe { libc::syscall(libc::SYS_bpf, cmd, attr as *mut T, std::mem::size_of::<T>()) };
    owned(ret as libc::c_int)
}

/// Load `insns` (8-byte instructions) as an iterator program attached to
/// the kernel function whose BTF id is `attach_btf_id` (`bpf_iter_task`).
/// On refusal, the error says what the verifier logged (asked for only
/// then: a log too small for a long program fails a load that passed).
pub fn bpf_load_iterator(insns: &[[u8; 8]], attach_btf_id: u32, name: &CStr) -> io::Result<OwnedFd> {
    let load = |log: &mut [u8]| {
        let mut attr = ProgLoad {
            prog_type: BPF_PROG_TYPE_TRACING,
            insn_cnt: u32::try_from(insns.len()).map_err(|_| io::Error::from_raw_os_error(libc::E2BIG))?,
            insns: insns.as_ptr() as u64,
            license: c"GPL".as_ptr() as u64,
            log_level: u32::from(!log.is_empty()),
            log_size: log.len() as u32,
            log_buf: if log.is_empty() { 0 } else { log.as_mut_ptr() as u64 },
            prog_name: object_name(name),
            expected_attach_type: BPF_TRACE_ITER,
            attach_btf_id,
            ..ProgLoad::default()
        };
        bpf(BPF_PROG_LOAD, &mut attr)
    };
    load(&mut []).map_err(|e| {
        let mut log = vec![0u8; 1 << 20];
        let _ = load(&mut log);
        let end = log.iter().position(|&b| b == 0).unwrap_or(log.len());
        let said = String::from_utf8_lossy(&log[..end]);
        let mut tail: Vec<&str> = said.lines().rev().filter(|l| !l.trim().is_empty()).take(3).collect();
        tail.reverse();
        if tail.is_empty() {
            e
        } else {
            io::Error::new(e.kind(), format!("{e}: {}", tail.join(" | ")))
        }
    })
}

/// Link an iterator program: to every task, or (`only`) to the one task
/// with that thread id, so that each read runs it once.
pub fn bpf_link_iterator(prog: BorrowedFd<'_>, only: Option<crate::model::Pid>) -> io::Result<OwnedFd> {
    let info = TaskLinkInfo { tid: only.map_or(0, |t| t.get() as u32), ..Default::default() };
    let mut attr =
        LinkCreate { prog_fd: prog.as_raw_fd() as u32, attach_type: BPF_TRACE_ITER, ..Default::default() };
    if only.is_some() {
        attr.iter_info = &info as *const TaskLinkInfo as u64;
        attr.iter_info_len = std::mem::size_of::<TaskLinkInfo>() as u32;
    }
    bpf(BPF_LINK_CREATE, &mut attr)
}

/// An array map of one element of `size` bytes that can be mapped into
/// our memory (`SharedMap`).
pub fn bpf_create_shared_array(size: u32, name: &CStr) -> io::Result<OwnedFd> {
    let mut attr = MapCreate {
        map_type: BPF_MAP_TYPE_ARRAY,
        key_size: 4,
        value_size: size,
        max_entries: 1,
        map_flags: BPF_F_MMAPABLE,
        map_name: object_name(name),
        ..Default::default()
    };
    bpf(BPF_MAP_CREATE, &mut attr)
}

/// The one element of a map from `bpf_create_shared_array`, mapped
/// shared: what a program writes there is read here, without a copy.
pub struct SharedMap {
    at: std::ptr::NonNull<u8>,
    len: usize,
}

// SAFETY: the mapping is plain memory owned by this value; every access
// goes through &self or &mut self, so Rust's rules order them.
unsafe impl Send for SharedMap {}
// SAFETY: as above; &self gives only reads.
unsafe impl Sync for SharedMap {}

impl SharedMap {
    /// Map the first `len` bytes of `map`'s element, for reading and
    /// writing.
    pub fn new(map: BorrowedFd<'_>, len: usize) -> io::Result<SharedMap> {
        // SAFETY: a fresh shared mapping of a BPF array map's values; the
        // kernel checks `len` against the map and the result is checked.
        let at = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                map.as_raw_fd(),
                0,
            )
        };
        if at == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let at = std::ptr::NonNull::new(at.cast::<u8>())
            .ok_or_else(|| io::Error::from_raw_os_error(libc::EINVAL))?;
        Ok(SharedMap { at, len })
    }

    /// Its bytes. A program writes them only while we run it (a read of
    /// its iterator, under &mut self), so they hold still here.
    pub fn bytes(&self) -> &[u8] {
        // SAFETY: `at` is a live mapping of `len` bytes until drop.
        unsafe { std::slice::from_raw_parts(self.at.as_ptr(), self.len) }
    }

    /// Write `value` at byte `at` (what a program reads next time).
    pub fn put(&mut self, at: usize, value: &[u8]) {
        // SAFETY: as `bytes`; &mut self means no reader holds a slice.
        let all = unsafe { std::slice::from_raw_parts_mut(self.at.as_ptr(), self.len) };
        if let Some(place) = all.get_mut(at..at + value.len()) {
            place.copy_from_slice(value);
        }
    }
}

impl Drop for SharedMap {
    fn drop(&mut self) {
        // SAFETY: unmapping the mapping this value made, once.
        unsafe { libc::munmap(self.at.as_ptr().cast(), self.len) };
    }
}

/// One run of a linked iterator: a file whose reads run the program.
pub fn bpf_open_iterator(link: BorrowedFd<'_>) -> io::Result<OwnedFd> {
    let mut attr = IterCreate { link_fd: link.as_raw_fd() as u32, flags: 0 };
    bpf(BPF_ITER_CREATE, &mut attr)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_have_the_kernels_layout() {
        assert_eq!(std::mem::size_of::<ProgLoad>(), 120);
        assert_eq!(std::mem::offset_of!(ProgLoad, expected_attach_type), 68);
        assert_eq!(std::mem::offset_of!(ProgLoad, attach_btf_id), 108);
        assert_eq!(std::mem::offset_of!(LinkCreate, iter_info), 16);
        assert_eq!(std::mem::size_of::<IterCreate>(), 8);
        assert_eq!(std::mem::offset_of!(MapCreate, map_name), 28);
        assert_eq!(std::mem::size_of::<TaskLinkInfo>(), 16);
    }
}
