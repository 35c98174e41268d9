//! The pure parsers on literal strings.

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
    assert_eq!(mountinfo_fstype_at(&text[..text.len() - 40], b"/tmp/a b").as_deref(), Some("fuse.nsfuse"));
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
    let l = "36 35 98:0 /mnt1 /mnt\\040x rw,noatime master:1 shared:2 - ext3 /dev/root rw,errors=continue";
    let e = mountinfo_entry(l).unwrap();
    assert_eq!((e.id, e.parent, e.major, e.minor), (36, 35, 98, 0));
    assert_eq!((e.root.as_str(), e.target.as_str(), e.options.as_str()), ("/mnt1", "/mnt x", "rw,noatime"));
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
