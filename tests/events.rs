//! `MOUNT/events` (SPEC section 8): the real coreutils `tail -f` follows a
//! namespace's life (new, pinned, orphaned, released, gone) in order with
//! growing timestamps, and a small `events_max` keeps only the last lines.

mod common;

use common::*;
use std::process::{Command, Stdio};

/// The events of one namespace in a text, as (time, event, detail).
fn events_of(text: &str, inode: u64) -> Vec<(String, String, String)> {
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.splitn(5, ' ').collect();
            (f.len() >= 4 && f[3] == inode.to_string())
                .then(|| (f[0].to_owned(), f[1].to_owned(), f.get(4).unwrap_or(&"").to_string()))
        })
        .collect()
}

/// One at a time: each reads a log that the other's namespaces would fill.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[test]
fn tail_f_follows_a_namespace_from_new_to_gone() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let m = Nsfuse::start(&["refresh_ms=100"]);
    let out = m.dir.join("tail.out");
    let tail = Command::new("tail")
        .args(["-f", "-n", "+1", "-s", "0.2"])
        .arg(m.path("events"))
        .stdout(std::fs::File::create(&out).unwrap())
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let tail = Proc(tail);
    let mut p = Proc::cmd(&["unshare", "--uts", "sleep", "1000"]);
    let uts = wait_unshared(p.pid(), "uts");
    let seen = |want: &[&str]| {
        wait_for(10.0, || {
            let text = std::fs::read_to_string(&out).unwrap_or_default();
            events_of(&text, uts).iter().map(|e| e.1.clone()).collect::<Vec<_>>() == want
        })
    };
    assert!(seen(&["new"]), "new: {}", std::fs::read_to_string(&out).unwrap_or_default());
    std::fs::write(m.path(&format!("uts/{uts}/ctl")), "pin held\n").unwrap();
    assert!(seen(&["new", "pinned"]), "{}", std::fs::read_to_string(&out).unwrap_or_default());
    p.kill();
    assert!(seen(&["new", "pinned", "orphaned"]), "{}", std::fs::read_to_string(&out).unwrap_or_default());
    std::fs::write(m.path(&format!("uts/{uts}/ctl")), "release\n").unwrap();
    assert!(
        seen(&["new", "pinned", "orphaned", "released", "gone"]),
        "{}",
        std::fs::read_to_string(&out).unwrap_or_default()
    );
    let text = std::fs::read_to_string(&out).unwrap();
    let evs = events_of(&text, uts);
    assert!(evs[0].2.starts_with(&format!("{} sleep", p.pid())), "new names its process: {:?}", evs[0]);
    let pin = m.pin_dir.join("uts/held");
    assert_eq!(evs[1].2, pin.display().to_string());
    assert_eq!(evs[3].2, pin.display().to_string());
    let times: Vec<&str> = evs.iter().map(|e| e.0.as_str()).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");
    assert!(times.iter().all(|t| t.len() == 24 && t.ends_with('Z') && &t[19..20] == "."), "{times:?}");
    drop(tail);
}

#[test]
fn a_small_events_max_keeps_the_last_lines_and_offsets_go_on() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let m = Nsfuse::start(&["events_max=3"]);
    let mut made = Vec::new();
    for _ in 0..4 {
        let p = Proc::cmd(&["unshare", "--uts", "sleep", "1000"]);
        let uts = wait_unshared(p.pid(), "uts");
        // A lookup of the new number makes the refresh that logs it.
        assert_eq!(m.read(&format!("uts/{uts}/type")), "uts\n");
        made.push((p, uts));
    }
    let text = m.read("events");
    assert_eq!(text.lines().count(), 3, "{text}");
    let last = made.last().unwrap().1;
    assert!(text.lines().last().unwrap().contains(&format!(" new uts {last} ")), "{text}");
    // The size counts every byte ever logged: more than what is kept.
    let size = std::fs::metadata(m.path("events")).unwrap().len();
    assert!(size > text.len() as u64, "{size} vs {}", text.len());
    // Reading from where the first line was (dropped) gives the oldest kept.
    use std::io::{Read, Seek, SeekFrom};
    let mut f = std::fs::File::open(m.path("events")).unwrap();
    f.seek(SeekFrom::Start(0)).unwrap();
    let mut again = String::new();
    f.read_to_string(&mut again).unwrap();
    assert_eq!(again, text);
}
