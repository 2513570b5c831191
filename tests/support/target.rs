//! Which AWS the acceptance suite runs against, and the names it may create there.
//!
//! The local test bed is the default. A real AWS sandbox account is used only when the
//! environment opts in with `GCPFED_ACC=aws` and carries AWS credentials; opting in without
//! credentials is an error rather than a silent fall-back to the bed. Every name the suite
//! creates starts with `run_prefix()` (`gcpfedacc-<run id>-`), so `make sweep` can find leftovers
//! by the fixed `SUITE_PREFIX` and concurrent runs never collide.
//!
//! Variables of the sandbox target:
//! - `GCPFED_ACC=aws` opts in; AWS credentials come from the standard chain
//!   (`AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`, `AWS_PROFILE`, `AWS_WEB_IDENTITY_TOKEN_FILE` with
//!   `AWS_ROLE_ARN`, container credentials); the region from `AWS_REGION`, `AWS_DEFAULT_REGION`,
//!   else `us-east-1`. Tests and Terraform use the same chain and region.
//! - `GCPFED_ACC_WEB_IDENTITY_TOKEN`: a Google ID token (for example from
//!   `gcloud auth print-identity-token --audiences=AUD`) that the `gcpfed_credentials` tests pass
//!   as `web_identity_token` (through a sensitive `TF_VAR_`, never written to a file). Without it
//!   those tests need a Google Cloud runner: the metadata server at `GCE_METADATA_HOST`, else
//!   `metadata.google.internal`; when neither is usable they are skipped with the reason printed.
//! - `GCPFED_ACC_SA_UNIQUE_ID`: the numeric unique ID of the service account the token belongs to
//!   (default: the token's `sub`; on a runner, learned from a metadata token).
//! - `GCPFED_ACC_AUDIENCE`: the audience (default: the given token's `aud`; on a runner, the
//!   test's own audience).
//! - `GCPFED_ACC_SETTLE_SECS`: seconds to wait after an out-of-band IAM change before Terraform
//!   reads it back (IAM is eventually consistent; default 10).
//!
//! Tests that need the bed itself (minted tokens, fault injection, the call recorder) take it
//! through [`Acc::local_only`], which prints why they are skipped on the sandbox. Roles a test
//! names with [`Acc::unique_name`] are deleted through IAM when its `Acc` is dropped, also after a
//! failed assertion; `make sweep` removes what a killed run left.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use serde_json::Value;

use super::bed::{block_on, TestBed};

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
    PREFIX.get_or_init(|| format!("{SUITE_PREFIX}{:08x}-", fastrand::u32(..)))
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
    // The driver scrubs GCE_METADATA*: a runner's explicit metadata host must reach the provider.
    if let Some(host) = non_empty(env, "GCE_METADATA_HOST") {
        out.push(("GCE_METADATA_HOST".into(), host.to_string()));
    }
    out
}

// ---------- the sandbox's Google identity (for the gcpfed_credentials tests) ----------

/// The token variable of the sandbox target.
pub const TOKEN_VAR: &str = "GCPFED_ACC_WEB_IDENTITY_TOKEN";
/// The service account's unique ID on the sandbox target.
pub const UNIQUE_ID_VAR: &str = "GCPFED_ACC_SA_UNIQUE_ID";
/// The audience on the sandbox target.
pub const AUDIENCE_VAR: &str = "GCPFED_ACC_AUDIENCE";
/// Where a Google Cloud runner's metadata server is when `GCE_METADATA_HOST` names none.
pub const DEFAULT_METADATA_HOST: &str = "metadata.google.internal";

/// A secret whose `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct Redacted(pub String);

impl std::fmt::Debug for Redacted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "<redacted, {} characters>", self.0.len())
    }
}

/// Where the sandbox's Google ID token comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenSource {
    /// `GCPFED_ACC_WEB_IDENTITY_TOKEN`, handed to the data source as `web_identity_token`.
    Given(Redacted),
    /// The metadata server of a Google Cloud runner (`host[:port]`).
    Metadata { host: String },
}

/// What the sandbox's credentials tests use, as far as the environment alone decides it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FederationPlan {
    pub source: TokenSource,
    pub audience: String,
    /// The service account's unique ID (`sub`); `None`: learn it from a metadata token.
    pub unique_id: Option<String>,
    /// The `email` claim, when the token carries one.
    pub email: Option<String>,
}

/// The rule for the sandbox's Google identity, as a pure function of the environment;
/// `default_audience` is the test's own (used with a metadata server when none is set).
pub fn federation_plan(
    env: &BTreeMap<String, String>,
    default_audience: &str,
) -> Result<FederationPlan, String> {
    let id_var = non_empty(env, UNIQUE_ID_VAR).map(str::trim);
    if let Some(id) = id_var {
        if !id.chars().all(|c| c.is_ascii_digit()) {
            return Err(format!(
                "{UNIQUE_ID_VAR} must be the service account's numeric unique ID, not {id:?}"
            ));
        }
    }
    let audience_var = non_empty(env, AUDIENCE_VAR).map(str::trim);
    let Some(token) = non_empty(env, TOKEN_VAR).map(str::trim) else {
        return Ok(FederationPlan {
            source: TokenSource::Metadata {
                host: non_empty(env, "GCE_METADATA_HOST")
                    .unwrap_or(DEFAULT_METADATA_HOST)
                    .to_string(),
            },
            audience: audience_var.unwrap_or(default_audience).to_string(),
            unique_id: id_var.map(str::to_string),
            email: None,
        });
    };
    let claims = super::unverified_claims(token).ok_or_else(|| {
        format!("{TOKEN_VAR} is not a JWT (three base64url parts with a JSON payload)")
    })?;
    let claim = |name: &str| {
        claims
            .get(name)
            .and_then(Value::as_str)
            .filter(|v| !v.is_empty())
            .map(str::to_string)
    };
    let unique_id = match (id_var, claim("sub")) {
        (Some(id), Some(sub)) if id != sub => {
            return Err(format!(
                "{UNIQUE_ID_VAR}={id} but the token of {TOKEN_VAR} is of sub {sub}"
            ))
        }
        (Some(id), _) => id.to_string(),
        (None, Some(sub)) => sub,
        (None, None) => {
            return Err(format!(
                "the token of {TOKEN_VAR} has no sub claim: set {UNIQUE_ID_VAR}"
            ))
        }
    };
    let audience = match (audience_var, claim("aud")) {
        (Some(a), Some(aud)) if a != aud => {
            return Err(format!(
                "{AUDIENCE_VAR}={a:?} but the token of {TOKEN_VAR} is for audience {aud:?}"
            ))
        }
        (Some(a), _) => a.to_string(),
        (None, Some(aud)) => aud,
        (None, None) => {
            return Err(format!(
                "the token of {TOKEN_VAR} has no aud claim: set {AUDIENCE_VAR}"
            ))
        }
    };
    Ok(FederationPlan {
        source: TokenSource::Given(Redacted(token.to_string())),
        audience,
        unique_id: Some(unique_id),
        email: claim("email"),
    })
}

/// The sandbox's Google identity, resolved: what the data source is given and what it must
/// report.
#[derive(Debug, Clone)]
pub struct Federation {
    pub audience: String,
    pub unique_id: String,
    pub email: Option<String>,
    /// Lines for `data "gcpfed_credentials"` (the token variable, the service account).
    pub data_args: String,
    /// HCL to add to the configuration (the sensitive token variable).
    pub extra_hcl: String,
    /// Variables for the engines (the token, through `TF_VAR_`).
    pub env: Vec<(String, String)>,
}

/// The variable that carries a given token into the configuration.
const TOKEN_TF_VAR: &str = "gcpfed_acc_web_identity_token";

impl FederationPlan {
    /// The arguments, HCL and variables the data source gets; `unique_id` as resolved.
    pub fn federation(&self, unique_id: String) -> Federation {
        let (data_args, extra_hcl, env) = match &self.source {
            TokenSource::Given(token) => (
                format!("  web_identity_token = var.{TOKEN_TF_VAR}\n  service_account = \"default\"\n"),
                format!("variable \"{TOKEN_TF_VAR}\" {{\n  type      = string\n  sensitive = true\n}}\n"),
                vec![(format!("TF_VAR_{TOKEN_TF_VAR}"), token.0.clone())],
            ),
            TokenSource::Metadata { .. } => (String::new(), String::new(), Vec::new()),
        };
        Federation {
            audience: self.audience.clone(),
            unique_id,
            email: self.email.clone(),
            data_args,
            extra_hcl,
            env,
        }
    }
}

/// A token from the metadata server at `host` (a Google Cloud runner), or why there is none.
fn metadata_token(host: &str, audience: &str) -> Result<String, String> {
    let url = format!(
        "http://{host}{}",
        super::bed::identity_path("default", audience)
    );
    let host = host.to_string();
    // Off-thread: reqwest's blocking client refuses to run inside an async runtime.
    std::thread::spawn(move || {
        let client = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| e.to_string())?;
        let response = client
            .get(&url)
            .header("Metadata-Flavor", "Google")
            .send()
            .map_err(|e| format!("no metadata server answers at {host} ({e})"))?;
        let status = response.status();
        let body = response.text().unwrap_or_default();
        if status.is_success() {
            Ok(body)
        } else {
            Err(format!(
                "the metadata server at {host} answered HTTP {status}"
            ))
        }
    })
    .join()
    .unwrap_or_else(|_| Err("the metadata request panicked".into()))
}

// ---------- what one acceptance test runs against ----------

/// The sandbox part of [`Acc`], as a pure function of the environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SandboxPlan {
    pub region: String,
    /// Variables Terraform gets (AWS_* of the chain, GCE_METADATA_HOST).
    pub env: Vec<(String, String)>,
    /// Seconds to wait after out-of-band IAM changes.
    pub settle: Duration,
}

/// What `Acc::start` would use on the sandbox for this environment; `Ok(None)` on the bed.
pub fn sandbox_plan(env: &BTreeMap<String, String>) -> Result<Option<SandboxPlan>, String> {
    let Target::AwsSandbox { region } = select(env)?.target else {
        return Ok(None);
    };
    let settle = match non_empty(env, "GCPFED_ACC_SETTLE_SECS") {
        None => 10,
        Some(v) => v
            .trim()
            .parse::<u64>()
            .map_err(|_| format!("GCPFED_ACC_SETTLE_SECS={v:?} is not a number of seconds"))?,
    };
    Ok(Some(SandboxPlan {
        region,
        env: sandbox_env(env),
        settle: Duration::from_secs(settle),
    }))
}

enum Place {
    Local(TestBed),
    Sandbox {
        plan: SandboxPlan,
        sdk: Box<OnceLock<aws_types::SdkConfig>>,
        account: OnceLock<String>,
    },
}

/// What one acceptance test runs against: a local bed it started (stopped when this is
/// dropped), or the sandbox account of the environment, where the roles named through
/// [`Acc::unique_name`] are deleted when this is dropped (also when the test failed).
pub struct Acc {
    place: Place,
    names: Mutex<Vec<String>>,
}

impl Acc {
    /// Starts what `selection()` chose.
    pub fn start() -> Acc {
        let place = match &selection().target {
            Target::LocalBed => Place::Local(TestBed::start()),
            Target::AwsSandbox { .. } => Place::Sandbox {
                plan: sandbox_plan(&process_env())
                    .unwrap_or_else(|reason| panic!("{reason}"))
                    .expect("the sandbox is selected"),
                sdk: Box::default(),
                account: OnceLock::new(),
            },
        };
        Acc {
            place,
            names: Mutex::new(Vec::new()),
        }
    }

    /// A local bed for a test that needs the bed itself; on the sandbox prints why `test` is
    /// skipped and returns `None` (the caller returns).
    pub fn local_only(test: &str, why: &str) -> Option<Acc> {
        match &selection().target {
            Target::LocalBed => Some(Acc::start()),
            Target::AwsSandbox { .. } => {
                announce(&format!("SKIPPED {test} on the AWS sandbox target: {why}"));
                None
            }
        }
    }

    /// The local bed, when that is the target.
    pub fn bed(&self) -> Option<&TestBed> {
        match &self.place {
            Place::Local(bed) => Some(bed),
            Place::Sandbox { .. } => None,
        }
    }

    pub fn is_sandbox(&self) -> bool {
        matches!(self.place, Place::Sandbox { .. })
    }

    /// The region the provider and the test's clients use.
    pub fn region(&self) -> &str {
        match &self.place {
            Place::Local(_) => super::bed::REGION,
            Place::Sandbox { plan, .. } => &plan.region,
        }
    }

    /// The `provider "gcpfed"` block for this target (the sandbox: region only, credentials
    /// from the environment's chain).
    pub fn provider_hcl(&self) -> String {
        match &self.place {
            Place::Local(bed) => bed.provider_hcl(),
            Place::Sandbox { plan, .. } => {
                format!(
                    "provider \"gcpfed\" {{\n  region = \"{}\"\n}}\n",
                    plan.region
                )
            }
        }
    }

    /// Variables the engines get for this target (the driver scrubs the host's AWS_*).
    pub fn env(&self) -> Vec<(String, String)> {
        match &self.place {
            // Explicit keys are in the provider block; never let the chain probe IMDS.
            Place::Local(_) => vec![("AWS_EC2_METADATA_DISABLED".into(), "true".into())],
            Place::Sandbox { plan, .. } => plan.env.clone(),
        }
    }

    /// The sandbox's AWS configuration: the standard chain, in the selected region.
    fn sdk(&self) -> Option<&aws_types::SdkConfig> {
        match &self.place {
            Place::Local(_) => None,
            Place::Sandbox { plan, sdk, .. } => Some(sdk.get_or_init(|| {
                let region = aws_types::region::Region::new(plan.region.clone());
                block_on(
                    aws_config::defaults(aws_config::BehaviorVersion::latest())
                        .region(region)
                        .load(),
                )
            })),
        }
    }

    /// IAM of the target, outside Terraform: the bed's moto directly (unrecorded), or the
    /// sandbox account through the environment's credentials.
    pub fn iam(&self) -> aws_sdk_iam::Client {
        match (&self.place, self.sdk()) {
            (Place::Local(bed), _) => bed.iam(),
            (_, Some(sdk)) => aws_sdk_iam::Client::new(sdk),
            (Place::Sandbox { .. }, None) => unreachable!("a sandbox has an SDK configuration"),
        }
    }

    /// An STS client that signs with the given session credentials, at the target's STS.
    pub fn sts_with(&self, key: &str, secret: &str, token: &str) -> aws_sdk_sts::Client {
        use aws_sdk_sts::config::{BehaviorVersion, Credentials, Region};
        let mut conf = aws_sdk_sts::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(self.region().to_string()))
            .credentials_provider(Credentials::new(
                key,
                secret,
                Some(token.to_owned()),
                None,
                "acc-test",
            ));
        if let Place::Local(bed) = &self.place {
            conf = conf.endpoint_url(&bed.aws_endpoint);
        }
        aws_sdk_sts::Client::from_conf(conf.build())
    }

    /// The account roles are created in (the bed's is moto's default).
    pub fn account_id(&self) -> String {
        match &self.place {
            Place::Local(_) => super::bed::ACCOUNT_ID.to_string(),
            Place::Sandbox { account, .. } => account
                .get_or_init(|| {
                    let sts = aws_sdk_sts::Client::new(self.sdk().expect("sandbox SDK config"));
                    block_on(sts.get_caller_identity().send())
                        .unwrap_or_else(|e| {
                            panic!(
                                "sandbox: GetCallerIdentity with the environment's credentials: {}",
                                aws_sdk_sts::error::DisplayErrorContext(&e)
                            )
                        })
                        .account
                        .expect("GetCallerIdentity names the account")
                })
                .clone(),
        }
    }

    /// `unique_name(label)`, remembered: on the sandbox a role of that name still present when
    /// this is dropped is deleted.
    pub fn unique_name(&self, label: &str) -> String {
        let name = unique_name(label);
        self.names
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(name.clone());
        name
    }

    /// Whether a role of this name belongs to this test: on the bed (one per test) every name
    /// of the run; on the shared sandbox account only the names this `Acc` handed out.
    pub fn owns(&self, name: &str) -> bool {
        match &self.place {
            Place::Local(_) => name.starts_with(run_prefix()),
            Place::Sandbox { .. } => self
                .names
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .iter()
                .any(|n| n == name),
        }
    }

    /// Creates a role through the target's IAM (out of band), named by (and so cleaned up with)
    /// this `Acc`, with the gcpfed trust policy written out by hand for `audience` and `ids`;
    /// returns (name, arn).
    pub fn create_trusted_role(
        &self,
        label: &str,
        audience: &str,
        ids: &[&str],
    ) -> (String, String) {
        let name = self.unique_name(label);
        let arn = super::iam::create_trusted_role(&self.iam(), &name, audience, ids);
        assert_eq!(
            arn,
            format!("arn:aws:iam::{}:role/{name}", self.account_id())
        );
        // IAM is eventually consistent: STS may not know a brand-new role yet (sandbox only).
        self.settle();
        (name, arn)
    }

    /// Waits for IAM to propagate an out-of-band change (the sandbox only; the bed is exact).
    pub fn settle(&self) {
        if let Place::Sandbox { plan, .. } = &self.place {
            std::thread::sleep(plan.settle);
        }
    }

    /// The Google identity the credentials tests use on the sandbox, or `None` after printing
    /// why `test` is skipped (no token given and no metadata server). `None` on the bed too:
    /// the bed's tests use its emulated service accounts.
    pub fn federation(&self, test: &str, default_audience: &str) -> Option<Federation> {
        if !self.is_sandbox() {
            return None;
        }
        let plan = federation_plan(&process_env(), default_audience)
            .unwrap_or_else(|reason| panic!("{reason}"));
        let learned = match (&plan.source, &plan.unique_id) {
            (_, Some(id)) => Ok((id.clone(), plan.email.clone())),
            (TokenSource::Metadata { host }, None) => metadata_token(host, &plan.audience)
                .and_then(|token| {
                    let claims = super::unverified_claims(&token)
                        .ok_or_else(|| format!("the metadata server at {host} sent no JWT"))?;
                    let text = |k: &str| claims.get(k).and_then(Value::as_str).map(str::to_string);
                    let sub = text("sub")
                        .ok_or_else(|| format!("the token of {host} has no sub claim"))?;
                    Ok((sub, text("email")))
                }),
            (TokenSource::Given(_), None) => Err(format!("set {UNIQUE_ID_VAR}")),
        };
        match learned {
            Ok((id, email)) => Some(FederationPlan { email, ..plan }.federation(id)),
            Err(why) => {
                announce(&format!(
                    "SKIPPED {test} on the AWS sandbox target: {why}; run it on a Google Cloud \
                     runner or set {TOKEN_VAR} (and {AUDIENCE_VAR} / {UNIQUE_ID_VAR} as needed)"
                ));
                None
            }
        }
    }
}

impl Drop for Acc {
    fn drop(&mut self) {
        if !self.is_sandbox() {
            return; // the bed goes away with everything in it
        }
        let names = std::mem::take(&mut *self.names.lock().unwrap_or_else(|e| e.into_inner()));
        if names.is_empty() {
            return;
        }
        // Never panic here: this also runs while a failed test unwinds.
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let iam = self.iam();
            for name in &names {
                match super::iam::delete_role_fully(&iam, name) {
                    Ok(true) => announce(&format!("sandbox cleanup: deleted leftover role {name}")),
                    Ok(false) => {}
                    Err(e) => announce(&format!(
                        "sandbox cleanup: could not delete role {name} ({e}); `make sweep` removes it"
                    )),
                }
            }
        }));
        if outcome.is_err() {
            announce("sandbox cleanup failed; run `make sweep` to remove this run's roles");
        }
    }
}
