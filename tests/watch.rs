//! `MOUNT/events` and `MOUNT/metrics` (SPEC section 8): the real coreutils
//! `tail -f` follows a namespace's life (new, pinned, orphaned, released,
//! gone) in order with growing timestamps; a small `events_max` keeps only
//! the last lines; `metrics` and `scan --prometheus` pass `promtool check
//! metrics` and count what the tree lists.

mod common;

use common::*;
use std::process::{Command, Stdio};

/// The events of one namespace in a text, as (time, event, detail), from
/// its last `new` on (an inode number can have served another namespace
/// before, as other tests make and end theirs).
fn events_of(text: &str, ty: &str, inode: u64) -> Vec<(String, String, String)> {
    let all: Vec<(String, String, String)> = text
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.splitn(5, ' ').collect();
            (f.len() >= 4 && f[2] == ty && f[3] == inode.to_string())
                .then(|| (f[0].to_owned(), f[1].to_owned(), f.get(4).unwrap_or(&"").to_string()))
        })
        .collect();
    let from = all.iter().rposition(|e| e.1 == "new").unwrap_or(0);
    all[from..].to_vec()
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
            events_of(&text, "uts", uts).iter().map(|e| e.1.clone()).collect::<Vec<_>>() == want
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
    let evs = events_of(&text, "uts", uts);
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
    // Only the last three lines are kept (other namespaces of the host may
    // have come and gone meanwhile: no more is asserted of which).
    let text = m.read("events");
    assert_eq!(text.lines().count(), 3, "{text}");
    assert!(text.lines().all(|l| l.split(' ').count() >= 4 && l.ends_with(|c: char| c != ' ')), "{text}");
    // The size counts every byte ever logged: more than what is kept, and
    // it only grows.
    let size = std::fs::metadata(m.path("events")).unwrap().len();
    assert!(size > text.len() as u64, "{size} vs {}", text.len());
    // Reading from 0, long dropped, gives the oldest lines kept, once.
    use std::io::{Read, Seek, SeekFrom};
    let mut f = std::fs::File::open(m.path("events")).unwrap();
    f.seek(SeekFrom::Start(0)).unwrap();
    let mut again = String::new();
    f.read_to_string(&mut again).unwrap();
    assert_eq!(again.lines().count(), 3, "{again}");
    assert!(std::fs::metadata(m.path("events")).unwrap().len() >= size);
}

/// `promtool check metrics` on a text: (passed, what it said).
fn promtool(text: &str) -> (bool, String) {
    use std::io::Write;
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (Debian package prometheus: bash .ci/run installs it)");
    child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)),
    )
}

#[test]
fn metrics_pass_promtool_and_count_what_the_tree_lists() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let m = Nsfuse::start(&[]);
    // A live namespace and an orphan (pinned, its process gone).
    let mut p = Proc::cmd(&["unshare", "--net", "sleep", "1000"]);
    let net = wait_unshared(p.pid(), "net");
    let q = Proc::cmd(&["unshare", "--net", "sleep", "1000"]);
    wait_unshared(q.pid(), "net");
    std::fs::write(m.path(&format!("net/{net}/ctl")), "pin\n").unwrap();
    p.kill();
    let count = |dir: &str| std::fs::read_dir(m.path(dir)).unwrap().count() as u64;
    let agrees = || {
        let text = m.read("metrics");
        metric_value(&text, "nsfuse_namespaces{type=\"net\"}") == Some(count("net"))
            && metric_value(&text, "nsfuse_namespaces_orphaned{type=\"net\"}") == Some(count("orphans/net"))
            && metric_value(&text, "nsfuse_namespaces{type=\"uts\"}") == Some(count("uts"))
    };
    assert!(wait_for(10.0, agrees), "metrics disagree with the tree:\n{}", m.read("metrics"));
    assert!(count("orphans/net") >= 1);
    let text = m.read("metrics");
    let (ok, said) = promtool(&text);
    assert!(ok, "promtool: {said}\n{text}");
    assert!(metric_value(&text, "nsfuse_pins{type=\"net\",dir=\"netns\"}").is_some_and(|n| n >= 1), "{text}");
    assert!(metric_value(&text, "nsfuse_daemon_resident_bytes").is_some_and(|b| b > 1 << 20), "{text}");
    assert!(metric_value(&text, "nsfuse_refreshes_total{kind=\"full\"}").is_some_and(|n| n >= 1), "{text}");
    // The one-off scan says the same in the same format.
    let scan = run(&[nsfuse_bin().to_str().unwrap(), "scan", "--prometheus"]);
    let (ok, said) = promtool(&scan);
    assert!(ok, "promtool on scan --prometheus: {said}\n{scan}");
    assert!(metric_value(&scan, "nsfuse_namespaces{type=\"net\"}").is_some_and(|n| n >= 2), "{scan}");
    std::fs::write(m.path(&format!("net/{net}/ctl")), "release\n").unwrap();
    drop(q);
}

#[test]
fn node_exporter_serves_the_textfile_the_unit_writes() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let unit =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/nsfuse-textfile.service"))
            .unwrap();
    let timer =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/nsfuse-textfile.timer"))
            .unwrap();
    assert!(timer.contains("OnUnitActiveSec=") && timer.contains("WantedBy=timers.target"));
    let start = unit.lines().find_map(|l| l.strip_prefix("ExecStart=")).expect("ExecStart").to_owned();
    let dir = TempDir::new("textfile");
    // The unit's own command, with the test's binary and a private directory.
    let cmd = start.replace("/usr/local/sbin/nsfuse", nsfuse_bin().to_str().unwrap());
    let cmd = cmd.strip_prefix("/bin/sh -c '").and_then(|c| c.strip_suffix('\'')).expect("sh -c '...'");
    let out = Command::new("sh").args(["-c", cmd]).env("TEXTFILE_DIR", dir.path()).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let written: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(written, ["nsfuse.prom"], "one file, no temporary left");
    // node_exporter on a loopback port reads it.
    let port = 20000 + (std::process::id() % 20000) as u16;
    let exporter = Proc(
        Command::new("prometheus-node-exporter")
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg(format!("--collector.textfile.directory={}", dir.path().display()))
            .args(["--collector.disable-defaults", "--collector.textfile"])
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("prometheus-node-exporter (bash .ci/run installs it)"),
    );
    let scrape = || {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
        use std::io::{Read, Write};
        s.write_all(b"GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n").ok()?;
        let mut body = String::new();
        s.read_to_string(&mut body).ok()?;
        Some(body)
    };
    let mut body = String::new();
    assert!(
        wait_for(10.0, || {
            body = scrape().unwrap_or_default();
            body.lines().any(|l| l.starts_with("nsfuse_namespaces{type=\"net\"}"))
        }),
        "node_exporter does not serve nsfuse_namespaces:\n{body}"
    );
    assert!(body.lines().any(|l| l == "node_textfile_scrape_error 0"), "{body}");
    drop(exporter);
}

#[test]
fn a_background_daemon_logs_a_refused_command_to_the_system_log() {
    let dir = TempDir::new("syslog");
    // A receiver of our own where the daemon is told /dev/log is.
    let socket = dir.join("log.sock");
    let receiver = std::os::unix::net::UnixDatagram::bind(&socket).unwrap();
    receiver.set_read_timeout(Some(std::time::Duration::from_millis(200))).unwrap();
    let m = Nsfuse::start_in_env(dir, &[], &[("NSFUSE_SYSLOG_SOCKET", socket.to_str().unwrap())]);
    let uts = ino("/proc/self/ns/uts");
    let ctl = m.path(&format!("uts/{uts}/ctl"));
    let refused = std::fs::write(&ctl, "pin ../escape-to-syslog\n");
    assert_eq!(refused.unwrap_err().raw_os_error(), Some(libc::EINVAL));
    let mut got = Vec::new();
    let found = wait_for(5.0, || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = receiver.recv(&mut buf) {
            got.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
        got.iter().any(|l| l.contains("escape-to-syslog"))
    });
    assert!(found, "no syslog line for the refused command: {got:?}");
    let line = got.iter().find(|l| l.contains("escape-to-syslog")).unwrap();
    // RFC 3164: <PRI>TIMESTAMP nsfuse[PID]: ..., facility daemon (3), a warning (4) or error (3).
    assert!(line.starts_with("<2") && line.contains("nsfuse["), "{line}");
    assert!(line.contains(&ctl.display().to_string()), "{line}");
    // "mounted at" came first, at info.
    assert!(got.iter().any(|l| l.starts_with("<30>") && l.contains("mounted at")), "{got:?}");
}

#[test]
fn poll_on_events_wakes_when_new_lines_arrive() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let m = Nsfuse::start(&["refresh_ms=100"]);
    let mut f = std::fs::File::open(m.path("events")).unwrap();
    let mut seen = Vec::new();
    std::io::Read::read_to_end(&mut f, &mut seen).unwrap();
    let poll = |timeout_ms: i32| {
        let mut p =
            libc::pollfd { fd: std::os::fd::AsRawFd::as_raw_fd(&f), events: libc::POLLIN, revents: 0 };
        // SAFETY: one valid pollfd, the count passed.
        let n = unsafe { libc::poll(&mut p, 1, timeout_ms) };
        (n, p.revents)
    };
    // Everything read: nothing new (a file system without poll would say
    // readable at once).
    let (n, _) = poll(300);
    assert_eq!(n, 0, "readable with nothing new");
    let mut p = Proc::cmd(&["unshare", "--uts", "sleep", "1000"]);
    let uts = wait_unshared(p.pid(), "uts");
    let started = std::time::Instant::now();
    let (n2, revents) = poll(10_000);
    assert_eq!(n2, 1, "poll did not wake for new events");
    assert!(revents & libc::POLLIN != 0);
    assert!(started.elapsed() < std::time::Duration::from_secs(5), "{:?}", started.elapsed());
    let mut more = String::new();
    assert!(
        wait_for(5.0, || {
            let _ = std::io::Read::read_to_string(&mut f, &mut more);
            more.contains(&format!(" new uts {uts} "))
        }),
        "{more}"
    );
    p.kill();
}

/// A watched tree stays on incremental refreshes however long nobody
/// touches it: with `events` open and no other request for over a minute
/// (nsfuse forgets what it remembered after a minute unused), a refresh a
/// second goes on, with full passes only at their own cadence (once a
/// minute), not every second.
#[test]
fn a_long_watch_refreshes_incrementally() {
    let m = Nsfuse::start(&[]);
    let count =
        |kind: &str| metric_value(&m.read("metrics"), &format!("nsfuse_refreshes_total{{kind=\"{kind}\"}}"));
    let (full0, inc0) = (count("full").unwrap(), count("incremental").unwrap());
    let mut events = std::fs::File::open(m.path("events")).unwrap();
    let mut sink = Vec::new();
    std::io::Read::read_to_end(&mut events, &mut sink).unwrap();
    std::thread::sleep(std::time::Duration::from_secs(75));
    let (full, inc) = (count("full").unwrap() - full0, count("incremental").unwrap() - inc0);
    drop(events);
    assert!(full <= 2, "{full} full passes in 75 s of watching ({inc} incremental)");
    assert!(inc >= 50, "only {inc} incremental refreshes in 75 s of watching");
}
