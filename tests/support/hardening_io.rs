//! Support for the hardening tests of issue 12 (tests/hardening_*.rs): servers that misbehave
//! on purpose (one that accepts and never answers, one that answers every request with a fixed,
//! possibly huge, reply), processes run with a bound on their run time, the bed's `drop_answer`
//! fault and raw call record, and the provider started as go-plugin starts it but with a hook
//! on its `Command` (a lower descriptor limit).
//!
//! Every server here binds 127.0.0.1 only, runs on plain threads, and stops by itself: when its
//! handle is dropped, and in any case after [`SERVER_LIFETIME`], so that a leaked handle cannot
//! keep a test process alive.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{json, Value};

use super::bed::TestBed;
use super::plugin::{plugin_command, ClientIdentity, Plugin};
use super::tf::{self, Workdir};

/// The longest any server of this module lives, handle dropped or not.
pub const SERVER_LIFETIME: Duration = Duration::from_secs(15 * 60);

/// How long an exchange or an IAM call that meets a stalled peer may take, at most, once the
/// fix of issue 12 is in: the fix's default attempt and overall timeouts are assumed to end
/// every such call within about 2 minutes (max_retries at its default); this bound adds room
/// for Terraform's own start-up on a loaded 2-core machine. It is a bound on a wait, never an
/// asserted duration: a command still running then is killed and the test fails for hanging.
/// Today's STS path needs at least 6 x 30 s (six attempts of 30 s each) and IAM waits for ever,
/// so both exceed it.
pub const STALL_BOUND: Duration = Duration::from_secs(170);

// ---------------------------------------------------------------------------------------------
// A server that accepts and never answers.

/// Accepts every connection and holds it open without reading or writing a byte: a peer whose
/// process is alive but stuck (a wedged proxy, a black-holed VPC endpoint behind a NAT that
/// still completes the handshake).
pub struct StalledServer {
    address: SocketAddr,
    stop: Arc<AtomicBool>,
    accepted: Arc<AtomicUsize>,
    thread: Option<JoinHandle<()>>,
}

impl StalledServer {
    pub fn start() -> StalledServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        listener
            .set_nonblocking(true)
            .expect("non-blocking listener");
        let address = listener.local_addr().expect("local address");
        let stop = Arc::new(AtomicBool::new(false));
        let accepted = Arc::new(AtomicUsize::new(0));
        let thread = {
            let stop = stop.clone();
            let accepted = accepted.clone();
            std::thread::spawn(move || {
                let started = Instant::now();
                let mut held: Vec<TcpStream> = Vec::new();
                while !stop.load(Ordering::SeqCst) && started.elapsed() < SERVER_LIFETIME {
                    match listener.accept() {
                        Ok((stream, _)) => {
                            accepted.fetch_add(1, Ordering::SeqCst);
                            held.push(stream);
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                            std::thread::sleep(Duration::from_millis(20));
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(20)),
                    }
                }
                drop(held);
            })
        };
        StalledServer {
            address,
            stop,
            accepted,
            thread: Some(thread),
        }
    }

    /// `127.0.0.1:PORT`.
    pub fn host(&self) -> String {
        self.address.to_string()
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

impl Drop for StalledServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

// ---------------------------------------------------------------------------------------------
// A server that gives every request the same answer.

/// The body of a [`FixedReply`].
#[derive(Debug, Clone)]
pub enum Body {
    Bytes(Vec<u8>),
    /// `len` copies of `byte`, written in chunks (never held in memory whole).
    Repeat {
        byte: u8,
        len: u64,
    },
}

impl Body {
    fn len(&self) -> u64 {
        match self {
            Body::Bytes(b) => b.len() as u64,
            Body::Repeat { len, .. } => *len,
        }
    }
}

/// One HTTP/1.1 answer, given to every request, each on a connection closed after it.
#[derive(Debug, Clone)]
pub struct FixedReply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Body,
    /// Send `Content-Length`; without it the body ends when the connection closes.
    pub content_length: bool,
}

impl FixedReply {
    /// What the GCE metadata server answers with `status` and `body` (`Metadata-Flavor: Google`).
    pub fn metadata(status: u16, body: Body, content_length: bool) -> FixedReply {
        FixedReply {
            status,
            headers: vec![
                ("Metadata-Flavor".into(), "Google".into()),
                ("Content-Type".into(), "application/text".into()),
            ],
            body,
            content_length,
        }
    }
}

/// Answers every request with one [`FixedReply`]; counts requests and the body bytes that the
/// peers actually took.
pub struct FixedServer {
    address: SocketAddr,
    stop: Arc<AtomicBool>,
    requests: Arc<AtomicUsize>,
    body_bytes_sent: Arc<AtomicU64>,
    thread: Option<JoinHandle<()>>,
}

impl FixedServer {
    pub fn start(reply: FixedReply) -> FixedServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        listener
            .set_nonblocking(true)
            .expect("non-blocking listener");
        let address = listener.local_addr().expect("local address");
        let stop = Arc::new(AtomicBool::new(false));
        let requests = Arc::new(AtomicUsize::new(0));
        let body_bytes_sent = Arc::new(AtomicU64::new(0));
        let reply = Arc::new(reply);
        let thread = {
            let stop = stop.clone();
            let requests = requests.clone();
            let sent = body_bytes_sent.clone();
            std::thread::spawn(move || {
                let started = Instant::now();
                while !stop.load(Ordering::SeqCst) && started.elapsed() < SERVER_LIFETIME {
                    match listener.accept() {
                        Ok((stream, _)) => {
                            let (reply, stop) = (reply.clone(), stop.clone());
                            let (requests, sent) = (requests.clone(), sent.clone());
                            std::thread::spawn(move || {
                                serve_one(stream, &reply, &stop, &requests, &sent)
                            });
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(10)),
                    }
                }
            })
        };
        FixedServer {
            address,
            stop,
            requests,
            body_bytes_sent,
            thread: Some(thread),
        }
    }

    /// `127.0.0.1:PORT`.
    pub fn host(&self) -> String {
        self.address.to_string()
    }

    /// Requests whose head was read completely.
    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }

    /// Body bytes the peers accepted (written without error), over all requests.
    pub fn body_bytes_sent(&self) -> u64 {
        self.body_bytes_sent.load(Ordering::SeqCst)
    }
}

impl Drop for FixedServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn serve_one(
    mut stream: TcpStream,
    reply: &FixedReply,
    stop: &AtomicBool,
    requests: &AtomicUsize,
    sent: &AtomicU64,
) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
    let _ = stream.set_write_timeout(Some(Duration::from_secs(60)));
    // The request head, up to the blank line (requests here have no body).
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte) {
            Ok(1) if head.len() < 64 * 1024 => head.push(byte[0]),
            _ => return,
        }
    }
    requests.fetch_add(1, Ordering::SeqCst);
    let mut text = format!("HTTP/1.1 {} Fixed\r\nConnection: close\r\n", reply.status);
    for (name, value) in &reply.headers {
        text.push_str(&format!("{name}: {value}\r\n"));
    }
    if reply.content_length {
        text.push_str(&format!("Content-Length: {}\r\n", reply.body.len()));
    }
    text.push_str("\r\n");
    if stream.write_all(text.as_bytes()).is_err() {
        return;
    }
    match &reply.body {
        Body::Bytes(bytes) => {
            if stream.write_all(bytes).is_ok() {
                sent.fetch_add(bytes.len() as u64, Ordering::SeqCst);
            }
        }
        Body::Repeat { byte, len } => {
            let chunk = vec![*byte; 64 * 1024];
            let mut left = *len;
            while left > 0 && !stop.load(Ordering::SeqCst) {
                let n = left.min(chunk.len() as u64) as usize;
                if stream.write_all(&chunk[..n]).is_err() {
                    break;
                }
                sent.fetch_add(n as u64, Ordering::SeqCst);
                left -= n as u64;
            }
        }
    }
    let _ = stream.flush();
    let _ = stream.shutdown(std::net::Shutdown::Both);
}

// ---------------------------------------------------------------------------------------------
// Processes with a bound on their run time.

/// How a bounded process ended.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub what: String,
    /// Exit code; `None` when killed (by us, for running past its bound, or by a signal).
    pub status: Option<i32>,
    /// Killed by [`run_bounded`] for running past its bound.
    pub killed: bool,
    pub stdout: String,
    pub stderr: String,
}

impl Outcome {
    pub fn success(&self) -> bool {
        self.status == Some(0)
    }

    /// For failure messages of runs whose stdout holds no secret.
    pub fn describe(&self) -> String {
        format!(
            "`{}` exited {:?}{}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.what,
            self.status,
            if self.killed {
                " (killed: still running at its bound, i.e. it hung)"
            } else {
                ""
            },
            self.stdout,
            self.stderr
        )
    }

    /// Like [`Outcome::describe`] without stdout (a success's stdout holds credentials).
    pub fn describe_stderr(&self) -> String {
        format!(
            "`{}` exited {:?}{}\n--- stderr ---\n{}",
            self.what,
            self.status,
            if self.killed {
                " (killed: still running at its bound, i.e. it hung)"
            } else {
                ""
            },
            self.stderr
        )
    }
}

/// Runs `command` (stdin closed, in its own process group) and kills the group if it is still
/// running after `bound`: [`super::process::run_with_timeout`], in the shape these tests report.
pub fn run_bounded(mut command: Command, what: &str, bound: Duration) -> Outcome {
    use std::os::unix::process::CommandExt;
    command.process_group(0);
    let finished = super::process::run_with_timeout(&mut command, bound, what);
    Outcome {
        what: what.to_owned(),
        status: if finished.timed_out {
            None
        } else {
            finished.status.code()
        },
        killed: finished.timed_out,
        stdout: finished.stdout,
        stderr: finished.stderr,
    }
}

/// Runs the engine of `workdir` with `args` like `Workdir::run`, but killed after `bound`
/// instead of the suite's command timeout (GCPFED_TF_TIMEOUT_SECS). A killed run has status -1
/// and says so at the end of its stderr.
pub fn run_engine_bounded(workdir: &Workdir, args: &[&str], bound: Duration) -> tf::Run {
    let engine = workdir.engine();
    let mut command = Command::new(engine.binary());
    command
        .args(args)
        .current_dir(workdir.path())
        .env_clear()
        .envs(workdir.command_env(&super::target::process_env()));
    let started = Instant::now();
    let outcome = run_bounded(command, &format!("{engine} {}", args.join(" ")), bound);
    let mut stderr = outcome.stderr;
    if outcome.killed {
        stderr.push_str(&format!(
            "\n[hardening test] killed after {bound:?}: the command hung"
        ));
    }
    tf::Run {
        engine,
        args: args.iter().map(|s| s.to_string()).collect(),
        status: outcome.status.unwrap_or(-1),
        stdout: outcome.stdout,
        stderr,
        elapsed: started.elapsed(),
    }
}

// ---------------------------------------------------------------------------------------------
// The bed's control API beyond what `TestBed` wraps.

/// `method` `/_testbed/<path>` on the bed's gate, JSON in and out (on a thread of its own:
/// reqwest's blocking client refuses to run inside an async runtime).
pub fn bed_control(bed: &TestBed, method: &str, path: &str, body: Option<Value>) -> Value {
    let url = format!("{}/_testbed/{path}", bed.aws_endpoint);
    let method = reqwest::Method::from_bytes(method.as_bytes()).expect("HTTP method");
    std::thread::spawn(move || {
        let client = reqwest::blocking::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(120))
            .build()
            .expect("reqwest blocking client");
        let mut request = client.request(method.clone(), &url);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request
            .send()
            .unwrap_or_else(|e| panic!("test bed control {method} {url}: {e}"));
        let status = response.status();
        let text = response.text().unwrap_or_default();
        assert!(
            status.is_success(),
            "test bed control {method} {url}: HTTP {status}: {text}"
        );
        serde_json::from_str(&text).expect("control answer is JSON")
    })
    .join()
    .expect("bed control thread")
}

/// The next `times` calls of `action` reach moto (and take effect there), then lose their
/// answer: the gate resets the connection without a byte of response.
pub fn drop_answers(bed: &TestBed, action: &str, times: u32) {
    bed_control(
        bed,
        "POST",
        "faults/aws",
        Some(json!({"action": action, "times": times, "drop_answer": true})),
    );
}

/// The gate's call record as JSON (with `answer_dropped`, which `RecordedCall` does not carry).
/// Holds tokens and issued secrets of exchanges: never print it whole.
pub fn raw_calls(bed: &TestBed) -> Vec<Value> {
    match bed_control(bed, "GET", "calls", None) {
        Value::Array(calls) => calls,
        other => panic!("calls: expected a list, got {other}"),
    }
}

/// `(action, status, error_code, answer_dropped)` of every recorded call of `action`.
pub fn calls_of(bed: &TestBed, action: &str) -> Vec<(String, u64, Option<String>, bool)> {
    raw_calls(bed)
        .into_iter()
        .filter(|c| c["action"] == action)
        .map(|c| {
            (
                action.to_owned(),
                c["status"].as_u64().unwrap_or(0),
                c["error_code"].as_str().map(str::to_owned),
                c["answer_dropped"].as_bool().unwrap_or(false),
            )
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// The provider as a plugin, with a hook on its command.

/// Starts the provider as [`Plugin::start`] does, after `adjust` has had its `Command` (for
/// example to lower RLIMIT_NOFILE in `pre_exec`). Panics with the provider's stderr when no
/// handshake line comes.
pub fn start_plugin_with(adjust: impl FnOnce(&mut Command)) -> Plugin {
    let client = ClientIdentity::generate();
    let mut command = plugin_command(Some(&client.cert_pem));
    command.stdout(Stdio::piped());
    adjust(&mut command);
    let mut child: Child = command.spawn().expect("start the provider");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("read the handshake line");
    let handshake = line.trim_end().to_string();
    let fields: Vec<&str> = handshake.split('|').collect();
    if fields.len() != 6 {
        let _ = child.kill();
        let mut stderr = String::new();
        if let Some(mut e) = child.stderr.take() {
            let _ = e.read_to_string(&mut stderr);
        }
        panic!("no handshake line ({handshake:?}); provider stderr:\n{stderr}");
    }
    let address = fields[3].parse().expect("handshake address");
    let server_cert_der = base64::engine::general_purpose::STANDARD_NO_PAD
        .decode(fields[5])
        .expect("handshake certificate");
    Plugin {
        child,
        handshake,
        address,
        server_cert_der,
        client,
    }
}

/// Open descriptors of process `pid` (entries of /proc/PID/fd).
pub fn open_descriptors(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|rd| rd.count())
        .unwrap_or(0)
}

/// Mode bits (0o7777) of `path`, without following a final symlink.
pub fn mode_of(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::symlink_metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o7777
}
