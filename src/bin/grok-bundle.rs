//! The grok-bundle program; everything lives in the grok-bundle crate.

fn main() {
    std::process::exit(grok_bundle::main());
}
