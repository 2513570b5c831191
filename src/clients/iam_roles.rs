//! Every role of an account (under a path prefix) with its trust policy, in one paginated
//! `ListRoles`: IAM puts each role's trust document (URL-encoded) in the listing itself, so the
//! audit never needs a `GetRole` per role. Pages are IAM's default size (100 roles), as
//! terraform-provider-aws's `aws_iam_roles` reads them; the SDK's standard retry mode (the
//! clients' `max_retries`) absorbs throttling between pages.

use aws_sdk_iam::error::ProvideErrorMetadata;

/// One role as `ListRoles` returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedRole {
    pub name: String,
    pub arn: String,
    pub path: String,
    /// The trust policy as IAM holds it (URL-encoded); `None` when IAM sends none.
    pub trust_policy: Option<String>,
}

impl ListedRole {
    /// (name, ARN, path, trust policy): what the audit grades a role by.
    pub fn audit_input(&self) -> (&str, &str, &str, Option<&str>) {
        (
            &self.name,
            &self.arn,
            &self.path,
            self.trust_policy.as_deref(),
        )
    }
}

/// A `ListRoles` page IAM refused or never answered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("ListRoles (path prefix {path_prefix}, page {page}): {}{message}", code.as_ref().map(|c| format!("{c}: ")).unwrap_or_default())]
pub struct ListRolesError {
    pub path_prefix: String,
    /// 1 for the first page.
    pub page: usize,
    /// IAM's error code (`AccessDenied`, …); `None` when no answer came.
    pub code: Option<String>,
    pub message: String,
}

/// Every role whose path starts with `path_prefix`, in IAM's order; one call per page.
pub async fn list_roles(
    iam: &aws_sdk_iam::Client,
    path_prefix: &str,
) -> Result<Vec<ListedRole>, ListRolesError> {
    let mut pages = iam
        .list_roles()
        .path_prefix(path_prefix)
        .into_paginator()
        .send();
    let mut roles = Vec::new();
    let mut page = 0;
    while let Some(answer) = pages.next().await {
        page += 1;
        let output = answer.map_err(|e| ListRolesError {
            path_prefix: path_prefix.to_owned(),
            page,
            code: e.code().map(str::to_owned),
            message: e
                .message()
                .map_or_else(|| super::aws::describe_sdk_error(&e), str::to_owned),
        })?;
        roles.extend(output.roles.into_iter().map(|r| ListedRole {
            name: r.role_name,
            arn: r.arn,
            path: r.path,
            trust_policy: r.assume_role_policy_document,
        }));
    }
    Ok(roles)
}
