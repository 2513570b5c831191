//! Owns the exchange: a Google ID token (from the metadata server, or given) is sent unsigned to
//! STS `AssumeRoleWithWebIdentity` and comes back as temporary AWS credentials. The data source,
//! the ephemeral resource, `assume_role_with_gcp_identity` and the `credential-process` command
//! all call [`Exchanger::exchange`].
//!
//! This file is the orchestration: token, claims, session name, the STS call ([`sts`], with its
//! retries), then the answer as [`Credentials`] or the failure as an [`ExchangeError`] ([`error`]).
//! On a denial it reads the role from IAM, when it can, so that the message names the trust-policy
//! key that does not match ([`crate::trust_policy::denial`] decides which). No token, secret key
//! or session token reaches an error, a log line or a `Debug` output.

use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use aws_sdk_sts::error::ProvideErrorMetadata;
use aws_smithy_types::date_time::Format;
use aws_smithy_types::DateTime;

use crate::claims::{self, Claims};
use crate::clients::metadata::MetadataClient;
use crate::retry::RetryPolicy;
use crate::secret::Secret;
use crate::session_name;
use crate::trust_policy::{check_trust_policy, TrustFinding};
use crate::validate::parse_role_arn;

pub mod caller;
pub mod credentials;
pub mod error;
pub mod impersonation;
pub mod params;
pub mod sts;

pub use caller::{Caller, Input};
pub use credentials::{CredentialProcessDocument, Credentials};
pub use error::{ExchangeError, TokenOrigin};
pub use impersonation::Impersonation;
pub use params::ExchangeParams;
pub use sts::{classify_sts_error, unsigned_sts_client, StsErrorKind};

use sts::{StsErrorKind as Kind, StsFailure};

/// The one overall deadline of an exchange: the metadata server, STS and all their retries
/// (metadata attempts of 5 s with backoff capped at 5 s; STS calls end at
/// [`crate::clients::aws::OPERATION_TIMEOUT`], 60 s). However large `max_retries` is, an
/// exchange fails after this with [`ExchangeError::DeadlineExceeded`]. The command line bounds
/// its wait for another invocation's cache lock by the same figure: that invocation's exchange
/// ends by then.
pub const DEADLINE: Duration = Duration::from_secs(90);

/// What an exchange was doing, for the error at its deadline.
#[repr(u8)]
enum Phase {
    Token,
    Sts,
    Explain,
}

impl Phase {
    fn describe(phase: u8) -> &'static str {
        match phase {
            p if p == Phase::Token as u8 => {
                "getting an ID token (from the metadata server, or the IAM Credentials API when \
                 impersonating)"
            }
            p if p == Phase::Sts as u8 => "calling STS AssumeRoleWithWebIdentity",
            _ => "reading the role from IAM to explain STS's refusal",
        }
    }
}

/// Where the ID token comes from.
#[derive(Debug)]
pub enum TokenSource {
    /// Ask the metadata server for a token for the request's service account and audience.
    Metadata(MetadataClient),
    /// Use this token as is (`web_identity_token`, `--web-identity-token-file`).
    Given(Secret),
    /// Mint a token for another account through the IAM Credentials API, authorised by the
    /// metadata server's access token of the request's service account.
    Impersonated(Box<Impersonation>),
}

/// One exchange's inputs: what to ask STS for, and where the token comes from.
#[derive(Debug)]
pub struct ExchangeRequest {
    pub params: ExchangeParams,
    pub token: TokenSource,
}

/// Runs exchanges with one STS client (and optionally IAM, to explain denials).
#[derive(Debug, Clone)]
pub struct Exchanger {
    sts: aws_sdk_sts::Client,
    iam: Option<aws_sdk_iam::Client>,
    retry: RetryPolicy,
}

impl Exchanger {
    /// `sts` as [`unsigned_sts_client`] builds it; `retry` bounds the STS call's retries.
    pub fn new(
        sts: aws_sdk_sts::Client,
        iam: Option<aws_sdk_iam::Client>,
        retry: RetryPolicy,
    ) -> Self {
        Exchanger { sts, iam, retry }
    }

    /// Runs one exchange within [`DEADLINE`].
    pub async fn exchange(&self, req: ExchangeRequest) -> Result<Credentials, ExchangeError> {
        self.exchange_within(req, DEADLINE).await
    }

    /// Runs one exchange, ending it at `deadline` with an error that says what it was doing.
    pub async fn exchange_within(
        &self,
        req: ExchangeRequest,
        deadline: Duration,
    ) -> Result<Credentials, ExchangeError> {
        let phase = AtomicU8::new(Phase::Token as u8);
        match tokio::time::timeout(deadline, self.run(req, &phase)).await {
            Ok(result) => result,
            Err(_) => Err(ExchangeError::DeadlineExceeded {
                deadline,
                during: Phase::describe(phase.load(Ordering::Relaxed)),
            }),
        }
    }

    async fn run(
        &self,
        req: ExchangeRequest,
        phase: &AtomicU8,
    ) -> Result<Credentials, ExchangeError> {
        let (token, origin) = match &req.token {
            TokenSource::Given(t) => (t.clone(), TokenOrigin::Given),
            TokenSource::Metadata(client) => (
                client
                    .identity_token(&req.params.service_account, &req.params.audience)
                    .await?,
                TokenOrigin::Metadata,
            ),
            TokenSource::Impersonated(source) => (
                source
                    .id_token(&req.params.service_account, &req.params.audience)
                    .await?,
                TokenOrigin::Metadata,
            ),
        };
        let claims = claims::decode_unverified(token.expose())
            .map_err(|source| ExchangeError::MalformedToken { origin, source })?;
        let session_name = session_name::choose(req.params.session_name.as_deref(), Some(&claims))?;

        let params = sts::Params {
            role_arn: &req.params.role_arn,
            session_name: &session_name,
            token: &token,
            duration_seconds: req.params.duration_seconds,
            policy: req.params.policy.as_deref(),
            policy_arns: &req.params.policy_arns,
        };
        phase.store(Phase::Sts as u8, Ordering::Relaxed);
        let output = match sts::send(&self.sts, self.retry, params).await {
            Ok(output) => output,
            Err(failure) => {
                phase.store(Phase::Explain as u8, Ordering::Relaxed);
                return Err(self.explain(failure, &req, &claims).await);
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

    /// The error for a failed STS call, with what the token and (for a denial or a duration
    /// above the maximum) the role say about it.
    async fn explain(
        &self,
        failure: StsFailure,
        req: &ExchangeRequest,
        claims: &Claims,
    ) -> ExchangeError {
        let claims_box = || Some(Box::new(claims.clone()));
        match failure {
            StsFailure::Exhausted { attempts, detail } => {
                ExchangeError::RetriesExhausted { attempts, detail }
            }
            StsFailure::Failed { detail } => ExchangeError::Sts { detail },
            StsFailure::TimedOut {
                attempts,
                attempt_timeout,
                operation_timeout,
            } => ExchangeError::StsTimedOut {
                attempts,
                attempt_timeout,
                operation_timeout,
            },
            StsFailure::Refused {
                kind,
                code,
                message,
            } => match kind {
                Kind::Denied => ExchangeError::Denied {
                    role_arn: req.params.role_arn.clone(),
                    code,
                    message,
                    claims: claims_box(),
                    finding: Box::new(self.explain_denial(&req.params.role_arn, claims).await),
                },
                Kind::ExpiredToken => ExchangeError::ExpiredToken {
                    message,
                    claims: claims_box(),
                },
                Kind::InvalidToken => ExchangeError::InvalidToken {
                    code,
                    message,
                    claims: claims_box(),
                },
                Kind::Validation if sts::is_duration_error(&message) => {
                    ExchangeError::DurationTooLong {
                        requested: req.params.duration_seconds,
                        max: self.role_max_duration(&req.params.role_arn).await,
                        message,
                    }
                }
                Kind::Validation => ExchangeError::Validation { code, message },
                Kind::Transient | Kind::Other => ExchangeError::Sts {
                    detail: format!("{code}: {message}"),
                },
            },
        }
    }

    async fn get_role(&self, role_arn: &str) -> Result<aws_sdk_iam::types::Role, String> {
        let iam = self
            .iam
            .as_ref()
            // credential-process: its STS call is unsigned, and it holds no AWS credentials.
            .ok_or_else(|| {
                "there are no AWS credentials here to read it with (the exchange itself \
                 needs none)"
                    .to_owned()
            })?;
        let name = parse_role_arn(role_arn)
            .map_err(|_| format!("{role_arn} is not a role ARN"))?
            .name;
        let out = iam.get_role().role_name(name).send().await.map_err(|e| {
            format!(
                "iam:GetRole on {name} failed: {}",
                e.code()
                    .map(|c| format!("{c}: {}", e.message().unwrap_or("")))
                    .unwrap_or_else(|| crate::diag::error_chain(&e))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::claims::tests::unsigned_jwt;
    use crate::clients::metadata::test_server::{serve, Reply, Seen};
    use crate::retry::tests::fast;
    use crate::trust_policy;
    use aws_smithy_types::retry::RetryConfig;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    const SA_ID: &str = "104857600000000000001";
    const OTHER_ID: &str = "113000000000000000099";
    const ROLE: &str = "arn:aws:iam::123456789012:role/ci/gcpfed-ci";
    const SECRET_KEY: &str = "wJalrXUtnFEMIK7MDENGbPxRfiCYzzSECRETKEY1";
    const SESSION_TOKEN: &str = "FwoGZXIvYXdzEXAMPLESESSIONTOKENzzz";

    fn token(aud: &str, azp: &str, sub: &str) -> String {
        unsigned_jwt(&serde_json::json!({
            "iss": "https://accounts.google.com", "aud": aud, "azp": azp, "sub": sub,
            "email": "ci-runner@gcpfed-test.iam.gserviceaccount.com",
            "exp": 1767225600, "iat": 1767222000
        }))
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
            params: ExchangeParams {
                duration_seconds: Some(3600),
                ..ExchangeParams::new(ROLE, "aws-ci")
            },
            token: TokenSource::Given(Secret::new(token)),
        }
    }

    /// A request for the role with a token that matches it.
    fn good_request() -> ExchangeRequest {
        request(&token("aws-ci", SA_ID, SA_ID))
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

    #[tokio::test]
    async fn the_deadline_ends_the_exchange_and_says_what_it_was_doing() {
        // STS answers after 5 s; the exchange's deadline is 0.3 s.
        let (ex, _) = exchanger(vec![ok_xml().delayed(Duration::from_secs(5))], 0, false).await;
        let e = ex
            .exchange_within(good_request(), Duration::from_millis(300))
            .await
            .unwrap_err();
        assert!(matches!(e, ExchangeError::DeadlineExceeded { .. }), "{e:?}");
        let text = e.to_string();
        assert!(text.contains("deadline"), "{text}");
        assert!(text.contains("AssumeRoleWithWebIdentity"), "{text}");
        assert!(DEADLINE > crate::clients::aws::OPERATION_TIMEOUT);
    }

    #[tokio::test]
    async fn exchange_is_unsigned_and_returns_credentials() {
        let (ex, seen) = exchanger(vec![ok_xml()], 0, false).await;
        let tok = token("aws-ci", SA_ID, SA_ID);
        let mut req = request(&tok);
        req.params.policy = Some(r#"{"Version":"2012-10-17","Statement":[]}"#.into());
        req.params.policy_arns = vec!["arn:aws:iam::aws:policy/ReadOnlyAccess".into()];
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
        ex.exchange(good_request()).await.unwrap();
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
            let _ = ex.exchange(good_request()).await;
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
        ex.exchange(good_request()).await.unwrap();
        assert_eq!(seen.lock().unwrap().len(), 4);

        let idp = err_xml(400, "IDPCommunicationError", "try later");
        let key = err_xml(
            400,
            "InvalidIdentityToken",
            "Couldn't retrieve verification key from your identity provider",
        );
        let (ex, seen) = exchanger(vec![idp.clone(), key, idp, ok_xml()], 5, false).await;
        ex.exchange(good_request()).await.unwrap();
        assert_eq!(seen.lock().unwrap().len(), 4);

        let (ex, seen) = exchanger(vec![throttle], 2, false).await;
        let e = ex.exchange(good_request()).await.unwrap_err();
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
            let e = ex.exchange(good_request()).await.unwrap_err();
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
            msg.contains(
                "could not be read here to name the mismatched key: there are no AWS credentials"
            ),
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
        let mut req = good_request();
        req.params.duration_seconds = Some(7200);
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
        let mut req = good_request();
        req.params.session_name = Some("has space".into());
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
        req.params.service_account = "deployer@gcpfed-test.iam.gserviceaccount.com".into();
        req.token = TokenSource::Metadata(
            MetadataClient::new(&md_host, Duration::from_secs(5), fast(0)).unwrap(),
        );
        let creds = ex.exchange(req).await.unwrap();
        assert_eq!(creds.subject.as_deref(), Some(SA_ID));
        let seen = md_seen.lock().unwrap();
        assert!(seen[0].request_line.contains("/service-accounts/deployer@gcpfed-test.iam.gserviceaccount.com/identity?audience=aws-ci&format=full&licenses=FALSE"), "{}", seen[0].request_line);
    }

    #[tokio::test]
    async fn verification_key_failures_outlast_the_budget_with_the_attempts_counted() {
        let key = err_xml(
            400,
            "InvalidIdentityToken",
            "Couldn't retrieve verification key from your identity provider",
        );
        let (ex, seen) = exchanger(vec![key], 3, false).await;
        let e = ex.exchange(good_request()).await.unwrap_err();
        assert!(
            matches!(e, ExchangeError::RetriesExhausted { attempts: 4, .. }),
            "{e}"
        );
        assert!(e.to_string().contains("after 4 attempt(s)"), "{e}");
        assert!(
            e.to_string().contains("Couldn't retrieve verification key"),
            "{e}"
        );
        assert_eq!(seen.lock().unwrap().len(), 4);
    }

    #[tokio::test]
    async fn unreadable_answers_are_retried_only_when_sts_itself_failed() {
        let (ex, seen) = exchanger(
            vec![Reply::new(502, "<html>bad gateway</html>"), ok_xml()],
            2,
            false,
        )
        .await;
        ex.exchange(good_request()).await.unwrap();
        assert_eq!(seen.lock().unwrap().len(), 2);

        let (ex, seen) = exchanger(
            vec![Reply::new(403, "<html>blocked by a proxy</html>")],
            5,
            false,
        )
        .await;
        let e = ex.exchange(good_request()).await.unwrap_err();
        assert!(matches!(e, ExchangeError::Sts { .. }), "{e:?}");
        assert_eq!(seen.lock().unwrap().len(), 1, "a 4xx answer was retried");
    }

    #[tokio::test]
    async fn an_unreachable_sts_is_retried_then_reported_with_the_attempts() {
        // Bind then drop: the port is closed.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let sts = unsigned_sts_client(None, "us-east-1", Some(&format!("http://127.0.0.1:{port}")));
        let ex = Exchanger::new(sts, None, fast(2));
        let e = ex.exchange(good_request()).await.unwrap_err();
        assert!(
            matches!(e, ExchangeError::RetriesExhausted { attempts: 3, .. }),
            "{e}"
        );
        assert!(e.to_string().contains("could not reach STS"), "{e}");
        assert_eq!(e.summary(), "STS unavailable");
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
