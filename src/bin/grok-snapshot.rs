//! The grok-snapshot program; everything lives in the grok-snapshot crate.

fn main() {
    std::process::exit(grok_snapshot::main());
}
