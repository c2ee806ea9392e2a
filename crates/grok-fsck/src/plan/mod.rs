//! The decisions of a run, free of I/O so they can be tested on their own:
//! when each repository is due and what it needs ([`schedule`]), and the
//! task that carries a decision to the workers ([`task`]).

pub mod schedule;
pub mod task;
