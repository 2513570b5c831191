//! IAM ARNs, taken apart once: a role ARN (the role to assume, or to import) and a managed policy
//! ARN (attached to a role, its permissions boundary, or a session policy). Both have the shape
//! `arn:<partition>:iam::<account>:<role|policy><path><name>`; they differ in the resource type,
//! in the account (AWS managed policies live in the pseudo-account `aws`) and in the name limit.

use super::role::{POLICY_NAME_MAX, ROLE_NAME_MAX};
use super::{first_bad_char, is_iam_name_char, is_path_char, Invalid};

/// An IAM ARN's parts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IamArn<'a> {
    /// `aws`, `aws-cn`, `aws-us-gov`, …
    pub partition: &'a str,
    /// 12 digits, or `aws` for an AWS managed policy.
    pub account: &'a str,
    /// `/` or `/segments/`.
    pub path: &'a str,
    pub name: &'a str,
}

/// The two kinds of IAM ARN the provider takes, and what their rules differ in.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Role,
    Policy,
}

impl Kind {
    fn resource(self) -> &'static str {
        match self {
            Kind::Role => "role",
            Kind::Policy => "policy",
        }
    }

    fn summary(self) -> &'static str {
        match self {
            Kind::Role => "Invalid role ARN",
            Kind::Policy => "Invalid policy ARN",
        }
    }

    fn fix(self) -> &'static str {
        match self {
            Kind::Role => "Use the role's ARN, such as \"arn:aws:iam::123456789012:role/ci-deployer\" (gcpfed_role.x.arn).",
            Kind::Policy => "Use a policy ARN such as \"arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess\" or \"arn:aws:iam::123456789012:policy/my-policy\" (aws_iam_policy.x.arn).",
        }
    }

    fn name_max(self) -> usize {
        match self {
            Kind::Role => ROLE_NAME_MAX,
            Kind::Policy => POLICY_NAME_MAX,
        }
    }

    fn account_ok(self, account: &str) -> bool {
        let account_id = account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit());
        account_id || matches!(self, Kind::Policy) && account == "aws"
    }

    fn expected_account(self) -> &'static str {
        match self {
            Kind::Role => "a 12-digit account ID",
            Kind::Policy => "\"aws\" or a 12-digit account ID",
        }
    }
}

/// `aws`, or `aws-` followed by lower-case words (`aws-cn`, `aws-us-gov`, `aws-iso-b`).
fn is_partition(partition: &str) -> bool {
    partition.strip_prefix("aws").is_some_and(|rest| {
        rest.is_empty()
            || (rest.starts_with('-') && rest.chars().all(|c| c == '-' || c.is_ascii_lowercase()))
    })
}

/// Takes `arn` apart as an ARN of `kind`; `Err` says why it is not one, to follow the ARN in a
/// message.
fn parse(arn: &str, kind: Kind) -> Result<IamArn<'_>, String> {
    let r = kind.resource();
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    if parts.len() != 6 || parts[0] != "arn" {
        return Err("is not an ARN".into());
    }
    let (partition, service, region, account, resource) =
        (parts[1], parts[2], parts[3], parts[4], parts[5]);
    if !is_partition(partition) {
        return Err(format!(
            "has partition {partition:?} (expected aws, aws-cn, aws-us-gov, …)"
        ));
    }
    if service != "iam" {
        // The ARN most often given by mistake is an assumed-role ARN, from sts.
        return Err(format!(
            "names service {service:?}; a {r} ARN names iam (an ARN from sts, such as an \
             assumed-role ARN, is not a {r} ARN)"
        ));
    }
    if !region.is_empty() {
        return Err("has a region; IAM ARNs have none".into());
    }
    if !kind.account_ok(account) {
        return Err(format!(
            "has account {account:?} (expected {})",
            kind.expected_account()
        ));
    }
    let Some(rest) = resource
        .strip_prefix(r)
        .filter(|rest| rest.starts_with('/'))
    else {
        return Err(format!(
            "is not a {r} ARN (the resource must start with \"{r}/\")"
        ));
    };
    // `rest` starts with "/", so the last "/" ends the path.
    let (path, name) = rest.split_at(rest.rfind('/').map_or(0, |i| i + 1));
    if name.is_empty()
        || name.chars().count() > kind.name_max()
        || first_bad_char(name, is_iam_name_char).is_some()
    {
        return Err(format!(
            "has {r} name {name:?} (1–{} characters of letters, digits and _+=,.@-)",
            kind.name_max()
        ));
    }
    if path.contains("//") || first_bad_char(path, is_path_char).is_some() {
        return Err(format!("has an invalid {r} path {path:?}"));
    }
    Ok(IamArn {
        partition,
        account,
        path,
        name,
    })
}

fn checked(arn: &str, kind: Kind) -> Result<IamArn<'_>, Invalid> {
    parse(arn, kind).map_err(|why| Invalid {
        summary: kind.summary(),
        detail: format!("{arn:?} {why}. {}", kind.fix()),
    })
}

/// An IAM role ARN, taken apart: `arn:<partition>:iam::<12 digits>:role/<path/><name>` (an
/// assumed-role ARN from STS is not one).
pub fn parse_role_arn(arn: &str) -> Result<IamArn<'_>, Invalid> {
    checked(arn, Kind::Role)
}

/// An IAM role ARN (see [`parse_role_arn`]).
pub fn role_arn(arn: &str) -> Result<(), Invalid> {
    parse_role_arn(arn).map(drop)
}

/// An IAM managed policy ARN: `arn:<partition>:iam::<aws|account>:policy/<path/><name>`.
pub fn policy_arn(arn: &str) -> Result<(), Invalid> {
    checked(arn, Kind::Policy).map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_arns_are_taken_apart() {
        assert_eq!(
            parse_role_arn("arn:aws-cn:iam::123456789012:role/a/b/r+=,.@-_"),
            Ok(IamArn {
                partition: "aws-cn",
                account: "123456789012",
                path: "/a/b/",
                name: "r+=,.@-_",
            })
        );
        let plain = parse_role_arn("arn:aws:iam::123456789012:role/r").unwrap();
        assert_eq!((plain.path, plain.name), ("/", "r"));
    }

    #[test]
    fn role_arns_are_checked() {
        for ok in [
            "arn:aws:iam::123456789012:role/r",
            "arn:aws-cn:iam::123456789012:role/a/b/r+=,.@-_",
        ] {
            assert_eq!(role_arn(ok), Ok(()), "{ok}");
        }
        for (bad, needle) in [
            ("gcpfed-ci", "is not an ARN"),
            (
                "arn:aws:sts::123456789012:assumed-role/r/s",
                "names service \"sts\"",
            ),
            (
                "arn:aws:sts::123456789012:assumed-role/r/s",
                "not a role ARN",
            ),
            ("arn:aws:iam::123:role/r", "12-digit"),
            ("arn:aws:iam::aws:role/r", "12-digit"),
            ("arn:aws:iam:us-east-1:123456789012:role/r", "has a region"),
            ("arn:aws:iam::123456789012:user/u", "not a role ARN"),
            ("arn:aws:iam::123456789012:roles/r", "not a role ARN"),
            ("arn:aws:iam::123456789012:role/", "role name \"\""),
            ("arn:aws:iam::123456789012:role/with space", "role name"),
            (
                &format!("arn:aws:iam::123456789012:role/{}", "r".repeat(65)),
                "1–64",
            ),
            ("arn:gcp:iam::123456789012:role/r", "partition"),
        ] {
            let e = role_arn(bad).unwrap_err();
            assert_eq!(e.summary, "Invalid role ARN");
            let e = e.detail;
            assert!(e.contains(needle), "{bad}: {e}");
            assert!(e.contains("gcpfed_role.x.arn"), "{e}");
        }
    }

    #[test]
    fn policy_arns() {
        for ok in [
            "arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess",
            "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole",
            "arn:aws-us-gov:iam::123456789012:policy/a/b/my.policy",
            "arn:aws-cn:iam::123456789012:policy/x",
        ] {
            assert!(policy_arn(ok).is_ok(), "{ok}");
        }
        for (bad, why) in [
            ("AmazonS3ReadOnlyAccess", "is not an ARN"),
            ("arn:aws:s3:::bucket/x", "names service \"s3\""),
            ("arn:aws:iam::12345:policy/x", "12-digit"),
            ("arn:aws:iam:us-east-1:aws:policy/x", "has a region"),
            ("arn:aws:iam::aws:role/x", "not a policy ARN"),
            ("arn:aws:iam::aws:policy/", "policy name \"\""),
            ("arn:aws:iam::aws:policy/a b", "policy name \"a b\""),
            ("arn:gcp:iam::aws:policy/x", "partition \"gcp\""),
            ("arn:aws:iam::aws:policy/a//b", "policy path"),
        ] {
            let e = policy_arn(bad).unwrap_err();
            assert_eq!(e.summary, "Invalid policy ARN");
            assert!(e.detail.contains(why), "{bad}: {}", e.detail);
            assert!(e.detail.contains("AmazonS3ReadOnlyAccess"), "{}", e.detail);
        }
    }
}
