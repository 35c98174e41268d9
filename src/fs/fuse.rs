//! The fuser adapter: each `Filesystem` method calls the plain `NsFs` API
//! and translates its answer into a FUSE reply. No logic lives here.

use super::inode::Ino;
use super::listing::Page;
use super::{Attr, Caller, Errno, Kind, NsFs};
use fuser::{
    FileAttr, FileHandle, FileType, FopenFlags, Generation, INodeNo, InitFlags, OpenAccMode, OpenFlags,
    ReplyAttr, ReplyCreate, ReplyData, ReplyDirectory, ReplyDirectoryPlus, ReplyEmpty, ReplyEntry, ReplyOpen,
    ReplyWrite, Request,
};
use std::ffi::OsStr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// The FUSE face of an `NsFs`.
pub struct FuseAdapter(pub Arc<NsFs>);

fn caller(req: &Request) -> Caller {
    Caller { uid: req.uid(), gid: req.gid(), pid: req.pid() }
}

fn errno(e: Errno) -> fuser::Errno {
    fuser::Errno::from_i32(e.0)
}

/// The reply to a request `op` on inode `ino` that failed, said once in
/// the debug log (a lookup of a missing name is common: not louder).
fn refused(op: &str, ino: u64, e: Errno) -> fuser::Errno {
    log::debug!("{op} on inode {ino:#x}: {}", std::io::Error::from_raw_os_error(e.0));
    errno(e)
}

fn file_type(k: Kind) -> FileType {
    match k {
        Kind::Dir => FileType::Directory,
        Kind::File => FileType::RegularFile,
        Kind::Symlink => FileType::Symlink,
    }
}

fn file_attr(a: &Attr) -> FileAttr {
    FileAttr {
        ino: INodeNo(a.ino.0),
        size: a.size,
        blocks: a.size.div_ceil(512),
        atime: a.mtime,
        mtime: a.mtime,
        ctime: a.mtime,
        crtime: a.mtime,
        kind: file_type(a.kind),
        perm: a.perm,
        nlink: if a.kind == Kind::Dir { 2 } else { 1 },
        uid: a.uid,
        gid: a.gid,
        rdev: 0,
        blksize: 4096,
        flags: 0,
    }
}

/// What a READDIRPLUS entry sent without a node id carries: its inode
/// number (the dirent's d_ino) and type; the kernel keeps nothing else.
fn bare_attr(ino: Ino, kind: Kind) -> FileAttr {
    file_attr(&Attr { ino, kind, size: 0, perm: 0, uid: 0, gid: 0, mtime: SystemTime::UNIX_EPOCH })
}

impl FuseAdapter {
    /// The page of a listing at `offset`: of a directory the kernel opened
    /// without asking, else of handle `fh`.
    fn page(&self, req: &Request, ino: INodeNo, fh: FileHandle, offset: u64) -> Result<Page, Errno> {
        if fh.0 == 0 && self.0.open_dirs_unasked() {
            self.0.readdir_unopened(caller(req), Ino(ino.0), offset)
        } else {
            self.0.readdir(fh.0, offset)
        }
    }
}

fn name(n: &OsStr) -> Option<&str> {
    n.to_str()
}

impl fuser::Filesystem for FuseAdapter {
    fn init(&mut self, _req: &Request, config: &mut fuser::KernelConfig) -> std::io::Result<()> {
        // Directories opened without asking need the kernel to check a
        // cached listing's mtime at its start (auto_inval_data).
        let can = config.capabilities().contains(InitFlags::FUSE_NO_OPENDIR_SUPPORT);
        if can && self.0.kernel_caches() && config.add_capabilities(InitFlags::FUSE_AUTO_INVAL_DATA).is_ok() {
            self.0.set_open_dirs_unasked();
        }
        // Listings that carry their subdirectories' attributes (always,
        // not only a listing's first page): a walk makes no LOOKUP per
        // directory. Only where the kernel may cache what it is given.
        if self.0.kernel_caches() {
            let _ = config.add_capabilities(InitFlags::FUSE_DO_READDIRPLUS);
        }
        Ok(())
    }

    fn lookup(&self, req: &Request, parent: INodeNo, n: &OsStr, reply: ReplyEntry) {
        let Some(n) = name(n) else { return reply.error(fuser::Errno::ENOENT) };
        match self.0.lookup(caller(req), Ino(parent.0), n) {
            Ok(a) => {
                let (attr_ttl, entry_ttl) = self.0.ttls(&a);
                reply.entry_with_ttls(&attr_ttl, &entry_ttl, &file_attr(&a), Generation(0))
            }
            Err(e) => reply.error(refused("lookup", parent.0, e)),
        }
    }

    fn getattr(&self, req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        match self.0.getattr(caller(req), Ino(ino.0)) {
            Ok(a) => reply.attr(&self.0.ttls(&a).0, &file_attr(&a)),
            Err(e) => reply.error(refused("getattr", ino.0, e)),
        }
    }

    fn setattr(
        &self,
        req: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        _atime: Option<fuser::TimeOrNow>,
        _mtime: Option<fuser::TimeOrNow>,
        _ctime: Option<SystemTime>,
        _fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        let other = mode.is_some() || uid.is_some() || gid.is_some();
        match self.0.setattr(caller(req), Ino(ino.0), size, other) {
            Ok(a) => reply.attr(&self.0.ttls(&a).0, &file_attr(&a)),
            Err(e) => reply.error(refused("setattr", ino.0, e)),
        }
    }

    fn readlink(&self, req: &Request, ino: INodeNo, reply: ReplyData) {
        match self.0.readlink(caller(req), Ino(ino.0)) {
            Ok(t) => reply.data(t.as_bytes()),
            Err(e) => reply.error(refused("readlink", ino.0, e)),
        }
    }

    fn open(&self, req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        let write = !matches!(flags.acc_mode(), OpenAccMode::O_RDONLY) || flags.0 & libc::O_TRUNC != 0;
        match self.0.open(caller(req), Ino(ino.0), write) {
            // Direct I/O: every read comes here and returns the handle's bytes.
            // No flush: close(2) must never wait on nsfuse (a process closing
            // our files in execve holds locks a scan of /proc may need).
            Ok(fh) => reply.opened(FileHandle(fh), FopenFlags::FOPEN_DIRECT_IO | FopenFlags::FOPEN_NOFLUSH),
            Err(e) => reply.error(refused("open", ino.0, e)),
        }
    }

    fn read(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<fuser::LockOwner>,
        reply: ReplyData,
    ) {
        match self.0.read(fh.0, offset, size) {
            Ok(d) => reply.data(&d),
            Err(e) => reply.error(refused("read", ino.0, e)),
        }
    }

    fn write(
        &self,
        req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        _offset: u64,
        data: &[u8],
        _write_flags: fuser::WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<fuser::LockOwner>,
        reply: ReplyWrite,
    ) {
        match self.0.write(caller(req), Ino(ino.0), fh.0, data) {
            Ok(n) => reply.written(n as u32),
            Err(e) => reply.error(refused("write", ino.0, e)),
        }
    }

    fn release(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<fuser::LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        self.0.release(fh.0);
        reply.ok();
    }

    fn poll(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        ph: fuser::PollNotifier,
        _events: fuser::PollEvents,
        flags: fuser::PollFlags,
        reply: fuser::ReplyPoll,
    ) {
        // Ask to be woken first, then look: an event logged in between
        // still wakes the poller (a spare wake-up is harmless).
        if flags.contains(fuser::PollFlags::FUSE_POLL_SCHEDULE_NOTIFY) {
            self.0.wake_on_events(Box::new(move || {
                let _ = ph.notify();
            }));
        }
        match self.0.readable(fh.0) {
            Ok(true) => reply.poll(fuser::PollEvents::POLLIN | fuser::PollEvents::POLLRDNORM),
            Ok(false) => reply.poll(fuser::PollEvents::empty()),
            Err(e) => reply.error(refused("poll", ino.0, e)),
        }
    }

    fn flush(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _lo: fuser::LockOwner,
        reply: ReplyEmpty,
    ) {
        reply.ok();
    }

    fn opendir(&self, req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        if self.0.open_dirs_unasked() {
            // The kernel then opens directories itself, with their
            // listings cached (see `readdir`), and never asks again.
            return reply.error(fuser::Errno::ENOSYS);
        }
        match self.0.opendir(caller(req), Ino(ino.0)) {
            // The kernel may cache a listing, and keep it while it is the
            // one nsfuse would give again.
            Ok(d) => {
                let mut flags = FopenFlags::empty();
                if self.0.kernel_caches() {
                    flags |= FopenFlags::FOPEN_CACHE_DIR;
                }
                if d.unchanged {
                    flags |= FopenFlags::FOPEN_KEEP_CACHE;
                }
                reply.opened(FileHandle(d.fh), flags)
            }
            Err(e) => reply.error(refused("opendir", ino.0, e)),
        }
    }

    fn readdir(&self, req: &Request, ino: INodeNo, fh: FileHandle, offset: u64, mut reply: ReplyDirectory) {
        match self.page(req, ino, fh, offset) {
            Ok(page) => {
                for (i, e) in page.entries.iter().enumerate().skip(page.from) {
                    if reply.add(INodeNo(e.ino.0), page.offset_after(i), file_type(e.kind), &e.name) {
                        break;
                    }
                }
                reply.ok();
            }
            Err(e) => reply.error(refused("readdir", ino.0, e)),
        }
    }

    fn readdirplus(
        &self,
        req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectoryPlus,
    ) {
        match self.page(req, ino, fh, offset) {
            Ok(page) => {
                for (i, e, attr) in self.0.plus_entries(caller(req), Ino(ino.0), &page) {
                    // Node id 0: the kernel makes no inode for the entry.
                    let (node, ttl, attr) = match attr {
                        Some(a) => {
                            let (attr_ttl, entry_ttl) = self.0.ttls(&a);
                            (e.ino.0, attr_ttl.min(entry_ttl), file_attr(&a))
                        }
                        None => (0, Duration::ZERO, bare_attr(e.ino, e.kind)),
                    };
                    if reply.add(INodeNo(node), page.offset_after(i), &e.name, &ttl, &attr, Generation(0)) {
                        break;
                    }
                }
                reply.ok();
            }
            Err(e) => reply.error(refused("readdirplus", ino.0, e)),
        }
    }

    fn releasedir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        reply: ReplyEmpty,
    ) {
        self.0.releasedir(fh.0);
        reply.ok();
    }

    fn mknod(&self, _r: &Request, _p: INodeNo, _n: &OsStr, _m: u32, _u: u32, _d: u32, reply: ReplyEntry) {
        reply.error(errno(self.0.refuse_change()));
    }

    fn mkdir(&self, _r: &Request, _p: INodeNo, _n: &OsStr, _m: u32, _u: u32, reply: ReplyEntry) {
        reply.error(errno(self.0.refuse_change()));
    }

    fn unlink(&self, _r: &Request, _p: INodeNo, _n: &OsStr, reply: ReplyEmpty) {
        reply.error(errno(self.0.refuse_change()));
    }

    fn rmdir(&self, _r: &Request, _p: INodeNo, _n: &OsStr, reply: ReplyEmpty) {
        reply.error(errno(self.0.refuse_change()));
    }

    fn symlink(&self, _r: &Request, _p: INodeNo, _n: &OsStr, _t: &Path, reply: ReplyEntry) {
        reply.error(errno(self.0.refuse_change()));
    }

    fn rename(
        &self,
        _r: &Request,
        _p: INodeNo,
        _n: &OsStr,
        _np: INodeNo,
        _nn: &OsStr,
        _f: fuser::RenameFlags,
        reply: ReplyEmpty,
    ) {
        reply.error(errno(self.0.refuse_change()));
    }

    fn link(&self, _r: &Request, _i: INodeNo, _np: INodeNo, _nn: &OsStr, reply: ReplyEntry) {
        reply.error(errno(self.0.refuse_change()));
    }

    fn create(&self, _r: &Request, _p: INodeNo, _n: &OsStr, _m: u32, _u: u32, _f: i32, reply: ReplyCreate) {
        reply.error(errno(self.0.refuse_change()));
    }
}
