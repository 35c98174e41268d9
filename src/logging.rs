//! Where log lines go: stderr in the foreground (`env_logger`), the
//! system log once the daemon is in the background (the `syslog` crate, over
//! `/dev/log`, which the journal reads), with the same levels and the same
//! `RUST_LOG` filtering (`env_filter`) either way.

use log::{Log, Metadata, Record};

/// The socket the system log listens on; `NSFUSE_SYSLOG_SOCKET` names
/// another (tests run their own receiver).
const DEV_LOG: &str = "/dev/log";

/// The default level: info, or debug with `-o debug`; `RUST_LOG` wins.
fn filter(debug: bool) -> env_filter::Filter {
    let mut b = env_filter::Builder::new();
    b.filter_level(if debug { log::LevelFilter::Debug } else { log::LevelFilter::Info });
    if let Ok(spec) = std::env::var("RUST_LOG") {
        b.parse(&spec);
    }
    b.build()
}

/// Log to stderr.
pub fn to_stderr(debug: bool) {
    let default = if debug { "debug" } else { "info" };
    let _ = env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(default)).try_init();
}

/// Log to the system log (falling back to stderr if it cannot be reached).
pub fn to_syslog(debug: bool) {
    let path = std::env::var("NSFUSE_SYSLOG_SOCKET").unwrap_or_else(|_| DEV_LOG.to_owned());
    let formatter = syslog::Formatter3164 {
        facility: syslog::Facility::LOG_DAEMON,
        hostname: None,
        process: "nsfuse".into(),
        pid: std::process::id(),
    };
    match syslog::unix_custom(formatter, &path) {
        Ok(logger) => {
            let filter = filter(debug);
            log::set_max_level(filter.filter());
            let _ =
                log::set_boxed_logger(Box::new(Syslog { filter, inner: syslog::BasicLogger::new(logger) }));
        }
        Err(e) => {
            to_stderr(debug);
            log::warn!("cannot reach the system log at {path} ({e}): logging to stderr");
        }
    }
}

/// The system log behind a `RUST_LOG` filter.
struct Syslog {
    filter: env_filter::Filter,
    inner: syslog::BasicLogger,
}

impl Log for Syslog {
    fn enabled(&self, m: &Metadata<'_>) -> bool {
        self.filter.enabled(m)
    }

    fn log(&self, r: &Record<'_>) {
        if self.filter.matches(r) {
            self.inner.log(r);
        }
    }

    fn flush(&self) {
        self.inner.flush();
    }
}
