//! Reading the parts of a policy statement that a Google web-identity trust is made of, the one
//! way both [`super::parse`] (is this gcpfed's shape?) and [`super::audit`] (how open is this
//! trust?) read them: set-valued elements given as a string or a list, the Federated principal,
//! the actions, and the condition block as a flat list of tests, each with its operator taken
//! apart (qualifier, base operator, `IfExists`) and its key recognised in any letter case.

use serde_json::{Map, Value};

use super::{ASSUME_ACTION, GOOGLE_PRINCIPAL, KEY_AUD, KEY_OAUD, KEY_SUB};

/// The strings of a set-valued element (`Action`, a principal, a condition value): one string or
/// a list of strings, as IAM accepts both. `None` when it is anything else (a number, a list
/// holding a non-string).
pub fn strings(value: &Value) -> Option<Vec<&str>> {
    match value {
        Value::String(s) => Some(vec![s.as_str()]),
        Value::Array(items) => items.iter().map(Value::as_str).collect(),
        _ => None,
    }
}

/// The one string of a set-valued element: a string, or a list holding exactly one string.
pub fn single_string(value: &Value) -> Option<&str> {
    match strings(value)?.as_slice() {
        [one] => Some(one),
        _ => None,
    }
}

/// The statements of a policy document: `Statement` as one object or a list (empty when absent).
pub fn statements(document: &Map<String, Value>) -> Vec<&Value> {
    match document.get("Statement") {
        Some(Value::Array(items)) => items.iter().collect(),
        Some(one) => vec![one],
        None => Vec::new(),
    }
}

/// The `Federated` principals a statement names, or `None` when its principal is not an object
/// with a `Federated` element of strings.
pub fn federated(statement: &Map<String, Value>) -> Option<Vec<&str>> {
    match statement.get("Principal") {
        Some(Value::Object(p)) => strings(p.get("Federated")?),
        _ => None,
    }
}

/// Whether `name` is Google's principal. IAM compares provider names without regard to case
/// (`Accounts.Google.com` trusts the same tokens), so a trust spelled that way is still one; so
/// is the ARN of an IAM OIDC provider for `accounts.google.com`
/// (`arn:aws:iam::123456789012:oidc-provider/accounts.google.com`), whose tokens carry the
/// same condition keys.
pub fn is_google(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    lower == GOOGLE_PRINCIPAL
        || (lower.starts_with("arn:")
            && lower.ends_with(&format!(":oidc-provider/{GOOGLE_PRINCIPAL}")))
}

/// Whether an `Action` entry grants `sts:AssumeRoleWithWebIdentity`: action names are
/// case-insensitive and may use `*` and `?` wildcards (`sts:*`, `*`, `sts:AssumeRoleWith*`).
pub fn grants_web_identity(action: &str) -> bool {
    wildcard_match(
        &action.to_ascii_lowercase(),
        &ASSUME_ACTION.to_ascii_lowercase(),
    )
}

/// IAM's `*` (any run) and `?` (any one character) over `text`.
pub fn wildcard_match(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// The set-operator qualifier of a condition operator (`ForAllValues:StringEquals`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Qualifier {
    ForAllValues,
    ForAnyValue,
}

/// A condition key under Google's prefix, recognised in any letter case (IAM condition keys are
/// case-insensitive).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GoogleKey {
    /// `accounts.google.com:aud`, compared with the token's `azp`.
    Aud,
    /// `accounts.google.com:oaud`, compared with the token's `aud`.
    Oaud,
    /// `accounts.google.com:sub`.
    Sub,
    /// Any other key under `accounts.google.com:`: STS sets none for Google tokens.
    Other,
}

impl GoogleKey {
    /// The key `key` names, or `None` when it is not under `accounts.google.com:`.
    pub fn of(key: &str) -> Option<GoogleKey> {
        let lower = key.to_ascii_lowercase();
        Some(match lower.as_str() {
            KEY_AUD => GoogleKey::Aud,
            KEY_OAUD => GoogleKey::Oaud,
            KEY_SUB => GoogleKey::Sub,
            _ if lower.starts_with(&format!("{GOOGLE_PRINCIPAL}:")) => GoogleKey::Other,
            _ => return None,
        })
    }

    /// The key as gcpfed renders it (`None` for [`GoogleKey::Other`]).
    pub fn canonical(self) -> Option<&'static str> {
        match self {
            GoogleKey::Aud => Some(KEY_AUD),
            GoogleKey::Oaud => Some(KEY_OAUD),
            GoogleKey::Sub => Some(KEY_SUB),
            GoogleKey::Other => None,
        }
    }
}

/// One test of a condition block: `"Operator": {"key": values}` taken apart.
#[derive(Debug, Clone, PartialEq)]
pub struct ConditionTest<'a> {
    /// The operator as written (`ForAllValues:StringEqualsIfExists`).
    pub operator: &'a str,
    /// The operator without its qualifier and `IfExists` (`StringEquals`).
    pub base: &'a str,
    pub qualifier: Option<Qualifier>,
    /// True for `...IfExists`: the test passes when the key is absent.
    pub if_exists: bool,
    /// The key as written.
    pub key: &'a str,
    pub values: &'a Value,
}

impl ConditionTest<'_> {
    /// Which Google key this test reads, if any.
    pub fn google_key(&self) -> Option<GoogleKey> {
        GoogleKey::of(self.key)
    }
}

/// The tests of a `Condition` block, in document order; an operator whose value is not an
/// object contributes a test with key `""` so that nothing written is silently dropped.
pub fn condition_tests(condition: &Map<String, Value>) -> Vec<ConditionTest<'_>> {
    let mut out = Vec::new();
    for (operator, block) in condition {
        let (qualifier, rest) = split_qualifier(operator);
        let (base, if_exists) = match rest.strip_suffix("IfExists") {
            Some(base) => (base, true),
            None => (rest, false),
        };
        let pairs: Vec<(&str, &Value)> = match block {
            Value::Object(keys) => keys.iter().map(|(k, v)| (k.as_str(), v)).collect(),
            other => vec![("", other)],
        };
        for (key, values) in pairs {
            out.push(ConditionTest {
                operator,
                base,
                qualifier,
                if_exists,
                key,
                values,
            });
        }
    }
    out
}

fn split_qualifier(operator: &str) -> (Option<Qualifier>, &str) {
    for (prefix, qualifier) in [
        ("ForAllValues:", Qualifier::ForAllValues),
        ("ForAnyValue:", Qualifier::ForAnyValue),
    ] {
        if operator.len() >= prefix.len() && operator[..prefix.len()].eq_ignore_ascii_case(prefix) {
            return (Some(qualifier), &operator[prefix.len()..]);
        }
    }
    (None, operator)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn set_valued_elements_read_as_a_string_or_a_list() {
        assert_eq!(strings(&json!("a")), Some(vec!["a"]));
        assert_eq!(strings(&json!(["a", "b"])), Some(vec!["a", "b"]));
        assert_eq!(strings(&json!(["a", 1])), None);
        assert_eq!(strings(&json!(1)), None);
        assert_eq!(single_string(&json!(["a"])), Some("a"));
        assert_eq!(single_string(&json!(["a", "b"])), None);
    }

    #[test]
    fn actions_match_with_iam_wildcards_and_any_case() {
        for yes in [
            "sts:AssumeRoleWithWebIdentity",
            "STS:assumerolewithwebidentity",
            "sts:*",
            "*",
            "sts:AssumeRoleWith*",
            "sts:AssumeRoleWith?ebIdentity",
        ] {
            assert!(grants_web_identity(yes), "{yes}");
        }
        for no in ["sts:AssumeRole", "sts:AssumeRoleWithSAML", "iam:*", "sts:?"] {
            assert!(!grants_web_identity(no), "{no}");
        }
    }

    #[test]
    fn google_keys_are_recognised_in_any_case() {
        assert_eq!(
            GoogleKey::of("Accounts.Google.com:SUB"),
            Some(GoogleKey::Sub)
        );
        assert_eq!(
            GoogleKey::of("accounts.google.com:oaud"),
            Some(GoogleKey::Oaud)
        );
        assert_eq!(
            GoogleKey::of("accounts.google.com:email"),
            Some(GoogleKey::Other)
        );
        assert_eq!(GoogleKey::of("aws:SourceIp"), None);
        assert!(is_google("ACCOUNTS.google.COM"));
        assert!(is_google(
            "arn:aws:iam::123456789012:oidc-provider/Accounts.Google.com"
        ));
        assert!(!is_google(
            "arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com"
        ));
        assert!(!is_google("accounts.google.com.evil.example"));
    }

    #[test]
    fn operators_are_taken_apart() {
        let c = json!({
            "ForAllValues:StringEqualsIfExists": {"accounts.google.com:aud": ["1"]},
            "StringLike": {"a": "x*", "b": "y"},
            "Bool": true
        });
        let tests = condition_tests(c.as_object().unwrap());
        let mut seen: Vec<(&str, Option<Qualifier>, bool, &str)> = tests
            .iter()
            .map(|t| (t.base, t.qualifier, t.if_exists, t.key))
            .collect();
        // serde_json may keep document order or sort keys, depending on its features.
        seen.sort_by_key(|s| (s.0, s.3));
        assert_eq!(
            seen,
            vec![
                ("Bool", None, false, ""),
                (
                    "StringEquals",
                    Some(Qualifier::ForAllValues),
                    true,
                    "accounts.google.com:aud"
                ),
                ("StringLike", None, false, "a"),
                ("StringLike", None, false, "b"),
            ]
        );
    }
}
