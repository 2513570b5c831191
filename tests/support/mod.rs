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

/// Where a JWT-shaped string (three base64url segments, the first starting `eyJ`) occurs;
/// returns a short prefix only, so that a failure message does not print the token itself.
pub fn find_jwt(text: &str) -> Option<String> {
    let b = text.as_bytes();
    let b64 = |c: u8| c.is_ascii_alphanumeric() || c == b'-' || c == b'_';
    let mut from = 0;
    while let Some(p) = text[from..].find("eyJ") {
        let start = from + p;
        let mut j = start;
        let mut parts = 0;
        loop {
            let seg = j;
            while j < b.len() && b64(b[j]) {
                j += 1;
            }
            if j - seg < 8 {
                break;
            }
            parts += 1;
            if parts == 3 || j >= b.len() || b[j] != b'.' {
                break;
            }
            j += 1;
        }
        if parts == 3 {
            return Some(text[start..start + 12].to_owned());
        }
        from = start + 3;
    }
    None
}
