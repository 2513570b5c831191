//! Leaf: the clients for the outside worlds, AWS (IAM, STS), the GCE metadata server and Google's
//! IAM Credentials API (impersonation),
//! the settings they are built from with their environment fallbacks, and the cell that
//! shares them with every Terraform type. Nothing here imports the provider, a Terraform type
//! or the exchange.

pub mod aws;
pub mod iam_credentials;
pub mod iam_roles;
pub mod metadata;
pub mod settings;
pub mod shared;

pub use shared::{Clients, SharedClients};
