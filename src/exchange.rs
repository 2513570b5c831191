//! Owns the exchange: a Google ID token (from the metadata server, or given) is sent unsigned to
//! STS `AssumeRoleWithWebIdentity` and comes back as temporary AWS credentials. The data source
//! and the `credential-process` command both call [`Exchanger::exchange`].
//!
//! The STS client carries no credentials provider at all: the call is unsigned by its model, and
//! resolving credentials here could recurse when this binary is itself the `credential_process`
//! of the profile in use. The SDK's own retries are off; the bounded loop here retries only
//! Throttling, IDPCommunicationError, the transient "Couldn't retrieve verification key" form of
//! InvalidIdentityToken, 5xx and connection faults, never a denial or an expired token.
//!
//! Errors say what to do next; on a denial they print the token's `azp`/`aud`/`sub` beside the
//! trust-policy keys AWS compares them with and, when IAM can be read, which key does not match.
//! No token, secret key or session token reaches an error, a log line or a `Debug` output.

use std::time::Duration;

use aws_sdk_sts::error::{ProvideErrorMetadata, SdkError};
use aws_smithy_types::date_time::Format;
use aws_smithy_types::retry::RetryConfig;
use aws_smithy_types::timeout::TimeoutConfig;
use aws_smithy_types::DateTime;
use rand::Rng;

use crate::claims::{self, Claims, ClaimsError};
use crate::clients::metadata::{MetadataClient, MetadataError};
use crate::secret::{without_sdk_trace, Secret};
use crate::session_name::{self, SessionNameError};
use crate::trust_policy::{self, KEY_AUD, KEY_OAUD, KEY_SUB};

/// Bounded exponential backoff with jitter, shared by the metadata and STS retry loops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// Retries after the first attempt (the provider's `max_retries`).
    pub max_retries: u32,
    /// Delay before the first retry (before jitter).
    pub base: Duration,
    /// Upper bound of any single delay.
    pub cap: Duration,
}

impl Backoff {
    pub fn new(max_retries: u32) -> Self {
        Backoff {
            max_retries,
            base: Duration::from_millis(200),
            cap: Duration::from_secs(5),
        }
    }

    /// Delay before retry number `retry` (0 = the first retry): "equal jitter", i.e. half the
    /// exponential step fixed and half random, so that retries never bunch up at zero.
    pub fn delay(&self, retry: u32) -> Duration {
        let step = self
            .base
            .saturating_mul(2u32.saturating_pow(retry.min(16)))
            .min(self.cap);
        let half = step / 2;
        let jitter_ms = rand::thread_rng().gen_range(0..=half.as_millis() as u64);
        half + Duration::from_millis(jitter_ms)
    }
}

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

/// Classifies an STS error by code and message (and HTTP status when the code is unknown).
pub fn classify_sts_error(
    code: Option<&str>,
    message: Option<&str>,
    status: Option<u16>,
) -> StsErrorKind {
    let message = message.unwrap_or("");
    match code.unwrap_or("") {
        "Throttling"
        | "ThrottlingException"
        | "RequestLimitExceeded"
        | "TooManyRequestsException"
        | "IDPCommunicationError"
        | "ServiceUnavailable"
        | "InternalFailure"
        | "InternalError"
        | "RequestTimeout"
        | "RequestTimeoutException" => StsErrorKind::Transient,
        "InvalidIdentityToken" => {
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

/// Where the ID token comes from.
#[derive(Debug)]
pub enum TokenSource {
    /// Ask the metadata server for a token for the request's service account and audience.
    Metadata(MetadataClient),
    /// Use this token as is (`web_identity_token`, `--web-identity-token-file`).
    Given(Secret),
}

/// One exchange's inputs.
#[derive(Debug)]
pub struct ExchangeRequest {
    pub role_arn: String,
    pub audience: String,
    /// Metadata alias (`default`) or service-account email.
    pub service_account: String,
    /// Explicit session name (validated, never rewritten); `None` derives it from the token.
    pub session_name: Option<String>,
    pub duration_seconds: Option<i32>,
    pub policy: Option<String>,
    pub policy_arns: Vec<String>,
    pub token: TokenSource,
}

/// Temporary credentials and what STS and the token say about them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub access_key_id: String,
    pub secret_access_key: Secret,
    pub session_token: Secret,
    /// RFC 3339 UTC with `Z`, whole seconds.
    pub expiration: String,
    pub expiration_epoch: i64,
    pub assumed_role_arn: String,
    pub assumed_role_id: String,
    /// The token's `sub` (or, failing that, what STS reports as the subject).
    pub subject: Option<String>,
    pub email: Option<String>,
    /// The session name sent to STS.
    pub session_name: String,
}

impl Credentials {
    /// The AWS `credential_process` Version 1 document.
    pub fn credential_process_json(&self) -> Secret {
        let doc = serde_json::json!({
            "Version": 1,
            "AccessKeyId": self.access_key_id,
            "SecretAccessKey": self.secret_access_key.expose(),
            "SessionToken": self.session_token.expose(),
            "Expiration": self.expiration,
        });
        Secret::new(doc.to_string())
    }
}

/// One trust-policy key whose allowed values do not include the token's claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyMismatch {
    pub key: &'static str,
    pub claim: &'static str,
    pub token_value: Option<String>,
    pub allowed: Vec<String>,
}

/// What reading the role taught us about a denial.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrustFinding {
    /// These keys do not match.
    Mismatches(Vec<KeyMismatch>),
    /// All three keys match: the denial has another cause.
    KeysMatch,
    /// The trust policy has no Allow statement for `accounts.google.com`.
    NoGoogleStatement,
    /// The role could not be read (no IAM client, or IAM refused).
    Unavailable(String),
}

#[derive(Debug, thiserror::Error)]
pub enum ExchangeError {
    #[error(transparent)]
    Metadata(#[from] MetadataError),

    #[error("The {origin} is not a JWT: {source}")]
    MalformedToken {
        origin: &'static str,
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
                origin: ORIGIN_GIVEN,
                ..
            } => Some("web_identity_token"),
            ExchangeError::SessionName(_) => Some("session_name"),
            ExchangeError::DurationTooLong { .. } => Some("duration_seconds"),
            _ => None,
        }
    }
}

const ORIGIN_GIVEN: &str = "given web identity token";
const ORIGIN_METADATA: &str = "token from the metadata server";

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

fn denial_text(
    role_arn: &str,
    code: &str,
    message: &str,
    claims: &Option<Box<Claims>>,
    finding: &TrustFinding,
) -> String {
    let mut out = format!(
        "STS refused to let this token assume {role_arn} ({code}: {message}).\n\n\
         AWS compares the token's claims with the role's trust policy:\n"
    );
    match claims {
        Some(c) => out.push_str(&c.mapping_lines()),
        None => out.push_str("  (the token's claims could not be decoded)"),
    }
    out.push_str("\n\n");
    match finding {
        TrustFinding::Mismatches(list) => {
            for m in list {
                let token_value = m
                    .token_value
                    .as_deref()
                    .map(|v| format!("\"{v}\""))
                    .unwrap_or_else(|| "absent".to_owned());
                out.push_str(&format!(
                    "  Mismatch: {} allows {} but the token's {} is {}.\n",
                    m.key,
                    list_text(&m.allowed),
                    m.claim,
                    token_value
                ));
            }
            out.push_str(
                "\nFix: request the audience the role expects (`audience`), use a service account the role \
                 trusts (its numeric unique ID in `service_account_unique_ids`), or update the role.",
            );
        }
        TrustFinding::KeysMatch => out.push_str(
            "The trust policy's accounts.google.com:aud, :oaud and :sub conditions all match this token, \
             so the denial has another cause: check the statement's Principal (Federated \
             \"accounts.google.com\"), its Action (sts:AssumeRoleWithWebIdentity), other conditions, \
             and any Deny statement.",
        ),
        TrustFinding::NoGoogleStatement => out.push_str(
            "The role's trust policy has no Allow statement for the Federated principal \
             \"accounts.google.com\" with StringEquals on these keys: this role does not trust Google \
             identities (manage it with gcpfed_role).",
        ),
        TrustFinding::Unavailable(why) => out.push_str(&format!(
            "Compare these values with the role's trust policy (the provider could not read it to name the \
             mismatched key: {why})."
        )),
    }
    out
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

fn list_text(values: &[String]) -> String {
    match values {
        [] => "nothing".to_owned(),
        [one] => format!("\"{one}\""),
        many => format!(
            "[{}]",
            many.iter()
                .map(|v| format!("\"{v}\""))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// The role name from a role ARN (`arn:aws:iam::123456789012:role/path/name` → `name`).
pub fn role_name_from_arn(arn: &str) -> Option<&str> {
    let resource = arn.splitn(6, ':').nth(5)?;
    let rest = resource.strip_prefix("role/")?;
    let name = rest.rsplit('/').next()?;
    (!name.is_empty()).then_some(name)
}

/// Compares the token's claims with the `StringEquals` values of the trust policy for the three
/// Google keys. A gcpfed-rendered policy is read with [`trust_policy::parse_trust_policy`];
/// any other shape through a plain lookup across its Allow statements for `accounts.google.com`.
pub fn check_trust_policy(document: &str, claims: &Claims) -> TrustFinding {
    let allowed: Vec<(&'static str, &'static str, Vec<String>, Option<String>)> =
        match trust_policy::parse_trust_policy(document) {
            Ok(inputs) => {
                let ids: Vec<String> = inputs.unique_ids().iter().cloned().collect();
                vec![
                    (KEY_AUD, "azp", ids.clone(), claims.azp.clone()),
                    (
                        KEY_OAUD,
                        "aud",
                        vec![inputs.audience().to_owned()],
                        claims.aud.first().cloned(),
                    ),
                    (KEY_SUB, "sub", ids, claims.sub.clone()),
                ]
            }
            Err(_) => match lookup_string_equals(document) {
                None => return TrustFinding::NoGoogleStatement,
                Some(found) => [
                    (KEY_AUD, "azp", claims.azp.clone()),
                    (KEY_OAUD, "aud", claims.aud.first().cloned()),
                    (KEY_SUB, "sub", claims.sub.clone()),
                ]
                .into_iter()
                .filter_map(|(key, claim, value)| {
                    found
                        .iter()
                        .find(|(k, _)| k.eq_ignore_ascii_case(key))
                        .map(|(_, v)| (key, claim, v.clone(), value))
                })
                .collect(),
            },
        };
    let mismatches: Vec<KeyMismatch> = allowed
        .into_iter()
        .filter(|(_, claim, values, token_value)| {
            let token_values: Vec<&str> = if *claim == "aud" {
                claims.aud.iter().map(String::as_str).collect()
            } else {
                token_value.as_deref().into_iter().collect()
            };
            !token_values.iter().any(|t| values.iter().any(|v| v == t))
        })
        .map(|(key, claim, values, token_value)| KeyMismatch {
            key,
            claim,
            token_value,
            allowed: values,
        })
        .collect();
    if mismatches.is_empty() {
        TrustFinding::KeysMatch
    } else {
        TrustFinding::Mismatches(mismatches)
    }
}

/// `StringEquals` values per condition key across the Allow statements whose Federated principal
/// is `accounts.google.com`; `None` when there is no such statement.
fn lookup_string_equals(document: &str) -> Option<Vec<(String, Vec<String>)>> {
    let decoded = trust_policy::decode_document(document);
    let doc: serde_json::Value = serde_json::from_str(&decoded).ok()?;
    let statements: Vec<&serde_json::Value> = match doc.get("Statement")? {
        serde_json::Value::Array(a) => a.iter().collect(),
        other => vec![other],
    };
    let strings = |v: &serde_json::Value| -> Vec<String> {
        match v {
            serde_json::Value::String(s) => vec![s.clone()],
            serde_json::Value::Array(a) => a
                .iter()
                .filter_map(|x| x.as_str().map(str::to_owned))
                .collect(),
            _ => Vec::new(),
        }
    };
    let mut found: Vec<(String, Vec<String>)> = Vec::new();
    let mut any = false;
    for st in statements {
        if st.get("Effect").and_then(|e| e.as_str()) != Some("Allow") {
            continue;
        }
        let federated = st
            .get("Principal")
            .and_then(|p| p.get("Federated"))
            .map(strings)
            .unwrap_or_default();
        if !federated
            .iter()
            .any(|f| f == trust_policy::GOOGLE_PRINCIPAL)
        {
            continue;
        }
        any = true;
        let Some(cond) = st
            .get("Condition")
            .and_then(|c| c.get("StringEquals"))
            .and_then(|c| c.as_object())
        else {
            continue;
        };
        for (k, v) in cond {
            match found.iter_mut().find(|(fk, _)| fk.eq_ignore_ascii_case(k)) {
                Some((_, vals)) => vals.extend(strings(v)),
                None => found.push((k.clone(), strings(v))),
            }
        }
    }
    any.then_some(found)
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
            let timeouts = cfg.timeout_config();
            match timeouts.and_then(|t| t.operation_attempt_timeout()) {
                Some(_) => builder,
                // Never wait forever on one attempt: our retry loop needs it to end.
                None => builder.timeout_config(
                    TimeoutConfig::builder()
                        .connect_timeout(
                            timeouts
                                .and_then(|t| t.connect_timeout())
                                .unwrap_or(Duration::from_secs(10)),
                        )
                        .operation_attempt_timeout(Duration::from_secs(30))
                        .build(),
                ),
            }
        }
        None => aws_sdk_sts::Config::builder()
            .behavior_version(aws_sdk_sts::config::BehaviorVersion::latest())
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(10))
                    .operation_attempt_timeout(Duration::from_secs(30))
                    .build(),
            ),
    };
    builder.set_credentials_provider(None);
    builder.set_endpoint_url(endpoint.map(str::to_owned));
    let config = builder
        .region(aws_sdk_sts::config::Region::new(region.to_owned()))
        // One attempt per call: the retry budget is ours (max_retries), applied only to the
        // transient codes.
        .retry_config(RetryConfig::disabled())
        .build();
    aws_sdk_sts::Client::from_conf(config)
}

/// Runs exchanges with one STS client (and optionally IAM, to explain denials).
#[derive(Debug, Clone)]
pub struct Exchanger {
    sts: aws_sdk_sts::Client,
    iam: Option<aws_sdk_iam::Client>,
    backoff: Backoff,
}

enum StsOutcome {
    Final(Box<ExchangeError>),
    Transient(String),
}

impl StsOutcome {
    fn fatal(e: ExchangeError) -> Self {
        StsOutcome::Final(Box::new(e))
    }
}

impl Exchanger {
    pub fn new(
        sts: aws_sdk_sts::Client,
        iam: Option<aws_sdk_iam::Client>,
        backoff: Backoff,
    ) -> Self {
        Exchanger { sts, iam, backoff }
    }

    pub async fn exchange(&self, req: ExchangeRequest) -> Result<Credentials, ExchangeError> {
        let (token, origin) = match &req.token {
            TokenSource::Given(t) => (t.clone(), ORIGIN_GIVEN),
            TokenSource::Metadata(client) => (
                client
                    .identity_token(&req.service_account, &req.audience)
                    .await?,
                ORIGIN_METADATA,
            ),
        };
        let claims = claims::decode_unverified(token.expose())
            .map_err(|source| ExchangeError::MalformedToken { origin, source })?;
        let session_name = session_name::choose(req.session_name.as_deref(), Some(&claims))?;

        let mut attempt: u32 = 0;
        let output = loop {
            attempt += 1;
            match self.call_sts(&req, &token, &session_name, &claims).await {
                Ok(out) => break out,
                Err(StsOutcome::Final(e)) => return Err(*e),
                Err(StsOutcome::Transient(detail)) => {
                    if attempt > self.backoff.max_retries {
                        return Err(ExchangeError::RetriesExhausted {
                            attempts: attempt,
                            detail,
                        });
                    }
                    let delay = self.backoff.delay(attempt - 1);
                    tracing::debug!(
                        attempt,
                        delay_ms = delay.as_millis() as u64,
                        %detail,
                        "AssumeRoleWithWebIdentity failed transiently, retrying"
                    );
                    tokio::time::sleep(delay).await;
                }
            }
        };

        let creds = output
            .credentials()
            .ok_or(ExchangeError::IncompleteResponse("credentials"))?;
        let user = output
            .assumed_role_user()
            .ok_or(ExchangeError::IncompleteResponse("the assumed role user"))?;
        let expiration_epoch = creds.expiration().secs();
        let expiration = DateTime::from_secs(expiration_epoch)
            .fmt(Format::DateTime)
            .map_err(|_| ExchangeError::IncompleteResponse("a valid expiration"))?;
        Ok(Credentials {
            access_key_id: creds.access_key_id().to_owned(),
            secret_access_key: Secret::new(creds.secret_access_key()),
            session_token: Secret::new(creds.session_token()),
            expiration,
            expiration_epoch,
            assumed_role_arn: user.arn().to_owned(),
            assumed_role_id: user.assumed_role_id().to_owned(),
            subject: claims
                .sub
                .clone()
                .or_else(|| output.subject_from_web_identity_token().map(str::to_owned)),
            email: claims.email.clone(),
            session_name,
        })
    }

    async fn call_sts(
        &self,
        req: &ExchangeRequest,
        token: &Secret,
        session_name: &str,
        claims: &Claims,
    ) -> Result<
        aws_sdk_sts::operation::assume_role_with_web_identity::AssumeRoleWithWebIdentityOutput,
        StsOutcome,
    > {
        let mut call = self
            .sts
            .assume_role_with_web_identity()
            .role_arn(&req.role_arn)
            .role_session_name(session_name)
            .web_identity_token(token.expose())
            .set_duration_seconds(req.duration_seconds)
            .set_policy(req.policy.clone());
        for arn in &req.policy_arns {
            call = call.policy_arns(
                aws_sdk_sts::types::PolicyDescriptorType::builder()
                    .arn(arn)
                    .build(),
            );
        }
        let err = match without_sdk_trace(call.send()).await {
            Ok(out) => return Ok(out),
            Err(e) => e,
        };
        let (code, message, status) = match &err {
            SdkError::ServiceError(_) => (
                err.code().map(str::to_owned),
                err.message().map(str::to_owned),
                err.raw_response().map(|r| r.status().as_u16()),
            ),
            SdkError::DispatchFailure(d) => {
                return Err(StsOutcome::Transient(format!(
                    "could not reach STS: {}",
                    d.as_connector_error()
                        .map(|c| dispatch_text(c))
                        .unwrap_or_else(|| "dispatch failure".to_owned())
                )))
            }
            SdkError::TimeoutError(_) => {
                return Err(StsOutcome::Transient(
                    "STS did not answer in time".to_owned(),
                ))
            }
            // The raw response may hold credentials: describe it by status only.
            SdkError::ResponseError(r) => {
                let status = r.raw().status().as_u16();
                let detail =
                    format!("STS answered HTTP {status} with a body that could not be read");
                return Err(if status >= 500 {
                    StsOutcome::Transient(detail)
                } else {
                    StsOutcome::fatal(ExchangeError::Sts { detail })
                });
            }
            _ => {
                return Err(StsOutcome::fatal(ExchangeError::Sts {
                    detail: crate_error_text(&err),
                }))
            }
        };
        let code_s = code.clone().unwrap_or_else(|| "UnknownError".to_owned());
        let message_s = message.clone().unwrap_or_default();
        match classify_sts_error(code.as_deref(), message.as_deref(), status) {
            StsErrorKind::Transient => Err(StsOutcome::Transient(format!("{code_s}: {message_s}"))),
            StsErrorKind::Denied => {
                let finding = self.explain_denial(&req.role_arn, claims).await;
                Err(StsOutcome::fatal(ExchangeError::Denied {
                    role_arn: req.role_arn.clone(),
                    code: code_s,
                    message: message_s,
                    claims: Some(Box::new(claims.clone())),
                    finding: Box::new(finding),
                }))
            }
            StsErrorKind::ExpiredToken => Err(StsOutcome::fatal(ExchangeError::ExpiredToken {
                message: message_s,
                claims: Some(Box::new(claims.clone())),
            })),
            StsErrorKind::InvalidToken => Err(StsOutcome::fatal(ExchangeError::InvalidToken {
                code: code_s,
                message: message_s,
                claims: Some(Box::new(claims.clone())),
            })),
            StsErrorKind::Validation if is_duration_error(&message_s) => {
                let max = self.role_max_duration(&req.role_arn).await;
                Err(StsOutcome::fatal(ExchangeError::DurationTooLong {
                    requested: req.duration_seconds,
                    max,
                    message: message_s,
                }))
            }
            StsErrorKind::Validation => Err(StsOutcome::fatal(ExchangeError::Validation {
                code: code_s,
                message: message_s,
            })),
            StsErrorKind::Other => Err(StsOutcome::fatal(ExchangeError::Sts {
                detail: format!("{code_s}: {message_s}"),
            })),
        }
    }

    async fn get_role(&self, role_arn: &str) -> Result<aws_sdk_iam::types::Role, String> {
        let iam = self
            .iam
            .as_ref()
            .ok_or_else(|| "no IAM client is configured".to_owned())?;
        let name =
            role_name_from_arn(role_arn).ok_or_else(|| format!("{role_arn} is not a role ARN"))?;
        let out = iam.get_role().role_name(name).send().await.map_err(|e| {
            format!(
                "iam:GetRole on {name} failed: {}",
                e.code()
                    .map(|c| format!("{c}: {}", e.message().unwrap_or("")))
                    .unwrap_or_else(|| crate_error_text(&e))
            )
        })?;
        out.role
            .ok_or_else(|| format!("iam:GetRole on {name} returned no role"))
    }

    async fn explain_denial(&self, role_arn: &str, claims: &Claims) -> TrustFinding {
        match self.get_role(role_arn).await {
            Err(why) => TrustFinding::Unavailable(why),
            Ok(role) => match role.assume_role_policy_document() {
                Some(doc) => check_trust_policy(doc, claims),
                None => {
                    TrustFinding::Unavailable("the role has no trust policy document".to_owned())
                }
            },
        }
    }

    async fn role_max_duration(&self, role_arn: &str) -> Result<i32, String> {
        let role = self.get_role(role_arn).await?;
        role.max_session_duration()
            .ok_or_else(|| "IAM did not return MaxSessionDuration".to_owned())
    }
}

fn is_duration_error(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    m.contains("maxsessionduration") || m.contains("durationseconds exceeds")
}

fn dispatch_text(d: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![d.to_string()];
    let mut src: Option<&(dyn std::error::Error + 'static)> = d.source();
    while let Some(s) = src {
        let t = s.to_string();
        if !parts.contains(&t) {
            parts.push(t);
        }
        src = s.source();
    }
    if parts.is_empty() {
        "dispatch failure".to_owned()
    } else {
        parts.join(": ")
    }
}

/// Text of a non-service SDK error (construction or IAM failures): the cause chain. Never used
/// for a response error, whose raw body may hold credentials.
fn crate_error_text<E: std::error::Error + 'static>(e: &E) -> String {
    crate::diag::error_chain(e)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clients::metadata::test_server::{serve, Reply, Seen};
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine as _;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};

    const SA_ID: &str = "104857600000000000001";
    const OTHER_ID: &str = "113000000000000000099";
    const ROLE: &str = "arn:aws:iam::123456789012:role/ci/gcpfed-ci";
    const SECRET_KEY: &str = "wJalrXUtnFEMIK7MDENGbPxRfiCYzzSECRETKEY1";
    const SESSION_TOKEN: &str = "FwoGZXIvYXdzEXAMPLESESSIONTOKENzzz";

    fn token(aud: &str, azp: &str, sub: &str) -> String {
        let payload = serde_json::json!({
            "iss": "https://accounts.google.com", "aud": aud, "azp": azp, "sub": sub,
            "email": "ci-runner@gcpfed-test.iam.gserviceaccount.com",
            "exp": 1767225600, "iat": 1767222000
        });
        format!(
            "{}.{}.{}",
            URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256","kid":"k1"}"#),
            URL_SAFE_NO_PAD.encode(payload.to_string()),
            URL_SAFE_NO_PAD.encode(b"sig-bytes-that-are-secret-ish")
        )
    }

    fn fast(max_retries: u32) -> Backoff {
        Backoff {
            max_retries,
            base: Duration::from_millis(2),
            cap: Duration::from_millis(10),
        }
    }

    fn ok_xml() -> Reply {
        Reply::new(
            200,
            &format!(
                r#"<AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleWithWebIdentityResult>
    <SubjectFromWebIdentityToken>{SA_ID}</SubjectFromWebIdentityToken>
    <Audience>aws-ci</Audience>
    <AssumedRoleUser>
      <Arn>arn:aws:sts::123456789012:assumed-role/gcpfed-ci/{SA_ID}</Arn>
      <AssumedRoleId>AROAEXAMPLEID:{SA_ID}</AssumedRoleId>
    </AssumedRoleUser>
    <Credentials>
      <SessionToken>{SESSION_TOKEN}</SessionToken>
      <SecretAccessKey>{SECRET_KEY}</SecretAccessKey>
      <Expiration>2026-12-01T11:00:00.123Z</Expiration>
      <AccessKeyId>ASIAEXAMPLEKEYID0001</AccessKeyId>
    </Credentials>
    <Provider>accounts.google.com</Provider>
  </AssumeRoleWithWebIdentityResult>
  <ResponseMetadata><RequestId>r1</RequestId></ResponseMetadata>
</AssumeRoleWithWebIdentityResponse>"#
            ),
        )
        .header("content-type", "text/xml")
    }

    fn err_xml(status: u16, code: &str, message: &str) -> Reply {
        Reply::new(
            status,
            &format!(
                r#"<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error><RequestId>r2</RequestId></ErrorResponse>"#
            ),
        )
        .header("content-type", "text/xml")
    }

    fn get_role_xml(trust: &str, max: i32) -> Reply {
        let encoded =
            percent_encoding::utf8_percent_encode(trust, percent_encoding::NON_ALPHANUMERIC);
        Reply::new(
            200,
            &format!(
                r#"<GetRoleResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/"><GetRoleResult><Role>
<Path>/ci/</Path><AssumeRolePolicyDocument>{encoded}</AssumeRolePolicyDocument>
<MaxSessionDuration>{max}</MaxSessionDuration><RoleId>AROAEXAMPLEID</RoleId><RoleName>gcpfed-ci</RoleName>
<Arn>{ROLE}</Arn><CreateDate>2026-12-01T00:00:00Z</CreateDate></Role></GetRoleResult>
<ResponseMetadata><RequestId>r3</RequestId></ResponseMetadata></GetRoleResponse>"#
            ),
        )
        .header("content-type", "text/xml")
    }

    fn gcpfed_trust(aud: &str, id: &str) -> String {
        trust_policy::TrustInputs::new(aud, [id]).unwrap().render()
    }

    fn iam_client(endpoint: &str) -> aws_sdk_iam::Client {
        let conf = aws_sdk_iam::Config::builder()
            .behavior_version(aws_sdk_iam::config::BehaviorVersion::latest())
            .region(aws_sdk_iam::config::Region::new("us-east-1"))
            .credentials_provider(aws_credential_types::Credentials::for_tests())
            .endpoint_url(endpoint)
            .retry_config(RetryConfig::disabled())
            .build();
        aws_sdk_iam::Client::from_conf(conf)
    }

    fn request(token: &str) -> ExchangeRequest {
        ExchangeRequest {
            role_arn: ROLE.into(),
            audience: "aws-ci".into(),
            service_account: "default".into(),
            session_name: None,
            duration_seconds: Some(3600),
            policy: None,
            policy_arns: vec![],
            token: TokenSource::Given(Secret::new(token)),
        }
    }

    async fn exchanger(
        replies: Vec<Reply>,
        max_retries: u32,
        with_iam: bool,
    ) -> (Exchanger, Arc<Mutex<Vec<Seen>>>) {
        let (host, seen) = serve(replies).await;
        let url = format!("http://{host}");
        let sts = unsigned_sts_client(None, "us-east-1", Some(&url));
        let iam = with_iam.then(|| iam_client(&url));
        (Exchanger::new(sts, iam, fast(max_retries)), seen)
    }

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
    fn backoff_grows_is_capped_and_jittered() {
        let b = Backoff::new(5);
        for retry in 0..10 {
            let step = (Duration::from_millis(200) * 2u32.pow(retry)).min(Duration::from_secs(5));
            for _ in 0..20 {
                let d = b.delay(retry);
                assert!(d >= step / 2 && d <= step, "retry {retry}: {d:?}");
            }
        }
        let distinct: std::collections::BTreeSet<_> = (0..50).map(|_| b.delay(4)).collect();
        assert!(distinct.len() > 1, "no jitter");
    }

    #[test]
    fn role_names_come_from_arns() {
        assert_eq!(role_name_from_arn(ROLE), Some("gcpfed-ci"));
        assert_eq!(
            role_name_from_arn("arn:aws:iam::123456789012:role/r"),
            Some("r")
        );
        assert_eq!(
            role_name_from_arn("arn:aws-cn:iam::123456789012:role/a/b/c"),
            Some("c")
        );
        assert_eq!(role_name_from_arn("arn:aws:iam::123456789012:user/u"), None);
        assert_eq!(role_name_from_arn("nonsense"), None);
    }

    #[test]
    fn trust_check_names_the_mismatched_key() {
        let doc = gcpfed_trust("aws-ci", SA_ID);
        let good = claims::decode_unverified(&token("aws-ci", SA_ID, SA_ID)).unwrap();
        assert_eq!(check_trust_policy(&doc, &good), TrustFinding::KeysMatch);

        let wrong_aud = claims::decode_unverified(&token("other-aud", SA_ID, SA_ID)).unwrap();
        match check_trust_policy(&doc, &wrong_aud) {
            TrustFinding::Mismatches(m) => {
                assert_eq!(m.len(), 1);
                assert_eq!(m[0].key, KEY_OAUD);
                assert_eq!(m[0].claim, "aud");
                assert_eq!(m[0].token_value.as_deref(), Some("other-aud"));
                assert_eq!(m[0].allowed, vec!["aws-ci".to_owned()]);
            }
            other => panic!("{other:?}"),
        }

        let foreign = claims::decode_unverified(&token("aws-ci", OTHER_ID, OTHER_ID)).unwrap();
        match check_trust_policy(&doc, &foreign) {
            TrustFinding::Mismatches(m) => {
                let keys: Vec<_> = m.iter().map(|x| x.key).collect();
                assert_eq!(keys, vec![KEY_AUD, KEY_SUB]);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn trust_check_reads_hand_written_policies_too() {
        // Two statements, lists, an extra condition: not gcpfed's shape.
        let doc = format!(
            r#"{{"Version":"2012-10-17","Statement":[
              {{"Effect":"Allow","Principal":{{"Service":"ec2.amazonaws.com"}},"Action":"sts:AssumeRole"}},
              {{"Effect":"Allow","Principal":{{"Federated":["accounts.google.com"]}},"Action":"sts:AssumeRoleWithWebIdentity",
                "Condition":{{"StringEquals":{{"accounts.google.com:oaud":["a1","a2"],"accounts.google.com:sub":"{SA_ID}"}},
                              "Bool":{{"aws:SecureTransport":"true"}}}}}}]}}"#
        );
        let c = claims::decode_unverified(&token("a3", SA_ID, SA_ID)).unwrap();
        match check_trust_policy(&doc, &c) {
            TrustFinding::Mismatches(m) => {
                assert_eq!(m.len(), 1);
                assert_eq!(m[0].key, KEY_OAUD);
                assert_eq!(m[0].allowed, vec!["a1".to_owned(), "a2".to_owned()]);
            }
            other => panic!("{other:?}"),
        }
        let c = claims::decode_unverified(&token("a2", OTHER_ID, SA_ID)).unwrap();
        // azp is not constrained by this policy, so it is not a mismatch.
        assert_eq!(check_trust_policy(&doc, &c), TrustFinding::KeysMatch);

        let ec2_only = r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}}"#;
        assert_eq!(
            check_trust_policy(ec2_only, &c),
            TrustFinding::NoGoogleStatement
        );
    }

    #[tokio::test]
    async fn exchange_is_unsigned_and_returns_credentials() {
        let (ex, seen) = exchanger(vec![ok_xml()], 0, false).await;
        let tok = token("aws-ci", SA_ID, SA_ID);
        let mut req = request(&tok);
        req.policy = Some(r#"{"Version":"2012-10-17","Statement":[]}"#.into());
        req.policy_arns = vec!["arn:aws:iam::aws:policy/ReadOnlyAccess".into()];
        let creds = ex.exchange(req).await.unwrap();
        assert_eq!(creds.access_key_id, "ASIAEXAMPLEKEYID0001");
        assert_eq!(creds.secret_access_key.expose(), SECRET_KEY);
        assert_eq!(creds.session_token.expose(), SESSION_TOKEN);
        assert_eq!(creds.expiration, "2026-12-01T11:00:00Z");
        assert_eq!(
            creds.assumed_role_arn,
            format!("arn:aws:sts::123456789012:assumed-role/gcpfed-ci/{SA_ID}")
        );
        assert_eq!(creds.assumed_role_id, format!("AROAEXAMPLEID:{SA_ID}"));
        assert_eq!(creds.subject.as_deref(), Some(SA_ID));
        assert_eq!(
            creds.email.as_deref(),
            Some("ci-runner@gcpfed-test.iam.gserviceaccount.com")
        );
        assert_eq!(creds.session_name, SA_ID);

        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 1);
        let r = &seen[0];
        assert!(r.request_line.starts_with("POST / "), "{}", r.request_line);
        assert_eq!(r.header("authorization"), None, "the call must be unsigned");
        assert_eq!(r.header("x-amz-security-token"), None);
        let form: std::collections::HashMap<String, String> =
            url::form_urlencoded::parse(r.body.as_bytes())
                .into_owned()
                .collect();
        assert_eq!(form["Action"], "AssumeRoleWithWebIdentity");
        assert_eq!(form["RoleArn"], ROLE);
        assert_eq!(form["RoleSessionName"], SA_ID);
        assert_eq!(form["WebIdentityToken"], tok);
        assert_eq!(form["DurationSeconds"], "3600");
        assert_eq!(
            form["PolicyArns.member.1.arn"],
            "arn:aws:iam::aws:policy/ReadOnlyAccess"
        );
        assert!(form.contains_key("Policy"));

        let json: serde_json::Value =
            serde_json::from_str(creds.credential_process_json().expose()).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"Version":1,"AccessKeyId":"ASIAEXAMPLEKEYID0001",
                "SecretAccessKey":SECRET_KEY,"SessionToken":SESSION_TOKEN,
                "Expiration":"2026-12-01T11:00:00Z"})
        );
        let dbg = format!("{creds:?}");
        assert!(
            !dbg.contains(SECRET_KEY) && !dbg.contains(SESSION_TOKEN),
            "{dbg}"
        );
    }

    #[derive(Debug)]
    struct CountingProvider(Arc<AtomicUsize>);
    impl aws_credential_types::provider::ProvideCredentials for CountingProvider {
        fn provide_credentials<'a>(
            &'a self,
        ) -> aws_credential_types::provider::future::ProvideCredentials<'a>
        where
            Self: 'a,
        {
            self.0.fetch_add(1, Ordering::SeqCst);
            aws_credential_types::provider::future::ProvideCredentials::ready(Ok(
                aws_credential_types::Credentials::for_tests(),
            ))
        }
    }

    #[tokio::test]
    async fn provider_credentials_are_never_resolved_for_the_exchange() {
        let (host, seen) = serve(vec![ok_xml()]).await;
        let calls = Arc::new(AtomicUsize::new(0));
        let base = aws_types::SdkConfig::builder()
            .behavior_version(aws_sdk_sts::config::BehaviorVersion::latest())
            .region(aws_types::region::Region::new("eu-west-1"))
            .credentials_provider(
                aws_credential_types::provider::SharedCredentialsProvider::new(CountingProvider(
                    calls.clone(),
                )),
            )
            .endpoint_url("http://127.0.0.1:9/unused-global-endpoint")
            .build();
        let sts = unsigned_sts_client(Some(&base), "us-east-1", Some(&format!("http://{host}")));
        let ex = Exchanger::new(sts, None, fast(0));
        ex.exchange(request(&token("aws-ci", SA_ID, SA_ID)))
            .await
            .unwrap();
        assert_eq!(calls.load(Ordering::SeqCst), 0, "credentials were resolved");
        assert_eq!(seen.lock().unwrap()[0].header("authorization"), None);
    }

    #[derive(Debug)]
    struct StopBeforeSend(Arc<Mutex<Option<String>>>);
    impl aws_sdk_sts::config::Intercept for StopBeforeSend {
        fn name(&self) -> &'static str {
            "StopBeforeSend"
        }
        fn read_before_transmit(
            &self,
            ctx: &aws_sdk_sts::config::interceptors::BeforeTransmitInterceptorContextRef<'_>,
            _rc: &aws_sdk_sts::config::RuntimeComponents,
            _cfg: &mut aws_sdk_sts::config::ConfigBag,
        ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
            *self.0.lock().unwrap() = Some(ctx.request().uri().to_string());
            Err("stopped before sending".into())
        }
    }

    #[tokio::test]
    async fn default_endpoint_is_regional() {
        for region in ["us-east-1", "eu-west-3"] {
            let uri = Arc::new(Mutex::new(None));
            let sts = unsigned_sts_client(None, region, None);
            let conf = sts
                .config()
                .to_builder()
                .interceptor(StopBeforeSend(uri.clone()))
                .build();
            let ex = Exchanger::new(aws_sdk_sts::Client::from_conf(conf), None, fast(0));
            let _ = ex.exchange(request(&token("aws-ci", SA_ID, SA_ID))).await;
            assert_eq!(
                uri.lock().unwrap().as_deref(),
                Some(format!("https://sts.{region}.amazonaws.com/").as_str())
            );
        }
    }

    #[tokio::test]
    async fn transient_codes_are_retried_within_the_budget() {
        let throttle = err_xml(400, "Throttling", "Rate exceeded");
        let (ex, seen) = exchanger(
            vec![
                throttle.clone(),
                throttle.clone(),
                throttle.clone(),
                ok_xml(),
            ],
            5,
            false,
        )
        .await;
        ex.exchange(request(&token("aws-ci", SA_ID, SA_ID)))
            .await
            .unwrap();
        assert_eq!(seen.lock().unwrap().len(), 4);

        let idp = err_xml(400, "IDPCommunicationError", "try later");
        let key = err_xml(
            400,
            "InvalidIdentityToken",
            "Couldn't retrieve verification key from your identity provider",
        );
        let (ex, seen) = exchanger(vec![idp.clone(), key, idp, ok_xml()], 5, false).await;
        ex.exchange(request(&token("aws-ci", SA_ID, SA_ID)))
            .await
            .unwrap();
        assert_eq!(seen.lock().unwrap().len(), 4);

        let (ex, seen) = exchanger(vec![throttle], 2, false).await;
        let e = ex
            .exchange(request(&token("aws-ci", SA_ID, SA_ID)))
            .await
            .unwrap_err();
        assert!(
            matches!(e, ExchangeError::RetriesExhausted { attempts: 3, .. }),
            "{e}"
        );
        assert!(e.to_string().contains("Throttling: Rate exceeded"), "{e}");
        assert!(e.to_string().contains("max_retries"), "{e}");
        assert_eq!(seen.lock().unwrap().len(), 3);
    }

    #[tokio::test]
    async fn denials_and_expired_tokens_are_not_retried() {
        for (code, msg) in [
            ("AccessDenied", "Not authorized to perform sts:AssumeRoleWithWebIdentity"),
            ("ExpiredTokenException", "Token expired: current date/time 1767230000 must be before the expiration date/time 1767225600"),
            ("InvalidIdentityToken", "Incorrect token audience"),
            ("ValidationError", "1 validation error detected"),
        ] {
            let (ex, seen) = exchanger(vec![err_xml(400, code, msg)], 5, false).await;
            let e = ex.exchange(request(&token("aws-ci", SA_ID, SA_ID))).await.unwrap_err();
            assert_eq!(seen.lock().unwrap().len(), 1, "{code} was retried");
            assert!(e.to_string().contains(msg), "{e}");
        }
    }

    #[tokio::test]
    async fn denial_prints_claims_and_the_mismatched_key() {
        let (ex, seen) = exchanger(
            vec![
                err_xml(
                    403,
                    "AccessDenied",
                    "Not authorized to perform sts:AssumeRoleWithWebIdentity",
                ),
                get_role_xml(&gcpfed_trust("aws-ci", SA_ID), 3600),
            ],
            5,
            true,
        )
        .await;
        let tok = token("wrong-aud", SA_ID, SA_ID);
        let e = ex.exchange(request(&tok)).await.unwrap_err();
        let msg = e.to_string();
        assert_eq!(e.summary(), "STS denied AssumeRoleWithWebIdentity");
        assert!(
            msg.contains(&format!(
                "accounts.google.com:aud  is compared with the token's azp = \"{SA_ID}\""
            )),
            "{msg}"
        );
        assert!(
            msg.contains(
                "accounts.google.com:oaud is compared with the token's aud = \"wrong-aud\""
            ),
            "{msg}"
        );
        assert!(
            msg.contains(&format!(
                "accounts.google.com:sub  is compared with the token's sub = \"{SA_ID}\""
            )),
            "{msg}"
        );
        assert!(msg.contains("Mismatch: accounts.google.com:oaud allows \"aws-ci\" but the token's aud is \"wrong-aud\""), "{msg}");
        assert!(!msg.contains("Mismatch: accounts.google.com:sub"), "{msg}");
        assert!(!msg.contains(&tok), "token leaked");
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 2);
        assert!(
            seen[1].body.contains("Action=GetRole") && seen[1].body.contains("RoleName=gcpfed-ci"),
            "{}",
            seen[1].body
        );
    }

    #[tokio::test]
    async fn denial_without_iam_still_prints_the_claims() {
        let (ex, _) = exchanger(
            vec![err_xml(403, "AccessDenied", "Not authorized")],
            5,
            false,
        )
        .await;
        let e = ex
            .exchange(request(&token("aws-ci", OTHER_ID, OTHER_ID)))
            .await
            .unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains(&format!("azp = \"{OTHER_ID}\"")), "{msg}");
        assert!(
            msg.contains("could not read it to name the mismatched key: no IAM client"),
            "{msg}"
        );

        // IAM refuses GetRole: say so, still print the claims.
        let (ex, _) = exchanger(
            vec![
                err_xml(403, "AccessDenied", "Not authorized"),
                Reply::new(403, r#"<ErrorResponse><Error><Code>AccessDenied</Code><Message>not allowed iam:GetRole</Message></Error></ErrorResponse>"#),
            ],
            5,
            true,
        )
        .await;
        let e = ex
            .exchange(request(&token("aws-ci", OTHER_ID, OTHER_ID)))
            .await
            .unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains("iam:GetRole on gcpfed-ci failed: AccessDenied"),
            "{msg}"
        );
        assert!(msg.contains(&format!("sub = \"{OTHER_ID}\"")), "{msg}");
    }

    #[tokio::test]
    async fn duration_above_the_role_maximum_says_so() {
        let (ex, _) = exchanger(
            vec![
                err_xml(400, "ValidationError", "The requested DurationSeconds exceeds the MaxSessionDuration set for this role."),
                get_role_xml(&gcpfed_trust("aws-ci", SA_ID), 3600),
            ],
            5,
            true,
        )
        .await;
        let mut req = request(&token("aws-ci", SA_ID, SA_ID));
        req.duration_seconds = Some(7200);
        let e = ex.exchange(req).await.unwrap_err();
        assert_eq!(e.attribute(), Some("duration_seconds"));
        let msg = e.to_string();
        assert!(
            msg.contains(
                "duration_seconds = 7200 is above the role's maximum session duration of 3600 s"
            ),
            "{msg}"
        );
        assert!(msg.contains("max_session_duration"), "{msg}");
    }

    #[tokio::test]
    async fn malformed_given_token_points_at_the_attribute() {
        let (ex, seen) = exchanger(vec![ok_xml()], 0, false).await;
        let e = ex.exchange(request("not-a-jwt")).await.unwrap_err();
        assert_eq!(e.attribute(), Some("web_identity_token"));
        assert!(!e.to_string().contains("not-a-jwt"), "{e}");
        assert_eq!(seen.lock().unwrap().len(), 0);
    }

    #[tokio::test]
    async fn explicit_invalid_session_name_is_refused_before_sts() {
        let (ex, seen) = exchanger(vec![ok_xml()], 0, false).await;
        let mut req = request(&token("aws-ci", SA_ID, SA_ID));
        req.session_name = Some("has space".into());
        let e = ex.exchange(req).await.unwrap_err();
        assert_eq!(e.attribute(), Some("session_name"));
        assert_eq!(seen.lock().unwrap().len(), 0);
    }

    #[tokio::test]
    async fn metadata_token_source_is_used() {
        let (md_host, md_seen) = serve(vec![
            Reply::new(200, &token("aws-ci", SA_ID, SA_ID)).header("Metadata-Flavor", "Google")
        ])
        .await;
        let (ex, _) = exchanger(vec![ok_xml()], 0, false).await;
        let mut req = request("unused");
        req.service_account = "deployer@gcpfed-test.iam.gserviceaccount.com".into();
        req.token = TokenSource::Metadata(
            MetadataClient::new(&md_host, Duration::from_secs(5), fast(0)).unwrap(),
        );
        let creds = ex.exchange(req).await.unwrap();
        assert_eq!(creds.subject.as_deref(), Some(SA_ID));
        let seen = md_seen.lock().unwrap();
        assert!(seen[0].request_line.contains("/service-accounts/deployer@gcpfed-test.iam.gserviceaccount.com/identity?audience=aws-ci&format=full&licenses=FALSE"), "{}", seen[0].request_line);
    }

    /// Records every event and span field as text.
    struct Capture(Arc<Mutex<String>>, AtomicUsize);
    struct Visitor<'a>(&'a mut String);
    impl tracing::field::Visit for Visitor<'_> {
        fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
            self.0.push_str(&format!(" {}={:?}", field.name(), value));
        }
    }
    impl tracing::Subscriber for Capture {
        fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
            true
        }
        fn new_span(&self, span: &tracing::span::Attributes<'_>) -> tracing::span::Id {
            let mut s = self.0.lock().unwrap();
            span.record(&mut Visitor(&mut s));
            tracing::span::Id::from_u64(self.1.fetch_add(1, Ordering::SeqCst) as u64 + 1)
        }
        fn record(&self, _: &tracing::span::Id, values: &tracing::span::Record<'_>) {
            values.record(&mut Visitor(&mut self.0.lock().unwrap()));
        }
        fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
        fn event(&self, event: &tracing::Event<'_>) {
            let mut s = self.0.lock().unwrap();
            s.push_str(&format!(
                "\n{} {}",
                event.metadata().level(),
                event.metadata().target()
            ));
            event.record(&mut Visitor(&mut s));
        }
        fn enter(&self, _: &tracing::span::Id) {}
        fn exit(&self, _: &tracing::span::Id) {}
    }

    #[tokio::test]
    async fn trace_logs_hold_neither_token_nor_secrets() {
        let log = Arc::new(Mutex::new(String::new()));
        let dispatch = tracing::Dispatch::new(Capture(log.clone(), AtomicUsize::new(0)));
        let tok = token("aws-ci", SA_ID, SA_ID);
        let (md_host, _) = serve(vec![
            Reply::new(500, "boom").header("Metadata-Flavor", "Google"),
            Reply::new(200, &tok).header("Metadata-Flavor", "Google"),
        ])
        .await;
        let throttle = err_xml(400, "Throttling", "Rate exceeded");
        let (ex, _) = exchanger(vec![throttle, ok_xml()], 5, false).await;
        let mut req = request("unused");
        req.token = TokenSource::Metadata(
            MetadataClient::new(&md_host, Duration::from_secs(5), fast(3)).unwrap(),
        );
        let creds = {
            let _guard = tracing::dispatcher::set_default(&dispatch);
            ex.exchange(req).await.unwrap()
        };
        let log = log.lock().unwrap();
        assert!(
            log.contains("aws_smithy_runtime"),
            "the capture saw no SDK events:\n{log}"
        );
        assert!(log.contains("retrying"), "{log}");
        let signature = tok.rsplit('.').next().unwrap();
        for (what, needle) in [
            ("token", tok.as_str()),
            ("token signature", signature),
            ("secret key", SECRET_KEY),
            ("session token", SESSION_TOKEN),
            ("secret key", creds.secret_access_key.expose()),
        ] {
            assert!(!log.contains(needle), "{what} in the trace log");
        }
    }
}
