//! The provider itself: the registry of every Terraform type it serves, and `configure`, which
//! builds the AWS clients once per configuration and shares them with every type through
//! [`SharedClients`]. Nothing imports this module back: the types take their clients from
//! [`crate::clients`].
//!
//! `config` holds the provider block and its checks, `schema` its schema, `identity` the
//! credentials of `assume_role_with_gcp_identity`.

pub mod config;
pub mod identity;
pub mod schema;

use std::sync::Arc;

use async_trait::async_trait;
use tf_provider::schema::Schema;
use tf_provider::value::ValueEmpty;
use tf_provider::{AttributePath, Diagnostics, Provider};

use crate::clients::aws;
use crate::clients::settings::{GcpIdentitySettings, ProcessEnvironment};
use crate::clients::SharedClients;
use crate::data_sources::credentials::CredentialsDataSource;
use crate::data_sources::google_trusts::GoogleTrustsDataSource;
use crate::diag;
use crate::ephemeral_resources::credentials::CredentialsEphemeral;
use crate::functions::trust_policy::TrustPolicyFunction;
use crate::plugin::Registry;
/// The provider block as Terraform sends it (public for tests that check its `Debug`).
pub use crate::provider::config::ProviderConfig;
use crate::provider::config::{
    assume_role_path, check_config, resolve_settings, unknown_gcp_identity_arguments,
    ASSUME_ROLE_BLOCK,
};
use crate::provider::identity::GcpIdentityCredentials;
use crate::resources::role::RoleResource;

/// The provider's local name: resource types are `gcpfed_*`.
pub const PROVIDER_NAME: &str = "gcpfed";

/// Everything Terraform can use from this provider, as the plugin server serves it. The types
/// share one clients cell, filled in when Terraform configures the provider.
pub fn registry() -> Registry {
    let provider = GcpfedProvider::default();
    let shared = provider.shared();
    Registry::new(provider)
        .resource(
            crate::resources::role::TYPE_NAME,
            RoleResource::new(shared.clone()),
        )
        .data_source(
            crate::data_sources::credentials::TYPE_NAME,
            CredentialsDataSource::new(shared.clone()),
        )
        .data_source(
            crate::data_sources::google_trusts::TYPE_NAME,
            GoogleTrustsDataSource::new(shared.clone()),
        )
        .ephemeral_resource(
            crate::ephemeral_resources::credentials::TYPE_NAME,
            CredentialsEphemeral::new(shared.clone()),
        )
        .function(crate::functions::trust_policy::NAME, TrustPolicyFunction)
}

#[derive(Debug, Default)]
pub struct GcpfedProvider {
    shared: Arc<SharedClients>,
}

impl GcpfedProvider {
    /// The clients cell shared with resources and data sources.
    pub fn shared(&self) -> Arc<SharedClients> {
        self.shared.clone()
    }
}

#[async_trait]
impl Provider for GcpfedProvider {
    type Config<'a> = ProviderConfig;
    type MetaState<'a> = ValueEmpty;

    fn schema(&self, _diags: &mut Diagnostics) -> Option<Schema> {
        Some(schema::provider_schema())
    }

    async fn validate<'a>(&self, diags: &mut Diagnostics, config: Self::Config<'a>) -> Option<()> {
        diag::report(diags, check_config(&config))
    }

    async fn configure<'a>(
        &self,
        diags: &mut Diagnostics,
        _terraform_version: String,
        config: Self::Config<'a>,
    ) -> Option<()> {
        diag::report(diags, check_config(&config))?;
        let unknown = unknown_gcp_identity_arguments(&config);
        if !unknown.is_empty() {
            for path in unknown {
                diag::attribute_error(
                    diags,
                    path,
                    "Value unknown until apply",
                    format!(
                        "The provider needs {ASSUME_ROLE_BLOCK} to get its AWS credentials before \
                         it can plan, but this value is only known after apply. Create the role \
                         first (for example with -target, or in another configuration) and give \
                         its ARN as a literal or variable."
                    ),
                );
            }
            return None;
        }
        let settings = resolve_settings(&config, &ProcessEnvironment);
        let region = aws::resolve_region(&settings).await;
        let identity = match GcpIdentityCredentials::from_settings(&settings, &region) {
            Ok(identity) => identity,
            Err(err) => {
                diag::operation_error(
                    diags,
                    "Cannot configure AWS clients",
                    "Check the provider's region, profile and endpoints arguments and the AWS_* \
                     environment variables.",
                    &err,
                );
                return None;
            }
        };
        // Exchange once now, so that a refusal is reported on the block rather than on the
        // first resource that happens to call IAM.
        if let Some(identity) = &identity {
            if let Err(err) = identity.credentials().await {
                report_identity_error(diags, identity.settings(), &err);
                return None;
            }
        }
        let credentials = identity
            .as_ref()
            .map(GcpIdentityCredentials::credentials_provider);
        self.shared
            .set(aws::build_clients(&settings, region, credentials).await);
        Some(())
    }
}

/// A failed exchange of `assume_role_with_gcp_identity`, on the argument at fault when one is.
fn report_identity_error(
    diags: &mut Diagnostics,
    settings: &GcpIdentitySettings,
    err: &crate::exchange::ExchangeError,
) {
    let path = match err.attribute() {
        Some(attr @ ("service_account" | "duration_seconds")) => assume_role_path(attr),
        _ => AttributePath::new(ASSUME_ROLE_BLOCK),
    };
    diag::attribute_error(
        diags,
        path,
        format!("{ASSUME_ROLE_BLOCK}: {}", err.summary()),
        format!(
            "The provider could not get its AWS credentials by exchanging the Google identity of \
             service account \"{}\" for role {}.\n\n{err}",
            settings.service_account, settings.role_arn
        ),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_type_is_served_under_the_name_users_write() {
        let registry = registry();
        let [resources, data_sources, _, _] = registry.names();
        assert_eq!(resources, vec!["gcpfed_role"]);
        assert_eq!(
            data_sources,
            vec!["gcpfed_credentials", "gcpfed_google_trusts"]
        );
    }
}
