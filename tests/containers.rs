//! Who owns a namespace, and what was left behind (SPEC section 8): real
//! processes moved into cgroups shaped like each engine's (in the v1
//! `name=systemd` hierarchy and in the v2 one, each where the machine has
//! it), a processless netns pinned as `NETNS_DIR/cni-UUID`, a namespace
//! that loses its last process, one held only by an fd; checked in the
//! `container` file, `info.json`, `orphans/`, `age`, `nsfuse scan` and
//! `--orphans`, and cleaned up with `release all` from an orphan's ctl.

mod common;

use common::*;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

/// A cgroup hierarchy of this machine a test may make groups in.
fn hierarchies() -> Vec<(&'static str, PathBuf)> {
    let mut out = Vec::new();
    for (name, dir) in [
        ("v1 name=systemd", "/sys/fs/cgroup/systemd"),
        ("v2", "/sys/fs/cgroup/unified"),
        ("v2", "/sys/fs/cgroup"),
    ] {
        let root = PathBuf::from(dir);
        let v2_here = name == "v2" && root.join("cgroup.controllers").exists();
        let v1_here = name != "v2" && root.join("cgroup.procs").exists();
        if (v2_here || v1_here) && !out.iter().any(|(n, _)| *n == name) {
            out.push((name, root));
        }
    }
    out
}

/// A cgroup made for one test (with any parents it had to make), removed
/// on drop once its processes are gone.
struct Cgroup {
    made: Vec<PathBuf>,
    path: PathBuf,
}

impl Cgroup {
    fn make(root: &Path, rel: &str) -> Cgroup {
        let mut made = Vec::new();
        let mut at = root.to_path_buf();
        for part in rel.split('/').filter(|p| !p.is_empty()) {
            at.push(part);
            if !at.exists() {
                std::fs::create_dir(&at).unwrap_or_else(|e| panic!("mkdir {}: {e}", at.display()));
                made.push(at.clone());
            }
        }
        Cgroup { made, path: at }
    }

    fn enter(&self, pid: i32) {
        std::fs::write(self.path.join("cgroup.procs"), pid.to_string()).expect("move into the cgroup");
    }
}

impl Drop for Cgroup {
    fn drop(&mut self) {
        for dir in self.made.iter().rev() {
            let _ = wait_for(5.0, || std::fs::remove_dir(dir).is_ok() || !dir.exists());
        }
    }
}

/// The `container` lines a JSON owner list stands for: `KIND ID [NAME]`,
/// `was ` first for a former owner.
fn owner_lines(list: &serde_json::Value) -> Vec<String> {
    let field = |o: &serde_json::Value, k: &str| o[k].as_str().map(str::to_owned);
    list.as_array()
        .expect("container is a list")
        .iter()
        .map(|o| {
            let was = if o["was"] == true { "was " } else { "" };
            let name = field(o, "name").map(|n| format!(" {n}")).unwrap_or_default();
            format!(
                "{was}{} {}{name}",
                field(o, "kind").unwrap_or_default(),
                field(o, "id").unwrap_or_default()
            )
        })
        .collect()
}

static N: AtomicUsize = AtomicUsize::new(0);

/// The tests share parent cgroups (`system.slice`, ...): one at a time, so
/// the one that made a parent removes it after the other is done with it.
static CGROUPS: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn cgroups_lock() -> std::sync::MutexGuard<'static, ()> {
    CGROUPS.lock().unwrap_or_else(|e| e.into_inner())
}

/// A 64-hex-digit ID unique to this test run, in its first 12 digits too
/// (the directory name under containers/).
fn unique_id() -> String {
    let n = N.fetch_add(1, Ordering::SeqCst);
    format!("{n:04x}{:08x}{}", std::process::id(), "c".repeat(52))
}

/// Processes in cgroups, ended and then removed in reverse order of making
/// (a parent cgroup is removed after its children), even on a failure.
#[derive(Default)]
struct InCgroups(Vec<(Proc, Cgroup, u64, String)>);

impl Drop for InCgroups {
    fn drop(&mut self) {
        while let Some((mut p, cg, ..)) = self.0.pop() {
            p.kill();
            drop(cg);
        }
    }
}

/// Cgroup paths of every engine shape, with the line each must give.
fn shapes() -> Vec<(String, String)> {
    let (a, b, c, d) = (unique_id(), unique_id(), unique_id(), unique_id());
    let me = std::process::id();
    vec![
        (format!("system.slice/docker-{a}.scope"), format!("docker {a}")),
        (format!("docker/{b}"), format!("docker {b}")),
        (format!("libpod_parent/libpod-{c}"), format!("podman {c}")),
        (
            format!("kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod0000{me:08x}_aaaa_bbbb.slice/cri-containerd-{d}.scope"),
            format!("kubernetes 0000{me:08x}-aaaa-bbbb {d}"),
        ),
        (format!("lxc.payload.nsfuse{me}"), format!("lxc nsfuse{me}")),
        (format!("machine.slice/machine-nsfuse\\x2dbox{me}.scope"), format!("nspawn nsfuse-box{me}")),
        (format!("system.slice/nsfuse-test-{me}.service"), format!("systemd nsfuse-test-{me}.service")),
    ]
}

#[test]
fn processes_in_engine_cgroups_name_their_container() {
    let _one = cgroups_lock();
    let hs = hierarchies();
    assert!(!hs.is_empty(), "no cgroup hierarchy to test with");
    for (hname, root) in hs {
        let mut made = InCgroups::default();
        for (rel, line) in shapes() {
            let cg = Cgroup::make(&root, &rel);
            let p = Proc::cmd(&["unshare", "--net", "sleep", "1000"]);
            let net = wait_unshared(p.pid(), "net");
            cg.enter(p.pid());
            // (The process first: a cgroup is removed once it is empty.)
            made.0.push((p, cg, net, line));
        }
        // The daemon's first pass is a full one: it reads every cgroup.
        let m = Nsfuse::start(&[]);
        let table = run(&[nsfuse_bin().to_str().unwrap(), "scan", "--type", "net"]);
        let json: serde_json::Value =
            serde_json::from_str(&run(&[nsfuse_bin().to_str().unwrap(), "scan", "--json", "--type", "net"]))
                .unwrap();
        for (p, _, net, line) in &made.0 {
            let got = m.read(&format!("net/{net}/container"));
            assert_eq!(got, format!("{line}\n"), "{hname}: process {} in {line}", p.pid());
            let info: serde_json::Value =
                serde_json::from_str(&m.read(&format!("net/{net}/info.json"))).unwrap();
            assert_eq!(owner_lines(&info["container"]), [line.as_str()], "{hname}");
            let ns = json["namespaces"].as_array().unwrap().iter().find(|n| n["inode"] == *net).unwrap();
            assert_eq!(owner_lines(&ns["container"]), [line.as_str()], "{hname}: scan --json");
            let row = table.lines().find(|l| l.starts_with(&net.to_string())).expect("a row");
            let (kind, id) = line.split_once(' ').unwrap();
            let id12: String = id.split(' ').next().unwrap().chars().take(12).collect();
            assert!(row.contains(&format!("{kind}:{id12}")), "{hname}: scan's CONTAINER column: {row}");
            assert!(
                !Path::new(&m.path(&format!("orphans/net/{net}"))).exists(),
                "a live namespace is no orphan"
            );
            // containers/KIND-ID: its namespaces, its full ID, its processes.
            let id_field = id.split(' ').next_back().unwrap();
            let dir_id: String =
                if id_field.len() == 64 { id_field[..12].to_owned() } else { id_field.to_owned() };
            let dir = m.path(&format!("containers/{kind}-{dir_id}"));
            assert_eq!(
                std::fs::read_link(dir.join("net")).unwrap(),
                PathBuf::from(format!("../../net/{net}"))
            );
            assert_eq!(
                ino(dir.join("net/inode").parent().unwrap().join("ns")),
                *net,
                "{hname}: the link leads there"
            );
            assert_eq!(std::fs::read_to_string(dir.join("id")).unwrap(), format!("{id}\n"));
            let procs = std::fs::read_to_string(dir.join("processes")).unwrap();
            assert_eq!(procs, format!("{}\tsleep\n", p.pid()), "{hname}");
        }
        // The host's own namespaces have no owner line.
        let host_net = ino("/proc/self/ns/net");
        assert_eq!(m.read(&format!("net/{host_net}/container")), "");
        drop(m);
        drop(made);
    }
}

#[test]
fn leftovers_are_orphans_with_their_owner_and_release_all_clears_them() {
    let _one = cgroups_lock();
    let m = Nsfuse::start(&[]);
    // A processless netns pinned as CNI leaves it.
    let uuid = format!("{:08x}-1111-2222-3333-444455556666", std::process::id());
    std::fs::write(m.path("ctl"), format!("new net cni-{uuid}\n")).unwrap();
    let pin = m.netns_dir.join(format!("cni-{uuid}"));
    let cni = ino(&pin);
    assert_eq!(m.read(&format!("net/{cni}/container")), format!("cni {uuid}\n"));
    let link = m.path(&format!("orphans/net/{cni}"));
    assert_eq!(std::fs::read_link(&link).unwrap(), PathBuf::from(format!("../../net/{cni}")));
    let by_owner = m.path(&format!("containers/cni-{uuid}/net"));
    assert_eq!(std::fs::read_link(&by_owner).unwrap(), PathBuf::from(format!("../../net/{cni}")));
    let age: u64 = m.read(&format!("net/{cni}/age")).trim().parse().unwrap();
    assert!(age < 60, "{age}");
    let listed = run(&["ls", m.path("orphans/net").to_str().unwrap()]);
    assert!(listed.lines().any(|l| l == cni.to_string()), "{listed}");
    let orphans = run(&[nsfuse_bin().to_str().unwrap(), "scan", "--orphans"]);
    assert!(orphans.lines().any(|l| l.starts_with(&format!("{cni} net"))), "{orphans}");
    // A container's namespace that loses its last process, kept by a pin:
    // it says who left it.
    let root = hierarchies().into_iter().next().expect("a cgroup hierarchy").1;
    let id = unique_id();
    let cg = Cgroup::make(&root, &format!("system.slice/docker-{id}.scope"));
    let mut p = Proc::cmd(&["unshare", "--uts", "sleep", "1000"]);
    let uts = wait_unshared(p.pid(), "uts");
    cg.enter(p.pid());
    // SIGHUP: a full pass reads the moved process's cgroup now.
    for pid in m.daemon_pids() {
        nsfuse::sys::kill(nsfuse::model::Pid(pid), libc::SIGHUP).unwrap();
    }
    assert!(
        wait_for(5.0, || std::fs::read_to_string(m.path(&format!("uts/{uts}/container")))
            .is_ok_and(|c| c == format!("docker {id}\n"))),
        "the container's line"
    );
    std::fs::write(m.path(&format!("uts/{uts}/ctl")), "pin left\n").unwrap();
    p.kill();
    let was = format!("was docker {id}\n");
    assert!(
        wait_for(5.0, || std::fs::read_to_string(m.path(&format!("uts/{uts}/container")))
            .is_ok_and(|c| c == was)),
        "{:?}",
        std::fs::read_to_string(m.path(&format!("uts/{uts}/container")))
    );
    assert!(m.path(&format!("orphans/uts/{uts}")).exists());
    // One held only by an fd is an orphan too.
    let (mut q, net) = {
        let q = Proc::cmd(&["unshare", "--net", "sleep", "1000"]);
        let net = wait_unshared(q.pid(), "net");
        (q, net)
    };
    let holder = Proc::sh(&format!("exec 5< /proc/{}/ns/net; exec sleep 1000", q.pid()));
    assert!(wait_for(5.0, || std::fs::read_link(format!("/proc/{}/fd/5", holder.pid())).is_ok()));
    q.kill();
    assert!(
        wait_for(5.0, || m.path(&format!("orphans/net/{net}")).exists()),
        "an fd-held namespace is an orphan"
    );
    let holders = m.read(&format!("orphans/net/{net}/holders"));
    assert!(
        holders.contains(&format!("fd {} 5", holder.pid())),
        "the holders file says who keeps it: {holders}"
    );
    // The cleanup recipe: release all from each orphan's ctl.
    for ns in [format!("net/{cni}"), format!("uts/{uts}")] {
        let (ty, inode) = ns.split_once('/').unwrap();
        std::fs::write(m.path(&format!("orphans/{ty}/{inode}/ctl")), "release all\n").unwrap();
        assert!(
            wait_for(5.0, || !m.path(&format!("orphans/{ty}/{inode}")).exists()
                && !m.path(&format!("{ty}/{inode}")).exists()),
            "{ns} still there after release all"
        );
    }
    assert!(!pin.exists(), "the cni pin file is gone");
    drop(holder);
    drop(cg);
}

/// Debian's podman with runc, on a busybox image made here from
/// busybox-static, with the settings this machine needs (no default
/// ulimits, cgroupfs). Drop removes the container and the image.
struct Podman {
    conf: PathBuf,
    image: String,
    id: Option<String>,
    /// podman's cgroupfs parents it made for this test (removed after).
    parents: Vec<PathBuf>,
    _dir: TempDir,
}

/// podman's `libpod_parent` cgroup in every hierarchy.
fn libpod_parents() -> Vec<PathBuf> {
    std::fs::read_dir("/sys/fs/cgroup")
        .map(|d| d.flatten().map(|e| e.path().join("libpod_parent")).collect())
        .unwrap_or_default()
}

impl Podman {
    fn new() -> Podman {
        for tool in ["podman", "runc", "busybox"] {
            assert!(
                run_ok(&["sh", "-c", &format!("command -v {tool}")]),
                "{tool} is missing: bash .ci/run installs it (apt-get install podman runc busybox-static)"
            );
        }
        let dir = TempDir::new("podman");
        let rootfs = dir.join("rootfs");
        std::fs::create_dir_all(rootfs.join("bin")).unwrap();
        let busybox = run(&["sh", "-c", "command -v busybox"]);
        std::fs::copy(busybox.trim(), rootfs.join("bin/busybox")).unwrap();
        for applet in ["sh", "sleep"] {
            std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(applet)).unwrap();
        }
        let tar = dir.join("image.tar");
        run(&["tar", "-C", rootfs.to_str().unwrap(), "-cf", tar.to_str().unwrap(), "."]);
        let conf = dir.join("containers.conf");
        std::fs::write(&conf, "[containers]\ndefault_ulimits = []\n").unwrap();
        let image = format!("localhost/nsfuse-test-{}:busybox", std::process::id());
        let parents = libpod_parents().into_iter().filter(|p| !p.exists()).collect();
        let p = Podman { conf, image: image.clone(), id: None, parents, _dir: dir };
        p.podman(&["import", tar.to_str().unwrap(), &image]);
        p
    }

    fn podman(&self, args: &[&str]) -> String {
        let out = std::process::Command::new("podman")
            .args(args)
            .env("CONTAINERS_CONF", &self.conf)
            .stdin(std::process::Stdio::null())
            .output()
            .expect("run podman");
        assert!(out.status.success(), "podman {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    fn run_sleeping(&mut self) -> String {
        let id = self.podman(&[
            "--runtime",
            "runc",
            "--cgroup-manager",
            "cgroupfs",
            "run",
            "-d",
            &self.image.clone(),
            "sleep",
            "1000",
        ]);
        self.id = Some(id.clone());
        id
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        let quiet = |args: &[&str]| {
            let _ = std::process::Command::new("podman")
                .args(args)
                .env("CONTAINERS_CONF", &self.conf)
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status();
        };
        if let Some(id) = &self.id {
            quiet(&["rm", "-f", id]);
        }
        quiet(&["rmi", "-f", &self.image]);
        for dir in &self.parents {
            let _ = std::fs::remove_dir(dir.join("conmon"));
            let _ = std::fs::remove_dir(dir);
        }
    }
}

#[test]
fn a_real_podman_container_and_the_netns_it_leaks() {
    let _one = cgroups_lock();
    let mut engine = Podman::new();
    // Watching from before the container starts: the daemon sees its
    // processes, and remembers them once they are gone.
    let m = Nsfuse::start(&["netns_dir=/run/netns"]);
    let id = engine.run_sleeping();
    let inspect = engine.podman(&[
        "inspect",
        "-f",
        "{{.State.Pid}} {{.State.ConmonPid}} {{.NetworkSettings.SandboxKey}}",
        &id,
    ]);
    let fields: Vec<&str> = inspect.split_whitespace().collect();
    let (pid, conmon, pin) =
        (fields[0].parse::<i32>().unwrap(), fields[1].parse::<i32>().unwrap(), fields[2]);
    assert!(pin.starts_with("/run/netns/netns-"), "{inspect}");
    let _pin_guard = MountGuard::new(pin);
    let net = ino(format!("/proc/{pid}/ns/net"));
    let line = format!("podman {id}");
    assert!(
        wait_for(5.0, || std::fs::read_to_string(m.path(&format!("net/{net}/container")))
            .is_ok_and(|c| c.lines().any(|l| l == line))),
        "{:?}",
        std::fs::read_to_string(m.path(&format!("net/{net}/container")))
    );
    let dir = m.path(&format!("containers/podman-{}", &id[..12]));
    assert_eq!(std::fs::read_link(dir.join("net")).unwrap(), PathBuf::from(format!("../../net/{net}")));
    assert_eq!(std::fs::read_to_string(dir.join("id")).unwrap(), format!("{id}\n"));
    assert!(std::fs::read_to_string(dir.join("processes")).unwrap().starts_with(&format!("{pid}\tsleep\n")));
    assert!(!m.path(&format!("orphans/net/{net}")).exists(), "a running container's netns is no orphan");
    // kill -9 the container and conmon: podman never cleans up, and the
    // netns pin is leaked, as on hosts that lose their containers.
    nsfuse::sys::kill(nsfuse::model::Pid(conmon), libc::SIGKILL).unwrap();
    nsfuse::sys::kill(nsfuse::model::Pid(pid), libc::SIGKILL).unwrap();
    assert!(
        wait_for(10.0, || m.path(&format!("orphans/net/{net}")).exists()),
        "the leaked netns is not listed under orphans/"
    );
    assert!(Path::new(pin).exists(), "the pin is leaked");
    let name = Path::new(pin).file_name().unwrap().to_str().unwrap().to_owned();
    let container = m.read(&format!("net/{net}/container"));
    assert!(container.lines().any(|l| l == format!("was {line}")), "{container}");
    assert!(container.lines().any(|l| l == format!("netns {name}")), "{container}");
    let orphans = run(&[nsfuse_bin().to_str().unwrap(), "scan", "--orphans", "--type", "net"]);
    assert!(orphans.lines().any(|l| l.starts_with(&format!("{net} net"))), "{orphans}");
    std::fs::write(m.path(&format!("orphans/net/{net}/ctl")), "release all\n").unwrap();
    assert!(wait_for(5.0, || !m.path(&format!("net/{net}")).exists()), "release all left it");
    assert!(!Path::new(pin).exists(), "the leaked pin file is removed");
}
