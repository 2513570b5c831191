//! Support code shared by the integration and acceptance tests: the local test bed
//! (`bed`) and the Terraform / OpenTofu driver (`tf`). Each test binary uses a part of it.
#![allow(dead_code)]

pub mod bed;
pub mod target;
pub mod tf;

use std::path::PathBuf;

/// The repository root (where Cargo.toml lives).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Python of the test venv (`make tools` creates it); `GCPFED_PYTHON` overrides.
pub fn python() -> PathBuf {
    tool_path("GCPFED_PYTHON", ".tools/venv/bin/python")
}

fn tool_path(var: &str, default_relative: &str) -> PathBuf {
    match std::env::var_os(var) {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => repo_root().join(default_relative),
    }
}
