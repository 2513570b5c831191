//! Owns what one exchange asks STS for: the role, the audience the token is requested for, the
//! service account (and the account it impersonates, through which chain), and the session's
//! options. The one struct that every caller fills (the data
//! source, the ephemeral resource, `assume_role_with_gcp_identity`, `credential-process`), that
//! [`super::ExchangeRequest`] carries, and that the credential-process cache keys its entries by
//! (serialised flat, field by field, in this order: the cache's pinned key layout).

use serde::{Deserialize, Serialize};

/// The parameters of one exchange, checked by the caller ([`crate::validate`]) before use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExchangeParams {
    pub role_arn: String,
    /// Requested from the metadata server; the token's `aud`, the role's
    /// `accounts.google.com:oaud`.
    pub audience: String,
    /// Metadata alias (`default`) or service-account email.
    pub service_account: String,
    /// Explicit session name (validated, never rewritten); `None` derives it from the token.
    pub session_name: Option<String>,
    /// `None`: STS's default.
    pub duration_seconds: Option<i32>,
    /// Session policy JSON, as given.
    pub policy: Option<String>,
    /// Managed session policy ARNs.
    pub policy_arns: Vec<String>,
    /// The account whose token is minted through the IAM Credentials API (email or unique ID);
    /// `None`: the token is `service_account`'s own. Left out of the serialised form when
    /// `None`, so that the cache keys of exchanges without impersonation stay as they were.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub impersonate_service_account: Option<String>,
    /// The delegation chain, normalised to `projects/-/serviceAccounts/…`, the runner's end
    /// first ([`crate::validate::delegates`]). Left out when empty, as above.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub delegates: Vec<String>,
}

impl ExchangeParams {
    /// The role and audience with the defaults of everything else: the `default` service
    /// account, a session name from the token, STS's duration, no session policy.
    pub fn new(role_arn: impl Into<String>, audience: impl Into<String>) -> Self {
        ExchangeParams {
            role_arn: role_arn.into(),
            audience: audience.into(),
            service_account: crate::validate::DEFAULT_SERVICE_ACCOUNT.to_owned(),
            session_name: None,
            duration_seconds: None,
            policy: None,
            policy_arns: Vec::new(),
            impersonate_service_account: None,
            delegates: Vec::new(),
        }
    }
}
