//! The provider block as Terraform sends it: its arguments, every check that needs no I/O
//! (reported at validate time, on the argument at fault), and their resolution with the
//! environment fallbacks into [`AwsSettings`].

use serde::{Deserialize, Serialize};
use tf_provider::value::Value;
use tf_provider::AttributePath;

use crate::clients::settings::{
    self, AwsSettings, Environment, GcpIdentitySettings, Service, StaticCredentials,
    DEFAULT_MAX_RETRIES, DEFAULT_METADATA_HOST, MAX_RETRIES_MAX,
};
use crate::credentials::impersonation::{self, DelegateList};
use crate::diag::Problem;
use crate::validate::{self, DEFAULT_SERVICE_ACCOUNT, SESSION_DURATION_DEFAULT};

/// The provider block as Terraform sends it. Its `Debug` is written by hand: `secret_key` and
/// `token` are secrets, and a `{:?}` of the block (a log line, a panic) must not print them.
#[derive(Default, Clone, Serialize, Deserialize)]
pub struct ProviderConfig {
    pub region: Value<String>,
    pub profile: Value<String>,
    pub access_key: Value<String>,
    pub secret_key: Value<String>,
    pub token: Value<String>,
    pub metadata_host: Value<String>,
    pub iam_credentials_custom_endpoint: Value<String>,
    pub max_retries: Value<i64>,
    #[serde(with = "tf_provider::value::serde_as_vec")]
    pub endpoints: Value<EndpointsConfig>,
    #[serde(with = "tf_provider::value::serde_as_vec")]
    pub assume_role_with_gcp_identity: Value<GcpIdentityConfig>,
}

/// How a secret argument shows in `Debug`: whether it is set, never its value.
fn redacted(value: &Value<String>) -> &'static str {
    match value {
        Value::Value(_) => "Value(***)",
        Value::Null => "Null",
        Value::Unknown => "Unknown",
    }
}

impl std::fmt::Debug for ProviderConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // access_key is an identifier (every signed request carries it in the clear) and helps
        // tell configurations apart; secret_key and token are the secrets.
        f.debug_struct("ProviderConfig")
            .field("region", &self.region)
            .field("profile", &self.profile)
            .field("access_key", &self.access_key)
            .field(
                "secret_key",
                &format_args!("{}", redacted(&self.secret_key)),
            )
            .field("token", &format_args!("{}", redacted(&self.token)))
            .field("metadata_host", &self.metadata_host)
            .field(
                "iam_credentials_custom_endpoint",
                &self.iam_credentials_custom_endpoint,
            )
            .field("max_retries", &self.max_retries)
            .field("endpoints", &self.endpoints)
            .field(
                "assume_role_with_gcp_identity",
                &self.assume_role_with_gcp_identity,
            )
            .finish()
    }
}

/// The `assume_role_with_gcp_identity { ... }` block.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct GcpIdentityConfig {
    pub role_arn: Value<String>,
    pub audience: Value<String>,
    pub service_account: Value<String>,
    pub duration_seconds: Value<i64>,
    pub impersonate_service_account: Value<String>,
    pub delegates: DelegateList,
}

/// The block's name. Its optional arguments default as gcpfed_credentials' do
/// ([`validate::DEFAULT_SERVICE_ACCOUNT`], [`validate::SESSION_DURATION_DEFAULT`]).
pub const ASSUME_ROLE_BLOCK: &str = "assume_role_with_gcp_identity";

/// The path of one of the block's arguments.
pub fn assume_role_path(attribute: &str) -> AttributePath {
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

/// Checks the provider arguments. Unknown values are never an error here: they are
/// only known at apply time.
pub fn check_config(config: &ProviderConfig) -> Vec<Problem> {
    let mut problems = Vec::new();
    if let Value::Value(endpoints) = &config.endpoints {
        for (name, value) in [("iam", &endpoints.iam), ("sts", &endpoints.sts)] {
            if let Value::Value(url) = value {
                if let Err(reason) = validate::endpoint_url(url) {
                    problems.push(Problem {
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
        if !(0..=MAX_RETRIES_MAX).contains(&retries) {
            problems.push(Problem {
                path: AttributePath::new("max_retries"),
                summary: "Invalid max_retries".into(),
                detail: format!(
                    "max_retries must be a whole number from 0 to {MAX_RETRIES_MAX} (default \
                     {DEFAULT_MAX_RETRIES}); got {retries}."
                ),
            });
        }
    }
    if let Value::Value(url) = &config.iam_credentials_custom_endpoint {
        if let Err(reason) = validate::endpoint_url(url) {
            problems.push(Problem {
                path: AttributePath::new("iam_credentials_custom_endpoint"),
                summary: "Invalid iam_credentials_custom_endpoint".into(),
                detail: format!(
                    "iam_credentials_custom_endpoint must be an absolute http:// or https:// URL \
                     such as \"https://iamcredentials.googleapis.com/v1/\"; {reason}."
                ),
            });
        }
    }
    if let Value::Value(host) = &config.metadata_host {
        if let Err(reason) = validate::metadata_host(host) {
            problems.push(Problem {
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
        problems.push(Problem {
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
            problems.push(Problem {
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
    if matches!(&config.region, Value::Value(r) if !validate::is_region_name(r)) {
        problems.push(Problem {
            path: AttributePath::new("region"),
            summary: "Invalid region".into(),
            detail: "region is an AWS region name such as \"us-east-1\" or \"eu-west-3\".".into(),
        });
    }
    problems
}

/// Checks the `assume_role_with_gcp_identity` block's arguments (known values only), with the
/// rules of gcpfed_credentials' arguments of the same names.
fn check_gcp_identity(block: &GcpIdentityConfig) -> Vec<Problem> {
    let mut problems = Vec::new();
    let mut check = |attribute: &str, result: Result<(), validate::Invalid>, note: &str| {
        if let Err(mut e) = result {
            e.detail.push_str(note);
            problems.push(Problem::invalid(assume_role_path(attribute), e));
        }
    };
    if let Value::Value(arn) = &block.role_arn {
        let note = " The role's trust policy must name accounts.google.com (gcpfed_role).";
        check("role_arn", validate::role_arn(arn), note);
    }
    if let Value::Value(audience) = &block.audience {
        let result = validate::requested_audience("audience", audience);
        check("audience", result, "");
    }
    if let Value::Value(sa) = &block.service_account {
        let result = validate::service_account("service_account", sa);
        check("service_account", result, "");
    }
    if let Value::Value(d) = block.duration_seconds {
        let note = " The provider renews the credentials before they expire.";
        check(
            "duration_seconds",
            validate::session_duration("duration_seconds", d),
            note,
        );
    }
    problems.extend(impersonation::check(
        &block.impersonate_service_account,
        &block.delegates,
        assume_role_path,
    ));
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
            (
                "impersonate_service_account",
                block.impersonate_service_account.is_unknown(),
            ),
            (
                "delegates",
                block.delegates.is_unknown()
                    || block
                        .delegates
                        .as_ref_option()
                        .is_some_and(|l| l.iter().any(Value::is_unknown)),
            ),
        ]
        .into_iter()
        .filter(|(_, unknown)| *unknown)
        .map(|(name, _)| assume_role_path(name))
        .collect(),
        Value::Null => Vec::new(),
    }
}

fn key_pair_problem(missing: &str, given: &str) -> Problem {
    Problem {
        path: AttributePath::new(missing.to_string()),
        summary: format!("Missing {missing}"),
        detail: format!(
            "{given} is set but {missing} is not: explicit credentials need both access_key and \
             secret_key. Set {missing}, or remove {given} to use the standard AWS credential chain \
             (environment, shared files, web identity, container, instance metadata)."
        ),
    }
}

/// Resolves arguments and their environment fallbacks into client settings (no I/O).
pub fn resolve_settings(config: &ProviderConfig, env: &dyn Environment) -> AwsSettings {
    fn arg(v: &Value<String>) -> Option<&str> {
        v.as_ref_option().map(String::as_str)
    }
    let given = |v: &Value<String>| settings::given(arg(v));
    let endpoints = config.endpoints.as_ref_option();
    let endpoint = |service, pick: fn(&EndpointsConfig) -> &Value<String>| {
        settings::endpoint(service, endpoints.and_then(|e| arg(pick(e))), env)
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
        region: settings::region(arg(&config.region), env),
        profile: settings::profile(arg(&config.profile), env),
        static_credentials,
        iam_endpoint: endpoint(Service::Iam, |e| &e.iam),
        sts_endpoint: endpoint(Service::Sts, |e| &e.sts),
        metadata_host: settings::metadata_host(arg(&config.metadata_host), env),
        iam_credentials_endpoint: settings::iam_credentials_endpoint(
            arg(&config.iam_credentials_custom_endpoint),
            env,
        ),
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
                        .unwrap_or(SESSION_DURATION_DEFAULT as i32),
                    impersonate_service_account: None,
                    delegates: Vec::new(),
                })
                .map(|mut identity| {
                    (identity.impersonate_service_account, identity.delegates) =
                        impersonation::resolve(
                            &block.impersonate_service_account,
                            &block.delegates,
                        );
                    identity
                })
            }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn debug_names_secret_key_and_token_but_never_prints_them() {
        let config = ProviderConfig {
            access_key: Value::Value("AKIAEXAMPLEKEYID0001".into()),
            secret_key: Value::Value("wJalrXUtnFEMIsecretKEY".into()),
            token: Value::Value("FwoGZXIvYXdzSESSIONtoken".into()),
            profile: Value::Unknown,
            ..Default::default()
        };
        for text in [format!("{config:?}"), format!("{config:#?}")] {
            assert!(
                !text.contains("secretKEY") && !text.contains("SESSIONtoken"),
                "{text}"
            );
            assert!(
                text.contains("secret_key") && text.contains("token"),
                "{text}"
            );
            assert!(
                text.contains("***") && text.contains("AKIAEXAMPLEKEYID0001"),
                "{text}"
            );
        }
        let empty = format!("{:?}", ProviderConfig::default());
        assert!(
            !empty.contains("***"),
            "an unset secret shows as unset: {empty}"
        );
    }

    fn config() -> ProviderConfig {
        ProviderConfig::default()
    }

    fn paths(problems: &[Problem]) -> Vec<String> {
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
    fn impersonation_arguments_are_checked_on_their_paths_and_resolved() {
        let mut c = config();
        c.iam_credentials_custom_endpoint = Value::Value("iamcredentials.googleapis.com".into());
        let mut b = block(ROLE, "aws-ci");
        b.impersonate_service_account = Value::Value("default".into());
        b.delegates = Value::Value(vec![Value::Value(
            "projects/p/serviceAccounts/x@p.iam.gserviceaccount.com".into(),
        )]);
        c.assume_role_with_gcp_identity = Value::Value(b);
        assert_eq!(
            paths(&check_config(&c)),
            vec![
                "iam_credentials_custom_endpoint".to_string(),
                "assume_role_with_gcp_identity[0].impersonate_service_account".to_string(),
                "assume_role_with_gcp_identity[0].delegates".to_string(),
            ]
        );

        let mut c = config();
        let mut b = block(ROLE, "aws-ci");
        b.impersonate_service_account = Value::Value("team-a@p.iam.gserviceaccount.com".into());
        b.delegates = Value::Value(vec![Value::Value("hop@p.iam.gserviceaccount.com".into())]);
        c.assume_role_with_gcp_identity = Value::Value(b);
        assert!(check_config(&c).is_empty(), "{:?}", check_config(&c));
        let env = settings::test_environment(&[(
            "GOOGLE_IAM_CREDENTIALS_CUSTOM_ENDPOINT",
            "http://127.0.0.1:9/v1/",
        )]);
        let resolved = resolve_settings(&c, &env);
        assert_eq!(resolved.iam_credentials_endpoint, "http://127.0.0.1:9/v1/");
        let identity = resolved.assume_role_with_gcp_identity.expect("the block");
        assert_eq!(
            identity.impersonate_service_account.as_deref(),
            Some("team-a@p.iam.gserviceaccount.com")
        );
        assert_eq!(
            identity.delegates,
            vec!["projects/-/serviceAccounts/hop@p.iam.gserviceaccount.com"]
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
            impersonate_service_account: Value::Null,
            delegates: Value::Null,
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
                impersonate_service_account: None,
                delegates: vec![],
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
            impersonate_service_account: Value::Null,
            delegates: Value::Null,
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
}
