//! Acceptance tests of `gcpfed_role` (issue 3) under real Terraform and OpenTofu on the
//! acceptance target (the local test bed unless `GCPFED_ACC=aws`, see `support::target`): the lifecycle (create, show, empty second plan, import by CLI and by `import {}`,
//! in-place updates, replacement, destroy), drift made through the IAM API out of band, the
//! strict STS gate deciding on the role Terraform made, IAM faults absorbed by retries, and a
//! table of invalid configurations refused at plan.
//!
//! One target (`Acc`) per test function; each engine works on its own role names (run prefix
//! from `support::target`), so the engines never see each other's roles. The lifecycle and drift
//! tests also run on a real AWS sandbox account, where IAM is read through `Acc::iam()` and the
//! `Acc` deletes any role the test named when it is dropped, even after a failed assertion. The
//! STS-gate, fault and invalid-input tests need the bed itself (minted tokens, fault injection,
//! the call recorder) and print why they are skipped on the sandbox.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use serde_json::{json, Value};
use support::bed::{
    block_on, TestBed, TokenSpec, ACCOUNT_ID, DEPLOYER_EMAIL, DEPLOYER_ID, NOT_AUTHORIZED,
    OUTSIDER_EMAIL, OUTSIDER_ID, RUNNER_EMAIL, RUNNER_ID,
};
use support::target::{announce, run_prefix, Acc};
use support::tf::{
    for_each_engine, planned_actions, resource_values_in, Engine, Workdir, REQUIRED_PROVIDERS,
};

const ADDR: &str = "gcpfed_role.r";
const S3RO: &str = "arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess";
const EC2RO: &str = "arn:aws:iam::aws:policy/AmazonEC2ReadOnlyAccess";
const IAMRO: &str = "arn:aws:iam::aws:policy/IAMReadOnlyAccess";
const AUDIENCE: &str = "sts.amazonaws.com/gcpfedacc";

/// `jsonencode` of a one-statement Allow policy (what users write; state keeps this text).
fn allow(actions: &[&str], resource: &str) -> String {
    let actions: Vec<String> = actions.iter().map(|a| format!("{a:?}")).collect();
    format!(
        "jsonencode({{ Version = \"2012-10-17\", Statement = [{{ Effect = \"Allow\", Action = [{}], Resource = {resource:?} }}] }})",
        actions.join(", ")
    )
}

/// A `gcpfed_role "r"` block; every field is the HCL of its argument (strings are quoted here).
#[derive(Debug, Clone, Default)]
struct Role {
    name: String,
    path: Option<String>,
    description: Option<String>,
    audience: String,
    ids: Vec<String>,
    managed: Vec<String>,
    /// name -> HCL expression of the document
    inline: Vec<(String, String)>,
    /// raw HCL (a number, or anything for the invalid-input table)
    max: Option<String>,
    boundary: Option<String>,
    tags: Vec<(String, String)>,
}

fn strings(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| support::q(s)).collect();
    format!("[{}]", quoted.join(", "))
}

impl Role {
    fn base(name: &str) -> Role {
        Role {
            name: name.to_string(),
            path: Some("/gcpfed/".into()),
            description: Some("CI runners deploy here".into()),
            audience: AUDIENCE.into(),
            ids: vec![RUNNER_ID.into(), DEPLOYER_ID.into()],
            managed: vec![S3RO.into()],
            inline: vec![(
                "read".into(),
                allow(&["s3:GetObject", "s3:ListBucket"], "*"),
            )],
            max: Some("7200".into()),
            boundary: Some(S3RO.into()),
            tags: vec![
                ("team".into(), "platform".into()),
                ("env".into(), "ci".into()),
            ],
        }
    }

    fn hcl(&self) -> String {
        let mut s = format!(
            "resource \"gcpfed_role\" \"r\" {{\n  name = {}\n",
            support::q(&self.name)
        );
        if let Some(p) = &self.path {
            s += &format!("  path = {}\n", support::q(p));
        }
        if let Some(d) = &self.description {
            s += &format!("  description = {}\n", support::q(d));
        }
        s += &format!("  audience = {}\n", support::q(&self.audience));
        s += &format!("  service_account_unique_ids = {}\n", strings(&self.ids));
        if !self.managed.is_empty() {
            s += &format!("  managed_policy_arns = {}\n", strings(&self.managed));
        }
        if !self.inline.is_empty() {
            s += "  inline_policies = {\n";
            for (name, doc) in &self.inline {
                s += &format!("    {} = {doc}\n", support::q(name));
            }
            s += "  }\n";
        }
        if let Some(m) = &self.max {
            s += &format!("  max_session_duration = {m}\n");
        }
        if let Some(b) = &self.boundary {
            s += &format!("  permissions_boundary = {}\n", support::q(b));
        }
        if !self.tags.is_empty() {
            s += "  tags = {\n";
            for (k, v) in &self.tags {
                s += &format!("    {} = {}\n", support::q(k), support::q(v));
            }
            s += "  }\n";
        }
        s + "}\n"
    }
}

fn config(acc: &Acc, role: &Role) -> String {
    format!(
        "{REQUIRED_PROVIDERS}\n{}\n{}",
        acc.provider_hcl(),
        role.hcl()
    )
}

/// The bed a bed-only test was given (`Acc::local_only` never returns a sandbox).
fn the_bed(acc: &Acc) -> &TestBed {
    acc.bed().expect("Acc::local_only gives the local bed")
}

// ---------- IAM, read and changed out of band (the bed: directly on moto, unrecorded) ----------

/// What IAM holds for a role, documents decoded to JSON values.
#[derive(Debug, Clone, PartialEq)]
struct InIam {
    path: String,
    role_id: String,
    trust: Value,
    description: Option<String>,
    max: Option<i32>,
    boundary: Option<String>,
    tags: BTreeMap<String, String>,
    managed: BTreeSet<String>,
    inline: BTreeMap<String, Value>,
}

fn in_iam(acc: &Acc, name: &str) -> Option<InIam> {
    acc.settle();
    let iam = acc.iam();
    block_on(async {
        let role = match iam.get_role().role_name(name).send().await {
            Ok(out) => out.role.expect("GetRole answers with the role"),
            Err(e) => {
                let text = format!("{}", aws_sdk_iam::error::DisplayErrorContext(&e));
                assert!(text.contains("NoSuchEntity"), "GetRole {name}: {text}");
                return None;
            }
        };
        let managed = iam
            .list_attached_role_policies()
            .role_name(name)
            .send()
            .await
            .expect("ListAttachedRolePolicies")
            .attached_policies
            .unwrap_or_default()
            .into_iter()
            .filter_map(|p| p.policy_arn)
            .collect();
        let names = iam
            .list_role_policies()
            .role_name(name)
            .send()
            .await
            .expect("ListRolePolicies")
            .policy_names;
        let mut inline = BTreeMap::new();
        for policy in names {
            let out = iam
                .get_role_policy()
                .role_name(name)
                .policy_name(&policy)
                .send()
                .await
                .expect("GetRolePolicy");
            inline.insert(policy, support::iam::document(&out.policy_document));
        }
        Some(InIam {
            path: role.path.clone(),
            role_id: role.role_id.clone(),
            trust: support::iam::document(
                role.assume_role_policy_document.as_deref().unwrap_or(""),
            ),
            description: role.description.clone().filter(|d| !d.is_empty()),
            max: role.max_session_duration,
            boundary: role
                .permissions_boundary
                .as_ref()
                .and_then(|b| b.permissions_boundary_arn.clone()),
            tags: role
                .tags
                .unwrap_or_default()
                .into_iter()
                .map(|t| (t.key, t.value))
                .collect(),
            managed,
            inline,
        })
    })
}

/// Every role of this test still in IAM (on the bed: of this run; see `Acc::owns`), all pages.
fn leftover_roles(acc: &Acc) -> Vec<String> {
    acc.settle();
    let iam = acc.iam();
    block_on(async {
        let mut names = Vec::new();
        let mut marker = None;
        loop {
            let page = iam
                .list_roles()
                .max_items(1000)
                .set_marker(marker)
                .send()
                .await
                .expect("ListRoles");
            names.extend(page.roles.into_iter().map(|r| r.role_name));
            marker = page.marker.filter(|_| page.is_truncated);
            if marker.is_none() {
                break names;
            }
        }
    })
    .into_iter()
    .filter(|n| acc.owns(n))
    .collect()
}

/// Roles of this test a managed policy is still attached to, all pages.
fn attached_to(acc: &Acc, arn: &str) -> Vec<String> {
    acc.settle();
    let iam = acc.iam();
    block_on(async {
        let mut names = Vec::new();
        let mut marker = None;
        loop {
            let page = iam
                .list_entities_for_policy()
                .policy_arn(arn)
                .set_marker(marker)
                .send()
                .await
                .expect("ListEntitiesForPolicy");
            names.extend(
                page.policy_roles
                    .unwrap_or_default()
                    .into_iter()
                    .filter_map(|r| r.role_name),
            );
            marker = page.marker.filter(|_| page.is_truncated);
            if marker.is_none() {
                break names;
            }
        }
    })
    .into_iter()
    .filter(|n| acc.owns(n))
    .collect()
}

/// What IAM must hold for `role` as configured.
fn assert_iam_matches(acc: &Acc, role: &Role, engine: Engine) {
    let got = in_iam(acc, &role.name)
        .unwrap_or_else(|| panic!("[{engine}] role {} is not in IAM", role.name));
    let ids: Vec<&str> = role.ids.iter().map(String::as_str).collect();
    let trust: Value =
        serde_json::from_str(&support::trust_policy_by_hand(&role.audience, &ids)).unwrap();
    assert_eq!(got.trust, trust, "[{engine}] trust policy in IAM");
    assert_eq!(
        got.path,
        role.path.clone().unwrap_or_else(|| "/".into()),
        "[{engine}] path"
    );
    assert_eq!(got.description, role.description, "[{engine}] description");
    let max = role.max.as_deref().map_or(3600, |m| m.parse().unwrap());
    assert_eq!(got.max, Some(max), "[{engine}] max session duration");
    assert_eq!(
        got.boundary, role.boundary,
        "[{engine}] permissions boundary"
    );
    let tags: BTreeMap<String, String> = role.tags.iter().cloned().collect();
    assert_eq!(got.tags, tags, "[{engine}] tags");
    let managed: BTreeSet<String> = role.managed.iter().cloned().collect();
    assert_eq!(got.managed, managed, "[{engine}] managed policies");
    let names: BTreeSet<&String> = got.inline.keys().collect();
    let want: BTreeSet<&String> = role.inline.iter().map(|(n, _)| n).collect();
    assert_eq!(names, want, "[{engine}] inline policy names");
}

// ---------- state ----------

fn values(wd: &Workdir) -> Value {
    wd.resource_values(ADDR)
        .unwrap_or_else(|| panic!("[{}] {ADDR} is not in the state", wd.engine()))
}

fn set_of(v: &Value) -> BTreeSet<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

fn assert_state_matches(v: &Value, role: &Role, engine: Engine, account: &str) {
    assert_eq!(v["name"], json!(role.name), "[{engine}] name");
    assert_eq!(v["id"], json!(role.name), "[{engine}] id");
    assert_eq!(
        v["path"],
        json!(role.path.clone().unwrap_or_else(|| "/".into())),
        "[{engine}] path"
    );
    assert_eq!(
        v["description"],
        json!(role.description),
        "[{engine}] description"
    );
    assert_eq!(v["audience"], json!(role.audience), "[{engine}] audience");
    let ids: BTreeSet<String> = role.ids.iter().cloned().collect();
    assert_eq!(
        set_of(&v["service_account_unique_ids"]),
        ids,
        "[{engine}] ids"
    );
    let managed: BTreeSet<String> = role.managed.iter().cloned().collect();
    assert_eq!(
        set_of(&v["managed_policy_arns"]),
        managed,
        "[{engine}] managed"
    );
    let max = role
        .max
        .as_deref()
        .map_or(3600, |m| m.parse::<i64>().unwrap());
    assert_eq!(
        v["max_session_duration"],
        json!(max),
        "[{engine}] max session duration"
    );
    assert_eq!(
        v["permissions_boundary"],
        json!(role.boundary),
        "[{engine}] boundary"
    );
    let tags: BTreeMap<String, String> = role.tags.iter().cloned().collect();
    if tags.is_empty() {
        assert!(
            v["tags"].is_null() || v["tags"] == json!({}),
            "[{engine}] tags: {}",
            v["tags"]
        );
    } else {
        assert_eq!(v["tags"], json!(tags), "[{engine}] tags");
    }
    let names: BTreeSet<String> = v["inline_policies"]
        .as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    let want: BTreeSet<String> = role.inline.iter().map(|(n, _)| n.clone()).collect();
    assert_eq!(names, want, "[{engine}] inline policy names");
    let path = role.path.clone().unwrap_or_else(|| "/".into());
    assert_eq!(
        v["arn"],
        json!(format!("arn:aws:iam::{account}:role{path}{}", role.name)),
        "[{engine}] arn"
    );
    assert!(
        v["unique_id"].as_str().is_some_and(|u| u.len() > 4),
        "[{engine}] unique_id: {}",
        v["unique_id"]
    );
    assert!(
        v["create_date"].as_str().is_some_and(|d| d.contains('T')),
        "[{engine}] create_date: {}",
        v["create_date"]
    );
    let ids: Vec<&str> = role.ids.iter().map(String::as_str).collect();
    assert_eq!(
        v["trust_policy"],
        json!(support::trust_policy_by_hand(&role.audience, &ids)),
        "[{engine}] trust_policy"
    );
}

#[track_caller]
fn assert_no_changes(wd: &Workdir, what: &str) {
    let run = wd.plan_detailed();
    assert_eq!(
        run.status,
        0,
        "{}",
        run.describe(&format!("{what}: expected no changes"))
    );
}

#[track_caller]
fn actions(wd: &Workdir) -> Vec<String> {
    planned_actions(&wd.plan_json())
        .remove(ADDR)
        .unwrap_or_default()
}

fn change_of(plan: &Value) -> (Value, Value) {
    let change = plan["resource_changes"]
        .as_array()
        .and_then(|a| a.iter().find(|c| c["address"] == ADDR))
        .unwrap_or_else(|| panic!("no change for {ADDR} in {plan}"));
    (
        change["change"]["before"].clone(),
        change["change"]["after"].clone(),
    )
}

// ---------- lifecycle ----------

#[test]
fn role_lifecycle_create_import_update_replace_destroy() {
    let acc = Acc::start();
    let account = acc.account_id();
    for_each_engine(|engine| {
        let started = Instant::now();
        let role = Role::base(&acc.unique_name("life"));
        let wd = Workdir::new(engine, &config(&acc, &role), &acc.env());

        // Create: show -json holds what was asked, IAM too, and the plan renders the trust
        // policy before anything exists.
        let plan = wd.plan_json();
        let planned = resource_values_in(&plan["planned_values"], ADDR).expect("planned values");
        assert_eq!(
            planned["trust_policy"],
            json!(support::trust_policy_by_hand(
                AUDIENCE,
                &[RUNNER_ID, DEPLOYER_ID]
            )),
            "[{engine}] trust policy known at plan time"
        );
        wd.apply().ok();
        let created = values(&wd);
        assert_state_matches(&created, &role, engine, &account);
        assert_iam_matches(&acc, &role, engine);
        assert_no_changes(&wd, "second plan after create");

        // Import into an empty state, by CLI and by an import block: the same attributes.
        let imported = Workdir::new(engine, &config(&acc, &role), &acc.env());
        imported.import(ADDR, &role.name).ok();
        assert_eq!(values(&imported), created, "[{engine}] terraform import");
        assert_no_changes(&imported, "plan after terraform import");
        let with_block = format!(
            "{}\nimport {{\n  to = {ADDR}\n  id = {}\n}}\n",
            config(&acc, &role),
            support::q(&role.name)
        );
        let block = Workdir::new(engine, &with_block, &acc.env());
        let plan = block.plan_json();
        let change = &plan["resource_changes"][0];
        assert_eq!(
            change["change"]["actions"],
            json!(["no-op"]),
            "[{engine}] import block plan: {plan}"
        );
        assert!(
            change["change"]["importing"].is_object(),
            "[{engine}] import block plan: {plan}"
        );
        block.apply().ok();
        assert_eq!(values(&block), created, "[{engine}] import block");
        drop((imported, block)); // their states only: the role belongs to `wd`

        // Roles that are not of the gcpfed shape, or do not exist, are refused with the reason.
        let refused = Workdir::new(engine, &config(&acc, &role), &acc.env());
        for (trust, reason) in [
            (
                r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#.to_string(),
                r#"Principal is {"Service":"ec2.amazonaws.com"}"#,
            ),
            (
                support::trust_policy_by_hand(AUDIENCE, &[RUNNER_ID]).replace(
                    &format!(r#","accounts.google.com:sub":"{RUNNER_ID}""#),
                    "",
                ),
                "the StringEquals condition lacks accounts.google.com:sub",
            ),
        ] {
            let foreign = acc.unique_name("foreign");
            support::iam::create_role(&acc.iam(), &foreign, &trust, None);
            acc.settle();
            refused
                .import(ADDR, &foreign)
                .fails()
                .assert_contains(&["Role is not a gcpfed role", reason, "aws_iam_role"]);
            block_on(acc.iam().delete_role().role_name(&foreign).send()).expect("DeleteRole");
        }
        refused
            .import(ADDR, &format!("{}missing", run_prefix()))
            .fails()
            .assert_contains(&["Role not found", "missing"]);
        assert_eq!(
            refused.show_json()["values"],
            Value::Null,
            "[{engine}] nothing imported"
        );

        // Update in place: description, audience, the service accounts, policies and tags.
        let mut updated = role.clone();
        updated.description = Some("changed in place".into());
        updated.audience = format!("{AUDIENCE}/v2");
        updated.ids = vec![RUNNER_ID.into(), OUTSIDER_ID.into()];
        updated.managed = vec![EC2RO.into(), IAMRO.into()];
        updated.inline = vec![
            (
                "read".into(),
                allow(
                    &["s3:GetObject", "s3:ListBucket", "s3:GetBucketLocation"],
                    "*",
                ),
            ),
            ("logs".into(), allow(&["logs:PutLogEvents"], "*")),
        ];
        updated.tags = vec![
            ("team".into(), "security".into()),
            ("owner".into(), "gcpfed".into()),
        ];
        updated.max = Some("3600".into());
        updated.boundary = None;
        wd.write(&config(&acc, &updated));
        assert_eq!(actions(&wd), vec!["update"], "[{engine}] in-place update");
        wd.apply().ok();
        let after = values(&wd);
        assert_state_matches(&after, &updated, engine, &account);
        assert_eq!(
            after["unique_id"], created["unique_id"],
            "[{engine}] same role after update"
        );
        assert_iam_matches(&acc, &updated, engine);
        let read = in_iam(&acc, &updated.name).unwrap();
        assert!(
            read.inline["read"]
                .to_string()
                .contains("s3:GetBucketLocation"),
            "[{engine}] inline document updated: {:?}",
            read.inline
        );
        assert_no_changes(&wd, "plan after update");

        // A new name replaces the role; the old one is gone.
        let mut renamed = updated.clone();
        renamed.name = acc.unique_name("life-renamed");
        wd.write(&config(&acc, &renamed));
        assert_eq!(
            actions(&wd),
            vec!["delete", "create"],
            "[{engine}] rename replaces"
        );
        wd.apply().ok();
        let replaced = values(&wd);
        assert_state_matches(&replaced, &renamed, engine, &account);
        assert_ne!(
            replaced["unique_id"], created["unique_id"],
            "[{engine}] a new role"
        );
        assert_eq!(
            in_iam(&acc, &role.name),
            None,
            "[{engine}] old role deleted"
        );
        assert_iam_matches(&acc, &renamed, engine);

        // Destroy leaves nothing: no role, attachment or inline policy.
        wd.destroy().ok();
        assert_eq!(in_iam(&acc, &renamed.name), None, "[{engine}] destroyed");
        for arn in [S3RO, EC2RO, IAMRO] {
            assert_eq!(
                attached_to(&acc, arn),
                Vec::<String>::new(),
                "[{engine}] {arn} still attached"
            );
        }
        assert_eq!(
            leftover_roles(&acc),
            Vec::<String>::new(),
            "[{engine}] roles left in IAM"
        );
        announce(&format!(
            "[{engine}] role lifecycle took {:.1?}",
            started.elapsed()
        ));
    });
}

// ---------- drift ----------

/// The rendered trust policy spelled differently: keys reordered, whitespace, lists of one,
/// condition keys in another case. IAM reads it as the same policy.
fn same_trust_respelled(audience: &str, ids: &[&str]) -> String {
    let ids: Vec<String> = ids.iter().rev().map(|i| format!("\"{i}\"")).collect();
    format!(
        r#"{{ "Statement": [ {{
              "Condition": {{ "StringEquals": {{
                  "Accounts.Google.com:sub": [ {ids} ],
                  "accounts.google.com:oaud": [ "{audience}" ],
                  "accounts.google.com:aud": [ {ids} ] }} }},
              "Action": [ "sts:AssumeRoleWithWebIdentity" ],
              "Principal": {{ "Federated": [ "accounts.google.com" ] }},
              "Effect": "Allow" }} ],
            "Version": "2012-10-17" }}"#,
        ids = ids.join(" , ")
    )
}

/// Deletes a role out of band the way an operator would (policies first).
fn delete_out_of_band(acc: &Acc, name: &str) {
    let deleted = support::iam::delete_role_fully(&acc.iam(), name)
        .unwrap_or_else(|e| panic!("deleting {name} out of band: {e}"));
    assert!(deleted, "{name} was not there to delete");
    acc.settle();
}

#[test]
fn role_drift_is_detected_and_repaired() {
    let acc = Acc::start();
    let iam = acc.iam();
    for_each_engine(|engine| {
        let started = Instant::now();
        let role = Role::base(&acc.unique_name("drift"));
        let name = role.name.clone();
        let wd = Workdir::new(engine, &config(&acc, &role), &acc.env());
        wd.apply().ok();
        let applied = values(&wd);

        // Round 1: each attribute changed through the IAM API.
        block_on(async {
            iam.update_role()
                .role_name(&name)
                .description("drifted")
                .max_session_duration(10800)
                .send()
                .await
                .unwrap();
            iam.delete_role_permissions_boundary()
                .role_name(&name)
                .send()
                .await
                .unwrap();
            iam.tag_role()
                .role_name(&name)
                .tags(
                    aws_sdk_iam::types::Tag::builder()
                        .key("team")
                        .value("drifted")
                        .build()
                        .unwrap(),
                )
                .tags(
                    aws_sdk_iam::types::Tag::builder()
                        .key("extra")
                        .value("x")
                        .build()
                        .unwrap(),
                )
                .send()
                .await
                .unwrap();
            iam.detach_role_policy()
                .role_name(&name)
                .policy_arn(S3RO)
                .send()
                .await
                .unwrap();
            iam.attach_role_policy()
                .role_name(&name)
                .policy_arn(EC2RO)
                .send()
                .await
                .unwrap();
            iam.put_role_policy()
                .role_name(&name)
                .policy_name("read")
                .policy_document(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}"#)
                .send()
                .await
                .unwrap();
            iam.update_assume_role_policy()
                .role_name(&name)
                .policy_document(support::trust_policy_by_hand(
                    "drifted-audience",
                    &[OUTSIDER_ID],
                ))
                .send()
                .await
                .unwrap();
        });
        acc.settle();
        let plan = wd.plan_json();
        assert_eq!(
            planned_actions(&plan)[ADDR],
            vec!["update"],
            "[{engine}] round 1"
        );
        let (before, after) = change_of(&plan);
        assert_eq!(
            before["description"],
            json!("drifted"),
            "[{engine}] description drift"
        );
        assert_eq!(
            before["max_session_duration"],
            json!(10800),
            "[{engine}] duration drift"
        );
        assert_eq!(
            before["permissions_boundary"],
            Value::Null,
            "[{engine}] boundary drift"
        );
        assert_eq!(
            before["tags"],
            json!({"team": "drifted", "env": "ci", "extra": "x"}),
            "[{engine}] tags drift"
        );
        assert_eq!(
            set_of(&before["managed_policy_arns"]),
            BTreeSet::from([EC2RO.to_string()]),
            "[{engine}] managed drift"
        );
        assert!(
            before["inline_policies"]["read"]
                .as_str()
                .unwrap()
                .contains("s3:*"),
            "[{engine}] inline drift: {before}"
        );
        assert_eq!(
            before["audience"],
            json!("drifted-audience"),
            "[{engine}] audience drift"
        );
        assert_eq!(
            set_of(&before["service_account_unique_ids"]),
            BTreeSet::from([OUTSIDER_ID.to_string()]),
            "[{engine}] ids drift"
        );
        for attr in [
            "description",
            "max_session_duration",
            "permissions_boundary",
            "tags",
            "managed_policy_arns",
            "inline_policies",
            "audience",
            "service_account_unique_ids",
            "trust_policy",
        ] {
            assert_eq!(
                after[attr], applied[attr],
                "[{engine}] plan puts {attr} back"
            );
        }
        wd.apply().ok();
        assert_iam_matches(&acc, &role, engine);
        assert_eq!(values(&wd), applied, "[{engine}] state after repair");
        assert_no_changes(&wd, "after repairing round 1");

        // Round 2: a trust policy of another shape, an inline policy deleted and a foreign one
        // added, another boundary, all tags removed.
        block_on(async {
            iam.update_assume_role_policy()
                .role_name(&name)
                .policy_document(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#)
                .send()
                .await
                .unwrap();
            iam.delete_role_policy()
                .role_name(&name)
                .policy_name("read")
                .send()
                .await
                .unwrap();
            iam.put_role_policy()
                .role_name(&name)
                .policy_name("foreign")
                .policy_document(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iam:*","Resource":"*"}]}"#)
                .send()
                .await
                .unwrap();
            iam.put_role_permissions_boundary()
                .role_name(&name)
                .permissions_boundary(EC2RO)
                .send()
                .await
                .unwrap();
            iam.untag_role()
                .role_name(&name)
                .tag_keys("team")
                .tag_keys("env")
                .send()
                .await
                .unwrap();
        });
        acc.settle();
        let plan = wd.plan_json();
        assert_eq!(
            planned_actions(&plan)[ADDR],
            vec!["update"],
            "[{engine}] round 2"
        );
        let (before, after) = change_of(&plan);
        assert!(
            before["trust_policy"]
                .as_str()
                .unwrap()
                .contains("ec2.amazonaws.com"),
            "[{engine}] foreign trust policy shown: {before}"
        );
        assert_eq!(
            after["trust_policy"], applied["trust_policy"],
            "[{engine}] trust policy put back"
        );
        let inline: BTreeSet<String> = before["inline_policies"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        assert_eq!(
            inline,
            BTreeSet::from(["foreign".to_string()]),
            "[{engine}] inline drift: {before}"
        );
        assert_eq!(
            before["permissions_boundary"],
            json!(EC2RO),
            "[{engine}] boundary drift"
        );
        assert!(
            before["tags"].as_object().is_none_or(|t| t.is_empty()),
            "[{engine}] tags removed: {before}"
        );
        wd.apply().ok();
        assert_iam_matches(&acc, &role, engine);
        assert_no_changes(&wd, "after repairing round 2");

        // The same meaning spelled another way is no change (no perpetual diff).
        block_on(async {
            iam.update_assume_role_policy()
                .role_name(&name)
                .policy_document(same_trust_respelled(AUDIENCE, &[RUNNER_ID, DEPLOYER_ID]))
                .send()
                .await
                .unwrap();
            iam.put_role_policy()
                .role_name(&name)
                .policy_name("read")
                .policy_document("{\n \"Statement\": {\"Resource\": [\"*\"], \"Action\": [\"s3:ListBucket\", \"s3:GetObject\"], \"Effect\": \"Allow\"},\n \"Version\": \"2012-10-17\"\n}")
                .send()
                .await
                .unwrap();
        });
        acc.settle();
        assert_no_changes(&wd, "equivalent documents spelled differently");
        assert_eq!(
            values(&wd)["trust_policy"],
            applied["trust_policy"],
            "[{engine}] kept our spelling"
        );

        // A role deleted out of band is planned for creation, and created again.
        delete_out_of_band(&acc, &name);
        assert_eq!(
            actions(&wd),
            vec!["create"],
            "[{engine}] deleted out of band"
        );
        wd.apply().ok();
        assert_iam_matches(&acc, &role, engine);
        wd.destroy().ok();
        assert_eq!(in_iam(&acc, &name), None, "[{engine}] destroyed");
        announce(&format!(
            "[{engine}] role drift took {:.1?}",
            started.elapsed()
        ));
    });
}

// ---------- the STS gate decides on the role Terraform made ----------

#[test]
fn role_trust_policy_admits_exactly_the_configured_identities() {
    let Some(acc) = Acc::local_only(
        "role_trust_policy_admits_exactly_the_configured_identities",
        "it mints tokens for emulated service accounts and asks the strict STS gate of the local bed",
    ) else {
        return;
    };
    let bed = the_bed(&acc);
    for_each_engine(|engine| {
        let mut role = Role::base(&acc.unique_name("gate"));
        role.ids = vec![RUNNER_ID.into(), DEPLOYER_ID.into()];
        let wd = Workdir::new(engine, &config(&acc, &role), &acc.env());
        wd.apply().ok();
        let arn = values(&wd)["arn"].as_str().unwrap().to_string();
        let assume = |email: &str, audience: &str| {
            let token = bed.mint_token(&TokenSpec::new(email, audience));
            bed.assume_role_with_web_identity(&arn, "gcpfedacc-session", &token, None)
        };
        for email in [RUNNER_EMAIL, DEPLOYER_EMAIL] {
            let ok = assume(email, AUDIENCE);
            assert_eq!(
                ok.status, 200,
                "[{engine}] {email} with the configured audience: {}",
                ok.body
            );
            assert!(
                ok.element("AccessKeyId").is_some(),
                "[{engine}] credentials: {}",
                ok.body
            );
        }
        // The workload's own path too: the metadata emulator's token.
        let token = bed.metadata_token("default", AUDIENCE);
        let ok = bed.assume_role_with_web_identity(&arn, "gcpfedacc-session", &token, None);
        assert_eq!(ok.status, 200, "[{engine}] metadata token: {}", ok.body);

        for (email, audience, why) in [
            (OUTSIDER_EMAIL, AUDIENCE, "another service account"),
            (
                RUNNER_EMAIL,
                "sts.amazonaws.com/another",
                "another audience",
            ),
        ] {
            let denied = assume(email, audience);
            assert_eq!(denied.status, 403, "[{engine}] {why}: {}", denied.body);
            assert_eq!(
                denied.error_code.as_deref(),
                Some("AccessDenied"),
                "[{engine}] {why}"
            );
            assert!(
                denied
                    .message
                    .as_deref()
                    .unwrap_or("")
                    .contains(NOT_AUTHORIZED),
                "[{engine}] {why}: {:?}",
                denied.message
            );
        }
        wd.destroy().ok();
    });
}

// ---------- IAM faults: retried when transient, reported at once otherwise ----------

/// Injects `times` answers `code` with `message` for `action` at the gate (the handle's
/// `fail_action` has no message; the propagation classifier needs IAM's real wording).
fn inject(bed: &TestBed, action: &str, code: &str, status: u16, message: &str, times: u32) {
    let body = json!({"action": action, "code": code, "status": status, "message": message, "times": times});
    let url = format!("{}/_testbed/faults/aws", bed.aws_endpoint);
    let answer = std::thread::spawn(move || {
        reqwest::blocking::Client::new()
            .post(url)
            .json(&body)
            .send()
            .map(|r| r.status())
    })
    .join()
    .expect("fault injection thread");
    assert!(
        answer.as_ref().is_ok_and(|s| s.is_success()),
        "fault injection: {answer:?}"
    );
}

fn count(bed: &TestBed, action: &str) -> (usize, usize) {
    let calls: Vec<_> = bed
        .calls()
        .into_iter()
        .filter(|c| c.action == action)
        .collect();
    (calls.len(), calls.iter().filter(|c| c.injected).count())
}

#[test]
fn role_apply_absorbs_throttling_and_propagation_and_reports_the_rest() {
    let Some(acc) = Acc::local_only(
        "role_apply_absorbs_throttling_and_propagation_and_reports_the_rest",
        "it injects IAM faults and counts calls at the local bed's gate",
    ) else {
        return;
    };
    let bed = the_bed(&acc);
    let iam = bed.iam();
    for_each_engine(|engine| {
        let started = Instant::now();
        // Throttling and a role IAM has not propagated yet: retried, the apply succeeds.
        let role = Role::base(&acc.unique_name("retry"));
        let wd = Workdir::new(engine, &config(&acc, &role), &acc.env());
        bed.clear_calls();
        bed.fail_action("CreateRole", "Throttling", 2);
        let not_found = format!("The role with name {} cannot be found.", role.name);
        inject(bed, "AttachRolePolicy", "NoSuchEntity", 404, &not_found, 2);
        inject(bed, "PutRolePolicy", "NoSuchEntity", 404, &not_found, 1);
        wd.apply().ok();
        assert_eq!(
            count(bed, "CreateRole"),
            (3, 2),
            "[{engine}] CreateRole retried after throttling"
        );
        assert_eq!(
            count(bed, "AttachRolePolicy"),
            (3, 2),
            "[{engine}] AttachRolePolicy retried while the role propagates"
        );
        assert_eq!(
            count(bed, "PutRolePolicy"),
            (2, 1),
            "[{engine}] PutRolePolicy retried while the role propagates"
        );
        assert_iam_matches(&acc, &role, engine);

        // Destroy detaches, deletes inline policies and leaves the instance profile (without
        // the role) in place.
        let profile = acc.unique_name("profile");
        block_on(async {
            iam.create_instance_profile()
                .instance_profile_name(&profile)
                .send()
                .await
                .unwrap();
            iam.add_role_to_instance_profile()
                .instance_profile_name(&profile)
                .role_name(&role.name)
                .send()
                .await
                .unwrap();
        });
        wd.destroy().ok();
        assert_eq!(in_iam(&acc, &role.name), None, "[{engine}] destroyed");
        block_on(async {
            let kept = iam
                .get_instance_profile()
                .instance_profile_name(&profile)
                .send()
                .await
                .unwrap();
            assert!(
                kept.instance_profile.unwrap().roles.is_empty(),
                "[{engine}] role removed from the profile"
            );
            iam.delete_instance_profile()
                .instance_profile_name(&profile)
                .send()
                .await
                .unwrap();
        });

        // "Invalid principal" is not a propagation delay: reported at once, nothing retried.
        let bad = Role::base(&acc.unique_name("badprincipal"));
        let wd2 = Workdir::new(engine, &config(&acc, &bad), &acc.env());
        bed.clear_calls();
        inject(
            bed,
            "CreateRole",
            "MalformedPolicyDocument",
            400,
            "Invalid principal in policy: \"FEDERATED\":\"accounts.google.com\"",
            1,
        );
        wd2.apply().fails().assert_contains(&[
            "Cannot create IAM role",
            "Invalid principal in policy",
            "audience and service_account_unique_ids",
        ]);
        assert_eq!(count(bed, "CreateRole"), (1, 1), "[{engine}] not retried");
        assert_eq!(in_iam(&acc, &bad.name), None, "[{engine}] nothing created");

        // A policy that does not exist: the role exists by then, so it stays in state (tainted)
        // rather than leaking; the error points at managed_policy_arns.
        let mut partial = Role::base(&acc.unique_name("partial"));
        partial.managed = vec![format!(
            "arn:aws:iam::{ACCOUNT_ID}:policy/gcpfedacc-does-not-exist"
        )];
        let wd3 = Workdir::new(engine, &config(&acc, &partial), &acc.env());
        wd3.apply().fails().assert_contains(&[
            "Cannot attach managed policy",
            "gcpfedacc-does-not-exist",
            "Fix the ARN in managed_policy_arns",
            "with gcpfed_role.r",
        ]);
        let state = wd3.show_json();
        let resource = &state["values"]["root_module"]["resources"][0];
        assert_eq!(
            resource["address"], ADDR,
            "[{engine}] the role is in state: {state}"
        );
        assert_eq!(
            resource["tainted"],
            json!(true),
            "[{engine}] and tainted: {state}"
        );
        assert!(
            in_iam(&acc, &partial.name).is_some(),
            "[{engine}] the role exists in IAM"
        );
        partial.managed = vec![S3RO.into()];
        wd3.write(&config(&acc, &partial));
        assert_eq!(
            actions(&wd3),
            vec!["delete", "create"],
            "[{engine}] tainted role replaced"
        );
        wd3.apply().ok();
        assert_iam_matches(&acc, &partial, engine);
        wd3.destroy().ok();
        assert_eq!(
            leftover_roles(&acc),
            Vec::<String>::new(),
            "[{engine}] roles left in IAM"
        );
        announce(&format!(
            "[{engine}] role faults took {:.1?}",
            started.elapsed()
        ));
    });
}

// ---------- invalid input ----------

type Edit = fn(&mut Role);

/// (what, edit of a valid role, the start of the main.tf line the error must point at (the
/// attribute, or the map element for a key), phrases of the fix)
fn invalid_cases() -> Vec<(&'static str, Edit, &'static str, Vec<&'static str>)> {
    vec![
        (
            "an email for a unique ID",
            |r| r.ids = vec![RUNNER_EMAIL.into()],
            "service_account_unique_ids =",
            vec![
                "Service account email given instead of its unique ID",
                "google_service_account.x.unique_id",
            ],
        ),
        (
            "a unique ID with letters",
            |r| r.ids = vec!["10485760000000000000x".into()],
            "service_account_unique_ids =",
            vec!["not all digits", "google_service_account.x.unique_id"],
        ),
        (
            "an empty service-account set",
            |r| r.ids = vec![],
            "service_account_unique_ids =",
            vec!["No service account unique ID", "at least one"],
        ),
        (
            "a 65-character name",
            |r| r.name = format!("{}{}", r.name, "n".repeat(65 - r.name.len())),
            "name =",
            vec!["Invalid role name", "65 characters", "at most 64"],
        ),
        (
            "a name with a space",
            |r| r.name = format!("{} x", r.name),
            "name =",
            vec!["Invalid role name", "[\\w+=,.@-]{1,64}"],
        ),
        (
            "a path without slashes",
            |r| r.path = Some("gcpfed".into()),
            "path =",
            vec!["Invalid role path", "must start and end with \"/\""],
        ),
        (
            "a path with a space",
            |r| r.path = Some("/a b/".into()),
            "path =",
            vec!["Invalid role path", "other than space"],
        ),
        (
            "a duration of 100",
            |r| r.max = Some("100".into()),
            "max_session_duration =",
            vec![
                "Invalid maximum session duration",
                "3600 (1 hour) to 43200 (12 hours)",
            ],
        ),
        (
            "a duration of 50000",
            |r| r.max = Some("50000".into()),
            "max_session_duration =",
            vec!["Invalid maximum session duration", "43200 (12 hours)"],
        ),
        (
            "invalid policy JSON",
            |r| r.inline = vec![("read".into(), "\"{not json\"".into())],
            "\"read\" =",
            vec!["Invalid policy document", "not valid JSON", "jsonencode"],
        ),
        (
            "a policy that is a JSON list",
            |r| r.inline = vec![("read".into(), "jsonencode([1])".into())],
            "\"read\" =",
            vec!["Invalid policy document", "not a JSON object"],
        ),
        (
            "a policy without Statement",
            |r| {
                r.inline = vec![(
                    "read".into(),
                    "jsonencode({ Version = \"2012-10-17\" })".into(),
                )]
            },
            "\"read\" =",
            vec!["Invalid policy document", "no \"Statement\""],
        ),
        (
            "an inline policy name with a space",
            |r| r.inline = vec![("read all".into(), allow(&["s3:GetObject"], "*"))],
            "\"read all\" =",
            vec!["Invalid inline policy name", "Rename the map key"],
        ),
        (
            "a malformed managed policy ARN",
            |r| r.managed = vec!["AmazonS3ReadOnlyAccess".into()],
            "managed_policy_arns =",
            vec![
                "Invalid policy ARN",
                "is not an ARN",
                "arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess",
            ],
        ),
        (
            "a role ARN as boundary",
            |r| r.boundary = Some(format!("arn:aws:iam::{ACCOUNT_ID}:role/x")),
            "permissions_boundary =",
            vec!["Invalid policy ARN", "not a policy ARN"],
        ),
        (
            "an empty audience",
            |r| r.audience = String::new(),
            "audience =",
            vec!["Empty audience", "Set audience"],
        ),
        (
            "a description of 1001 characters",
            |r| r.description = Some("d".repeat(1001)),
            "description =",
            vec!["Invalid role description", "at most 1000"],
        ),
        (
            "51 tags",
            |r| {
                r.tags = (0..51)
                    .map(|i| (format!("k{i}"), "v".to_string()))
                    .collect()
            },
            "tags =",
            vec!["Too many tags", "at most 50 tags", "Remove 1"],
        ),
        (
            "a tag key with the aws: prefix",
            |r| r.tags = vec![("aws:owner".into(), "me".into())],
            "\"aws:owner\" =",
            vec!["Invalid tag key", "reserved for AWS"],
        ),
        (
            "a tag value of 257 characters",
            |r| r.tags = vec![("team".into(), "v".repeat(257))],
            "\"team\" =",
            vec!["Invalid tag value", "at most 256"],
        ),
    ]
}

#[test]
fn role_invalid_configurations_fail_at_plan_with_path_and_fix() {
    let Some(acc) = Acc::local_only(
        "role_invalid_configurations_fail_at_plan_with_path_and_fix",
        "it asserts through the local bed's call recorder that no IAM write was attempted",
    ) else {
        return;
    };
    let bed = the_bed(&acc);
    let cases = invalid_cases();
    assert!(cases.len() >= 15);
    for_each_engine(|engine| {
        let started = Instant::now();
        let wd = Workdir::new(engine, "", &acc.env());
        bed.clear_calls();
        for (what, edit, needle, phrases) in &cases {
            let mut role = Role::base(&acc.unique_name("bad"));
            edit(&mut role);
            let main_tf = config(&acc, &role);
            wd.write(&main_tf);
            let line = main_tf
                .lines()
                .position(|l| l.trim_start().starts_with(needle))
                .unwrap_or_else(|| panic!("{needle} not in\n{main_tf}"))
                + 1;
            let run = wd.plan();
            run.fails();
            let mut expected = vec![
                "Error:".to_string(),
                "with gcpfed_role.r".to_string(),
                format!("on main.tf line {line}"),
            ];
            expected.extend(phrases.iter().map(|p| p.to_string()));
            let flat = run.combined_flat();
            for phrase in &expected {
                assert!(
                    flat.contains(&support::tf::flatten(phrase)),
                    "{}",
                    run.describe(&format!("{what}: expected {phrase:?}"))
                );
            }
        }
        assert_eq!(
            leftover_roles(&acc),
            Vec::<String>::new(),
            "[{engine}] IAM holds nothing"
        );
        let writes: Vec<String> = bed
            .calls()
            .into_iter()
            .map(|c| c.action)
            .filter(|a| !a.starts_with("Get") && !a.starts_with("List"))
            .collect();
        assert_eq!(
            writes,
            Vec::<String>::new(),
            "[{engine}] no IAM write was attempted"
        );
        announce(&format!(
            "[{engine}] {} invalid configurations took {:.1?}",
            cases.len(),
            started.elapsed()
        ));
    });
}

// ---------- how `Acc` would be built, as a pure function of the environment ----------

#[test]
fn sandbox_plan_follows_the_selection_and_carries_the_chain_to_terraform() {
    use std::time::Duration;
    use support::target::sandbox_plan;
    let env = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    // Not opted in: the bed, even with credentials in the environment.
    let keys = [
        ("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE"),
        ("AWS_SECRET_ACCESS_KEY", "example"),
    ];
    assert_eq!(sandbox_plan(&env(&keys)), Ok(None));

    let mut opted = env(&keys);
    opted.insert("GCPFED_ACC".into(), "aws".into());
    opted.insert("AWS_REGION".into(), "eu-west-3".into());
    opted.insert("HOME".into(), "/home/ci".into());
    opted.insert("GCE_METADATA_HOST".into(), "169.254.169.254".into());
    opted.insert("GCPFED_ACC_WEB_IDENTITY_TOKEN".into(), "x.y.z".into());
    opted.insert("PATH".into(), "/usr/bin".into());
    let plan = sandbox_plan(&opted)
        .expect("a valid environment")
        .expect("the sandbox");
    assert_eq!(plan.region, "eu-west-3");
    assert_eq!(plan.settle, Duration::from_secs(10));
    let vars: BTreeMap<String, String> = plan.env.iter().cloned().collect();
    for (key, value) in [
        ("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE"),
        ("AWS_SECRET_ACCESS_KEY", "example"),
        ("AWS_REGION", "eu-west-3"),
        ("AWS_CONFIG_FILE", "/home/ci/.aws/config"),
        ("AWS_SHARED_CREDENTIALS_FILE", "/home/ci/.aws/credentials"),
        ("GCE_METADATA_HOST", "169.254.169.254"),
    ] {
        assert_eq!(vars.get(key).map(String::as_str), Some(value), "{key}");
    }
    for key in [
        "PATH",
        "HOME",
        "GCPFED_ACC",
        "GCPFED_ACC_WEB_IDENTITY_TOKEN",
    ] {
        assert!(
            !vars.contains_key(key),
            "{key} must not be passed: {vars:?}"
        );
    }

    opted.insert("GCPFED_ACC_SETTLE_SECS".into(), "0".into());
    let plan = sandbox_plan(&opted).unwrap().unwrap();
    assert_eq!(plan.settle, Duration::ZERO);
    opted.insert("GCPFED_ACC_SETTLE_SECS".into(), "soon".into());
    let err = sandbox_plan(&opted).expect_err("not a number");
    assert!(err.contains("GCPFED_ACC_SETTLE_SECS"), "{err}");

    // Opted in without credentials: the selection's error, not the bed.
    let err = sandbox_plan(&env(&[("GCPFED_ACC", "aws")])).expect_err("no credentials");
    assert!(err.contains("no AWS credentials"), "{err}");
}

#[test]
fn a_local_acc_is_the_bed_and_owns_every_name_of_the_run() {
    if support::target::selection().target != support::target::Target::LocalBed {
        announce("SKIPPED a_local_acc_is_the_bed_and_owns_every_name_of_the_run: not on the local bed target");
        return;
    }
    let acc = Acc::local_only("a_local_acc_is_the_bed", "unused").expect("the local bed");
    let bed = the_bed(&acc);
    assert!(!acc.is_sandbox());
    assert_eq!(acc.account_id(), ACCOUNT_ID);
    assert_eq!(acc.region(), support::bed::REGION);
    assert_eq!(acc.provider_hcl(), bed.provider_hcl());
    assert_eq!(
        acc.env(),
        vec![("AWS_EC2_METADATA_DISABLED".to_string(), "true".to_string())]
    );
    let mine = acc.unique_name("owned");
    assert!(mine.starts_with(run_prefix()), "{mine}");
    assert!(acc.owns(&mine));
    assert!(
        acc.owns(&format!("{}other", run_prefix())),
        "the bed is this test's alone"
    );
    assert!(!acc.owns("someone-elses-role"));
    assert_eq!(acc.federation("t", AUDIENCE).map(|f| f.audience), None);
    // Its IAM is the bed's: a role made through it is seen by the helpers.
    let trust = support::trust_policy_by_hand(AUDIENCE, &[RUNNER_ID]);
    support::iam::create_role(&acc.iam(), &mine, &trust, None);
    assert_eq!(leftover_roles(&acc), vec![mine.clone()]);
    assert!(in_iam(&acc, &mine).is_some());
}
