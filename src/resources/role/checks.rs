//! `gcpfed_role`'s argument checks: every rule of [`crate::validate`] that applies to a role, on
//! the attribute that holds the value, run at validate and plan time so that nothing IAM would
//! refuse reaches apply.

use std::collections::BTreeMap;

use tf_provider::value::Value;
use tf_provider::AttributePath;

use super::state::{str_of, RoleState};
use crate::diag::Problem;
use crate::validate::{self, Invalid};

/// Checks a configuration; unknown values (known only at apply) are never a problem.
pub fn check_config(c: &RoleState) -> Vec<Problem> {
    let mut problems = Vec::new();
    let mut check = |path: AttributePath, r: Result<(), Invalid>| {
        if let Err(i) = r {
            problems.push(Problem::invalid(path, i));
        }
    };
    let at = AttributePath::new;
    if let Value::Value(v) = &c.name {
        check(at("name"), validate::role_name(v));
    }
    if let Value::Value(v) = &c.path {
        check(at("path"), validate::role_path(v));
    }
    if let Value::Value(v) = &c.description {
        check(at("description"), validate::description(v));
    }
    if let Value::Value(v) = &c.audience {
        check(at("audience"), validate::audience(v));
    }
    if let Value::Value(ids) = &c.service_account_unique_ids {
        check(
            at("service_account_unique_ids"),
            validate::unique_id_count(ids.len()),
        );
        for id in ids {
            match id {
                Value::Value(id) => {
                    check(at("service_account_unique_ids"), validate::unique_id(id))
                }
                Value::Null => check(
                    at("service_account_unique_ids"),
                    Err(validate::null_element("service_account_unique_ids")),
                ),
                Value::Unknown => {}
            }
        }
    }
    if let Value::Value(arns) = &c.managed_policy_arns {
        for arn in arns {
            match arn {
                Value::Value(arn) => check(at("managed_policy_arns"), validate::policy_arn(arn)),
                Value::Null => check(
                    at("managed_policy_arns"),
                    Err(validate::null_element("managed_policy_arns")),
                ),
                Value::Unknown => {}
            }
        }
    }
    if let Value::Value(policies) = &c.inline_policies {
        for (name, doc) in policies {
            let path = at("inline_policies").key(name.to_string());
            check(path.clone(), validate::inline_policy_name(name));
            match doc {
                Value::Value(doc) => check(path, validate::policy_document(doc)),
                Value::Null => check(path, Err(validate::null_element("inline_policies"))),
                Value::Unknown => {}
            }
        }
        if policies.values().all(Value::is_value) {
            check(
                at("inline_policies"),
                validate::inline_policies_total(policies.values().filter_map(str_of)),
            );
        }
    }
    if let Value::Value(n) = c.max_session_duration {
        check(
            at("max_session_duration"),
            validate::max_session_duration(n),
        );
    }
    if let Value::Value(v) = &c.permissions_boundary {
        check(at("permissions_boundary"), validate::policy_arn(v));
    }
    if let Value::Value(tags) = &c.tags {
        check(at("tags"), validate::tag_count(tags.len()));
        let mut seen: BTreeMap<String, &str> = BTreeMap::new();
        for (key, value) in tags {
            let path = at("tags").key(key.to_string());
            check(path.clone(), validate::tag_key(key));
            match value {
                Value::Value(v) => check(path.clone(), validate::tag_value(key, v)),
                Value::Null => check(path.clone(), Err(validate::null_element("tags"))),
                Value::Unknown => {}
            }
            if let Some(other) = seen.insert(key.to_lowercase(), key) {
                check(
                    path,
                    Err(Invalid {
                        summary: "Duplicate tag key",
                        detail: format!("Tag keys {other:?} and {key:?} differ only in letter case; IAM treats tag keys case-insensitively. Keep one of them."),
                    }),
                );
            }
        }
    }
    problems
}

/// What deserves a look but does not stop a plan: unique IDs of another length than the 21
/// digits Google issues (emulators and tests use shorter ones). Reported as warnings, once, at
/// validate time.
pub fn config_warnings(c: &RoleState) -> Vec<Problem> {
    let mut out = Vec::new();
    if let Value::Value(ids) = &c.service_account_unique_ids {
        for id in ids.iter().filter_map(str_of) {
            if let Some(w) = validate::unique_id_length(id) {
                out.push(Problem::invalid(
                    AttributePath::new("service_account_unique_ids"),
                    w,
                ));
            }
        }
    }
    out
}

/// Adds [`config_warnings`] to `diags` as warnings on their attributes.
pub fn warn(diags: &mut tf_provider::Diagnostics, c: &RoleState) {
    for w in config_warnings(c) {
        diags.warning(w.summary, w.detail, w.path);
    }
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use super::super::state::fixtures::*;
    use super::super::state::known;
    use super::*;

    fn paths(problems: &[Problem]) -> Vec<String> {
        problems.iter().map(|p| p.path.to_string()).collect()
    }

    #[test]
    fn a_full_configuration_is_valid() {
        let mut c = config();
        c.path = known("/ci/");
        c.description = known("CI");
        c.max_session_duration = Value::Value(7200);
        c.permissions_boundary = known(S3RO);
        assert_eq!(check_config(&c), vec![]);
    }

    #[test]
    fn invalid_arguments_name_their_path_and_fix() {
        type Edit = fn(&mut RoleState);
        let cases: Vec<(Edit, &str, &str)> = vec![
            (|c| c.name = known("a".repeat(65)), "name", "at most 64"),
            (|c| c.path = known("ci"), "path", "start and end"),
            (
                |c| c.description = known("d".repeat(1001)),
                "description",
                "at most 1000",
            ),
            (|c| c.audience = known(""), "audience", "Set audience"),
            (
                |c| c.service_account_unique_ids = set(&["ci@p.iam.gserviceaccount.com"]),
                "service_account_unique_ids",
                "google_service_account.x.unique_id",
            ),
            (
                |c| c.service_account_unique_ids = set(&[]),
                "service_account_unique_ids",
                "at least one",
            ),
            (
                |c| c.managed_policy_arns = set(&["AmazonS3ReadOnlyAccess"]),
                "managed_policy_arns",
                "arn:aws:iam::aws:policy/",
            ),
            (
                |c| c.inline_policies = map(&[("p", "{nope")]),
                "inline_policies[\"p\"]",
                "not valid JSON",
            ),
            (
                |c| c.inline_policies = map(&[("bad name", DOC)]),
                "inline_policies[\"bad name\"]",
                "Rename",
            ),
            (
                |c| c.max_session_duration = Value::Value(100),
                "max_session_duration",
                "3600",
            ),
            (
                |c| c.permissions_boundary = known("arn:aws:iam::aws:role/x"),
                "permissions_boundary",
                "policy ARN",
            ),
            (
                |c| c.tags = map(&[("aws:x", "v")]),
                "tags[\"aws:x\"]",
                "reserved",
            ),
            (
                |c| c.tags = map(&[("Team", "a"), ("team", "b")]),
                "tags[\"team\"]",
                "letter case",
            ),
        ];
        for (edit, path, fix) in cases {
            let mut c = config();
            edit(&mut c);
            let problems = check_config(&c);
            assert_eq!(paths(&problems), vec![path.to_string()], "{problems:?}");
            assert!(
                problems[0].detail.contains(fix),
                "{path}: {}",
                problems[0].detail
            );
        }
        let mut c = config();
        c.tags = Value::Value(
            (0..51)
                .map(|i| (Cow::Owned(format!("k{i}")), known("v")))
                .collect(),
        );
        assert_eq!(paths(&check_config(&c)), vec!["tags".to_string()]);
    }

    #[test]
    fn ids_of_another_length_than_googles_get_a_warning_not_an_error() {
        let mut c = config();
        c.service_account_unique_ids = set(&[SA1, "1048576"]);
        assert_eq!(check_config(&c), vec![]);
        let warnings = config_warnings(&c);
        assert_eq!(paths(&warnings), vec!["service_account_unique_ids"]);
        assert!(warnings[0]
            .detail
            .contains("gcloud iam service-accounts describe EMAIL"));
        assert_eq!(config_warnings(&config()), vec![]);
    }

    #[test]
    fn null_elements_are_refused() {
        let mut c = config();
        c.tags = Value::Value([(Cow::Borrowed("team"), Value::Null)].into_iter().collect());
        c.inline_policies = Value::Value([(Cow::Borrowed("p"), Value::Null)].into_iter().collect());
        c.managed_policy_arns = Value::Value([Value::Null].into_iter().collect());
        let problems = check_config(&c);
        assert_eq!(
            paths(&problems),
            vec![
                "managed_policy_arns",
                "inline_policies[\"p\"]",
                "tags[\"team\"]"
            ],
            "{problems:?}"
        );
        assert!(problems
            .iter()
            .all(|p| p.detail.contains("Remove the element")));
    }

    #[test]
    fn unknown_values_are_accepted() {
        let c = RoleState {
            name: Value::Unknown,
            audience: Value::Unknown,
            service_account_unique_ids: Value::Value([Value::Unknown].into_iter().collect()),
            inline_policies: Value::Value(
                [(Cow::Borrowed("p"), Value::Unknown)].into_iter().collect(),
            ),
            tags: Value::Unknown,
            max_session_duration: Value::Unknown,
            ..Default::default()
        };
        assert_eq!(check_config(&c), vec![]);
    }
}
