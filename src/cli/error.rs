//! What can stop a command, with the flags that fix it.

use std::path::PathBuf;

use crate::exchange::{Caller, ExchangeError};

/// What can stop `credential-process`. No variant holds a token or a secret.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("{0}")]
    Invalid(String),

    #[error(
        "Cannot read the web identity token file {path}: {source}. Pass a readable file with \
         --web-identity-token-file, or leave it out to ask the metadata server."
    )]
    TokenFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error(
        "The web identity token file {0} is empty. Write the Google ID token into it, or leave \
         --web-identity-token-file out to ask the metadata server."
    )]
    EmptyTokenFile(PathBuf),

    #[error("Cannot start the async runtime: {0}")]
    Runtime(std::io::Error),

    /// Rendered for the command line: flags, never the provider's arguments.
    #[error("{}", .0.message(Caller::CommandLine))]
    Exchange(#[from] ExchangeError),
}

impl CliError {
    /// A short title, printed before the detail.
    pub fn summary(&self) -> &'static str {
        match self {
            CliError::Invalid(_) => "Invalid argument",
            CliError::TokenFile { .. } | CliError::EmptyTokenFile(_) => {
                "Unusable web identity token file"
            }
            CliError::Runtime(_) => "Internal error",
            CliError::Exchange(e) => e.summary(),
        }
    }
}
