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

/// Whether an fd link could be an nsfs file: anything but the kernel's
/// own names for pipes, sockets and anonymous inodes (a namespace file
/// opened by a path reads as that path, so the text alone proves nothing).
pub fn may_be_nsfs_link(target: &[u8]) -> bool {
    !(target.starts_with(b"pipe:") || target.starts_with(b"socket:") || target.starts_with(b"anon_inode:"))
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
mod tests {
    use super::*;

    #[test]
    fn schedstats() {
        assert_eq!(schedstat(b"3253821 522575 5\n"), Some([3253821, 522575, 5]));
        assert_eq!(schedstat(b"0 0 0\n"), Some([0, 0, 0]));
        assert_eq!(schedstat(b"1 2\n"), None);
        assert_eq!(schedstat(b"1 2 3 4\n"), None);
        assert_eq!(schedstat(b"1 x 3\n"), None);
        assert_eq!(schedstat(b""), None);
    }

    #[test]
    fn ns_links() {
        assert_eq!(ns_link(b"net:[4026531840]"), Some((NsType::Net, Inode(4026531840))));
        assert_eq!(ns_link(b"pid:[4026531836]"), Some((NsType::Pid, Inode(4026531836))));
        assert_eq!(ns_link(b"cgroup:[1]"), Some((NsType::Cgroup, Inode(1))));
        assert_eq!(ns_link(b"socket:[123]"), None);
        assert_eq!(ns_link(b"net:[]"), None);
        assert_eq!(ns_link(b"net:[12x]"), None);
        assert_eq!(ns_link(b"net:4026531840"), None);
        assert_eq!(ns_link(b"/dev/null"), None);
        assert_eq!(ns_link(b""), None);
    }

    #[test]
    fn socket_links() {
        assert_eq!(socket_link(b"socket:[98765]"), Some(98765));
        assert_eq!(socket_link(b"pipe:[98765]"), None);
        assert_eq!(socket_link(b"socket:[]"), None);
    }

    #[test]
    fn pids() {
        assert_eq!(pid_name(b"1"), Some(Pid(1)));
        assert_eq!(pid_name(b"4194304"), Some(Pid(4194304)));
        assert_eq!(pid_name(b"self"), None);
        assert_eq!(pid_name(b""), None);
        assert_eq!(pid_name(b"99999999999"), None);
        assert_eq!(pid_name(b"2147483648"), None);
        assert_eq!(pid_name(b"-1"), None);
    }

    #[test]
    fn pids_of_proc_paths() {
        use std::path::Path;
        assert_eq!(proc_pid(Path::new("/proc/12/ns/net")), Some(Pid(12)));
        assert_eq!(proc_pid(Path::new("/proc/12/root/run/netns/x")), Some(Pid(12)));
        assert_eq!(proc_pid(Path::new("/proc/self/ns/net")), None);
        assert_eq!(proc_pid(Path::new("/run/netns/x")), None);
        assert_eq!(proc_pid(Path::new("/processes/12")), None);
    }

    #[test]
    fn decimals() {
        assert_eq!(decimal(b"0"), Some(0));
        assert_eq!(decimal(b"18446744073709551615"), Some(u64::MAX));
        assert_eq!(decimal(b"18446744073709551616"), None);
        assert_eq!(decimal(b"12 "), None);
        assert_eq!(decimal(b"+1"), None);
        assert_eq!(decimal(b""), None);
    }

    #[test]
    fn canonical_decimals() {
        assert_eq!(canonical_decimal("4026531840"), Some(4026531840));
        assert_eq!(canonical_decimal("0"), Some(0));
        for bad in ["", "01", "-1", "+1", " 1", "1 ", "1e3", "18446744073709551616", "４"] {
            assert_eq!(canonical_decimal(bad), None, "{bad}");
        }
    }

    #[test]
    fn mountinfo_lines() {
        let line = b"1262 29 0:4 net:[4026532281] /run/netns/web rw shared:627 - nsfs nsfs rw";
        assert_eq!(
            mountinfo_nsfs(line),
            Some(NsfsMount {
                ns_type: NsType::Net,
                inode: Inode(4026532281),
                mount_point: "/run/netns/web".into()
            })
        );
        let spaced = b"12 1 0:4 mnt:[4026532300] /tmp/a\\040b rw - nsfs nsfs rw";
        assert_eq!(mountinfo_nsfs(spaced).map(|m| m.mount_point), Some("/tmp/a b".into()));
        let proc_line = b"22 1 0:21 / /proc rw,nosuid shared:12 - proc proc rw";
        assert_eq!(mountinfo_nsfs(proc_line), None);
        // A tmpfs whose mount point looks like an nsfs root is not nsfs.
        let fake = b"23 1 0:22 / /net:[1] rw - tmpfs tmpfs rw";
        assert_eq!(mountinfo_nsfs(fake), None);
        assert_eq!(mountinfo_nsfs(b"garbage"), None);
        assert_eq!(mountinfo_nsfs(b""), None);
    }

    #[test]
    fn mountinfo_file() {
        let text = b"22 1 0:21 / /proc rw - proc proc rw\n\
                     30 22 0:4 uts:[4026532400] /run/nsfuse/uts/a rw - nsfs nsfs rw\n\
                     31 22 0:4 net:[4026532401] /run/netns/b rw - nsfs nsfs rw\n";
        let all = mountinfo_nsfs_all(text);
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].ns_type, NsType::Uts);
        assert_eq!(all[1].inode, Inode(4026532401));
        assert!(mountinfo_nsfs_all(b"22 1 0:21 / /proc rw - proc proc rw\n").is_empty());
    }

    #[test]
    fn mountinfo_read_in_pieces() {
        let mut text = Vec::new();
        for i in 0..5000 {
            text.extend_from_slice(format!("{i} 1 0:21 / /m/{i} rw - tmpfs tmpfs rw\n").as_bytes());
            if i % 1000 == 7 {
                text.extend_from_slice(
                    format!("{i} 1 0:4 net:[{i}] /run/netns/n{i} rw - nsfs nsfs rw\n").as_bytes(),
                );
            }
        }
        // A last line with no newline is read too.
        text.extend_from_slice(b"9 1 0:4 uts:[9] /last rw - nsfs nsfs rw");
        /// A reader that hands out 1000 bytes at a time, cutting lines.
        struct Dribble<'a>(&'a [u8]);
        impl std::io::Read for Dribble<'_> {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                let n = self.0.len().min(buf.len()).min(1000);
                buf[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        let all = mountinfo_nsfs_stream(Dribble(&text)).unwrap();
        let paths: Vec<_> = all.iter().map(|m| m.mount_point.to_string_lossy().into_owned()).collect();
        assert_eq!(
            paths,
            [
                "/run/netns/n7",
                "/run/netns/n1007",
                "/run/netns/n2007",
                "/run/netns/n3007",
                "/run/netns/n4007",
                "/last"
            ]
        );
        assert_eq!(mountinfo_nsfs_stream(&text[..]).unwrap(), all);
    }

    #[test]
    fn fstype_at_a_mount_point() {
        let text = b"22 1 0:21 / /proc rw - proc proc rw\n\
                     40 22 0:50 / /tmp/a\\040b rw - fuse.nsfuse nsfuse rw\n\
                     41 40 0:51 / /tmp/a\\040b rw - tmpfs tmpfs rw\n";
        assert_eq!(mountinfo_fstype_at(text, b"/tmp/a b").as_deref(), Some("tmpfs"));
        assert_eq!(
            mountinfo_fstype_at(&text[..text.len() - 40], b"/tmp/a b").as_deref(),
            Some("fuse.nsfuse")
        );
        assert_eq!(mountinfo_fstype_at(text, b"/tmp"), None);
    }

    #[test]
    fn octal() {
        assert_eq!(unescape_octal(b"a\\040b\\011c\\134d"), b"a b\tc\\d".to_vec());
        assert_eq!(unescape_octal(b"trailing\\04"), b"trailing\\04".to_vec());
        assert_eq!(unescape_octal(b"\\999"), b"\\999".to_vec());
    }

    #[test]
    fn loadavg() {
        assert_eq!(loadavg_last_pid(b"0.00 0.01 0.05 1/180 12345\n"), Some(Pid(12345)));
        assert_eq!(loadavg_last_pid(b"0.00 0.01 0.05 1/180\n"), None);
        assert_eq!(loadavg_last_pid(b"0.00 0.01 0.05 1/180 x\n"), None);
    }

    #[test]
    fn mountinfo_entries() {
        let l =
            "36 35 98:0 /mnt1 /mnt\\040x rw,noatime master:1 shared:2 - ext3 /dev/root rw,errors=continue";
        let e = mountinfo_entry(l).unwrap();
        assert_eq!((e.id, e.parent, e.major, e.minor), (36, 35, 98, 0));
        assert_eq!(
            (e.root.as_str(), e.target.as_str(), e.options.as_str()),
            ("/mnt1", "/mnt x", "rw,noatime")
        );
        assert_eq!(e.propagation, ["master:1", "shared:2"]);
        assert_eq!((e.fstype.as_str(), e.source.as_str()), ("ext3", "/dev/root"));
        assert_eq!(e.super_options, "rw,errors=continue");
        let bare = mountinfo_entry("1 0 0:1 / / rw - rootfs rootfs rw").unwrap();
        assert!(bare.propagation.is_empty());
        assert_eq!(mountinfo_entry("1 0 0:1 / / rw"), None);
        assert_eq!(mountinfo_entry("x 0 0:1 / / rw - a b c"), None);
        assert_eq!(mountinfo_entry("1 0 01 / / rw - a b c"), None);
    }

    #[test]
    fn id_maps_and_offsets() {
        assert_eq!(id_map_line("         0          0 4294967295"), Some([0, 0, 4294967295]));
        assert_eq!(id_map_line("0 1000 1 2"), None);
        assert_eq!(id_map_line("0 x 1"), None);
        assert_eq!(offset_line("monotonic -5 100"), Some(("monotonic", -5, 100)));
        assert_eq!(offset_line("boottime 1"), None);
    }
}
