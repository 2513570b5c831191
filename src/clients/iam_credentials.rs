//! Owns the one call this provider makes to Google's IAM Credentials API: `generateIdToken`,
//! which mints an ID token for another service account (impersonation), optionally through a
//! delegation chain, authorised by an OAuth access token of the caller.
//!
//! ```text
//! POST {endpoint}projects/-/serviceAccounts/{EMAIL_OR_ID}:generateIdToken
//! Authorization: Bearer <access token>
//! {"audience": "...", "includeEmail": true, "delegates": ["projects/-/serviceAccounts/..."]}
//! -> {"token": "<ID token>"}
//! ```
//!
//! Refusals come back in Google's JSON error shape (`error.code`, `error.status`,
//! `error.message`, `error.details[]` with a `google.rpc.ErrorInfo` `reason` and `metadata`),
//! kept here as an [`ApiError`] for the exchange to explain. The endpoint and the timeout are
//! inputs; nothing here reads the environment. Retries follow [`crate::retry`] for 5xx, 429 and
//! failed connections only: a 4xx is an answer and is never asked again. Neither token ever
//! appears in an error, a log line or a `Debug` output.

use std::collections::BTreeMap;
use std::time::Duration;

use reqwest::header::{HeaderValue, AUTHORIZATION};
use reqwest::StatusCode;
use url::Url;

use crate::retry::{retry, RetryPolicy};
use crate::secret::Secret;

/// Google's endpoint, as terraform-provider-google's `iam_credentials_custom_endpoint` defaults.
pub const DEFAULT_ENDPOINT: &str = "https://iamcredentials.googleapis.com/v1/";
/// Per-attempt timeout.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest answer read: an ID token is about 1 KiB.
const MAX_BODY: usize = 64 * 1024;
/// Longest piece of Google's message quoted.
const MESSAGE_EXCERPT: usize = 400;

/// A refusal in Google's JSON error format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// The HTTP status (`error.code`).
    pub code: u16,
    /// The canonical status, e.g. `PERMISSION_DENIED`, `NOT_FOUND`.
    pub status: String,
    pub message: String,
    /// `ErrorInfo.reason`, e.g. `SERVICE_DISABLED`, `IAM_PERMISSION_DENIED`,
    /// `ACCESS_TOKEN_SCOPE_INSUFFICIENT`.
    pub reason: Option<String>,
    /// `ErrorInfo.metadata`, e.g. `permission`, `consumer`, `service`.
    pub metadata: BTreeMap<String, String>,
}

impl ApiError {
    pub fn reason_is(&self, reason: &str) -> bool {
        self.reason.as_deref() == Some(reason)
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "HTTP {} {}", self.code, self.status)?;
        if let Some(reason) = &self.reason {
            write!(f, " ({reason})")?;
        }
        write!(f, ": {}", self.message)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum IamCredentialsError {
    #[error("`{endpoint}` is not a usable IAM Credentials endpoint: {reason}")]
    InvalidEndpoint { endpoint: String, reason: String },

    #[error(
        "The IAM Credentials API at {endpoint} could not be reached after {attempts} attempt(s): \
         {detail}"
    )]
    Unreachable {
        endpoint: String,
        attempts: u32,
        detail: String,
    },

    #[error("The IAM Credentials API refused generateIdToken: {0}")]
    Refused(ApiError),

    #[error(
        "The IAM Credentials API kept failing after {attempts} attempt(s) (HTTP {status}{}). \
         Try again later, or raise the retry budget.",
        .detail.as_ref().map(|d| format!(": {d}")).unwrap_or_default()
    )]
    ServerError {
        status: u16,
        attempts: u32,
        detail: Option<String>,
    },

    #[error(
        "{endpoint} answered generateIdToken with HTTP {status} and a body that is not the IAM \
         Credentials API's JSON; check the endpoint and any proxy on the way."
    )]
    Unreadable { endpoint: String, status: u16 },

    #[error("Could not create the HTTP client for the IAM Credentials API: {0}")]
    Client(String),
}

impl IamCredentialsError {
    /// 5xx, 429 and failed connections: the faults the shared policy retries.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            IamCredentialsError::ServerError { .. } | IamCredentialsError::Unreachable { .. }
        )
    }
}

/// Client for `generateIdToken`.
#[derive(Debug, Clone)]
pub struct IamCredentialsClient {
    http: reqwest::Client,
    base: Url,
    retry: RetryPolicy,
}

impl IamCredentialsClient {
    /// `endpoint` is the API's base URL (ending in `/v1/` for Google's; a missing final `/` is
    /// added); `timeout` bounds each attempt; `retry` bounds the retries.
    pub fn new(
        endpoint: &str,
        timeout: Duration,
        retry: RetryPolicy,
    ) -> Result<Self, IamCredentialsError> {
        let invalid = |reason: String| IamCredentialsError::InvalidEndpoint {
            endpoint: endpoint.to_owned(),
            reason,
        };
        crate::validate::endpoint_url(endpoint).map_err(invalid)?;
        let mut base = Url::parse(endpoint).map_err(|e| invalid(e.to_string()))?;
        if base.query().is_some() || base.fragment().is_some() {
            return Err(invalid("it has a query or a fragment".into()));
        }
        if !base.path().ends_with('/') {
            base.set_path(&format!("{}/", base.path()));
        }
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(timeout)
            .timeout(timeout)
            .build()
            .map_err(|e| IamCredentialsError::Client(e.to_string()))?;
        Ok(IamCredentialsClient { http, base, retry })
    }

    pub fn endpoint(&self) -> &str {
        self.base.as_str()
    }

    /// `…/projects/-/serviceAccounts/{account}:generateIdToken`; the account is one path
    /// segment whatever it holds.
    pub fn generate_id_token_url(&self, account: &str) -> Url {
        let mut url = self.base.clone();
        url.path_segments_mut()
            .expect("http URL has path segments")
            .pop_if_empty()
            .extend([
                "projects",
                "-",
                "serviceAccounts",
                &format!("{account}:generateIdToken"),
            ]);
        url
    }

    /// An ID token for `account` with `audience` (and its email), minted through `delegates`
    /// (normalised, in chain order), authorised by `access_token`.
    pub async fn generate_id_token(
        &self,
        access_token: &Secret,
        account: &str,
        delegates: &[String],
        audience: &str,
    ) -> Result<Secret, IamCredentialsError> {
        let url = self.generate_id_token_url(account);
        let mut body = serde_json::json!({"audience": audience, "includeEmail": true});
        if !delegates.is_empty() {
            body["delegates"] = serde_json::json!(delegates);
        }
        let body = body.to_string();
        retry(self.retry, IamCredentialsError::is_transient, |attempt| {
            self.try_once(&url, access_token, body.clone(), attempt)
        })
        .await
    }

    async fn try_once(
        &self,
        url: &Url,
        access_token: &Secret,
        body: String,
        attempt: u32,
    ) -> Result<Secret, IamCredentialsError> {
        let mut bearer = HeaderValue::from_str(&format!("Bearer {}", access_token.expose()))
            .map_err(|_| {
                IamCredentialsError::Client("the access token is not a header value".into())
            })?;
        // Keeps the header out of reqwest's and hyper's own debug output.
        bearer.set_sensitive(true);
        let sent = self
            .http
            .post(url.clone())
            .header(AUTHORIZATION, bearer)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await;
        let response = match sent {
            Ok(r) => r,
            Err(e) => return Err(self.unreachable(&e, attempt)),
        };
        let status = response.status();
        let text = match read_capped(response).await {
            Ok(text) => text,
            Err(Some(e)) => return Err(self.unreachable(&e, attempt)),
            Err(None) => {
                return Err(IamCredentialsError::Unreadable {
                    endpoint: self.base.to_string(),
                    status: status.as_u16(),
                })
            }
        };
        if status == StatusCode::OK {
            #[derive(serde::Deserialize)]
            struct Answer {
                token: Option<String>,
            }
            // The body holds the token: never quoted.
            return match serde_json::from_str::<Answer>(&text) {
                Ok(Answer { token: Some(t) }) if !t.is_empty() => Ok(Secret::new(t)),
                _ => Err(IamCredentialsError::Unreadable {
                    endpoint: self.base.to_string(),
                    status: 200,
                }),
            };
        }
        let api = parse_error(&text);
        if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
            return Err(IamCredentialsError::ServerError {
                status: status.as_u16(),
                attempts: attempt,
                detail: api.map(|a| a.to_string()),
            });
        }
        match api {
            Some(api) => Err(IamCredentialsError::Refused(api)),
            None => Err(IamCredentialsError::Unreadable {
                endpoint: self.base.to_string(),
                status: status.as_u16(),
            }),
        }
    }

    fn unreachable(&self, e: &reqwest::Error, attempt: u32) -> IamCredentialsError {
        let chain = super::metadata::error_chain(e);
        let detail = if e.is_timeout() {
            format!("no answer within the timeout: {chain}")
        } else {
            chain
        };
        IamCredentialsError::Unreachable {
            endpoint: self.base.to_string(),
            attempts: attempt,
            detail,
        }
    }
}

/// The body, abandoned past [`MAX_BODY`]: `Err(None)` when too large, `Err(Some)` when the
/// transport failed.
async fn read_capped(mut response: reqwest::Response) -> Result<String, Option<reqwest::Error>> {
    let mut body: Vec<u8> = Vec::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                if body.len() + chunk.len() > MAX_BODY {
                    return Err(None);
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => return Ok(String::from_utf8_lossy(&body).into_owned()),
            Err(e) => return Err(Some(e)),
        }
    }
}

/// Google's JSON error: `{"error": {"code", "message", "status", "details": [ErrorInfo…]}}`.
fn parse_error(text: &str) -> Option<ApiError> {
    let value: serde_json::Value = serde_json::from_str(text).ok()?;
    let error = value.get("error")?;
    let code = error.get("code")?.as_u64()? as u16;
    let status = error
        .get("status")
        .and_then(|s| s.as_str())
        .unwrap_or_default()
        .to_owned();
    let message: String = error
        .get("message")
        .and_then(|s| s.as_str())
        .unwrap_or_default()
        .chars()
        .take(MESSAGE_EXCERPT)
        .collect();
    let info = error
        .get("details")
        .and_then(|d| d.as_array())
        .into_iter()
        .flatten()
        .find(|d| {
            d.get("@type").and_then(|t| t.as_str())
                == Some("type.googleapis.com/google.rpc.ErrorInfo")
        });
    let reason = info
        .and_then(|i| i.get("reason"))
        .and_then(|r| r.as_str())
        .map(str::to_owned);
    let metadata = info
        .and_then(|i| i.get("metadata"))
        .and_then(|m| m.as_object())
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_owned())))
                .collect()
        })
        .unwrap_or_default();
    Some(ApiError {
        code,
        status,
        message,
        reason,
        metadata,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clients::metadata::test_server::{serve, Reply};
    use crate::retry::tests::fast;

    const ACCESS: &str = "ya29.c.access-token-secret";
    const ID_TOKEN: &str = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln";
    const TARGET: &str = "team-a@gcpfed-test.iam.gserviceaccount.com";

    fn client(host: &str, retries: u32) -> IamCredentialsClient {
        IamCredentialsClient::new(
            &format!("http://{host}/v1/"),
            DEFAULT_TIMEOUT,
            fast(retries),
        )
        .unwrap()
    }

    fn google_error(code: u16, status: &str, message: &str, reason: &str) -> Reply {
        let body = serde_json::json!({"error": {
            "code": code, "message": message, "status": status,
            "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": reason,
                         "domain": "iam.googleapis.com",
                         "metadata": {"permission": "iam.serviceAccounts.getOpenIdToken"}}]}});
        Reply::new(code, &body.to_string()).header("content-type", "application/json")
    }

    #[test]
    fn the_url_has_the_documented_shape_whatever_the_base() {
        for base in [
            "https://iamcredentials.googleapis.com/v1/",
            "https://iamcredentials.googleapis.com/v1",
        ] {
            let c = IamCredentialsClient::new(base, DEFAULT_TIMEOUT, fast(0)).unwrap();
            assert_eq!(
                c.generate_id_token_url(TARGET).as_str(),
                "https://iamcredentials.googleapis.com/v1/projects/-/serviceAccounts/\
                 team-a@gcpfed-test.iam.gserviceaccount.com:generateIdToken"
            );
        }
        let c = IamCredentialsClient::new(DEFAULT_ENDPOINT, DEFAULT_TIMEOUT, fast(0)).unwrap();
        assert!(c
            .generate_id_token_url("../x")
            .path()
            .ends_with("/serviceAccounts/..%2Fx:generateIdToken"));
        for bad in [
            "",
            "iamcredentials.googleapis.com",
            "ftp://x/",
            "https://x/v1/?a=b",
        ] {
            assert!(
                IamCredentialsClient::new(bad, DEFAULT_TIMEOUT, fast(0)).is_err(),
                "{bad}"
            );
        }
    }

    #[tokio::test]
    async fn sends_bearer_audience_email_and_delegates_and_returns_the_token() {
        let ok = Reply::new(200, &format!("{{\"token\":\"{ID_TOKEN}\"}}"));
        let (host, seen) = serve(vec![ok]).await;
        let delegates =
            vec!["projects/-/serviceAccounts/hop-1@p.iam.gserviceaccount.com".to_owned()];
        let token = client(&host, 0)
            .generate_id_token(&Secret::new(ACCESS), TARGET, &delegates, "aws-ci")
            .await
            .unwrap();
        assert_eq!(token.expose(), ID_TOKEN);
        let seen = seen.lock().unwrap();
        assert_eq!(
            seen[0].request_line,
            format!("POST /v1/projects/-/serviceAccounts/{TARGET}:generateIdToken HTTP/1.1")
        );
        assert_eq!(
            seen[0].header("authorization"),
            Some(format!("Bearer {ACCESS}").as_str())
        );
        let body: serde_json::Value = serde_json::from_str(&seen[0].body).unwrap();
        assert_eq!(
            body,
            serde_json::json!({"audience": "aws-ci", "includeEmail": true,
                               "delegates": ["projects/-/serviceAccounts/hop-1@p.iam.gserviceaccount.com"]})
        );
    }

    #[tokio::test]
    async fn refusals_are_parsed_and_never_retried() {
        let denied = google_error(
            403,
            "PERMISSION_DENIED",
            "Permission 'iam.serviceAccounts.getOpenIdToken' denied on resource (or it may not exist).",
            "IAM_PERMISSION_DENIED",
        );
        let (host, seen) = serve(vec![denied]).await;
        let e = client(&host, 5)
            .generate_id_token(&Secret::new(ACCESS), TARGET, &[], "aws-ci")
            .await
            .unwrap_err();
        let IamCredentialsError::Refused(api) = &e else {
            panic!("{e:?}")
        };
        assert_eq!(api.code, 403);
        assert_eq!(api.status, "PERMISSION_DENIED");
        assert!(api.reason_is("IAM_PERMISSION_DENIED"));
        assert_eq!(
            api.metadata["permission"],
            "iam.serviceAccounts.getOpenIdToken"
        );
        assert_eq!(seen.lock().unwrap().len(), 1, "a 4xx was retried");
        assert!(!e.to_string().contains(ACCESS));
    }

    #[tokio::test]
    async fn server_errors_and_429_are_retried_within_the_budget() {
        let ok = Reply::new(200, &format!("{{\"token\":\"{ID_TOKEN}\"}}"));
        let busy = google_error(
            429,
            "RESOURCE_EXHAUSTED",
            "Quota exceeded",
            "RATE_LIMIT_EXCEEDED",
        );
        let (host, seen) = serve(vec![Reply::new(503, "unavailable"), busy, ok]).await;
        client(&host, 2)
            .generate_id_token(&Secret::new(ACCESS), TARGET, &[], "a")
            .await
            .unwrap();
        assert_eq!(seen.lock().unwrap().len(), 3);

        let (host, seen) = serve(vec![Reply::new(500, "boom")]).await;
        let e = client(&host, 1)
            .generate_id_token(&Secret::new(ACCESS), TARGET, &[], "a")
            .await
            .unwrap_err();
        assert!(
            matches!(
                e,
                IamCredentialsError::ServerError {
                    status: 500,
                    attempts: 2,
                    ..
                }
            ),
            "{e}"
        );
        assert_eq!(seen.lock().unwrap().len(), 2);
    }

    #[tokio::test]
    async fn a_body_that_is_not_google_json_says_so_without_quoting_it() {
        let (host, _) = serve(vec![Reply::new(200, &format!("token={ID_TOKEN}"))]).await;
        let e = client(&host, 0)
            .generate_id_token(&Secret::new(ACCESS), TARGET, &[], "a")
            .await
            .unwrap_err();
        assert!(
            matches!(e, IamCredentialsError::Unreadable { status: 200, .. }),
            "{e}"
        );
        assert!(!e.to_string().contains(ID_TOKEN), "{e}");
    }
}
