//! What a new user meets in their first hour (issue 13), tested as they meet it:
//!
//! * `make bed` (scripts/bed.sh) starts the local test bed, prints `export` lines and the bed's
//!   service accounts; a configuration of our own applies with exactly those exports under
//!   Terraform 1.15 and OpenTofu 1.6 (so the CLI config must override both registry hosts);
//!   Ctrl-C stops it and leaves nothing behind;
//! * the provider's IAM calls without any AWS credentials say so, list the chain tried and the
//!   three fixes, with EC2 instance metadata disabled and with one that cannot be reached;
//! * the module examples/modules/gcp-runner-access refuses an email at the caller's line, shows
//!   the provider's warning for a short unique ID, and its AWS config profiles can be appended
//!   one after the other to a file that botocore reads;
//! * the binary run by hand with no argument prints its full help and succeeds.

mod support;

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use support::bed::{closed_port_host, TestBed, ACCOUNT_ID, REGION, RUNNER_ID};
use support::process::{run_with_timeout, wait_or_kill};
use support::tf::{for_engines, provider_binary, Engine, Run, Workdir, ENGINES};

/// A bound on waits for a child process, so that a broken script fails the test instead of
/// hanging it (not a speed assertion: every normal wait ends far sooner).
const BOUND: Duration = Duration::from_secs(180);

const EMAIL: &str = "ci-runner@gcpfed-test.iam.gserviceaccount.com";

// --- the binary run by hand ------------------------------------------------------------------

fn run_binary(args: &[&str]) -> support::process::Finished {
    let mut cmd = Command::new(provider_binary());
    cmd.args(args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default());
    run_with_timeout(&mut cmd, BOUND, "terraform-provider-gcpfed")
}

#[test]
fn no_argument_prints_the_full_help_and_succeeds() {
    let bare = run_binary(&[]);
    assert!(!bare.timed_out, "the binary waited with no argument");
    assert_eq!(
        bare.status.code(),
        Some(0),
        "exit code with no argument; stderr:\n{}",
        bare.stderr
    );
    let help = run_binary(&["--help"]);
    assert_eq!(help.status.code(), Some(0), "{}", help.stderr);
    assert_eq!(
        bare.stdout, help.stdout,
        "no argument prints what --help prints"
    );
    for phrase in [
        "Usage: terraform-provider-gcpfed",
        "credential-process",
        "Terraform and OpenTofu start this binary themselves",
        "--help",
        "--version",
    ] {
        assert!(
            bare.stdout.contains(phrase),
            "{phrase:?} missing:\n{}",
            bare.stdout
        );
    }
    assert_eq!(bare.stderr, "", "the help goes to stdout only");
}

// --- the helper's errors speak in flags ---------------------------------------------------------

/// What only an HCL author writes: a command-line user must never be told about it.
const HCL_ONLY: [&str; 6] = [
    "metadata_host",
    "web_identity_token",
    "data source",
    "the provider's",
    "`audience`",
    "no IAM client",
];

#[track_caller]
fn assert_speaks_in_flags(out: &support::process::Finished, flags: &[&str]) {
    assert_ne!(out.status.code(), Some(0), "the helper succeeded");
    for flag in flags {
        assert!(out.stderr.contains(flag), "{flag} missing:\n{}", out.stderr);
    }
    for word in HCL_ONLY {
        assert!(
            !out.stderr.contains(word),
            "{word:?} told to a command-line user:\n{}",
            out.stderr
        );
    }
}

#[test]
fn the_helpers_errors_name_its_flags_and_never_the_providers_arguments() {
    let bed = TestBed::start();
    let role = "first-hour-helper";
    let arn = support::iam::create_trusted_role(&bed.iam(), role, "right-audience", &[RUNNER_ID]);
    let helper = |metadata_host: &str, audience: &str| {
        run_binary(&[
            "credential-process",
            "--role-arn",
            &arn,
            "--audience",
            audience,
            "--metadata-host",
            metadata_host,
            "--sts-endpoint",
            &bed.aws_endpoint,
            "--region",
            REGION,
            "--no-cache",
        ])
    };
    // Off Google Cloud.
    let out = helper(&closed_port_host(), "right-audience");
    assert_speaks_in_flags(
        &out,
        &[
            "GCE metadata server unreachable",
            "--metadata-host (or GCE_METADATA_HOST)",
            "--web-identity-token-file",
        ],
    );
    // A wrong audience: STS's denial, in the helper's words (it holds no AWS credentials to
    // read the role with, and says so plainly).
    let out = helper(&bed.metadata_host, "wrong-audience");
    assert_speaks_in_flags(
        &out,
        &[
            "STS denied AssumeRoleWithWebIdentity",
            "there are no AWS credentials here to read it with",
            "`aws iam get-role`",
            "--audience sets the token's aud; --service-account decides its azp and sub",
        ],
    );
}

// --- no AWS credentials ----------------------------------------------------------------------

/// A provider block on the bed with no credential of any kind.
fn keyless_config(bed: &TestBed, role: &str) -> String {
    format!(
        r#"{providers}
provider "gcpfed" {{
  region        = "{REGION}"
  metadata_host = "{metadata}"
  endpoints {{
    iam = "{aws}"
    sts = "{aws}"
  }}
}}

resource "gcpfed_role" "ci" {{
  name                       = "{role}"
  audience                   = "first-hour"
  service_account_unique_ids = ["{RUNNER_ID}"]
}}
"#,
        providers = support::tf::REQUIRED_PROVIDERS,
        metadata = bed.metadata_host,
        aws = bed.aws_endpoint,
    )
}

#[track_caller]
fn assert_no_credentials_message(run: &Run, imds_words: &str) {
    run.fails();
    run.assert_contains(&[
        "No AWS credentials for the provider's IAM calls",
        // The chain, in plain words, with what each source said.
        "environment variables AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY",
        "the shared config and credentials files (~/.aws/config, ~/.aws/credentials)",
        imds_words,
        // The three fixes.
        "keys: access_key and secret_key",
        "a profile: profile in the provider block, or AWS_PROFILE",
        "an assume_role_with_gcp_identity block",
    ]);
    let flat = run.combined_flat();
    for wrong in [
        "could not be reached",
        "DispatchFailure",
        "ConnectorError",
        "ProviderChainError",
        "Some(",
    ] {
        assert!(
            !flat.contains(wrong),
            "{}",
            run.describe(&format!("{wrong:?} in the message"))
        );
    }
}

#[test]
fn no_aws_credentials_are_named_with_the_chain_tried_and_the_three_fixes() {
    let bed = TestBed::start();
    // EC2 instance metadata disabled, as on most CI runners that set it.
    for_engines(&ENGINES, |engine| {
        let role = format!("first-hour-nokeys-{engine}");
        let wd = Workdir::new(
            engine,
            &keyless_config(&bed, &role),
            &[("AWS_EC2_METADATA_DISABLED".into(), "true".into())],
        );
        let run = wd.run(&["apply", "-auto-approve", "-input=false", "-no-color"]);
        assert_no_credentials_message(&run, "EC2 instance metadata (IMDS)");
    });
    // Not disabled, and nothing answers where instance metadata would be (a closed port
    // stands for 169.254.169.254 off EC2: refused at once, the same every time).
    let wd = Workdir::new(
        Engine::Terraform,
        &keyless_config(&bed, "first-hour-nokeys-imds"),
        &[(
            "AWS_EC2_METADATA_SERVICE_ENDPOINT".into(),
            format!("http://{}", closed_port_host()),
        )],
    );
    let run = wd.run(&["apply", "-auto-approve", "-input=false", "-no-color"]);
    assert_no_credentials_message(&run, "EC2 instance metadata (IMDS)");
    // On Google Cloud, 169.254.169.254 is Google's metadata server, which refuses the AWS
    // instance-metadata requests: the chain stops there, and the headline stays the same.
    let wd = Workdir::new(
        Engine::Terraform,
        &keyless_config(&bed, "first-hour-nokeys-gce"),
        &[(
            "AWS_EC2_METADATA_SERVICE_ENDPOINT".into(),
            format!("http://{}", bed.metadata_host),
        )],
    );
    let run = wd.run(&["apply", "-auto-approve", "-input=false", "-no-color"]);
    run.fails();
    run.assert_contains(&[
        "No AWS credentials for the provider's IAM calls",
        "an assume_role_with_gcp_identity block",
    ]);
    assert!(
        !run.combined_flat().contains("DispatchFailure"),
        "{}",
        run.describe("a Debug dump in the message")
    );
    let calls = bed.calls();
    assert!(
        calls.iter().all(|c| c.action != "CreateRole"),
        "no IAM call may reach the bed unsigned: {calls:?}"
    );
}

// --- the module ------------------------------------------------------------------------------

/// A working directory with the module copied to `modules/gcp-runner-access` and `main.tf`.
fn module_workdir(engine: Engine, main_tf: &str, env: &[(String, String)]) -> Workdir {
    let wd = Workdir::new(engine, main_tf, env);
    support::copy_tree(
        &support::repo_root().join("examples/modules/gcp-runner-access"),
        &wd.path().join("modules/gcp-runner-access"),
    );
    // Installs the local module only (no provider, no network).
    wd.run_ok(&["get", "-no-color"]);
    wd
}

fn module_call(label: &str, name: &str, ids: &str) -> String {
    format!(
        r#"
module "{label}" {{
  source                     = "./modules/gcp-runner-access"
  name                       = "{name}"
  audience                   = "{name}"
  service_account_unique_ids = {ids}
  profile_region             = "{REGION}"
}}
"#
    )
}

#[test]
fn the_module_refuses_an_email_at_the_callers_line_and_shows_the_short_id_warning() {
    let bed = TestBed::start();
    for_engines(&ENGINES, |engine| {
        let main_tf = format!(
            "{}{}{}",
            support::tf::REQUIRED_PROVIDERS,
            bed.provider_hcl(),
            module_call("runner", "first-hour-module", &format!("[\"{EMAIL}\"]"))
        );
        let line = main_tf
            .lines()
            .position(|l| l.contains("service_account_unique_ids ="))
            .expect("the argument's line")
            + 1;
        let wd = module_workdir(engine, &main_tf, &[]);
        let plan = wd.run(&["plan", "-input=false", "-no-color"]);
        plan.fails();
        plan.assert_contains(&[
            "Invalid value for variable",
            &format!("on main.tf line {line}, in module \"runner\""),
            "var.service_account_unique_ids",
            "not the email",
        ]);
        assert!(
            !plan.combined().contains(".terraform/modules"),
            "{}",
            plan.describe("the error points inside the module")
        );

        // A short all-digit ID passes the module and shows the provider's warning.
        wd.write(&format!(
            "{}{}{}",
            support::tf::REQUIRED_PROVIDERS,
            bed.provider_hcl(),
            module_call("runner", "first-hour-module", "[\"12345\"]")
        ));
        let plan = wd.run(&["plan", "-input=false", "-no-color"]);
        plan.ok();
        plan.assert_contains(&[
            "Unusual service account unique ID",
            "\"12345\" has 5 digits",
        ]);
    });
}

#[test]
fn two_profiles_appended_to_one_aws_config_parse_with_botocore() {
    let bed = TestBed::start();
    let engine = Engine::Terraform;
    let main_tf = format!(
        "{}{}{}{}\noutput \"first\" {{\n  value = module.first.aws_config_profile\n}}\n\noutput \"second\" {{\n  value = module.second.aws_config_profile\n}}\n",
        support::tf::REQUIRED_PROVIDERS,
        bed.provider_hcl(),
        module_call("first", "first-hour-a", &format!("[\"{RUNNER_ID}\"]")),
        module_call("second", "first-hour-b", &format!("[\"{RUNNER_ID}\"]")),
    );
    let wd = module_workdir(engine, &main_tf, &[]);
    wd.run_ok(&["apply", "-auto-approve", "-input=false", "-no-color"]);

    // What the module's README tells the user to do, twice.
    let config = wd.path().join("aws-config");
    let mut appended = Vec::new();
    for name in ["first", "second"] {
        let out = wd.run_ok(&["output", "-raw", name]);
        appended.extend_from_slice(out.stdout.as_bytes());
    }
    std::fs::write(&config, &appended).expect("write the AWS config");

    let script = r#"
import json, sys
import botocore.configloader
print(json.dumps(botocore.configloader.raw_config_parse(sys.argv[1])))
"#;
    let mut cmd = Command::new(support::python());
    cmd.args(["-c", script]).arg(&config);
    let parsed = run_with_timeout(&mut cmd, BOUND, "botocore");
    assert!(
        parsed.status.success(),
        "botocore refused the file:\n{}\n--- file ---\n{}",
        parsed.stderr,
        String::from_utf8_lossy(&appended)
    );
    let doc: serde_json::Value = serde_json::from_str(&parsed.stdout).expect("botocore's JSON");
    for role in ["first-hour-a", "first-hour-b"] {
        let section = &doc[format!("profile {role}")];
        assert_eq!(
            section["credential_process"],
            format!(
                "/usr/local/bin/terraform-provider-gcpfed credential-process --role-arn \
                 arn:aws:iam::{ACCOUNT_ID}:role/{role} --audience {role}"
            ),
            "{doc}"
        );
        assert_eq!(section["region"], REGION, "{doc}");
    }
    wd.run_ok(&["destroy", "-auto-approve", "-input=false", "-no-color"]);
}

// --- make bed --------------------------------------------------------------------------------

/// scripts/bed.sh (what `make bed` runs after `cargo build`), stopped with SIGTERM when dropped
/// so that a failing test leaves nothing running either.
struct BedScript {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl BedScript {
    fn start() -> BedScript {
        let provider_dir = provider_binary()
            .parent()
            .expect("the provider's directory")
            .to_path_buf();
        let mut command = Command::new(support::repo_root().join("scripts/bed.sh"));
        // A user's terminal delivers Ctrl-C to a shell that has SIGINT at its default. A test
        // run started in the background (`make test &`, some CI runners) inherits SIGINT as
        // ignored, and bash cannot trap a signal ignored on entry: restore the default first.
        // SAFETY: between fork and exec only the async-signal-safe `signal` is called.
        unsafe {
            command.pre_exec(|| {
                libc::signal(libc::SIGINT, libc::SIG_DFL);
                Ok(())
            });
        }
        let mut child = command
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", std::env::var_os("HOME").unwrap_or_default())
            .env("GCPFED_PYTHON", support::python())
            .env("GCPFED_PROVIDER_DIR", &provider_dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start scripts/bed.sh");
        let stdout = child.stdout.take().expect("the script's stdout");
        let (send, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if send.send(line).is_err() {
                    break;
                }
            }
        });
        BedScript { child, lines }
    }

    /// Every line printed up to and including the ready line.
    fn until_ready(&self) -> Vec<String> {
        let mut seen = Vec::new();
        loop {
            match self.lines.recv_timeout(BOUND) {
                Ok(line) => {
                    let ready = line.starts_with("==> bed: ready");
                    seen.push(line);
                    if ready {
                        return seen;
                    }
                }
                Err(e) => panic!(
                    "scripts/bed.sh never said it was ready ({e}); it printed:\n{}",
                    seen.join("\n")
                ),
            }
        }
    }

    fn signal(&self, name: &str) {
        let _ = Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status();
    }
}

impl Drop for BedScript {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            self.signal("TERM");
            let _ = wait_or_kill(&mut self.child, BOUND, "scripts/bed.sh");
        }
    }
}

/// `export NAME=value` lines as (NAME, value).
fn exports(lines: &[String]) -> Vec<(String, String)> {
    lines
        .iter()
        .filter_map(|l| l.strip_prefix("export "))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

/// A configuration of our own: nothing in it names the bed; the exports do.
fn own_configuration(engine: Engine, unique_id: &str) -> String {
    let role = format!("first-hour-bed-{}", engine.to_string().to_lowercase());
    format!(
        r#"{providers}
provider "gcpfed" {{}}

resource "gcpfed_role" "mine" {{
  name                       = "{role}"
  audience                   = "my-audience"
  service_account_unique_ids = ["{unique_id}"]
}}

data "gcpfed_credentials" "mine" {{
  role_arn = gcpfed_role.mine.arn
  audience = gcpfed_role.mine.audience
}}

output "assumed_role_arn" {{
  value = data.gcpfed_credentials.mine.assumed_role_arn
}}
"#,
        providers = support::tf::REQUIRED_PROVIDERS,
    )
}

fn is_running(pid: &str) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

#[test]
fn make_bed_serves_a_configuration_of_our_own_under_both_engines_then_stops_cleanly() {
    let script = BedScript::start();
    let lines = script.until_ready();
    let text = lines.join("\n");
    let env = exports(&lines);
    let get = |name: &str| {
        env.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| panic!("no `export {name}=` in:\n{text}"))
    };
    let cli_config = PathBuf::from(get("TF_CLI_CONFIG_FILE"));
    let work = cli_config
        .parent()
        .expect("the bed's directory")
        .to_path_buf();
    let cli_text = std::fs::read_to_string(&cli_config).expect("the printed CLI config");
    for host in [
        "registry.terraform.io/gcpfed/gcpfed",
        "registry.opentofu.org/gcpfed/gcpfed",
    ] {
        assert!(cli_text.contains(host), "{host} missing:\n{cli_text}");
    }
    assert!(text.contains("source "), "no line to source:\n{text}");
    // The bed's accounts as the bed reports them (the defaults of tests/testbed/bed_state.py).
    for account in [
        "104857600000000000001  ci-runner@gcpfed-test.iam.gserviceaccount.com  (metadata alias: default)",
        "104857600000000000002  deployer@gcpfed-test.iam.gserviceaccount.com",
        "113000000000000000099  outsider@other-project.iam.gserviceaccount.com",
    ] {
        assert!(text.contains(account), "{account:?} missing:\n{text}");
    }
    let bed_pid = text
        .split("pid ")
        .nth(1)
        .and_then(|rest| rest.split(')').next())
        .expect("the bed's pid in the first line")
        .to_owned();
    assert!(is_running(&bed_pid), "the bed is not running:\n{text}");

    for_engines(&ENGINES, |engine| {
        // The printed exports and nothing else (the driver's own CLI config is replaced).
        let wd = Workdir::new(engine, &own_configuration(engine, RUNNER_ID), &env);
        wd.run_ok(&["apply", "-auto-approve", "-input=false", "-no-color"]);
        let out = wd.run_ok(&["output", "-raw", "assumed_role_arn"]);
        let role = format!("first-hour-bed-{}", engine.to_string().to_lowercase());
        assert!(
            out.stdout
                .starts_with(&format!("arn:aws:sts::{ACCOUNT_ID}:assumed-role/{role}/")),
            "{}",
            out.describe("the exchange's assumed role")
        );
        wd.run_ok(&["destroy", "-auto-approve", "-input=false", "-no-color"]);
    });

    // Ctrl-C, as a user stops it.
    script.signal("INT");
    let mut script = script;
    let (status, killed) = wait_or_kill(&mut script.child, BOUND, "scripts/bed.sh");
    assert!(!killed, "scripts/bed.sh did not stop on SIGINT");
    assert_eq!(status.code(), Some(0), "exit status after Ctrl-C");
    assert!(
        !is_running(&bed_pid),
        "the bed (pid {bed_pid}) outlived the script"
    );
    assert!(!work.exists(), "{} is left behind", work.display());
    let aws = get("AWS_ENDPOINT_URL");
    let address = aws.trim_start_matches("http://");
    assert!(
        std::net::TcpStream::connect(address).is_err(),
        "something still listens on {address}"
    );
}
