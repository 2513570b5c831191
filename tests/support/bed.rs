//! The local test bed (moto behind our strict STS gate, our GCE metadata emulator and our IAM
//! Credentials emulator) as a
//! child process of the test, and a synchronous handle to drive it.
//!
//! Each test starts its own bed with [`TestBed::start`]; dropping the handle closes the bed's
//! stdin, which makes it shut down (it also does so if the test process dies). The bed itself
//! is `tests/testbed/testbed.py`; its control API lives under `/_testbed/` on the gate.
//!
//! The handle is synchronous (reqwest's blocking client): call it from plain `#[test]`
//! functions, and run async SDK calls through [`block_on`].

use std::future::Future;
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::OnceLock;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

pub const REGION: &str = "us-east-1";
pub const ACCOUNT_ID: &str = "123456789012";

pub const RUNNER_EMAIL: &str = "ci-runner@gcpfed-test.iam.gserviceaccount.com";
pub const RUNNER_ID: &str = "104857600000000000001";
pub const DEPLOYER_EMAIL: &str = "deployer@gcpfed-test.iam.gserviceaccount.com";
pub const DEPLOYER_ID: &str = "104857600000000000002";
pub const OUTSIDER_EMAIL: &str = "outsider@other-project.iam.gserviceaccount.com";
pub const OUTSIDER_ID: &str = "113000000000000000099";

/// Google's issuer, as the emulator puts it in `iss`.
pub const GOOGLE_ISSUER: &str = "https://accounts.google.com";
/// The message real STS gives for a trust-policy denial.
pub const NOT_AUTHORIZED: &str = "Not authorized to perform sts:AssumeRoleWithWebIdentity";

const READY_TIMEOUT: Duration = Duration::from_secs(60);
const STOP_TIMEOUT: Duration = Duration::from_secs(5);

/// A service account of the metadata emulator: reachable by its email or any alias.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceAccount {
    pub email: String,
    pub unique_id: String,
    pub aliases: Vec<String>,
}

impl ServiceAccount {
    pub fn new(email: &str, unique_id: &str, aliases: &[&str]) -> Self {
        Self {
            email: email.to_owned(),
            unique_id: unique_id.to_owned(),
            aliases: aliases.iter().map(|a| (*a).to_owned()).collect(),
        }
    }
}

/// The accounts every bed starts with (and returns to on [`TestBed::reset`]).
pub fn default_service_accounts() -> Vec<ServiceAccount> {
    vec![
        ServiceAccount::new(RUNNER_EMAIL, RUNNER_ID, &["default"]),
        ServiceAccount::new(DEPLOYER_EMAIL, DEPLOYER_ID, &[]),
        ServiceAccount::new(OUTSIDER_EMAIL, OUTSIDER_ID, &[]),
    ]
}

/// One AWS call as the gate saw it (control requests are not recorded).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct RecordedCall {
    /// From the SigV4 credential scope; `sts` for unsigned STS calls, else `unknown`.
    pub service: String,
    /// The query-protocol `Action`, the JSON `X-Amz-Target` operation, or `METHOD /path`.
    pub action: String,
    /// From the `Authorization` header; `None` for unsigned calls.
    pub access_key_id: Option<String>,
    pub status: u16,
    pub error_code: Option<String>,
    pub role_arn: Option<String>,
    pub session_name: Option<String>,
    #[serde(default)]
    pub duration_seconds: Option<String>,
    /// Answered by an injected fault, never reached moto.
    #[serde(default)]
    pub injected: bool,
    #[serde(default)]
    pub region: Option<String>,
    #[serde(default)]
    pub method: String,
    #[serde(default)]
    pub path: String,
    #[serde(default)]
    pub host: Option<String>,
    /// The `RoleName` parameter of an IAM call.
    #[serde(default)]
    pub role_name: Option<String>,
    /// The overlap record (tests/testbed/bed_latency.py): one counter numbers every arrival and
    /// every answer, so two calls were in flight together when each started before the other's
    /// answer.
    #[serde(default)]
    pub start_seq: u64,
    #[serde(default)]
    pub end_seq: u64,
}

/// One exchange's secrets as the gate saw them (see [`TestBed::exchange_secrets`]). Debug shows
/// only the access key ID, so that a failing assertion never prints a secret.
#[derive(Clone, PartialEq, Eq)]
pub struct ExchangeSecrets {
    pub web_identity_token: String,
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: String,
}

impl ExchangeSecrets {
    /// The four values, each with what it is, for `support::assert_no_leak`.
    pub fn named(&self) -> [(&'static str, &str); 4] {
        [
            ("access key ID", self.access_key_id.as_str()),
            ("secret access key", self.secret_access_key.as_str()),
            ("session token", self.session_token.as_str()),
            ("ID token", self.web_identity_token.as_str()),
        ]
    }
}

impl std::fmt::Debug for ExchangeSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "ExchangeSecrets {{ access_key_id: {:?}, .. }}",
            self.access_key_id
        )
    }
}

/// What to put in a token minted by the bed for a test (signed like the emulator's tokens).
#[derive(Debug, Clone, Serialize)]
pub struct TokenSpec {
    /// Service-account email or alias.
    #[serde(rename = "service_account")]
    pub email: String,
    pub audience: String,
    /// Seconds from now; negative gives an expired token.
    pub expires_in: i64,
    /// Overrides `iss`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    /// Overrides `azp` (compared with `accounts.google.com:aud`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub azp: Option<String>,
    /// Overrides `sub`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    /// Sign with a key that the JWKS does not publish.
    pub unknown_key: bool,
}

impl TokenSpec {
    /// A valid one-hour token of `email` (or alias) for `audience`.
    pub fn new(email: &str, audience: &str) -> Self {
        Self {
            email: email.to_owned(),
            audience: audience.to_owned(),
            expires_in: 3600,
            issuer: None,
            azp: None,
            sub: None,
            unknown_key: false,
        }
    }
}

/// The gate's answer to a raw `AssumeRoleWithWebIdentity` call.
#[derive(Debug, Clone)]
pub struct StsAnswer {
    pub status: u16,
    pub error_code: Option<String>,
    pub message: Option<String>,
    pub body: String,
}

impl StsAnswer {
    /// Text of the first `<name>` element of the body (XML entities decoded).
    pub fn element(&self, name: &str) -> Option<String> {
        xml_element(&self.body, name)
    }
}

/// A plain HTTP answer (metadata emulator).
#[derive(Debug, Clone)]
pub struct HttpAnswer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl HttpAnswer {
    /// First value of a header, name compared case-insensitively.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Deserialize)]
struct Ready {
    aws_endpoint: String,
    moto_endpoint: String,
    metadata_host: String,
    jwks_url: String,
    #[serde(default)]
    iam_credentials_endpoint: String,
}

/// A running bed. Endpoints are `http://127.0.0.1:PORT` URLs; `metadata_host` is `host:port`.
pub struct TestBed {
    pub aws_endpoint: String,
    pub moto_endpoint: String,
    pub metadata_host: String,
    pub jwks_url: String,
    /// Base URL of the IAM Credentials emulator (`http://127.0.0.1:PORT/v1/`).
    pub iam_credentials_endpoint: String,
    child: Child,
    http: Option<reqwest::blocking::Client>,
}

impl TestBed {
    /// Spawn `tests/testbed/testbed.py` and wait until it listens.
    pub fn start() -> TestBed {
        let python = super::python();
        if !python.exists() {
            panic!(
                "test bed: no Python at {}; run `make tools` to create the test venv \
                 (or point GCPFED_PYTHON at a Python with tests/requirements.txt installed)",
                python.display()
            );
        }
        let script = super::repo_root().join("tests/testbed/testbed.py");
        let mut child = Command::new(&python)
            .arg(&script)
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .env("PYTHONUNBUFFERED", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "test bed: cannot run {} {}: {e}; run `make tools`",
                    python.display(),
                    script.display()
                )
            });

        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            let mut line = String::new();
            let read = reader.read_line(&mut line).map(|_| line);
            let _ = tx.send(read);
            // Keep draining so that the bed can never block on a full pipe.
            let _ = std::io::copy(&mut reader, &mut std::io::sink());
        });

        let line = match rx.recv_timeout(READY_TIMEOUT) {
            Ok(Ok(line)) if !line.trim().is_empty() => line,
            Ok(_) | Err(mpsc::RecvTimeoutError::Disconnected) => {
                let status = child.wait();
                panic!(
                    "test bed: exited before it was ready ({status:?}); its stderr is above. \
                     If a Python package is missing, run `make tools`"
                );
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("test bed: not ready after {READY_TIMEOUT:?}; its stderr is above");
            }
        };
        let ready: Ready = match serde_json::from_str(line.trim()) {
            Ok(ready) => ready,
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("test bed: unexpected ready line {line:?}: {e}");
            }
        };

        // Built on its own thread: reqwest's blocking client refuses to be built inside an
        // async runtime, and a caller might hold one.
        let http = std::thread::spawn(|| {
            reqwest::blocking::Client::builder()
                .no_proxy()
                .timeout(Duration::from_secs(120))
                .build()
                .expect("reqwest blocking client")
        })
        .join()
        .expect("building the HTTP client");

        TestBed {
            aws_endpoint: ready.aws_endpoint,
            moto_endpoint: ready.moto_endpoint,
            metadata_host: ready.metadata_host,
            jwks_url: ready.jwks_url,
            iam_credentials_endpoint: ready.iam_credentials_endpoint,
            child,
            http: Some(http),
        }
    }

    /// Process id of the bed (for tests of its lifecycle).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    fn http(&self) -> &reqwest::blocking::Client {
        self.http.as_ref().expect("test bed HTTP client")
    }

    fn control(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}/_testbed/{path}", self.aws_endpoint);
        let mut request = self.http().request(method.clone(), &url);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request
            .send()
            .unwrap_or_else(|e| panic!("test bed control {method} {path}: {e}"));
        let status = response.status();
        let text = response.text().unwrap_or_default();
        assert!(
            status.is_success(),
            "test bed control {method} {path}: HTTP {status}: {text}"
        );
        serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("test bed control {method} {path}: bad JSON {text:?}: {e}"))
    }

    /// Empty moto (roles, policies...), forget calls and faults, restore the default accounts.
    /// Takes about a second: moto reloads the AWS managed policies.
    pub fn reset(&self) {
        self.control(reqwest::Method::POST, "reset", Some(json!({})));
        self.iam_control(reqwest::Method::POST, "reset", None);
    }

    /// The IAM Credentials emulator's control API (`/_testbed/iam/<path>`, see
    /// tests/testbed/bed_iamcredentials.py): grants, the API's state, the VM's scopes, faults,
    /// the call record and the tokens it issued.
    pub fn iam_control(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let base = self.iam_credentials_endpoint.trim_end_matches("/v1/");
        let mut request = self
            .http()
            .request(method.clone(), format!("{base}/_testbed/iam/{path}"));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request
            .send()
            .unwrap_or_else(|e| panic!("IAM Credentials control {method} {path}: {e}"));
        let status = response.status();
        let text = response.text().unwrap_or_default();
        assert!(
            status.is_success(),
            "IAM Credentials control {method} {path}: HTTP {status}: {text}"
        );
        serde_json::from_str(&text).expect("control answers are JSON")
    }

    /// Every AWS call the gate has seen since start, the last reset or clear, oldest first.
    pub fn calls(&self) -> Vec<RecordedCall> {
        let value = self.control(reqwest::Method::GET, "calls", None);
        serde_json::from_value(value).expect("recorded calls")
    }

    /// The token and the issued credentials of every successful AssumeRoleWithWebIdentity since
    /// start, the last reset or clear, oldest first: the actual values that no-leak tests search
    /// outputs and files for. Kept out of [`RecordedCall`], whose Debug goes into messages.
    pub fn exchange_secrets(&self) -> Vec<ExchangeSecrets> {
        let value = self.control(reqwest::Method::GET, "calls", None);
        let calls: Vec<Value> = serde_json::from_value(value).expect("recorded calls");
        calls
            .iter()
            .filter(|c| c["action"] == "AssumeRoleWithWebIdentity" && c["status"] == 200)
            .map(|c| {
                let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
                ExchangeSecrets {
                    web_identity_token: text(&c["web_identity_token"]),
                    access_key_id: text(&c["issued"]["access_key_id"]),
                    secret_access_key: text(&c["issued"]["secret_access_key"]),
                    session_token: text(&c["issued"]["session_token"]),
                }
            })
            .collect()
    }

    pub fn clear_calls(&self) {
        self.control(reqwest::Method::DELETE, "calls", None);
    }

    /// Answer the next `times` AssumeRoleWithWebIdentity calls with `code`: `Throttling`
    /// ("Rate exceeded"), `IDPCommunicationError`, or `InvalidIdentityToken` (its transient
    /// "Couldn't retrieve verification key" form); any other code gets HTTP 400.
    pub fn fail_sts(&self, code: &str, times: u32) {
        self.fail_action("AssumeRoleWithWebIdentity", code, times);
    }

    /// Answer the next `times` calls of any AWS `action` (e.g. IAM `GetRole`) with `code`,
    /// in that service's XML error shape.
    pub fn fail_action(&self, action: &str, code: &str, times: u32) {
        self.control(
            reqwest::Method::POST,
            "faults/aws",
            Some(json!({"code": code, "times": times, "action": action})),
        );
    }

    /// The metadata emulator answers its next `times` requests with HTTP `status`.
    pub fn metadata_fail_status(&self, status: u16, times: u32) {
        self.control(
            reqwest::Method::POST,
            "faults/metadata",
            Some(json!({"status": status, "times": times})),
        );
    }

    /// The metadata emulator delays its next `times` answers by `millis`.
    pub fn metadata_delay(&self, millis: u64, times: u32) {
        self.control(
            reqwest::Method::POST,
            "faults/metadata",
            Some(json!({"delay_ms": millis, "times": times})),
        );
    }

    /// Sleep `aws_ms` before each AWS answer and `metadata_ms` before each metadata answer
    /// (outside the bed's locks: concurrent calls wait together), until the next reset.
    pub fn set_latency(&self, aws_ms: u64, metadata_ms: u64) {
        self.control(
            reqwest::Method::POST,
            "latency",
            Some(json!({"aws_ms": aws_ms, "metadata_ms": metadata_ms})),
        );
    }

    /// Replace the metadata emulator's service accounts.
    pub fn set_service_accounts(&self, accounts: &[ServiceAccount]) {
        self.control(
            reqwest::Method::PUT,
            "service-accounts",
            Some(serde_json::to_value(accounts).expect("accounts as JSON")),
        );
    }

    /// A token signed like the emulator's (or by an unpublished key), for negative tests.
    pub fn mint_token(&self, spec: &TokenSpec) -> String {
        let value = serde_json::to_value(spec).expect("token spec as JSON");
        let answer = self.control(reqwest::Method::POST, "token", Some(value));
        answer["token"]
            .as_str()
            .expect("token in answer")
            .to_owned()
    }

    /// The provider block pointed at this bed.
    pub fn provider_hcl(&self) -> String {
        format!(
            r#"provider "gcpfed" {{
  region        = "{REGION}"
  access_key    = "testing"
  secret_key    = "testing"
  metadata_host = "{metadata}"
  endpoints {{
    iam = "{aws}"
    sts = "{aws}"
  }}
}}
"#,
            metadata = self.metadata_host,
            aws = self.aws_endpoint,
        )
    }

    /// Environment for a process that should reach this bed through the standard chains.
    pub fn aws_env(&self) -> Vec<(String, String)> {
        [
            ("AWS_ACCESS_KEY_ID", "testing"),
            ("AWS_SECRET_ACCESS_KEY", "testing"),
            ("AWS_REGION", REGION),
            ("AWS_ENDPOINT_URL", self.aws_endpoint.as_str()),
            ("AWS_EC2_METADATA_DISABLED", "true"),
            ("GCE_METADATA_HOST", self.metadata_host.as_str()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
    }

    /// IAM client on moto directly: changes made with it are "out of band" (not recorded).
    pub fn iam(&self) -> aws_sdk_iam::Client {
        self.iam_at(&self.moto_endpoint, "testing")
    }

    /// IAM client through the gate, signing with `access_key_id` (recorded as such).
    pub fn iam_via_gate(&self, access_key_id: &str) -> aws_sdk_iam::Client {
        self.iam_at(&self.aws_endpoint, access_key_id)
    }

    fn iam_at(&self, endpoint: &str, access_key_id: &str) -> aws_sdk_iam::Client {
        use aws_sdk_iam::config::{BehaviorVersion, Credentials, Region};
        let config = aws_sdk_iam::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(REGION))
            .endpoint_url(endpoint)
            .credentials_provider(Credentials::new(
                access_key_id,
                "testing",
                None,
                None,
                "gcpfed-testbed",
            ))
            .build();
        aws_sdk_iam::Client::from_conf(config)
    }

    /// A raw, unsigned `AssumeRoleWithWebIdentity` form POST to the gate.
    pub fn assume_role_with_web_identity(
        &self,
        role_arn: &str,
        session_name: &str,
        token: &str,
        duration: Option<i32>,
    ) -> StsAnswer {
        let mut form = url::form_urlencoded::Serializer::new(String::new());
        form.append_pair("Action", "AssumeRoleWithWebIdentity")
            .append_pair("Version", "2011-06-15")
            .append_pair("RoleArn", role_arn)
            .append_pair("RoleSessionName", session_name)
            .append_pair("WebIdentityToken", token);
        if let Some(duration) = duration {
            form.append_pair("DurationSeconds", &duration.to_string());
        }
        let response = self
            .http()
            .post(format!("{}/", self.aws_endpoint))
            .header(
                "Content-Type",
                "application/x-www-form-urlencoded; charset=utf-8",
            )
            .body(form.finish())
            .send()
            .unwrap_or_else(|e| panic!("AssumeRoleWithWebIdentity to the gate: {e}"));
        let status = response.status().as_u16();
        let body = response.text().unwrap_or_default();
        let (error_code, message) = if status >= 400 {
            (xml_element(&body, "Code"), xml_element(&body, "Message"))
        } else {
            (None, None)
        };
        StsAnswer {
            status,
            error_code,
            message,
            body,
        }
    }

    /// `GET http://<metadata_host><path_and_query>` with exactly the given headers.
    pub fn metadata_get(&self, path_and_query: &str, headers: &[(&str, &str)]) -> HttpAnswer {
        self.metadata_request(path_and_query, headers, None)
            .unwrap_or_else(|e| panic!("metadata emulator GET {path_and_query}: {e}"))
    }

    /// [`Self::metadata_get`] with a client timeout: `Err` when no answer came within
    /// `timeout` (`is_timeout()`) or the request failed otherwise.
    pub fn metadata_get_within(
        &self,
        path_and_query: &str,
        headers: &[(&str, &str)],
        timeout: Duration,
    ) -> Result<HttpAnswer, reqwest::Error> {
        self.metadata_request(path_and_query, headers, Some(timeout))
    }

    fn metadata_request(
        &self,
        path_and_query: &str,
        headers: &[(&str, &str)],
        timeout: Option<Duration>,
    ) -> Result<HttpAnswer, reqwest::Error> {
        let mut request = self
            .http()
            .get(format!("http://{}{path_and_query}", self.metadata_host));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if let Some(timeout) = timeout {
            request = request.timeout(timeout);
        }
        let response = request.send()?;
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(n, v)| {
                (
                    n.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        let body = response.text()?;
        Ok(HttpAnswer {
            status,
            headers,
            body,
        })
    }

    /// A token from the emulator's identity endpoint, as a workload would fetch it.
    pub fn metadata_token(&self, service_account: &str, audience: &str) -> String {
        let answer = self.metadata_get(
            &identity_path(service_account, audience),
            &[("Metadata-Flavor", "Google")],
        );
        assert_eq!(
            answer.status, 200,
            "metadata identity for {service_account}: {}",
            answer.body
        );
        answer.body
    }
}

impl TestBed {
    /// Stops the bed as dropping it does, and says how it ended: `true` when it exited by
    /// itself on stdin EOF, `false` when it had to be killed after [`STOP_TIMEOUT`].
    pub fn stop(mut self) -> bool {
        self.shut_down()
    }

    fn shut_down(&mut self) -> bool {
        let Some(stdin) = self.child.stdin.take() else {
            return true; // already stopped
        };
        // EOF on its stdin is the bed's signal to stop.
        drop(stdin);
        let (status, killed) =
            super::process::wait_or_kill(&mut self.child, STOP_TIMEOUT, "the test bed");
        if let Some(http) = self.http.take() {
            // Dropped off-thread for the same reason it was built off-thread.
            let _ = std::thread::spawn(move || drop(http)).join();
        }
        !killed && status.success()
    }
}

impl Drop for TestBed {
    fn drop(&mut self) {
        self.shut_down();
    }
}

/// Path and query of the identity endpoint, `format=full`, as the provider asks for it.
pub fn identity_path(service_account: &str, audience: &str) -> String {
    let query: String = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("audience", audience)
        .append_pair("format", "full")
        .append_pair("licenses", "FALSE")
        .finish();
    format!("/computeMetadata/v1/instance/service-accounts/{service_account}/identity?{query}")
}

/// The claims of a JWT (payload only; no verification); panics when `token` is not one.
pub fn jwt_claims(token: &str) -> Value {
    super::unverified_claims(token).expect("a JWT with a JSON object as payload")
}

fn xml_element(body: &str, name: &str) -> Option<String> {
    let open = format!("<{name}>");
    let close = format!("</{name}>");
    let start = body.find(&open)? + open.len();
    let end = start + body[start..].find(&close)?;
    Some(
        body[start..end]
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&quot;", "\"")
            .replace("&apos;", "'")
            .replace("&amp;", "&"),
    )
}

/// Run a future (AWS SDK calls in tests) on one runtime shared by all tests of the binary.
pub fn block_on<F: Future>(future: F) -> F::Output {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("tokio runtime for tests")
        })
        .block_on(future)
}

/// `127.0.0.1:PORT` where nothing listens (bound, read, released).
pub fn closed_port_host() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    let port = listener.local_addr().expect("local address").port();
    drop(listener);
    format!("127.0.0.1:{port}")
}
