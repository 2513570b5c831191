//! Owns the one request this provider makes to the GCE metadata server: a Google-signed OIDC ID
//! token for a service account and an audience.
//!
//! The host and the timeout are inputs (the caller resolves `metadata_host` / `GCE_METADATA_HOST`);
//! nothing here reads the environment. Retries are bounded, with backoff and jitter, and only for
//! faults that can pass: 5xx, 429, refused or reset connections, timeouts. The token is returned as
//! a [`Secret`] and never appears in an error. Its errors state facts and name no input: the
//! exchange adds the fix in its caller's words (`crate::exchange::caller`).

use std::time::Duration;

use reqwest::StatusCode;
use url::Url;

use crate::retry::{retry, RetryPolicy};
use crate::secret::Secret;

/// Used when neither the provider argument nor `GCE_METADATA_HOST` names a host.
pub const DEFAULT_HOST: &str = "metadata.google.internal";
/// Per-attempt timeout used by the data source (no provider argument for it on purpose).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

const FLAVOR_HEADER: &str = "Metadata-Flavor";
const FLAVOR_VALUE: &str = "Google";
/// Largest answer read from the metadata server: an ID token is about 1 KiB, so 64 KiB is far
/// above any real answer and far below what could hurt.
pub const MAX_BODY: usize = 64 * 1024;
/// Longest piece of an error body quoted in a message.
const BODY_EXCERPT: usize = 300;

/// Why the metadata server could not be reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UnreachableCause {
    /// The host name does not resolve (typical off Google Cloud for `metadata.google.internal`).
    Dns,
    /// Connection refused, reset, or otherwise failed.
    Connect,
    /// No complete answer within the per-attempt timeout.
    Timeout(Duration),
}

impl std::fmt::Display for UnreachableCause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            UnreachableCause::Dns => f.write_str("the host name does not resolve"),
            UnreachableCause::Connect => f.write_str("the connection failed"),
            UnreachableCause::Timeout(d) => {
                write!(f, "no answer within the {} s timeout", d.as_secs_f64())
            }
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum MetadataError {
    #[error("`{host}` is not a usable metadata host: {reason}")]
    InvalidHost { host: String, reason: String },

    #[error("{}", unreachable_text(.host, .cause, *.attempts, .detail))]
    Unreachable {
        host: String,
        cause: UnreachableCause,
        attempts: u32,
        /// The transport error's causes (never the URL).
        detail: String,
    },

    #[error(
        "The metadata server at {host} does not know the service account \"{service_account}\" (HTTP 404)."
    )]
    UnknownServiceAccount {
        host: String,
        service_account: String,
    },

    #[error("The metadata server at {host} rejected the identity request (HTTP {status}): {body}")]
    BadRequest {
        host: String,
        status: u16,
        body: String,
    },

    #[error(
        "The metadata server at {host} refused the identity request (HTTP 403): {body}. The request must \
         reach the metadata server directly, not through a proxy."
    )]
    Forbidden { host: String, body: String },

    #[error(
        "The metadata server at {host} kept failing (HTTP {status}) after {attempts} attempt(s); it may be \
         overloaded or starting up."
    )]
    ServerError {
        host: String,
        status: u16,
        attempts: u32,
    },

    #[error(
        "{host} answered, but not as a GCE metadata server (no `Metadata-Flavor: Google` header in the \
         response, HTTP {status})."
    )]
    NotMetadataServer { host: String, status: u16 },

    #[error(
        "The metadata server at {host} answered with a body larger than the {} KiB size limit (an ID \
         token is about 1 KiB); it was not read further. Something other than the GCE metadata \
         server may be answering.",
        .limit / 1024
    )]
    TooLarge { host: String, limit: usize },

    #[error("The metadata server at {host} returned an empty identity token.")]
    EmptyToken { host: String },

    #[error(
        "The metadata server at {host} answered the access-token request without an access token \
         (expected JSON with `access_token`)."
    )]
    NoAccessToken { host: String },

    #[error("Could not create the HTTP client for the metadata server: {0}")]
    Client(String),
}

/// The facts of [`MetadataError::Unreachable`], without the transport error's detail. These
/// texts name no input: who called decides how to name the fix (`crate::exchange::caller`).
pub fn unreachable_facts(host: &str, cause: &UnreachableCause, attempts: u32) -> String {
    format!(
        "The GCE metadata server at {host} could not be reached: {cause} after {attempts} \
         attempt(s). This usually means the run is not on Google Cloud (Compute Engine, GKE, \
         Cloud Run, Cloud Build)."
    )
}

fn unreachable_text(host: &str, cause: &UnreachableCause, attempts: u32, detail: &str) -> String {
    let mut text = unreachable_facts(host, cause, attempts);
    if !detail.is_empty() {
        text.push_str("\n\nUnderlying error: ");
        text.push_str(detail);
    }
    text
}

impl MetadataError {
    pub fn is_unreachable(&self) -> bool {
        matches!(self, MetadataError::Unreachable { .. })
    }

    /// Faults that can pass: 5xx and 429, refused or reset connections, timeouts. A host name
    /// that does not resolve will not resolve a second later, so DNS failures are final.
    pub fn is_transient(&self) -> bool {
        match self {
            MetadataError::ServerError { .. } => true,
            MetadataError::Unreachable { cause, .. } => *cause != UnreachableCause::Dns,
            _ => false,
        }
    }
}

/// Client for the metadata server's identity endpoint.
#[derive(Debug, Clone)]
pub struct MetadataClient {
    http: reqwest::Client,
    host: String,
    base: Url,
    timeout: Duration,
    retry: RetryPolicy,
}

impl MetadataClient {
    /// `host` is `host[:port]` as in `metadata_host` / GCE_METADATA_HOST (an `http://` URL is accepted
    /// too); `timeout` bounds each attempt; `retry` bounds the retries.
    pub fn new(host: &str, timeout: Duration, retry: RetryPolicy) -> Result<Self, MetadataError> {
        let host = host.trim();
        let base = Self::base_url(host)?;
        let http = reqwest::Client::builder()
            // The metadata server is link-local: never through HTTP(S)_PROXY, never redirected.
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(timeout)
            .timeout(timeout)
            .build()
            .map_err(|e| MetadataError::Client(e.to_string()))?;
        Ok(MetadataClient {
            http,
            host: host.to_owned(),
            base,
            timeout,
            retry,
        })
    }

    pub fn host(&self) -> &str {
        &self.host
    }

    fn base_url(host: &str) -> Result<Url, MetadataError> {
        let invalid = |reason: &str| MetadataError::InvalidHost {
            host: host.to_owned(),
            reason: reason.to_owned(),
        };
        if host.is_empty() {
            return Err(invalid("it is empty"));
        }
        let text = if host.contains("://") {
            host.to_owned()
        } else {
            format!("http://{host}")
        };
        let url = Url::parse(&text).map_err(|e| invalid(&e.to_string()))?;
        if url.scheme() != "http" && url.scheme() != "https" {
            return Err(invalid("the scheme must be http"));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(invalid("it has no host name"));
        }
        if url.path() != "/" || url.query().is_some() {
            return Err(invalid("give host[:port] only, without a path"));
        }
        Ok(url)
    }

    /// The identity URL for a service account (alias or email) and audience.
    pub fn identity_url(&self, service_account: &str, audience: &str) -> Url {
        let mut url = self.base.clone();
        url.path_segments_mut()
            .expect("http URL has path segments")
            .clear()
            .extend([
                "computeMetadata",
                "v1",
                "instance",
                "service-accounts",
                service_account,
                "identity",
            ]);
        url.query_pairs_mut()
            .append_pair("audience", audience)
            .append_pair("format", "full")
            .append_pair("licenses", "FALSE");
        url
    }

    /// Asks for an ID token, retrying transient faults within the retry policy.
    pub async fn identity_token(
        &self,
        service_account: &str,
        audience: &str,
    ) -> Result<Secret, MetadataError> {
        let url = self.identity_url(service_account, audience);
        retry(self.retry, MetadataError::is_transient, |attempt| {
            self.try_once(&url, service_account, attempt)
        })
        .await
    }

    /// The email of the account behind `service_account` (an alias such as `default`, or an
    /// email), as the metadata server resolves it: `credential-process` keys its cache by it,
    /// so that an alias re-pointed at another account never gets the first account's session.
    /// Same retries and errors as [`MetadataClient::identity_token`]; an email is no secret.
    pub async fn service_account_email(
        &self,
        service_account: &str,
    ) -> Result<String, MetadataError> {
        self.get_leaf(service_account, "email", None)
            .await
            .map(Secret::into_inner)
    }

    /// `GET …/service-accounts/<sa>/<leaf>[?query]`, retried as the identity request is.
    async fn get_leaf(
        &self,
        service_account: &str,
        leaf: &str,
        query: Option<(&str, &str)>,
    ) -> Result<Secret, MetadataError> {
        let mut url = self.identity_url(service_account, "");
        url.set_query(None);
        url.path_segments_mut()
            .expect("http URL has path segments")
            .pop()
            .push(leaf);
        if let Some((key, value)) = query {
            url.query_pairs_mut().append_pair(key, value);
        }
        retry(self.retry, MetadataError::is_transient, |attempt| {
            self.try_once(&url, service_account, attempt)
        })
        .await
    }

    /// An OAuth access token of `service_account` (alias or email), for the IAM Credentials API.
    /// The `scopes` parameter asks for `scope` where the platform honours it (Cloud Run, GKE);
    /// on Compute Engine the token carries the VM's access scopes whatever is asked, which is
    /// why a missing `cloud-platform` scope surfaces only at the API. Same retries and errors
    /// as [`MetadataClient::identity_token`]; the token never appears in an error.
    pub async fn access_token(
        &self,
        service_account: &str,
        scope: &str,
    ) -> Result<Secret, MetadataError> {
        let body = self
            .get_leaf(service_account, "token", Some(("scopes", scope)))
            .await?;
        #[derive(serde::Deserialize)]
        struct TokenAnswer {
            access_token: Option<String>,
        }
        // The body holds the token: a parse error says only that it did not parse.
        match serde_json::from_str::<TokenAnswer>(body.expose()) {
            Ok(TokenAnswer {
                access_token: Some(token),
            }) if !token.is_empty() => Ok(Secret::new(token)),
            _ => Err(MetadataError::NoAccessToken {
                host: self.host.clone(),
            }),
        }
    }

    /// One request; `attempt` (1 = the first) goes into the errors that count attempts.
    async fn try_once(
        &self,
        url: &Url,
        service_account: &str,
        attempt: u32,
    ) -> Result<Secret, MetadataError> {
        let host = self.host.clone();
        let sent = self
            .http
            .get(url.clone())
            .header(FLAVOR_HEADER, FLAVOR_VALUE)
            .send()
            .await;
        let response = match sent {
            Ok(r) => r,
            Err(e) => return Err(self.transport_fault(&e, attempt)),
        };
        let status = response.status();
        let is_google = response
            .headers()
            .get(FLAVOR_HEADER)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.eq_ignore_ascii_case(FLAVOR_VALUE));
        let body = self.read_capped(response, attempt).await?;
        if status == StatusCode::OK {
            if !is_google {
                return Err(MetadataError::NotMetadataServer {
                    host,
                    status: status.as_u16(),
                });
            }
            let token = body.trim();
            if token.is_empty() {
                return Err(MetadataError::EmptyToken { host });
            }
            return Ok(Secret::new(token));
        }
        // Error bodies are short plain text from the server; they carry no token.
        let excerpt = excerpt(&body);
        Err(match status {
            StatusCode::NOT_FOUND if is_google => MetadataError::UnknownServiceAccount {
                host,
                service_account: service_account.to_owned(),
            },
            StatusCode::FORBIDDEN => MetadataError::Forbidden {
                host,
                body: excerpt,
            },
            s if s.is_server_error() || s == StatusCode::TOO_MANY_REQUESTS => {
                MetadataError::ServerError {
                    host,
                    status: s.as_u16(),
                    attempts: attempt,
                }
            }
            s if !is_google => MetadataError::NotMetadataServer {
                host,
                status: s.as_u16(),
            },
            s => MetadataError::BadRequest {
                host,
                status: s.as_u16(),
                body: excerpt,
            },
        })
    }

    /// The body, read in chunks and abandoned past [`MAX_BODY`] whatever `Content-Length` says
    /// (a proxy or a broken server in the metadata server's place could send gigabytes).
    async fn read_capped(
        &self,
        mut response: reqwest::Response,
        attempt: u32,
    ) -> Result<String, MetadataError> {
        let too_large = || MetadataError::TooLarge {
            host: self.host.clone(),
            limit: MAX_BODY,
        };
        if response
            .content_length()
            .is_some_and(|n| n > MAX_BODY as u64)
        {
            return Err(too_large());
        }
        let mut body: Vec<u8> = Vec::new();
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    if body.len() + chunk.len() > MAX_BODY {
                        return Err(too_large());
                    }
                    body.extend_from_slice(&chunk);
                }
                Ok(None) => break,
                Err(e) => return Err(self.transport_fault(&e, attempt)),
            }
        }
        Ok(String::from_utf8_lossy(&body).into_owned())
    }

    fn transport_fault(&self, e: &reqwest::Error, attempt: u32) -> MetadataError {
        let chain = error_chain(e);
        let cause = if e.is_timeout() {
            UnreachableCause::Timeout(self.timeout)
        } else if looks_like_dns(&chain) {
            UnreachableCause::Dns
        } else {
            UnreachableCause::Connect
        };
        MetadataError::Unreachable {
            host: self.host.clone(),
            cause,
            attempts: attempt,
            detail: chain,
        }
    }
}

/// The causes of a transport error, innermost last, without the URL (which only repeats the
/// host and the audience). Shared with the IAM Credentials client.
pub(crate) fn error_chain(e: &reqwest::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        let text = s.to_string();
        if !text.is_empty() && !parts.iter().any(|p| p == &text) {
            parts.push(text);
        }
        source = s.source();
    }
    parts.join(": ")
}

fn looks_like_dns(chain: &str) -> bool {
    let lower = chain.to_ascii_lowercase();
    lower.contains("dns error")
        || lower.contains("failed to lookup address")
        || lower.contains("name or service not known")
        || lower.contains("no address associated")
        || lower.contains("nodename nor servname")
}

fn excerpt(body: &str) -> String {
    let body = body.trim();
    if body.is_empty() {
        return "(empty body)".to_owned();
    }
    let mut out: String = body.chars().take(BODY_EXCERPT).collect();
    if out.len() < body.len() {
        out.push('…');
    }
    out
}

/// A scripted HTTP/1.1 server on 127.0.0.1 for unit tests of the HTTP clients.
#[cfg(test)]
pub(crate) mod test_server {
    use std::sync::{Arc, Mutex};
    use std::time::Duration;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    #[derive(Clone, Debug)]
    pub struct Reply {
        pub status: u16,
        pub headers: Vec<(String, String)>,
        pub body: String,
        pub delay: Duration,
    }

    impl Reply {
        pub fn new(status: u16, body: &str) -> Self {
            Reply {
                status,
                headers: Vec::new(),
                body: body.to_owned(),
                delay: Duration::ZERO,
            }
        }
        pub fn header(mut self, k: &str, v: &str) -> Self {
            self.headers.push((k.to_owned(), v.to_owned()));
            self
        }
        pub fn delayed(mut self, d: Duration) -> Self {
            self.delay = d;
            self
        }
    }

    #[derive(Clone, Debug)]
    pub struct Seen {
        pub request_line: String,
        pub headers: Vec<(String, String)>,
        pub body: String,
    }

    impl Seen {
        pub fn header(&self, name: &str) -> Option<&str> {
            self.headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str())
        }
    }

    /// Serves `replies` in order (the last one repeats) and records every request.
    pub async fn serve(replies: Vec<Reply>) -> (String, Arc<Mutex<Vec<Seen>>>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let seen2 = seen.clone();
        tokio::spawn(async move {
            let mut n = 0usize;
            loop {
                let Ok((mut sock, _)) = listener.accept().await else {
                    return;
                };
                let reply = replies[n.min(replies.len() - 1)].clone();
                n += 1;
                let seen = seen2.clone();
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 4096];
                    let head_end = loop {
                        let Ok(k) = sock.read(&mut chunk).await else {
                            return;
                        };
                        if k == 0 {
                            return;
                        }
                        buf.extend_from_slice(&chunk[..k]);
                        if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            break p;
                        }
                    };
                    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
                    let mut lines = head.split("\r\n");
                    let request_line = lines.next().unwrap_or_default().to_owned();
                    let headers: Vec<(String, String)> = lines
                        .filter_map(|l| l.split_once(':'))
                        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
                        .collect();
                    let len: usize = headers
                        .iter()
                        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
                        .and_then(|(_, v)| v.parse().ok())
                        .unwrap_or(0);
                    let mut body = buf[head_end + 4..].to_vec();
                    while body.len() < len {
                        let Ok(k) = sock.read(&mut chunk).await else {
                            return;
                        };
                        if k == 0 {
                            break;
                        }
                        body.extend_from_slice(&chunk[..k]);
                    }
                    seen.lock().unwrap().push(Seen {
                        request_line,
                        headers,
                        body: String::from_utf8_lossy(&body).to_string(),
                    });
                    tokio::time::sleep(reply.delay).await;
                    let mut out = format!(
                        "HTTP/1.1 {} X\r\ncontent-length: {}\r\nconnection: close\r\n",
                        reply.status,
                        reply.body.len()
                    );
                    for (k, v) in &reply.headers {
                        out.push_str(&format!("{k}: {v}\r\n"));
                    }
                    out.push_str("\r\n");
                    out.push_str(&reply.body);
                    let _ = sock.write_all(out.as_bytes()).await;
                    let _ = sock.shutdown().await;
                });
            }
        });
        (format!("127.0.0.1:{}", addr.port()), seen)
    }
}

#[cfg(test)]
mod tests {
    use super::test_server::{serve, Reply};
    use super::*;
    use crate::retry::tests::fast;

    const TOKEN: &str = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJlLXNlY3JldA";

    fn ok() -> Reply {
        Reply::new(200, TOKEN).header("Metadata-Flavor", "Google")
    }

    #[test]
    fn identity_url_has_the_documented_shape() {
        let c = MetadataClient::new("169.254.169.254", DEFAULT_TIMEOUT, fast(0)).unwrap();
        assert_eq!(
            c.identity_url("default", "https://aws.example/aud?x=1 2")
                .as_str(),
            "http://169.254.169.254/computeMetadata/v1/instance/service-accounts/default/identity\
             ?audience=https%3A%2F%2Faws.example%2Faud%3Fx%3D1+2&format=full&licenses=FALSE"
        );
        let c = MetadataClient::new("127.0.0.1:8080", DEFAULT_TIMEOUT, fast(0)).unwrap();
        assert_eq!(
            c.identity_url("ci-runner@p.iam.gserviceaccount.com", "a")
                .as_str(),
            "http://127.0.0.1:8080/computeMetadata/v1/instance/service-accounts/\
             ci-runner@p.iam.gserviceaccount.com/identity?audience=a&format=full&licenses=FALSE"
        );
        // A service account cannot escape its path segment.
        let u = c.identity_url("../../token", "a");
        assert!(
            u.path()
                .contains("/service-accounts/..%2F..%2Ftoken/identity"),
            "{u}"
        );
    }

    #[test]
    fn bad_hosts_are_rejected() {
        for h in ["", "http://", "ftp://x", "host/path", "http://h/p"] {
            let e = MetadataClient::new(h, DEFAULT_TIMEOUT, fast(0)).unwrap_err();
            assert!(matches!(e, MetadataError::InvalidHost { .. }), "{h}: {e}");
        }
        assert!(MetadataClient::new("http://127.0.0.1:1", DEFAULT_TIMEOUT, fast(0)).is_ok());
    }

    #[tokio::test]
    async fn the_email_behind_an_alias_is_asked_with_the_header() {
        let email =
            Reply::new(200, "ci@p.iam.gserviceaccount.com\n").header("Metadata-Flavor", "Google");
        let (host, seen) = serve(vec![email]).await;
        let c = MetadataClient::new(&host, DEFAULT_TIMEOUT, fast(0)).unwrap();
        let got = c.service_account_email("default").await.unwrap();
        assert_eq!(got, "ci@p.iam.gserviceaccount.com");
        let seen = seen.lock().unwrap();
        assert_eq!(seen[0].header("metadata-flavor"), Some("Google"));
        assert!(
            seen[0]
                .request_line
                .starts_with("GET /computeMetadata/v1/instance/service-accounts/default/email "),
            "{}",
            seen[0].request_line
        );
    }

    #[tokio::test]
    async fn the_access_token_is_asked_with_the_scope_and_read_from_json() {
        let body =
            r#"{"access_token":"ya29.secret-access","expires_in":3599,"token_type":"Bearer"}"#;
        let (host, seen) = serve(vec![
            Reply::new(200, body).header("Metadata-Flavor", "Google")
        ])
        .await;
        let c = MetadataClient::new(&host, DEFAULT_TIMEOUT, fast(0)).unwrap();
        let token = c
            .access_token("default", "https://www.googleapis.com/auth/cloud-platform")
            .await
            .unwrap();
        assert_eq!(token.expose(), "ya29.secret-access");
        let first = seen.lock().unwrap()[0].clone();
        assert_eq!(first.header("metadata-flavor"), Some("Google"));
        assert!(
            first.request_line.starts_with(
                "GET /computeMetadata/v1/instance/service-accounts/default/token\
                 ?scopes=https%3A%2F%2Fwww.googleapis.com%2Fauth%2Fcloud-platform "
            ),
            "{}",
            first.request_line
        );

        // An answer without the field says so without quoting the body.
        let odd = Reply::new(200, "token=ya29.secret-access").header("Metadata-Flavor", "Google");
        let (host, _) = serve(vec![odd]).await;
        let c = MetadataClient::new(&host, DEFAULT_TIMEOUT, fast(0)).unwrap();
        let e = c.access_token("default", "s").await.unwrap_err();
        assert!(matches!(e, MetadataError::NoAccessToken { .. }), "{e}");
        assert!(!e.to_string().contains("ya29"), "{e}");
    }

    #[tokio::test]
    async fn sends_the_header_and_returns_the_token() {
        let (host, seen) = serve(vec![ok()]).await;
        let c = MetadataClient::new(&host, DEFAULT_TIMEOUT, fast(0)).unwrap();
        let t = c.identity_token("default", "my-aud").await.unwrap();
        assert_eq!(t.expose(), TOKEN);
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 1);
        assert_eq!(seen[0].header("metadata-flavor"), Some("Google"));
        assert!(seen[0].request_line.starts_with(
            "GET /computeMetadata/v1/instance/service-accounts/default/identity?audience=my-aud&format=full&licenses=FALSE "
        ));
    }

    #[tokio::test]
    async fn retries_5xx_then_succeeds() {
        let (host, seen) = serve(vec![
            Reply::new(500, "boom").header("Metadata-Flavor", "Google"),
            Reply::new(503, "busy"),
            ok(),
        ])
        .await;
        let c = MetadataClient::new(&host, DEFAULT_TIMEOUT, fast(5)).unwrap();
        assert_eq!(
            c.identity_token("default", "a").await.unwrap().expose(),
            TOKEN
        );
        assert_eq!(seen.lock().unwrap().len(), 3);
    }

    #[tokio::test]
    async fn gives_up_after_the_budget() {
        let (host, seen) = serve(vec![
            Reply::new(500, "boom").header("Metadata-Flavor", "Google")
        ])
        .await;
        let c = MetadataClient::new(&host, DEFAULT_TIMEOUT, fast(2)).unwrap();
        let e = c.identity_token("default", "a").await.unwrap_err();
        assert!(
            matches!(
                e,
                MetadataError::ServerError {
                    status: 500,
                    attempts: 3,
                    ..
                }
            ),
            "{e}"
        );
        assert_eq!(seen.lock().unwrap().len(), 3);
    }

    #[tokio::test]
    async fn unknown_service_account_is_not_retried() {
        let (host, seen) = serve(vec![
            Reply::new(404, "not found").header("Metadata-Flavor", "Google")
        ])
        .await;
        let c = MetadataClient::new(&host, DEFAULT_TIMEOUT, fast(5)).unwrap();
        let e = c
            .identity_token("nobody@x.iam.gserviceaccount.com", "a")
            .await
            .unwrap_err();
        assert!(
            matches!(e, MetadataError::UnknownServiceAccount { .. }),
            "{e}"
        );
        assert!(e.to_string().contains("nobody@x.iam.gserviceaccount.com"));
        // `default` and the input to set are the exchange's part of the message (see
        // exchange::error's tests).
        assert!(e.to_string().contains("(HTTP 404)"));
        assert_eq!(seen.lock().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn bad_request_and_forbidden_are_final() {
        let (host, _) = serve(vec![
            Reply::new(400, "missing audience").header("Metadata-Flavor", "Google")
        ])
        .await;
        let c = MetadataClient::new(&host, DEFAULT_TIMEOUT, fast(5)).unwrap();
        let e = c.identity_token("default", "").await.unwrap_err();
        assert!(
            matches!(e, MetadataError::BadRequest { status: 400, .. }),
            "{e}"
        );
        assert!(e.to_string().contains("missing audience"));

        let (host, seen) = serve(vec![
            Reply::new(403, "proxy").header("Metadata-Flavor", "Google")
        ])
        .await;
        let c = MetadataClient::new(&host, DEFAULT_TIMEOUT, fast(5)).unwrap();
        let e = c.identity_token("default", "a").await.unwrap_err();
        assert!(matches!(e, MetadataError::Forbidden { .. }), "{e}");
        assert_eq!(seen.lock().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn a_server_without_the_flavor_header_is_not_trusted() {
        let (host, _) = serve(vec![Reply::new(200, "<html>captive portal</html>")]).await;
        let c = MetadataClient::new(&host, DEFAULT_TIMEOUT, fast(0)).unwrap();
        let e = c.identity_token("default", "a").await.unwrap_err();
        assert!(matches!(e, MetadataError::NotMetadataServer { .. }), "{e}");
    }

    #[tokio::test]
    async fn closed_port_gives_the_off_google_cloud_message() {
        // Bind then drop: the port is closed.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let host = format!("127.0.0.1:{port}");
        let c = MetadataClient::new(&host, DEFAULT_TIMEOUT, fast(2)).unwrap();
        let e = c.identity_token("default", "a").await.unwrap_err();
        assert!(
            matches!(
                e,
                MetadataError::Unreachable {
                    cause: UnreachableCause::Connect,
                    attempts: 3,
                    ..
                }
            ),
            "{e:?}"
        );
        let msg = e.to_string();
        for needle in ["not on Google Cloud", "connection failed", &host] {
            assert!(msg.contains(needle), "{needle} missing in: {msg}");
        }
        // The fix names inputs, which only the exchange's caller can spell
        // (`crate::exchange::caller`): this text names none of either caller's.
        for foreign in ["metadata_host", "--metadata-host", "web_identity_token"] {
            assert!(!msg.contains(foreign), "{foreign} in: {msg}");
        }
    }

    #[tokio::test]
    async fn a_body_past_the_size_limit_is_refused_without_echoing_it() {
        let huge = "a".repeat(MAX_BODY + 1);
        let (host, seen) = serve(vec![
            Reply::new(200, &huge).header("Metadata-Flavor", "Google")
        ])
        .await;
        let c = MetadataClient::new(&host, DEFAULT_TIMEOUT, fast(3)).unwrap();
        let e = c.identity_token("default", "a").await.unwrap_err();
        assert!(matches!(e, MetadataError::TooLarge { .. }), "{e:?}");
        let text = e.to_string();
        assert!(
            text.contains("size limit") && text.contains(&host),
            "{text}"
        );
        assert!(!text.contains("aaaa"), "{text}");
        // Not transient: asking again brings the same answer.
        assert_eq!(seen.lock().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn slow_server_times_out_on_every_attempt() {
        // Each reply would come (with a token) after 5 s: a Timeout error after two requests
        // proves that every attempt was cut at the 0.3 s timeout rather than waited out.
        let (host, seen) = serve(vec![ok().delayed(Duration::from_secs(5))]).await;
        let timeout = Duration::from_millis(300);
        let c = MetadataClient::new(&host, timeout, fast(1)).unwrap();
        let e = c.identity_token("default", "a").await.unwrap_err();
        assert!(
            matches!(
                e,
                MetadataError::Unreachable {
                    cause: UnreachableCause::Timeout(_),
                    attempts: 2,
                    ..
                }
            ),
            "{e:?}"
        );
        assert!(
            e.to_string()
                .contains("no answer within the 0.3 s timeout after 2 attempt(s)"),
            "{e}"
        );
        assert_eq!(seen.lock().unwrap().len(), 2);
    }

    #[test]
    fn only_faults_that_can_pass_are_transient() {
        let unreachable = |cause| MetadataError::Unreachable {
            host: "h".into(),
            cause,
            attempts: 1,
            detail: String::new(),
        };
        assert!(unreachable(UnreachableCause::Connect).is_transient());
        assert!(unreachable(UnreachableCause::Timeout(DEFAULT_TIMEOUT)).is_transient());
        // A name that does not resolve now will not resolve a moment later.
        assert!(!unreachable(UnreachableCause::Dns).is_transient());
        let server = MetadataError::ServerError {
            host: "h".into(),
            status: 503,
            attempts: 1,
        };
        assert!(server.is_transient());
        let final_errors = [
            MetadataError::UnknownServiceAccount {
                host: "h".into(),
                service_account: "x".into(),
            },
            MetadataError::Forbidden {
                host: "h".into(),
                body: String::new(),
            },
            MetadataError::NotMetadataServer {
                host: "h".into(),
                status: 200,
            },
            MetadataError::EmptyToken { host: "h".into() },
        ];
        for e in final_errors {
            assert!(!e.is_transient(), "{e}");
        }
    }

    #[tokio::test]
    async fn errors_never_contain_the_token() {
        // The token comes back with a wrong header: the error must not quote the body.
        let (host, _) = serve(vec![Reply::new(200, TOKEN)]).await;
        let c = MetadataClient::new(&host, DEFAULT_TIMEOUT, fast(0)).unwrap();
        let e = c.identity_token("default", "a").await.unwrap_err();
        let printed = format!("{e} {e:?}");
        assert!(!printed.contains("c2lnbmF0dXJl"), "{printed}");
    }
}
