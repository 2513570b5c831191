//! Owns the STS role-session-name rules: `[\w+=,.@-]{2,64}` (ASCII word characters).
//!
//! An explicit `session_name` is the user's choice: if it breaks the rule it is a validation
//! error, never silently rewritten. A derived one (the token's `sub` by default) is made to fit.

use crate::claims::Claims;

pub const MIN_LEN: usize = 2;
pub const MAX_LEN: usize = 64;
/// Used when nothing usable can be derived from the token.
pub const FALLBACK: &str = "gcpfed";

pub fn is_allowed_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '+' | '=' | ',' | '.' | '@' | '-')
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SessionNameError {
    #[error("must be at least {MIN_LEN} characters long, got {0}")]
    TooShort(usize),
    #[error("must be at most {MAX_LEN} characters long, got {0}")]
    TooLong(usize),
    #[error("may contain only letters, digits and _+=,.@- (found {found})")]
    BadCharacters { found: String },
}

/// Checks a session name given explicitly by the user.
pub fn validate(name: &str) -> Result<(), SessionNameError> {
    let mut bad: Vec<char> = name.chars().filter(|c| !is_allowed_char(*c)).collect();
    if !bad.is_empty() {
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
    if len < MIN_LEN {
        return Err(SessionNameError::TooShort(len));
    }
    if len > MAX_LEN {
        return Err(SessionNameError::TooLong(len));
    }
    Ok(())
}

/// Makes any string fit the rule: disallowed characters become `_`, the result is cut to 64
/// characters and padded with `_` to 2; an empty source gives [`FALLBACK`].
pub fn derive(source: &str) -> String {
    let source = source.trim();
    if source.is_empty() {
        return FALLBACK.to_owned();
    }
    let mut out: String = source
        .chars()
        .map(|c| if is_allowed_char(c) { c } else { '_' })
        .take(MAX_LEN)
        .collect();
    while out.len() < MIN_LEN {
        out.push('_');
    }
    out
}

/// The session name to use: the explicit one when given (it must be valid), else one derived
/// from the token's `sub` (then `email`), else [`FALLBACK`].
pub fn choose(explicit: Option<&str>, claims: Option<&Claims>) -> Result<String, SessionNameError> {
    if let Some(name) = explicit {
        validate(name)?;
        return Ok(name.to_owned());
    }
    let source = claims
        .and_then(|c| c.sub.as_deref().or(c.email.as_deref()))
        .unwrap_or(FALLBACK);
    Ok(derive(source))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn explicit_names_are_checked_not_rewritten() {
        assert_eq!(validate("ci-run_42@gcp.example,a=b+c"), Ok(()));
        assert_eq!(validate("ab"), Ok(()));
        assert_eq!(validate(&"x".repeat(64)), Ok(()));
        assert_eq!(validate("a"), Err(SessionNameError::TooShort(1)));
        assert_eq!(validate(""), Err(SessionNameError::TooShort(0)));
        assert_eq!(
            validate(&"x".repeat(65)),
            Err(SessionNameError::TooLong(65))
        );
        let e = validate("my session/1").unwrap_err();
        assert_eq!(
            e,
            SessionNameError::BadCharacters {
                found: "' ', '/'".into()
            }
        );
        assert!(e.to_string().contains("_+=,.@-"));
        // \w in the AWS pattern is ASCII only
        assert!(matches!(
            validate("café"),
            Err(SessionNameError::BadCharacters { .. })
        ));
        assert_eq!(
            choose(Some("bad name"), None),
            Err(SessionNameError::BadCharacters {
                found: "' '".into()
            })
        );
    }

    #[test]
    fn derived_names_are_made_to_fit() {
        assert_eq!(derive("104857600000000000001"), "104857600000000000001");
        assert_eq!(derive("a b/c:d"), "a_b_c_d");
        assert_eq!(derive("é"), "__");
        assert_eq!(derive("x"), "x_");
        assert_eq!(derive(""), FALLBACK);
        assert_eq!(derive("  "), FALLBACK);
        let long = "s".repeat(100);
        assert_eq!(derive(&long).len(), 64);
        assert_eq!(derive("ünïcødé-ñame"), "_n_c_d_-_ame");
    }

    #[test]
    fn default_is_the_token_sub_then_email() {
        let mut c = Claims {
            sub: Some("104857600000000000002".into()),
            email: Some("deployer@gcpfed-test.iam.gserviceaccount.com".into()),
            ..Default::default()
        };
        assert_eq!(choose(None, Some(&c)).unwrap(), "104857600000000000002");
        c.sub = None;
        assert_eq!(
            choose(None, Some(&c)).unwrap(),
            "deployer@gcpfed-test.iam.gserviceaccount.com"
        );
        assert_eq!(choose(None, None).unwrap(), FALLBACK);
        assert_eq!(choose(Some("explicit"), Some(&c)).unwrap(), "explicit");
    }

    proptest! {
        #[test]
        fn every_derived_name_is_valid(s in "\\PC*") {
            let d = derive(&s);
            prop_assert_eq!(validate(&d), Ok(()));
        }

        #[test]
        fn valid_names_derive_to_themselves(s in "[a-zA-Z0-9_+=,.@-]{2,64}") {
            prop_assert_eq!(derive(&s), s);
        }
    }
}
