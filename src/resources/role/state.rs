//! `gcpfed_role`'s attributes: the state Terraform stores ([`RoleState`]), its schema, and the
//! same values once all known ([`Desired`]), as create and update need them. Everything else in
//! the resource builds on these; this module builds on nothing of the resource.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use tf_provider::schema::{AttributeConstraint, AttributeType, Block, Description, Schema};
use tf_provider::value::{Value, ValueMap, ValueNumber, ValueSet, ValueString};

use crate::schema::attribute;
use crate::trust_policy::{InputError, TrustInputs};

/// The Terraform type name.
pub const TYPE_NAME: &str = "gcpfed_role";
/// IAM's default for `MaxSessionDuration`, and ours when the argument is left out.
pub const DEFAULT_MAX_SESSION_DURATION: i64 = 3600;
/// IAM's default path.
pub const DEFAULT_PATH: &str = "/";

pub(super) type Str = ValueString<'static>;
pub(super) type StrSet = ValueSet<Str>;
pub(super) type StrMap = ValueMap<'static, Str>;

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

pub(super) fn known(s: impl Into<String>) -> Str {
    Value::Value(Cow::Owned(s.into()))
}

pub(super) fn str_of(v: &Str) -> Option<&str> {
    match v {
        Value::Value(s) => Some(s),
        _ => None,
    }
}

pub(super) fn set_value(items: &BTreeSet<String>) -> StrSet {
    Value::Value(items.iter().map(|s| known(s.clone())).collect())
}

pub(super) fn map_value(items: &BTreeMap<String, String>) -> StrMap {
    Value::Value(
        items
            .iter()
            .map(|(k, v)| (Cow::Owned(k.clone()), known(v.clone())))
            .collect(),
    )
}

/// All of a configuration's values, every one known; `Err` names the first unknown attribute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Desired {
    pub(super) name: String,
    pub(super) path: String,
    pub(super) description: Option<String>,
    pub(super) trust_policy: String,
    pub(super) managed: BTreeSet<String>,
    pub(super) inline: BTreeMap<String, String>,
    pub(super) max_session_duration: i32,
    pub(super) boundary: Option<String>,
    pub(super) tags: BTreeMap<String, String>,
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
    pub(super) fn of(s: &RoleState) -> Result<Self, &'static str> {
        let audience = opt_str(&s.audience, "audience")?.unwrap_or_default();
        let ids = known_set(&s.service_account_unique_ids, "service_account_unique_ids")?;
        let trust = TrustInputs::new(audience, ids).map_err(|e| match e {
            InputError::Audience(_) => "audience",
            InputError::UniqueIds(_) => "service_account_unique_ids",
        })?;
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

#[cfg(test)]
pub(super) mod fixtures {
    //! Configurations and values the resource's unit tests share.

    use super::*;

    pub const SA1: &str = "104857600000000000001";
    pub const SA2: &str = "104857600000000000002";
    pub const S3RO: &str = "arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess";
    pub const DOC: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:ListBucket","Resource":"*"}]}"#;

    pub fn set(items: &[&str]) -> StrSet {
        Value::Value(items.iter().map(|s| known(*s)).collect())
    }

    pub fn map(items: &[(&str, &str)]) -> StrMap {
        Value::Value(
            items
                .iter()
                .map(|(k, v)| (Cow::Owned(k.to_string()), known(*v)))
                .collect(),
        )
    }

    pub fn config() -> RoleState {
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
}

#[cfg(test)]
mod tests {
    use super::*;

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
