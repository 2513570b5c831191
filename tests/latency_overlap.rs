//! Issue 15, "Performance at real-world latency": a role's IAM calls overlap, proved by the bed's
//! call record and never by timing.
//!
//! The bed answers every AWS call after a latency (`/_testbed/latency`, a few hundred ms here so
//! that calls sent together are certainly in flight together) and numbers each call's arrival
//! and answer from one counter (`start_seq`, `end_seq`). From those numbers alone:
//!
//! - two calls overlapped when each arrived before the other was answered;
//! - the round trips a role waited for one after another are the longest chain of its calls in
//!   which each call arrived after the one before it was answered ([`sequential_round_trips`]).
//!
//! Real Terraform 1.15 drives the provider; the assertions are on recorded calls, the plan's
//! exit code and `show -json`, never on durations.

mod support;

use std::collections::BTreeMap;

use serde_json::json;
use support::bed::{RecordedCall, TestBed, RUNNER_ID};
use support::q;
use support::target::unique_name;
use support::tf::{Engine, Workdir, REQUIRED_PROVIDERS};

/// Long enough that calls sent together are still in flight when the last of them arrives, on a
/// loaded 2-core machine.
const LATENCY_MS: u64 = 400;
const MANAGED: &str = "arn:aws:iam::aws:policy/ReadOnlyAccess";
const MANAGED_2: &str = "arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess";

fn overlapped(a: &RecordedCall, b: &RecordedCall) -> bool {
    a.start_seq < b.end_seq && b.start_seq < a.end_seq
}

/// The longest chain of calls each of which arrived after the previous one's answer: the round
/// trips that happened one after another.
fn sequential_round_trips(calls: &[&RecordedCall]) -> usize {
    let mut by_end: Vec<&&RecordedCall> = calls.iter().collect();
    by_end.sort_by_key(|c| c.end_seq);
    // chain[i]: the longest chain ending with by_end[i].
    let mut chain = vec![1usize; by_end.len()];
    for i in 0..by_end.len() {
        for j in 0..i {
            if by_end[j].end_seq < by_end[i].start_seq {
                chain[i] = chain[i].max(chain[j] + 1);
            }
        }
    }
    chain.into_iter().max().unwrap_or(0)
}

fn role_hcl(label: &str, name: &str, managed: &[&str], inline: &[(&str, &str)]) -> String {
    let managed: Vec<String> = managed.iter().map(|a| q(a)).collect();
    let inline: String = inline
        .iter()
        .map(|(policy, bucket)| {
            format!(
                "    {policy} = jsonencode({{ Version = \"2012-10-17\", Statement = [{{ Effect = \"Allow\", Action = [\"s3:GetObject\"], Resource = \"arn:aws:s3:::{bucket}/*\" }}] }})\n"
            )
        })
        .collect();
    format!(
        r#"resource "gcpfed_role" "{label}" {{
  name                       = {name}
  audience                   = "sts.amazonaws.com/gcpfedacc-latency"
  service_account_unique_ids = [{RUNNER_ID:?}]
  managed_policy_arns        = [{managed}]
  inline_policies = {{
{inline}  }}
}}
"#,
        name = q(name),
        managed = managed.join(", "),
    )
}

fn config(bed: &TestBed, roles: &[String]) -> String {
    format!(
        "{REQUIRED_PROVIDERS}{}{}",
        bed.provider_hcl(),
        roles.concat()
    )
}

/// The recorded IAM calls about `role`, and how many of each action.
fn calls_about<'c>(
    calls: &'c [RecordedCall],
    role: &str,
) -> (Vec<&'c RecordedCall>, BTreeMap<String, usize>) {
    let mine: Vec<&RecordedCall> = calls
        .iter()
        .filter(|c| c.service == "iam" && c.role_name.as_deref() == Some(role))
        .collect();
    let mut counts = BTreeMap::new();
    for c in &mine {
        *counts.entry(c.action.clone()).or_insert(0) += 1;
    }
    (mine, counts)
}

fn of<'c>(calls: &[&'c RecordedCall], action: &str) -> Vec<&'c RecordedCall> {
    calls
        .iter()
        .copied()
        .filter(|c| c.action == action)
        .collect()
}

fn assert_all_overlap(calls: &[&RecordedCall], what: &str) {
    for (i, a) in calls.iter().enumerate() {
        for b in &calls[i + 1..] {
            assert!(
                overlapped(a, b),
                "{what}: {} [{}..{}] and {} [{}..{}] were not in flight together",
                a.action,
                a.start_seq,
                a.end_seq,
                b.action,
                b.start_seq,
                b.end_seq
            );
        }
    }
}

fn counts(pairs: &[(&str, usize)]) -> BTreeMap<String, usize> {
    pairs.iter().map(|(a, n)| (a.to_string(), *n)).collect()
}

#[test]
fn the_analysis_tells_sequential_calls_from_overlapping_ones() {
    let call = |start_seq, end_seq| RecordedCall {
        service: "iam".into(),
        action: "GetRole".into(),
        access_key_id: None,
        status: 200,
        error_code: None,
        role_arn: None,
        session_name: None,
        duration_seconds: None,
        injected: false,
        region: None,
        method: String::new(),
        path: String::new(),
        host: None,
        role_name: None,
        start_seq,
        end_seq,
    };
    // One after another: 1-2, 3-4, 5-6, 7-8 (today's refresh before this issue).
    let one_by_one = [call(1, 2), call(3, 4), call(5, 6), call(7, 8)];
    assert_eq!(
        sequential_round_trips(&one_by_one.iter().collect::<Vec<_>>()),
        4
    );
    assert!(!overlapped(&one_by_one[0], &one_by_one[1]));
    // Three together (1..6), then one after all of them.
    let waves = [call(1, 4), call(2, 5), call(3, 6), call(7, 8)];
    assert_eq!(sequential_round_trips(&waves.iter().collect::<Vec<_>>()), 2);
    assert!(overlapped(&waves[0], &waves[2]));
    // A chain hidden among overlaps: 1-2, then 3-6 beside 4-5, then 7-8 after 4-5 only.
    let mixed = [call(1, 2), call(3, 9), call(4, 5), call(7, 8)];
    assert_eq!(sequential_round_trips(&mixed.iter().collect::<Vec<_>>()), 3);
}

#[test]
fn refresh_reads_each_role_in_two_waves_with_the_same_calls() {
    let bed = TestBed::start();
    let names = [unique_name("lat-read-a"), unique_name("lat-read-b")];
    let inline = [("read_a", "bucket-a"), ("read_b", "bucket-b")];
    let roles: Vec<String> = names
        .iter()
        .enumerate()
        .map(|(i, n)| role_hcl(&format!("r{i}"), n, &[MANAGED], &inline))
        .collect();
    let wd = Workdir::new(Engine::Terraform, &config(&bed, &roles), &[]);
    wd.apply().ok();

    bed.set_latency(LATENCY_MS, 0);
    bed.clear_calls();
    assert_eq!(
        wd.plan_exitcode(),
        0,
        "a plan after apply must be empty at any latency"
    );
    let calls = bed.calls();
    for name in &names {
        let (mine, seen) = calls_about(&calls, name);
        assert_eq!(
            seen,
            counts(&[
                ("GetRole", 1),
                ("GetRolePolicy", 2),
                ("ListAttachedRolePolicies", 1),
                ("ListRolePolicies", 1),
            ]),
            "{name}: a refresh makes the same IAM calls as before, no more"
        );
        let first_wave: Vec<&RecordedCall> =
            ["GetRole", "ListAttachedRolePolicies", "ListRolePolicies"]
                .iter()
                .flat_map(|a| of(&mine, a))
                .collect();
        assert_all_overlap(&first_wave, &format!("{name}, first wave"));
        let documents = of(&mine, "GetRolePolicy");
        assert_all_overlap(&documents, &format!("{name}, inline documents"));
        assert_eq!(
            sequential_round_trips(&mine),
            2,
            "{name}: refresh took more than 2 waves: {mine:?}"
        );
    }

    // `plan -refresh=false` (the docs' advice for large role sets) reads nothing from IAM.
    bed.clear_calls();
    let quick = wd.run(&[
        "plan",
        "-refresh=false",
        "-input=false",
        "-no-color",
        "-detailed-exitcode",
    ]);
    assert_eq!(quick.status, 0, "{}", quick.describe("plan -refresh=false"));
    let iam: Vec<RecordedCall> = bed
        .calls()
        .into_iter()
        .filter(|c| c.service == "iam")
        .collect();
    assert!(iam.is_empty(), "plan -refresh=false called IAM: {iam:?}");

    // A failure of one concurrent read still reads as before: the plan fails naming the call.
    bed.set_latency(0, 0);
    bed.fail_action("GetRolePolicy", "AccessDenied", 4);
    wd.plan()
        .fails()
        .assert_contains(&["Cannot read IAM role", "GetRolePolicy", "AccessDenied"]);
}

#[test]
fn create_and_update_write_independent_policies_together_after_the_role() {
    let bed = TestBed::start();
    bed.set_latency(LATENCY_MS, 0);
    let name = unique_name("lat-write");
    let before = [("keep", "bucket-keep"), ("drop", "bucket-drop")];
    let wd = Workdir::new(
        Engine::Terraform,
        &config(&bed, &[role_hcl("r", &name, &[MANAGED], &before)]),
        &[],
    );
    bed.clear_calls();
    wd.apply().ok();
    let calls = bed.calls();
    let (mine, seen) = calls_about(&calls, &name);
    assert_eq!(seen["CreateRole"], 1, "{seen:?}");
    let create = of(&mine, "CreateRole")[0];
    let policies: Vec<&RecordedCall> = ["AttachRolePolicy", "PutRolePolicy"]
        .iter()
        .flat_map(|a| of(&mine, a))
        .collect();
    assert_eq!(policies.len(), 3, "1 attach + 2 puts: {mine:?}");
    for p in &policies {
        assert!(
            p.start_seq > create.end_seq,
            "{} was sent before CreateRole was answered: IAM needs the role first",
            p.action
        );
    }
    assert_all_overlap(&policies, "create's policy writes");
    let writes: Vec<&RecordedCall> = mine
        .iter()
        .copied()
        .filter(|c| !c.action.starts_with("Get") && !c.action.starts_with("List"))
        .collect();
    assert_eq!(sequential_round_trips(&writes), 2, "{writes:?}");

    // Update: a description, a new managed policy and a changed inline policy go out together;
    // the removals (one managed, one inline) only after all of them were answered.
    let after = [("keep", "bucket-keep-2")];
    let updated = role_hcl("r", &name, &[MANAGED_2], &after)
        .replace("  audience", "  description = \"changed\"\n  audience");
    wd.write(&config(&bed, &[updated]));
    bed.clear_calls();
    wd.apply().ok();
    let calls = bed.calls();
    let (mine, _) = calls_about(&calls, &name);
    let additions: Vec<&RecordedCall> = ["UpdateRole", "AttachRolePolicy", "PutRolePolicy"]
        .iter()
        .flat_map(|a| of(&mine, a))
        .collect();
    let removals: Vec<&RecordedCall> = ["DetachRolePolicy", "DeleteRolePolicy"]
        .iter()
        .flat_map(|a| of(&mine, a))
        .collect();
    assert_eq!((additions.len(), removals.len()), (3, 2), "{mine:?}");
    assert_all_overlap(&additions, "update's additions");
    assert_all_overlap(&removals, "update's removals");
    for r in &removals {
        for a in &additions {
            assert!(
                r.start_seq > a.end_seq,
                "{} was sent before {} was answered: a failure could leave the role with less \
                 than before and after",
                r.action,
                a.action
            );
        }
    }

    // One concurrent write failing: the role stays in state (tainted), the error names the call.
    bed.set_latency(0, 0);
    let broken = unique_name("lat-broken");
    let wd2 = Workdir::new(
        Engine::Terraform,
        &config(&bed, &[role_hcl("r", &broken, &[MANAGED], &before)]),
        &[],
    );
    bed.fail_action("PutRolePolicy", "MalformedPolicyDocument", 1);
    wd2.apply()
        .fails()
        .assert_contains(&["Cannot put inline policy", "MalformedPolicyDocument"]);
    let state = wd2.show_json();
    let resource = &state["values"]["root_module"]["resources"][0];
    assert_eq!(resource["address"], json!("gcpfed_role.r"), "{state}");
    assert_eq!(resource["tainted"], json!(true), "{state}");
    wd2.destroy().ok();
    wd.destroy().ok();
}
