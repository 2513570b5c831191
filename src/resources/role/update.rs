//! Writing a `gcpfed_role`'s settings and policies to IAM: the calls that follow CreateRole, and
//! the calls that bring a role from its prior values to the planned ones, in an order that never
//! leaves the role with fewer permissions than both.
//!
//! IAM's own order is only "the role before anything about it" (CreateRole carries the trust
//! policy, boundary and tags itself). The calls below it do not depend on one another, so they go
//! out together, at most [`concurrent::PER_ROLE`] at a time: one round trip of latency instead
//! of one per call. Removals (detach, delete inline) wait until every addition succeeded, so that
//! a failure half way never leaves the role with less than before and after.

use std::collections::BTreeMap;

use futures_util::future::BoxFuture;
use futures_util::FutureExt;

use super::concurrent::{all_in_order, first_error};
use super::iam::{IamError, RoleApi};
use super::state::Desired;

/// A failed write: the diagnostic's summary and IAM's error.
pub(super) type Failed = (&'static str, IamError);

type Write<'a> = BoxFuture<'a, Result<(), Failed>>;

fn write<'a>(
    summary: &'static str,
    call: impl std::future::Future<Output = Result<(), IamError>> + Send + 'a,
) -> Write<'a> {
    async move { call.await.map_err(|e| (summary, e)) }.boxed()
}

/// Runs `writes` concurrently (bounded) and returns the first failure in listed order.
async fn together(writes: Vec<Write<'_>>) -> Result<(), Failed> {
    first_error(all_in_order(writes).await)
}

/// The managed and inline policies of a role CreateRole just made, attached and put together.
pub(super) async fn add_policies(api: &RoleApi<'_>, d: &Desired) -> Result<(), Failed> {
    let name = d.name.as_str();
    let mut writes: Vec<Write<'_>> = Vec::new();
    for arn in &d.managed {
        writes.push(write("Cannot attach managed policy", api.attach(name, arn)));
    }
    for (policy, doc) in &d.inline {
        writes.push(write(
            "Cannot put inline policy",
            api.put_inline(name, policy, doc),
        ));
    }
    together(writes).await
}

/// Brings IAM from `had` to `want`: first every setting and addition together, then, only if all
/// of them succeeded, the removals together.
pub(super) async fn apply_changes(
    api: &RoleApi<'_>,
    want: &Desired,
    had: &Desired,
    prior_trust: &str,
) -> Result<(), Failed> {
    let name = want.name.as_str();
    let mut first: Vec<Write<'_>> = Vec::new();
    if prior_trust != want.trust_policy {
        first.push(write(
            "Cannot update trust policy",
            api.update_trust(name, &want.trust_policy),
        ));
    }
    if want.description != had.description || want.max_session_duration != had.max_session_duration
    {
        first.push(write(
            "Cannot update IAM role",
            api.update_role(
                name,
                want.description.as_deref().unwrap_or(""),
                want.max_session_duration,
            ),
        ));
    }
    if want.boundary != had.boundary {
        let call = match &want.boundary {
            Some(arn) => api.put_boundary(name, arn).boxed(),
            None => api.delete_boundary(name).boxed(),
        };
        first.push(write("Cannot update permissions boundary", call));
    }
    let removed: Vec<String> = had
        .tags
        .keys()
        .filter(|k| !want.tags.contains_key(*k))
        .cloned()
        .collect();
    let changed: BTreeMap<String, String> = want
        .tags
        .iter()
        .filter(|(k, v)| had.tags.get(*k) != Some(v))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    // Untag and tag touch disjoint keys: one does not wait for the other.
    if !removed.is_empty() {
        first.push(write("Cannot update tags", async move {
            api.untag(name, &removed).await
        }));
    }
    if !changed.is_empty() {
        first.push(write("Cannot update tags", async move {
            api.tag(name, &changed).await
        }));
    }
    for arn in want.managed.difference(&had.managed) {
        first.push(write("Cannot attach managed policy", api.attach(name, arn)));
    }
    for (policy, doc) in &want.inline {
        if had.inline.get(policy) != Some(doc) {
            first.push(write(
                "Cannot put inline policy",
                api.put_inline(name, policy, doc),
            ));
        }
    }
    together(first).await?;

    let mut removals: Vec<Write<'_>> = Vec::new();
    for arn in had.managed.difference(&want.managed) {
        removals.push(write("Cannot detach managed policy", api.detach(name, arn)));
    }
    for policy in had.inline.keys().filter(|p| !want.inline.contains_key(*p)) {
        removals.push(write(
            "Cannot delete inline policy",
            api.delete_inline(name, policy),
        ));
    }
    together(removals).await
}
