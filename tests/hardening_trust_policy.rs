//! Issue 12, "Trust policies cannot be widened unseen": each attack of the security review, as
//! a test that drives the product from outside (real Terraform 1.15 and OpenTofu 1.6 against the
//! local bed, the real `credential-process` command) and asserts the fixed behaviour.
//!
//! - Condition keys that collide after lower-casing, added out of band to a trust policy or an
//!   inline policy, are drift: shown, and reverted by apply.
//! - JSON documents with a repeated key are drift when IAM holds them, and refused at plan (and
//!   by the helper's `--policy`) with the attribute path and the key named.
//! - The audience refuses IAM policy variables, `*`, `?` and control characters.
//! - Unique IDs: all digits enforced by the public trust-policy API itself; a length other than
//!   Google's 21 digits gets a warning naming the `gcloud` command that shows the real one.
//! - Import by ARN refuses an ARN of another account than the caller's, naming both.
//!
//! Expected documents are written out by hand (`support::trust_policy_by_hand` and the
//! constants below), never computed by the code under test. Out-of-band changes go straight to
//! the bed's moto (unrecorded), like `tests/acc_role.rs`'s drift test. Everything here needs
//! the bed (verbatim documents, the call recorder), so it is skipped on the AWS sandbox target.

mod support;

use std::panic::{catch_unwind, AssertUnwindSafe};

use serde_json::Value;
use support::bed::{block_on, TestBed, ACCOUNT_ID, OUTSIDER_ID, RUNNER_ID};
use support::hardening::{
    assert_repeated_key_error, exchanges, helper_env, iam_writes, inline_text, line_of,
    mentions_any, put_inline_text, put_trust_text, run_process, trust_text,
};
use support::target::Acc;
use support::tf::{for_each_engine, for_engines, Engine, Workdir, REQUIRED_PROVIDERS};
use support::{engines_having, q, trust_policy_by_hand};

const ADDR: &str = "gcpfed_role.r";
const AUDIENCE: &str = "sts.amazonaws.com/gcpfedacc-hardening";
/// An account that is not the bed's (the bed's moto is 123456789012, `ACCOUNT_ID`).
const OTHER_ACCOUNT: &str = "999999999999";

/// The inline policy the drift tests configure, as HCL (what users write).
const INLINE_READ_HCL: &str = r#"jsonencode({ Version = "2012-10-17", Statement = [{ Effect = "Allow", Action = "s3:GetObject", Resource = "*", Condition = { StringEquals = { "aws:RequestedRegion" = "us-east-1" } } }] })"#;
/// The same document as JSON, by hand (jsonencode sorts keys and writes compact JSON).
const INLINE_READ: &str = r#"{"Statement":[{"Action":"s3:GetObject","Condition":{"StringEquals":{"aws:RequestedRegion":"us-east-1"}},"Effect":"Allow","Resource":"*"}],"Version":"2012-10-17"}"#;

fn the_bed(acc: &Acc) -> &TestBed {
    acc.bed().expect("Acc::local_only gives the local bed")
}

fn env() -> Vec<(String, String)> {
    vec![("AWS_EC2_METADATA_DISABLED".into(), "true".into())]
}

/// The bed's provider block and `gcpfed_role "r"`; `audience` and `ids` are HCL expressions,
/// `inline` a list of HCL lines inside `inline_policies = { }` (none: no such argument).
fn role_config(bed: &TestBed, name: &str, audience: &str, ids: &str, inline: &[String]) -> String {
    let mut role = format!(
        "resource \"gcpfed_role\" \"r\" {{\n  name                       = {}\n  audience                   = {audience}\n  service_account_unique_ids = {ids}\n",
        q(name)
    );
    if !inline.is_empty() {
        role += "  inline_policies = {\n";
        for line in inline {
            role += &format!("    {line}\n");
        }
        role += "  }\n";
    }
    role += "}\n";
    format!("{REQUIRED_PROVIDERS}\n{}\n{role}", bed.provider_hcl())
}

/// Runs every case even when one fails, then panics with all failures (each names its case).
#[track_caller]
fn each_case<T>(engine: Engine, cases: &[(&str, T)], test: impl Fn(&str, &T)) {
    let mut failures = Vec::new();
    for (what, case) in cases {
        if let Err(payload) = catch_unwind(AssertUnwindSafe(|| test(what, case))) {
            let message = payload
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "non-string panic".into());
            failures.push(format!("[{engine}] case {what:?}: {message}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n\n")
    );
}

/// The one change planned for ADDR: (actions, before, after).
fn change_of(plan: &Value) -> (Value, Value, Value) {
    let change = plan["resource_changes"]
        .as_array()
        .and_then(|a| a.iter().find(|c| c["address"] == ADDR))
        .unwrap_or_else(|| panic!("no change for {ADDR} in {plan}"));
    (
        change["change"]["actions"].clone(),
        change["change"]["before"].clone(),
        change["change"]["after"].clone(),
    )
}

/// After an out-of-band change: `plan -detailed-exitcode` says 2 and shows an in-place update of
/// `attribute` (checked by `check_after` on the planned value), and the human plan names it.
#[track_caller]
fn assert_drift_planned(
    wd: &Workdir,
    what: &str,
    attribute: &str,
    check_after: impl Fn(&Value, &Value),
) {
    let engine = wd.engine();
    let run = wd.plan_detailed();
    assert_eq!(
        run.status,
        2,
        "{}",
        run.describe(&format!(
            "{what}: IAM holds it, so the plan must show drift (exit 2), not {}",
            run.status
        ))
    );
    assert!(
        run.stdout.contains(attribute),
        "{}",
        run.describe(&format!(
            "{what}: the plan must show the change of {attribute}"
        ))
    );
    let (actions, before, after) = change_of(&wd.plan_json());
    assert_eq!(
        actions,
        serde_json::json!(["update"]),
        "[{engine}] {what}: planned actions"
    );
    check_after(&before, &after);
}

// ---------- 1. condition keys that collide after lower-casing ----------

/// `base` (a document by hand) with one more key at the start of its StringEquals block, so
/// that a parser keeping the last of two colliding keys keeps the rendered one.
fn with_leading_condition_key(base: &str, key: &str, value: &str) -> String {
    let at = r#""StringEquals":{"#;
    assert!(base.contains(at), "{base}");
    base.replacen(at, &format!("{at}{}:{},", q(key), q(value)), 1)
}

#[test]
fn trust_policy_with_a_colliding_condition_key_is_drift_and_reverted() {
    let Some(acc) = Acc::local_only(
        "trust_policy_with_a_colliding_condition_key_is_drift_and_reverted",
        "it rewrites trust policies verbatim through the bed's moto",
    ) else {
        return;
    };
    let bed = the_bed(&acc);
    let rendered = trust_policy_by_hand(AUDIENCE, &[RUNNER_ID]);
    let cases: Vec<(&str, String)> = vec![
        (
            "ACCOUNTS.GOOGLE.COM:SUB beside the rendered keys",
            with_leading_condition_key(&rendered, "ACCOUNTS.GOOGLE.COM:SUB", OUTSIDER_ID),
        ),
        (
            "ACCOUNTS.GOOGLE.COM:AUD beside the rendered keys",
            with_leading_condition_key(&rendered, "ACCOUNTS.GOOGLE.COM:AUD", OUTSIDER_ID),
        ),
        (
            "ACCOUNTS.GOOGLE.COM:OAUD beside the rendered keys",
            with_leading_condition_key(
                &rendered,
                "ACCOUNTS.GOOGLE.COM:OAUD",
                "sts.amazonaws.com/another-audience",
            ),
        ),
    ];
    for_each_engine(|engine| {
        let name = acc.unique_name("collide");
        let main_tf = role_config(
            bed,
            &name,
            &q(AUDIENCE),
            &format!("[{}]", q(RUNNER_ID)),
            &[],
        );
        let wd = Workdir::new(engine, &main_tf, &env());
        wd.apply().ok();
        assert_eq!(
            trust_text(bed, &name),
            rendered,
            "[{engine}] created as rendered"
        );
        each_case(engine, &cases, |what, widened| {
            put_trust_text(bed, &name, widened);
            assert_drift_planned(&wd, what, "trust_policy", |before, after| {
                assert_ne!(
                    before["trust_policy"], after["trust_policy"],
                    "[{engine}] {what}: the plan must show the trust policy change"
                );
                assert_eq!(
                    after["trust_policy"].as_str(),
                    Some(rendered.as_str()),
                    "[{engine}] {what}: planned trust policy"
                );
            });
            wd.apply().ok();
            assert_eq!(
                trust_text(bed, &name),
                rendered,
                "[{engine}] {what}: after apply IAM must hold exactly the rendered trust policy"
            );
            let again = wd.plan_detailed();
            assert_eq!(
                again.status,
                0,
                "{}",
                again.describe("plan after the revert")
            );
        });
    });
}

// ---------- 2. the same collision inside an inline policy ----------

#[test]
fn inline_policy_with_colliding_condition_keys_is_drift_and_reverted() {
    let Some(acc) = Acc::local_only(
        "inline_policy_with_colliding_condition_keys_is_drift_and_reverted",
        "it rewrites inline policies verbatim through the bed's moto",
    ) else {
        return;
    };
    let bed = the_bed(&acc);
    // The configured document plus a key equal to aws:RequestedRegion after lower-casing,
    // first, so that a parser keeping the last of the two keeps the configured one.
    let widened = r#"{"Statement":[{"Action":"s3:GetObject","Condition":{"StringEquals":{"AWS:REQUESTEDREGION":"eu-west-1","aws:RequestedRegion":"us-east-1"}},"Effect":"Allow","Resource":"*"}],"Version":"2012-10-17"}"#;
    let configured: Value = serde_json::from_str(INLINE_READ).unwrap();
    for_each_engine(|engine| {
        let name = acc.unique_name("collide-inline");
        let main_tf = role_config(
            bed,
            &name,
            &q(AUDIENCE),
            &format!("[{}]", q(RUNNER_ID)),
            &[format!("\"read\" = {INLINE_READ_HCL}")],
        );
        let wd = Workdir::new(engine, &main_tf, &env());
        wd.apply().ok();
        put_inline_text(bed, &name, "read", widened);
        let what = "AWS:REQUESTEDREGION beside aws:RequestedRegion";
        assert_drift_planned(&wd, what, "inline_policies", |before, after| {
            assert_ne!(
                before["inline_policies"]["read"], after["inline_policies"]["read"],
                "[{engine}] {what}: the plan must show the inline policy change"
            );
            let planned: Value =
                serde_json::from_str(after["inline_policies"]["read"].as_str().unwrap_or("null"))
                    .unwrap_or(Value::Null);
            assert_eq!(planned, configured, "[{engine}] {what}: planned document");
        });
        wd.apply().ok();
        let held = inline_text(bed, &name, "read");
        assert!(
            !held.contains("AWS:REQUESTEDREGION"),
            "[{engine}] after apply IAM still holds the colliding key: {held}"
        );
        assert_eq!(
            serde_json::from_str::<Value>(&held).ok(),
            Some(configured.clone()),
            "[{engine}] after apply IAM must hold the configured document: {held}"
        );
        let again = wd.plan_detailed();
        assert_eq!(
            again.status,
            0,
            "{}",
            again.describe("plan after the revert")
        );
    });
}

// ---------- 3. repeated JSON keys held by IAM ----------

#[test]
fn documents_with_repeated_json_keys_held_by_iam_are_drift_and_reverted() {
    let Some(acc) = Acc::local_only(
        "documents_with_repeated_json_keys_held_by_iam_are_drift_and_reverted",
        "it writes documents with repeated keys verbatim through the bed's moto",
    ) else {
        return;
    };
    let bed = the_bed(&acc);
    let rendered = trust_policy_by_hand(AUDIENCE, &[RUNNER_ID]);
    // The attacker's value comes first: serde_json keeps the last of a repeated key.
    let two_conditions = rendered.replacen(
        r#""Condition":{"#,
        r#""Condition":{"StringLike":{"accounts.google.com:sub":"*"}},"Condition":{"#,
        1,
    );
    let two_effects = rendered.replacen(
        r#""Effect":"Allow""#,
        r#""Effect":"Deny","Effect":"Allow""#,
        1,
    );
    assert_ne!(two_conditions, rendered);
    assert_ne!(two_effects, rendered);
    let inline_two_actions = r#"{"Statement":[{"Action":"s3:*","Action":"s3:GetObject","Condition":{"StringEquals":{"aws:RequestedRegion":"us-east-1"}},"Effect":"Allow","Resource":"*"}],"Version":"2012-10-17"}"#.to_string();
    let configured: Value = serde_json::from_str(INLINE_READ).unwrap();

    // (what, is it the trust policy (else the inline policy "read"), the document IAM holds)
    let cases: Vec<(&str, (bool, String))> = vec![
        (
            "a trust policy with two Condition objects",
            (true, two_conditions),
        ),
        ("a trust policy with two Effects", (true, two_effects)),
        (
            "an inline policy with two Actions",
            (false, inline_two_actions),
        ),
    ];
    for_each_engine(|engine| {
        let name = acc.unique_name("repeated");
        let main_tf = role_config(
            bed,
            &name,
            &q(AUDIENCE),
            &format!("[{}]", q(RUNNER_ID)),
            &[format!("\"read\" = {INLINE_READ_HCL}")],
        );
        let wd = Workdir::new(engine, &main_tf, &env());
        wd.apply().ok();
        each_case(engine, &cases, |what, (trust, doc)| {
            if *trust {
                put_trust_text(bed, &name, doc);
                assert_drift_planned(&wd, what, "trust_policy", |before, after| {
                    assert_ne!(
                        before["trust_policy"], after["trust_policy"],
                        "[{engine}] {what}"
                    );
                    assert_eq!(
                        after["trust_policy"].as_str(),
                        Some(rendered.as_str()),
                        "[{engine}] {what}"
                    );
                });
            } else {
                put_inline_text(bed, &name, "read", doc);
                assert_drift_planned(&wd, what, "inline_policies", |before, after| {
                    assert_ne!(
                        before["inline_policies"]["read"], after["inline_policies"]["read"],
                        "[{engine}] {what}"
                    );
                });
            }
            wd.apply().ok();
            assert_eq!(
                trust_text(bed, &name),
                rendered,
                "[{engine}] {what}: after apply IAM must hold exactly the rendered trust policy"
            );
            let held = inline_text(bed, &name, "read");
            assert_eq!(
                held.matches("\"Action\"").count(),
                1,
                "[{engine}] {what}: after apply the inline policy must have one Action: {held}"
            );
            assert_eq!(
                serde_json::from_str::<Value>(&held).ok(),
                Some(configured.clone()),
                "[{engine}] {what}: {held}"
            );
            let again = wd.plan_detailed();
            assert_eq!(
                again.status,
                0,
                "{}",
                again.describe("plan after the revert")
            );
        });
    });
}

// ---------- 4. repeated JSON keys refused at plan ----------

/// A policy whose statement has two Effects (the second one wins in serde_json).
const REPEATED_EFFECT: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Effect":"Allow","Action":"s3:GetObject","Resource":"*"}]}"#;
/// A session policy whose statement has two Condition objects.
const REPEATED_CONDITION: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"*","Condition":{"StringEquals":{"aws:RequestedRegion":"eu-west-1"}},"Condition":{"StringEquals":{"aws:RequestedRegion":"us-east-1"}}}]}"#;
/// A session policy whose statement has two Actions.
const REPEATED_ACTION: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"sts:*","Action":"s3:GetObject","Resource":"*"}]}"#;

#[test]
fn role_inline_policy_with_a_repeated_json_key_is_refused_at_plan() {
    let Some(acc) = Acc::local_only(
        "role_inline_policy_with_a_repeated_json_key_is_refused_at_plan",
        "it checks through the bed's call recorder that no IAM write happened",
    ) else {
        return;
    };
    let bed = the_bed(&acc);
    for_each_engine(|engine| {
        let name = acc.unique_name("rk");
        // Read from a file so that the diagnostic's source snippet cannot show the document:
        // the key must be named by the message itself.
        let main_tf = role_config(
            bed,
            &name,
            &q(AUDIENCE),
            &format!("[{}]", q(RUNNER_ID)),
            &["\"guarded\" = file(\"guarded.json\")".to_string()],
        );
        let wd = Workdir::new(engine, &main_tf, &env());
        wd.write_file("guarded.json", REPEATED_EFFECT);
        bed.clear_calls();
        let run = wd.plan();
        // Path inline_policies["guarded"]: Terraform points at the map element's line.
        assert_repeated_key_error(&run, &main_tf, ADDR, "\"guarded\" =", "Effect");
        assert_eq!(
            iam_writes(bed),
            Vec::<String>::new(),
            "[{engine}] IAM writes"
        );
    });
}

/// `<kind> "gcpfed_credentials" "c"` for the bed's role `arn`, its session policy from a file.
fn credentials_config(bed: &TestBed, kind: &str, arn: &str) -> String {
    format!(
        "{REQUIRED_PROVIDERS}\n{}\n{kind} \"gcpfed_credentials\" \"c\" {{\n  role_arn = {}\n  audience = {}\n  policy   = file(\"session.json\")\n}}\n",
        bed.provider_hcl(),
        q(arn),
        q(AUDIENCE)
    )
}

/// Plans `<kind> "gcpfed_credentials" "c"` whose `policy` repeats a key, under `engines`.
fn session_policy_refused(test: &str, kind: &str, engines: &[Engine]) {
    let Some(acc) = Acc::local_only(
        test,
        "it exchanges the bed's emulated service account and reads the call recorder",
    ) else {
        return;
    };
    let bed = the_bed(&acc);
    // A role the runner may assume: without the fix, the plan succeeds with an exchange.
    let (_, arn) = acc.create_trusted_role("rk-session", AUDIENCE, &[RUNNER_ID]);
    for_engines(engines, |engine| {
        let main_tf = credentials_config(bed, kind, &arn);
        let wd = Workdir::new(engine, &main_tf, &env());
        wd.write_file("session.json", REPEATED_CONDITION);
        bed.clear_calls();
        let run = wd.plan();
        let calls = exchanges(bed);
        assert_repeated_key_error(
            &run,
            &main_tf,
            &format!("{kind}.gcpfed_credentials.c"),
            "policy",
            "Condition",
        );
        assert_eq!(calls, vec![], "[{engine}] no STS call may be made");
    });
}

#[test]
fn data_source_session_policy_with_a_repeated_json_key_is_refused_at_plan() {
    session_policy_refused(
        "data_source_session_policy_with_a_repeated_json_key_is_refused_at_plan",
        "data",
        &support::tf::ENGINES,
    );
}

#[test]
fn ephemeral_session_policy_with_a_repeated_json_key_is_refused_at_plan() {
    let test = "ephemeral_session_policy_with_a_repeated_json_key_is_refused_at_plan";
    let engines = engines_having(
        test,
        Engine::has_ephemeral_resources,
        support::EPHEMERAL_RESOURCES,
    );
    session_policy_refused(test, "ephemeral", &engines);
}

#[test]
fn helper_policy_with_a_repeated_json_key_is_refused() {
    let bed = TestBed::start();
    let name = support::target::unique_name("rk-cli");
    let out = block_on(
        bed.iam()
            .create_role()
            .role_name(&name)
            .assume_role_policy_document(trust_policy_by_hand(AUDIENCE, &[RUNNER_ID]))
            .send(),
    )
    .unwrap_or_else(|e| panic!("CreateRole {name}: {e:?}"));
    let arn = out.role().expect("role").arn().to_owned();
    let dir = tempfile::tempdir().expect("temporary directory");
    bed.clear_calls();
    // The binary under test (GCPFED_PROVIDER_BINARY points at another build, as for Terraform).
    let helper = support::tf::provider_binary();
    let run = run_process(
        &helper,
        &[
            "credential-process",
            "--role-arn",
            &arn,
            "--audience",
            AUDIENCE,
            "--metadata-host",
            &bed.metadata_host,
            "--sts-endpoint",
            &bed.aws_endpoint,
            "--no-cache",
            "--policy",
            REPEATED_ACTION,
        ],
        &helper_env(dir.path()),
    );
    let calls = exchanges(&bed);
    let printed = if run.stdout.is_empty() {
        "nothing"
    } else {
        "credentials (not shown)"
    };
    assert!(
        run.status.is_some_and(|s| s != 0),
        "credential-process --policy with a repeated key: exit {:?}, stdout had {printed}, {} STS call(s) made; stderr: {}",
        run.status,
        calls.len(),
        run.stderr
    );
    assert!(
        run.stdout.is_empty(),
        "stdout must stay empty, it had {printed}"
    );
    assert!(
        run.stderr.contains("--policy") && run.stderr.contains("Action"),
        "stderr must name --policy and the repeated key \"Action\": {}",
        run.stderr
    );
    assert!(
        mentions_any(&run.stderr, &support::hardening::REPEATED_KEY_WORDS),
        "stderr must say that the key is repeated: {}",
        run.stderr
    );
    assert_eq!(calls, vec![], "no STS call may be made");
}

// ---------- 5. the audience ----------

/// (what, the audience as an HCL string literal, words one of which the error must use)
fn bad_audiences() -> Vec<(&'static str, (&'static str, &'static [&'static str]))> {
    vec![
        (
            "an IAM policy variable",
            // `$${` is HCL's escape for a literal `${`.
            (r#""$${accounts.google.com:oaud}""#, &["variable"]),
        ),
        ("a *", (r#""sts.amazonaws.com/*""#, &["wildcard"])),
        ("a ?", (r#""sts.amazonaws.com/gcpfed?""#, &["wildcard"])),
        (
            "a control character",
            (
                r#""sts.amazonaws.com/gcpfed\u0001""#,
                &["control character"],
            ),
        ),
    ]
}

#[test]
fn role_audience_with_policy_variables_wildcards_or_control_characters_is_refused_at_plan() {
    let Some(acc) = Acc::local_only(
        "role_audience_with_policy_variables_wildcards_or_control_characters_is_refused_at_plan",
        "it checks through the bed's call recorder that no IAM write happened",
    ) else {
        return;
    };
    let bed = the_bed(&acc);
    let cases = bad_audiences();
    for_each_engine(|engine| {
        let wd = Workdir::new(engine, "", &env());
        each_case(engine, &cases, |what, (audience, words)| {
            let main_tf = role_config(
                bed,
                &acc.unique_name("aud"),
                audience,
                &format!("[{}]", q(RUNNER_ID)),
                &[],
            );
            wd.write(&main_tf);
            bed.clear_calls();
            let run = wd.plan();
            let line = line_of(&main_tf, "audience");
            run.fails().assert_contains(&[
                "Error:",
                &format!("with {ADDR},"),
                &format!("on main.tf line {line}"),
            ]);
            assert!(
                mentions_any(&run.combined_flat(), words),
                "{}",
                run.describe(&format!(
                    "{what}: the error must say why, with one of {words:?}"
                ))
            );
            assert_eq!(
                iam_writes(bed),
                Vec::<String>::new(),
                "[{engine}] IAM writes"
            );
        });
    });
}

#[test]
fn trust_policy_function_audience_with_policy_variables_wildcards_or_control_characters_fails() {
    let cases = bad_audiences();
    let engines = engines_having(
        "trust_policy_function_audience_with_policy_variables_wildcards_or_control_characters_fails",
        Engine::has_functions,
        support::PROVIDER_FUNCTIONS,
    );
    for_engines(&engines, |engine| {
        let wd = Workdir::new(engine, "", &env());
        each_case(engine, &cases, |what, (audience, words)| {
            wd.write(&format!(
                "{REQUIRED_PROVIDERS}\noutput \"p\" {{\n  value = provider::gcpfed::trust_policy({audience}, [{}])\n}}\n",
                q(RUNNER_ID)
            ));
            let run = wd.plan();
            run.fails()
                .assert_contains(&["provider::gcpfed::trust_policy", r#""audience""#]);
            assert!(
                mentions_any(&run.combined_flat(), words),
                "{}",
                run.describe(&format!(
                    "{what}: the error must say why, with one of {words:?}"
                ))
            );
        });
    });
}

/// Beyond the brief, same item: the public trust-policy API refuses such an audience itself,
/// so that neither a render nor an import can carry one (an imported role whose
/// `accounts.google.com:oaud` is `${accounts.google.com:oaud}` accepts any audience).
/// Depends on `gcpfed::trust_policy::{TrustInputs::new, parse_trust_policy}` (today in
/// src/trust_policy.rs; the refactor may move it: adapt the path, keep the assertions).
#[test]
fn trust_policy_api_refuses_an_audience_iam_would_expand() {
    use gcpfed::trust_policy::{parse_trust_policy, TrustInputs};
    for audience in [
        "${accounts.google.com:oaud}",
        "sts.amazonaws.com/*",
        "sts.amazonaws.com/gcpfed?",
        "sts.amazonaws.com/gcpfed\u{1}",
    ] {
        assert!(
            TrustInputs::new(audience, [RUNNER_ID]).is_err(),
            "TrustInputs::new accepts the audience {audience:?}"
        );
        let stored = trust_policy_by_hand(audience, &[RUNNER_ID]);
        assert!(
            parse_trust_policy(&stored).is_err(),
            "parse_trust_policy recognises a stored trust policy whose oaud is {audience:?}"
        );
    }
}

// ---------- 6. unique IDs ----------

/// Depends on `gcpfed::trust_policy::{TrustInputs::new, parse_trust_policy}` (today in
/// src/trust_policy.rs; the refactor may move it: adapt the path, keep the assertions).
#[test]
fn trust_policy_api_refuses_unique_ids_that_are_not_all_digits() {
    use gcpfed::trust_policy::{parse_trust_policy, TrustInputs};
    for id in [
        "abc",
        "10485760000000000000x",
        "ci@p.iam.gserviceaccount.com",
        "1 2",
    ] {
        assert!(
            TrustInputs::new("aud", [id]).is_err(),
            "TrustInputs::new(\"aud\", [{id:?}]) is Ok: only the schema validator refuses it"
        );
    }
    // A stored policy whose aud and sub are "abc", written out by hand.
    let stored = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Federated":"accounts.google.com"},"Action":"sts:AssumeRoleWithWebIdentity","Condition":{"StringEquals":{"accounts.google.com:aud":"abc","accounts.google.com:oaud":"aud","accounts.google.com:sub":"abc"}}}]}"#;
    assert!(
        parse_trust_policy(stored).is_err(),
        "parse_trust_policy recognises a policy whose aud/sub are \"abc\""
    );
}

#[test]
fn unique_ids_that_are_not_21_digits_get_a_warning_naming_gcloud() {
    let Some(acc) = Acc::local_only(
        "unique_ids_that_are_not_21_digits_get_a_warning_naming_gcloud",
        "it plans against the local bed only",
    ) else {
        return;
    };
    let bed = the_bed(&acc);
    const GCLOUD: &str = "gcloud iam service-accounts describe";
    const FORMAT: &str = "--format='value(uniqueId)'";
    for_each_engine(|engine| {
        let wd = Workdir::new(engine, "", &env());
        for id in ["1048576", "1048576000000000000012"] {
            let main_tf = role_config(
                bed,
                &acc.unique_name("short"),
                &q(AUDIENCE),
                &format!("[{}]", q(id)),
                &[],
            );
            wd.write(&main_tf);
            let run = wd.plan_detailed();
            assert_eq!(
                run.status,
                2,
                "{}",
                run.describe(&format!(
                    "an ID of {} digits: the plan must succeed",
                    id.len()
                ))
            );
            let line = line_of(&main_tf, "service_account_unique_ids");
            run.assert_contains(&[
                "Warning:",
                &format!("with {ADDR},"),
                &format!("on main.tf line {line}"),
                id,
                "21",
                GCLOUD,
                FORMAT,
            ]);
        }
        // Control: Google's own length gets no such warning.
        let main_tf = role_config(
            bed,
            &acc.unique_name("ok"),
            &q(AUDIENCE),
            &format!("[{}]", q(RUNNER_ID)),
            &[],
        );
        wd.write(&main_tf);
        let run = wd.plan_detailed();
        assert_eq!(run.status, 2, "{}", run.describe("a 21-digit ID"));
        assert!(
            !run.combined_flat().contains(GCLOUD),
            "{}",
            run.describe("a 21-digit ID must not get the warning")
        );
    });
}

// ---------- 7. import by ARN of another account ----------

/// A role of the bed's account trusted like gcpfed renders it, its configuration, and the ARN
/// of a role of the same name in another account.
fn import_fixture(acc: &Acc, engine: Engine) -> (String, String, String) {
    let bed = the_bed(acc);
    assert_eq!(acc.account_id(), ACCOUNT_ID, "the bed's account");
    let (name, arn) = acc.create_trusted_role("imp", AUDIENCE, &[RUNNER_ID]);
    assert_eq!(
        arn,
        format!("arn:aws:iam::{ACCOUNT_ID}:role/{name}"),
        "[{engine}]"
    );
    let main_tf = role_config(
        bed,
        &name,
        &q(AUDIENCE),
        &format!("[{}]", q(RUNNER_ID)),
        &[],
    );
    let foreign = format!("arn:aws:iam::{OTHER_ACCOUNT}:role/{name}");
    (main_tf, arn, foreign)
}

#[test]
fn import_by_arn_of_another_account_is_refused_naming_both_accounts() {
    let Some(acc) = Acc::local_only(
        "import_by_arn_of_another_account_is_refused_naming_both_accounts",
        "it relies on the bed's fixed account 123456789012",
    ) else {
        return;
    };
    for_each_engine(|engine| {
        let (main_tf, arn, foreign) = import_fixture(&acc, engine);
        let wd = Workdir::new(engine, &main_tf, &env());
        wd.import(ADDR, &foreign)
            .fails()
            .assert_contains(&[OTHER_ACCOUNT, ACCOUNT_ID]);
        assert!(
            wd.resource_values(ADDR).is_none(),
            "[{engine}] nothing may be imported"
        );
        // Control: an ARN of the caller's own account still imports.
        wd.import(ADDR, &arn).ok();
        assert!(
            wd.resource_values(ADDR).is_some(),
            "[{engine}] own-account ARN imported"
        );
    });
}

#[test]
fn import_block_by_arn_of_another_account_is_refused_naming_both_accounts() {
    let Some(acc) = Acc::local_only(
        "import_block_by_arn_of_another_account_is_refused_naming_both_accounts",
        "it relies on the bed's fixed account 123456789012",
    ) else {
        return;
    };
    for_each_engine(|engine| {
        let (main_tf, _, foreign) = import_fixture(&acc, engine);
        let with_block = format!(
            "{main_tf}\nimport {{\n  to = {ADDR}\n  id = {}\n}}\n",
            q(&foreign)
        );
        let wd = Workdir::new(engine, &with_block, &env());
        wd.plan()
            .fails()
            .assert_contains(&[OTHER_ACCOUNT, ACCOUNT_ID]);
        assert!(
            wd.resource_values(ADDR).is_none(),
            "[{engine}] nothing may be imported"
        );
    });
}
