//! Explaining an STS denial, as pure functions: which trust-policy key AWS compared with which
//! token claim, and which of them did not match. The exchange reads the role's trust policy from
//! IAM and the claims from the token; everything it says about the denial is decided here.

use serde_json::Value;

use super::document::decode_document;
use super::parse::parse_trust_policy;
use super::{GOOGLE_PRINCIPAL, KEY_AUD, KEY_OAUD, KEY_SUB};
use crate::claims::Claims;

/// The claim mapping AWS applies to Google tokens (INTERFACE.md): each condition key and the
/// token claim it is compared with, in the order messages list them.
pub const CLAIM_MAPPING: [(&str, &str); 3] =
    [(KEY_AUD, "azp"), (KEY_OAUD, "aud"), (KEY_SUB, "sub")];

/// One trust-policy key whose allowed values do not include the token's claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyMismatch {
    pub key: &'static str,
    pub claim: &'static str,
    pub token_value: Option<String>,
    pub allowed: Vec<String>,
}

/// What reading the role taught us about a denial.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrustFinding {
    /// These keys do not match.
    Mismatches(Vec<KeyMismatch>),
    /// All three keys match: the denial has another cause.
    KeysMatch,
    /// The trust policy has no Allow statement for `accounts.google.com`.
    NoGoogleStatement,
    /// The role could not be read (no AWS credentials to read it with, or IAM refused).
    Unavailable(String),
}

/// The token's values of `claim` (`aud` may hold several).
fn claim_values<'c>(claims: &'c Claims, claim: &str) -> Vec<&'c str> {
    match claim {
        "azp" => claims.azp.as_deref().into_iter().collect(),
        "aud" => claims.aud.iter().map(String::as_str).collect(),
        "sub" => claims.sub.as_deref().into_iter().collect(),
        _ => Vec::new(),
    }
}

/// Lines that put each claim beside the trust-policy key AWS compares it with. Indented so that
/// Terraform prints them as they are.
pub fn claim_lines(claims: &Claims) -> String {
    let width = CLAIM_MAPPING
        .iter()
        .map(|(key, _)| key.len())
        .max()
        .unwrap_or(0);
    CLAIM_MAPPING
        .iter()
        .map(|(key, claim)| {
            let values = claim_values(claims, claim);
            let shown = if values.is_empty() {
                "(absent)".to_owned()
            } else {
                format!("\"{}\"", values.join(", "))
            };
            format!("  {key:<width$} is compared with the token's {claim} = {shown}")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Compares the token's claims with the `StringEquals` values of the trust policy for the three
/// Google keys. A gcpfed-rendered policy is read with [`parse_trust_policy`]; any other shape
/// through a plain lookup across its Allow statements for `accounts.google.com`.
pub fn check_trust_policy(document: &str, claims: &Claims) -> TrustFinding {
    // (key, claim, values the policy allows); a key the policy does not constrain is left out.
    let allowed: Vec<(&'static str, &'static str, Vec<String>)> = match parse_trust_policy(document)
    {
        Ok(inputs) => {
            let ids: Vec<String> = inputs.unique_ids().iter().cloned().collect();
            vec![
                (KEY_AUD, "azp", ids.clone()),
                (KEY_OAUD, "aud", vec![inputs.audience().to_owned()]),
                (KEY_SUB, "sub", ids),
            ]
        }
        Err(_) => match lookup_string_equals(document) {
            None => return TrustFinding::NoGoogleStatement,
            Some(found) => CLAIM_MAPPING
                .iter()
                .filter_map(|&(key, claim)| {
                    found
                        .iter()
                        .find(|(k, _)| k.eq_ignore_ascii_case(key))
                        .map(|(_, values)| (key, claim, values.clone()))
                })
                .collect(),
        },
    };
    let mismatches: Vec<KeyMismatch> = allowed
        .into_iter()
        .filter_map(|(key, claim, values)| {
            let token = claim_values(claims, claim);
            let matches = token.iter().any(|t| values.iter().any(|v| v == t));
            (!matches).then(|| KeyMismatch {
                key,
                claim,
                token_value: token.first().map(|v| (*v).to_owned()),
                allowed: values,
            })
        })
        .collect();
    if mismatches.is_empty() {
        TrustFinding::KeysMatch
    } else {
        TrustFinding::Mismatches(mismatches)
    }
}

/// `StringEquals` values per condition key across the Allow statements whose Federated principal
/// is `accounts.google.com`; `None` when there is no such statement.
fn lookup_string_equals(document: &str) -> Option<Vec<(String, Vec<String>)>> {
    let decoded = decode_document(document);
    let doc: Value = serde_json::from_str(&decoded).ok()?;
    let statements: Vec<&Value> = match doc.get("Statement")? {
        Value::Array(a) => a.iter().collect(),
        other => vec![other],
    };
    let strings = |v: &Value| -> Vec<String> {
        match v {
            Value::String(s) => vec![s.clone()],
            Value::Array(a) => a
                .iter()
                .filter_map(|x| x.as_str().map(str::to_owned))
                .collect(),
            _ => Vec::new(),
        }
    };
    let mut found: Vec<(String, Vec<String>)> = Vec::new();
    let mut any = false;
    for st in statements {
        if st.get("Effect").and_then(|e| e.as_str()) != Some("Allow") {
            continue;
        }
        let federated = st
            .get("Principal")
            .and_then(|p| p.get("Federated"))
            .map(strings)
            .unwrap_or_default();
        if !federated.iter().any(|f| f == GOOGLE_PRINCIPAL) {
            continue;
        }
        any = true;
        let Some(cond) = st
            .get("Condition")
            .and_then(|c| c.get("StringEquals"))
            .and_then(|c| c.as_object())
        else {
            continue;
        };
        for (k, v) in cond {
            match found.iter_mut().find(|(fk, _)| fk.eq_ignore_ascii_case(k)) {
                Some((_, vals)) => vals.extend(strings(v)),
                None => found.push((k.clone(), strings(v))),
            }
        }
    }
    any.then_some(found)
}

impl TrustFinding {
    /// What the finding means for the user and what to do next, as the closing paragraph of a
    /// denial message.
    pub fn explanation(&self) -> String {
        match self {
            TrustFinding::Mismatches(list) => {
                let mut out = String::new();
                for m in list {
                    let token_value = m
                        .token_value
                        .as_deref()
                        .map(|v| format!("\"{v}\""))
                        .unwrap_or_else(|| "absent".to_owned());
                    out.push_str(&format!(
                        "  Mismatch: {} allows {} but the token's {} is {}.\n",
                        m.key,
                        list_text(&m.allowed),
                        m.claim,
                        token_value
                    ));
                }
                // The fix names inputs, which only the exchange's caller can spell
                // (`crate::exchange::caller`): the exchange's message adds it.
                out
            }
            TrustFinding::KeysMatch => {
                "The trust policy's accounts.google.com:aud, :oaud and :sub conditions all match this token, \
                 so the denial has another cause: check the statement's Principal (Federated \
                 \"accounts.google.com\"), its Action (sts:AssumeRoleWithWebIdentity), other conditions, \
                 and any Deny statement."
                    .to_owned()
            }
            TrustFinding::NoGoogleStatement => {
                "The role's trust policy has no Allow statement for the Federated principal \
                 \"accounts.google.com\" with StringEquals on these keys: this role does not trust Google \
                 identities (manage it with gcpfed_role)."
                    .to_owned()
            }
            TrustFinding::Unavailable(why) => format!(
                "Compare these values with the role's trust policy, for example with `aws iam get-role` \
                 (it could not be read here to name the mismatched key: {why})."
            ),
        }
    }
}

/// Allowed values as a message shows them: `nothing`, `"one"`, or `["a", "b"]`.
fn list_text(values: &[String]) -> String {
    match values {
        [] => "nothing".to_owned(),
        [one] => format!("\"{one}\""),
        many => format!(
            "[{}]",
            many.iter()
                .map(|v| format!("\"{v}\""))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trust_policy::TrustInputs;

    const SA_ID: &str = "104857600000000000001";
    const OTHER_ID: &str = "113000000000000000099";

    fn claims(aud: &str, azp: &str, sub: &str) -> Claims {
        Claims {
            iss: Some("https://accounts.google.com".into()),
            azp: Some(azp.into()),
            aud: vec![aud.into()],
            sub: Some(sub.into()),
            ..Claims::default()
        }
    }

    fn gcpfed_trust(aud: &str, id: &str) -> String {
        TrustInputs::new(aud, [id]).unwrap().render()
    }

    #[test]
    fn claim_lines_put_each_claim_beside_its_key() {
        let lines = claim_lines(&claims("https://sts.example/aud", SA_ID, SA_ID));
        assert!(lines.contains(
            "accounts.google.com:aud  is compared with the token's azp = \"104857600000000000001\""
        ));
        assert!(lines.contains(
            "accounts.google.com:oaud is compared with the token's aud = \"https://sts.example/aud\""
        ));
        assert!(lines.contains("accounts.google.com:sub  is compared with the token's sub"));
        assert!(lines.lines().all(|l| l.starts_with("  ")));
    }

    #[test]
    fn claim_lines_show_absent_claims_and_every_audience() {
        let c = Claims {
            aud: vec!["a".into(), "b".into()],
            ..Claims::default()
        };
        let lines = claim_lines(&c);
        assert!(lines.contains("sub = (absent)"), "{lines}");
        assert!(lines.contains("azp = (absent)"), "{lines}");
        assert!(lines.contains("aud = \"a, b\""), "{lines}");
    }

    #[test]
    fn trust_check_names_the_mismatched_key() {
        let doc = gcpfed_trust("aws-ci", SA_ID);
        let good = claims("aws-ci", SA_ID, SA_ID);
        assert_eq!(check_trust_policy(&doc, &good), TrustFinding::KeysMatch);

        let wrong_aud = claims("other-aud", SA_ID, SA_ID);
        match check_trust_policy(&doc, &wrong_aud) {
            TrustFinding::Mismatches(m) => {
                assert_eq!(m.len(), 1);
                assert_eq!(m[0].key, KEY_OAUD);
                assert_eq!(m[0].claim, "aud");
                assert_eq!(m[0].token_value.as_deref(), Some("other-aud"));
                assert_eq!(m[0].allowed, vec!["aws-ci".to_owned()]);
            }
            other => panic!("{other:?}"),
        }

        let foreign = claims("aws-ci", OTHER_ID, OTHER_ID);
        match check_trust_policy(&doc, &foreign) {
            TrustFinding::Mismatches(m) => {
                let keys: Vec<_> = m.iter().map(|x| x.key).collect();
                assert_eq!(keys, vec![KEY_AUD, KEY_SUB]);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn trust_check_reads_hand_written_policies_too() {
        // Two statements, lists, an extra condition: not gcpfed's shape.
        let doc = format!(
            r#"{{"Version":"2012-10-17","Statement":[
              {{"Effect":"Allow","Principal":{{"Service":"ec2.amazonaws.com"}},"Action":"sts:AssumeRole"}},
              {{"Effect":"Allow","Principal":{{"Federated":["accounts.google.com"]}},"Action":"sts:AssumeRoleWithWebIdentity",
                "Condition":{{"StringEquals":{{"accounts.google.com:oaud":["a1","a2"],"accounts.google.com:sub":"{SA_ID}"}},
                              "Bool":{{"aws:SecureTransport":"true"}}}}}}]}}"#
        );
        let c = claims("a3", SA_ID, SA_ID);
        match check_trust_policy(&doc, &c) {
            TrustFinding::Mismatches(m) => {
                assert_eq!(m.len(), 1);
                assert_eq!(m[0].key, KEY_OAUD);
                assert_eq!(m[0].allowed, vec!["a1".to_owned(), "a2".to_owned()]);
            }
            other => panic!("{other:?}"),
        }
        let c = claims("a2", OTHER_ID, SA_ID);
        // azp is not constrained by this policy, so it is not a mismatch.
        assert_eq!(check_trust_policy(&doc, &c), TrustFinding::KeysMatch);

        let ec2_only = r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}}"#;
        assert_eq!(
            check_trust_policy(ec2_only, &c),
            TrustFinding::NoGoogleStatement
        );
    }

    #[test]
    fn explanations_list_mismatches_and_say_what_to_fix() {
        let finding = TrustFinding::Mismatches(vec![
            KeyMismatch {
                key: KEY_OAUD,
                claim: "aud",
                token_value: Some("wrong".into()),
                allowed: vec!["aws-ci".into()],
            },
            KeyMismatch {
                key: KEY_SUB,
                claim: "sub",
                token_value: None,
                allowed: vec!["1".into(), "2".into()],
            },
        ]);
        let text = finding.explanation();
        assert!(text.contains(
            "  Mismatch: accounts.google.com:oaud allows \"aws-ci\" but the token's aud is \"wrong\".\n"
        ));
        assert!(text.contains(
            "  Mismatch: accounts.google.com:sub allows [\"1\", \"2\"] but the token's sub is absent.\n"
        ));
        assert!(TrustFinding::Unavailable("IAM refused".into())
            .explanation()
            .contains("could not be read here to name the mismatched key: IAM refused"));
        assert!(TrustFinding::NoGoogleStatement
            .explanation()
            .contains("does not trust Google identities"));
        assert!(TrustFinding::KeysMatch
            .explanation()
            .contains("the denial has another cause"));
        assert_eq!(list_text(&[]), "nothing");
    }
}
