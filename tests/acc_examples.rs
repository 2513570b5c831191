//! The examples/ a reader copies are tested like code, under Terraform and OpenTofu:
//!
//! * every folder of examples/ holding `.tf` files passes `fmt -check` and `validate` (with the
//!   freshly built provider through dev_overrides: no `init`, no network; a folder calling a
//!   module gets `get`, which installs local modules offline);
//! * the quickstart (what `make demo` applies) and the multi-account scenario apply and destroy
//!   cleanly on the local test bed, and the blog post's TeamA-S3ReadOnlyAccess scenario applies
//!   and its AWS config profile works with the AWS CLI;
//! * examples that use ephemeral resources (the quickstart, the keyless runner, the ephemeral
//!   resource's snippet) or provider functions (the function's snippet) run only under the
//!   engines that have them (Terraform 1.10.5 and 1.15.5 here), and say so for the others; the
//!   data-source-legacy scenario applies under every engine of the matrix, OpenTofu 1.6.2 and
//!   Terraform 1.6.6 included.
//!
//! Each test works on a copy of the whole examples/ tree, so relative module sources resolve and
//! nothing (state, `.terraform/`) is written into the repository.

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use aws_sdk_sts::primitives::{DateTime, DateTimeFormat};
use serde_json::Value;
use support::bed::{block_on, TestBed, ACCOUNT_ID, DEPLOYER_ID, REGION, RUNNER_ID};
use support::target::announce;
use support::tf::{
    for_each_engine, for_engines, planned_actions, provider_binary, resource_values_in, Engine,
    Run, Workdir, ALL_ENGINES, REQUIRED_PROVIDERS,
};

/// Providers an example may use and still be validated offline: ours, and Terraform's built-in.
const LOCAL_PROVIDER_SOURCES: [&str; 2] = ["gcpfed/gcpfed", "terraform.io/builtin/terraform"];

/// Added to a copied folder that has no `required_providers` (a snippet such as
/// examples/resources/gcpfed_role/resource.tf, shown as is in docs/): without it `gcpfed`
/// would mean hashicorp/gcpfed.
const SNIPPET_PROVIDERS_FILE: &str = "zz_acc_examples_providers.tf";

fn examples_root() -> PathBuf {
    support::repo_root().join("examples")
}

/// Every folder under examples/ that holds `.tf` files, relative to the repository root
/// (`examples/quickstart`, ...), sorted.
fn example_dirs() -> Vec<String> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let mut has_tf = false;
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
            .map(|e| e.expect("directory entry"))
            .collect();
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            let path = entry.path();
            let name = entry.file_name();
            if name == ".terraform" {
                continue;
            }
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|x| x == "tf") {
                has_tf = true;
            }
        }
        if has_tf {
            out.push(dir.to_path_buf());
        }
    }
    let mut dirs = Vec::new();
    walk(&examples_root(), &mut dirs);
    let root = support::repo_root();
    let mut rel: Vec<String> = dirs
        .iter()
        .map(|d| {
            d.strip_prefix(&root)
                .expect("under the repository")
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    rel.sort();
    rel
}

/// All `.tf` files of one folder (not its subfolders), concatenated.
fn folder_hcl(dir: &Path) -> String {
    let mut text = String::new();
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "tf"))
        .collect();
    files.sort();
    for file in files {
        text.push_str(&std::fs::read_to_string(&file).expect("read .tf"));
        text.push('\n');
    }
    text
}

/// The engine feature that `hcl` uses and `engine` lacks, if any: `ephemeral` blocks
/// (Terraform >= 1.10, OpenTofu >= 1.11) or provider-defined functions (Terraform >= 1.8,
/// OpenTofu >= 1.7, whose `provider::` syntax older engines cannot even parse). Comments are
/// not code.
fn lacking_feature(engine: Engine, hcl: &str) -> Option<&'static str> {
    let code: Vec<&str> = hcl
        .lines()
        .map(str::trim_start)
        .filter(|l| !l.starts_with('#') && !l.starts_with("//"))
        .collect();
    if code.iter().any(|l| l.starts_with("ephemeral \"")) && !engine.has_ephemeral_resources() {
        return Some(support::EPHEMERAL_RESOURCES);
    }
    if code.iter().any(|l| l.contains("provider::")) && !engine.has_functions() {
        return Some(support::PROVIDER_FUNCTIONS);
    }
    None
}

/// Whether `engine` can run the example folder `rel` of the working directory; prints why not.
fn engine_can_run(wd: &Workdir, rel: &str, what: &str) -> bool {
    let engine = wd.engine();
    match lacking_feature(engine, &folder_hcl(&wd.path().join(rel))) {
        None => true,
        Some(feature) => {
            announce(&format!(
                "[{engine}] SKIPPED {what} of {rel}: it uses {feature}, which {engine} lacks"
            ));
            false
        }
    }
}

/// The `source = "..."` values inside `required_providers` blocks (a line-based reading that is
/// enough for the formatted examples).
fn provider_sources(hcl: &str) -> Vec<String> {
    let mut sources = Vec::new();
    let mut depth_in_required = None::<i32>;
    let mut depth = 0i32;
    for line in hcl.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with("required_providers") {
            depth_in_required = Some(depth);
        }
        if depth_in_required.is_some() {
            if let Some(rest) = trimmed.strip_prefix("source") {
                if let Some(value) = rest.split('"').nth(1) {
                    sources.push(value.to_owned());
                }
            }
        }
        depth += line.matches('{').count() as i32 - line.matches('}').count() as i32;
        if depth_in_required.is_some_and(|d| depth <= d) {
            depth_in_required = None;
        }
    }
    sources
}

/// A working directory holding a copy of examples/ at `examples/`.
fn workdir_with_examples(engine: Engine, env: &[(String, String)]) -> Workdir {
    let wd = Workdir::new(
        engine,
        "# The configurations under test are in examples/; commands run there with -chdir.\n",
        env,
    );
    support::copy_tree(&examples_root(), &wd.path().join("examples"));
    wd
}

fn chdir(rel: &str) -> String {
    format!("-chdir={rel}")
}

/// Runs `args` in the example folder `rel` of the working directory.
fn run_in(wd: &Workdir, rel: &str, args: &[&str]) -> Run {
    let dir = chdir(rel);
    let mut all = vec![dir.as_str()];
    all.extend_from_slice(args);
    wd.run(&all)
}

#[track_caller]
fn run_ok_in(wd: &Workdir, rel: &str, args: &[&str]) -> Run {
    let run = run_in(wd, rel, args);
    run.ok();
    run
}

/// `fmt -check` of one folder (not recursive: every folder is checked on its own).
fn fmt_check(wd: &Workdir, rel: &str) -> Run {
    run_in(wd, rel, &["fmt", "-check", "-diff", "-no-color"])
}

/// Prepares a copied folder for `validate` (the snippet providers file, `get` for modules) and
/// runs it (or returns the failed `get`); `None` when the folder needs a provider that is not local (the reason is printed).
fn validate_example(wd: &Workdir, rel: &str) -> Option<Run> {
    let engine = wd.engine();
    let dir = wd.path().join(rel);
    let hcl = folder_hcl(&dir);
    let sources = provider_sources(&hcl);
    let foreign: Vec<&String> = sources
        .iter()
        .filter(|s| !LOCAL_PROVIDER_SOURCES.contains(&s.as_str()))
        .collect();
    if !foreign.is_empty() {
        support::target::announce(&format!(
            "[{engine}] SKIPPED validate of {rel}: it needs providers that are not installed offline: {foreign:?}"
        ));
        return None;
    }
    if !hcl.contains("required_providers") {
        std::fs::write(dir.join(SNIPPET_PROVIDERS_FILE), REQUIRED_PROVIDERS)
            .unwrap_or_else(|e| panic!("[{engine}] write the providers file of {rel}: {e}"));
    }
    if hcl.lines().any(|l| l.trim_start().starts_with("module ")) {
        // Installs local modules only; no provider installation, no network. Terraform
        // already checks the module calls' arguments here: a failure is the validation's.
        let get = run_in(wd, rel, &["get", "-no-color"]);
        if !get.success() {
            return Some(get);
        }
    }
    Some(run_in(wd, rel, &["validate", "-no-color"]))
}

/// Environment of an apply on the bed, as `make demo` gives it (scripts/demo.sh): the bed's
/// endpoints as the examples' variables, and the emulator's keys for the provider's own calls
/// through the standard credential chain.
fn bed_env(bed: &TestBed) -> Vec<(String, String)> {
    [
        ("TF_VAR_aws_endpoint", bed.aws_endpoint.as_str()),
        ("TF_VAR_metadata_host", bed.metadata_host.as_str()),
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_REGION", REGION),
        ("AWS_EC2_METADATA_DISABLED", "true"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

/// `output -json` of an example folder, as name → value.
#[track_caller]
fn outputs(wd: &Workdir, rel: &str) -> BTreeMap<String, Value> {
    let run = run_ok_in(wd, rel, &["output", "-json", "-no-color"]);
    let doc: Value = wd.parse_json(&run);
    doc.as_object()
        .unwrap_or_else(|| panic!("{}", run.describe("outputs are not an object")))
        .iter()
        .map(|(k, v)| (k.clone(), v["value"].clone()))
        .collect()
}

#[track_caller]
fn output_str<'a>(outputs: &'a BTreeMap<String, Value>, engine: Engine, name: &str) -> &'a str {
    outputs
        .get(name)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("[{engine}] no string output {name:?} in {outputs:?}"))
}

/// `show -json` of an example folder's state.
#[track_caller]
fn state_json(wd: &Workdir, rel: &str) -> Value {
    let run = run_ok_in(wd, rel, &["show", "-json", "-no-color"]);
    wd.parse_json(&run)
}

/// A plan of an example folder as JSON (`plan -out`, then `show -json`).
#[track_caller]
fn plan_json(wd: &Workdir, rel: &str) -> Value {
    run_ok_in(
        wd,
        rel,
        &[
            "plan",
            "-input=false",
            "-no-color",
            "-out=acc-examples.tfplan",
        ],
    );
    let show = run_ok_in(
        wd,
        rel,
        &["show", "-json", "-no-color", "acc-examples.tfplan"],
    );
    wd.parse_json(&show)
}

/// Asserts that a plan changes no resource (data sources are read on every plan, and an
/// output such as the credentials' expiration may change; resources must not).
#[track_caller]
fn assert_no_resource_changes(engine: Engine, plan: &Value) {
    let changing: BTreeMap<String, Vec<String>> = planned_actions(plan)
        .into_iter()
        .filter(|(_, actions)| actions.iter().any(|a| a != "no-op" && a != "read"))
        .collect();
    assert!(
        changing.is_empty(),
        "[{engine}] the plan after apply changes resources: {changing:?}"
    );
}

/// Destroys an example folder and asserts that no role whose name starts with `prefix` is left.
#[track_caller]
fn destroy_leaving_no_role(wd: &Workdir, rel: &str, bed: &TestBed, prefix: &str) {
    run_ok_in(
        wd,
        rel,
        &["destroy", "-auto-approve", "-input=false", "-no-color"],
    );
    let left: Vec<String> = role_names(bed)
        .into_iter()
        .filter(|n| n.starts_with(prefix))
        .collect();
    assert!(
        left.is_empty(),
        "[{}] roles left after destroy: {left:?}",
        wd.engine()
    );
}

/// Names of the roles in the emulated IAM.
fn role_names(bed: &TestBed) -> Vec<String> {
    let out = block_on(bed.iam().list_roles().send())
        .unwrap_or_else(|e| panic!("ListRoles on the bed: {e:?}"));
    out.roles()
        .iter()
        .map(|r| r.role_name().to_owned())
        .collect()
}

/// Runs the `credential_process` command line of a profile (`credential_process = ...`) with
/// the binary cargo built in place of the profile's path, against the bed, without a cache;
/// returns the parsed Version 1 document.
#[track_caller]
fn run_credential_process(engine: Engine, bed: &TestBed, profile: &str) -> Value {
    let line = profile
        .lines()
        .find_map(|l| l.strip_prefix("credential_process = "))
        .unwrap_or_else(|| panic!("[{engine}] no credential_process line in:\n{profile}"));
    let mut words = line.split(' ');
    let program = words.next().expect("a program");
    assert!(
        program.ends_with("/terraform-provider-gcpfed"),
        "[{engine}] the profile runs {program:?}, not terraform-provider-gcpfed"
    );
    let cache = tempfile::tempdir().expect("temporary directory");
    let output = Command::new(provider_binary())
        .args(words)
        .arg("--no-cache")
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", cache.path())
        .env("GCE_METADATA_HOST", &bed.metadata_host)
        .env("AWS_ENDPOINT_URL_STS", &bed.aws_endpoint)
        .env("AWS_REGION", REGION)
        .output()
        .unwrap_or_else(|e| panic!("[{engine}] run {}: {e}", provider_binary().display()));
    assert!(
        output.status.success(),
        "[{engine}] `{line}` failed ({:?}): {}",
        output.status.code(),
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "[{engine}] `{line}` did not print JSON ({e}); its stdout is not shown (credentials)"
        )
    })
}

// ---------------------------------------------------------------------------------------------

#[test]
fn examples_are_found() {
    let dirs = example_dirs();
    for expected in [
        "examples/provider",
        "examples/resources/gcpfed_role",
        "examples/data-sources/gcpfed_credentials",
        "examples/ephemeral-resources/gcpfed_credentials",
        "examples/functions/trust_policy",
        "examples/quickstart",
        "examples/modules/gcp-runner-access",
        "examples/scenarios/multi-account",
        "examples/scenarios/team-a-s3-readonly",
        "examples/scenarios/data-source-legacy",
        "examples/scenarios/keyless-runner",
    ] {
        assert!(
            dirs.iter().any(|d| d == expected),
            "{expected} is missing from {dirs:?}"
        );
    }
}

#[test]
fn every_example_is_formatted() {
    let dirs = example_dirs();
    for_each_engine(|engine| {
        let wd = workdir_with_examples(engine, &[]);
        let mut failures = Vec::new();
        for rel in &dirs {
            if !engine_can_run(&wd, rel, "fmt") {
                continue;
            }
            let run = fmt_check(&wd, rel);
            if !run.success() {
                failures.push(run.describe(&format!(
                    "{rel} is not formatted (run `terraform fmt {rel}`)"
                )));
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    });
}

#[test]
fn every_example_validates() {
    let dirs = example_dirs();
    for_each_engine(|engine| {
        let wd = workdir_with_examples(
            engine,
            &[("AWS_EC2_METADATA_DISABLED".into(), "true".into())],
        );
        let mut failures = Vec::new();
        let mut validated = 0;
        for rel in &dirs {
            if !engine_can_run(&wd, rel, "validate") {
                continue;
            }
            let Some(run) = validate_example(&wd, rel) else {
                continue;
            };
            validated += 1;
            if !run.success() || !run.combined().contains("The configuration is valid") {
                failures.push(run.describe(&format!("{rel} does not validate")));
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n\n"));
        assert!(
            validated >= 7,
            "[{engine}] only {validated} example folders were validated"
        );
    });
}

/// fmt and validate, as set up above, do catch a broken example: a badly formatted file, an
/// argument the provider does not have, and a module input the module does not have.
#[test]
fn fmt_and_validate_catch_broken_examples() {
    for_each_engine(|engine| {
        let wd = workdir_with_examples(engine, &[]);
        // The data-source scenario: every engine can validate it.
        let legacy = "examples/scenarios/data-source-legacy";
        let main_tf = wd.path().join(legacy).join("main.tf");
        let original = std::fs::read_to_string(&main_tf).expect("read the scenario");

        std::fs::write(
            &main_tf,
            format!("{original}\noutput  \"x\" {{\nvalue = 1\n}}\n"),
        )
        .expect("write");
        let run = fmt_check(&wd, legacy);
        assert!(
            !run.success(),
            "{}",
            run.describe("fmt -check passed a misformatted file")
        );

        std::fs::write(
            &main_tf,
            original.replace(
                "resource \"gcpfed_role\" \"app\" {",
                "resource \"gcpfed_role\" \"app\" {\n  no_such_argument = true",
            ),
        )
        .expect("write");
        let run = validate_example(&wd, legacy).expect("the scenario is local");
        run.fails().assert_contains(&["no_such_argument"]);

        let scenario = "examples/scenarios/team-a-s3-readonly";
        let scenario_tf = wd.path().join(scenario).join("main.tf");
        let text = std::fs::read_to_string(&scenario_tf).expect("read the scenario");
        std::fs::write(
            &scenario_tf,
            text.replace(
                "profile_region = var.region",
                "profile_region = var.region\n  no_such_input  = 1",
            ),
        )
        .expect("write");
        let run = validate_example(&wd, scenario).expect("the scenario is local");
        run.fails().assert_contains(&["no_such_input"]);
    });
}

/// The quickstart, under the engines with ephemeral resources: the aliased provider really
/// worked with the exchanged credentials (IAM saw the app role's CreateRole signed with the key
/// an exchange issued), and neither the state nor the outputs hold anything of the exchange.
#[test]
fn quickstart_applies_on_the_bed_with_ephemeral_credentials() {
    // Engines without ephemeral resources run examples/scenarios/data-source-legacy instead.
    let engines = support::engines_having(
        "quickstart_applies_on_the_bed_with_ephemeral_credentials",
        Engine::has_ephemeral_resources,
        support::EPHEMERAL_RESOURCES,
    );
    let bed = TestBed::start();
    let rel = "examples/quickstart";
    for_engines(&engines, |engine| {
        bed.reset();
        let wd = workdir_with_examples(engine, &bed_env(&bed));
        let apply = run_in(
            &wd,
            rel,
            &["apply", "-auto-approve", "-input=false", "-no-color"],
        );
        apply.ok();

        let out = outputs(&wd, rel);
        assert_eq!(
            output_str(&out, engine, "role_arn"),
            format!("arn:aws:iam::{ACCOUNT_ID}:role/gcpfed-quickstart-runner")
        );
        assert_eq!(
            output_str(&out, engine, "app_role_arn"),
            format!("arn:aws:iam::{ACCOUNT_ID}:role/gcpfed-quickstart/gcpfed-quickstart-app")
        );

        // The exchange ran unsigned for the runner's role, with the example's 900 s session,
        // and the second provider created the app role with a key that it issued.
        let exchanges: Vec<_> = bed
            .calls()
            .into_iter()
            .filter(|c| c.action == "AssumeRoleWithWebIdentity" && c.status == 200)
            .collect();
        assert!(
            !exchanges.is_empty()
                && exchanges.iter().all(|c| c.access_key_id.is_none()
                    && c.duration_seconds.as_deref() == Some("900")
                    && c.session_name.as_deref() == Some(RUNNER_ID)),
            "[{engine}] {exchanges:?}"
        );
        let secrets = bed.exchange_secrets();
        let created_by: Vec<Option<String>> = bed
            .calls()
            .iter()
            .filter(|c| c.action == "CreateRole")
            .map(|c| c.access_key_id.clone())
            .collect();
        assert_eq!(created_by.len(), 2, "[{engine}] {created_by:?}");
        assert_eq!(created_by[0].as_deref(), Some("testing"), "[{engine}]");
        assert!(
            secrets
                .iter()
                .any(|s| created_by[1].as_deref() == Some(s.access_key_id.as_str())),
            "[{engine}] the app role was not created with an exchanged key: {created_by:?}"
        );

        // Nothing of the exchange is in the state or the outputs.
        let state = std::fs::read_to_string(wd.path().join(rel).join("terraform.tfstate"))
            .unwrap_or_else(|e| panic!("[{engine}] read the quickstart's state: {e}"));
        let named: Vec<_> = secrets.iter().flat_map(|s| s.named()).collect();
        let mut texts = vec![("the state file".to_string(), state)];
        texts.extend(support::run_texts("apply", &apply));
        support::assert_no_leak(engine, &texts, &named);

        // A second plan exchanges again and changes no resource.
        assert_no_resource_changes(engine, &plan_json(&wd, rel));

        destroy_leaving_no_role(&wd, rel, &bed, "gcpfed-quickstart");
    });
}

/// The data-source path, under every engine of the matrix (OpenTofu 1.6.2 and Terraform 1.6.6
/// included): the exchange's results are outputs, and the second provider used them.
#[test]
fn data_source_legacy_scenario_applies_under_every_engine() {
    let bed = TestBed::start();
    let rel = "examples/scenarios/data-source-legacy";
    for_engines(&ALL_ENGINES, |engine| {
        bed.reset();
        let wd = workdir_with_examples(engine, &bed_env(&bed));
        run_ok_in(
            &wd,
            rel,
            &["apply", "-auto-approve", "-input=false", "-no-color"],
        );

        let out = outputs(&wd, rel);
        let role = "gcpfed-legacy-runner";
        assert_eq!(
            output_str(&out, engine, "assumed_role_arn"),
            format!("arn:aws:sts::{ACCOUNT_ID}:assumed-role/{role}/{RUNNER_ID}")
        );
        let expiration = output_str(&out, engine, "expiration");
        let expires = DateTime::from_str(expiration, DateTimeFormat::DateTime)
            .unwrap_or_else(|e| panic!("[{engine}] expiration {expiration:?} is not RFC 3339: {e}"))
            .secs();
        let left = expires - support::now();
        assert!(
            (600..=960).contains(&left) && expiration.ends_with('Z'),
            "[{engine}] the credentials (duration_seconds = 900) expire in {left} s ({expiration})"
        );
        assert_eq!(
            output_str(&out, engine, "app_role_arn"),
            format!("arn:aws:iam::{ACCOUNT_ID}:role/gcpfed-legacy/gcpfed-legacy-app")
        );

        // The second provider really used the exchanged credentials: IAM saw CreateRole for
        // the app role signed with the access key that the exchange returned.
        let state = state_json(&wd, rel);
        let creds = resource_values_in(&state, "data.gcpfed_credentials.ci")
            .unwrap_or_else(|| panic!("[{engine}] the credentials are not in the state"));
        let key = creds["access_key_id"]
            .as_str()
            .unwrap_or_else(|| panic!("[{engine}] no access_key_id"))
            .to_owned();
        assert_ne!(
            key, "testing",
            "[{engine}] the exchange returned the bed's own key"
        );
        let calls = bed.calls();
        let exchanged: Vec<_> = calls
            .iter()
            .filter(|c| c.action == "AssumeRoleWithWebIdentity" && c.status == 200)
            .collect();
        assert!(
            !exchanged.is_empty() && exchanged.iter().all(|c| c.access_key_id.is_none()),
            "[{engine}] no unsigned exchange reached STS: {calls:?}"
        );
        let created_by: Vec<Option<&str>> = calls
            .iter()
            .filter(|c| c.action == "CreateRole")
            .map(|c| c.access_key_id.as_deref())
            .collect();
        assert_eq!(
            created_by,
            vec![Some("testing"), Some(key.as_str())],
            "[{engine}] CreateRole of the runner role (provider keys), then of the app role (exchanged keys)"
        );

        // A second plan exchanges again and changes no resource.
        assert_no_resource_changes(engine, &plan_json(&wd, rel));

        destroy_leaving_no_role(&wd, rel, &bed, "gcpfed-legacy");
    });
}

#[test]
fn multi_account_scenario_applies_and_destroys_on_the_bed() {
    let bed = TestBed::start();
    let rel = "examples/scenarios/multi-account";
    let accounts = ["development", "staging", "production"];
    for_each_engine(|engine| {
        bed.reset();
        let wd = workdir_with_examples(engine, &bed_env(&bed));
        run_ok_in(&wd, rel, &["get", "-no-color"]);
        run_ok_in(
            &wd,
            rel,
            &["apply", "-auto-approve", "-input=false", "-no-color"],
        );

        let out = outputs(&wd, rel);
        let arns = &out["role_arns"];
        let configs = &out["aws_config"];
        for (team, unique_id, other_id) in [
            ("team-a", RUNNER_ID, DEPLOYER_ID),
            ("team-b", DEPLOYER_ID, RUNNER_ID),
        ] {
            for account in accounts {
                let name = format!("gcp-{team}-{account}");
                let arn = arns[team][account].as_str().unwrap_or_else(|| {
                    panic!("[{engine}] no role ARN for {team} in {account}: {arns}")
                });
                assert_eq!(arn, format!("arn:aws:iam::{ACCOUNT_ID}:role/{name}"));
                let audience = format!("sts.amazonaws.com/{name}");
                let profile_text = configs[team]
                    .as_str()
                    .unwrap_or_else(|| panic!("[{engine}] no AWS config for {team}: {configs}"));
                let profile = profile_text
                    .split("\n\n")
                    .find(|p| p.starts_with(&format!("[profile {team}-{account}]\n")))
                    .unwrap_or_else(|| {
                        panic!("[{engine}] no profile {team}-{account} in:\n{profile_text}")
                    });
                assert!(
                    profile.contains(&format!("--role-arn {arn} --audience {audience}")),
                    "[{engine}] {profile}"
                );
                assert_eq!(
                    profile.contains("--duration-seconds 900"),
                    account == "production",
                    "[{engine}] {profile}"
                );

                // The trust policy the module rendered admits the team's service account with
                // the audience, and no one else, through the strict STS gate.
                let allowed = bed.assume_role_with_web_identity(
                    arn,
                    "acc-examples",
                    &bed.metadata_token(unique_id_email(unique_id), &audience),
                    None,
                );
                assert_eq!(
                    allowed.status, 200,
                    "[{engine}] {team} on {name}: {}",
                    allowed.body
                );
                let denied = bed.assume_role_with_web_identity(
                    arn,
                    "acc-examples",
                    &bed.metadata_token(unique_id_email(other_id), &audience),
                    None,
                );
                assert_eq!(
                    denied.error_code.as_deref(),
                    Some("AccessDenied"),
                    "[{engine}] another team's account on {name}: {}",
                    denied.body
                );
            }
        }
        // The production profile's command line works as written (binary path aside).
        let team_a = configs["team-a"].as_str().expect("team-a's AWS config");
        let production = team_a
            .split("\n\n")
            .find(|p| p.starts_with("[profile team-a-production]"))
            .expect("team-a's production profile");
        let doc = run_credential_process(engine, &bed, production);
        assert_eq!(
            doc["Version"],
            Value::from(1),
            "[{engine}] not a Version 1 document"
        );
        let sts = bed
            .calls()
            .into_iter()
            .rfind(|c| c.action == "AssumeRoleWithWebIdentity")
            .unwrap_or_else(|| panic!("[{engine}] the helper's exchange was not seen"));
        assert_eq!(
            sts.role_arn.as_deref(),
            Some(format!("arn:aws:iam::{ACCOUNT_ID}:role/gcp-team-a-production").as_str())
        );
        assert_eq!(sts.duration_seconds.as_deref(), Some("900"));

        assert_no_resource_changes(engine, &plan_json(&wd, rel));
        destroy_leaving_no_role(&wd, rel, &bed, "gcp-team-");
    });
}

/// The blog post's example: the role TeamA-S3ReadOnlyAccess with AmazonS3ReadOnlyAccess, and
/// its AWS config profile, which the AWS CLI (the test venv's) uses as it is written, but for
/// the helper's path.
#[test]
fn team_a_s3_readonly_profile_works_with_the_aws_cli() {
    let bed = TestBed::start();
    let rel = "examples/scenarios/team-a-s3-readonly";
    for_each_engine(|engine| {
        bed.reset();
        let wd = workdir_with_examples(engine, &bed_env(&bed));
        run_ok_in(&wd, rel, &["get", "-no-color"]);
        run_ok_in(
            &wd,
            rel,
            &["apply", "-auto-approve", "-input=false", "-no-color"],
        );
        let out = outputs(&wd, rel);
        let arn = format!("arn:aws:iam::{ACCOUNT_ID}:role/TeamA-S3ReadOnlyAccess");
        assert_eq!(output_str(&out, engine, "role_arn"), arn);

        let attached = block_on(
            bed.iam()
                .list_attached_role_policies()
                .role_name("TeamA-S3ReadOnlyAccess")
                .send(),
        )
        .unwrap_or_else(|e| panic!("[{engine}] ListAttachedRolePolicies: {e:?}"));
        let names: Vec<&str> = attached
            .attached_policies()
            .iter()
            .filter_map(|p| p.policy_name())
            .collect();
        assert_eq!(names, vec!["AmazonS3ReadOnlyAccess"], "[{engine}]");

        let profile = output_str(&out, engine, "aws_config_profile");
        assert!(
            profile.starts_with("[profile TeamA-S3ReadOnlyAccess]\n"),
            "[{engine}] {profile}"
        );
        let home = tempfile::tempdir().expect("temporary directory");
        let config = home.path().join("aws-config");
        std::fs::write(
            &config,
            profile.replace(
                "/usr/local/bin/terraform-provider-gcpfed",
                &provider_binary().display().to_string(),
            ) + "\n",
        )
        .expect("write the AWS config");
        let aws = support::python()
            .parent()
            .expect("the venv's bin directory")
            .join("aws");
        let output = Command::new(&aws)
            .args([
                "sts",
                "get-caller-identity",
                "--profile",
                "TeamA-S3ReadOnlyAccess",
                "--output",
                "json",
            ])
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", home.path())
            .env("AWS_CONFIG_FILE", &config)
            .env("AWS_SHARED_CREDENTIALS_FILE", home.path().join("none"))
            .env("AWS_ENDPOINT_URL", &bed.aws_endpoint)
            .env("GCE_METADATA_HOST", &bed.metadata_host)
            .env("XDG_CACHE_HOME", home.path().join("cache"))
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .output()
            .unwrap_or_else(|e| panic!("[{engine}] run {}: {e}; run `make tools`", aws.display()));
        assert!(
            output.status.success(),
            "[{engine}] aws sts get-caller-identity --profile TeamA-S3ReadOnlyAccess failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let identity: Value = serde_json::from_slice(&output.stdout)
            .unwrap_or_else(|e| panic!("[{engine}] the AWS CLI did not print JSON: {e}"));
        assert_eq!(
            identity["Arn"],
            Value::from(format!(
                "arn:aws:sts::{ACCOUNT_ID}:assumed-role/TeamA-S3ReadOnlyAccess/{RUNNER_ID}"
            )),
            "[{engine}] {identity}"
        );

        run_ok_in(
            &wd,
            rel,
            &["destroy", "-auto-approve", "-input=false", "-no-color"],
        );
        assert!(
            !role_names(&bed)
                .iter()
                .any(|n| n == "TeamA-S3ReadOnlyAccess"),
            "[{engine}] the role is left after destroy"
        );
    });
}

/// The bed's service-account email of a unique ID.
fn unique_id_email(unique_id: &str) -> &'static str {
    match unique_id {
        RUNNER_ID => support::bed::RUNNER_EMAIL,
        DEPLOYER_ID => support::bed::DEPLOYER_EMAIL,
        other => panic!("no bed service account has unique ID {other}"),
    }
}

/// The README's usage example (the first ```hcl block of its "Usage" section) is formatted and
/// validates like the examples.
#[test]
fn readme_usage_example_validates() {
    let readme =
        std::fs::read_to_string(support::repo_root().join("README.md")).expect("read README.md");
    let usage = readme
        .split("\n## Usage\n")
        .nth(1)
        .expect("README.md has a \"## Usage\" section");
    let hcl = usage
        .split("```hcl\n")
        .nth(1)
        .and_then(|rest| rest.split("\n```").next())
        .expect("the Usage section has a ```hcl block");
    assert!(
        hcl.lines().count() <= 25,
        "the README's usage example should stay short:\n{hcl}"
    );
    assert!(
        hcl.contains("ephemeral \"gcpfed_credentials\""),
        "the README's usage example shows the ephemeral credentials:\n{hcl}"
    );
    let engines = support::engines_having(
        "readme_usage_example_validates",
        Engine::has_ephemeral_resources,
        support::EPHEMERAL_RESOURCES,
    );
    for_engines(&engines, |engine| {
        let wd = Workdir::new(engine, &format!("{hcl}\n"), &[]);
        wd.run(&["fmt", "-check", "-diff", "-no-color"]).ok();
        wd.validate()
            .ok()
            .assert_contains(&["The configuration is valid"]);
    });
}
