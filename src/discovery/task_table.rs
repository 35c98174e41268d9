//! Every task on the host in one read: BPF programs (`task_programs`,
//! built from the kernel's BTF) write, per task, its thread id, its
//! process id, the three counters `schedstat` shows (time on CPU, time
//! waiting, times run) and, when asked, the ten namespaces its /proc `ns`
//! links name. A refresh checks its stamps (`Stamp`) against one read of
//! counters instead of one pread per task; a pass of many processes takes
//! their links (and their threads') from one read with links instead of
//! ten readlinks per task.
//!
//! Counters come from a program that walks the task list itself (the
//! kernel's open-coded task iterator) into a map shared with us; where
//! the kernel lacks it, or the map is full, from the `iter/task` program
//! that the kernel runs once per task (it finds each task by its number:
//! most of what that read costs). The counters are read before the links,
//! task by task, so a stamp made from a record is taken before what it
//! vouches for. Where no program can be loaded (no BTF, BPF not allowed,
//! not the initial pid namespace), `now` is None and the /proc files are
//! read as before; where the links disagree with /proc for our own task,
//! only the counters are used.

use super::btf::Btf;
use super::stamp::Stamp;
use super::task_programs::{self, program, walk_program, Offsets, TaskWalk};
use crate::locks::Locked;
use crate::model::{Pid, ProcessLinks, LINKS};
use crate::sys;
use std::ffi::CStr;
use std::io::Read;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
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
pub(super) const COUNTERS_RECORD: usize = 32;
pub(super) const RECORD: usize = COUNTERS_RECORD + 4 * LINKS;

/// The counters written for a kernel thread, which no task's can be: it
/// never changes its namespaces and holds no descriptors, so its stamp
/// holds for as long as that number names a kernel thread (a refresh
/// re-read every kernel thread that had run, each time).
pub const KERNEL_THREAD: [u64; 3] = [u64::MAX; 3];

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
    pub(super) fn len(self) -> usize {
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
/// them; and, where the kernel has the open-coded task iterator, the
/// program that walks the tasks itself (what a read of counters uses),
/// loaded at the first such read (a one-shot `nsfuse scan` makes none).
struct Loaded {
    counters: Program,
    with_links: Program,
    links_trusted: bool,
    recipe: Option<WalkRecipe>,
    walk: OnceLock<Option<Mutex<Walk>>>,
}

/// What a walking program is built from (kept to build a bigger one).
#[derive(Clone, Copy)]
struct WalkRecipe {
    offsets: Offsets,
    kfuncs: TaskWalk,
    attach: u32,
}

/// The walking program (`task_programs::walk_program`), linked to our
/// main thread so that a read runs it once, and the map it writes,
/// mapped here.
struct Walk {
    capacity: u32,
    shared: sys::SharedMap,
    link: OwnedFd,
    _prog: OwnedFd,
    _map: OwnedFd,
}

/// Why a walk gave no table.
#[derive(Debug, PartialEq, Eq)]
enum WalkFailed {
    /// More tasks than the map holds.
    Full,
    /// What the kernel said (an errno).
    Kernel(i32),
}

/// The most tasks a map is made for (pid_max's ceiling).
const MOST_TASKS: u32 = 1 << 22;

impl Walk {
    fn load(recipe: WalkRecipe, capacity: u32) -> Result<Walk, String> {
        let capacity = capacity.clamp(1, MOST_TASKS);
        let size = task_programs::HEADER + capacity as usize * COUNTERS_RECORD;
        let map = sys::bpf_create_shared_array(size as u32, c"nsfuse_tasks")
            .map_err(|e| format!("making the map: {e}"))?;
        let shared = sys::SharedMap::new(map.as_fd(), size).map_err(|e| format!("mapping the map: {e}"))?;
        let insns = walk_program(&recipe.offsets, &recipe.kfuncs, map.as_raw_fd(), capacity)
            .ok_or("task_struct offsets out of range")?;
        let prog = sys::bpf_load_iterator(&insns, recipe.attach, c"nsfuse_walk")
            .map_err(|e| format!("loading: {e}"))?;
        let link =
            sys::bpf_link_iterator(prog.as_fd(), Some(sys::getpid())).map_err(|e| format!("linking: {e}"))?;
        Ok(Walk { capacity, shared, link, _prog: prog, _map: map })
    }

    /// Run it once: every task's counters.
    fn read(&mut self) -> Result<TaskTable, WalkFailed> {
        self.shared.put(task_programs::WRITTEN, &0u64.to_le_bytes());
        self.shared.put(task_programs::FAILED, &0i32.to_le_bytes());
        let kernel = |e: std::io::Error| WalkFailed::Kernel(e.raw_os_error().unwrap_or(libc::EIO));
        let iter = sys::bpf_open_iterator(self.link.as_fd()).map_err(kernel)?;
        // The program writes nothing to the file: a read runs it.
        let (mut file, mut nothing) = (std::fs::File::from(iter), [0u8; 16]);
        while file.read(&mut nothing).map_err(kernel)? > 0 {}
        let bytes = self.shared.bytes();
        let half = |at: usize| i32::from_le_bytes(bytes[at..at + 4].try_into().unwrap_or_default());
        let at = task_programs::WRITTEN;
        let written = u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap_or_default());
        match half(task_programs::FAILED) {
            0 => {}
            task_programs::FULL => return Err(WalkFailed::Full),
            e => return Err(WalkFailed::Kernel(-e)),
        }
        // At least our own thread is there: none written means it did
        // not run (our main thread gone).
        if written == 0 || written > u64::from(self.capacity) {
            return Err(WalkFailed::Kernel(libc::ESRCH));
        }
        let end = task_programs::HEADER + written as usize * COUNTERS_RECORD;
        Ok(TaskTable::parse(&bytes[task_programs::HEADER..end], Records::Counters, false))
    }
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
    let kfuncs = TaskWalk::from_btf(&btf);
    drop(data);
    let load_one = |records: Records, name: &CStr| -> Result<Program, String> {
        let insns = program(&offsets, records).ok_or("task_struct offsets out of range")?;
        let prog = sys::bpf_load_iterator(&insns, func, name).map_err(|e| format!("loading: {e}"))?;
        let link = sys::bpf_link_iterator(prog.as_fd(), None).map_err(|e| format!("linking: {e}"))?;
        Ok(Program { _prog: prog, link, records, bytes: Mutex::default() })
    };
    let mut loaded = Loaded {
        counters: load_one(Records::Counters, c"nsfuse_tasks")?,
        with_links: load_one(Records::WithLinks, c"nsfuse_task_ns")?,
        links_trusted: false,
        recipe: kfuncs.map(|kfuncs| WalkRecipe { offsets, kfuncs, attach: func }),
        walk: OnceLock::new(),
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
    if let Some(table) = (records == Records::Counters).then(|| walk(loaded)).flatten() {
        TASKS_SEEN.store(table.len(), Ordering::Relaxed);
        return Ok(table);
    }
    read_each(loaded, records)
}

/// A read of the iterator that runs its program once per task.
fn read_each(loaded: &Loaded, records: Records) -> std::io::Result<TaskTable> {
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

/// Every task's counters by the walking program, if there is one and it
/// can: None sends the caller to the iterator read task by task (where
/// the tasks outgrew the map, a map for twice as many is made for the
/// next read).
fn walk(loaded: &Loaded) -> Option<TaskTable> {
    let load = |room: u32| {
        loaded.recipe.ok_or("no open-coded task iterator".to_string()).and_then(|r| Walk::load(r, room))
    };
    let walk = loaded.walk.get_or_init(|| {
        // Room for twice the tasks there are now (grown when they outgrow it).
        let room = (2 * TASKS_SEEN.load(Ordering::Relaxed) as u32).max(1024);
        load(room)
            .map_err(|why| log::info!("task table: counters read task by task ({why})"))
            .ok()
            .map(Mutex::new)
    });
    let mut walk = walk.as_ref()?.locked();
    match walk.read() {
        Ok(table) => Some(table),
        Err(WalkFailed::Full) => {
            let bigger = walk.capacity.saturating_mul(2);
            match load(bigger) {
                Ok(w) => *walk = w,
                Err(why) => log::warn!("task table: no room for {bigger} tasks: {why}"),
            }
            None
        }
        Err(WalkFailed::Kernel(e)) => {
            log::debug!("task table: walk: {}", std::io::Error::from_raw_os_error(e));
            None
        }
    }
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
    read(loaded()?, records).map_err(|e| log::warn!("task table: {e}")).ok()
}

fn loaded() -> Option<&'static Loaded> {
    LOADED
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
        .as_ref()
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
        for slot in crate::model::NsType::ALL.map(|t| crate::model::Link::Own(t).index()) {
            assert_ne!(o.0[slot], i.0[slot], "slot {slot}");
            assert_ne!(i.0[slot], 0, "slot {slot}");
        }
    }

    #[test]
    fn the_walk_lists_every_task_the_iterator_lists_with_the_same_counters() {
        if sys::geteuid() != 0 {
            return;
        }
        let loaded = loaded().unwrap_or_else(|| panic!("this host loads BPF iterators: {:?}", load().err()));
        let mut sleepers: Vec<_> =
            (0..3).map(|_| std::process::Command::new("sleep").arg("10").spawn().unwrap()).collect();
        let pids: Vec<Pid> = sleepers.iter().map(|c| Pid(c.id() as i32)).collect();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while !pids
            .iter()
            .all(|p| std::fs::read_to_string(format!("/proc/{p}/comm")).is_ok_and(|c| c == "sleep\n"))
        {
            assert!(std::time::Instant::now() < deadline, "the sleepers did not start");
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
        let each = read_each(loaded, Records::Counters).unwrap();
        let walked = walk(loaded).expect("this host walks tasks with the open-coded iterator");
        for s in &mut sleepers {
            let _ = s.kill();
            let _ = s.wait();
        }
        for &p in &pids {
            let (w, e) = (walked.get(p, p), each.get(p, p));
            assert!(w.is_some(), "sleeper {p} walked");
            assert_eq!(w, e, "sleeper {p}");
        }
        assert_eq!(walked.get(Pid(2), Pid(2)).map(|t| t.counters), Some(KERNEL_THREAD));
        assert!(walked.get(sys::getpid(), sys::getpid()).is_some(), "our main thread");
        // Every task read one by one before the walk and still there after
        // it was there during it.
        for t in &each.tasks {
            if walked.get(Pid(t.tgid), Pid(t.tid)).is_none() {
                let path = format!("/proc/{}/task/{}", t.tgid, t.tid);
                assert!(std::fs::metadata(&path).is_err(), "{path} is there but was not walked");
            }
        }
        // No room: nothing read, said so.
        let recipe = loaded.recipe.unwrap();
        assert_eq!(Walk::load(recipe, 1).unwrap().read().err(), Some(WalkFailed::Full));
        let mut roomy = Walk::load(recipe, 2 * walked.len() as u32).unwrap();
        assert!(roomy.read().unwrap().len() > 1);
    }
}
