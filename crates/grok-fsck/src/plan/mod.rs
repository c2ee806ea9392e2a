//! The decisions of a run, free of I/O so they can be tested on their own:
//! when each repository is due and what it needs ([`schedule`]), the
//! task that carries a decision to the workers ([`task`]), and whether a
//! corrupt repository is asked to be re-cloned ([`reclone`]).

pub mod reclone;
pub mod schedule;
pub mod task;
