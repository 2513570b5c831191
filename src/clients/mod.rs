//! Clients for the two outside worlds: AWS (IAM, STS) and the GCE metadata server.

pub mod aws;
pub mod metadata;
