//! Which AWS the acceptance suite runs against, and the names it may create there.
//!
//! The local test bed is the default. A real AWS sandbox account is used only when the
//! environment opts in with `GCPFED_ACC=aws` and carries AWS credentials; opting in without
//! credentials is an error rather than a silent fall-back to the bed. Every name the suite
//! creates starts with `run_prefix()` (`gcpfedacc-<run id>-`), so `make sweep` can find leftovers
//! by the fixed `SUITE_PREFIX` and concurrent runs never collide.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

/// The fixed start of every name the suite creates; `make sweep` deletes roles starting with it.
pub const SUITE_PREFIX: &str = "gcpfedacc-";

/// The variable that opts in to a real AWS account.
pub const OPT_IN_VAR: &str = "GCPFED_ACC";

/// Region used in the sandbox when the environment names none.
pub const DEFAULT_REGION: &str = "us-east-1";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// The local test bed (moto + STS gate + metadata emulator), started by each test.
    LocalBed,
    /// A real AWS account reached with the credentials of the environment.
    AwsSandbox { region: String },
}

/// The outcome of target selection: the target, and why the sandbox is not used (if it is not).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selection {
    pub target: Target,
    pub sandbox_skip_reason: Option<String>,
}

fn non_empty<'a>(env: &'a BTreeMap<String, String>, key: &str) -> Option<&'a str> {
    env.get(key)
        .map(String::as_str)
        .filter(|v| !v.trim().is_empty())
}

/// Names the AWS credential source present in `env`, if any (the environment part of the
/// standard chain: keys, a profile, web identity, container credentials).
pub fn credentials_in(env: &BTreeMap<String, String>) -> Option<&'static str> {
    let has = |k: &str| non_empty(env, k).is_some();
    if has("AWS_ACCESS_KEY_ID") && has("AWS_SECRET_ACCESS_KEY") {
        Some("AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY")
    } else if has("AWS_PROFILE") {
        Some("AWS_PROFILE")
    } else if has("AWS_WEB_IDENTITY_TOKEN_FILE") && has("AWS_ROLE_ARN") {
        Some("AWS_WEB_IDENTITY_TOKEN_FILE/AWS_ROLE_ARN")
    } else if has("AWS_CONTAINER_CREDENTIALS_FULL_URI")
        || has("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI")
    {
        Some("AWS_CONTAINER_CREDENTIALS_*")
    } else {
        None
    }
}

/// The selection rule, as a pure function of an environment.
pub fn select(env: &BTreeMap<String, String>) -> Result<Selection, String> {
    match non_empty(env, OPT_IN_VAR) {
        None | Some("local") => Ok(Selection {
            target: Target::LocalBed,
            sandbox_skip_reason: Some(format!(
                "{OPT_IN_VAR} is not `aws`: the AWS sandbox target is skipped, the local test bed is used \
                 (set {OPT_IN_VAR}=aws with AWS credentials in the environment to run against a sandbox account)"
            )),
        }),
        Some("aws") => match credentials_in(env) {
            Some(_) => Ok(Selection {
                target: Target::AwsSandbox {
                    region: non_empty(env, "AWS_REGION")
                        .or_else(|| non_empty(env, "AWS_DEFAULT_REGION"))
                        .unwrap_or(DEFAULT_REGION)
                        .to_string(),
                },
                sandbox_skip_reason: None,
            }),
            None => Err(format!(
                "{OPT_IN_VAR}=aws but the environment has no AWS credentials: set AWS_ACCESS_KEY_ID and \
                 AWS_SECRET_ACCESS_KEY, AWS_PROFILE, or AWS_WEB_IDENTITY_TOKEN_FILE with AWS_ROLE_ARN \
                 (or unset {OPT_IN_VAR} to use the local test bed)"
            )),
        },
        Some(other) => Err(format!(
            "{OPT_IN_VAR}={other:?} is not understood: use `aws` for a sandbox account, or leave it unset \
             for the local test bed"
        )),
    }
}

/// The process environment as a map (non-UTF-8 entries are ignored).
pub fn process_env() -> BTreeMap<String, String> {
    std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .collect()
}

/// This run's selection, decided once; panics with the reason when the environment is
/// contradictory, and prints the target (and why the sandbox is skipped) once per test binary.
pub fn selection() -> &'static Selection {
    static SELECTION: OnceLock<Selection> = OnceLock::new();
    SELECTION.get_or_init(|| {
        let selection = select(&process_env()).unwrap_or_else(|reason| panic!("{reason}"));
        match (&selection.target, &selection.sandbox_skip_reason) {
            (Target::AwsSandbox { region }, _) => announce(&format!(
                "acceptance target: AWS sandbox account, region {region}, names prefixed {}",
                run_prefix()
            )),
            (Target::LocalBed, Some(reason)) => announce(&format!(
                "acceptance target: local test bed; SKIPPED sandbox target: {reason}"
            )),
            (Target::LocalBed, None) => announce("acceptance target: local test bed"),
        }
        selection
    })
}

/// Writes a line straight to the process's stderr: libtest captures `eprintln!` of passing
/// tests, and the choice of target (or why the sandbox is skipped) must show in every run.
pub fn announce(line: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr().lock(), "{line}");
}

/// `gcpfedacc-<8 hex>-`, random per test process.
pub fn run_prefix() -> &'static str {
    static PREFIX: OnceLock<String> = OnceLock::new();
    PREFIX.get_or_init(|| format!("{SUITE_PREFIX}{:08x}-", rand::random::<u32>()))
}

/// A name unique within this run: `run_prefix()` + `label` + a counter, e.g.
/// `gcpfedacc-1a2b3c4d-ci-3`.
pub fn unique_name(label: &str) -> String {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{}{label}-{n}", run_prefix())
}

/// Variables the sandbox target passes to Terraform (the driver scrubs the host's AWS_* otherwise).
pub fn sandbox_env(env: &BTreeMap<String, String>) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = env
        .iter()
        .filter(|(k, _)| k.starts_with("AWS_"))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    // The driver gives Terraform a private HOME; keep the shared AWS files reachable.
    if let Some(home) = non_empty(env, "HOME") {
        for (var, file) in [
            ("AWS_CONFIG_FILE", "config"),
            ("AWS_SHARED_CREDENTIALS_FILE", "credentials"),
        ] {
            if non_empty(env, var).is_none() {
                out.push((var.to_string(), format!("{home}/.aws/{file}")));
            }
        }
    }
    out
}

/// What one acceptance test runs against: a local bed it started (stopped when this is
/// dropped), or the sandbox account of the environment.
pub enum Acc {
    Local(super::bed::TestBed),
    Sandbox {
        region: String,
        env: Vec<(String, String)>,
    },
}

impl Acc {
    /// Starts what `selection()` chose.
    pub fn start() -> Acc {
        match &selection().target {
            Target::LocalBed => Acc::Local(super::bed::TestBed::start()),
            Target::AwsSandbox { region } => Acc::Sandbox {
                region: region.clone(),
                env: sandbox_env(&process_env()),
            },
        }
    }

    /// The local bed, when that is the target.
    pub fn bed(&self) -> Option<&super::bed::TestBed> {
        match self {
            Acc::Local(bed) => Some(bed),
            Acc::Sandbox { .. } => None,
        }
    }

    /// The `provider "gcpfed"` block for this target (the sandbox: region only, credentials
    /// from the environment's chain).
    pub fn provider_hcl(&self) -> String {
        match self {
            Acc::Local(bed) => bed.provider_hcl(),
            Acc::Sandbox { region, .. } => {
                format!("provider \"gcpfed\" {{\n  region = \"{region}\"\n}}\n")
            }
        }
    }

    /// Variables the engines get for this target (the driver scrubs the host's AWS_*).
    pub fn env(&self) -> Vec<(String, String)> {
        match self {
            // Explicit keys are in the provider block; never let the chain probe IMDS.
            Acc::Local(_) => vec![("AWS_EC2_METADATA_DISABLED".into(), "true".into())],
            Acc::Sandbox { env, .. } => env.clone(),
        }
    }
}
