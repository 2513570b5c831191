//! Terraform's values (tfplugin6 `DynamicValue`, private-state bytes) to and from the serde
//! `State` types our Terraform types declare. Values travel as msgpack, with unknown values
//! as msgpack extension type 0, which tf-provider's `Value<T>` reads and writes through
//! rmp-serde; stored states arrive as JSON during UpgradeResourceState.
//!
//! Decoding errors are reported without serde's own text: it can quote the offending value,
//! and a value may be a secret.

use serde::{Deserialize, Serialize};
use tf_provider::Diagnostics;

use super::proto::tfplugin6::DynamicValue;

/// msgpack's encoding of nil: what an absent or empty value stands for.
const MSGPACK_NIL: &[u8] = &[0xc0];

/// Whether Terraform sent a null object (absent, empty, or an encoded null).
pub fn is_null(value: Option<&DynamicValue>) -> bool {
    match value {
        None => true,
        Some(v) if !v.msgpack.is_empty() => v.msgpack == MSGPACK_NIL,
        Some(v) => v.json.is_empty() || v.json == b"null",
    }
}

/// Decodes `value` into `T`; `what` names it in the error ("resource configuration").
pub fn decode<'a, T: Deserialize<'a>>(
    diags: &mut Diagnostics,
    value: Option<&'a DynamicValue>,
    what: &str,
) -> Option<T> {
    let decoded = match value {
        Some(v) if !v.msgpack.is_empty() => rmp_serde::from_slice(&v.msgpack).ok(),
        Some(v) if !v.json.is_empty() => serde_json::from_slice(&v.json).ok(),
        _ => rmp_serde::from_slice(MSGPACK_NIL).ok(),
    };
    if decoded.is_none() {
        decode_error(diags, what);
    }
    decoded
}

/// Decodes private-state bytes (msgpack; empty stands for nil).
pub fn decode_private<'a, T: Deserialize<'a>>(
    diags: &mut Diagnostics,
    bytes: &'a [u8],
) -> Option<T> {
    let bytes = if bytes.is_empty() { MSGPACK_NIL } else { bytes };
    let decoded = rmp_serde::from_slice(bytes).ok();
    if decoded.is_none() {
        decode_error(diags, "private state");
    }
    decoded
}

fn decode_error(diags: &mut Diagnostics, what: &str) {
    diags.root_error(
        format!("Provider could not decode the {what}"),
        format!(
            "The {what} Terraform sent does not match this provider's schema. This is a bug in \
             terraform-provider-gcpfed (or a state written by another version of it): please \
             report it with the provider and engine versions."
        ),
    );
}

/// Encodes `value` as msgpack with field names (an object, as Terraform expects).
pub fn encode<T: Serialize>(diags: &mut Diagnostics, value: &T) -> Option<DynamicValue> {
    encode_bytes(diags, value).map(|msgpack| DynamicValue {
        msgpack,
        json: Vec::new(),
    })
}

/// Encodes private state as msgpack bytes.
pub fn encode_bytes<T: Serialize>(diags: &mut Diagnostics, value: &T) -> Option<Vec<u8>> {
    match rmp_serde::to_vec_named(value) {
        Ok(bytes) => Some(bytes),
        Err(err) => {
            diags.root_error(
                "Provider could not encode a value",
                format!("This is a bug in terraform-provider-gcpfed: please report it. {err}"),
            );
            None
        }
    }
}

/// A function call's arguments (each a msgpack value) as one msgpack array, so that serde
/// reads them into the function's input tuple or struct, in argument order.
pub fn arguments_array(diags: &mut Diagnostics, arguments: &[DynamicValue]) -> Option<Vec<u8>> {
    let mut array = Vec::new();
    let count = u32::try_from(arguments.len()).ok()?;
    rmp::encode::write_array_len(&mut array, count).ok()?;
    for (index, argument) in arguments.iter().enumerate() {
        if argument.msgpack.is_empty() && !argument.json.is_empty() {
            diags.function_error(index as i64, "arguments must be sent as msgpack");
            return None;
        }
        let value: &[u8] = if argument.msgpack.is_empty() {
            MSGPACK_NIL
        } else {
            &argument.msgpack
        };
        array.extend_from_slice(value);
    }
    Some(array)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tf_provider::value::Value;

    #[derive(Serialize, Deserialize, PartialEq, Debug)]
    struct State {
        name: Value<String>,
        count: Value<i64>,
    }

    fn msgpack(bytes: &[u8]) -> DynamicValue {
        DynamicValue {
            msgpack: bytes.to_vec(),
            json: Vec::new(),
        }
    }

    #[test]
    fn nulls_are_recognised_in_every_form() {
        assert!(is_null(None));
        assert!(is_null(Some(&msgpack(&[]))));
        assert!(is_null(Some(&msgpack(&[0xc0]))));
        assert!(is_null(Some(&DynamicValue {
            msgpack: vec![],
            json: b"null".to_vec()
        })));
        assert!(!is_null(Some(&msgpack(&[0x80]))));
    }

    #[test]
    fn unknowns_and_nulls_round_trip_through_msgpack() {
        // {"name": <unknown: ext type 0, empty>, "count": nil}, written byte by byte.
        let bytes = [
            0x82, 0xa4, b'n', b'a', b'm', b'e', 0xd4, 0x00, 0x00, 0xa5, b'c', b'o', b'u', b'n',
            b't', 0xc0,
        ];
        let mut diags = Diagnostics::default();
        let value = msgpack(&bytes);
        let state: State = decode(&mut diags, Some(&value), "state").unwrap();
        assert_eq!(
            state,
            State {
                name: Value::Unknown,
                count: Value::Null
            }
        );
        let back = encode(&mut diags, &state).unwrap();
        let again: State = decode(&mut diags, Some(&back), "state").unwrap();
        assert_eq!(again, state);
        assert!(diags.errors.is_empty());
    }

    #[test]
    fn stored_json_states_decode() {
        let mut diags = Diagnostics::default();
        let value = DynamicValue {
            msgpack: vec![],
            json: br#"{"name":"x","count":3}"#.to_vec(),
        };
        let state: State = decode(&mut diags, Some(&value), "state").unwrap();
        assert_eq!(
            state,
            State {
                name: Value::Value("x".into()),
                count: Value::Value(3)
            }
        );
    }

    #[test]
    fn a_mismatch_is_a_diagnostic_that_does_not_quote_the_value() {
        let mut diags = Diagnostics::default();
        let value = DynamicValue {
            msgpack: vec![],
            json: br#"{"name":"s3cr3t","count":"s3cr3t"}"#.to_vec(),
        };
        assert!(decode::<State>(&mut diags, Some(&value), "resource state").is_none());
        let text = format!("{:?}", diags.errors);
        assert!(text.contains("resource state"), "{text}");
        assert!(!text.contains("s3cr3t"), "{text}");
    }

    #[test]
    fn private_state_defaults_to_nil() {
        let mut diags = Diagnostics::default();
        let empty: Value<String> = decode_private(&mut diags, &[]).unwrap();
        assert_eq!(empty, Value::Null);
    }

    #[test]
    fn function_arguments_become_one_array_in_order() {
        let mut diags = Diagnostics::default();
        let args = [
            msgpack(&[0xa1, b'a']),
            msgpack(&[]),
            msgpack(&[0x91, 0xa1, b'1']),
        ];
        let array = arguments_array(&mut diags, &args).unwrap();
        assert_eq!(array, vec![0x93, 0xa1, b'a', 0xc0, 0x91, 0xa1, b'1']);
        let (a, b, c): (Value<String>, Value<String>, Value<Vec<String>>) =
            rmp_serde::from_slice(&array).unwrap();
        assert_eq!(
            (a, b, c),
            (
                Value::Value("a".into()),
                Value::Null,
                Value::Value(vec!["1".into()])
            )
        );
    }
}
