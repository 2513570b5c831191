//! Acceptance tests of `ephemeral "gcpfed_credentials"` (issue 10) under the engines that have
//! ephemeral resources (Terraform 1.10.5 and 1.15.5 here; OpenTofu only from 1.11), on the strict
//! local test bed: an aliased `gcpfed` provider fed from the ephemeral credentials manages a role
//! (the gate's recorder shows its IAM calls signed with the exchanged key), and afterwards no
//! trace of the exchange is left: neither the state file, nor a saved plan (`show -json` of it and
//! the file's own contents), nor any command output holds the access key ID, the secret key, the
//! session token or the ID token. The values searched for are the real ones, taken from the
//! gate's records of each exchange. Errors (a wrong audience, invalid arguments) fail the plan
//! and name the fix and the attribute.
//!
//! Every test here needs the bed's recorder or its emulated service accounts, so on the AWS
//! sandbox target they print why they are skipped.

mod support;

use std::path::Path;
use std::process::Command;

use serde_json::Value;
use support::bed::{ExchangeSecrets, TestBed, ACCOUNT_ID, REGION, RUNNER_ID};
use support::target::Acc;
use support::tf::{for_engines, Engine, Workdir, REQUIRED_PROVIDERS};
use support::{assert_no_leak, q, run_texts};

const EPH: &str = "ephemeral.gcpfed_credentials.ci";
const AUDIENCE: &str = "sts.amazonaws.com/gcpfedacc-ephemeral";
const PLAN_FILE: &str = "gcpfed-ephemeral.tfplan";

/// The engines with ephemeral resources; prints which are left out, and why.
fn engines(test: &str) -> Vec<Engine> {
    support::engines_having(
        test,
        Engine::has_ephemeral_resources,
        support::EPHEMERAL_RESOURCES,
    )
}

/// The bed's provider block, for the exchange itself (unsigned) and for roles made with the
/// bed's own keys.
fn default_provider(bed: &TestBed) -> String {
    bed.provider_hcl()
}

/// `provider "gcpfed" { alias = "ci" }` configured from the ephemeral credentials.
fn ephemeral_provider(bed: &TestBed) -> String {
    format!(
        r#"provider "gcpfed" {{
  alias         = "ci"
  region        = "{REGION}"
  access_key    = {EPH}.access_key_id
  secret_key    = {EPH}.secret_access_key
  token         = {EPH}.session_token
  metadata_host = {metadata}
  endpoints {{
    iam = {aws}
    sts = {aws}
  }}
}}
"#,
        metadata = q(&bed.metadata_host),
        aws = q(&bed.aws_endpoint),
    )
}

fn ephemeral_block(args: &str) -> String {
    format!("ephemeral \"gcpfed_credentials\" \"ci\" {{\n{args}}}\n")
}

/// A role managed through the ephemeral credentials' provider.
fn role_via_alias(name: &str) -> String {
    format!(
        r#"resource "gcpfed_role" "via_ephemeral" {{
  provider                   = gcpfed.ci
  name                       = {name}
  audience                   = {aud}
  service_account_unique_ids = [{id}]
}}
"#,
        name = q(name),
        aud = q(AUDIENCE),
        id = q(RUNNER_ID),
    )
}

/// The whole flow as users write it: a role made with the bed's keys, the ephemeral
/// credentials for it (opened at apply once its ARN is known), the aliased provider fed from
/// them, and a role that provider manages.
fn role_and_alias_config(bed: &TestBed, name: &str, via_alias: &str) -> String {
    format!(
        r#"{REQUIRED_PROVIDERS}
{default}
resource "gcpfed_role" "ci" {{
  name                       = {name}
  audience                   = {aud}
  service_account_unique_ids = [{id}]
}}

{ephemeral}
{alias}
{role}"#,
        default = default_provider(bed),
        name = q(name),
        aud = q(AUDIENCE),
        id = q(RUNNER_ID),
        ephemeral = ephemeral_block(
            "  role_arn = gcpfed_role.ci.arn\n  audience = gcpfed_role.ci.audience\n"
        ),
        alias = ephemeral_provider(bed),
        role = role_via_alias(via_alias),
    )
}

fn env() -> Vec<(String, String)> {
    vec![("AWS_EC2_METADATA_DISABLED".into(), "true".into())]
}

fn file_text(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// Every member of a saved plan (a zip archive: the plan proper, the prior state, the
/// configuration) as text, read with the test venv's Python (the standard library's zipfile).
fn plan_file_members(engine: Engine, path: &Path) -> String {
    let script = "import sys, zipfile\n\
                  z = zipfile.ZipFile(sys.argv[1])\n\
                  for n in z.namelist():\n\
                  \x20   sys.stdout.write(n + '\\n' + z.read(n).decode('utf-8', 'replace') + '\\n')\n";
    let out = Command::new(support::python())
        .args(["-c", script])
        .arg(path)
        .output()
        .unwrap_or_else(|e| panic!("[{engine}] cannot run Python to unzip the plan: {e}"));
    assert!(
        out.status.success(),
        "[{engine}] unzipping {}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        text.contains("tfplan"),
        "[{engine}] the plan file has no tfplan member: {}",
        &text[..text.len().min(200)]
    );
    text
}

/// Each exchange's four values, named for the leak check.
fn secrets_of(all: &[ExchangeSecrets]) -> Vec<(&'static str, &str)> {
    all.iter().flat_map(|s| s.named()).collect()
}

// ---------------------------------------------------------------------------------------------

#[test]
fn ephemeral_credentials_leave_no_trace() {
    let Some(acc) = Acc::local_only(
        "ephemeral_credentials_leave_no_trace",
        "it takes the exchanged secrets from the local bed's gate records",
    ) else {
        return;
    };
    let bed = acc.bed().expect("Acc::local_only gives the local bed");
    for_engines(&engines("ephemeral_credentials_leave_no_trace"), |engine| {
        let name = acc.unique_name("eph");
        let via_alias = acc.unique_name("eph-alias");
        let main_tf = role_and_alias_config(bed, &name, &via_alias);
        let wd = Workdir::new(engine, &main_tf, &env());
        bed.clear_calls();

        let apply = wd.apply();
        apply.ok();
        let state_file = wd.path().join("terraform.tfstate");
        let state_after_apply = file_text(&state_file);
        let opened = bed.exchange_secrets();
        assert!(
            !opened.is_empty(),
            "[{engine}] apply opened no exchange: {:?}",
            bed.calls()
        );
        // The aliased provider's IAM calls were signed with a key that an exchange issued;
        // the first role was made with the bed's own key.
        let issued: Vec<&str> = opened.iter().map(|s| s.access_key_id.as_str()).collect();
        let created_by: Vec<String> = bed
            .calls()
            .iter()
            .filter(|c| c.action == "CreateRole")
            .map(|c| c.access_key_id.clone().unwrap_or_default())
            .collect();
        assert_eq!(created_by.len(), 2, "[{engine}] {created_by:?}");
        assert_eq!(created_by[0], "testing", "[{engine}] {created_by:?}");
        assert!(
            issued.contains(&created_by[1].as_str()) && created_by[1].starts_with("ASIA"),
            "[{engine}] the alias's CreateRole was signed with {:?}, not an exchanged key ({issued:?})",
            created_by[1]
        );
        let state = wd.show_json();
        let alias_role = support::tf::resource_values_in(&state, "gcpfed_role.via_ephemeral")
            .unwrap_or_else(|| panic!("[{engine}] the alias's role is not in state"));
        assert_eq!(
            alias_role["arn"],
            Value::from(format!("arn:aws:iam::{ACCOUNT_ID}:role/{via_alias}"))
        );
        let addresses: Vec<&str> = state
            .pointer("/values/root_module/resources")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|r| r["address"].as_str())
            .collect();
        assert!(
            !addresses.iter().any(|a| a.starts_with("ephemeral.")),
            "[{engine}] an ephemeral resource is in state: {addresses:?}"
        );

        // A second plan opens a new exchange, reads the alias's role with the fresh key, and
        // changes nothing.
        bed.clear_calls();
        let second = wd.plan_detailed();
        assert_eq!(second.status, 0, "{}", second.describe("second plan"));
        let reopened = bed.exchange_secrets();
        assert_eq!(reopened.len(), 1, "[{engine}] {reopened:?}");
        let read_with_fresh_key = bed.calls().iter().any(|c| {
            c.action == "GetRole"
                && c.access_key_id.as_deref() == Some(reopened[0].access_key_id.as_str())
        });
        assert!(read_with_fresh_key, "[{engine}] {:?}", bed.calls());

        // A saved plan, its JSON form and the file's own members.
        let saved = wd.run(&[
            "plan",
            "-input=false",
            "-no-color",
            &format!("-out={PLAN_FILE}"),
        ]);
        saved.ok();
        let shown = wd.run(&["show", "-json", "-no-color", PLAN_FILE]);
        shown.ok();
        let plan_members = plan_file_members(engine, &wd.path().join(PLAN_FILE));
        let state_show = wd.run(&["show", "-json", "-no-color"]);
        state_show.ok();
        let destroy = wd.destroy();
        destroy.ok();

        let all: Vec<ExchangeSecrets> = [opened, reopened, bed.exchange_secrets()].concat();
        assert!(all.len() >= 4, "[{engine}] {all:?}");
        assert!(
            state_after_apply.contains(&via_alias),
            "[{engine}] the state file was not found or lacks the alias's role"
        );
        let mut texts = vec![
            ("the state file after apply".to_string(), state_after_apply),
            (
                "the state file after destroy".to_string(),
                file_text(&state_file),
            ),
            (
                "the state backup".to_string(),
                file_text(&wd.path().join("terraform.tfstate.backup")),
            ),
            ("the saved plan's members".to_string(), plan_members),
        ];
        for (label, run) in [
            ("apply", &apply),
            ("second plan", &second),
            ("plan -out", &saved),
            ("show -json PLAN", &shown),
            ("show -json", &state_show),
            ("destroy", &destroy),
        ] {
            texts.extend(run_texts(label, run));
        }
        // Control: the search does find a value where it is (destroy's IAM calls through the
        // alias, as the gate recorded them, carry the last exchanged key).
        let recorded = format!("{:?}", bed.calls());
        let last = all.last().expect("an exchange");
        assert!(
            recorded.contains(&last.access_key_id),
            "[{engine}] control: destroy's calls were not signed with the exchanged key"
        );
        assert_no_leak(engine, &texts, &secrets_of(&all));
    });
}

#[test]
fn a_wrong_audience_fails_the_plan_naming_the_fix() {
    let Some(acc) = Acc::local_only(
        "a_wrong_audience_fails_the_plan_naming_the_fix",
        "it needs the bed's emulated service accounts and strict STS gate",
    ) else {
        return;
    };
    let bed = acc.bed().expect("Acc::local_only gives the local bed");
    for_engines(
        &engines("a_wrong_audience_fails_the_plan_naming_the_fix"),
        |engine| {
            let (_, arn) = acc.create_trusted_role("eph-deny", AUDIENCE, &[RUNNER_ID]);
            let main_tf = format!(
                "{REQUIRED_PROVIDERS}\n{}\n{}\n{}\n{}",
                default_provider(bed),
                ephemeral_block(&format!(
                    "  role_arn = {}\n  audience = \"some-other-audience\"\n",
                    q(&arn)
                )),
                ephemeral_provider(bed),
                role_via_alias(&acc.unique_name("eph-never")),
            );
            let wd = Workdir::new(engine, &main_tf, &env());
            let run = wd.plan();
            run.fails().assert_contains(&[
            "STS denied AssumeRoleWithWebIdentity",
            &format!("with {EPH}"),
            "accounts.google.com:oaud is compared with the token's aud = \"some-other-audience\"",
            &format!(
                "Mismatch: accounts.google.com:oaud allows \"{AUDIENCE}\" but the token's aud is \"some-other-audience\""
            ),
        ]);
            assert_no_leak(engine, &run_texts("plan", &run), &[]);
        },
    );
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
    let cases = [
        (
            "role_arn",
            format!(
                "  role_arn = \"arn:aws:sts::{ACCOUNT_ID}:assumed-role/r/s\"\n  audience = {}\n",
                q(AUDIENCE)
            ),
            vec!["Invalid role ARN", "gcpfed_role.x.arn"],
        ),
        (
            "duration_seconds",
            format!(
                "  role_arn = {}\n  audience = {}\n  duration_seconds = 600\n",
                q(&role),
                q(AUDIENCE)
            ),
            vec!["Invalid session duration", "900"],
        ),
        (
            "audience",
            format!("  role_arn = {}\n  audience = \" \"\n", q(&role)),
            vec!["Empty audience", "gcpfed_role.x.audience"],
        ),
    ];
    for_engines(
        &engines("invalid_arguments_fail_at_plan_with_their_path"),
        |engine| {
            bed.clear_calls();
            for (attr, args, phrases) in &cases {
                let main_tf = format!(
                    "{REQUIRED_PROVIDERS}\n{}\n{}\n{}",
                    default_provider(bed),
                    ephemeral_block(args),
                    ephemeral_provider(bed),
                );
                let run = Workdir::new(engine, &main_tf, &env()).plan();
                support::assert_attribute_error(
                    &run,
                    &main_tf,
                    EPH,
                    "ephemeral \"gcpfed_credentials\" \"ci\"",
                    attr,
                    phrases,
                );
            }
            assert!(
                bed.exchange_secrets().is_empty()
                    && !bed
                        .calls()
                        .iter()
                        .any(|c| c.action == "AssumeRoleWithWebIdentity"),
                "[{engine}] an invalid configuration reached STS"
            );
        },
    );
}

/// The leak search of `ephemeral_credentials_leave_no_trace` does catch a leak: the same
/// configuration with the data source instead leaves the session token in the state file.
#[test]
fn the_leak_search_finds_the_data_sources_secrets_in_state() {
    let Some(acc) = Acc::local_only(
        "the_leak_search_finds_the_data_sources_secrets_in_state",
        "it takes the exchanged secrets from the local bed's gate records",
    ) else {
        return;
    };
    let bed = acc.bed().expect("Acc::local_only gives the local bed");
    for_engines(&[Engine::Terraform], |engine| {
        let ephemeral_tf = role_and_alias_config(
            bed,
            &acc.unique_name("eph-ctl"),
            &acc.unique_name("eph-ctl-alias"),
        );
        let data_tf = ephemeral_tf
            .replace(
                "ephemeral \"gcpfed_credentials\"",
                "data \"gcpfed_credentials\"",
            )
            .replace(EPH, "data.gcpfed_credentials.ci");
        assert_ne!(data_tf, ephemeral_tf);
        let wd = Workdir::new(engine, &data_tf, &env());
        bed.clear_calls();
        wd.apply().ok();
        let state = file_text(&wd.path().join("terraform.tfstate"));
        let secrets = bed.exchange_secrets();
        let outcome = std::panic::catch_unwind(|| {
            assert_no_leak(
                engine,
                &[("the state file".to_string(), state.clone())],
                &secrets_of(&secrets),
            )
        });
        let message = outcome
            .expect_err("the data source's secrets were not found in its state")
            .downcast::<String>()
            .map(|m| *m)
            .unwrap_or_default();
        assert!(
            message.contains("appears in the state file"),
            "[{engine}] {message}"
        );
        wd.destroy().ok();
    });
}
