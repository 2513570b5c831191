//! `terraform-provider-gcpfed audit`: the `gcpfed_google_trusts` check from the command line,
//! for CI. AWS credentials and region come from the standard chains (`AWS_PROFILE` or
//! `--profile`, so a profile whose `credential_process` is this binary works), the IAM endpoint
//! from `--iam-endpoint`, `AWS_ENDPOINT_URL_IAM` or `AWS_ENDPOINT_URL`. Exit status: 0, or 1
//! when a finding reaches `--fail-on`, or 2 when the audit could not run.

use std::fmt::Write as _;
use std::io::Write as _;
use std::process::ExitCode;

use serde_json::{json, Value};

use super::BINARY;
use crate::clients::aws::{build_clients, resolve_region};
use crate::clients::iam_roles::{list_roles, ListedRole};
use crate::clients::settings::{self, AwsSettings, Environment, ProcessEnvironment, Service};
use crate::diag::error_chain;
use crate::trust_policy::audit::Severity;
use crate::trust_policy::audit_report::AuditReport;
use crate::validate;

pub const AUDIT: &str = "audit";

/// How the report is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// One line per finding, its fix below it, then the counts.
    Table,
    /// The data source's `roles` and `counts`, as one JSON object.
    Json,
}

#[derive(Debug, Clone, clap::Args)]
pub struct AuditArgs {
    /// IAM path prefix of the roles to read, for example /ci/ (default: every role).
    #[arg(long, value_name = "PREFIX", default_value = "/")]
    pub path_prefix: String,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Exit 1 when a finding reaches this severity: info, medium, high or critical.
    #[arg(long, value_name = "SEVERITY", default_value = "critical", value_parser = severity)]
    pub fail_on: Severity,
    /// List only roles (and findings) at or above this severity.
    #[arg(long, value_name = "SEVERITY", default_value = "info", value_parser = severity)]
    pub min_severity: Severity,
    /// AWS shared-config profile (default: AWS_PROFILE, then the default chain).
    #[arg(long)]
    pub profile: Option<String>,
    /// AWS region to sign with (IAM is global; default: AWS_REGION, AWS_DEFAULT_REGION, the
    /// profile's, then us-east-1).
    #[arg(long)]
    pub region: Option<String>,
    /// Custom IAM endpoint URL (default: AWS_ENDPOINT_URL_IAM, AWS_ENDPOINT_URL).
    #[arg(long, value_name = "URL")]
    pub iam_endpoint: Option<String>,
}

fn severity(text: &str) -> Result<Severity, String> {
    text.parse()
}

pub(super) fn run(args: &AuditArgs) -> ExitCode {
    match audit(args, &ProcessEnvironment) {
        Ok((report, text)) => {
            let mut out = std::io::stdout().lock();
            if let Err(err) = out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
                eprintln!("{BINARY} {AUDIT}: cannot write to stdout: {err}");
                return ExitCode::from(2);
            }
            exit_code(&report, args.fail_on)
        }
        Err(message) => {
            eprintln!("{BINARY} {AUDIT}: {message}");
            ExitCode::from(2)
        }
    }
}

/// 1 when any role's worst finding reaches `fail_on`, listed or not: `--min-severity` filters
/// what is read, never what CI fails on.
fn exit_code(report: &AuditReport, fail_on: Severity) -> ExitCode {
    let reached = report
        .counts
        .iter()
        .any(|(severity, roles)| *severity >= fail_on && *roles > 0);
    if reached {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

/// Lists, grades and renders; the error is the message for stderr.
pub fn audit(args: &AuditArgs, env: &dyn Environment) -> Result<(AuditReport, String), String> {
    validate::path_prefix("--path-prefix", &args.path_prefix)
        .map_err(|i| format!("{}: {}", i.summary, i.detail))?;
    let settings = AwsSettings {
        region: settings::region(args.region.as_deref(), env),
        profile: settings::profile(args.profile.as_deref(), env),
        static_credentials: None,
        iam_endpoint: settings::endpoint(Service::Iam, args.iam_endpoint.as_deref(), env),
        sts_endpoint: None,
        metadata_host: settings::metadata_host(None, env),
        iam_credentials_endpoint: settings::iam_credentials_endpoint(None, env),
        max_retries: settings::DEFAULT_MAX_RETRIES,
        assume_role_with_gcp_identity: None,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    let roles = runtime.block_on(async {
        let region = resolve_region(&settings).await;
        let clients = build_clients(&settings, region, None).await;
        list_roles(&clients.iam, &args.path_prefix).await
    });
    let roles = roles.map_err(|e| {
        format!(
            "Cannot list IAM roles\n\nThe audit reads every role with iam:ListRoles. Check the AWS \
             credentials (--profile, AWS_PROFILE, AWS_ACCESS_KEY_ID...), grant them iam:ListRoles, \
             or check --iam-endpoint.\n\n{}",
            error_chain(&e)
        )
    })?;
    let report = AuditReport::of(roles.iter().map(ListedRole::audit_input), args.min_severity);
    let text = match args.format {
        Format::Table => table(&report),
        Format::Json => format!("{:#}\n", to_json(&report)),
    };
    Ok((report, text))
}

/// The report with the data source's attribute names.
pub fn to_json(report: &AuditReport) -> Value {
    let roles: Vec<Value> = report
        .roles
        .iter()
        .map(|r| {
            let findings: Vec<Value> = r
                .findings_from(report.min_severity)
                .map(|f| {
                    json!({
                        "severity": f.severity.as_str(),
                        "statement": f.statement,
                        "key": f.key,
                        "message": f.message,
                        "fix": f.fix,
                    })
                })
                .collect();
            json!({
                "name": r.name,
                "arn": r.arn,
                "path": r.path,
                "unique_ids": r.grade.unique_ids,
                "audiences": r.grade.audiences,
                "severity": r.grade.severity().as_str(),
                "findings": findings,
            })
        })
        .collect();
    let counts: serde_json::Map<String, Value> = report
        .counts
        .iter()
        .map(|(s, n)| (s.as_str().to_owned(), json!(n)))
        .collect();
    json!({ "roles": roles, "counts": counts })
}

/// One line per finding (severity, role, statement, key, message) with its fix indented below,
/// then the number of roles per worst severity.
pub fn table(report: &AuditReport) -> String {
    let mut rows: Vec<[String; 5]> = vec![[
        "SEVERITY".into(),
        "ROLE".into(),
        "STATEMENT".into(),
        "KEY".into(),
        "FINDING".into(),
    ]];
    let mut fixes = vec![String::new()];
    for role in &report.roles {
        for f in role.findings_from(report.min_severity) {
            rows.push([
                f.severity.as_str().into(),
                role.name.clone(),
                f.statement.clone(),
                f.key.clone(),
                f.message.clone(),
            ]);
            fixes.push(f.fix.clone());
        }
    }
    let widths: Vec<usize> = (0..4)
        .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for (row, fix) in rows.iter().zip(&fixes) {
        for (cell, width) in row[..4].iter().zip(&widths) {
            let _ = write!(out, "{cell:<width$}  ");
        }
        let _ = writeln!(out, "{}", row[4]);
        if !fix.is_empty() {
            let _ = writeln!(out, "{:indent$}fix: {fix}", "", indent = widths[0] + 2);
        }
    }
    if report.roles.is_empty() {
        out.push_str("No role trusts Google identities at this severity.\n");
    }
    let counts: Vec<String> = report
        .counts
        .iter()
        .rev()
        .map(|(s, n)| format!("{s}: {n}"))
        .collect();
    let _ = writeln!(out, "\nRoles by worst severity: {}", counts.join(", "));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const HIGH: &str = r#"{"Version":"2012-10-17","Statement":{"Sid":"Ci","Effect":"Allow","Principal":{"Federated":"accounts.google.com"},"Action":"sts:AssumeRoleWithWebIdentity","Condition":{"StringEquals":{"accounts.google.com:aud":"1","accounts.google.com:sub":"1"}}}}"#;

    fn report(min: Severity) -> AuditReport {
        AuditReport::of([("ci", "arn:aws:iam::1:role/ci", "/", Some(HIGH))], min)
    }

    #[test]
    fn the_table_shows_each_finding_with_its_fix_and_the_counts() {
        let text = table(&report(Severity::Info));
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "SEVERITY  ROLE  STATEMENT                KEY                       FINDING"
        );
        assert!(lines[1].starts_with(
            "high      ci    Statement[0] (Sid \"Ci\")  accounts.google.com:oaud  Statement[0] (Sid \"Ci\"): the service account is pinned"
        ), "{}", lines[1]);
        assert!(
            lines[2].starts_with("          fix: Add accounts.google.com:oaud"),
            "{}",
            lines[2]
        );
        assert_eq!(
            lines.last().copied(),
            Some("Roles by worst severity: critical: 0, high: 1, medium: 0, info: 0")
        );
    }

    #[test]
    fn json_uses_the_data_source_names() {
        let v = to_json(&report(Severity::Info));
        assert_eq!(v["roles"][0]["name"], "ci");
        assert_eq!(v["roles"][0]["severity"], "high");
        assert_eq!(v["roles"][0]["unique_ids"], json!(["1"]));
        assert_eq!(
            v["roles"][0]["findings"][0]["key"],
            "accounts.google.com:oaud"
        );
        assert_eq!(
            v["counts"],
            json!({"critical": 0, "high": 1, "medium": 0, "info": 0})
        );
    }

    #[test]
    fn the_exit_code_follows_fail_on() {
        assert_eq!(
            exit_code(&report(Severity::Info), Severity::Critical),
            ExitCode::SUCCESS
        );
        assert_eq!(
            exit_code(&report(Severity::Info), Severity::High),
            ExitCode::from(1)
        );
        assert_eq!(
            exit_code(&report(Severity::Info), Severity::Medium),
            ExitCode::from(1)
        );
        // Left out of the listing by --min-severity, still counted for the exit status.
        assert_eq!(
            exit_code(&report(Severity::Critical), Severity::High),
            ExitCode::from(1)
        );
    }
}
