//! Owns the settings the clients are built from and their environment fallbacks: the one place
//! that knows which `AWS_*` / `GCE_*` / `GOOGLE_*` variable stands in for which argument, in which order.
//! The provider (arguments) and `credential-process` (flags) both resolve through here, so the
//! two cannot drift. No I/O but reading the environment through [`Environment`].

use std::collections::HashMap;
use std::fmt;

/// Where the GCE metadata server lives when nothing else is said.
pub const DEFAULT_METADATA_HOST: &str = "metadata.google.internal";

/// Default retry budget for throttling and transient faults.
pub const DEFAULT_MAX_RETRIES: u32 = 5;
/// The largest retry budget accepted (`max_retries`, `--max-retries`): enough for any outage
/// worth waiting out, small enough that a typo cannot make a run wait for hours.
pub const MAX_RETRIES_MAX: i64 = 100;

/// Used when no argument, variable or profile names a region.
pub const FALLBACK_REGION: &str = "us-east-1";

/// Environment variables the settings fall back on, read once at configure time (or once per
/// `credential-process` run). A trait so that tests give a map instead of the process's own.
pub trait Environment {
    fn var(&self, name: &str) -> Option<String>;
}

/// The process environment; empty values count as unset, as the AWS SDKs do.
pub struct ProcessEnvironment;

impl Environment for ProcessEnvironment {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok().filter(|v| !v.is_empty())
    }
}

impl Environment for HashMap<String, String> {
    fn var(&self, name: &str) -> Option<String> {
        self.get(name).filter(|v| !v.is_empty()).cloned()
    }
}

/// An argument or flag as given: an empty value counts as not given (as an empty variable
/// does), so `region = ""` falls back like no `region` at all.
pub fn given(value: Option<&str>) -> Option<String> {
    value.filter(|v| !v.is_empty()).map(str::to_owned)
}

/// The region: the argument, `AWS_REGION`, `AWS_DEFAULT_REGION`; `None` leaves the choice to
/// the profile, then [`FALLBACK_REGION`].
pub fn region(argument: Option<&str>, env: &dyn Environment) -> Option<String> {
    given(argument)
        .or_else(|| env.var("AWS_REGION"))
        .or_else(|| env.var("AWS_DEFAULT_REGION"))
}

/// The shared-config profile: the argument, then `AWS_PROFILE`.
pub fn profile(argument: Option<&str>, env: &dyn Environment) -> Option<String> {
    given(argument).or_else(|| env.var("AWS_PROFILE"))
}

/// The AWS services whose endpoint can be set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    Iam,
    Sts,
}

impl Service {
    /// The service's own variable, as the AWS SDKs name it.
    pub fn endpoint_variable(self) -> &'static str {
        match self {
            Service::Iam => "AWS_ENDPOINT_URL_IAM",
            Service::Sts => "AWS_ENDPOINT_URL_STS",
        }
    }
}

/// A custom endpoint: the argument, the service's `AWS_ENDPOINT_URL_<SERVICE>`, then
/// `AWS_ENDPOINT_URL`; `None` means the service's regional endpoint.
pub fn endpoint(service: Service, argument: Option<&str>, env: &dyn Environment) -> Option<String> {
    given(argument)
        .or_else(|| env.var(service.endpoint_variable()))
        .or_else(|| env.var("AWS_ENDPOINT_URL"))
}

/// host[:port] of the metadata server: the argument, `GCE_METADATA_HOST` (as Google's client
/// libraries read it), then [`DEFAULT_METADATA_HOST`].
pub fn metadata_host(argument: Option<&str>, env: &dyn Environment) -> String {
    given(argument)
        .or_else(|| env.var("GCE_METADATA_HOST"))
        .unwrap_or_else(|| DEFAULT_METADATA_HOST.to_owned())
}

/// The variable terraform-provider-google reads for the IAM Credentials API's base URL.
pub const IAM_CREDENTIALS_ENDPOINT_VARIABLE: &str = "GOOGLE_IAM_CREDENTIALS_CUSTOM_ENDPOINT";

/// Base URL of the IAM Credentials API (impersonation): the argument
/// (`iam_credentials_custom_endpoint`, `--iam-credentials-endpoint`), then
/// `GOOGLE_IAM_CREDENTIALS_CUSTOM_ENDPOINT`, then Google's endpoint.
pub fn iam_credentials_endpoint(argument: Option<&str>, env: &dyn Environment) -> String {
    given(argument)
        .or_else(|| env.var(IAM_CREDENTIALS_ENDPOINT_VARIABLE))
        .unwrap_or_else(|| super::iam_credentials::DEFAULT_ENDPOINT.to_owned())
}

/// Explicit credentials from the provider block. `Debug` masks the secrets.
#[derive(Clone, PartialEq, Eq)]
pub struct StaticCredentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: Option<String>,
}

impl fmt::Debug for StaticCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StaticCredentials")
            .field("access_key_id", &"***")
            .field("secret_access_key", &"***")
            .field("session_token", &self.session_token.as_ref().map(|_| "***"))
            .finish()
    }
}

/// The `assume_role_with_gcp_identity` block, defaults applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GcpIdentitySettings {
    pub role_arn: String,
    pub audience: String,
    /// Metadata alias (`default`) or service-account email.
    pub service_account: String,
    pub duration_seconds: i32,
    /// The account to impersonate through the IAM Credentials API, if any.
    pub impersonate_service_account: Option<String>,
    /// Its delegation chain, normalised.
    pub delegates: Vec<String>,
}

/// Provider arguments with their environment fallbacks applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsSettings {
    /// `None`: the profile's region, then [`FALLBACK_REGION`].
    pub region: Option<String>,
    pub profile: Option<String>,
    /// `None`: the standard AWS credential chain.
    pub static_credentials: Option<StaticCredentials>,
    pub iam_endpoint: Option<String>,
    pub sts_endpoint: Option<String>,
    pub metadata_host: String,
    /// Base URL of the IAM Credentials API, for impersonation ([`iam_credentials_endpoint`]).
    pub iam_credentials_endpoint: String,
    pub max_retries: u32,
    /// When set, the provider's own credentials come from the GCP exchange (and
    /// `static_credentials` is `None`: the two are refused together at validation).
    pub assume_role_with_gcp_identity: Option<GcpIdentitySettings>,
}

/// An environment of these variables, for the tests of whatever resolves settings.
#[cfg(test)]
pub(crate) fn test_environment(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        test_environment(pairs)
    }

    #[test]
    fn arguments_win_then_variables_apply_in_order_and_empty_means_unset() {
        let all = env(&[
            ("AWS_REGION", "ap-south-1"),
            ("AWS_DEFAULT_REGION", "eu-west-1"),
            ("AWS_ENDPOINT_URL", "http://all.example"),
            ("AWS_ENDPOINT_URL_STS", "http://sts.example"),
            ("GCE_METADATA_HOST", "10.0.0.1:80"),
            ("AWS_PROFILE", "ci"),
        ]);
        assert_eq!(
            region(Some("us-west-2"), &all).as_deref(),
            Some("us-west-2")
        );
        assert_eq!(region(Some(""), &all).as_deref(), Some("ap-south-1"));
        let default_only = env(&[("AWS_REGION", ""), ("AWS_DEFAULT_REGION", "eu-west-1")]);
        assert_eq!(region(None, &default_only).as_deref(), Some("eu-west-1"));
        assert_eq!(region(None, &HashMap::new()), None);

        assert_eq!(
            endpoint(Service::Sts, None, &all).as_deref(),
            Some("http://sts.example")
        );
        assert_eq!(
            endpoint(Service::Iam, None, &all).as_deref(),
            Some("http://all.example")
        );
        assert_eq!(
            endpoint(Service::Iam, Some("http://iam.example"), &all).as_deref(),
            Some("http://iam.example")
        );
        assert_eq!(endpoint(Service::Sts, None, &HashMap::new()), None);

        assert_eq!(metadata_host(None, &all), "10.0.0.1:80");
        assert_eq!(metadata_host(Some("127.0.0.1:9"), &all), "127.0.0.1:9");
        assert_eq!(metadata_host(None, &HashMap::new()), DEFAULT_METADATA_HOST);

        let google = env(&[(
            "GOOGLE_IAM_CREDENTIALS_CUSTOM_ENDPOINT",
            "http://127.0.0.1:9/v1/",
        )]);
        assert_eq!(
            iam_credentials_endpoint(None, &google),
            "http://127.0.0.1:9/v1/"
        );
        assert_eq!(
            iam_credentials_endpoint(Some("https://x/v1/"), &google),
            "https://x/v1/"
        );
        assert_eq!(
            iam_credentials_endpoint(Some(""), &HashMap::new()),
            "https://iamcredentials.googleapis.com/v1/"
        );

        assert_eq!(profile(None, &all).as_deref(), Some("ci"));
        assert_eq!(profile(Some("prod"), &all).as_deref(), Some("prod"));
    }

    #[test]
    fn debug_output_masks_static_credentials() {
        let creds = StaticCredentials {
            access_key_id: "AKIDEXAMPLE".into(),
            secret_access_key: "very-secret".into(),
            session_token: Some("session-secret".into()),
        };
        let text = format!("{creds:?}");
        assert!(!text.contains("very-secret") && !text.contains("session-secret"));
        assert!(!text.contains("AKIDEXAMPLE"));
    }
}
