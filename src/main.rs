//! The `nsfuse` binary: parse the command line and dispatch.

use nsfuse::cli::args::{self, Command};

fn main() {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    if argv.first().map(String::as_str) == Some(nsfuse::helper::HELPER_ARG) {
        std::process::exit(nsfuse::helper::main(&argv[1..]));
    }
    let code = match args::parse(&argv) {
        Ok(Command::Help) => {
            print!("{}", args::USAGE);
            0
        }
        Ok(Command::Version) => {
            println!("nsfuse {}", env!("CARGO_PKG_VERSION"));
            0
        }
        Ok(Command::Scan { json, ns_type, orphans, prometheus }) => {
            nsfuse::logging::to_stderr(false);
            let format = match (json, prometheus) {
                (_, true) => nsfuse::cli::scan::Format::Prometheus,
                (true, false) => nsfuse::cli::scan::Format::Json,
                (false, false) => nsfuse::cli::scan::Format::Table,
            };
            nsfuse::cli::scan::run(format, ns_type, orphans)
        }
        Ok(Command::Mount(cfg)) => {
            // In the background, to the system log (the journal reads it).
            // (Without root it says so in one line on stderr and stops.)
            if cfg.foreground || nsfuse::sys::geteuid() != 0 {
                nsfuse::logging::to_stderr(cfg.debug);
            } else {
                nsfuse::logging::to_syslog(cfg.debug);
            }
            nsfuse::daemon::run(cfg)
        }
        Err(e) => {
            eprintln!("nsfuse: {e}\nTry 'nsfuse --help'.");
            2
        }
    };
    std::process::exit(code);
}
