//! Updating a `gcpfed_role` in place: the IAM calls that bring a role from its prior values to
//! the planned ones, and their order.

use std::collections::BTreeMap;

use super::iam::{IamError, RoleApi};
use super::state::Desired;

/// Brings IAM from `had` to `want`, in an order that never leaves the role with fewer
/// permissions than both (attach before detach, put before delete).
pub(super) async fn apply_changes(
    api: &RoleApi<'_>,
    want: &Desired,
    had: &Desired,
    prior_trust: &str,
) -> Result<(), (&'static str, IamError)> {
    let name = want.name.as_str();
    if prior_trust != want.trust_policy {
        api.update_trust(name, &want.trust_policy)
            .await
            .map_err(|e| ("Cannot update trust policy", e))?;
    }
    if want.description != had.description || want.max_session_duration != had.max_session_duration
    {
        api.update_role(
            name,
            want.description.as_deref().unwrap_or(""),
            want.max_session_duration,
        )
        .await
        .map_err(|e| ("Cannot update IAM role", e))?;
    }
    if want.boundary != had.boundary {
        match &want.boundary {
            Some(arn) => api.put_boundary(name, arn).await,
            None => api.delete_boundary(name).await,
        }
        .map_err(|e| ("Cannot update permissions boundary", e))?;
    }
    let removed: Vec<String> = had
        .tags
        .keys()
        .filter(|k| !want.tags.contains_key(*k))
        .cloned()
        .collect();
    api.untag(name, &removed)
        .await
        .map_err(|e| ("Cannot update tags", e))?;
    let changed: BTreeMap<String, String> = want
        .tags
        .iter()
        .filter(|(k, v)| had.tags.get(*k) != Some(v))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    api.tag(name, &changed)
        .await
        .map_err(|e| ("Cannot update tags", e))?;
    for arn in want.managed.difference(&had.managed) {
        api.attach(name, arn)
            .await
            .map_err(|e| ("Cannot attach managed policy", e))?;
    }
    for arn in had.managed.difference(&want.managed) {
        api.detach(name, arn)
            .await
            .map_err(|e| ("Cannot detach managed policy", e))?;
    }
    for (policy, doc) in &want.inline {
        if had.inline.get(policy) != Some(doc) {
            api.put_inline(name, policy, doc)
                .await
                .map_err(|e| ("Cannot put inline policy", e))?;
        }
    }
    for policy in had.inline.keys().filter(|p| !want.inline.contains_key(*p)) {
        api.delete_inline(name, policy)
            .await
            .map_err(|e| ("Cannot delete inline policy", e))?;
    }
    Ok(())
}
