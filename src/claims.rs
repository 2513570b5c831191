//! Owns reading the claims of a Google ID token (a JWT) for defaults and messages only.
//!
//! Nothing here checks the signature: STS does that against Google's keys. The claims decoded here
//! pick the default session name, fill `subject`/`email`, and explain an STS denial
//! ([`crate::trust_policy::denial`] puts them beside the trust-policy keys). Errors never contain
//! the token or a piece of it.

use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine as _;
use serde::Deserialize;

/// base64url as JWTs use it; padding accepted when present (some encoders add it).
const B64URL: GeneralPurpose = GeneralPurpose::new(
    &alphabet::URL_SAFE,
    GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true),
);

/// The claims this provider reads. Every field is optional: a token from elsewhere
/// (`web_identity_token`) may lack any of them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Claims {
    pub iss: Option<String>,
    /// Authorized party: for a service account, its numeric unique ID. AWS compares it with
    /// `accounts.google.com:aud`.
    pub azp: Option<String>,
    /// Audience(s) the token was requested for. AWS compares it with `accounts.google.com:oaud`.
    pub aud: Vec<String>,
    /// Subject: the service account's numeric unique ID. AWS compares it with `accounts.google.com:sub`.
    pub sub: Option<String>,
    pub email: Option<String>,
    pub exp: Option<i64>,
    pub iat: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClaimsError {
    #[error("the token is empty")]
    Empty,
    #[error("the token is not a JWT: expected 3 dot-separated parts, found {0}")]
    NotThreeParts(usize),
    #[error("the token's payload is not valid base64url")]
    Base64,
    #[error("the token's payload is not a JSON object")]
    NotJsonObject,
    #[error("the token's payload has a standard claim (iss, azp, aud, sub, email, exp, iat) of an unexpected type")]
    ClaimType,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

#[derive(Deserialize)]
struct RawClaims {
    iss: Option<String>,
    azp: Option<String>,
    aud: Option<OneOrMany>,
    sub: Option<String>,
    email: Option<String>,
    exp: Option<serde_json::Number>,
    iat: Option<serde_json::Number>,
}

fn number_as_i64(n: Option<serde_json::Number>) -> Option<i64> {
    let n = n?;
    n.as_i64().or_else(|| n.as_f64().map(|f| f as i64))
}

/// Decodes the payload of a compact JWS without verifying it.
pub fn decode_unverified(token: &str) -> Result<Claims, ClaimsError> {
    let token = token.trim();
    if token.is_empty() {
        return Err(ClaimsError::Empty);
    }
    let parts: Vec<&str> = token.split('.').collect();
    if parts.len() != 3 {
        return Err(ClaimsError::NotThreeParts(parts.len()));
    }
    let payload = B64URL
        .decode(parts[1].as_bytes())
        .map_err(|_| ClaimsError::Base64)?;
    let raw: RawClaims = match serde_json::from_slice::<serde_json::Value>(&payload) {
        Ok(v @ serde_json::Value::Object(_)) => {
            serde_json::from_value(v).map_err(|_| ClaimsError::ClaimType)?
        }
        _ => return Err(ClaimsError::NotJsonObject),
    };
    Ok(Claims {
        iss: raw.iss,
        azp: raw.azp,
        aud: match raw.aud {
            None => Vec::new(),
            Some(OneOrMany::One(a)) => vec![a],
            Some(OneOrMany::Many(v)) => v,
        },
        sub: raw.sub,
        email: raw.email,
        exp: number_as_i64(raw.exp),
        iat: number_as_i64(raw.iat),
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use base64::engine::general_purpose::{URL_SAFE, URL_SAFE_NO_PAD};

    fn jwt_with(payload: &[u8], engine: &GeneralPurpose) -> String {
        format!(
            "{}.{}.{}",
            URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256","typ":"JWT"}"#),
            engine.encode(payload),
            URL_SAFE_NO_PAD.encode(b"signature-bytes")
        )
    }

    /// An unsigned JWT with these claims, for tests of the code that reads tokens (STS checks
    /// the signature, this provider never does).
    pub(crate) fn unsigned_jwt(claims: &serde_json::Value) -> String {
        jwt_with(claims.to_string().as_bytes(), &URL_SAFE_NO_PAD)
    }

    const GOOGLE_PAYLOAD: &str = r#"{"aud":"https://sts.example/aud","azp":"104857600000000000001",
        "email":"ci-runner@gcpfed-test.iam.gserviceaccount.com","email_verified":true,
        "exp":1767225600,"iat":1767222000,"iss":"https://accounts.google.com",
        "sub":"104857600000000000001",
        "google":{"compute_engine":{"project_id":"gcpfed-test","zone":"europe-west1-b"}}}"#;

    #[test]
    fn decodes_a_google_token_without_padding() {
        let c = decode_unverified(&jwt_with(GOOGLE_PAYLOAD.as_bytes(), &URL_SAFE_NO_PAD)).unwrap();
        assert_eq!(c.azp.as_deref(), Some("104857600000000000001"));
        assert_eq!(c.sub.as_deref(), Some("104857600000000000001"));
        assert_eq!(c.aud, vec!["https://sts.example/aud".to_owned()]);
        assert_eq!(
            c.email.as_deref(),
            Some("ci-runner@gcpfed-test.iam.gserviceaccount.com")
        );
        assert_eq!(c.iss.as_deref(), Some("https://accounts.google.com"));
        assert_eq!(c.exp, Some(1767225600));
        assert_eq!(c.iat, Some(1767222000));
    }

    #[test]
    fn decodes_with_padding_and_url_safe_characters() {
        // Payload lengths 1 and 2 mod 3 produce "==" and "=" padding.
        for extra in ["", "x", "xx"] {
            let payload = format!(r#"{{"sub":"s{extra}","aud":"a"}}"#);
            let padded = jwt_with(payload.as_bytes(), &URL_SAFE);
            let c = decode_unverified(&padded).unwrap();
            assert_eq!(c.sub.unwrap(), format!("s{extra}"));
            let unpadded = jwt_with(payload.as_bytes(), &URL_SAFE_NO_PAD);
            assert_eq!(decode_unverified(&unpadded).unwrap().aud, vec!["a"]);
        }
        // Bytes whose base64 uses '-' and '_' (the base64url-only characters jq 1.6 chokes on).
        let payload = r#"{"sub":"~~~???>>>","aud":"ÿÿ"}"#;
        let enc = URL_SAFE_NO_PAD.encode(payload.as_bytes());
        assert!(enc.contains('-') || enc.contains('_'), "{enc}");
        let c = decode_unverified(&jwt_with(payload.as_bytes(), &URL_SAFE_NO_PAD)).unwrap();
        assert_eq!(c.sub.as_deref(), Some("~~~???>>>"));
    }

    #[test]
    fn audience_may_be_a_list_and_claims_may_be_missing() {
        let c = decode_unverified(&jwt_with(br#"{"aud":["a","b"]}"#, &URL_SAFE_NO_PAD)).unwrap();
        assert_eq!(c.aud, vec!["a".to_owned(), "b".to_owned()]);
        assert_eq!(c.sub, None);
    }

    #[test]
    fn malformed_tokens_give_typed_errors() {
        assert_eq!(decode_unverified(""), Err(ClaimsError::Empty));
        assert_eq!(decode_unverified("   \n"), Err(ClaimsError::Empty));
        assert_eq!(
            decode_unverified("abc.def"),
            Err(ClaimsError::NotThreeParts(2))
        );
        assert_eq!(
            decode_unverified("a.b.c.d"),
            Err(ClaimsError::NotThreeParts(4))
        );
        assert_eq!(decode_unverified("a.!!!.c"), Err(ClaimsError::Base64));
        // standard-alphabet '+' and '/' are not base64url
        assert_eq!(decode_unverified("a.ab+/.c"), Err(ClaimsError::Base64));
        let not_json = jwt_with(b"not json at all", &URL_SAFE_NO_PAD);
        assert_eq!(
            decode_unverified(&not_json),
            Err(ClaimsError::NotJsonObject)
        );
        let array = jwt_with(b"[1,2]", &URL_SAFE_NO_PAD);
        assert_eq!(decode_unverified(&array), Err(ClaimsError::NotJsonObject));
        let wrong_type = jwt_with(br#"{"sub":12}"#, &URL_SAFE_NO_PAD);
        assert_eq!(decode_unverified(&wrong_type), Err(ClaimsError::ClaimType));
    }

    #[test]
    fn errors_never_echo_the_token() {
        let secretish = "eyJzZWNyZXQ.c2VjcmV0LXBheWxvYWQtbm90LWpzb24.sig";
        let e = decode_unverified(secretish).unwrap_err();
        let printed = format!("{e} {e:?}");
        assert!(!printed.contains("c2VjcmV0"), "{printed}");
    }
}
