//! What a run writes down: the status file ([`status`]), the forkgroups in
//! the manifest ([`forkgroups`]), and the report of critical errors, with
//! the replication check's lines in it, mailed at the end ([`report`],
//! [`replication`]).

pub mod forkgroups;
pub mod replication;
pub mod report;
pub mod status;
