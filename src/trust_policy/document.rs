//! Policy documents as IAM hands them back, and what "the same meaning" is.
//!
//! IAM returns documents URL-encoded; [`decode_document`] undoes that, [`normalize_document`]
//! gives the one form shown to users, and [`policies_equivalent`] treats two documents as equal
//! when they differ only in ways IAM itself ignores when it evaluates a policy:
//! - transport encoding (IAM returns documents URL-encoded) and whitespace;
//! - the order of keys in JSON objects;
//! - `Statement` given as one object versus a one-element list, and the order of statements;
//! - for the set-valued elements `Action`, `NotAction`, `Resource`, `NotResource`, the values of
//!   `Principal` / `NotPrincipal` and condition values: a single string versus a one-element
//!   list, the order of list items and repeated items (IAM ORs the values of such lists);
//! - the letter case of condition key names (IAM documents condition keys as case-insensitive),
//!   unless two keys of one operator block differ only in case: then IAM reads both, and folding
//!   them into one would hide one of them, so such a block is compared exactly as written.
//!
//! A document with a key repeated in one object is equivalent to nothing: a parser keeps one of
//! the two values, and comparing what it kept would hide the other.
//!
//! Everything else is a difference: `Version`, `Sid`, `Effect`, any value's spelling or case
//! (actions included: we would rather show a harmless diff than hide a real one), numbers versus
//! strings, operator names, extra keys.

use std::borrow::Cow;

use percent_encoding::percent_decode_str;
use serde_json::{Map, Value};

use super::json_string;
use crate::validate::repeated_key;

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
    if repeated_key(&decoded).is_some() {
        // Re-serialising would drop one of the values; show both, as IAM holds them.
        return decoded.into_owned();
    }
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
    if repeated_key(&a).is_some() || repeated_key(&b).is_some() {
        return false;
    }
    match (
        serde_json::from_str::<Value>(&a),
        serde_json::from_str::<Value>(&b),
    ) {
        (Ok(va), Ok(vb)) => canonical(va) == canonical(vb),
        _ => a == b,
    }
}

/// Elements whose value IAM reads as a set of strings.
pub(super) const SET_VALUED: [&str; 4] = ["Action", "NotAction", "Resource", "NotResource"];

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
                Value::Object(m) => {
                    let mut folded: Map<String, Value> = Map::new();
                    let mut collide = false;
                    for k in m.keys() {
                        collide |= folded.insert(k.to_ascii_lowercase(), Value::Null).is_some();
                    }
                    // Colliding keys stay as written (a block with two keys equal but for case
                    // can then only equal a block with exactly those keys); others fold.
                    Value::Object(
                        m.into_iter()
                            .map(|(k, v)| {
                                let k = if collide { k } else { k.to_ascii_lowercase() };
                                (k, as_sorted_set(v))
                            })
                            .collect(),
                    )
                }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trust_policy::tests::iam_encode;
    use crate::trust_policy::{parse_trust_policy, TrustInputs};
    use proptest::prelude::*;

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
    fn colliding_condition_keys_are_a_difference() {
        let base = r#"{"Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"*","Condition":{"StringEquals":{"aws:RequestedRegion":"us-east-1"}}}]}"#;
        // Another value under the same key in other letter case: IAM reads both keys.
        let widened = base.replacen(
            r#"{"aws:RequestedRegion""#,
            r#"{"AWS:REQUESTEDREGION":"eu-west-1","aws:RequestedRegion""#,
            1,
        );
        assert!(!policies_equivalent(base, &widened));
        assert!(!policies_equivalent(&widened, base));
        assert!(policies_equivalent(&widened, &iam_encode(&widened)));
        // Without a collision, case still folds.
        assert!(policies_equivalent(
            base,
            &base.replace("aws:RequestedRegion", "AWS:requestedregion")
        ));
        let t = inputs_render();
        let sub = t.replacen(
            r#""StringEquals":{"#,
            r#""StringEquals":{"ACCOUNTS.GOOGLE.COM:SUB":"1","#,
            1,
        );
        assert!(!policies_equivalent(&t, &sub));
    }

    fn inputs_render() -> String {
        TrustInputs::new("aud", ["104857600000000000001"])
            .unwrap()
            .render()
    }

    #[test]
    fn a_document_with_a_repeated_key_is_equivalent_to_nothing_and_shown_as_is() {
        let t = inputs_render();
        let twice = t.replacen(
            r#""Effect":"Allow""#,
            r#""Effect":"Deny","Effect":"Allow""#,
            1,
        );
        assert!(!policies_equivalent(&t, &twice));
        assert!(!policies_equivalent(&twice, &twice));
        assert!(!policies_equivalent(&iam_encode(&twice), &t));
        assert_eq!(normalize_document(&iam_encode(&twice)), twice);
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
            // Printable ASCII, spaces inside only, no `$`, `*` or `?` (the audience rule).
            "[!-#%-)+-\\x3E@-~]([ -#%-)+-\\x3E@-~]{0,38}[!-#%-)+-\\x3E@-~])?",
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

    /// Found by make fuzz (target trust_policy): a document with a repeated key is not
    /// equivalent even to itself, so IAM holding it is always drift; every other document is.
    #[test]
    fn a_repeated_key_makes_a_document_equivalent_to_nothing_not_even_itself() {
        let found = br#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObj3:::b/*","Action":"s3:GetObject","Effect":"A,low","Condition":{"StringLike":{"S3:PRn":"sts:AssumeRoleWithWebIde:"2 12-10-17"}"#;
        let doc = std::str::from_utf8(found).unwrap();
        assert!(!policies_equivalent(doc, doc));
        let without =
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject"}]}"#;
        assert!(policies_equivalent(without, without));
    }

    /// Found by make fuzz (target trust_policy): an integer beyond u64 is read as a float;
    /// without correctly rounded parsing, printing and reading it again gave another float,
    /// so a document was not equivalent to its own normalised form (a false, endless drift).
    #[test]
    fn a_huge_number_survives_normalisation() {
        let doc = r#"{"Version":555555550000000000000000000000000000001389837304}"#;
        assert!(policies_equivalent(doc, &normalize_document(doc)));
        assert!(policies_equivalent(&normalize_document(doc), doc));
    }
}
