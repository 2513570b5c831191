//! The credential cache's entry reader (`gcpfed::cache`, through its fuzzing doorway) and the
//! credential_process document reader (`CredentialProcessDocument::from_json`): never panic,
//! and a refusal never quotes the input (an entry holds a secret key and a session token).
//! A document that reads back serialises and reads back to itself.
//!
//! Input: UTF-8 (lossy) text of an entry or document. The entry is checked against the key it
//! names itself (so the key comparison passes and the checks after it are reached) and against a
//! fixed key.
#![no_main]

use gcpfed::cache::{parse_entry_for_fuzzing, CacheKey};
use gcpfed::exchange::CredentialProcessDocument;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

/// A key as `credential-process` would build it, read through serde so that this target keeps
/// compiling while the key's fields change; `None` if the key no longer reads from this text.
fn fixed_key() -> Option<CacheKey> {
    serde_json::from_str(
        r#"{"role_arn":"arn:aws:iam::123456789012:role/ci","audience":"aws-ci",
            "service_account":"default","session_name":null,"duration_seconds":3600,
            "policy":null,"policy_arns":[],"region":"us-east-1",
            "identity":"email:ci@p.iam.gserviceaccount.com",
            "token_source":"metadata metadata.google.internal","sts_endpoint":null}"#,
    )
    .ok()
}

/// Every string in the input long enough to be a secret and without a space (a secret key or a
/// session token has none; the fixed reasons' words are shorter).
fn secret_like(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::String(s) if s.len() >= 16 && !s.contains(char::is_whitespace) => {
            out.push(s.clone())
        }
        Value::Array(items) => items.iter().for_each(|v| secret_like(v, out)),
        Value::Object(map) => map.iter().for_each(|(k, v)| {
            secret_like(&Value::String(k.clone()), out);
            secret_like(v, out);
        }),
        _ => {}
    }
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);

    if let Some(document) = CredentialProcessDocument::from_json(&text) {
        let json = document.to_json();
        assert_eq!(
            CredentialProcessDocument::from_json(json.expose()).as_ref(),
            Some(&document),
            "a credential_process document does not read back to itself"
        );
    }

    let parsed: Option<Value> = serde_json::from_str(&text).ok();
    let own_key = parsed
        .as_ref()
        .and_then(|v| v.get("Key"))
        .and_then(|k| serde_json::from_value::<CacheKey>(k.clone()).ok());
    let mut secrets = Vec::new();
    if let Some(v) = &parsed {
        secret_like(v, &mut secrets);
    }
    for key in [own_key, fixed_key()].into_iter().flatten() {
        if let Err(reason) = parse_entry_for_fuzzing(&text, &key) {
            for secret in &secrets {
                assert!(
                    !reason.contains(secret.as_str()),
                    "a cache entry's refusal quotes its input"
                );
            }
        }
    }
});
