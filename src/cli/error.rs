//! What can stop a command, with the flags that fix it.

use std::path::PathBuf;

use crate::clients::metadata::MetadataError;
use crate::exchange::ExchangeError;

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

    #[error(transparent)]
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

    /// The exchange's messages name the provider's arguments; this says which flags of
    /// `credential-process` play their part.
    pub fn hint(&self) -> Option<String> {
        let CliError::Exchange(e) = self else {
            return None;
        };
        let text = match e {
            ExchangeError::Metadata(MetadataError::Unreachable { .. }) => {
                "For credential-process: --metadata-host (or GCE_METADATA_HOST) names the metadata \
                 server; --web-identity-token-file reads the ID token from a file instead."
            }
            ExchangeError::Metadata(MetadataError::UnknownServiceAccount { .. }) => {
                "For credential-process: --service-account takes `default` or the email of an \
                 account attached to this runner."
            }
            ExchangeError::Metadata(_) => {
                "For credential-process: --metadata-host (or GCE_METADATA_HOST) names the metadata \
                 server."
            }
            ExchangeError::Denied { .. } => {
                "For credential-process: --audience is the token's aud (the role's \
                 accounts.google.com:oaud) and --service-account decides its azp and sub (the \
                 service account's unique ID in accounts.google.com:aud and :sub). This command \
                 holds no AWS credentials to read the role (its STS call is unsigned): compare the \
                 values above with the role's trust policy, for example with `aws iam get-role`."
            }
            ExchangeError::DurationTooLong { .. } => {
                "For credential-process: lower --duration-seconds (default 3600)."
            }
            ExchangeError::SessionName(_) => {
                "For credential-process: fix --session-name, or leave it out to use the token's sub."
            }
            ExchangeError::ExpiredToken { .. } | ExchangeError::MalformedToken { .. } => {
                "For credential-process: with --web-identity-token-file, write a fresh ID token \
                 into the file (or leave the flag out to ask the metadata server)."
            }
            ExchangeError::Validation { .. } => {
                "For credential-process: check --role-arn, --duration-seconds, --session-name, \
                 --policy and --policy-arn."
            }
            ExchangeError::RetriesExhausted { .. } => {
                "For credential-process: --max-retries sets the retry budget (default 5)."
            }
            _ => return None,
        };
        Some(text.to_owned())
    }
}
