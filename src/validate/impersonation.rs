//! What the IAM Credentials API accepts for impersonation: the account to impersonate (an email
//! or a numeric unique ID) and the delegation chain, whose entries Google wants in the one form
//! `projects/-/serviceAccounts/{EMAIL_OR_UNIQUE_ID}` (the `-` wildcard is required: a project ID
//! in its place is refused by the API). Users may write the bare email or ID; [`delegates`]
//! normalises, so the cache key and the request never differ for the same chain.

use super::{invalid, Invalid};

/// The one form the API accepts for a delegate.
pub const DELEGATE_PREFIX: &str = "projects/-/serviceAccounts/";

/// The OAuth scope an access token needs for `generateIdToken`.
pub const CLOUD_PLATFORM_SCOPE: &str = "https://www.googleapis.com/auth/cloud-platform";

/// An email (`name@project.iam.gserviceaccount.com`) or a numeric unique ID: the two ways the
/// API names a service account.
fn is_account(text: &str) -> bool {
    let email = match text.split_once('@') {
        Some((name, domain)) => {
            !name.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !text.contains(['/', ' ', ':', '?', '#', '%'])
                && text.matches('@').count() == 1
        }
        None => false,
    };
    email || (!text.is_empty() && text.len() <= 32 && text.bytes().all(|b| b.is_ascii_digit()))
}

/// The account to impersonate (`impersonate_service_account`, `--impersonate-service-account`).
pub fn impersonated_account(label: &str, account: &str) -> Result<(), Invalid> {
    if is_account(account) {
        return Ok(());
    }
    let hint = if account.starts_with("projects/") {
        " Give the bare email or unique ID here (the projects/-/serviceAccounts/ form is for \
         delegates)."
    } else if account == super::DEFAULT_SERVICE_ACCOUNT {
        " \"default\" is a metadata-server alias of the runner's own account; name the account \
         to impersonate by its email."
    } else {
        ""
    };
    invalid(
        "Invalid service account to impersonate",
        format!(
            "{label} is {account:?}; it must be a service account's email, such as \
             \"team-a@my-project.iam.gserviceaccount.com\", or its numeric unique ID.{hint}"
        ),
    )
}

/// One delegate, normalised to `projects/-/serviceAccounts/…`.
pub fn delegate(label: &str, entry: &str) -> Result<String, Invalid> {
    let account = match entry.strip_prefix("projects/") {
        None => entry,
        Some(rest) => match rest.split_once("/serviceAccounts/") {
            Some(("-", account)) => account,
            Some((project, _)) => {
                return invalid(
                    "Invalid delegate",
                    format!(
                        "{label} has {entry:?}: the IAM Credentials API requires the `-` wildcard \
                         in place of the project ({project:?}). Write \
                         \"{DELEGATE_PREFIX}<email or unique ID>\" or just the email."
                    ),
                )
            }
            None => "",
        },
    };
    if !is_account(account) {
        return invalid(
            "Invalid delegate",
            format!(
                "{label} has {entry:?}; each delegate is a service account's email or unique ID, \
                 optionally written \"{DELEGATE_PREFIX}<email or unique ID>\"."
            ),
        );
    }
    Ok(format!("{DELEGATE_PREFIX}{account}"))
}

/// The delegation chain, in the API's order: the caller can impersonate the first delegate,
/// each delegate the next, and the last one the impersonated account. Normalised; `target` is
/// the impersonated account, if any (a chain without one has nothing to lead to).
pub fn delegates(
    label: &str,
    entries: &[String],
    target: Option<&str>,
    target_label: &str,
) -> Result<Vec<String>, Invalid> {
    if !entries.is_empty() && target.is_none() {
        return invalid(
            "Delegates without an account to impersonate",
            format!(
                "{label} lists a delegation chain, but {target_label} is not set: delegates only \
                 lead to the account to impersonate. Set {target_label}, or remove {label}."
            ),
        );
    }
    let mut out: Vec<String> = Vec::with_capacity(entries.len());
    for entry in entries {
        let normalised = delegate(label, entry)?;
        if out.contains(&normalised) {
            return invalid(
                "Repeated delegate",
                format!(
                    "{label} names {entry:?} twice; a delegation chain passes through each \
                     account once. Remove the repetition."
                ),
            );
        }
        out.push(normalised);
    }
    Ok(out)
}

/// The account a normalised delegate names (for messages and gcloud commands).
pub fn delegate_account(delegate: &str) -> &str {
    delegate.strip_prefix(DELEGATE_PREFIX).unwrap_or(delegate)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SA: &str = "team-a@gcpfed-test.iam.gserviceaccount.com";

    #[test]
    fn accounts_are_emails_or_unique_ids() {
        for ok in [
            SA,
            "104857600000000000011",
            "x@p.appspot.gserviceaccount.com",
        ] {
            assert_eq!(impersonated_account("a", ok), Ok(()), "{ok}");
        }
        for bad in [
            "",
            "default",
            "team-a",
            "a@b",
            "a@b@c.com",
            "../a@b.com",
            "projects/-/serviceAccounts/a@b.com",
            "12a",
        ] {
            assert!(impersonated_account("a", bad).is_err(), "{bad:?}");
        }
        let e = impersonated_account("`impersonate_service_account`", "default").unwrap_err();
        assert!(
            e.detail
                .contains("name the account to impersonate by its email"),
            "{e}"
        );
        let e = impersonated_account("x", "projects/-/serviceAccounts/a@b.com").unwrap_err();
        assert!(e.detail.contains("bare email"), "{e}");
    }

    #[test]
    fn delegates_are_normalised_and_keep_their_order() {
        let got = delegates(
            "delegates",
            &[
                "hop-2@p.iam.gserviceaccount.com".into(),
                "projects/-/serviceAccounts/hop-1@p.iam.gserviceaccount.com".into(),
                "104857600000000000021".into(),
            ],
            Some(SA),
            "target",
        )
        .unwrap();
        assert_eq!(
            got,
            vec![
                "projects/-/serviceAccounts/hop-2@p.iam.gserviceaccount.com",
                "projects/-/serviceAccounts/hop-1@p.iam.gserviceaccount.com",
                "projects/-/serviceAccounts/104857600000000000021",
            ]
        );
        assert_eq!(delegate_account(&got[0]), "hop-2@p.iam.gserviceaccount.com");
    }

    #[test]
    fn a_project_in_place_of_the_wildcard_is_refused_with_the_fix() {
        let e = delegate("delegates", "projects/my-proj/serviceAccounts/a@b.com").unwrap_err();
        assert!(e.detail.contains("`-` wildcard"), "{e}");
        assert!(e.detail.contains("\"my-proj\""), "{e}");
        assert!(delegate("d", "projects/-/serviceAccounts/").is_err());
        assert!(delegate("d", "projects/-/x").is_err());
    }

    #[test]
    fn a_chain_needs_a_target_and_no_repeats() {
        let e = delegates(
            "`delegates`",
            &[SA.into()],
            None,
            "`impersonate_service_account`",
        )
        .unwrap_err();
        assert!(
            e.detail.contains("Set `impersonate_service_account`"),
            "{e}"
        );
        let e = delegates(
            "--delegate",
            &[SA.into(), format!("{DELEGATE_PREFIX}{SA}")],
            Some("104857600000000000011"),
            "--impersonate-service-account",
        )
        .unwrap_err();
        assert_eq!(e.summary, "Repeated delegate");
        assert_eq!(delegates("d", &[], None, "t"), Ok(vec![]));
    }
}
