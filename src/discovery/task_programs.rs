//! The BPF programs behind the task table (`task_table`), built here
//! instruction by instruction from the kernel's BTF offsets:
//! - `program`: an `iter/task` program run once per task, writing that
//!   task's record (counters, and with `Records::WithLinks` its links);
//! - `walk_program`: run once, it walks every task itself (the kernel's
//!   open-coded task iterator, `bpf_iter_task_*`) and writes the counters
//!   records into a map we read in place: no lookup of each task by its
//!   number, which is most of what the first costs the kernel.

use super::btf::Btf;
use super::task_table::{Records, COUNTERS_RECORD, KERNEL_THREAD, RECORD};
use crate::model::{Link, NsType, LINKS};

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

/// PF_KTHREAD in `task_struct.flags`.
const PF_KTHREAD: i32 = 0x0020_0000;

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
    if records == Records::WithLinks {
        for at in (AT_LINKS..0).step_by(8).chain([AT_SCRATCH]) {
            body.push(insn(ST_DW, FP, 0, at, 0));
        }
    }
    body.extend(copy_counters(o, FP, AT_RECORD)?);
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

/// Copy the counters record of the task in r7 to `base + at` (r2 free to
/// use): pid, tgid, the three counters, KERNEL_THREAD for a kernel
/// thread.
fn copy_counters(o: &Offsets, base: u8, at: i16) -> Option<Vec<[u8; 8]>> {
    let mut b = Block::default();
    for (field, size, to) in
        [(o.pid, 4, 0), (o.tgid, 4, 4), (o.sum_exec_runtime, 8, 8), (o.run_delay, 8, 16), (o.pcount, 8, 24)]
    {
        let (load, store) = if size == 4 { (LDX_W, STX_W) } else { (LDX_DW, STX_DW) };
        b.op(insn(load, 2, 7, off(field)?, 0)).op(insn(store, base, 2, at + to, 0));
    }
    b.op(insn(LDX_W, 2, 7, off(o.flags)?, 0)).op(insn(AND_IMM, 2, 0, 0, PF_KTHREAD)).exit_if(JEQ_IMM, 2, 0);
    let marker = i32::try_from(KERNEL_THREAD[0] as i64).ok()?; // sign-extended to the u64
    for to in [8, 16, 24] {
        b.op(insn(ST_DW, base, 0, at + to, marker));
    }
    b.close()
}

/// The kernel functions of the open-coded task iterator (BTF ids) and the
/// size of the iterator they share on the stack (`struct bpf_iter_task`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TaskWalk {
    pub new: u32,
    pub next: u32,
    pub destroy: u32,
    pub iter_size: u32,
}

impl TaskWalk {
    pub fn from_btf(btf: &Btf) -> Option<TaskWalk> {
        Some(TaskWalk {
            new: btf.func("bpf_iter_task_new")?,
            next: btf.func("bpf_iter_task_next")?,
            destroy: btf.func("bpf_iter_task_destroy")?,
            iter_size: btf.size_of("bpf_iter_task")?,
        })
    }
}

/// The walking program's map element: a header, then records of
/// COUNTERS_RECORD bytes. The header holds how many records were written
/// (u64 at `WRITTEN`), the index the program starts at (u32 at `FIRST`,
/// always 0: read at run time, the verifier takes the count for any
/// number and the loop converges), and what went wrong (i32 at `FAILED`:
/// bpf_iter_task_new's error, or `FULL`).
pub const HEADER: usize = 16;
pub const WRITTEN: usize = 0;
const FIRST: i16 = 8;
pub const FAILED: usize = 12;
/// More tasks than records fit: nothing is read; a bigger map is made.
pub const FULL: i32 = 1;

const LD_IMM64: u8 = 0x18;
const ST_W: u8 = 0x62;
const JA: u8 = 0x05;
const JGE_IMM: u8 = 0x35;
const LSH_IMM: u8 = 0x67;
/// `src` of an LD_IMM64 whose value is the address of a map's element.
const PSEUDO_MAP_VALUE: u8 = 2;
/// `src` of a CALL whose imm is a kernel function's BTF id.
const PSEUDO_KFUNC_CALL: u8 = 2;
/// bpf_iter_task_new's flag: every thread of every process.
const ALL_THREADS: i32 = 1;

/// The program linked to one task (ours), so that a read runs it once:
/// it walks every task with the kernel's open-coded iterator and writes
/// their counters records to the element of map `map` (`capacity`
/// records after the header).
///
/// ```text
///   if ctx->task == 0 goto out          (the call at the end of a read)
///   r9 = &map[0]; r8 = r9->first
///   failed = bpf_iter_task_new(&it, NULL, ALL_THREADS)
/// top:
///   r7 = bpf_iter_task_next(&it); if r7 == 0 goto done
///   if r7->pid == 0 goto top            (the idle task, as /proc)
///   if r8 >= capacity { failed = FULL; goto done }
///   record at r9 + HEADER + 32 * r8 = counters of r7; r8 += 1; goto top
/// done:
///   bpf_iter_task_destroy(&it); written = r8
/// out: return 0
/// ```
/// None if an offset or id does not fit an instruction.
pub fn walk_program(o: &Offsets, k: &TaskWalk, map: i32, capacity: u32) -> Option<Vec<[u8; 8]>> {
    let at_iter = -i16::try_from(k.iter_size.div_ceil(8) * 8).ok()?;
    let iter_arg = [insn(MOV_REG, 1, FP, 0, 0), insn(ADD_IMM, 1, 0, 0, at_iter.into())];
    let kfunc = |id: u32| Some(insn(CALL, 0, PSEUDO_KFUNC_CALL, 0, imm(id)?));
    let jump = |code: u8, reg: u8, from: usize, to: usize, v: i32| {
        Some(insn(code, reg, 0, i16::try_from(to as i64 - from as i64 - 1).ok()?, v))
    };
    let mut p = vec![
        insn(LDX_DW, 2, 1, 8, 0),
        insn(JEQ_IMM, 2, 0, 0, 0), // to out, set below
        insn(LD_IMM64, 9, PSEUDO_MAP_VALUE, 0, map),
        insn(0, 0, 0, 0, 0),
        insn(LDX_W, 8, 9, FIRST, 0),
    ];
    p.extend(iter_arg);
    p.extend([insn(MOV_IMM, 2, 0, 0, 0), insn(MOV_IMM, 3, 0, 0, ALL_THREADS), kfunc(k.new)?]);
    p.push(insn(STX_W, 9, 0, FAILED as i16, 0));
    let top = p.len();
    p.extend(iter_arg);
    p.push(kfunc(k.next)?);
    let to_done = p.len();
    p.push(insn(JEQ_IMM, 0, 0, 0, 0)); // to done, set below
    p.push(insn(MOV_REG, 7, 0, 0, 0));
    p.push(insn(LDX_W, 2, 7, off(o.pid)?, 0));
    p.push(jump(JEQ_IMM, 2, p.len(), top, 0)?);
    let to_full = p.len();
    p.push(insn(JGE_IMM, 8, 0, 0, imm(capacity)?)); // to full, set below
    p.extend([insn(MOV_REG, 3, 9, 0, 0), insn(MOV_REG, 4, 8, 0, 0), insn(LSH_IMM, 4, 0, 0, 5)]);
    p.push(insn(ADD_REG, 3, 4, 0, 0));
    p.extend(copy_counters(o, 3, HEADER as i16)?);
    p.push(insn(ADD_IMM, 8, 0, 0, 1));
    p.push(jump(JA, 0, p.len(), top, 0)?);
    let full = p.len();
    p.push(insn(ST_W, 9, 0, FAILED as i16, FULL));
    let done = p.len();
    p.extend(iter_arg);
    p.push(kfunc(k.destroy)?);
    p.push(insn(STX_DW, 9, 8, WRITTEN as i16, 0));
    let out = p.len();
    p.extend([insn(MOV_IMM, 0, 0, 0, 0), insn(EXIT, 0, 0, 0, 0)]);
    p[1] = jump(JEQ_IMM, 2, 1, out, 0)?;
    p[to_done] = jump(JEQ_IMM, 0, to_done, done, 0)?;
    p[to_full] = jump(JGE_IMM, 8, to_full, full, imm(capacity)?)?;
    const _: () = assert!(COUNTERS_RECORD == 1 << 5);
    Some(p)
}

#[cfg(test)]
mod tests {
    use super::*;
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
}
