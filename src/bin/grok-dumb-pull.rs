//! The grok-dumb-pull program; everything lives in the grok-dumb-pull crate.

fn main() {
    std::process::exit(grok_dumb_pull::main());
}
