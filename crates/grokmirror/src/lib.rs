//! The shared model of grokmirror-rs, a drop-in replacement for grokmirror
//! 2.x: the config file, the manifest, ref fingerprints, repository
//! discovery, the lock files shared with the Python tool, the files
//! grokmirror keeps in each repository, and a runner for the git CLI.
//!
//! Nothing here knows about command lines; the `grok-*` crates do.

#![warn(missing_docs)]

pub mod config;
pub mod family_queue;
pub mod formats;
pub mod git;
pub mod lock;
pub mod objstore;
pub mod process;
pub mod repo;
pub mod shard;
pub mod stop;
pub mod tree;

/// The grokmirror release whose formats and behaviour we match.
pub const REFERENCE_VERSION: &str = "2.0.12";
