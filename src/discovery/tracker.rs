//! The refresh policy: a `Tracker` keeps what the last pass read (process
//! records with their stamps, mount tables, relations) and makes each
//! refresh re-read only what can have changed. A full pass, which trusts
//! nothing remembered, runs first, then at least every `FULL_EVERY`, and
//! whenever asked; it is the reference the incremental passes must match.

use super::kernel::{Host, Kernel};
use super::pass::{self, Memory, Model};
use super::{Result, ScanOptions};
use crate::model::{Pid, Snapshot};
use crate::sys;
use std::time::{Duration, Instant};

/// The longest a tracker goes without a full pass.
pub const FULL_EVERY: Duration = Duration::from_secs(60);

/// Open files a tracker asks for: enough to stamp every task of a large host.
const WANTED_FILES: u64 = 1 << 20;

/// Open files kept free for everything but stamps (FUSE, scans, pins).
const FD_RESERVE: u64 = 1024;

/// Discovery with a memory, for a daemon that refreshes often.
pub struct Tracker<K: Kernel = Host> {
    kernel: K,
    opts: ScanOptions,
    memory: Memory,
    last_full: Option<Instant>,
    /// How many stamp files (open /proc files) the memory may hold.
    stamp_budget: usize,
    last_read: Vec<Pid>,
    /// Whether the last pass was a full one.
    last_full_pass: bool,
    /// How the last pass came to its model.
    last_model: Model,
}

impl Tracker<Host> {
    /// A tracker with nothing remembered. Raises this process's limit on
    /// open files (as far as it may): each tracked task keeps one open,
    /// while the limit allows (the rest are stamped by path).
    pub fn new(opts: ScanOptions) -> Tracker {
        let limit = sys::raise_nofile_limit(WANTED_FILES).unwrap_or(FD_RESERVE);
        Tracker::with_stamp_files(opts, usize::try_from(limit.saturating_sub(FD_RESERVE)).unwrap_or(0))
    }

    /// A tracker whose stamps keep at most `files` files open, as on a
    /// host whose open-file limit is low.
    pub fn with_stamp_files(opts: ScanOptions, files: usize) -> Tracker {
        Tracker::on(Host::default(), opts, files)
    }
}

impl<K: Kernel> Tracker<K> {
    /// A tracker over `kernel` whose stamps keep at most `files` files open.
    pub fn on(kernel: K, opts: ScanOptions, files: usize) -> Tracker<K> {
        Tracker {
            kernel,
            opts,
            memory: Memory::default(),
            last_full: None,
            stamp_budget: files,
            last_read: Vec::new(),
            last_full_pass: false,
            last_model: Model::Built,
        }
    }

    /// A refresh: incremental, unless a full pass is due.
    pub fn refresh(&mut self) -> Result<Snapshot> {
        match self.last_full {
            Some(t) if t.elapsed() < FULL_EVERY => self.pass(false),
            _ => self.full(),
        }
    }

    /// A full pass: everything read again, nothing remembered trusted.
    pub fn full(&mut self) -> Result<Snapshot> {
        let started = Instant::now();
        let snap = self.pass(true)?;
        log::debug!("full pass: {} namespaces in {:?}", snap.namespaces.len(), started.elapsed());
        self.last_full = Some(started);
        Ok(snap)
    }

    /// Whether anything is remembered (a full pass ran since `forget`).
    pub fn remembers(&self) -> bool {
        self.last_full.is_some()
    }

    /// Drop everything remembered (and the files it holds open).
    pub fn forget(&mut self) {
        self.memory = Memory::default();
        self.last_full = None;
    }

    fn pass(&mut self, full: bool) -> Result<Snapshot> {
        let mut prev = std::mem::take(&mut self.memory);
        if full {
            // Close the old stamps first: they would count twice. Keep only
            // the last namespaces, which are shared where they are equal.
            prev = Memory { namespaces: std::mem::take(&mut prev.namespaces), ..Memory::default() };
        }
        // Stamp files: no more than the budget, nor than the process has to
        // spare now (another tracker in it may hold some: tests run several).
        let held = prev.stamp_files();
        let spare = usize::try_from(sys::spare_files(FD_RESERVE).unwrap_or(0)).unwrap_or(usize::MAX);
        let budget = self.stamp_budget.min(held.saturating_add(spare));
        let out = pass::run(&self.kernel, &self.opts, prev, Some(budget))?;
        self.last_full_pass = full;
        self.memory = out.memory;
        self.last_read = out.read;
        self.last_model = out.model;
        Ok(out.snapshot)
    }

    /// Whether the last pass was a full one (else incremental).
    pub fn last_pass_was_full(&self) -> bool {
        self.last_full_pass
    }

    /// Whether the last pass proved nothing changed and served the snapshot
    /// before it again (no process made or gone, every one holding what it
    /// held, every mount table the same).
    pub fn last_pass_kept_the_last(&self) -> bool {
        self.last_model == Model::Kept
    }

    /// How the last pass came to its model: kept, patched or built.
    pub fn last_model(&self) -> Model {
        self.last_model
    }

    /// The processes the last pass read, in /proc order (the rest it
    /// remembered).
    pub fn last_read(&self) -> &[Pid] {
        &self.last_read
    }
}

#[cfg(test)]
#[path = "tracker_listing_tests.rs"]
mod listing_tests;
#[cfg(test)]
#[path = "tracker_tests.rs"]
mod tests;
