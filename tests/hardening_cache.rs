//! Issue 12, "The helper's cache serves each identity only its own session": attacks on the
//! `credential-process` cache from outside, with the real binary (`GCPFED_PROVIDER_BINARY`
//! points at another build), the local bed (the gate counts and records every STS exchange), and
//! boto3 from the test venv.
//!
//! The cache's file layout is used directly where a test must plant or age an entry: entries are
//! `<dir>/<sha256>.json` with the credential_process document under `Credentials` (so
//! `Credentials.Expiration` is the RFC 3339 expiry), and `<dir>/<sha256>.lock` is the flock
//! file (src/cache.rs today). A refactor that changes that layout adapts `entries`, `locks` and
//! `set_expiration` below.

mod support;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::Value;
use support::bed::{
    block_on, TestBed, TokenSpec, ACCOUNT_ID, DEPLOYER_EMAIL, DEPLOYER_ID, OUTSIDER_EMAIL,
    OUTSIDER_ID, REGION, RUNNER_EMAIL, RUNNER_ID,
};
use support::hardening_io::{mode_of, raw_calls, run_bounded, Outcome, STALL_BOUND};
use support::target::unique_name;
use support::tf::provider_binary;
use support::trust_policy_by_hand;

const AUDIENCE: &str = "sts.amazonaws.com/gcpfedacc-cache";
const EXCHANGE: &str = "AssumeRoleWithWebIdentity";
const PROFILE: &str = "gcp-ci";

/// A bed, a role that trusts both the runner and the deployer for AUDIENCE, and a private
/// directory (HOME, cache directories, AWS config files).
struct Fixture {
    bed: TestBed,
    role_arn: String,
    dir: tempfile::TempDir,
}

impl Fixture {
    fn start(label: &str) -> Fixture {
        let bed = TestBed::start();
        let name = unique_name(label);
        let out = block_on(
            bed.iam()
                .create_role()
                .role_name(&name)
                .assume_role_policy_document(trust_policy_by_hand(
                    AUDIENCE,
                    &[RUNNER_ID, DEPLOYER_ID],
                ))
                .max_session_duration(3600)
                .send(),
        )
        .unwrap_or_else(|e| panic!("CreateRole {name}: {e:?}"));
        let role_arn = out.role().expect("role").arn().to_owned();
        assert_eq!(role_arn, format!("arn:aws:iam::{ACCOUNT_ID}:role/{name}"));
        let dir = tempfile::Builder::new()
            .prefix("gcpfed-hardening-cache-")
            .tempdir()
            .expect("temporary directory");
        std::fs::create_dir_all(dir.path().join("home")).expect("home");
        std::fs::write(dir.path().join("credentials"), "").expect("credentials file");
        std::fs::write(dir.path().join("config"), "").expect("config file");
        Fixture { bed, role_arn, dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The helper's arguments: this role and audience, the bed's STS, `cache_dir`, then `extra`.
    fn args(&self, cache_dir: &Path, extra: &[&str]) -> Vec<String> {
        let mut args: Vec<String> = [
            "credential-process",
            "--role-arn",
            &self.role_arn,
            "--audience",
            AUDIENCE,
            "--sts-endpoint",
            &self.bed.aws_endpoint,
            "--cache-dir",
            cache_dir.to_str().expect("UTF-8 path"),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.extend(extra.iter().map(|s| s.to_string()));
        args
    }

    /// The metadata flags for the bed's emulator.
    fn metadata(&self) -> [&str; 2] {
        ["--metadata-host", &self.bed.metadata_host]
    }

    fn env(&self) -> BTreeMap<String, String> {
        let mut env = BTreeMap::new();
        env.insert(
            "PATH".to_string(),
            std::env::var("PATH").unwrap_or_default(),
        );
        env.insert("HOME".into(), self.path("home").display().to_string());
        env.insert(
            "AWS_CONFIG_FILE".into(),
            self.path("config").display().to_string(),
        );
        env.insert(
            "AWS_SHARED_CREDENTIALS_FILE".into(),
            self.path("credentials").display().to_string(),
        );
        env.insert("AWS_EC2_METADATA_DISABLED".into(), "true".into());
        env.insert("PYTHONDONTWRITEBYTECODE".into(), "1".into());
        env
    }

    /// Runs the helper (killed, and reported as hung, after STALL_BOUND).
    fn helper(&self, args: &[String]) -> Outcome {
        let mut command = Command::new(provider_binary());
        command.args(args).env_clear().envs(self.env());
        run_bounded(command, "credential-process", STALL_BOUND)
    }

    /// Runs the helper and returns its AccessKeyId; panics (with stderr only) on failure.
    #[track_caller]
    fn key(&self, args: &[String]) -> String {
        let out = self.helper(args);
        assert!(out.success(), "{}", out.describe_stderr());
        access_key_id(&out)
    }

    /// Successful exchanges of this fixture's role, oldest first.
    fn exchanges(&self) -> usize {
        self.bed
            .calls()
            .into_iter()
            .filter(|c| {
                c.action == EXCHANGE
                    && c.status == 200
                    && c.role_arn.as_deref() == Some(&self.role_arn)
            })
            .count()
    }

    /// The session name of the exchange that issued `access_key_id` (the token's `sub` by
    /// default); `None` if no exchange of the bed issued it.
    fn session_of(&self, access_key_id: &str) -> Option<String> {
        raw_calls(&self.bed)
            .into_iter()
            .find(|c| c["action"] == EXCHANGE && c["issued"]["access_key_id"] == access_key_id)
            .and_then(|c| c["session_name"].as_str().map(str::to_owned))
    }
}

fn access_key_id(out: &Outcome) -> String {
    let doc: Value = serde_json::from_str(out.stdout.trim()).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}); {} bytes\n{}",
            out.stdout.len(),
            out.describe_stderr()
        )
    });
    doc["AccessKeyId"].as_str().expect("AccessKeyId").to_owned()
}

fn files_with(dir: &Path, extension: &str) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.map(|e| e.expect("dir entry").path())
                .filter(|p| p.extension().is_some_and(|x| x == extension))
                .collect()
        })
        .unwrap_or_default();
    found.sort();
    found
}

/// The cache entries (`*.json`) of `dir`.
fn entries(dir: &Path) -> Vec<PathBuf> {
    files_with(dir, "json")
}

/// The lock files (`*.lock`) of `dir`.
fn locks(dir: &Path) -> Vec<PathBuf> {
    files_with(dir, "lock")
}

#[track_caller]
fn the_one(found: Vec<PathBuf>, what: &str) -> PathBuf {
    assert_eq!(found.len(), 1, "{what}: {found:?}");
    found[0].clone()
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64
}

fn rfc3339(epoch: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(epoch)
        .expect("epoch")
        .format(&time::format_description::well_known::Rfc3339)
        .expect("format")
}

/// Rewrites an entry's `Credentials.Expiration` in place (the file keeps its 0600 mode).
fn set_expiration(entry: &Path, epoch: i64) {
    let mut doc: Value =
        serde_json::from_str(&std::fs::read_to_string(entry).expect("entry")).expect("entry JSON");
    doc["Credentials"]["Expiration"] = Value::String(rfc3339(epoch));
    std::fs::write(entry, doc.to_string()).expect("rewrite entry");
}

fn mkdir_mode(path: &Path, mode: u32) {
    std::fs::create_dir_all(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {}: {e}", path.display()));
}

/// A directory's file names and contents (for "nothing was written here").
fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .expect("read dir")
        .map(|e| {
            let e = e.expect("dir entry");
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap_or_default(),
            )
        })
        .collect()
}

// ------------------------------------------------------------------------------------------
// The key holds the identity and the region.

#[test]
fn a_token_file_rewritten_with_another_accounts_token_gets_that_accounts_session() {
    let fx = Fixture::start("cache-token-file");
    let cache = fx.path("cache");
    let token_file = fx.path("token");
    let args = fx.args(
        &cache,
        &["--web-identity-token-file", token_file.to_str().unwrap()],
    );
    fx.bed.clear_calls();

    std::fs::write(
        &token_file,
        fx.bed.mint_token(&TokenSpec::new(RUNNER_EMAIL, AUDIENCE)),
    )
    .unwrap();
    let first = fx.key(&args);
    assert_eq!(fx.exchanges(), 1);
    assert_eq!(fx.session_of(&first).as_deref(), Some(RUNNER_ID));

    // The same file, now holding the deployer's token (another job on a shared runner, or a
    // projected token rotated to another account).
    std::fs::write(
        &token_file,
        fx.bed.mint_token(&TokenSpec::new(DEPLOYER_EMAIL, AUDIENCE)),
    )
    .unwrap();
    let second = fx.key(&args);
    assert_ne!(
        second, first,
        "the deployer's token got the runner's cached session"
    );
    assert_eq!(
        fx.exchanges(),
        2,
        "no new exchange for the deployer's token"
    );
    assert_eq!(
        fx.session_of(&second).as_deref(),
        Some(DEPLOYER_ID),
        "the second run's credentials are not the deployer's session"
    );

    // The deployer's own session is cached in its turn.
    assert_eq!(fx.key(&args), second);
    assert_eq!(fx.exchanges(), 2);
}

#[test]
fn the_metadata_servers_account_behind_an_alias_is_part_of_the_key() {
    let fx = Fixture::start("cache-metadata-sa");
    fx.bed.clear_calls();

    // Two emails: two entries (true today, kept true).
    let by_email = fx.path("cache-emails");
    let mut runner_args = fx.args(&by_email, &fx.metadata());
    runner_args.extend(["--service-account".into(), RUNNER_EMAIL.into()]);
    let mut deployer_args = fx.args(&by_email, &fx.metadata());
    deployer_args.extend(["--service-account".into(), DEPLOYER_EMAIL.into()]);
    let runner = fx.key(&runner_args);
    let deployer = fx.key(&deployer_args);
    assert_ne!(runner, deployer);
    assert_eq!(fx.session_of(&runner).as_deref(), Some(RUNNER_ID));
    assert_eq!(fx.session_of(&deployer).as_deref(), Some(DEPLOYER_ID));

    // One cache directory shared by two runners whose `default` accounts differ (a cache on a
    // shared volume, or a runner image reused under another service account).
    let shared = fx.path("cache-shared");
    let default_args = fx.args(&shared, &fx.metadata());
    let first = fx.key(&default_args);
    assert_eq!(fx.session_of(&first).as_deref(), Some(RUNNER_ID));

    fx.bed.set_service_accounts(&[
        support::bed::ServiceAccount::new(RUNNER_EMAIL, RUNNER_ID, &[]),
        support::bed::ServiceAccount::new(DEPLOYER_EMAIL, DEPLOYER_ID, &["default"]),
        support::bed::ServiceAccount::new(OUTSIDER_EMAIL, OUTSIDER_ID, &[]),
    ]);
    let second = fx.key(&default_args);
    assert_ne!(
        second, first,
        "`--service-account default`, now the deployer, got the runner's cached session"
    );
    assert_eq!(
        fx.session_of(&second).as_deref(),
        Some(DEPLOYER_ID),
        "the second run's credentials are not the deployer's session"
    );
}

#[test]
fn another_region_does_not_share_an_entry() {
    let fx = Fixture::start("cache-region");
    let cache = fx.path("cache");
    fx.bed.clear_calls();
    let mut east = fx.args(&cache, &fx.metadata());
    east.extend(["--region".into(), "us-east-1".into()]);
    let mut west = fx.args(&cache, &fx.metadata());
    west.extend(["--region".into(), "eu-west-1".into()]);

    let first = fx.key(&east);
    assert_eq!(fx.exchanges(), 1);
    let second = fx.key(&west);
    assert_ne!(
        second, first,
        "--region eu-west-1 got the session cached for us-east-1"
    );
    assert_eq!(fx.exchanges(), 2, "no exchange for the second region");
    // Each region's entry is reused for that region.
    assert_eq!(fx.key(&east), first);
    assert_eq!(fx.key(&west), second);
    assert_eq!(fx.exchanges(), 2);
}

// ------------------------------------------------------------------------------------------
// Refresh before the SDKs' windows.

#[test]
fn an_entry_with_ten_minutes_left_is_refreshed_and_one_with_sixteen_is_reused() {
    let fx = Fixture::start("cache-margin");
    fx.bed.clear_calls();

    // A 15-minute session is reused right after it is issued: the margin of short sessions is
    // proportional, never the whole session.
    let short_cache = fx.path("cache-short");
    let short = fx.args(
        &short_cache,
        &[&fx.metadata()[..], &["--duration-seconds", "900"]].concat(),
    );
    let issued = fx.key(&short);
    assert_eq!(
        fx.key(&short),
        issued,
        "a fresh 15-minute session was not reused"
    );
    assert_eq!(fx.exchanges(), 1);

    let cache = fx.path("cache");
    let args = fx.args(&cache, &fx.metadata());
    let first = fx.key(&args);
    assert_eq!(fx.exchanges(), 2);
    let entry = the_one(entries(&cache), "entries");

    // Sixteen minutes left: outside the SDKs' 15-minute advisory window, reused.
    set_expiration(&entry, now() + 16 * 60);
    assert_eq!(
        fx.key(&args),
        first,
        "an entry with 16 minutes left was not reused"
    );
    assert_eq!(fx.exchanges(), 2);

    // Ten minutes left: inside botocore's advisory (15 min) and mandatory (10 min) windows, so
    // serving it makes every SDK call run the helper again. It must be exchanged anew.
    set_expiration(&entry, now() + 10 * 60);
    let renewed = fx.key(&args);
    assert_ne!(
        renewed, first,
        "an entry with 10 minutes left was served again"
    );
    assert_eq!(fx.exchanges(), 3);
    assert_eq!(mode_of(&entry), 0o600);
}

#[test]
fn boto3_near_expiry_costs_one_helper_run_and_one_exchange() {
    let fx = Fixture::start("cache-boto3");
    let cache = fx.path("cache");
    let args = fx.args(&cache, &fx.metadata());
    let planted = fx.key(&args);
    let entry = the_one(entries(&cache), "entries");
    // The cached session's clock is near its end: ten minutes left.
    set_expiration(&entry, now() + 10 * 60);

    // The profile runs the helper through a wrapper that counts its runs.
    let counter = fx.path("helper-runs");
    let wrapper = fx.path("counting-helper.sh");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\necho run >> '{}'\nexec '{}' \"$@\"\n",
            counter.display(),
            provider_binary().display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o700)).unwrap();
    let helper_args: Vec<String> = args.iter().skip(1).cloned().collect();
    std::fs::write(
        fx.path("config"),
        format!(
            "[profile {PROFILE}]\ncredential_process = {} credential-process {}\nendpoint_url = {}\nregion = {REGION}\n",
            wrapper.display(),
            helper_args.join(" "),
            fx.bed.aws_endpoint
        ),
    )
    .unwrap();
    fx.bed.clear_calls();

    let script = "import boto3, json, sys\n\
                  client = boto3.Session(profile_name=sys.argv[1]).client('sts')\n\
                  arns = [client.get_caller_identity()['Arn'] for _ in range(5)]\n\
                  print(json.dumps(arns))\n";
    let mut command = Command::new(support::python());
    command
        .args(["-c", script, PROFILE])
        .env_clear()
        .envs(fx.env());
    let out = run_bounded(command, "python boto3", STALL_BOUND);
    assert!(out.success(), "{}", out.describe());

    let runs = std::fs::read_to_string(&counter)
        .unwrap_or_default()
        .lines()
        .count();
    let exchanges = fx.exchanges();
    let signed: Vec<Option<String>> = fx
        .bed
        .calls()
        .into_iter()
        .filter(|c| c.action == "GetCallerIdentity")
        .map(|c| c.access_key_id)
        .collect();
    assert_eq!(signed.len(), 5, "{signed:?}");
    assert_eq!(
        (runs, exchanges),
        (1, 1),
        "five boto3 calls over a session with 10 minutes left ran the helper {runs} times and \
         exchanged {exchanges} times: the helper must refresh the entry once, not hand back the \
         nearly expired one for botocore to refresh again on every call"
    );
    assert!(
        signed
            .iter()
            .all(|k| k.as_deref() != Some(planted.as_str())),
        "calls were signed with the nearly expired key"
    );
    assert_eq!(
        fx.session_of(signed[0].as_deref().unwrap()).as_deref(),
        Some(RUNNER_ID)
    );
}

// ------------------------------------------------------------------------------------------
// The cache directory.

#[test]
fn a_symlinked_cache_entry_lock_or_directory_is_never_followed() {
    let fx = Fixture::start("cache-symlink");
    let cache = fx.path("cache");
    let args = fx.args(&cache, &fx.metadata());
    let first = fx.key(&args);
    let entry = the_one(entries(&cache), "entries");
    let lock = the_one(locks(&cache), "lock files");

    // (1) The entry is a symlink to a valid, fresh entry elsewhere: not read, not written.
    let planted = fx.path("planted-entry.json");
    std::fs::copy(&entry, &planted).unwrap();
    std::fs::set_permissions(&planted, std::fs::Permissions::from_mode(0o600)).unwrap();
    let planted_text = std::fs::read(&planted).unwrap();
    std::fs::remove_file(&entry).unwrap();
    std::os::unix::fs::symlink(&planted, &entry).unwrap();
    let out = fx.helper(&args);
    if out.success() {
        assert_ne!(
            access_key_id(&out),
            first,
            "the credentials behind the entry's symlink were served"
        );
    }
    assert_eq!(
        std::fs::read(&planted).unwrap(),
        planted_text,
        "written through the entry's symlink"
    );

    // (2) The lock file is a symlink to a file elsewhere: neither created, truncated nor locked
    // through.
    if std::fs::symlink_metadata(&entry).is_ok_and(|m| m.file_type().is_symlink()) {
        std::fs::remove_file(&entry).unwrap();
    }
    fx.key(&args);
    set_expiration(&the_one(entries(&cache), "entries"), now() - 60);
    let victim = fx.path("victim");
    std::fs::write(&victim, "not the helper's file\n").unwrap();
    std::fs::remove_file(&lock).unwrap();
    std::os::unix::fs::symlink(&victim, &lock).unwrap();
    fx.helper(&args);
    assert_eq!(
        std::fs::read_to_string(&victim).unwrap(),
        "not the helper's file\n",
        "written through the lock's symlink"
    );

    // (3) The cache directory itself is a symlink to a directory holding a valid, fresh entry.
    let real = fx.path("real-cache");
    mkdir_mode(&real, 0o700);
    std::fs::remove_file(&lock).unwrap();
    let fresh_key = fx.key(&args);
    let fresh = the_one(entries(&cache), "entries");
    std::fs::copy(&fresh, real.join(fresh.file_name().unwrap())).unwrap();
    std::fs::set_permissions(
        real.join(fresh.file_name().unwrap()),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    let before = snapshot(&real);
    let link = fx.path("linked-cache");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    let linked_args = fx.args(&link, &fx.metadata());
    let out = fx.helper(&linked_args);
    if out.success() {
        assert_ne!(
            access_key_id(&out),
            fresh_key,
            "the entry behind the cache directory's symlink was served"
        );
    }
    assert_eq!(
        snapshot(&real),
        before,
        "written through the cache directory's symlink"
    );
    let stderr = out.stderr.to_lowercase();
    assert!(
        out.stderr.contains(link.to_str().unwrap())
            && (stderr.contains("symbolic link") || stderr.contains("symlink"))
            && out.stderr.contains("--cache-dir"),
        "no message naming the symlinked cache directory and --cache-dir:\n{}",
        out.describe_stderr()
    );

    // A symlink higher up (~/.cache on another disk) is followed as before.
    let real_parent = fx.path("real-parent");
    mkdir_mode(&real_parent, 0o755);
    let linked_parent = fx.path("linked-parent");
    std::os::unix::fs::symlink(&real_parent, &linked_parent).unwrap();
    let out = fx.helper(&fx.args(&linked_parent.join("gcpfed"), &fx.metadata()));
    assert!(out.success(), "{}", out.describe_stderr());
    assert_eq!(entries(&real_parent.join("gcpfed")).len(), 1);
}

#[test]
fn a_cache_directory_under_a_parent_writable_by_others_is_refused() {
    let fx = Fixture::start("cache-parent");

    // Sticky and world-writable (like /tmp): others cannot rename or replace our directory.
    let sticky = fx.path("sticky");
    mkdir_mode(&sticky, 0o1777);
    let out = fx.helper(&fx.args(&sticky.join("gcpfed"), &fx.metadata()));
    assert!(out.success(), "{}", out.describe_stderr());
    assert_eq!(out.stderr, "", "a sticky parent drew a warning");
    assert_eq!(entries(&sticky.join("gcpfed")).len(), 1);

    // World-writable without the sticky bit: anyone may swap the cache directory for their own.
    let open = fx.path("open");
    mkdir_mode(&open, 0o777);
    assert_eq!(mode_of(&open), 0o777);
    let out = fx.helper(&fx.args(&open.join("gcpfed"), &fx.metadata()));
    assert!(
        entries(&open.join("gcpfed")).is_empty(),
        "credentials were cached under a parent writable by others"
    );
    let lower = out.stderr.to_lowercase();
    assert!(
        out.stderr.contains(open.to_str().unwrap())
            && lower.contains("writable")
            && (out.stderr.contains("--cache-dir") || lower.contains("chmod")),
        "no message naming the parent {}, that others can write it, and the fix:\n{}",
        open.display(),
        out.describe_stderr()
    );
}

#[test]
fn a_held_lock_is_waited_for_only_until_the_exchanges_deadline() {
    let fx = Fixture::start("cache-lock");
    let cache = fx.path("cache");
    let args = fx.args(&cache, &fx.metadata());
    fx.key(&args);
    let entry = the_one(entries(&cache), "entries");
    let lock = the_one(locks(&cache), "lock files");
    // Stale, so that the next run needs the lock to exchange.
    set_expiration(&entry, now() - 60);

    // Another process holds the entry's lock and never lets go (a helper stopped with ^Z, a
    // wedged NFS client); it stops when its stdin closes, or after 10 minutes.
    let holder_script = "import fcntl, signal, sys\n\
                         signal.alarm(600)\n\
                         f = open(sys.argv[1], 'a+')\n\
                         fcntl.flock(f, fcntl.LOCK_EX)\n\
                         print('locked', flush=True)\n\
                         sys.stdin.read()\n";
    let mut holder = Command::new(support::python())
        .args(["-c", holder_script, lock.to_str().unwrap()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start the lock holder");
    let mut line = String::new();
    BufReader::new(holder.stdout.take().unwrap())
        .read_line(&mut line)
        .expect("lock holder's line");
    assert_eq!(line.trim(), "locked");

    let out = fx.helper(&args);
    drop(holder.stdin.take());
    let _ = holder.wait();

    assert!(!out.killed, "{}", out.describe_stderr());
    let lower = out.stderr.to_lowercase();
    assert!(
        lower.contains("deadline") && out.stderr.contains(lock.to_str().unwrap()),
        "no message naming the held lock {} and the exchange's deadline:\n{}",
        lock.display(),
        out.describe_stderr()
    );
}
