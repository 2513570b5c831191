//! Owns the decisions to adopt a role that exists already: one CreateRole reports as existing
//! ([`mismatches`]), and one named by an import whose trust is open to any Google identity
//! ([`open_to_any_google_identity`]).
//!
//! A CreateRole can reach IAM and lose its answer on the way back (a reset connection, an
//! attempt timeout); the SDK then retries and meets EntityAlreadyExists for the role this very
//! apply made. Failing there would leave that role in IAM outside state. So the role is read
//! back and adopted, but only when everything this apply sent shows it is ours: the trust policy
//! (semantically equal to the rendered one), the path, the tags, and a creation time no earlier
//! than this create began (less [`CLOCK_SKEW`]). Anything else is someone else's role, and the
//! apply fails naming what did not match. Pure: the caller does the IAM calls.

use std::time::{Duration, SystemTime};

use aws_smithy_types::date_time::Format;
use aws_smithy_types::DateTime;

use super::iam::{NewRole, RemoteRole};
use crate::trust_policy::audit::{grade_trust_policy, Finding, Severity};
use crate::trust_policy::policies_equivalent;

/// Allowed difference between this machine's clock and IAM's when judging the creation time.
pub const CLOCK_SKEW: Duration = Duration::from_secs(60);

/// What shows that `remote` is not the role this create made (empty: adopt it). `started` is
/// when this create began, `now` when the role was read.
pub fn mismatches(
    remote: &RemoteRole,
    want: &NewRole<'_>,
    started: SystemTime,
    now: SystemTime,
) -> Vec<String> {
    let mut out = Vec::new();
    let trust_matches = remote
        .trust_policy
        .as_deref()
        .is_some_and(|doc| policies_equivalent(doc, want.trust_policy));
    if !trust_matches {
        out.push(
            "its trust policy is not the one rendered from audience and service_account_unique_ids"
                .to_owned(),
        );
    }
    if remote.path != want.path {
        out.push(format!(
            "its path is {:?}, not {:?}",
            remote.path, want.path
        ));
    }
    if &remote.tags != want.tags {
        let keys: Vec<&str> = remote.tags.keys().map(String::as_str).collect();
        out.push(format!(
            "its tags (keys: [{}]) are not the configured tags",
            keys.join(", ")
        ));
    }
    match created_at(&remote.create_date) {
        Some(created) if created + CLOCK_SKEW >= started && created <= now + CLOCK_SKEW => {}
        _ => out.push(format!(
            "its creation time ({}) is before this apply began to create it",
            remote.create_date
        )),
    }
    out
}

/// Import refuses a role any Google identity in the world can assume, with the audit's own
/// finding text (the same words `gcpfed_google_trusts` and `audit` print), so the user learns
/// what is open and how to close it rather than only that the shape differs. `None`: no
/// critical finding (the shape check still decides the rest).
pub fn open_to_any_google_identity(role: &str, trust_policy: Option<&str>) -> Option<String> {
    let grade = grade_trust_policy(role, trust_policy?)?;
    let critical: Vec<String> = grade
        .findings
        .iter()
        .filter(|f| f.severity == Severity::Critical)
        .map(Finding::text)
        .collect();
    if critical.is_empty() {
        return None;
    }
    Some(format!(
        "Role {role:?} can be assumed by any Google identity, so gcpfed_role will not adopt it: \
         importing would hide that. Close the trust first, then import.\n\n{}",
        critical.join("\n")
    ))
}

fn created_at(text: &str) -> Option<SystemTime> {
    let date = DateTime::from_str(text, Format::DateTime).ok()?;
    SystemTime::try_from(date).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    const TRUST: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Federated":"accounts.google.com"},"Action":"sts:AssumeRoleWithWebIdentity","Condition":{"StringEquals":{"accounts.google.com:aud":"104857600000000000001","accounts.google.com:oaud":"a","accounts.google.com:sub":"104857600000000000001"}}}]}"#;

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn remote(created: u64) -> RemoteRole {
        RemoteRole {
            path: "/ci/".into(),
            // IAM hands documents back URL-encoded and reordered; equivalence sees through it.
            trust_policy: Some(TRUST.replace("\"Version\":\"2012-10-17\",", "").replacen(
                "{",
                "{\"Version\":\"2012-10-17\",",
                1,
            )),
            tags: BTreeMap::from([("team".into(), "ci".into())]),
            create_date: DateTime::from_secs(created as i64)
                .fmt(Format::DateTime)
                .unwrap(),
            ..Default::default()
        }
    }

    fn want(tags: &BTreeMap<String, String>) -> NewRole<'_> {
        NewRole {
            name: "r",
            path: "/ci/",
            trust_policy: TRUST,
            description: None,
            max_session_duration: 3600,
            permissions_boundary: None,
            tags,
        }
    }

    #[test]
    fn the_role_this_create_made_is_adopted() {
        let tags = BTreeMap::from([("team".to_owned(), "ci".to_owned())]);
        let started = at(1_800_000_000);
        assert!(mismatches(
            &remote(1_800_000_002),
            &want(&tags),
            started,
            at(1_800_000_005)
        )
        .is_empty());
        // IAM's clock a little behind ours.
        assert!(mismatches(
            &remote(1_799_999_970),
            &want(&tags),
            started,
            at(1_800_000_005)
        )
        .is_empty());
    }

    #[test]
    fn an_open_trust_is_refused_with_the_audit_finding() {
        let open = r#"{"Version":"2012-10-17","Statement":[{"Sid":"Any","Effect":"Allow","Principal":{"Federated":"accounts.google.com"},"Action":"sts:AssumeRoleWithWebIdentity","Condition":{"StringEquals":{"accounts.google.com:oaud":"a"}}}]}"#;
        let why = open_to_any_google_identity("r", Some(open)).unwrap();
        assert!(
            why.starts_with("Role \"r\" can be assumed by any Google identity"),
            "{why}"
        );
        assert!(why.contains(concat!(
            "[critical] Statement[0] (Sid \"Any\"): neither accounts.google.com:aud nor ",
            "accounts.google.com:sub is pinned to an exact value (checking accounts.google.com:oaud ",
            "alone does not restrict who): any Google identity in the world can assume the role ",
            "(the caller chooses the audience it asks for). Fix: Replace the trust policy with ",
            "provider::gcpfed::trust_policy(\"a\", [\"<service account unique_id>\"])"
        )), "{why}");
        assert_eq!(open_to_any_google_identity("r", Some(TRUST)), None);
        assert_eq!(open_to_any_google_identity("r", None), None);
    }

    #[test]
    fn every_difference_is_named() {
        let tags = BTreeMap::from([("owner".to_owned(), "x".to_owned())]);
        let mut r = remote(1_700_000_000);
        r.path = "/other/".into();
        r.trust_policy = Some(TRUST.replace("\"a\"", "\"b\""));
        let found = mismatches(&r, &want(&tags), at(1_800_000_000), at(1_800_000_005)).join("; ");
        for what in ["trust policy", "path", "tags", "creation time"] {
            assert!(found.contains(what), "{what} missing in {found}");
        }
    }
}
