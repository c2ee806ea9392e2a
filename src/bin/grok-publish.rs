//! The grok-publish program; everything lives in the grok-publish crate.

fn main() {
    std::process::exit(grok_publish::main());
}
