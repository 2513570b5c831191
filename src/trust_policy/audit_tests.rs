//! The audit's rules against documents written out by hand, with the gradings written by hand.

use super::*;
use crate::trust_policy::tests::{iam_encode, SA1, SA2};

/// `{"Version":…,"Statement":[<statements>]}`
fn doc(statements: &str) -> String {
    format!(r#"{{"Version":"2012-10-17","Statement":[{statements}]}}"#)
}

/// An Allow statement to `principal` for `action` with `condition` (a JSON object or "").
fn allow(principal: &str, action: &str, condition: &str) -> String {
    let condition = if condition.is_empty() {
        String::new()
    } else {
        format!(r#","Condition":{condition}"#)
    };
    format!(
        r#"{{"Effect":"Allow","Principal":{{"Federated":{principal}}},"Action":{action}{condition}}}"#
    )
}

const G: &str = r#""accounts.google.com""#;
const A: &str = r#""sts:AssumeRoleWithWebIdentity""#;

/// (severity, key) of every finding, in order.
fn graded(document: &str) -> Vec<(Severity, String)> {
    grade_trust_policy("r", document)
        .unwrap_or_else(|| panic!("not graded: {document}"))
        .findings
        .into_iter()
        .map(|f| (f.severity, f.key))
        .collect()
}

fn one(severity: Severity, key: &str) -> Vec<(Severity, String)> {
    vec![(severity, key.to_owned())]
}

#[test]
fn the_rendered_shape_is_info_in_any_spelling() {
    let rendered = format!(
        r#"{{"StringEquals":{{"accounts.google.com:aud":"{SA1}","accounts.google.com:oaud":"ci","accounts.google.com:sub":"{SA1}"}}}}"#
    );
    let d = doc(&allow(G, A, &rendered));
    assert_eq!(graded(&d), one(Severity::Info, "Condition"));
    assert_eq!(graded(&iam_encode(&d)), one(Severity::Info, "Condition"));
    // Lists, upper-case keys and provider name, StringLike without wildcards.
    let spelled = format!(
        r#"{{"StringLike":{{"Accounts.Google.com:AUD":["{SA2}","{SA1}"],"ACCOUNTS.GOOGLE.COM:OAUD":["ci"],"accounts.google.com:Sub":["{SA1}","{SA2}"]}}}}"#
    );
    let d = doc(&allow(
        r#"["cognito-identity.amazonaws.com","Accounts.Google.COM"]"#,
        r#"["sts:AssumeRoleWithWebIdentity"]"#,
        &spelled,
    ));
    assert_eq!(graded(&d), one(Severity::Info, "Condition"));
    let g = grade_trust_policy("r", &d).unwrap();
    assert_eq!(
        g.unique_ids,
        BTreeSet::from([SA1.to_owned(), SA2.to_owned()])
    );
    assert_eq!(g.audiences, BTreeSet::from(["ci".to_owned()]));
}

/// `(StringEquals block or whole Condition, expected (severity, key) of each finding)`, by hand.
fn grades_of(cases: &[(&str, &[(Severity, &str)])]) {
    for (condition, want) in cases {
        let condition = condition.replace("SA1", SA1).replace("SA2", SA2);
        let got = graded(&doc(&allow(G, A, &condition)));
        let want: Vec<(Severity, String)> =
            want.iter().map(|(s, k)| (*s, (*k).to_owned())).collect();
        assert_eq!(got, want, "{condition}");
    }
}

const AUD: &str = "accounts.google.com:aud";
const OAUD: &str = "accounts.google.com:oaud";
const SUB: &str = "accounts.google.com:sub";

#[test]
fn anyone_can_assume_is_critical() {
    use Severity::Critical as C;
    grades_of(&[
        ("", &[(C, "Condition")]),
        (
            r#"{"StringEquals":{"accounts.google.com:oaud":"ci"}}"#,
            &[(C, "accounts.google.com:aud, accounts.google.com:sub")],
        ),
        // A wildcard, or a policy variable, is no pin.
        (
            r#"{"StringEquals":{"accounts.google.com:oaud":"ci"},"StringLike":{"accounts.google.com:sub":"1048576*"}}"#,
            &[(C, SUB)],
        ),
        (
            r#"{"StringEquals":{"accounts.google.com:oaud":"ci","accounts.google.com:aud":"${accounts.google.com:sub}"}}"#,
            &[(C, AUD)],
        ),
        // Tests that pass when the key is absent.
        (
            r#"{"StringEqualsIfExists":{"accounts.google.com:aud":"SA1","accounts.google.com:sub":"SA1","accounts.google.com:oaud":"ci"}}"#,
            &[(C, AUD)],
        ),
        (
            r#"{"StringEquals":{"accounts.google.com:aud":"SA1","accounts.google.com:oaud":"ci"},"ForAllValues:StringEquals":{"accounts.google.com:sub":"SA1"}}"#,
            &[(C, SUB)],
        ),
        // A negation pins nothing.
        (
            r#"{"StringNotEquals":{"accounts.google.com:aud":"SA1","accounts.google.com:sub":"SA1"},"StringEquals":{"accounts.google.com:oaud":"ci"}}"#,
            &[(C, "accounts.google.com:aud, accounts.google.com:sub")],
        ),
    ]);
    // Wildcard actions cover the web identity action.
    assert_eq!(
        graded(&doc(&allow(G, r#""sts:*""#, ""))),
        one(C, "Condition")
    );
}

#[test]
fn one_open_statement_is_enough() {
    let safe = format!(
        r#"{{"StringEquals":{{"accounts.google.com:aud":"{SA1}","accounts.google.com:oaud":"ci","accounts.google.com:sub":"{SA1}"}}}}"#
    );
    let both = doc(&format!(
        "{},{}",
        allow(G, A, &safe),
        allow(G, A, "").replacen('{', r#"{"Sid":"Open","#, 1)
    ));
    let g = grade_trust_policy("r", &both).unwrap();
    assert_eq!(
        g.findings
            .iter()
            .map(|f| (f.severity, f.statement.as_str()))
            .collect::<Vec<_>>(),
        vec![
            (Severity::Info, "Statement[0]"),
            (Severity::Critical, "Statement[1] (Sid \"Open\")")
        ]
    );
    assert_eq!(g.severity(), Severity::Critical);
    assert_eq!(
        g.findings[1].message,
        "Statement[1] (Sid \"Open\"): the statement has no Condition: any Google identity in the \
         world can assume the role (the caller chooses the audience it asks for)."
    );
}

#[test]
fn pinned_identity_without_audience_is_high() {
    use Severity::High as H;
    grades_of(&[
        (
            r#"{"StringEquals":{"accounts.google.com:aud":"SA1","accounts.google.com:sub":"SA1"}}"#,
            &[(H, OAUD)],
        ),
        // An oaud that passes when absent is no check.
        (
            r#"{"StringEquals":{"accounts.google.com:aud":"SA1","accounts.google.com:sub":"SA1"},"StringEqualsIfExists":{"accounts.google.com:oaud":"ci"}}"#,
            &[(H, OAUD)],
        ),
    ]);
}

#[test]
fn shapes_that_lock_out_or_half_pin_are_medium() {
    use Severity::{High as H, Medium as M};
    grades_of(&[
        (
            r#"{"StringEquals":{"accounts.google.com:sub":"SA1","accounts.google.com:oaud":"ci"}}"#,
            &[(M, AUD)],
        ),
        (
            r#"{"StringEquals":{"accounts.google.com:aud":"SA1","accounts.google.com:sub":"SA2","accounts.google.com:oaud":"ci"}}"#,
            &[(M, SUB)],
        ),
        (
            r#"{"StringEquals":{"accounts.google.com:aud":"SA1","accounts.google.com:sub":"SA1","accounts.google.com:oaud":"ci","accounts.google.com:email":"ci@p.iam.gserviceaccount.com"}}"#,
            &[(M, "accounts.google.com:email")],
        ),
        (
            r#"{"StringEquals":{"accounts.google.com:aud":"ci@p.iam.gserviceaccount.com","accounts.google.com:sub":"ci@p.iam.gserviceaccount.com","accounts.google.com:oaud":"ci"}}"#,
            &[(M, AUD), (M, SUB)],
        ),
        // Several findings of one statement: the worst decides.
        (
            r#"{"StringEquals":{"accounts.google.com:sub":"SA1"}}"#,
            &[(H, OAUD), (M, AUD)],
        ),
    ]);
}

#[test]
fn what_is_not_a_google_trust_is_not_graded() {
    let deny = r#"{"Effect":"Deny","Principal":{"Federated":"accounts.google.com"},"Action":"sts:AssumeRoleWithWebIdentity"}"#;
    for d in [
        doc(deny),
        doc(&allow(r#""token.actions.githubusercontent.com""#, A, "")),
        doc(&allow(G, r#""sts:AssumeRole""#, "")),
        doc(
            r#"{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}"#,
        ),
        "not json".to_owned(),
    ] {
        assert_eq!(grade_trust_policy("r", &d), None, "{d}");
    }
    // A Deny beside an open Allow changes nothing.
    let d = doc(&format!("{deny},{}", allow(G, A, "")));
    assert_eq!(
        graded(&d),
        vec![(Severity::Critical, "Condition".to_owned())]
    );
    assert_eq!(
        grade_trust_policy("r", &d).unwrap().findings[0].statement,
        "Statement[1]"
    );
}

#[test]
fn fixes_name_the_gcpfed_equivalent_and_the_import_command() {
    let d = doc(&allow(
        G,
        A,
        &format!(
            r#"{{"StringEquals":{{"accounts.google.com:aud":"{SA1}","accounts.google.com:sub":"{SA1}"}}}}"#
        ),
    ));
    let f = &grade_trust_policy("ci.deployer", &d).unwrap().findings[0];
    assert_eq!(
        f.fix,
        format!(
            "Add accounts.google.com:oaud = \"<audience>\" to the StringEquals block, or replace \
             the trust policy with provider::gcpfed::trust_policy(\"<audience>\", [\"{SA1}\"]); to \
             manage the role with gcpfed instead, write resource \"gcpfed_role\" \"ci_deployer\" {{ \
             name = \"ci.deployer\", audience = \"<audience>\", service_account_unique_ids = \
             [\"{SA1}\"] }} then `terraform import gcpfed_role.ci_deployer ci.deployer`."
        )
    );
    assert!(f
        .text()
        .starts_with("[high] Statement[0]: the service account is pinned"));
}

#[test]
fn severities_parse_and_order() {
    assert_eq!("high".parse::<Severity>(), Ok(Severity::High));
    assert!("High"
        .parse::<Severity>()
        .unwrap_err()
        .contains("info, medium, high, critical"));
    assert!(Severity::Critical > Severity::High && Severity::Medium > Severity::Info);
}

#[test]
fn a_repeated_key_is_critical_whatever_the_copy_serde_keeps() {
    // The first StringEquals (what IAM or a reviewer may read) pins only the audience: open to
    // anyone. serde_json keeps the second, which pins everything.
    let condition = format!(
        r#"{{"StringEquals":{{"accounts.google.com:oaud":"ci"}},"StringEquals":{{"accounts.google.com:aud":"{SA1}","accounts.google.com:oaud":"ci","accounts.google.com:sub":"{SA1}"}}}}"#
    );
    let d = doc(&allow(G, A, &condition));
    assert_eq!(
        graded(&d),
        vec![
            (Severity::Critical, "StringEquals".to_owned()),
            (Severity::Info, "Condition".to_owned())
        ]
    );
    let g = grade_trust_policy("r", &d).unwrap();
    assert_eq!(g.findings[0].statement, "Statement[0].Condition");
    assert!(
        g.findings[0].message.contains("occurs more than once"),
        "{}",
        g.findings[0].message
    );
}
