//! Validation of the `gcpfed_credentials` arguments, shared by the data source and the ephemeral
//! resource: every problem that can be seen without I/O, each with its attribute path, so that a
//! mistake fails at validate time instead of at STS.

use tf_provider::value::Value;
use tf_provider::{AttributePath, Diagnostics};

use super::{impersonation, CredentialsState};
use crate::claims;
use crate::diag::{self, Problem};
use crate::validate::{self, Invalid, DEFAULT_SERVICE_ACCOUNT};

/// Every problem with the arguments that can be seen without I/O. Unknown values are skipped:
/// they are checked again once known.
pub fn check(config: &CredentialsState) -> Vec<Problem> {
    let mut out = Vec::new();
    let mut check = |attribute: &'static str, r: Result<(), Invalid>| {
        if let Err(e) = r {
            out.push(Problem::invalid(AttributePath::new(attribute), e));
        }
    };
    if let Value::Value(arn) = &config.role_arn {
        check("role_arn", validate::role_arn(arn));
    }
    if let Value::Value(aud) = &config.audience {
        check("audience", validate::requested_audience("audience", aud));
    }
    if let Value::Value(sa) = &config.service_account {
        check(
            "service_account",
            validate::service_account("service_account", sa),
        );
    }
    if let Value::Value(name) = &config.session_name {
        check("session_name", validate::session_name("session_name", name));
    }
    if let Value::Value(d) = config.duration_seconds {
        check(
            "duration_seconds",
            validate::session_duration("duration_seconds", d),
        );
    }
    if let Value::Value(policy) = &config.policy {
        check("policy", validate::policy_document(policy));
    }
    if let Value::Value(arns) = &config.policy_arns {
        check(
            "policy_arns",
            validate::policy_arn_count("policy_arns", arns.len()),
        );
        for arn in arns {
            if let Value::Value(a) = arn {
                check("policy_arns", validate::policy_arn(a));
            }
        }
    }
    out.extend(impersonation::check(
        &config.impersonate_service_account,
        &config.delegates,
        |name| AttributePath::new(name.to_owned()),
    ));
    if config.web_identity_token.is_value() && config.impersonate_service_account.is_value() {
        out.push(Problem::new(
            AttributePath::new(impersonation::TARGET),
            "Conflicting token sources",
            "web_identity_token is a token already minted, so there is no token left to mint \
             for impersonate_service_account. Remove one of the two (to impersonate, drop \
             web_identity_token).",
        ));
    }
    if let Value::Value(token) = &config.web_identity_token {
        if let Err(e) = claims::decode_unverified(token) {
            out.push(Problem::new(
                AttributePath::new("web_identity_token"),
                "Invalid web identity token",
                format!(
                    "web_identity_token must be a Google ID token (a JWT), for example \
                     google_service_account_id_token.x.id_token: {e}."
                ),
            ));
        }
    }
    out
}

/// Reports [`check`]'s problems as errors, or warns about an argument that has no effect.
/// `None` when there is an error.
pub fn validate(diags: &mut Diagnostics, config: &CredentialsState) -> Option<()> {
    let problems = check(config);
    if problems.is_empty() {
        let custom_account = matches!(&config.service_account,
            Value::Value(sa) if sa != DEFAULT_SERVICE_ACCOUNT);
        if config.web_identity_token.is_value() && custom_account {
            diags.warning(
                "service_account is ignored",
                "web_identity_token is set, so no token is requested from the metadata server and \
                 service_account has no effect. Remove one of the two.",
                AttributePath::new("service_account"),
            );
        }
        return Some(());
    }
    diag::report(diags, problems)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> CredentialsState {
        CredentialsState {
            role_arn: Value::Value("arn:aws:iam::123456789012:role/ci/gcpfed-ci".into()),
            audience: Value::Value("aws-ci".into()),
            ..Default::default()
        }
    }

    fn paths(problems: &[Problem]) -> Vec<AttributePath> {
        problems.iter().map(|p| p.path.clone()).collect()
    }

    #[test]
    fn a_minimal_configuration_is_valid() {
        assert_eq!(check(&config()), vec![]);
    }

    #[test]
    fn a_bad_role_arn_names_its_attribute() {
        let mut c = config();
        c.role_arn = Value::Value("nope".into());
        let problems = check(&c);
        assert_eq!(paths(&problems), vec![AttributePath::new("role_arn")]);
        assert_eq!(problems[0].summary, "Invalid role ARN");
    }

    #[test]
    fn every_argument_error_names_its_attribute() {
        let mut c = config();
        c.audience = Value::Value(" ".into());
        c.service_account = Value::Value("ci-runner".into());
        c.session_name = Value::Value("bad name".into());
        c.duration_seconds = Value::Value(899);
        c.policy = Value::Value("{not json".into());
        c.policy_arns = Value::Value(
            (0..11)
                .map(|i| Value::Value(format!("arn:aws:iam::aws:policy/P{i}")))
                .collect(),
        );
        c.web_identity_token = Value::Value("not.a-token".into());
        let problems = check(&c);
        assert_eq!(
            paths(&problems),
            vec![
                AttributePath::new("audience"),
                AttributePath::new("service_account"),
                AttributePath::new("session_name"),
                AttributePath::new("duration_seconds"),
                AttributePath::new("policy"),
                AttributePath::new("policy_arns"),
                AttributePath::new("web_identity_token"),
            ]
        );
        let session = &problems[2];
        assert!(session.detail.contains("[\\w+=,.@-]"), "{}", session.detail);
        assert!(problems[5].detail.contains("at most 10"));
        // The token itself is never quoted back.
        assert!(!problems[6].detail.contains("not.a-token"));
    }

    #[test]
    fn an_audience_with_surrounding_whitespace_is_refused_like_the_roles() {
        for (audience, summary) in [
            (" aws-ci", "Audience has surrounding whitespace"),
            ("aws-ci\n", "Audience has surrounding whitespace"),
            ("", "Empty audience"),
        ] {
            let mut c = config();
            c.audience = Value::Value(audience.into());
            let problems = check(&c);
            assert_eq!(paths(&problems), vec![AttributePath::new("audience")]);
            assert_eq!(problems[0].summary, summary, "{audience:?}");
            assert!(
                problems[0].detail.contains("gcpfed_role.x.audience"),
                "{}",
                problems[0].detail
            );
        }
    }

    #[test]
    fn a_session_policy_with_a_repeated_key_and_an_audience_iam_would_expand_are_refused() {
        let mut c = config();
        c.policy = Value::Value(
            r#"{"Statement":[{"Effect":"Allow","Action":"sts:*","Action":"s3:GetObject","Resource":"*"}]}"#
                .into(),
        );
        c.audience = Value::Value("${accounts.google.com:oaud}".into());
        let problems = check(&c);
        assert_eq!(
            paths(&problems),
            vec![AttributePath::new("audience"), AttributePath::new("policy")]
        );
        assert!(
            problems[0].detail.contains("always be true"),
            "{}",
            problems[0].detail
        );
        assert!(
            problems[1]
                .detail
                .contains("\"Action\" occurs more than once"),
            "{}",
            problems[1].detail
        );
    }

    #[test]
    fn duration_bounds_are_inclusive() {
        for (d, ok) in [(899, false), (900, true), (43200, true), (43201, false)] {
            let mut c = config();
            c.duration_seconds = Value::Value(d);
            assert_eq!(check(&c).is_empty(), ok, "{d}");
        }
    }

    #[test]
    fn policy_arns_are_each_validated_and_unknowns_skipped() {
        let mut c = config();
        c.policy_arns = Value::Value(
            [
                Value::Value("arn:aws:iam::aws:policy/ReadOnlyAccess".to_owned()),
                Value::Value("ReadOnlyAccess".to_owned()),
                Value::Unknown,
            ]
            .into_iter()
            .collect(),
        );
        assert_eq!(paths(&check(&c)), vec![AttributePath::new("policy_arns")]);
        let mut c = config();
        c.role_arn = Value::Unknown;
        c.session_name = Value::Unknown;
        c.web_identity_token = Value::Unknown;
        assert_eq!(check(&c), vec![]);
    }

    #[test]
    fn service_account_accepts_default_and_emails() {
        for (sa, ok) in [
            ("default", true),
            ("ci-runner@gcpfed-test.iam.gserviceaccount.com", true),
            ("104857600000000000001", false),
            ("../token", false),
        ] {
            let mut c = config();
            c.service_account = Value::Value(sa.into());
            assert_eq!(check(&c).is_empty(), ok, "{sa}");
        }
    }

    #[test]
    fn validate_reports_errors_with_paths_and_warns_about_an_ignored_account() {
        let mut diags = Diagnostics::default();
        let mut c = config();
        c.duration_seconds = Value::Value(1);
        assert!(validate(&mut diags, &c).is_none());
        assert_eq!(diags.errors.len(), 1);
        assert_eq!(
            diags.errors[0].attribute,
            AttributePath::new("duration_seconds")
        );

        // A JWT-shaped token ({"sub":"1"}) with a service account: valid, with a warning.
        let mut diags = Diagnostics::default();
        let mut c = config();
        c.web_identity_token = Value::Value("eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln".into());
        c.service_account = Value::Value("ci@p.iam.gserviceaccount.com".into());
        assert!(validate(&mut diags, &c).is_some());
        assert!(diags.errors.is_empty());
        assert_eq!(
            diags.warnings[0].attribute,
            AttributePath::new("service_account")
        );

        let mut diags = Diagnostics::default();
        c.web_identity_token = Value::Unknown;
        assert!(validate(&mut diags, &c).is_some());
        assert!(diags.errors.is_empty() && diags.warnings.is_empty());
    }
}
