//! Builds the AWS SDK configuration and clients from resolved provider settings.
//!
//! Region order: the argument, `AWS_REGION`, `AWS_DEFAULT_REGION` (resolved before this
//! module), the profile's region, then `us-east-1`. The SDK's own region chain is not used
//! because its last step asks EC2 instance metadata, which on Google Cloud only times out.

use std::fmt;

use aws_config::meta::region::ProvideRegion;
use aws_config::profile::ProfileFileRegionProvider;
use aws_config::retry::RetryConfig;
use aws_config::BehaviorVersion;
use aws_credential_types::Credentials;
use aws_types::region::Region;

use crate::provider::Clients;

/// Used when no argument, variable or profile names a region.
pub const FALLBACK_REGION: &str = "us-east-1";

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

/// Provider arguments with their environment fallbacks applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsSettings {
    /// `None`: the profile's region, then `us-east-1`.
    pub region: Option<String>,
    pub profile: Option<String>,
    /// `None`: the standard AWS credential chain.
    pub static_credentials: Option<StaticCredentials>,
    pub iam_endpoint: Option<String>,
    pub sts_endpoint: Option<String>,
    pub metadata_host: String,
    pub max_retries: u32,
}

/// Builds the shared SDK configuration and the IAM client. Credentials are resolved
/// lazily by the SDK, on the first call that needs them.
pub async fn build_clients(
    settings: &AwsSettings,
) -> Result<Clients, Box<dyn std::error::Error + Send + Sync>> {
    let region = resolve_region(settings).await;
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(region.clone()))
        .retry_config(RetryConfig::standard().with_max_attempts(settings.max_retries + 1));
    if let Some(profile) = &settings.profile {
        loader = loader.profile_name(profile);
    }
    if let Some(creds) = &settings.static_credentials {
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
    Ok(Clients {
        iam: aws_sdk_iam::Client::from_conf(iam_config.build()),
        sdk_config,
        region,
        sts_endpoint: settings.sts_endpoint.clone(),
        metadata_host: settings.metadata_host.clone(),
        max_retries: settings.max_retries,
    })
}

async fn resolve_region(settings: &AwsSettings) -> String {
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
        let clients = build_clients(&settings()).await.expect("clients");
        assert_eq!(clients.region, "eu-west-3");
        assert_eq!(
            clients.sdk_config.region().map(|r| r.as_ref()),
            Some("eu-west-3")
        );
        let retry = clients.sdk_config.retry_config().expect("retry config");
        assert_eq!(retry.max_attempts(), 4);
    }
}
