//! Support code shared by the integration and acceptance tests: the local test bed (`bed`), the
//! Terraform / OpenTofu driver (`tf`), the acceptance target (`target`), out-of-band IAM
//! (`iam`), processes with a time limit (`process`), the plugin-protocol client (`plugin`), and
//! the small helpers below. Each test binary uses a part of it.
#![allow(dead_code)]

pub mod bed;
pub mod hardening;
pub mod hardening_io;
pub mod iam;
pub mod plugin;
pub mod process;
pub mod target;
pub mod tf;

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::Value;

/// The repository root (where Cargo.toml lives).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The AWS CLI of the test venv (awscli is pinned in tests/requirements.txt).
pub fn aws_cli() -> PathBuf {
    let path = repo_root().join(".tools/venv/bin/aws");
    assert!(
        path.is_file(),
        "{} does not exist: run `make tools` (awscli is pinned in tests/requirements.txt)",
        path.display()
    );
    path
}

/// The helper binary cargo built for this test run (`credential-process`, `audit`).
pub fn helper_binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_terraform-provider-gcpfed"))
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

/// The payload claims of a JWT, without verification; `None` when `token` is not JWT-shaped.
pub fn unverified_claims(token: &str) -> Option<Value> {
    jwt_part(token, 1)
}

/// The header of a JWT (`alg`, `kid`); `None` when `token` is not JWT-shaped.
pub fn unverified_header(token: &str) -> Option<Value> {
    jwt_part(token, 0)
}

/// Part `index` of a three-part JWT, base64url-decoded, when it is a JSON object.
fn jwt_part(token: &str, index: usize) -> Option<Value> {
    let parts: Vec<&str> = token.trim().split('.').collect();
    if parts.len() != 3 {
        return None;
    }
    let bytes = URL_SAFE_NO_PAD
        .decode(parts[index].trim_end_matches('='))
        .ok()?;
    let value: Value = serde_json::from_slice(&bytes).ok()?;
    value.is_object().then_some(value)
}

/// Seconds since the Unix epoch, now.
pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs() as i64
}

/// Copies the directory tree `from` to `to`, leaving out what an engine run writes locally
/// (`.terraform/`, `terraform.tfstate*`, `.terraform.lock.hcl`).
pub fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap_or_else(|e| panic!("create {}: {e}", to.display()));
    for entry in std::fs::read_dir(from).unwrap_or_else(|e| panic!("read {}: {e}", from.display()))
    {
        let entry = entry.expect("directory entry");
        let name = entry.file_name();
        let lossy = name.to_string_lossy();
        if name == ".terraform"
            || lossy.starts_with("terraform.tfstate")
            || lossy == ".terraform.lock.hcl"
        {
            continue;
        }
        let kind = entry.file_type().expect("file type");
        let target = to.join(&name);
        if kind.is_dir() {
            copy_tree(&entry.path(), &target);
        } else if kind.is_file() {
            std::fs::copy(entry.path(), &target)
                .unwrap_or_else(|e| panic!("copy {}: {e}", entry.path().display()));
        }
    }
}

/// A string as a JSON (and HCL) string literal.
pub fn q(s: &str) -> String {
    serde_json::to_string(s).expect("string as JSON")
}

/// The gcpfed trust policy as INTERFACE.md shows it, written out here rather than computed by
/// the provider's code: one ID as a string, several as a sorted list.
pub fn trust_policy_by_hand(audience: &str, ids: &[&str]) -> String {
    let ids = if ids.len() == 1 {
        q(ids[0])
    } else {
        let mut sorted = ids.to_vec();
        sorted.sort();
        format!(
            "[{}]",
            sorted.iter().map(|i| q(i)).collect::<Vec<_>>().join(",")
        )
    };
    format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"Federated":"accounts.google.com"}},"Action":"sts:AssumeRoleWithWebIdentity","Condition":{{"StringEquals":{{"accounts.google.com:aud":{ids},"accounts.google.com:oaud":{aud},"accounts.google.com:sub":{ids}}}}}}}]}}"#,
        aud = q(audience)
    )
}

/// Asserts that no text holds any of the secrets, nor anything shaped like a JWT. Texts are
/// (name, text); secrets are (what, value). Messages name the place, never the value.
#[track_caller]
pub fn assert_no_leak(engine: tf::Engine, texts: &[(String, String)], secrets: &[(&str, &str)]) {
    for (name, text) in texts {
        for (what, secret) in secrets {
            assert!(!secret.is_empty(), "[{engine}] empty {what} to look for");
            assert!(
                !text.contains(secret),
                "[{engine}] the {what} appears in {name}"
            );
        }
        if let Some(prefix) = find_jwt(text) {
            panic!("[{engine}] a JWT ({prefix}…) appears in {name}");
        }
    }
}

/// A run's stdout and stderr as named texts for [`assert_no_leak`].
pub fn run_texts(label: &str, run: &tf::Run) -> Vec<(String, String)> {
    vec![
        (format!("{label} stdout"), run.stdout.clone()),
        (format!("{label} stderr"), run.stderr.clone()),
    ]
}

/// The engines of the matrix that have a feature (`Engine::has_functions`,
/// `Engine::has_ephemeral_resources`); prints, for each engine left out, that `test` is skipped
/// there because it lacks `feature`, so that a lacking engine is never a silent pass.
pub fn engines_having(test: &str, has: fn(tf::Engine) -> bool, feature: &str) -> Vec<tf::Engine> {
    let (have, lack) = tf::split_engines(&tf::ALL_ENGINES, has);
    for engine in lack {
        target::announce(&format!(
            "SKIPPED {test} under {engine}: it uses {feature}, which {engine} lacks"
        ));
    }
    have
}

/// What [`engines_having`] says of the features.
pub const EPHEMERAL_RESOURCES: &str = "ephemeral resources (Terraform >= 1.10, OpenTofu >= 1.11)";
pub const PROVIDER_FUNCTIONS: &str =
    "provider-defined functions (Terraform >= 1.8, OpenTofu >= 1.7)";

/// Asserts that `run` (a plan of `main_tf`) failed with an error on the block `block` (as the
/// CLI names it: `data "gcpfed_credentials" "c"`) at the line where `attribute` is set, for the
/// resource `address`, with every one of `phrases`.
#[track_caller]
pub fn assert_attribute_error(
    run: &tf::Run,
    main_tf: &str,
    address: &str,
    block: &str,
    attribute: &str,
    phrases: &[&str],
) {
    let line = main_tf
        .lines()
        .position(|l| l.trim_start().starts_with(attribute))
        .map(|i| i + 1)
        .unwrap_or_else(|| panic!("{attribute} not in {main_tf}"));
    let mut expected = vec![
        "Error:".to_string(),
        format!("with {address},"),
        format!("on main.tf line {line}, in {block}:"),
    ];
    expected.extend(phrases.iter().map(|p| p.to_string()));
    run.fails()
        .assert_contains(&expected.iter().map(String::as_str).collect::<Vec<_>>());
}
