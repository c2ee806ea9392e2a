//! The grok-shallow-tar program; everything lives in the grok-shallow-tar crate.

fn main() {
    std::process::exit(grok_shallow_tar::main());
}
