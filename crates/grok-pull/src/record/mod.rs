//! Writing down what happened: the local manifest, the freshness file and
//! its metrics, the statistics, the `--status` report and the progress bar
//! of a one-shot run.

pub mod fresh;
pub mod freshmetrics;
pub mod local_manifest;
pub mod metrics;
pub mod progress;
pub mod status;
