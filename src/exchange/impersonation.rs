//! Owns impersonation as a source of ID tokens: the metadata server's OAuth access token of the
//! runner's account (`service_account`) authorises the IAM Credentials API's `generateIdToken`
//! for another account (`impersonate_service_account`), through an optional delegation chain.
//! The token that comes back has `azp` = `sub` = the impersonated account's unique ID, so a role
//! that trusts that account accepts it and a role that trusts only the runner does not.
//!
//! A refusal becomes an [`ImpersonationError`] whose message names the fix with the gcloud
//! command, and, for a permission missing somewhere along a chain, the broken link: Google's
//! answer does not say which link failed, so [`Impersonation::find_broken_link`] asks again
//! along the chain, one link longer each time, and the first refusal names it.

use crate::clients::iam_credentials::{
    ApiError, IamCredentialsClient, IamCredentialsError, DEFAULT_TIMEOUT,
};
use crate::clients::metadata::{MetadataClient, MetadataError};
use crate::secret::Secret;
use crate::validate::{delegate_account, CLOUD_PLATFORM_SCOPE, DEFAULT_SERVICE_ACCOUNT};

use super::caller::{Caller, Input};

/// The role that carries `iam.serviceAccounts.getOpenIdToken`.
pub const TOKEN_CREATOR_ROLE: &str = "roles/iam.serviceAccountTokenCreator";
/// The permission `generateIdToken` checks on each link.
pub const GET_OPEN_ID_TOKEN: &str = "iam.serviceAccounts.getOpenIdToken";

/// Where an impersonated token comes from: the clients, the account to impersonate and the
/// normalised chain (`projects/-/serviceAccounts/…`, the caller's end first).
#[derive(Debug)]
pub struct Impersonation {
    pub metadata: MetadataClient,
    pub iam: IamCredentialsClient,
    pub target: String,
    pub delegates: Vec<String>,
}

/// One link of the chain that failed: `granter` may not mint tokens for `grantee`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// 1 = from the runner's account to the first account of the chain.
    pub number: usize,
    pub granter: String,
    pub grantee: String,
}

/// Why the IAM Credentials API gave no token, with what the message needs to name the fix.
#[derive(Debug)]
pub struct ImpersonationError {
    pub error: IamCredentialsError,
    /// The runner's account, as an email when the metadata server told it, else as given.
    pub caller_account: String,
    pub target: String,
    /// The chain's accounts (bare emails or IDs), in order.
    pub delegates: Vec<String>,
    /// For a permission refusal: the link found missing.
    pub link: Option<Link>,
}

/// The refusals this module explains, each by its Google `reason` or status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    ServiceDisabled,
    ScopeInsufficient,
    PermissionDenied,
    NotFound,
    Unauthenticated,
    Other,
}

impl Refusal {
    pub fn of(api: &ApiError) -> Refusal {
        if api.reason_is("SERVICE_DISABLED") {
            Refusal::ServiceDisabled
        } else if api.reason_is("ACCESS_TOKEN_SCOPE_INSUFFICIENT") {
            Refusal::ScopeInsufficient
        } else if api.status == "PERMISSION_DENIED" || api.code == 403 {
            Refusal::PermissionDenied
        } else if api.status == "NOT_FOUND" || api.code == 404 {
            Refusal::NotFound
        } else if api.status == "UNAUTHENTICATED" || api.code == 401 {
            Refusal::Unauthenticated
        } else {
            Refusal::Other
        }
    }
}

impl super::TokenSource {
    /// The metadata server's own token for `params.service_account`, or, when `params` name an
    /// account to impersonate, a token minted for it through the IAM Credentials API at
    /// `iam_endpoint`: the one place that chooses, for every caller.
    pub fn google(
        metadata: MetadataClient,
        iam_endpoint: &str,
        retry: crate::retry::RetryPolicy,
        params: &super::ExchangeParams,
    ) -> Result<Self, super::ExchangeError> {
        let Some(target) = &params.impersonate_service_account else {
            return Ok(super::TokenSource::Metadata(metadata));
        };
        let iam =
            IamCredentialsClient::new(iam_endpoint, DEFAULT_TIMEOUT, retry).map_err(|error| {
                super::ExchangeError::Impersonation(Box::new(ImpersonationError {
                    error,
                    caller_account: params.service_account.clone(),
                    target: target.clone(),
                    delegates: Vec::new(),
                    link: None,
                }))
            })?;
        Ok(super::TokenSource::Impersonated(Box::new(Impersonation {
            metadata,
            iam,
            target: target.clone(),
            delegates: params.delegates.clone(),
        })))
    }
}

impl Impersonation {
    /// An ID token for the impersonated account with `audience`, minted for `service_account`'s
    /// access token. Metadata failures keep their own error; the API's become
    /// [`ImpersonationError`].
    pub async fn id_token(
        &self,
        service_account: &str,
        audience: &str,
    ) -> Result<Secret, super::ExchangeError> {
        let access = self
            .metadata
            .access_token(service_account, CLOUD_PLATFORM_SCOPE)
            .await?;
        match self
            .iam
            .generate_id_token(&access, &self.target, &self.delegates, audience)
            .await
        {
            Ok(token) => Ok(token),
            Err(error) => {
                let caller_account = self.caller_account(service_account).await;
                let link = match &error {
                    IamCredentialsError::Refused(api)
                        if Refusal::of(api) == Refusal::PermissionDenied =>
                    {
                        Some(
                            self.find_broken_link(&access, &caller_account, audience)
                                .await,
                        )
                    }
                    _ => None,
                };
                Err(super::ExchangeError::Impersonation(Box::new(
                    ImpersonationError {
                        error,
                        caller_account,
                        target: self.target.clone(),
                        delegates: self
                            .delegates
                            .iter()
                            .map(|d| delegate_account(d).to_owned())
                            .collect(),
                        link,
                    },
                )))
            }
        }
    }

    /// The runner's email for the messages' gcloud commands; an alias the metadata server
    /// cannot resolve now stays as given.
    async fn caller_account(&self, service_account: &str) -> String {
        if service_account.contains('@') {
            return service_account.to_owned();
        }
        match self.metadata.service_account_email(service_account).await {
            Ok(email) => email,
            Err(MetadataError::Unreachable { .. }) | Err(_) => service_account.to_owned(),
        }
    }

    /// The first link whose permission is missing: link 1 is asked alone (the runner mints for
    /// the first delegate), link k with the k-1 delegates before it; when every shorter chain
    /// works, the last link (to the impersonated account) is the broken one. Each probe is a
    /// real `generateIdToken`; the tokens it mints are dropped unread.
    async fn find_broken_link(&self, access: &Secret, caller: &str, audience: &str) -> Link {
        let accounts: Vec<&str> = self.delegates.iter().map(|d| delegate_account(d)).collect();
        for (i, grantee) in accounts.iter().enumerate() {
            let probe = self
                .iam
                .generate_id_token(access, grantee, &self.delegates[..i], audience)
                .await;
            match probe {
                Ok(_) => continue,
                Err(IamCredentialsError::Refused(api))
                    if Refusal::of(&api) == Refusal::PermissionDenied =>
                {
                    let granter = if i == 0 { caller } else { accounts[i - 1] };
                    return Link {
                        number: i + 1,
                        granter: granter.to_owned(),
                        grantee: (*grantee).to_owned(),
                    };
                }
                // Another fault: the probe cannot tell; blame the last link as Google's
                // answer does.
                Err(_) => break,
            }
        }
        Link {
            number: accounts.len() + 1,
            granter: accounts.last().copied().unwrap_or(caller).to_owned(),
            grantee: self.target.clone(),
        }
    }
}

impl ImpersonationError {
    /// The attribute at fault, when one is.
    pub fn attribute(&self) -> Option<&'static str> {
        match &self.error {
            IamCredentialsError::Refused(api) => match Refusal::of(api) {
                Refusal::NotFound if self.delegates.is_empty() => {
                    Some("impersonate_service_account")
                }
                Refusal::PermissionDenied if self.link.as_ref().is_some_and(|l| l.number > 1) => {
                    Some("delegates")
                }
                _ => None,
            },
            _ => None,
        }
    }

    pub fn summary(&self) -> &'static str {
        match &self.error {
            IamCredentialsError::Refused(api) => match Refusal::of(api) {
                Refusal::ServiceDisabled => "IAM Service Account Credentials API disabled",
                Refusal::ScopeInsufficient => "Access token scopes insufficient for impersonation",
                Refusal::PermissionDenied => "Not allowed to impersonate the service account",
                Refusal::NotFound => "Service account to impersonate not found",
                Refusal::Unauthenticated => "Access token refused by the IAM Credentials API",
                Refusal::Other => "Impersonation failed",
            },
            _ => "Impersonation failed",
        }
    }

    /// The chain as a path: `runner → hop-1 → team-a`.
    fn chain(&self) -> String {
        let mut parts = vec![self.caller_account.as_str()];
        parts.extend(self.delegates.iter().map(String::as_str));
        parts.push(&self.target);
        parts.join(" → ")
    }

    /// What happened, then the fix with its gcloud command, every input named for `caller`.
    pub fn message(&self, caller: Caller) -> String {
        let name = |input| caller.name(input);
        let api = match &self.error {
            IamCredentialsError::Refused(api) => api,
            IamCredentialsError::InvalidEndpoint { .. } => {
                return format!(
                "{} Give {} as an absolute URL such as https://iamcredentials.googleapis.com/v1/.",
                self.error,
                name(Input::IamCredentialsEndpoint)
            )
            }
            IamCredentialsError::ServerError { .. } => {
                return format!(
                    "{} (retry budget: {}).",
                    self.error,
                    name(Input::MaxRetries)
                )
            }
            other => {
                return format!(
                    "Impersonating {} failed: {other} Check {}.",
                    self.target,
                    name(Input::IamCredentialsEndpoint)
                )
            }
        };
        let fix = match Refusal::of(api) {
            Refusal::ServiceDisabled => {
                let project = api
                    .metadata
                    .get("consumer")
                    .map(|c| c.trim_start_matches("projects/").to_owned())
                    .unwrap_or_else(|| "PROJECT".to_owned());
                format!(
                    "The IAM Service Account Credentials API (iamcredentials.googleapis.com) is \
                     disabled in project {project}, and {} needs it. Enable it with \
                     `gcloud services enable iamcredentials.googleapis.com --project {project}`, \
                     wait a minute for it to take effect, then try again.",
                    name(Input::ImpersonateServiceAccount)
                )
            }
            Refusal::ScopeInsufficient => format!(
                "The access token of {} lacks the cloud-platform scope that generateIdToken \
                 needs: the VM's access scopes are narrower. Give the VM the cloud-platform scope \
                 (access is then governed by IAM roles alone): stop it, run `gcloud compute \
                 instances set-service-account INSTANCE --zone ZONE --service-account {} \
                 --scopes cloud-platform`, and start it again (or use a node pool or runner \
                 created with --scopes cloud-platform).",
                self.caller_account, self.caller_account
            ),
            Refusal::PermissionDenied => {
                let link = self.link.clone().unwrap_or(Link {
                    number: self.delegates.len() + 1,
                    granter: self
                        .delegates
                        .last()
                        .cloned()
                        .unwrap_or_else(|| self.caller_account.clone()),
                    grantee: self.target.clone(),
                });
                let which = if self.delegates.is_empty() {
                    String::new()
                } else {
                    format!(
                        "The broken link is link {} of the chain {} (set by {}): ",
                        link.number,
                        self.chain(),
                        name(Input::Delegates)
                    )
                };
                let member = if link.granter == DEFAULT_SERVICE_ACCOUNT {
                    "serviceAccount:RUNNER_EMAIL".to_owned()
                } else {
                    format!("serviceAccount:{}", link.granter)
                };
                format!(
                    "{which}{} may not mint ID tokens for {} (permission {GET_OPEN_ID_TOKEN}). \
                     Grant it {TOKEN_CREATOR_ROLE} on that account: `gcloud iam service-accounts \
                     add-iam-policy-binding {} --member {member} --role {TOKEN_CREATOR_ROLE}`, \
                     or check {}.",
                    link.granter,
                    link.grantee,
                    link.grantee,
                    name(Input::ImpersonateServiceAccount)
                )
            }
            Refusal::NotFound => {
                let also = if self.delegates.is_empty() {
                    String::new()
                } else {
                    format!(" and every account of {}", name(Input::Delegates))
                };
                format!(
                    "The service account {} does not exist (or was deleted). Check {}{also}: \
                     `gcloud iam service-accounts describe {}` shows whether it exists.",
                    self.target,
                    name(Input::ImpersonateServiceAccount),
                    self.target
                )
            }
            Refusal::Unauthenticated => format!(
                "The IAM Credentials API did not accept the access token of {} from the metadata \
                 server. Check that {} points at the real metadata server and {} at the real API.",
                self.caller_account,
                name(Input::MetadataHost),
                name(Input::IamCredentialsEndpoint)
            ),
            Refusal::Other => format!(
                "Impersonating {} through {} failed.",
                self.target,
                name(Input::IamCredentialsEndpoint)
            ),
        };
        format!("{fix}\n\nUnderlying error: {}", self.error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use std::time::Duration;

    const RUNNER: &str = "ci-runner@gcpfed-test.iam.gserviceaccount.com";
    const TEAM_A: &str = "team-a@gcpfed-test.iam.gserviceaccount.com";
    const HOP_1: &str = "hop-1@gcpfed-test.iam.gserviceaccount.com";

    fn refused(
        code: u16,
        status: &str,
        reason: &str,
        metadata: &[(&str, &str)],
    ) -> IamCredentialsError {
        IamCredentialsError::Refused(ApiError {
            code,
            status: status.into(),
            message: "Google's words".into(),
            reason: Some(reason.into()),
            metadata: metadata
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>(),
        })
    }

    fn error(e: IamCredentialsError, delegates: &[&str], link: Option<Link>) -> ImpersonationError {
        ImpersonationError {
            error: e,
            caller_account: RUNNER.into(),
            target: TEAM_A.into(),
            delegates: delegates.iter().map(|d| d.to_string()).collect(),
            link,
        }
    }

    #[test]
    fn each_refusal_names_its_gcloud_fix_in_the_callers_words() {
        let disabled = error(
            refused(
                403,
                "PERMISSION_DENIED",
                "SERVICE_DISABLED",
                &[("consumer", "projects/123456789000")],
            ),
            &[],
            None,
        );
        let m = disabled.message(Caller::CommandLine);
        assert!(
            m.contains(
                "gcloud services enable iamcredentials.googleapis.com --project 123456789000"
            ),
            "{m}"
        );
        assert!(m.contains("--impersonate-service-account"), "{m}");
        assert_eq!(
            disabled.summary(),
            "IAM Service Account Credentials API disabled"
        );

        let scopes = error(
            refused(
                403,
                "PERMISSION_DENIED",
                "ACCESS_TOKEN_SCOPE_INSUFFICIENT",
                &[],
            ),
            &[],
            None,
        );
        let m = scopes.message(Caller::Terraform);
        assert!(
            m.contains(&format!(
                "--service-account {RUNNER} --scopes cloud-platform"
            )),
            "{m}"
        );

        let denied = error(
            refused(403, "PERMISSION_DENIED", "IAM_PERMISSION_DENIED", &[]),
            &[],
            Some(Link {
                number: 1,
                granter: RUNNER.into(),
                grantee: TEAM_A.into(),
            }),
        );
        let m = denied.message(Caller::Terraform);
        assert!(m.contains(&format!(
            "gcloud iam service-accounts add-iam-policy-binding {TEAM_A} --member serviceAccount:{RUNNER} --role roles/iam.serviceAccountTokenCreator"
        )), "{m}");
        assert!(!m.contains("broken link"), "{m}");

        let missing = error(refused(404, "NOT_FOUND", "", &[]), &[], None);
        assert_eq!(missing.attribute(), Some("impersonate_service_account"));
        assert!(missing
            .message(Caller::Terraform)
            .contains(&format!("gcloud iam service-accounts describe {TEAM_A}")));
    }

    #[tokio::test]
    async fn the_probe_asks_along_the_chain_and_stops_at_the_first_refusal() {
        use crate::clients::metadata::test_server::{serve, Reply};
        use crate::retry::tests::fast;
        let denied = Reply::new(
            403,
            r#"{"error":{"code":403,"status":"PERMISSION_DENIED","message":"denied"}}"#,
        );
        let ok = Reply::new(200, r#"{"token":"a.b.c"}"#);
        // The probe of link 1 succeeds, that of link 2 is refused.
        let (host, seen) = serve(vec![ok, denied]).await;
        let imp = Impersonation {
            metadata: MetadataClient::new("127.0.0.1:1", Duration::from_secs(1), fast(0)).unwrap(),
            iam: IamCredentialsClient::new(&format!("http://{host}/v1/"), DEFAULT_TIMEOUT, fast(0))
                .unwrap(),
            target: TEAM_A.into(),
            delegates: vec![
                format!("projects/-/serviceAccounts/{HOP_1}"),
                "projects/-/serviceAccounts/hop-2@gcpfed-test.iam.gserviceaccount.com".into(),
            ],
        };
        let link = imp
            .find_broken_link(&Secret::new("ya29.x"), RUNNER, "aud")
            .await;
        assert_eq!(
            link,
            Link {
                number: 2,
                granter: HOP_1.into(),
                grantee: "hop-2@gcpfed-test.iam.gserviceaccount.com".into()
            }
        );
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 2);
        assert!(seen[0]
            .request_line
            .contains(&format!("/serviceAccounts/{HOP_1}:generateIdToken")));
        assert!(!seen[0].body.contains("delegates"), "{}", seen[0].body);
        assert!(seen[1].body.contains(HOP_1), "{}", seen[1].body);
    }

    #[test]
    fn a_broken_link_is_named_with_its_chain() {
        let e = error(
            refused(403, "PERMISSION_DENIED", "IAM_PERMISSION_DENIED", &[]),
            &[HOP_1],
            Some(Link {
                number: 2,
                granter: HOP_1.into(),
                grantee: TEAM_A.into(),
            }),
        );
        let m = e.message(Caller::Terraform);
        assert!(
            m.contains(&format!(
                "link 2 of the chain {RUNNER} → {HOP_1} → {TEAM_A}"
            )),
            "{m}"
        );
        assert!(
            m.contains(&format!("--member serviceAccount:{HOP_1}")),
            "{m}"
        );
        assert_eq!(e.attribute(), Some("delegates"));
    }
}
