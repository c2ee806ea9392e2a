//! The grok-pull program; everything lives in the grok-pull crate.

fn main() {
    std::process::exit(grok_pull::main());
}
