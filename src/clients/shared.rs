//! Owns the clients one provider configuration builds and every Terraform type shares (as
//! terraform-provider-aws keeps its client in `internal/conns`). Resources, data sources and
//! ephemeral resources import this, never the provider, so the provider can import them to
//! build its registry without a cycle.

use std::sync::{Arc, RwLock};

use tf_provider::Diagnostics;

/// Everything the resources and data sources need from the provider configuration.
#[derive(Debug, Clone)]
pub struct Clients {
    /// Region, credentials and retry settings for any AWS SDK client.
    pub sdk_config: aws_types::SdkConfig,
    pub iam: aws_sdk_iam::Client,
    pub region: String,
    /// Explicit STS endpoint (`endpoints.sts`, `AWS_ENDPOINT_URL_STS`, `AWS_ENDPOINT_URL`);
    /// `None` means STS's regional endpoint for `region`.
    pub sts_endpoint: Option<String>,
    /// host[:port] of the GCE metadata server.
    pub metadata_host: String,
    /// Base URL of the IAM Credentials API (impersonation).
    pub iam_credentials_endpoint: String,
    pub max_retries: u32,
}

/// The clients, filled in once `configure` has run. Resources are constructed before
/// that, so they hold this shared cell rather than the clients themselves.
#[derive(Debug, Default)]
pub struct SharedClients(RwLock<Option<Arc<Clients>>>);

impl SharedClients {
    /// The configured clients, or an error diagnostic when the provider is not configured
    /// (which Terraform only allows when a configuration value is unknown until apply).
    pub fn get(&self, diags: &mut Diagnostics) -> Option<Arc<Clients>> {
        let clients = self.0.read().ok().and_then(|guard| guard.clone());
        if clients.is_none() {
            diags.root_error(
                "Provider not configured",
                "The gcpfed provider has not been configured yet. If its arguments depend on \
                 values known only after apply, apply those first (for example with -target).",
            );
        }
        clients
    }

    /// Fills the cell; called by the provider's `configure`, once per configuration.
    pub fn set(&self, clients: Clients) {
        if let Ok(mut guard) = self.0.write() {
            *guard = Some(Arc::new(clients));
        }
    }
}
