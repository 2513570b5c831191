//! `provider::gcpfed::trust_policy(audience, unique_ids)`: the trust policy JSON that
//! `gcpfed_role` renders, for teams whose roles are managed elsewhere (`aws_iam_role`,
//! CloudFormation, a module they don't own). The rendering is [`TrustInputs::render`] and the
//! rules are [`crate::validate`]'s, the very ones `gcpfed_role` applies, so the two cannot drift.

use async_trait::async_trait;
use tf_provider::schema::{Description, FunctionSchema, Parameter, Type};
use tf_provider::value::Value;
use tf_provider::{Diagnostics, Function};

use crate::trust_policy::{InputError, TrustInputs};
use crate::validate::{self, Invalid};

/// The function's name (Terraform calls it `provider::gcpfed::trust_policy`).
pub const NAME: &str = "trust_policy";

/// The `unique_ids` argument: a list whose elements could be null.
pub type UniqueIds = Value<Vec<Value<String>>>;

/// Argument positions, as Terraform reports them in errors.
pub const AUDIENCE: i64 = 0;
pub const UNIQUE_IDS: i64 = 1;

/// An argument the function refuses: its position and a message naming the fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArgError {
    pub index: i64,
    pub message: String,
}

/// Terraform prints `Invalid value for "<name>" parameter: <message>.`, so the message carries
/// no final period of its own.
fn arg_error(index: i64, e: Invalid) -> ArgError {
    ArgError {
        index,
        message: e.to_string().trim_end_matches('.').to_owned(),
    }
}

/// A null or unknown argument: Terraform sends neither to a parameter that allows neither, so
/// this only keeps a misbehaving caller from getting a policy built on a guess.
fn unset(index: i64, name: &str) -> ArgError {
    ArgError {
        index,
        message: format!("{name} is null or unknown; give it a known value"),
    }
}

/// The rendered policy, or every argument problem. Unknown values cannot reach here (the
/// parameters do not allow them), so they are refused like nulls rather than guessed at.
pub fn render(audience: &Value<String>, unique_ids: &UniqueIds) -> Result<String, Vec<ArgError>> {
    let mut errors = Vec::new();
    match audience {
        Value::Value(a) => {
            if let Err(e) = validate::audience(a) {
                errors.push(arg_error(AUDIENCE, e));
            }
        }
        _ => errors.push(unset(AUDIENCE, "audience")),
    }
    let mut ids = Vec::new();
    match unique_ids {
        Value::Value(list) => {
            if let Err(e) = validate::unique_id_count(list.len()) {
                errors.push(arg_error(UNIQUE_IDS, e));
            }
            for id in list {
                match id {
                    Value::Value(id) => match validate::unique_id(id) {
                        Ok(()) => ids.push(id.clone()),
                        Err(e) => errors.push(arg_error(UNIQUE_IDS, e)),
                    },
                    _ => errors.push(arg_error(UNIQUE_IDS, validate::null_element("unique_ids"))),
                }
            }
        }
        _ => errors.push(unset(UNIQUE_IDS, "unique_ids")),
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let audience = audience.as_ref_option().cloned().unwrap_or_default();
    // Validation above refuses everything TrustInputs refuses (it applies the same rules);
    // this only guards against the two drifting apart.
    TrustInputs::new(audience, ids)
        .map(|inputs| inputs.render())
        .map_err(|e| {
            let (index, invalid) = match e {
                InputError::Audience(i) => (AUDIENCE, i),
                InputError::UniqueIds(i) => (UNIQUE_IDS, i),
            };
            vec![arg_error(index, invalid)]
        })
}

/// The `trust_policy` function.
pub struct TrustPolicyFunction;

#[async_trait]
impl Function for TrustPolicyFunction {
    /// `(audience, unique_ids)`, in argument order.
    type Input<'a> = (Value<String>, UniqueIds);
    type Output<'a> = Value<String>;

    fn schema(&self, _diags: &mut Diagnostics) -> Option<FunctionSchema> {
        Some(schema())
    }

    async fn call<'a>(
        &self,
        diags: &mut Diagnostics,
        (audience, unique_ids): Self::Input<'a>,
    ) -> Option<Self::Output<'a>> {
        match render(&audience, &unique_ids) {
            Ok(policy) => Some(Value::Value(policy)),
            Err(errors) => {
                // The protocol carries one function error, tied to one argument: the first.
                if let Some(e) = errors.into_iter().next() {
                    diags.function_error(e.index, e.message);
                }
                None
            }
        }
    }
}

/// The function's signature and documentation.
pub fn schema() -> FunctionSchema {
    FunctionSchema {
        parameters: vec![
            Parameter {
                name: "audience".into(),
                param_type: Type::String,
                allow_null: false,
                allow_unknown: false,
                description: Description::markdown(
                    "The audience the workload requests from the GCE metadata server; rendered as \
                     the `accounts.google.com:oaud` condition. Non-empty, without surrounding \
                     whitespace, IAM policy variables (`${`), wildcards (`*`, `?`) or control \
                     characters. Use the same value in `gcpfed_credentials`.",
                ),
            },
            Parameter {
                name: "unique_ids".into(),
                param_type: Type::List(Box::new(Type::String)),
                allow_null: false,
                allow_unknown: false,
                description: Description::markdown(
                    "Numeric unique IDs of the Google service accounts allowed to assume the role \
                     (`google_service_account.x.unique_id`, 21 digits), not their emails; rendered \
                     as the `accounts.google.com:aud` and `accounts.google.com:sub` conditions. At \
                     least one; order and repeats do not matter. All digits; another length than \
                     21 is accepted (a function cannot warn; `gcpfed_role` does), so check an ID \
                     with `gcloud iam service-accounts describe EMAIL --format='value(uniqueId)'`.",
                ),
            },
        ],
        variadic: None,
        return_type: Type::String,
        summary: "The trust policy gcpfed_role renders, as a JSON string".into(),
        description: Description::markdown(
            "Returns, as a JSON string, exactly the trust policy that `gcpfed_role` renders for the \
             same `audience` and service-account unique IDs: `accounts.google.com` as Federated \
             principal, `sts:AssumeRoleWithWebIdentity`, and all three conditions \
             (`accounts.google.com:aud`, `:oaud` and `:sub`), without which any Google identity \
             could assume the role. For roles managed by something else: `aws_iam_role`'s \
             `assume_role_policy`, CloudFormation, a module you don't own. It refuses what \
             `gcpfed_role` refuses (an empty audience, an ID that is not all digits, an email, an \
             empty list), naming the argument. Requires Terraform >= 1.8 (OpenTofu >= 1.7).",
        ),
        deprecated: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SA1: &str = "104857600000000000001";
    const SA2: &str = "104857600000000000002";

    fn ids(list: &[&str]) -> UniqueIds {
        Value::Value(list.iter().map(|s| Value::Value(s.to_string())).collect())
    }

    fn aud(a: &str) -> Value<String> {
        Value::Value(a.to_owned())
    }

    #[test]
    fn one_id_renders_the_documented_shape() {
        // Written by hand from INTERFACE.md, not computed.
        let want = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Federated":"accounts.google.com"},"Action":"sts:AssumeRoleWithWebIdentity","Condition":{"StringEquals":{"accounts.google.com:aud":"104857600000000000001","accounts.google.com:oaud":"sts.amazonaws.com/ci","accounts.google.com:sub":"104857600000000000001"}}}]}"#;
        assert_eq!(
            render(&aud("sts.amazonaws.com/ci"), &ids(&[SA1])),
            Ok(want.into())
        );
    }

    #[test]
    fn several_ids_are_sorted_and_deduplicated_like_the_role_does() {
        let got = render(&aud("a"), &ids(&[SA2, SA1, SA2])).unwrap();
        let role = TrustInputs::new("a", [SA1, SA2]).unwrap().render();
        assert_eq!(got, role);
        assert!(got.contains(&format!(r#"["{SA1}","{SA2}"]"#)), "{got}");
    }

    #[test]
    fn refusals_name_the_argument_and_the_fix() {
        let cases: Vec<(Value<String>, UniqueIds, i64, &str)> = vec![
            (aud(""), ids(&[SA1]), AUDIENCE, "Empty audience"),
            (aud(" a"), ids(&[SA1]), AUDIENCE, "whitespace"),
            (
                aud("${accounts.google.com:oaud}"),
                ids(&[SA1]),
                AUDIENCE,
                "always be true",
            ),
            (aud("a*"), ids(&[SA1]), AUDIENCE, "wildcard"),
            (aud("a\u{1}"), ids(&[SA1]), AUDIENCE, "control character"),
            (aud("a"), ids(&[]), UNIQUE_IDS, "at least one"),
            (aud("a"), ids(&["12ab"]), UNIQUE_IDS, "not all digits"),
            (
                aud("a"),
                ids(&["ci@p.iam.gserviceaccount.com"]),
                UNIQUE_IDS,
                "google_service_account.x.unique_id",
            ),
            (
                aud("a"),
                Value::Value(vec![Value::Null]),
                UNIQUE_IDS,
                "null",
            ),
            (Value::Null, ids(&[SA1]), AUDIENCE, "null"),
        ];
        for (a, i, index, needle) in cases {
            let errors = render(&a, &i).unwrap_err();
            assert_eq!(errors.len(), 1, "{errors:?}");
            assert_eq!(errors[0].index, index, "{errors:?}");
            assert!(errors[0].message.contains(needle), "{errors:?}");
        }
        // Both arguments wrong: both reported.
        let errors = render(&aud(""), &ids(&["x"])).unwrap_err();
        let indexes: Vec<i64> = errors.iter().map(|e| e.index).collect();
        assert_eq!(indexes, vec![AUDIENCE, UNIQUE_IDS]);
    }

    #[tokio::test]
    async fn call_reports_function_errors_on_the_argument() {
        let mut diags = Diagnostics::default();
        let out = TrustPolicyFunction
            .call(&mut diags, (aud(""), ids(&["x"])))
            .await;
        assert!(out.is_none());
        // One error only (the protocol has room for one), on the first argument at fault.
        assert_eq!(diags.errors.len(), 1);
        assert_eq!(
            diags.errors[0].attribute,
            tf_provider::AttributePath::function_argument(AUDIENCE)
        );
        assert!(!diags.errors[0].summary.ends_with('.'));
        let mut diags = Diagnostics::default();
        let out = TrustPolicyFunction
            .call(&mut diags, (aud("a"), ids(&[SA1])))
            .await;
        assert!(matches!(out, Some(Value::Value(ref s)) if s.starts_with("{\"Version\"")));
        assert!(diags.errors.is_empty());
    }

    #[test]
    fn schema_has_two_documented_parameters_and_returns_a_string() {
        let s = schema();
        let names: Vec<&str> = s.parameters.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["audience", "unique_ids"]);
        assert_eq!(s.parameters[0].param_type, Type::String);
        assert_eq!(
            s.parameters[1].param_type,
            Type::List(Box::new(Type::String))
        );
        assert!(s
            .parameters
            .iter()
            .all(|p| !p.allow_null && !p.allow_unknown));
        assert_eq!(s.return_type, Type::String);
        assert!(s.description.content.contains("Terraform >= 1.8"));
        assert!(!s.summary.is_empty());
    }
}
