//! The engine matrix's compatibility suite (issue 10): what the full acceptance suite checks
//! under Terraform 1.15.5 and OpenTofu 1.6.2 (`ENGINES`), checked here in short under the older
//! Terraform releases users still run, 1.6.6 and 1.10.5 (`OLDER_TERRAFORMS`): the provider's
//! schema loads, a `gcpfed_role` lives and dies cleanly, the `gcpfed_credentials` data source
//! exchanges a token, and where the engine has them the ephemeral resource and the
//! `trust_policy` function work. The schema and function checks cost a second or two per engine,
//! so they run under all four engines (`ALL_ENGINES`).
//!
//! A feature an engine lacks is never a silent pass: each feature test splits its engines with
//! the capability methods of `support::tf::Engine`, runs the feature under those that have it,
//! and under the others checks that the engine really refuses the syntax (so a wrong capability
//! table fails here) and says so on stderr.
//!
//! Expected values (trust policies, ARNs) are written out by hand from INTERFACE.md, never
//! computed with the provider's code. Everything runs on the local test bed; IAM is read on moto
//! directly, outside Terraform.

mod support;

use serde_json::Value;
use support::bed::{block_on, TestBed, ACCOUNT_ID, REGION, RUNNER_EMAIL, RUNNER_ID};
use support::target::{announce, Acc};
use support::tf::{
    for_engines, resource_values_in, split_engines, Engine, Workdir, ALL_ENGINES,
    REQUIRED_PROVIDERS,
};

/// The engines this suite exists for; the full suite covers the other two of `ALL_ENGINES`.
const OLDER_TERRAFORMS: [Engine; 2] = [Engine::Terraform1_6, Engine::Terraform1_10];

const AUDIENCE: &str = "sts.amazonaws.com/gcpfedacc-engines";

/// INTERFACE.md's trust policy for `AUDIENCE` and the bed's runner account (one ID: a string
/// value), written out by hand.
const TRUST_RUNNER: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Federated":"accounts.google.com"},"Action":"sts:AssumeRoleWithWebIdentity","Condition":{"StringEquals":{"accounts.google.com:aud":"104857600000000000001","accounts.google.com:oaud":"sts.amazonaws.com/gcpfedacc-engines","accounts.google.com:sub":"104857600000000000001"}}}]}"#;

/// The same for the runner and the deployer (two IDs: a sorted list), written out by hand.
const TRUST_RUNNER_DEPLOYER: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Federated":"accounts.google.com"},"Action":"sts:AssumeRoleWithWebIdentity","Condition":{"StringEquals":{"accounts.google.com:aud":["104857600000000000001","104857600000000000002"],"accounts.google.com:oaud":"sts.amazonaws.com/gcpfedacc-engines","accounts.google.com:sub":["104857600000000000001","104857600000000000002"]}}}]}"#;

/// Says on stderr (libtest would swallow `eprintln!` of a passing test) which engines a
/// feature test leaves out and why.
fn announce_lacking(test: &str, lacking: &[Engine], why: &str) {
    for engine in lacking {
        announce(&format!(
            "SKIPPED {test} under {engine}: {why}; checked instead that {engine} refuses it"
        ));
    }
}

/// The bed this test's `Acc` started; `None` (after saying why) on the AWS sandbox target.
fn local_acc(test: &str) -> Option<Acc> {
    Acc::local_only(
        test,
        "the compatibility suite reads the bed's IAM and call recorder",
    )
}

fn the_bed(acc: &Acc) -> &TestBed {
    acc.bed().expect("Acc::local_only gives the local bed")
}

/// The role as IAM holds it (read on moto directly), `None` when IAM says NoSuchEntity.
fn role_in_iam(acc: &Acc, name: &str) -> Option<aws_sdk_iam::types::Role> {
    match block_on(acc.iam().get_role().role_name(name).send()) {
        Ok(out) => Some(out.role.expect("GetRole answers with the role")),
        Err(e) => {
            let text = format!("{}", aws_sdk_iam::error::DisplayErrorContext(&e));
            assert!(text.contains("NoSuchEntity"), "GetRole {name}: {text}");
            None
        }
    }
}

/// Creates, outside Terraform, a role the runner account may assume (for the exchange);
/// returns its ARN.
fn exchange_role(acc: &Acc, name: &str) -> String {
    support::iam::create_role(&acc.iam(), name, TRUST_RUNNER, None)
}

fn string_at<'a>(doc: &'a Value, key: &str) -> &'a str {
    doc.get(key)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("{key} is not a string in {doc}"))
}

// ---------------------------------------------------------------------------------------------

/// Every engine is the version its wrapper promises, loads the provider's schema, and shows the
/// ephemeral resource and the function exactly when it has those features.
#[test]
fn schema_loads_under_every_engine() {
    for_engines(&ALL_ENGINES, |engine| {
        let wd = Workdir::new(engine, REQUIRED_PROVIDERS, &[]);
        // A mis-installed wheel must not pass for another release.
        let version = wd.run_ok(&["version"]);
        assert_eq!(
            version.stdout.lines().next().unwrap_or_default(),
            engine.expected_version_line(),
            "{}",
            version.describe("unexpected engine version")
        );

        let schema = wd.providers_schema_json();
        let provider = schema
            .pointer(&format!(
                "/provider_schemas/{}",
                engine.provider_address().replace('/', "~1")
            ))
            .unwrap_or_else(|| panic!("[{engine}] no schema for our provider in {schema}"));
        for (kind, name) in [
            ("resource_schemas", "gcpfed_role"),
            ("data_source_schemas", "gcpfed_credentials"),
        ] {
            assert!(
                provider.pointer(&format!("/{kind}/{name}")).is_some(),
                "[{engine}] {kind} lacks {name}: {provider}"
            );
        }

        let ephemeral = provider.get("ephemeral_resource_schemas");
        if engine.has_ephemeral_resources() {
            let attrs = ephemeral
                .and_then(|e| e.pointer("/gcpfed_credentials/block/attributes"))
                .unwrap_or_else(|| {
                    panic!("[{engine}] no ephemeral resource gcpfed_credentials: {provider}")
                });
            // INTERFACE.md: its secrets are sensitive, as in the data source.
            for secret in ["secret_access_key", "session_token"] {
                assert_eq!(
                    attrs.pointer(&format!("/{secret}/sensitive")),
                    Some(&Value::Bool(true)),
                    "[{engine}] ephemeral {secret} is not sensitive: {attrs}"
                );
            }
        } else {
            // The engine predates ephemeral resources, so its schema output cannot have them;
            // if it does, Engine::has_ephemeral_resources is wrong about it.
            assert!(
                ephemeral.is_none(),
                "[{engine}] is listed without ephemeral resources, yet shows {ephemeral:?}"
            );
        }

        let functions = provider.get("functions");
        if engine.has_functions() {
            // Keyed by the provider's own function name; HCL calls it
            // provider::gcpfed::trust_policy.
            let f = functions
                .and_then(|f| f.get("trust_policy"))
                .unwrap_or_else(|| panic!("[{engine}] no function trust_policy: {provider}"));
            assert_eq!(f["return_type"], Value::from("string"), "[{engine}] {f}");
            let names: Vec<&str> = f["parameters"]
                .as_array()
                .unwrap_or_else(|| panic!("[{engine}] trust_policy has no parameters: {f}"))
                .iter()
                .map(|p| string_at(p, "name"))
                .collect();
            assert_eq!(names, ["audience", "unique_ids"], "[{engine}] {f}");
        } else {
            assert!(
                functions.is_none(),
                "[{engine}] is listed without functions, yet shows {functions:?}"
            );
        }
    });
}

/// Apply creates the role in IAM with the documented trust policy, a second plan is empty, and
/// destroy leaves nothing in IAM.
#[test]
fn role_lifecycle_under_older_terraform() {
    let Some(acc) = local_acc("role_lifecycle_under_older_terraform") else {
        return;
    };
    for_engines(&OLDER_TERRAFORMS, |engine| {
        let name = acc.unique_name("engines-role");
        let main_tf = format!(
            r#"{REQUIRED_PROVIDERS}
{provider}
resource "gcpfed_role" "r" {{
  name                       = "{name}"
  description                = "engine matrix"
  audience                   = "{AUDIENCE}"
  service_account_unique_ids = ["104857600000000000002", "104857600000000000001"]
  tags = {{
    suite = "engines"
  }}
}}
"#,
            provider = acc.provider_hcl()
        );
        let wd = Workdir::new(engine, &main_tf, &acc.env());
        wd.apply().ok();

        let role = role_in_iam(&acc, &name)
            .unwrap_or_else(|| panic!("[{engine}] apply left no role {name} in IAM"));
        assert_eq!(
            support::iam::document(role.assume_role_policy_document().unwrap_or_default()),
            serde_json::from_str::<Value>(TRUST_RUNNER_DEPLOYER).unwrap(),
            "[{engine}] trust policy in IAM"
        );
        assert_eq!(role.description(), Some("engine matrix"), "[{engine}]");

        let values = wd
            .resource_values("gcpfed_role.r")
            .unwrap_or_else(|| panic!("[{engine}] gcpfed_role.r is not in state"));
        assert_eq!(string_at(&values, "trust_policy"), TRUST_RUNNER_DEPLOYER);
        assert_eq!(
            string_at(&values, "arn"),
            format!("arn:aws:iam::{ACCOUNT_ID}:role/{name}")
        );

        let second = wd.plan_detailed();
        assert_eq!(
            second.status,
            0,
            "{}",
            second.describe("the second plan is not empty")
        );

        wd.destroy().ok();
        assert!(
            role_in_iam(&acc, &name).is_none(),
            "[{engine}] role {name} is still in IAM after destroy"
        );
    });
}

/// The data source exchanges the runner's token for credentials that work at the bed's STS.
#[test]
fn credentials_data_source_under_older_terraform() {
    let Some(acc) = local_acc("credentials_data_source_under_older_terraform") else {
        return;
    };
    for_engines(&OLDER_TERRAFORMS, |engine| {
        let name = acc.unique_name("engines-ds");
        let arn = exchange_role(&acc, &name);
        let main_tf = format!(
            r#"{REQUIRED_PROVIDERS}
{provider}
data "gcpfed_credentials" "c" {{
  role_arn = "{arn}"
  audience = "{AUDIENCE}"
}}
"#,
            provider = acc.provider_hcl()
        );
        let wd = Workdir::new(engine, &main_tf, &acc.env());
        wd.apply().ok();

        let state = wd.show_json();
        let v = resource_values_in(&state, "data.gcpfed_credentials.c")
            .unwrap_or_else(|| panic!("[{engine}] the data source is not in state: {state}"));
        let session = format!("arn:aws:sts::{ACCOUNT_ID}:assumed-role/{name}/{RUNNER_ID}");
        assert_eq!(string_at(&v, "assumed_role_arn"), session, "[{engine}]");
        assert_eq!(string_at(&v, "subject"), RUNNER_ID, "[{engine}]");
        assert_eq!(string_at(&v, "email"), RUNNER_EMAIL, "[{engine}]");
        let key = string_at(&v, "access_key_id");
        assert!(key.starts_with("ASIA"), "[{engine}] access_key_id {key}");

        // The credentials are real ones: STS knows them as the assumed role.
        let caller = block_on(
            acc.sts_with(
                key,
                string_at(&v, "secret_access_key"),
                string_at(&v, "session_token"),
            )
            .get_caller_identity()
            .send(),
        )
        .unwrap_or_else(|e| panic!("[{engine}] GetCallerIdentity: {e:?}"));
        assert_eq!(caller.arn(), Some(session.as_str()), "[{engine}]");

        wd.destroy().ok();
    });
}

/// Under engines with ephemeral resources: `ephemeral "gcpfed_credentials"` configures an
/// aliased provider that creates a role, signing IAM with the exchanged key, and no credential
/// reaches the state. Under the others: the engine refuses the block.
#[test]
fn ephemeral_credentials_configure_a_provider() {
    let test = "ephemeral_credentials_configure_a_provider";
    // The older releases only: tests/acc_ephemeral.rs covers every engine in depth.
    let (with, without) = split_engines(&OLDER_TERRAFORMS, Engine::has_ephemeral_resources);
    announce_lacking(
        test,
        &without,
        "ephemeral resources came with Terraform 1.10 (OpenTofu 1.11)",
    );
    // (Guarded: for_engines refuses an empty list, which is right only for the engines that
    // must run a feature.)
    if !without.is_empty() {
        for_engines(&without, |engine| {
            let main_tf = format!(
                "{REQUIRED_PROVIDERS}\nephemeral \"gcpfed_credentials\" \"ci\" {{\n  role_arn = \"arn:aws:iam::{ACCOUNT_ID}:role/x\"\n  audience = \"{AUDIENCE}\"\n}}\n"
            );
            Workdir::new(engine, &main_tf, &[])
                .validate()
                .fails()
                .assert_contains(&["Blocks of type \"ephemeral\" are not expected here"]);
        });
    }

    let Some(acc) = local_acc(test) else {
        return;
    };
    let bed = the_bed(&acc);
    for_engines(&with, |engine| {
        let arn = exchange_role(&acc, &acc.unique_name("engines-eph"));
        let made = acc.unique_name("engines-made");
        let main_tf = format!(
            r#"{REQUIRED_PROVIDERS}
{provider}
ephemeral "gcpfed_credentials" "ci" {{
  role_arn = "{arn}"
  audience = "{AUDIENCE}"
}}

provider "gcpfed" {{
  alias      = "ci"
  region     = "{REGION}"
  access_key = ephemeral.gcpfed_credentials.ci.access_key_id
  secret_key = ephemeral.gcpfed_credentials.ci.secret_access_key
  token      = ephemeral.gcpfed_credentials.ci.session_token
  endpoints {{
    iam = "{aws}"
    sts = "{aws}"
  }}
}}

resource "gcpfed_role" "made" {{
  provider                   = gcpfed.ci
  name                       = "{made}"
  audience                   = "{AUDIENCE}"
  service_account_unique_ids = ["{RUNNER_ID}"]
}}
"#,
            provider = acc.provider_hcl(),
            aws = bed.aws_endpoint,
        );
        let wd = Workdir::new(engine, &main_tf, &acc.env());
        bed.clear_calls();
        wd.apply().ok();

        // The role was created by the aliased provider, with the exchanged session key.
        let calls = bed.calls();
        let create = calls
            .iter()
            .find(|c| c.action == "CreateRole" && c.status == 200)
            .unwrap_or_else(|| panic!("[{engine}] no successful CreateRole in {calls:?}"));
        let key = create.access_key_id.clone().unwrap_or_default();
        assert!(
            key.starts_with("ASIA"),
            "[{engine}] CreateRole was signed with {key:?}, not an exchanged session key"
        );
        assert!(
            calls.iter().any(|c| c.action == "AssumeRoleWithWebIdentity"
                && c.status == 200
                && c.role_arn.as_deref() == Some(arn.as_str())),
            "[{engine}] no exchange for {arn} in {calls:?}"
        );
        let role = role_in_iam(&acc, &made)
            .unwrap_or_else(|| panic!("[{engine}] apply left no role {made} in IAM"));
        assert_eq!(
            support::iam::document(role.assume_role_policy_document().unwrap_or_default()),
            serde_json::from_str::<Value>(TRUST_RUNNER).unwrap(),
            "[{engine}] trust policy in IAM"
        );

        // Nothing of the ephemeral resource lands in state.
        let state = std::fs::read_to_string(wd.path().join("terraform.tfstate"))
            .unwrap_or_else(|e| panic!("[{engine}] no state file: {e}"));
        assert!(
            !state.contains(&key),
            "[{engine}] the exchanged access key id is in the state"
        );
        // (The role's `dependencies` do name `ephemeral.gcpfed_credentials.ci`: Terraform keeps
        // the address for ordering, never the values.)
        let doc: Value = serde_json::from_str(&state).expect("the state is JSON");
        let kept: Vec<String> = doc["resources"]
            .as_array()
            .expect("resources in the state")
            .iter()
            .map(|r| format!("{} {}", string_at(r, "mode"), string_at(r, "type")))
            .collect();
        assert_eq!(kept, ["managed gcpfed_role"], "[{engine}] state: {state}");

        let second = wd.plan_detailed();
        assert_eq!(
            second.status,
            0,
            "{}",
            second.describe("the second plan is not empty")
        );
        wd.destroy().ok();
        assert!(
            role_in_iam(&acc, &made).is_none(),
            "[{engine}] role {made} is still in IAM after destroy"
        );
    });
}

/// Under engines with provider functions: `provider::gcpfed::trust_policy` returns exactly
/// INTERFACE.md's trust policy (one ID: a string; several: a sorted list). Under the others:
/// the engine refuses the call's syntax.
#[test]
fn trust_policy_function() {
    let (with, without) = split_engines(&ALL_ENGINES, Engine::has_functions);
    announce_lacking(
        "trust_policy_function",
        &without,
        "provider functions came with Terraform 1.8 (OpenTofu 1.7)",
    );
    let main_tf = format!(
        r#"{REQUIRED_PROVIDERS}
output "one" {{
  value = provider::gcpfed::trust_policy("aud", ["123456789012345678901"])
}}

output "two" {{
  value = provider::gcpfed::trust_policy("{AUDIENCE}", ["104857600000000000002", "104857600000000000001"])
}}
"#
    );
    // Line of the first call, where an engine without functions stops parsing.
    let call_line = main_tf
        .lines()
        .position(|l| l.contains("provider::gcpfed::trust_policy"))
        .expect("the call is in the configuration")
        + 1;

    if !without.is_empty() {
        for_engines(&without, |engine| {
            Workdir::new(engine, &main_tf, &[])
                .validate()
                .fails()
                .assert_contains(&[&format!("on main.tf line {call_line}, in output \"one\"")]);
        });
    }

    for_engines(&with, |engine| {
        let wd = Workdir::new(engine, &main_tf, &[]);
        wd.apply().ok();
        // `output -raw` prints the string exactly, without quotes or a newline.
        let one = wd.run_ok(&["output", "-raw", "one"]);
        assert_eq!(
            one.stdout,
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Federated":"accounts.google.com"},"Action":"sts:AssumeRoleWithWebIdentity","Condition":{"StringEquals":{"accounts.google.com:aud":"123456789012345678901","accounts.google.com:oaud":"aud","accounts.google.com:sub":"123456789012345678901"}}}]}"#,
            "[{engine}] trust_policy with one ID"
        );
        let two = wd.run_ok(&["output", "-raw", "two"]);
        assert_eq!(
            two.stdout, TRUST_RUNNER_DEPLOYER,
            "[{engine}] trust_policy with two IDs"
        );
    });
}
