//! Ephemeral resource types (Terraform >= 1.10, OpenTofu >= 1.11), one module per type, written
//! against our [`crate::plugin::ephemeral::EphemeralResource`] trait.

pub mod credentials;
