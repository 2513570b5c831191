//! `ephemeral "gcpfed_credentials"`: the data source's exchange without its trace. Terraform
//! opens it on every plan and apply, uses the result in memory (typically for a provider block's
//! `access_key`, `secret_key` and `token`) and never writes it to state or plan files.
//! Arguments, schema, validation and the exchange are shared with the data source
//! ([`crate::credentials`]).
//!
//! One exchange per Open; nothing to renew or close. Renewal could not help anyway: Renew
//! returns no new result, so a provider configured with these credentials would keep the old
//! ones. Sessions last `duration_seconds` (default one hour), longer than most runs.

use std::sync::Arc;

use async_trait::async_trait;
use tf_provider::schema::Schema;
use tf_provider::Diagnostics;

use crate::clients::SharedClients;
use crate::credentials::{self, CredentialsState, Kind};
use crate::plugin::ephemeral::{EphemeralResource, Opened};

pub use crate::credentials::TYPE_NAME;

/// The `gcpfed_credentials` ephemeral resource.
pub struct CredentialsEphemeral {
    shared: Arc<SharedClients>,
}

impl CredentialsEphemeral {
    pub fn new(shared: Arc<SharedClients>) -> Self {
        CredentialsEphemeral { shared }
    }
}

#[async_trait]
impl EphemeralResource for CredentialsEphemeral {
    type State<'a> = CredentialsState;
    /// Nothing is kept between Open and Close.
    type PrivateState<'a> = ();

    fn schema(&self, _diags: &mut Diagnostics) -> Option<Schema> {
        Some(credentials::schema(Kind::Ephemeral))
    }

    async fn validate<'a>(&self, diags: &mut Diagnostics, config: Self::State<'a>) -> Option<()> {
        credentials::validate(diags, &config)
    }

    async fn open<'a>(
        &self,
        diags: &mut Diagnostics,
        config: Self::State<'a>,
    ) -> Option<Opened<Self::State<'a>, Self::PrivateState<'a>>> {
        let result = credentials::run::open(&self.shared, diags, config).await?;
        Some(Opened {
            result,
            renew_at: None,
            private: (),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tf_provider::value::Value;
    use tf_provider::AttributePath;

    fn ephemeral() -> CredentialsEphemeral {
        CredentialsEphemeral::new(Arc::new(SharedClients::default()))
    }

    fn config(role_arn: &str) -> CredentialsState {
        CredentialsState {
            role_arn: Value::Value(role_arn.into()),
            audience: Value::Value("a".into()),
            ..Default::default()
        }
    }

    #[test]
    fn schema_is_the_ephemeral_kind() {
        let schema = ephemeral().schema(&mut Diagnostics::default()).unwrap();
        assert!(schema.block.attributes["access_key_id"].sensitive);
        assert!(schema
            .block
            .description
            .content
            .contains("Requires Terraform >= 1.10"));
    }

    #[tokio::test]
    async fn validate_and_open_refuse_bad_arguments_with_their_path_before_any_call() {
        let config = config("not-an-arn");
        let mut diags = Diagnostics::default();
        assert!(ephemeral()
            .validate(&mut diags, config.clone())
            .await
            .is_none());
        assert_eq!(diags.errors[0].attribute, AttributePath::new("role_arn"));
        // Open re-checks (values unknown at validate time are known now) and so never reaches
        // the unconfigured clients.
        let mut diags = Diagnostics::default();
        assert!(ephemeral().open(&mut diags, config).await.is_none());
        assert_eq!(diags.errors.len(), 1);
        assert_eq!(diags.errors[0].attribute, AttributePath::new("role_arn"));
    }

    #[tokio::test]
    async fn open_without_a_configured_provider_says_so() {
        let config = config("arn:aws:iam::123456789012:role/r");
        let mut diags = Diagnostics::default();
        assert!(ephemeral().open(&mut diags, config).await.is_none());
        assert_eq!(diags.errors[0].summary, "Provider not configured");
    }
}
