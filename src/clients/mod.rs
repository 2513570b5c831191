//! Leaf: the clients for the two outside worlds, AWS (IAM, STS) and the GCE metadata server,
//! the settings they are built from with their environment fallbacks, and the cell that
//! shares them with every Terraform type. Nothing here imports the provider, a Terraform type
//! or the exchange.

pub mod aws;
pub mod metadata;
pub mod settings;
pub mod shared;

pub use shared::{Clients, SharedClients};
