//! Impersonation (issue 16) on the strict local test bed, under real Terraform and OpenTofu and
//! through the real AWS CLI: the runner's account (`default` on the bed's metadata server)
//! impersonates `team-a` through our IAM Credentials emulator, whose tokens carry team-a's
//! unique ID, so a role that trusts only team-a gives team-a's session and refuses the runner's
//! own token; a delegate chain works and a broken link is named; each refusal of the API names
//! its gcloud fix and is asked once; no access token, ID token or AWS secret appears in any
//! output or TRACE log.
//!
//! Roles are created out of band with a trust policy written out by hand. Every test needs the
//! bed's emulators (grants, API state, scopes, call record) and is skipped, saying so, on the
//! sandbox target.

mod support;

use std::path::Path;

use serde_json::{json, Value};
use support::bed::{block_on, TestBed, ACCOUNT_ID, RUNNER_EMAIL, RUNNER_ID};
use support::hardening::{leaks, run_process, ProcessOut};
use support::target::{unique_name, Acc};
use support::tf::{for_each_engine, Workdir, REQUIRED_PROVIDERS};

const AUDIENCE: &str = "sts.amazonaws.com/gcpfedacc-impersonation";
const TEAM_A: &str = "team-a@gcpfed-test.iam.gserviceaccount.com";
const TEAM_A_ID: &str = "104857600000000000011";
const TEAM_B: &str = "team-b@gcpfed-test.iam.gserviceaccount.com";
const TEAM_B_ID: &str = "104857600000000000012";
const HOP_1: &str = "hop-1@gcpfed-test.iam.gserviceaccount.com";
const HOP_2: &str = "hop-2@gcpfed-test.iam.gserviceaccount.com";
const WHY_LOCAL: &str = "it drives the bed's IAM Credentials emulator (grants, API state, scopes)";

/// The bed's IAM Credentials emulator, as these tests drive it.
trait IamCredentials {
    fn grant(&self, member: &str, target: &str);
    fn set_grants(&self, grants: &[(&str, &str)]);
    fn set_api_enabled(&self, enabled: bool);
    fn set_vm_scopes(&self, scopes: &[&str]);
    fn fail_iam(&self, status: u16, times: u32);
    fn iam_calls(&self) -> Vec<Value>;
    fn clear_iam_calls(&self);
    /// Every access token and ID token the bed issued, to search outputs for.
    fn google_tokens(&self) -> Vec<(String, String)>;
}

impl IamCredentials for TestBed {
    fn grant(&self, member: &str, target: &str) {
        let body = json!({"member": member, "target": target});
        self.iam_control(reqwest::Method::POST, "grants", Some(body));
    }
    fn set_grants(&self, grants: &[(&str, &str)]) {
        let list: Vec<Value> = grants
            .iter()
            .map(|(m, t)| json!({"member": m, "target": t}))
            .collect();
        self.iam_control(reqwest::Method::PUT, "grants", Some(Value::from(list)));
    }
    fn set_api_enabled(&self, enabled: bool) {
        let body = json!({ "enabled": enabled });
        self.iam_control(reqwest::Method::PUT, "api", Some(body));
    }
    fn set_vm_scopes(&self, scopes: &[&str]) {
        let body = json!({ "scopes": scopes });
        self.iam_control(reqwest::Method::PUT, "scopes", Some(body));
    }
    fn fail_iam(&self, status: u16, times: u32) {
        let body = json!({"status": status, "times": times});
        self.iam_control(reqwest::Method::POST, "faults", Some(body));
    }
    fn iam_calls(&self) -> Vec<Value> {
        let calls = self.iam_control(reqwest::Method::GET, "calls", None);
        calls.as_array().cloned().unwrap_or_default()
    }
    fn clear_iam_calls(&self) {
        self.iam_control(reqwest::Method::DELETE, "calls", None);
    }
    fn google_tokens(&self) -> Vec<(String, String)> {
        let all = self.iam_control(reqwest::Method::GET, "secrets", None);
        let mut out = Vec::new();
        for (kind, what) in [("access_tokens", "access token"), ("id_tokens", "ID token")] {
            for token in all[kind].as_array().into_iter().flatten() {
                out.push((
                    what.to_string(),
                    token.as_str().unwrap_or_default().to_owned(),
                ));
            }
        }
        out
    }
}

/// Every secret of the run: Google's tokens and each issued AWS secret key and session token.
fn secrets_of(bed: &TestBed) -> Vec<(String, String)> {
    let mut secrets = bed.google_tokens();
    for exchange in bed.exchange_secrets() {
        secrets.push(("web identity token".into(), exchange.web_identity_token));
        secrets.push(("secret access key".into(), exchange.secret_access_key));
        secrets.push(("session token".into(), exchange.session_token));
    }
    secrets
}

/// A role that trusts exactly `ids` for AUDIENCE; returns (name, ARN).
fn role(bed: &TestBed, label: &str, ids: &[&str]) -> (String, String) {
    let name = unique_name(label);
    let arn = support::iam::create_trusted_role(&bed.iam(), &name, AUDIENCE, ids);
    (name, arn)
}

/// The provider block for the bed, its IAM Credentials endpoint given as the argument.
fn provider(bed: &TestBed) -> String {
    format!(
        "provider \"gcpfed\" {{\n  region = \"us-east-1\"\n  access_key = \"testing\"\n  secret_key = \"testing\"\n  metadata_host = {}\n  iam_credentials_custom_endpoint = {}\n  endpoints {{\n    iam = {aws}\n    sts = {aws}\n  }}\n}}\n",
        support::q(&bed.metadata_host),
        support::q(&bed.iam_credentials_endpoint),
        aws = support::q(&bed.aws_endpoint)
    )
}

/// `data "gcpfed_credentials" "<name>"` for `role_arn` with extra HCL lines.
fn data(name: &str, role_arn: &str, more: &str) -> String {
    format!(
        "data \"gcpfed_credentials\" \"{name}\" {{\n  role_arn = {}\n  audience = {}\n{more}}}\n",
        support::q(role_arn),
        support::q(AUDIENCE)
    )
}

fn state_values(wd: &Workdir, address: &str) -> Value {
    support::tf::resource_values_in(&wd.show_json(), address)
        .unwrap_or_else(|| panic!("[{}] {address} not in state", wd.engine()))
}

fn text<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("{key} is not a string in the state"))
}

fn env() -> Vec<(String, String)> {
    vec![("AWS_EC2_METADATA_DISABLED".into(), "true".into())]
}

#[test]
fn a_runner_impersonating_team_a_gets_team_a_session_and_nothing_leaks() {
    let Some(acc) = Acc::local_only("impersonation", WHY_LOCAL) else {
        return;
    };
    let bed = acc.bed().expect("local bed");
    bed.grant(RUNNER_EMAIL, TEAM_A);
    for_each_engine(|engine| {
        let (role_name, arn) = role(bed, "team-a", &[TEAM_A_ID]);
        let main_tf = format!(
            "{REQUIRED_PROVIDERS}\n{}\n{}",
            provider(bed),
            data(
                "team",
                &arn,
                &format!("  impersonate_service_account = {}\n", support::q(TEAM_A))
            )
        );
        let mut wd = Workdir::new(engine, &main_tf, &env());
        let tf_log = wd.path().join("tf-trace.log");
        wd.set_env("TF_LOG", "TRACE");
        wd.set_env("TF_LOG_PATH", &tf_log.display().to_string());
        wd.set_env("PLUGIN_LOG_FILE", "/dev/stderr");
        bed.clear_calls();
        bed.clear_iam_calls();

        let apply = wd.apply();
        apply.ok();
        let apply_log = std::fs::read_to_string(&tf_log).unwrap_or_default();
        let v = state_values(&wd, "data.gcpfed_credentials.team");
        let session = format!("arn:aws:sts::{ACCOUNT_ID}:assumed-role/{role_name}/{TEAM_A_ID}");
        assert_eq!(text(&v, "assumed_role_arn"), session, "[{engine}]");
        assert_eq!(text(&v, "subject"), TEAM_A_ID, "[{engine}]");
        assert_eq!(text(&v, "email"), TEAM_A, "[{engine}]");
        assert_eq!(
            text(&v, "impersonate_service_account"),
            TEAM_A,
            "[{engine}]"
        );
        // GetCallerIdentity with the credentials shows team-a's session.
        let caller = block_on(
            acc.sts_with(
                text(&v, "access_key_id"),
                text(&v, "secret_access_key"),
                text(&v, "session_token"),
            )
            .get_caller_identity()
            .send(),
        )
        .expect("GetCallerIdentity");
        assert_eq!(caller.arn(), Some(session.as_str()), "[{engine}]");
        // The API was asked by the runner, for team-a, with no chain.
        let calls = bed.iam_calls();
        assert!(!calls.is_empty(), "[{engine}] no generateIdToken call");
        for call in &calls {
            assert_eq!(call["caller"], RUNNER_EMAIL, "[{engine}] {call}");
            assert_eq!(call["target"], TEAM_A, "[{engine}] {call}");
            assert_eq!(call["status"], 200, "[{engine}] {call}");
        }

        // The same role refuses the runner's own token.
        let own = format!("{main_tf}\n{}", data("own", &arn, ""));
        wd.write(&own);
        let refused = wd.plan();
        refused
            .fails()
            .assert_contains(&["STS denied AssumeRoleWithWebIdentity", RUNNER_ID]);

        // Nothing secret in any output, state excepted, nor in the TRACE log.
        let log = std::fs::read_to_string(&tf_log).unwrap_or_default();
        // The log really holds the provider's TRACE output, the AWS SDK's included.
        for needle in [
            "terraform-provider-gcpfed",
            "aws_smithy_runtime",
            "AssumeRoleWithWebIdentity",
        ] {
            assert!(
                log.contains(needle),
                "[{engine}] the TRACE log ({} bytes) lacks {needle}",
                log.len()
            );
        }
        let texts = vec![
            ("apply output".to_string(), apply.combined()),
            ("refused plan output".to_string(), refused.combined()),
            ("TF_LOG=trace log of the apply".to_string(), apply_log),
            ("TF_LOG=trace log".to_string(), log),
        ];
        let secrets = secrets_of(bed);
        assert!(
            secrets.iter().any(|(w, _)| w == "access token"),
            "[{engine}] no access token issued"
        );
        assert_eq!(leaks(&texts, &secrets), Vec::<String>::new(), "[{engine}]");
    });
}

#[test]
fn the_ephemeral_resource_and_the_provider_block_impersonate_too() {
    let Some(acc) = Acc::local_only("impersonation (ephemeral)", WHY_LOCAL) else {
        return;
    };
    let bed = acc.bed().expect("local bed");
    bed.grant(RUNNER_EMAIL, TEAM_A);
    let (_, arn) = role(bed, "team-a-eph", &[TEAM_A_ID]);
    // Ephemeral resources need Terraform >= 1.10; the provider block works everywhere.
    for_each_engine(|engine| {
        let ephemeral = if engine.has_ephemeral_resources() {
            format!(
                "ephemeral \"gcpfed_credentials\" \"team\" {{\n  role_arn = {}\n  audience = {}\n  impersonate_service_account = {}\n}}\n",
                support::q(&arn),
                support::q(AUDIENCE),
                support::q(TEAM_A_ID)
            )
        } else {
            String::new()
        };
        let main_tf = format!(
            "{REQUIRED_PROVIDERS}\n{}\nprovider \"gcpfed\" {{\n  alias = \"team\"\n  region = \"us-east-1\"\n  metadata_host = {}\n  iam_credentials_custom_endpoint = {}\n  endpoints {{\n    iam = {aws}\n    sts = {aws}\n  }}\n  assume_role_with_gcp_identity {{\n    role_arn = {}\n    audience = {}\n    impersonate_service_account = {}\n  }}\n}}\nresource \"gcpfed_role\" \"made_by_team\" {{\n  provider = gcpfed.team\n  name = {}\n  audience = \"x\"\n  service_account_unique_ids = [\"{TEAM_B_ID}\"]\n}}\n{ephemeral}",
            provider(bed),
            support::q(&bed.metadata_host),
            support::q(&bed.iam_credentials_endpoint),
            support::q(&arn),
            support::q(AUDIENCE),
            support::q(TEAM_A),
            support::q(&unique_name("made-by-team")),
            aws = support::q(&bed.aws_endpoint)
        );
        let wd = Workdir::new(engine, &main_tf, &env());
        bed.clear_calls();
        wd.apply().ok();
        let exchanges: Vec<_> = bed
            .calls()
            .into_iter()
            .filter(|c| c.action == "AssumeRoleWithWebIdentity")
            .collect();
        assert!(!exchanges.is_empty(), "[{engine}] no exchange");
        for c in &exchanges {
            assert_eq!(c.status, 200, "[{engine}] {c:?}");
            assert_eq!(
                c.session_name.as_deref(),
                Some(TEAM_A_ID),
                "[{engine}] {c:?}"
            );
        }
        // The role was created with the provider's team-a session.
        let create = bed
            .calls()
            .into_iter()
            .find(|c| c.action == "CreateRole")
            .unwrap_or_else(|| panic!("[{engine}] no CreateRole"));
        assert!(
            create
                .access_key_id
                .as_deref()
                .is_some_and(|k| k.starts_with("ASIA")),
            "[{engine}] CreateRole was not signed with the session: {create:?}"
        );
        wd.destroy().ok();
    });
}

#[test]
fn a_delegate_chain_works_and_a_broken_link_is_named() {
    let Some(acc) = Acc::local_only("impersonation (delegates)", WHY_LOCAL) else {
        return;
    };
    let bed = acc.bed().expect("local bed");
    let (_, arn) = role(bed, "chain", &[TEAM_A_ID]);
    let chain = format!(
        "  impersonate_service_account = {}\n  delegates = [{}, \"projects/-/serviceAccounts/{HOP_2}\"]\n",
        support::q(TEAM_A),
        support::q(HOP_1)
    );
    let main_tf = format!(
        "{REQUIRED_PROVIDERS}\n{}\n{}",
        provider(bed),
        data("chain", &arn, &chain)
    );
    // Bad input fails at validate, before any call, on its attribute with the fix.
    let bad_tf = format!(
        "{REQUIRED_PROVIDERS}\n{}\n{}",
        provider(bed),
        data(
            "bad",
            &arn,
            "  impersonate_service_account = \"default\"\n  delegates = [\"projects/my-proj/serviceAccounts/x@p.iam.gserviceaccount.com\"]\n"
        )
    );
    for_each_engine(|engine| {
        let bad = Workdir::new(engine, &bad_tf, &env());
        bed.clear_iam_calls();
        bad.validate().fails().assert_contains(&[
            "Invalid service account to impersonate",
            "impersonate_service_account = \"default\"",
            "name the account to impersonate by its email",
            "Invalid delegate",
            "`-` wildcard",
        ]);
        assert!(
            bed.iam_calls().is_empty(),
            "[{engine}] a call before validation passed"
        );

        bed.set_grants(&[(RUNNER_EMAIL, HOP_1), (HOP_1, HOP_2), (HOP_2, TEAM_A)]);
        bed.clear_iam_calls();
        let wd = Workdir::new(engine, &main_tf, &env());
        wd.plan().ok();
        let calls = bed.iam_calls();
        assert_eq!(calls.len(), 1, "[{engine}] {calls:?}");
        assert_eq!(calls[0]["delegates"], json!([HOP_1, HOP_2]), "[{engine}]");
        assert_eq!(calls[0]["status"], 200, "[{engine}]");

        // hop-1 loses its grant on hop-2: link 2 of runner → hop-1 → hop-2 → team-a.
        bed.set_grants(&[(RUNNER_EMAIL, HOP_1), (HOP_2, TEAM_A)]);
        let broken = wd.plan();
        broken.fails().assert_contains(&[
            "Not allowed to impersonate the service account",
            &format!("link 2 of the chain {RUNNER_EMAIL} → {HOP_1} → {HOP_2} → {TEAM_A}"),
            &format!(
                "gcloud iam service-accounts add-iam-policy-binding {HOP_2} --member serviceAccount:{HOP_1} --role roles/iam.serviceAccountTokenCreator"
            ),
        ]);
        // The last link broken instead: hop-2 may not mint for team-a.
        bed.set_grants(&[(RUNNER_EMAIL, HOP_1), (HOP_1, HOP_2)]);
        wd.plan().fails().assert_contains(&[&format!(
            "link 3 of the chain {RUNNER_EMAIL} → {HOP_1} → {HOP_2} → {TEAM_A}"
        )]);
        // In HCL words: the API disabled, named with the attribute and the gcloud command.
        bed.set_grants(&[(RUNNER_EMAIL, HOP_1), (HOP_1, HOP_2), (HOP_2, TEAM_A)]);
        bed.set_api_enabled(false);
        let disabled = wd.plan();
        bed.set_api_enabled(true);
        disabled.fails().assert_contains(&[
            "IAM Service Account Credentials API disabled",
            "gcloud services enable iamcredentials.googleapis.com --project 123456789000",
            "`impersonate_service_account`",
        ]);
        assert!(
            !disabled
                .combined()
                .contains("--impersonate-service-account"),
            "[{engine}] the command line's flag in an HCL message"
        );
    });
}

// ---------- the helper, through the real AWS CLI and directly ----------

/// The helper's arguments for `role_arn` on the bed, impersonating `target` (if any); the IAM
/// Credentials endpoint comes from GOOGLE_IAM_CREDENTIALS_CUSTOM_ENDPOINT (see [`cli_env`]).
fn helper_args(bed: &TestBed, role_arn: &str, target: Option<&str>, cache: &Path) -> Vec<String> {
    let mut args: Vec<String> = [
        "credential-process",
        "--role-arn",
        role_arn,
        "--audience",
        AUDIENCE,
        "--metadata-host",
        &bed.metadata_host,
        "--sts-endpoint",
        &bed.aws_endpoint,
        "--max-retries",
        "3",
        "--cache-dir",
        cache.to_str().expect("UTF-8 path"),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    if let Some(target) = target {
        args.extend([
            "--impersonate-service-account".to_string(),
            target.to_string(),
        ]);
    }
    args
}

fn cli_env(bed: &TestBed, dir: &Path) -> Vec<(String, String)> {
    let mut env = support::hardening::helper_env(dir);
    env.push((
        "GOOGLE_IAM_CREDENTIALS_CUSTOM_ENDPOINT".into(),
        bed.iam_credentials_endpoint.clone(),
    ));
    env
}

fn helper(bed: &TestBed, dir: &Path, args: &[String]) -> ProcessOut {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    run_process(&support::helper_binary(), &args, &cli_env(bed, dir))
}

#[test]
fn the_helper_gives_each_team_its_own_session_through_the_aws_cli() {
    let Some(acc) = Acc::local_only("impersonation (credential-process)", WHY_LOCAL) else {
        return;
    };
    let bed = acc.bed().expect("local bed");
    bed.set_grants(&[(RUNNER_EMAIL, TEAM_A), (RUNNER_EMAIL, TEAM_B)]);
    // One role for both teams: only the impersonated account tells their sessions apart, so
    // a cache key without it would hand team-b team-a's session.
    let (role_ab, arn) = role(bed, "cli-ab", &[TEAM_A_ID, TEAM_B_ID]);
    let (role_a, arn_a, role_b, arn_b) = (&role_ab, &arn, &role_ab, &arn);
    let dir = tempfile::tempdir().expect("temporary directory");
    let cache = dir.path().join("cache");
    let config = dir.path().join("aws-config");
    let line = |arn: &str, target: &str| {
        format!(
            "credential_process = {} {}\nendpoint_url = {}\nregion = us-east-1\n",
            support::helper_binary().display(),
            helper_args(bed, arn, Some(target), &cache).join(" "),
            bed.aws_endpoint
        )
    };
    std::fs::write(
        &config,
        format!(
            "[profile team-a]\n{}\n[profile team-b]\n{}",
            line(arn_a, TEAM_A),
            line(arn_b, TEAM_B_ID)
        ),
    )
    .expect("AWS config");
    let mut env = cli_env(bed, dir.path());
    env.retain(|(k, _)| k != "AWS_CONFIG_FILE");
    env.push(("AWS_CONFIG_FILE".into(), config.display().to_string()));
    bed.clear_calls();
    let aws = |profile: &str| {
        run_process(
            &support::aws_cli(),
            &["sts", "get-caller-identity", "--profile", profile],
            &env,
        )
    };
    let mut outputs = Vec::new();
    for (profile, role_name, id) in [
        ("team-a", role_a, TEAM_A_ID),
        ("team-b", role_b, TEAM_B_ID),
        ("team-a", role_a, TEAM_A_ID),
    ] {
        let out = aws(profile);
        assert!(
            (out.status == Some(0)),
            "aws --profile {profile}: {}",
            out.stderr
        );
        let doc: Value = serde_json::from_str(&out.stdout).expect("get-caller-identity JSON");
        assert_eq!(
            doc["Arn"],
            format!("arn:aws:sts::{ACCOUNT_ID}:assumed-role/{role_name}/{id}"),
            "{profile}"
        );
        outputs.push((format!("aws --profile {profile} stdout"), out.stdout));
        outputs.push((format!("aws --profile {profile} stderr"), out.stderr));
    }
    // One exchange per team: the third call came from team-a's cache entry, and the two teams
    // (same runner, same metadata server) never shared one.
    let exchanges = bed
        .calls()
        .into_iter()
        .filter(|c| c.action == "AssumeRoleWithWebIdentity")
        .count();
    assert_eq!(exchanges, 2);
    let entries = std::fs::read_dir(&cache)
        .expect("cache directory")
        .filter(|e| {
            e.as_ref()
                .is_ok_and(|e| e.path().extension().is_some_and(|x| x == "json"))
        })
        .count();
    assert_eq!(entries, 2, "one cache entry per impersonated account");
    let secrets: Vec<(String, String)> = secrets_of(bed)
        .into_iter()
        .filter(|(what, _)| what != "secret access key" && what != "session token")
        .collect();
    assert_eq!(leaks(&outputs, &secrets), Vec::<String>::new());
}

/// One refusal through the helper: the exit, the message's phrases, the calls the API saw.
fn refused(bed: &TestBed, dir: &Path, args: &[String], phrases: &[&str]) -> usize {
    bed.clear_iam_calls();
    let out = helper(bed, dir, args);
    assert!(
        out.status != Some(0),
        "the helper succeeded: {}",
        out.stderr
    );
    assert!(out.stdout.is_empty(), "stdout on failure: {}", out.stdout);
    for phrase in phrases {
        assert!(
            out.stderr.contains(phrase),
            "stderr lacks {phrase:?}:\n{}",
            out.stderr
        );
    }
    let secrets = bed.google_tokens();
    let texts = vec![("stderr".to_string(), out.stderr)];
    assert_eq!(leaks(&texts, &secrets), Vec::<String>::new());
    bed.iam_calls().len()
}

#[test]
fn each_refusal_names_its_gcloud_fix_and_is_asked_once() {
    let Some(acc) = Acc::local_only("impersonation (refusals)", WHY_LOCAL) else {
        return;
    };
    let bed = acc.bed().expect("local bed");
    let (_, arn) = role(bed, "refusals", &[TEAM_A_ID]);
    let dir = tempfile::tempdir().expect("temporary directory");
    let args = helper_args(bed, &arn, Some(TEAM_A), &dir.path().join("cache"));
    let mut no_cache = args.clone();
    no_cache.retain(|a| !a.ends_with("/cache") && a != "--cache-dir");
    no_cache.push("--no-cache".into());

    // No grant: permission denied, the fix is the binding (the helper retries up to 3 times:
    // a 4xx must still be asked once).
    let calls = refused(bed, dir.path(), &no_cache, &[
        "Not allowed to impersonate the service account",
        "iam.serviceAccounts.getOpenIdToken",
        &format!("gcloud iam service-accounts add-iam-policy-binding {TEAM_A} --member serviceAccount:{RUNNER_EMAIL} --role roles/iam.serviceAccountTokenCreator"),
        "--impersonate-service-account",
    ]);
    assert_eq!(calls, 1, "a permission refusal was asked again");

    bed.grant(RUNNER_EMAIL, TEAM_A);
    bed.set_api_enabled(false);
    let calls = refused(
        bed,
        dir.path(),
        &no_cache,
        &[
            "SERVICE_DISABLED",
            "gcloud services enable iamcredentials.googleapis.com --project 123456789000",
        ],
    );
    assert_eq!(calls, 1, "SERVICE_DISABLED was asked again");
    bed.set_api_enabled(true);

    bed.set_vm_scopes(&["https://www.googleapis.com/auth/devstorage.read_only"]);
    let calls = refused(
        bed,
        dir.path(),
        &no_cache,
        &[
            "ACCESS_TOKEN_SCOPE_INSUFFICIENT",
            &format!("--service-account {RUNNER_EMAIL} --scopes cloud-platform"),
        ],
    );
    assert_eq!(calls, 1, "ACCESS_TOKEN_SCOPE_INSUFFICIENT was asked again");
    bed.set_vm_scopes(&["https://www.googleapis.com/auth/cloud-platform"]);

    let mut unknown = no_cache.clone();
    let at = unknown
        .iter()
        .position(|a| a == TEAM_A)
        .expect("target argument");
    unknown[at] = "nobody@gcpfed-test.iam.gserviceaccount.com".into();
    let calls = refused(
        bed,
        dir.path(),
        &unknown,
        &[
            "Service account to impersonate not found",
            "gcloud iam service-accounts describe nobody@gcpfed-test.iam.gserviceaccount.com",
            "--impersonate-service-account",
        ],
    );
    assert_eq!(calls, 1, "NOT_FOUND was asked again");

    // Transient 503 and 429 are retried within --max-retries 3, then the token comes.
    bed.fail_iam(503, 1);
    bed.fail_iam(429, 1);
    bed.clear_iam_calls();
    let out = helper(bed, dir.path(), &no_cache);
    assert!((out.status == Some(0)), "{}", out.stderr);
    let statuses: Vec<Value> = bed
        .iam_calls()
        .iter()
        .map(|c| c["status"].clone())
        .collect();
    assert_eq!(statuses, vec![json!(503), json!(429), json!(200)]);

    // Bad flags fail before any call, naming the flag.
    let mut bad = no_cache.clone();
    bad.extend([
        "--delegate".into(),
        "projects/my-proj/serviceAccounts/x@y.com".into(),
    ]);
    let calls = refused(bed, dir.path(), &bad, &["--delegate", "`-` wildcard"]);
    assert_eq!(calls, 0);
}

#[test]
fn the_one_runner_many_teams_scenario_runs() {
    let Some(acc) = Acc::local_only("impersonation (scenario)", WHY_LOCAL) else {
        return;
    };
    let bed = acc.bed().expect("local bed");
    bed.grant(RUNNER_EMAIL, TEAM_A);
    let dir = support::repo_root().join("examples/scenarios/impersonation");
    let main_tf = std::fs::read_to_string(dir.join("main.tf")).expect("the scenario's main.tf");
    // Ephemeral resources: Terraform >= 1.10 only (OpenTofu 1.6 lacks them).
    let wd = Workdir::new(support::tf::Engine::Terraform, &main_tf, &bed.aws_env());
    wd.write_file(
        "terraform.tfvars",
        &format!(
            "aws_endpoint = {}\nmetadata_host = {}\niam_credentials_endpoint = {}\n",
            support::q(&bed.aws_endpoint),
            support::q(&bed.metadata_host),
            support::q(&bed.iam_credentials_endpoint)
        ),
    );
    bed.clear_calls();
    wd.apply().ok();
    // team_a_app was created by team-a's session, which the exchange opened as team-a.
    let calls = bed.calls();
    let exchange = calls
        .iter()
        .find(|c| c.action == "AssumeRoleWithWebIdentity" && c.status == 200)
        .expect("an exchange");
    assert_eq!(exchange.session_name.as_deref(), Some(TEAM_A_ID));
    let app = calls
        .iter()
        .find(|c| c.action == "CreateRole" && c.role_name.as_deref() == Some("gcpfed-team-a-app"))
        .expect("CreateRole of the team's app role");
    assert!(
        app.access_key_id
            .as_deref()
            .is_some_and(|k| k.starts_with("ASIA")),
        "{app:?}"
    );
    wd.destroy().ok();
}
