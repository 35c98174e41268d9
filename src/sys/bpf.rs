//! bpf(2), only as far as nsfuse uses it: load a BPF task iterator
//! program (`iter/task`), link it, and open one read of it. The program
//! itself is built elsewhere (`discovery::task_table`).

use super::owned;
use std::ffi::CStr;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};

const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_LINK_CREATE: libc::c_long = 28;
const BPF_ITER_CREATE: libc::c_long = 33;
const BPF_PROG_TYPE_TRACING: u32 = 26;
const BPF_TRACE_ITER: u32 = 28;

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
        let mut prog_name = [0u8; 16];
        let n = name.to_bytes().len().min(15);
        prog_name[..n].copy_from_slice(&name.to_bytes()[..n]);
        let mut attr = ProgLoad {
            prog_type: BPF_PROG_TYPE_TRACING,
            insn_cnt: u32::try_from(insns.len()).map_err(|_| io::Error::from_raw_os_error(libc::E2BIG))?,
            insns: insns.as_ptr() as u64,
            license: c"GPL".as_ptr() as u64,
            log_level: u32::from(!log.is_empty()),
            log_size: log.len() as u32,
            log_buf: if log.is_empty() { 0 } else { log.as_mut_ptr() as u64 },
            prog_name,
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

/// Link an iterator program (all tasks: no parameters).
pub fn bpf_link_iterator(prog: BorrowedFd<'_>) -> io::Result<OwnedFd> {
    let mut attr =
        LinkCreate { prog_fd: prog.as_raw_fd() as u32, attach_type: BPF_TRACE_ITER, ..Default::default() };
    bpf(BPF_LINK_CREATE, &mut attr)
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
    }
}
