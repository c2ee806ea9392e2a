//! The grok-pi-indexer program; everything lives in the grok-pi-indexer crate.

fn main() {
    std::process::exit(grok_pi_indexer::main());
}
