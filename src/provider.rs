//! The provider itself: its schema, the validation of its arguments, and the AWS
//! clients it builds once per configuration and shares with every resource and data source.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tf_provider::schema::{
    Attribute, AttributeConstraint, AttributeType, Block, Description, NestedBlock, Schema,
};
use tf_provider::value::{Value, ValueEmpty};
use tf_provider::{AttributePath, Diagnostics, Provider};

use crate::clients::aws::{self, AwsSettings, GcpIdentitySettings, StaticCredentials};
use crate::data_sources::credentials::CredentialsDataSource;
use crate::diag;
use crate::ephemeral_resources::credentials::CredentialsEphemeral;
use crate::functions::trust_policy::TrustPolicyFunction;
use crate::plugin::Registry;
use crate::resources::role::RoleResource;

/// The provider's local name: resource types are `gcpfed_*`.
pub const PROVIDER_NAME: &str = "gcpfed";

/// Where the GCE metadata server lives when nothing else is said.
pub const DEFAULT_METADATA_HOST: &str = "metadata.google.internal";

/// Default retry budget for throttling and transient faults.
pub const DEFAULT_MAX_RETRIES: u32 = 5;

/// Everything Terraform can use from this provider, as the plugin server serves it. The types
/// share one clients cell, filled in when Terraform configures the provider.
pub fn registry() -> Registry {
    let provider = GcpfedProvider::default();
    let shared = provider.shared();
    Registry::new(provider)
        .resource(
            crate::resources::role::TYPE_NAME,
            RoleResource::new(shared.clone()),
        )
        .data_source(
            crate::data_sources::credentials::TYPE_NAME,
            CredentialsDataSource::new(shared.clone()),
        )
        .ephemeral_resource(
            crate::ephemeral_resources::credentials::TYPE_NAME,
            CredentialsEphemeral::new(shared.clone()),
        )
        .function(crate::functions::trust_policy::NAME, TrustPolicyFunction)
}

/// Everything the resources and data sources need from the provider configuration.
#[derive(Debug, Clone)]
pub struct Clients {
    /// Region, credentials and retry settings for any AWS SDK client.
    pub sdk_config: aws_types::SdkConfig,
    pub iam: aws_sdk_iam::Client,
    pub region: String,
    /// Explicit STS endpoint (`endpoints.sts`, `AWS_ENDPOINT_URL_STS`, `AWS_ENDPOINT_URL`);
    /// `None` means STS's regional endpoint for `region`.
    pub sts_endpoint: Option<String>,
    /// host[:port] of the GCE metadata server.
    pub metadata_host: String,
    pub max_retries: u32,
    /// The credentials of `assume_role_with_gcp_identity`, when the block is set (the SDK
    /// config's credentials provider then wraps this same object).
    pub gcp_identity: Option<Arc<aws::GcpIdentityCredentials>>,
}

/// The clients, filled in once `configure` has run. Resources are constructed before
/// that, so they hold this shared cell rather than the clients themselves.
#[derive(Debug, Default)]
pub struct SharedClients(RwLock<Option<Arc<Clients>>>);

impl SharedClients {
    /// The configured clients, or an error diagnostic when the provider is not configured
    /// (which Terraform only allows when a configuration value is unknown until apply).
    pub fn get(&self, diags: &mut Diagnostics) -> Option<Arc<Clients>> {
        let clients = self.0.read().ok().and_then(|guard| guard.clone());
        if clients.is_none() {
            diags.root_error(
                "Provider not configured",
                "The gcpfed provider has not been configured yet. If its arguments depend on \
                 values known only after apply, apply those first (for example with -target).",
            );
        }
        clients
    }

    fn set(&self, clients: Clients) {
        if let Ok(mut guard) = self.0.write() {
            *guard = Some(Arc::new(clients));
        }
    }
}

#[derive(Debug, Default)]
pub struct GcpfedProvider {
    shared: Arc<SharedClients>,
}

impl GcpfedProvider {
    /// The clients cell shared with resources and data sources.
    pub fn shared(&self) -> Arc<SharedClients> {
        self.shared.clone()
    }
}

/// The provider block as Terraform sends it.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct ProviderConfig {
    pub region: Value<String>,
    pub profile: Value<String>,
    pub access_key: Value<String>,
    pub secret_key: Value<String>,
    pub token: Value<String>,
    pub metadata_host: Value<String>,
    pub max_retries: Value<i64>,
    #[serde(with = "tf_provider::value::serde_as_vec")]
    pub endpoints: Value<EndpointsConfig>,
    #[serde(with = "tf_provider::value::serde_as_vec")]
    pub assume_role_with_gcp_identity: Value<GcpIdentityConfig>,
}

/// The `assume_role_with_gcp_identity { ... }` block.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct GcpIdentityConfig {
    pub role_arn: Value<String>,
    pub audience: Value<String>,
    pub service_account: Value<String>,
    pub duration_seconds: Value<i64>,
}

/// The block's name, and the defaults of its optional arguments (those of gcpfed_credentials).
pub const ASSUME_ROLE_BLOCK: &str = "assume_role_with_gcp_identity";
pub const DEFAULT_SERVICE_ACCOUNT: &str = "default";
pub const DEFAULT_DURATION_SECONDS: i64 = 3600;
pub const DURATION_SECONDS_MIN: i64 = 900;
pub const DURATION_SECONDS_MAX: i64 = 43200;

fn assume_role_path(attribute: &str) -> AttributePath {
    AttributePath::new(ASSUME_ROLE_BLOCK)
        .index(0)
        .attribute(attribute.to_string())
}

/// The `endpoints { iam = ..., sts = ... }` block.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct EndpointsConfig {
    pub iam: Value<String>,
    pub sts: Value<String>,
}

/// One argument problem, found without any I/O so it can be reported at validate time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem {
    pub path: AttributePath,
    pub summary: String,
    pub detail: String,
}

/// Checks the provider arguments. Unknown values are never an error here: they are
/// only known at apply time.
pub fn check_config(config: &ProviderConfig) -> Vec<ConfigProblem> {
    let mut problems = Vec::new();
    if let Value::Value(endpoints) = &config.endpoints {
        for (name, value) in [("iam", &endpoints.iam), ("sts", &endpoints.sts)] {
            if let Value::Value(url) = value {
                if let Err(reason) = check_endpoint_url(url) {
                    problems.push(ConfigProblem {
                        path: AttributePath::new("endpoints").index(0).attribute(name),
                        summary: format!("Invalid {} endpoint URL", name.to_uppercase()),
                        detail: format!(
                            "endpoints.{name} must be an absolute http:// or https:// URL such as \
                             \"https://{name}.amazonaws.com\" or \"http://127.0.0.1:5000\"; {reason}."
                        ),
                    });
                }
            }
        }
    }
    if let Value::Value(retries) = config.max_retries {
        if !(0..=100).contains(&retries) {
            problems.push(ConfigProblem {
                path: AttributePath::new("max_retries"),
                summary: "Invalid max_retries".into(),
                detail: format!(
                    "max_retries must be a whole number from 0 to 100 (default {DEFAULT_MAX_RETRIES}); \
                     got {retries}."
                ),
            });
        }
    }
    if let Value::Value(host) = &config.metadata_host {
        if let Err(reason) = check_metadata_host(host) {
            problems.push(ConfigProblem {
                path: AttributePath::new("metadata_host"),
                summary: "Invalid metadata_host".into(),
                detail: format!(
                    "metadata_host is a host[:port] such as \"{DEFAULT_METADATA_HOST}\" or \
                     \"127.0.0.1:8080\", without scheme or path; {reason}."
                ),
            });
        }
    }
    // A half-given key pair would silently fall back to the default credential chain.
    let access = &config.access_key;
    let secret = &config.secret_key;
    let half_given = |given: &Value<String>, missing: &Value<String>| {
        matches!(given, Value::Value(v) if !v.is_empty()) && matches!(missing, Value::Null)
    };
    if half_given(access, secret) {
        problems.push(key_pair_problem("secret_key", "access_key"));
    }
    if half_given(secret, access) {
        problems.push(key_pair_problem("access_key", "secret_key"));
    }
    if matches!(&config.token, Value::Value(t) if !t.is_empty())
        && matches!(access, Value::Null)
        && matches!(secret, Value::Null)
    {
        problems.push(ConfigProblem {
            path: AttributePath::new("token"),
            summary: "Session token without a key pair".into(),
            detail: "token is the session token of explicit temporary credentials: set \
                     access_key and secret_key with it, or remove it to use the standard AWS \
                     credential chain."
                .into(),
        });
    }
    if let Value::Value(block) = &config.assume_role_with_gcp_identity {
        problems.extend(check_gcp_identity(block));
        let explicit: Vec<&str> = [
            ("access_key", &config.access_key),
            ("secret_key", &config.secret_key),
            ("token", &config.token),
        ]
        .into_iter()
        .filter(|(_, v)| matches!(v, Value::Value(s) if !s.is_empty()))
        .map(|(name, _)| name)
        .collect();
        if !explicit.is_empty() {
            problems.push(ConfigProblem {
                path: AttributePath::new(ASSUME_ROLE_BLOCK),
                summary: "Conflicting credentials".into(),
                detail: format!(
                    "{ASSUME_ROLE_BLOCK} gives the provider its AWS credentials from the Google \
                     identity exchange (whose STS call is unsigned and needs no key), so {} would \
                     never be used. Remove {} or remove the {ASSUME_ROLE_BLOCK} block.",
                    explicit.join(", "),
                    if explicit.len() == 1 { "it" } else { "them" }
                ),
            });
        }
    }
    if matches!(&config.region, Value::Value(r) if !is_region_name(r)) {
        problems.push(ConfigProblem {
            path: AttributePath::new("region"),
            summary: "Invalid region".into(),
            detail: "region is an AWS region name such as \"us-east-1\" or \"eu-west-3\".".into(),
        });
    }
    problems
}

/// Checks the `assume_role_with_gcp_identity` block's arguments (known values only).
fn check_gcp_identity(block: &GcpIdentityConfig) -> Vec<ConfigProblem> {
    let mut problems = Vec::new();
    if let Value::Value(arn) = &block.role_arn {
        if let Err(e) = crate::validate::role_arn(arn) {
            problems.push(ConfigProblem {
                path: assume_role_path("role_arn"),
                summary: e.summary.into(),
                detail: format!(
                    "{} The role's trust policy must name accounts.google.com (gcpfed_role).",
                    e.detail
                ),
            });
        }
    }
    if let Value::Value(audience) = &block.audience {
        if audience.trim().is_empty() || audience.trim() != audience {
            problems.push(ConfigProblem {
                path: assume_role_path("audience"),
                summary: "Invalid audience".into(),
                detail: format!(
                    "audience is {audience:?}: give the audience of the role's trust policy \
                     (accounts.google.com:oaud, gcpfed_role's `audience`), without surrounding \
                     whitespace; the metadata server puts it in the token's aud claim."
                ),
            });
        }
    }
    if let Value::Value(sa) = &block.service_account {
        if sa.is_empty() || sa.contains('/') || (sa != DEFAULT_SERVICE_ACCOUNT && !sa.contains('@'))
        {
            problems.push(ConfigProblem {
                path: assume_role_path("service_account"),
                summary: "Invalid service account".into(),
                detail: format!(
                    "service_account is {sa:?}; the metadata server knows \"default\" (the account \
                     attached to this VM, node pool or Cloud Run service) or a service account's \
                     email, such as \"ci-runner@my-project.iam.gserviceaccount.com\"."
                ),
            });
        }
    }
    if let Value::Value(d) = block.duration_seconds {
        if !(DURATION_SECONDS_MIN..=DURATION_SECONDS_MAX).contains(&d) {
            problems.push(ConfigProblem {
                path: assume_role_path("duration_seconds"),
                summary: "Invalid session duration".into(),
                detail: format!(
                    "duration_seconds is {d}; STS accepts {DURATION_SECONDS_MIN} (15 minutes) to \
                     {DURATION_SECONDS_MAX} (12 hours), and at most the role's max_session_duration. \
                     Leave it out for {DEFAULT_DURATION_SECONDS}; the provider renews the \
                     credentials before they expire."
                ),
            });
        }
    }
    problems
}

/// The block's arguments that are still unknown at configure time (the provider cannot get
/// credentials from values it does not know).
pub fn unknown_gcp_identity_arguments(config: &ProviderConfig) -> Vec<AttributePath> {
    match &config.assume_role_with_gcp_identity {
        Value::Unknown => vec![AttributePath::new(ASSUME_ROLE_BLOCK)],
        Value::Value(block) => [
            ("role_arn", block.role_arn.is_unknown()),
            ("audience", block.audience.is_unknown()),
            ("service_account", block.service_account.is_unknown()),
            ("duration_seconds", block.duration_seconds.is_unknown()),
        ]
        .into_iter()
        .filter(|(_, unknown)| *unknown)
        .map(|(name, _)| assume_role_path(name))
        .collect(),
        Value::Null => Vec::new(),
    }
}

fn key_pair_problem(missing: &str, given: &str) -> ConfigProblem {
    ConfigProblem {
        path: AttributePath::new(missing.to_string()),
        summary: format!("Missing {missing}"),
        detail: format!(
            "{given} is set but {missing} is not: explicit credentials need both access_key and \
             secret_key. Set {missing}, or remove {given} to use the standard AWS credential chain \
             (environment, shared files, web identity, container, instance metadata)."
        ),
    }
}

pub fn check_endpoint_url(text: &str) -> Result<(), String> {
    let url = url::Url::parse(text).map_err(|err| format!("\"{text}\" does not parse: {err}"))?;
    if url.scheme() != "http" && url.scheme() != "https" {
        return Err(format!("\"{text}\" has scheme \"{}\"", url.scheme()));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(format!("\"{text}\" has no host"));
    }
    Ok(())
}

fn check_metadata_host(text: &str) -> Result<(), String> {
    if text.is_empty() {
        return Err("it is empty".into());
    }
    if text.contains("://") || text.contains('/') {
        return Err(format!("\"{text}\" has a scheme or a path"));
    }
    url::Url::parse(&format!("http://{text}/"))
        .map(|_| ())
        .map_err(|err| format!("\"{text}\" is not a host[:port]: {err}"))
}

pub fn is_region_name(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 32
        && text
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !text.starts_with('-')
        && !text.ends_with('-')
}

/// Environment variables the provider falls back on, read once at configure time.
pub trait Environment {
    fn var(&self, name: &str) -> Option<String>;
}

/// The process environment; empty values count as unset, as the AWS SDKs do.
pub struct ProcessEnvironment;

impl Environment for ProcessEnvironment {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok().filter(|v| !v.is_empty())
    }
}

impl Environment for HashMap<String, String> {
    fn var(&self, name: &str) -> Option<String> {
        self.get(name).filter(|v| !v.is_empty()).cloned()
    }
}

/// Resolves arguments and their environment fallbacks into client settings (no I/O).
pub fn resolve_settings(config: &ProviderConfig, env: &dyn Environment) -> AwsSettings {
    let given = |v: &Value<String>| v.as_ref_option().filter(|s| !s.is_empty()).cloned();
    let endpoints = config.endpoints.as_ref_option();
    let endpoint = |pick: fn(&EndpointsConfig) -> &Value<String>, service_var: &str| {
        endpoints
            .and_then(|e| given(pick(e)))
            .or_else(|| env.var(service_var))
            .or_else(|| env.var("AWS_ENDPOINT_URL"))
    };
    let static_credentials = match (given(&config.access_key), given(&config.secret_key)) {
        (Some(access_key_id), Some(secret_access_key)) => Some(StaticCredentials {
            access_key_id,
            secret_access_key,
            session_token: given(&config.token),
        }),
        _ => None,
    };
    AwsSettings {
        region: given(&config.region)
            .or_else(|| env.var("AWS_REGION"))
            .or_else(|| env.var("AWS_DEFAULT_REGION")),
        profile: given(&config.profile).or_else(|| env.var("AWS_PROFILE")),
        static_credentials,
        iam_endpoint: endpoint(|e| &e.iam, "AWS_ENDPOINT_URL_IAM"),
        sts_endpoint: endpoint(|e| &e.sts, "AWS_ENDPOINT_URL_STS"),
        metadata_host: given(&config.metadata_host)
            .or_else(|| env.var("GCE_METADATA_HOST"))
            .unwrap_or_else(|| DEFAULT_METADATA_HOST.to_string()),
        max_retries: config
            .max_retries
            .as_ref_option()
            .and_then(|n| u32::try_from(*n).ok())
            .unwrap_or(DEFAULT_MAX_RETRIES),
        assume_role_with_gcp_identity: config
            .assume_role_with_gcp_identity
            .as_ref_option()
            .and_then(|block| {
                Some(GcpIdentitySettings {
                    role_arn: given(&block.role_arn)?,
                    audience: given(&block.audience)?,
                    service_account: given(&block.service_account)
                        .unwrap_or_else(|| DEFAULT_SERVICE_ACCOUNT.to_string()),
                    duration_seconds: block
                        .duration_seconds
                        .as_ref_option()
                        .and_then(|d| i32::try_from(*d).ok())
                        .unwrap_or(DEFAULT_DURATION_SECONDS as i32),
                })
            }),
    }
}

fn string_attribute(description: &str, constraint: AttributeConstraint) -> Attribute {
    Attribute {
        attr_type: AttributeType::String,
        description: Description::markdown(description),
        constraint,
        sensitive: false,
        deprecated: false,
    }
}

fn sensitive(mut attribute: Attribute) -> Attribute {
    attribute.sensitive = true;
    attribute
}

/// The provider block's schema; descriptions here are the single source of the docs.
pub fn provider_schema() -> Schema {
    use AttributeConstraint::Optional;
    let attributes: HashMap<String, Attribute> = [
        ("region", string_attribute(
            "AWS region for the provider's AWS calls; STS is called at this region's endpoint. \
             Falls back to `AWS_REGION`, `AWS_DEFAULT_REGION`, the profile's region, then `us-east-1`.",
            Optional)),
        ("profile", string_attribute(
            "Shared-config profile for the provider's own AWS calls. Falls back to `AWS_PROFILE`.",
            Optional)),
        ("access_key", sensitive(string_attribute(
            "Access key ID of explicit credentials for the provider's own AWS calls; needs `secret_key`. \
             Without it the standard AWS credential chain is used (environment, shared files, web \
             identity, container, instance metadata).",
            Optional))),
        ("secret_key", sensitive(string_attribute(
            "Secret access key of explicit credentials; needs `access_key`.",
            Optional))),
        ("token", sensitive(string_attribute(
            "Session token of explicit temporary credentials; needs `access_key` and `secret_key`.",
            Optional))),
        ("metadata_host", string_attribute(
            "host[:port] of the GCE metadata server that issues the service account's ID token. \
             Falls back to `GCE_METADATA_HOST`, then `metadata.google.internal`.",
            Optional)),
        ("max_retries", Attribute {
            attr_type: AttributeType::Number,
            description: Description::markdown(
                "Retry budget (0–100) for throttling and transient faults of AWS and the metadata \
                 server. Default `5`."),
            constraint: Optional,
            sensitive: false,
            deprecated: false,
        }),
    ]
    .into_iter()
    .map(|(name, attribute)| (name.to_string(), attribute))
    .collect();

    let endpoints = Block {
        version: 1,
        description: Description::markdown(
            "Custom endpoints for AWS services (emulators, FIPS or VPC endpoints). Each falls back \
             to `AWS_ENDPOINT_URL_<SERVICE>`, then `AWS_ENDPOINT_URL`.",
        ),
        attributes: [
            ("iam", "IAM endpoint URL, for example `https://iam.amazonaws.com`."),
            ("sts", "STS endpoint URL, for example `https://sts.eu-west-1.amazonaws.com`."),
        ]
        .into_iter()
        .map(|(name, text)| (name.to_string(), string_attribute(text, Optional)))
        .collect(),
        blocks: HashMap::new(),
        deprecated: false,
    };

    let assume_role = Block {
        version: 1,
        description: Description::markdown(
            "The provider's own AWS credentials come from the Google identity exchange itself: \
             the service account's ID token from the GCE metadata server (`metadata_host`) is \
             exchanged, unsigned, with STS `AssumeRoleWithWebIdentity` for `role_arn`, and renewed \
             5 minutes before it expires. A Google Cloud runner then needs no AWS key at all. \
             Conflicts with `access_key`, `secret_key` and `token`.",
        ),
        attributes: [
            ("role_arn", string_attribute(
                "ARN of the role the provider assumes for its own IAM calls; its trust policy \
                 names `accounts.google.com` (a `gcpfed_role` created out of band) and it needs the \
                 IAM permissions for what this configuration manages.",
                AttributeConstraint::Required)),
            ("audience", string_attribute(
                "Audience requested from the metadata server; must equal the role's \
                 `accounts.google.com:oaud` (`gcpfed_role`'s `audience`).",
                AttributeConstraint::Required)),
            ("service_account", string_attribute(
                "Metadata alias (`default`) or email of the service account whose token is \
                 exchanged. Default `default`.",
                Optional)),
            ("duration_seconds", Attribute {
                attr_type: AttributeType::Number,
                description: Description::markdown(
                    "Session duration, 900–43200 and at most the role's maximum. Default `3600`; \
                     the provider renews the credentials before they expire."),
                constraint: Optional,
                sensitive: false,
                deprecated: false,
            }),
        ]
        .into_iter()
        .map(|(name, attribute)| (name.to_string(), attribute))
        .collect(),
        blocks: HashMap::new(),
        deprecated: false,
    };

    Schema {
        version: 1,
        block: Block {
            version: 1,
            description: Description::markdown(
                "The gcpfed provider lets Google Cloud service accounts reach AWS through STS \
                 web-identity federation, with no stored AWS keys.",
            ),
            attributes,
            blocks: [
                ("endpoints".to_string(), NestedBlock::Optional(endpoints)),
                (
                    ASSUME_ROLE_BLOCK.to_string(),
                    NestedBlock::Optional(assume_role),
                ),
            ]
            .into_iter()
            .collect(),
            deprecated: false,
        },
    }
}

#[async_trait]
impl Provider for GcpfedProvider {
    type Config<'a> = ProviderConfig;
    type MetaState<'a> = ValueEmpty;

    fn schema(&self, _diags: &mut Diagnostics) -> Option<Schema> {
        Some(provider_schema())
    }

    async fn validate<'a>(&self, diags: &mut Diagnostics, config: Self::Config<'a>) -> Option<()> {
        report_problems(diags, check_config(&config))
    }

    async fn configure<'a>(
        &self,
        diags: &mut Diagnostics,
        _terraform_version: String,
        config: Self::Config<'a>,
    ) -> Option<()> {
        report_problems(diags, check_config(&config))?;
        let unknown = unknown_gcp_identity_arguments(&config);
        if !unknown.is_empty() {
            for path in unknown {
                diag::attribute_error(
                    diags,
                    path,
                    "Value unknown until apply",
                    format!(
                        "The provider needs {ASSUME_ROLE_BLOCK} to get its AWS credentials before \
                         it can plan, but this value is only known after apply. Create the role \
                         first (for example with -target, or in another configuration) and give \
                         its ARN as a literal or variable."
                    ),
                );
            }
            return None;
        }
        let settings = resolve_settings(&config, &ProcessEnvironment);
        match aws::build_clients(&settings).await {
            Ok(clients) => {
                // Exchange once now, so that a refusal is reported on the block rather than on
                // the first resource that happens to call IAM.
                if let Some(identity) = &clients.gcp_identity {
                    if let Err(err) = identity.credentials().await {
                        report_identity_error(diags, identity.settings(), &err);
                        return None;
                    }
                }
                self.shared.set(clients);
                Some(())
            }
            Err(err) => {
                diag::operation_error(
                    diags,
                    "Cannot configure AWS clients",
                    "Check the provider's region, profile and endpoints arguments and the AWS_* \
                     environment variables.",
                    &*err,
                );
                None
            }
        }
    }
}

/// A failed exchange of `assume_role_with_gcp_identity`, on the argument at fault when one is.
fn report_identity_error(
    diags: &mut Diagnostics,
    settings: &GcpIdentitySettings,
    err: &crate::exchange::ExchangeError,
) {
    let path = match err.attribute() {
        Some(attr @ ("service_account" | "duration_seconds")) => assume_role_path(attr),
        _ => AttributePath::new(ASSUME_ROLE_BLOCK),
    };
    diag::attribute_error(
        diags,
        path,
        format!("{ASSUME_ROLE_BLOCK}: {}", err.summary()),
        format!(
            "The provider could not get its AWS credentials by exchanging the Google identity of \
             service account \"{}\" for role {}.\n\n{err}",
            settings.service_account, settings.role_arn
        ),
    );
}

fn report_problems(diags: &mut Diagnostics, problems: Vec<ConfigProblem>) -> Option<()> {
    if problems.is_empty() {
        return Some(());
    }
    for problem in problems {
        diag::attribute_error(diags, problem.path, problem.summary, problem.detail);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> ProviderConfig {
        ProviderConfig::default()
    }

    fn paths(problems: &[ConfigProblem]) -> Vec<String> {
        problems.iter().map(|p| p.path.to_string()).collect()
    }

    #[test]
    fn an_empty_configuration_is_valid() {
        assert!(check_config(&config()).is_empty());
    }

    #[test]
    fn a_malformed_endpoint_names_its_path() {
        let mut c = config();
        c.endpoints = Value::Value(EndpointsConfig {
            iam: Value::Value("not a url".into()),
            sts: Value::Value("ftp://sts.example.com".into()),
        });
        let problems = check_config(&c);
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[0].detail.contains("http://"), "{problems:?}");
        assert!(paths(&problems)[0].contains("iam"), "{problems:?}");
        assert!(paths(&problems)[1].contains("sts"), "{problems:?}");
    }

    #[test]
    fn unknown_values_are_never_errors() {
        let mut c = config();
        c.access_key = Value::Unknown;
        c.secret_key = Value::Null;
        c.max_retries = Value::Unknown;
        c.endpoints = Value::Value(EndpointsConfig {
            iam: Value::Unknown,
            sts: Value::Unknown,
        });
        assert!(check_config(&c).is_empty());
    }

    #[test]
    fn negative_retries_are_refused() {
        let mut c = config();
        c.max_retries = Value::Value(-1);
        let problems = check_config(&c);
        assert_eq!(paths(&problems), vec!["max_retries".to_string()]);
        assert!(problems[0].detail.contains("0 to 100"));
    }

    #[test]
    fn a_half_given_key_pair_names_the_missing_half() {
        let mut c = config();
        c.access_key = Value::Value("AKIAEXAMPLE".into());
        let problems = check_config(&c);
        assert_eq!(paths(&problems), vec!["secret_key".to_string()]);
        assert!(
            !problems[0].detail.contains("AKIAEXAMPLE"),
            "no credential in messages"
        );
    }

    #[test]
    fn metadata_host_takes_no_scheme() {
        let mut c = config();
        c.metadata_host = Value::Value("http://169.254.169.254".into());
        assert_eq!(paths(&check_config(&c)), vec!["metadata_host".to_string()]);
        c.metadata_host = Value::Value("127.0.0.1:8080".into());
        assert!(check_config(&c).is_empty());
    }

    #[test]
    fn arguments_win_over_environment_and_fallbacks_apply_in_order() {
        let env: HashMap<String, String> = [
            ("AWS_DEFAULT_REGION", "eu-west-1"),
            ("AWS_ENDPOINT_URL", "http://all.example"),
            ("AWS_ENDPOINT_URL_STS", "http://sts.example"),
            ("GCE_METADATA_HOST", "10.0.0.1:80"),
            ("AWS_PROFILE", "ci"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let settings = resolve_settings(&config(), &env);
        assert_eq!(settings.region.as_deref(), Some("eu-west-1"));
        assert_eq!(settings.iam_endpoint.as_deref(), Some("http://all.example"));
        assert_eq!(settings.sts_endpoint.as_deref(), Some("http://sts.example"));
        assert_eq!(settings.metadata_host, "10.0.0.1:80");
        assert_eq!(settings.profile.as_deref(), Some("ci"));
        assert_eq!(settings.max_retries, DEFAULT_MAX_RETRIES);

        let mut c = config();
        c.region = Value::Value("ap-south-1".into());
        c.metadata_host = Value::Value("127.0.0.1:9".into());
        c.max_retries = Value::Value(2);
        let settings = resolve_settings(&c, &env);
        assert_eq!(settings.region.as_deref(), Some("ap-south-1"));
        assert_eq!(settings.metadata_host, "127.0.0.1:9");
        assert_eq!(settings.max_retries, 2);

        let settings = resolve_settings(&config(), &HashMap::new());
        assert_eq!(
            settings.region, None,
            "the profile, then us-east-1, decide later"
        );
        assert_eq!(settings.metadata_host, DEFAULT_METADATA_HOST);
        assert!(settings.static_credentials.is_none());
    }

    fn block(role_arn: &str, audience: &str) -> GcpIdentityConfig {
        GcpIdentityConfig {
            role_arn: Value::Value(role_arn.into()),
            audience: Value::Value(audience.into()),
            service_account: Value::Null,
            duration_seconds: Value::Null,
        }
    }

    const ROLE: &str = "arn:aws:iam::123456789012:role/gcpfed-bootstrap";

    #[test]
    fn a_valid_gcp_identity_block_resolves_with_defaults() {
        let mut c = config();
        c.assume_role_with_gcp_identity = Value::Value(block(ROLE, "aws-ci"));
        assert!(check_config(&c).is_empty(), "{:?}", check_config(&c));
        let settings = resolve_settings(&c, &HashMap::new());
        assert_eq!(
            settings.assume_role_with_gcp_identity,
            Some(GcpIdentitySettings {
                role_arn: ROLE.into(),
                audience: "aws-ci".into(),
                service_account: "default".into(),
                duration_seconds: 3600,
            })
        );
        assert!(settings.static_credentials.is_none());
        assert_eq!(
            resolve_settings(&config(), &HashMap::new()).assume_role_with_gcp_identity,
            None
        );
    }

    #[test]
    fn gcp_identity_problems_name_their_nested_path() {
        let mut c = config();
        c.assume_role_with_gcp_identity = Value::Value(GcpIdentityConfig {
            role_arn: Value::Value("arn:aws:sts::123456789012:assumed-role/x/y".into()),
            audience: Value::Value(" ".into()),
            service_account: Value::Value("ci-runner".into()),
            duration_seconds: Value::Value(600),
        });
        let problems = check_config(&c);
        let paths = paths(&problems);
        assert_eq!(problems.len(), 4, "{problems:?}");
        for (path, attr) in paths.iter().zip([
            "role_arn",
            "audience",
            "service_account",
            "duration_seconds",
        ]) {
            assert!(
                path.contains(ASSUME_ROLE_BLOCK) && path.contains(attr),
                "{path}"
            );
        }
        assert_eq!(problems[0].path, assume_role_path("role_arn"));
        assert!(
            problems[0].detail.contains("not a role ARN"),
            "{problems:?}"
        );
        assert!(problems[3].detail.contains("900"), "{problems:?}");
    }

    #[test]
    fn gcp_identity_conflicts_with_explicit_keys() {
        let mut c = config();
        c.assume_role_with_gcp_identity = Value::Value(block(ROLE, "aws-ci"));
        c.access_key = Value::Value("AKIAEXAMPLE".into());
        c.secret_key = Value::Value("very-secret".into());
        let problems = check_config(&c);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(problems[0].path, AttributePath::new(ASSUME_ROLE_BLOCK));
        assert!(
            problems[0].detail.contains("access_key, secret_key"),
            "{problems:?}"
        );
        assert!(!problems[0].detail.contains("very-secret"));
    }

    #[test]
    fn unknown_gcp_identity_values_are_not_validation_errors_but_block_configure() {
        let mut c = config();
        c.assume_role_with_gcp_identity = Value::Value(GcpIdentityConfig {
            role_arn: Value::Unknown,
            ..block(ROLE, "aws-ci")
        });
        assert!(check_config(&c).is_empty());
        assert_eq!(
            unknown_gcp_identity_arguments(&c),
            vec![assume_role_path("role_arn")]
        );
        c.assume_role_with_gcp_identity = Value::Unknown;
        assert_eq!(
            unknown_gcp_identity_arguments(&c),
            vec![AttributePath::new(ASSUME_ROLE_BLOCK)]
        );
        c.assume_role_with_gcp_identity = Value::Null;
        assert!(unknown_gcp_identity_arguments(&c).is_empty());
    }

    #[test]
    fn the_schema_has_the_gcp_identity_block() {
        let schema = provider_schema();
        let Some(NestedBlock::Optional(block)) = schema.block.blocks.get(ASSUME_ROLE_BLOCK) else {
            panic!("no optional {ASSUME_ROLE_BLOCK} block");
        };
        for (name, constraint) in [
            ("role_arn", AttributeConstraint::Required),
            ("audience", AttributeConstraint::Required),
            ("service_account", AttributeConstraint::Optional),
            ("duration_seconds", AttributeConstraint::Optional),
        ] {
            let attribute = block
                .attributes
                .get(name)
                .unwrap_or_else(|| panic!("{name}"));
            assert_eq!(attribute.constraint, constraint, "{name}");
        }
        assert_eq!(block.attributes.len(), 4);
    }

    #[test]
    fn every_type_is_served_under_the_name_users_write() {
        let registry = registry();
        let [resources, data_sources, _, _] = registry.names();
        assert_eq!(resources, vec!["gcpfed_role"]);
        assert_eq!(data_sources, vec!["gcpfed_credentials"]);
    }
}
