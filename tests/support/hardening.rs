//! Helpers of the issue-12 tests on trust policies and logs (`tests/hardening_trust_policy.rs`,
//! `tests/hardening_logs.rs`): IAM documents read and rewritten verbatim out of band on the bed,
//! the IAM writes and exchanges the gate recorded, the checks of a "refused at plan"
//! diagnostic, the helper run outside Terraform, secrets searched in texts, and [`LogSink`],
//! which collects what every provider process of a command writes to `PLUGIN_LOG_FILE`.
//! (The helpers of tests/hardening_{iam,cache,plugin}.rs live in `hardening_io.rs`.)

use std::fs::OpenOptions;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use percent_encoding::percent_decode_str;

use super::bed::{block_on, TestBed};
use super::tf::Run;

// ---------- IAM on the bed, out of band (straight to moto: unrecorded) ----------

/// A document as IAM returns it (URL-encoded), decoded to its exact text. Not parsed: a
/// parser would hide repeated keys, which is what some of these tests look for.
pub fn decode_iam_document(doc: &str) -> String {
    percent_decode_str(doc).decode_utf8_lossy().into_owned()
}

/// The exact text of the role's trust policy as IAM holds it.
pub fn trust_text(bed: &TestBed, role: &str) -> String {
    let out = block_on(bed.iam().get_role().role_name(role).send())
        .unwrap_or_else(|e| panic!("GetRole {role}: {e:?}"));
    let doc = out
        .role()
        .and_then(|r| r.assume_role_policy_document())
        .unwrap_or_else(|| panic!("GetRole {role}: no trust policy"));
    decode_iam_document(doc)
}

/// Rewrites the role's trust policy out of band, with exactly `text`.
pub fn put_trust_text(bed: &TestBed, role: &str, text: &str) {
    block_on(
        bed.iam()
            .update_assume_role_policy()
            .role_name(role)
            .policy_document(text)
            .send(),
    )
    .unwrap_or_else(|e| panic!("UpdateAssumeRolePolicy {role} out of band: {e:?}"));
    assert_eq!(
        trust_text(bed, role),
        text,
        "the bed's IAM must hold the out-of-band trust policy verbatim for this test to mean anything"
    );
}

/// The exact text of one inline policy of the role.
pub fn inline_text(bed: &TestBed, role: &str, policy: &str) -> String {
    let out = block_on(
        bed.iam()
            .get_role_policy()
            .role_name(role)
            .policy_name(policy)
            .send(),
    )
    .unwrap_or_else(|e| panic!("GetRolePolicy {role}/{policy}: {e:?}"));
    decode_iam_document(&out.policy_document)
}

/// Puts an inline policy out of band, with exactly `text`.
pub fn put_inline_text(bed: &TestBed, role: &str, policy: &str, text: &str) {
    block_on(
        bed.iam()
            .put_role_policy()
            .role_name(role)
            .policy_name(policy)
            .policy_document(text)
            .send(),
    )
    .unwrap_or_else(|e| panic!("PutRolePolicy {role}/{policy} out of band: {e:?}"));
    assert_eq!(
        inline_text(bed, role, policy),
        text,
        "the bed's IAM must hold the out-of-band inline policy verbatim for this test to mean anything"
    );
}

/// IAM actions that change something, as the gate recorded them since the last clear.
pub fn iam_writes(bed: &TestBed) -> Vec<String> {
    const READ_PREFIXES: [&str; 3] = ["Get", "List", "Simulate"];
    bed.calls()
        .into_iter()
        .filter(|c| c.service == "iam")
        .filter(|c| !READ_PREFIXES.iter().any(|p| c.action.starts_with(p)))
        .map(|c| c.action)
        .collect()
}

/// Every `AssumeRoleWithWebIdentity` the gate recorded since the last clear.
pub fn exchanges(bed: &TestBed) -> Vec<super::bed::RecordedCall> {
    bed.calls()
        .into_iter()
        .filter(|c| c.action == "AssumeRoleWithWebIdentity")
        .collect()
}

// ---------- diagnostics ----------

/// Words a message uses to say that a JSON key occurs more than once.
pub const REPEATED_KEY_WORDS: [&str; 4] = ["duplicate", "repeated", "more than once", "twice"];

/// Whether `text` (case-insensitively) holds any of `words`.
pub fn mentions_any(text: &str, words: &[&str]) -> bool {
    let lower = text.to_lowercase();
    words.iter().any(|w| lower.contains(&w.to_lowercase()))
}

/// The 1-based line of `main_tf` whose trimmed text starts with `start`.
#[track_caller]
pub fn line_of(main_tf: &str, start: &str) -> usize {
    main_tf
        .lines()
        .position(|l| l.trim_start().starts_with(start))
        .map(|i| i + 1)
        .unwrap_or_else(|| panic!("no line starting with {start:?} in\n{main_tf}"))
}

/// Asserts that `run` failed with an error about `address`, pointing at the line of `main_tf`
/// that starts with `line_start` (the attribute, or the map element), whose text names the
/// repeated JSON key `key` (quoted or not) and says that it is repeated.
#[track_caller]
pub fn assert_repeated_key_error(
    run: &Run,
    main_tf: &str,
    address: &str,
    line_start: &str,
    key: &str,
) {
    let line = line_of(main_tf, line_start);
    run.fails().assert_contains(&[
        "Error:",
        &format!("with {address},"),
        &format!("on main.tf line {line}"),
        key,
    ]);
    assert!(
        mentions_any(&run.combined_flat(), &REPEATED_KEY_WORDS),
        "{}",
        run.describe(&format!(
            "expected the error to say that {key:?} is repeated (one of {REPEATED_KEY_WORDS:?})"
        ))
    );
}

// ---------- PLUGIN_LOG_FILE, collected from every provider process ----------

/// A named pipe to give as `PLUGIN_LOG_FILE`, drained by a thread of the test.
///
/// Each provider process opens `PLUGIN_LOG_FILE` with truncation, and one engine command starts
/// several provider processes (schema, validate, plan, apply walks), so a regular file would
/// hold only the last one's log. Opening a FIFO ignores O_TRUNC: every process's lines arrive
/// here. The reader holds the FIFO open for reading and writing, so a writer's `open` never
/// blocks and the reader never sees end-of-file between processes. (Were the provider ever to
/// refuse a log path that is not a regular file, this helper would have to change with it.)
pub struct LogSink {
    path: PathBuf,
    collected: Arc<Mutex<Vec<u8>>>,
    stop: Arc<AtomicBool>,
    reader: Option<JoinHandle<()>>,
    _dir: tempfile::TempDir,
}

/// How long [`LogSink::take`] waits for the pipe to drain (a bound against hangs only).
const DRAIN_TIMEOUT: Duration = Duration::from_secs(60);

impl LogSink {
    pub fn new() -> LogSink {
        let dir = tempfile::Builder::new()
            .prefix("gcpfed-plugin-log-")
            .tempdir()
            .expect("temporary directory for the plugin log pipe");
        let path = dir.path().join("plugin-log.fifo");
        let status = Command::new("mkfifo")
            .arg("-m")
            .arg("600")
            .arg(&path)
            .status()
            .expect("mkfifo");
        assert!(status.success(), "mkfifo {} failed", path.display());
        let mut pipe = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .unwrap_or_else(|e| panic!("opening {}: {e}", path.display()));
        let collected = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let reader = {
            let collected = collected.clone();
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut chunk = vec![0u8; 64 * 1024];
                loop {
                    match pipe.read(&mut chunk) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => collected
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .extend_from_slice(&chunk[..n]),
                    }
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                }
            })
        };
        LogSink {
            path,
            collected,
            stop,
            reader: Some(reader),
            _dir: dir,
        }
    }

    /// The value for `PLUGIN_LOG_FILE`.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Everything written since the last `take`. Call it after the engine command has exited:
    /// a marker written now is seen after every earlier write, so nothing is left in the pipe.
    pub fn take(&self) -> String {
        let marker = format!("\n@@gcpfed-log-sink-{:016x}@@\n", fastrand::u64(..));
        OpenOptions::new()
            .write(true)
            .open(&self.path)
            .and_then(|mut f| f.write_all(marker.as_bytes()))
            .unwrap_or_else(|e| panic!("writing a marker to {}: {e}", self.path.display()));
        let deadline = Instant::now() + DRAIN_TIMEOUT;
        loop {
            {
                let mut collected = self.collected.lock().unwrap_or_else(|e| e.into_inner());
                let found = collected
                    .windows(marker.len())
                    .position(|w| w == marker.as_bytes());
                if let Some(at) = found {
                    let before = String::from_utf8_lossy(&collected[..at]).into_owned();
                    let rest = collected[at + marker.len()..].to_vec();
                    *collected = rest;
                    return before;
                }
            }
            assert!(
                Instant::now() < deadline,
                "the plugin log pipe did not drain within {DRAIN_TIMEOUT:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Default for LogSink {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for LogSink {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the reader with one byte; it sees the flag and ends.
        if let Ok(mut f) = OpenOptions::new().write(true).open(&self.path) {
            let _ = f.write_all(b"\n");
        }
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
    }
}

// ---------- a process outside Terraform (the credential-process helper) ----------

/// What a process printed, and its exit code (`None`: killed by a signal or the time bound).
#[derive(Debug, Clone)]
pub struct ProcessOut {
    pub status: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

/// Longest one helper process may run before it is killed (a bound against hangs only).
const PROCESS_TIMEOUT: Duration = Duration::from_secs(120);

/// Runs `program` with exactly `env` (nothing of the host's environment), stdin closed.
pub fn run_process(program: &Path, args: &[&str], env: &[(String, String)]) -> ProcessOut {
    run_process_within(program, args, env, PROCESS_TIMEOUT)
}

/// [`run_process`] with another bound on its run time.
pub fn run_process_within(
    program: &Path,
    args: &[&str],
    env: &[(String, String)],
    bound: Duration,
) -> ProcessOut {
    use std::process::Stdio;
    let mut child = Command::new(program)
        .args(args)
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", program.display()));
    let mut out = child.stdout.take().expect("stdout");
    let mut err = child.stderr.take().expect("stderr");
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let started = Instant::now();
    let status = loop {
        match child.try_wait().expect("waiting for the helper") {
            Some(status) => break status.code(),
            None if started.elapsed() > bound => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            None => std::thread::sleep(Duration::from_millis(10)),
        }
    };
    ProcessOut {
        status,
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
    }
}

/// A minimal environment for the helper: PATH and a private HOME, empty AWS shared files, no
/// instance metadata.
pub fn helper_env(dir: &Path) -> Vec<(String, String)> {
    let home = dir.join("home");
    std::fs::create_dir_all(&home).expect("private HOME");
    let empty = dir.join("empty-aws-file");
    std::fs::write(&empty, "").expect("empty AWS file");
    let mut env = vec![
        ("HOME".to_string(), home.display().to_string()),
        ("AWS_CONFIG_FILE".into(), empty.display().to_string()),
        (
            "AWS_SHARED_CREDENTIALS_FILE".into(),
            empty.display().to_string(),
        ),
        ("AWS_EC2_METADATA_DISABLED".into(), "true".into()),
    ];
    if let Ok(path) = std::env::var("PATH") {
        env.push(("PATH".into(), path));
    }
    env
}

// ---------- secrets in texts ----------

/// Every (secret, place) pair where a secret occurs in a text, and every text holding a JWT.
/// Texts are (name, text); secrets are (what, value). Only names and a short JWT prefix are
/// returned, never a secret.
pub fn leaks(texts: &[(String, String)], secrets: &[(String, String)]) -> Vec<String> {
    let mut found = Vec::new();
    for (name, text) in texts {
        for (what, secret) in secrets {
            assert!(!secret.is_empty(), "empty {what} to look for");
            if text.contains(secret.as_str()) {
                found.push(format!("the {what} appears in {name}"));
            }
        }
        if let Some(prefix) = super::find_jwt(text) {
            found.push(format!("a JWT ({prefix}…) appears in {name}"));
        }
    }
    found
}
