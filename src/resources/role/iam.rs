//! The IAM calls behind `gcpfed_role`: typed errors a caller can match, decoded policy
//! documents, list calls through the SDK's paginators, and bounded retries
//! ([`crate::retry`]'s policy) for IAM's eventual consistency.
//!
//! Throttling and 5xx faults are retried by the AWS SDK itself (standard retry mode, budget
//! `max_retries` from the provider block, exponential backoff with jitter); retrying them here as
//! well would multiply the budget. What the SDK cannot know is IAM's propagation delay: a role
//! that CreateRole just returned can be unknown to AttachRolePolicy for a few seconds, and a
//! policy detached a moment ago can still block DeleteRole. Those are retried here, a bounded
//! number of times. Errors that are not about propagation (a policy ARN that does not exist, a
//! malformed document, "Invalid principal") are returned at once.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use aws_sdk_iam::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_iam::types::Tag;
use aws_smithy_types::date_time::Format;

use futures_util::FutureExt;

use super::concurrent;
use crate::clients::aws::{ATTEMPT_TIMEOUT, OPERATION_TIMEOUT};
use crate::retry::{retry, RetryPolicy};
use crate::trust_policy::decode_document;

/// One failed IAM call: the operation, what it was about, and IAM's error code and message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{operation}{}: {}{message}", subject.as_ref().map(|s| format!(" ({s})")).unwrap_or_default(), code.as_ref().map(|c| format!("{c}: ")).unwrap_or_default())]
pub struct IamError {
    pub operation: &'static str,
    /// The policy ARN, inline policy name or tag keys the call was about, if any.
    pub subject: Option<String>,
    /// IAM's error code (`NoSuchEntity`, `DeleteConflict`, …); `None` for transport failures.
    pub code: Option<String>,
    pub message: String,
}

impl IamError {
    pub fn is(&self, code: &str) -> bool {
        self.code.as_deref() == Some(code)
    }

    pub fn not_found(&self) -> bool {
        self.is("NoSuchEntity")
    }

    /// No answer from IAM (a reset connection, a timeout): the call may have taken effect.
    pub fn answer_lost(&self) -> bool {
        self.code.is_none()
    }

    fn from_sdk<E, R>(operation: &'static str, subject: Option<&str>, err: SdkError<E, R>) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
        R: std::fmt::Debug + Send + Sync + 'static,
    {
        let code = err.code().map(str::to_owned);
        if let SdkError::TimeoutError(_) = err {
            return Self {
                operation,
                subject: subject.map(str::to_owned),
                code: None,
                message: timed_out_message(),
            };
        }
        let message = match err.message() {
            Some(m) if code.is_some() => m.to_owned(),
            _ => crate::clients::aws::describe_sdk_error(&err),
        };
        Self {
            operation,
            subject: subject.map(str::to_owned),
            code,
            message,
        }
    }
}

/// Why a call that met a stalled endpoint failed, with the timeouts that ended it.
fn timed_out_message() -> String {
    format!(
        "timed out after {} s: IAM accepted the connection but did not answer within the {} s \
         attempt timeout, retries included. Check the IAM endpoint (`endpoints.iam`, \
         AWS_ENDPOINT_URL_IAM) and any proxy or VPC endpoint on the way to it, then try again.",
        OPERATION_TIMEOUT.as_secs(),
        ATTEMPT_TIMEOUT.as_secs()
    )
}

/// For IAM propagation after create: 7 retries of 0.2 s doubling up to 3 s, at most about 12 s
/// of waiting in all. Fixed, not the provider's `max_retries` (which budgets the SDK's retries of
/// throttling and faults): propagation takes seconds whatever that budget is.
pub const PROPAGATION: RetryPolicy = RetryPolicy {
    max_retries: 7,
    base: Duration::from_millis(200),
    cap: Duration::from_secs(3),
};

/// DeleteConflict right after the clean-up: the clean-up itself is retried, so fewer times.
const DELETE_CONFLICT: RetryPolicy = RetryPolicy {
    max_retries: 3,
    ..PROPAGATION
};

/// Concurrent changes to the same role are transient whatever the operation.
fn concurrent(e: &IamError) -> bool {
    e.is("ConcurrentModification")
}

/// NoSuchEntity that is about the role itself (it exists, IAM has not propagated it yet), not
/// about the policy the call names.
fn role_not_yet_visible<'a>(
    role: &'a str,
    subject: Option<&str>,
) -> impl Fn(&IamError) -> bool + 'a {
    let subject = subject.map(str::to_owned);
    move |e: &IamError| {
        concurrent(e)
            || (e.not_found()
                && e.message.contains(role)
                && !subject.as_deref().is_some_and(|s| e.message.contains(s)))
    }
}

/// Everything IAM knows about a role that `gcpfed_role` manages, documents decoded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RemoteRole {
    pub name: String,
    pub path: String,
    pub role_id: String,
    pub arn: String,
    pub create_date: String,
    pub trust_policy: Option<String>,
    pub description: Option<String>,
    pub max_session_duration: Option<i32>,
    pub permissions_boundary: Option<String>,
    pub tags: BTreeMap<String, String>,
    pub managed_policy_arns: BTreeSet<String>,
    pub inline_policies: BTreeMap<String, String>,
}

/// What CreateRole is given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRole<'s> {
    pub name: &'s str,
    pub path: &'s str,
    pub trust_policy: &'s str,
    pub description: Option<&'s str>,
    pub max_session_duration: i32,
    pub permissions_boundary: Option<&'s str>,
    pub tags: &'s BTreeMap<String, String>,
}

/// The identifiers IAM assigns at creation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Created {
    pub arn: String,
    pub role_id: String,
    pub create_date: String,
}

fn format_date(d: &aws_smithy_types::DateTime) -> String {
    d.fmt(Format::DateTime).unwrap_or_else(|_| d.to_string())
}

fn tags_of(tags: &BTreeMap<String, String>) -> Result<Vec<Tag>, IamError> {
    tags.iter()
        .map(|(k, v)| {
            Tag::builder()
                .key(k)
                .value(v)
                .build()
                .map_err(|e| IamError {
                    operation: "TagRole",
                    subject: Some(k.clone()),
                    code: None,
                    message: e.to_string(),
                })
        })
        .collect()
}

/// The role operations, on the provider's IAM client.
pub struct RoleApi<'c> {
    client: &'c aws_sdk_iam::Client,
}

impl<'c> RoleApi<'c> {
    pub fn new(client: &'c aws_sdk_iam::Client) -> Self {
        Self { client }
    }

    pub async fn create(&self, role: &NewRole<'_>) -> Result<Created, IamError> {
        let tags = tags_of(role.tags)?;
        let out = retry(PROPAGATION, concurrent, |_| async {
            self.client
                .create_role()
                .role_name(role.name)
                .path(role.path)
                .assume_role_policy_document(role.trust_policy)
                .set_description(role.description.map(str::to_owned))
                .max_session_duration(role.max_session_duration)
                .set_permissions_boundary(role.permissions_boundary.map(str::to_owned))
                .set_tags((!tags.is_empty()).then(|| tags.clone()))
                .send()
                .await
                .map_err(|e| IamError::from_sdk("CreateRole", None, e))
        })
        .await?;
        let r = out.role().ok_or_else(|| IamError {
            operation: "CreateRole",
            subject: None,
            code: None,
            message: "IAM answered without the role".into(),
        })?;
        Ok(Created {
            arn: r.arn().to_owned(),
            role_id: r.role_id().to_owned(),
            create_date: format_date(r.create_date()),
        })
    }

    /// The role and its policies; `None` when IAM says the role does not exist.
    ///
    /// Two round trips, not four: GetRole and both lists go out together (none needs another's
    /// answer), then the inline documents ([`Self::inline_documents`]). The answers are judged in
    /// the order the calls were once made one by one, so a failure reads the same.
    pub async fn fetch(&self, name: &str) -> Result<Option<RemoteRole>, IamError> {
        let (role, attached, inline_names) = tokio::join!(
            self.client.get_role().role_name(name).send(),
            self.attached(name),
            self.inline_names(name)
        );
        let out = match role {
            Ok(out) => out,
            Err(e) => {
                let e = IamError::from_sdk("GetRole", None, e);
                return if e.not_found() { Ok(None) } else { Err(e) };
            }
        };
        let Some(r) = out.role() else {
            return Ok(None);
        };
        let mut remote = RemoteRole {
            name: r.role_name().to_owned(),
            path: r.path().to_owned(),
            role_id: r.role_id().to_owned(),
            arn: r.arn().to_owned(),
            create_date: format_date(r.create_date()),
            trust_policy: r
                .assume_role_policy_document()
                .map(|d| decode_document(d).into_owned()),
            description: r.description().map(str::to_owned),
            max_session_duration: r.max_session_duration(),
            permissions_boundary: r
                .permissions_boundary()
                .and_then(|b| b.permissions_boundary_arn())
                .map(str::to_owned),
            tags: r
                .tags()
                .iter()
                .map(|t| (t.key().to_owned(), t.value().to_owned()))
                .collect(),
            ..Default::default()
        };
        match attached {
            Ok(arns) => remote.managed_policy_arns = arns,
            Err(e) if e.not_found() => return Ok(None),
            Err(e) => return Err(e),
        }
        match inline_names {
            Ok(names) => remote.inline_policies = self.inline_documents(name, names).await?,
            Err(e) if e.not_found() => return Ok(None),
            Err(e) => return Err(e),
        }
        Ok(Some(remote))
    }

    pub async fn attached(&self, name: &str) -> Result<BTreeSet<String>, IamError> {
        let policies: Vec<_> = self
            .client
            .list_attached_role_policies()
            .role_name(name)
            .into_paginator()
            .items()
            .send()
            .collect::<Result<_, _>>()
            .await
            .map_err(|e| IamError::from_sdk("ListAttachedRolePolicies", None, e))?;
        Ok(policies
            .iter()
            .filter_map(|p| p.policy_arn().map(str::to_owned))
            .collect())
    }

    async fn inline_names(&self, name: &str) -> Result<Vec<String>, IamError> {
        self.client
            .list_role_policies()
            .role_name(name)
            .into_paginator()
            .items()
            .send()
            .collect::<Result<_, _>>()
            .await
            .map_err(|e| IamError::from_sdk("ListRolePolicies", None, e))
    }

    /// The named inline policies' documents, decoded, read concurrently ([`concurrent`]). A
    /// policy deleted between the list and the get is left out; otherwise the first failure in
    /// name order is returned.
    async fn inline_documents(
        &self,
        name: &str,
        policies: Vec<String>,
    ) -> Result<BTreeMap<String, String>, IamError> {
        let reads = policies
            .into_iter()
            .map(|policy| {
                async move {
                    let answer = self
                        .client
                        .get_role_policy()
                        .role_name(name)
                        .policy_name(&policy)
                        .send()
                        .await;
                    match answer {
                        Ok(out) => Ok(Some((
                            policy,
                            decode_document(out.policy_document()).into_owned(),
                        ))),
                        Err(e) => match IamError::from_sdk("GetRolePolicy", Some(&policy), e) {
                            e if e.not_found() => Ok(None),
                            e => Err(e),
                        },
                    }
                }
                .boxed()
            })
            .collect();
        concurrent::all_in_order(reads)
            .await
            .into_iter()
            .filter_map(Result::transpose)
            .collect()
    }

    /// Attaches a managed policy; right after create, waits out the role's propagation.
    pub async fn attach(&self, name: &str, arn: &str) -> Result<(), IamError> {
        retry(
            PROPAGATION,
            role_not_yet_visible(name, Some(arn)),
            |_| async {
                self.client
                    .attach_role_policy()
                    .role_name(name)
                    .policy_arn(arn)
                    .send()
                    .await
                    .map(|_| ())
                    .map_err(|e| IamError::from_sdk("AttachRolePolicy", Some(arn), e))
            },
        )
        .await
    }

    /// Detaches a managed policy; one already detached is fine.
    pub async fn detach(&self, name: &str, arn: &str) -> Result<(), IamError> {
        let r = retry(PROPAGATION, concurrent, |_| async {
            self.client
                .detach_role_policy()
                .role_name(name)
                .policy_arn(arn)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| IamError::from_sdk("DetachRolePolicy", Some(arn), e))
        })
        .await;
        ok_if_gone(r)
    }

    /// Creates or replaces an inline policy; right after create, waits out the role's propagation.
    pub async fn put_inline(&self, name: &str, policy: &str, doc: &str) -> Result<(), IamError> {
        retry(PROPAGATION, role_not_yet_visible(name, None), |_| async {
            self.client
                .put_role_policy()
                .role_name(name)
                .policy_name(policy)
                .policy_document(doc)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| IamError::from_sdk("PutRolePolicy", Some(policy), e))
        })
        .await
    }

    pub async fn delete_inline(&self, name: &str, policy: &str) -> Result<(), IamError> {
        let r = retry(PROPAGATION, concurrent, |_| async {
            self.client
                .delete_role_policy()
                .role_name(name)
                .policy_name(policy)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| IamError::from_sdk("DeleteRolePolicy", Some(policy), e))
        })
        .await;
        ok_if_gone(r)
    }

    pub async fn update_trust(&self, name: &str, doc: &str) -> Result<(), IamError> {
        retry(PROPAGATION, concurrent, |_| async {
            self.client
                .update_assume_role_policy()
                .role_name(name)
                .policy_document(doc)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| IamError::from_sdk("UpdateAssumeRolePolicy", None, e))
        })
        .await
    }

    /// Sets description and maximum session duration together: UpdateRole replaces both (an
    /// absent description clears it).
    pub async fn update_role(
        &self,
        name: &str,
        description: &str,
        max_session_duration: i32,
    ) -> Result<(), IamError> {
        retry(PROPAGATION, concurrent, |_| async {
            self.client
                .update_role()
                .role_name(name)
                .description(description)
                .max_session_duration(max_session_duration)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| IamError::from_sdk("UpdateRole", None, e))
        })
        .await
    }

    pub async fn put_boundary(&self, name: &str, arn: &str) -> Result<(), IamError> {
        retry(PROPAGATION, concurrent, |_| async {
            self.client
                .put_role_permissions_boundary()
                .role_name(name)
                .permissions_boundary(arn)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| IamError::from_sdk("PutRolePermissionsBoundary", Some(arn), e))
        })
        .await
    }

    pub async fn delete_boundary(&self, name: &str) -> Result<(), IamError> {
        let r = retry(PROPAGATION, concurrent, |_| async {
            self.client
                .delete_role_permissions_boundary()
                .role_name(name)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| IamError::from_sdk("DeleteRolePermissionsBoundary", None, e))
        })
        .await;
        ok_if_gone(r)
    }

    pub async fn tag(&self, name: &str, tags: &BTreeMap<String, String>) -> Result<(), IamError> {
        if tags.is_empty() {
            return Ok(());
        }
        let tags = tags_of(tags)?;
        retry(PROPAGATION, concurrent, |_| async {
            self.client
                .tag_role()
                .role_name(name)
                .set_tags(Some(tags.clone()))
                .send()
                .await
                .map(|_| ())
                .map_err(|e| IamError::from_sdk("TagRole", None, e))
        })
        .await
    }

    pub async fn untag(&self, name: &str, keys: &[String]) -> Result<(), IamError> {
        if keys.is_empty() {
            return Ok(());
        }
        retry(PROPAGATION, concurrent, |_| async {
            self.client
                .untag_role()
                .role_name(name)
                .set_tag_keys(Some(keys.to_vec()))
                .send()
                .await
                .map(|_| ())
                .map_err(|e| IamError::from_sdk("UntagRole", Some(&keys.join(", ")), e))
        })
        .await
    }

    async fn instance_profiles(&self, name: &str) -> Result<Vec<String>, IamError> {
        let profiles: Vec<_> = self
            .client
            .list_instance_profiles_for_role()
            .role_name(name)
            .into_paginator()
            .items()
            .send()
            .collect::<Result<_, _>>()
            .await
            .map_err(|e| IamError::from_sdk("ListInstanceProfilesForRole", None, e))?;
        Ok(profiles
            .iter()
            .map(|p| p.instance_profile_name().to_owned())
            .collect())
    }

    /// Removes what blocks DeleteRole (managed attachments, inline policies, instance profile
    /// memberships; the instance profiles themselves stay), then deletes the role. A role that
    /// is already gone is success. DeleteConflict right after the clean-up is IAM catching up and
    /// is retried, the clean-up included.
    pub async fn delete(&self, name: &str) -> Result<(), IamError> {
        let r = retry(
            DELETE_CONFLICT,
            |e: &IamError| e.is("DeleteConflict") || concurrent(e),
            |_| self.delete_once(name),
        )
        .await;
        ok_if_gone(r)
    }

    async fn delete_once(&self, name: &str) -> Result<(), IamError> {
        for arn in self.attached(name).await? {
            self.detach(name, &arn).await?;
        }
        for policy in self.inline_names(name).await? {
            self.delete_inline(name, &policy).await?;
        }
        for profile in self.instance_profiles(name).await? {
            let r = self
                .client
                .remove_role_from_instance_profile()
                .instance_profile_name(&profile)
                .role_name(name)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| {
                    IamError::from_sdk("RemoveRoleFromInstanceProfile", Some(&profile), e)
                });
            ok_if_gone(r)?;
        }
        self.client
            .delete_role()
            .role_name(name)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| IamError::from_sdk("DeleteRole", None, e))
    }
}

fn ok_if_gone(r: Result<(), IamError>) -> Result<(), IamError> {
    match r {
        Err(e) if e.not_found() => Ok(()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::retry::tests::fast;
    use std::sync::atomic::{AtomicU32, Ordering};

    fn err(code: &str, message: &str) -> IamError {
        IamError {
            operation: "AttachRolePolicy",
            subject: Some("arn:aws:iam::aws:policy/P".into()),
            code: Some(code.into()),
            message: message.into(),
        }
    }

    #[test]
    fn display_names_operation_subject_and_code() {
        let e = err(
            "NoSuchEntity",
            "Policy arn:aws:iam::aws:policy/P does not exist",
        );
        assert_eq!(
            e.to_string(),
            "AttachRolePolicy (arn:aws:iam::aws:policy/P): NoSuchEntity: Policy arn:aws:iam::aws:policy/P does not exist"
        );
    }

    #[test]
    fn a_timeout_names_the_call_and_both_timeouts() {
        let e = IamError {
            operation: "CreateRole",
            subject: None,
            code: None,
            message: timed_out_message(),
        };
        let text = e.to_string();
        assert!(
            text.starts_with("CreateRole: timed out after 60 s") && text.contains("20 s attempt"),
            "{text}"
        );
    }

    #[test]
    fn propagation_waits_are_bounded() {
        // Every draw at its maximum: the longest IAM's propagation can hold up an apply.
        let worst: Duration = (0..PROPAGATION.max_retries)
            .map(|r| PROPAGATION.step(r))
            .sum();
        assert!(worst <= Duration::from_secs(13), "{worst:?}");
        assert_eq!(PROPAGATION.max_attempts(), 8);
        assert_eq!(DELETE_CONFLICT.max_attempts(), 4);
    }

    #[tokio::test(start_paused = true)]
    async fn retries_role_propagation_until_it_succeeds() {
        let calls = AtomicU32::new(0);
        let r = retry(
            fast(3),
            role_not_yet_visible("r1", Some("arn:aws:iam::aws:policy/P")),
            |_| async {
                if calls.fetch_add(1, Ordering::SeqCst) < 2 {
                    Err(err(
                        "NoSuchEntity",
                        "The role with name r1 cannot be found.",
                    ))
                } else {
                    Ok(7)
                }
            },
        )
        .await;
        assert_eq!(r, Ok(7));
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn gives_up_after_its_attempts() {
        let calls = AtomicU32::new(0);
        let r: Result<(), _> = retry(fast(3), role_not_yet_visible("r1", None), |_| async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err(err("NoSuchEntity", "Role r1 not found"))
        })
        .await;
        assert!(r.unwrap_err().not_found());
        assert_eq!(calls.load(Ordering::SeqCst), fast(3).max_attempts());
    }

    #[tokio::test(start_paused = true)]
    async fn does_not_retry_a_missing_policy_or_a_malformed_document() {
        for e in [
            err(
                "NoSuchEntity",
                "Policy arn:aws:iam::aws:policy/P does not exist or is not attachable.",
            ),
            err("MalformedPolicyDocument", "Invalid principal in policy"),
            err(
                "AccessDenied",
                "not authorized to perform iam:AttachRolePolicy on r1",
            ),
        ] {
            let calls = AtomicU32::new(0);
            let r: Result<(), _> = retry(
                fast(3),
                role_not_yet_visible("r1", Some("arn:aws:iam::aws:policy/P")),
                |_| async {
                    calls.fetch_add(1, Ordering::SeqCst);
                    Err(e.clone())
                },
            )
            .await;
            assert_eq!(r.unwrap_err(), e);
            assert_eq!(calls.load(Ordering::SeqCst), 1, "{e}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_modification_is_transient() {
        let calls = AtomicU32::new(0);
        let r = retry(fast(3), concurrent, |_| async {
            if calls.fetch_add(1, Ordering::SeqCst) == 0 {
                Err(err("ConcurrentModification", "try again"))
            } else {
                Ok(())
            }
        })
        .await;
        assert_eq!(r, Ok(()));
    }

    #[test]
    fn gone_is_fine_for_removals() {
        assert_eq!(ok_if_gone(Err(err("NoSuchEntity", "x"))), Ok(()));
        assert!(ok_if_gone(Err(err("DeleteConflict", "x"))).is_err());
    }
}
