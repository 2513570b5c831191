//! What `gcpfed_role` tells the user when IAM refuses: the next step for each IAM error it can
//! hit (on the attribute at fault when there is one), and the refusals of its own (a value still
//! unknown at apply, a role whose trust policy it does not manage).

use tf_provider::{AttributePath, Diagnostics};

use super::iam::IamError;
use super::state::TYPE_NAME;
use crate::clients::aws::is_missing_credentials;
use crate::diag;
use crate::trust_policy::ShapeMismatch;

/// What to do next for a failed IAM call, and the attribute at fault if there is one.
fn advice(role: &str, e: &IamError) -> (String, Option<AttributePath>) {
    let code = e.code.as_deref().unwrap_or("");
    let subject = e.subject.clone().unwrap_or_default();
    let at = AttributePath::new;
    match (e.operation, code) {
        ("CreateRole", "EntityAlreadyExists") => (
            format!("A role named {role:?} already exists in this account. Bring it under Terraform with `terraform import {TYPE_NAME}.<name> {role}` (or an import block), or choose another name."),
            Some(at("name")),
        ),
        ("TagRole" | "UntagRole" | "CreateRole", "InvalidInput") if e.message.to_lowercase().contains("tag") => (
            "IAM refused the tags. Fix them as IAM's message below says.".into(),
            Some(at("tags")),
        ),
        ("CreateRole" | "PutRolePermissionsBoundary", "NoSuchEntity" | "InvalidInput" | "InvalidParameterValue")
            if code == "NoSuchEntity"
                || e.operation == "PutRolePermissionsBoundary"
                || e.message.to_lowercase().contains("boundary") =>
        (
            "The permissions boundary policy does not exist or cannot be used. Check the ARN in permissions_boundary (aws_iam_policy.x.arn, or arn:aws:iam::aws:policy/… for AWS managed policies).".into(),
            Some(at("permissions_boundary")),
        ),
        ("CreateRole" | "UpdateAssumeRolePolicy", "MalformedPolicyDocument") => (
            "IAM refused the trust policy rendered from audience and service_account_unique_ids. Check both values; the trust policy attribute shows the exact document sent.".into(),
            None,
        ),
        ("CreateRole" | "UpdateAssumeRolePolicy", "LimitExceeded") => (
            "The trust policy is longer than the account allows (2048 characters by default, about 38 service accounts). Request a higher \"Role trust policy length\" quota in Service Quotas, or spread the service accounts over several roles.".into(),
            Some(at("service_account_unique_ids")),
        ),
        ("AttachRolePolicy", "NoSuchEntity") => (
            format!("Policy {subject} does not exist or cannot be attached (AWS managed policies live under arn:aws:iam::aws:policy/…). Fix the ARN in managed_policy_arns."),
            Some(at("managed_policy_arns")),
        ),
        ("AttachRolePolicy", "LimitExceeded") => (
            "The role has as many managed policies as the account allows (10 by default, at most 20). Request a higher \"Managed policies per role\" quota in Service Quotas, or combine policies.".into(),
            Some(at("managed_policy_arns")),
        ),
        ("PutRolePolicy", "MalformedPolicyDocument") => (
            format!("IAM refused inline policy {subject:?}. Fix the document as IAM's message below says."),
            Some(at("inline_policies").key(subject)),
        ),
        ("PutRolePolicy", "LimitExceeded") => (
            "The role's inline policies exceed IAM's size limit (10,240 characters in all, whitespace not counted). Move statements into managed policies.".into(),
            Some(at("inline_policies")),
        ),
        ("DeleteRole", "DeleteConflict") => (
            format!("Role {role:?} is still in use after gcpfed detached its managed policies, deleted its inline policies and removed it from its instance profiles. Find what else holds it (IAM's message below says) and run destroy again."),
            None,
        ),
        (_, "AccessDenied" | "AccessDeniedException") => (
            format!("The provider's AWS identity may not call iam:{} on role {role:?}. Grant that permission to the identity, or configure the provider with credentials that have it.", e.operation),
            None,
        ),
        (_, "NoSuchEntity") => (
            format!("Role {role:?} no longer exists in IAM (deleted outside Terraform?). Run plan again: the role will be planned for creation."),
            None,
        ),
        (_, "Throttling" | "ThrottlingException" | "RequestLimitExceeded") => (
            "IAM kept throttling requests after the provider's retries. Try again later, or raise max_retries in the provider block.".into(),
            None,
        ),
        (_, "") if is_missing_credentials(&e.message) => (NO_CREDENTIALS_FIX.into(), None),
        (_, "") if e.message.starts_with("timed out") => (
            format!("IAM did not answer iam:{} in time. Check the provider's region, endpoints (`endpoints.iam`) and network path to IAM, then try again.", e.operation),
            None,
        ),
        (_, "") => (
            "IAM could not be reached. Check the provider's region, endpoints and network access, then try again.".into(),
            None,
        ),
        _ => ("Fix the cause IAM names below, then apply again.".into(), None),
    }
}

/// The headline when the provider's own IAM calls have no credentials, whatever the operation:
/// the SDK reports this as a failed dispatch, which would otherwise read as a network problem.
pub(super) const NO_CREDENTIALS: &str = "No AWS credentials for the provider's IAM calls";

const NO_CREDENTIALS_FIX: &str = "The provider signs its IAM calls with AWS credentials of its \
own (the exchange of gcpfed_credentials needs none), and found none: it tried the standard AWS \
credential chain, in the order shown below. Give it credentials in one of three ways:\n\
  - keys: access_key and secret_key (and token for temporary keys) in the provider block, or \
AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN) in the environment;\n\
  - a profile: profile in the provider block, or AWS_PROFILE, naming a profile of ~/.aws/config \
or ~/.aws/credentials (one with credential_process works too);\n\
  - on Google Cloud, no AWS key at all: an assume_role_with_gcp_identity block { role_arn, \
audience } in the provider block, so the provider exchanges the runner's Google identity for a \
role's credentials itself.\n\
On Google Cloud, also set AWS_EC2_METADATA_DISABLED=true: 169.254.169.254 is Google's metadata \
server there, which refuses the chain's EC2 instance-metadata requests.";

pub(super) fn report(diags: &mut Diagnostics, summary: &str, role: &str, e: &IamError) {
    let (next, path) = advice(role, e);
    let summary = if e.code.is_none() && is_missing_credentials(&e.message) {
        NO_CREDENTIALS
    } else {
        summary
    };
    match path {
        Some(path) => {
            diag::attribute_error(diags, path, summary, diag::detail(&next, &e.to_string()))
        }
        None => diag::operation_error(diags, summary, &next, e),
    }
}

/// CreateRole met a role of this name that this apply did not make (see `adopt`).
pub(super) fn report_not_ours(diags: &mut Diagnostics, role: &str, why: &[String], e: &IamError) {
    diag::attribute_error(
        diags,
        AttributePath::new("name"),
        "Role already exists",
        diag::detail(
            &format!(
                "A role named {role:?} already exists in this account and was not made by this apply: {}. \
                 It was left untouched. To manage it with Terraform, run `terraform import {TYPE_NAME}.<name> {role}` \
                 (or use an import block); otherwise choose another name.",
                why.join("; ")
            ),
            &e.to_string(),
        ),
    );
}

pub(super) fn report_unknown(diags: &mut Diagnostics, attr: &'static str) {
    diag::attribute_error(
        diags,
        AttributePath::new(attr),
        "Value unknown at apply",
        format!("{attr} is still unknown while applying. Apply the resources it depends on first (for example with -target), then apply again."),
    );
}

pub(super) fn report_not_gcpfed(diags: &mut Diagnostics, role: &str, m: &ShapeMismatch) {
    diags.root_error(
        "Role is not a gcpfed role",
        diag::detail(
            &format!("Role {role:?} has a trust policy gcpfed_role does not manage, so importing it would rewrite who may assume it. Either change its trust policy to the shape gcpfed renders (Federated accounts.google.com, sts:AssumeRoleWithWebIdentity, StringEquals on accounts.google.com:aud, :oaud and :sub) or manage the role with the AWS provider's aws_iam_role."),
            &m.to_string(),
        ),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advice_points_at_the_attribute_at_fault() {
        let e = IamError {
            operation: "AttachRolePolicy",
            subject: Some("arn:aws:iam::aws:policy/Nope".into()),
            code: Some("NoSuchEntity".into()),
            message: "Policy arn:aws:iam::aws:policy/Nope does not exist or is not attachable."
                .into(),
        };
        let (next, path) = advice("r", &e);
        assert!(next.contains("managed_policy_arns"));
        assert_eq!(path, Some(AttributePath::new("managed_policy_arns")));
        let e = IamError {
            operation: "CreateRole",
            subject: None,
            code: Some("EntityAlreadyExists".into()),
            message: "Role with name r already exists.".into(),
        };
        assert!(advice("r", &e)
            .0
            .contains("terraform import gcpfed_role.<name> r"));
        let e = IamError {
            operation: "PutRolePolicy",
            subject: Some("p".into()),
            code: Some("MalformedPolicyDocument".into()),
            message: "Syntax errors in policy.".into(),
        };
        assert_eq!(
            advice("r", &e).1,
            Some(AttributePath::new("inline_policies").key("p"))
        );
    }

    #[test]
    fn missing_credentials_get_their_own_headline_and_the_three_fixes() {
        let e = IamError {
            operation: "CreateRole",
            subject: None,
            code: None,
            message: format!(
                "{}. Sources tried, in order, none of which had credentials:\n  - EC2 instance \
                 metadata (IMDS): disabled",
                crate::clients::aws::MISSING_CREDENTIALS
            ),
        };
        let mut diags = Diagnostics::default();
        report(&mut diags, "Could not create role", "r", &e);
        let d = &diags.errors[0];
        assert_eq!(d.summary, "No AWS credentials for the provider's IAM calls");
        for fix in [
            "access_key and secret_key",
            "AWS_ACCESS_KEY_ID",
            "AWS_PROFILE",
            "assume_role_with_gcp_identity",
            "EC2 instance metadata (IMDS): disabled",
        ] {
            assert!(d.detail.contains(fix), "{fix} missing in {}", d.detail);
        }
        assert!(!d.detail.contains("could not be reached"), "{}", d.detail);
    }
}
