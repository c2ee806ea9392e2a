//! `cargo xtask`: regenerate the checked-in documentation of the suite.
//!
//! ```text
//! cargo xtask man          # man/*.1 and man/grokmirror.conf.5
//! cargo xtask completions  # completions/ for bash, zsh and fish
//! cargo xtask conf         # grokmirror.conf.example, pi-piper.conf.example, man/grokmirror.conf.5
//! cargo xtask all          # all of the above
//! cargo xtask check        # exit 1 if anything checked in is stale
//! ```

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "xtask",
    about = "Generate man pages, completions and the example config"
)]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Debug, Subcommand)]
enum Task {
    /// Write man/*.1 from the clap definitions, and man/grokmirror.conf.5.
    Man,
    /// Write completions/ for bash, zsh and fish.
    Completions,
    /// Write grokmirror.conf.example, pi-piper.conf.example and man/grokmirror.conf.5.
    Conf,
    /// Everything above.
    All,
    /// Report generated files that are out of date (exit 1 if any).
    Check,
}

fn main() -> std::process::ExitCode {
    match run(Cli::parse().task) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("xtask: error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(task: Task) -> anyhow::Result<std::process::ExitCode> {
    let root = xtask::workspace_root();
    let prune = matches!(task, Task::All);
    let files = match task {
        Task::Man => xtask::man_pages()?,
        Task::Completions => xtask::completions(),
        Task::Conf => {
            let mut f: Vec<_> = xtask::man_pages()?
                .into_iter()
                .filter(|g| g.path.ends_with("grokmirror.conf.5"))
                .collect();
            f.push(xtask::example_config());
            f.push(xtask::pi_piper_example_config());
            f
        }
        Task::All => xtask::all()?,
        Task::Check => {
            let problems = xtask::stale(&root, &xtask::all()?)?;
            for p in &problems {
                eprintln!("{p}");
            }
            if problems.is_empty() {
                return Ok(std::process::ExitCode::SUCCESS);
            }
            eprintln!("run `cargo xtask all` and commit the result");
            return Ok(std::process::ExitCode::FAILURE);
        }
    };
    xtask::write(&root, &files)?;
    for f in &files {
        println!("wrote {}", f.path.display());
    }
    if prune {
        for gone in xtask::prune(&root, &files)? {
            println!("removed {}", gone.display());
        }
    }
    Ok(std::process::ExitCode::SUCCESS)
}
