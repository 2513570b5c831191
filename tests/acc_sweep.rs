//! `make sweep` (tests/sweep.py) against the local bed's IAM: it deletes exactly the roles whose
//! names carry the suite prefix, with what blocks DeleteRole (attached and inline policies,
//! instance-profile membership), leaves every other role alone, and does nothing without a target.

mod support;

use std::process::Command;

use support::bed::{block_on, TestBed};
use support::target::{run_prefix, SUITE_PREFIX};

const TRUST: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
const INLINE: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}]}"#;
const MANAGED: &str = "arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess";

struct Sweep {
    status: i32,
    stdout: String,
    stderr: String,
}

/// Runs tests/sweep.py with `args` and a clean environment (`env` added).
fn sweep(args: &[&str], env: &[(&str, &str)]) -> Sweep {
    let script = support::repo_root().join("tests/sweep.py");
    let mut cmd = Command::new(support::python());
    cmd.arg(&script).args(args);
    for (key, _) in std::env::vars() {
        if key.starts_with("AWS_") || key.starts_with("GCPFED_") {
            cmd.env_remove(key);
        }
    }
    cmd.envs(env.iter().copied());
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}; run `make tools`", script.display()));
    Sweep {
        status: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

impl Sweep {
    fn describe(&self) -> String {
        format!(
            "sweep.py exited {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.status, self.stdout, self.stderr
        )
    }
}

fn role_names(bed: &TestBed) -> Vec<String> {
    let iam = bed.iam();
    let mut names: Vec<String> = block_on(async { iam.list_roles().max_items(1000).send().await })
        .expect("list_roles")
        .roles()
        .iter()
        .map(|r| r.role_name().to_string())
        .collect();
    names.sort();
    names
}

/// A role with an attached and an inline policy: what the sweep must detach and delete first.
fn create_role(bed: &TestBed, name: &str) {
    let iam = bed.iam();
    support::iam::create_role(&iam, name, TRUST, None);
    block_on(async {
        iam.attach_role_policy()
            .role_name(name)
            .policy_arn(MANAGED)
            .send()
            .await
            .unwrap_or_else(|e| panic!("attach_role_policy {name}: {e:?}"));
        iam.put_role_policy()
            .role_name(name)
            .policy_name("inline")
            .policy_document(INLINE)
            .send()
            .await
            .unwrap_or_else(|e| panic!("put_role_policy {name}: {e:?}"));
    });
}

#[test]
fn sweep_deletes_only_roles_with_the_suite_prefix() {
    let bed = TestBed::start();
    let ours = [
        format!("{}sweep-a", run_prefix()),
        format!("{SUITE_PREFIX}0000dead-left-over"),
    ];
    let theirs = [
        "production-deployer".to_string(),
        // The prefix must start the name, not merely occur in it.
        format!("x-{SUITE_PREFIX}lookalike"),
    ];
    for name in ours.iter().chain(theirs.iter()) {
        create_role(&bed, name);
    }
    let iam = bed.iam();
    block_on(async {
        iam.create_instance_profile()
            .instance_profile_name("sweep-profile")
            .send()
            .await
            .expect("create_instance_profile");
        iam.add_role_to_instance_profile()
            .instance_profile_name("sweep-profile")
            .role_name(&ours[0])
            .send()
            .await
            .expect("add_role_to_instance_profile");
    });

    // A dry run lists and deletes nothing.
    let dry = sweep(&["--endpoint", &bed.aws_endpoint, "--dry-run"], &[]);
    assert_eq!(dry.status, 0, "{}", dry.describe());
    assert!(
        dry.stdout.contains("would delete 2 role(s)"),
        "{}",
        dry.describe()
    );
    assert_eq!(role_names(&bed).len(), 4, "a dry run deleted something");

    let run = sweep(&["--endpoint", &bed.aws_endpoint], &[]);
    assert_eq!(run.status, 0, "{}", run.describe());
    for name in &ours {
        assert!(
            run.stdout.contains(&format!("delete role {name}")),
            "{}",
            run.describe()
        );
    }
    assert!(
        run.stdout.contains(
            "deleted 2 role(s) starting with 'gcpfedacc-' (2 policy attachment(s), 2 inline \
             policy(ies), 1 instance-profile membership(s)); 0 failure(s)"
        ),
        "{}",
        run.describe()
    );
    let mut expected = theirs.to_vec();
    expected.sort();
    assert_eq!(role_names(&bed), expected, "{}", run.describe());

    // Nothing left: a second sweep succeeds and deletes nothing.
    let again = sweep(&["--endpoint", &bed.aws_endpoint], &[]);
    assert_eq!(again.status, 0, "{}", again.describe());
    assert!(
        again.stdout.contains("deleted 0 role(s)"),
        "{}",
        again.describe()
    );
}

#[test]
fn sweep_without_a_target_does_nothing_and_refuses_foreign_prefixes() {
    let none = sweep(&[], &[]);
    assert_eq!(none.status, 0, "{}", none.describe());
    assert!(
        none.stdout.contains("nothing to sweep"),
        "{}",
        none.describe()
    );

    let foreign = sweep(
        &["--endpoint", "http://127.0.0.1:9", "--prefix", "prod-"],
        &[],
    );
    assert_eq!(foreign.status, 2, "{}", foreign.describe());
    assert!(
        foreign.stdout.contains("refusing prefix 'prod-'"),
        "{}",
        foreign.describe()
    );

    let both = sweep(
        &["--endpoint", "http://127.0.0.1:9"],
        &[("GCPFED_ACC", "aws")],
    );
    assert_eq!(both.status, 2, "{}", both.describe());
}
