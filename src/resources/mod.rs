//! Managed resource types, one module per Terraform type.

pub mod role;
