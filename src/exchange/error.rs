//! Owns [`ExchangeError`]: every way an exchange can fail, each with a message that says what to
//! do next, a short summary for the diagnostic's title, and the attribute at fault when there is
//! one. No token, secret key or session token ever reaches these texts.

use std::fmt;
use std::time::Duration;

use aws_smithy_types::date_time::Format;
use aws_smithy_types::DateTime;

use super::caller::{Caller, Input};
use crate::claims::{Claims, ClaimsError};
use crate::clients::metadata::{unreachable_facts, MetadataError};
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

/// Every way an exchange can fail. The text is rendered for a [`Caller`] by
/// [`ExchangeError::message`], so that each names the inputs as its user writes them; `Display`
/// is the Terraform rendering (this error also travels inside the AWS SDK's `CredentialsError`
/// for `assume_role_with_gcp_identity`), and the command line renders its own.
#[derive(Debug)]
pub enum ExchangeError {
    Metadata(MetadataError),

    MalformedToken {
        origin: TokenOrigin,
        source: ClaimsError,
    },

    SessionName(SessionNameError),

    Denied {
        role_arn: String,
        code: String,
        message: String,
        claims: Option<Box<Claims>>,
        finding: Box<TrustFinding>,
    },

    DurationTooLong {
        requested: Option<i32>,
        max: Result<i32, String>,
        message: String,
    },

    ExpiredToken {
        message: String,
        claims: Option<Box<Claims>>,
    },

    InvalidToken {
        code: String,
        message: String,
        claims: Option<Box<Claims>>,
    },

    Validation {
        code: String,
        message: String,
    },

    RetriesExhausted {
        attempts: u32,
        detail: String,
    },

    Sts {
        detail: String,
    },

    StsTimedOut {
        attempts: u32,
        attempt_timeout: Option<Duration>,
        operation_timeout: Option<Duration>,
    },

    DeadlineExceeded {
        deadline: Duration,
        during: &'static str,
    },

    IncompleteResponse(&'static str),

    /// The IAM Credentials API gave no token for the account to impersonate.
    Impersonation(Box<super::impersonation::ImpersonationError>),
}

impl From<MetadataError> for ExchangeError {
    fn from(e: MetadataError) -> Self {
        ExchangeError::Metadata(e)
    }
}

impl From<SessionNameError> for ExchangeError {
    fn from(e: SessionNameError) -> Self {
        ExchangeError::SessionName(e)
    }
}

impl fmt::Display for ExchangeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message(Caller::Terraform))
    }
}

impl std::error::Error for ExchangeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            // Its text is already part of `message`: the chain continues below it.
            ExchangeError::Metadata(e) => e.source(),
            ExchangeError::MalformedToken { source, .. } => Some(source),
            _ => None,
        }
    }
}

impl ExchangeError {
    /// The whole message for `caller`: what happened, then what to do next, every input named
    /// as that caller writes it ([`Caller::name`]).
    pub fn message(&self, caller: Caller) -> String {
        let name = |input| caller.name(input);
        match self {
            ExchangeError::Metadata(e) => metadata_text(e, caller),
            ExchangeError::MalformedToken { origin, source } => {
                format!("The {origin} is not a JWT: {source}")
            }
            ExchangeError::SessionName(e) => format!(
                "Invalid session name: {e}. Fix {}, or leave it out to use the token's sub.",
                name(Input::SessionName)
            ),
            ExchangeError::Denied {
                role_arn,
                code,
                message,
                claims,
                finding,
            } => denial_text(caller, role_arn, code, message, claims, finding),
            ExchangeError::DurationTooLong {
                requested,
                max,
                message,
            } => duration_text(caller, *requested, max, message),
            ExchangeError::ExpiredToken { message, claims } => format!(
                "STS rejected the ID token as expired ({message}){}. Google ID tokens live one \
                 hour: fetch a fresh one (a token given in {} may be stale).",
                expired_at(claims),
                name(Input::WebIdentityToken)
            ),
            ExchangeError::InvalidToken {
                code,
                message,
                claims,
            } => format!(
                "STS rejected the ID token ({code}: {message}). STS accepts Google tokens whose \
                 issuer is https://accounts.google.com and whose signature verifies against \
                 Google's keys; the token's issuer is {}.",
                issuer(claims)
            ),
            ExchangeError::Validation { code, message } => format!(
                "STS rejected the request ({code}: {message}). Check {}, {}, {}, {} and {}.",
                name(Input::RoleArn),
                name(Input::DurationSeconds),
                name(Input::SessionName),
                name(Input::Policy),
                name(Input::PolicyArns)
            ),
            ExchangeError::RetriesExhausted { attempts, detail } => format!(
                "STS kept failing with a transient error after {attempts} attempt(s) ({detail}). \
                 Try again later, or raise {}.",
                name(Input::MaxRetries)
            ),
            ExchangeError::Sts { detail } => format!("STS call failed ({detail})."),
            ExchangeError::StsTimedOut {
                attempts,
                attempt_timeout,
                operation_timeout,
            } => timed_out_text(caller, *attempts, *attempt_timeout, *operation_timeout),
            ExchangeError::DeadlineExceeded { deadline, during } => format!(
                "The exchange did not finish within its {} s deadline: it was still {during}. \
                 Every exchange (metadata server, STS and their retries) ends at this deadline so \
                 that a server that answers slowly or fails for ever cannot hang Terraform or the \
                 AWS CLI. Check that the metadata server ({}) and the STS endpoint ({}) answer, \
                 then try again.",
                deadline.as_secs(),
                name(Input::MetadataHost),
                name(Input::StsEndpoint)
            ),
            ExchangeError::IncompleteResponse(what) => format!("STS answered without {what}."),
            ExchangeError::Impersonation(e) => e.message(caller),
        }
    }

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
            ExchangeError::Impersonation(e) => e.summary(),
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
            ExchangeError::Impersonation(e) => e.attribute(),
            _ => None,
        }
    }
}

fn secs(d: Option<Duration>) -> String {
    d.map(|d| format!("{} s", d.as_secs_f64()))
        .unwrap_or_else(|| "the SDK's".to_owned())
}

fn timed_out_text(
    caller: Caller,
    attempts: u32,
    attempt_timeout: Option<Duration>,
    operation_timeout: Option<Duration>,
) -> String {
    format!(
        "AssumeRoleWithWebIdentity timed out after {}: STS accepted the connection but did not \
         answer within the {} attempt timeout ({attempts} attempt(s)). Check the STS endpoint \
         ({}) and any proxy or VPC endpoint on the way to it, then try again.",
        secs(operation_timeout),
        secs(attempt_timeout),
        caller.name(Input::StsEndpoint),
    )
}

/// The metadata server's failure (its facts name no input), then the fix in `caller`'s words,
/// then the transport error when there is one.
fn metadata_text(e: &MetadataError, caller: Caller) -> String {
    let name = |input| caller.name(input);
    let fix = match e {
        MetadataError::InvalidHost { .. } => format!(
            "Give {} as host[:port], for example metadata.google.internal or 127.0.0.1:8080.",
            name(Input::MetadataHost)
        ),
        MetadataError::Unreachable {
            host,
            cause,
            attempts,
            detail,
        } => {
            let example = match caller {
                Caller::Terraform => "for example from `google_service_account_id_token`",
                Caller::CommandLine => "a file holding a Google ID token",
            };
            let mut text = format!(
                "{} Off Google Cloud, point {} at a reachable metadata server, or pass an ID \
                 token with {} ({example}).",
                unreachable_facts(host, cause, *attempts),
                name(Input::MetadataHost),
                name(Input::WebIdentityToken),
            );
            if !detail.is_empty() {
                text.push_str("\n\nUnderlying error: ");
                text.push_str(detail);
            }
            return text;
        }
        MetadataError::UnknownServiceAccount { .. } => format!(
            "Use `default` for {} (the service account attached to this VM, node pool or Cloud \
             Run service), or the email of an account attached to it (on GKE with Workload \
             Identity: the account bound to the pod's Kubernetes service account).",
            name(Input::ServiceAccount)
        ),
        MetadataError::ServerError { .. } => {
            format!("Try again, or raise {}.", name(Input::MaxRetries))
        }
        MetadataError::NotMetadataServer { .. } => format!("Check {}.", name(Input::MetadataHost)),
        MetadataError::TooLarge { .. } => format!(
            "Check {} and any proxy on the way.",
            name(Input::MetadataHost)
        ),
        // BadRequest, Forbidden, EmptyToken, NoAccessToken, Client: facts whose fix names no
        // input (a proxy on the way, a broken server).
        _ => return e.to_string(),
    };
    format!("{e} {fix}")
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

/// STS's refusal, the token's claims beside the keys they are compared with, what the trust
/// policy says about it (see [`TrustFinding::explanation`]), then which input sets which claim.
fn denial_text(
    caller: Caller,
    role_arn: &str,
    code: &str,
    message: &str,
    claims: &Option<Box<Claims>>,
    finding: &TrustFinding,
) -> String {
    let claim_text = match claims {
        Some(c) => claim_lines(c),
        None => "  (the token's claims could not be decoded)".to_owned(),
    };
    let audience = caller.name(Input::Audience);
    let service_account = caller.name(Input::ServiceAccount);
    let fix = match finding {
        TrustFinding::Mismatches(_) => format!(
            "\nFix: request the audience the role expects ({audience}), use a service account \
             the role trusts ({service_account}; its numeric unique ID must be in the role's \
             `service_account_unique_ids`), or update the role."
        ),
        _ => String::new(),
    };
    format!(
        "STS refused to let this token assume {role_arn} ({code}: {message}).\n\n\
         AWS compares the token's claims with the role's trust policy:\n{claim_text}\n\n{}{fix}\n\n\
         {audience} sets the token's aud; {service_account} decides its azp and sub (the \
         service account's unique ID).",
        finding.explanation()
    )
}

fn duration_text(
    caller: Caller,
    requested: Option<i32>,
    max: &Result<i32, String>,
    message: &str,
) -> String {
    let requested = requested
        .map(|d| caller.setting(Input::DurationSeconds, &d.to_string()))
        .unwrap_or_else(|| "the default duration".to_owned());
    let lower = caller.name(Input::DurationSeconds);
    match max {
        Ok(max) => format!(
            "{requested} is above the role's maximum session duration of {max} s. Lower {lower} \
             to at most {max}, or raise the role's max_session_duration (up to 43200). STS said: \
             {message}"
        ),
        Err(why) => format!(
            "{requested} is above the role's maximum session duration (which could not be read: \
             {why}). Lower {lower} or raise the role's max_session_duration. STS said: {message}"
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

    /// Every error a caller can meet, for the tests that read all their messages.
    fn one_of_each() -> Vec<ExchangeError> {
        use crate::clients::metadata::UnreachableCause;
        let host = || "127.0.0.1:1".to_owned();
        vec![
            MetadataError::Unreachable {
                host: host(),
                cause: UnreachableCause::Connect,
                attempts: 1,
                detail: "tcp connect error: Connection refused".into(),
            }
            .into(),
            MetadataError::UnknownServiceAccount {
                host: host(),
                service_account: "nobody@x.iam.gserviceaccount.com".into(),
            }
            .into(),
            MetadataError::ServerError {
                host: host(),
                status: 503,
                attempts: 6,
            }
            .into(),
            MetadataError::NotMetadataServer {
                host: host(),
                status: 200,
            }
            .into(),
            MetadataError::TooLarge {
                host: host(),
                limit: 65536,
            }
            .into(),
            MetadataError::InvalidHost {
                host: "a/b".into(),
                reason: "give host[:port] only, without a path".into(),
            }
            .into(),
            ExchangeError::Denied {
                role_arn: "arn:aws:iam::123456789012:role/r".into(),
                code: "AccessDenied".into(),
                message: "Not authorized".into(),
                claims: None,
                finding: Box::new(TrustFinding::Mismatches(Vec::new())),
            },
            ExchangeError::DurationTooLong {
                requested: Some(7200),
                max: Ok(3600),
                message: "too long".into(),
            },
            ExchangeError::ExpiredToken {
                message: "Token expired".into(),
                claims: None,
            },
            ExchangeError::Validation {
                code: "ValidationError".into(),
                message: "bad".into(),
            },
            ExchangeError::RetriesExhausted {
                attempts: 6,
                detail: "Throttling: Rate exceeded".into(),
            },
            ExchangeError::StsTimedOut {
                attempts: 3,
                attempt_timeout: Some(Duration::from_secs(20)),
                operation_timeout: Some(Duration::from_secs(60)),
            },
            ExchangeError::DeadlineExceeded {
                deadline: Duration::from_secs(90),
                during: "calling STS AssumeRoleWithWebIdentity",
            },
        ]
    }

    #[test]
    fn each_caller_reads_its_own_words_and_never_the_others() {
        // Written by hand: what only HCL says, and what only the command line says.
        let hcl_only = [
            "metadata_host",
            "web_identity_token",
            "max_retries",
            "endpoints.sts",
            "the provider's",
            "duration_seconds",
            "`audience`",
            "`service_account`",
        ];
        let flags_only = ["--"];
        for e in one_of_each() {
            let cli = e.message(Caller::CommandLine);
            for word in hcl_only {
                assert!(!cli.contains(word), "{word:?} in the command line's {cli}");
            }
            let hcl = e.message(Caller::Terraform);
            for word in flags_only {
                assert!(!hcl.contains(word), "{word:?} in Terraform's {hcl}");
            }
            assert_eq!(e.to_string(), hcl, "Display is the Terraform rendering");
        }
    }

    #[test]
    fn an_unreachable_metadata_server_names_each_callers_way_around_it() {
        let e = &one_of_each()[0];
        let cli = e.message(Caller::CommandLine);
        assert!(
            cli.contains(
                "Off Google Cloud, point --metadata-host (or GCE_METADATA_HOST) at a reachable \
                 metadata server, or pass an ID token with --web-identity-token-file"
            ),
            "{cli}"
        );
        assert!(cli.ends_with("Underlying error: tcp connect error: Connection refused"));
        let hcl = e.message(Caller::Terraform);
        assert!(
            hcl.contains(
                "point the provider's `metadata_host` (or GCE_METADATA_HOST) at a reachable \
                 metadata server, or pass an ID token with `web_identity_token`"
            ),
            "{hcl}"
        );
    }

    #[test]
    fn a_duration_above_the_maximum_quotes_the_setting_as_written() {
        let e = &one_of_each()[7];
        assert!(e
            .message(Caller::Terraform)
            .starts_with("duration_seconds = 7200 is above the role's maximum session duration of 3600 s. Lower `duration_seconds` to at most 3600"));
        assert!(e
            .message(Caller::CommandLine)
            .starts_with("--duration-seconds 7200 is above the role's maximum session duration of 3600 s. Lower --duration-seconds to at most 3600"));
    }
}
