//! `gcpfed_role`: one IAM role a Google service account can assume, its trust policy rendered from
//! Google inputs, and (exclusively) its managed and inline policies. This module is the
//! Terraform glue: the resource's trait methods, which turn errors into diagnostics once. The
//! rest lives beside it, each part building only on those listed before it:
//!
//! - [`state`]: the state, its schema, and the all-known values create and update work from;
//! - [`checks`]: the argument rules of [`crate::validate`], on their attributes;
//! - [`concurrent`]: how many IAM calls of one role run at once, results kept in order;
//! - [`iam`]: the IAM calls, their typed errors and their retries;
//! - [`adopt`]: whether a role CreateRole met as "already exists" is the one this create made;
//! - [`plan`]: planning (the trust policy is known at plan time) and reading back;
//! - [`update`]: the IAM writes after CreateRole and of an in-place update, concurrent where IAM
//!   allows, in an order that never leaves the role with fewer permissions than before and after;
//! - [`diagnostics`]: what to do next when IAM refuses;
//! - [`account`]: an import ARN's account against the caller's.
//!
//! Rendering and comparing policies is [`crate::trust_policy`]'s.

mod account;
pub mod adopt;
pub mod checks;
mod concurrent;
pub mod diagnostics;
pub mod iam;
pub mod plan;
pub mod state;
pub mod update;

use std::sync::Arc;
use std::time::SystemTime;

use async_trait::async_trait;
use tf_provider::schema::Schema;
use tf_provider::value::{Value, ValueEmpty};
use tf_provider::{AttributePath, Diagnostics, Resource};

use crate::clients::SharedClients;
use crate::diag;
use crate::validate::{self, Invalid};
use checks::check_config;
use diagnostics::{report, report_not_gcpfed, report_not_ours, report_unknown};
use iam::{Created, NewRole, RoleApi};
use plan::{merge, plan_change, plan_new};
use state::{known, str_of, Desired};
use update::{add_policies, apply_changes};

pub use state::{role_schema, RoleState, DEFAULT_MAX_SESSION_DURATION, DEFAULT_PATH, TYPE_NAME};

/// The IAM role a Google service account can assume.
pub struct RoleResource {
    shared: Arc<SharedClients>,
}

impl RoleResource {
    pub fn new(shared: Arc<SharedClients>) -> Self {
        Self { shared }
    }
}

/// The role CreateRole reported as existing, when [`adopt::mismatches`] finds it is the one
/// this create made; `Err(Some(why))` when it is not, `Err(None)` when it cannot be read.
async fn adopt_existing(
    api: &RoleApi<'_>,
    want: &NewRole<'_>,
    started: SystemTime,
) -> Result<Created, Option<Vec<String>>> {
    let remote = match api.fetch(want.name).await {
        Ok(Some(remote)) => remote,
        _ => return Err(None),
    };
    let why = adopt::mismatches(&remote, want, started, SystemTime::now());
    if !why.is_empty() {
        return Err(Some(why));
    }
    tracing::info!(
        role = want.name,
        "adopted the role a CreateRole with a lost answer made"
    );
    Ok(Created {
        arn: remote.arn,
        role_id: remote.role_id,
        create_date: remote.create_date,
    })
}

/// What an import ID names: a role name, and the account when the ID is a role ARN
/// (`arn:aws:iam::123456789012:role/path/name`).
fn import_name(id: &str) -> Result<(&str, Option<&str>), Invalid> {
    if id.starts_with("arn:") {
        return validate::parse_role_arn(id).map(|arn| (arn.name, Some(arn.account)));
    }
    validate::role_name(id).map(|()| (id, None))
}

#[async_trait]
impl Resource for RoleResource {
    type State<'a> = RoleState;
    type PrivateState<'a> = ValueEmpty;
    type ProviderMetaState<'a> = ValueEmpty;

    fn schema(&self, _diags: &mut Diagnostics) -> Option<Schema> {
        Some(role_schema())
    }

    async fn validate<'a>(&self, diags: &mut Diagnostics, config: Self::State<'a>) -> Option<()> {
        checks::warn(diags, &config);
        diag::report(diags, check_config(&config));
        Some(())
    }

    async fn read<'a>(
        &self,
        diags: &mut Diagnostics,
        state: Self::State<'a>,
        private_state: Self::PrivateState<'a>,
        _meta: Self::ProviderMetaState<'a>,
    ) -> Option<(Self::State<'a>, Self::PrivateState<'a>)> {
        let Some(name) = str_of(&state.id).or(str_of(&state.name)).map(str::to_owned) else {
            return Some((state, private_state));
        };
        let Some(clients) = self.shared.get(diags) else {
            return Some((state, private_state));
        };
        match RoleApi::new(&clients.iam).fetch(&name).await {
            Ok(None) => None,
            Ok(Some(remote)) => Some((merge(&state, &remote).0, private_state)),
            Err(e) => {
                report(diags, "Cannot read IAM role", &name, &e);
                Some((state, private_state))
            }
        }
    }

    async fn plan_create<'a>(
        &self,
        diags: &mut Diagnostics,
        proposed_state: Self::State<'a>,
        config_state: Self::State<'a>,
        _meta: Self::ProviderMetaState<'a>,
    ) -> Option<(Self::State<'a>, Self::PrivateState<'a>)> {
        diag::report(diags, check_config(&config_state));
        Some((
            plan_new(proposed_state, &config_state),
            ValueEmpty::default(),
        ))
    }

    async fn plan_update<'a>(
        &self,
        diags: &mut Diagnostics,
        prior_state: Self::State<'a>,
        proposed_state: Self::State<'a>,
        config_state: Self::State<'a>,
        prior_private_state: Self::PrivateState<'a>,
        _meta: Self::ProviderMetaState<'a>,
    ) -> Option<(Self::State<'a>, Self::PrivateState<'a>, Vec<AttributePath>)> {
        diag::report(diags, check_config(&config_state));
        let (planned, replace) = plan_change(&prior_state, proposed_state, &config_state);
        Some((planned, prior_private_state, replace))
    }

    async fn plan_destroy<'a>(
        &self,
        _diags: &mut Diagnostics,
        _prior_state: Self::State<'a>,
        prior_private_state: Self::PrivateState<'a>,
        _meta: Self::ProviderMetaState<'a>,
    ) -> Option<Self::PrivateState<'a>> {
        Some(prior_private_state)
    }

    async fn create<'a>(
        &self,
        diags: &mut Diagnostics,
        planned_state: Self::State<'a>,
        _config_state: Self::State<'a>,
        planned_private_state: Self::PrivateState<'a>,
        _meta: Self::ProviderMetaState<'a>,
    ) -> Option<(Self::State<'a>, Self::PrivateState<'a>)> {
        let d = match Desired::of(&planned_state) {
            Ok(d) => d,
            Err(attr) => {
                report_unknown(diags, attr);
                return None;
            }
        };
        let clients = self.shared.get(diags)?;
        let api = RoleApi::new(&clients.iam);
        let new_role = NewRole {
            name: &d.name,
            path: &d.path,
            trust_policy: &d.trust_policy,
            description: d.description.as_deref(),
            max_session_duration: d.max_session_duration,
            permissions_boundary: d.boundary.as_deref(),
            tags: &d.tags,
        };
        let started = SystemTime::now();
        let created = match api.create(&new_role).await {
            Ok(c) => c,
            // A CreateRole whose answer was lost either meets its own role when the SDK retries
            // it, or (no retry left) ends in a transport failure although IAM made the role.
            // Both read the role back: ours is adopted rather than left outside state.
            Err(e) if e.is("EntityAlreadyExists") || e.answer_lost() => {
                match adopt_existing(&api, &new_role, started).await {
                    Ok(c) => c,
                    Err(Some(mismatches)) if e.is("EntityAlreadyExists") => {
                        report_not_ours(diags, &d.name, &mismatches, &e);
                        return None;
                    }
                    Err(_) => {
                        report(diags, "Cannot create IAM role", &d.name, &e);
                        return None;
                    }
                }
            }
            Err(e) => {
                report(diags, "Cannot create IAM role", &d.name, &e);
                return None;
            }
        };
        let mut state = planned_state;
        state.id = known(d.name.clone());
        state.path = known(d.path.clone());
        state.max_session_duration = Value::Value(i64::from(d.max_session_duration));
        state.arn = known(created.arn);
        state.unique_id = known(created.role_id);
        state.create_date = known(created.create_date);
        state.trust_policy = known(d.trust_policy.clone());

        // From here on the role exists: it goes into state whatever happens, so that a failure
        // leaves it tainted (replaced on the next apply) instead of orphaned.
        if let Err((summary, e)) = add_policies(&api, &d).await {
            report(diags, summary, &d.name, &e);
        }
        Some((state, planned_private_state))
    }

    async fn update<'a>(
        &self,
        diags: &mut Diagnostics,
        prior_state: Self::State<'a>,
        planned_state: Self::State<'a>,
        _config_state: Self::State<'a>,
        planned_private_state: Self::PrivateState<'a>,
        _meta: Self::ProviderMetaState<'a>,
    ) -> Option<(Self::State<'a>, Self::PrivateState<'a>)> {
        let (want, had) = match (Desired::of(&planned_state), Desired::of(&prior_state)) {
            (Ok(w), Ok(h)) => (w, h),
            (Err(attr), _) | (_, Err(attr)) => {
                report_unknown(diags, attr);
                return Some((prior_state, planned_private_state));
            }
        };
        let Some(clients) = self.shared.get(diags) else {
            return Some((prior_state, planned_private_state));
        };
        let api = RoleApi::new(&clients.iam);
        let prior_trust = str_of(&prior_state.trust_policy)
            .unwrap_or_default()
            .to_owned();
        match apply_changes(&api, &want, &had, &prior_trust).await {
            Ok(()) => {
                let mut state = planned_state;
                state.trust_policy = known(want.trust_policy);
                Some((state, planned_private_state))
            }
            Err((summary, e)) => {
                report(diags, summary, &want.name, &e);
                // The next refresh reads what did change; keeping the prior state re-plans the rest.
                Some((prior_state, planned_private_state))
            }
        }
    }

    async fn destroy<'a>(
        &self,
        diags: &mut Diagnostics,
        prior_state: Self::State<'a>,
        _planned_private_state: Self::PrivateState<'a>,
        _meta: Self::ProviderMetaState<'a>,
    ) -> Option<()> {
        let name = str_of(&prior_state.id)
            .or(str_of(&prior_state.name))
            .unwrap_or_default()
            .to_owned();
        let clients = self.shared.get(diags)?;
        match RoleApi::new(&clients.iam).delete(&name).await {
            Ok(()) => Some(()),
            Err(e) => {
                report(diags, "Cannot delete IAM role", &name, &e);
                None
            }
        }
    }

    async fn import<'a>(
        &self,
        diags: &mut Diagnostics,
        id: String,
    ) -> Option<(Self::State<'a>, Self::PrivateState<'a>)> {
        let (name, account) = match import_name(&id) {
            Ok((name, account)) => (name.to_owned(), account.map(str::to_owned)),
            Err(i) => {
                diags.root_error(
                    "Invalid import ID",
                    format!("Import gcpfed_role by role name (or role ARN), for example `terraform import {TYPE_NAME}.ci my-role`. {}", i.detail),
                );
                return None;
            }
        };
        let clients = self.shared.get(diags)?;
        if let Some(account) = account {
            let caller = match account::caller_account(&clients).await {
                Ok(caller) => caller,
                Err(e) => {
                    diags.root_error(
                        "Cannot check the role ARN's account",
                        diag::detail(&format!("Importing by ARN checks that {id:?} is in the account of the provider's credentials, with STS GetCallerIdentity, which failed. Check the provider's credentials and STS endpoint, or import by role name."), &e),
                    );
                    return None;
                }
            };
            if let Err(i) = account::same_account(&id, &account, &caller) {
                diags.root_error(i.summary, i.detail);
                return None;
            }
        }
        let remote = match RoleApi::new(&clients.iam).fetch(&name).await {
            Ok(Some(remote)) => remote,
            Ok(None) => {
                diags.root_error(
                    "Role not found",
                    format!("IAM has no role named {name:?} in this account. Check the name (it is case-sensitive as shown by `aws iam get-role --role-name {name}`) and the provider's credentials."),
                );
                return None;
            }
            Err(e) => {
                report(diags, "Cannot read IAM role", &name, &e);
                return None;
            }
        };
        let blank = RoleState {
            id: known(name.clone()),
            name: known(name.clone()),
            ..Default::default()
        };
        let trust = remote.trust_policy.as_deref();
        if let Some(why) = adopt::open_to_any_google_identity(&name, trust) {
            diags.root_error("Role is open to any Google identity", why);
            return None;
        }
        let (state, mismatch) = merge(&blank, &remote);
        if let Some(m) = mismatch {
            report_not_gcpfed(diags, &name, &m);
            return None;
        }
        Some((state, ValueEmpty::default()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn import_ids() {
        assert_eq!(import_name("r"), Ok(("r", None)));
        assert_eq!(
            import_name("arn:aws:iam::123456789012:role/ci/r"),
            Ok(("r", Some("123456789012")))
        );
        let e = import_name("arn:aws:sts::123456789012:assumed-role/r/s").unwrap_err();
        assert!(e.detail.contains("not a role ARN"), "{}", e.detail);
        let e = import_name("my role").unwrap_err();
        assert!(e.detail.contains("' '"), "{}", e.detail);
    }
}
