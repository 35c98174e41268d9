//! nsfuse: every live Linux namespace as a browsable FUSE tree, with control
//! files to pin, release and create namespaces.
//!
//! Layers, from the kernel up: `sys` (syscalls) -> `discovery` (reads the
//! kernel into a `model::Snapshot`) -> `render` (file contents) -> `fs` (the
//! tree and the FUSE adapter) and `control` (pin, release, new) -> `cli` and
//! `daemon`. Discovery and the model work without FUSE.

pub mod bounded;
pub mod cli;
pub mod control;
pub mod daemon;
pub mod discovery;
pub mod enter;
pub mod events;
pub mod fs;
pub mod helper;
pub mod json;
pub mod locks;
pub mod logging;
pub mod metrics;
pub mod model;
pub mod owners;
pub mod parallel;
pub mod render;
pub mod sys;
