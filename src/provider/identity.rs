//! The provider's own AWS credentials when `assume_role_with_gcp_identity` is set: a
//! [`ProvideCredentials`] that runs the metadata -> STS exchange (unsigned) and hands its
//! temporary credentials to the SDK, refreshed before they expire, so that a Google Cloud runner
//! needs no AWS key at all. It lives with the provider (its only user) so that the clients stay
//! a leaf: [`aws::build_clients`] takes it as an input.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_credential_types::provider::error::CredentialsError;
use aws_credential_types::provider::{future, ProvideCredentials, SharedCredentialsProvider};
use aws_credential_types::Credentials;

use crate::clients::iam_credentials;
use crate::clients::metadata::{self, MetadataClient};
use crate::clients::settings::{AwsSettings, GcpIdentitySettings};
use crate::exchange::{
    self, ExchangeError, ExchangeParams, ExchangeRequest, Exchanger, TokenSource,
};
use crate::retry::RetryPolicy;

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
    /// Base URL of the IAM Credentials API, used when the block impersonates.
    iam_credentials_endpoint: String,
    retry: RetryPolicy,
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
        let backoff = RetryPolicy::new(max_retries);
        let metadata = MetadataClient::new(metadata_host, metadata::DEFAULT_TIMEOUT, backoff)?;
        let sts = exchange::unsigned_sts_client(None, region, sts_endpoint);
        Ok(GcpIdentityCredentials {
            settings,
            // No IAM client: reading the role to explain a denial would need these very
            // credentials. The denial still prints the token's claims beside the keys.
            exchanger: Exchanger::new(sts, None, backoff),
            metadata,
            iam_credentials_endpoint: iam_credentials::DEFAULT_ENDPOINT.to_owned(),
            retry: backoff,
            current: tokio::sync::Mutex::new(None),
        })
    }

    /// The IAM Credentials API's base URL for a block that impersonates (default Google's).
    pub fn with_iam_credentials_endpoint(mut self, endpoint: &str) -> Self {
        self.iam_credentials_endpoint = endpoint.to_owned();
        self
    }

    /// The credentials of the settings' `assume_role_with_gcp_identity` block for the clients
    /// of `region`; `Ok(None)` when the block is not set.
    pub fn from_settings(
        settings: &AwsSettings,
        region: &str,
    ) -> Result<Option<Arc<Self>>, ExchangeError> {
        let Some(identity) = &settings.assume_role_with_gcp_identity else {
            return Ok(None);
        };
        let credentials = GcpIdentityCredentials::new(
            identity.clone(),
            region,
            settings.sts_endpoint.as_deref(),
            &settings.metadata_host,
            settings.max_retries,
        )?
        .with_iam_credentials_endpoint(&settings.iam_credentials_endpoint);
        Ok(Some(Arc::new(credentials)))
    }

    pub fn settings(&self) -> &GcpIdentitySettings {
        &self.settings
    }

    /// The SDK's handle on these same credentials (so the exchange the provider runs at
    /// configure time is the one the first IAM call reuses).
    pub fn credentials_provider(self: &Arc<Self>) -> SharedCredentialsProvider {
        SharedCredentialsProvider::new(SharedGcpIdentity(self.clone()))
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
        let params = ExchangeParams {
            service_account: self.settings.service_account.clone(),
            duration_seconds: Some(self.settings.duration_seconds),
            impersonate_service_account: self.settings.impersonate_service_account.clone(),
            delegates: self.settings.delegates.clone(),
            ..ExchangeParams::new(&self.settings.role_arn, &self.settings.audience)
        };
        let token = TokenSource::google(
            self.metadata.clone(),
            &self.iam_credentials_endpoint,
            self.retry,
            &params,
        )?;
        let request = ExchangeRequest { params, token };
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clients::aws;

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
            impersonate_service_account: None,
            delegates: vec![],
        }
    }

    /// The block's credentials with STS and the metadata server at these test servers, no retry.
    fn credentials_at(sts: &str, metadata_host: &str) -> GcpIdentityCredentials {
        let sts = format!("http://{sts}");
        GcpIdentityCredentials::new(identity(), "us-east-1", Some(&sts), metadata_host, 0).unwrap()
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
        let provider = credentials_at(&sts, &md);
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
        let provider = credentials_at(&sts, &md);
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
        let settings = AwsSettings {
            region: Some("us-east-1".into()),
            profile: None,
            static_credentials: None,
            iam_endpoint: Some(format!("http://{iam}")),
            sts_endpoint: Some(format!("http://{sts}")),
            metadata_host: md,
            iam_credentials_endpoint: iam_credentials::DEFAULT_ENDPOINT.into(),
            max_retries: 0,
            assume_role_with_gcp_identity: Some(identity()),
        };
        let identity = GcpIdentityCredentials::from_settings(&settings, "us-east-1")
            .unwrap()
            .expect("the block is set");
        let clients = aws::build_clients(
            &settings,
            "us-east-1".into(),
            Some(identity.credentials_provider()),
        )
        .await;
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
