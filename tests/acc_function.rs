//! Acceptance tests of `provider::gcpfed::trust_policy(audience, unique_ids)` (issue 10) under
//! the engines that have provider-defined functions (Terraform 1.10.5 and 1.15.5 here; OpenTofu
//! only from 1.7), on the local test bed: the function's result is byte-identical to the trust
//! policy of a `gcpfed_role` with the same inputs as read back from IAM (the state after a
//! refresh, and IAM's own document), and to the JSON written out by hand below from
//! INTERFACE.md; arguments `gcpfed_role` refuses fail the plan, naming the argument.

mod support;

use percent_encoding::percent_decode_str;
use serde_json::Value;
use support::bed::{block_on, DEPLOYER_ID, RUNNER_ID};
use support::target::Acc;
use support::tf::{for_engines, resource_values_in, Engine, Workdir, REQUIRED_PROVIDERS};
use support::{assert_no_leak, q, run_texts};

const AUDIENCE: &str = "sts.amazonaws.com/gcpfedacc-function";

/// INTERFACE.md's rendered shape for AUDIENCE and both bed accounts (a sorted list), by hand.
const EXPECTED_TWO: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Federated":"accounts.google.com"},"Action":"sts:AssumeRoleWithWebIdentity","Condition":{"StringEquals":{"accounts.google.com:aud":["104857600000000000001","104857600000000000002"],"accounts.google.com:oaud":"sts.amazonaws.com/gcpfedacc-function","accounts.google.com:sub":["104857600000000000001","104857600000000000002"]}}}]}"#;

/// The same for the runner alone: one ID is a string, not a list.
const EXPECTED_ONE: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Federated":"accounts.google.com"},"Action":"sts:AssumeRoleWithWebIdentity","Condition":{"StringEquals":{"accounts.google.com:aud":"104857600000000000001","accounts.google.com:oaud":"sts.amazonaws.com/gcpfedacc-function","accounts.google.com:sub":"104857600000000000001"}}}]}"#;

/// The engines with provider functions; prints which are left out, and why.
fn engines(test: &str) -> Vec<Engine> {
    support::engines_having(test, Engine::has_functions, support::PROVIDER_FUNCTIONS)
}

fn env() -> Vec<(String, String)> {
    vec![("AWS_EC2_METADATA_DISABLED".into(), "true".into())]
}

fn output_str(state: &Value, engine: Engine, name: &str) -> String {
    state
        .pointer(&format!("/values/outputs/{name}/value"))
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("[{engine}] no string output {name} in {state}"))
        .to_owned()
}

#[test]
fn the_function_returns_exactly_what_gcpfed_role_sends_to_iam() {
    let Some(acc) = Acc::local_only(
        "the_function_returns_exactly_what_gcpfed_role_sends_to_iam",
        "it compares with roles of the local bed",
    ) else {
        return;
    };
    let bed = acc.bed().expect("Acc::local_only gives the local bed");
    for_engines(
        &engines("the_function_returns_exactly_what_gcpfed_role_sends_to_iam"),
        |engine| {
            assert_ne!(EXPECTED_ONE, EXPECTED_TWO);
            let name = acc.unique_name("fn");
            // The IDs are given to the function in another order (and once twice) than to the
            // role: the rendering sorts and de-duplicates.
            let main_tf = format!(
                r#"{REQUIRED_PROVIDERS}
{provider}
resource "gcpfed_role" "r" {{
  name                       = {name}
  audience                   = {aud}
  service_account_unique_ids = [{runner}, {deployer}]
}}

output "two" {{
  value = provider::gcpfed::trust_policy({aud}, [{deployer}, {runner}, {deployer}])
}}

output "one" {{
  value = provider::gcpfed::trust_policy({aud}, [{runner}])
}}
"#,
                provider = bed.provider_hcl(),
                name = q(&name),
                aud = q(AUDIENCE),
                runner = q(RUNNER_ID),
                deployer = q(DEPLOYER_ID),
            );
            let wd = Workdir::new(engine, &main_tf, &env());
            wd.apply().ok();
            // Read the role back from IAM into the state.
            wd.run(&[
                "apply",
                "-refresh-only",
                "-auto-approve",
                "-input=false",
                "-no-color",
            ])
            .ok();
            let state = wd.show_json();
            let role = resource_values_in(&state, "gcpfed_role.r")
                .unwrap_or_else(|| panic!("[{engine}] gcpfed_role.r not in state"));
            let from_state = role["trust_policy"].as_str().expect("trust_policy");
            let two = output_str(&state, engine, "two");
            let one = output_str(&state, engine, "one");
            assert_eq!(two, from_state, "[{engine}] function vs role state");
            assert_eq!(two, EXPECTED_TWO, "[{engine}] function vs hand-written");
            assert_eq!(one, EXPECTED_ONE, "[{engine}] one ID vs hand-written");

            // IAM's own document (URL-encoded, as IAM returns it), decoded: the same bytes.
            let got = block_on(bed.iam().get_role().role_name(&name).send())
                .unwrap_or_else(|e| panic!("[{engine}] GetRole {name}: {e:?}"));
            let encoded = got
                .role()
                .and_then(|r| r.assume_role_policy_document())
                .expect("a trust policy");
            let decoded = percent_decode_str(encoded)
                .decode_utf8()
                .expect("UTF-8 trust policy");
            assert_eq!(decoded, two, "[{engine}] function vs IAM's document");
            wd.destroy().ok();
        },
    );
}

#[test]
fn arguments_gcpfed_role_refuses_fail_naming_the_argument() {
    let cases: [(&str, &str, &[&str]); 4] = [
        (
            r#""""#,
            r#"["104857600000000000001"]"#,
            &[r#""audience""#, "Empty audience", "Set audience"],
        ),
        (
            r#""aud""#,
            r#"["12ab"]"#,
            &[r#""unique_ids""#, "not all digits"],
        ),
        (
            r#""aud""#,
            r#"["ci-runner@gcpfed-test.iam.gserviceaccount.com"]"#,
            &[
                r#""unique_ids""#,
                "email",
                "google_service_account.x.unique_id",
            ],
        ),
        (
            r#""aud""#,
            "[]",
            &[
                r#""unique_ids""#,
                "No service account unique ID",
                "at least one",
            ],
        ),
    ];
    for_engines(
        &engines("arguments_gcpfed_role_refuses_fail_naming_the_argument"),
        |engine| {
            for (audience, ids, phrases) in &cases {
                let main_tf = format!(
                    "{REQUIRED_PROVIDERS}\noutput \"p\" {{\n  value = provider::gcpfed::trust_policy({audience}, {ids})\n}}\n"
                );
                let wd = Workdir::new(engine, &main_tf, &env());
                let run = wd.plan();
                run.fails().assert_contains(phrases);
                run.assert_contains(&["provider::gcpfed::trust_policy"]);
                assert_no_leak(engine, &run_texts("plan", &run), &[]);
            }
        },
    );
}
