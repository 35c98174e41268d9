//! Owners from cgroup paths: `/proc/PID/cgroup` (v2 `0::PATH`, or v1
//! `N:name=systemd:PATH`) to the container, pod or unit the path names,
//! for both the systemd and the cgroupfs layouts of each engine.

use super::{Kind, Owner};

/// The cgroup path a `/proc/PID/cgroup` text gives a process: the v2 one,
/// else the v1 `name=systemd` one. `None` if neither is there.
pub fn path_of(text: &str) -> Option<&str> {
    let v2 = text.lines().find_map(|l| l.strip_prefix("0::"));
    let v1 = || text.lines().find_map(|l| l.split_once(':').map(|(_, r)| r)?.strip_prefix("name=systemd:"));
    v2.filter(|p| *p != "/").or_else(v1).or(v2)
}

/// Whether a cgroup path is the host's own (no owner line for it).
pub fn is_host(path: &str) -> bool {
    matches!(path, "" | "/" | "/init.scope")
}

/// The owner a cgroup path names; `None` for the host's own cgroups and
/// for helpers that own nothing (conmon). Unknown shapes: `cgroup PATH`.
pub fn owner(path: &str) -> Option<Owner> {
    if is_host(path) {
        return None;
    }
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    let last = *parts.last()?;
    if last.contains("-conmon-") || last == "conmon" {
        return None;
    }
    if let Some(k8s) = kubernetes(&parts) {
        return Some(k8s);
    }
    Some(engine(&parts).unwrap_or_else(|| Owner::new(Kind::Cgroup, path)))
}

/// A container ID: 12 to 64 lowercase hex digits.
fn container_id(s: &str) -> Option<&str> {
    (s.len() >= 12 && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
        .then_some(s)
}

/// `PREFIX-ID.scope` (systemd driver) -> ID.
fn scoped<'a>(part: &'a str, prefix: &str) -> Option<&'a str> {
    container_id(part.strip_prefix(prefix)?.strip_suffix(".scope")?)
}

fn engine(parts: &[&str]) -> Option<Owner> {
    let last = *parts.last()?;
    let parent = parts.len().checked_sub(2).map(|i| parts[i]);
    let scopes = [
        ("docker-", Kind::Docker),
        ("cri-containerd-", Kind::Containerd),
        ("crio-", Kind::CriO),
        ("libpod-", Kind::Podman),
    ];
    // The innermost engine scope (a container may make sub-cgroups below it).
    for part in parts.iter().rev() {
        for (prefix, kind) in scopes {
            if let Some(id) = scoped(part, prefix) {
                return Some(Owner::new(kind, id));
            }
        }
    }
    // cgroupfs driver: /docker/ID, /libpod_parent/libpod-ID, /lxc/NAME.
    match (parent, last) {
        (Some("docker"), id) => return container_id(id).map(|id| Owner::new(Kind::Docker, id)),
        (Some("libpod_parent"), p) => {
            return container_id(p.strip_prefix("libpod-")?).map(|id| Owner::new(Kind::Podman, id))
        }
        (Some("lxc"), name) => return Some(Owner::new(Kind::Lxc, name)),
        _ => {}
    }
    // lxc: lxc.payload.NAME (any depth below it).
    if let Some(name) = parts.iter().find_map(|p| p.strip_prefix("lxc.payload.")).filter(|n| !n.is_empty()) {
        return Some(Owner::new(Kind::Lxc, name));
    }
    let machine = last.strip_prefix("machine-").and_then(|m| m.strip_suffix(".scope"));
    if let Some(name) = machine.filter(|n| !n.is_empty()) {
        return Some(Owner::new(Kind::Nspawn, unescape_unit(name)));
    }
    // Any other unit, the innermost one named.
    let unit = parts.iter().rev().find(|p| p.ends_with(".service") || p.ends_with(".scope"))?;
    Some(Owner::new(Kind::Systemd, unescape_unit(unit)))
}

/// `kubepods[-QOS].slice/kubepods-QOS-podUID.slice/ENGINE-ID.scope` (systemd)
/// or `kubepods/QOS/podUID/ID` (cgroupfs) -> `kubernetes UID ID`.
fn kubernetes(parts: &[&str]) -> Option<Owner> {
    if !parts.first()?.starts_with("kubepods") {
        return None;
    }
    let pod = parts.iter().enumerate().find_map(|(i, p)| {
        let uid = match p.strip_suffix(".slice") {
            Some(slice) => slice.rsplit_once("-pod")?.1.replace('_', "-"),
            None => p.strip_prefix("pod")?.to_owned(),
        };
        let valid = uid.len() >= 8 && uid.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-');
        valid.then_some((i, uid))
    });
    let (at, uid) = pod?;
    let container = parts.get(at + 1).and_then(|c| {
        ["cri-containerd-", "crio-", "docker-", "libpod-"]
            .iter()
            .find_map(|prefix| scoped(c, prefix))
            .or_else(|| container_id(c))
    });
    Some(match container {
        Some(id) => Owner::named(Kind::Kubernetes, uid, id),
        None => Owner::new(Kind::Kubernetes, uid),
    })
}

/// systemd's unit-name escapes (`\x2d` for `-`, ...) undone.
fn unescape_unit(s: &str) -> String {
    let mut out = Vec::with_capacity(s.len());
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let hex = b.get(i + 2..i + 4).and_then(|h| u8::from_str_radix(std::str::from_utf8(h).ok()?, 16).ok());
        match (b[i], b.get(i + 1), hex) {
            (b'\\', Some(b'x'), Some(v)) => {
                out.push(v);
                i += 4;
            }
            (c, ..) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "3f4e5d6c7b8a99887766554433221100ffeeddccbbaa00112233445566778899";

    fn line(path: &str) -> Option<String> {
        owner(path).map(|o| o.to_string())
    }

    #[test]
    fn paths_from_proc_cgroup() {
        assert_eq!(path_of("0::/system.slice/docker-x.scope\n"), Some("/system.slice/docker-x.scope"));
        let hybrid = "9:name=systemd:/docker/abc\n8:pids:/\n0::/\n";
        assert_eq!(path_of(hybrid), Some("/docker/abc"), "v2 at the root: v1 name=systemd says more");
        assert_eq!(path_of("9:name=systemd:/\n0::/\n"), Some("/"));
        assert_eq!(path_of("1:cpu:/x\n"), None);
        assert_eq!(path_of(""), None);
    }

    #[test]
    fn docker_both_drivers() {
        assert_eq!(line(&format!("/system.slice/docker-{ID}.scope")), Some(format!("docker {ID}")));
        assert_eq!(line(&format!("/docker/{ID}")), Some(format!("docker {ID}")));
    }

    #[test]
    fn containerd_crio_podman() {
        assert_eq!(
            line(&format!("/system.slice/cri-containerd-{ID}.scope")),
            Some(format!("containerd {ID}"))
        );
        assert_eq!(line(&format!("/machine.slice/crio-{ID}.scope")), Some(format!("cri-o {ID}")));
        assert_eq!(line(&format!("/machine.slice/libpod-{ID}.scope")), Some(format!("podman {ID}")));
        assert_eq!(
            line(&format!("/machine.slice/libpod-{ID}.scope/container")),
            Some(format!("podman {ID}"))
        );
        assert_eq!(line(&format!("/libpod_parent/libpod-{ID}")), Some(format!("podman {ID}")));
        // conmon helpers own nothing.
        assert_eq!(line(&format!("/machine.slice/libpod-conmon-{ID}.scope")), None);
        assert_eq!(line(&format!("/machine.slice/crio-conmon-{ID}.scope")), None);
    }

    #[test]
    fn kubernetes_pods() {
        let systemd = format!(
            "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1a2b3c4d_5e6f_7a8b_9c0d_112233445566.slice/cri-containerd-{ID}.scope"
        );
        assert_eq!(line(&systemd), Some(format!("kubernetes 1a2b3c4d-5e6f-7a8b-9c0d-112233445566 {ID}")));
        let cgroupfs = format!("/kubepods/besteffort/pod1a2b3c4d-5e6f-7a8b-9c0d-112233445566/{ID}");
        assert_eq!(line(&cgroupfs), Some(format!("kubernetes 1a2b3c4d-5e6f-7a8b-9c0d-112233445566 {ID}")));
        let pod_only = "/kubepods.slice/kubepods-pod1a2b3c4d_5e6f_7a8b_9c0d_112233445566.slice";
        assert_eq!(line(pod_only), Some("kubernetes 1a2b3c4d-5e6f-7a8b-9c0d-112233445566".into()));
    }

    #[test]
    fn lxc_nspawn_systemd() {
        assert_eq!(line("/lxc.payload.web/init.scope"), Some("lxc web".into()));
        assert_eq!(line("/lxc.payload.web"), Some("lxc web".into()));
        assert_eq!(line("/lxc/web"), Some("lxc web".into()));
        assert_eq!(line("/machine.slice/machine-my\\x2dbox.scope"), Some("nspawn my-box".into()));
        assert_eq!(line("/system.slice/nginx.service"), Some("systemd nginx.service".into()));
        assert_eq!(
            line("/user.slice/user-1000.slice/session-3.scope"),
            Some("systemd session-3.scope".into())
        );
        assert_eq!(
            line("/system.slice/systemd-resolved.service"),
            Some("systemd systemd-resolved.service".into())
        );
    }

    #[test]
    fn the_host_owns_no_line() {
        for host in ["/", "", "/init.scope"] {
            assert_eq!(owner(host), None, "{host}");
        }
    }

    #[test]
    fn malformed_paths_are_shown_not_guessed() {
        // A truncated ID, a name with escapes, a path with newlines.
        assert_eq!(line("/system.slice/docker-3f4e.scope"), Some("systemd docker-3f4e.scope".into()));
        assert_eq!(line("/docker/not-an-id"), Some("cgroup /docker/not-an-id".into()));
        assert_eq!(line("/a\nfake 1\n/b"), Some("cgroup /a\\012fake 1\\012/b".into()));
        assert_eq!(line("/machine.slice/machine-\\x.scope"), Some("nspawn \\134x".into()));
        assert_eq!(line("/machine.slice/machine-.scope"), Some("systemd machine-.scope".into()));
        assert_eq!(
            line("/kubepods.slice/kubepods-podZZ.slice"),
            Some("cgroup /kubepods.slice/kubepods-podZZ.slice".into())
        );
        assert_eq!(line("/lxc.payload."), Some("cgroup /lxc.payload.".into()));
        assert_eq!(line("/x/y"), Some("cgroup /x/y".into()));
        for weird in
            ["//", "/\u{0}", "/docker/", "/libpod_parent/libpod-", "-conmon-", "/.scope", "/kubepods"]
        {
            let _ = owner(weird);
        }
    }
}
