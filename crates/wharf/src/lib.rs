//! The `wharf` command: `serve` runs the hub; `user`, `token` and `org` administer it.
//! This is the only crate that reads the environment and picks backends.

mod cli;
mod hook;
mod listener;
mod maintenance;
mod serve;

pub use cli::Cli;
pub use serve::serve;

use clap::Parser;
use std::process::ExitCode;

/// Parses arguments, runs the command, and maps failures to an exit code with a message.
pub fn run() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(cli::execute(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
