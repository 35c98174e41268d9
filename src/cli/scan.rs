//! `nsfuse scan`: one discovery pass printed as an lsns-like table (one
//! namespace per line, whitespace-separated columns, COMMAND last so `awk`
//! and `column` work) or as JSON for `jq`.

use crate::discovery::{self, details, netlink, nsfile, ScanOptions};
use crate::model::{Inode, Namespace, NsType, Pid, Snapshot};
use crate::owners::index::{current, is_orphan};
use crate::owners::Owner;
use crate::{json, render};
use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::Write;
use std::os::fd::AsFd;

/// How `nsfuse scan` prints.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Table,
    Json,
    Prometheus,
}

/// Run a scan and print it; returns the process exit code.
pub fn run(format: Format, ns_type: Option<NsType>, orphans_only: bool) -> i32 {
    // What it prints of owners needs only the cgroups of processes outside
    // the host's namespaces.
    let opts = ScanOptions { cgroups: discovery::Cgroups::ForOwners, ..Default::default() };
    let snap = match discovery::scan(&opts) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("nsfuse scan: {e}");
            return 1;
        }
    };
    if snap.partial {
        eprintln!(
            "nsfuse scan: not running as root: the view is partial (run with sudo for every namespace)"
        );
    }
    let started = std::time::Instant::now();
    let selected: Vec<&Namespace> = snap
        .namespaces
        .values()
        .map(|n| &**n)
        .filter(|n| ns_type.is_none_or(|t| n.ns_type == t))
        .filter(|n| !orphans_only || is_orphan(n))
        .collect();
    let owners = current(&snap, &crate::model::PinDirs::default());
    let out = match format {
        Format::Json => to_json(&snap, &selected, &owners),
        Format::Table => to_table(&snap, &selected, &owners),
        Format::Prometheus => {
            let counters = crate::metrics::Counters { full_refreshes: 1, ..Default::default() };
            crate::metrics::render(&snap, &crate::model::PinDirs::default(), &owners, &counters)
        }
    };
    log::debug!("scan: output of {} namespaces made in {:?}", selected.len(), started.elapsed());
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(out.as_bytes()).and_then(|_| stdout.flush()) {
        Ok(()) => 0,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => 0,
        Err(e) => {
            eprintln!("nsfuse scan: cannot write output: {e}");
            1
        }
    }
}

fn to_json(snap: &Snapshot, selected: &[&Namespace], owners: &HashMap<Inode, Vec<Owner>>) -> String {
    // Each PID is in up to ten namespaces: read its comm once.
    let pids: Vec<Pid> = snap.processes.keys().copied().collect();
    let comms: HashMap<Pid, String> = pids
        .iter()
        .zip(crate::parallel::map(&pids, |&p| crate::discovery::comm(p)))
        .filter_map(|(p, c)| Some((*p, c?)))
        .collect();
    let comm_of = |p: Pid| comms.get(&p).cloned();
    let netnsids = lsns_netnsids(snap, selected);
    let mut by_pid = ProcessColumns::new();
    let list: Vec<_> = selected
        .iter()
        .map(|ns| {
            let rest = json::namespace(ns, &comm_of, json::owners(owners.get(&ns.inode), None));
            let members: Vec<Pid> = details::members(snap, ns).collect();
            let pid = members.first().copied();
            let (user, command) = by_pid.of(pid);
            let netnsid = netnsids.get(&ns.inode).cloned();
            let cols = json::LsnsColumns {
                nprocs: members.len(),
                pid,
                user,
                command,
                netnsid,
                nsfs: json::nsfs_column(snap, ns),
            };
            cols.entry(ns, rest)
        })
        .collect();
    json::scan_document(&list)
}

/// lsns's NETNSID of each network namespace: `"N"` or `"unassigned"`, as
/// our namespace knows it, read through its lowest member's
/// `/proc/PID/ns/net` (as lsns does) or its path; one netlink socket per
/// worker, bounded (an open waits on a process stuck in execve).
fn lsns_netnsids(snap: &Snapshot, selected: &[&Namespace]) -> HashMap<Inode, String> {
    let items: Vec<(String, (Inode, std::path::PathBuf))> = selected
        .iter()
        .filter(|ns| ns.ns_type == NsType::Net)
        .filter_map(|ns| {
            let path = match details::members(snap, ns).next() {
                Some(pid) => std::path::PathBuf::from(format!("/proc/{pid}/ns/net")),
                None => ns.path.clone()?,
            };
            Some((discovery::stuck_key(&path), (ns.inode, path)))
        })
        .collect();
    let found = crate::bounded::map(
        "reading netnsids",
        items,
        crate::parallel::threads(),
        crate::bounded::STALL,
        || crate::sys::netlink_route_socket().ok(),
        |sock, (inode, path)| {
            let fd = nsfile::open(&path, inode)?;
            let id = netlink::netnsid_on(sock.as_ref()?.as_fd(), fd.as_fd()).ok()?;
            Some((inode, id.map_or_else(|| "unassigned".to_owned(), |i| i.to_string())))
        },
    );
    found.into_iter().flatten().flatten().collect()
}

/// The table: NS TYPE NPROCS PID USER HOLDERS PATH CONTAINER COMMAND.
pub fn to_table(snap: &Snapshot, selected: &[&Namespace], owners: &HashMap<Inode, Vec<Owner>>) -> String {
    let mut rows = vec![[
        "NS".to_owned(),
        "TYPE".into(),
        "NPROCS".into(),
        "PID".into(),
        "USER".into(),
        "HOLDERS".into(),
        "PATH".into(),
        "CONTAINER".into(),
        "COMMAND".into(),
    ]];
    let mut by_pid = ProcessColumns::new();
    for ns in selected {
        // NPROCS and PID as lsns counts them: processes whose own link it is.
        let members: Vec<Pid> = details::members(snap, ns).collect();
        let pid = members.first().copied();
        let (user, command) = by_pid.of(pid);
        // Escaped: a newline in a command line cannot add a row.
        let command = command.map(|c| render::escape(&c));
        let path = ns
            .pins
            .iter()
            .find(|p| p.mntns == snap.own_mntns)
            .or(ns.pins.first())
            .map(|p| render::escape_path(&p.path));
        let dash = || "-".to_owned();
        rows.push([
            ns.inode.to_string(),
            ns.ns_type.to_string(),
            members.len().to_string(),
            pid.map_or_else(dash, |p| p.to_string()),
            user.unwrap_or_else(dash),
            ns.holders.len().to_string(),
            path.map_or_else(dash, |p| p.replace(' ', "\\x20")),
            owners.get(&ns.inode).map_or_else(dash, |o| container_cell(o)),
            command.unwrap_or_else(dash),
        ]);
    }
    let mut widths = [0usize; 9];
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r.iter()) {
            *w = (*w).max(c.len());
        }
    }
    let mut out = String::new();
    for r in &rows {
        for (i, c) in r.iter().enumerate() {
            if i == 8 {
                out.push_str(c);
            } else if i == 2 || i == 3 || i == 5 {
                let _ = write!(out, "{c:>w$} ", w = widths[i]);
            } else {
                let _ = write!(out, "{c:<w$} ", w = widths[i]);
            }
        }
        out.push('\n');
    }
    out
}

/// The CONTAINER cell: `KIND:ID` (IDs of 64 hex digits cut to 12, as
/// Docker shows them), several joined by commas, no spaces.
fn container_cell(owners: &[Owner]) -> String {
    owners
        .iter()
        .map(|o| {
            let id: String = if o.id.len() == 64 { o.id[..12].to_owned() } else { o.id.clone() };
            format!("{}:{}", o.kind.name(), render::escape(&id).replace(' ', "\\x20"))
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// lsns's USER and COMMAND of the processes a scan names, each read once
/// (namespaces of one process share its lowest PID).
struct ProcessColumns {
    users: HashMap<u32, String>,
    seen: HashMap<Pid, (Option<String>, Option<String>)>,
}

impl ProcessColumns {
    fn new() -> ProcessColumns {
        ProcessColumns { users: passwd_names(), seen: HashMap::new() }
    }

    /// The user and command line of `pid`, if there is one.
    fn of(&mut self, pid: Option<Pid>) -> (Option<String>, Option<String>) {
        let Some(pid) = pid else { return (None, None) };
        let users = &self.users;
        self.seen.entry(pid).or_insert_with(|| (process_user(pid, users), command_line(pid))).clone()
    }
}

/// The name (or uid) of a process's owner.
fn process_user(pid: Pid, users: &HashMap<u32, String>) -> Option<String> {
    let m = std::fs::metadata(format!("/proc/{pid}")).ok()?;
    let uid = std::os::unix::fs::MetadataExt::uid(&m);
    Some(users.get(&uid).cloned().unwrap_or_else(|| uid.to_string()))
}

/// A process's command line as lsns shows it: NULs as spaces, its comm
/// if it has none.
fn command_line(pid: Pid) -> Option<String> {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let s: String = String::from_utf8_lossy(&raw).trim_end_matches('\0').replace('\0', " ");
    if s.is_empty() {
        crate::discovery::comm(pid)
    } else {
        Some(s)
    }
}

fn passwd_names() -> HashMap<u32, String> {
    std::fs::read_to_string("/etc/passwd").map(|t| parse_passwd(&t)).unwrap_or_default()
}

/// uid -> name from /etc/passwd text.
pub fn parse_passwd(text: &str) -> HashMap<u32, String> {
    text.lines()
        .filter_map(|l| {
            let mut f = l.split(':');
            let name = f.next()?;
            let uid = f.nth(1)?.parse().ok()?;
            Some((uid, name.to_owned()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwd() {
        let m =
            parse_passwd("root:x:0:0:root:/root:/bin/bash\nnobody:x:65534:65534::/:/usr/sbin/nologin\nbad\n");
        assert_eq!(m.get(&0).map(String::as_str), Some("root"));
        assert_eq!(m.get(&65534).map(String::as_str), Some("nobody"));
        assert_eq!(m.len(), 2);
    }
}
