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
            init_logging(false);
            let format = match (json, prometheus) {
                (_, true) => nsfuse::cli::scan::Format::Prometheus,
                (true, false) => nsfuse::cli::scan::Format::Json,
                (false, false) => nsfuse::cli::scan::Format::Table,
            };
            nsfuse::cli::scan::run(format, ns_type, orphans)
        }
        Ok(Command::Mount(cfg)) => {
            init_logging(cfg.debug);
            nsfuse::daemon::run(cfg)
        }
        Err(e) => {
            eprintln!("nsfuse: {e}\nTry 'nsfuse --help'.");
            2
        }
    };
    std::process::exit(code);
}

/// `RUST_LOG` wins; otherwise info (debug with `-o debug`).
fn init_logging(debug: bool) {
    let default = if debug { "debug" } else { "info" };
    let _ = env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(default)).try_init();
}
