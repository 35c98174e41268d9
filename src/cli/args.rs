//! Command-line parsing (pure): `nsfuse MOUNTPOINT [-f] [-o OPTS]`, the
//! mount(8) helper form `nsfuse SOURCE MOUNTPOINT -o OPTS`, and
//! `nsfuse scan [--json|--prometheus] [--orphans] [--type TYPE]`. Every option of SPEC section 1 is
//! accepted both as `-o name[=value]` and as `--name[=value]`.

use crate::model::NsType;
use std::path::PathBuf;

/// How the tree is mounted and served.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MountConfig {
    pub mountpoint: PathBuf,
    pub foreground: bool,
    pub allow_other: bool,
    pub read_only: bool,
    pub pin_dir: PathBuf,
    pub netns_dir: PathBuf,
    pub refresh_ms: u64,
    /// How many lines `events` keeps.
    pub events_max: usize,
    pub fsname: String,
    pub debug: bool,
}

impl MountConfig {
    pub fn new(mountpoint: PathBuf) -> Self {
        MountConfig {
            mountpoint,
            foreground: false,
            allow_other: false,
            read_only: false,
            pin_dir: PathBuf::from("/run/nsfuse"),
            netns_dir: PathBuf::from("/run/netns"),
            refresh_ms: 1000,
            events_max: 10_000,
            fsname: "nsfuse".into(),
            debug: false,
        }
    }
}

/// What the user asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    Mount(MountConfig),
    Scan { json: bool, ns_type: Option<NsType>, orphans: bool, prometheus: bool },
    Help,
    Version,
}

/// A usage error, with a message that names the offending word.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// mount(8) options with no meaning for nsfuse, accepted so fstab lines work.
const IGNORED: &[&str] = &[
    "rw", "nosuid", "suid", "nodev", "dev", "noexec", "exec", "atime", "noatime", "relatime", "defaults",
    "auto", "noauto", "nofail", "_netdev", "user", "nouser", "users", "async", "sync",
];

pub const USAGE: &str = "\
Usage:
  nsfuse MOUNTPOINT [-f] [-o OPT[,OPT...]]    mount the namespace tree
  nsfuse SOURCE MOUNTPOINT -o OPTS           the same, as mount(8) calls it
  nsfuse scan [--json|--prometheus] [--orphans] [--type TYPE]
                                             print what discovery finds, once
                                             (--orphans: only namespaces with no task;
                                             --prometheus: metrics, text format 0.0.4)

Options (as -o NAME[=VALUE] or --NAME[=VALUE]):
  -f, --foreground     stay in the foreground and log to stderr
  allow_other          let every user browse (non-root users see only what
                       /proc lets them see, and never write a ctl)
  ro                   read-only: no control files
  pin_dir=DIR          where pins live (default /run/nsfuse)
  netns_dir=DIR        where network namespace pins live, shared with
                       `ip netns` (default /run/netns)
  refresh_ms=N         background refresh cadence while in use, and how old a
                       file may be (default 1000); listings are always fresh
  events_max=N         lines the events log keeps (default 10000)
  fsname=NAME          the source name shown in mount tables (default nsfuse)
  debug                log every request (same as RUST_LOG=debug)
  -h, --help           this text
  -V, --version        the version

Needs root (CAP_SYS_ADMIN). RUST_LOG controls logging.
Exit codes: 0 ok, 1 runtime error, 2 usage error.
";

/// Parse argv (without the program name).
pub fn parse<S: AsRef<str>>(argv: &[S]) -> Result<Command, UsageError> {
    let args: Vec<&str> = argv.iter().map(AsRef::as_ref).collect();
    if args.first() == Some(&"scan") {
        return parse_scan(&args[1..]);
    }
    let mut positional = Vec::new();
    let mut opts: Vec<String> = Vec::new();
    let mut foreground = false;
    let mut i = 0;
    while i < args.len() {
        let a = args[i];
        match a {
            "-h" | "--help" => return Ok(Command::Help),
            "-V" | "--version" => return Ok(Command::Version),
            "-f" | "--foreground" => foreground = true,
            // mount(8) passes these to helpers: fake, sloppy, verbose, no-mtab.
            "-n" | "-s" | "-v" => {}
            "-o" => {
                i += 1;
                let v = args.get(i).ok_or_else(|| UsageError("-o needs a value".into()))?;
                opts.extend(v.split(',').filter(|s| !s.is_empty()).map(str::to_owned));
            }
            _ if a.starts_with("-o") && a.len() > 2 => {
                opts.extend(a[2..].split(',').filter(|s| !s.is_empty()).map(str::to_owned));
            }
            _ if a.starts_with("--") => opts.push(long_option(&args, &mut i)?),
            _ if a.starts_with('-') && a.len() > 1 => return Err(UsageError(format!("unknown flag '{a}'"))),
            _ => positional.push(a),
        }
        i += 1;
    }
    let mountpoint = match positional.as_slice() {
        [mp] | [_, mp] => PathBuf::from(mp),
        [] => return Err(UsageError("missing MOUNTPOINT".into())),
        _ => return Err(UsageError(format!("too many arguments: {}", positional.join(" ")))),
    };
    let mut cfg = MountConfig::new(mountpoint);
    cfg.foreground = foreground;
    for o in opts {
        apply_option(&mut cfg, &o)?;
    }
    Ok(Command::Mount(cfg))
}

/// `--name[=value]` at `args[*i]` as a mount option (`name=value`); a
/// name that takes a value and has none here takes the next argument.
fn long_option(args: &[&str], i: &mut usize) -> Result<String, UsageError> {
    let a = args[*i];
    let (name, value) = match a[2..].split_once('=') {
        Some((n, v)) => (n.replace('-', "_"), Some(v.to_owned())),
        None => (a[2..].replace('-', "_"), None),
    };
    let takes_value =
        matches!(name.as_str(), "pin_dir" | "netns_dir" | "refresh_ms" | "events_max" | "fsname");
    let value = match (value, takes_value) {
        (Some(v), _) => Some(v),
        (None, true) => {
            *i += 1;
            Some(args.get(*i).ok_or_else(|| UsageError(format!("--{name} needs a value")))?.to_string())
        }
        (None, false) => None,
    };
    Ok(match value {
        Some(v) => format!("{name}={v}"),
        None => name,
    })
}

fn apply_option(cfg: &mut MountConfig, opt: &str) -> Result<(), UsageError> {
    let (name, value) = match opt.split_once('=') {
        Some((n, v)) => (n, Some(v)),
        None => (opt, None),
    };
    let need = |v: Option<&str>| {
        v.filter(|v| !v.is_empty())
            .map(str::to_owned)
            .ok_or_else(|| UsageError(format!("option '{name}' needs a value")))
    };
    match name {
        "allow_other" => cfg.allow_other = true,
        "ro" => cfg.read_only = true,
        "foreground" => cfg.foreground = true,
        "debug" => cfg.debug = true,
        "pin_dir" => cfg.pin_dir = absolute(name, need(value)?)?,
        "netns_dir" => cfg.netns_dir = absolute(name, need(value)?)?,
        "fsname" => cfg.fsname = need(value)?,
        "events_max" => {
            let v = need(value)?;
            cfg.events_max =
                v.parse().ok().filter(|n| *n > 0).ok_or_else(|| {
                    UsageError(format!("events_max: '{v}' is not a positive number of lines"))
                })?;
        }
        "refresh_ms" => {
            let v = need(value)?;
            cfg.refresh_ms = v
                .parse()
                .map_err(|_| UsageError(format!("refresh_ms: '{v}' is not a number of milliseconds")))?;
        }
        n if IGNORED.contains(&n) || n.starts_with("x-") => {}
        _ => return Err(UsageError(format!("unknown option '{opt}'"))),
    }
    Ok(())
}

fn absolute(name: &str, v: String) -> Result<PathBuf, UsageError> {
    let p = PathBuf::from(&v);
    if !p.is_absolute() {
        return Err(UsageError(format!("{name}: '{v}' must be an absolute path")));
    }
    Ok(p)
}

fn parse_scan(args: &[&str]) -> Result<Command, UsageError> {
    let mut json = false;
    let mut orphans = false;
    let mut prometheus = false;
    let mut ns_type = None;
    let mut i = 0;
    while i < args.len() {
        match args[i] {
            "--json" | "-J" => json = true,
            "--orphans" => orphans = true,
            "--prometheus" => prometheus = true,
            "-h" | "--help" => return Ok(Command::Help),
            "--type" | "-t" => {
                i += 1;
                let v = args.get(i).ok_or_else(|| UsageError("--type needs a value".into()))?;
                ns_type = Some(parse_type(v)?);
            }
            a if a.starts_with("--type=") => ns_type = Some(parse_type(&a[7..])?),
            a => return Err(UsageError(format!("scan: unknown argument '{a}'"))),
        }
        i += 1;
    }
    Ok(Command::Scan { json, ns_type, orphans, prometheus })
}

fn parse_type(v: &str) -> Result<NsType, UsageError> {
    v.parse().map_err(|_| {
        UsageError(format!("unknown namespace type '{v}' (one of cgroup ipc mnt net pid time user uts)"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mount(args: &[&str]) -> MountConfig {
        match parse(args) {
            Ok(Command::Mount(c)) => c,
            other => panic!("{args:?} gave {other:?}"),
        }
    }

    #[test]
    fn plain_mount() {
        let c = mount(&["/mnt/ns"]);
        assert_eq!(c, MountConfig::new("/mnt/ns".into()));
    }

    #[test]
    fn options_both_ways() {
        let c =
            mount(&["/m", "-f", "-o", "allow_other,ro,pin_dir=/p,netns_dir=/n,refresh_ms=50,fsname=x,debug"]);
        assert!(c.foreground && c.allow_other && c.read_only && c.debug);
        assert_eq!((c.pin_dir.to_str(), c.netns_dir.to_str(), c.refresh_ms), (Some("/p"), Some("/n"), 50));
        assert_eq!(c.fsname, "x");
        let d = mount(&[
            "--allow-other",
            "--ro",
            "--pin-dir",
            "/p",
            "--netns-dir=/n",
            "--refresh-ms",
            "50",
            "--fsname=x",
            "--debug",
            "-f",
            "/m",
        ]);
        assert_eq!(c, d);
    }

    #[test]
    fn mount_helper_form() {
        let c = mount(&["nsfuse", "/mnt/ns", "-o", "rw,nosuid,allow_other"]);
        assert_eq!(c.mountpoint, PathBuf::from("/mnt/ns"));
        assert!(c.allow_other);
        let d = mount(&["none", "/mnt/ns", "-n", "-o", "defaults,x-systemd.automount"]);
        assert_eq!(d.mountpoint, PathBuf::from("/mnt/ns"));
    }

    #[test]
    fn refusals_name_the_word() {
        let err = |a: &[&str]| parse(a).unwrap_err().0;
        assert!(err(&["/m", "-o", "bogus"]).contains("bogus"));
        assert!(err(&["/m", "--bogus"]).contains("bogus"));
        assert!(err(&["/m", "-x"]).contains("-x"));
        assert!(err(&["/m", "-o", "refresh_ms=soon"]).contains("soon"));
        assert!(err(&["/m", "-o", "events_max=0"]).contains("events_max"));
        assert_eq!(mount(&["/m", "-o", "events_max=3"]).events_max, 3);
        assert!(err(&["/m", "-o", "pin_dir=rel"]).contains("absolute"));
        assert!(err(&["/m", "-o", "pin_dir="]).contains("pin_dir"));
        assert!(err(&[]).contains("MOUNTPOINT"));
        assert!(err(&["a", "b", "c"]).contains("too many"));
        assert!(err(&["/m", "-o"]).contains("-o"));
    }

    #[test]
    fn scan_forms() {
        assert_eq!(
            parse(&["scan"]),
            Ok(Command::Scan { json: false, ns_type: None, orphans: false, prometheus: false })
        );
        assert_eq!(
            parse(&["scan", "--json", "--type", "net"]),
            Ok(Command::Scan { json: true, ns_type: Some(NsType::Net), orphans: false, prometheus: false })
        );
        assert_eq!(
            parse(&["scan", "--type=uts", "--orphans"]),
            Ok(Command::Scan { json: false, ns_type: Some(NsType::Uts), orphans: true, prometheus: false })
        );
        assert!(parse(&["scan", "--type", "bogus"]).unwrap_err().0.contains("bogus"));
        assert!(parse(&["scan", "--what"]).is_err());
        assert!(matches!(parse(&["scan", "--prometheus"]), Ok(Command::Scan { prometheus: true, .. })));
    }

    #[test]
    fn help_and_version() {
        assert_eq!(parse(&["--help"]), Ok(Command::Help));
        assert_eq!(parse(&["-V"]), Ok(Command::Version));
        assert_eq!(parse(&["--version"]), Ok(Command::Version));
    }
}
