//! The ctl grammar (SPEC sections 3 and 4), parsed without side effects:
//! a write is split into lines, each line into one `Command` or a refusal
//! that says why.

use crate::model::{Inode, NsType};
use std::path::PathBuf;

/// What `release` lets go of.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Release {
    /// Every pin of it in nsfuse's pin directories.
    Ours,
    /// The pin with this name.
    Name(String),
    /// This bind mount, wherever it is in nsfuse's mount namespace.
    Path(PathBuf),
    /// Every bind mount holding it, in every reachable mount namespace.
    All,
}

/// One parsed command line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    Pin { ty: NsType, inode: Inode, name: Option<String> },
    Release { ty: NsType, inode: Inode, what: Release },
    New { ty: NsType, name: Option<String> },
}

/// Where a command was written: the top-level ctl or a namespace's.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Target {
    Top,
    Ns(NsType, Inode),
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Top => f.write_str("ctl"),
            Target::Ns(t, i) => write!(f, "{t}/{i}/ctl"),
        }
    }
}

/// Why a line is not a command (EINVAL), in words the ctl file shows.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Invalid {
    #[error("the name is empty")]
    EmptyName,
    #[error("'{0}' cannot be a name")]
    DotName(String),
    #[error("the name is {0} bytes long; at most 255")]
    LongName(usize),
    #[error("the name may not hold {0:?}")]
    NameHolds(char),
    #[error("the path may not hold NUL")]
    NulInPath,
    #[error("unknown namespace type '{0}' (one of cgroup ipc mnt net pid time user uts)")]
    UnknownType(String),
    #[error("'{0}' is not an inode number")]
    NotAnInode(String),
    #[error("the line is not valid UTF-8")]
    NotUtf8,
    #[error("the line holds a NUL byte")]
    NulInLine,
    #[error("empty line")]
    EmptyLine,
    #[error("'{verb}' takes at most {max} argument(s), got {got}")]
    TooMany { verb: String, max: usize, got: usize },
    #[error("'{0}' needs {1}")]
    Needs(&'static str, &'static str),
    #[error("'new' is a command of the top-level ctl")]
    NewHere,
    #[error("unknown command '{0}'")]
    UnknownCommand(String),
}

/// Split a write into its command lines. A final newline ends the last
/// line; an empty line anywhere else is a line of its own (and invalid).
pub fn lines(data: &[u8]) -> Vec<&[u8]> {
    let body = data.strip_suffix(b"\n").unwrap_or(data);
    body.split(|&b| b == b'\n').collect()
}

/// Whether `name` may name a pin: not empty, `.` or `..`, no `/`, NUL or
/// whitespace, at most 255 bytes.
pub fn check_name(name: &str) -> Result<(), Invalid> {
    if name.is_empty() {
        return Err(Invalid::EmptyName);
    }
    if name == "." || name == ".." {
        return Err(Invalid::DotName(name.to_owned()));
    }
    if name.len() > 255 {
        return Err(Invalid::LongName(name.len()));
    }
    if let Some(c) = name.chars().find(|c| *c == '/' || *c == '\0' || c.is_whitespace() || c.is_control()) {
        return Err(Invalid::NameHolds(c));
    }
    Ok(())
}

fn name_arg(word: Option<&str>) -> Result<Option<String>, Invalid> {
    word.map(|w| check_name(w).map(|()| w.to_owned())).transpose()
}

fn release_arg(word: Option<&str>) -> Result<Release, Invalid> {
    Ok(match word {
        None => Release::Ours,
        Some("all") => Release::All,
        Some(p) if p.starts_with('/') => {
            if p.contains('\0') {
                return Err(Invalid::NulInPath);
            }
            Release::Path(PathBuf::from(p))
        }
        Some(n) => {
            check_name(n)?;
            Release::Name(n.to_owned())
        }
    })
}

fn ns_type(word: &str) -> Result<NsType, Invalid> {
    word.parse().map_err(|_| Invalid::UnknownType(word.to_owned()))
}

fn inode(word: &str) -> Result<Inode, Invalid> {
    crate::discovery::parse::canonical_decimal(word)
        .map(Inode)
        .ok_or_else(|| Invalid::NotAnInode(word.to_owned()))
}

/// Parse one line written to `target`'s ctl.
pub fn parse(target: Target, line: &[u8]) -> Result<Command, Invalid> {
    let line = std::str::from_utf8(line).map_err(|_| Invalid::NotUtf8)?;
    if line.contains('\0') {
        return Err(Invalid::NulInLine);
    }
    let words: Vec<&str> = line.split([' ', '\t']).filter(|w| !w.is_empty()).collect();
    let Some((&verb, args)) = words.split_first() else { return Err(Invalid::EmptyLine) };
    let too_many = |max: usize| {
        if args.len() > max {
            Err(Invalid::TooMany { verb: verb.to_owned(), max, got: args.len() })
        } else {
            Ok(())
        }
    };
    match (target, verb) {
        (Target::Ns(ty, inode), "pin") => {
            too_many(1)?;
            Ok(Command::Pin { ty, inode, name: name_arg(args.first().copied())? })
        }
        (Target::Ns(ty, inode), "release") => {
            too_many(1)?;
            Ok(Command::Release { ty, inode, what: release_arg(args.first().copied())? })
        }
        (Target::Top, "new") => {
            too_many(2)?;
            let ty = ns_type(args.first().ok_or(Invalid::Needs("new", "a TYPE"))?)?;
            Ok(Command::New { ty, name: name_arg(args.get(1).copied())? })
        }
        (Target::Top, "pin") => {
            too_many(3)?;
            if args.len() < 2 {
                return Err(Invalid::Needs("pin", "TYPE INODE"));
            }
            Ok(Command::Pin {
                ty: ns_type(args[0])?,
                inode: inode(args[1])?,
                name: name_arg(args.get(2).copied())?,
            })
        }
        (Target::Top, "release") => {
            too_many(3)?;
            if args.len() < 2 {
                return Err(Invalid::Needs("release", "TYPE INODE"));
            }
            Ok(Command::Release {
                ty: ns_type(args[0])?,
                inode: inode(args[1])?,
                what: release_arg(args.get(2).copied())?,
            })
        }
        (Target::Ns(..), "new") => Err(Invalid::NewHere),
        _ => Err(Invalid::UnknownCommand(verb.to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NET: Target = Target::Ns(NsType::Net, Inode(42));

    #[test]
    fn splits_lines() {
        assert_eq!(lines(b"pin\n"), vec![b"pin".as_slice()]);
        assert_eq!(lines(b"pin a\nrelease a\n"), vec![b"pin a".as_slice(), b"release a"]);
        assert_eq!(lines(b"pin\n\nrelease"), vec![b"pin".as_slice(), b"", b"release"]);
        assert_eq!(lines(b"\n"), vec![b"".as_slice()]);
        assert_eq!(lines(b""), vec![b"".as_slice()]);
    }

    #[test]
    fn namespace_commands() {
        assert_eq!(parse(NET, b"pin"), Ok(Command::Pin { ty: NsType::Net, inode: Inode(42), name: None }));
        assert_eq!(
            parse(NET, b"  pin\tweb "),
            Ok(Command::Pin { ty: NsType::Net, inode: Inode(42), name: Some("web".into()) })
        );
        assert_eq!(
            parse(NET, b"release"),
            Ok(Command::Release { ty: NsType::Net, inode: Inode(42), what: Release::Ours })
        );
        assert_eq!(
            parse(NET, b"release all").map(|c| matches!(c, Command::Release { what: Release::All, .. })),
            Ok(true)
        );
        assert_eq!(
            parse(NET, b"release /run/netns/x"),
            Ok(Command::Release {
                ty: NsType::Net,
                inode: Inode(42),
                what: Release::Path("/run/netns/x".into())
            })
        );
        assert_eq!(
            parse(NET, b"release web"),
            Ok(Command::Release { ty: NsType::Net, inode: Inode(42), what: Release::Name("web".into()) })
        );
    }

    #[test]
    fn top_commands() {
        assert_eq!(
            parse(Target::Top, b"new net web"),
            Ok(Command::New { ty: NsType::Net, name: Some("web".into()) })
        );
        assert_eq!(parse(Target::Top, b"new pid"), Ok(Command::New { ty: NsType::Pid, name: None }));
        assert_eq!(
            parse(Target::Top, b"pin uts 7 a"),
            Ok(Command::Pin { ty: NsType::Uts, inode: Inode(7), name: Some("a".into()) })
        );
        assert_eq!(
            parse(Target::Top, b"release uts 7 all"),
            Ok(Command::Release { ty: NsType::Uts, inode: Inode(7), what: Release::All })
        );
    }

    #[test]
    fn refusals() {
        let bad: &[(Target, &[u8])] = &[
            (NET, b""),
            (NET, b"   "),
            (NET, b"pinn"),
            (NET, b"pin a b"),
            (NET, b"pin ."),
            (NET, b"pin .."),
            (NET, b"pin a/b"),
            (NET, b"pin ../x"),
            (NET, b"pin x\0y"),
            (NET, b"pin \xff"),
            (NET, b"pin a\rb"),
            (NET, b"pin a\xc2\xa0b"),
            (NET, b"release a b"),
            (NET, b"release ../x"),
            (NET, b"new net"),
            (Target::Top, b"new"),
            (Target::Top, b"new bogus"),
            (Target::Top, b"new net a b"),
            (Target::Top, b"pin net"),
            (Target::Top, b"pin net x"),
            (Target::Top, b"pin net -1"),
            (Target::Top, b"release net"),
            (Target::Top, b"release bogus 1"),
            (Target::Top, b"pin net 1 a b"),
            (Target::Top, b"frobnicate"),
        ];
        for (t, line) in bad {
            assert!(parse(*t, line).is_err(), "{t} {:?} should be refused", String::from_utf8_lossy(line));
        }
        let long = "x".repeat(256);
        assert!(parse(NET, format!("pin {long}").as_bytes()).is_err());
        let max = "x".repeat(255);
        assert!(parse(NET, format!("pin {max}").as_bytes()).is_ok());
    }
}
