//! `gcpfed_credentials`, as both the data source and the ephemeral resource of that name offer
//! it: one set of arguments and results ([`CredentialsState`]), one schema ([`schema`]), one
//! validation ([`check`], with the impersonation arguments' in [`impersonation`]) and one exchange with its error mapping ([`run::open`]). The two
//! Terraform types differ only in what Terraform does with the result (state versus memory), so
//! everything they have in common lives here and they stay thin.
//!
//! The state struct has no `Debug`: it holds the token and the secrets.

pub mod check;
pub mod impersonation;
pub mod run;

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use tf_provider::map;
use tf_provider::schema::{AttributeConstraint, AttributeType, Block, Description, Schema};
use tf_provider::value::Value;

pub use check::{check, validate};

use crate::schema::{attribute, sensitive};

/// The Terraform type name, the same for the data source and the ephemeral resource.
pub const TYPE_NAME: &str = "gcpfed_credentials";

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
    pub impersonate_service_account: Str,
    pub delegates: impersonation::DelegateList,
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

/// Which Terraform type a schema is for: the attributes are the same, but what the type says
/// about storage (and so what it marks sensitive) differs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `data "gcpfed_credentials"`: results land in state and plan files.
    DataSource,
    /// `ephemeral "gcpfed_credentials"`: results live in Terraform's memory only.
    Ephemeral,
}

const DATA_SOURCE_DESCRIPTION: &str = "Exchanges a Google-signed ID token (from the GCE metadata \
    server, or given in `web_identity_token`) for temporary AWS credentials through STS \
    `AssumeRoleWithWebIdentity`, on every plan and apply. **The results, secret key and session \
    token included, are stored in the Terraform state and in saved plan files.** With Terraform \
    >= 1.10 or OpenTofu >= 1.11, use the ephemeral resource `gcpfed_credentials` instead: the \
    same arguments and results, never stored. On older engines, the \
    `terraform-provider-gcpfed credential-process` helper is the state-free way to give AWS tools \
    these credentials.";

const EPHEMERAL_DESCRIPTION: &str = "Exchanges a Google-signed ID token (from the GCE metadata \
    server, or given in `web_identity_token`) for temporary AWS credentials through STS \
    `AssumeRoleWithWebIdentity`, each time Terraform opens it (every plan and apply). Requires \
    Terraform >= 1.10 (OpenTofu >= 1.11). **Nothing of it is written to the state or to plan \
    files**: use its results where ephemeral values are accepted, such as the `access_key`, \
    `secret_key` and `token` of a `provider` block. The same arguments and results as the data \
    source `gcpfed_credentials`, which serves older engines.";

/// The schema of the data source or of the ephemeral resource.
pub fn schema(kind: Kind) -> Schema {
    use AttributeConstraint::{Computed, Optional, OptionalComputed, Required};
    use AttributeType::String as S;
    let (description, token_note) = match kind {
        Kind::DataSource => (DATA_SOURCE_DESCRIPTION, " Stored in state."),
        Kind::Ephemeral => (EPHEMERAL_DESCRIPTION, ""),
    };
    // Ephemeral values are meant to feed secrets onward, so every credential part is hidden;
    // the data source keeps the key ID visible, as it always has (it is not a secret by itself).
    let key_id = attribute(S, Computed, "Temporary access key ID.");
    let key_id = match kind {
        Kind::DataSource => key_id,
        Kind::Ephemeral => sensitive(key_id),
    };
    Schema {
        version: 1,
        block: Block {
            version: 1,
            description: Description::markdown(description),
            attributes: map! {
                "role_arn" => attribute(S, Required,
                    "ARN of the IAM role to assume (for example `gcpfed_role.x.arn`). Its trust policy must \
                     name `accounts.google.com` and match the token's `azp`, `aud` and `sub`."),
                "audience" => attribute(S, Required,
                    "Audience requested from the metadata server; it becomes the token's `aud` claim, which \
                     AWS compares with `accounts.google.com:oaud`. Must equal the role's `audience`."),
                "service_account" => attribute(S, OptionalComputed,
                    "Service account whose token is requested: `default` (the account attached to the VM, \
                     node pool or Cloud Run service) or a service-account email. Default `default`. \
                     Ignored when `web_identity_token` is set."),
                "session_name" => attribute(S, OptionalComputed,
                    "Role session name (2–64 characters of `[\\w+=,.@-]`); it appears in CloudTrail and in \
                     `assumed_role_arn`. Default: the token's `sub` (the service account's unique ID)."),
                "duration_seconds" => attribute(AttributeType::Number, OptionalComputed,
                    "Lifetime of the credentials in seconds, 900–43200 and at most the role's \
                     `max_session_duration`. Default 3600."),
                "policy" => attribute(S, Optional,
                    "Session policy (JSON) that further restricts the credentials."),
                "policy_arns" => attribute(AttributeType::Set(Box::new(S)), Optional,
                    "ARNs of up to 10 managed policies used as session policies."),
                "web_identity_token" => sensitive(attribute(S, Optional,
                    &format!("Google ID token to use instead of asking the metadata server (for example \
                     `google_service_account_id_token.x.id_token`).{token_note}"))),
                "impersonate_service_account" => attribute(S, Optional,
                    "Email or numeric unique ID of a service account to impersonate: the ID token is \
                     minted for it by the IAM Credentials API's `generateIdToken` (its `azp` and `sub` \
                     are then that account's unique ID), authorised by the metadata server's access \
                     token of `service_account`, which needs `roles/iam.serviceAccountTokenCreator` \
                     on it (or on the first of `delegates`). The provider's \
                     `iam_credentials_custom_endpoint` chooses the API's URL."),
                "delegates" => attribute(AttributeType::List(Box::new(S)), Optional,
                    "Delegation chain to `impersonate_service_account`, in order: `service_account` \
                     can impersonate the first, each the next, and the last one \
                     `impersonate_service_account` (each link needs \
                     `roles/iam.serviceAccountTokenCreator`). Emails or unique IDs, optionally \
                     written `projects/-/serviceAccounts/…` (the form they are sent in)."),
                "access_key_id" => key_id,
                "secret_access_key" => sensitive(attribute(S, Computed, "Temporary secret access key.")),
                "session_token" => sensitive(attribute(S, Computed, "Session token.")),
                "expiration" => attribute(S, Computed,
                    "When the credentials expire, RFC 3339 in UTC (`2026-12-01T11:00:00Z`)."),
                "assumed_role_arn" => attribute(S, Computed,
                    "ARN of the assumed-role session (`arn:aws:sts::<account>:assumed-role/<role>/<session>`)."),
                "assumed_role_id" => attribute(S, Computed,
                    "Unique ID of the assumed-role session (`<role id>:<session>`)."),
                "subject" => attribute(S, Computed,
                    "The token's `sub` claim: the service account's numeric unique ID."),
                "email" => attribute(S, Computed,
                    "The token's `email` claim: the service account's email (tokens requested with \
                     format=full carry it)."),
                "credential_process_json" => sensitive(attribute(S, Computed,
                    "The credentials as the AWS `credential_process` Version 1 JSON document \
                     (`Version`, `AccessKeyId`, `SecretAccessKey`, `SessionToken`, `Expiration`).")),
            },
            ..Default::default()
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tf_provider::schema::Attribute;

    fn names(kind: Kind, pick: impl Fn(&Attribute) -> bool) -> BTreeSet<String> {
        schema(kind)
            .block
            .attributes
            .into_iter()
            .filter(|(_, a)| pick(a))
            .map(|(k, _)| k)
            .collect()
    }

    fn set(items: &[&str]) -> BTreeSet<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn both_kinds_have_the_same_attributes_each_typed_and_described() {
        let expected = set(&[
            "role_arn",
            "audience",
            "service_account",
            "session_name",
            "duration_seconds",
            "policy",
            "policy_arns",
            "web_identity_token",
            "impersonate_service_account",
            "delegates",
            "access_key_id",
            "secret_access_key",
            "session_token",
            "expiration",
            "assumed_role_arn",
            "assumed_role_id",
            "subject",
            "email",
            "credential_process_json",
        ]);
        for kind in [Kind::DataSource, Kind::Ephemeral] {
            assert_eq!(names(kind, |_| true), expected, "{kind:?}");
            let s = schema(kind);
            let attrs = &s.block.attributes;
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

    #[test]
    fn secrets_are_sensitive_and_the_ephemeral_key_id_too() {
        let secrets = [
            "credential_process_json",
            "secret_access_key",
            "session_token",
            "web_identity_token",
        ];
        assert_eq!(names(Kind::DataSource, |a| a.sensitive), set(&secrets));
        let mut ephemeral = secrets.to_vec();
        ephemeral.push("access_key_id");
        assert_eq!(names(Kind::Ephemeral, |a| a.sensitive), set(&ephemeral));
    }

    #[test]
    fn descriptions_say_where_the_results_go_and_which_engines_have_it() {
        let data = schema(Kind::DataSource).block.description.content;
        assert!(data.contains("stored in the Terraform state"), "{data}");
        assert!(
            data.contains("ephemeral resource `gcpfed_credentials`"),
            "{data}"
        );
        assert!(
            data.contains("Terraform >= 1.10 or OpenTofu >= 1.11"),
            "{data}"
        );
        let eph = schema(Kind::Ephemeral).block.description.content;
        assert!(eph.contains("Requires Terraform >= 1.10"), "{eph}");
        assert!(
            eph.contains("Nothing of it is written to the state"),
            "{eph}"
        );
        let token = |k| {
            schema(k).block.attributes["web_identity_token"]
                .description
                .content
                .clone()
        };
        assert!(token(Kind::DataSource).contains("Stored in state."));
        assert!(!token(Kind::Ephemeral).contains("state"));
    }
}
