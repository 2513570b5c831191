//! Issue 12, "IAM writes never orphan, calls never hang": attacks from outside, with real
//! Terraform (1.15), the real `credential-process` binary, the local bed and misbehaving servers
//! of `support::hardening_io`.
//!
//! - A CreateRole whose answer is lost (the bed's `drop_answer` fault: moto creates the role,
//!   then the gate resets the connection) must end with the role in state when its trust policy,
//!   path, tags and creation time show that this apply made it, and must fail, naming what did
//!   not match, when a role of that name was there before.
//! - A peer that accepts and never answers (IAM, STS) fails the command with a message naming
//!   the call and the timeout. The fix's default timeouts are assumed to end such a call within
//!   about 2 minutes; `support::hardening_io::STALL_BOUND` (170 s) bounds each wait, and a
//!   command still running then is killed and fails the test for hanging.
//! - The exchange (metadata + STS + retries) has one overall deadline, and the metadata body is
//!   capped.
//!
//! Every expected value is written out here (ARNs, trust policies, tags), never computed by the
//! provider's code.

mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use percent_encoding::percent_decode_str;
use serde_json::{json, Value};
use support::bed::{block_on, closed_port_host, TestBed, ACCOUNT_ID, OUTSIDER_ID, RUNNER_ID};
use support::hardening_io::{
    calls_of, drop_answers, run_bounded, run_engine_bounded, Body, FixedReply, FixedServer,
    Outcome, StalledServer, STALL_BOUND,
};
use support::target::unique_name;
use support::tf::{provider_binary, resource_values_in, Engine, Workdir, REQUIRED_PROVIDERS};
use support::{q, trust_policy_by_hand};

const ADDR: &str = "gcpfed_role.r";
const AUDIENCE: &str = "sts.amazonaws.com/gcpfedacc-hardening";
const PATH: &str = "/hardening/";

fn role_hcl(name: &str) -> String {
    format!(
        r#"resource "gcpfed_role" "r" {{
  name                       = {name}
  path                       = {PATH:?}
  audience                   = {AUDIENCE:?}
  service_account_unique_ids = [{RUNNER_ID:?}]
  tags = {{
    team    = "ci"
    purpose = "lost-answer"
  }}
}}
"#,
        name = q(name)
    )
}

/// A provider block on the bed, with the IAM and STS endpoints replaced when given.
fn provider_hcl(bed_metadata: &str, iam: &str, sts: &str) -> String {
    format!(
        r#"provider "gcpfed" {{
  region        = "us-east-1"
  access_key    = "testing"
  secret_key    = "testing"
  metadata_host = {metadata}
  endpoints {{
    iam = {iam}
    sts = {sts}
  }}
}}
"#,
        metadata = q(bed_metadata),
        iam = q(iam),
        sts = q(sts)
    )
}

fn workdir(main_tf: &str) -> Workdir {
    Workdir::new(Engine::Terraform, main_tf, &[])
}

fn decode(doc: &str) -> Value {
    let text = percent_decode_str(doc).decode_utf8_lossy();
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("IAM document is not JSON ({e}): {text}"))
}

/// (RoleId, trust policy, tags) of a role as IAM holds it (read on moto directly).
fn in_iam(bed: &TestBed, name: &str) -> Option<(String, Value, BTreeMap<String, String>)> {
    let out = block_on(bed.iam().get_role().role_name(name).send());
    match out {
        Ok(out) => {
            let role = out.role().expect("role");
            Some((
                role.role_id().to_owned(),
                decode(role.assume_role_policy_document().expect("trust policy")),
                role.tags()
                    .iter()
                    .map(|t| (t.key().to_owned(), t.value().to_owned()))
                    .collect(),
            ))
        }
        Err(e) if format!("{e:?}").contains("NoSuchEntity") => None,
        Err(e) => panic!("GetRole {name}: {e:?}"),
    }
}

fn text_of<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("{key} is not a string in {v}"))
}

/// Case-insensitive: does `text` name a timeout (or a deadline) at all?
fn names_a_timeout(text: &str) -> bool {
    let t = text.to_lowercase();
    t.contains("timed out") || t.contains("timeout") || t.contains("deadline")
}

#[test]
fn a_create_role_whose_answer_is_lost_ends_with_the_role_in_state() {
    let bed = TestBed::start();
    let name = unique_name("lost-answer");
    let main_tf = format!(
        "{REQUIRED_PROVIDERS}{}{}",
        bed.provider_hcl(),
        role_hcl(&name)
    );
    let wd = workdir(&main_tf);
    drop_answers(&bed, "CreateRole", 1);
    let apply = wd.apply();

    // The attack happened: the first CreateRole created the role and lost its answer, and the
    // retry met the role it had just made.
    let creates = calls_of(&bed, "CreateRole");
    assert!(
        creates.len() >= 2 && creates[0].3 && creates[0].1 == 200,
        "the lost-answer fault did not fire as planned: CreateRole calls {creates:?}"
    );
    assert_eq!(
        creates[1].2.as_deref(),
        Some("EntityAlreadyExists"),
        "the retried CreateRole: {creates:?}"
    );
    let (role_id, trust, tags) =
        in_iam(&bed, &name).expect("the first CreateRole made the role in IAM");

    // The fix: this apply made the role, so it adopts it instead of failing.
    apply.ok();
    let state = wd.show_json();
    let v = resource_values_in(&state, ADDR).unwrap_or_else(|| {
        panic!("{ADDR} is not in state after the apply: the role {name} is orphaned in IAM")
    });
    assert_eq!(
        text_of(&v, "arn"),
        format!("arn:aws:iam::{ACCOUNT_ID}:role/hardening/{name}")
    );
    assert_eq!(text_of(&v, "id"), name);
    assert_eq!(text_of(&v, "name"), name);
    assert_eq!(text_of(&v, "path"), PATH);
    assert_eq!(
        text_of(&v, "unique_id"),
        role_id,
        "state's unique_id is not IAM's RoleId"
    );
    assert_eq!(
        serde_json::from_str::<Value>(text_of(&v, "trust_policy")).expect("trust_policy JSON"),
        serde_json::from_str::<Value>(&trust_policy_by_hand(AUDIENCE, &[RUNNER_ID])).unwrap()
    );
    assert_eq!(
        trust,
        serde_json::from_str::<Value>(&trust_policy_by_hand(AUDIENCE, &[RUNNER_ID])).unwrap()
    );
    assert!(
        !text_of(&v, "create_date").is_empty(),
        "create_date is empty"
    );
    let expected_tags = json!({"team": "ci", "purpose": "lost-answer"});
    assert_eq!(v["tags"], expected_tags);
    assert_eq!(serde_json::to_value(&tags).unwrap(), expected_tags);

    // Adopted completely: nothing left to do, and destroy removes it.
    let plan = wd.plan_detailed();
    assert_eq!(
        plan.status,
        0,
        "{}",
        plan.describe("a second plan after the adoption is not empty")
    );
    wd.destroy().ok();
    assert!(in_iam(&bed, &name).is_none(), "destroy left {name} in IAM");
}

/// With `max_retries = 0` nothing retries the CreateRole whose answer was lost: the apply sees
/// only the transport failure. The role this apply made is in IAM all the same, so it must still
/// end in state rather than orphaned.
#[test]
fn without_retries_a_create_role_whose_answer_is_lost_still_ends_in_state() {
    let bed = TestBed::start();
    let name = unique_name("lost-no-retry");
    let provider = bed
        .provider_hcl()
        .replacen("region ", "max_retries   = 0\n  region ", 1);
    let main_tf = format!("{REQUIRED_PROVIDERS}{provider}{}", role_hcl(&name));
    let wd = workdir(&main_tf);
    drop_answers(&bed, "CreateRole", 1);
    let apply = wd.apply();

    let creates = calls_of(&bed, "CreateRole");
    assert!(
        creates.len() == 1 && creates[0].3 && creates[0].1 == 200,
        "the lost-answer fault did not fire as planned (one CreateRole, answer dropped): {creates:?}"
    );
    let (role_id, _, _) = in_iam(&bed, &name).expect("the CreateRole made the role in IAM");

    apply.ok();
    let state = wd.show_json();
    let v = resource_values_in(&state, ADDR).unwrap_or_else(|| {
        panic!("{ADDR} is not in state after the apply: the role {name} is orphaned in IAM")
    });
    assert_eq!(text_of(&v, "unique_id"), role_id);
    assert_eq!(
        text_of(&v, "arn"),
        format!("arn:aws:iam::{ACCOUNT_ID}:role/hardening/{name}")
    );
    wd.destroy().ok();
    assert!(in_iam(&bed, &name).is_none(), "destroy left {name} in IAM");
}

#[test]
fn a_lost_answer_never_adopts_a_role_that_existed_before_the_apply() {
    let bed = TestBed::start();
    let name = unique_name("not-ours");
    // Made out of band, before the apply: same name and path, another trust policy and tags.
    let foreign_trust = trust_policy_by_hand("sts.amazonaws.com/someone-else", &[OUTSIDER_ID]);
    block_on(
        bed.iam()
            .create_role()
            .role_name(&name)
            .path(PATH)
            .assume_role_policy_document(&foreign_trust)
            .tags(
                aws_sdk_iam::types::Tag::builder()
                    .key("owner")
                    .value("someone-else")
                    .build()
                    .unwrap(),
            )
            .send(),
    )
    .unwrap_or_else(|e| panic!("CreateRole {name} out of band: {e:?}"));
    let before = in_iam(&bed, &name).expect("the foreign role");

    let main_tf = format!(
        "{REQUIRED_PROVIDERS}{}{}",
        bed.provider_hcl(),
        role_hcl(&name)
    );
    let wd = workdir(&main_tf);
    drop_answers(&bed, "CreateRole", 1);
    let apply = wd.apply();

    let creates = calls_of(&bed, "CreateRole");
    assert!(
        creates.len() >= 2
            && creates[0].3
            && creates
                .iter()
                .all(|c| c.2.as_deref() == Some("EntityAlreadyExists")),
        "the lost-answer fault did not fire as planned: CreateRole calls {creates:?}"
    );

    // Refused, naming what shows the role is not this apply's, and how to take it over.
    apply.fails();
    apply.assert_contains(&["Error:", &name]);
    let flat = apply.combined_flat().to_lowercase();
    for what in ["trust policy", "tags"] {
        assert!(
            flat.contains(what),
            "{}",
            apply.describe(&format!(
                "the error does not say that the existing role's {what} does not match the configuration"
            ))
        );
    }
    assert!(
        flat.contains("terraform import"),
        "{}",
        apply.describe("the error does not name `terraform import`")
    );

    // Nothing in state, and the foreign role is untouched.
    let state = wd.show_json();
    assert!(
        resource_values_in(&state, ADDR).is_none(),
        "{ADDR} is in state: a role made before the apply was adopted"
    );
    assert_eq!(
        in_iam(&bed, &name).as_ref(),
        Some(&before),
        "the foreign role was changed"
    );
    assert_eq!(
        before.1,
        serde_json::from_str::<Value>(&foreign_trust).unwrap()
    );
}

#[test]
fn a_stalled_iam_endpoint_fails_create_role_naming_the_call_and_the_timeout() {
    let stalled = StalledServer::start();
    let name = unique_name("stalled-iam");
    let main_tf = format!(
        "{REQUIRED_PROVIDERS}{}{}",
        provider_hcl(&closed_port_host(), &stalled.url(), &stalled.url()),
        role_hcl(&name)
    );
    let wd = workdir(&main_tf);
    let apply = run_engine_bounded(
        &wd,
        &["apply", "-auto-approve", "-input=false", "-no-color"],
        STALL_BOUND,
    );
    assert!(stalled.accepted() >= 1, "the provider never reached IAM");
    assert_ne!(
        apply.status,
        -1,
        "{}",
        apply.describe("apply hung on an IAM endpoint that never answers")
    );
    apply.fails();
    apply.assert_contains(&["Error:", "CreateRole"]);
    assert!(
        names_a_timeout(&apply.combined()),
        "{}",
        apply.describe("the error does not name the timeout")
    );
    let state = wd.show_json();
    assert!(resource_values_in(&state, ADDR).is_none());
}

#[test]
fn a_stalled_iam_endpoint_fails_the_refresh_naming_get_role_and_the_timeout() {
    let bed = TestBed::start();
    let name = unique_name("stalled-refresh");
    let wd = workdir(&format!(
        "{REQUIRED_PROVIDERS}{}{}",
        bed.provider_hcl(),
        role_hcl(&name)
    ));
    wd.apply().ok();

    let stalled = StalledServer::start();
    wd.write(&format!(
        "{REQUIRED_PROVIDERS}{}{}",
        provider_hcl(&bed.metadata_host, &stalled.url(), &bed.aws_endpoint),
        role_hcl(&name)
    ));
    let plan = run_engine_bounded(&wd, &["plan", "-input=false", "-no-color"], STALL_BOUND);
    assert!(stalled.accepted() >= 1, "the refresh never reached IAM");
    assert_ne!(
        plan.status,
        -1,
        "{}",
        plan.describe("plan hung on an IAM endpoint that never answers")
    );
    plan.fails();
    plan.assert_contains(&["Error:", "GetRole"]);
    assert!(
        names_a_timeout(&plan.combined()),
        "{}",
        plan.describe("the error does not name the timeout")
    );
}

#[test]
fn a_stalled_sts_endpoint_fails_the_credentials_data_source_naming_the_call_and_the_timeout() {
    let bed = TestBed::start();
    let stalled = StalledServer::start();
    let main_tf = format!(
        r#"{REQUIRED_PROVIDERS}{}
data "gcpfed_credentials" "c" {{
  role_arn = "arn:aws:iam::{ACCOUNT_ID}:role/stalled-sts"
  audience = {AUDIENCE:?}
}}
"#,
        provider_hcl(&bed.metadata_host, &bed.aws_endpoint, &stalled.url())
    );
    let wd = workdir(&main_tf);
    let plan = run_engine_bounded(&wd, &["plan", "-input=false", "-no-color"], STALL_BOUND);
    assert!(stalled.accepted() >= 1, "the exchange never reached STS");
    assert_ne!(
        plan.status,
        -1,
        "{}",
        plan.describe("plan hung on an STS endpoint that never answers")
    );
    plan.fails();
    plan.assert_contains(&["Error:", "AssumeRoleWithWebIdentity"]);
    assert!(
        names_a_timeout(&plan.combined()),
        "{}",
        plan.describe("the error does not name the timeout")
    );
}

// ---------- credential-process, with a cleared environment and a private HOME ----------

fn helper(args: &[&str], home: &Path) -> Command {
    let mut command = Command::new(provider_binary());
    command
        .arg("credential-process")
        .args(args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home)
        .env("AWS_EC2_METADATA_DISABLED", "true");
    command
}

fn run_helper(args: &[&str]) -> Outcome {
    let home = tempfile::tempdir().expect("temporary HOME");
    let mut all = vec![
        "--role-arn",
        "arn:aws:iam::123456789012:role/hardening",
        "--audience",
        AUDIENCE,
        "--no-cache",
    ];
    all.extend_from_slice(args);
    run_bounded(
        helper(&all, home.path()),
        "terraform-provider-gcpfed credential-process",
        STALL_BOUND,
    )
}

#[test]
fn a_stalled_sts_endpoint_fails_credential_process_naming_the_call_and_the_timeout() {
    let bed = TestBed::start();
    let stalled = StalledServer::start();
    let sts = stalled.url();
    let out = run_helper(&[
        "--metadata-host",
        &bed.metadata_host,
        "--sts-endpoint",
        &sts,
    ]);
    assert!(stalled.accepted() >= 1, "the exchange never reached STS");
    assert!(
        !out.killed,
        "{}",
        out.describe_stderr() + "\ncredential-process hung on an STS endpoint that never answers"
    );
    assert_eq!(out.status, Some(1), "{}", out.describe_stderr());
    assert_eq!(out.stdout, "");
    assert!(
        out.stderr.contains("AssumeRoleWithWebIdentity") && names_a_timeout(&out.stderr),
        "the error does not name the call and the timeout:\n{}",
        out.describe_stderr()
    );
}

#[test]
fn the_exchange_has_one_deadline_and_does_not_retry_a_failing_metadata_server_100_times() {
    let metadata = FixedServer::start(FixedReply::metadata(
        503,
        Body::Bytes(b"service unavailable\n".to_vec()),
        true,
    ));
    let sts = format!("http://{}", closed_port_host());
    let out = run_helper(&[
        "--metadata-host",
        &metadata.host(),
        "--sts-endpoint",
        &sts,
        "--max-retries",
        "100",
    ]);
    let requests = metadata.requests();
    assert!(
        !out.killed,
        "{}\n(the metadata server had received {requests} requests by then)",
        out.describe_stderr()
            + "\ncredential-process kept retrying a metadata server that answers 503 for ever"
    );
    assert_eq!(out.status, Some(1), "{}", out.describe_stderr());
    assert!(
        out.stderr.to_lowercase().contains("deadline"),
        "the error does not name the exchange's deadline:\n{}",
        out.describe_stderr()
    );
    assert!(
        requests < 101,
        "the metadata server was asked {requests} times: --max-retries 100 ran out before the deadline"
    );
}

/// 64 MiB of `a`: what a hostile or broken metadata server (or a proxy in its place) answers.
const HUGE: u64 = 64 * 1024 * 1024;

fn names_a_size_limit(text: &str) -> bool {
    let t = text.to_lowercase();
    [
        "too large",
        "too big",
        "larger than",
        "exceeds",
        "size limit",
    ]
    .iter()
    .any(|p| t.contains(p))
}

#[test]
fn a_huge_metadata_body_fails_credential_process_with_a_message_about_its_size() {
    for content_length in [true, false] {
        let label = if content_length {
            "with Content-Length"
        } else {
            "without Content-Length (ends at close)"
        };
        let metadata = FixedServer::start(FixedReply::metadata(
            200,
            Body::Repeat {
                byte: b'a',
                len: HUGE,
            },
            content_length,
        ));
        let sts = format!("http://{}", closed_port_host());
        let out = run_helper(&[
            "--metadata-host",
            &metadata.host(),
            "--sts-endpoint",
            &sts,
            "--max-retries",
            "0",
        ]);
        assert!(!out.killed, "{label}: {}", out.describe_stderr());
        assert_eq!(out.status, Some(1), "{label}: {}", out.describe_stderr());
        assert!(
            !out.stderr.contains(&"a".repeat(64)),
            "{label}: the body is echoed in the error"
        );
        assert!(
            names_a_size_limit(&out.stderr) && out.stderr.to_lowercase().contains("metadata"),
            "{label}: the error does not say that the metadata server's answer is too large \
             (the helper read {} bytes of it):\n{}",
            metadata.body_bytes_sent(),
            out.describe_stderr()
        );
    }
}

#[test]
fn a_huge_metadata_body_fails_the_credentials_data_source_with_a_message_about_its_size() {
    let metadata = FixedServer::start(FixedReply::metadata(
        200,
        Body::Repeat {
            byte: b'a',
            len: HUGE,
        },
        false,
    ));
    let closed = format!("http://{}", closed_port_host());
    let main_tf = format!(
        r#"{REQUIRED_PROVIDERS}{}
data "gcpfed_credentials" "c" {{
  role_arn = "arn:aws:iam::{ACCOUNT_ID}:role/huge-metadata"
  audience = {AUDIENCE:?}
}}
"#,
        provider_hcl(&metadata.host(), &closed, &closed)
    );
    let wd = workdir(&main_tf);
    let plan = run_engine_bounded(&wd, &["plan", "-input=false", "-no-color"], STALL_BOUND);
    assert_ne!(plan.status, -1, "{}", plan.describe("plan hung"));
    plan.fails();
    assert!(
        !plan.combined().contains(&"a".repeat(64)),
        "the body is echoed in the error"
    );
    assert!(
        names_a_size_limit(&plan.combined()),
        "{}",
        plan.describe(&format!(
            "the error does not say that the metadata server's answer is too large (the provider read {} bytes of it)",
            metadata.body_bytes_sent()
        ))
    );
}
