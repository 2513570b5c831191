//! Acceptance tests of the provider's `assume_role_with_gcp_identity` (issue 5) under real
//! Terraform and OpenTofu on the strict local test bed: with no AWS credential anywhere in the
//! environment (no key variables, empty shared files, no instance metadata), the provider gets
//! its own AWS credentials from the Google identity exchange and applies and destroys a
//! `gcpfed_role`; the gate's records show every IAM call signed with a key that an exchange for
//! the bootstrap role returned (moto's GetCallerIdentity maps the key back to its
//! assumed-role session). A denial is reported on the block with the token's claims.
//!
//! The bootstrap role (the one the provider assumes) is created out of band through the bed's
//! IAM; moto does not enforce IAM permissions, so it carries none.

mod support;

use std::collections::{BTreeMap, BTreeSet};

use support::bed::{block_on, TestBed, ACCOUNT_ID, DEPLOYER_ID, NOT_AUTHORIZED, REGION, RUNNER_ID};
use support::target::{process_env, unique_name};
use support::tf::{
    for_each_engine, for_engines, resource_values_in, Engine, Workdir, REQUIRED_PROVIDERS,
};

const BOOTSTRAP_AUDIENCE: &str = "sts.amazonaws.com/gcpfedacc-bootstrap";
const APP_AUDIENCE: &str = "sts.amazonaws.com/gcpfedacc-app";
const ADDR: &str = "gcpfed_role.app";
const EXCHANGE: &str = "AssumeRoleWithWebIdentity";

/// Variables through which the AWS SDK could find credentials; none may reach the engines.
const CREDENTIAL_VARIABLES: [&str; 9] = [
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_ROLE_ARN",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
];

/// Creates the role the provider assumes (trusting the bed's default runner, its trust policy
/// written out by hand); returns its ARN.
fn create_bootstrap_role(bed: &TestBed, name: &str) -> String {
    support::iam::create_trusted_role(&bed.iam(), name, BOOTSTRAP_AUDIENCE, &[RUNNER_ID])
}

/// A configuration whose provider has no key, only `assume_role_with_gcp_identity`.
fn keyless_config(bed: &TestBed, bootstrap_arn: &str, audience: &str, role_name: &str) -> String {
    format!(
        r#"{REQUIRED_PROVIDERS}
provider "gcpfed" {{
  region        = "{REGION}"
  metadata_host = {metadata}
  endpoints {{
    iam = {aws}
    sts = {aws}
  }}
  assume_role_with_gcp_identity {{
    role_arn = {role_arn}
    audience = {audience}
  }}
}}

resource "gcpfed_role" "app" {{
  name                       = {name}
  audience                   = {app_audience}
  service_account_unique_ids = [{deployer}]
}}
"#,
        metadata = support::q(&bed.metadata_host),
        aws = support::q(&bed.aws_endpoint),
        role_arn = support::q(bootstrap_arn),
        audience = support::q(audience),
        name = support::q(role_name),
        app_audience = support::q(APP_AUDIENCE),
        deployer = support::q(DEPLOYER_ID),
    )
}

/// A working directory whose environment holds no AWS credential: the driver already drops
/// every AWS_* variable of the host and gives a private HOME; the shared files point at empty
/// files and instance metadata is off.
fn keyless_workdir(engine: Engine, main_tf: &str) -> Workdir {
    let mut wd = Workdir::new(engine, main_tf, &[]);
    let empty = wd.path().join("empty-aws-file");
    std::fs::write(&empty, "").expect("empty AWS file");
    let empty = empty.display().to_string();
    wd.set_env("AWS_SHARED_CREDENTIALS_FILE", &empty);
    wd.set_env("AWS_CONFIG_FILE", &empty);
    wd.set_env("AWS_EC2_METADATA_DISABLED", "true");
    let env = wd.command_env(&process_env());
    for var in CREDENTIAL_VARIABLES {
        assert!(
            !env.contains_key(var),
            "[{engine}] {var} reaches the engine"
        );
    }
    let aws_vars: Vec<&String> = env.keys().filter(|k| k.starts_with("AWS_")).collect();
    assert_eq!(
        aws_vars,
        vec![
            "AWS_CONFIG_FILE",
            "AWS_EC2_METADATA_DISABLED",
            "AWS_SHARED_CREDENTIALS_FILE"
        ],
        "[{engine}] unexpected AWS variables"
    );
    wd
}

/// The caller ARN that moto associates with `access_key_id` (GetCallerIdentity straight at moto,
/// so not recorded by the gate). moto maps a key it issued in an AssumeRole* answer to that
/// session, and any other key to its default user.
fn caller_of(bed: &TestBed, access_key_id: &str) -> String {
    use aws_sdk_sts::config::{BehaviorVersion, Credentials, Region};
    let conf = aws_sdk_sts::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(REGION))
        .endpoint_url(&bed.moto_endpoint)
        .credentials_provider(Credentials::new(
            access_key_id,
            "unused-by-moto",
            None,
            None,
            "acc-keyless",
        ))
        .build();
    let out = block_on(
        aws_sdk_sts::Client::from_conf(conf)
            .get_caller_identity()
            .send(),
    )
    .unwrap_or_else(|e| panic!("GetCallerIdentity: {e:?}"));
    out.arn().expect("caller ARN").to_owned()
}

/// Checks the gate's records of one engine command: exchanges for the bootstrap role happened,
/// all unsigned and successful, no other AssumeRole*, and every IAM call was signed with a key
/// that moto issued to an exchange session of the bootstrap role. Returns the IAM actions.
#[track_caller]
fn assert_iam_signed_by_exchange(
    engine: Engine,
    step: &str,
    bed: &TestBed,
    bootstrap_name: &str,
    bootstrap_arn: &str,
) -> Vec<String> {
    let calls = bed.calls();
    let exchanges: Vec<_> = calls.iter().filter(|c| c.action == EXCHANGE).collect();
    assert!(!exchanges.is_empty(), "[{engine}] {step}: no exchange");
    for c in &exchanges {
        assert_eq!(
            c.role_arn.as_deref(),
            Some(bootstrap_arn),
            "[{engine}] {step}"
        );
        assert_eq!(c.status, 200, "[{engine}] {step}: {c:?}");
        assert_eq!(
            c.access_key_id, None,
            "[{engine}] {step}: a signed exchange"
        );
    }
    let others: Vec<_> = calls
        .iter()
        .filter(|c| c.action.starts_with("AssumeRole") && c.action != EXCHANGE)
        .collect();
    assert!(others.is_empty(), "[{engine}] {step}: {others:?}");

    let iam: Vec<_> = calls.iter().filter(|c| c.service == "iam").collect();
    assert!(!iam.is_empty(), "[{engine}] {step}: no IAM call recorded");
    let unexpected: Vec<_> = calls
        .iter()
        .filter(|c| c.service != "iam" && c.action != EXCHANGE)
        .collect();
    assert!(
        unexpected.is_empty(),
        "[{engine}] {step}: calls that are neither IAM nor the exchange: {unexpected:?}"
    );
    let keys: BTreeSet<String> = iam
        .iter()
        .map(|c| {
            c.access_key_id
                .clone()
                .unwrap_or_else(|| panic!("[{engine}] {step}: unsigned IAM call {}", c.action))
        })
        .collect();
    assert!(
        keys.len() <= exchanges.len(),
        "[{engine}] {step}: {} signing keys for {} exchanges",
        keys.len(),
        exchanges.len()
    );
    let session = format!("arn:aws:sts::{ACCOUNT_ID}:assumed-role/{bootstrap_name}/{RUNNER_ID}");
    for key in &keys {
        assert_ne!(
            key, "testing",
            "[{engine}] {step}: signed with the bed's static key"
        );
        assert_eq!(
            caller_of(bed, key),
            session,
            "[{engine}] {step}: IAM signed with a key that no exchange returned"
        );
    }
    iam.iter().map(|c| c.action.clone()).collect()
}

#[test]
fn apply_and_destroy_a_role_with_no_aws_key_in_the_environment() {
    let bed = TestBed::start();
    for_each_engine(|engine| {
        let bootstrap_name = unique_name(&format!("bootstrap-{engine}"));
        let bootstrap_arn = create_bootstrap_role(&bed, &bootstrap_name);
        let app_name = unique_name(&format!("keyless-{engine}"));
        let wd = keyless_workdir(
            engine,
            &keyless_config(&bed, &bootstrap_arn, BOOTSTRAP_AUDIENCE, &app_name),
        );

        bed.clear_calls();
        wd.apply().ok();
        let actions =
            assert_iam_signed_by_exchange(engine, "apply", &bed, &bootstrap_name, &bootstrap_arn);
        assert!(
            actions.iter().any(|a| a == "CreateRole"),
            "[{engine}] apply made no CreateRole: {actions:?}"
        );
        let values = resource_values_in(&wd.show_json(), ADDR)
            .unwrap_or_else(|| panic!("[{engine}] {ADDR} not in state"));
        assert_eq!(
            values["arn"],
            format!("arn:aws:iam::{ACCOUNT_ID}:role/{app_name}").as_str(),
            "[{engine}]"
        );
        let got = block_on(bed.iam().get_role().role_name(&app_name).send())
            .unwrap_or_else(|e| panic!("[{engine}] the role is not in IAM: {e:?}"));
        assert!(got.role().is_some());

        // A second plan is empty, on fresh credentials from a new exchange.
        bed.clear_calls();
        let plan = wd.plan_detailed();
        assert_eq!(
            plan.status,
            0,
            "{}",
            plan.describe("expected an empty plan")
        );
        assert_iam_signed_by_exchange(engine, "plan", &bed, &bootstrap_name, &bootstrap_arn);

        bed.clear_calls();
        wd.destroy().ok();
        let actions =
            assert_iam_signed_by_exchange(engine, "destroy", &bed, &bootstrap_name, &bootstrap_arn);
        assert!(
            actions.iter().any(|a| a == "DeleteRole"),
            "[{engine}] destroy made no DeleteRole: {actions:?}"
        );
        let gone = block_on(bed.iam().get_role().role_name(&app_name).send());
        assert!(gone.is_err(), "[{engine}] the role survived destroy");
    });
}

#[test]
fn a_refused_exchange_is_reported_on_the_block_with_the_claims() {
    let bed = TestBed::start();
    for_each_engine(|engine| {
        let bootstrap_name = unique_name(&format!("bootstrap-{engine}"));
        let bootstrap_arn = create_bootstrap_role(&bed, &bootstrap_name);
        let app_name = unique_name(&format!("refused-{engine}"));
        let wrong = "sts.amazonaws.com/not-the-bootstrap";
        let wd = keyless_workdir(
            engine,
            &keyless_config(&bed, &bootstrap_arn, wrong, &app_name),
        );
        bed.clear_calls();
        let plan = wd.plan();
        plan.fails();
        plan.assert_contains(&[
            "assume_role_with_gcp_identity: STS denied AssumeRoleWithWebIdentity",
            NOT_AUTHORIZED,
            &format!("accounts.google.com:oaud is compared with the token's aud = \"{wrong}\""),
            &format!("accounts.google.com:aud is compared with the token's azp = \"{RUNNER_ID}\""),
        ]);
        let calls = bed.calls();
        let by_action: BTreeMap<&str, usize> = calls.iter().fold(BTreeMap::new(), |mut m, c| {
            *m.entry(c.action.as_str()).or_default() += 1;
            m
        });
        assert!(
            calls
                .iter()
                .all(|c| c.action == EXCHANGE && c.access_key_id.is_none()),
            "[{engine}] only unsigned exchanges may happen: {by_action:?}"
        );
        assert!(
            by_action.contains_key(EXCHANGE),
            "[{engine}] no exchange: {by_action:?}"
        );
        let missing = block_on(bed.iam().get_role().role_name(&app_name).send());
        assert!(missing.is_err(), "[{engine}] a role was created");
    });
}

#[test]
fn invalid_block_arguments_fail_plan_at_their_attribute() {
    let bed = TestBed::start();
    for_each_engine(|engine| {
        let role_arn = format!("arn:aws:iam::{ACCOUNT_ID}:role/never-assumed");
        let config = keyless_config(&bed, &role_arn, BOOTSTRAP_AUDIENCE, "never-created").replace(
            "    audience = ",
            "    duration_seconds = 600\n    service_account = \"ci-runner\"\n    audience = ",
        );
        let wd = keyless_workdir(engine, &config);
        bed.clear_calls();
        let plan = wd.plan();
        plan.fails();
        // The engines quote the source line of the attribute a diagnostic points at.
        plan.assert_contains(&[
            "Invalid session duration",
            "duration_seconds = 600",
            "STS accepts 900 (15 minutes) to 43200",
            "Invalid service account",
            "service_account = \"ci-runner\"",
        ]);
        assert!(
            bed.calls().is_empty(),
            "[{engine}] an invalid block reached AWS"
        );
    });
}

/// The `output -json` values of a working directory, as strings.
fn string_outputs(wd: &Workdir) -> BTreeMap<String, String> {
    let run = wd.run_ok(&["output", "-json", "-no-color"]);
    let doc = wd.parse_json(&run);
    doc.as_object()
        .unwrap_or_else(|| panic!("{}", run.describe("outputs are not an object")))
        .iter()
        .filter_map(|(k, v)| Some((k.clone(), v["value"].as_str()?.to_owned())))
        .collect()
}

fn example(rel: &str) -> String {
    let path = support::repo_root().join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// examples/scenarios/keyless-runner as written, on the bed (only the environment points it
/// there: AWS_ENDPOINT_URL and GCE_METADATA_HOST are fallbacks of the provider and the helper):
/// the bootstrap applies with a workstation's keys; then, with no key, the runner's
/// configuration applies through its ephemeral credentials (so only under the engines with
/// ephemeral resources) and the AWS CLI works through the example's aws-config profile.
#[test]
fn the_keyless_runner_scenario_works_as_written() {
    let engines = support::engines_having(
        "the_keyless_runner_scenario_works_as_written",
        Engine::has_ephemeral_resources,
        support::EPHEMERAL_RESOURCES,
    );
    for_engines(&engines, |engine| {
        let bed = TestBed::start();
        // 1. Bootstrap, from a "workstation" with keys.
        let mut env = bed.aws_env();
        env.push(("TF_VAR_runner_unique_id".into(), RUNNER_ID.into()));
        let bootstrap = Workdir::new(
            engine,
            &example("examples/scenarios/keyless-runner/bootstrap/main.tf"),
            &env,
        );
        bootstrap.apply().ok();
        let bootstrap_arn = string_outputs(&bootstrap)
            .remove("bootstrap_role_arn")
            .unwrap_or_else(|| panic!("[{engine}] no bootstrap_role_arn output"));
        assert_eq!(
            bootstrap_arn,
            format!("arn:aws:iam::{ACCOUNT_ID}:role/gcpfed-ci-bootstrap")
        );

        // 2. The runner: no key at all.
        let mut runner = keyless_workdir(
            engine,
            &example("examples/scenarios/keyless-runner/main.tf"),
        );
        runner.set_env("AWS_ENDPOINT_URL", &bed.aws_endpoint);
        runner.set_env("GCE_METADATA_HOST", &bed.metadata_host);
        runner.set_env("TF_VAR_bootstrap_role_arn", &bootstrap_arn);
        runner.set_env("TF_VAR_deployer_unique_id", DEPLOYER_ID);
        bed.clear_calls();
        runner.apply().ok();
        let actions = assert_iam_signed_by_exchange(
            engine,
            "runner apply",
            &bed,
            "gcpfed-ci-bootstrap",
            &bootstrap_arn,
        );
        assert!(actions.iter().any(|a| a == "CreateRole"), "{actions:?}");
        assert_eq!(
            string_outputs(&runner)
                .get("deployer_role_arn")
                .map(String::as_str),
            Some(format!("arn:aws:iam::{ACCOUNT_ID}:role/ci-managed/app-deployer").as_str()),
            "[{engine}]"
        );

        // 3. The example's ~/.aws/config, with the real path of the binary.
        let config = example("examples/scenarios/keyless-runner/aws-config").replace(
            "/usr/local/bin/terraform-provider-gcpfed",
            env!("CARGO_BIN_EXE_terraform-provider-gcpfed"),
        );
        let home = runner.path().join("home");
        let config_path = runner.path().join("aws-config");
        std::fs::write(&config_path, config).expect("aws config");
        let empty = runner.path().join("empty-aws-file");
        let aws = support::repo_root().join(".tools/venv/bin/aws");
        let out = std::process::Command::new(&aws)
            .args([
                "sts",
                "get-caller-identity",
                "--profile",
                "gcp-ci",
                "--output",
                "json",
            ])
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", &home)
            .env("AWS_CONFIG_FILE", &config_path)
            .env("AWS_SHARED_CREDENTIALS_FILE", &empty)
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("AWS_ENDPOINT_URL", &bed.aws_endpoint)
            .env("GCE_METADATA_HOST", &bed.metadata_host)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", aws.display()));
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "[{engine}] aws --profile gcp-ci failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let identity: serde_json::Value = serde_json::from_str(&stdout).expect("JSON");
        assert_eq!(
            identity["Arn"],
            format!("arn:aws:sts::{ACCOUNT_ID}:assumed-role/gcpfed-ci-bootstrap/{RUNNER_ID}")
                .as_str()
        );
        assert!(
            home.join(".cache/gcpfed").is_dir(),
            "[{engine}] the profile did not use the default cache"
        );

        runner.destroy().ok();
        bootstrap.destroy().ok();
    });
}
