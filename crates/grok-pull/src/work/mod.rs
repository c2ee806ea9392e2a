//! Doing the work: the jobs that clone, update and purge repositories, and
//! what they lean on (git runs, staging, hooks, object storage, the
//! housekeeping thread). Everything here touches the disk or the network.

pub mod gitio;
pub mod hooks;
pub mod housekeeping;
pub mod job;
pub mod objstore_clone;
pub mod out_of_sight;
pub(crate) mod piped;
