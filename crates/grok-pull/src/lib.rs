//! grok-pull (work in progress: see the open issues).

/// Run the program; returns the exit status.
pub fn main() -> i32 {
    eprintln!("grok-pull: not implemented yet");
    grokmirror::EXIT_FAILURE
}
