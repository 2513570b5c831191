//! `data "gcpfed_credentials"`: runs the metadata-to-STS exchange on every plan and apply and
//! returns temporary AWS credentials, which Terraform stores in the state. Everything but the
//! trait itself (arguments, schema, validation, the exchange and its errors) is shared with the
//! state-free ephemeral resource in [`crate::credentials`]; this type stays for engines that
//! have no ephemeral resources (Terraform < 1.10, OpenTofu < 1.11).

use std::sync::Arc;

use async_trait::async_trait;
use tf_provider::schema::Schema;
use tf_provider::value::ValueEmpty;
use tf_provider::{DataSource, Diagnostics};

use crate::clients::SharedClients;
use crate::credentials::{self, CredentialsState, Kind};

pub use crate::credentials::TYPE_NAME;

/// The `gcpfed_credentials` data source.
pub struct CredentialsDataSource {
    shared: Arc<SharedClients>,
}

impl CredentialsDataSource {
    pub fn new(shared: Arc<SharedClients>) -> Self {
        CredentialsDataSource { shared }
    }
}

#[async_trait]
impl DataSource for CredentialsDataSource {
    type State<'a> = CredentialsState;
    type ProviderMetaState<'a> = ValueEmpty;

    fn schema(&self, _diags: &mut Diagnostics) -> Option<Schema> {
        Some(credentials::schema(Kind::DataSource))
    }

    async fn validate<'a>(&self, diags: &mut Diagnostics, config: Self::State<'a>) -> Option<()> {
        credentials::validate(diags, &config)
    }

    async fn read<'a>(
        &self,
        diags: &mut Diagnostics,
        config: Self::State<'a>,
        _provider_meta_state: Self::ProviderMetaState<'a>,
    ) -> Option<Self::State<'a>> {
        credentials::run::open(&self.shared, diags, config).await
    }
}
