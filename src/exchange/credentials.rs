//! Owns what an exchange yields: [`Credentials`] (temporary keys plus what STS and the token say
//! about them) and the one AWS `credential_process` Version 1 document type
//! ([`CredentialProcessDocument`]) that the data source, the ephemeral resource, the CLI and its
//! cache all print, store and read back.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::secret::Secret;

/// Temporary credentials and what STS and the token say about them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub access_key_id: String,
    pub secret_access_key: Secret,
    pub session_token: Secret,
    /// RFC 3339 UTC with `Z`, whole seconds.
    pub expiration: String,
    pub expiration_epoch: i64,
    pub assumed_role_arn: String,
    pub assumed_role_id: String,
    /// The token's `sub` (or, failing that, what STS reports as the subject).
    pub subject: Option<String>,
    pub email: Option<String>,
    /// The session name sent to STS.
    pub session_name: String,
}

impl Credentials {
    /// The keys as the AWS `credential_process` Version 1 document.
    pub fn credential_process(&self) -> CredentialProcessDocument {
        CredentialProcessDocument::new(
            &self.access_key_id,
            self.secret_access_key.clone(),
            self.session_token.clone(),
            &self.expiration,
        )
    }

    /// [`Self::credential_process`] as compact JSON.
    pub fn credential_process_json(&self) -> Secret {
        self.credential_process().to_json()
    }
}

/// The AWS `credential_process` output, Version 1: what the AWS CLI and SDKs read on stdout.
/// `Debug` hides the secret key and the session token; serialising writes them, which is the
/// point of this type (stdout, the cache file, the `credential_process_json` attribute).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CredentialProcessDocument {
    pub version: Version1,
    pub access_key_id: String,
    #[serde(with = "exposed")]
    pub secret_access_key: Secret,
    #[serde(with = "exposed")]
    pub session_token: Secret,
    /// ISO 8601 UTC with `Z`; SDKs refresh before it (no Expiration would mean "never").
    pub expiration: String,
}

impl CredentialProcessDocument {
    pub fn new(
        access_key_id: &str,
        secret_access_key: Secret,
        session_token: Secret,
        expiration: &str,
    ) -> Self {
        CredentialProcessDocument {
            version: Version1,
            access_key_id: access_key_id.to_owned(),
            secret_access_key,
            session_token,
            expiration: expiration.to_owned(),
        }
    }

    /// Compact JSON, no newline; a [`Secret`] because it holds the keys.
    pub fn to_json(&self) -> Secret {
        Secret::new(serde_json::to_string(self).expect("the document always serialises"))
    }

    /// Reads a document back; `None` for anything that is not a Version 1 document. No error
    /// text on purpose: it could quote the input, which holds secrets.
    pub fn from_json(text: &str) -> Option<Self> {
        serde_json::from_str(text).ok()
    }
}

/// The `Version` field: the number 1 and nothing else (not `"1"`, not `2`), as the AWS SDKs
/// require.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Version1;

impl Serialize for Version1 {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u8(1)
    }
}

impl<'de> Deserialize<'de> for Version1 {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match u64::deserialize(deserializer)? {
            1 => Ok(Version1),
            _ => Err(serde::de::Error::custom(
                "the credential_process Version is not 1",
            )),
        }
    }
}

/// Serde for [`Secret`] fields of this document: the value itself, as a string. Kept here rather
/// than on `Secret` so that no other type can serialise a secret by accident.
mod exposed {
    use super::*;

    pub fn serialize<S: Serializer>(secret: &Secret, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(secret.expose())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Secret, D::Error> {
        String::deserialize(deserializer).map(Secret::new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET_KEY: &str = "wJalrXUtnFEMIK7MDENGbPxRfiCYzzSECRETKEY1";
    const SESSION_TOKEN: &str = "FwoGZXIvYXdzEXAMPLESESSIONTOKENzzz";

    fn document() -> CredentialProcessDocument {
        CredentialProcessDocument::new(
            "ASIAEXAMPLEKEYID0001",
            Secret::new(SECRET_KEY),
            Secret::new(SESSION_TOKEN),
            "2026-12-01T11:00:00Z",
        )
    }

    #[test]
    fn the_document_is_the_version_1_json_aws_reads() {
        let json: serde_json::Value = serde_json::from_str(document().to_json().expose()).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"Version":1,"AccessKeyId":"ASIAEXAMPLEKEYID0001",
                "SecretAccessKey":SECRET_KEY,"SessionToken":SESSION_TOKEN,
                "Expiration":"2026-12-01T11:00:00Z"})
        );
        assert!(!document().to_json().expose().contains('\n'));
    }

    #[test]
    fn the_document_round_trips_and_refuses_other_versions() {
        let text = document().to_json();
        assert_eq!(
            CredentialProcessDocument::from_json(text.expose()),
            Some(document())
        );
        for other in ["\"1\"", "2", "1.0", "null"] {
            let changed = text
                .expose()
                .replace("\"Version\":1", &format!("\"Version\":{other}"));
            assert_ne!(changed, text.expose(), "{other}");
            assert_eq!(
                CredentialProcessDocument::from_json(&changed),
                None,
                "{other}"
            );
        }
        let missing = text.expose().replace("\"Version\":1,", "");
        assert_eq!(CredentialProcessDocument::from_json(&missing), None);
    }

    #[test]
    fn debug_hides_the_secrets() {
        let printed = format!("{:?}", document());
        assert!(
            !printed.contains(SECRET_KEY) && !printed.contains(SESSION_TOKEN),
            "{printed}"
        );
        assert!(printed.contains("ASIAEXAMPLEKEYID0001"), "{printed}");
    }
}
