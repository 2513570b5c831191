//! Command-line mode: what the binary does when a person (or the AWS CLI) runs it.
//!
//! One file per sub-command; this one holds the parser and the dispatch.

use std::ffi::OsString;
use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

mod audit;
mod credential_process;
mod error;

pub use audit::{AuditArgs, Format as AuditFormat, AUDIT};
pub use credential_process::{
    config_snippet, credential_process, metadata_identity, resolve, token_identity,
    CredentialProcessArgs, Resolved, CREDENTIAL_PROCESS, DEFAULT_DURATION, DEFAULT_REGION,
    LOCK_WAIT,
};
pub use error::CliError;

/// Name of the binary, as users type it.
pub const BINARY: &str = "terraform-provider-gcpfed";

/// terraform-provider-gcpfed: a Terraform / OpenTofu provider that lets Google Cloud
/// service accounts reach AWS through STS web-identity federation, with no stored AWS keys.
///
/// Terraform and OpenTofu start this binary themselves as a plugin; run by hand it is a
/// command-line tool.
#[derive(Debug, Parser)]
// `--version` prints the version and the commit it was built from (build.rs), so a binary
// taken from a release can be matched to its source.
#[command(
    name = "terraform-provider-gcpfed",
    version = concat!(env!("CARGO_PKG_VERSION"), " (commit ", env!("GCPFED_COMMIT"), ")"),
    about
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

// Parsed once per process: the size of the enum does not matter, boxing would only add noise.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print temporary AWS credentials for an AWS profile's `credential_process`.
    ///
    /// Asks the GCE metadata server for the service account's Google ID token, exchanges it
    /// (unsigned) with STS AssumeRoleWithWebIdentity, and prints only the credential_process
    /// Version 1 JSON on stdout. Credentials are cached per role, audience, the token's identity,
    /// service account, session name, duration, session policy and region, and reused while
    /// more than 15 minutes remain (half the session for sessions under 30 minutes), so the AWS
    /// CLI makes one STS call per session instead of one per command.
    CredentialProcess(CredentialProcessArgs),
    /// Grade every IAM role that Google identities can assume (as data "gcpfed_google_trusts").
    ///
    /// Reads the roles with one paginated iam:ListRoles, using the standard AWS credential
    /// chain (AWS_PROFILE or --profile: a credential-process profile works), and prints one line
    /// per finding with its fix, or --format json. Exits 1 when a finding reaches --fail-on
    /// (default critical), 2 when the audit cannot run.
    Audit(AuditArgs),
}

/// Parses `args` and runs the command; returns the process exit code.
pub fn run<I, T>(args: I) -> ExitCode
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let snippet = config_snippet(&credential_process::binary_for_snippet());
    let command = Cli::command().mut_subcommand(CREDENTIAL_PROCESS, |sub| {
        sub.after_help(snippet.clone()).after_long_help(snippet)
    });
    // Kept for the no-argument case below, which prints the same help as `--help`.
    let mut help = command.clone();
    let parsed = command
        .try_get_matches_from(args)
        .and_then(|matches| Cli::from_arg_matches(&matches));
    let cli = match parsed {
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
        // Run by hand without arguments (Terraform starts us with the plugin cookie set, which
        // main.rs routes to plugin mode before this): the full help, as `--help` prints it, and
        // success, so that "what is this binary?" gets its answer and never waits on stdin.
        None => {
            print!("{}", help.render_long_help());
            ExitCode::SUCCESS
        }
        Some(Command::CredentialProcess(args)) => credential_process::run(&args),
        Some(Command::Audit(args)) => audit::run(&args),
    }
}
