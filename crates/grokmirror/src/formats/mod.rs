//! The files grokmirror and grokmirror-rs exchange or keep, byte for byte
//! compatible with grokmirror 2.0.12 (SPEC §1): the manifest and the JSON
//! it is written in, the untrusted remote manifest as it is read, the
//! replica's copy of the last remote manifest, grok-fsck's status file and
//! our own freshness file.

pub mod freshness;
pub mod fsck_status;
pub mod gzip_members;
pub mod json;
pub mod last_remote;
pub mod manifest;
pub mod manifest_parallel;
pub mod remote_manifest;
