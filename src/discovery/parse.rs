//! Pure parsers for what the kernel prints: nsfs link targets
//! (`net:[4026531840]`), socket links, and mountinfo lines. No I/O here, so
//! every rule is tested on literal strings.

use crate::model::{Inode, NsType, Pid};
use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::path::PathBuf;

/// `net:[4026531840]` -> (Net, 4026531840). Also accepts the link names
/// `pid_for_children` / `time_for_children` point to (`pid:[..]`, `time:[..]`).
pub fn ns_link(target: &[u8]) -> Option<(NsType, Inode)> {
    let colon = target.iter().position(|&b| b == b':')?;
    let ty = NsType::from_name(&target[..colon])?;
    let inode = bracketed_number(&target[colon + 1..])?;
    Some((ty, Inode(inode)))
}

/// `socket:[12345]` -> 12345.
pub fn socket_link(target: &[u8]) -> Option<u64> {
    bracketed_number(target.strip_prefix(b"socket:")?)
}

fn bracketed_number(s: &[u8]) -> Option<u64> {
    decimal(s.strip_prefix(b"[")?.strip_suffix(b"]")?)
}

/// A non-empty string of ASCII digits as a number (None on overflow).
/// Discovery parses a few hundred thousand of these per pass: no UTF-8
/// check, no `str::parse`.
pub fn decimal(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() || digits.len() > 20 {
        return None;
    }
    // Up to 19 digits cannot overflow a u64; only the 20th needs checking.
    let (head, last) = digits.split_at(digits.len().min(19));
    let mut n = 0u64;
    for &b in head {
        let d = b.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        n = n * 10 + u64::from(d);
    }
    match last {
        [] => Some(n),
        [b] if b.is_ascii_digit() => n.checked_mul(10)?.checked_add(u64::from(b - b'0')),
        _ => None,
    }
}

/// A name that is a number the one way nsfuse writes it: decimal digits,
/// no sign, spaces or leading zeros (so each namespace, PID or container
/// has exactly one name). The one parser of numbers in names and commands.
pub fn canonical_decimal(s: &str) -> Option<u64> {
    if s.len() > 1 && s.starts_with('0') {
        return None;
    }
    decimal(s.as_bytes())
}

/// The process a `/proc/PID/...` path goes through, if it is one.
pub fn proc_pid(path: &std::path::Path) -> Option<Pid> {
    pid_name(path.strip_prefix("/proc").ok()?.iter().next()?.as_encoded_bytes())
}

/// A decimal PID from a /proc directory entry name.
pub fn pid_name(name: &[u8]) -> Option<Pid> {
    small_number(name).map(Pid)
}

/// A non-negative decimal that fits an i32 (a task or descriptor number
/// in /proc).
pub fn small_number(name: &[u8]) -> Option<i32> {
    if name.len() > 10 {
        return None;
    }
    decimal(name).and_then(|n| i32::try_from(n).ok())
}

/// The last field of `/proc/loadavg` (`0.00 0.01 0.05 1/180 12345`): the
/// PID most recently handed out in the reader's pid namespace.
pub fn loadavg_last_pid(text: &[u8]) -> Option<Pid> {
    let field = text.split(|b| b.is_ascii_whitespace()).filter(|f| !f.is_empty()).nth(4)?;
    pid_name(field)
}

/// `/proc/PID/schedstat`: `RUN_NS WAIT_NS TIMESLICES\n`.
pub fn schedstat(text: &[u8]) -> Option<[u64; 3]> {
    let mut out = [0u64; 3];
    let mut fields = text.split(|b| b.is_ascii_whitespace()).filter(|f| !f.is_empty());
    for v in &mut out {
        *v = decimal(fields.next()?)?;
    }
    fields.next().is_none().then_some(out)
}

/// One nsfs mount from a mountinfo line: which namespace and where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NsfsMount {
    pub ns_type: NsType,
    pub inode: Inode,
    pub mount_point: PathBuf,
}

/// Parse one mountinfo line; `Some` only for nsfs mounts.
/// Format: `ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTS [OPTIONAL...] - FSTYPE SOURCE SUPER`.
pub fn mountinfo_nsfs(line: &[u8]) -> Option<NsfsMount> {
    let sep = find(line, b" - ")?;
    let (head, tail) = (&line[..sep], &line[sep + 3..]);
    let fstype = tail.split(|&b| b == b' ').next()?;
    if fstype != b"nsfs" {
        return None;
    }
    let mut fields = head.split(|&b| b == b' ');
    let root = fields.nth(3)?;
    let mount_point = fields.next()?;
    let (ns_type, inode) = ns_link(root)?;
    Some(NsfsMount {
        ns_type,
        inode,
        mount_point: PathBuf::from(OsString::from_vec(unescape_octal(mount_point))),
    })
}

/// Every nsfs mount in a whole mountinfo file.
pub fn mountinfo_nsfs_all(text: &[u8]) -> Vec<NsfsMount> {
    // Fast filter: most lines are not nsfs.
    if find(text, b" - nsfs ").is_none() {
        return Vec::new();
    }
    text.split(|&b| b == b'\n').filter_map(mountinfo_nsfs).collect()
}

/// Every nsfs mount of a mountinfo file read from `r` piece by piece: a
/// mount table of any size is never held whole (only one piece and one
/// line at a time).
pub fn mountinfo_nsfs_stream(mut r: impl std::io::Read) -> std::io::Result<Vec<NsfsMount>> {
    let mut out = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut carry: Vec<u8> = Vec::new();
    loop {
        let n = match r.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        let mut piece = &buf[..n];
        if !carry.is_empty() {
            let Some(nl) = piece.iter().position(|&b| b == b'\n') else {
                carry.extend_from_slice(piece);
                continue;
            };
            carry.extend_from_slice(&piece[..nl]);
            out.extend(mountinfo_nsfs(&carry));
            carry.clear();
            piece = &piece[nl + 1..];
        }
        let whole = piece.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        out.extend(mountinfo_nsfs_all(&piece[..whole]));
        carry.extend_from_slice(&piece[whole..]);
    }
    out.extend(mountinfo_nsfs(&carry));
    Ok(out)
}

/// The file system type of the topmost mount at `mount_point` in a
/// mountinfo file, if anything is mounted there.
pub fn mountinfo_fstype_at(text: &[u8], mount_point: &[u8]) -> Option<String> {
    text.split(|&b| b == b'\n').rev().find_map(|line| {
        let sep = find(line, b" - ")?;
        let mp = line[..sep].split(|&b| b == b' ').nth(4)?;
        let fstype = line[sep + 3..].split(|&b| b == b' ').next()?;
        (unescape_octal(mp) == mount_point).then(|| String::from_utf8_lossy(fstype).into_owned())
    })
}

/// One line of a mountinfo file, every field, paths unescaped.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct MountEntry {
    pub id: u64,
    pub parent: u64,
    pub major: u32,
    pub minor: u32,
    pub root: String,
    pub target: String,
    pub options: String,
    /// The optional fields: `shared:N`, `master:N`, ...
    pub propagation: Vec<String>,
    pub fstype: String,
    pub source: String,
    pub super_options: String,
}

/// Parse one mountinfo line:
/// `ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTS [OPTIONAL...] - FSTYPE SOURCE SUPER`.
pub fn mountinfo_entry(line: &str) -> Option<MountEntry> {
    let (head, tail) = line.split_once(" - ")?;
    let mut h = head.split(' ');
    let (id, parent, dev) = (h.next()?.parse().ok()?, h.next()?.parse().ok()?, h.next()?);
    let (major, minor) = dev.split_once(':')?;
    let text = |f: &str| String::from_utf8_lossy(&unescape_octal(f.as_bytes())).into_owned();
    let (root, target, options) = (text(h.next()?), text(h.next()?), h.next()?.to_owned());
    let mut t = tail.splitn(3, ' ');
    Some(MountEntry {
        id,
        parent,
        major: major.parse().ok()?,
        minor: minor.parse().ok()?,
        root,
        target,
        options,
        propagation: h.map(str::to_owned).collect(),
        fstype: t.next()?.to_owned(),
        source: text(t.next()?),
        super_options: t.next().unwrap_or("").to_owned(),
    })
}

/// A uid_map or gid_map line: `INSIDE OUTSIDE COUNT`.
pub fn id_map_line(line: &str) -> Option<[u64; 3]> {
    let mut f = line.split_whitespace().map(|n| n.parse::<u64>().ok());
    let v = [f.next()??, f.next()??, f.next()??];
    f.next().is_none().then_some(v)
}

/// A timens_offsets line: `CLOCK SECONDS NANOSECONDS`.
pub fn offset_line(line: &str) -> Option<(&str, i64, i64)> {
    let mut f = line.split_whitespace();
    let v = (f.next()?, f.next()?.parse().ok()?, f.next()?.parse().ok()?);
    f.next().is_none().then_some(v)
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    memchr::memmem::find(hay, needle)
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo`.
pub fn unescape_octal(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        if s[i] == b'\\' && i + 3 < s.len() && s[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c)) {
            let v = (s[i + 1] - b'0') as u32 * 64 + (s[i + 2] - b'0') as u32 * 8 + (s[i + 3] - b'0') as u32;
            out.push(v as u8);
            i += 4;
        } else {
            out.push(s[i]);
            i += 1;
        }
    }
    out
}

#[cfg(test)]
#[path = "parse_tests.rs"]
mod tests;
