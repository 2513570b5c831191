//! Acceptance tests of the audit of Google trusts (issue 17) on the local bed, under Terraform
//! and OpenTofu: a corpus of roles written out of band into moto, one per rule and per spelling,
//! is graded exactly as written down here by hand by the `gcpfed_google_trusts` data source and by
//! `terraform-provider-gcpfed audit`; more than 100 roles are read with one ListRoles per page
//! (counted by the bed's gate), the CLI signing with a `credential_process` profile; importing a
//! role open to any Google identity is refused with the audit's own finding text, and a bad
//! `min_severity` fails the plan on its attribute, naming the fix.

mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use serde_json::Value;
use support::bed::{block_on, TestBed, DEPLOYER_ID, REGION, RUNNER_EMAIL, RUNNER_ID};
use support::target::Acc;
use support::tf::{
    for_each_engine, for_engines, resource_values_in, Workdir, ALL_ENGINES, REQUIRED_PROVIDERS,
};
use support::{q, trust_policy_by_hand};

const AUD: &str = "sts.amazonaws.com/gcpfedacc-audit";
const CORPUS_PATH: &str = "/audit/";
const FILLERS: usize = 110;

/// The one finding of `open-oaud-only`, as the audit words it (written out by hand).
const OAUD_ONLY_MESSAGE: &str = "Statement[0]: neither accounts.google.com:aud nor \
    accounts.google.com:sub is pinned to an exact value (checking accounts.google.com:oaud alone \
    does not restrict who): any Google identity in the world can assume the role (the caller \
    chooses the audience it asks for).";

/// `{"Version":"2012-10-17","Statement":<statements>}`
fn policy(statements: &str) -> String {
    format!(r#"{{"Version":"2012-10-17","Statement":{statements}}}"#)
}

/// An Allow of the web identity action to Google with `condition` (JSON, or "" for none).
fn google_allow(condition: &str) -> String {
    let condition = if condition.is_empty() {
        String::new()
    } else {
        format!(r#","Condition":{condition}"#)
    };
    format!(
        r#"{{"Effect":"Allow","Principal":{{"Federated":"accounts.google.com"}},"Action":"sts:AssumeRoleWithWebIdentity"{condition}}}"#
    )
}

/// The expected worst severity and findings (severity, statement, key) of a Google trust.
type Want = Option<(&'static str, Vec<[&'static str; 3]>)>;

/// (role name, trust policy, expected worst severity and findings as (severity, statement, key);
/// `None`: not a Google trust, so not listed). Every grading is written by hand from the
/// issue's table.
fn corpus() -> Vec<(&'static str, String, Want)> {
    let r = RUNNER_ID;
    let d = DEPLOYER_ID;
    let safe = google_allow(&format!(
        r#"{{"StringEquals":{{"accounts.google.com:aud":"{r}","accounts.google.com:oaud":"{AUD}","accounts.google.com:sub":"{r}"}}}}"#
    ));
    let info = |s: &'static str| Some(("info", vec![["info", s, "Condition"]]));
    let crit = |key: &'static str| Some(("critical", vec![["critical", "Statement[0]", key]]));
    vec![
        (
            "safe-rendered",
            trust_policy_by_hand(AUD, &[r]),
            info("Statement[0]"),
        ),
        (
            // Statement as an object, principal and action as lists, keys and provider in
            // other letter cases, IDs as lists in different orders.
            "safe-spelled",
            policy(&format!(
                r#"{{"Effect":"Allow","Principal":{{"Federated":["Accounts.Google.com"]}},"Action":["sts:AssumeRoleWithWebIdentity"],"Condition":{{"StringEquals":{{"Accounts.Google.Com:AUD":["{r}","{d}"],"ACCOUNTS.GOOGLE.COM:oaud":"{AUD}","accounts.google.com:SUB":["{d}","{r}"]}}}}}}"#
            )),
            info("Statement[0]"),
        ),
        (
            "open-no-condition",
            policy(&format!("[{}]", google_allow(""))),
            crit("Condition"),
        ),
        (
            "open-oaud-only",
            policy(&format!(
                "[{}]",
                google_allow(&format!(
                    r#"{{"StringEquals":{{"accounts.google.com:oaud":"{AUD}"}}}}"#
                ))
            )),
            crit("accounts.google.com:aud, accounts.google.com:sub"),
        ),
        (
            "open-wildcard",
            policy(&format!(
                "[{}]",
                google_allow(&format!(
                    r#"{{"StringEquals":{{"accounts.google.com:oaud":"{AUD}"}},"StringLike":{{"accounts.google.com:sub":"1048576*"}}}}"#
                ))
            )),
            crit("accounts.google.com:sub"),
        ),
        (
            "open-if-exists",
            policy(&format!(
                "[{}]",
                google_allow(&format!(
                    r#"{{"StringEqualsIfExists":{{"accounts.google.com:aud":"{r}","accounts.google.com:oaud":"{AUD}","accounts.google.com:sub":"{r}"}}}}"#
                ))
            )),
            crit("accounts.google.com:aud"),
        ),
        (
            "open-for-all-values",
            policy(&format!(
                "[{}]",
                google_allow(&format!(
                    r#"{{"StringEquals":{{"accounts.google.com:aud":"{r}","accounts.google.com:oaud":"{AUD}"}},"ForAllValues:StringEquals":{{"accounts.google.com:sub":"{r}"}}}}"#
                ))
            )),
            crit("accounts.google.com:sub"),
        ),
        (
            "high-no-audience",
            policy(&format!(
                "[{}]",
                google_allow(&format!(
                    r#"{{"StringEquals":{{"accounts.google.com:aud":"{r}","accounts.google.com:sub":"{r}"}}}}"#
                ))
            )),
            Some((
                "high",
                vec![["high", "Statement[0]", "accounts.google.com:oaud"]],
            )),
        ),
        (
            // The principal as the ARN of an IAM OIDC provider for accounts.google.com.
            "high-oidc-provider-arn",
            policy(&format!(
                r#"[{{"Effect":"Allow","Principal":{{"Federated":"arn:aws:iam::123456789012:oidc-provider/accounts.google.com"}},"Action":"sts:AssumeRoleWithWebIdentity","Condition":{{"StringEquals":{{"accounts.google.com:aud":"{r}","accounts.google.com:sub":"{r}"}}}}}}]"#
            )),
            Some((
                "high",
                vec![["high", "Statement[0]", "accounts.google.com:oaud"]],
            )),
        ),
        (
            "medium-sub-only",
            policy(&format!(
                "[{}]",
                google_allow(&format!(
                    r#"{{"StringEquals":{{"accounts.google.com:oaud":"{AUD}","accounts.google.com:sub":"{r}"}}}}"#
                ))
            )),
            Some((
                "medium",
                vec![["medium", "Statement[0]", "accounts.google.com:aud"]],
            )),
        ),
        (
            "medium-differ",
            policy(&format!(
                "[{}]",
                google_allow(&format!(
                    r#"{{"StringEquals":{{"accounts.google.com:aud":"{r}","accounts.google.com:oaud":"{AUD}","accounts.google.com:sub":"{d}"}}}}"#
                ))
            )),
            Some((
                "medium",
                vec![["medium", "Statement[0]", "accounts.google.com:sub"]],
            )),
        ),
        (
            "medium-email-key",
            policy(&format!(
                "[{}]",
                google_allow(&format!(
                    r#"{{"StringEquals":{{"accounts.google.com:aud":"{r}","accounts.google.com:oaud":"{AUD}","accounts.google.com:sub":"{r}","accounts.google.com:email":"{RUNNER_EMAIL}"}}}}"#
                ))
            )),
            Some((
                "medium",
                vec![["medium", "Statement[0]", "accounts.google.com:email"]],
            )),
        ),
        (
            "medium-email-ids",
            policy(&format!(
                "[{}]",
                google_allow(&format!(
                    r#"{{"StringEquals":{{"accounts.google.com:aud":"{RUNNER_EMAIL}","accounts.google.com:oaud":"{AUD}","accounts.google.com:sub":"{RUNNER_EMAIL}"}}}}"#
                ))
            )),
            Some((
                "medium",
                vec![
                    ["medium", "Statement[0]", "accounts.google.com:aud"],
                    ["medium", "Statement[0]", "accounts.google.com:sub"],
                ],
            )),
        ),
        (
            "two-statements",
            policy(&format!(
                r#"[{safe},{{"Sid":"Anyone","Effect":"Allow","Principal":{{"Federated":"accounts.google.com"}},"Action":"sts:AssumeRoleWithWebIdentity"}}]"#
            )),
            Some((
                "critical",
                vec![
                    ["info", "Statement[0]", "Condition"],
                    ["critical", "Statement[1] (Sid \"Anyone\")", "Condition"],
                ],
            )),
        ),
        (
            "deny-then-open",
            policy(
                r#"[{"Effect":"Deny","Principal":{"Federated":"accounts.google.com"},"Action":"sts:AssumeRoleWithWebIdentity"},{"Effect":"Allow","Principal":{"Federated":"accounts.google.com"},"Action":"sts:*"}]"#,
            ),
            Some(("critical", vec![["critical", "Statement[1]", "Condition"]])),
        ),
        (
            "not-deny-only",
            policy(
                r#"[{"Effect":"Deny","Principal":{"Federated":"accounts.google.com"},"Action":"sts:AssumeRoleWithWebIdentity"}]"#,
            ),
            None,
        ),
        (
            "not-github",
            policy(
                r#"[{"Effect":"Allow","Principal":{"Federated":"arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com"},"Action":"sts:AssumeRoleWithWebIdentity"}]"#,
            ),
            None,
        ),
        (
            "not-service",
            policy(
                r#"[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]"#,
            ),
            None,
        ),
    ]
}

/// Roles per worst severity in the corpus, counted by hand from `corpus()`.
const CORPUS_COUNTS: [(&str, u64); 4] = [("critical", 7), ("high", 2), ("info", 2), ("medium", 4)];

type Graded = BTreeMap<String, (String, Vec<[String; 3]>)>;

/// What was expected of the corpus, in the shape [`graded`] reads.
fn expected() -> Graded {
    corpus()
        .into_iter()
        .filter_map(|(name, _, want)| {
            let (severity, findings) = want?;
            let findings = findings.iter().map(|f| f.map(str::to_owned)).collect();
            Some((name.to_owned(), (severity.to_owned(), findings)))
        })
        .collect()
}

/// `roles` (the data source's attribute or the CLI's JSON) as name -> (severity, findings).
fn graded(roles: &Value) -> Graded {
    let text = |v: &Value, k: &str| {
        v[k].as_str()
            .unwrap_or_else(|| panic!("no {k} in {v}"))
            .to_owned()
    };
    roles
        .as_array()
        .unwrap_or_else(|| panic!("roles is not a list: {roles}"))
        .iter()
        .map(|r| {
            let findings = r["findings"]
                .as_array()
                .expect("findings")
                .iter()
                .map(|f| [text(f, "severity"), text(f, "statement"), text(f, "key")])
                .collect();
            (text(r, "name"), (text(r, "severity"), findings))
        })
        .collect()
}

fn counts(value: &Value) -> BTreeMap<String, u64> {
    serde_json::from_value(value.clone()).unwrap_or_else(|e| panic!("counts {value}: {e}"))
}

fn create_role(bed: &TestBed, path: &str, name: &str, trust_policy: &str) -> String {
    let out = block_on(
        bed.iam()
            .create_role()
            .path(path)
            .role_name(name)
            .assume_role_policy_document(trust_policy)
            .send(),
    )
    .unwrap_or_else(|e| panic!("CreateRole {name}: {e:?}"));
    out.role().expect("role").arn().to_owned()
}

fn finding_message<'a>(roles: &'a Value, role: &str) -> &'a str {
    roles
        .as_array()
        .and_then(|rs| rs.iter().find(|r| r["name"] == role))
        .and_then(|r| r["findings"][0]["message"].as_str())
        .unwrap_or_else(|| panic!("no finding for {role} in {roles}"))
}

/// Runs `audit` with a cleared environment plus `env`; (exit code, stdout, stderr).
fn run_audit(args: &[&str], env: &[(String, String)], home: &Path) -> (i32, String, String) {
    let out = Command::new(support::tf::provider_binary())
        .arg("audit")
        .args(args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .output()
        .expect("run the provider binary");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn the_corpus_is_graded_exactly_by_the_data_source_and_the_cli_across_pages() {
    let Some(acc) = Acc::local_only(
        "the_corpus_is_graded_exactly_by_the_data_source_and_the_cli_across_pages",
        "it writes its corpus into the bed's moto and counts the gate's calls",
    ) else {
        return;
    };
    let bed = acc.bed().expect("local bed");
    for (name, trust, _) in corpus() {
        create_role(bed, CORPUS_PATH, name, &trust);
    }
    for i in 0..FILLERS {
        create_role(
            bed,
            "/filler/",
            &format!("filler-{i:03}"),
            &trust_policy_by_hand(AUD, &[RUNNER_ID]),
        );
    }
    let auditor_arn = create_role(
        bed,
        "/ci/",
        "ci-auditor",
        &trust_policy_by_hand(AUD, &[RUNNER_ID]),
    );
    let want = expected();
    let want_counts: BTreeMap<String, u64> = CORPUS_COUNTS
        .iter()
        .map(|(s, n)| (s.to_string(), *n))
        .collect();

    // The data source, under every engine of the matrix (Terraform 1.6 and OpenTofu 1.6
    // included: it uses no newer protocol feature): every role of the corpus graded as written
    // above, and the whole account (> 100 roles) read with one ListRoles per page.
    for_engines(&ALL_ENGINES, |engine| {
        let main_tf = format!(
            r#"{REQUIRED_PROVIDERS}
{provider}
data "gcpfed_google_trusts" "corpus" {{
  path_prefix = {corpus}
}}

data "gcpfed_google_trusts" "critical" {{
  path_prefix  = {corpus}
  min_severity = "critical"
}}
"#,
            provider = bed.provider_hcl(),
            corpus = q(CORPUS_PATH),
        );
        let wd = Workdir::new(engine, &main_tf, &[]);
        wd.apply().ok();
        let state = wd.show_json();
        let corpus = resource_values_in(&state, "data.gcpfed_google_trusts.corpus")
            .unwrap_or_else(|| panic!("[{engine}] no corpus data source in {state}"));
        assert_eq!(graded(&corpus["roles"]), want, "[{engine}] corpus grading");
        assert_eq!(counts(&corpus["counts"]), want_counts, "[{engine}] counts");
        assert_eq!(
            finding_message(&corpus["roles"], "open-oaud-only"),
            OAUD_ONLY_MESSAGE
        );
        let oaud_only = corpus["roles"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == "open-oaud-only")
            .unwrap();
        assert_eq!(oaud_only["path"], CORPUS_PATH);
        assert_eq!(
            oaud_only["arn"],
            format!("arn:aws:iam::123456789012:role{CORPUS_PATH}open-oaud-only")
        );
        assert_eq!(oaud_only["audiences"], serde_json::json!([AUD]));
        assert_eq!(oaud_only["unique_ids"], serde_json::json!([]));

        let critical = resource_values_in(&state, "data.gcpfed_google_trusts.critical")
            .unwrap_or_else(|| panic!("[{engine}] no critical data source"));
        let critical_roles = graded(&critical["roles"]);
        let mut want_critical: Graded = want
            .clone()
            .into_iter()
            .filter(|(_, (s, _))| s == "critical")
            .collect();
        // Below the minimum, findings are left out: two-statements keeps only its critical one.
        want_critical
            .get_mut("two-statements")
            .unwrap()
            .1
            .retain(|f| f[0] == "critical");
        assert_eq!(
            critical_roles, want_critical,
            "[{engine}] min_severity = critical"
        );
        assert_eq!(
            counts(&critical["counts"]),
            want_counts,
            "[{engine}] counts ignore the minimum"
        );

        // Every role of the account, across pages: one ListRoles per page of 100, no GetRole.
        let all_tf = format!(
            "{REQUIRED_PROVIDERS}\n{}\ndata \"gcpfed_google_trusts\" \"all\" {{}}\n",
            bed.provider_hcl()
        );
        let wd = Workdir::new(engine, &all_tf, &[]);
        bed.clear_calls();
        wd.apply().ok();
        let iam_calls: Vec<String> = bed
            .calls()
            .into_iter()
            .filter(|c| c.service == "iam")
            .map(|c| c.action)
            .collect();
        let all =
            resource_values_in(&wd.show_json(), "data.gcpfed_google_trusts.all").expect("all");
        let mut all_counts = want_counts.clone();
        *all_counts.get_mut("info").unwrap() += FILLERS as u64 + 1;
        assert_eq!(
            counts(&all["counts"]),
            all_counts,
            "[{engine}] every page read"
        );
        // 18 + 110 + 1 = 129 roles: two pages, read once per data source read.
        let reads = iam_calls.len() / 2;
        assert!(reads >= 1, "[{engine}] {iam_calls:?}");
        assert_eq!(
            iam_calls,
            vec!["ListRoles"; reads * 2],
            "[{engine}] IAM calls"
        );
    });

    // The CLI, signing with a credential_process profile (the runner's exchange through the
    // bed's STS gate): the same grading as JSON, exit 1 for the critical roles by default.
    let home = tempfile::tempdir().expect("temp home");
    let config = home.path().join("aws-config");
    std::fs::write(
        &config,
        format!(
            "[profile auditor]\nregion = {REGION}\ncredential_process = {bin} credential-process --role-arn {auditor_arn} --audience {AUD} --metadata-host {meta} --sts-endpoint {sts} --region {REGION} --no-cache\n",
            bin = support::tf::provider_binary().display(),
            meta = bed.metadata_host,
            sts = bed.aws_endpoint,
        ),
    )
    .expect("write AWS config");
    let env: Vec<(String, String)> = [
        ("AWS_PROFILE", "auditor"),
        ("AWS_CONFIG_FILE", config.to_str().unwrap()),
        (
            "AWS_SHARED_CREDENTIALS_FILE",
            home.path().join("none").to_str().unwrap(),
        ),
        ("AWS_ENDPOINT_URL_IAM", bed.aws_endpoint.as_str()),
        ("AWS_EC2_METADATA_DISABLED", "true"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();

    let (code, stdout, stderr) = run_audit(
        &["--path-prefix", CORPUS_PATH, "--format", "json"],
        &env,
        home.path(),
    );
    assert_eq!(
        code, 1,
        "critical roles fail by default\n{stdout}\n{stderr}"
    );
    let json: Value =
        serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}\n{stderr}"));
    assert_eq!(graded(&json["roles"]), want, "CLI grading");
    assert_eq!(counts(&json["counts"]), want_counts);
    assert_eq!(
        finding_message(&json["roles"], "open-oaud-only"),
        OAUD_ONLY_MESSAGE
    );

    let (code, stdout, _) = run_audit(&["--path-prefix", "/filler/"], &env, home.path());
    assert_eq!(code, 0, "only safe roles: exit 0\n{stdout}");
    assert!(
        stdout.ends_with("Roles by worst severity: critical: 0, high: 0, medium: 0, info: 110\n"),
        "{stdout}"
    );

    bed.clear_calls();
    let (code, stdout, stderr) = run_audit(
        &["--fail-on", "high", "--min-severity", "high"],
        &env,
        home.path(),
    );
    assert_eq!(code, 1, "{stdout}\n{stderr}");
    assert!(
        stdout.contains("Roles by worst severity: critical: 7, high: 2, medium: 4, info: 113"),
        "{stdout}"
    );
    let calls = bed.calls();
    let list_roles: Vec<_> = calls.iter().filter(|c| c.action == "ListRoles").collect();
    assert_eq!(list_roles.len(), 2, "129 roles, pages of 100: {calls:?}");
    assert!(
        calls
            .iter()
            .all(|c| c.action == "ListRoles" || c.action == "AssumeRoleWithWebIdentity"),
        "{calls:?}"
    );
    let signer = list_roles[0].access_key_id.clone();
    assert!(
        signer.is_some() && signer.as_deref() != Some("testing"),
        "signed with the exchanged credentials: {calls:?}"
    );
    assert!(list_roles.iter().all(|c| c.access_key_id == signer));

    let (code, _, stderr) = run_audit(&["--path-prefix", "audit/"], &env, home.path());
    assert_eq!(code, 2);
    assert!(
        stderr.contains("--path-prefix \"audit/\" must start with \"/\""),
        "{stderr}"
    );
}

#[test]
fn importing_an_open_role_is_refused_with_the_finding_text_and_bad_arguments_fail_the_plan() {
    let Some(acc) = Acc::local_only(
        "importing_an_open_role_is_refused_with_the_finding_text_and_bad_arguments_fail_the_plan",
        "it writes the open role into the bed's moto",
    ) else {
        return;
    };
    let bed = acc.bed().expect("local bed");
    let (_, trust, _) = corpus()
        .into_iter()
        .find(|c| c.0 == "open-oaud-only")
        .unwrap();
    create_role(bed, "/", "open-oaud-only", &trust);
    for_each_engine(|engine| {
        let main_tf = format!(
            r#"{REQUIRED_PROVIDERS}
{provider}
resource "gcpfed_role" "x" {{
  name                       = "open-oaud-only"
  audience                   = {aud}
  service_account_unique_ids = [{id}]
}}
"#,
            provider = bed.provider_hcl(),
            aud = q(AUD),
            id = q(RUNNER_ID),
        );
        let wd = Workdir::new(engine, &main_tf, &[]);
        let bad_tf = format!(
            "{REQUIRED_PROVIDERS}\n{}\ndata \"gcpfed_google_trusts\" \"t\" {{\n  path_prefix  = \"/ci\"\n  min_severity = \"severe\"\n}}\n",
            bed.provider_hcl()
        );
        let bad = Workdir::new(engine, &bad_tf, &[]);
        let run = bad.plan();
        support::assert_attribute_error(
            &run,
            &bad_tf,
            "data.gcpfed_google_trusts.t",
            "data \"gcpfed_google_trusts\" \"t\"",
            "min_severity",
            &[
                "Invalid minimum severity",
                "\"severe\" is not a severity: use one of info, medium, high, critical",
            ],
        );
        wd.import("gcpfed_role.x", "open-oaud-only").fails().assert_contains(&[
            "can be assumed by any Google identity",
            &format!("[critical] {OAUD_ONLY_MESSAGE} Fix: Replace the trust policy with provider::gcpfed::trust_policy(\"{AUD}\""),
        ]);
    });
}
