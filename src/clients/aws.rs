//! Builds the AWS SDK configuration and the IAM client from resolved settings. How the
//! provider's own calls are signed is decided by the caller: explicit keys from the settings,
//! a credentials provider it hands in (`assume_role_with_gcp_identity`), or the standard chain.
//!
//! Region order: the argument, `AWS_REGION`, `AWS_DEFAULT_REGION` (resolved in
//! [`crate::clients::settings`]), the profile's region, then `us-east-1`. The SDK's own region
//! chain is not used because its last step asks EC2 instance metadata, which on Google Cloud
//! only times out.

use std::time::Duration;

use aws_config::meta::region::ProvideRegion;
use aws_config::profile::ProfileFileRegionProvider;
use aws_config::retry::RetryConfig;
use aws_config::BehaviorVersion;
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_credential_types::Credentials;
use aws_smithy_types::timeout::TimeoutConfig;
use aws_types::region::Region;

use crate::clients::settings::{AwsSettings, FALLBACK_REGION};
use crate::clients::shared::Clients;

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
}
