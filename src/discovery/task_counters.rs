//! Every task's scheduler counters in one read. A BPF task iterator
//! (`iter/task`, built here from the kernel's BTF) writes, per task, its
//! thread id, its process id and the three counters `schedstat` shows
//! (time on CPU, time waiting, times run). A refresh then checks its
//! stamps (`Stamp`) against one read for the whole host instead of one
//! pread per task. Where the program cannot be loaded (no BTF, BPF not
//! allowed, not the initial pid namespace), `now` is None and the stamps
//! read their files as before.

use super::btf::Btf;
use super::stamp::Stamp;
use crate::model::Pid;
use crate::sys;
use std::io::Read;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::OnceLock;

/// One task as the iterator writes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TaskRecord {
    pub tid: i32,
    pub tgid: i32,
    /// As `schedstat` prints them: sum_exec_runtime, run_delay, pcount.
    pub counters: [u64; 3],
}

/// Bytes per record: tid, tgid (u32 each), then three u64 counters.
const RECORD: usize = 32;

/// Every task's counters at one moment, ascending by thread id.
#[derive(Debug)]
pub struct TaskCounters(Vec<TaskRecord>);

impl TaskCounters {
    /// Records as the iterator wrote them (a trailing partial record is
    /// dropped); sorted by thread id if they were not.
    pub fn parse(bytes: &[u8]) -> TaskCounters {
        let word = |r: &[u8], at: usize| u64::from_le_bytes(r[at..at + 8].try_into().unwrap_or_default());
        let half = |r: &[u8], at: usize| i32::from_le_bytes(r[at..at + 4].try_into().unwrap_or_default());
        let mut tasks: Vec<TaskRecord> = bytes
            .chunks_exact(RECORD)
            .map(|r| TaskRecord {
                tid: half(r, 0),
                tgid: half(r, 4),
                counters: [word(r, 8), word(r, 16), word(r, 24)],
            })
            .collect();
        if !tasks.is_sorted_by_key(|t| t.tid) {
            tasks.sort_by_key(|t| t.tid);
        }
        TaskCounters(tasks)
    }

    pub fn get(&self, tid: Pid) -> Option<&TaskRecord> {
        self.0.binary_search_by_key(&tid.get(), |t| t.tid).ok().map(|i| &self.0[i])
    }

    /// Whether the task `stamp` names is still there, in the same
    /// process, and has not run since it was stamped.
    pub fn unchanged(&self, stamp: &Stamp) -> bool {
        let ((pid, tid), seen) = stamp.counters();
        self.get(tid.unwrap_or(pid)).is_some_and(|t| t.tgid == pid.get() && t.counters == seen)
    }
}

/// Where the iterator's program reads each field of `struct task_struct`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Offsets {
    pub pid: u32,
    pub tgid: u32,
    pub sum_exec_runtime: u32,
    pub run_delay: u32,
    pub pcount: u32,
}

impl Offsets {
    pub fn from_btf(btf: &Btf) -> Option<Offsets> {
        let at = |path: &[&str]| btf.offset_of("task_struct", path);
        Some(Offsets {
            pid: at(&["pid"])?,
            tgid: at(&["tgid"])?,
            sum_exec_runtime: at(&["se", "sum_exec_runtime"])?,
            run_delay: at(&["sched_info", "run_delay"])?,
            pcount: at(&["sched_info", "pcount"])?,
        })
    }
}

/// One BPF instruction: opcode, registers (dst low nibble, src high),
/// offset, immediate.
fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> [u8; 8] {
    let [o0, o1] = off.to_le_bytes();
    let [i0, i1, i2, i3] = imm.to_le_bytes();
    [code, dst | (src << 4), o0, o1, i0, i1, i2, i3]
}

const LDX_W: u8 = 0x61;
const LDX_DW: u8 = 0x79;
const STX_W: u8 = 0x63;
const STX_DW: u8 = 0x7b;
const JEQ_IMM: u8 = 0x15;
const MOV_IMM: u8 = 0xb7;
const MOV_REG: u8 = 0xbf;
const ADD_IMM: u8 = 0x07;
const CALL: u8 = 0x85;
const EXIT: u8 = 0x95;
const BPF_FUNC_SEQ_WRITE: i32 = 127;

/// The iterator program: for each task (ctx->task, NULL at the end),
/// write its record to ctx->meta->seq.
///
/// ```text
///   r6 = ctx->meta; r7 = ctx->task; if r7 == 0 goto out
///   stack[-32..] = { task->pid, task->tgid, se.sum_exec_runtime,
///                    sched_info.run_delay, sched_info.pcount }
///   bpf_seq_write(r6->seq, stack - 32, 32)
///   out: return 0
/// ```
/// None if an offset does not fit an instruction.
pub fn program(o: &Offsets) -> Option<Vec<[u8; 8]>> {
    let off = |v: u32| i16::try_from(v).ok();
    let body = [
        insn(LDX_W, 2, 7, off(o.pid)?, 0),
        insn(STX_W, 10, 2, -32, 0),
        insn(LDX_W, 2, 7, off(o.tgid)?, 0),
        insn(STX_W, 10, 2, -28, 0),
        insn(LDX_DW, 2, 7, off(o.sum_exec_runtime)?, 0),
        insn(STX_DW, 10, 2, -24, 0),
        insn(LDX_DW, 2, 7, off(o.run_delay)?, 0),
        insn(STX_DW, 10, 2, -16, 0),
        insn(LDX_DW, 2, 7, off(o.pcount)?, 0),
        insn(STX_DW, 10, 2, -8, 0),
        insn(LDX_DW, 1, 6, 0, 0),
        insn(MOV_REG, 2, 10, 0, 0),
        insn(ADD_IMM, 2, 0, 0, -(RECORD as i32)),
        insn(MOV_IMM, 3, 0, 0, RECORD as i32),
        insn(CALL, 0, 0, 0, BPF_FUNC_SEQ_WRITE),
    ];
    let mut p =
        vec![insn(LDX_DW, 6, 1, 0, 0), insn(LDX_DW, 7, 1, 8, 0), insn(JEQ_IMM, 7, 0, body.len() as i16, 0)];
    p.extend(body);
    p.extend([insn(MOV_IMM, 0, 0, 0, 0), insn(EXIT, 0, 0, 0, 0)]);
    Some(p)
}

/// The loaded program's link: each read opens an iterator on it.
struct Loaded {
    _prog: OwnedFd,
    link: OwnedFd,
}

static LOADED: OnceLock<Option<Loaded>> = OnceLock::new();

/// The initial pid namespace's inode number (PROC_PID_INIT_INO): the
/// iterator writes global task ids, which are /proc's only there.
const INITIAL_PID_NS: &str = "pid:[4026531836]";

fn load() -> Result<Loaded, String> {
    let ns = std::fs::read_link("/proc/self/ns/pid").map_err(|e| format!("/proc/self/ns/pid: {e}"))?;
    if ns.as_os_str() != INITIAL_PID_NS {
        return Err(format!("not in the initial pid namespace ({})", ns.display()));
    }
    let path = "/sys/kernel/btf/vmlinux";
    let data = std::fs::read(path).map_err(|e| format!("{path}: {e}"))?;
    let btf = Btf::parse(&data).map_err(|e| format!("{path}: {e}"))?;
    let func = btf.func("bpf_iter_task").ok_or("no bpf_iter_task in the kernel's BTF")?;
    let offsets = Offsets::from_btf(&btf).ok_or("task_struct lacks a scheduler counter")?;
    drop(data);
    let insns = program(&offsets).ok_or("task_struct offsets out of range")?;
    let prog = sys::bpf_load_iterator(&insns, func, c"nsfuse_tasks").map_err(|e| format!("loading: {e}"))?;
    let link = sys::bpf_link_iterator(prog.as_fd()).map_err(|e| format!("linking: {e}"))?;
    let loaded = Loaded { _prog: prog, link };
    // The program must see us as /proc does.
    let counters = read(&loaded).map_err(|e| format!("reading: {e}"))?;
    let me = sys::gettid();
    match counters.get(me) {
        Some(t) if t.tgid == sys::getpid().get() => Ok(loaded),
        other => Err(format!("own thread {me} reads as {other:?}")),
    }
}

fn read(loaded: &Loaded) -> std::io::Result<TaskCounters> {
    let iter = sys::bpf_open_iterator(loaded.link.as_fd())?;
    let mut bytes = Vec::with_capacity(64 * 1024);
    std::fs::File::from(iter).read_to_end(&mut bytes)?;
    Ok(TaskCounters::parse(&bytes))
}

/// Every task's counters now; None where the iterator is not available
/// (said once in the log, at the first call).
pub fn now() -> Option<TaskCounters> {
    let loaded = LOADED
        .get_or_init(|| match load() {
            Ok(l) => {
                log::debug!("task counters: one BPF iterator read per refresh");
                Some(l)
            }
            Err(why) => {
                log::info!("task counters: reading each task's schedstat ({why})");
                None
            }
        })
        .as_ref()?;
    read(loaded).map_err(|e| log::warn!("task counters: {e}")).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(tid: i32, tgid: i32, c: [u64; 3]) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend(tid.to_le_bytes());
        b.extend(tgid.to_le_bytes());
        c.iter().for_each(|w| b.extend(w.to_le_bytes()));
        b
    }

    #[test]
    fn records_are_read_whole_and_found_by_thread() {
        let mut bytes =
            [record(30, 10, [5, 6, 7]), record(10, 10, [1, 2, 3]), record(11, 10, [0, 0, 1])].concat();
        bytes.extend([1, 2, 3]); // a torn record at the end
        let c = TaskCounters::parse(&bytes);
        assert_eq!(c.0.len(), 3);
        assert_eq!(c.get(Pid(10)).map(|t| t.counters), Some([1, 2, 3]));
        assert_eq!(c.get(Pid(30)).map(|t| t.tgid), Some(10));
        assert_eq!(c.get(Pid(12)), None);
    }

    #[test]
    fn a_stamp_is_unchanged_only_for_its_task_in_its_process_with_its_counters() {
        let c = TaskCounters::parse(&[record(10, 10, [1, 2, 3]), record(11, 10, [4, 5, 6])].concat());
        assert!(c.unchanged(&Stamp::counted((Pid(10), None), [1, 2, 3])));
        assert!(c.unchanged(&Stamp::counted((Pid(10), Some(Pid(11))), [4, 5, 6])));
        assert!(!c.unchanged(&Stamp::counted((Pid(10), None), [1, 2, 4])), "it ran");
        assert!(!c.unchanged(&Stamp::counted((Pid(12), Some(Pid(11))), [4, 5, 6])), "another process's");
        assert!(!c.unchanged(&Stamp::counted((Pid(13), None), [1, 2, 3])), "gone");
    }

    #[test]
    fn the_program_skips_its_body_when_there_is_no_task() {
        let o = Offsets { pid: 1264, tgid: 1268, sum_exec_runtime: 232, run_delay: 1016, pcount: 1008 };
        let p = program(&o).unwrap();
        // The jump at 2 lands on `r0 = 0` (two before the end).
        let jump = i16::from_le_bytes([p[2][2], p[2][3]]) as usize;
        assert_eq!(p[2][0], JEQ_IMM);
        assert_eq!(3 + jump, p.len() - 2);
        assert_eq!(p[p.len() - 1][0], EXIT);
        assert!(program(&Offsets { pid: 40_000, ..o }).is_none());
    }

    #[test]
    fn on_this_host_the_iterator_agrees_with_schedstat() {
        if sys::geteuid() != 0 {
            return;
        }
        // A sleeping child: its counters hold still between the two reads.
        let mut child = std::process::Command::new("sleep").arg("5").spawn().unwrap();
        let pid = child.id() as i32;
        std::thread::sleep(std::time::Duration::from_millis(100));
        let file = std::fs::read_to_string(format!("/proc/{pid}/schedstat")).unwrap();
        let counters = now().expect("this host loads BPF iterators");
        let _ = child.kill();
        let _ = child.wait();
        let want: Vec<u64> = file.split_whitespace().map(|w| w.parse().unwrap()).collect();
        let t = counters.get(Pid(pid)).expect("the child is listed");
        assert_eq!(t.tgid, pid);
        assert_eq!(t.counters.to_vec(), want);
        assert!(counters.0.len() > 10, "every task: {}", counters.0.len());
    }
}
