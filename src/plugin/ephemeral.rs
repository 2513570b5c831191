//! The `EphemeralResource` trait: the typed interface of an ephemeral resource, in the style of
//! tf-provider's `Resource` and `DataSource` traits (which have no ephemeral counterpart).
//!
//! Terraform (>= 1.10) opens an ephemeral resource during every plan and apply, uses its result
//! only in memory, and never writes it to state or plan files. The server ([`super::server`])
//! turns the protocol's Validate/Open/Renew/Close calls into these methods.

use std::time::SystemTime;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tf_provider::schema::Schema;
use tf_provider::Diagnostics;

/// What `open` returns: the result object, and when Terraform should call `renew`.
pub struct Opened<S, P> {
    /// The ephemeral resource's attributes, configuration and results alike.
    pub result: S,
    /// Renew (with `private`) before this instant; `None`: never renewed.
    pub renew_at: Option<SystemTime>,
    /// Opaque to Terraform; handed back to `renew` and `close`.
    pub private: P,
}

#[async_trait]
pub trait EphemeralResource: Send + Sync {
    /// Configuration and result, attribute for attribute (msgpack through serde, like tf-provider).
    type State<'a>: Serialize + Deserialize<'a> + Send;
    /// Private data kept by Terraform between open, renew and close.
    type PrivateState<'a>: Serialize + Deserialize<'a> + Send;

    fn schema(&self, diags: &mut Diagnostics) -> Option<Schema>;

    /// Checks the configuration; values may still be unknown.
    async fn validate<'a>(&self, diags: &mut Diagnostics, config: Self::State<'a>) -> Option<()> {
        _ = diags;
        _ = config;
        Some(())
    }

    /// Produces the result from a wholly known configuration.
    async fn open<'a>(
        &self,
        diags: &mut Diagnostics,
        config: Self::State<'a>,
    ) -> Option<Opened<Self::State<'a>, Self::PrivateState<'a>>>;

    /// Extends the life of what `open` produced; the default asks for no further renewal.
    async fn renew<'a>(
        &self,
        diags: &mut Diagnostics,
        private: Self::PrivateState<'a>,
    ) -> Option<(Option<SystemTime>, Self::PrivateState<'a>)> {
        _ = diags;
        Some((None, private))
    }

    /// Releases what `open` produced; the default has nothing to release.
    async fn close<'a>(
        &self,
        diags: &mut Diagnostics,
        private: Self::PrivateState<'a>,
    ) -> Option<()> {
        _ = diags;
        _ = private;
        Some(())
    }
}
