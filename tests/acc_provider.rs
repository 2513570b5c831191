//! Acceptance tests of the provider block (issue 2) under real Terraform and OpenTofu, against
//! the acceptance target (the local test bed unless `GCPFED_ACC=aws`): a provider-only configuration plans clean, `providers schema -json` shows
//! every argument, and invalid arguments fail with their attribute path.

mod support;

use serde_json::Value;
use support::target::Acc;
use support::tf::{for_each_engine, Workdir, REQUIRED_PROVIDERS};

/// The target's provider block with `extra` lines added inside it, after required_providers.
fn config_with(acc: &Acc, extra: &str) -> String {
    let provider = acc.provider_hcl();
    let provider = match provider.rfind('}') {
        Some(end) if !extra.is_empty() => {
            format!("{}{extra}\n{}", &provider[..end], &provider[end..])
        }
        _ => provider,
    };
    format!("{REQUIRED_PROVIDERS}\n{provider}\n")
}

/// Terraform and OpenTofu prune a provider that no resource or data source uses: its block is
/// then never validated nor configured. This zero-count role keeps the provider in the graph
/// without creating anything, so a plan really validates and configures the provider block.
fn provider_user() -> String {
    format!(
        r#"
resource "gcpfed_role" "keeps_provider_in_graph" {{
  count                      = 0
  name                       = "{name}"
  audience                   = "unused"
  service_account_unique_ids = ["104857600000000000001"]
}}
"#,
        name = support::target::unique_name("unused")
    )
}

/// The 1-based line of main.tf holding `needle`.
fn line_of(main_tf: &str, needle: &str) -> usize {
    main_tf
        .lines()
        .position(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("{needle:?} is not in the configuration:\n{main_tf}"))
        + 1
}

/// Asserts a failed plan whose diagnostic is attached to the provider block at `line` (the CLI
/// prints the source location only when the diagnostic carries an attribute path it resolves),
/// and whose text contains every phrase.
#[track_caller]
fn assert_plan_fails_at(wd: &Workdir, line: usize, phrases: &[&str]) {
    let run = wd.plan();
    run.fails();
    let address = wd.engine().provider_address();
    let mut expected = vec![
        "Error:".to_string(),
        format!("with provider[\"{address}\"]"),
        format!("on main.tf line {line}, in provider \"gcpfed\":"),
    ];
    expected.extend(phrases.iter().map(|p| p.to_string()));
    run.assert_contains(&expected.iter().map(String::as_str).collect::<Vec<_>>());
}

#[test]
fn provider_only_configuration_plans_with_no_changes() {
    let acc = Acc::start();
    let main_tf = config_with(&acc, "");
    for_each_engine(|engine| {
        let wd = Workdir::new(engine, &main_tf, &acc.env());
        wd.validate()
            .ok()
            .assert_contains(&["The configuration is valid"]);
        let run = wd.plan_detailed();
        assert_eq!(
            run.status,
            0,
            "{}",
            run.describe("expected exit 0 (no changes)")
        );
        run.assert_contains(&["No changes."]);
        support::target::announce(&format!(
            "[{engine}] provider-only plan took {:.2?}",
            run.elapsed
        ));
        // The same block, validated and configured for real (see provider_user).
        wd.write(&format!("{main_tf}{}", provider_user()));
        let run = wd.plan_detailed();
        assert_eq!(
            run.status,
            0,
            "{}",
            run.describe("expected exit 0 with the provider configured")
        );
        support::target::announce(&format!(
            "[{engine}] plan with the provider configured took {:.2?}",
            run.elapsed
        ));
    });
}

#[test]
fn providers_schema_json_shows_the_provider_arguments() {
    let acc = Acc::start();
    let main_tf = config_with(&acc, "");
    for_each_engine(|engine| {
        let wd = Workdir::new(engine, &main_tf, &acc.env());
        let schema = wd.providers_schema_json();
        let schemas = schema["provider_schemas"]
            .as_object()
            .unwrap_or_else(|| panic!("[{engine}] no provider_schemas in {schema}"));
        let (address, ours) = schemas
            .iter()
            .find(|(address, _)| address.ends_with("/gcpfed/gcpfed"))
            .unwrap_or_else(|| {
                panic!(
                    "[{engine}] gcpfed/gcpfed not among {:?}",
                    schemas.keys().collect::<Vec<_>>()
                )
            });
        let block = &ours["provider"]["block"];
        let attribute = |name: &str| -> &Value {
            let attr = &block["attributes"][name];
            assert!(
                attr.is_object(),
                "[{engine}] {address}: provider argument {name} missing from {block}"
            );
            attr
        };
        for (name, kind) in [
            ("region", "string"),
            ("profile", "string"),
            ("access_key", "string"),
            ("secret_key", "string"),
            ("token", "string"),
            ("metadata_host", "string"),
            ("max_retries", "number"),
        ] {
            let attr = attribute(name);
            assert_eq!(attr["type"], kind, "[{engine}] type of {name}: {attr}");
            assert_eq!(
                attr["optional"], true,
                "[{engine}] {name} must be optional: {attr}"
            );
            assert!(
                attr["required"] != true,
                "[{engine}] {name} must not be required: {attr}"
            );
            assert!(
                attr["description"].as_str().is_some_and(|d| !d.is_empty()),
                "[{engine}] {name} has no description: {attr}"
            );
        }
        for name in ["secret_key", "token"] {
            assert_eq!(
                attribute(name)["sensitive"],
                true,
                "[{engine}] {name} must be sensitive"
            );
        }
        for name in ["region", "profile", "metadata_host", "max_retries"] {
            assert!(
                attribute(name)["sensitive"] != true,
                "[{engine}] {name} must not be sensitive"
            );
        }
        let endpoints = &block["block_types"]["endpoints"];
        assert!(
            endpoints.is_object(),
            "[{engine}] no endpoints block in {block}"
        );
        for name in ["iam", "sts"] {
            let attr = &endpoints["block"]["attributes"][name];
            assert_eq!(
                attr["type"], "string",
                "[{engine}] endpoints.{name}: {endpoints}"
            );
            assert_eq!(
                attr["optional"], true,
                "[{engine}] endpoints.{name}: {endpoints}"
            );
        }
        let max_items = endpoints["max_items"].as_u64();
        assert!(
            max_items.is_none_or(|n| n == 1),
            "[{engine}] endpoints may be given once: {endpoints}"
        );
    });
}

/// The provider block with an unparseable IAM endpoint; the rest is valid.
const BAD_ENDPOINT: &str = r#"provider "gcpfed" {
  region     = "us-east-1"
  access_key = "testing"
  secret_key = "testing"
  endpoints {
    iam = "not a url"
  }
}
"#;

#[test]
fn malformed_endpoint_url_fails_plan_with_its_attribute_path() {
    let main_tf = format!("{REQUIRED_PROVIDERS}\n{BAD_ENDPOINT}{}", provider_user());
    let line = line_of(&main_tf, "not a url");
    for_each_engine(|engine| {
        let wd = Workdir::new(engine, &main_tf, &[]);
        assert_plan_fails_at(&wd, line, &["iam = \"not a url\"", "endpoints.iam"]);
    });
}

#[test]
fn negative_max_retries_fails_plan_with_its_attribute_path() {
    let acc = Acc::start();
    let main_tf = format!(
        "{}{}",
        config_with(&acc, "  max_retries = -1"),
        provider_user()
    );
    let line = line_of(&main_tf, "max_retries = -1");
    for_each_engine(|engine| {
        let wd = Workdir::new(engine, &main_tf, &acc.env());
        assert_plan_fails_at(&wd, line, &["max_retries = -1", "max_retries", "-1"]);
    });
}

/// access_key alone would silently fall back to the default chain for the secret.
const HALF_KEY_PAIR: &str = r#"provider "gcpfed" {
  region     = "us-east-1"
  access_key = "AKIDEXAMPLEHALFPAIR"
}
"#;

#[test]
fn half_given_key_pair_fails_plan_naming_the_missing_key() {
    let main_tf = format!("{REQUIRED_PROVIDERS}\n{HALF_KEY_PAIR}{}", provider_user());
    // CI machines often set RUST_BACKTRACE=1; tf-provider would then append a captured
    // backtrace to every diagnostic unless the plugin turns that capture off.
    let env = [("RUST_BACKTRACE".to_string(), "1".to_string())];
    for_each_engine(|engine| {
        let wd = Workdir::new(engine, &main_tf, &env);
        let run = wd.plan();
        run.fails();
        run.assert_contains(&["Error:", "with provider[", "secret_key", "access_key"]);
        assert!(
            !run.combined().contains("AKIDEXAMPLEHALFPAIR"),
            "{}",
            run.describe("the access key must not be echoed")
        );
        assert!(
            !run.combined().contains("tf_provider::diagnostics"),
            "{}",
            run.describe("a backtrace was appended to the diagnostic")
        );
    });
}
