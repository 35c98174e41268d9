//! Every task on the host in one read: a BPF task iterator (`iter/task`,
//! built here from the kernel's BTF) writes, per task, its thread id, its
//! process id, the three counters `schedstat` shows (time on CPU, time
//! waiting, times run) and then the ten namespaces its /proc `ns` links
//! name. A refresh checks its stamps (`Stamp`) against one read instead of
//! one pread per task; a pass of many processes takes their links (and
//! their threads') from it instead of ten readlinks per task. The counters
//! are read before the links, task by task, so a stamp made from a record
//! is taken before what it vouches for. Where the program cannot be loaded
//! (no BTF, BPF not allowed, not the initial pid namespace), `now` is None
//! and the /proc files are read as before; where its links disagree with
//! /proc for our own task, only its counters are used.

use super::btf::Btf;
use super::stamp::Stamp;
use crate::locks::Locked;
use crate::model::{Link, NsType, Pid, ProcessLinks, LINKS};
use crate::sys;
use std::ffi::CStr;
use std::io::Read;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};

/// One task as the iterator wrote it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TaskRecord {
    pub tid: i32,
    pub tgid: i32,
    /// As `schedstat` prints them: sum_exec_runtime, run_delay, pcount;
    /// `KERNEL_THREAD` for a kernel thread.
    pub counters: [u64; 3],
    /// In `procfs::LINK_CNAMES` order; 0 where /proc's link would not read.
    pub links: ProcessLinks,
}

/// Bytes per record: tid, tgid (u32 each), three u64 counters, then
/// (when the links are read) ten u32 namespace inodes.
const COUNTERS_RECORD: usize = 32;
const RECORD: usize = COUNTERS_RECORD + 4 * LINKS;

/// The counters written for a kernel thread, which no task's can be: it
/// never changes its namespaces and holds no descriptors, so its stamp
/// holds for as long as that number names a kernel thread (a refresh
/// re-read every kernel thread that had run, each time).
pub const KERNEL_THREAD: [u64; 3] = [u64::MAX; 3];

/// PF_KTHREAD in `task_struct.flags`.
const PF_KTHREAD: i32 = 0x0020_0000;

/// What a read's records hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Records {
    /// Counters only: what a refresh checks its stamps against. Cheap: the
    /// links cost a chase of cold pointers per task, several times the
    /// rest.
    Counters,
    /// Counters and links: what a read of many processes takes.
    WithLinks,
}

impl Records {
    fn len(self) -> usize {
        match self {
            Records::Counters => COUNTERS_RECORD,
            Records::WithLinks => RECORD,
        }
    }
}

/// What every read has of a task (kept compact: a refresh keeps the last
/// read of counters).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Task {
    tid: i32,
    tgid: i32,
    counters: [u64; 3],
}

/// Every task at one moment, ascending by (process, thread).
#[derive(Debug)]
pub struct TaskTable {
    tasks: Vec<Task>,
    /// Each task's links, beside `tasks`, for a read with links; else
    /// empty.
    links: Vec<ProcessLinks>,
    /// Whether the links were checked against /proc (else only the
    /// counters are used).
    links_trusted: bool,
}

impl TaskTable {
    /// Records as the iterator wrote them (a trailing partial record is
    /// dropped), sorted by (process, thread). Links are trusted only when
    /// read, and `links_trusted`.
    pub fn parse(bytes: &[u8], records: Records, links_trusted: bool) -> TaskTable {
        let word = |r: &[u8], at: usize| u64::from_le_bytes(r[at..at + 8].try_into().unwrap_or_default());
        let half = |r: &[u8], at: usize| u32::from_le_bytes(r[at..at + 4].try_into().unwrap_or_default());
        let task = |r: &[u8]| Task {
            tid: half(r, 0) as i32,
            tgid: half(r, 4) as i32,
            counters: [word(r, 8), word(r, 16), word(r, 24)],
        };
        let records_in = bytes.chunks_exact(records.len());
        let (tasks, links) = match records {
            Records::Counters => {
                let mut tasks: Vec<Task> = records_in.map(task).collect();
                tasks.sort_unstable_by_key(|t| (t.tgid, t.tid));
                (tasks, Vec::new())
            }
            Records::WithLinks => {
                let mut both: Vec<(Task, ProcessLinks)> = records_in
                    .map(|r| (task(r), ProcessLinks(std::array::from_fn(|i| half(r, 32 + 4 * i)))))
                    .collect();
                both.sort_unstable_by_key(|(t, _)| (t.tgid, t.tid));
                both.into_iter().unzip()
            }
        };
        TaskTable { tasks, links, links_trusted: links_trusted && records == Records::WithLinks }
    }

    fn index(&self, pid: Pid, tid: Pid) -> Option<usize> {
        self.tasks.binary_search_by_key(&(pid.get(), tid.get()), |t| (t.tgid, t.tid)).ok()
    }

    fn record(&self, i: usize) -> TaskRecord {
        let Task { tid, tgid, counters } = self.tasks[i];
        TaskRecord { tid, tgid, counters, links: self.links.get(i).copied().unwrap_or_default() }
    }

    /// Task `tid` of process `pid` (links 0 where not read).
    pub fn get(&self, pid: Pid, tid: Pid) -> Option<TaskRecord> {
        self.index(pid, tid).map(|i| self.record(i))
    }

    /// Every task of process `pid`, if its leader is listed and the links
    /// can be trusted.
    pub fn process(&self, pid: Pid) -> Option<Vec<TaskRecord>> {
        if !self.links_trusted {
            return None;
        }
        self.index(pid, pid)?;
        let from = self.tasks.partition_point(|t| t.tgid < pid.get());
        let to = self.tasks.partition_point(|t| t.tgid <= pid.get());
        Some((from..to).map(|i| self.record(i)).collect())
    }

    /// How many tasks it lists.
    pub fn len(&self) -> usize {
        self.tasks.len()
    }

    /// Whether the task `stamp` names is still there, in the same
    /// process, and has not run since it was stamped.
    pub fn unchanged(&self, stamp: &Stamp) -> bool {
        let ((pid, tid), seen) = stamp.counters();
        self.index(pid, tid.unwrap_or(pid)).is_some_and(|i| self.tasks[i].counters == seen)
    }
}

/// Where the iterator's program reads each field: `task_struct`'s, and
/// each namespace's inode number through the pointers to it. A link whose
/// fields the kernel lacks (no time namespaces) is None and reads as 0.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Offsets {
    pub pid: u32,
    pub tgid: u32,
    pub flags: u32,
    pub sum_exec_runtime: u32,
    pub run_delay: u32,
    pub pcount: u32,
    pub links: LinkOffsets,
}

/// The pointer chains behind the ten links.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LinkOffsets {
    /// `task->nsproxy`.
    pub nsproxy: Option<u32>,
    /// By link slot, for the links read through nsproxy:
    /// (`nsproxy->FIELD`, that namespace's `ns.inum`); pid_for_children is
    /// apart.
    pub via_nsproxy: [Option<(u32, u32)>; LINKS],
    /// `nsproxy->pid_ns_for_children`, `pid_namespace->child_reaper`
    /// (the link reads only once the namespace has its init),
    /// `pid_namespace->ns.inum`.
    pub pid_for_children: Option<(u32, u32, u32)>,
    /// `task->real_cred`, `cred->user_ns`, `user_namespace->ns.inum`.
    pub user: Option<(u32, u32, u32)>,
    /// `task->thread_pid`, `pid->level`, `pid->numbers`, sizeof(struct
    /// upid), `upid->ns`, `pid_namespace->ns.inum`: the namespace of the
    /// task's pid at its own level.
    pub pid: Option<(u32, u32, u32, u32, u32, u32)>,
}

/// Link slots: their places in `ProcessLinks`.
const CGROUP: usize = Link::Own(NsType::Cgroup).index();
const IPC: usize = Link::Own(NsType::Ipc).index();
const MNT: usize = Link::Own(NsType::Mnt).index();
const NET: usize = Link::Own(NsType::Net).index();
const PID: usize = Link::Own(NsType::Pid).index();
const TIME: usize = Link::Own(NsType::Time).index();
const USER: usize = Link::Own(NsType::User).index();
const UTS: usize = Link::Own(NsType::Uts).index();
const PID_FOR_CHILDREN: usize = Link::PidForChildren.index();
const TIME_FOR_CHILDREN: usize = Link::TimeForChildren.index();

impl Offsets {
    pub fn from_btf(btf: &Btf) -> Option<Offsets> {
        let at = |path: &[&str]| btf.offset_of("task_struct", path);
        Some(Offsets {
            pid: at(&["pid"])?,
            tgid: at(&["tgid"])?,
            flags: at(&["flags"])?,
            sum_exec_runtime: at(&["se", "sum_exec_runtime"])?,
            run_delay: at(&["sched_info", "run_delay"])?,
            pcount: at(&["sched_info", "pcount"])?,
            links: LinkOffsets::from_btf(btf),
        })
    }
}

impl LinkOffsets {
    fn from_btf(btf: &Btf) -> LinkOffsets {
        let inum = |ty: &str| btf.offset_of(ty, &["ns", "inum"]);
        let field = |f: &str| btf.offset_of("nsproxy", &[f]);
        let through = |f: &str, ty: &str| Some((field(f)?, inum(ty)?));
        let mut via_nsproxy = [None; LINKS];
        via_nsproxy[CGROUP] = through("cgroup_ns", "cgroup_namespace");
        via_nsproxy[IPC] = through("ipc_ns", "ipc_namespace");
        via_nsproxy[MNT] = through("mnt_ns", "mnt_namespace");
        via_nsproxy[NET] = through("net_ns", "net");
        via_nsproxy[TIME] = through("time_ns", "time_namespace");
        via_nsproxy[UTS] = through("uts_ns", "uts_namespace");
        via_nsproxy[TIME_FOR_CHILDREN] = through("time_ns_for_children", "time_namespace");
        let task = |f: &str| btf.offset_of("task_struct", &[f]);
        LinkOffsets {
            nsproxy: task("nsproxy"),
            via_nsproxy,
            pid_for_children: (|| {
                Some((
                    field("pid_ns_for_children")?,
                    btf.offset_of("pid_namespace", &["child_reaper"])?,
                    inum("pid_namespace")?,
                ))
            })(),
            user: (|| {
                Some((task("real_cred")?, btf.offset_of("cred", &["user_ns"])?, inum("user_namespace")?))
            })(),
            pid: (|| {
                Some((
                    task("thread_pid")?,
                    btf.offset_of("pid", &["level"])?,
                    btf.offset_of("pid", &["numbers"])?,
                    btf.size_of("upid")?,
                    btf.offset_of("upid", &["ns"])?,
                    inum("pid_namespace")?,
                ))
            })(),
        }
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
const ST_DW: u8 = 0x7a;
const JEQ_IMM: u8 = 0x15;
const JGT_IMM: u8 = 0x25;
const MOV_IMM: u8 = 0xb7;
const MOV_REG: u8 = 0xbf;
const ADD_IMM: u8 = 0x07;
const ADD_REG: u8 = 0x0f;
const AND_IMM: u8 = 0x57;
const MUL_IMM: u8 = 0x27;
const CALL: u8 = 0x85;
const EXIT: u8 = 0x95;
const BPF_FUNC_PROBE_READ_KERNEL: i32 = 113;
const BPF_FUNC_SEQ_WRITE: i32 = 127;

/// Frame pointer register, and where the record and an 8-byte scratch
/// slot sit below it.
const FP: u8 = 10;
const AT_RECORD: i16 = -(RECORD as i16);
const AT_LINKS: i16 = AT_RECORD + 32;
const AT_SCRATCH: i16 = AT_RECORD - 8;

/// A straight run of instructions whose early exits all jump to its end.
#[derive(Default)]
struct Block {
    insns: Vec<[u8; 8]>,
    exits: Vec<usize>,
}

impl Block {
    fn op(&mut self, i: [u8; 8]) -> &mut Self {
        self.insns.push(i);
        self
    }

    /// Leave the block if register `reg` compares (`code`) to `imm`.
    fn exit_if(&mut self, code: u8, reg: u8, imm: i32) -> &mut Self {
        self.exits.push(self.insns.len());
        self.op(insn(code, reg, 0, 0, imm))
    }

    /// Its instructions, the exits pointing past the last one.
    fn close(mut self) -> Option<Vec<[u8; 8]>> {
        let end = self.insns.len();
        for at in self.exits {
            let off = i16::try_from(end - at - 1).ok()?;
            self.insns[at][2..4].copy_from_slice(&off.to_le_bytes());
        }
        Some(self.insns)
    }

    /// `*(u32 *)(fp + AT_LINKS + 4 * slot) = src`.
    fn store_link(&mut self, slot: usize, src: u8) -> &mut Self {
        self.op(insn(STX_W, FP, src, AT_LINKS + 4 * slot as i16, 0))
    }

    /// `bpf_probe_read_kernel(fp + AT_SCRATCH, size, r3)`; then `dst =
    /// *(fp + AT_SCRATCH)` (u32 or u64 by size). A fault reads as 0.
    fn probe_read(&mut self, size: i32, dst: u8) -> &mut Self {
        self.op(insn(MOV_REG, 1, FP, 0, 0))
            .op(insn(ADD_IMM, 1, 0, 0, AT_SCRATCH.into()))
            .op(insn(MOV_IMM, 2, 0, 0, size))
            .op(insn(CALL, 0, 0, 0, BPF_FUNC_PROBE_READ_KERNEL))
            .op(insn(if size == 8 { LDX_DW } else { LDX_W }, dst, FP, AT_SCRATCH, 0))
    }
}

fn off(v: u32) -> Option<i16> {
    i16::try_from(v).ok()
}

fn imm(v: u32) -> Option<i32> {
    i32::try_from(v).ok()
}

/// The links read through `task->nsproxy` (r7 the task): none if it is
/// NULL (an exited task), as /proc has them.
fn nsproxy_block(l: &LinkOffsets) -> Option<Vec<[u8; 8]>> {
    let mut b = Block::default();
    let Some(nsproxy) = l.nsproxy else { return Some(Vec::new()) };
    b.op(insn(LDX_DW, 8, 7, off(nsproxy)?, 0)).exit_if(JEQ_IMM, 8, 0);
    for (slot, chain) in l.via_nsproxy.iter().enumerate() {
        if let Some((field, inum)) = *chain {
            // Loads through kernel pointers the verifier knows by BTF: a
            // fault reads as 0.
            b.op(insn(LDX_DW, 2, 8, off(field)?, 0)).op(insn(LDX_W, 2, 2, off(inum)?, 0)).store_link(slot, 2);
        }
    }
    if let Some((field, reaper, inum)) = l.pid_for_children {
        b.op(insn(LDX_DW, 2, 8, off(field)?, 0))
            .op(insn(LDX_DW, 3, 2, off(reaper)?, 0))
            .exit_if(JEQ_IMM, 3, 0)
            .op(insn(LDX_W, 3, 2, off(inum)?, 0))
            .store_link(PID_FOR_CHILDREN, 3);
    }
    b.close()
}

/// `task->real_cred->user_ns->ns.inum`.
fn user_block(l: &LinkOffsets) -> Option<Vec<[u8; 8]>> {
    let mut b = Block::default();
    if let Some((cred, user_ns, inum)) = l.user {
        b.op(insn(LDX_DW, 2, 7, off(cred)?, 0))
            .op(insn(LDX_DW, 2, 2, off(user_ns)?, 0))
            .op(insn(LDX_W, 2, 2, off(inum)?, 0))
            .store_link(USER, 2);
    }
    b.close()
}

/// `task->thread_pid->numbers[level].ns->ns.inum`: indexed by a value
/// read at run time, so through bpf_probe_read_kernel on plain numbers.
fn pid_block(l: &LinkOffsets) -> Option<Vec<[u8; 8]>> {
    let mut b = Block::default();
    if let Some((thread_pid, level, numbers, upid_size, upid_ns, inum)) = l.pid {
        b.op(insn(MOV_REG, 3, 7, 0, 0))
            .op(insn(ADD_IMM, 3, 0, 0, imm(thread_pid)?))
            .probe_read(8, 8)
            .exit_if(JEQ_IMM, 8, 0)
            .op(insn(MOV_REG, 3, 8, 0, 0))
            .op(insn(ADD_IMM, 3, 0, 0, imm(level)?))
            .probe_read(4, 9)
            .exit_if(JGT_IMM, 9, 32)
            .op(insn(MUL_IMM, 9, 0, 0, imm(upid_size)?))
            .op(insn(ADD_REG, 9, 8, 0, 0))
            .op(insn(ADD_IMM, 9, 0, 0, imm(numbers.checked_add(upid_ns)?)?))
            .op(insn(MOV_REG, 3, 9, 0, 0))
            .probe_read(8, 3)
            .exit_if(JEQ_IMM, 3, 0)
            .op(insn(ADD_IMM, 3, 0, 0, imm(inum)?))
            .probe_read(4, 2)
            .store_link(PID, 2);
    }
    b.close()
}

/// The iterator program: for each task (ctx->task, NULL at the end),
/// write its record to ctx->meta->seq.
///
/// ```text
///   r6 = ctx->meta; r7 = ctx->task; if r7 == 0 goto out
///   record = { task->pid, task->tgid, se.sum_exec_runtime,
///              sched_info.run_delay, sched_info.pcount, links = 0 }
///   links[...] = task->nsproxy->X->ns.inum, ...   (nsproxy_block)
///   links[user] = ...; links[pid] = ...           (user_block, pid_block)
///   bpf_seq_write(r6->seq, record, its length)
///   out: return 0
/// ```
/// With `Records::Counters`, no links: the record ends after the counters.
/// None if an offset does not fit an instruction.
pub fn program(o: &Offsets, records: Records) -> Option<Vec<[u8; 8]>> {
    let mut body = Vec::new();
    for (field, size, at) in
        [(o.pid, 4, 0), (o.tgid, 4, 4), (o.sum_exec_runtime, 8, 8), (o.run_delay, 8, 16), (o.pcount, 8, 24)]
    {
        let (load, store) = if size == 4 { (LDX_W, STX_W) } else { (LDX_DW, STX_DW) };
        body.extend([insn(load, 2, 7, off(field)?, 0), insn(store, FP, 2, AT_RECORD + at, 0)]);
    }
    if records == Records::WithLinks {
        for at in (AT_LINKS..0).step_by(8).chain([AT_SCRATCH]) {
            body.push(insn(ST_DW, FP, 0, at, 0));
        }
    }
    // A kernel thread's counters are KERNEL_THREAD.
    let mut kthread = Block::default();
    kthread
        .op(insn(LDX_W, 2, 7, off(o.flags)?, 0))
        .op(insn(AND_IMM, 2, 0, 0, PF_KTHREAD))
        .exit_if(JEQ_IMM, 2, 0);
    let marker = i32::try_from(KERNEL_THREAD[0] as i64).ok()?; // sign-extended to the u64
    for at in [8, 16, 24] {
        kthread.op(insn(ST_DW, FP, 0, AT_RECORD + at, marker));
    }
    body.extend(kthread.close()?);
    if records == Records::WithLinks {
        body.extend(nsproxy_block(&o.links)?);
        body.extend(user_block(&o.links)?);
        body.extend(pid_block(&o.links)?);
    }
    body.extend([
        insn(LDX_DW, 1, 6, 0, 0),
        insn(MOV_REG, 2, FP, 0, 0),
        insn(ADD_IMM, 2, 0, 0, AT_RECORD.into()),
        insn(MOV_IMM, 3, 0, 0, records.len() as i32),
        insn(CALL, 0, 0, 0, BPF_FUNC_SEQ_WRITE),
    ]);
    let mut p = vec![
        insn(LDX_DW, 6, 1, 0, 0),
        insn(LDX_DW, 7, 1, 8, 0),
        insn(JEQ_IMM, 7, 0, off(body.len() as u32)?, 0),
    ];
    p.extend(body);
    p.extend([insn(MOV_IMM, 0, 0, 0, 0), insn(EXIT, 0, 0, 0, 0)]);
    Some(p)
}

/// A loaded program and its link: each read opens an iterator on it.
struct Program {
    _prog: OwnedFd,
    link: OwnedFd,
    records: Records,
    /// What the last read wrote, kept for the next (a refresh reads one
    /// every time: the same buffer, not a fresh one of the same size).
    bytes: Mutex<Vec<u8>>,
}

/// Both programs, and whether our own task's links read as /proc reads
/// them.
struct Loaded {
    counters: Program,
    with_links: Program,
    links_trusted: bool,
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
    let load_one = |records: Records, name: &CStr| -> Result<Program, String> {
        let insns = program(&offsets, records).ok_or("task_struct offsets out of range")?;
        let prog = sys::bpf_load_iterator(&insns, func, name).map_err(|e| format!("loading: {e}"))?;
        let link = sys::bpf_link_iterator(prog.as_fd()).map_err(|e| format!("linking: {e}"))?;
        Ok(Program { _prog: prog, link, records, bytes: Mutex::default() })
    };
    let mut loaded = Loaded {
        counters: load_one(Records::Counters, c"nsfuse_tasks")?,
        with_links: load_one(Records::WithLinks, c"nsfuse_task_ns")?,
        links_trusted: false,
    };
    // The programs must see us as /proc does.
    let (me, tid) = (sys::getpid(), sys::gettid());
    let table = read(&loaded, Records::WithLinks).map_err(|e| format!("reading: {e}"))?;
    let Some(own) = table.get(me, tid) else {
        return Err(format!("own thread {tid} of {me} is not listed"));
    };
    let by_proc = super::procfs::own_thread_links();
    loaded.links_trusted = own.links == by_proc;
    if !loaded.links_trusted {
        log::info!(
            "task table: links read {:?}, /proc says {:?}: reading links from /proc",
            own.links,
            by_proc
        );
    }
    Ok(loaded)
}

fn read(loaded: &Loaded, records: Records) -> std::io::Result<TaskTable> {
    let it = match records {
        Records::Counters => &loaded.counters,
        Records::WithLinks => &loaded.with_links,
    };
    let iter = sys::bpf_open_iterator(it.link.as_fd())?;
    let mut bytes = it.bytes.locked();
    bytes.clear();
    std::fs::File::from(iter).read_to_end(&mut bytes)?;
    let table = TaskTable::parse(&bytes, it.records, loaded.links_trusted);
    TASKS_SEEN.store(table.len(), Ordering::Relaxed);
    Ok(table)
}

/// How many tasks the last read listed (0 before the first).
static TASKS_SEEN: AtomicUsize = AtomicUsize::new(0);

/// Whether reading `n` processes is worth a read of every task: their
/// links then come without ten readlinks each, at the price of a record
/// for every task on the host (a few hundred processes' readlinks cost
/// about what a read of 20 000 tasks does).
pub fn worth_reading_for(n: usize) -> bool {
    n >= 16 && n.saturating_mul(32) >= TASKS_SEEN.load(Ordering::Relaxed)
}

/// Every task now, with `records`; None where the iterator is not
/// available (said once in the log, at the first call).
pub fn now(records: Records) -> Option<TaskTable> {
    let loaded = LOADED
        .get_or_init(|| match load() {
            Ok(l) => {
                log::debug!("task table: one BPF iterator read per refresh");
                Some(l)
            }
            Err(why) => {
                log::info!("task table: reading each task's /proc files ({why})");
                None
            }
        })
        .as_ref()?;
    read(loaded, records).map_err(|e| log::warn!("task table: {e}")).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(tid: i32, tgid: i32, c: [u64; 3], links: [u32; LINKS]) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend(tid.to_le_bytes());
        b.extend(tgid.to_le_bytes());
        c.iter().for_each(|w| b.extend(w.to_le_bytes()));
        links.iter().for_each(|l| b.extend(l.to_le_bytes()));
        b
    }

    const L: [u32; LINKS] = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10];

    #[test]
    fn records_are_read_whole_and_found_by_process_and_thread() {
        let mut bytes = [
            record(30, 10, [5, 6, 7], L),
            record(10, 10, [1, 2, 3], L),
            record(9, 9, [0, 0, 1], [0; LINKS]),
            record(11, 10, [0, 0, 1], L),
        ]
        .concat();
        bytes.extend([1, 2, 3]); // a torn record at the end
        let t = TaskTable::parse(&bytes, Records::WithLinks, true);
        assert_eq!(t.len(), 4);
        assert_eq!(t.get(Pid(10), Pid(10)).map(|t| t.counters), Some([1, 2, 3]));
        assert_eq!(t.get(Pid(10), Pid(30)).map(|t| t.links), Some(ProcessLinks(L)));
        assert_eq!(t.get(Pid(9), Pid(30)), None, "another process's thread");
        let tids: Vec<i32> = t.process(Pid(10)).unwrap().iter().map(|r| r.tid).collect();
        assert_eq!(tids, [10, 11, 30]);
        assert!(t.process(Pid(11)).is_none(), "a thread is no process");
        assert!(
            TaskTable::parse(&bytes, Records::WithLinks, false).process(Pid(10)).is_none(),
            "links not trusted"
        );
        let counters: Vec<u8> =
            bytes.chunks(RECORD).flat_map(|r| r.iter().take(COUNTERS_RECORD)).copied().collect();
        let c = TaskTable::parse(&counters, Records::Counters, true);
        assert_eq!(c.get(Pid(10), Pid(11)).map(|t| t.counters), Some([0, 0, 1]));
        assert!(c.process(Pid(10)).is_none(), "no links read");
    }

    #[test]
    fn a_stamp_is_unchanged_only_for_its_task_in_its_process_with_its_counters() {
        let c = TaskTable::parse(
            &[record(10, 10, [1, 2, 3], L), record(11, 10, [4, 5, 6], L)].concat(),
            Records::WithLinks,
            true,
        );
        assert!(c.unchanged(&Stamp::counted((Pid(10), None), [1, 2, 3])));
        assert!(c.unchanged(&Stamp::counted((Pid(10), Some(Pid(11))), [4, 5, 6])));
        assert!(!c.unchanged(&Stamp::counted((Pid(10), None), [1, 2, 4])), "it ran");
        assert!(!c.unchanged(&Stamp::counted((Pid(12), Some(Pid(11))), [4, 5, 6])), "another process's");
        assert!(!c.unchanged(&Stamp::counted((Pid(13), None), [1, 2, 3])), "gone");
    }

    fn sample_offsets() -> Offsets {
        let mut via_nsproxy = [None; LINKS];
        via_nsproxy[NET] = Some((40, 176));
        Offsets {
            pid: 1264,
            tgid: 1268,
            flags: 44,
            sum_exec_runtime: 232,
            run_delay: 1016,
            pcount: 1008,
            links: LinkOffsets {
                nsproxy: Some(1840),
                via_nsproxy,
                pid_for_children: Some((32, 48, 136)),
                user: Some((1728, 144, 240)),
                pid: Some((1368, 4, 144, 16, 8, 136)),
            },
        }
    }

    /// Where each jump of `p` lands, checked to be inside the program.
    fn jump_targets(p: &[[u8; 8]]) -> Vec<(usize, usize)> {
        p.iter()
            .enumerate()
            .filter(|(_, i)| i[0] & 0x07 == 0x05 && i[0] != CALL && i[0] != EXIT)
            .map(|(at, i)| (at, (at as i64 + 1 + i64::from(i16::from_le_bytes([i[2], i[3]]))) as usize))
            .collect()
    }

    #[test]
    fn the_program_skips_its_body_when_there_is_no_task_and_every_jump_lands_inside() {
        let o = sample_offsets();
        let p = program(&o, Records::WithLinks).unwrap();
        // The jump at 2 lands on `r0 = 0` (two before the end).
        assert_eq!(p[2][0], JEQ_IMM);
        assert_eq!(jump_targets(&p)[0], (2, p.len() - 2));
        for (at, to) in jump_targets(&p) {
            assert!(to > at && to < p.len() - 1, "jump at {at} to {to}");
        }
        assert_eq!(p[p.len() - 1][0], EXIT);
        assert!(program(&Offsets { pid: 40_000, ..o }, Records::WithLinks).is_none());
        // Without the namespace fields the links are left 0: a shorter program.
        let bare = Offsets { links: LinkOffsets::default(), ..o };
        assert!(program(&bare, Records::WithLinks).unwrap().len() < p.len());
        let counters = program(&o, Records::Counters).unwrap();
        assert!(counters.len() < 30, "{} instructions", counters.len());
    }

    /// A child in new namespaces of every type, sleeping.
    fn sleeper_in_new_namespaces() -> std::process::Child {
        std::process::Command::new("unshare")
            .args(["--user", "--map-root-user", "--mount", "--uts", "--ipc", "--net", "--pid", "--fork"])
            .args(["--cgroup", "--time", "--kill-child", "sleep", "10"])
            .spawn()
            .unwrap()
    }

    #[test]
    fn on_this_host_the_table_agrees_with_schedstat_and_the_ns_links() {
        if sys::geteuid() != 0 {
            return;
        }
        let mut child = sleeper_in_new_namespaces();
        let outer = Pid(child.id() as i32);
        // The sleeper: the child of unshare, once it has exec'd sleep.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        let inner = loop {
            let kids =
                std::fs::read_to_string(format!("/proc/{outer}/task/{outer}/children")).unwrap_or_default();
            let pid = kids.split_whitespace().next().and_then(|p| p.parse().ok()).map(Pid);
            if let Some(p) = pid
                .filter(|p| std::fs::read_to_string(format!("/proc/{p}/comm")).is_ok_and(|c| c == "sleep\n"))
            {
                break p;
            }
            assert!(std::time::Instant::now() < deadline, "no sleeper under {outer}");
            std::thread::sleep(std::time::Duration::from_millis(20));
        };
        std::thread::sleep(std::time::Duration::from_millis(100));
        let file = std::fs::read_to_string(format!("/proc/{inner}/schedstat")).unwrap();
        let table = now(Records::WithLinks)
            .unwrap_or_else(|| panic!("this host loads BPF iterators: {:?}", load().err()));
        assert!(table.links_trusted);
        let mut want_links = Vec::new();
        let me = sys::getpid();
        for pid in [me, outer, inner] {
            want_links.push((pid, super::super::procfs::links_by_readlink(pid)));
        }
        let _ = child.kill();
        let _ = child.wait();
        let want: Vec<u64> = file.split_whitespace().map(|w| w.parse().unwrap()).collect();
        let t = table.get(inner, inner).expect("the sleeper is listed");
        assert_eq!(t.counters.to_vec(), want);
        // kthreadd: a kernel thread, marked so, in both kinds of read.
        assert_eq!(table.get(Pid(2), Pid(2)).map(|t| t.counters), Some(KERNEL_THREAD));
        let counters = now(Records::Counters).expect("counters");
        assert_eq!(counters.get(Pid(2), Pid(2)).map(|t| t.counters), Some(KERNEL_THREAD));
        assert!(counters.unchanged(&Stamp::counted((Pid(2), None), KERNEL_THREAD)));
        assert!(table.len() > 10, "every task: {}", table.len());
        for (pid, links) in want_links {
            let by_bpf = table.get(pid, pid).map(|r| r.links);
            assert_eq!(by_bpf, Some(links), "process {pid}");
        }
        // The sleeper is in none of our namespaces.
        let (o, i) = (table.get(me, me).unwrap().links, t.links);
        for slot in [CGROUP, IPC, MNT, NET, PID, TIME, USER, UTS] {
            assert_ne!(o.0[slot], i.0[slot], "slot {slot}");
            assert_ne!(i.0[slot], 0, "slot {slot}");
        }
    }
}
