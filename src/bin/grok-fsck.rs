//! The grok-fsck program; everything lives in the grok-fsck crate.

fn main() {
    std::process::exit(grok_fsck::main());
}
