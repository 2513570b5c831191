//! Planning `gcpfed_role` and reading it back: defaults and the rendered trust policy at plan
//! time (known before apply), what forces replacement, and the merge of what IAM holds into the
//! state, keeping the configuration's spelling of every document IAM holds an equivalent of (so a
//! second plan is empty) and showing every change made out of band.

use std::collections::BTreeMap;

use tf_provider::value::Value;
use tf_provider::AttributePath;

use super::iam::RemoteRole;
use super::state::{
    known, map_value, set_value, str_of, RoleState, Str, DEFAULT_MAX_SESSION_DURATION, DEFAULT_PATH,
};
use crate::trust_policy::{
    normalize_document, parse_trust_policy, policies_equivalent, ShapeMismatch, TrustInputs,
};

/// A collection that is empty in IAM stays null in state when it was null before (the argument
/// was left out), so leaving an argument out never shows as a diff against `[]` / `{}`.
fn keep_null_if_empty<T>(prior: &Value<T>, empty: bool, value: Value<T>) -> Value<T> {
    if empty && prior.is_null() {
        Value::Null
    } else {
        value
    }
}

/// The trust policy for planned inputs: known when the audience and every ID are known.
fn planned_trust_policy(s: &RoleState) -> Str {
    let (Value::Value(audience), Value::Value(ids)) = (&s.audience, &s.service_account_unique_ids)
    else {
        return Value::Unknown;
    };
    let mut list = Vec::with_capacity(ids.len());
    for id in ids {
        match str_of(id) {
            Some(id) => list.push(id.to_owned()),
            None => return Value::Unknown,
        }
    }
    match TrustInputs::new(audience.to_string(), list) {
        Ok(inputs) => known(inputs.render()),
        // Refused by validation already; nothing sensible to show.
        Err(_) => Value::Unknown,
    }
}

fn apply_defaults(planned: &mut RoleState, config: &RoleState) {
    if config.path.is_null() {
        planned.path = known(DEFAULT_PATH);
    }
    if config.max_session_duration.is_null() {
        planned.max_session_duration = Value::Value(DEFAULT_MAX_SESSION_DURATION);
    }
}

/// The planned state of a role about to be created.
pub(super) fn plan_new(proposed: RoleState, config: &RoleState) -> RoleState {
    let mut s = proposed;
    apply_defaults(&mut s, config);
    s.id = s.name.clone();
    s.arn = Value::Unknown;
    s.unique_id = Value::Unknown;
    s.create_date = Value::Unknown;
    s.trust_policy = planned_trust_policy(&s);
    s
}

/// The planned state of an existing role, and the attributes whose change replaces it.
pub(super) fn plan_change(
    prior: &RoleState,
    proposed: RoleState,
    config: &RoleState,
) -> (RoleState, Vec<AttributePath>) {
    let mut s = proposed;
    // Optional+computed arguments keep their prior value when left out; the documented
    // defaults apply instead, so removing an argument resets it.
    apply_defaults(&mut s, config);
    s.id = s.name.clone();
    let mut replace = Vec::new();
    if s.name != prior.name {
        replace.push(AttributePath::new("name"));
    }
    if s.path != prior.path {
        replace.push(AttributePath::new("path"));
    }
    if !replace.is_empty() {
        s.arn = Value::Unknown;
        s.unique_id = Value::Unknown;
        s.create_date = Value::Unknown;
    }
    s.trust_policy = planned_trust_policy(&s);
    (s, replace)
}

/// The state after reading `remote`, keeping the prior spelling of every document IAM holds an
/// equivalent of. The mismatch is set when IAM's trust policy is not of the gcpfed shape.
pub(super) fn merge(prior: &RoleState, remote: &RemoteRole) -> (RoleState, Option<ShapeMismatch>) {
    let mut s = prior.clone();
    s.id = known(remote.name.clone());
    s.name = known(remote.name.clone());
    s.path = known(remote.path.clone());
    s.arn = known(remote.arn.clone());
    s.unique_id = known(remote.role_id.clone());
    s.create_date = known(remote.create_date.clone());
    s.description = match remote.description.as_deref() {
        Some(d) if !d.is_empty() => known(d),
        // IAM does not tell "" from no description; keep whichever the state said.
        _ if prior.description == known("") => known(""),
        _ => Value::Null,
    };
    s.max_session_duration = Value::Value(
        remote
            .max_session_duration
            .map_or(DEFAULT_MAX_SESSION_DURATION, i64::from),
    );
    s.permissions_boundary = remote
        .permissions_boundary
        .as_deref()
        .map_or(Value::Null, known);
    s.tags = keep_null_if_empty(&prior.tags, remote.tags.is_empty(), map_value(&remote.tags));
    s.managed_policy_arns = keep_null_if_empty(
        &prior.managed_policy_arns,
        remote.managed_policy_arns.is_empty(),
        set_value(&remote.managed_policy_arns),
    );

    let prior_inline = match &prior.inline_policies {
        Value::Value(m) => m.clone(),
        _ => BTreeMap::new(),
    };
    let inline: BTreeMap<String, String> = remote
        .inline_policies
        .iter()
        .map(|(name, doc)| {
            let kept = prior_inline
                .get(name.as_str())
                .and_then(str_of)
                .filter(|p| policies_equivalent(p, doc));
            let text = kept.map_or_else(|| normalize_document(doc), str::to_owned);
            (name.clone(), text)
        })
        .collect();
    s.inline_policies = keep_null_if_empty(
        &prior.inline_policies,
        inline.is_empty(),
        map_value(&inline),
    );

    // The trust policy IAM holds counts as unchanged only when it is recognised as a gcpfed
    // trust policy whose inputs render, byte for byte, to what the state holds. Semantic
    // equivalence alone is not enough: it must never be the thing that lets a widened policy
    // (a colliding condition key, a repeated JSON key) pass as ours.
    let doc = remote.trust_policy.as_deref().unwrap_or("");
    let mut mismatch = None;
    match parse_trust_policy(doc) {
        Ok(inputs) if str_of(&prior.trust_policy) == Some(inputs.render().as_str()) => {}
        Ok(inputs) => {
            s.audience = known(inputs.audience());
            s.service_account_unique_ids = set_value(inputs.unique_ids());
            s.trust_policy = known(inputs.render());
        }
        Err(m) => {
            // Show IAM's document so the plan puts ours back; the inputs stay as they were.
            s.trust_policy = known(normalize_document(doc));
            mismatch = Some(m);
        }
    }
    (s, mismatch)
}

#[cfg(test)]
mod tests {
    use super::super::state::fixtures::*;
    use super::super::state::Desired;
    use super::*;

    #[test]
    fn plan_create_renders_the_trust_policy_and_applies_defaults() {
        let c = config();
        let s = plan_new(c.clone(), &c);
        assert_eq!(s.path, known("/"));
        assert_eq!(s.max_session_duration, Value::Value(3600));
        assert_eq!(s.id, known("gcpfedacc-role"));
        assert!(s.arn.is_unknown() && s.unique_id.is_unknown() && s.create_date.is_unknown());
        let want = TrustInputs::new("sts.amazonaws.com/gcpfed", [SA1, SA2])
            .unwrap()
            .render();
        assert_eq!(s.trust_policy, known(want));

        let mut c = config();
        c.service_account_unique_ids =
            Value::Value([known(SA1), Value::Unknown].into_iter().collect());
        assert!(plan_new(c.clone(), &c).trust_policy.is_unknown());
    }

    fn applied() -> RoleState {
        let c = config();
        let mut s = plan_new(c.clone(), &c);
        s.arn = known("arn:aws:iam::123456789012:role/gcpfedacc-role");
        s.unique_id = known("AROAEXAMPLE");
        s.create_date = known("2026-12-01T00:00:00Z");
        s
    }

    /// What Terraform proposes: config values, prior values for computed ones.
    fn proposed(prior: &RoleState, config: &RoleState) -> RoleState {
        let mut p = config.clone();
        for (dst, src) in [
            (&mut p.id, &prior.id),
            (&mut p.arn, &prior.arn),
            (&mut p.unique_id, &prior.unique_id),
            (&mut p.create_date, &prior.create_date),
            (&mut p.trust_policy, &prior.trust_policy),
        ] {
            *dst = src.clone();
        }
        if config.path.is_null() {
            p.path = prior.path.clone();
        }
        if config.max_session_duration.is_null() {
            p.max_session_duration = prior.max_session_duration;
        }
        p
    }

    #[test]
    fn plan_update_without_change_is_the_prior_state() {
        let prior = applied();
        let (s, replace) = plan_change(&prior, proposed(&prior, &config()), &config());
        assert_eq!(s, prior);
        assert!(replace.is_empty());
    }

    #[test]
    fn plan_update_rerenders_and_keeps_ids_known() {
        let prior = applied();
        let mut c = config();
        c.audience = known("other");
        let (s, replace) = plan_change(&prior, proposed(&prior, &c), &c);
        assert!(replace.is_empty());
        assert_eq!(s.unique_id, prior.unique_id);
        assert_eq!(s.arn, prior.arn);
        assert!(str_of(&s.trust_policy).unwrap().contains("\"other\""));
    }

    #[test]
    fn name_and_path_force_replacement() {
        let prior = applied();
        let mut c = config();
        c.name = known("gcpfedacc-other");
        c.path = known("/ci/");
        let (s, replace) = plan_change(&prior, proposed(&prior, &c), &c);
        assert_eq!(
            replace,
            vec![AttributePath::new("name"), AttributePath::new("path")]
        );
        assert!(s.unique_id.is_unknown());
        assert_eq!(s.id, known("gcpfedacc-other"));
    }

    #[test]
    fn removing_an_optional_default_resets_it() {
        let mut prior = applied();
        prior.max_session_duration = Value::Value(7200);
        let (s, _) = plan_change(&prior, proposed(&prior, &config()), &config());
        assert_eq!(s.max_session_duration, Value::Value(3600));
    }

    fn remote_of(s: &RoleState) -> RemoteRole {
        let d = Desired::of(s).unwrap();
        RemoteRole {
            name: d.name.clone(),
            path: d.path.clone(),
            role_id: "AROAEXAMPLE".into(),
            arn: "arn:aws:iam::123456789012:role/gcpfedacc-role".into(),
            create_date: "2026-12-01T00:00:00Z".into(),
            trust_policy: Some(d.trust_policy.clone()),
            description: d.description.clone(),
            max_session_duration: Some(d.max_session_duration),
            permissions_boundary: d.boundary.clone(),
            tags: d.tags.clone(),
            managed_policy_arns: d.managed.clone(),
            inline_policies: d.inline.clone(),
        }
    }

    #[test]
    fn read_of_an_unchanged_role_is_the_prior_state() {
        let prior = applied();
        let mut remote = remote_of(&prior);
        // IAM's spelling of the same documents.
        remote.trust_policy = Some(format!(
            r#"{{"Statement":[{{"Condition":{{"StringEquals":{{"accounts.google.com:sub":["{SA2}","{SA1}"],"accounts.google.com:oaud":"sts.amazonaws.com/gcpfed","accounts.google.com:aud":["{SA2}","{SA1}"]}}}},"Action":"sts:AssumeRoleWithWebIdentity","Principal":{{"Federated":"accounts.google.com"}},"Effect":"Allow"}}],"Version":"2012-10-17"}}"#
        ));
        remote.inline_policies.insert(
            "list".into(),
            DOC.replace(',', " ,\n  ").replace("\"*\"", "[\"*\"]"),
        );
        let (s, mismatch) = merge(&prior, &remote);
        assert_eq!(mismatch, None);
        assert_eq!(s, prior);
    }

    #[test]
    fn read_shows_every_drift() {
        let prior = applied();
        let mut remote = remote_of(&prior);
        remote.description = Some("changed".into());
        remote.max_session_duration = Some(7200);
        remote.permissions_boundary = Some(S3RO.into());
        remote.tags.insert("extra".into(), "x".into());
        remote.managed_policy_arns.clear();
        remote
            .inline_policies
            .insert("list".into(), DOC.replace("ListBucket", "GetObject"));
        remote.trust_policy = Some(TrustInputs::new("evil", [SA1]).unwrap().render());
        let (s, mismatch) = merge(&prior, &remote);
        assert_eq!(mismatch, None);
        assert_eq!(s.description, known("changed"));
        assert_eq!(s.max_session_duration, Value::Value(7200));
        assert_eq!(s.permissions_boundary, known(S3RO));
        assert_eq!(s.tags, map(&[("extra", "x"), ("team", "ci")]));
        assert_eq!(s.managed_policy_arns, set(&[]));
        assert!(str_of(&s.inline_policies.as_ref_option().unwrap()["list"])
            .unwrap()
            .contains("GetObject"));
        assert_eq!(s.audience, known("evil"));
        assert_eq!(s.service_account_unique_ids, set(&[SA1]));
        // Planning again from the unchanged configuration puts everything back.
        let (plan, _) = plan_change(&s, proposed(&s, &config()), &config());
        assert_eq!(plan, prior);
    }

    #[test]
    fn read_of_a_foreign_trust_policy_shows_it_and_keeps_the_inputs() {
        let prior = applied();
        let mut remote = remote_of(&prior);
        remote.trust_policy = Some(
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#.into(),
        );
        let (s, mismatch) = merge(&prior, &remote);
        assert!(mismatch.unwrap().to_string().contains("Principal"));
        assert_eq!(s.audience, prior.audience);
        assert!(str_of(&s.trust_policy)
            .unwrap()
            .contains("ec2.amazonaws.com"));
        let (plan, _) = plan_change(&s, proposed(&s, &config()), &config());
        assert_eq!(plan.trust_policy, prior.trust_policy);
    }

    #[test]
    fn left_out_collections_stay_null_when_empty() {
        let mut c = config();
        c.managed_policy_arns = Value::Null;
        c.inline_policies = Value::Null;
        c.tags = Value::Null;
        let mut prior = plan_new(c.clone(), &c);
        prior.arn = known("a");
        let (s, _) = merge(&prior, &remote_of(&prior));
        assert!(s.managed_policy_arns.is_null() && s.inline_policies.is_null() && s.tags.is_null());
        c.tags = map(&[]);
        let prior = plan_new(c.clone(), &c);
        let (s, _) = merge(&prior, &remote_of(&prior));
        assert_eq!(s.tags, map(&[]));
    }

    #[test]
    fn import_recovers_every_argument() {
        let mut c = config();
        c.description = known("CI");
        c.permissions_boundary = known(S3RO);
        let prior = applied();
        let mut full = prior.clone();
        full.description = c.description.clone();
        full.permissions_boundary = c.permissions_boundary.clone();
        let blank = RoleState {
            id: known("gcpfedacc-role"),
            name: known("gcpfedacc-role"),
            ..Default::default()
        };
        let (s, mismatch) = merge(&blank, &remote_of(&full));
        assert_eq!(mismatch, None);
        // Inline documents come back in jsonencode's layout (compact, keys sorted): the
        // configuration's own spelling is not knowable on import.
        full.inline_policies = map(&[("list", &normalize_document(DOC))]);
        assert_eq!(s, full);
    }
}
