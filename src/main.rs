//! The `leazzard` binary: parse the command line (and environment), run the command.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = leazzard::config::Cli::parse();
    leazzard::commands::execute(cli.into_command())
}
