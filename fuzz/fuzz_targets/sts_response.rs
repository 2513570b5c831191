//! STS answers, through the code we own: an arbitrary `AssumeRoleWithWebIdentity` answer (status
//! and body) is fed to our `Exchanger` by an in-process HTTP client, so the AWS SDK's XML
//! deserialiser runs under our retry classifier (`classify_sts_error`), our reading of the
//! result (credentials, assumed role, expiration) and our explanation of a failure. Never
//! panics; credentials returned carry an RFC 3339 UTC expiration; no error quotes the token.
//! `classify_sts_error` is also called directly on the input's text.
//!
//! Input: the first byte picks the HTTP status, the rest is the body. The text is also split at
//! NULs into a code and a message for the classifier.
#![no_main]

use std::sync::{Mutex, OnceLock};

use aws_sdk_sts::config::BehaviorVersion;
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_runtime_api::http::StatusCode;
use aws_smithy_types::body::SdkBody;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use gcpfed::exchange::{
    classify_sts_error, unsigned_sts_client, ExchangeParams, ExchangeRequest, Exchanger,
    TokenSource,
};
use gcpfed::retry::RetryPolicy;
use gcpfed::secret::Secret;
use libfuzzer_sys::fuzz_target;

/// Statuses STS answers with; the first byte of the input picks one.
const STATUSES: [u16; 8] = [200, 200, 200, 400, 403, 429, 500, 503];

/// The answer the next call gets (one at a time: libFuzzer runs the target on one thread).
static ANSWER: Mutex<(u16, Vec<u8>)> = Mutex::new((200, Vec::new()));

/// An HTTP client that never touches the network: every request gets [`ANSWER`].
#[derive(Debug, Clone)]
struct Canned;

impl HttpConnector for Canned {
    fn call(&self, _request: HttpRequest) -> HttpConnectorFuture {
        let (status, body) = ANSWER.lock().unwrap().clone();
        let mut response = HttpResponse::new(
            StatusCode::try_from(status).expect("a valid status"),
            SdkBody::from(body),
        );
        response.headers_mut().insert("content-type", "text/xml");
        HttpConnectorFuture::ready(Ok(response))
    }
}

impl HttpClient for Canned {
    fn http_connector(
        &self,
        _settings: &HttpConnectorSettings,
        _components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(self.clone())
    }
}

struct Bed {
    runtime: tokio::runtime::Runtime,
    exchanger: Exchanger,
    token: String,
}

fn bed() -> &'static Bed {
    static BED: OnceLock<Bed> = OnceLock::new();
    BED.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("a runtime");
        let base = aws_types::SdkConfig::builder()
            .http_client(Canned)
            .behavior_version(BehaviorVersion::latest())
            .build();
        let sts = unsigned_sts_client(Some(&base), "us-east-1", Some("http://sts.fuzz.invalid"));
        let claims = r#"{"iss":"https://accounts.google.com","aud":"aws-ci","azp":"104857600000000000001","sub":"104857600000000000001","email":"ci@p.iam.gserviceaccount.com","exp":1767225600,"iat":1767222000}"#;
        let token = format!(
            "eyJhbGciOiJSUzI1NiJ9.{}.c2lnbmF0dXJl",
            URL_SAFE_NO_PAD.encode(claims)
        );
        Bed {
            runtime,
            exchanger: Exchanger::new(sts, None, RetryPolicy::new(0)),
            token,
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&pick, body)) = data.split_first() else {
        return;
    };

    let text = String::from_utf8_lossy(body);
    let mut parts = text.split('\0');
    let (code, message) = (parts.next(), parts.next());
    let status = STATUSES[usize::from(pick) % STATUSES.len()];
    let _ = classify_sts_error(code, message, Some(status)).is_retryable();
    let _ = classify_sts_error(code, message, None);

    let bed = bed();
    *ANSWER.lock().unwrap() = (status, body.to_vec());
    let request = ExchangeRequest {
        params: ExchangeParams {
            duration_seconds: Some(3600),
            ..ExchangeParams::new("arn:aws:iam::123456789012:role/ci", "aws-ci")
        },
        token: TokenSource::Given(Secret::new(bed.token.as_str())),
    };
    match bed.runtime.block_on(bed.exchanger.exchange(request)) {
        Ok(creds) => {
            assert!(
                gcpfed::cache::parse_expiration(&creds.expiration).is_some(),
                "credentials carry an expiration that is not RFC 3339 UTC"
            );
        }
        Err(error) => {
            let shown = format!("{error} {error:?}");
            assert!(!shown.contains(&bed.token), "an STS error quotes the token");
        }
    }
});
