//! The provider block's schema; its descriptions are the single source of the provider's docs.

use std::collections::HashMap;

use tf_provider::schema::{
    Attribute, AttributeConstraint, AttributeType, Block, Description, NestedBlock, Schema,
};

use crate::provider::config::ASSUME_ROLE_BLOCK;
use crate::schema::{attribute, sensitive};

fn string_attribute(description: &str, constraint: AttributeConstraint) -> Attribute {
    attribute(AttributeType::String, constraint, description)
}

/// The provider block's schema.
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
        ("iam_credentials_custom_endpoint", string_attribute(
            "Base URL of Google's IAM Credentials API, which mints the ID token when \
             `impersonate_service_account` is set (as terraform-provider-google names it). Falls \
             back to `GOOGLE_IAM_CREDENTIALS_CUSTOM_ENDPOINT`, then \
             `https://iamcredentials.googleapis.com/v1/`.",
            Optional)),
        ("max_retries", attribute(
            AttributeType::Number,
            Optional,
            "Retry budget (0–100) for throttling and transient faults of AWS and the metadata \
             server. Default `5`.")),
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
            ("duration_seconds", attribute(
                AttributeType::Number,
                Optional,
                "Session duration, 900–43200 and at most the role's maximum. Default `3600`; \
                 the provider renews the credentials before they expire.")),
            ("impersonate_service_account", string_attribute(
                "Email or unique ID of a service account to impersonate: its ID token is minted \
                 by the IAM Credentials API (`iam_credentials_custom_endpoint`), authorised by \
                 `service_account`'s access token, and the role must trust that account's unique \
                 ID. `service_account` needs `roles/iam.serviceAccountTokenCreator` on it.",
                Optional)),
            ("delegates", attribute(
                AttributeType::List(Box::new(AttributeType::String)),
                Optional,
                "Delegation chain to `impersonate_service_account`, in order: `service_account` \
                 can impersonate the first, each the next, the last one \
                 `impersonate_service_account`. Emails or unique IDs, optionally written \
                 `projects/-/serviceAccounts/…`.")),
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

#[cfg(test)]
mod tests {
    use super::*;

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
            ("impersonate_service_account", AttributeConstraint::Optional),
            ("delegates", AttributeConstraint::Optional),
        ] {
            let attribute = block
                .attributes
                .get(name)
                .unwrap_or_else(|| panic!("{name}"));
            assert_eq!(attribute.constraint, constraint, "{name}");
        }
        assert_eq!(block.attributes.len(), 6);
        assert!(schema
            .block
            .attributes
            .contains_key("iam_credentials_custom_endpoint"));
    }
}
