//! Text of the per-namespace files (`processes`, `holders`, `pins`) and the
//! escaping every text file uses, rendered from a snapshot and, for
//! command names, a source the caller gives (`discovery::comm` on the
//! host). Pure: it reads nothing itself. Shared by the mounted tree and
//! `nsfuse scan`, so both always say the same thing.

use crate::model::{Holder, Namespace, Pid};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// Where command names come from: a PID's name, if it is still there.
pub type Comm<'a> = &'a dyn Fn(Pid) -> Option<String>;

/// Text made safe for a one-record-per-line file, as mountinfo does it:
/// control characters and backslash become `\ooo` (`\012`, `\011`,
/// `\134`), and so do bytes that are not UTF-8; the rest is kept.
pub fn escape_bytes(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    let octal = |out: &mut String, b: u8| out.push_str(&format!("\\{b:03o}"));
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\\' | '\x7f' => octal(&mut out, c as u8),
                c if (c as u32) < 0x20 => octal(&mut out, c as u8),
                c => out.push(c),
            }
        }
        for &b in chunk.invalid() {
            octal(&mut out, b);
        }
    }
    out
}

/// `escape_bytes` of a string.
pub fn escape(s: &str) -> String {
    escape_bytes(s.as_bytes())
}

/// `escape_bytes` of a path.
pub fn escape_path(p: &Path) -> String {
    escape_bytes(p.as_os_str().as_bytes())
}

/// `PID<TAB>COMM` per member process, sorted by PID; processes that exited
/// since the scan are left out. `visible` filters PIDs (allow_other).
pub fn processes(ns: &Namespace, visible: &dyn Fn(Pid) -> bool, comm: Comm<'_>) -> String {
    process_lines(ns.processes.iter().copied().filter(|p| visible(*p)), comm)
}

/// `PID<TAB>COMM` per PID given (a namespace's members, a container's),
/// the name escaped; processes gone since are left out.
pub fn process_lines(pids: impl IntoIterator<Item = Pid>, comm: Comm<'_>) -> String {
    let mut out = String::new();
    for pid in pids {
        if let Some(c) = comm(pid) {
            out.push_str(&format!("{pid}\t{}\n", escape(&c)));
        }
    }
    out
}

/// A holder as its `holders` line (without the newline), paths escaped.
pub fn holder_line(h: &Holder) -> String {
    match h {
        Holder::Mount { mntns, path } => format!("mount {mntns} {}", escape_path(path)),
        other => other.to_string(),
    }
}

/// One `holders` line per reference that `visible` lets through.
pub fn holders(ns: &Namespace, visible: &dyn Fn(&Holder) -> bool) -> String {
    ns.holders.iter().filter(|h| visible(h)).map(|h| holder_line(h) + "\n").collect()
}

/// One `MNTNS PATH` line per bind mount.
pub fn pins(ns: &Namespace) -> String {
    ns.pins.iter().map(|p| format!("{} {}\n", p.mntns, escape_path(&p.path))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Inode;

    #[test]
    fn escapes_as_mountinfo_does() {
        assert_eq!(escape("a\nb\tc\\d e"), "a\\012b\\011c\\134d e");
        assert_eq!(escape("plain/näme"), "plain/näme");
        assert_eq!(escape("\x7f\x01"), "\\177\\001");
        assert_eq!(escape_bytes(b"x\xffy"), "x\\377y");
        let forged = Holder::Mount { mntns: Inode(1), path: "/a\nmount 2 /b".into() };
        assert_eq!(holder_line(&forged), "mount 1 /a\\012mount 2 /b");
    }

    #[test]
    fn process_lines_come_from_the_names_given_escaped_the_gone_left_out() {
        let comm = |p: Pid| match p.get() {
            1 => Some("init".to_owned()),
            7 => Some("evil\n2\tfake".to_owned()),
            _ => None,
        };
        let mut ns = Namespace::new(crate::model::NsType::Net, Inode(5));
        ns.processes = vec![Pid(1), Pid(3), Pid(7)];
        assert_eq!(processes(&ns, &|_| true, &comm), "1\tinit\n7\tevil\\0122\\011fake\n");
        assert_eq!(processes(&ns, &|p| p != Pid(1), &comm), "7\tevil\\0122\\011fake\n");
    }
}
