//! Owns the role session name to use: `[\w+=,.@-]{2,64}` (ASCII word characters), the rule
//! [`crate::validate::check_session_name`] holds.
//!
//! An explicit `session_name` is the user's choice: if it breaks the rule it is a validation
//! error, never silently rewritten. A derived one (the token's `sub` by default) is made to fit.

use crate::claims::Claims;

pub use crate::validate::SessionNameError;
// The rule itself (characters, lengths, the check of an explicit name) lives in
// crate::validate, with every other input rule; this module fits derived names to it.
use crate::validate::{
    check_session_name as validate, is_iam_name_char as is_allowed_char,
    SESSION_NAME_MAX as MAX_LEN, SESSION_NAME_MIN as MIN_LEN,
};

/// Used when nothing usable can be derived from the token.
pub const FALLBACK: &str = "gcpfed";

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
    fn an_explicit_name_is_checked_not_rewritten() {
        // The rule itself is crate::validate::check_session_name's, and tested there.
        assert_eq!(choose(Some("ci-run_42"), None).unwrap(), "ci-run_42");
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
