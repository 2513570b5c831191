//! Every input rule and limit, in one place, used by the provider block, `gcpfed_role`, the
//! `gcpfed_credentials` data source and ephemeral resource, the `trust_policy` function and the
//! command line. IAM emulators accept much that real IAM and STS refuse, and the real services
//! refuse it only at apply time, so these checks run at validate/plan time (on the command line,
//! before any call) and say how to fix the value.
//!
//! - [`arn`]: role and policy ARNs, taken apart once.
//! - [`role`]: what IAM accepts for a role (name, path, description, tags, policies) and the
//!   trust policy's inputs (audience, service-account unique IDs).
//! - [`session`]: what STS and the metadata server accept for one exchange (the requested
//!   audience, service account, session name, duration and session policies).
//! - [`endpoints`]: custom endpoint URLs, the metadata host and region names.
//! - [`json`]: repeated keys in JSON documents, which parsers resolve silently.
//! - [`impersonation`]: the account to impersonate and its delegation chain (normalised).
//! - [`path_prefix`]: the IAM path prefix the audit lists roles under.
//!
//! A rule returns [`Invalid`]: a title and a detail that names the fix. A rule for an argument
//! that callers spell differently (`duration_seconds` in HCL, `--duration-seconds` on the
//! command line) takes that spelling as `label`, so one message serves all of them. Everything is
//! re-exported here: callers write `validate::role_arn`, whatever file holds it.

mod arn;
mod endpoints;
mod impersonation;
mod json;
mod path_prefix;
mod role;
mod session;

use std::fmt;

pub use arn::*;
pub use endpoints::*;
pub use impersonation::*;
pub use json::*;
pub use path_prefix::*;
pub use role::*;
pub use session::*;

/// An invalid value: a short title for the diagnostic summary and a detail that names the fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct Invalid {
    pub summary: &'static str,
    pub detail: String,
}

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.summary, self.detail)
    }
}

fn invalid<T>(summary: &'static str, detail: impl Into<String>) -> Result<T, Invalid> {
    Err(Invalid {
        summary,
        detail: detail.into(),
    })
}

/// `[\w+=,.@-]` with `\w` in its ASCII sense: the characters IAM allows in role and policy names
/// and STS in role session names. The one home of that rule; [`crate::session_name`] fits
/// derived session names to it.
pub fn is_iam_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "_+=,.@-".contains(c)
}

fn first_bad_char(s: &str, ok: impl Fn(char) -> bool) -> Option<char> {
    s.chars().find(|c| !ok(*c))
}

/// Printable ASCII other than space, as IAM allows in paths.
fn is_path_char(c: char) -> bool {
    ('!'..='~').contains(&c)
}

/// A null element of a collection (Terraform lets `[null]` through the type system).
pub fn null_element(attribute: &str) -> Invalid {
    Invalid {
        summary: "Null element",
        detail: format!(
            "{attribute} contains a null value. Remove the element or give it a value."
        ),
    }
}

/// What can be wrong with an audience, whichever side gives it: the role that renders it as
/// `accounts.google.com:oaud`, or the caller that requests a token for it. Both refuse the same
/// values (the one audience rule); only the advice on the empty and padded cases differs.
enum AudienceDefect {
    /// Empty or blank: a blank audience could only match a token issued for nothing.
    Empty,
    /// The token's `aud` claim is compared exactly, so stray whitespace never matches.
    SurroundingWhitespace,
    /// A character IAM or a reviewer would read as more than itself.
    Characters(CharacterDefect),
}

/// Characters an audience never holds, whoever gives it: one rule, one message
/// ([`character_refusal`]) for the role, the function, the credentials, the provider block and
/// the command line.
enum CharacterDefect {
    /// `${…}`: IAM expands policy variables inside condition values, so an audience of
    /// `${accounts.google.com:oaud}` compares the token's audience with itself: always true.
    PolicyVariable,
    /// `*` or `?`: wildcards under a `StringLike` operator, and a trap for whoever later edits
    /// the operator; no audience a metadata server issues needs one.
    Wildcard(char),
    /// A control character: invisible in the console and in plans, so a reviewer cannot see
    /// what the condition compares with.
    ControlCharacter(char),
}

fn audience_defect(audience: &str) -> Option<AudienceDefect> {
    let trimmed = audience.trim();
    if trimmed.is_empty() {
        Some(AudienceDefect::Empty)
    } else if trimmed != audience {
        Some(AudienceDefect::SurroundingWhitespace)
    } else if audience.contains("${") {
        Some(AudienceDefect::Characters(CharacterDefect::PolicyVariable))
    } else if let Some(c) = audience.chars().find(|c| c.is_control()) {
        Some(AudienceDefect::Characters(
            CharacterDefect::ControlCharacter(c),
        ))
    } else {
        audience
            .chars()
            .find(|c| matches!(c, '*' | '?'))
            .map(|c| AudienceDefect::Characters(CharacterDefect::Wildcard(c)))
    }
}

/// The refusal of an audience with a policy variable, a wildcard or a control character: the
/// same words for the role, the function, the credentials, the provider block and the CLI.
fn character_refusal(label: &str, audience: &str, defect: CharacterDefect) -> Invalid {
    let fix = "Use the literal audience string your workload requests from the metadata server,                for example \"sts.amazonaws.com/my-role\" (letters, digits and punctuation such as                . / : - _), in gcpfed_role.audience and gcpfed_credentials.audience alike.";
    let (summary, why) = match defect {
        CharacterDefect::PolicyVariable => (
            "Audience contains an IAM policy variable",
            format!(
                "{label} {audience:?} contains \"${{\", which IAM expands as a policy variable in \
                 the trust policy's condition: an audience of \"${{accounts.google.com:oaud}}\" \
                 would compare the token's audience with itself, so the oaud check would always \
                 be true and any audience would be accepted."
            ),
        ),
        CharacterDefect::Wildcard(c) => (
            "Audience contains a wildcard",
            format!(
                "{label} {audience:?} contains the wildcard character {c:?}; under a StringLike \
                 condition it would match many audiences, and a token's aud claim never needs one."
            ),
        ),
        CharacterDefect::ControlCharacter(c) => (
            "Audience contains a control character",
            format!(
                "{label} contains the control character U+{:04X}, which no plan or console shows, \
                 so nobody reviewing the trust policy could see what it compares with.",
                c as u32
            ),
        ),
    };
    Invalid {
        summary,
        detail: format!("{why} {fix}"),
    }
}

/// The detail of a refusal, for the rules' tests.
#[cfg(test)]
fn detail(r: Result<(), Invalid>) -> String {
    r.expect_err("should be invalid").detail
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_name_character_rule_is_ascii() {
        for c in ['a', 'Z', '0', '_', '+', '=', ',', '.', '@', '-'] {
            assert!(is_iam_name_char(c), "{c:?}");
        }
        for c in [' ', '/', ':', 'é', '*'] {
            assert!(!is_iam_name_char(c), "{c:?}");
        }
    }

    #[test]
    fn a_blank_audience_is_empty_and_padding_is_its_own_defect() {
        assert!(matches!(audience_defect(""), Some(AudienceDefect::Empty)));
        assert!(matches!(
            audience_defect(" \t"),
            Some(AudienceDefect::Empty)
        ));
        assert!(matches!(
            audience_defect(" a"),
            Some(AudienceDefect::SurroundingWhitespace)
        ));
        assert!(audience_defect("sts.amazonaws.com/x").is_none());
    }

    #[test]
    fn an_audience_iam_would_expand_or_nobody_could_read_is_a_defect() {
        assert!(matches!(
            audience_defect("${accounts.google.com:oaud}"),
            Some(AudienceDefect::Characters(CharacterDefect::PolicyVariable))
        ));
        assert!(matches!(
            audience_defect("a*"),
            Some(AudienceDefect::Characters(CharacterDefect::Wildcard('*')))
        ));
        assert!(matches!(
            audience_defect("a?b"),
            Some(AudienceDefect::Characters(CharacterDefect::Wildcard('?')))
        ));
        assert!(matches!(
            audience_defect("a\u{1}"),
            Some(AudienceDefect::Characters(
                CharacterDefect::ControlCharacter('\u{1}')
            ))
        ));
        assert!(matches!(
            audience_defect("a\nb"),
            Some(AudienceDefect::Characters(
                CharacterDefect::ControlCharacter('\n')
            ))
        ));
        // A lone `$` or `{` is no variable.
        assert!(audience_defect("a$b{c}").is_none());
        let i = character_refusal("--audience", "${x}", CharacterDefect::PolicyVariable);
        assert!(i.detail.starts_with("--audience"), "{}", i.detail);
        assert!(i.detail.contains("always be true"), "{}", i.detail);
    }
}
