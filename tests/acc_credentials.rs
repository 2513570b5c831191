//! Acceptance tests of the `gcpfed_credentials` data source (issue 4) under real Terraform and
//! OpenTofu on the strict local test bed: the exchange works (the credentials call
//! GetCallerIdentity as `assumed-role/<role>/<session>`, a second provider alias configured with
//! them manages a role through IAM), denials name the claims and the mismatched trust-policy key,
//! transient faults are absorbed, unreachable or slow metadata servers get a clear message, no
//! secret and no token shows in any output or TRACE log, and in state they sit only in
//! sensitive attributes.
//!
//! Roles the exchange assumes are created through the target's IAM (out of band) with a trust
//! policy written out here, so that these tests do not depend on `gcpfed_role`; the quickstart
//! test uses `gcpfed_role` in HCL as users would.
//!
//! Under `GCPFED_ACC=aws` (see `support::target`) the basic test
//! (`credentials_work_and_no_secret_or_token_leaks`) runs against the sandbox account with the
//! Google identity of the environment (a given token or a Google Cloud runner's metadata server);
//! the role it creates is deleted when its `Acc` is dropped. The other tests need the bed's
//! emulated service accounts, minted tokens, fault injection or call recorder, and print why they
//! are skipped there.

mod support;

use std::path::Path;

use serde_json::Value;
use support::bed::{
    block_on, closed_port_host, TestBed, TokenSpec, ACCOUNT_ID, DEPLOYER_EMAIL, DEPLOYER_ID,
    OUTSIDER_EMAIL, OUTSIDER_ID, REGION, RUNNER_EMAIL, RUNNER_ID,
};
use support::target::{federation_plan, Acc, TokenSource};
use support::tf::{for_each_engine, resource_values_in, Workdir, REQUIRED_PROVIDERS};

const DS: &str = "data.gcpfed_credentials.c";
const AUDIENCE: &str = "sts.amazonaws.com/gcpfedacc-credentials";

/// The provider block for the bed; `metadata_host` None leaves the argument out; `extra` lines
/// go inside the block.
fn provider(bed: &TestBed, metadata_host: Option<&str>, extra: &str) -> String {
    let metadata = metadata_host
        .map(|h| format!("  metadata_host = {}\n", support::q(h)))
        .unwrap_or_default();
    format!(
        "provider \"gcpfed\" {{\n  region     = \"{REGION}\"\n  access_key = \"testing\"\n  secret_key = \"testing\"\n{metadata}{extra}  endpoints {{\n    iam = {aws}\n    sts = {aws}\n  }}\n}}\n",
        aws = support::q(&bed.aws_endpoint)
    )
}

/// A configuration with the bed's provider block and `data "gcpfed_credentials" "c"` with
/// `args` (HCL lines).
fn config(bed: &TestBed, args: &str) -> String {
    config_with(&provider(bed, Some(&bed.metadata_host), ""), args)
}

fn config_with(provider_block: &str, args: &str) -> String {
    format!(
        "{REQUIRED_PROVIDERS}\n{provider_block}\ndata \"gcpfed_credentials\" \"c\" {{\n{args}}}\n"
    )
}

fn args(role_arn: &str, audience: &str, more: &str) -> String {
    format!(
        "  role_arn = {}\n  audience = {}\n{more}",
        support::q(role_arn),
        support::q(audience)
    )
}

fn env() -> Vec<(String, String)> {
    vec![("AWS_EC2_METADATA_DISABLED".into(), "true".into())]
}

fn data_values(wd: &Workdir) -> (Value, Value) {
    let state = wd.show_json();
    let resource = state
        .pointer("/values/root_module/resources")
        .and_then(Value::as_array)
        .and_then(|rs| {
            rs.iter()
                .find(|r| r.get("address").and_then(Value::as_str) == Some(DS))
        })
        .cloned()
        .unwrap_or_else(|| panic!("[{}] {DS} not in state: {state}", wd.engine()));
    (
        resource["values"].clone(),
        resource
            .get("sensitive_values")
            .cloned()
            .unwrap_or(Value::Null),
    )
}

fn s<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("{key} is not a string in {v}"))
}

/// GetCallerIdentity at the target's STS (the bed's gate, or the sandbox region's STS) with the
/// given session credentials; returns the caller ARN.
fn caller_arn(acc: &Acc, key: &str, secret: &str, token: &str) -> String {
    let out = block_on(
        acc.sts_with(key, secret, token)
            .get_caller_identity()
            .send(),
    )
    .unwrap_or_else(|e| panic!("GetCallerIdentity: {e:?}"));
    out.arn().expect("caller ARN").to_owned()
}

/// The Google identity the basic test exchanges, and what the data source must report for it.
struct Identity {
    audience: String,
    /// The unique IDs the role trusts.
    trusted: Vec<String>,
    /// The token's `sub` (the default session name).
    subject: String,
    /// The `email` claim, when known.
    email: Option<String>,
    /// Extra lines of the data source (a given token), extra HCL and engine variables.
    data_args: String,
    extra_hcl: String,
    env: Vec<(String, String)>,
}

impl Identity {
    /// The bed's `default` runner account (the role also trusts the deployer); on the sandbox
    /// the environment's identity, or `None` after printing why `test` is skipped.
    fn of(acc: &Acc, test: &str) -> Option<Identity> {
        if acc.bed().is_some() {
            return Some(Identity {
                audience: AUDIENCE.into(),
                trusted: vec![RUNNER_ID.into(), DEPLOYER_ID.into()],
                subject: RUNNER_ID.into(),
                email: Some(RUNNER_EMAIL.into()),
                data_args: String::new(),
                extra_hcl: String::new(),
                env: Vec::new(),
            });
        }
        let fed = acc.federation(test, AUDIENCE)?;
        Some(Identity {
            audience: fed.audience,
            trusted: vec![fed.unique_id.clone()],
            subject: fed.unique_id,
            email: fed.email,
            data_args: fed.data_args,
            extra_hcl: fed.extra_hcl,
            env: fed.env,
        })
    }

    /// The configuration of the basic test: the bed's as always, or the sandbox's.
    fn config(&self, acc: &Acc, arn: &str, more: &str) -> String {
        match acc.bed() {
            Some(bed) => config(bed, &args(arn, &self.audience, more)),
            None => {
                config_with(
                    &acc.provider_hcl(),
                    &args(arn, &self.audience, &format!("{}{more}", self.data_args)),
                ) + &self.extra_hcl
            }
        }
    }
}

fn file_text(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// Seconds since the epoch of `YYYY-MM-DDTHH:MM:SSZ` (asserting exactly that shape).
fn parse_utc(text: &str) -> i64 {
    let b = text.as_bytes();
    let shape_ok = b.len() == 20
        && b[4] == b'-'
        && b[7] == b'-'
        && b[10] == b'T'
        && b[13] == b':'
        && b[16] == b':'
        && b[19] == b'Z';
    assert!(shape_ok, "{text:?} is not RFC 3339 UTC with Z");
    let n = |r: std::ops::Range<usize>| -> i64 { text[r].parse().expect("digits") };
    let (y, m, d) = (n(0..4), n(5..7), n(8..10));
    // days from civil (Howard Hinnant's algorithm)
    let y2 = if m <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146097 + doe - 719468;
    days * 86400 + n(11..13) * 3600 + n(14..16) * 60 + n(17..19)
}

fn exchange_calls(bed: &TestBed) -> Vec<support::bed::RecordedCall> {
    bed.calls()
        .into_iter()
        .filter(|c| c.action == "AssumeRoleWithWebIdentity")
        .collect()
}

// ---------------------------------------------------------------------------------------------

#[test]
fn credentials_work_and_no_secret_or_token_leaks() {
    let acc = Acc::start();
    let Some(who) = Identity::of(&acc, "credentials_work_and_no_secret_or_token_leaks") else {
        return;
    };
    let account = acc.account_id();
    let subject = who.subject.as_str();
    for_each_engine(|engine| {
        let trusted: Vec<&str> = who.trusted.iter().map(String::as_str).collect();
        let (role, arn) = acc.create_trusted_role("creds", &who.audience, &trusted);
        let engine_env = [acc.env(), who.env.clone()].concat();
        let mut wd = Workdir::new(engine, &who.config(&acc, &arn, ""), &engine_env);
        let tf_log = wd.path().join("tf-trace.log");
        wd.set_env("TF_LOG", "TRACE");
        wd.set_env("TF_LOG_PATH", &tf_log.display().to_string());
        // tf-provider's own TRACE log (AWS SDK and hyper included): sent to the provider's
        // stderr, which the engines copy into TF_LOG_PATH. A file would be truncated by each of
        // the several provider processes a command starts.
        wd.set_env("PLUGIN_LOG_FILE", "/dev/stderr");
        if let Some(bed) = acc.bed() {
            bed.clear_calls();
        }

        let plan = wd.plan();
        plan.ok();
        let plan_log = file_text(&tf_log);
        let apply = wd.apply();
        apply.ok();
        let apply_log = file_text(&tf_log);
        // The log really holds the provider's TRACE output, the AWS SDK's included.
        for needle in [
            "terraform-provider-gcpfed",
            "aws_smithy_runtime",
            "AssumeRoleWithWebIdentity",
        ] {
            assert!(
                apply_log.contains(needle),
                "[{engine}] the TRACE log ({} bytes) lacks {needle}",
                apply_log.len()
            );
        }

        // Each plan and apply ran the exchange once, unsigned, for this role and session (the
        // bed's gate records calls; the sandbox's STS does not show them to us).
        if let Some(bed) = acc.bed() {
            let calls = exchange_calls(bed);
            assert_eq!(calls.len(), 2, "[{engine}] {calls:?}");
            for c in &calls {
                assert_eq!(c.status, 200, "[{engine}] {c:?}");
                assert_eq!(
                    c.access_key_id, None,
                    "[{engine}] the exchange was signed: {c:?}"
                );
                assert_eq!(c.role_arn.as_deref(), Some(arn.as_str()));
                assert_eq!(c.session_name.as_deref(), Some(subject));
                assert_eq!(c.duration_seconds.as_deref(), Some("3600"));
            }
        }

        let (v, sensitive) = data_values(&wd);
        let key = s(&v, "access_key_id").to_owned();
        let secret = s(&v, "secret_access_key").to_owned();
        let token = s(&v, "session_token").to_owned();
        assert!(key.starts_with("ASIA"), "[{engine}] access_key_id {key}");
        assert_eq!(
            s(&v, "assumed_role_arn"),
            format!("arn:aws:sts::{account}:assumed-role/{role}/{subject}")
        );
        assert!(
            s(&v, "assumed_role_id").ends_with(&format!(":{subject}")),
            "[{engine}] {}",
            s(&v, "assumed_role_id")
        );
        assert_eq!(s(&v, "subject"), subject);
        if let Some(email) = &who.email {
            assert_eq!(s(&v, "email"), email);
        }
        assert_eq!(s(&v, "service_account"), "default");
        assert_eq!(s(&v, "session_name"), subject);
        assert_eq!(v["duration_seconds"], Value::from(3600));
        let expires = parse_utc(s(&v, "expiration"));
        let left = expires - support::now();
        assert!(
            (3300..=3700).contains(&left),
            "[{engine}] expiration {} is {left} s away",
            s(&v, "expiration")
        );
        let process: Value = serde_json::from_str(s(&v, "credential_process_json"))
            .expect("credential_process_json is JSON");
        assert_eq!(
            process,
            serde_json::json!({"Version": 1, "AccessKeyId": key, "SecretAccessKey": secret,
                "SessionToken": token, "Expiration": s(&v, "expiration")}),
            "[{engine}]"
        );

        // The credentials work against the target's AWS.
        assert_eq!(
            caller_arn(&acc, &key, &secret, &token),
            format!("arn:aws:sts::{account}:assumed-role/{role}/{subject}"),
            "[{engine}]"
        );

        // In state the secrets sit only in sensitive attributes.
        let marked: Vec<&str> = [
            "secret_access_key",
            "session_token",
            "credential_process_json",
        ]
        .into_iter()
        .filter(|k| sensitive.get(*k) == Some(&Value::Bool(true)))
        .collect();
        assert_eq!(
            marked,
            [
                "secret_access_key",
                "session_token",
                "credential_process_json"
            ],
            "[{engine}] sensitive_values: {sensitive}"
        );
        for (attr, value) in v.as_object().expect("values object") {
            let text = value.to_string();
            if text.contains(&secret) || text.contains(&token) {
                assert_eq!(
                    sensitive.get(attr),
                    Some(&Value::Bool(true)),
                    "[{engine}] {attr} holds a secret but is not sensitive"
                );
            }
        }

        // Nothing secret in the command output nor in the TRACE logs.
        let mut texts = support::run_texts("plan", &plan);
        texts.extend(support::run_texts("apply", &apply));
        texts.push(("TF_LOG of plan".into(), plan_log));
        texts.push(("TF_LOG of apply".into(), apply_log));
        let mut secrets = vec![
            ("secret access key", secret.as_str()),
            ("session token", &token),
        ];
        // A token given on the sandbox travels through TF_VAR_: it must not show either.
        secrets.extend(
            who.env
                .iter()
                .map(|(_, given)| ("given web identity token", given.as_str())),
        );
        support::assert_no_leak(engine, &texts, &secrets);
        assert!(
            apply.stdout.contains("Apply complete"),
            "[{engine}] {}",
            apply.describe("apply output")
        );

        // Explicit session name, a shorter duration, and on the bed another service account
        // (the sandbox has one identity).
        let session = "  session_name = \"deploy@ci.run-42\"\n  duration_seconds = 900\n";
        let (more, subject2, email2) = match acc.bed() {
            Some(_) => (
                format!(
                    "  service_account = {}\n{session}",
                    support::q(DEPLOYER_EMAIL)
                ),
                DEPLOYER_ID,
                Some(DEPLOYER_EMAIL),
            ),
            None => (session.to_string(), subject, who.email.as_deref()),
        };
        wd.write(&who.config(&acc, &arn, &more));
        wd.apply().ok();
        let (v, _) = data_values(&wd);
        assert_eq!(s(&v, "subject"), subject2);
        if let Some(email) = email2 {
            assert_eq!(s(&v, "email"), email);
        }
        assert_eq!(s(&v, "session_name"), "deploy@ci.run-42");
        let left = parse_utc(s(&v, "expiration")) - support::now();
        assert!((800..=1000).contains(&left), "[{engine}] {left}");
        assert_eq!(
            caller_arn(
                &acc,
                s(&v, "access_key_id"),
                s(&v, "secret_access_key"),
                s(&v, "session_token")
            ),
            format!("arn:aws:sts::{account}:assumed-role/{role}/deploy@ci.run-42")
        );
        if let Some(bed) = acc.bed() {
            let last = exchange_calls(bed).pop().expect("a call");
            assert_eq!(last.duration_seconds.as_deref(), Some("900"));
        }
    });
}

#[test]
fn web_identity_token_replaces_the_metadata_server() {
    let Some(acc) = Acc::local_only(
        "web_identity_token_replaces_the_metadata_server",
        "it mints tokens (valid and expired) with the local bed's signing key",
    ) else {
        return;
    };
    let bed = acc.bed().expect("Acc::local_only gives the local bed");
    for_each_engine(|engine| {
        let (role, arn) = acc.create_trusted_role("given", AUDIENCE, &[RUNNER_ID]);
        let token = bed.mint_token(&TokenSpec::new(RUNNER_EMAIL, AUDIENCE));
        // The metadata server is unreachable: only the given token can make this work.
        let provider_block = provider(bed, Some(&closed_port_host()), "");
        let main_tf = config_with(
            &provider_block,
            &args(
                &arn,
                AUDIENCE,
                "  web_identity_token = var.token\n  service_account = \"default\"\n",
            ),
        ) + "variable \"token\" {\n  type      = string\n  sensitive = true\n}\n";
        let mut wd = Workdir::new(engine, &main_tf, &env());
        wd.set_env("TF_VAR_token", &token);
        let tf_log = wd.path().join("tf-trace.log");
        wd.set_env("TF_LOG", "TRACE");
        wd.set_env("TF_LOG_PATH", &tf_log.display().to_string());
        let apply = wd.apply();
        apply.ok();
        let (v, sensitive) = data_values(&wd);
        assert_eq!(
            s(&v, "assumed_role_arn"),
            format!("arn:aws:sts::{ACCOUNT_ID}:assumed-role/{role}/{RUNNER_ID}")
        );
        assert_eq!(
            sensitive.get("web_identity_token"),
            Some(&Value::Bool(true))
        );
        let mut texts = support::run_texts("apply", &apply);
        texts.push(("TF_LOG of apply".into(), file_text(&tf_log)));
        support::assert_no_leak(
            engine,
            &texts,
            &[
                ("web identity token", &token),
                ("secret access key", s(&v, "secret_access_key")),
                ("session token", s(&v, "session_token")),
            ],
        );

        // An expired token is refused by STS, and the message says so without printing it.
        let expired = bed.mint_token(&TokenSpec {
            expires_in: -120,
            ..TokenSpec::new(RUNNER_EMAIL, AUDIENCE)
        });
        wd.set_env("TF_VAR_token", &expired);
        let plan = wd.plan();
        plan.fails()
            .assert_contains(&["Expired ID token", "fetch a fresh one"]);
        support::assert_no_leak(
            engine,
            &support::run_texts("plan", &plan),
            &[("expired token", &expired)],
        );
    });
}

#[test]
fn denials_print_the_claims_and_name_the_mismatched_key() {
    let Some(acc) = Acc::local_only(
        "denials_print_the_claims_and_name_the_mismatched_key",
        "it needs the bed's emulated foreign service account and strict STS gate",
    ) else {
        return;
    };
    let bed = acc.bed().expect("Acc::local_only gives the local bed");
    for_each_engine(|engine| {
        let (_, arn) = acc.create_trusted_role("deny", AUDIENCE, &[RUNNER_ID]);

        // Wrong audience: the token's aud is compared with accounts.google.com:oaud.
        let wd = Workdir::new(
            engine,
            &config(bed, &args(&arn, "some-other-audience", "")),
            &env(),
        );
        let run = wd.plan();
        run.fails().assert_contains(&[
            "STS denied AssumeRoleWithWebIdentity",
            "Not authorized to perform sts:AssumeRoleWithWebIdentity",
            &format!("accounts.google.com:aud is compared with the token's azp = \"{RUNNER_ID}\""),
            "accounts.google.com:oaud is compared with the token's aud = \"some-other-audience\"",
            &format!("accounts.google.com:sub is compared with the token's sub = \"{RUNNER_ID}\""),
            &format!(
                "Mismatch: accounts.google.com:oaud allows \"{AUDIENCE}\" but the token's aud is \"some-other-audience\""
            ),
        ]);
        assert!(
            !run.combined_flat()
                .contains("Mismatch: accounts.google.com:sub"),
            "{}",
            run.describe("only oaud differs")
        );
        support::assert_no_leak(engine, &support::run_texts("plan", &run), &[]);

        // A service account of another project: azp and sub differ.
        let wd = Workdir::new(
            engine,
            &config(
                bed,
                &args(
                    &arn,
                    AUDIENCE,
                    &format!("  service_account = {}\n", support::q(OUTSIDER_EMAIL)),
                ),
            ),
            &env(),
        );
        let run = wd.plan();
        run.fails().assert_contains(&[
            "STS denied AssumeRoleWithWebIdentity",
            &format!("accounts.google.com:aud is compared with the token's azp = \"{OUTSIDER_ID}\""),
            &format!("accounts.google.com:sub is compared with the token's sub = \"{OUTSIDER_ID}\""),
            &format!(
                "Mismatch: accounts.google.com:aud allows \"{RUNNER_ID}\" but the token's azp is \"{OUTSIDER_ID}\""
            ),
            &format!(
                "Mismatch: accounts.google.com:sub allows \"{RUNNER_ID}\" but the token's sub is \"{OUTSIDER_ID}\""
            ),
        ]);
        assert!(!run
            .combined_flat()
            .contains("Mismatch: accounts.google.com:oaud"));

        // A service account this machine does not have: the metadata server's 404, not STS.
        bed.clear_calls();
        let wd = Workdir::new(
            engine,
            &config(
                bed,
                &args(
                    &arn,
                    AUDIENCE,
                    "  service_account = \"nobody@gcpfed-test.iam.gserviceaccount.com\"\n",
                ),
            ),
            &env(),
        );
        wd.plan().fails().assert_contains(&[
            "Unknown service account",
            "does not know the service account \"nobody@gcpfed-test.iam.gserviceaccount.com\"",
            "Use `default`",
        ]);
        assert!(exchange_calls(bed).is_empty(), "[{engine}] STS was called");

        // A duration above the role's maximum (3600).
        let wd = Workdir::new(
            engine,
            &config(bed, &args(&arn, AUDIENCE, "  duration_seconds = 7200\n")),
            &env(),
        );
        wd.plan().fails().assert_contains(&[
            "Session duration above the role's maximum",
            "duration_seconds = 7200 is above the role's maximum session duration of 3600 s",
            "max_session_duration",
        ]);
    });
}

#[test]
fn transient_faults_are_retried_until_success() {
    let Some(acc) = Acc::local_only(
        "transient_faults_are_retried_until_success",
        "it injects metadata and STS faults at the local bed",
    ) else {
        return;
    };
    let bed = acc.bed().expect("Acc::local_only gives the local bed");
    for_each_engine(|engine| {
        let (_, arn) = acc.create_trusted_role("faults", AUDIENCE, &[RUNNER_ID]);
        let wd = Workdir::new(engine, &config(bed, &args(&arn, AUDIENCE, "")), &env());

        // Metadata server: HTTP 500 twice, then the token.
        bed.metadata_fail_status(500, 2);
        wd.plan().ok();
        // Both faults were consumed by the provider's requests.
        let probe = bed.metadata_get(
            &support::bed::identity_path("default", AUDIENCE),
            &[("Metadata-Flavor", "Google")],
        );
        assert_eq!(probe.status, 200, "[{engine}] a fault was left unused");

        for (code, times) in [
            ("Throttling", 3),
            ("IDPCommunicationError", 2),
            ("InvalidIdentityToken", 1),
        ] {
            bed.clear_calls();
            bed.fail_sts(code, times);
            let run = wd.plan();
            run.ok();
            let calls = exchange_calls(bed);
            let injected: Vec<_> = calls.iter().filter(|c| c.injected).collect();
            assert_eq!(
                injected.len(),
                times as usize,
                "[{engine}] {code}: {calls:?}"
            );
            assert!(
                injected
                    .iter()
                    .all(|c| c.error_code.as_deref() == Some(code)),
                "[{engine}] {calls:?}"
            );
            assert_eq!(
                calls.len(),
                times as usize + 1,
                "[{engine}] {code}: {calls:?}"
            );
            assert_eq!(calls.last().map(|c| c.status), Some(200));
        }

        // More throttling than the budget: a clear error naming max_retries.
        let tight = config_with(
            &provider(bed, Some(&bed.metadata_host), "  max_retries = 1\n"),
            &args(&arn, AUDIENCE, ""),
        );
        let wd = Workdir::new(engine, &tight, &env());
        bed.clear_calls();
        // Exactly the two attempts' worth, so that no fault is left for the next engine.
        bed.fail_sts("Throttling", 2);
        wd.plan().fails().assert_contains(&[
            "STS unavailable",
            "after 2 attempt(s)",
            "Throttling: Rate exceeded",
            "max_retries",
        ]);
        assert_eq!(exchange_calls(bed).len(), 2, "[{engine}]");
    });
}

#[test]
fn unreachable_or_slow_metadata_servers_get_a_clear_error() {
    let Some(acc) = Acc::local_only(
        "unreachable_or_slow_metadata_servers_get_a_clear_error",
        "it delays and closes the local bed's metadata emulator",
    ) else {
        return;
    };
    let bed = acc.bed().expect("Acc::local_only gives the local bed");
    for_each_engine(|engine| {
        let (_, arn) = acc.create_trusted_role("offgcp", AUDIENCE, &[RUNNER_ID]);

        // Nothing listens on the metadata port: off Google Cloud.
        let closed = closed_port_host();
        let wd = Workdir::new(
            engine,
            &config_with(
                &provider(bed, Some(&closed), "  max_retries = 1\n"),
                &args(&arn, AUDIENCE, ""),
            ),
            &env(),
        );
        let run = wd.plan();
        run.fails().assert_contains(&[
            "GCE metadata server unreachable",
            &format!("The GCE metadata server at {closed} could not be reached"),
            "not on Google Cloud",
            "metadata_host",
            "GCE_METADATA_HOST",
            "web_identity_token",
        ]);

        // GCE_METADATA_HOST is honoured when the argument is left out.
        let mut wd = Workdir::new(
            engine,
            &config_with(&provider(bed, None, ""), &args(&arn, AUDIENCE, "")),
            &env(),
        );
        wd.set_env("GCE_METADATA_HOST", &bed.metadata_host);
        wd.plan().ok();

        // Slower than the 5 s timeout on every attempt: an error within timeout × attempts.
        let wd = Workdir::new(
            engine,
            &config_with(
                &provider(bed, Some(&bed.metadata_host), "  max_retries = 1\n"),
                &args(&arn, AUDIENCE, ""),
            ),
            &env(),
        );
        // The message counts the attempts and names the per-attempt timeout; how long the run
        // takes is `make bench`'s concern. The emulator serves each request on its own thread
        // and the two delays are used up by these two attempts, so the next engine's plans
        // are answered at once while the delayed answers still sleep.
        bed.metadata_delay(8000, 2);
        let run = wd.plan();
        run.fails().assert_contains(&[
            "GCE metadata server unreachable",
            "no answer within the 5 s timeout after 2 attempt(s)",
            "metadata_host",
        ]);
    });
}

#[test]
fn invalid_arguments_fail_at_plan_with_their_path() {
    let Some(acc) = Acc::local_only(
        "invalid_arguments_fail_at_plan_with_their_path",
        "it asserts through the local bed's call recorder that STS was never called",
    ) else {
        return;
    };
    let bed = acc.bed().expect("Acc::local_only gives the local bed");
    let role = format!("arn:aws:iam::{ACCOUNT_ID}:role/not-called");
    let cases: Vec<(&str, String, Vec<&str>)> = vec![
        (
            "role_arn",
            args("arn:aws:sts::123456789012:assumed-role/r/s", AUDIENCE, ""),
            vec!["Invalid role ARN", "gcpfed_role.x.arn"],
        ),
        (
            "duration_seconds",
            args(&role, AUDIENCE, "  duration_seconds = 600\n"),
            vec!["Invalid session duration", "900"],
        ),
        (
            "session_name",
            args(&role, AUDIENCE, "  session_name = \"has spaces/slash\"\n"),
            vec!["Invalid session name", "[\\w+=,.@-]"],
        ),
        (
            "policy",
            args(&role, AUDIENCE, "  policy = \"{not json\"\n"),
            vec!["Invalid policy document", "not valid JSON"],
        ),
        (
            "policy_arns",
            args(
                &role,
                AUDIENCE,
                &format!(
                    "  policy_arns = [{}]\n",
                    (0..11)
                        .map(|i| format!("\"arn:aws:iam::aws:policy/P{i}\""))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ),
            vec!["Too many session policies", "at most 10"],
        ),
        (
            "service_account",
            args(&role, AUDIENCE, "  service_account = \"ci-runner\"\n"),
            vec!["Invalid service account", "email"],
        ),
    ];
    for_each_engine(|engine| {
        bed.clear_calls();
        for (attr, body, phrases) in &cases {
            let main_tf = config(bed, body);
            let run = Workdir::new(engine, &main_tf, &env()).plan();
            support::assert_attribute_error(
                &run,
                &main_tf,
                DS,
                "data \"gcpfed_credentials\" \"c\"",
                attr,
                phrases,
            );
        }
        assert!(
            exchange_calls(bed).is_empty(),
            "[{engine}] an invalid configuration reached STS"
        );
    });
}

#[test]
fn quickstart_role_credentials_and_an_aliased_provider() {
    let Some(acc) = Acc::local_only(
        "quickstart_role_credentials_and_an_aliased_provider",
        "it checks through the local bed's call recorder which key signed each IAM call",
    ) else {
        return;
    };
    let bed = acc.bed().expect("Acc::local_only gives the local bed");
    for_each_engine(|engine| {
        let name = acc.unique_name("quick");
        let via_alias = acc.unique_name("quick-alias");
        let aws = support::q(&bed.aws_endpoint);
        let metadata = support::q(&bed.metadata_host);
        let main_tf = format!(
            r#"{REQUIRED_PROVIDERS}
{provider}
resource "gcpfed_role" "ci" {{
  name                       = {name}
  audience                   = {aud}
  service_account_unique_ids = [{id}]
}}

data "gcpfed_credentials" "c" {{
  role_arn = gcpfed_role.ci.arn
  audience = gcpfed_role.ci.audience
}}

provider "gcpfed" {{
  alias         = "assumed"
  region        = "{REGION}"
  access_key    = data.gcpfed_credentials.c.access_key_id
  secret_key    = data.gcpfed_credentials.c.secret_access_key
  token         = data.gcpfed_credentials.c.session_token
  metadata_host = {metadata}
  endpoints {{
    iam = {aws}
    sts = {aws}
  }}
}}

resource "gcpfed_role" "made_with_assumed_credentials" {{
  provider                   = gcpfed.assumed
  name                       = {via_alias}
  audience                   = {aud}
  service_account_unique_ids = [{id}]
}}
"#,
            provider = provider(bed, Some(&bed.metadata_host), ""),
            name = support::q(&name),
            via_alias = support::q(&via_alias),
            aud = support::q(AUDIENCE),
            id = support::q(RUNNER_ID),
        );
        let wd = Workdir::new(engine, &main_tf, &env());
        bed.clear_calls();
        let apply = wd.apply();
        apply.ok();
        let (v, _) = data_values(&wd);
        let key = s(&v, "access_key_id").to_owned();
        assert_eq!(
            s(&v, "assumed_role_arn"),
            format!("arn:aws:sts::{ACCOUNT_ID}:assumed-role/{name}/{RUNNER_ID}")
        );
        assert_eq!(
            caller_arn(
                &acc,
                &key,
                s(&v, "secret_access_key"),
                s(&v, "session_token")
            ),
            format!("arn:aws:sts::{ACCOUNT_ID}:assumed-role/{name}/{RUNNER_ID}")
        );
        // The aliased provider used the exchanged credentials for its IAM calls.
        let calls = bed.calls();
        let by_key: Vec<&str> = calls
            .iter()
            .filter(|c| c.access_key_id.as_deref() == Some(key.as_str()))
            .map(|c| c.action.as_str())
            .collect();
        assert!(
            by_key.contains(&"CreateRole"),
            "[{engine}] calls signed with the exchanged key: {by_key:?}"
        );
        let state = wd.show_json();
        let alias_role = resource_values_in(&state, "gcpfed_role.made_with_assumed_credentials")
            .unwrap_or_else(|| panic!("[{engine}] alias role not in state"));
        assert_eq!(alias_role["name"], Value::from(via_alias.clone()));

        // A second plan exchanges again, reads the alias's role through IAM with the fresh
        // session credentials, and changes nothing.
        bed.clear_calls();
        let second = wd.plan_detailed();
        assert_eq!(second.status, 0, "{}", second.describe("second plan"));
        let calls = bed.calls();
        assert_eq!(exchange_calls(bed).len(), 1, "[{engine}] {calls:?}");
        let session_reads: Vec<&str> = calls
            .iter()
            .filter(|c| c.action == "GetRole")
            .filter_map(|c| c.access_key_id.as_deref())
            .filter(|k| k.starts_with("ASIA"))
            .collect();
        assert!(
            !session_reads.is_empty(),
            "[{engine}] no GetRole signed with session credentials: {calls:?}"
        );
        support::assert_no_leak(
            engine,
            &[
                support::run_texts("apply", &apply),
                support::run_texts("second plan", &second),
            ]
            .concat(),
            &[
                ("secret access key", s(&v, "secret_access_key")),
                ("session token", s(&v, "session_token")),
            ],
        );
        wd.destroy().ok();
    });
}

// ---------- the sandbox's Google identity, as a pure function of the environment ----------

fn env_of(pairs: &[(&str, &str)]) -> std::collections::BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// An unsigned JWT-shaped string with these claims (`padded`: base64 with `=`).
fn jwt_with(claims: &Value, padded: bool) -> String {
    use base64::Engine as _;
    let engine = if padded {
        base64::engine::general_purpose::URL_SAFE
    } else {
        base64::engine::general_purpose::URL_SAFE_NO_PAD
    };
    format!(
        "{}.{}.c2lnbmF0dXJl",
        engine.encode(br#"{"alg":"RS256","typ":"JWT"}"#),
        engine.encode(claims.to_string())
    )
}

#[test]
fn sandbox_identity_without_a_token_uses_the_runners_metadata_server() {
    let plan = federation_plan(&env_of(&[]), AUDIENCE).expect("a runner plan");
    assert_eq!(
        plan.source,
        TokenSource::Metadata {
            host: "metadata.google.internal".into()
        }
    );
    assert_eq!(plan.audience, AUDIENCE);
    assert_eq!(plan.unique_id, None, "learned from a metadata token");
    let fed = plan.federation("104857600000000000123".into());
    assert_eq!(fed.unique_id, "104857600000000000123");
    assert_eq!((fed.data_args.as_str(), fed.extra_hcl.as_str()), ("", ""));
    assert!(fed.env.is_empty());

    let plan = federation_plan(
        &env_of(&[
            ("GCE_METADATA_HOST", "169.254.169.254:80"),
            ("GCPFED_ACC_SA_UNIQUE_ID", " 104857600000000000123 "),
            ("GCPFED_ACC_AUDIENCE", "sts.amazonaws.com/sandbox"),
        ]),
        AUDIENCE,
    )
    .expect("a runner plan");
    assert_eq!(
        plan.source,
        TokenSource::Metadata {
            host: "169.254.169.254:80".into()
        }
    );
    assert_eq!(plan.audience, "sts.amazonaws.com/sandbox");
    assert_eq!(plan.unique_id.as_deref(), Some("104857600000000000123"));

    let err = federation_plan(
        &env_of(&[("GCPFED_ACC_SA_UNIQUE_ID", RUNNER_EMAIL)]),
        AUDIENCE,
    )
    .expect_err("an email is not a unique ID");
    assert!(err.contains("numeric unique ID"), "{err}");
}

#[test]
fn sandbox_identity_with_a_given_token_takes_its_claims_and_never_shows_it() {
    let claims = serde_json::json!({"sub": "104857600000000000777", "aud": "sts.amazonaws.com/given",
        "azp": "104857600000000000777", "email": "ci@sandbox.iam.gserviceaccount.com"});
    for padded in [false, true] {
        let token = jwt_with(&claims, padded);
        let plan = federation_plan(
            &env_of(&[("GCPFED_ACC_WEB_IDENTITY_TOKEN", &token)]),
            AUDIENCE,
        )
        .expect("a token plan");
        assert!(matches!(&plan.source, TokenSource::Given(t) if t.0 == token));
        assert_eq!(plan.audience, "sts.amazonaws.com/given");
        assert_eq!(plan.unique_id.as_deref(), Some("104857600000000000777"));
        assert_eq!(
            plan.email.as_deref(),
            Some("ci@sandbox.iam.gserviceaccount.com")
        );
        assert!(
            !format!("{plan:?}").contains(&token),
            "Debug shows the token"
        );
        let fed = plan.federation("104857600000000000777".into());
        assert!(
            fed.data_args.contains("web_identity_token = var.") && !fed.data_args.contains(&token),
            "{}",
            fed.data_args
        );
        assert!(
            fed.extra_hcl.contains("sensitive = true"),
            "{}",
            fed.extra_hcl
        );
        assert_eq!(fed.env.len(), 1);
        assert!(fed.env[0].0.starts_with("TF_VAR_") && fed.env[0].1 == token);
    }

    // The variables may repeat the claims but not contradict them.
    let token = jwt_with(&claims, false);
    let same = federation_plan(
        &env_of(&[
            ("GCPFED_ACC_WEB_IDENTITY_TOKEN", &token),
            ("GCPFED_ACC_SA_UNIQUE_ID", "104857600000000000777"),
            ("GCPFED_ACC_AUDIENCE", "sts.amazonaws.com/given"),
        ]),
        AUDIENCE,
    );
    assert!(same.is_ok(), "{same:?}");
    for (var, value, phrase) in [
        (
            "GCPFED_ACC_SA_UNIQUE_ID",
            "104857600000000000001",
            "is of sub",
        ),
        ("GCPFED_ACC_AUDIENCE", "other", "is for audience"),
    ] {
        let err = federation_plan(
            &env_of(&[("GCPFED_ACC_WEB_IDENTITY_TOKEN", &token), (var, value)]),
            AUDIENCE,
        )
        .expect_err("a contradiction");
        assert!(err.contains(phrase) && err.contains(var), "{err}");
        assert!(!err.contains(&token), "the error shows the token");
    }

    // Claims missing from the token must come from the variables.
    let bare = jwt_with(
        &serde_json::json!({"iss": "https://accounts.google.com"}),
        false,
    );
    let err = federation_plan(
        &env_of(&[("GCPFED_ACC_WEB_IDENTITY_TOKEN", &bare)]),
        AUDIENCE,
    )
    .expect_err("no sub");
    assert!(err.contains("GCPFED_ACC_SA_UNIQUE_ID"), "{err}");
    let plan = federation_plan(
        &env_of(&[
            ("GCPFED_ACC_WEB_IDENTITY_TOKEN", &bare),
            ("GCPFED_ACC_SA_UNIQUE_ID", "104857600000000000777"),
            ("GCPFED_ACC_AUDIENCE", "sts.amazonaws.com/given"),
        ]),
        AUDIENCE,
    )
    .expect("claims from the variables");
    assert_eq!(plan.email, None);

    for junk in [
        "not-a-jwt",
        "a.b.c",
        "eyJhbGciOiJSUzI1NiJ9.bm90IGpzb24.c2ln",
    ] {
        let err = federation_plan(
            &env_of(&[("GCPFED_ACC_WEB_IDENTITY_TOKEN", junk)]),
            AUDIENCE,
        )
        .expect_err("not a JWT");
        assert!(err.contains("is not a JWT"), "{err}");
    }
}
