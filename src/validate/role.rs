//! What IAM accepts for a role, checked before IAM sees it: the name, path, description, maximum
//! session duration, tags, managed and inline policies, and the trust policy's inputs (the
//! audience and the service accounts' unique IDs).
//!
//! Limits follow the IAM API reference (CreateRole, TagRole, PutRolePolicy). The number of
//! managed policies per role is deliberately not checked: the quota (10 by default) can be raised
//! to 20 per account, the Terraform AWS provider does not check it either, and IAM's own
//! LimitExceeded error at apply names the quota.

use super::{
    audience_defect, character_refusal, first_bad_char, invalid, is_iam_name_char, is_path_char,
    AudienceDefect, Invalid,
};

pub const ROLE_NAME_MAX: usize = 64;
pub const ROLE_PATH_MAX: usize = 512;
pub const DESCRIPTION_MAX: usize = 1000;
/// The bounds of a role's `max_session_duration` (1 to 12 hours); a session's own duration has
/// wider ones ([`super::SESSION_DURATION_MIN`]).
pub const MAX_SESSION_DURATION_MIN: i64 = 3600;
pub const MAX_SESSION_DURATION_MAX: i64 = 43200;
pub const TAGS_MAX: usize = 50;
pub const TAG_KEY_MAX: usize = 128;
pub const TAG_VALUE_MAX: usize = 256;
pub const POLICY_NAME_MAX: usize = 128;
/// IAM's limit on the summed size of a role's inline policies, whitespace not counted.
pub const INLINE_POLICIES_TOTAL_MAX: usize = 10_240;

/// Role names: 1–64 characters of `[\w+=,.@-]`.
pub fn role_name(name: &str) -> Result<(), Invalid> {
    const S: &str = "Invalid role name";
    let len = name.chars().count();
    if len == 0 {
        return invalid(
            S,
            "The role name is empty. Give 1 to 64 characters of letters, digits and _+=,.@-.",
        );
    }
    if len > ROLE_NAME_MAX {
        return invalid(
            S,
            format!("The role name has {len} characters; IAM allows at most {ROLE_NAME_MAX}. Shorten it."),
        );
    }
    if let Some(c) = first_bad_char(name, is_iam_name_char) {
        return invalid(
            S,
            format!("The role name contains {c:?}; IAM role names allow only letters, digits and _+=,.@- (pattern [\\w+=,.@-]{{1,64}}). Remove or replace it."),
        );
    }
    Ok(())
}

/// Paths: `/` or `/segments/`, printable ASCII without spaces, at most 512 characters.
pub fn role_path(path: &str) -> Result<(), Invalid> {
    const S: &str = "Invalid role path";
    let len = path.chars().count();
    if len > ROLE_PATH_MAX {
        return invalid(
            S,
            format!(
                "The path has {len} characters; IAM allows at most {ROLE_PATH_MAX}. Shorten it."
            ),
        );
    }
    if !path.starts_with('/') || !path.ends_with('/') {
        return invalid(
            S,
            format!(
                "The path {path:?} must start and end with \"/\", for example \"/\" or \"/ci/\"."
            ),
        );
    }
    if path.contains("//") {
        return invalid(
            S,
            format!(
                "The path {path:?} contains an empty segment (\"//\"); use for example \"/ci/\"."
            ),
        );
    }
    if let Some(c) = first_bad_char(path, is_path_char) {
        return invalid(
            S,
            format!("The path contains {c:?}; IAM paths allow printable ASCII characters other than space. Remove it."),
        );
    }
    Ok(())
}

/// Descriptions: at most 1000 characters from IAM's allowed set (tab, newlines, printable ASCII,
/// Latin-1 letters and symbols).
pub fn description(d: &str) -> Result<(), Invalid> {
    const S: &str = "Invalid role description";
    let len = d.chars().count();
    if len > DESCRIPTION_MAX {
        return invalid(S, format!("The description has {len} characters; IAM allows at most {DESCRIPTION_MAX}. Shorten it."));
    }
    let ok = |c: char| matches!(c, '\t' | '\n' | '\r' | ' '..='~' | '\u{A1}'..='\u{FF}');
    if let Some(c) = first_bad_char(d, ok) {
        return invalid(
            S,
            format!("The description contains {c:?} (U+{:04X}), which IAM refuses; it allows printable ASCII, tabs, newlines and Latin-1 characters. Remove or replace it.", c as u32),
        );
    }
    Ok(())
}

/// The audience a role's trust policy renders as `accounts.google.com:oaud`: the advice is the
/// role owner's (choose it, and use it in `gcpfed_credentials`); callers that request a token
/// for a role's audience get [`super::requested_audience`]'s.
pub fn audience(a: &str) -> Result<(), Invalid> {
    match audience_defect(a) {
        None => Ok(()),
        Some(AudienceDefect::Empty) => invalid(
            "Empty audience",
            "The audience is empty; a trust policy without accounts.google.com:oaud would accept a Google token issued for any audience. Set audience to the string your workload requests from the metadata server, for example \"sts.amazonaws.com/my-role\", and use the same value in gcpfed_credentials.",
        ),
        Some(AudienceDefect::SurroundingWhitespace) => invalid(
            "Audience has surrounding whitespace",
            format!("The audience {a:?} starts or ends with whitespace; the token's aud claim would have to match it exactly. Remove the whitespace."),
        ),
        Some(AudienceDefect::Characters(d)) => Err(character_refusal("audience", a, d)),
    }
}

/// A Google service account's numeric unique ID (21 digits for real accounts).
pub fn unique_id(id: &str) -> Result<(), Invalid> {
    const S: &str = "Invalid service account unique ID";
    if id.is_empty() {
        return invalid(S, "A unique ID is empty. Use the service account's numeric unique ID (google_service_account.x.unique_id).");
    }
    if id.contains('@') {
        return invalid(
            "Service account email given instead of its unique ID",
            format!("{id:?} is an email address, but the token claims AWS compares (azp and sub) carry the numeric unique ID. Use the numeric unique ID (google_service_account.x.unique_id), shown by `gcloud iam service-accounts describe {id} --format='value(uniqueId)'`."),
        );
    }
    if !id.bytes().all(|b| b.is_ascii_digit()) {
        return invalid(
            S,
            format!("{id:?} is not all digits. Use the numeric unique ID (google_service_account.x.unique_id), 21 digits for a real service account."),
        );
    }
    Ok(())
}

/// The length of the unique IDs Google issues to service accounts.
pub const UNIQUE_ID_LEN: usize = 21;

/// A warning, not a refusal, for an all-digit ID of another length than Google issues: most
/// likely a typo or a truncated copy (which no token would ever match), but emulators and tests
/// use shorter ones, so it does not stop a plan. `None` for 21 digits or an ID [`unique_id`]
/// refuses anyway.
pub fn unique_id_length(id: &str) -> Option<Invalid> {
    let digits = !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit());
    if !digits || id.len() == UNIQUE_ID_LEN {
        return None;
    }
    Some(Invalid {
        summary: "Unusual service account unique ID",
        detail: format!(
            "{id:?} has {} digits, but Google issues service account unique IDs of {UNIQUE_ID_LEN} \
             digits, so no Google token would carry it. Check it against \
             `gcloud iam service-accounts describe EMAIL --format='value(uniqueId)'` or use \
             google_service_account.x.unique_id.",
            id.len()
        ),
    })
}

/// The number of service account unique IDs a trust policy names: none would leave a trust policy
/// that no Google identity matches (and [`crate::trust_policy::TrustInputs`] refuses to render).
pub fn unique_id_count(n: usize) -> Result<(), Invalid> {
    if n == 0 {
        return invalid(
            "No service account unique ID",
            "No service account unique ID is given, so no Google identity could assume the role. List at least one service account's numeric unique ID (google_service_account.x.unique_id).",
        );
    }
    Ok(())
}

/// `max_session_duration`: 1 to 12 hours in seconds.
pub fn max_session_duration(seconds: i64) -> Result<(), Invalid> {
    if !(MAX_SESSION_DURATION_MIN..=MAX_SESSION_DURATION_MAX).contains(&seconds) {
        return invalid(
            "Invalid maximum session duration",
            format!("max_session_duration is {seconds}; IAM accepts {MAX_SESSION_DURATION_MIN} (1 hour) to {MAX_SESSION_DURATION_MAX} (12 hours) seconds. Set a value in that range or leave it out for 3600."),
        );
    }
    Ok(())
}

/// The number of tags on one role.
pub fn tag_count(n: usize) -> Result<(), Invalid> {
    if n > TAGS_MAX {
        return invalid(
            "Too many tags",
            format!("{n} tags are given; IAM allows at most {TAGS_MAX} tags per role. Remove {} of them.", n - TAGS_MAX),
        );
    }
    Ok(())
}

/// Letters, numbers, whitespace and `_ . : / = + - @`, the characters IAM allows in tags.
fn is_tag_char(c: char) -> bool {
    c.is_alphanumeric() || c.is_whitespace() || "_.:/=+-@".contains(c)
}

pub fn tag_key(key: &str) -> Result<(), Invalid> {
    const S: &str = "Invalid tag key";
    let len = key.chars().count();
    if len == 0 || len > TAG_KEY_MAX {
        return invalid(S, format!("The tag key {key:?} has {len} characters; IAM allows 1 to {TAG_KEY_MAX}. Shorten or fill it."));
    }
    if key.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("aws:")) {
        return invalid(S, format!("The tag key {key:?} starts with \"aws:\", a prefix reserved for AWS. Choose another key."));
    }
    if let Some(c) = first_bad_char(key, is_tag_char) {
        return invalid(S, format!("The tag key {key:?} contains {c:?}; IAM allows letters, digits, spaces and _.:/=+-@. Remove it."));
    }
    Ok(())
}

pub fn tag_value(key: &str, value: &str) -> Result<(), Invalid> {
    const S: &str = "Invalid tag value";
    let len = value.chars().count();
    if len > TAG_VALUE_MAX {
        return invalid(S, format!("The value of tag {key:?} has {len} characters; IAM allows at most {TAG_VALUE_MAX}. Shorten it."));
    }
    if let Some(c) = first_bad_char(value, is_tag_char) {
        return invalid(S, format!("The value of tag {key:?} contains {c:?}; IAM allows letters, digits, spaces and _.:/=+-@. Remove it."));
    }
    Ok(())
}

/// Inline policy names: 1–128 characters of `[\w+=,.@-]`.
pub fn inline_policy_name(name: &str) -> Result<(), Invalid> {
    let len = name.chars().count();
    if len == 0 || len > POLICY_NAME_MAX || first_bad_char(name, is_iam_name_char).is_some() {
        return invalid(
            "Invalid inline policy name",
            format!("The inline policy name {name:?} is not 1 to {POLICY_NAME_MAX} characters of letters, digits and _+=,.@-. Rename the map key."),
        );
    }
    Ok(())
}

/// A policy document: a JSON object with a `Statement`, as IAM requires, and no key repeated in
/// any object (a parser keeps one of the two values silently, and not every reader the same).
pub fn policy_document(doc: &str) -> Result<(), Invalid> {
    const S: &str = "Invalid policy document";
    let fix = "Write the document with jsonencode({ Version = \"2012-10-17\", Statement = [ … ] }) or data.aws_iam_policy_document.x.json.";
    let parsed = serde_json::from_str::<serde_json::Value>(doc);
    if let (Ok(_), Some(r)) = (&parsed, super::repeated_key(doc)) {
        return invalid(
            "Repeated key in policy document",
            format!("In the policy, {r}: a JSON parser keeps only one of the values, so what IAM enforces may not be what the document shows. Keep one {:?} (merge the values into it). {fix}", r.key),
        );
    }
    match parsed {
        Err(e) => invalid(S, format!("The policy is not valid JSON ({e}). {fix}")),
        Ok(serde_json::Value::Object(m)) if m.contains_key("Statement") => Ok(()),
        Ok(serde_json::Value::Object(_)) => {
            invalid(S, format!("The policy has no \"Statement\". {fix}"))
        }
        Ok(_) => invalid(
            S,
            format!("The policy is JSON but not a JSON object. {fix}"),
        ),
    }
}

/// The summed size of a role's inline policies (IAM counts characters without whitespace).
pub fn inline_policies_total<'a>(docs: impl IntoIterator<Item = &'a str>) -> Result<(), Invalid> {
    let total: usize = docs
        .into_iter()
        .map(|d| d.chars().filter(|c| !c.is_whitespace()).count())
        .sum();
    if total > INLINE_POLICIES_TOTAL_MAX {
        return invalid(
            "Inline policies too large",
            format!("The inline policies total {total} characters (whitespace not counted); IAM allows {INLINE_POLICIES_TOTAL_MAX} per role. Move statements into managed policies (aws_iam_policy) and list them in managed_policy_arns."),
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validate::detail;

    #[test]
    fn role_names() {
        assert!(role_name("gcpfed-ci_runner+=,.@x").is_ok());
        assert!(role_name(&"a".repeat(64)).is_ok());
        assert!(detail(role_name(&"a".repeat(65))).contains("65 characters"));
        assert!(detail(role_name("")).contains("empty"));
        assert!(detail(role_name("a b")).contains("' '"));
        assert!(detail(role_name("rôle")).contains("'ô'"));
        assert!(detail(role_name("a/b")).contains("[\\w+=,.@-]{1,64}"));
    }

    #[test]
    fn paths() {
        for ok in ["/", "/ci/", "/a/b-c/", &format!("/{}/", "p".repeat(510))] {
            assert!(role_path(ok).is_ok(), "{ok}");
        }
        assert!(detail(role_path("ci")).contains("start and end with \"/\""));
        assert!(detail(role_path("/ci")).contains("start and end"));
        assert!(detail(role_path("//")).contains("empty segment"));
        assert!(detail(role_path("/a b/")).contains("' '"));
        assert!(detail(role_path(&format!("/{}/", "p".repeat(511)))).contains("513 characters"));
    }

    #[test]
    fn descriptions() {
        assert!(description("").is_ok());
        assert!(description("Déploiement\tCI\n").is_ok());
        assert!(description(&"d".repeat(1000)).is_ok());
        assert!(detail(description(&"d".repeat(1001))).contains("1001 characters"));
        assert!(detail(description("emoji 🚀")).contains("U+1F680"));
    }

    #[test]
    fn audiences() {
        assert!(audience("sts.amazonaws.com/gcpfed").is_ok());
        assert!(detail(audience("")).contains("Set audience"));
        assert!(detail(audience(" x")).contains("whitespace"));
        assert!(detail(audience(" ")).contains("Set audience"));
    }

    #[test]
    fn unique_ids() {
        assert!(unique_id("104857600000000000001").is_ok());
        let email = unique_id("ci@p.iam.gserviceaccount.com").unwrap_err();
        assert!(email.summary.contains("email"));
        assert!(email.detail.contains("google_service_account.x.unique_id"));
        assert!(detail(unique_id("12a")).contains("google_service_account.x.unique_id"));
        assert!(detail(unique_id("")).contains("empty"));
        assert_eq!(unique_id_length("104857600000000000001"), None);
        assert_eq!(unique_id_length("ci@p"), None);
        let short = unique_id_length("1048576").unwrap().detail;
        assert!(short.contains("\"1048576\" has 7 digits"), "{short}");
        assert!(
            short.contains("gcloud iam service-accounts describe EMAIL --format='value(uniqueId)'"),
            "{short}"
        );
        assert!(unique_id_length(&"1".repeat(22)).is_some());
    }

    #[test]
    fn session_durations() {
        assert!(max_session_duration(3600).is_ok());
        assert!(max_session_duration(43200).is_ok());
        assert!(detail(max_session_duration(100)).contains("3600 (1 hour) to 43200"));
        assert!(max_session_duration(43201).is_err());
    }

    #[test]
    fn tags() {
        assert!(tag_count(50).is_ok());
        assert!(detail(tag_count(51)).contains("Remove 1"));
        assert!(tag_key("team/owner:x=y+z-@ é").is_ok());
        assert!(detail(tag_key("")).contains("1 to 128"));
        assert!(detail(tag_key(&"k".repeat(129))).contains("129 characters"));
        assert!(detail(tag_key("AWS:created")).contains("reserved"));
        assert!(detail(tag_key("a;b")).contains("';'"));
        assert!(tag_value("k", "").is_ok());
        assert!(tag_value("k", &"v".repeat(256)).is_ok());
        assert!(detail(tag_value("k", &"v".repeat(257))).contains("257 characters"));
        assert!(detail(tag_value("k", "a|b")).contains("'|'"));
    }

    #[test]
    fn inline_policies() {
        assert!(inline_policy_name("read-bucket").is_ok());
        assert!(detail(inline_policy_name("read bucket")).contains("Rename the map key"));
        assert!(detail(inline_policy_name(&"p".repeat(129))).contains("128"));
        assert!(policy_document(r#"{"Version":"2012-10-17","Statement":[]}"#).is_ok());
        assert!(detail(policy_document("{nope")).contains("not valid JSON"));
        assert!(detail(policy_document("[]")).contains("not a JSON object"));
        assert!(detail(policy_document("{}")).contains("no \"Statement\""));
        assert!(detail(policy_document("{}")).contains("jsonencode"));
        let repeated = policy_document(
            r#"{"Statement":[{"Effect":"Deny","Effect":"Allow","Action":"*","Resource":"*"}]}"#,
        )
        .unwrap_err();
        assert_eq!(repeated.summary, "Repeated key in policy document");
        assert!(
            repeated
                .detail
                .contains("the key \"Effect\" occurs more than once in Statement[0]"),
            "{}",
            repeated.detail
        );
        let big = format!("{{\"Statement\":\"{}\"}}", "x".repeat(10_300));
        assert!(inline_policies_total([big.as_str()]).is_err());
        let spaced = format!("{{\"Statement\":[{}]}}", " ".repeat(20_000));
        assert!(inline_policies_total([spaced.as_str()]).is_ok());
    }
}
