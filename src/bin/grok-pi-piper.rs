//! The grok-pi-piper program; everything lives in the grok-pi-piper crate.

fn main() {
    std::process::exit(grok_pi_piper::main());
}
