//! terraform-provider-gcpfed: Google Cloud service accounts reach AWS through
//! STS web-identity federation, with no AWS key stored anywhere.
//!
//! Module map: `provider` (schema, configuration, shared clients), `clients`
//! (AWS SDK and metadata-server clients), `diag` (errors to Terraform diagnostics),
//! one module per Terraform type under `resources` / `data_sources`, pure logic
//! (trust policy, validation, claims) beside them, and `cli` for command-line mode.

pub mod cache;
pub mod claims;
pub mod cli;
pub mod clients;
pub mod data_sources;
pub mod diag;
pub mod exchange;
pub mod plugin_tls;
pub mod provider;
pub mod resources;
pub mod secret;
pub mod session_name;
pub mod trust_policy;
pub mod validate;
