//! The audit of many roles at once, as the `gcpfed_google_trusts` data source and the `audit`
//! command both show it: the roles that trust Google identities, graded by [`super::audit`],
//! those below a minimum severity left out, and how many roles reach each severity.

use std::collections::BTreeMap;

use super::audit::{grade_trust_policy, Finding, Grade, Severity};

/// One role the audit lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditedRole {
    pub name: String,
    pub arn: String,
    pub path: String,
    pub grade: Grade,
}

impl AuditedRole {
    /// The findings at or above `min`.
    pub fn findings_from(&self, min: Severity) -> impl Iterator<Item = &Finding> {
        self.grade
            .findings
            .iter()
            .filter(move |f| f.severity >= min)
    }
}

/// What the audit found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditReport {
    /// Roles whose worst finding reaches the minimum severity, in the order given.
    pub roles: Vec<AuditedRole>,
    /// Every role that trusts Google identities, counted by its worst finding (all four
    /// severities present), whatever the minimum: the totals stay visible when filtering.
    pub counts: BTreeMap<Severity, usize>,
    pub min_severity: Severity,
}

impl AuditReport {
    /// Grades `roles` (name, ARN, path, trust policy as IAM returns it).
    pub fn of<'a, I>(roles: I, min_severity: Severity) -> Self
    where
        I: IntoIterator<Item = (&'a str, &'a str, &'a str, Option<&'a str>)>,
    {
        let mut counts: BTreeMap<Severity, usize> =
            Severity::ALL.into_iter().map(|s| (s, 0)).collect();
        let mut listed = Vec::new();
        for (name, arn, path, document) in roles {
            let Some(grade) = document.and_then(|d| grade_trust_policy(name, d)) else {
                continue;
            };
            let severity = grade.severity();
            *counts.entry(severity).or_default() += 1;
            if severity >= min_severity {
                listed.push(AuditedRole {
                    name: name.to_owned(),
                    arn: arn.to_owned(),
                    path: path.to_owned(),
                    grade,
                });
            }
        }
        AuditReport {
            roles: listed,
            counts,
            min_severity,
        }
    }

    /// The worst severity among the listed roles.
    pub fn worst(&self) -> Option<Severity> {
        self.roles.iter().map(|r| r.grade.severity()).max()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OPEN: &str = r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":{"Federated":"accounts.google.com"},"Action":"sts:AssumeRoleWithWebIdentity"}}"#;
    const HIGH: &str = r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":{"Federated":"accounts.google.com"},"Action":"sts:AssumeRoleWithWebIdentity","Condition":{"StringEquals":{"accounts.google.com:aud":"1","accounts.google.com:sub":"1"}}}}"#;
    const EC2: &str = r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}}"#;

    #[test]
    fn lists_google_trusts_from_the_minimum_and_counts_them_all() {
        let roles = [
            ("open", "arn:1", "/", Some(OPEN)),
            ("ec2", "arn:2", "/", Some(EC2)),
            ("high", "arn:3", "/ci/", Some(HIGH)),
            ("none", "arn:4", "/", None),
        ];
        let all = AuditReport::of(roles, Severity::Info);
        assert_eq!(
            all.roles
                .iter()
                .map(|r| r.name.as_str())
                .collect::<Vec<_>>(),
            ["open", "high"]
        );
        let want = BTreeMap::from([
            (Severity::Info, 0),
            (Severity::Medium, 0),
            (Severity::High, 1),
            (Severity::Critical, 1),
        ]);
        assert_eq!(all.counts, want);
        assert_eq!(all.worst(), Some(Severity::Critical));
        let critical = AuditReport::of(roles, Severity::Critical);
        assert_eq!(critical.roles.len(), 1);
        assert_eq!(critical.counts, want);
        assert_eq!(AuditReport::of([], Severity::Info).worst(), None);
    }
}
