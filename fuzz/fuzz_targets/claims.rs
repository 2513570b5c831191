//! Claims decoding (`gcpfed::claims::decode_unverified`) and the session name chosen from the
//! claims (`gcpfed::session_name::choose`): never panic, and a chosen name is always one STS
//! accepts.
//!
//! Input: the bytes are tried twice, as a whole token and as the payload of a token (base64url
//! encoded between a header and a signature), so that the JSON reader is reached directly.
#![no_main]

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use gcpfed::claims::decode_unverified;
use gcpfed::session_name;
use gcpfed::validate::check_session_name;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let as_token = String::from_utf8_lossy(data);
    let wrapped = format!("eyJhbGciOiJSUzI1NiJ9.{}.c2ln", URL_SAFE_NO_PAD.encode(data));
    for token in [as_token.as_ref(), wrapped.as_str()] {
        if let Ok(claims) = decode_unverified(token) {
            if let Ok(name) = session_name::choose(None, Some(&claims)) {
                assert!(
                    check_session_name(&name).is_ok(),
                    "a session name chosen from claims is not valid"
                );
            }
        }
    }
});
