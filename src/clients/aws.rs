//! Builds the AWS SDK configuration and the IAM client from resolved settings. How the
//! provider's own calls are signed is decided by the caller: explicit keys from the settings,
//! a credentials provider it hands in (`assume_role_with_gcp_identity`), or the standard chain.
//!
//! Region order: the argument, `AWS_REGION`, `AWS_DEFAULT_REGION` (resolved in
//! [`crate::clients::settings`]), the profile's region, then `us-east-1`. The SDK's own region
//! chain is not used because its last step asks EC2 instance metadata, which on Google Cloud
//! only times out.

use std::error::Error;
use std::fmt::Write as _;
use std::time::Duration;

use aws_config::meta::region::ProvideRegion;
use aws_config::meta::ProviderChainError;
use aws_config::profile::ProfileFileRegionProvider;
use aws_config::retry::RetryConfig;
use aws_config::BehaviorVersion;
use aws_credential_types::provider::error::CredentialsError;
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_credential_types::Credentials;
use aws_smithy_types::timeout::TimeoutConfig;
use aws_types::region::Region;

use crate::clients::settings::{AwsSettings, FALLBACK_REGION};
use crate::clients::shared::Clients;
use crate::diag::error_chain;

/// Longest wait for a TCP (and TLS) connection to an AWS endpoint.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest wait for one attempt of an IAM or STS call: IAM and STS answer in well under a
/// second, so 20 s only ends attempts that will never be answered (a wedged proxy, a
/// black-holed VPC endpoint), and still leaves room for a retry within [`OPERATION_TIMEOUT`].
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(20);
/// Longest wait for one IAM or STS call, its retries and their backoff included: the SDK's
/// retries of a timed-out attempt never run past it (worst case three 20 s attempts). An apply
/// that meets a stalled endpoint fails within a minute per call instead of hanging.
pub const OPERATION_TIMEOUT: Duration = Duration::from_secs(60);

/// How an AWS call's failure reads in a message: each cause's `Display`, outermost first,
/// never the SDK's `Debug` dump. A failure to find credentials is told apart
/// ([`MISSING_CREDENTIALS`], then the sources the chain tried, in plain words), because the
/// SDK reports it as a failure to dispatch the request, which reads like a network problem.
pub fn describe_sdk_error(err: &(dyn Error + 'static)) -> String {
    match missing_credentials(err) {
        Some(text) => text,
        None => error_chain(err),
    }
}

/// Opens the text of [`describe_sdk_error`] when the call failed for want of credentials, so
/// that whoever turns it into a diagnostic can give that its own headline and fixes.
pub const MISSING_CREDENTIALS: &str = "no AWS credentials were found to sign the call";

/// Whether `text` (from [`describe_sdk_error`]) says the call had no credentials.
pub fn is_missing_credentials(text: &str) -> bool {
    text.starts_with(MISSING_CREDENTIALS)
}

/// The standard chain's sources as users know them, by the names aws-config gives them.
fn source_in_plain_words(name: &str) -> &str {
    match name {
        "Environment" => "environment variables AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY",
        "Profile" => {
            "the shared config and credentials files (~/.aws/config, ~/.aws/credentials), for \
             the profile named by `profile` or AWS_PROFILE, else `default`"
        }
        "WebIdentityToken" => "web identity (AWS_WEB_IDENTITY_TOKEN_FILE with AWS_ROLE_ARN)",
        "EcsContainer" => {
            "container credentials (AWS_CONTAINER_CREDENTIALS_RELATIVE_URI or _FULL_URI)"
        }
        "Ec2InstanceMetadata" => "EC2 instance metadata (IMDS)",
        other => other,
    }
}

fn missing_credentials(err: &(dyn Error + 'static)) -> Option<String> {
    let credentials = causes(err).find_map(|e| e.downcast_ref::<CredentialsError>())?;
    let chain =
        causes(credentials).find_map(|e| e.downcast_ref::<ProviderChainError<CredentialsError>>());
    let mut text = MISSING_CREDENTIALS.to_owned();
    match chain {
        Some(chain) if !chain.attempts().is_empty() => {
            text.push_str(". Sources tried, in order, none of which had credentials:");
            for attempt in chain.attempts() {
                let _ = write!(
                    text,
                    "\n  - {}: {}",
                    source_in_plain_words(attempt.name()),
                    error_chain(attempt.error())
                );
            }
        }
        // A source that was found but failed (an IMDS that refused, a profile that does not
        // parse, the exchange of `assume_role_with_gcp_identity`): the chain stopped there.
        _ => {
            let _ = write!(
                text,
                ": the credential source that was tried failed: {}",
                error_chain(credentials)
            );
        }
    }
    Some(text)
}

/// `err` and its sources, outermost first.
fn causes<'e>(err: &'e (dyn Error + 'static)) -> impl Iterator<Item = &'e (dyn Error + 'static)> {
    std::iter::successors(Some(err), |e: &&'e (dyn Error + 'static)| (*e).source())
}

/// The timeouts of every AWS call the provider and the command line make (fixed, documented
/// defaults rather than arguments: nobody needs an IAM call to wait longer than a minute).
pub fn timeout_config() -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .operation_attempt_timeout(ATTEMPT_TIMEOUT)
        .operation_timeout(OPERATION_TIMEOUT)
        .build()
}

/// Builds the shared SDK configuration and the IAM client for `region` (from
/// [`resolve_region`]). `credentials`, when given, signs every call; otherwise the settings'
/// explicit keys do, or else the standard chain. Credentials are resolved lazily by the SDK,
/// on the first call that needs them.
pub async fn build_clients(
    settings: &AwsSettings,
    region: String,
    credentials: Option<SharedCredentialsProvider>,
) -> Clients {
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(region.clone()))
        .retry_config(RetryConfig::standard().with_max_attempts(settings.max_retries + 1))
        .timeout_config(timeout_config());
    if let Some(profile) = &settings.profile {
        loader = loader.profile_name(profile);
    }
    if let Some(provider) = credentials {
        loader = loader.credentials_provider(provider);
    } else if let Some(creds) = &settings.static_credentials {
        loader = loader.credentials_provider(Credentials::new(
            creds.access_key_id.clone(),
            creds.secret_access_key.clone(),
            creds.session_token.clone(),
            None,
            "gcpfed-provider-arguments",
        ));
    }
    let sdk_config = loader.load().await;

    let mut iam_config = aws_sdk_iam::config::Builder::from(&sdk_config);
    if let Some(url) = &settings.iam_endpoint {
        iam_config = iam_config.endpoint_url(url);
    }
    Clients {
        iam: aws_sdk_iam::Client::from_conf(iam_config.build()),
        sdk_config,
        region,
        sts_endpoint: settings.sts_endpoint.clone(),
        metadata_host: settings.metadata_host.clone(),
        iam_credentials_endpoint: settings.iam_credentials_endpoint.clone(),
        max_retries: settings.max_retries,
    }
}

/// The region the clients use: the settings' (argument or environment), else the profile's,
/// else [`FALLBACK_REGION`].
pub async fn resolve_region(settings: &AwsSettings) -> String {
    if let Some(region) = &settings.region {
        return region.clone();
    }
    let mut from_profile = ProfileFileRegionProvider::builder();
    if let Some(profile) = &settings.profile {
        from_profile = from_profile.profile_name(profile);
    }
    match from_profile.build().region().await {
        Some(region) => region.to_string(),
        None => FALLBACK_REGION.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clients::settings::StaticCredentials;

    fn settings() -> AwsSettings {
        AwsSettings {
            region: Some("eu-west-3".into()),
            profile: None,
            static_credentials: Some(StaticCredentials {
                access_key_id: "AKIDEXAMPLE".into(),
                secret_access_key: "very-secret".into(),
                session_token: Some("session-secret".into()),
            }),
            iam_endpoint: Some("http://127.0.0.1:1".into()),
            sts_endpoint: None,
            metadata_host: "metadata.google.internal".into(),
            iam_credentials_endpoint: crate::clients::iam_credentials::DEFAULT_ENDPOINT.into(),
            max_retries: 3,
            assume_role_with_gcp_identity: None,
        }
    }

    #[test]
    fn debug_output_masks_credentials() {
        let text = format!("{:?}", settings());
        assert!(!text.contains("very-secret") && !text.contains("session-secret"));
        assert!(!text.contains("AKIDEXAMPLE"));
    }

    #[tokio::test]
    async fn clients_take_region_and_retry_budget_from_settings() {
        let s = settings();
        let region = resolve_region(&s).await;
        let clients = build_clients(&s, region, None).await;
        assert_eq!(clients.region, "eu-west-3");
        assert_eq!(
            clients.sdk_config.region().map(|r| r.as_ref()),
            Some("eu-west-3")
        );
        let retry = clients.sdk_config.retry_config().expect("retry config");
        assert_eq!(retry.max_attempts(), 4);
        let timeouts = clients.sdk_config.timeout_config().expect("timeout config");
        assert_eq!(timeouts.operation_attempt_timeout(), Some(ATTEMPT_TIMEOUT));
        assert_eq!(timeouts.operation_timeout(), Some(OPERATION_TIMEOUT));
        assert_eq!(timeouts.connect_timeout(), Some(CONNECT_TIMEOUT));
    }

    #[tokio::test]
    async fn a_given_credentials_provider_wins_over_explicit_keys() {
        let given = Credentials::new("ASIAGIVEN", "given-secret", None, None, "test");
        let clients = build_clients(
            &settings(),
            "us-east-1".into(),
            Some(SharedCredentialsProvider::new(given)),
        )
        .await;
        let provider = clients
            .sdk_config
            .credentials_provider()
            .expect("a credentials provider");
        use aws_credential_types::provider::ProvideCredentials as _;
        let creds = provider.provide_credentials().await.unwrap();
        assert_eq!(creds.access_key_id(), "ASIAGIVEN");
        assert_eq!(clients.region, "us-east-1");
    }

    /// A source of the chain that has no credentials, as the SDK's own sources say so.
    #[derive(Debug)]
    struct Nothing(&'static str);

    impl aws_credential_types::provider::ProvideCredentials for Nothing {
        fn provide_credentials<'a>(
            &'a self,
        ) -> aws_credential_types::provider::future::ProvideCredentials<'a>
        where
            Self: 'a,
        {
            aws_credential_types::provider::future::ProvideCredentials::ready(Err(
                CredentialsError::not_loaded(self.0),
            ))
        }
    }

    async fn list_roles_signed_by(provider: SharedCredentialsProvider) -> String {
        let config = aws_sdk_iam::Config::builder()
            .behavior_version(aws_sdk_iam::config::BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .credentials_provider(provider)
            // Never reached: the request is not sent without credentials.
            .endpoint_url("http://127.0.0.1:1")
            .retry_config(RetryConfig::disabled())
            .build();
        let err = aws_sdk_iam::Client::from_conf(config)
            .list_roles()
            .send()
            .await
            .expect_err("no credentials, no call");
        describe_sdk_error(&err)
    }

    #[tokio::test]
    async fn an_empty_credential_chain_is_told_apart_and_listed_in_plain_words() {
        use aws_config::meta::credentials::CredentialsProviderChain;
        let chain = CredentialsProviderChain::first_try("Environment", Nothing("no keys"))
            .or_else("Ec2InstanceMetadata", Nothing("IMDS is disabled"));
        let text = list_roles_signed_by(SharedCredentialsProvider::new(chain)).await;
        assert!(is_missing_credentials(&text), "{text}");
        assert!(
            text.contains(
                "\n  - environment variables AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY: the \
                 credential provider was not enabled: no keys"
            ),
            "{text}"
        );
        assert!(
            text.contains("\n  - EC2 instance metadata (IMDS): the credential provider was not enabled: IMDS is disabled"),
            "{text}"
        );
        // Display texts only: no type name of a Debug dump.
        for debug in [
            "DispatchFailure",
            "ConnectorError",
            "ProviderChainError",
            "{",
        ] {
            assert!(!text.contains(debug), "{debug} in {text}");
        }
    }

    #[tokio::test]
    async fn a_source_that_failed_is_named_with_its_error() {
        #[derive(Debug)]
        struct Refused;
        impl aws_credential_types::provider::ProvideCredentials for Refused {
            fn provide_credentials<'a>(
                &'a self,
            ) -> aws_credential_types::provider::future::ProvideCredentials<'a>
            where
                Self: 'a,
            {
                aws_credential_types::provider::future::ProvideCredentials::ready(Err(
                    CredentialsError::provider_error("HTTP 403 from the instance metadata"),
                ))
            }
        }
        let text = list_roles_signed_by(SharedCredentialsProvider::new(Refused)).await;
        assert!(is_missing_credentials(&text), "{text}");
        assert!(
            text.ends_with(
                "the credential source that was tried failed: an error occurred while loading \
                 credentials: HTTP 403 from the instance metadata"
            ),
            "{text}"
        );
    }

    #[tokio::test]
    async fn other_failures_are_their_causes_display_not_a_credentials_message() {
        let given = Credentials::new("AKIDEXAMPLE", "secret", None, None, "test");
        let text = list_roles_signed_by(SharedCredentialsProvider::new(given)).await;
        assert!(!is_missing_credentials(&text), "{text}");
        assert!(text.starts_with("dispatch failure"), "{text}");
        assert!(!text.contains("DispatchFailure"), "{text}");
    }
}
