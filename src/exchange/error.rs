//! Owns [`ExchangeError`]: every way an exchange can fail, each with a message that says what to
//! do next, a short summary for the diagnostic's title, and the attribute at fault when there is
//! one. No token, secret key or session token ever reaches these texts.

use std::fmt;
use std::time::Duration;

use aws_smithy_types::date_time::Format;
use aws_smithy_types::DateTime;

use crate::claims::{Claims, ClaimsError};
use crate::clients::metadata::MetadataError;
use crate::session_name::SessionNameError;
use crate::trust_policy::{claim_lines, TrustFinding};

/// Where the ID token came from, for messages and for the attribute to blame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenOrigin {
    /// `web_identity_token` / `--web-identity-token-file`.
    Given,
    /// The metadata server.
    Metadata,
}

impl fmt::Display for TokenOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TokenOrigin::Given => "given web identity token",
            TokenOrigin::Metadata => "token from the metadata server",
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ExchangeError {
    #[error(transparent)]
    Metadata(#[from] MetadataError),

    #[error("The {origin} is not a JWT: {source}")]
    MalformedToken {
        origin: TokenOrigin,
        #[source]
        source: ClaimsError,
    },

    #[error("Invalid session name: {0}")]
    SessionName(#[from] SessionNameError),

    #[error("{}", denial_text(.role_arn, .code, .message, .claims, .finding))]
    Denied {
        role_arn: String,
        code: String,
        message: String,
        claims: Option<Box<Claims>>,
        finding: Box<TrustFinding>,
    },

    #[error("{}", duration_text(*.requested, .max, .message))]
    DurationTooLong {
        requested: Option<i32>,
        max: Result<i32, String>,
        message: String,
    },

    #[error(
        "STS rejected the ID token as expired ({message}){}. Google ID tokens live one hour: \
         fetch a fresh one (a `web_identity_token` from state or a file may be stale).",
        expired_at(.claims)
    )]
    ExpiredToken {
        message: String,
        claims: Option<Box<Claims>>,
    },

    #[error(
        "STS rejected the ID token ({code}: {message}). STS accepts Google tokens whose issuer is \
         https://accounts.google.com and whose signature verifies against Google's keys; the \
         token's issuer is {}.",
        issuer(.claims)
    )]
    InvalidToken {
        code: String,
        message: String,
        claims: Option<Box<Claims>>,
    },

    #[error("STS rejected the request ({code}: {message}). Check role_arn, duration_seconds, session_name, policy and policy_arns.")]
    Validation { code: String, message: String },

    #[error(
        "STS kept failing with a transient error after {attempts} attempt(s) ({detail}). Try again \
         later, or raise the provider's `max_retries`."
    )]
    RetriesExhausted { attempts: u32, detail: String },

    #[error("STS call failed ({detail}).")]
    Sts { detail: String },

    #[error("{}", timed_out_text(*.attempts, *.attempt_timeout, *.operation_timeout))]
    StsTimedOut {
        attempts: u32,
        attempt_timeout: Option<Duration>,
        operation_timeout: Option<Duration>,
    },

    #[error(
        "The exchange did not finish within its {} s deadline: it was still {during}. Every \
         exchange (metadata server, STS and their retries) ends at this deadline so that a server \
         that answers slowly or fails for ever cannot hang Terraform or the AWS CLI. Check that the \
         metadata server (`metadata_host` / GCE_METADATA_HOST / --metadata-host) and the STS \
         endpoint (`endpoints.sts` / --sts-endpoint) answer, then try again.",
        .deadline.as_secs()
    )]
    DeadlineExceeded {
        deadline: Duration,
        during: &'static str,
    },

    #[error("STS answered without {0}.")]
    IncompleteResponse(&'static str),
}

impl ExchangeError {
    /// A short title for the diagnostic.
    pub fn summary(&self) -> &'static str {
        match self {
            ExchangeError::Metadata(MetadataError::Unreachable { .. }) => {
                "GCE metadata server unreachable"
            }
            ExchangeError::Metadata(MetadataError::UnknownServiceAccount { .. }) => {
                "Unknown service account"
            }
            ExchangeError::Metadata(_) => "Could not get an ID token from the metadata server",
            ExchangeError::MalformedToken { .. } => "Malformed ID token",
            ExchangeError::SessionName(_) => "Invalid session name",
            ExchangeError::Denied { .. } => "STS denied AssumeRoleWithWebIdentity",
            ExchangeError::DurationTooLong { .. } => "Session duration above the role's maximum",
            ExchangeError::ExpiredToken { .. } => "Expired ID token",
            ExchangeError::InvalidToken { .. } => "ID token rejected by STS",
            ExchangeError::Validation { .. } => "STS rejected the request",
            ExchangeError::RetriesExhausted { .. } => "STS unavailable",
            ExchangeError::StsTimedOut { .. } => "AssumeRoleWithWebIdentity timed out",
            ExchangeError::DeadlineExceeded { .. } => "Exchange deadline exceeded",
            ExchangeError::Sts { .. } | ExchangeError::IncompleteResponse(_) => {
                "AssumeRoleWithWebIdentity failed"
            }
        }
    }

    /// The configuration attribute at fault, when one is.
    pub fn attribute(&self) -> Option<&'static str> {
        match self {
            ExchangeError::Metadata(MetadataError::UnknownServiceAccount { .. }) => {
                Some("service_account")
            }
            ExchangeError::MalformedToken {
                origin: TokenOrigin::Given,
                ..
            } => Some("web_identity_token"),
            ExchangeError::SessionName(_) => Some("session_name"),
            ExchangeError::DurationTooLong { .. } => Some("duration_seconds"),
            _ => None,
        }
    }
}

fn secs(d: Option<Duration>) -> String {
    d.map(|d| format!("{} s", d.as_secs_f64()))
        .unwrap_or_else(|| "the SDK's".to_owned())
}

fn timed_out_text(
    attempts: u32,
    attempt_timeout: Option<Duration>,
    operation_timeout: Option<Duration>,
) -> String {
    format!(
        "AssumeRoleWithWebIdentity timed out after {}: STS accepted the connection but did not \
         answer within the {} attempt timeout ({attempts} attempt(s)). Check the STS endpoint \
         (`endpoints.sts`, AWS_ENDPOINT_URL_STS or --sts-endpoint) and any proxy or VPC endpoint \
         on the way to it, then try again.",
        secs(operation_timeout),
        secs(attempt_timeout),
    )
}

fn expired_at(claims: &Option<Box<Claims>>) -> String {
    match claims.as_deref().and_then(|c| c.exp) {
        Some(exp) => match DateTime::from_secs(exp).fmt(Format::DateTime) {
            Ok(t) => format!("; the token's exp is {t}"),
            Err(_) => String::new(),
        },
        None => String::new(),
    }
}

fn issuer(claims: &Option<Box<Claims>>) -> String {
    match claims.as_deref().and_then(|c| c.iss.as_deref()) {
        Some(iss) => format!("\"{iss}\""),
        None => "absent".to_owned(),
    }
}

/// STS's refusal, the token's claims beside the keys they are compared with, then what the
/// trust policy says about it (see [`TrustFinding::explanation`]).
fn denial_text(
    role_arn: &str,
    code: &str,
    message: &str,
    claims: &Option<Box<Claims>>,
    finding: &TrustFinding,
) -> String {
    let claims = match claims {
        Some(c) => claim_lines(c),
        None => "  (the token's claims could not be decoded)".to_owned(),
    };
    format!(
        "STS refused to let this token assume {role_arn} ({code}: {message}).\n\n\
         AWS compares the token's claims with the role's trust policy:\n{claims}\n\n{}",
        finding.explanation()
    )
}

fn duration_text(requested: Option<i32>, max: &Result<i32, String>, message: &str) -> String {
    let requested = requested
        .map(|d| d.to_string())
        .unwrap_or_else(|| "the default".to_owned());
    match max {
        Ok(max) => format!(
            "duration_seconds = {requested} is above the role's maximum session duration of {max} s. \
             Lower duration_seconds to at most {max}, or raise the role's max_session_duration \
             (up to 43200). STS said: {message}"
        ),
        Err(why) => format!(
            "duration_seconds = {requested} is above the role's maximum session duration (the \
             provider could not read the maximum: {why}). Lower duration_seconds or raise the role's \
             max_session_duration. STS said: {message}"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_stay_small_enough_to_return_by_value() {
        // clippy's result_large_err threshold is 128 bytes; callers (the CLI) wrap this type.
        assert!(
            std::mem::size_of::<ExchangeError>() <= 112,
            "{}",
            std::mem::size_of::<ExchangeError>()
        );
    }

    #[test]
    fn a_malformed_given_token_blames_web_identity_token_and_says_where_it_came_from() {
        let given = ExchangeError::MalformedToken {
            origin: TokenOrigin::Given,
            source: ClaimsError::Empty,
        };
        assert_eq!(given.attribute(), Some("web_identity_token"));
        assert_eq!(
            given.to_string(),
            "The given web identity token is not a JWT: the token is empty"
        );
        let fetched = ExchangeError::MalformedToken {
            origin: TokenOrigin::Metadata,
            source: ClaimsError::Empty,
        };
        assert_eq!(fetched.attribute(), None);
        assert!(fetched
            .to_string()
            .starts_with("The token from the metadata server is not a JWT"));
    }

    #[test]
    fn denial_text_without_claims_says_so() {
        let e = ExchangeError::Denied {
            role_arn: "arn:aws:iam::123456789012:role/r".into(),
            code: "AccessDenied".into(),
            message: "Not authorized".into(),
            claims: None,
            finding: Box::new(TrustFinding::KeysMatch),
        };
        let text = e.to_string();
        assert!(text.starts_with(
            "STS refused to let this token assume arn:aws:iam::123456789012:role/r (AccessDenied: Not authorized)."
        ));
        assert!(
            text.contains("(the token's claims could not be decoded)"),
            "{text}"
        );
        assert!(text.contains("the denial has another cause"), "{text}");
    }

    #[test]
    fn expired_and_invalid_tokens_name_the_time_and_the_issuer() {
        let claims = Some(Box::new(Claims {
            iss: Some("https://example.com".into()),
            exp: Some(1767225600),
            ..Claims::default()
        }));
        let expired = ExchangeError::ExpiredToken {
            message: "Token expired".into(),
            claims: claims.clone(),
        };
        assert!(expired
            .to_string()
            .contains("(Token expired); the token's exp is 2026-01-01T00:00:00Z."));
        let invalid = ExchangeError::InvalidToken {
            code: "InvalidIdentityToken".into(),
            message: "bad issuer".into(),
            claims,
        };
        assert!(invalid
            .to_string()
            .contains("the token's issuer is \"https://example.com\"."));
    }
}
