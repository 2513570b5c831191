//! Provider-defined functions (Terraform >= 1.8, OpenTofu >= 1.7), one module per function.

pub mod trust_policy;
