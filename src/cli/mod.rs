//! The command line: argument parsing and the `scan` command. Mounting is
//! handed to `daemon`.

pub mod args;
pub mod scan;
