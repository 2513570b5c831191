//! The two impersonation arguments as Terraform sends them (`impersonate_service_account`, a
//! string, and `delegates`, a list), shared by `gcpfed_credentials` and the provider's
//! `assume_role_with_gcp_identity` block: their checks (with the attribute path of whichever
//! block holds them) and their resolution into what [`crate::exchange::ExchangeParams`] carries.
//! The rules themselves live in [`crate::validate`].

use tf_provider::value::Value;
use tf_provider::AttributePath;

use crate::diag::Problem;
use crate::validate;

/// `delegates` as Terraform types it.
pub type DelegateList = Value<Vec<Value<String>>>;

pub const TARGET: &str = "impersonate_service_account";
pub const DELEGATES: &str = "delegates";

/// Every problem with the two arguments that can be seen without I/O; `path` makes the
/// attribute path of an argument name in its block. Unknown values are skipped.
pub fn check(
    target: &Value<String>,
    delegates: &DelegateList,
    path: impl Fn(&str) -> AttributePath,
) -> Vec<Problem> {
    let mut out = Vec::new();
    if let Value::Value(account) = target {
        if let Err(e) = validate::impersonated_account(&format!("`{TARGET}`"), account) {
            out.push(Problem::invalid(path(TARGET), e));
        }
    }
    let Value::Value(list) = delegates else {
        return out;
    };
    if list.iter().any(Value::is_null) {
        out.push(Problem::invalid(
            path(DELEGATES),
            validate::null_element(&format!("`{DELEGATES}`")),
        ));
        return out;
    }
    if list.iter().any(Value::is_unknown) || target.is_unknown() {
        return out;
    }
    let known: Vec<String> = list
        .iter()
        .filter_map(|v| v.as_ref_option().cloned())
        .collect();
    let target = target.as_ref_option().map(String::as_str);
    if let Err(e) = validate::delegates(
        &format!("`{DELEGATES}`"),
        &known,
        target,
        &format!("`{TARGET}`"),
    ) {
        out.push(Problem::invalid(path(DELEGATES), e));
    }
    out
}

/// The account to impersonate and the normalised chain, once [`check`] found nothing wrong;
/// an unset (or empty) target means no impersonation.
pub fn resolve(target: &Value<String>, delegates: &DelegateList) -> (Option<String>, Vec<String>) {
    let target = target.as_ref_option().filter(|t| !t.is_empty()).cloned();
    let entries: Vec<String> = match delegates {
        Value::Value(list) => list
            .iter()
            .filter_map(|v| v.as_ref_option().cloned())
            .collect(),
        _ => Vec::new(),
    };
    let chain =
        validate::delegates(DELEGATES, &entries, target.as_deref(), TARGET).unwrap_or_default();
    (target, chain)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(items: &[&str]) -> DelegateList {
        Value::Value(items.iter().map(|s| Value::Value(s.to_string())).collect())
    }

    #[test]
    fn problems_carry_the_path_of_their_block() {
        let nested = |name: &str| {
            AttributePath::new("assume_role_with_gcp_identity")
                .index(0)
                .attribute(name.to_owned())
        };
        let problems = check(&Value::Value("default".into()), &list(&["x"]), nested);
        let paths: Vec<_> = problems.iter().map(|p| p.path.clone()).collect();
        assert_eq!(paths, vec![nested(TARGET), nested(DELEGATES)]);

        let problems = check(&Value::Null, &list(&["a@p.iam.gserviceaccount.com"]), |n| {
            AttributePath::new(n.to_owned())
        });
        assert_eq!(problems.len(), 1);
        assert!(
            problems[0]
                .detail
                .contains("Set `impersonate_service_account`"),
            "{}",
            problems[0].detail
        );

        let with_null = Value::Value(vec![Value::Null]);
        assert_eq!(
            check(&Value::Null, &with_null, |n| AttributePath::new(
                n.to_owned()
            ))[0]
                .summary,
            "Null element"
        );
        let unknown = Value::Value(vec![Value::Unknown]);
        assert!(check(&Value::Null, &unknown, |n| AttributePath::new(n.to_owned())).is_empty());
    }

    #[test]
    fn resolution_normalises_the_chain() {
        let (target, chain) = resolve(
            &Value::Value("104857600000000000011".into()),
            &list(&["hop-1@p.iam.gserviceaccount.com"]),
        );
        assert_eq!(target.as_deref(), Some("104857600000000000011"));
        assert_eq!(
            chain,
            vec!["projects/-/serviceAccounts/hop-1@p.iam.gserviceaccount.com"]
        );
        assert_eq!(resolve(&Value::Null, &Value::Null), (None, vec![]));
    }
}
