//! Command-line mode: what the binary does when a person (or the AWS CLI) runs it.

use std::ffi::OsString;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// terraform-provider-gcpfed: a Terraform / OpenTofu provider that lets Google Cloud
/// service accounts reach AWS through STS web-identity federation, with no stored AWS keys.
///
/// Terraform and OpenTofu start this binary themselves as a plugin; run by hand it is a
/// command-line tool.
#[derive(Debug, Parser)]
#[command(name = "terraform-provider-gcpfed", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {}

/// Parses `args` and runs the command; returns the process exit code.
pub fn run<I, T>(args: I) -> ExitCode
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(err) => {
            // clap prints --help / --version on stdout and usage errors on stderr.
            let _ = err.print();
            return if err.use_stderr() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    match cli.command {
        None => {
            eprintln!(
                "terraform-provider-gcpfed is a Terraform / OpenTofu provider plugin: \
                 Terraform starts it itself.\nRun `terraform-provider-gcpfed --help` for \
                 the command-line tools."
            );
            ExitCode::from(2)
        }
        Some(command) => match command {},
    }
}
