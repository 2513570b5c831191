//! `gcpfed_credentials`: runs the metadata-to-STS exchange ([`crate::exchange`]) on every plan and
//! apply and returns temporary AWS credentials. Owns the schema, the validation of the arguments
//! (with attribute paths, at validate time) and the mapping of exchange errors to diagnostics.
//!
//! The state struct has no `Debug`: it holds the token and the secrets.

use std::collections::BTreeSet;
use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tf_provider::schema::{
    Attribute, AttributeConstraint, AttributeType, Block, Description, Schema,
};
use tf_provider::value::{Value, ValueEmpty};
use tf_provider::{map, AttributePath, DataSource, Diagnostics};

use crate::claims;
use crate::clients::metadata::{self, MetadataClient};
use crate::exchange::{self, Backoff, ExchangeRequest, Exchanger, TokenSource};
use crate::provider::SharedClients;
use crate::secret::Secret;
use crate::session_name;
use crate::validate;

/// The Terraform type name.
pub const TYPE_NAME: &str = "gcpfed_credentials";
pub const DEFAULT_SERVICE_ACCOUNT: &str = "default";
pub const DEFAULT_DURATION: i64 = 3600;
pub const DURATION_MIN: i64 = 900;
pub const DURATION_MAX: i64 = 43200;
/// STS accepts at most 10 managed session policies.
pub const POLICY_ARNS_MAX: usize = 10;

type Str = Value<String>;

/// Configuration and result, attribute for attribute (names are the schema's).
#[derive(Clone, Default, Serialize, Deserialize)]
pub struct CredentialsState {
    pub role_arn: Str,
    pub audience: Str,
    pub service_account: Str,
    pub session_name: Str,
    pub duration_seconds: Value<i64>,
    pub policy: Str,
    pub policy_arns: Value<BTreeSet<Str>>,
    pub web_identity_token: Str,
    pub access_key_id: Str,
    pub secret_access_key: Str,
    pub session_token: Str,
    pub expiration: Str,
    pub assumed_role_arn: Str,
    pub assumed_role_id: Str,
    pub subject: Str,
    pub email: Str,
    pub credential_process_json: Str,
}

/// One argument problem: the attribute, a title, and a detail that names the fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub path: AttributePath,
    pub summary: String,
    pub detail: String,
}

fn problem(path: AttributePath, summary: &str, detail: impl Into<String>) -> Problem {
    Problem {
        path,
        summary: summary.to_owned(),
        detail: detail.into(),
    }
}

fn from_invalid(path: AttributePath, e: validate::Invalid) -> Problem {
    Problem {
        path,
        summary: e.summary.to_owned(),
        detail: e.detail,
    }
}

/// Checks an IAM role ARN: `arn:<partition>:iam::<12 digits>:role/<path/><name>`.
pub fn check_role_arn(arn: &str) -> Result<(), String> {
    let fix = "Use the role's ARN, such as \"arn:aws:iam::123456789012:role/ci-deployer\" (gcpfed_role.x.arn).";
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    if parts.len() != 6 || parts[0] != "arn" {
        return Err(format!("{arn:?} is not an ARN. {fix}"));
    }
    if !parts[1].starts_with("aws") {
        return Err(format!(
            "{arn:?} has partition {:?} (expected aws, aws-cn, aws-us-gov, …). {fix}",
            parts[1]
        ));
    }
    if parts[2] != "iam" {
        return Err(format!(
            "{arn:?} names service {:?}; a role ARN names iam (an assumed-role ARN from sts is not a role ARN). {fix}",
            parts[2]
        ));
    }
    if !parts[3].is_empty() {
        return Err(format!("{arn:?} has a region; IAM ARNs have none. {fix}"));
    }
    if parts[4].len() != 12 || !parts[4].bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "{arn:?} has account {:?} (expected a 12-digit account ID). {fix}",
            parts[4]
        ));
    }
    let Some(resource) = parts[5].strip_prefix("role/") else {
        return Err(format!(
            "{arn:?} is not a role ARN (the resource must start with \"role/\"). {fix}"
        ));
    };
    let name = resource.rsplit('/').next().unwrap_or_default();
    let name_ok = !name.is_empty()
        && name.chars().count() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_+=,.@-".contains(c));
    if !name_ok {
        return Err(format!(
            "{arn:?} has role name {name:?} (1–64 characters of letters, digits and _+=,.@-). {fix}"
        ));
    }
    Ok(())
}

/// `default` or something shaped like an email (no `/`: it goes in a URL path segment).
fn is_service_account_name(sa: &str) -> bool {
    sa == DEFAULT_SERVICE_ACCOUNT || (sa.contains('@') && !sa.contains('/'))
}

/// Every problem with the arguments that can be seen without I/O. Unknown values are skipped:
/// they are checked again once known.
pub fn check(config: &CredentialsState) -> Vec<Problem> {
    let mut out = Vec::new();
    if let Value::Value(arn) = &config.role_arn {
        if let Err(d) = check_role_arn(arn) {
            out.push(problem(
                AttributePath::new("role_arn"),
                "Invalid role ARN",
                d,
            ));
        }
    }
    if let Value::Value(aud) = &config.audience {
        if aud.trim().is_empty() {
            out.push(problem(
                AttributePath::new("audience"),
                "Empty audience",
                "Set audience to the audience of the role's trust policy (gcpfed_role.x.audience); \
                 it is what the metadata server puts in the token's aud claim.",
            ));
        }
    }
    if let Value::Value(sa) = &config.service_account {
        if !is_service_account_name(sa) {
            out.push(problem(
                AttributePath::new("service_account"),
                "Invalid service account",
                format!(
                    "service_account is {sa:?}; the metadata server knows \"default\" (the account attached \
                     to this VM, node pool or Cloud Run service) or a service account's email, such as \
                     \"ci-runner@my-project.iam.gserviceaccount.com\"."
                ),
            ));
        }
    }
    if let Value::Value(name) = &config.session_name {
        if let Err(e) = session_name::validate(name) {
            out.push(problem(
                AttributePath::new("session_name"),
                "Invalid session name",
                format!(
                    "session_name {name:?} {e}. STS requires 2–64 characters matching [\\w+=,.@-]. \
                     Leave session_name out to use the token's subject."
                ),
            ));
        }
    }
    if let Value::Value(d) = &config.duration_seconds {
        if !(DURATION_MIN..=DURATION_MAX).contains(d) {
            out.push(problem(
                AttributePath::new("duration_seconds"),
                "Invalid session duration",
                format!(
                    "duration_seconds is {d}; STS accepts {DURATION_MIN} (15 minutes) to {DURATION_MAX} \
                     (12 hours), and at most the role's max_session_duration. Leave it out for {DEFAULT_DURATION}."
                ),
            ));
        }
    }
    if let Value::Value(policy) = &config.policy {
        if let Err(e) = validate::policy_document(policy) {
            out.push(from_invalid(AttributePath::new("policy"), e));
        }
    }
    if let Value::Value(arns) = &config.policy_arns {
        if arns.len() > POLICY_ARNS_MAX {
            out.push(problem(
                AttributePath::new("policy_arns"),
                "Too many session policies",
                format!(
                    "policy_arns lists {} policies; STS accepts at most {POLICY_ARNS_MAX} managed session policies.",
                    arns.len()
                ),
            ));
        }
        for arn in arns {
            if let Value::Value(a) = arn {
                if let Err(e) = validate::policy_arn(a) {
                    out.push(from_invalid(AttributePath::new("policy_arns"), e));
                }
            }
        }
    }
    if let Value::Value(token) = &config.web_identity_token {
        if let Err(e) = claims::decode_unverified(token) {
            out.push(problem(
                AttributePath::new("web_identity_token"),
                "Invalid web identity token",
                format!(
                    "web_identity_token must be a Google ID token (a JWT), for example \
                     google_service_account_id_token.x.id_token: {e}."
                ),
            ));
        }
    }
    out
}

/// The `gcpfed_credentials` data source.
pub struct CredentialsDataSource {
    shared: Arc<SharedClients>,
}

impl CredentialsDataSource {
    pub fn new(shared: Arc<SharedClients>) -> Self {
        CredentialsDataSource { shared }
    }
}

fn attr(
    attr_type: AttributeType,
    constraint: AttributeConstraint,
    sensitive: bool,
    description: &str,
) -> Attribute {
    Attribute {
        attr_type,
        description: Description::markdown(description),
        constraint,
        sensitive,
        deprecated: false,
    }
}

/// The data source's schema.
pub fn schema() -> Schema {
    use AttributeConstraint::{Computed, Optional, OptionalComputed, Required};
    use AttributeType::String as S;
    Schema {
        version: 1,
        block: Block {
            version: 1,
            description: Description::markdown(
                "Exchanges a Google-signed ID token (from the GCE metadata server, or given in \
                 `web_identity_token`) for temporary AWS credentials through STS \
                 `AssumeRoleWithWebIdentity`, on every plan and apply. **The results, secret key and \
                 session token included, are stored in the Terraform state**; the \
                 `terraform-provider-gcpfed credential-process` helper is the state-free way to give \
                 AWS tools these credentials.",
            ),
            attributes: map! {
                "role_arn" => attr(S, Required, false,
                    "ARN of the IAM role to assume (for example `gcpfed_role.x.arn`). Its trust policy must \
                     name `accounts.google.com` and match the token's `azp`, `aud` and `sub`."),
                "audience" => attr(S, Required, false,
                    "Audience requested from the metadata server; it becomes the token's `aud` claim, which \
                     AWS compares with `accounts.google.com:oaud`. Must equal the role's `audience`."),
                "service_account" => attr(S, OptionalComputed, false,
                    "Service account whose token is requested: `default` (the account attached to the VM, \
                     node pool or Cloud Run service) or a service-account email. Default `default`. \
                     Ignored when `web_identity_token` is set."),
                "session_name" => attr(S, OptionalComputed, false,
                    "Role session name (2–64 characters of `[\\w+=,.@-]`); it appears in CloudTrail and in \
                     `assumed_role_arn`. Default: the token's `sub` (the service account's unique ID)."),
                "duration_seconds" => attr(AttributeType::Number, OptionalComputed, false,
                    "Lifetime of the credentials in seconds, 900–43200 and at most the role's \
                     `max_session_duration`. Default 3600."),
                "policy" => attr(S, Optional, false,
                    "Session policy (JSON) that further restricts the credentials."),
                "policy_arns" => attr(AttributeType::Set(Box::new(S)), Optional, false,
                    "ARNs of up to 10 managed policies used as session policies."),
                "web_identity_token" => attr(S, Optional, true,
                    "Google ID token to use instead of asking the metadata server (for example \
                     `google_service_account_id_token.x.id_token`). Stored in state."),
                "access_key_id" => attr(S, Computed, false, "Temporary access key ID."),
                "secret_access_key" => attr(S, Computed, true, "Temporary secret access key."),
                "session_token" => attr(S, Computed, true, "Session token."),
                "expiration" => attr(S, Computed, false,
                    "When the credentials expire, RFC 3339 in UTC (`2026-12-01T11:00:00Z`)."),
                "assumed_role_arn" => attr(S, Computed, false,
                    "ARN of the assumed-role session (`arn:aws:sts::<account>:assumed-role/<role>/<session>`)."),
                "assumed_role_id" => attr(S, Computed, false,
                    "Unique ID of the assumed-role session (`<role id>:<session>`)."),
                "subject" => attr(S, Computed, false,
                    "The token's `sub` claim: the service account's numeric unique ID."),
                "email" => attr(S, Computed, false,
                    "The token's `email` claim: the service account's email (tokens requested with \
                     format=full carry it)."),
                "credential_process_json" => attr(S, Computed, true,
                    "The credentials as the AWS `credential_process` Version 1 JSON document \
                     (`Version`, `AccessKeyId`, `SecretAccessKey`, `SessionToken`, `Expiration`)."),
            },
            ..Default::default()
        },
    }
}

fn value_of(v: &Str) -> Option<&str> {
    match v {
        Value::Value(s) => Some(s.as_str()),
        _ => None,
    }
}

#[async_trait]
impl DataSource for CredentialsDataSource {
    type State<'a> = CredentialsState;
    type ProviderMetaState<'a> = ValueEmpty;

    fn schema(&self, _diags: &mut Diagnostics) -> Option<Schema> {
        Some(schema())
    }

    async fn validate<'a>(&self, diags: &mut Diagnostics, config: Self::State<'a>) -> Option<()> {
        let problems = check(&config);
        if problems.is_empty() {
            if config.web_identity_token.is_value()
                && value_of(&config.service_account).is_some_and(|sa| sa != DEFAULT_SERVICE_ACCOUNT)
            {
                diags.warning(
                    "service_account is ignored",
                    "web_identity_token is set, so no token is requested from the metadata server and \
                     service_account has no effect. Remove one of the two.",
                    AttributePath::new("service_account"),
                );
            }
            return Some(());
        }
        for p in problems {
            diags.error(p.summary, p.detail, p.path);
        }
        None
    }

    async fn read<'a>(
        &self,
        diags: &mut Diagnostics,
        config: Self::State<'a>,
        _provider_meta_state: Self::ProviderMetaState<'a>,
    ) -> Option<Self::State<'a>> {
        // Terraform validates before reading, but a value unknown at validate time is known now.
        let problems = check(&config);
        if !problems.is_empty() {
            for p in problems {
                diags.error(p.summary, p.detail, p.path);
            }
            return None;
        }
        let clients = self.shared.get(diags)?;
        let backoff = Backoff::new(clients.max_retries);

        let (Some(role_arn), Some(audience)) =
            (value_of(&config.role_arn), value_of(&config.audience))
        else {
            diags.root_error(
                "Missing role_arn or audience",
                "role_arn and audience must be known to read gcpfed_credentials.",
            );
            return None;
        };
        let service_account = value_of(&config.service_account)
            .unwrap_or(DEFAULT_SERVICE_ACCOUNT)
            .to_owned();
        let token = match &config.web_identity_token {
            Value::Value(t) => TokenSource::Given(Secret::new(t.clone())),
            _ => match MetadataClient::new(
                &clients.metadata_host,
                metadata::DEFAULT_TIMEOUT,
                backoff,
            ) {
                Ok(c) => TokenSource::Metadata(c),
                Err(e) => {
                    diags.root_error(
                        "Invalid metadata host",
                        format!("{e}. Set the provider's metadata_host (or GCE_METADATA_HOST) to host[:port]."),
                    );
                    return None;
                }
            },
        };
        let request = ExchangeRequest {
            role_arn: role_arn.to_owned(),
            audience: audience.to_owned(),
            service_account: service_account.clone(),
            session_name: value_of(&config.session_name).map(str::to_owned),
            duration_seconds: match config.duration_seconds {
                Value::Value(d) => Some(d as i32),
                _ => Some(DEFAULT_DURATION as i32),
            },
            policy: value_of(&config.policy).map(str::to_owned),
            policy_arns: match &config.policy_arns {
                Value::Value(set) => set
                    .iter()
                    .filter_map(|v| value_of(v).map(str::to_owned))
                    .collect(),
                _ => Vec::new(),
            },
            token,
        };
        let sts = exchange::unsigned_sts_client(
            Some(&clients.sdk_config),
            &clients.region,
            clients.sts_endpoint.as_deref(),
        );
        let exchanger = Exchanger::new(sts, Some(clients.iam.clone()), backoff);
        let creds = match exchanger.exchange(request).await {
            Ok(c) => c,
            Err(e) => {
                let detail = e.to_string();
                match e.attribute() {
                    Some(a) => diags.error(e.summary(), detail, AttributePath::new(a)),
                    None => diags.root_error(e.summary(), detail),
                }
                return None;
            }
        };

        let mut state = config;
        state.service_account = Value::Value(service_account);
        state.session_name = Value::Value(creds.session_name.clone());
        if !state.duration_seconds.is_value() {
            state.duration_seconds = Value::Value(DEFAULT_DURATION);
        }
        state.credential_process_json = Value::Value(creds.credential_process_json().into_inner());
        state.access_key_id = Value::Value(creds.access_key_id);
        state.secret_access_key = Value::Value(creds.secret_access_key.into_inner());
        state.session_token = Value::Value(creds.session_token.into_inner());
        state.expiration = Value::Value(creds.expiration);
        state.assumed_role_arn = Value::Value(creds.assumed_role_arn);
        state.assumed_role_id = Value::Value(creds.assumed_role_id);
        state.subject = creds.subject.map_or(Value::Null, Value::Value);
        state.email = creds.email.map_or(Value::Null, Value::Value);
        Some(state)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> CredentialsState {
        CredentialsState {
            role_arn: Value::Value("arn:aws:iam::123456789012:role/ci/gcpfed-ci".into()),
            audience: Value::Value("aws-ci".into()),
            ..Default::default()
        }
    }

    fn paths(problems: &[Problem]) -> Vec<AttributePath> {
        problems.iter().map(|p| p.path.clone()).collect()
    }

    #[test]
    fn a_minimal_configuration_is_valid() {
        assert_eq!(check(&config()), vec![]);
    }

    #[test]
    fn role_arns_are_checked() {
        for ok in [
            "arn:aws:iam::123456789012:role/r",
            "arn:aws-cn:iam::123456789012:role/a/b/r+=,.@-_",
        ] {
            assert_eq!(check_role_arn(ok), Ok(()), "{ok}");
        }
        for (bad, needle) in [
            ("gcpfed-ci", "is not an ARN"),
            (
                "arn:aws:sts::123456789012:assumed-role/r/s",
                "names service \"sts\"",
            ),
            ("arn:aws:iam::123:role/r", "12-digit"),
            ("arn:aws:iam:us-east-1:123456789012:role/r", "has a region"),
            ("arn:aws:iam::123456789012:user/u", "not a role ARN"),
            ("arn:aws:iam::123456789012:role/", "role name \"\""),
            ("arn:aws:iam::123456789012:role/with space", "role name"),
            ("arn:gcp:iam::123456789012:role/r", "partition"),
        ] {
            let e = check_role_arn(bad).unwrap_err();
            assert!(e.contains(needle), "{bad}: {e}");
            assert!(e.contains("gcpfed_role.x.arn"), "{e}");
        }
        let mut c = config();
        c.role_arn = Value::Value("nope".into());
        assert_eq!(paths(&check(&c)), vec![AttributePath::new("role_arn")]);
    }

    #[test]
    fn every_argument_error_names_its_attribute() {
        let mut c = config();
        c.audience = Value::Value(" ".into());
        c.service_account = Value::Value("ci-runner".into());
        c.session_name = Value::Value("bad name".into());
        c.duration_seconds = Value::Value(899);
        c.policy = Value::Value("{not json".into());
        c.policy_arns = Value::Value(
            (0..11)
                .map(|i| Value::Value(format!("arn:aws:iam::aws:policy/P{i}")))
                .collect(),
        );
        c.web_identity_token = Value::Value("not.a-token".into());
        let problems = check(&c);
        assert_eq!(
            paths(&problems),
            vec![
                AttributePath::new("audience"),
                AttributePath::new("service_account"),
                AttributePath::new("session_name"),
                AttributePath::new("duration_seconds"),
                AttributePath::new("policy"),
                AttributePath::new("policy_arns"),
                AttributePath::new("web_identity_token"),
            ]
        );
        let session = &problems[2];
        assert!(session.detail.contains("[\\w+=,.@-]"), "{}", session.detail);
        assert!(problems[5].detail.contains("at most 10"));
        // The token itself is never quoted back.
        assert!(!problems[6].detail.contains("not.a-token"));
    }

    #[test]
    fn duration_bounds_are_inclusive() {
        for (d, ok) in [(899, false), (900, true), (43200, true), (43201, false)] {
            let mut c = config();
            c.duration_seconds = Value::Value(d);
            assert_eq!(check(&c).is_empty(), ok, "{d}");
        }
    }

    #[test]
    fn policy_arns_are_each_validated_and_unknowns_skipped() {
        let mut c = config();
        c.policy_arns = Value::Value(
            [
                Value::Value("arn:aws:iam::aws:policy/ReadOnlyAccess".to_owned()),
                Value::Value("ReadOnlyAccess".to_owned()),
                Value::Unknown,
            ]
            .into_iter()
            .collect(),
        );
        assert_eq!(paths(&check(&c)), vec![AttributePath::new("policy_arns")]);
        let mut c = config();
        c.role_arn = Value::Unknown;
        c.session_name = Value::Unknown;
        c.web_identity_token = Value::Unknown;
        assert_eq!(check(&c), vec![]);
    }

    #[test]
    fn service_account_accepts_default_and_emails() {
        for (sa, ok) in [
            ("default", true),
            ("ci-runner@gcpfed-test.iam.gserviceaccount.com", true),
            ("104857600000000000001", false),
            ("../token", false),
        ] {
            let mut c = config();
            c.service_account = Value::Value(sa.into());
            assert_eq!(check(&c).is_empty(), ok, "{sa}");
        }
    }

    #[test]
    fn schema_marks_secrets_sensitive_and_sets_every_attribute() {
        let s = schema();
        let attrs = &s.block.attributes;
        let names: BTreeSet<&str> = attrs.keys().map(String::as_str).collect();
        let expected: BTreeSet<&str> = [
            "role_arn",
            "audience",
            "service_account",
            "session_name",
            "duration_seconds",
            "policy",
            "policy_arns",
            "web_identity_token",
            "access_key_id",
            "secret_access_key",
            "session_token",
            "expiration",
            "assumed_role_arn",
            "assumed_role_id",
            "subject",
            "email",
            "credential_process_json",
        ]
        .into_iter()
        .collect();
        assert_eq!(names, expected);
        let sensitive: BTreeSet<&str> = attrs
            .iter()
            .filter(|(_, a)| a.sensitive)
            .map(|(k, _)| k.as_str())
            .collect();
        assert_eq!(
            sensitive,
            [
                "credential_process_json",
                "secret_access_key",
                "session_token",
                "web_identity_token"
            ]
            .into_iter()
            .collect()
        );
        for (name, a) in attrs {
            assert_ne!(a.attr_type, AttributeType::Any, "{name}");
            assert!(a.description.content.len() > 10, "{name}");
        }
        assert_eq!(attrs["role_arn"].constraint, AttributeConstraint::Required);
        assert_eq!(attrs["audience"].constraint, AttributeConstraint::Required);
        assert_eq!(
            attrs["access_key_id"].constraint,
            AttributeConstraint::Computed
        );
    }
}
