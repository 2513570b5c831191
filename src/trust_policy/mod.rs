//! Owns the role's trust policy as pure functions, no I/O: rendering the gcpfed trust policy
//! from Google inputs (here), reading policy documents as IAM returns them and deciding whether
//! two mean the same ([`document`]), recognising a gcpfed trust policy again ([`parse`]), and
//! explaining an STS denial by comparing a token's claims with a trust policy ([`denial`]), and
//! grading any trust Google identities are given, however it is written ([`audit`], many roles
//! at once in [`audit_report`]). Both
//! [`parse`] and [`audit`] read statements through [`statement`], the one reading of principals,
//! actions and condition tests.

use std::collections::BTreeSet;

use crate::validate::{self, Invalid};

pub mod audit;
pub mod audit_report;
pub mod denial;
pub mod document;
pub mod parse;
pub mod statement;

pub use denial::{check_trust_policy, claim_lines, KeyMismatch, TrustFinding};
pub use document::{decode_document, normalize_document, policies_equivalent};
pub use parse::{parse_trust_policy, ShapeMismatch};

/// The Federated principal Google identities use with `AssumeRoleWithWebIdentity`.
pub const GOOGLE_PRINCIPAL: &str = "accounts.google.com";
/// The only policy language version the provider renders.
pub const POLICY_VERSION: &str = "2012-10-17";
/// The action a web identity trust policy grants.
pub const ASSUME_ACTION: &str = "sts:AssumeRoleWithWebIdentity";
/// Condition key compared with the token's `azp` (the service account's unique ID).
pub const KEY_AUD: &str = "accounts.google.com:aud";
/// Condition key compared with the token's `aud` (the audience the workload asked for).
pub const KEY_OAUD: &str = "accounts.google.com:oaud";
/// Condition key compared with the token's `sub` (the service account's unique ID).
pub const KEY_SUB: &str = "accounts.google.com:sub";

/// The Google inputs a gcpfed trust policy is rendered from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustInputs {
    audience: String,
    unique_ids: BTreeSet<String>,
}

/// Why a [`TrustInputs`] could not be built: rendering one would open the role to more identities
/// than intended (or to none), so the provider refuses instead. The rules are
/// [`crate::validate`]'s, the same the schema checks apply, enforced here too so that no caller
/// of this public API (the function, import, a future one) can skip them.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InputError {
    #[error("{}", .0.detail)]
    Audience(Invalid),
    #[error("{}", .0.detail)]
    UniqueIds(Invalid),
}

impl TrustInputs {
    /// Builds the inputs, refusing what [`validate::audience`], [`validate::unique_id`] and
    /// [`validate::unique_id_count`] refuse.
    pub fn new<I, S>(audience: impl Into<String>, unique_ids: I) -> Result<Self, InputError>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let audience = audience.into();
        validate::audience(&audience).map_err(InputError::Audience)?;
        let unique_ids: BTreeSet<String> = unique_ids.into_iter().map(Into::into).collect();
        validate::unique_id_count(unique_ids.len()).map_err(InputError::UniqueIds)?;
        for id in &unique_ids {
            validate::unique_id(id).map_err(InputError::UniqueIds)?;
        }
        Ok(Self {
            audience,
            unique_ids,
        })
    }

    pub fn audience(&self) -> &str {
        &self.audience
    }

    pub fn unique_ids(&self) -> &BTreeSet<String> {
        &self.unique_ids
    }

    /// The trust policy exactly as INTERFACE.md shows it: compact JSON, keys in the documented
    /// order, one ID as a string and several as a sorted list.
    pub fn render(&self) -> String {
        let ids = if self.unique_ids.len() == 1 {
            json_string(self.unique_ids.iter().next().expect("one id"))
        } else {
            let items: Vec<String> = self.unique_ids.iter().map(|s| json_string(s)).collect();
            format!("[{}]", items.join(","))
        };
        let audience = json_string(&self.audience);
        format!(
            concat!(
                r#"{{"Version":"{version}","Statement":[{{"Effect":"Allow","#,
                r#""Principal":{{"Federated":"{principal}"}},"Action":"{action}","#,
                r#""Condition":{{"StringEquals":{{"{aud}":{ids},"{oaud}":{audience},"{sub}":{ids}}}}}}}]}}"#
            ),
            version = POLICY_VERSION,
            principal = GOOGLE_PRINCIPAL,
            action = ASSUME_ACTION,
            aud = KEY_AUD,
            oaud = KEY_OAUD,
            sub = KEY_SUB,
            ids = ids,
            audience = audience,
        )
    }
}

/// `s` as a JSON string literal, quotes and escapes included.
fn json_string(s: &str) -> String {
    serde_json::Value::String(s.to_owned()).to_string()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};
    use serde_json::Value;

    pub(crate) const SA1: &str = "104857600000000000001";
    pub(crate) const SA2: &str = "104857600000000000002";

    pub(crate) fn inputs(aud: &str, ids: &[&str]) -> TrustInputs {
        TrustInputs::new(aud, ids.iter().copied()).unwrap()
    }

    /// How IAM hands documents back (RFC 3986 percent-encoding of everything but unreserved).
    pub(crate) fn iam_encode(doc: &str) -> String {
        utf8_percent_encode(doc, NON_ALPHANUMERIC).to_string()
    }

    #[test]
    fn renders_one_id_as_a_string_exactly_as_the_contract_shows() {
        let got = inputs("sts.amazonaws.com/gcpfed", &[SA1]).render();
        let want = concat!(
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","#,
            r#""Principal":{"Federated":"accounts.google.com"},"#,
            r#""Action":"sts:AssumeRoleWithWebIdentity","#,
            r#""Condition":{"StringEquals":{"#,
            r#""accounts.google.com:aud":"104857600000000000001","#,
            r#""accounts.google.com:oaud":"sts.amazonaws.com/gcpfed","#,
            r#""accounts.google.com:sub":"104857600000000000001"}}}]}"#
        );
        assert_eq!(got, want);
    }

    #[test]
    fn renders_several_ids_as_a_sorted_list() {
        let got = inputs("a", &[SA2, SA1, SA2]).render();
        assert!(got.contains(&format!(
            r#""accounts.google.com:aud":["{SA1}","{SA2}"],"accounts.google.com:oaud":"a","accounts.google.com:sub":["{SA1}","{SA2}"]"#
        )), "{got}");
    }

    #[test]
    fn render_escapes_the_audience() {
        let got = inputs(r#"we"ird\aud"#, &[SA1]).render();
        let parsed: Value = serde_json::from_str(&got).unwrap();
        assert_eq!(
            parsed["Statement"][0]["Condition"]["StringEquals"][KEY_OAUD],
            r#"we"ird\aud"#
        );
    }

    #[test]
    fn inputs_refuse_what_would_open_the_role() {
        for aud in [
            "",
            " a",
            "${accounts.google.com:oaud}",
            "a*",
            "a?",
            "a\u{1}",
        ] {
            assert!(
                matches!(TrustInputs::new(aud, [SA1]), Err(InputError::Audience(_))),
                "{aud:?}"
            );
        }
        for ids in [
            vec![],
            vec![""],
            vec!["abc"],
            vec![SA1, "1 2"],
            vec!["ci@p.iam"],
        ] {
            assert!(
                matches!(
                    TrustInputs::new("a", ids.clone()),
                    Err(InputError::UniqueIds(_))
                ),
                "{ids:?}"
            );
        }
        // Any number of digits is accepted: the length is a warning of the role's, not a rule.
        assert!(TrustInputs::new("a", ["1048576"]).is_ok());
    }
}
