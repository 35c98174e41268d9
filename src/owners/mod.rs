//! Who owns a namespace: the container, pod or systemd unit its member
//! processes belong to (from their cgroup path), or, with no process in it,
//! what its pin path names (`cni-UUID`, `/run/docker/netns/ID`, an `ip
//! netns` name). Pure parsers over literal text, so every shape is tested
//! without an engine; malformed input yields `cgroup PATH`, never a guess
//! or a panic.

pub mod cgroup;
pub mod index;
pub mod pin_names;

use std::fmt;

/// One owner line of a namespace's `container` file: `KIND ID [NAME]`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Owner {
    pub kind: Kind,
    pub id: String,
    /// A second field where the kind has one (kubernetes: the container ID).
    pub name: Option<String>,
}

/// What kind of thing owns a namespace.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    Docker,
    Containerd,
    CriO,
    Podman,
    Kubernetes,
    Lxc,
    Nspawn,
    Systemd,
    Cni,
    Netns,
    /// A cgroup of no shape nsfuse knows: the path itself.
    Cgroup,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Docker => "docker",
            Kind::Containerd => "containerd",
            Kind::CriO => "cri-o",
            Kind::Podman => "podman",
            Kind::Kubernetes => "kubernetes",
            Kind::Lxc => "lxc",
            Kind::Nspawn => "nspawn",
            Kind::Systemd => "systemd",
            Kind::Cni => "cni",
            Kind::Netns => "netns",
            Kind::Cgroup => "cgroup",
        }
    }
}

impl Owner {
    pub fn new(kind: Kind, id: impl Into<String>) -> Owner {
        Owner { kind, id: id.into(), name: None }
    }

    pub fn named(kind: Kind, id: impl Into<String>, name: impl Into<String>) -> Owner {
        Owner { kind, id: id.into(), name: Some(name.into()) }
    }
}

/// The line, with the ID and name escaped as every text file escapes them.
impl fmt::Display for Owner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.kind.name(), crate::render::escape(&self.id))?;
        if let Some(n) = &self.name {
            write!(f, " {}", crate::render::escape(n))?;
        }
        Ok(())
    }
}
