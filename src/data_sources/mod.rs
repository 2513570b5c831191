//! Data source types, one module per Terraform type.

pub mod credentials;
pub mod google_trusts;
