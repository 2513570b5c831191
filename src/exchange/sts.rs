//! Owns the STS side of the exchange: the unsigned client, the one `AssumeRoleWithWebIdentity`
//! call with its retries, and the rule that says which STS failures are transient.
//!
//! The client carries no credentials provider at all: the call is unsigned by its model, and
//! resolving credentials here could recurse when this binary is itself the `credential_process`
//! of the profile in use.
//!
//! Retries are the AWS SDK's standard mode (`max_attempts = max_retries + 1`, backoff from the
//! provider's [`RetryPolicy`]) with one classifier, [`StsRetryClassifier`], that applies
//! [`classify_sts_error`]: Throttling, IDPCommunicationError, the transient "Couldn't retrieve
//! verification key" form of InvalidIdentityToken, 5xx and connection faults or timeouts are
//! retried; a denial, an expired token or a validation error never is.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_sts::config::interceptors::{BeforeTransmitInterceptorContextRef, InterceptorContext};
use aws_sdk_sts::config::retry::{ClassifyRetry, RetryAction, RetryConfig};
use aws_sdk_sts::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_sts::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_sts::operation::assume_role_with_web_identity::{
    AssumeRoleWithWebIdentityError, AssumeRoleWithWebIdentityOutput,
};
use aws_smithy_runtime_api::client::retries::classifiers::RetryClassifierPriority;

use crate::clients::aws::timeout_config;
use crate::retry::RetryPolicy;
use crate::secret::{without_sdk_trace, Secret};

/// How an STS error code is treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StsErrorKind {
    /// Worth another attempt within the budget.
    Transient,
    /// The trust policy (or an IdP claim check) refused the token.
    Denied,
    /// The token has expired.
    ExpiredToken,
    /// The token is not acceptable (wrong issuer, bad signature, malformed).
    InvalidToken,
    /// A request parameter is wrong (duration, session name, policy, ARN).
    Validation,
    Other,
}

impl StsErrorKind {
    pub fn is_retryable(self) -> bool {
        self == StsErrorKind::Transient
    }
}

/// Codes STS (and AWS front ends in general) use when a caller goes too fast.
const THROTTLING_CODES: [&str; 4] = [
    "Throttling",
    "ThrottlingException",
    "RequestLimitExceeded",
    "TooManyRequestsException",
];

/// Classifies an STS error by code and message (and HTTP status when the code is unknown).
pub fn classify_sts_error(
    code: Option<&str>,
    message: Option<&str>,
    status: Option<u16>,
) -> StsErrorKind {
    let message = message.unwrap_or("");
    match code.unwrap_or("") {
        c if THROTTLING_CODES.contains(&c) => StsErrorKind::Transient,
        "IDPCommunicationError"
        | "ServiceUnavailable"
        | "InternalFailure"
        | "InternalError"
        | "RequestTimeout"
        | "RequestTimeoutException" => StsErrorKind::Transient,
        "InvalidIdentityToken" => {
            // STS could not fetch Google's signing keys this time: not the token's fault.
            if message
                .to_ascii_lowercase()
                .contains("retrieve verification key")
            {
                StsErrorKind::Transient
            } else {
                StsErrorKind::InvalidToken
            }
        }
        "AccessDenied" | "AccessDeniedException" | "IDPRejectedClaim" => StsErrorKind::Denied,
        "ExpiredTokenException" | "ExpiredToken" => StsErrorKind::ExpiredToken,
        "ValidationError"
        | "InvalidParameterValue"
        | "MalformedPolicyDocument"
        | "PackedPolicyTooLarge"
        | "RegionDisabledException" => StsErrorKind::Validation,
        _ => match status {
            Some(s) if s >= 500 || s == 429 => StsErrorKind::Transient,
            _ => StsErrorKind::Other,
        },
    }
}

/// A response whose body could not be read is worth another try only when STS itself failed.
fn unreadable_is_transient(status: u16) -> bool {
    status >= 500
}

/// Whether a validation message is STS refusing `DurationSeconds` above the role's maximum.
pub(super) fn is_duration_error(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    m.contains("maxsessionduration") || m.contains("durationseconds exceeds")
}

/// The one retry classifier of the STS call: it runs after the SDK's own (which know nothing of
/// STS's "verification key" message, and would retry an unreadable 4xx answer) and decides every
/// failure by [`classify_sts_error`]; whatever that does not call transient is forbidden a retry.
#[derive(Debug, Clone, Copy, Default)]
pub struct StsRetryClassifier;

impl ClassifyRetry for StsRetryClassifier {
    fn classify_retry(&self, ctx: &InterceptorContext) -> RetryAction {
        let Some(Err(error)) = ctx.output_or_error() else {
            return RetryAction::NoActionIndicated;
        };
        let status = ctx.response().map(|r| r.status().as_u16());
        if let Some(service) = error
            .as_operation_error()
            .and_then(|e| e.downcast_ref::<AssumeRoleWithWebIdentityError>())
        {
            let code = service.code();
            return match classify_sts_error(code, service.message(), status) {
                StsErrorKind::Transient if code.is_some_and(|c| THROTTLING_CODES.contains(&c)) => {
                    RetryAction::throttling_error()
                }
                StsErrorKind::Transient => RetryAction::transient_error(),
                _ => RetryAction::RetryForbidden,
            };
        }
        if error.is_timeout_error() || error.as_connector_error().is_some() {
            RetryAction::transient_error()
        } else if error.is_response_error() && status.is_some_and(unreadable_is_transient) {
            RetryAction::server_error()
        } else {
            RetryAction::RetryForbidden
        }
    }

    fn name(&self) -> &'static str {
        "gcpfed STS transient errors"
    }

    fn priority(&self) -> RetryClassifierPriority {
        RetryClassifierPriority::run_after(RetryClassifierPriority::transient_error_classifier())
    }
}

/// Counts the attempts of one call, so that an exhausted budget is reported truthfully even when
/// the SDK's retry quota stopped it early.
#[derive(Debug, Clone, Default)]
struct AttemptCounter(Arc<AtomicU32>);

impl Intercept for AttemptCounter {
    fn name(&self) -> &'static str {
        "gcpfed STS attempt counter"
    }

    fn read_before_attempt(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), aws_sdk_sts::error::BoxError> {
        self.0.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

/// The SDK's standard retry mode with the numbers of `policy`.
pub fn retry_config(policy: RetryPolicy) -> RetryConfig {
    RetryConfig::standard()
        .with_max_attempts(policy.max_attempts())
        .with_initial_backoff(policy.base)
        .with_max_backoff(policy.cap)
}

/// An STS client that never signs and never resolves credentials. `base` is the provider's
/// SdkConfig (HTTP client, timeouts, behaviour version); `None` builds a minimal one (CLI).
/// `endpoint` overrides STS's regional endpoint for `region`.
pub fn unsigned_sts_client(
    base: Option<&aws_types::SdkConfig>,
    region: &str,
    endpoint: Option<&str>,
) -> aws_sdk_sts::Client {
    let mut builder = match base {
        Some(cfg) => {
            let builder = aws_sdk_sts::config::Builder::from(cfg);
            match cfg.timeout_config() {
                Some(t)
                    if t.operation_attempt_timeout().is_some()
                        && t.operation_timeout().is_some() =>
                {
                    builder
                }
                // Never wait forever on one attempt, nor on the call: see clients::aws.
                _ => builder.timeout_config(timeout_config()),
            }
        }
        None => aws_sdk_sts::Config::builder()
            .behavior_version(aws_sdk_sts::config::BehaviorVersion::latest())
            .timeout_config(timeout_config()),
    };
    builder.set_credentials_provider(None);
    builder.set_endpoint_url(endpoint.map(str::to_owned));
    let config = builder
        .region(aws_sdk_sts::config::Region::new(region.to_owned()))
        // No retries unless a call brings its policy and classifier ([`send`] does): the
        // provider's SdkConfig retries by its own rules, which are not STS's.
        .retry_config(RetryConfig::disabled())
        .build();
    aws_sdk_sts::Client::from_conf(config)
}

/// The parameters of one `AssumeRoleWithWebIdentity` call.
pub(super) struct Params<'a> {
    pub role_arn: &'a str,
    pub session_name: &'a str,
    pub token: &'a Secret,
    pub duration_seconds: Option<i32>,
    pub policy: Option<&'a str>,
    pub policy_arns: &'a [String],
}

/// Why the call failed, in the terms the exchange explains to the user.
#[derive(Debug)]
pub(super) enum StsFailure {
    /// STS answered with an error that retrying does not cure.
    Refused {
        kind: StsErrorKind,
        code: String,
        message: String,
    },
    /// Transient faults outlasted the retry budget.
    Exhausted { attempts: u32, detail: String },
    /// Anything else (a request that could not be built, an unreadable 4xx answer).
    Failed { detail: String },
    /// No answer within the attempt timeout, until the call's overall timeout ended it.
    TimedOut {
        attempts: u32,
        attempt_timeout: Option<Duration>,
        operation_timeout: Option<Duration>,
    },
}

/// Calls `AssumeRoleWithWebIdentity` with `policy`'s retries.
pub(super) async fn send(
    client: &aws_sdk_sts::Client,
    policy: RetryPolicy,
    params: Params<'_>,
) -> Result<AssumeRoleWithWebIdentityOutput, StsFailure> {
    let mut call = client
        .assume_role_with_web_identity()
        .role_arn(params.role_arn)
        .role_session_name(params.session_name)
        .web_identity_token(params.token.expose())
        .set_duration_seconds(params.duration_seconds)
        .set_policy(params.policy.map(str::to_owned));
    for arn in params.policy_arns {
        call = call.policy_arns(
            aws_sdk_sts::types::PolicyDescriptorType::builder()
                .arn(arn)
                .build(),
        );
    }
    let attempts = AttemptCounter::default();
    let sent = call
        .customize()
        .config_override(
            aws_sdk_sts::Config::builder()
                .retry_config(retry_config(policy))
                .retry_classifier(StsRetryClassifier),
        )
        .interceptor(attempts.clone())
        .send();
    let err = match without_sdk_trace(sent).await {
        Ok(out) => return Ok(out),
        Err(e) => e,
    };
    let exhausted = |detail: String| StsFailure::Exhausted {
        attempts: attempts.0.load(Ordering::Relaxed),
        detail,
    };
    Err(match &err {
        SdkError::ServiceError(_) => {
            let status = err.raw_response().map(|r| r.status().as_u16());
            let code = err.code().unwrap_or("UnknownError").to_owned();
            let message = err.message().unwrap_or_default().to_owned();
            match classify_sts_error(err.code(), err.message(), status) {
                StsErrorKind::Transient => exhausted(format!("{code}: {message}")),
                kind => StsFailure::Refused {
                    kind,
                    code,
                    message,
                },
            }
        }
        SdkError::DispatchFailure(d) => exhausted(format!(
            "could not reach STS: {}",
            d.as_connector_error()
                .map(|c| crate::diag::error_chain(c))
                .unwrap_or_else(|| "dispatch failure".to_owned())
        )),
        SdkError::TimeoutError(_) => {
            let timeouts = client.config().timeout_config();
            StsFailure::TimedOut {
                attempts: attempts.0.load(Ordering::Relaxed),
                attempt_timeout: timeouts.and_then(|t| t.operation_attempt_timeout()),
                operation_timeout: timeouts.and_then(|t| t.operation_timeout()),
            }
        }
        // The raw response may hold credentials: describe it by status only.
        SdkError::ResponseError(r) => {
            let status = r.raw().status().as_u16();
            let detail = format!("STS answered HTTP {status} with a body that could not be read");
            if unreadable_is_transient(status) {
                exhausted(detail)
            } else {
                StsFailure::Failed { detail }
            }
        }
        _ => StsFailure::Failed {
            detail: crate::diag::error_chain(&err),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification_of_sts_errors() {
        use StsErrorKind::*;
        let cases: &[(&str, &str, StsErrorKind)] = &[
            ("Throttling", "Rate exceeded", Transient),
            ("IDPCommunicationError", "The request could not be fulfilled", Transient),
            (
                "InvalidIdentityToken",
                "Couldn't retrieve verification key from your identity provider, please reference AssumeRoleWithWebIdentity documentation for requirements",
                Transient,
            ),
            ("InvalidIdentityToken", "Incorrect token audience", InvalidToken),
            ("InvalidIdentityToken", "No OpenIDConnect provider found", InvalidToken),
            ("AccessDenied", "Not authorized to perform sts:AssumeRoleWithWebIdentity", Denied),
            ("IDPRejectedClaim", "claim rejected", Denied),
            ("ExpiredTokenException", "Token expired", ExpiredToken),
            ("ValidationError", "The requested DurationSeconds exceeds the MaxSessionDuration set for this role.", Validation),
            ("MalformedPolicyDocument", "bad", Validation),
            ("PackedPolicyTooLarge", "big", Validation),
            ("SomethingNew", "?", Other),
        ];
        for (code, msg, want) in cases {
            assert_eq!(
                classify_sts_error(Some(code), Some(msg), Some(400)),
                *want,
                "{code}: {msg}"
            );
        }
        assert_eq!(classify_sts_error(None, None, Some(503)), Transient);
        assert_eq!(classify_sts_error(None, None, Some(400)), Other);
        assert!(Transient.is_retryable());
        for k in [Denied, ExpiredToken, InvalidToken, Validation, Other] {
            assert!(!k.is_retryable(), "{k:?}");
        }
    }

    #[test]
    fn duration_errors_are_recognised_by_their_message() {
        assert!(is_duration_error(
            "The requested DurationSeconds exceeds the MaxSessionDuration set for this role."
        ));
        assert!(is_duration_error(
            "DurationSeconds exceeds the 1 hour session limit"
        ));
        assert!(!is_duration_error("1 validation error detected"));
    }

    #[test]
    fn the_sdk_retry_config_carries_the_policy() {
        let policy = RetryPolicy::new(4);
        let config = retry_config(policy);
        assert_eq!(
            config.mode(),
            aws_sdk_sts::config::retry::RetryMode::Standard
        );
        assert_eq!(config.max_attempts(), 5);
        assert_eq!(config.initial_backoff(), RetryPolicy::DEFAULT_BASE);
        assert_eq!(config.max_backoff(), RetryPolicy::DEFAULT_CAP);
        assert_eq!(retry_config(RetryPolicy::new(0)).max_attempts(), 1);
    }

    #[test]
    fn the_classifier_runs_after_the_sdk_defaults() {
        assert!(
            StsRetryClassifier.priority() > RetryClassifierPriority::transient_error_classifier()
        );
    }
}
