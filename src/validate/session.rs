//! What one exchange accepts, checked before the metadata server or STS sees it: the audience a
//! token is requested for, the service account, the role session name, the session's duration and
//! its session policies. The provider's `assume_role_with_gcp_identity` block, the
//! `gcpfed_credentials` data source and ephemeral resource, and `credential-process` all take
//! these; each passes the name its user typed as `label`.

use super::{
    audience_defect, character_refusal, first_bad_char, invalid, is_iam_name_char, AudienceDefect,
    Invalid,
};

/// The metadata server's alias for the account attached to the VM, node pool or Cloud Run
/// service; the service account when none is given.
pub const DEFAULT_SERVICE_ACCOUNT: &str = "default";
/// STS's bounds on `DurationSeconds` (15 minutes to 12 hours; the role's `MaxSessionDuration`
/// caps it further, which only STS knows).
pub const SESSION_DURATION_MIN: i64 = 900;
pub const SESSION_DURATION_MAX: i64 = 43200;
/// The duration when none is given, as STS's own default.
pub const SESSION_DURATION_DEFAULT: i64 = 3600;
/// STS accepts at most 10 managed session policies.
pub const POLICY_ARNS_MAX: usize = 10;
/// STS's `RoleSessionName`: `[\w+=,.@-]{2,64}`.
pub const SESSION_NAME_MIN: usize = 2;
pub const SESSION_NAME_MAX: usize = 64;

/// The audience requested from the metadata server, which must equal the role's
/// `accounts.google.com:oaud`. Refuses what [`super::audience`] refuses, with the caller's advice.
pub fn requested_audience(label: &str, audience: &str) -> Result<(), Invalid> {
    match audience_defect(audience) {
        None => Ok(()),
        Some(AudienceDefect::Empty) => invalid(
            "Empty audience",
            format!(
                "{label} is empty. Set it to the audience of the role's trust policy \
                 (accounts.google.com:oaud, gcpfed_role.x.audience); it is what the metadata \
                 server puts in the token's aud claim."
            ),
        ),
        Some(AudienceDefect::SurroundingWhitespace) => invalid(
            "Audience has surrounding whitespace",
            format!(
                "{label} {audience:?} starts or ends with whitespace, but the token's aud claim \
                 must equal the role's audience (accounts.google.com:oaud, gcpfed_role.x.audience) \
                 exactly. Remove the whitespace."
            ),
        ),
        Some(AudienceDefect::Characters(d)) => Err(character_refusal(label, audience, d)),
    }
}

/// The service account whose token the metadata server issues: `default` or an email. No `/`:
/// it goes in a URL path segment.
pub fn service_account(label: &str, account: &str) -> Result<(), Invalid> {
    let known =
        account == DEFAULT_SERVICE_ACCOUNT || (account.contains('@') && !account.contains('/'));
    if known {
        return Ok(());
    }
    invalid(
        "Invalid service account",
        format!(
            "{label} is {account:?}; the metadata server knows \"{DEFAULT_SERVICE_ACCOUNT}\" (the \
             account attached to this VM, node pool or Cloud Run service) or a service account's \
             email, such as \"ci-runner@my-project.iam.gserviceaccount.com\"."
        ),
    )
}

/// What is wrong with an explicit role session name. Typed, because the exchange carries it in
/// its own error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SessionNameError {
    #[error("must be at least {SESSION_NAME_MIN} characters long, got {0}")]
    TooShort(usize),
    #[error("must be at most {SESSION_NAME_MAX} characters long, got {0}")]
    TooLong(usize),
    #[error("may contain only letters, digits and _+=,.@- (found {found})")]
    BadCharacters { found: String },
}

/// Checks a session name the user gave: it is their choice, so it is refused, never rewritten
/// ([`crate::session_name`] fits derived names instead).
pub fn check_session_name(name: &str) -> Result<(), SessionNameError> {
    if first_bad_char(name, is_iam_name_char).is_some() {
        let mut bad: Vec<char> = name.chars().filter(|c| !is_iam_name_char(*c)).collect();
        bad.dedup();
        let found = bad
            .iter()
            .take(10)
            .map(|c| format!("{c:?}"))
            .collect::<Vec<_>>()
            .join(", ");
        return Err(SessionNameError::BadCharacters { found });
    }
    let len = name.chars().count();
    if len < SESSION_NAME_MIN {
        return Err(SessionNameError::TooShort(len));
    }
    if len > SESSION_NAME_MAX {
        return Err(SessionNameError::TooLong(len));
    }
    Ok(())
}

/// [`check_session_name`] as an argument error.
pub fn session_name(label: &str, name: &str) -> Result<(), Invalid> {
    check_session_name(name).or_else(|e| {
        invalid(
            "Invalid session name",
            format!(
                "{label} {name:?} {e}. STS requires {SESSION_NAME_MIN}–{SESSION_NAME_MAX} \
                 characters matching [\\w+=,.@-]; leave it out to use the token's subject."
            ),
        )
    })
}

/// The session's lifetime in seconds.
pub fn session_duration(label: &str, seconds: i64) -> Result<(), Invalid> {
    if (SESSION_DURATION_MIN..=SESSION_DURATION_MAX).contains(&seconds) {
        return Ok(());
    }
    invalid(
        "Invalid session duration",
        format!(
            "{label} is {seconds}; STS accepts {SESSION_DURATION_MIN} (15 minutes) to \
             {SESSION_DURATION_MAX} (12 hours), and at most the role's max_session_duration. \
             Leave it out for {SESSION_DURATION_DEFAULT}."
        ),
    )
}

/// The number of managed session policies (each one is checked with [`super::policy_arn`]).
pub fn policy_arn_count(label: &str, count: usize) -> Result<(), Invalid> {
    if count <= POLICY_ARNS_MAX {
        return Ok(());
    }
    invalid(
        "Too many session policies",
        format!(
            "{label} names {count} policies; STS accepts at most {POLICY_ARNS_MAX} managed session \
             policies."
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validate::detail;

    #[test]
    fn requested_audiences_refuse_blanks_and_padding_naming_the_label() {
        assert!(requested_audience("audience", "sts.amazonaws.com/ci").is_ok());
        for blank in ["", " ", "\t"] {
            let e = requested_audience("--audience", blank).unwrap_err();
            assert_eq!(e.summary, "Empty audience");
            assert!(e.detail.starts_with("--audience is empty"), "{}", e.detail);
            assert!(e.detail.contains("gcpfed_role.x.audience"), "{}", e.detail);
        }
        let e = requested_audience("audience", " aws-ci").unwrap_err();
        assert_eq!(e.summary, "Audience has surrounding whitespace");
        assert!(e.detail.starts_with("audience \" aws-ci\""), "{}", e.detail);
        assert!(e.detail.contains("Remove the whitespace"), "{}", e.detail);
    }

    #[test]
    fn service_accounts_are_default_or_an_email() {
        for ok in ["default", "ci-runner@gcpfed-test.iam.gserviceaccount.com"] {
            assert!(service_account("service_account", ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "ci-runner",
            "104857600000000000001",
            "../token",
            "a/b@c",
        ] {
            let d = detail(service_account("--service-account", bad));
            assert!(d.starts_with("--service-account is"), "{d}");
            assert!(d.contains("email"), "{d}");
        }
    }

    #[test]
    fn explicit_session_names_are_checked_not_rewritten() {
        assert_eq!(check_session_name("ci-run_42@gcp.example,a=b+c"), Ok(()));
        assert_eq!(check_session_name("ab"), Ok(()));
        assert_eq!(check_session_name(&"x".repeat(64)), Ok(()));
        assert_eq!(check_session_name("a"), Err(SessionNameError::TooShort(1)));
        assert_eq!(check_session_name(""), Err(SessionNameError::TooShort(0)));
        // \w in the AWS pattern is ASCII only.
        assert!(matches!(
            check_session_name("café"),
            Err(SessionNameError::BadCharacters { .. })
        ));
        let e = check_session_name("a:b").unwrap_err();
        assert!(e.to_string().contains("_+=,.@-"), "{e}");
        assert_eq!(
            check_session_name(&"x".repeat(65)),
            Err(SessionNameError::TooLong(65))
        );
        assert_eq!(
            check_session_name("my session/1"),
            Err(SessionNameError::BadCharacters {
                found: "' ', '/'".into()
            })
        );
        let d = detail(session_name("session_name", "has space"));
        assert!(d.starts_with("session_name \"has space\""), "{d}");
        assert!(d.contains("[\\w+=,.@-]"), "{d}");
    }

    #[test]
    fn session_durations_are_inclusive_and_name_the_default() {
        for (seconds, ok) in [(899, false), (900, true), (43200, true), (43201, false)] {
            assert_eq!(
                session_duration("duration_seconds", seconds).is_ok(),
                ok,
                "{seconds}"
            );
        }
        let d = detail(session_duration("duration_seconds", 600));
        assert!(d.contains("STS accepts 900 (15 minutes) to 43200"), "{d}");
        assert!(d.contains("Leave it out for 3600"), "{d}");
    }

    #[test]
    fn at_most_ten_session_policies() {
        assert!(policy_arn_count("policy_arns", 10).is_ok());
        let e = policy_arn_count("policy_arns", 11).unwrap_err();
        assert_eq!(e.summary, "Too many session policies");
        assert!(e.detail.contains("at most 10"), "{}", e.detail);
    }
}
