//! terraform-provider-gcpfed: Google Cloud service accounts reach AWS through
//! STS web-identity federation, with no AWS key stored anywhere.
//!
//! Module map: `provider` (schema, configuration, shared clients), `clients`
//! (AWS SDK and metadata-server clients), `diag` (errors to Terraform diagnostics), `schema`
//! (attribute declarations with every field set),
//! one module per Terraform type under `resources` / `data_sources` /
//! `ephemeral_resources` / `functions` (`credentials` holds what the data source and the
//! ephemeral resource of that name share), pure logic
//! (trust policy, validation, claims) beside them, and `cli` for command-line mode.

pub mod cache;
pub mod claims;
pub mod cli;
pub mod clients;
pub mod credentials;
pub mod data_sources;
pub mod diag;
pub mod ephemeral_resources;
pub mod exchange;
pub mod functions;
pub mod plugin;
pub mod provider;
pub mod resources;
pub mod schema;
pub mod secret;
pub mod session_name;
pub mod trust_policy;
pub mod validate;
