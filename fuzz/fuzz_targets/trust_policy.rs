//! The trust-policy parser and the equivalence check (`gcpfed::trust_policy`): never panics;
//! equivalence is reflexive (but for a document with a repeated key) and symmetric; a document `parse_trust_policy` accepts is equivalent
//! to the policy rendered from what it returned, and that rendering parses back to the same
//! inputs; inputs that `TrustInputs::new` accepts render to a policy that parses back to them.
//!
//! Input: UTF-8 (lossy) text, split at the first NUL into a document `a` and a second text `b`
//! (the other side of the equivalence check; also read as `audience NUL id,id,...`).
#![no_main]

use gcpfed::trust_policy::{
    decode_document, normalize_document, parse_trust_policy, policies_equivalent, TrustInputs,
};
use gcpfed::validate::repeated_key;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (a, b) = text.split_once('\0').unwrap_or((&text, ""));

    for doc in [a, b] {
        // Reflexive, except that a document with a repeated key is equivalent to nothing, itself
        // included (issue 12: such a document held by IAM is always drift).
        assert_eq!(
            policies_equivalent(doc, doc),
            repeated_key(&decode_document(doc)).is_none(),
            "equivalence is not reflexive"
        );
        let normalized = normalize_document(doc);
        let decoded = decode_document(doc);
        // (A document with a repeated key is equivalent to nothing, see above.)
        if repeated_key(&decoded).is_none()
            && matches!(
                serde_json::from_str::<serde_json::Value>(&decoded),
                Ok(serde_json::Value::Object(_))
            )
        {
            assert!(
                policies_equivalent(doc, &normalized),
                "a document is not equivalent to its normalised form"
            );
        }
        if let Ok(inputs) = parse_trust_policy(doc) {
            let rendered = inputs.render();
            assert!(
                policies_equivalent(doc, &rendered),
                "an accepted trust policy is not equivalent to its rendering"
            );
            assert_eq!(
                parse_trust_policy(&rendered).as_ref(),
                Ok(&inputs),
                "a rendered trust policy does not parse back to its inputs"
            );
        }
    }
    assert_eq!(
        policies_equivalent(a, b),
        policies_equivalent(b, a),
        "equivalence is not symmetric"
    );

    // The rendering direction: any inputs the constructor accepts round-trip.
    let ids: Vec<&str> = b.split(',').collect();
    if let Ok(inputs) = TrustInputs::new(a, ids) {
        let rendered = inputs.render();
        assert_eq!(
            parse_trust_policy(&rendered).as_ref(),
            Ok(&inputs),
            "a rendered trust policy does not parse back to its inputs"
        );
        assert!(policies_equivalent(&rendered, &rendered));
    }
});
