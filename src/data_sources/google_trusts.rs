//! `data "gcpfed_google_trusts"`: every IAM role (under a path prefix) whose trust policy lets
//! `accounts.google.com` identities assume it, graded by [`crate::trust_policy::audit`]. Reads
//! one paginated `ListRoles` ([`crate::clients::iam_roles`]), which carries the trust
//! documents, so a thousand roles cost ten calls and no `GetRole`. Plain list-of-object
//! attributes (no nested attribute types), so every engine reads it, OpenTofu 1.6 included.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tf_provider::map;
use tf_provider::schema::{AttributeConstraint, AttributeType, Block, Description, Schema};
use tf_provider::value::{Value, ValueEmpty};
use tf_provider::{AttributePath, DataSource, Diagnostics};

use crate::clients::iam_roles::{list_roles, ListedRole};
use crate::clients::SharedClients;
use crate::diag::{self, Problem};
use crate::schema::attribute;
use crate::trust_policy::audit::{Finding, Severity};
use crate::trust_policy::audit_report::{AuditReport, AuditedRole};
use crate::validate;

pub const TYPE_NAME: &str = "gcpfed_google_trusts";
/// Every role, as IAM's `ListRoles` reads `/`.
pub const DEFAULT_PATH_PREFIX: &str = "/";

type Str = Value<String>;
type StrList = Value<Vec<Str>>;

/// Arguments and results, attribute for attribute.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GoogleTrustsState {
    pub path_prefix: Str,
    pub min_severity: Str,
    pub roles: Value<Vec<Value<RoleObject>>>,
    pub counts: Value<BTreeMap<String, Value<i64>>>,
}

/// One element of `roles`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RoleObject {
    pub name: Str,
    pub arn: Str,
    pub path: Str,
    pub unique_ids: StrList,
    pub audiences: StrList,
    pub severity: Str,
    pub findings: Value<Vec<Value<FindingObject>>>,
}

/// One element of a role's `findings`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FindingObject {
    pub severity: Str,
    pub statement: Str,
    pub key: Str,
    pub message: Str,
    pub fix: Str,
}

fn s(text: impl Into<String>) -> Str {
    Value::Value(text.into())
}

fn object_type(fields: &[(&str, AttributeType)]) -> AttributeType {
    AttributeType::Object(
        fields
            .iter()
            .map(|(name, t)| ((*name).to_owned(), t.clone()))
            .collect::<HashMap<_, _>>(),
    )
}

pub fn schema() -> Schema {
    use AttributeConstraint::{Computed, Optional};
    use AttributeType::String as S;
    let strings = AttributeType::List(Box::new(S));
    let finding = object_type(&[
        ("severity", S),
        ("statement", S),
        ("key", S),
        ("message", S),
        ("fix", S),
    ]);
    let role = object_type(&[
        ("name", S),
        ("arn", S),
        ("path", S),
        ("unique_ids", strings.clone()),
        ("audiences", strings),
        ("severity", S),
        ("findings", AttributeType::List(Box::new(finding))),
    ]);
    Schema {
        version: 1,
        block: Block {
            version: 1,
            description: Description::markdown(
                "Every IAM role whose trust policy lets `accounts.google.com` identities assume it \
                 (under `path_prefix`), graded: `critical` when any Google identity in the world can \
                 assume it, `high` when the audience is not checked, `medium` for shapes that lock \
                 every service account out or pin only half the identity, `info` when it is the shape \
                 `gcpfed_role` renders. Reads one paginated `ListRoles` (no `GetRole` per role). See \
                 the guide \"Auditing existing Google trusts\".",
            ),
            attributes: map! {
                "path_prefix" => attribute(S, Optional,
                    "IAM path prefix of the roles to read, for example `/ci/`. Default `/` (every role)."),
                "min_severity" => attribute(S, Optional,
                    "List only roles whose worst finding is at least this severity, and only those \
                     findings: `info`, `medium`, `high` or `critical`. Default `info` (every Google trust)."),
                "roles" => attribute(AttributeType::List(Box::new(role)), Computed,
                    "Roles that trust Google identities: `name`, `arn`, `path`, `unique_ids` (every value \
                     `accounts.google.com:aud` or `:sub` is pinned to), `audiences` (every value of \
                     `:oaud`), `severity` (the worst finding) and `findings`, each with `severity`, \
                     `statement` (`Statement[N]`, with its Sid), `key` (the condition key at fault, or \
                     `Condition`), `message` and `fix` (the `gcpfed_role` or `trust_policy()` equivalent \
                     and the `terraform import` command)."),
                "counts" => attribute(AttributeType::Map(Box::new(AttributeType::Number)), Computed,
                    "Number of roles per worst severity (`critical`, `high`, `medium`, `info`), over \
                     every Google trust under `path_prefix` whatever `min_severity` says."),
            },
            blocks: Default::default(),
            deprecated: false,
        },
    }
}

/// The configured prefix and minimum; unknown values count as unset (validation runs again
/// on the known values at read).
fn arguments(config: &GoogleTrustsState) -> Result<(String, Severity), Vec<Problem>> {
    let mut problems = Vec::new();
    let prefix = match &config.path_prefix {
        Value::Value(p) => p.clone(),
        _ => DEFAULT_PATH_PREFIX.to_owned(),
    };
    if let Err(i) = validate::path_prefix("path_prefix", &prefix) {
        problems.push(Problem::invalid(AttributePath::new("path_prefix"), i));
    }
    let min = match &config.min_severity {
        Value::Value(m) => m.parse::<Severity>().unwrap_or_else(|why| {
            problems.push(Problem::new(
                AttributePath::new("min_severity"),
                "Invalid minimum severity",
                format!("min_severity: {why}."),
            ));
            Severity::Info
        }),
        _ => Severity::Info,
    };
    if problems.is_empty() {
        Ok((prefix, min))
    } else {
        Err(problems)
    }
}

fn role_object(role: &AuditedRole, min: Severity) -> Value<RoleObject> {
    let list = |items: &std::collections::BTreeSet<String>| {
        Value::Value(items.iter().map(s).collect::<Vec<_>>())
    };
    let finding = |f: &Finding| {
        Value::Value(FindingObject {
            severity: s(f.severity.as_str()),
            statement: s(&f.statement),
            key: s(&f.key),
            message: s(&f.message),
            fix: s(&f.fix),
        })
    };
    Value::Value(RoleObject {
        name: s(&role.name),
        arn: s(&role.arn),
        path: s(&role.path),
        unique_ids: list(&role.grade.unique_ids),
        audiences: list(&role.grade.audiences),
        severity: s(role.grade.severity().as_str()),
        findings: Value::Value(role.findings_from(min).map(finding).collect()),
    })
}

/// The report as the data source's results.
pub fn results(mut state: GoogleTrustsState, report: &AuditReport) -> GoogleTrustsState {
    state.roles = Value::Value(
        report
            .roles
            .iter()
            .map(|r| role_object(r, report.min_severity))
            .collect(),
    );
    state.counts = Value::Value(
        report
            .counts
            .iter()
            .map(|(severity, n)| (severity.as_str().to_owned(), Value::Value(*n as i64)))
            .collect(),
    );
    state
}

/// The `gcpfed_google_trusts` data source.
pub struct GoogleTrustsDataSource {
    shared: Arc<SharedClients>,
}

impl GoogleTrustsDataSource {
    pub fn new(shared: Arc<SharedClients>) -> Self {
        Self { shared }
    }
}

#[async_trait]
impl DataSource for GoogleTrustsDataSource {
    type State<'a> = GoogleTrustsState;
    type ProviderMetaState<'a> = ValueEmpty;

    fn schema(&self, _diags: &mut Diagnostics) -> Option<Schema> {
        Some(schema())
    }

    async fn validate<'a>(&self, diags: &mut Diagnostics, config: Self::State<'a>) -> Option<()> {
        diag::report(diags, arguments(&config).err().unwrap_or_default())
    }

    async fn read<'a>(
        &self,
        diags: &mut Diagnostics,
        config: Self::State<'a>,
        _provider_meta_state: Self::ProviderMetaState<'a>,
    ) -> Option<Self::State<'a>> {
        let (prefix, min) = match arguments(&config) {
            Ok(args) => args,
            Err(problems) => return diag::report(diags, problems).map(|()| config),
        };
        let clients = self.shared.get(diags)?;
        let roles = match list_roles(&clients.iam, &prefix).await {
            Ok(roles) => roles,
            Err(e) => {
                diag::operation_error(
                    diags,
                    "Cannot list IAM roles",
                    "The audit reads every role with iam:ListRoles. Grant the provider's credentials \
                     iam:ListRoles (for example with the ReadOnlyAccess or IAMReadOnlyAccess policy), \
                     or check the provider's IAM endpoint.",
                    &e,
                );
                return None;
            }
        };
        let report = AuditReport::of(roles.iter().map(ListedRole::audit_input), min);
        Some(results(config, &report))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_arguments_name_the_attribute_and_the_fix() {
        let config = GoogleTrustsState {
            path_prefix: s("ci/"),
            min_severity: s("severe"),
            ..Default::default()
        };
        let problems = arguments(&config).unwrap_err();
        assert_eq!(problems[0].path, AttributePath::new("path_prefix"));
        assert!(problems[0].detail.contains("must start with \"/\""));
        assert_eq!(problems[1].path, AttributePath::new("min_severity"));
        assert!(problems[1]
            .detail
            .contains("\"severe\" is not a severity: use one of info, medium, high, critical"));
        let unknown = GoogleTrustsState {
            path_prefix: Value::Unknown,
            min_severity: Value::Unknown,
            ..Default::default()
        };
        assert_eq!(arguments(&unknown), Ok(("/".to_owned(), Severity::Info)));
    }
}
