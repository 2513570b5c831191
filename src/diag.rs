//! Turning errors into Terraform diagnostics, once, at the trait boundary.
//!
//! Every diagnostic follows one shape: a short title-style summary, then a detail that
//! says what to do next and ends with the underlying error. Secrets never reach here:
//! callers pass errors whose Display has none (see the typed errors of each module).

use std::error::Error;
use std::fmt::Write;

use tf_provider::{AttributePath, Diagnostic, Diagnostics};

use crate::validate::Invalid;

/// One problem with a configuration, found without I/O so that it can be reported at validate
/// time: the attribute at fault, a title-style summary, and a detail that names the fix. The
/// provider block, `gcpfed_role` and `gcpfed_credentials` all check into a list of these.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub path: AttributePath,
    pub summary: String,
    pub detail: String,
}

impl Problem {
    pub fn new(path: AttributePath, summary: impl Into<String>, detail: impl Into<String>) -> Self {
        Problem {
            path,
            summary: summary.into(),
            detail: detail.into(),
        }
    }

    /// A rule's refusal, on the attribute that holds the value.
    pub fn invalid(path: AttributePath, invalid: Invalid) -> Self {
        Problem::new(path, invalid.summary, invalid.detail)
    }
}

/// Reports every problem as an error on its attribute; `None` when there is one, so that a
/// caller can stop with `?`.
pub fn report(diags: &mut Diagnostics, problems: Vec<Problem>) -> Option<()> {
    if problems.is_empty() {
        return Some(());
    }
    for problem in problems {
        attribute_error(diags, problem.path, problem.summary, problem.detail);
    }
    None
}

/// The full cause chain of an error on one line ("a: b: c"), the way the AWS and
/// Google providers show an underlying error at the end of a detail.
pub fn error_chain(err: &(dyn Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        // SDK errors often repeat their source in their own Display.
        if !text.contains(&cause_text) {
            let _ = write!(text, ": {cause_text}");
        }
        source = cause.source();
    }
    text
}

/// Detail text: what to do next, then the underlying error.
pub fn detail(next_step: &str, underlying: &str) -> String {
    if underlying.is_empty() {
        next_step.to_string()
    } else {
        format!("{next_step}\n\nUnderlying error: {underlying}")
    }
}

/// An error about one attribute.
pub fn attribute_error(
    diags: &mut Diagnostics,
    path: AttributePath,
    summary: impl Into<String>,
    detail: impl Into<String>,
) {
    diags.add_error(Diagnostic::new(summary.into(), detail.into(), path));
}

/// An error about the whole operation, with the underlying error at the end.
pub fn operation_error(
    diags: &mut Diagnostics,
    summary: impl Into<String>,
    next_step: &str,
    err: &(dyn Error + 'static),
) {
    diags.root_error(summary.into(), detail(next_step, &error_chain(err)));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("outer failed")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn chain_lists_every_cause_once() {
        let err = Outer(std::io::Error::other("disk on fire"));
        assert_eq!(error_chain(&err), "outer failed: disk on fire");
    }

    #[test]
    fn report_puts_each_problem_on_its_attribute() {
        let mut diags = Diagnostics::default();
        assert_eq!(report(&mut diags, Vec::new()), Some(()));
        assert!(diags.errors.is_empty());
        let problems = vec![
            Problem::new(AttributePath::new("a"), "Bad a", "Fix a."),
            Problem::invalid(
                AttributePath::new("b"),
                Invalid {
                    summary: "Bad b",
                    detail: "Fix b.".into(),
                },
            ),
        ];
        assert_eq!(report(&mut diags, problems), None);
        // tf-provider appends a backtrace to the detail when RUST_BACKTRACE is set.
        let got: Vec<_> = diags
            .errors
            .iter()
            .map(|d| (d.attribute.clone(), &*d.summary, d.detail.lines().next()))
            .collect();
        assert_eq!(
            got,
            vec![
                (AttributePath::new("a"), "Bad a", Some("Fix a.")),
                (AttributePath::new("b"), "Bad b", Some("Fix b.")),
            ]
        );
    }

    #[test]
    fn detail_ends_with_the_underlying_error() {
        let text = detail("Check the role name.", "NoSuchEntity: role x");
        assert!(text.starts_with("Check the role name."));
        assert!(text.ends_with("Underlying error: NoSuchEntity: role x"));
    }
}
