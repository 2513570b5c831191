//! The audit's rules: how far a role's trust lets Google identities in, graded per statement.
//!
//! Every statement that allows `sts:AssumeRoleWithWebIdentity` (or a wildcard covering it) to the
//! Federated principal `accounts.google.com` (any case, string or list) is graded; Deny
//! statements, other principals and other actions are not Google trusts. STS sets exactly three
//! keys for Google tokens, `accounts.google.com:aud` (the token's `azp`), `:oaud` (its `aud`)
//! and `:sub`, so:
//!
//! - critical: neither `aud` nor `sub` is pinned to an exact value (no condition, `oaud` alone,
//!   wildcards or policy variables), or either is tested with `...IfExists` or `ForAllValues:`
//!   (both pass when the key is absent). Any Google identity in the world can assume the role:
//!   the caller chooses the audience it asks for.
//! - high: the identity is pinned but `oaud` is not checked exactly.
//! - medium: one of `aud`/`sub` pinned, or both to different values; a key STS never sets for
//!   Google tokens; an ID that is not numeric (the role can never be assumed as written).
//! - info: `aud` and `sub` pinned to the same numeric IDs and `oaud` checked, as gcpfed renders.
//!
//! A critical statement is reported alone (its other details no longer matter); a role's
//! severity is that of its worst finding, so one open statement is enough whatever the others say.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use serde_json::{Map, Value};

use super::document::decode_document;
use super::statement::{
    condition_tests, federated, grants_web_identity, is_google, statements, strings, ConditionTest,
    GoogleKey, Qualifier,
};
use super::{json_string, KEY_AUD, KEY_OAUD, KEY_SUB};
use crate::validate;

/// How open a Google trust is, from safe to open to the world.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    Info,
    Medium,
    High,
    Critical,
}

impl Severity {
    /// Every severity, lowest first.
    pub const ALL: [Severity; 4] = [
        Severity::Info,
        Severity::Medium,
        Severity::High,
        Severity::Critical,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Severity {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Severity::ALL
            .into_iter()
            .find(|v| v.as_str() == s)
            .ok_or_else(|| {
                format!("{s:?} is not a severity: use one of info, medium, high, critical")
            })
    }
}

/// One thing the audit found in one statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub severity: Severity,
    /// `Statement[1]`, with ` (Sid "x")` when the statement has one.
    pub statement: String,
    /// The condition key at fault as written, the canonical key when it is missing, or
    /// `Condition` when the finding is about the statement's conditions as a whole.
    pub key: String,
    /// What is wrong, naming the statement.
    pub message: String,
    /// What to do instead: the gcpfed equivalent and the import command.
    pub fix: String,
}

impl Finding {
    /// The finding as one line of text, the same wherever it is shown (CLI, import refusal).
    pub fn text(&self) -> String {
        format!("[{}] {} Fix: {}", self.severity, self.message, self.fix)
    }
}

/// A role's Google trust, graded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grade {
    /// Every value `aud` or `sub` is pinned to, across the Google statements.
    pub unique_ids: BTreeSet<String>,
    /// Every value `oaud` is pinned to.
    pub audiences: BTreeSet<String>,
    /// At least one per Google statement.
    pub findings: Vec<Finding>,
}

impl Grade {
    /// The severity of the worst finding.
    pub fn severity(&self) -> Severity {
        self.findings
            .iter()
            .map(|f| f.severity)
            .max()
            .unwrap_or(Severity::Info)
    }
}

/// Grades role `role`'s trust policy `document` (URL-encoded as IAM returns it, or not);
/// `None` when no statement of it trusts Google identities (or it is not a JSON object).
pub fn grade_trust_policy(role: &str, document: &str) -> Option<Grade> {
    let decoded = decode_document(document);
    let Ok(Value::Object(top)) = serde_json::from_str::<Value>(&decoded) else {
        return None;
    };
    let mut pins = Vec::new();
    for (index, stmt) in statements(&top).into_iter().enumerate() {
        if let Value::Object(stmt) = stmt {
            if is_google_trust(stmt) {
                pins.push(read_pins(index, stmt));
            }
        }
    }
    if pins.is_empty() {
        return None;
    }
    let mut grade = Grade {
        unique_ids: BTreeSet::new(),
        audiences: BTreeSet::new(),
        findings: Vec::new(),
    };
    for p in &pins {
        grade.unique_ids.extend(p.aud.iter().flatten().cloned());
        grade.unique_ids.extend(p.sub.iter().flatten().cloned());
        grade.audiences.extend(p.oaud.iter().flatten().cloned());
    }
    let fix = Fixes::new(role, &grade);
    if let Some(repeated) = validate::repeated_key(&decoded) {
        // serde_json read the last copy; IAM or a reviewer may take the first. What this audit
        // graded is then not provably what IAM enforces, so nothing here can call it closed.
        grade.findings.push(Finding {
            severity: Severity::Critical,
            statement: repeated.path.clone(),
            key: repeated.key.clone(),
            message: format!(
                "{repeated}: the document can be read two ways, and the audit cannot show that \
                 the trust IAM enforces is closed."
            ),
            fix: fix.pin(),
        });
    }
    for p in &pins {
        grade.findings.extend(judge(p, &fix));
    }
    Some(grade)
}

/// Allow, to `accounts.google.com` (any case, string or list), for an action covering
/// `sts:AssumeRoleWithWebIdentity`.
fn is_google_trust(stmt: &Map<String, Value>) -> bool {
    let allow = stmt.get("Effect").and_then(Value::as_str) == Some("Allow");
    let google = federated(stmt).is_some_and(|names| names.into_iter().any(is_google));
    let action = stmt
        .get("Action")
        .and_then(strings)
        .is_some_and(|actions| actions.into_iter().any(grants_web_identity));
    allow && google && action
}

/// What one Google statement's conditions pin, and what opens it.
struct Pins<'a> {
    label: String,
    has_condition: bool,
    /// Exact values of `aud` / `sub` / `oaud` (`None`: not pinned exactly).
    aud: Option<BTreeSet<String>>,
    sub: Option<BTreeSet<String>>,
    oaud: Option<BTreeSet<String>>,
    /// The first test of `aud` or `sub` that passes when the key is absent.
    absent_passes: Option<ConditionTest<'a>>,
    /// The first test of `aud` or `sub` with a wildcard or a policy variable.
    inexact: Option<(ConditionTest<'a>, String)>,
    /// Tests of keys under `accounts.google.com:` that STS never sets.
    unknown_keys: Vec<&'a str>,
}

fn read_pins(index: usize, stmt: &Map<String, Value>) -> Pins<'_> {
    let label = match stmt.get("Sid").and_then(Value::as_str) {
        Some(sid) if !sid.is_empty() => format!("Statement[{index}] (Sid {})", json_string(sid)),
        _ => format!("Statement[{index}]"),
    };
    let condition = match stmt.get("Condition") {
        Some(Value::Object(c)) => Some(c),
        _ => None,
    };
    let mut pins = Pins {
        label,
        has_condition: condition.is_some_and(|c| !c.is_empty()),
        aud: None,
        sub: None,
        oaud: None,
        absent_passes: None,
        inexact: None,
        unknown_keys: Vec::new(),
    };
    for test in condition.map(condition_tests).unwrap_or_default() {
        let Some(key) = test.google_key() else {
            continue;
        };
        let opens_when_absent = test.if_exists || test.qualifier == Some(Qualifier::ForAllValues);
        let slot = match key {
            GoogleKey::Other => {
                pins.unknown_keys.push(test.key);
                continue;
            }
            GoogleKey::Oaud => {
                if !opens_when_absent {
                    if let Exactness::Exact(values) = exactness(&test) {
                        pins.oaud.get_or_insert_with(BTreeSet::new).extend(values);
                    }
                }
                continue;
            }
            GoogleKey::Aud => &mut pins.aud,
            GoogleKey::Sub => &mut pins.sub,
        };
        if opens_when_absent {
            pins.absent_passes.get_or_insert(test.clone());
        }
        match exactness(&test) {
            Exactness::Exact(values) => slot.get_or_insert_with(BTreeSet::new).extend(values),
            Exactness::Pattern(value) => {
                pins.inexact.get_or_insert((test, value));
            }
            Exactness::NotAPin => {}
        }
    }
    pins
}

enum Exactness {
    Exact(Vec<String>),
    /// A value with a wildcard or a policy variable.
    Pattern(String),
    /// A negation, another operator, or values that are not non-empty strings.
    NotAPin,
}

/// Whether `test` requires the key to equal one of a few exact values.
fn exactness(test: &ConditionTest<'_>) -> Exactness {
    let base = test.base.to_ascii_lowercase();
    let equals = matches!(base.as_str(), "stringequals" | "stringequalsignorecase");
    if !equals && base != "stringlike" {
        return Exactness::NotAPin;
    }
    let Some(values) = strings(test.values).filter(|v| !v.is_empty()) else {
        return Exactness::NotAPin;
    };
    if values.iter().any(|v| v.is_empty()) {
        return Exactness::NotAPin;
    }
    let pattern = |v: &str| v.contains("${") || (!equals && (v.contains('*') || v.contains('?')));
    if let Some(p) = values.iter().find(|v| pattern(v)) {
        return Exactness::Pattern((*p).to_owned());
    }
    Exactness::Exact(values.into_iter().map(str::to_owned).collect())
}

/// The findings of one Google statement.
fn judge(p: &Pins<'_>, fix: &Fixes) -> Vec<Finding> {
    let at = |severity, key: &str, message: String, fix: String| Finding {
        severity,
        statement: p.label.clone(),
        key: key.to_owned(),
        message: format!("{}: {message}", p.label),
        fix,
    };
    const ANYONE: &str = "any Google identity in the world can assume the role (the caller \
                          chooses the audience it asks for)";
    if let Some(t) = &p.absent_passes {
        return vec![at(
            Severity::Critical,
            t.key,
            format!(
                "{} is tested with {}, which passes when the key is absent: {ANYONE}.",
                t.key, t.operator
            ),
            fix.pin(),
        )];
    }
    if p.aud.is_none() && p.sub.is_none() {
        let (key, message) = if !p.has_condition {
            (
                "Condition".to_owned(),
                format!("the statement has no Condition: {ANYONE}."),
            )
        } else if let Some((t, value)) = &p.inexact {
            (
                t.key.to_owned(),
                format!("{} is matched with {} {}, a pattern rather than an exact value, and neither {KEY_AUD} nor {KEY_SUB} is pinned exactly: {ANYONE}.", t.key, t.operator, json_string(value)),
            )
        } else {
            (
                format!("{KEY_AUD}, {KEY_SUB}"),
                format!("neither {KEY_AUD} nor {KEY_SUB} is pinned to an exact value (checking {KEY_OAUD} alone does not restrict who): {ANYONE}."),
            )
        };
        return vec![at(Severity::Critical, &key, message, fix.pin())];
    }
    let mut out = Vec::new();
    if p.oaud.is_none() {
        out.push(at(
            Severity::High,
            KEY_OAUD,
            format!("the service account is pinned, but the audience ({KEY_OAUD}) is not checked exactly: an ID token it minted for any other service is accepted too."),
            fix.oaud(),
        ));
    }
    match (&p.aud, &p.sub) {
        (Some(_), None) | (None, Some(_)) => {
            let (pinned, missing) = if p.aud.is_some() { (KEY_AUD, KEY_SUB) } else { (KEY_SUB, KEY_AUD) };
            out.push(at(
                Severity::Medium,
                missing,
                format!("only {pinned} is pinned; {missing} is not (gcpfed pins both to the same unique IDs)."),
                fix.pin(),
            ));
        }
        (Some(aud), Some(sub)) if aud != sub => out.push(at(
            Severity::Medium,
            KEY_SUB,
            format!("{KEY_AUD} is pinned to {aud:?} but {KEY_SUB} to {sub:?}: a service account's token carries its one unique ID in both, so only IDs in both lists can assume the role."),
            fix.pin(),
        )),
        _ => {}
    }
    for key in &p.unknown_keys {
        out.push(at(
            Severity::Medium,
            key,
            format!("{key} is a key STS does not set for Google tokens (only {KEY_AUD}, {KEY_OAUD} and {KEY_SUB}), so this test never matches and the role cannot be assumed as written."),
            fix.pin(),
        ));
    }
    for (key, ids) in [(KEY_AUD, &p.aud), (KEY_SUB, &p.sub)] {
        if let Some(bad) = ids.iter().flatten().find(|id| !is_numeric(id)) {
            out.push(at(
                Severity::Medium,
                key,
                format!("{key} is pinned to {}, which is not a numeric unique ID: a service account's token carries its 21-digit unique ID there, so this never matches.", json_string(bad)),
                fix.pin(),
            ));
        }
    }
    if out.is_empty() {
        out.push(at(
            Severity::Info,
            "Condition",
            format!("{KEY_AUD} and {KEY_SUB} are pinned to the same numeric unique IDs and {KEY_OAUD} is checked, as gcpfed_role renders it."),
            fix.adopt(),
        ));
    }
    out
}

/// The rule `gcpfed_role` applies to `service_account_unique_ids` ([`validate::unique_id`]).
fn is_numeric(id: &str) -> bool {
    validate::unique_id(id).is_ok()
}

/// The fixes of one role, in terms of what its trust already names.
struct Fixes {
    role: String,
    label: String,
    audience: String,
    ids: String,
}

impl Fixes {
    fn new(role: &str, grade: &Grade) -> Self {
        let numeric: Vec<String> = grade
            .unique_ids
            .iter()
            .filter(|id| is_numeric(id))
            .map(|id| json_string(id))
            .collect();
        let ids = if numeric.is_empty() {
            r#"["<service account unique_id>"]"#.to_owned()
        } else {
            format!("[{}]", numeric.join(", "))
        };
        let audience = match grade.audiences.iter().next() {
            Some(a) => json_string(a),
            None => r#""<audience>""#.to_owned(),
        };
        Fixes {
            role: role.to_owned(),
            label: terraform_label(role),
            audience,
            ids,
        }
    }

    fn manage(&self) -> String {
        format!(
            "resource \"gcpfed_role\" \"{label}\" {{ name = {role}, audience = {aud}, service_account_unique_ids = {ids} }} then `terraform import gcpfed_role.{label} {name}`",
            label = self.label,
            role = json_string(&self.role),
            name = self.role,
            aud = self.audience,
            ids = self.ids,
        )
    }

    /// Replace the trust with gcpfed's, then bring the role under gcpfed_role.
    fn pin(&self) -> String {
        format!(
            "Replace the trust policy with provider::gcpfed::trust_policy({aud}, {ids}) (for example as aws_iam_role's assume_role_policy), which pins {KEY_AUD} and {KEY_SUB} to the unique IDs and {KEY_OAUD} to the audience; to manage the role with gcpfed instead, write {manage}.",
            aud = self.audience,
            ids = self.ids,
            manage = self.manage(),
        )
    }

    fn oaud(&self) -> String {
        format!(
            "Add {KEY_OAUD} = {aud} to the StringEquals block, or replace the trust policy with provider::gcpfed::trust_policy({aud}, {ids}); to manage the role with gcpfed instead, write {manage}.",
            aud = self.audience,
            ids = self.ids,
            manage = self.manage(),
        )
    }

    fn adopt(&self) -> String {
        format!(
            "Nothing to fix. To manage the role with gcpfed, write {}.",
            self.manage()
        )
    }
}

/// A Terraform resource label made from a role name (`[A-Za-z_][A-Za-z0-9_-]*`).
fn terraform_label(role: &str) -> String {
    let mut label: String = role
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if !label.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_') {
        label.insert(0, '_');
    }
    label
}

#[cfg(test)]
#[path = "audit_tests.rs"]
mod tests;
