//! terraform-provider-gcpfed: Google Cloud service accounts reach AWS through
//! STS web-identity federation, with no AWS key stored anywhere.
//!
//! Module map, one line per module (the README's "Source layout" shows the same tree):
//! - `provider`: the registry of every Terraform type, and `configure` (its block and checks in
//!   `config`, its schema in `schema`, the credentials of `assume_role_with_gcp_identity` in
//!   `identity`); nothing imports it back.
//! - `clients`: leaf: the AWS SDK, metadata-server and IAM Credentials (impersonation) clients, the settings they are built from
//!   with their environment fallbacks (`settings`), and the cell that shares them (`shared`).
//! - `resources` / `data_sources` / `ephemeral_resources` / `functions`: one module per
//!   Terraform type (`resources::role` split by concern).
//! - `credentials`: what the `gcpfed_credentials` data source and ephemeral resource share.
//! - `exchange`: metadata token -> STS credentials, its parameters (`params`) and the one
//!   credential_process document, for the Terraform types and the command line alike.
//! - `trust_policy`: render, parse, compare, explain a denial and grade Google trusts (`audit`):
//!   pure functions.
//! - `validate`: every input rule and limit, whoever the caller (role, ARNs, the exchange's
//!   arguments, endpoints).
//! - `claims`: a Google ID token's claims, unverified; `session_name`: the name sent to STS.
//! - `retry`: the one bounded backoff-with-jitter policy.
//! - `diag`: the one argument `Problem`, and errors, to Terraform diagnostics; `schema`: attribute
//!   declarations with every field set.
//! - `secret`: the wrapper no log or message can print.
//! - `plugin`: our tfplugin6 server (go-plugin handshake, mTLS, dispatch to the typed traits).
//! - `cli`: command-line mode, one file per sub-command; `cache`: the helper's credential cache.

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
pub mod retry;
pub mod schema;
pub mod secret;
pub mod session_name;
pub mod trust_policy;
pub mod validate;
