//! The role's trust policy and IAM policy documents in general: rendering the gcpfed trust
//! policy from Google inputs, recognising it again in what IAM returns, and deciding whether two
//! policy documents mean the same thing. Pure functions only; no I/O.
//!
//! # What "the same meaning" covers
//! [`policies_equivalent`] treats two documents as equal when they differ only in ways IAM itself
//! ignores when it evaluates a policy:
//! - transport encoding (IAM returns documents URL-encoded) and whitespace;
//! - the order of keys in JSON objects;
//! - `Statement` given as one object versus a one-element list, and the order of statements;
//! - for the set-valued elements `Action`, `NotAction`, `Resource`, `NotResource`, the values of
//!   `Principal` / `NotPrincipal` and condition values: a single string versus a one-element
//!   list, the order of list items and repeated items (IAM ORs the values of such lists);
//! - the letter case of condition key names (IAM documents condition keys as case-insensitive).
//!
//! Everything else is a difference: `Version`, `Sid`, `Effect`, any value's spelling or case
//! (actions included: we would rather show a harmless diff than hide a real one), numbers versus
//! strings, operator names, extra keys.

use std::borrow::Cow;
use std::collections::BTreeSet;
use std::fmt;

use percent_encoding::percent_decode_str;
use serde_json::{Map, Value};

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
/// than intended, so the provider refuses instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InputError {
    #[error("the audience is empty")]
    EmptyAudience,
    #[error("no service account unique ID is given")]
    NoUniqueIds,
    #[error("a service account unique ID is empty")]
    EmptyUniqueId,
}

impl TrustInputs {
    /// Builds the inputs, refusing an empty audience or an empty set of IDs.
    pub fn new<I, S>(audience: impl Into<String>, unique_ids: I) -> Result<Self, InputError>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let audience = audience.into();
        if audience.is_empty() {
            return Err(InputError::EmptyAudience);
        }
        let unique_ids: BTreeSet<String> = unique_ids.into_iter().map(Into::into).collect();
        if unique_ids.is_empty() {
            return Err(InputError::NoUniqueIds);
        }
        if unique_ids.iter().any(String::is_empty) {
            return Err(InputError::EmptyUniqueId);
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

fn json_string(s: &str) -> String {
    serde_json::Value::String(s.to_owned()).to_string()
}

/// IAM returns policy documents URL-encoded (RFC 3986, so `+` stays `%2B`); documents we hold
/// ourselves are plain JSON. A plain JSON policy starts with `{`, an encoded one with `%7B`.
pub fn decode_document(raw: &str) -> Cow<'_, str> {
    if raw.trim_start().starts_with('{') {
        return Cow::Borrowed(raw);
    }
    match percent_decode_str(raw).decode_utf8() {
        Ok(decoded) => decoded,
        Err(_) => percent_decode_str(raw).decode_utf8_lossy(),
    }
}

/// The decoded document re-serialised as compact JSON with object keys sorted, which is also
/// what Terraform's `jsonencode` produces: the form shown when IAM holds something other than
/// the configuration says, or when a role is imported. The decoded text as is when not JSON.
pub fn normalize_document(raw: &str) -> String {
    let decoded = decode_document(raw);
    match serde_json::from_str::<Value>(&decoded) {
        Ok(v) => {
            let mut out = String::with_capacity(decoded.len());
            write_sorted(&v, &mut out);
            out
        }
        Err(_) => decoded.into_owned(),
    }
}

/// Compact JSON with sorted keys, whatever order serde_json's map keeps (its `preserve_order`
/// feature may be switched on by another crate).
fn write_sorted(v: &Value, out: &mut String) {
    match v {
        Value::Object(m) => {
            let mut entries: Vec<(&String, &Value)> = m.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (i, (k, val)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&json_string(k));
                out.push(':');
                write_sorted(val, out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_sorted(item, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// Whether two policy documents (each plain or URL-encoded) mean the same to IAM; see the module
/// comment for the equivalences. Documents that are not JSON are compared as decoded text.
pub fn policies_equivalent(a: &str, b: &str) -> bool {
    let (a, b) = (decode_document(a), decode_document(b));
    match (
        serde_json::from_str::<Value>(&a),
        serde_json::from_str::<Value>(&b),
    ) {
        (Ok(va), Ok(vb)) => canonical(va) == canonical(vb),
        _ => a == b,
    }
}

/// Elements whose value IAM reads as a set of strings.
const SET_VALUED: [&str; 4] = ["Action", "NotAction", "Resource", "NotResource"];

fn canonical(doc: Value) -> Value {
    let Value::Object(mut top) = doc else {
        return doc;
    };
    if let Some(stmts) = top.remove("Statement") {
        let list = match stmts {
            Value::Array(items) => items,
            other => vec![other],
        };
        let mut list: Vec<Value> = list.into_iter().map(canonical_statement).collect();
        list.sort_by_cached_key(|v| v.to_string());
        top.insert("Statement".into(), Value::Array(list));
    }
    Value::Object(top)
}

fn canonical_statement(stmt: Value) -> Value {
    let Value::Object(stmt) = stmt else {
        return stmt;
    };
    let mut out = Map::new();
    for (key, value) in stmt {
        let value = if SET_VALUED.contains(&key.as_str()) {
            as_sorted_set(value)
        } else if key == "Principal" || key == "NotPrincipal" {
            match value {
                Value::Object(m) => {
                    Value::Object(m.into_iter().map(|(k, v)| (k, as_sorted_set(v))).collect())
                }
                other => other,
            }
        } else if key == "Condition" {
            canonical_condition(value)
        } else {
            value
        };
        out.insert(key, value);
    }
    Value::Object(out)
}

fn canonical_condition(cond: Value) -> Value {
    let Value::Object(ops) = cond else {
        return cond;
    };
    let ops = ops
        .into_iter()
        .map(|(op, keys)| {
            let keys = match keys {
                Value::Object(m) => Value::Object(
                    m.into_iter()
                        .map(|(k, v)| (k.to_ascii_lowercase(), as_sorted_set(v)))
                        .collect(),
                ),
                other => other,
            };
            (op, keys)
        })
        .collect();
    Value::Object(ops)
}

/// A string or a list becomes a sorted list without repeats; anything else is left alone so
/// that it still differs from a list.
fn as_sorted_set(v: Value) -> Value {
    let items = match v {
        Value::Array(items) => items,
        Value::String(_) => vec![v],
        other => return other,
    };
    let mut keyed: Vec<(String, Value)> = items.into_iter().map(|i| (i.to_string(), i)).collect();
    keyed.sort_by(|a, b| a.0.cmp(&b.0));
    keyed.dedup_by(|a, b| a.0 == b.0);
    Value::Array(keyed.into_iter().map(|(_, v)| v).collect())
}

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
    ConditionValue { key: &'static str, found: String },
    AudSubDiffer { aud: Vec<String>, sub: Vec<String> },
    SeveralAudiences(Vec<String>),
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
    let principal_ok = match stmt.get("Principal") {
        Some(Value::Object(p)) => {
            p.len() == 1
                && p.get("Federated").and_then(single_string) == Some(GOOGLE_PRINCIPAL.to_string())
        }
        _ => false,
    };
    if !principal_ok {
        return Err(ShapeMismatch::Principal(show(stmt.get("Principal"))));
    }
    if stmt.get("Action").and_then(single_string).as_deref() != Some(ASSUME_ACTION) {
        return Err(ShapeMismatch::Action(show(stmt.get("Action"))));
    }
    let cond = match stmt.get("Condition") {
        Some(Value::Object(c)) if !c.is_empty() => c,
        _ => return Err(ShapeMismatch::NoCondition),
    };
    let string_equals = match cond.get("StringEquals") {
        Some(Value::Object(m)) if cond.len() == 1 => m,
        _ => return Err(ShapeMismatch::Operators(cond.keys().cloned().collect())),
    };
    let (mut aud, mut oaud, mut sub) = (None, None, None);
    for (key, value) in string_equals {
        let slot = match key.to_ascii_lowercase().as_str() {
            KEY_AUD => &mut aud,
            KEY_OAUD => &mut oaud,
            KEY_SUB => &mut sub,
            _ => return Err(ShapeMismatch::ExtraConditionKey(key.clone())),
        };
        if slot.replace(value).is_some() {
            // The same key twice in different letter case: IAM would read both.
            return Err(ShapeMismatch::ExtraConditionKey(key.clone()));
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
    TrustInputs::new(audience, aud).map_err(|_| ShapeMismatch::ConditionValue {
        key: KEY_OAUD,
        found: "\"\"".into(),
    })
}

fn show(v: Option<&Value>) -> String {
    v.map_or_else(|| "missing".to_string(), Value::to_string)
}

/// A string, or a list holding exactly one string.
fn single_string(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Array(items) if items.len() == 1 => items[0].as_str().map(str::to_owned),
        _ => None,
    }
}

fn string_set(key: &'static str, value: Option<&Value>) -> Result<BTreeSet<String>, ShapeMismatch> {
    let bad = |v: &Value| ShapeMismatch::ConditionValue {
        key,
        found: v.to_string(),
    };
    let set: BTreeSet<String> = match value {
        None => return Err(ShapeMismatch::MissingConditionKey(key)),
        Some(Value::String(s)) => BTreeSet::from([s.clone()]),
        Some(v @ Value::Array(items)) => items
            .iter()
            .map(|i| i.as_str().map(str::to_owned).ok_or_else(|| bad(v)))
            .collect::<Result<_, _>>()?,
        Some(v) => return Err(bad(v)),
    };
    if set.is_empty() || set.iter().any(String::is_empty) {
        return Err(bad(value.expect("present")));
    }
    Ok(set)
}

#[cfg(test)]
mod tests {
    use super::*;
    use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};
    use proptest::prelude::*;

    const SA1: &str = "104857600000000000001";
    const SA2: &str = "104857600000000000002";

    fn inputs(aud: &str, ids: &[&str]) -> TrustInputs {
        TrustInputs::new(aud, ids.iter().copied()).unwrap()
    }

    /// How IAM hands documents back (RFC 3986 percent-encoding of everything but unreserved).
    fn iam_encode(doc: &str) -> String {
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
        assert_eq!(TrustInputs::new("", [SA1]), Err(InputError::EmptyAudience));
        assert_eq!(
            TrustInputs::new("a", Vec::<String>::new()),
            Err(InputError::NoUniqueIds)
        );
        assert_eq!(TrustInputs::new("a", [""]), Err(InputError::EmptyUniqueId));
    }

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
        let cases: Vec<(String, &str)> = vec![
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

    #[test]
    fn equivalence_ignores_what_iam_ignores() {
        let a = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:GetObject","s3:ListBucket"],"Resource":"arn:aws:s3:::b/*","Condition":{"Bool":{"aws:SecureTransport":"true"}}}]}"#;
        let b = r#"{
            "Statement": {"Resource": ["arn:aws:s3:::b/*"], "Condition": {"Bool": {"AWS:securetransport": ["true"]}},
                          "Action": ["s3:ListBucket", "s3:GetObject", "s3:ListBucket"], "Effect": "Allow"},
            "Version": "2012-10-17"
        }"#;
        assert!(policies_equivalent(a, b));
        assert!(policies_equivalent(&iam_encode(a), b));
        assert!(policies_equivalent(a, &iam_encode(b)));
    }

    #[test]
    fn equivalence_sees_changed_values() {
        let a = r#"{"Version":"2012-10-17","Statement":[{"Sid":"A","Effect":"Allow","Action":"s3:GetObject","Resource":"*"}]}"#;
        for (from, to) in [
            ("\"A\"", "\"B\""),
            ("Allow", "Deny"),
            ("s3:GetObject", "s3:getobject"),
            ("s3:GetObject", "s3:PutObject"),
            ("\"*\"", "\"arn:aws:s3:::b\""),
            ("2012-10-17", "2008-10-17"),
            (r#""Sid":"A","#, ""),
        ] {
            let b = a.replacen(from, to, 1);
            assert!(!policies_equivalent(a, &b), "{from} -> {to}");
        }
        assert!(!policies_equivalent("not json", "not  json"));
        assert!(policies_equivalent("not json", "not%20json"));
    }

    #[test]
    fn normalize_decodes_and_compacts() {
        let doc = "{ \"b\": {\"z\": 1, \"y\": [true, null]}, \"a\" : [1, 2] }";
        assert_eq!(
            normalize_document(&iam_encode(doc)),
            r#"{"a":[1,2],"b":{"y":[true,null],"z":1}}"#
        );
        assert_eq!(normalize_document("%7Bbroken"), "{broken");
    }

    #[test]
    fn decode_leaves_plain_json_alone_and_keeps_plus() {
        assert_eq!(decode_document("{\"a\":\"%41+\"}"), "{\"a\":\"%41+\"}");
        assert_eq!(
            decode_document("%7B%22a%22%3A%22b%2Bc%22%7D"),
            "{\"a\":\"b+c\"}"
        );
    }

    // ---- properties ----

    fn arb_id() -> impl Strategy<Value = String> {
        "[0-9]{1,21}"
    }

    fn arb_inputs() -> impl Strategy<Value = TrustInputs> {
        (
            "[ -~]{1,40}",
            proptest::collection::btree_set(arb_id(), 1..6),
        )
            .prop_map(|(aud, ids)| TrustInputs::new(aud, ids).unwrap())
    }

    /// Rewrites a JSON value the way IAM or a human may: random key order (via re-inserting into
    /// a Vec and printing by hand), random whitespace, strings into one-element lists where IAM
    /// reads sets, lists reversed.
    fn rnd(seed: &mut u64) -> usize {
        *seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (*seed >> 33) as usize
    }

    fn reshape(v: &Value, seed: &mut u64, in_set: bool) -> String {
        let ws = [" ", "", "\n  ", "\t"];
        match v {
            Value::Object(m) => {
                let mut entries: Vec<(&String, &Value)> = m.iter().collect();
                let k = rnd(seed) % (entries.len().max(1));
                entries.rotate_left(k);
                if rnd(seed).is_multiple_of(2) {
                    entries.reverse();
                }
                let parts: Vec<String> = entries
                    .into_iter()
                    .map(|(key, val)| {
                        let set = SET_VALUED.contains(&key.as_str())
                            || key.contains(':')
                            || key == "Federated";
                        let w = ws[rnd(seed) % ws.len()];
                        format!("{w}{}{w}:{w}{}", json_string(key), reshape(val, seed, set))
                    })
                    .collect();
                format!("{{{}}}", parts.join(","))
            }
            Value::Array(items) => {
                let mut parts: Vec<String> =
                    items.iter().map(|i| reshape(i, seed, false)).collect();
                if in_set {
                    parts.reverse();
                }
                format!("[{}]", parts.join(" , "))
            }
            Value::String(s) if in_set && rnd(seed).is_multiple_of(2) => {
                format!("[ {} ]", json_string(s))
            }
            other => other.to_string(),
        }
    }

    proptest! {
        #[test]
        fn render_then_parse_round_trips(i in arb_inputs()) {
            let rendered = i.render();
            prop_assert_eq!(parse_trust_policy(&rendered).unwrap(), i.clone());
            prop_assert_eq!(parse_trust_policy(&iam_encode(&rendered)).unwrap(), i);
        }

        #[test]
        fn equivalence_ignores_order_whitespace_and_encoding(i in arb_inputs(), seed in any::<u64>(), encode in any::<bool>()) {
            let rendered = i.render();
            let mut s = seed;
            let mut reshaped = reshape(&serde_json::from_str(&rendered).unwrap(), &mut s, false);
            if encode {
                reshaped = iam_encode(&reshaped);
            }
            prop_assert!(policies_equivalent(&rendered, &reshaped), "{}", reshaped);
            prop_assert_eq!(parse_trust_policy(&reshaped).unwrap(), i);
        }

        #[test]
        fn equivalence_sees_any_changed_input(a in arb_inputs(), b in arb_inputs()) {
            prop_assert_eq!(policies_equivalent(&a.render(), &b.render()), a == b);
        }

        #[test]
        fn equivalence_sees_a_changed_character_in_a_value(i in arb_inputs(), pick in any::<prop::sample::Index>()) {
            // Change one character of the audience: the meaning changes, so must the verdict.
            let aud: Vec<char> = i.audience().chars().collect();
            let at = pick.index(aud.len());
            let mut changed = aud.clone();
            changed[at] = if aud[at] == 'x' { 'y' } else { 'x' };
            let other = TrustInputs::new(changed.iter().collect::<String>(), i.unique_ids().clone()).unwrap();
            prop_assert!(!policies_equivalent(&i.render(), &iam_encode(&other.render())));
        }
    }
}
