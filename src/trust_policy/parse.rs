//! Recognising a gcpfed trust policy in what IAM returns, for import and drift: the inputs it
//! was rendered from, or a [`ShapeMismatch`] that says what differs.

use std::collections::BTreeSet;
use std::fmt;

use serde_json::Value;

use super::document::decode_document;
use super::statement::{condition_tests, single_string, strings, GoogleKey};
use super::{
    json_string, TrustInputs, ASSUME_ACTION, GOOGLE_PRINCIPAL, KEY_AUD, KEY_OAUD, KEY_SUB,
    POLICY_VERSION,
};
use crate::validate::repeated_key;

/// What makes a document something other than a gcpfed trust policy. Each variant's message says
/// what differs, in terms a user can check against the role in the IAM console.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShapeMismatch {
    NotJson(String),
    NotObject,
    Version(Option<String>),
    ExtraTopLevelKey(String),
    NoStatement,
    StatementCount(usize),
    StatementNotObject,
    ExtraStatementKey(String),
    Effect(String),
    Principal(String),
    Action(String),
    NoCondition,
    Operators(Vec<String>),
    MissingConditionKey(&'static str),
    ExtraConditionKey(String),
    ConditionValue {
        key: &'static str,
        found: String,
    },
    AudSubDiffer {
        aud: Vec<String>,
        sub: Vec<String>,
    },
    SeveralAudiences(Vec<String>),
    /// A key twice in one object: which of the two IAM reads is not ours to guess.
    RepeatedKey(String),
    /// The audience or an ID breaks a rule of [`crate::validate`] (see [`TrustInputs::new`]).
    Inputs(String),
}

impl fmt::Display for ShapeMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotJson(e) => write!(f, "the trust policy is not valid JSON ({e})"),
            Self::NotObject => f.write_str("the trust policy is not a JSON object"),
            Self::Version(None) => write!(f, "the policy has no Version (expected \"{POLICY_VERSION}\")"),
            Self::Version(Some(v)) => write!(f, "the policy Version is {v} (expected \"{POLICY_VERSION}\")"),
            Self::ExtraTopLevelKey(k) => write!(f, "the policy has a top-level key {k:?} that gcpfed does not render"),
            Self::NoStatement => f.write_str("the policy has no Statement"),
            Self::StatementCount(n) => write!(f, "the policy has {n} statements (gcpfed renders exactly one)"),
            Self::StatementNotObject => f.write_str("the statement is not a JSON object"),
            Self::ExtraStatementKey(k) => write!(f, "the statement has a key {k:?} that gcpfed does not render"),
            Self::Effect(e) => write!(f, "the statement's Effect is {e} (expected \"Allow\")"),
            Self::Principal(p) => write!(f, "the statement's Principal is {p} (expected {{\"Federated\":\"{GOOGLE_PRINCIPAL}\"}})"),
            Self::Action(a) => write!(f, "the statement's Action is {a} (expected \"{ASSUME_ACTION}\")"),
            Self::NoCondition => write!(f, "the statement has no Condition: it lets any Google identity assume the role (gcpfed requires StringEquals on {KEY_AUD}, {KEY_OAUD} and {KEY_SUB})"),
            Self::Operators(ops) => write!(f, "the Condition uses {} (gcpfed renders exactly one StringEquals block)", ops.join(", ")),
            Self::MissingConditionKey(k) => write!(f, "the StringEquals condition lacks {k}"),
            Self::ExtraConditionKey(k) => write!(f, "the StringEquals condition has a key {k:?} that gcpfed does not render"),
            Self::ConditionValue { key, found } => write!(f, "the value of {key} is {found} (expected a non-empty string or list of strings; for {KEY_AUD} and {KEY_SUB}, numeric unique IDs)"),
            Self::AudSubDiffer { aud, sub } => write!(f, "{KEY_AUD} lists {aud:?} but {KEY_SUB} lists {sub:?} (gcpfed renders the same unique IDs in both)"),
            Self::SeveralAudiences(a) => write!(f, "{KEY_OAUD} lists several audiences {a:?} (gcpfed manages exactly one)"),
            Self::RepeatedKey(r) => write!(f, "in the trust policy, {r}, so which value IAM applies is ambiguous (gcpfed renders every key once)"),
            Self::Inputs(why) => write!(f, "the trust policy's conditions are not ones gcpfed renders: {why}"),
        }
    }
}

impl std::error::Error for ShapeMismatch {}

/// Recognises a gcpfed trust policy in a document returned by IAM (URL-encoded or not, keys in any
/// order, any whitespace, values as strings or lists) and returns the inputs it was rendered
/// from. Anything a rendered policy would not contain is reported as a [`ShapeMismatch`].
///
/// Accepting a document here means `policies_equivalent(doc, &inputs.render())` holds.
pub fn parse_trust_policy(raw: &str) -> Result<TrustInputs, ShapeMismatch> {
    let decoded = decode_document(raw);
    let doc: Value =
        serde_json::from_str(&decoded).map_err(|e| ShapeMismatch::NotJson(e.to_string()))?;
    if let Some(r) = repeated_key(&decoded) {
        return Err(ShapeMismatch::RepeatedKey(r.to_string()));
    }
    let Value::Object(top) = doc else {
        return Err(ShapeMismatch::NotObject);
    };
    match top.get("Version") {
        Some(Value::String(v)) if v == POLICY_VERSION => {}
        Some(other) => return Err(ShapeMismatch::Version(Some(other.to_string()))),
        None => return Err(ShapeMismatch::Version(None)),
    }
    if let Some(extra) = top.keys().find(|k| *k != "Version" && *k != "Statement") {
        return Err(ShapeMismatch::ExtraTopLevelKey(extra.clone()));
    }
    let stmt = match top.get("Statement") {
        None => return Err(ShapeMismatch::NoStatement),
        Some(Value::Array(items)) if items.len() == 1 => &items[0],
        Some(Value::Array(items)) => return Err(ShapeMismatch::StatementCount(items.len())),
        Some(single) => single,
    };
    let Value::Object(stmt) = stmt else {
        return Err(ShapeMismatch::StatementNotObject);
    };
    const STMT_KEYS: [&str; 4] = ["Effect", "Principal", "Action", "Condition"];
    if let Some(extra) = stmt.keys().find(|k| !STMT_KEYS.contains(&k.as_str())) {
        return Err(ShapeMismatch::ExtraStatementKey(extra.clone()));
    }
    match stmt.get("Effect") {
        Some(Value::String(e)) if e == "Allow" => {}
        other => return Err(ShapeMismatch::Effect(show(other))),
    }
    // Exactly as rendered: the one Federated principal, spelled in lower case.
    let principal_ok = match stmt.get("Principal") {
        Some(Value::Object(p)) => {
            p.len() == 1 && p.get("Federated").and_then(single_string) == Some(GOOGLE_PRINCIPAL)
        }
        _ => false,
    };
    if !principal_ok {
        return Err(ShapeMismatch::Principal(show(stmt.get("Principal"))));
    }
    if stmt.get("Action").and_then(single_string) != Some(ASSUME_ACTION) {
        return Err(ShapeMismatch::Action(show(stmt.get("Action"))));
    }
    let cond = match stmt.get("Condition") {
        Some(Value::Object(c)) if !c.is_empty() => c,
        _ => return Err(ShapeMismatch::NoCondition),
    };
    if !matches!(cond.get("StringEquals"), Some(Value::Object(_))) || cond.len() != 1 {
        return Err(ShapeMismatch::Operators(cond.keys().cloned().collect()));
    }
    let (mut aud, mut oaud, mut sub) = (None, None, None);
    for test in condition_tests(cond) {
        let slot = match test.google_key() {
            Some(GoogleKey::Aud) => &mut aud,
            Some(GoogleKey::Oaud) => &mut oaud,
            Some(GoogleKey::Sub) => &mut sub,
            _ => return Err(ShapeMismatch::ExtraConditionKey(test.key.to_owned())),
        };
        if slot.replace(test.values).is_some() {
            // The same key twice in different letter case: IAM would read both.
            return Err(ShapeMismatch::ExtraConditionKey(test.key.to_owned()));
        }
    }
    let aud = string_set(KEY_AUD, aud)?;
    let oaud = string_set(KEY_OAUD, oaud)?;
    let sub = string_set(KEY_SUB, sub)?;
    for (key, set) in [(KEY_AUD, &aud), (KEY_SUB, &sub)] {
        if let Some(bad) = set
            .iter()
            .find(|id| !id.bytes().all(|b| b.is_ascii_digit()))
        {
            return Err(ShapeMismatch::ConditionValue {
                key,
                found: json_string(bad),
            });
        }
    }
    if aud != sub {
        return Err(ShapeMismatch::AudSubDiffer {
            aud: aud.into_iter().collect(),
            sub: sub.into_iter().collect(),
        });
    }
    if oaud.len() != 1 {
        return Err(ShapeMismatch::SeveralAudiences(oaud.into_iter().collect()));
    }
    let audience = oaud.into_iter().next().expect("one audience");
    TrustInputs::new(audience, aud).map_err(|e| ShapeMismatch::Inputs(e.to_string()))
}

fn show(v: Option<&Value>) -> String {
    v.map_or_else(|| "missing".to_string(), Value::to_string)
}

fn string_set(key: &'static str, value: Option<&Value>) -> Result<BTreeSet<String>, ShapeMismatch> {
    let bad = |v: &Value| ShapeMismatch::ConditionValue {
        key,
        found: v.to_string(),
    };
    let set: BTreeSet<String> = match value {
        None => return Err(ShapeMismatch::MissingConditionKey(key)),
        Some(v) => strings(v)
            .ok_or_else(|| bad(v))?
            .into_iter()
            .map(str::to_owned)
            .collect(),
    };
    if set.is_empty() || set.iter().any(String::is_empty) {
        return Err(bad(value.expect("present")));
    }
    Ok(set)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trust_policy::policies_equivalent;
    use crate::trust_policy::tests::{iam_encode, inputs, SA1, SA2};

    #[test]
    fn parses_what_iam_returns_reordered_encoded_and_spaced() {
        let doc = format!(
            r#"{{ "Statement": {{ "Condition": {{ "StringEquals": {{
                 "Accounts.Google.com:SUB": ["{SA2}", "{SA1}"],
                 "accounts.google.com:oaud": ["aud-1"],
                 "accounts.google.com:aud": ["{SA1}", "{SA2}", "{SA1}"] }} }},
               "Action": ["sts:AssumeRoleWithWebIdentity"],
               "Principal": {{ "Federated": ["accounts.google.com"] }},
               "Effect": "Allow" }},
               "Version": "2012-10-17" }}"#
        );
        let parsed = parse_trust_policy(&iam_encode(&doc)).unwrap();
        assert_eq!(parsed, inputs("aud-1", &[SA1, SA2]));
        assert!(policies_equivalent(&iam_encode(&doc), &parsed.render()));
    }

    fn mismatch(doc: &str) -> ShapeMismatch {
        parse_trust_policy(doc).unwrap_err()
    }

    fn base(replace: &str, with: &str) -> String {
        let r = inputs("aud", &[SA1, SA2]).render();
        assert!(r.contains(replace), "{replace} not in {r}");
        r.replacen(replace, with, 1)
    }

    #[test]
    fn reports_what_differs_from_the_gcpfed_shape() {
        let mut cases: Vec<(String, &str)> = vec![
            ("not json".into(), "not valid JSON"),
            ("[1]".into(), "not a JSON object"),
            (base(r#""Version":"2012-10-17","#, ""), "no Version"),
            (
                base("2012-10-17", "2008-10-17"),
                "Version is \"2008-10-17\"",
            ),
            (
                base(
                    r#""Principal":{"Federated":"accounts.google.com"}"#,
                    r#""Principal":{"AWS":"*"}"#,
                ),
                "Principal is {\"AWS\":\"*\"}",
            ),
            (
                base(
                    "accounts.google.com\"}",
                    "cognito-identity.amazonaws.com\"}",
                ),
                "Principal is",
            ),
            (base("Allow", "Deny"), "Effect is \"Deny\""),
            (
                base("sts:AssumeRoleWithWebIdentity", "sts:AssumeRole"),
                "Action is \"sts:AssumeRole\"",
            ),
            (
                base(
                    r#","Condition":{"StringEquals":{"#,
                    r#","Condition":{"StringLike":{"#,
                ),
                "uses StringLike",
            ),
            (
                base(
                    &format!(r#","accounts.google.com:sub":["{SA1}","{SA2}"]"#),
                    "",
                ),
                "lacks accounts.google.com:sub",
            ),
            (
                base(r#""accounts.google.com:oaud":"aud","#, ""),
                "lacks accounts.google.com:oaud",
            ),
            (
                base(
                    &format!(r#""accounts.google.com:sub":["{SA1}","{SA2}"]"#),
                    &format!(r#""accounts.google.com:sub":["{SA1}"]"#),
                ),
                "but accounts.google.com:sub lists",
            ),
            (
                base(
                    r#""accounts.google.com:oaud":"aud""#,
                    r#""accounts.google.com:oaud":["a","b"]"#,
                ),
                "several audiences",
            ),
            (
                base(
                    r#""accounts.google.com:oaud":"aud""#,
                    r#""accounts.google.com:email":"x@y""#,
                ),
                "\"accounts.google.com:email\"",
            ),
            (
                base(
                    &format!(r#""accounts.google.com:aud":["{SA1}","{SA2}"]"#),
                    r#""accounts.google.com:aud":["ci@p.iam.gserviceaccount.com"]"#,
                ),
                "numeric unique IDs",
            ),
            (
                base(r#""Effect":"Allow","#, r#""Sid":"x","Effect":"Allow","#),
                "key \"Sid\"",
            ),
            (
                base(
                    r#"}}}]}"#,
                    r#"}}},{"Effect":"Allow","Principal":"*","Action":"*"}]}"#,
                ),
                "2 statements",
            ),
            (
                base(r#","Condition":"#, r#","X":1,"Condition":"#),
                "key \"X\"",
            ),
            (
                base(r#""Statement""#, r#""Id":"x","Statement""#),
                "top-level key \"Id\"",
            ),
            (
                base(
                    r#""accounts.google.com:oaud":"aud""#,
                    r#""accounts.google.com:oaud":"aud","Accounts.google.com:oaud":"b""#,
                ),
                "oaud\" that gcpfed does not render",
            ),
        ];
        cases.extend([
            (
                base(r#""Effect":"Allow""#, r#""Effect":"Deny","Effect":"Allow""#),
                "the key \"Effect\" occurs more than once in Statement[0]",
            ),
            (
                base(
                    r#""accounts.google.com:oaud":"aud""#,
                    r#""accounts.google.com:oaud":"${accounts.google.com:oaud}""#,
                ),
                "policy variable",
            ),
            (
                base(
                    r#""accounts.google.com:oaud":"aud""#,
                    r#""accounts.google.com:oaud":"a*""#,
                ),
                "wildcard",
            ),
        ]);
        for (doc, want) in cases {
            let got = mismatch(&doc).to_string();
            assert!(got.contains(want), "for {doc}\n got: {got}\nwant: {want}");
        }
        let no_condition = concat!(
            r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","#,
            r#""Principal":{"Federated":"accounts.google.com"},"Action":"sts:AssumeRoleWithWebIdentity"}}"#
        );
        assert!(mismatch(no_condition)
            .to_string()
            .contains("any Google identity"));
    }
}
