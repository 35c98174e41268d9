//! Owners from pin paths, for a namespace with no process left: the
//! leftovers of CNI (`NETNS_DIR/cni-UUID`), Docker (`/run/docker/netns/ID`)
//! and `ip netns` (any other name in `NETNS_DIR`).

use super::{Kind, Owner};
use std::path::Path;

/// Where Docker keeps its network namespaces.
const DOCKER_NETNS: &str = "/run/docker/netns";

/// The owner a pin at `path` names, given the `ip netns` directory.
pub fn owner(path: &Path, netns_dir: &Path) -> Option<Owner> {
    let name = path.file_name()?.to_str()?;
    let dir = path.parent()?;
    if dir == Path::new(DOCKER_NETNS) {
        return Some(Owner::new(Kind::Docker, name));
    }
    if dir != netns_dir {
        return None;
    }
    match name.strip_prefix("cni-") {
        Some(uuid) if !uuid.is_empty() => Some(Owner::new(Kind::Cni, uuid)),
        _ => Some(Owner::new(Kind::Netns, name)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(p: &str) -> Option<String> {
        owner(Path::new(p), Path::new("/run/netns")).map(|o| o.to_string())
    }

    #[test]
    fn pin_paths() {
        assert_eq!(
            line("/run/netns/cni-1a2b3c4d-5e6f-7a8b-9c0d-112233445566"),
            Some("cni 1a2b3c4d-5e6f-7a8b-9c0d-112233445566".into())
        );
        assert_eq!(line("/run/docker/netns/5f3a2b1c0d9e"), Some("docker 5f3a2b1c0d9e".into()));
        assert_eq!(line("/run/netns/web"), Some("netns web".into()));
        assert_eq!(line("/run/netns/cni-"), Some("netns cni-".into()));
        assert_eq!(line("/run/netns/a\nb"), Some("netns a\\012b".into()));
        assert_eq!(line("/tmp/x"), None);
        assert_eq!(line("/"), None);
        assert_eq!(line("/run/netns/sub/x"), None);
    }
}
