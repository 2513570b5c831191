//! terraform-provider-gcpfed: Google Cloud service accounts reach AWS through
//! STS web-identity federation, with no AWS key stored anywhere.
//!
//! Module map: `provider` (schema, configuration, shared clients), `clients`
//! (AWS SDK and metadata-server clients), `diag` (errors to Terraform diagnostics),
//! one module per Terraform type under `resources` / `data_sources`, pure logic
//! (trust policy, validation, claims) beside them, and `cli` for command-line mode.

pub mod cli;
pub mod clients;
pub mod diag;
pub mod plugin_tls;
pub mod provider;
