//! `gcpfed_role`: one IAM role a Google service account can assume. Owns the role's schema and
//! state, validation of its arguments, planning (the trust policy is rendered and known at plan
//! time), and the CRUD/import cycle against IAM. IAM calls and their retries live in
//! [`iam`]; rendering and comparing policies in [`crate::trust_policy`].

pub mod iam;

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tf_provider::schema::{AttributeConstraint, AttributeType, Block, Description, Schema};
use tf_provider::value::{Value, ValueEmpty, ValueMap, ValueNumber, ValueSet, ValueString};
use tf_provider::{AttributePath, Diagnostics, Resource};

use crate::diag;
use crate::provider::SharedClients;
use crate::schema::attribute;
use crate::trust_policy::{
    normalize_document, parse_trust_policy, policies_equivalent, ShapeMismatch, TrustInputs,
};
use crate::validate::{self, Invalid};
use iam::{IamError, NewRole, RemoteRole, RoleApi};

/// The Terraform type name.
pub const TYPE_NAME: &str = "gcpfed_role";
/// The name to register in `Provider::get_resources`: tf-provider prefixes it with `gcpfed_`.
pub const RESOURCE_NAME: &str = "role";
/// IAM's default for `MaxSessionDuration`, and ours when the argument is left out.
pub const DEFAULT_MAX_SESSION_DURATION: i64 = 3600;
/// IAM's default path.
pub const DEFAULT_PATH: &str = "/";

type Str = ValueString<'static>;
type StrSet = ValueSet<Str>;
type StrMap = ValueMap<'static, Str>;

/// The resource's state, attribute for attribute (names are the schema's).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RoleState {
    pub id: Str,
    pub name: Str,
    pub path: Str,
    pub description: Str,
    pub audience: Str,
    pub service_account_unique_ids: StrSet,
    pub managed_policy_arns: StrSet,
    pub inline_policies: StrMap,
    pub max_session_duration: ValueNumber,
    pub permissions_boundary: Str,
    pub tags: StrMap,
    pub arn: Str,
    pub unique_id: Str,
    pub create_date: Str,
    pub trust_policy: Str,
}

fn known(s: impl Into<String>) -> Str {
    Value::Value(Cow::Owned(s.into()))
}

fn str_of(v: &Str) -> Option<&str> {
    match v {
        Value::Value(s) => Some(s),
        _ => None,
    }
}

fn set_value(items: &BTreeSet<String>) -> StrSet {
    Value::Value(items.iter().map(|s| known(s.clone())).collect())
}

fn map_value(items: &BTreeMap<String, String>) -> StrMap {
    Value::Value(
        items
            .iter()
            .map(|(k, v)| (Cow::Owned(k.clone()), known(v.clone())))
            .collect(),
    )
}

/// A collection that is empty in IAM stays null in state when it was null before (the argument
/// was left out), so leaving an argument out never shows as a diff against `[]` / `{}`.
fn keep_null_if_empty<T>(prior: &Value<T>, empty: bool, value: Value<T>) -> Value<T> {
    if empty && prior.is_null() {
        Value::Null
    } else {
        value
    }
}

/// All of a configuration's values, every one known; `Err` names the first unknown attribute.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Desired {
    name: String,
    path: String,
    description: Option<String>,
    trust_policy: String,
    managed: BTreeSet<String>,
    inline: BTreeMap<String, String>,
    max_session_duration: i32,
    boundary: Option<String>,
    tags: BTreeMap<String, String>,
}

fn opt_str(v: &Str, attr: &'static str) -> Result<Option<String>, &'static str> {
    match v {
        Value::Value(s) => Ok(Some(s.to_string())),
        Value::Null => Ok(None),
        Value::Unknown => Err(attr),
    }
}

fn known_set(v: &StrSet, attr: &'static str) -> Result<BTreeSet<String>, &'static str> {
    match v {
        Value::Value(items) => items
            .iter()
            .map(|i| str_of(i).map(str::to_owned).ok_or(attr))
            .collect(),
        Value::Null => Ok(BTreeSet::new()),
        Value::Unknown => Err(attr),
    }
}

fn known_map(v: &StrMap, attr: &'static str) -> Result<BTreeMap<String, String>, &'static str> {
    match v {
        Value::Value(items) => items
            .iter()
            .map(|(k, i)| Ok((k.to_string(), str_of(i).ok_or(attr)?.to_owned())))
            .collect(),
        Value::Null => Ok(BTreeMap::new()),
        Value::Unknown => Err(attr),
    }
}

impl Desired {
    fn of(s: &RoleState) -> Result<Self, &'static str> {
        let audience = opt_str(&s.audience, "audience")?.unwrap_or_default();
        let ids = known_set(&s.service_account_unique_ids, "service_account_unique_ids")?;
        let trust = TrustInputs::new(audience, ids).map_err(|_| "service_account_unique_ids")?;
        let max = match s.max_session_duration {
            Value::Value(n) => n,
            Value::Null => DEFAULT_MAX_SESSION_DURATION,
            Value::Unknown => return Err("max_session_duration"),
        };
        Ok(Self {
            name: opt_str(&s.name, "name")?.unwrap_or_default(),
            path: opt_str(&s.path, "path")?.unwrap_or_else(|| DEFAULT_PATH.into()),
            description: opt_str(&s.description, "description")?,
            trust_policy: trust.render(),
            managed: known_set(&s.managed_policy_arns, "managed_policy_arns")?,
            inline: known_map(&s.inline_policies, "inline_policies")?,
            max_session_duration: i32::try_from(max).map_err(|_| "max_session_duration")?,
            boundary: opt_str(&s.permissions_boundary, "permissions_boundary")?,
            tags: known_map(&s.tags, "tags")?,
        })
    }
}

/// One invalid argument, found without I/O.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub path: AttributePath,
    pub summary: String,
    pub detail: String,
}

/// Checks a configuration; unknown values (known only at apply) are never a problem.
pub fn check_config(c: &RoleState) -> Vec<Problem> {
    let mut problems = Vec::new();
    let mut check = |path: AttributePath, r: Result<(), Invalid>| {
        if let Err(i) = r {
            problems.push(Problem {
                path,
                summary: i.summary.to_string(),
                detail: i.detail,
            });
        }
    };
    let at = AttributePath::new;
    if let Value::Value(v) = &c.name {
        check(at("name"), validate::role_name(v));
    }
    if let Value::Value(v) = &c.path {
        check(at("path"), validate::role_path(v));
    }
    if let Value::Value(v) = &c.description {
        check(at("description"), validate::description(v));
    }
    if let Value::Value(v) = &c.audience {
        check(at("audience"), validate::audience(v));
    }
    if let Value::Value(ids) = &c.service_account_unique_ids {
        check(
            at("service_account_unique_ids"),
            validate::unique_id_count(ids.len()),
        );
        for id in ids {
            match id {
                Value::Value(id) => {
                    check(at("service_account_unique_ids"), validate::unique_id(id))
                }
                Value::Null => check(
                    at("service_account_unique_ids"),
                    Err(validate::null_element("service_account_unique_ids")),
                ),
                Value::Unknown => {}
            }
        }
    }
    if let Value::Value(arns) = &c.managed_policy_arns {
        for arn in arns {
            match arn {
                Value::Value(arn) => check(at("managed_policy_arns"), validate::policy_arn(arn)),
                Value::Null => check(
                    at("managed_policy_arns"),
                    Err(validate::null_element("managed_policy_arns")),
                ),
                Value::Unknown => {}
            }
        }
    }
    if let Value::Value(policies) = &c.inline_policies {
        for (name, doc) in policies {
            let path = at("inline_policies").key(name.to_string());
            check(path.clone(), validate::inline_policy_name(name));
            match doc {
                Value::Value(doc) => check(path, validate::policy_document(doc)),
                Value::Null => check(path, Err(validate::null_element("inline_policies"))),
                Value::Unknown => {}
            }
        }
        if policies.values().all(Value::is_value) {
            check(
                at("inline_policies"),
                validate::inline_policies_total(policies.values().filter_map(str_of)),
            );
        }
    }
    if let Value::Value(n) = c.max_session_duration {
        check(
            at("max_session_duration"),
            validate::max_session_duration(n),
        );
    }
    if let Value::Value(v) = &c.permissions_boundary {
        check(at("permissions_boundary"), validate::policy_arn(v));
    }
    if let Value::Value(tags) = &c.tags {
        check(at("tags"), validate::tag_count(tags.len()));
        let mut seen: BTreeMap<String, &str> = BTreeMap::new();
        for (key, value) in tags {
            let path = at("tags").key(key.to_string());
            check(path.clone(), validate::tag_key(key));
            match value {
                Value::Value(v) => check(path.clone(), validate::tag_value(key, v)),
                Value::Null => check(path.clone(), Err(validate::null_element("tags"))),
                Value::Unknown => {}
            }
            if let Some(other) = seen.insert(key.to_lowercase(), key) {
                check(
                    path,
                    Err(Invalid {
                        summary: "Duplicate tag key",
                        detail: format!("Tag keys {other:?} and {key:?} differ only in letter case; IAM treats tag keys case-insensitively. Keep one of them."),
                    }),
                );
            }
        }
    }
    problems
}

fn report_problems(diags: &mut Diagnostics, problems: Vec<Problem>) {
    for p in problems {
        diag::attribute_error(diags, p.path, p.summary, p.detail);
    }
}

/// The trust policy for planned inputs: known when the audience and every ID are known.
fn planned_trust_policy(s: &RoleState) -> Str {
    let (Value::Value(audience), Value::Value(ids)) = (&s.audience, &s.service_account_unique_ids)
    else {
        return Value::Unknown;
    };
    let mut list = Vec::with_capacity(ids.len());
    for id in ids {
        match str_of(id) {
            Some(id) => list.push(id.to_owned()),
            None => return Value::Unknown,
        }
    }
    match TrustInputs::new(audience.to_string(), list) {
        Ok(inputs) => known(inputs.render()),
        // Refused by validation already; nothing sensible to show.
        Err(_) => Value::Unknown,
    }
}

fn apply_defaults(planned: &mut RoleState, config: &RoleState) {
    if config.path.is_null() {
        planned.path = known(DEFAULT_PATH);
    }
    if config.max_session_duration.is_null() {
        planned.max_session_duration = Value::Value(DEFAULT_MAX_SESSION_DURATION);
    }
}

/// The planned state of a role about to be created.
fn plan_new(proposed: RoleState, config: &RoleState) -> RoleState {
    let mut s = proposed;
    apply_defaults(&mut s, config);
    s.id = s.name.clone();
    s.arn = Value::Unknown;
    s.unique_id = Value::Unknown;
    s.create_date = Value::Unknown;
    s.trust_policy = planned_trust_policy(&s);
    s
}

/// The planned state of an existing role, and the attributes whose change replaces it.
fn plan_change(
    prior: &RoleState,
    proposed: RoleState,
    config: &RoleState,
) -> (RoleState, Vec<AttributePath>) {
    let mut s = proposed;
    // Optional+computed arguments keep their prior value when left out; the documented
    // defaults apply instead, so removing an argument resets it.
    apply_defaults(&mut s, config);
    s.id = s.name.clone();
    let mut replace = Vec::new();
    if s.name != prior.name {
        replace.push(AttributePath::new("name"));
    }
    if s.path != prior.path {
        replace.push(AttributePath::new("path"));
    }
    if !replace.is_empty() {
        s.arn = Value::Unknown;
        s.unique_id = Value::Unknown;
        s.create_date = Value::Unknown;
    }
    s.trust_policy = planned_trust_policy(&s);
    (s, replace)
}

/// The state after reading `remote`, keeping the prior spelling of every document IAM holds an
/// equivalent of. The mismatch is set when IAM's trust policy is not of the gcpfed shape.
fn merge(prior: &RoleState, remote: &RemoteRole) -> (RoleState, Option<ShapeMismatch>) {
    let mut s = prior.clone();
    s.id = known(remote.name.clone());
    s.name = known(remote.name.clone());
    s.path = known(remote.path.clone());
    s.arn = known(remote.arn.clone());
    s.unique_id = known(remote.role_id.clone());
    s.create_date = known(remote.create_date.clone());
    s.description = match remote.description.as_deref() {
        Some(d) if !d.is_empty() => known(d),
        // IAM does not tell "" from no description; keep whichever the state said.
        _ if prior.description == known("") => known(""),
        _ => Value::Null,
    };
    s.max_session_duration = Value::Value(
        remote
            .max_session_duration
            .map_or(DEFAULT_MAX_SESSION_DURATION, i64::from),
    );
    s.permissions_boundary = remote
        .permissions_boundary
        .as_deref()
        .map_or(Value::Null, known);
    s.tags = keep_null_if_empty(&prior.tags, remote.tags.is_empty(), map_value(&remote.tags));
    s.managed_policy_arns = keep_null_if_empty(
        &prior.managed_policy_arns,
        remote.managed_policy_arns.is_empty(),
        set_value(&remote.managed_policy_arns),
    );

    let prior_inline = match &prior.inline_policies {
        Value::Value(m) => m.clone(),
        _ => BTreeMap::new(),
    };
    let inline: BTreeMap<String, String> = remote
        .inline_policies
        .iter()
        .map(|(name, doc)| {
            let kept = prior_inline
                .get(name.as_str())
                .and_then(str_of)
                .filter(|p| policies_equivalent(p, doc));
            let text = kept.map_or_else(|| normalize_document(doc), str::to_owned);
            (name.clone(), text)
        })
        .collect();
    s.inline_policies = keep_null_if_empty(
        &prior.inline_policies,
        inline.is_empty(),
        map_value(&inline),
    );

    let doc = remote.trust_policy.as_deref().unwrap_or("");
    let mut mismatch = None;
    let same = str_of(&prior.trust_policy).is_some_and(|p| policies_equivalent(p, doc));
    if !same {
        match parse_trust_policy(doc) {
            Ok(inputs) => {
                s.audience = known(inputs.audience());
                s.service_account_unique_ids = set_value(inputs.unique_ids());
                s.trust_policy = known(inputs.render());
            }
            Err(m) => {
                // Show IAM's document so the plan puts ours back; the inputs stay as they were.
                s.trust_policy = known(normalize_document(doc));
                mismatch = Some(m);
            }
        }
    }
    (s, mismatch)
}

/// What to do next for a failed IAM call, and the attribute at fault if there is one.
fn advice(role: &str, e: &IamError) -> (String, Option<AttributePath>) {
    let code = e.code.as_deref().unwrap_or("");
    let subject = e.subject.clone().unwrap_or_default();
    let at = AttributePath::new;
    match (e.operation, code) {
        ("CreateRole", "EntityAlreadyExists") => (
            format!("A role named {role:?} already exists in this account. Bring it under Terraform with `terraform import {TYPE_NAME}.<name> {role}` (or an import block), or choose another name."),
            Some(at("name")),
        ),
        ("TagRole" | "UntagRole" | "CreateRole", "InvalidInput") if e.message.to_lowercase().contains("tag") => (
            "IAM refused the tags. Fix them as IAM's message below says.".into(),
            Some(at("tags")),
        ),
        ("CreateRole" | "PutRolePermissionsBoundary", "NoSuchEntity" | "InvalidInput" | "InvalidParameterValue")
            if code == "NoSuchEntity"
                || e.operation == "PutRolePermissionsBoundary"
                || e.message.to_lowercase().contains("boundary") =>
        (
            "The permissions boundary policy does not exist or cannot be used. Check the ARN in permissions_boundary (aws_iam_policy.x.arn, or arn:aws:iam::aws:policy/… for AWS managed policies).".into(),
            Some(at("permissions_boundary")),
        ),
        ("CreateRole" | "UpdateAssumeRolePolicy", "MalformedPolicyDocument") => (
            "IAM refused the trust policy rendered from audience and service_account_unique_ids. Check both values; the trust policy attribute shows the exact document sent.".into(),
            None,
        ),
        ("CreateRole" | "UpdateAssumeRolePolicy", "LimitExceeded") => (
            "The trust policy is longer than the account allows (2048 characters by default, about 38 service accounts). Request a higher \"Role trust policy length\" quota in Service Quotas, or spread the service accounts over several roles.".into(),
            Some(at("service_account_unique_ids")),
        ),
        ("AttachRolePolicy", "NoSuchEntity") => (
            format!("Policy {subject} does not exist or cannot be attached (AWS managed policies live under arn:aws:iam::aws:policy/…). Fix the ARN in managed_policy_arns."),
            Some(at("managed_policy_arns")),
        ),
        ("AttachRolePolicy", "LimitExceeded") => (
            "The role has as many managed policies as the account allows (10 by default, at most 20). Request a higher \"Managed policies per role\" quota in Service Quotas, or combine policies.".into(),
            Some(at("managed_policy_arns")),
        ),
        ("PutRolePolicy", "MalformedPolicyDocument") => (
            format!("IAM refused inline policy {subject:?}. Fix the document as IAM's message below says."),
            Some(at("inline_policies").key(subject)),
        ),
        ("PutRolePolicy", "LimitExceeded") => (
            "The role's inline policies exceed IAM's size limit (10,240 characters in all, whitespace not counted). Move statements into managed policies.".into(),
            Some(at("inline_policies")),
        ),
        ("DeleteRole", "DeleteConflict") => (
            format!("Role {role:?} is still in use after gcpfed detached its managed policies, deleted its inline policies and removed it from its instance profiles. Find what else holds it (IAM's message below says) and run destroy again."),
            None,
        ),
        (_, "AccessDenied" | "AccessDeniedException") => (
            format!("The provider's AWS identity may not call iam:{} on role {role:?}. Grant that permission to the identity, or configure the provider with credentials that have it.", e.operation),
            None,
        ),
        (_, "NoSuchEntity") => (
            format!("Role {role:?} no longer exists in IAM (deleted outside Terraform?). Run plan again: the role will be planned for creation."),
            None,
        ),
        (_, "Throttling" | "ThrottlingException" | "RequestLimitExceeded") => (
            "IAM kept throttling requests after the provider's retries. Try again later, or raise max_retries in the provider block.".into(),
            None,
        ),
        (_, "") => (
            "IAM could not be reached. Check the provider's region, endpoints and network access, then try again.".into(),
            None,
        ),
        _ => ("Fix the cause IAM names below, then apply again.".into(), None),
    }
}

fn report(diags: &mut Diagnostics, summary: &str, role: &str, e: &IamError) {
    let (next, path) = advice(role, e);
    match path {
        Some(path) => {
            diag::attribute_error(diags, path, summary, diag::detail(&next, &e.to_string()))
        }
        None => diag::operation_error(diags, summary, &next, e),
    }
}

fn report_unknown(diags: &mut Diagnostics, attr: &'static str) {
    diag::attribute_error(
        diags,
        AttributePath::new(attr),
        "Value unknown at apply",
        format!("{attr} is still unknown while applying. Apply the resources it depends on first (for example with -target), then apply again."),
    );
}

fn report_not_gcpfed(diags: &mut Diagnostics, role: &str, m: &ShapeMismatch) {
    diags.root_error(
        "Role is not a gcpfed role",
        diag::detail(
            &format!("Role {role:?} has a trust policy gcpfed_role does not manage, so importing it would rewrite who may assume it. Either change its trust policy to the shape gcpfed renders (Federated accounts.google.com, sts:AssumeRoleWithWebIdentity, StringEquals on accounts.google.com:aud, :oaud and :sub) or manage the role with the AWS provider's aws_iam_role."),
            &m.to_string(),
        ),
    );
}

/// The IAM role a Google service account can assume.
pub struct RoleResource {
    shared: Arc<SharedClients>,
}

impl RoleResource {
    pub fn new(shared: Arc<SharedClients>) -> Self {
        Self { shared }
    }
}

/// The resource schema; its descriptions are the source of docs/resources/role.md.
pub fn role_schema() -> Schema {
    use AttributeConstraint::{Computed, Optional, OptionalComputed, Required};
    use AttributeType::{Map, Number, Set, String as Text};
    let text_set = || Set(Box::new(Text));
    let text_map = || Map(Box::new(Text));
    let attributes = [
        ("id", attribute(Text, Computed, "The role name.")),
        ("name", attribute(Text, Required, "Name of the IAM role: 1–64 characters of letters, digits and `_+=,.@-`. Changing it replaces the role.")),
        ("path", attribute(Text, OptionalComputed, "Path of the role: starts and ends with `/`, at most 512 characters. Default `/`. Changing it replaces the role.")),
        ("description", attribute(Text, Optional, "Description of the role, at most 1000 characters. Updated in place.")),
        ("audience", attribute(Text, Required, "The audience the workload requests from the GCE metadata server; rendered as the `accounts.google.com:oaud` condition. Must equal `audience` of `gcpfed_credentials`. Updated in place.")),
        ("service_account_unique_ids", attribute(text_set(), Required, "Numeric unique IDs of the Google service accounts allowed to assume the role (`google_service_account.x.unique_id`, 21 digits), rendered as the `accounts.google.com:aud` and `accounts.google.com:sub` conditions. Not the email. Updated in place.")),
        ("managed_policy_arns", attribute(text_set(), Optional, "ARNs of the managed policies attached to the role. Exactly these are attached: others found attached are detached. Updated in place.")),
        ("inline_policies", attribute(text_map(), Optional, "Inline policies of the role, policy name to JSON document. Exactly these exist: others found on the role are deleted. Documents are compared by meaning, so formatting or key order never shows as a diff. Updated in place.")),
        ("max_session_duration", attribute(Number, OptionalComputed, "Maximum session duration in seconds, 3600–43200. Default `3600`. Updated in place.")),
        ("permissions_boundary", attribute(Text, Optional, "ARN of the managed policy used as the role's permissions boundary. Updated in place.")),
        ("tags", attribute(text_map(), Optional, "Tags of the role: at most 50, keys 1–128 and values 0–256 characters, no `aws:` prefix. Updated in place.")),
        ("arn", attribute(Text, Computed, "ARN of the role (give it to `gcpfed_credentials.role_arn`).")),
        ("unique_id", attribute(Text, Computed, "IAM's stable unique ID of the role (`AROA…`).")),
        ("create_date", attribute(Text, Computed, "When IAM created the role (RFC 3339).")),
        ("trust_policy", attribute(Text, Computed, "The trust policy document sent to IAM, rendered from `audience` and `service_account_unique_ids`; known at plan time.")),
    ]
    .into_iter()
    .map(|(name, attr)| (name.to_string(), attr))
    .collect();
    Schema {
        version: 1,
        block: Block {
            version: 1,
            description: Description::markdown(
                "An IAM role that Google service accounts assume with `AssumeRoleWithWebIdentity`, its trust policy rendered from Google inputs, and (exclusively) its managed and inline policies.",
            ),
            attributes,
            blocks: Default::default(),
            deprecated: false,
        },
    }
}

/// Accepts a role name or a role ARN (`arn:aws:iam::123456789012:role/path/name`).
fn import_name(id: &str) -> &str {
    if id.starts_with("arn:") {
        if let Some(rest) = id.split_once(":role/").map(|(_, r)| r) {
            return rest.rsplit('/').next().unwrap_or(rest);
        }
    }
    id
}

#[async_trait]
impl Resource for RoleResource {
    type State<'a> = RoleState;
    type PrivateState<'a> = ValueEmpty;
    type ProviderMetaState<'a> = ValueEmpty;

    fn schema(&self, _diags: &mut Diagnostics) -> Option<Schema> {
        Some(role_schema())
    }

    async fn validate<'a>(&self, diags: &mut Diagnostics, config: Self::State<'a>) -> Option<()> {
        report_problems(diags, check_config(&config));
        Some(())
    }

    async fn read<'a>(
        &self,
        diags: &mut Diagnostics,
        state: Self::State<'a>,
        private_state: Self::PrivateState<'a>,
        _meta: Self::ProviderMetaState<'a>,
    ) -> Option<(Self::State<'a>, Self::PrivateState<'a>)> {
        let Some(name) = str_of(&state.id).or(str_of(&state.name)).map(str::to_owned) else {
            return Some((state, private_state));
        };
        let Some(clients) = self.shared.get(diags) else {
            return Some((state, private_state));
        };
        match RoleApi::new(&clients.iam).fetch(&name).await {
            Ok(None) => None,
            Ok(Some(remote)) => Some((merge(&state, &remote).0, private_state)),
            Err(e) => {
                report(diags, "Cannot read IAM role", &name, &e);
                Some((state, private_state))
            }
        }
    }

    async fn plan_create<'a>(
        &self,
        diags: &mut Diagnostics,
        proposed_state: Self::State<'a>,
        config_state: Self::State<'a>,
        _meta: Self::ProviderMetaState<'a>,
    ) -> Option<(Self::State<'a>, Self::PrivateState<'a>)> {
        report_problems(diags, check_config(&config_state));
        Some((
            plan_new(proposed_state, &config_state),
            ValueEmpty::default(),
        ))
    }

    async fn plan_update<'a>(
        &self,
        diags: &mut Diagnostics,
        prior_state: Self::State<'a>,
        proposed_state: Self::State<'a>,
        config_state: Self::State<'a>,
        prior_private_state: Self::PrivateState<'a>,
        _meta: Self::ProviderMetaState<'a>,
    ) -> Option<(Self::State<'a>, Self::PrivateState<'a>, Vec<AttributePath>)> {
        report_problems(diags, check_config(&config_state));
        let (planned, replace) = plan_change(&prior_state, proposed_state, &config_state);
        Some((planned, prior_private_state, replace))
    }

    async fn plan_destroy<'a>(
        &self,
        _diags: &mut Diagnostics,
        _prior_state: Self::State<'a>,
        prior_private_state: Self::PrivateState<'a>,
        _meta: Self::ProviderMetaState<'a>,
    ) -> Option<Self::PrivateState<'a>> {
        Some(prior_private_state)
    }

    async fn create<'a>(
        &self,
        diags: &mut Diagnostics,
        planned_state: Self::State<'a>,
        _config_state: Self::State<'a>,
        planned_private_state: Self::PrivateState<'a>,
        _meta: Self::ProviderMetaState<'a>,
    ) -> Option<(Self::State<'a>, Self::PrivateState<'a>)> {
        let d = match Desired::of(&planned_state) {
            Ok(d) => d,
            Err(attr) => {
                report_unknown(diags, attr);
                return None;
            }
        };
        let clients = self.shared.get(diags)?;
        let api = RoleApi::new(&clients.iam);
        let created = match api
            .create(&NewRole {
                name: &d.name,
                path: &d.path,
                trust_policy: &d.trust_policy,
                description: d.description.as_deref(),
                max_session_duration: d.max_session_duration,
                permissions_boundary: d.boundary.as_deref(),
                tags: &d.tags,
            })
            .await
        {
            Ok(c) => c,
            Err(e) => {
                report(diags, "Cannot create IAM role", &d.name, &e);
                return None;
            }
        };
        let mut state = planned_state;
        state.id = known(d.name.clone());
        state.path = known(d.path.clone());
        state.max_session_duration = Value::Value(i64::from(d.max_session_duration));
        state.arn = known(created.arn);
        state.unique_id = known(created.role_id);
        state.create_date = known(created.create_date);
        state.trust_policy = known(d.trust_policy.clone());

        // From here on the role exists: it goes into state whatever happens, so that a failure
        // leaves it tainted (replaced on the next apply) instead of orphaned.
        for arn in &d.managed {
            if let Err(e) = api.attach(&d.name, arn).await {
                report(diags, "Cannot attach managed policy", &d.name, &e);
                return Some((state, planned_private_state));
            }
        }
        for (policy, doc) in &d.inline {
            if let Err(e) = api.put_inline(&d.name, policy, doc).await {
                report(diags, "Cannot put inline policy", &d.name, &e);
                return Some((state, planned_private_state));
            }
        }
        Some((state, planned_private_state))
    }

    async fn update<'a>(
        &self,
        diags: &mut Diagnostics,
        prior_state: Self::State<'a>,
        planned_state: Self::State<'a>,
        _config_state: Self::State<'a>,
        planned_private_state: Self::PrivateState<'a>,
        _meta: Self::ProviderMetaState<'a>,
    ) -> Option<(Self::State<'a>, Self::PrivateState<'a>)> {
        let (want, had) = match (Desired::of(&planned_state), Desired::of(&prior_state)) {
            (Ok(w), Ok(h)) => (w, h),
            (Err(attr), _) | (_, Err(attr)) => {
                report_unknown(diags, attr);
                return Some((prior_state, planned_private_state));
            }
        };
        let Some(clients) = self.shared.get(diags) else {
            return Some((prior_state, planned_private_state));
        };
        let api = RoleApi::new(&clients.iam);
        let prior_trust = str_of(&prior_state.trust_policy)
            .unwrap_or_default()
            .to_owned();
        match apply_changes(&api, &want, &had, &prior_trust).await {
            Ok(()) => {
                let mut state = planned_state;
                state.trust_policy = known(want.trust_policy);
                Some((state, planned_private_state))
            }
            Err((summary, e)) => {
                report(diags, summary, &want.name, &e);
                // The next refresh reads what did change; keeping the prior state re-plans the rest.
                Some((prior_state, planned_private_state))
            }
        }
    }

    async fn destroy<'a>(
        &self,
        diags: &mut Diagnostics,
        prior_state: Self::State<'a>,
        _planned_private_state: Self::PrivateState<'a>,
        _meta: Self::ProviderMetaState<'a>,
    ) -> Option<()> {
        let name = str_of(&prior_state.id)
            .or(str_of(&prior_state.name))
            .unwrap_or_default()
            .to_owned();
        let clients = self.shared.get(diags)?;
        match RoleApi::new(&clients.iam).delete(&name).await {
            Ok(()) => Some(()),
            Err(e) => {
                report(diags, "Cannot delete IAM role", &name, &e);
                None
            }
        }
    }

    async fn import<'a>(
        &self,
        diags: &mut Diagnostics,
        id: String,
    ) -> Option<(Self::State<'a>, Self::PrivateState<'a>)> {
        let name = import_name(&id).to_owned();
        if let Err(i) = validate::role_name(&name) {
            diags.root_error(
                "Invalid import ID",
                format!("Import gcpfed_role by role name (or role ARN), for example `terraform import {TYPE_NAME}.ci my-role`. {}", i.detail),
            );
            return None;
        }
        let clients = self.shared.get(diags)?;
        let remote = match RoleApi::new(&clients.iam).fetch(&name).await {
            Ok(Some(remote)) => remote,
            Ok(None) => {
                diags.root_error(
                    "Role not found",
                    format!("IAM has no role named {name:?} in this account. Check the name (it is case-sensitive as shown by `aws iam get-role --role-name {name}`) and the provider's credentials."),
                );
                return None;
            }
            Err(e) => {
                report(diags, "Cannot read IAM role", &name, &e);
                return None;
            }
        };
        let blank = RoleState {
            id: known(name.clone()),
            name: known(name.clone()),
            ..Default::default()
        };
        let (state, mismatch) = merge(&blank, &remote);
        if let Some(m) = mismatch {
            report_not_gcpfed(diags, &name, &m);
            return None;
        }
        Some((state, ValueEmpty::default()))
    }
}

/// Brings IAM from `had` to `want`, in an order that never leaves the role with fewer
/// permissions than both (attach before detach, put before delete).
async fn apply_changes(
    api: &RoleApi<'_>,
    want: &Desired,
    had: &Desired,
    prior_trust: &str,
) -> Result<(), (&'static str, IamError)> {
    let name = want.name.as_str();
    if prior_trust != want.trust_policy {
        api.update_trust(name, &want.trust_policy)
            .await
            .map_err(|e| ("Cannot update trust policy", e))?;
    }
    if want.description != had.description || want.max_session_duration != had.max_session_duration
    {
        api.update_role(
            name,
            want.description.as_deref().unwrap_or(""),
            want.max_session_duration,
        )
        .await
        .map_err(|e| ("Cannot update IAM role", e))?;
    }
    if want.boundary != had.boundary {
        match &want.boundary {
            Some(arn) => api.put_boundary(name, arn).await,
            None => api.delete_boundary(name).await,
        }
        .map_err(|e| ("Cannot update permissions boundary", e))?;
    }
    let removed: Vec<String> = had
        .tags
        .keys()
        .filter(|k| !want.tags.contains_key(*k))
        .cloned()
        .collect();
    api.untag(name, &removed)
        .await
        .map_err(|e| ("Cannot update tags", e))?;
    let changed: BTreeMap<String, String> = want
        .tags
        .iter()
        .filter(|(k, v)| had.tags.get(*k) != Some(v))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    api.tag(name, &changed)
        .await
        .map_err(|e| ("Cannot update tags", e))?;
    for arn in want.managed.difference(&had.managed) {
        api.attach(name, arn)
            .await
            .map_err(|e| ("Cannot attach managed policy", e))?;
    }
    for arn in had.managed.difference(&want.managed) {
        api.detach(name, arn)
            .await
            .map_err(|e| ("Cannot detach managed policy", e))?;
    }
    for (policy, doc) in &want.inline {
        if had.inline.get(policy) != Some(doc) {
            api.put_inline(name, policy, doc)
                .await
                .map_err(|e| ("Cannot put inline policy", e))?;
        }
    }
    for policy in had.inline.keys().filter(|p| !want.inline.contains_key(*p)) {
        api.delete_inline(name, policy)
            .await
            .map_err(|e| ("Cannot delete inline policy", e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SA1: &str = "104857600000000000001";
    const SA2: &str = "104857600000000000002";
    const S3RO: &str = "arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess";
    const DOC: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:ListBucket","Resource":"*"}]}"#;

    fn set(items: &[&str]) -> StrSet {
        Value::Value(items.iter().map(|s| known(*s)).collect())
    }

    fn map(items: &[(&str, &str)]) -> StrMap {
        Value::Value(
            items
                .iter()
                .map(|(k, v)| (Cow::Owned(k.to_string()), known(*v)))
                .collect(),
        )
    }

    fn config() -> RoleState {
        RoleState {
            name: known("gcpfedacc-role"),
            audience: known("sts.amazonaws.com/gcpfed"),
            service_account_unique_ids: set(&[SA1, SA2]),
            managed_policy_arns: set(&[S3RO]),
            inline_policies: map(&[("list", DOC)]),
            tags: map(&[("team", "ci")]),
            ..Default::default()
        }
    }

    fn paths(problems: &[Problem]) -> Vec<String> {
        problems.iter().map(|p| p.path.to_string()).collect()
    }

    #[test]
    fn a_full_configuration_is_valid() {
        let mut c = config();
        c.path = known("/ci/");
        c.description = known("CI");
        c.max_session_duration = Value::Value(7200);
        c.permissions_boundary = known(S3RO);
        assert_eq!(check_config(&c), vec![]);
    }

    #[test]
    fn invalid_arguments_name_their_path_and_fix() {
        type Edit = fn(&mut RoleState);
        let cases: Vec<(Edit, &str, &str)> = vec![
            (|c| c.name = known("a".repeat(65)), "name", "at most 64"),
            (|c| c.path = known("ci"), "path", "start and end"),
            (
                |c| c.description = known("d".repeat(1001)),
                "description",
                "at most 1000",
            ),
            (|c| c.audience = known(""), "audience", "Set audience"),
            (
                |c| c.service_account_unique_ids = set(&["ci@p.iam.gserviceaccount.com"]),
                "service_account_unique_ids",
                "google_service_account.x.unique_id",
            ),
            (
                |c| c.service_account_unique_ids = set(&[]),
                "service_account_unique_ids",
                "at least one",
            ),
            (
                |c| c.managed_policy_arns = set(&["AmazonS3ReadOnlyAccess"]),
                "managed_policy_arns",
                "arn:aws:iam::aws:policy/",
            ),
            (
                |c| c.inline_policies = map(&[("p", "{nope")]),
                "inline_policies[\"p\"]",
                "not valid JSON",
            ),
            (
                |c| c.inline_policies = map(&[("bad name", DOC)]),
                "inline_policies[\"bad name\"]",
                "Rename",
            ),
            (
                |c| c.max_session_duration = Value::Value(100),
                "max_session_duration",
                "3600",
            ),
            (
                |c| c.permissions_boundary = known("arn:aws:iam::aws:role/x"),
                "permissions_boundary",
                "policy ARN",
            ),
            (
                |c| c.tags = map(&[("aws:x", "v")]),
                "tags[\"aws:x\"]",
                "reserved",
            ),
            (
                |c| c.tags = map(&[("Team", "a"), ("team", "b")]),
                "tags[\"team\"]",
                "letter case",
            ),
        ];
        for (edit, path, fix) in cases {
            let mut c = config();
            edit(&mut c);
            let problems = check_config(&c);
            assert_eq!(paths(&problems), vec![path.to_string()], "{problems:?}");
            assert!(
                problems[0].detail.contains(fix),
                "{path}: {}",
                problems[0].detail
            );
        }
        let mut c = config();
        c.tags = Value::Value(
            (0..51)
                .map(|i| (Cow::Owned(format!("k{i}")), known("v")))
                .collect(),
        );
        assert_eq!(paths(&check_config(&c)), vec!["tags".to_string()]);
    }

    #[test]
    fn null_elements_are_refused() {
        let mut c = config();
        c.tags = Value::Value([(Cow::Borrowed("team"), Value::Null)].into_iter().collect());
        c.inline_policies = Value::Value([(Cow::Borrowed("p"), Value::Null)].into_iter().collect());
        c.managed_policy_arns = Value::Value([Value::Null].into_iter().collect());
        let problems = check_config(&c);
        assert_eq!(
            paths(&problems),
            vec![
                "managed_policy_arns",
                "inline_policies[\"p\"]",
                "tags[\"team\"]"
            ],
            "{problems:?}"
        );
        assert!(problems
            .iter()
            .all(|p| p.detail.contains("Remove the element")));
    }

    #[test]
    fn unknown_values_are_accepted() {
        let c = RoleState {
            name: Value::Unknown,
            audience: Value::Unknown,
            service_account_unique_ids: Value::Value([Value::Unknown].into_iter().collect()),
            inline_policies: Value::Value(
                [(Cow::Borrowed("p"), Value::Unknown)].into_iter().collect(),
            ),
            tags: Value::Unknown,
            max_session_duration: Value::Unknown,
            ..Default::default()
        };
        assert_eq!(check_config(&c), vec![]);
    }

    #[test]
    fn plan_create_renders_the_trust_policy_and_applies_defaults() {
        let c = config();
        let s = plan_new(c.clone(), &c);
        assert_eq!(s.path, known("/"));
        assert_eq!(s.max_session_duration, Value::Value(3600));
        assert_eq!(s.id, known("gcpfedacc-role"));
        assert!(s.arn.is_unknown() && s.unique_id.is_unknown() && s.create_date.is_unknown());
        let want = TrustInputs::new("sts.amazonaws.com/gcpfed", [SA1, SA2])
            .unwrap()
            .render();
        assert_eq!(s.trust_policy, known(want));

        let mut c = config();
        c.service_account_unique_ids =
            Value::Value([known(SA1), Value::Unknown].into_iter().collect());
        assert!(plan_new(c.clone(), &c).trust_policy.is_unknown());
    }

    fn applied() -> RoleState {
        let c = config();
        let mut s = plan_new(c.clone(), &c);
        s.arn = known("arn:aws:iam::123456789012:role/gcpfedacc-role");
        s.unique_id = known("AROAEXAMPLE");
        s.create_date = known("2026-12-01T00:00:00Z");
        s
    }

    /// What Terraform proposes: config values, prior values for computed ones.
    fn proposed(prior: &RoleState, config: &RoleState) -> RoleState {
        let mut p = config.clone();
        for (dst, src) in [
            (&mut p.id, &prior.id),
            (&mut p.arn, &prior.arn),
            (&mut p.unique_id, &prior.unique_id),
            (&mut p.create_date, &prior.create_date),
            (&mut p.trust_policy, &prior.trust_policy),
        ] {
            *dst = src.clone();
        }
        if config.path.is_null() {
            p.path = prior.path.clone();
        }
        if config.max_session_duration.is_null() {
            p.max_session_duration = prior.max_session_duration;
        }
        p
    }

    #[test]
    fn plan_update_without_change_is_the_prior_state() {
        let prior = applied();
        let (s, replace) = plan_change(&prior, proposed(&prior, &config()), &config());
        assert_eq!(s, prior);
        assert!(replace.is_empty());
    }

    #[test]
    fn plan_update_rerenders_and_keeps_ids_known() {
        let prior = applied();
        let mut c = config();
        c.audience = known("other");
        let (s, replace) = plan_change(&prior, proposed(&prior, &c), &c);
        assert!(replace.is_empty());
        assert_eq!(s.unique_id, prior.unique_id);
        assert_eq!(s.arn, prior.arn);
        assert!(str_of(&s.trust_policy).unwrap().contains("\"other\""));
    }

    #[test]
    fn name_and_path_force_replacement() {
        let prior = applied();
        let mut c = config();
        c.name = known("gcpfedacc-other");
        c.path = known("/ci/");
        let (s, replace) = plan_change(&prior, proposed(&prior, &c), &c);
        assert_eq!(
            replace,
            vec![AttributePath::new("name"), AttributePath::new("path")]
        );
        assert!(s.unique_id.is_unknown());
        assert_eq!(s.id, known("gcpfedacc-other"));
    }

    #[test]
    fn removing_an_optional_default_resets_it() {
        let mut prior = applied();
        prior.max_session_duration = Value::Value(7200);
        let (s, _) = plan_change(&prior, proposed(&prior, &config()), &config());
        assert_eq!(s.max_session_duration, Value::Value(3600));
    }

    fn remote_of(s: &RoleState) -> RemoteRole {
        let d = Desired::of(s).unwrap();
        RemoteRole {
            name: d.name.clone(),
            path: d.path.clone(),
            role_id: "AROAEXAMPLE".into(),
            arn: "arn:aws:iam::123456789012:role/gcpfedacc-role".into(),
            create_date: "2026-12-01T00:00:00Z".into(),
            trust_policy: Some(d.trust_policy.clone()),
            description: d.description.clone(),
            max_session_duration: Some(d.max_session_duration),
            permissions_boundary: d.boundary.clone(),
            tags: d.tags.clone(),
            managed_policy_arns: d.managed.clone(),
            inline_policies: d.inline.clone(),
        }
    }

    #[test]
    fn read_of_an_unchanged_role_is_the_prior_state() {
        let prior = applied();
        let mut remote = remote_of(&prior);
        // IAM's spelling of the same documents.
        remote.trust_policy = Some(format!(
            r#"{{"Statement":[{{"Condition":{{"StringEquals":{{"accounts.google.com:sub":["{SA2}","{SA1}"],"accounts.google.com:oaud":"sts.amazonaws.com/gcpfed","accounts.google.com:aud":["{SA2}","{SA1}"]}}}},"Action":"sts:AssumeRoleWithWebIdentity","Principal":{{"Federated":"accounts.google.com"}},"Effect":"Allow"}}],"Version":"2012-10-17"}}"#
        ));
        remote.inline_policies.insert(
            "list".into(),
            DOC.replace(',', " ,\n  ").replace("\"*\"", "[\"*\"]"),
        );
        let (s, mismatch) = merge(&prior, &remote);
        assert_eq!(mismatch, None);
        assert_eq!(s, prior);
    }

    #[test]
    fn read_shows_every_drift() {
        let prior = applied();
        let mut remote = remote_of(&prior);
        remote.description = Some("changed".into());
        remote.max_session_duration = Some(7200);
        remote.permissions_boundary = Some(S3RO.into());
        remote.tags.insert("extra".into(), "x".into());
        remote.managed_policy_arns.clear();
        remote
            .inline_policies
            .insert("list".into(), DOC.replace("ListBucket", "GetObject"));
        remote.trust_policy = Some(TrustInputs::new("evil", [SA1]).unwrap().render());
        let (s, mismatch) = merge(&prior, &remote);
        assert_eq!(mismatch, None);
        assert_eq!(s.description, known("changed"));
        assert_eq!(s.max_session_duration, Value::Value(7200));
        assert_eq!(s.permissions_boundary, known(S3RO));
        assert_eq!(s.tags, map(&[("extra", "x"), ("team", "ci")]));
        assert_eq!(s.managed_policy_arns, set(&[]));
        assert!(str_of(&s.inline_policies.as_ref_option().unwrap()["list"])
            .unwrap()
            .contains("GetObject"));
        assert_eq!(s.audience, known("evil"));
        assert_eq!(s.service_account_unique_ids, set(&[SA1]));
        // Planning again from the unchanged configuration puts everything back.
        let (plan, _) = plan_change(&s, proposed(&s, &config()), &config());
        assert_eq!(plan, prior);
    }

    #[test]
    fn read_of_a_foreign_trust_policy_shows_it_and_keeps_the_inputs() {
        let prior = applied();
        let mut remote = remote_of(&prior);
        remote.trust_policy = Some(
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#.into(),
        );
        let (s, mismatch) = merge(&prior, &remote);
        assert!(mismatch.unwrap().to_string().contains("Principal"));
        assert_eq!(s.audience, prior.audience);
        assert!(str_of(&s.trust_policy)
            .unwrap()
            .contains("ec2.amazonaws.com"));
        let (plan, _) = plan_change(&s, proposed(&s, &config()), &config());
        assert_eq!(plan.trust_policy, prior.trust_policy);
    }

    #[test]
    fn left_out_collections_stay_null_when_empty() {
        let mut c = config();
        c.managed_policy_arns = Value::Null;
        c.inline_policies = Value::Null;
        c.tags = Value::Null;
        let mut prior = plan_new(c.clone(), &c);
        prior.arn = known("a");
        let (s, _) = merge(&prior, &remote_of(&prior));
        assert!(s.managed_policy_arns.is_null() && s.inline_policies.is_null() && s.tags.is_null());
        c.tags = map(&[]);
        let prior = plan_new(c.clone(), &c);
        let (s, _) = merge(&prior, &remote_of(&prior));
        assert_eq!(s.tags, map(&[]));
    }

    #[test]
    fn import_recovers_every_argument() {
        let mut c = config();
        c.description = known("CI");
        c.permissions_boundary = known(S3RO);
        let prior = applied();
        let mut full = prior.clone();
        full.description = c.description.clone();
        full.permissions_boundary = c.permissions_boundary.clone();
        let blank = RoleState {
            id: known("gcpfedacc-role"),
            name: known("gcpfedacc-role"),
            ..Default::default()
        };
        let (s, mismatch) = merge(&blank, &remote_of(&full));
        assert_eq!(mismatch, None);
        // Inline documents come back in jsonencode's layout (compact, keys sorted): the
        // configuration's own spelling is not knowable on import.
        full.inline_policies = map(&[("list", &normalize_document(DOC))]);
        assert_eq!(s, full);
    }

    #[test]
    fn import_ids() {
        assert_eq!(import_name("r"), "r");
        assert_eq!(import_name("arn:aws:iam::123456789012:role/ci/r"), "r");
    }

    #[test]
    fn advice_points_at_the_attribute_at_fault() {
        let e = IamError {
            operation: "AttachRolePolicy",
            subject: Some("arn:aws:iam::aws:policy/Nope".into()),
            code: Some("NoSuchEntity".into()),
            message: "Policy arn:aws:iam::aws:policy/Nope does not exist or is not attachable."
                .into(),
        };
        let (next, path) = advice("r", &e);
        assert!(next.contains("managed_policy_arns"));
        assert_eq!(path, Some(AttributePath::new("managed_policy_arns")));
        let e = IamError {
            operation: "CreateRole",
            subject: None,
            code: Some("EntityAlreadyExists".into()),
            message: "Role with name r already exists.".into(),
        };
        assert!(advice("r", &e)
            .0
            .contains("terraform import gcpfed_role.<name> r"));
        let e = IamError {
            operation: "PutRolePolicy",
            subject: Some("p".into()),
            code: Some("MalformedPolicyDocument".into()),
            message: "Syntax errors in policy.".into(),
        };
        assert_eq!(
            advice("r", &e).1,
            Some(AttributePath::new("inline_policies").key("p"))
        );
    }

    #[test]
    fn schema_sets_every_attribute_explicitly() {
        let schema = role_schema();
        let state_fields = serde_json::to_value(RoleState::default()).unwrap();
        let fields: BTreeSet<&String> = state_fields.as_object().unwrap().keys().collect();
        let attrs: BTreeSet<&String> = schema.block.attributes.keys().collect();
        assert_eq!(fields, attrs);
        for (name, a) in &schema.block.attributes {
            assert_ne!(a.attr_type, AttributeType::Any, "{name}");
            assert!(a.description.content.len() > 10, "{name}");
        }
    }
}
