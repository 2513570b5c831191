//! `terraform-provider-gcpfed credential-process` (issue 5) on the strict local test bed, driven
//! the way users drive it: by the real AWS CLI and boto3 through a profile whose
//! `credential_process` is this binary, and directly for the finer points (the cache's expiry
//! margin, concurrency, corruption, modes, stdout, errors, recursion).
//!
//! Exchanges are counted with the gate's record of `AssumeRoleWithWebIdentity` calls for the
//! test's own role. Every process runs with a cleared environment (no host AWS_* variable, a
//! private HOME), so only what a test sets can matter.

mod support;

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use support::bed::{TestBed, ACCOUNT_ID, NOT_AUTHORIZED, REGION, RUNNER_ID};
use support::target::unique_name;

const AUDIENCE: &str = "sts.amazonaws.com/gcpfedacc-cli";
const PROFILE: &str = "gcp-ci";
const EXCHANGE: &str = "AssumeRoleWithWebIdentity";
/// Longest any one process of these tests may run before it is killed and the test fails.
const PROCESS_TIMEOUT: Duration = Duration::from_secs(120);

/// One test's world: a bed, a role that trusts the bed's default runner for AUDIENCE, and a
/// private directory with HOME, the cache and the AWS config files.
struct Fixture {
    bed: TestBed,
    role_name: String,
    role_arn: String,
    dir: tempfile::TempDir,
}

impl Fixture {
    fn start(label: &str) -> Fixture {
        let bed = TestBed::start();
        let role_name = unique_name(label);
        // The trust policy written out by hand, not rendered by the code under test.
        let role_arn =
            support::iam::create_trusted_role(&bed.iam(), &role_name, AUDIENCE, &[RUNNER_ID]);
        assert_eq!(
            role_arn,
            format!("arn:aws:iam::{ACCOUNT_ID}:role/{role_name}")
        );
        let dir = tempfile::Builder::new()
            .prefix("gcpfed-cli-")
            .tempdir()
            .expect("temporary directory");
        std::fs::create_dir_all(dir.path().join("home")).expect("home");
        // Empty shared files: nothing of the host's ~/.aws can be read.
        std::fs::write(dir.path().join("credentials"), "").expect("credentials file");
        let fixture = Fixture {
            bed,
            role_name,
            role_arn,
            dir,
        };
        fixture.write_aws_config(&fixture.helper_args(AUDIENCE));
        fixture
    }

    fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }

    fn cache_dir(&self) -> PathBuf {
        self.dir.path().join("cache")
    }

    fn config_file(&self) -> PathBuf {
        self.dir.path().join("config")
    }

    /// The helper's arguments for this fixture (bed endpoints, the test's cache directory).
    fn helper_args(&self, audience: &str) -> Vec<String> {
        [
            "credential-process",
            "--role-arn",
            &self.role_arn,
            "--audience",
            audience,
            "--metadata-host",
            &self.bed.metadata_host,
            "--sts-endpoint",
            &self.bed.aws_endpoint,
            "--cache-dir",
            self.cache_dir().to_str().expect("UTF-8 path"),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    }

    /// `~/.aws/config` with profile PROFILE running the helper with `args`, and the gate as
    /// the endpoint of every service.
    fn write_aws_config(&self, args: &[String]) {
        let text = format!(
            "[profile {PROFILE}]\ncredential_process = {} {}\nendpoint_url = {}\nregion = {REGION}\n",
            support::helper_binary().display(),
            args.join(" "),
            self.bed.aws_endpoint
        );
        std::fs::write(self.config_file(), text).expect("AWS config file");
    }

    /// A clean environment: PATH and locale from the host, the private HOME, the test's AWS
    /// config files, and no instance metadata.
    fn base_env(&self) -> BTreeMap<String, String> {
        let mut env = BTreeMap::new();
        for key in ["PATH", "LANG", "LC_ALL", "TMPDIR"] {
            if let Ok(v) = std::env::var(key) {
                env.insert(key.to_string(), v);
            }
        }
        env.insert("HOME".into(), self.home().display().to_string());
        env.insert(
            "AWS_CONFIG_FILE".into(),
            self.config_file().display().to_string(),
        );
        env.insert(
            "AWS_SHARED_CREDENTIALS_FILE".into(),
            self.dir.path().join("credentials").display().to_string(),
        );
        env.insert("AWS_EC2_METADATA_DISABLED".into(), "true".into());
        env.insert("PYTHONDONTWRITEBYTECODE".into(), "1".into());
        env
    }

    /// Runs the helper directly with `args` and `extra` environment.
    fn helper(&self, args: &[String], extra: &[(&str, &str)]) -> Out {
        let mut env = self.base_env();
        for (k, v) in extra {
            env.insert(k.to_string(), v.to_string());
        }
        run(&support::helper_binary(), args, &env)
    }

    /// The AWS CLI with `args` (the profile is chosen by the caller).
    fn aws(&self, args: &[&str], extra: &[(&str, &str)]) -> Out {
        let mut env = self.base_env();
        for (k, v) in extra {
            env.insert(k.to_string(), v.to_string());
        }
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        run(&support::aws_cli(), &args, &env)
    }

    /// The venv's Python with a script and arguments.
    fn python(&self, script: &str, args: &[&str]) -> Out {
        let mut argv = vec!["-c".to_string(), script.to_string()];
        argv.extend(args.iter().map(|s| s.to_string()));
        run(&support::python(), &argv, &self.base_env())
    }

    /// The gate's exchanges for this fixture's role.
    fn exchanges(&self) -> Vec<support::bed::RecordedCall> {
        self.bed
            .calls()
            .into_iter()
            .filter(|c| c.action == EXCHANGE && c.role_arn.as_deref() == Some(&self.role_arn))
            .collect()
    }

    /// The cache directory's entries (`*.json`), excluding lock files.
    fn cache_entries(&self) -> Vec<PathBuf> {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(self.cache_dir())
            .map(|rd| {
                rd.map(|e| e.expect("dir entry").path())
                    .filter(|p| p.extension().is_some_and(|x| x == "json"))
                    .collect()
            })
            .unwrap_or_default();
        entries.sort();
        entries
    }

    /// The one cache entry there must be.
    #[track_caller]
    fn the_entry(&self) -> PathBuf {
        let entries = self.cache_entries();
        assert_eq!(entries.len(), 1, "cache entries: {entries:?}");
        entries[0].clone()
    }

    fn assumed_role_prefix(&self) -> String {
        format!("arn:aws:sts::{ACCOUNT_ID}:assumed-role/{}/", self.role_name)
    }
}

#[derive(Debug)]
struct Out {
    what: String,
    status: Option<i32>,
    stdout: String,
    stderr: String,
    elapsed: Duration,
}

impl Out {
    fn success(&self) -> bool {
        self.status == Some(0)
    }

    /// Both streams, for failure messages of tests whose runs hold no secret.
    fn describe(&self) -> String {
        format!(
            "`{}` exited {:?} after {:.1?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.what, self.status, self.elapsed, self.stdout, self.stderr
        )
    }

    /// Asserts success; on failure shows stderr only (stdout of a success holds secrets).
    #[track_caller]
    fn ok(&self) -> &Out {
        assert!(
            self.success(),
            "`{}` exited {:?}\n--- stderr ---\n{}",
            self.what,
            self.status,
            self.stderr
        );
        self
    }

    fn json(&self) -> Value {
        serde_json::from_str(self.stdout.trim()).unwrap_or_else(|e| {
            panic!(
                "`{}`: stdout is not JSON ({e}); {} bytes",
                self.what,
                self.stdout.len()
            )
        })
    }
}

/// Runs `program` with exactly `env`, stdin closed, killing it after PROCESS_TIMEOUT.
fn run(program: &Path, args: &[String], env: &BTreeMap<String, String>) -> Out {
    let name = program
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let done = support::process::run_with_timeout(
        Command::new(program).args(args).env_clear().envs(env),
        PROCESS_TIMEOUT,
        &program.display().to_string(),
    );
    Out {
        what: format!("{name} {}", args.first().cloned().unwrap_or_default()),
        status: if done.timed_out {
            None
        } else {
            done.status.code()
        },
        stdout: done.stdout,
        stderr: done.stderr,
        elapsed: done.elapsed,
    }
}

fn rfc3339(epoch: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(epoch)
        .expect("epoch")
        .format(&time::format_description::well_known::Rfc3339)
        .expect("format")
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

/// Checks that stdout is exactly the credential_process Version 1 document and one newline;
/// returns it parsed.
#[track_caller]
fn assert_version_1_document(out: &Out) -> Value {
    assert!(
        out.stdout.ends_with('\n') && out.stdout.trim_end().lines().count() == 1,
        "stdout is not one line of JSON ({} bytes)",
        out.stdout.len()
    );
    let doc = out.json();
    let keys: Vec<&str> = doc
        .as_object()
        .expect("an object")
        .keys()
        .map(String::as_str)
        .collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(
        sorted,
        vec![
            "AccessKeyId",
            "Expiration",
            "SecretAccessKey",
            "SessionToken",
            "Version"
        ]
    );
    assert!(
        doc["Version"].is_u64() && doc["Version"] == 1,
        "Version must be the number 1"
    );
    for key in ["AccessKeyId", "SecretAccessKey", "SessionToken"] {
        assert!(
            doc[key].as_str().is_some_and(|s| !s.is_empty()),
            "{key} is empty or not a string"
        );
    }
    let expiration = doc["Expiration"].as_str().expect("Expiration");
    // Parsed here with `time` itself, not with the helper's own parser.
    let parsed =
        time::OffsetDateTime::parse(expiration, &time::format_description::well_known::Rfc3339)
            .ok()
            .filter(|_| expiration.ends_with('Z'))
            .unwrap_or_else(|| panic!("Expiration {expiration:?} is not ISO 8601 UTC with Z"))
            .unix_timestamp();
    assert!(
        expiration.len() == 20 && expiration.as_bytes()[10] == b'T',
        "{expiration:?}"
    );
    let left = parsed - support::now();
    assert!(
        (3000..=3700).contains(&left),
        "Expiration {expiration} is {left} s away, expected about an hour"
    );
    doc
}

fn s<'a>(doc: &'a Value, key: &str) -> &'a str {
    doc[key].as_str().unwrap_or_else(|| panic!("{key} missing"))
}

#[test]
fn the_aws_cli_gets_the_assumed_role_and_ten_commands_cost_one_exchange() {
    let fx = Fixture::start("cli-ten");
    fx.bed.clear_calls();
    let mut arns = Vec::new();
    for i in 0..10 {
        let out = fx.aws(
            &[
                "sts",
                "get-caller-identity",
                "--profile",
                PROFILE,
                "--output",
                "json",
            ],
            &[],
        );
        assert!(out.success(), "command {i}: {}", out.describe());
        arns.push(s(&out.json(), "Arn").to_owned());
    }
    let expected = format!("{}{RUNNER_ID}", fx.assumed_role_prefix());
    for arn in &arns {
        assert_eq!(arn, &expected);
    }
    let exchanges = fx.exchanges();
    assert_eq!(
        exchanges.len(),
        1,
        "ten AWS CLI commands caused {} AssumeRoleWithWebIdentity calls",
        exchanges.len()
    );
    assert_eq!(exchanges[0].status, 200);
    assert_eq!(
        exchanges[0].access_key_id, None,
        "the exchange must be unsigned"
    );

    // All ten commands were signed with the one cached key.
    let entry: Value =
        serde_json::from_str(&std::fs::read_to_string(fx.the_entry()).expect("entry")).unwrap();
    let key = entry["Credentials"]["AccessKeyId"]
        .as_str()
        .expect("cached AccessKeyId")
        .to_owned();
    let signed: Vec<Option<String>> = fx
        .bed
        .calls()
        .into_iter()
        .filter(|c| c.action == "GetCallerIdentity")
        .map(|c| c.access_key_id)
        .collect();
    assert_eq!(signed.len(), 10, "{signed:?}");
    assert!(signed.iter().all(|k| k.as_deref() == Some(key.as_str())));

    // The entry and its directory are private.
    assert_eq!(mode(&fx.the_entry()), 0o600);
    assert_eq!(mode(&fx.cache_dir()), 0o700);
}

#[test]
fn boto3_lists_the_buckets_of_the_emulated_aws() {
    let fx = Fixture::start("cli-boto3");
    let bucket = unique_name("bucket");
    fx.python(
        "import boto3, sys\n\
         boto3.client('s3', endpoint_url=sys.argv[1], region_name='us-east-1',\n\
                      aws_access_key_id='testing', aws_secret_access_key='testing'\n\
                      ).create_bucket(Bucket=sys.argv[2])\n",
        &[&fx.bed.aws_endpoint, &bucket],
    )
    .ok();
    fx.bed.clear_calls();
    let out = fx.python(
        "import boto3, json, sys\n\
         session = boto3.Session(profile_name=sys.argv[1])\n\
         names = [b['Name'] for b in session.client('s3').list_buckets()['Buckets']]\n\
         print(json.dumps(names))\n",
        &[PROFILE],
    );
    assert!(out.success(), "{}", out.describe());
    let names: Vec<String> = serde_json::from_value(out.json()).expect("bucket names");
    assert!(names.contains(&bucket), "{bucket} not in {names:?}");
    assert_eq!(fx.exchanges().len(), 1);
    // ListBuckets was signed by the exchanged key, not by the bucket creator's.
    let entry: Value =
        serde_json::from_str(&std::fs::read_to_string(fx.the_entry()).expect("entry")).unwrap();
    let key = entry["Credentials"]["AccessKeyId"].as_str().expect("key");
    let s3: Vec<_> = fx
        .bed
        .calls()
        .into_iter()
        .filter(|c| c.service == "s3")
        .collect();
    assert!(!s3.is_empty(), "no S3 call recorded");
    assert!(
        s3.iter().all(|c| c.access_key_id.as_deref() == Some(key)),
        "{s3:?}"
    );
}

#[test]
fn stdout_holds_only_the_document_and_no_cache_means_one_exchange_per_call() {
    let fx = Fixture::start("cli-stdout");
    fx.bed.clear_calls();
    let out = fx.helper(&fx.helper_args(AUDIENCE), &[]);
    out.ok();
    assert_eq!(out.stderr, "", "a success writes nothing to stderr");
    let doc = assert_version_1_document(&out);
    assert_eq!(fx.exchanges().len(), 1);

    // --no-cache: every call exchanges, and nothing is written anywhere.
    let mut args = fx.helper_args(AUDIENCE);
    let at = args.iter().position(|a| a == "--cache-dir").unwrap();
    args.truncate(at);
    args.push("--no-cache".into());
    for _ in 0..2 {
        let out = fx.helper(&args, &[]);
        out.ok();
        let again = assert_version_1_document(&out);
        assert_ne!(again["AccessKeyId"], doc["AccessKeyId"]);
    }
    assert_eq!(fx.exchanges().len(), 3);
    assert!(!fx.home().join(".cache").exists());
    assert_eq!(fx.cache_entries().len(), 1, "--no-cache wrote an entry");

    // Without --cache-dir the entry lands in $XDG_CACHE_HOME/gcpfed, else ~/.cache/gcpfed.
    args.pop();
    fx.helper(&args, &[]).ok();
    let default_dir = fx.home().join(".cache/gcpfed");
    assert_eq!(mode(&default_dir), 0o700);
    let xdg = fx.dir.path().join("xdg");
    fx.helper(&args, &[("XDG_CACHE_HOME", xdg.to_str().unwrap())])
        .ok();
    assert_eq!(mode(&xdg.join("gcpfed")), 0o700);
    assert_eq!(
        std::fs::read_dir(xdg.join("gcpfed")).unwrap().count(),
        2,
        "entry and lock"
    );
}

#[test]
fn an_entry_within_fifteen_minutes_of_expiry_is_exchanged_again() {
    let fx = Fixture::start("cli-expiry");
    fx.bed.clear_calls();
    let args = fx.helper_args(AUDIENCE);
    let first = fx.helper(&args, &[]);
    first.ok();
    let first = first.json();
    assert_eq!(fx.exchanges().len(), 1);

    let entry_path = fx.the_entry();
    let set_expiration = |epoch: i64| {
        let mut entry: Value =
            serde_json::from_str(&std::fs::read_to_string(&entry_path).unwrap()).unwrap();
        entry["Credentials"]["Expiration"] = Value::String(rfc3339(epoch));
        // Written in place: the file keeps its 0600 mode.
        std::fs::write(&entry_path, entry.to_string()).unwrap();
    };

    // Sixteen minutes left: outside the SDKs' 15-minute refresh window, still served from the
    // cache (issue 12 moved the margin from 5 to 15 minutes).
    set_expiration(support::now() + 16 * 60);
    let out = fx.helper(&args, &[]);
    out.ok();
    assert_eq!(out.json()["AccessKeyId"], first["AccessKeyId"]);
    assert_eq!(
        fx.exchanges().len(),
        1,
        "an entry with 16 minutes left was not reused"
    );

    // Fourteen minutes left: within the margin, exchanged again and replaced.
    set_expiration(support::now() + 14 * 60);
    let out = fx.helper(&args, &[]);
    out.ok();
    let renewed = assert_version_1_document(&out);
    assert_ne!(renewed["AccessKeyId"], first["AccessKeyId"]);
    assert_eq!(
        fx.exchanges().len(),
        2,
        "an entry with 14 minutes left was reused"
    );
    let entry: Value =
        serde_json::from_str(&std::fs::read_to_string(&entry_path).unwrap()).unwrap();
    assert_eq!(entry["Credentials"]["AccessKeyId"], renewed["AccessKeyId"]);
    assert_eq!(mode(&entry_path), 0o600);

    // Already expired: the same.
    set_expiration(support::now() - 60);
    fx.helper(&args, &[]).ok();
    assert_eq!(fx.exchanges().len(), 3);
}

#[test]
fn eight_concurrent_invocations_on_an_empty_cache_share_one_exchange() {
    let fx = Fixture::start("cli-concurrent");
    fx.bed.clear_calls();
    // A slow metadata server widens the window in which all eight find the cache empty.
    fx.bed.metadata_delay(1500, 1);
    let args = fx.helper_args(AUDIENCE);
    let outs: Vec<Out> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..8)
            .map(|_| scope.spawn(|| fx.helper(&args, &[])))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut keys = std::collections::BTreeSet::new();
    for out in &outs {
        out.ok();
        keys.insert(s(&assert_version_1_document(out), "AccessKeyId").to_owned());
    }
    assert_eq!(
        keys.len(),
        1,
        "the eight invocations printed {} different keys",
        keys.len()
    );
    assert_eq!(
        fx.exchanges().len(),
        1,
        "eight concurrent invocations caused {} exchanges",
        fx.exchanges().len()
    );
    assert_eq!(mode(&fx.the_entry()), 0o600);
    // No temporary file is left behind.
    let names: Vec<String> = std::fs::read_dir(fx.cache_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(names.iter().all(|n| !n.ends_with(".tmp")), "{names:?}");
}

#[test]
fn a_corrupted_or_unsafe_cache_file_is_replaced() {
    let fx = Fixture::start("cli-corrupt");
    fx.bed.clear_calls();
    let args = fx.helper_args(AUDIENCE);
    let first = fx.helper(&args, &[]);
    first.ok();
    let first = first.json();
    let entry_path = fx.the_entry();

    type Corrupt<'a> = Box<dyn Fn() + 'a>;
    let corruptions: Vec<(&str, Corrupt)> = vec![
        (
            "garbage",
            Box::new(|| std::fs::write(&entry_path, "\u{0}{not json at all").unwrap()),
        ),
        (
            "truncated",
            Box::new(|| {
                let text = std::fs::read_to_string(&entry_path).unwrap();
                std::fs::write(&entry_path, &text[..text.len() / 2]).unwrap()
            }),
        ),
        (
            "readable by others",
            Box::new(|| {
                std::fs::set_permissions(&entry_path, std::fs::Permissions::from_mode(0o644))
                    .unwrap()
            }),
        ),
    ];
    let mut previous = first["AccessKeyId"].clone();
    for (n, (what, corrupt)) in corruptions.iter().enumerate() {
        corrupt();
        let out = fx.helper(&args, &[]);
        assert!(out.success(), "{what}: {}", out.stderr);
        let doc = assert_version_1_document(&out);
        assert_ne!(
            doc["AccessKeyId"], previous,
            "{what}: the bad entry was used"
        );
        assert_eq!(fx.exchanges().len(), n + 2, "{what}");
        // Replaced by a good, private entry that the next call reuses.
        assert_eq!(mode(&entry_path), 0o600, "{what}");
        let again = fx.helper(&args, &[]);
        again.ok();
        assert_eq!(again.json()["AccessKeyId"], doc["AccessKeyId"], "{what}");
        assert_eq!(
            fx.exchanges().len(),
            n + 2,
            "{what}: the new entry was not reused"
        );
        previous = doc["AccessKeyId"].clone();
    }
}

#[test]
fn a_denial_exits_non_zero_with_claims_against_keys_and_no_secret() {
    let fx = Fixture::start("cli-denied");
    // The secrets of a successful run, to look for afterwards.
    let good = fx.helper(&fx.helper_args(AUDIENCE), &[]);
    good.ok();
    let good = good.json();
    let secrets = [
        ("secret access key", s(&good, "SecretAccessKey").to_owned()),
        ("session token", s(&good, "SessionToken").to_owned()),
    ];
    let wrong = "sts.amazonaws.com/not-this-role";
    let token = fx.bed.metadata_token("default", wrong);
    let signature = token.rsplit('.').next().unwrap().to_owned();

    fx.bed.clear_calls();
    let denied = fx.helper(&fx.helper_args(wrong), &[]);
    assert!(!denied.success(), "the denied call succeeded");
    assert_eq!(denied.status, Some(1));
    assert_eq!(denied.stdout, "", "a failure prints nothing on stdout");
    let exchanges = fx.exchanges();
    assert_eq!(exchanges.len(), 1);
    assert_eq!(exchanges[0].error_code.as_deref(), Some("AccessDenied"));
    for phrase in [
        "STS denied AssumeRoleWithWebIdentity",
        "--audience sets the token's aud; --service-account decides its azp and sub",
        NOT_AUTHORIZED,
        &format!("accounts.google.com:aud  is compared with the token's azp = \"{RUNNER_ID}\""),
        &format!("accounts.google.com:oaud is compared with the token's aud = \"{wrong}\""),
        &format!("accounts.google.com:sub  is compared with the token's sub = \"{RUNNER_ID}\""),
    ] {
        assert!(
            denied.stderr.contains(phrase),
            "stderr lacks {phrase:?}:\n{}",
            denied.stderr
        );
    }

    // Through the AWS CLI too: it fails and relays the message.
    fx.write_aws_config(&fx.helper_args(wrong));
    let cli = fx.aws(&["sts", "get-caller-identity", "--profile", PROFILE], &[]);
    assert!(!cli.success(), "{}", cli.describe());
    assert!(
        cli.stderr.contains("is compared with the token's aud"),
        "{}",
        cli.describe()
    );

    for (label, text) in [
        ("helper stdout", &denied.stdout),
        ("helper stderr", &denied.stderr),
        ("aws stdout", &cli.stdout),
        ("aws stderr", &cli.stderr),
    ] {
        for (what, secret) in &secrets {
            assert!(
                !text.contains(secret.as_str()),
                "the {what} appears in {label}"
            );
        }
        assert!(
            !text.contains(&signature),
            "a token signature appears in {label}"
        );
        if let Some(prefix) = support::find_jwt(text) {
            panic!("a JWT ({prefix}…) appears in {label}");
        }
    }
    // Nothing was cached for the denied key.
    assert_eq!(fx.cache_entries().len(), 1);
}

#[test]
fn aws_profile_naming_the_calling_profile_causes_no_recursion() {
    let fx = Fixture::start("cli-recursion");
    fx.bed.clear_calls();
    // The AWS CLI picks the profile from AWS_PROFILE; the helper inherits AWS_PROFILE and
    // AWS_CONFIG_FILE. Were it to resolve credentials through them it would run itself again.
    let out = fx.aws(
        &["sts", "get-caller-identity", "--output", "json"],
        &[("AWS_PROFILE", PROFILE)],
    );
    assert!(out.success(), "{}", out.describe());
    assert!(s(&out.json(), "Arn").starts_with(&fx.assumed_role_prefix()));
    assert_eq!(fx.exchanges().len(), 1);

    // A tripwire profile: if the helper read profile P at all, its credential_process would
    // leave a marker. The helper runs with AWS_PROFILE=P and no cache.
    let marker = fx.dir.path().join("tripwire-ran");
    let tripwire = fx.dir.path().join("tripwire.sh");
    std::fs::write(
        &tripwire,
        format!("#!/bin/sh\ntouch '{}'\nexit 1\n", marker.display()),
    )
    .unwrap();
    std::fs::set_permissions(&tripwire, std::fs::Permissions::from_mode(0o700)).unwrap();
    std::fs::write(
        fx.config_file(),
        format!(
            "[profile {PROFILE}]\ncredential_process = {}\nregion = {REGION}\n[default]\ncredential_process = {}\n",
            tripwire.display(),
            tripwire.display()
        ),
    )
    .unwrap();
    let mut args = fx.helper_args(AUDIENCE);
    let at = args.iter().position(|a| a == "--cache-dir").unwrap();
    args.truncate(at);
    args.push("--no-cache".into());
    fx.bed.clear_calls();
    let out = fx.helper(&args, &[("AWS_PROFILE", PROFILE)]);
    out.ok();
    assert_version_1_document(&out);
    assert!(
        !marker.exists(),
        "the helper ran the profile's credential_process"
    );
    let exchanges = fx.exchanges();
    assert_eq!(exchanges.len(), 1);
    assert_eq!(exchanges[0].access_key_id, None, "the exchange was signed");
}

#[test]
fn the_help_shows_a_ready_aws_config_snippet() {
    let env: BTreeMap<String, String> = BTreeMap::new();
    let out = run(
        &support::helper_binary(),
        &["credential-process".into(), "--help".into()],
        &env,
    );
    assert!(out.success(), "{}", out.describe());
    let binary = support::helper_binary();
    for phrase in [
        "~/.aws/config".to_string(),
        "[profile gcp-ci]".to_string(),
        format!(
            "credential_process = {} credential-process --role-arn",
            binary.display()
        ),
        "--no-cache".to_string(),
    ] {
        assert!(
            out.stdout.contains(&phrase),
            "{phrase:?} missing:\n{}",
            out.stdout
        );
    }
    // A usage error goes to stderr with exit 2, stdout stays empty.
    let out = run(
        &support::helper_binary(),
        &["credential-process".into(), "--audience".into(), "x".into()],
        &env,
    );
    assert_eq!(out.status, Some(2));
    assert_eq!(out.stdout, "");
    assert!(out.stderr.contains("--role-arn"), "{}", out.stderr);
}

#[test]
fn off_google_cloud_the_error_names_the_flags_that_fix_it() {
    let tmp = tempfile::tempdir().expect("temporary directory");
    let mut env = BTreeMap::new();
    env.insert("HOME".to_string(), tmp.path().display().to_string());
    let closed = support::bed::closed_port_host();
    let args: Vec<String> = [
        "credential-process",
        "--role-arn",
        "arn:aws:iam::123456789012:role/ci",
        "--audience",
        AUDIENCE,
        "--metadata-host",
        &closed,
        "--sts-endpoint",
        &format!("http://{closed}"),
        "--max-retries",
        "0",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let out = run(&support::helper_binary(), &args, &env);
    assert_eq!(out.status, Some(1), "{}", out.describe());
    assert_eq!(out.stdout, "");
    for phrase in [
        "GCE metadata server unreachable",
        &format!("The GCE metadata server at {closed} could not be reached"),
        "1 attempt(s)",
        "--metadata-host (or GCE_METADATA_HOST)",
        "--web-identity-token-file",
    ] {
        assert!(
            out.stderr.contains(phrase),
            "{phrase:?} missing:\n{}",
            out.stderr
        );
    }
    // Nothing was cached for a failure.
    let cache = tmp.path().join(".cache/gcpfed");
    let entries = std::fs::read_dir(&cache)
        .map(|rd| {
            rd.filter(|e| {
                e.as_ref()
                    .unwrap()
                    .path()
                    .extension()
                    .is_some_and(|x| x == "json")
            })
            .count()
        })
        .unwrap_or(0);
    assert_eq!(entries, 0);
}
