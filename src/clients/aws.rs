//! Builds the AWS SDK configuration and clients from resolved provider settings, and owns the
//! credentials of `assume_role_with_gcp_identity`: a [`ProvideCredentials`] that runs the
//! metadata -> STS exchange (unsigned) and hands its temporary credentials to the SDK, refreshed
//! before they expire, so that a Google Cloud runner needs no AWS key at all.
//!
//! Region order: the argument, `AWS_REGION`, `AWS_DEFAULT_REGION` (resolved before this
//! module), the profile's region, then `us-east-1`. The SDK's own region chain is not used
//! because its last step asks EC2 instance metadata, which on Google Cloud only times out.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_config::meta::region::ProvideRegion;
use aws_config::profile::ProfileFileRegionProvider;
use aws_config::retry::RetryConfig;
use aws_config::BehaviorVersion;
use aws_credential_types::provider::error::CredentialsError;
use aws_credential_types::provider::{future, ProvideCredentials};
use aws_credential_types::Credentials;
use aws_types::region::Region;

use crate::clients::metadata::{self, MetadataClient};
use crate::exchange::{self, Backoff, ExchangeError, ExchangeRequest, Exchanger, TokenSource};
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

/// The `assume_role_with_gcp_identity` block, defaults applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GcpIdentitySettings {
    pub role_arn: String,
    pub audience: String,
    /// Metadata alias (`default`) or service-account email.
    pub service_account: String,
    pub duration_seconds: i32,
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
    /// When set, the provider's own credentials come from the GCP exchange (and
    /// `static_credentials` is `None`: the two are refused together at validation).
    pub assume_role_with_gcp_identity: Option<GcpIdentitySettings>,
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
    let gcp_identity = match &settings.assume_role_with_gcp_identity {
        Some(identity) => Some(Arc::new(GcpIdentityCredentials::new(
            identity.clone(),
            &region,
            settings.sts_endpoint.as_deref(),
            &settings.metadata_host,
            settings.max_retries,
        )?)),
        None => None,
    };
    if let Some(provider) = &gcp_identity {
        loader = loader.credentials_provider(SharedGcpIdentity(provider.clone()));
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
    Ok(Clients {
        iam: aws_sdk_iam::Client::from_conf(iam_config.build()),
        sdk_config,
        region,
        sts_endpoint: settings.sts_endpoint.clone(),
        metadata_host: settings.metadata_host.clone(),
        max_retries: settings.max_retries,
        gcp_identity,
    })
}

/// Credentials are handed to the SDK as expiring this long before STS's expiration, so that the
/// SDK's identity cache asks for new ones while the old ones still work.
pub const REFRESH_MARGIN: Duration = Duration::from_secs(300);

/// Credentials closer than this to their (early) expiry are exchanged again rather than
/// returned (the SDK's identity cache itself refreshes 10 s to 15 s ahead).
const REUSE_BUFFER: Duration = Duration::from_secs(60);

/// Shown as the credentials' provider name in SDK logs.
pub const GCP_IDENTITY_PROVIDER_NAME: &str = "gcpfed-assume-role-with-gcp-identity";

/// The provider's own AWS credentials, from `assume_role_with_gcp_identity`: a Google ID token
/// from the metadata server, exchanged with STS AssumeRoleWithWebIdentity. The STS client has no
/// credentials provider (the call is unsigned), so resolving these never recurses into the
/// standard chain. One exchange at a time; the result is reused until [`REFRESH_MARGIN`] before
/// it expires.
#[derive(Debug)]
pub struct GcpIdentityCredentials {
    settings: GcpIdentitySettings,
    exchanger: Exchanger,
    metadata: MetadataClient,
    current: tokio::sync::Mutex<Option<Credentials>>,
}

impl GcpIdentityCredentials {
    /// `region` and `sts_endpoint` choose the STS endpoint (as for the data source);
    /// `metadata_host` is host[:port]; `max_retries` bounds the metadata and STS retries.
    pub fn new(
        settings: GcpIdentitySettings,
        region: &str,
        sts_endpoint: Option<&str>,
        metadata_host: &str,
        max_retries: u32,
    ) -> Result<Self, ExchangeError> {
        let backoff = Backoff::new(max_retries);
        let metadata = MetadataClient::new(metadata_host, metadata::DEFAULT_TIMEOUT, backoff)?;
        let sts = exchange::unsigned_sts_client(None, region, sts_endpoint);
        Ok(GcpIdentityCredentials {
            settings,
            // No IAM client: reading the role to explain a denial would need these very
            // credentials. The denial still prints the token's claims beside the keys.
            exchanger: Exchanger::new(sts, None, backoff),
            metadata,
            current: tokio::sync::Mutex::new(None),
        })
    }

    pub fn settings(&self) -> &GcpIdentitySettings {
        &self.settings
    }

    /// Current credentials: the last exchange's while they are fresh, else a new exchange.
    /// Their `expiry()` is STS's expiration minus [`REFRESH_MARGIN`].
    pub async fn credentials(&self) -> Result<Credentials, ExchangeError> {
        let mut current = self.current.lock().await;
        if let Some(creds) = current.as_ref() {
            let fresh = creds
                .expiry()
                .and_then(|expiry| expiry.duration_since(SystemTime::now()).ok())
                .is_some_and(|left| left > REUSE_BUFFER);
            if fresh {
                return Ok(creds.clone());
            }
        }
        let request = ExchangeRequest {
            role_arn: self.settings.role_arn.clone(),
            audience: self.settings.audience.clone(),
            service_account: self.settings.service_account.clone(),
            session_name: None,
            duration_seconds: Some(self.settings.duration_seconds),
            policy: None,
            policy_arns: Vec::new(),
            token: TokenSource::Metadata(self.metadata.clone()),
        };
        let out = self.exchanger.exchange(request).await?;
        let expiration = UNIX_EPOCH + Duration::from_secs(out.expiration_epoch.max(0) as u64);
        let creds = Credentials::new(
            out.access_key_id,
            out.secret_access_key.into_inner(),
            Some(out.session_token.into_inner()),
            Some(expiration.checked_sub(REFRESH_MARGIN).unwrap_or(expiration)),
            GCP_IDENTITY_PROVIDER_NAME,
        );
        *current = Some(creds.clone());
        Ok(creds)
    }
}

/// The SDK's handle on [`GcpIdentityCredentials`] (shared with the provider, which runs the
/// first exchange itself at configure time to report a failure on the block).
#[derive(Debug, Clone)]
pub struct SharedGcpIdentity(pub Arc<GcpIdentityCredentials>);

impl ProvideCredentials for SharedGcpIdentity {
    fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        future::ProvideCredentials::new(async move {
            self.0
                .credentials()
                .await
                .map_err(CredentialsError::provider_error)
        })
    }
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
        let clients = build_clients(&settings()).await.expect("clients");
        assert_eq!(clients.region, "eu-west-3");
        assert_eq!(
            clients.sdk_config.region().map(|r| r.as_ref()),
            Some("eu-west-3")
        );
        let retry = clients.sdk_config.retry_config().expect("retry config");
        assert_eq!(retry.max_attempts(), 4);
    }

    use crate::clients::metadata::test_server::{serve, Reply};
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine as _;

    const SA_ID: &str = "104857600000000000001";
    const SECRET_KEY: &str = "wJalrXUtnFEMIK7MDENGbPxRfiCYzzSECRETKEY1";
    const SESSION_TOKEN: &str = "FwoGZXIvYXdzEXAMPLESESSIONTOKENzzz";

    fn token() -> String {
        let payload = serde_json::json!({
            "iss": "https://accounts.google.com", "aud": "aws-ci", "azp": SA_ID, "sub": SA_ID,
            "exp": 4102444800i64, "iat": 4102441200i64
        });
        format!(
            "{}.{}.{}",
            URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256","kid":"k1"}"#),
            URL_SAFE_NO_PAD.encode(payload.to_string()),
            URL_SAFE_NO_PAD.encode(b"signature")
        )
    }

    fn metadata_reply() -> Reply {
        Reply::new(200, &token()).header("Metadata-Flavor", "Google")
    }

    fn sts_reply(access_key_id: &str, expiration_epoch: i64) -> Reply {
        let expiration = aws_smithy_types::DateTime::from_secs(expiration_epoch)
            .fmt(aws_smithy_types::date_time::Format::DateTime)
            .unwrap();
        Reply::new(
            200,
            &format!(
                r#"<AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleWithWebIdentityResult>
    <AssumedRoleUser>
      <Arn>arn:aws:sts::123456789012:assumed-role/bootstrap/{SA_ID}</Arn>
      <AssumedRoleId>AROAEXAMPLEID:{SA_ID}</AssumedRoleId>
    </AssumedRoleUser>
    <Credentials>
      <SessionToken>{SESSION_TOKEN}</SessionToken>
      <SecretAccessKey>{SECRET_KEY}</SecretAccessKey>
      <Expiration>{expiration}</Expiration>
      <AccessKeyId>{access_key_id}</AccessKeyId>
    </Credentials>
  </AssumeRoleWithWebIdentityResult>
</AssumeRoleWithWebIdentityResponse>"#
            ),
        )
        .header("content-type", "text/xml")
    }

    fn identity() -> GcpIdentitySettings {
        GcpIdentitySettings {
            role_arn: "arn:aws:iam::123456789012:role/bootstrap".into(),
            audience: "aws-ci".into(),
            service_account: "default".into(),
            duration_seconds: 3600,
        }
    }

    fn now() -> i64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64
    }

    #[tokio::test]
    async fn gcp_identity_credentials_are_reused_then_renewed_before_expiry() {
        let (md, md_seen) = serve(vec![metadata_reply()]).await;
        let exp = now() + 3600;
        let (sts, sts_seen) = serve(vec![
            sts_reply("ASIAFIRST", exp),
            sts_reply("ASIASECOND", now() + 3600),
        ])
        .await;
        let provider = GcpIdentityCredentials::new(
            identity(),
            "us-east-1",
            Some(&format!("http://{sts}")),
            &md,
            0,
        )
        .unwrap();
        let first = provider.credentials().await.unwrap();
        let again = provider.credentials().await.unwrap();
        assert_eq!(first.access_key_id(), "ASIAFIRST");
        assert_eq!(again.access_key_id(), "ASIAFIRST");
        assert_eq!(
            sts_seen.lock().unwrap().len(),
            1,
            "fresh credentials were exchanged again"
        );
        assert_eq!(md_seen.lock().unwrap().len(), 1);
        assert_eq!(first.secret_access_key(), SECRET_KEY);
        assert_eq!(first.session_token(), Some(SESSION_TOKEN));
        // Handed to the SDK as expiring five minutes early.
        assert_eq!(
            first.expiry(),
            Some(UNIX_EPOCH + Duration::from_secs((exp - 300) as u64))
        );
        let seen = sts_seen.lock().unwrap()[0].clone();
        assert_eq!(
            seen.header("authorization"),
            None,
            "the exchange was signed"
        );
        assert!(seen.body.contains("Action=AssumeRoleWithWebIdentity"));
        assert!(seen.body.contains("DurationSeconds=3600"));
        assert!(seen
            .body
            .contains("RoleArn=arn%3Aaws%3Aiam%3A%3A123456789012%3Arole%2Fbootstrap"));
        assert!(format!("{first:?}").find(SECRET_KEY).is_none());
    }

    #[tokio::test]
    async fn credentials_near_their_early_expiry_are_exchanged_again() {
        let (md, _) = serve(vec![metadata_reply()]).await;
        // 330 s left: 30 s before the early expiry, within the reuse buffer.
        let (sts, sts_seen) = serve(vec![
            sts_reply("ASIAFIRST", now() + 330),
            sts_reply("ASIASECOND", now() + 3600),
        ])
        .await;
        let provider = GcpIdentityCredentials::new(
            identity(),
            "us-east-1",
            Some(&format!("http://{sts}")),
            &md,
            0,
        )
        .unwrap();
        assert_eq!(
            provider.credentials().await.unwrap().access_key_id(),
            "ASIAFIRST"
        );
        assert_eq!(
            provider.credentials().await.unwrap().access_key_id(),
            "ASIASECOND"
        );
        assert_eq!(
            provider.credentials().await.unwrap().access_key_id(),
            "ASIASECOND"
        );
        assert_eq!(sts_seen.lock().unwrap().len(), 2);
    }

    #[tokio::test]
    async fn iam_calls_are_signed_with_the_exchanged_key_only() {
        let (md, _) = serve(vec![metadata_reply()]).await;
        let (sts, sts_seen) = serve(vec![sts_reply("ASIAEXCHANGED", now() + 3600)]).await;
        let (iam, iam_seen) = serve(vec![Reply::new(
            200,
            r#"<ListRolesResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/"><ListRolesResult><Roles/><IsTruncated>false</IsTruncated></ListRolesResult></ListRolesResponse>"#,
        )
        .header("content-type", "text/xml")])
        .await;
        let mut s = settings();
        s.static_credentials = None;
        s.region = Some("us-east-1".into());
        s.iam_endpoint = Some(format!("http://{iam}"));
        s.sts_endpoint = Some(format!("http://{sts}"));
        s.metadata_host = md;
        s.max_retries = 0;
        s.assume_role_with_gcp_identity = Some(identity());
        let clients = build_clients(&s).await.unwrap();
        assert!(clients.gcp_identity.is_some());
        clients.iam.list_roles().send().await.unwrap();
        clients.iam.list_roles().send().await.unwrap();
        let iam_seen = iam_seen.lock().unwrap();
        assert_eq!(iam_seen.len(), 2);
        for request in iam_seen.iter() {
            let auth = request.header("authorization").expect("IAM call unsigned");
            assert!(
                auth.contains("Credential=ASIAEXCHANGED/") && auth.contains("/iam/aws4_request"),
                "{auth}"
            );
            assert_eq!(request.header("x-amz-security-token"), Some(SESSION_TOKEN));
        }
        assert_eq!(sts_seen.lock().unwrap().len(), 1);
    }

    #[test]
    fn an_invalid_metadata_host_fails_at_build_time() {
        let err = GcpIdentityCredentials::new(identity(), "us-east-1", None, "http://h/path", 0)
            .unwrap_err();
        assert!(err.to_string().contains("http://h/path"), "{err}");
    }
}
