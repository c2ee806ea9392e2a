//! The grok-manifest program; everything lives in the grok-manifest crate.

fn main() {
    std::process::exit(grok_manifest::main());
}
