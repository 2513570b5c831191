//! Integration tests of the local test bed: the strict STS gate in front of moto, the GCE
//! metadata emulator, the call recorder, fault injection and the bed's lifecycle.
//! Each test starts its own bed.

mod support;

use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{json, Value};
use support::bed::*;

const AUD: &str = "https://gcpfed.test/ci";

fn statement(effect: &str, condition: Value) -> Value {
    json!({
        "Effect": effect,
        "Principal": {"Federated": "accounts.google.com"},
        "Action": "sts:AssumeRoleWithWebIdentity",
        "Condition": condition,
    })
}

fn policy(statements: Vec<Value>) -> String {
    json!({"Version": "2012-10-17", "Statement": statements}).to_string()
}

/// The shape the provider renders: all three conditions, one service account.
fn exact_policy(unique_id: &str, audience: &str) -> String {
    policy(vec![statement(
        "Allow",
        json!({"StringEquals": {
            "accounts.google.com:aud": unique_id,
            "accounts.google.com:oaud": audience,
            "accounts.google.com:sub": unique_id,
        }}),
    )])
}

fn create_role(bed: &TestBed, name: &str, trust_policy: &str, max_session: Option<i32>) -> String {
    let iam = bed.iam();
    let output = block_on(async {
        let mut request = iam
            .create_role()
            .role_name(name)
            .assume_role_policy_document(trust_policy);
        if let Some(max) = max_session {
            request = request.max_session_duration(max);
        }
        request.send().await
    })
    .unwrap_or_else(|e| panic!("CreateRole {name} on moto: {e:?}"));
    output.role().expect("created role").arn().to_owned()
}

fn role_arn(name: &str) -> String {
    format!("arn:aws:iam::{ACCOUNT_ID}:role/{name}")
}

#[track_caller]
fn assert_allowed(answer: &StsAnswer) {
    assert_eq!(
        answer.status, 200,
        "expected success, got {:?}: {:?}",
        answer.error_code, answer.message
    );
    assert!(answer.element("AccessKeyId").is_some(), "{}", answer.body);
}

#[track_caller]
fn assert_refused(answer: &StsAnswer, status: u16, code: &str) {
    assert_eq!(
        (answer.status, answer.error_code.as_deref()),
        (status, Some(code)),
        "body: {}",
        answer.body
    );
    assert!(
        answer
            .body
            .contains(r#"<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">"#),
        "STS error shape: {}",
        answer.body
    );
    assert_eq!(answer.element("Type").as_deref(), Some("Sender"));
    assert!(answer.element("RequestId").is_some_and(|id| !id.is_empty()));
}

#[track_caller]
fn assert_access_denied(answer: &StsAnswer) {
    assert_refused(answer, 403, "AccessDenied");
    assert_eq!(answer.message.as_deref(), Some(NOT_AUTHORIZED));
}

// ---------------------------------------------------------------------------------------
// STS gate: the allowed path

#[test]
fn sts_gate_allows_matching_request_and_returns_motos_credentials() {
    let bed = TestBed::start();
    let arn = create_role(&bed, "gcpfed-allow", &exact_policy(RUNNER_ID, AUD), None);
    assert_eq!(arn, role_arn("gcpfed-allow"));
    let token = bed.metadata_token("default", AUD);

    let answer = bed.assume_role_with_web_identity(&arn, "ci-run-1", &token, Some(3600));

    assert_allowed(&answer);
    assert!(answer.element("AccessKeyId").unwrap().starts_with("ASIA"));
    assert!(answer
        .element("SecretAccessKey")
        .is_some_and(|s| !s.is_empty()));
    assert!(answer
        .element("SessionToken")
        .is_some_and(|s| !s.is_empty()));
    assert!(answer.element("Expiration").is_some());
    assert_eq!(
        answer.element("Arn").as_deref(),
        Some(format!("arn:aws:sts::{ACCOUNT_ID}:assumed-role/gcpfed-allow/ci-run-1").as_str())
    );

    let calls = bed.calls();
    let call = calls.last().expect("the call was recorded");
    assert_eq!(call.service, "sts");
    assert_eq!(call.action, "AssumeRoleWithWebIdentity");
    assert_eq!(call.access_key_id, None);
    assert_eq!(call.status, 200);
    assert_eq!(call.error_code, None);
    assert_eq!(call.role_arn.as_deref(), Some(arn.as_str()));
    assert_eq!(call.session_name.as_deref(), Some("ci-run-1"));
    assert_eq!(call.duration_seconds.as_deref(), Some("3600"));
    assert!(!call.injected);
    assert!(
        !format!("{calls:?}").contains(&token),
        "the recorder must not keep tokens"
    );
}

#[test]
fn sts_gate_allows_email_condition_and_issuer_without_scheme() {
    let bed = TestBed::start();
    let trust = policy(vec![statement(
        "Allow",
        json!({"StringEquals": {
            "accounts.google.com:email": DEPLOYER_EMAIL,
            "accounts.google.com:oaud": AUD,
        }}),
    )]);
    let arn = create_role(&bed, "gcpfed-email", &trust, None);

    let token = bed.mint_token(&TokenSpec {
        issuer: Some("accounts.google.com".into()),
        ..TokenSpec::new(DEPLOYER_EMAIL, AUD)
    });
    assert_allowed(&bed.assume_role_with_web_identity(&arn, "deployer", &token, None));

    let runner = bed.mint_token(&TokenSpec::new(RUNNER_EMAIL, AUD));
    assert_access_denied(&bed.assume_role_with_web_identity(&arn, "runner", &runner, None));
}

// ---------------------------------------------------------------------------------------
// STS gate: the token

#[test]
fn sts_gate_denies_token_signed_by_unknown_key() {
    let bed = TestBed::start();
    let arn = create_role(&bed, "gcpfed-key", &exact_policy(RUNNER_ID, AUD), None);
    let token = bed.mint_token(&TokenSpec {
        unknown_key: true,
        ..TokenSpec::new(RUNNER_EMAIL, AUD)
    });
    assert_refused(
        &bed.assume_role_with_web_identity(&arn, "s1", &token, None),
        400,
        "InvalidIdentityToken",
    );
}

#[test]
fn sts_gate_denies_token_whose_claims_were_altered_after_signing() {
    let bed = TestBed::start();
    let arn = create_role(&bed, "gcpfed-tamper", &exact_policy(RUNNER_ID, AUD), None);
    let outsider = bed.mint_token(&TokenSpec::new(OUTSIDER_EMAIL, AUD));
    let runner_claims = jwt_claims(&bed.mint_token(&TokenSpec::new(RUNNER_EMAIL, AUD)));
    let parts: Vec<&str> = outsider.split('.').collect();
    let forged_payload = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(serde_json::to_vec(&runner_claims).unwrap());
    let forged = format!("{}.{}.{}", parts[0], forged_payload, parts[2]);

    assert_refused(
        &bed.assume_role_with_web_identity(&arn, "s1", &forged, None),
        400,
        "InvalidIdentityToken",
    );
    assert_refused(
        &bed.assume_role_with_web_identity(&arn, "s1", "not-a-jwt", None),
        400,
        "InvalidIdentityToken",
    );
}

#[test]
fn sts_gate_denies_expired_token() {
    let bed = TestBed::start();
    let arn = create_role(&bed, "gcpfed-expired", &exact_policy(RUNNER_ID, AUD), None);
    let token = bed.mint_token(&TokenSpec {
        expires_in: -60,
        ..TokenSpec::new(RUNNER_EMAIL, AUD)
    });
    let answer = bed.assume_role_with_web_identity(&arn, "s1", &token, None);
    assert_refused(&answer, 400, "ExpiredTokenException");
    assert!(answer
        .message
        .unwrap()
        .starts_with("Token expired: current date/time"));
}

#[test]
fn sts_gate_denies_wrong_issuer() {
    let bed = TestBed::start();
    let arn = create_role(&bed, "gcpfed-iss", &exact_policy(RUNNER_ID, AUD), None);
    let token = bed.mint_token(&TokenSpec {
        issuer: Some("https://token.actions.githubusercontent.com".into()),
        ..TokenSpec::new(RUNNER_EMAIL, AUD)
    });
    assert_refused(
        &bed.assume_role_with_web_identity(&arn, "s1", &token, None),
        400,
        "InvalidIdentityToken",
    );
}

// ---------------------------------------------------------------------------------------
// STS gate: the trust policy, with the claim mapping of INTERFACE.md

#[test]
fn sts_gate_denies_wrong_sub() {
    let bed = TestBed::start();
    let arn = create_role(&bed, "gcpfed-sub", &exact_policy(RUNNER_ID, AUD), None);
    let token = bed.mint_token(&TokenSpec {
        sub: Some(OUTSIDER_ID.into()),
        ..TokenSpec::new(RUNNER_EMAIL, AUD)
    });
    assert_access_denied(&bed.assume_role_with_web_identity(&arn, "s1", &token, None));
}

#[test]
fn sts_gate_denies_wrong_oaud() {
    let bed = TestBed::start();
    let arn = create_role(&bed, "gcpfed-oaud", &exact_policy(RUNNER_ID, AUD), None);
    let token = bed.metadata_token("default", "https://gcpfed.test/other");
    assert_access_denied(&bed.assume_role_with_web_identity(&arn, "s1", &token, None));
}

#[test]
fn sts_gate_denies_wrong_azp() {
    let bed = TestBed::start();
    let arn = create_role(&bed, "gcpfed-azp", &exact_policy(RUNNER_ID, AUD), None);
    let token = bed.mint_token(&TokenSpec {
        azp: Some(DEPLOYER_ID.into()),
        ..TokenSpec::new(RUNNER_EMAIL, AUD)
    });
    assert_access_denied(&bed.assume_role_with_web_identity(&arn, "s1", &token, None));
}

#[test]
fn sts_gate_maps_aud_key_to_azp_claim_not_to_token_audience() {
    // A policy written with the naive mapping (aud key = the requested audience) must not
    // let anyone in: accounts.google.com:aud is compared with azp.
    let bed = TestBed::start();
    let naive = policy(vec![statement(
        "Allow",
        json!({"StringEquals": {
            "accounts.google.com:aud": AUD,
            "accounts.google.com:sub": RUNNER_ID,
        }}),
    )]);
    let arn = create_role(&bed, "gcpfed-naive", &naive, None);
    let token = bed.metadata_token("default", AUD);
    assert_access_denied(&bed.assume_role_with_web_identity(&arn, "s1", &token, None));
}

#[test]
fn sts_gate_denies_another_service_account() {
    let bed = TestBed::start();
    let arn = create_role(&bed, "gcpfed-other", &exact_policy(RUNNER_ID, AUD), None);
    let token = bed.metadata_token(OUTSIDER_EMAIL, AUD);
    assert_access_denied(&bed.assume_role_with_web_identity(&arn, "s1", &token, None));
}

#[test]
fn sts_gate_denies_missing_role() {
    let bed = TestBed::start();
    let token = bed.metadata_token("default", AUD);
    let answer = bed.assume_role_with_web_identity(&role_arn("gcpfed-nowhere"), "s1", &token, None);
    assert_access_denied(&answer);
    let other_account = "arn:aws:iam::210987654321:role/gcpfed-allow";
    assert_access_denied(&bed.assume_role_with_web_identity(other_account, "s1", &token, None));
}

#[test]
fn sts_gate_string_like_wildcards() {
    let bed = TestBed::start();
    let trust = policy(vec![statement(
        "Allow",
        json!({
            "StringEquals": {"accounts.google.com:aud": [RUNNER_ID, DEPLOYER_ID]},
            "StringLike": {
                "accounts.google.com:oaud": "https://gcpfed.test/*",
                "accounts.google.com:sub": "10485760000000000000?",
            },
        }),
    )]);
    let arn = create_role(&bed, "gcpfed-like", &trust, None);

    for (account, audience) in [
        ("default", "https://gcpfed.test/ci"),
        (DEPLOYER_EMAIL, "https://gcpfed.test/deploy/prod"),
    ] {
        let token = bed.metadata_token(account, audience);
        assert_allowed(&bed.assume_role_with_web_identity(&arn, "s1", &token, None));
    }
    let wrong_audience = bed.metadata_token("default", "https://other.test/ci");
    assert_access_denied(&bed.assume_role_with_web_identity(&arn, "s1", &wrong_audience, None));
    // `?` is exactly one character: a 22-digit sub does not match.
    let long_sub = bed.mint_token(&TokenSpec {
        sub: Some(format!("{RUNNER_ID}0")),
        ..TokenSpec::new(RUNNER_EMAIL, AUD)
    });
    assert_access_denied(&bed.assume_role_with_web_identity(&arn, "s1", &long_sub, None));
}

#[test]
fn sts_gate_list_valued_conditions_are_any_of() {
    let bed = TestBed::start();
    let trust = policy(vec![statement(
        "Allow",
        json!({"StringEquals": {
            "accounts.google.com:aud": [DEPLOYER_ID, RUNNER_ID],
            "accounts.google.com:oaud": ["https://gcpfed.test/a", AUD],
            "accounts.google.com:sub": [DEPLOYER_ID, RUNNER_ID],
        }}),
    )]);
    let arn = create_role(&bed, "gcpfed-list", &trust, None);

    for account in ["default", DEPLOYER_EMAIL] {
        let token = bed.metadata_token(account, AUD);
        assert_allowed(&bed.assume_role_with_web_identity(&arn, "s1", &token, None));
    }
    let other_audience = bed.metadata_token(DEPLOYER_EMAIL, "https://gcpfed.test/a");
    assert_allowed(&bed.assume_role_with_web_identity(&arn, "s1", &other_audience, None));
    let outsider = bed.metadata_token(OUTSIDER_EMAIL, AUD);
    assert_access_denied(&bed.assume_role_with_web_identity(&arn, "s1", &outsider, None));
}

#[test]
fn sts_gate_explicit_deny_wins() {
    let bed = TestBed::start();
    let trust = policy(vec![
        statement(
            "Allow",
            json!({"StringEquals": {"accounts.google.com:sub": [RUNNER_ID, DEPLOYER_ID]}}),
        ),
        statement(
            "Deny",
            json!({"StringEquals": {"accounts.google.com:sub": DEPLOYER_ID}}),
        ),
    ]);
    let arn = create_role(&bed, "gcpfed-deny", &trust, None);
    let runner = bed.metadata_token("default", AUD);
    assert_allowed(&bed.assume_role_with_web_identity(&arn, "s1", &runner, None));
    let deployer = bed.metadata_token(DEPLOYER_EMAIL, AUD);
    assert_access_denied(&bed.assume_role_with_web_identity(&arn, "s1", &deployer, None));
}

#[test]
fn sts_gate_fails_closed_on_what_it_cannot_evaluate() {
    let bed = TestBed::start();
    let token = bed.metadata_token("default", AUD);

    // An Allow with an unsupported operator does not allow.
    let unsupported_allow = policy(vec![statement(
        "Allow",
        json!({"StringNotEquals": {"accounts.google.com:sub": OUTSIDER_ID}}),
    )]);
    let arn = create_role(&bed, "gcpfed-op", &unsupported_allow, None);
    assert_access_denied(&bed.assume_role_with_web_identity(&arn, "s1", &token, None));

    // A Deny with an unsupported operator denies, even next to a matching Allow.
    let exact: Value = serde_json::from_str(&exact_policy(RUNNER_ID, AUD)).unwrap();
    let unsupported_deny = policy(vec![
        exact["Statement"][0].clone(),
        statement(
            "Deny",
            json!({"DateGreaterThan": {"aws:CurrentTime": "2020-01-01T00:00:00Z"}}),
        ),
    ]);
    let arn = create_role(&bed, "gcpfed-deny-op", &unsupported_deny, None);
    assert_access_denied(&bed.assume_role_with_web_identity(&arn, "s1", &token, None));

    // A condition on a key with no claim behind it fails.
    let absent = policy(vec![statement(
        "Allow",
        json!({"StringLike": {"accounts.google.com:amr": "*"}}),
    )]);
    let arn = create_role(&bed, "gcpfed-absent", &absent, None);
    assert_access_denied(&bed.assume_role_with_web_identity(&arn, "s1", &token, None));

    // Another federated principal does not match.
    let github = json!({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow",
        "Principal": {"Federated": "arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com"},
        "Action": "sts:AssumeRoleWithWebIdentity",
    }]})
    .to_string();
    let arn = create_role(&bed, "gcpfed-github", &github, None);
    assert_access_denied(&bed.assume_role_with_web_identity(&arn, "s1", &token, None));
}

#[test]
fn sts_gate_accepts_action_and_principal_lists_and_wildcards() {
    let bed = TestBed::start();
    let trust = json!({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow",
        "Principal": {"Federated": ["cognito-identity.amazonaws.com", "accounts.google.com"]},
        "Action": ["sts:TagSession", "sts:*"],
        "Condition": {"StringEquals": {"accounts.google.com:sub": RUNNER_ID}},
    }]})
    .to_string();
    let arn = create_role(&bed, "gcpfed-lists", &trust, None);
    let token = bed.metadata_token("default", AUD);
    assert_allowed(&bed.assume_role_with_web_identity(&arn, "s1", &token, None));
}

// ---------------------------------------------------------------------------------------
// STS gate: parameters

#[test]
fn sts_gate_denies_duration_above_role_maximum() {
    let bed = TestBed::start();
    let arn = create_role(
        &bed,
        "gcpfed-dur",
        &exact_policy(RUNNER_ID, AUD),
        Some(7200),
    );
    let token = bed.metadata_token("default", AUD);

    assert_allowed(&bed.assume_role_with_web_identity(&arn, "s1", &token, Some(7200)));
    let answer = bed.assume_role_with_web_identity(&arn, "s1", &token, Some(7201));
    assert_refused(&answer, 400, "ValidationError");
    assert_eq!(
        answer.message.as_deref(),
        Some("The requested DurationSeconds exceeds the MaxSessionDuration set for this role.")
    );

    let answer = bed.assume_role_with_web_identity(&arn, "s1", &token, Some(43201));
    assert_refused(&answer, 400, "ValidationError");
    assert_eq!(
        answer.message.as_deref(),
        Some(
            "1 validation error detected: Value '43201' at 'durationSeconds' failed to satisfy \
             constraint: Member must have value less than or equal to 43200"
        )
    );
    let answer = bed.assume_role_with_web_identity(&arn, "s1", &token, Some(899));
    assert_refused(&answer, 400, "ValidationError");
    assert!(answer
        .message
        .unwrap()
        .ends_with("Member must have value greater than or equal to 900"));
}

#[test]
fn sts_gate_default_duration_is_checked_against_role_maximum() {
    // Moto's roles default to 3600: the implicit 3600 fits, and the bed says so.
    let bed = TestBed::start();
    let arn = create_role(
        &bed,
        "gcpfed-dur-default",
        &exact_policy(RUNNER_ID, AUD),
        None,
    );
    let token = bed.metadata_token("default", AUD);
    assert_allowed(&bed.assume_role_with_web_identity(&arn, "s1", &token, None));
    assert_refused(
        &bed.assume_role_with_web_identity(&arn, "s1", &token, Some(3601)),
        400,
        "ValidationError",
    );
}

#[test]
fn sts_gate_denies_invalid_session_names() {
    let bed = TestBed::start();
    let arn = create_role(&bed, "gcpfed-session", &exact_policy(RUNNER_ID, AUD), None);
    let token = bed.metadata_token("default", AUD);

    let answer = bed.assume_role_with_web_identity(&arn, "bad name!", &token, None);
    assert_refused(&answer, 400, "ValidationError");
    assert_eq!(
        answer.message.as_deref(),
        Some(
            r"1 validation error detected: Value 'bad name!' at 'roleSessionName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\w+=,.@-]*"
        )
    );

    let answer = bed.assume_role_with_web_identity(&arn, "a", &token, None);
    assert_refused(&answer, 400, "ValidationError");
    assert_eq!(
        answer.message.as_deref(),
        Some(
            "1 validation error detected: Value 'a' at 'roleSessionName' failed to satisfy constraint: Member must have length greater than or equal to 2"
        )
    );

    let long = "x".repeat(65);
    let answer = bed.assume_role_with_web_identity(&arn, &long, &token, None);
    assert_refused(&answer, 400, "ValidationError");
    assert!(answer
        .message
        .unwrap()
        .ends_with("Member must have length less than or equal to 64"));

    // Both rules broken at once: two errors, as the service model reports them.
    let answer = bed.assume_role_with_web_identity(&arn, "!", &token, None);
    assert_refused(&answer, 400, "ValidationError");
    assert!(answer
        .message
        .unwrap()
        .starts_with("2 validation errors detected: "));

    // Unicode letters are not \w for STS.
    let answer = bed.assume_role_with_web_identity(&arn, "sessión", &token, None);
    assert_refused(&answer, 400, "ValidationError");

    let edge = format!("{}@b.c=d,e+f-g_h", "a".repeat(50));
    assert_eq!(edge.len(), 64);
    assert_allowed(&bed.assume_role_with_web_identity(&arn, &edge, &token, None));
}

// ---------------------------------------------------------------------------------------
// STS gate: fault injection

#[test]
fn sts_gate_throttles_twice_then_succeeds() {
    let bed = TestBed::start();
    let arn = create_role(&bed, "gcpfed-throttle", &exact_policy(RUNNER_ID, AUD), None);
    let token = bed.metadata_token("default", AUD);
    bed.clear_calls();
    bed.fail_sts("Throttling", 2);

    for _ in 0..2 {
        let answer = bed.assume_role_with_web_identity(&arn, "s1", &token, None);
        assert_refused(&answer, 400, "Throttling");
        assert_eq!(answer.message.as_deref(), Some("Rate exceeded"));
    }
    assert_allowed(&bed.assume_role_with_web_identity(&arn, "s1", &token, None));

    let calls = bed.calls();
    let summary: Vec<(u16, Option<&str>, bool)> = calls
        .iter()
        .map(|c| (c.status, c.error_code.as_deref(), c.injected))
        .collect();
    assert_eq!(
        summary,
        vec![
            (400, Some("Throttling"), true),
            (400, Some("Throttling"), true),
            (200, None, false)
        ]
    );
}

#[test]
fn sts_gate_injects_idp_communication_error_and_transient_invalid_token() {
    let bed = TestBed::start();
    let arn = create_role(&bed, "gcpfed-idp", &exact_policy(RUNNER_ID, AUD), None);
    let token = bed.metadata_token("default", AUD);

    bed.fail_sts("IDPCommunicationError", 1);
    assert_refused(
        &bed.assume_role_with_web_identity(&arn, "s1", &token, None),
        400,
        "IDPCommunicationError",
    );
    bed.fail_sts("InvalidIdentityToken", 1);
    let answer = bed.assume_role_with_web_identity(&arn, "s1", &token, None);
    assert_refused(&answer, 400, "InvalidIdentityToken");
    assert!(answer
        .message
        .unwrap()
        .starts_with("Couldn't retrieve verification key from your identity provider"));
    assert_allowed(&bed.assume_role_with_web_identity(&arn, "s1", &token, None));
}

#[test]
fn sts_gate_answers_parse_in_the_aws_sdk() {
    use aws_sdk_sts::config::{BehaviorVersion, Region};
    use aws_sdk_sts::error::ProvideErrorMetadata;
    use aws_sdk_sts::operation::assume_role_with_web_identity::AssumeRoleWithWebIdentityError;

    let bed = TestBed::start();
    let arn = create_role(&bed, "gcpfed-sdk", &exact_policy(RUNNER_ID, AUD), None);
    let sts = aws_sdk_sts::Client::from_conf(
        aws_sdk_sts::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(REGION))
            .endpoint_url(&bed.aws_endpoint)
            .build(),
    );
    let call = |token: String| {
        block_on(
            sts.assume_role_with_web_identity()
                .role_arn(&arn)
                .role_session_name("sdk-session")
                .web_identity_token(token)
                .send(),
        )
        .map_err(Box::new)
    };

    // The SDK's standard retry strategy absorbs two throttles.
    bed.fail_sts("Throttling", 2);
    let output = call(bed.metadata_token("default", AUD)).expect("allowed through the SDK");
    let user = output.assumed_role_user().expect("assumed role user");
    assert_eq!(
        user.arn(),
        format!("arn:aws:sts::{ACCOUNT_ID}:assumed-role/gcpfed-sdk/sdk-session")
    );
    assert!(output.credentials().is_some());
    let statuses: Vec<u16> = bed.calls().iter().map(|c| c.status).collect();
    assert_eq!(statuses, vec![400, 400, 200]);

    let expired = bed.mint_token(&TokenSpec {
        expires_in: -5,
        ..TokenSpec::new(RUNNER_EMAIL, AUD)
    });
    let error = (*call(expired).expect_err("expired")).into_service_error();
    assert!(
        matches!(
            error,
            AssumeRoleWithWebIdentityError::ExpiredTokenException(_)
        ),
        "{error:?}"
    );

    let outsider = bed.metadata_token(OUTSIDER_EMAIL, AUD);
    let error = call(outsider).expect_err("denied");
    assert_eq!(error.code(), Some("AccessDenied"));
    assert_eq!(error.message(), Some(NOT_AUTHORIZED));

    let unknown = bed.mint_token(&TokenSpec {
        unknown_key: true,
        ..TokenSpec::new(RUNNER_EMAIL, AUD)
    });
    let error = (*call(unknown).expect_err("unknown key")).into_service_error();
    assert!(
        matches!(
            error,
            AssumeRoleWithWebIdentityError::InvalidIdentityTokenException(_)
        ),
        "{error:?}"
    );
}

// ---------------------------------------------------------------------------------------
// Call recorder and the rest of the AWS side

#[test]
fn recorder_sees_iam_calls_with_access_key_id() {
    let bed = TestBed::start();
    let through_gate = bed.iam_via_gate("AKIAGCPFEDRECORDER01");
    block_on(through_gate.list_roles().send()).expect("ListRoles through the gate");
    let missing = block_on(through_gate.get_role().role_name("gcpfed-missing").send());
    assert!(missing.is_err());
    // Out of band: straight to moto, not recorded.
    block_on(bed.iam().list_roles().send()).expect("ListRoles on moto");

    let calls = bed.calls();
    type Seen<'a> = (&'a str, &'a str, Option<&'a str>, u16, Option<&'a str>);
    let seen: Vec<Seen<'_>> = calls
        .iter()
        .map(|c| {
            (
                c.service.as_str(),
                c.action.as_str(),
                c.access_key_id.as_deref(),
                c.status,
                c.error_code.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        vec![
            ("iam", "ListRoles", Some("AKIAGCPFEDRECORDER01"), 200, None),
            (
                "iam",
                "GetRole",
                Some("AKIAGCPFEDRECORDER01"),
                404,
                Some("NoSuchEntity")
            ),
        ]
    );
    assert_eq!(calls[0].region.as_deref(), Some(REGION));

    bed.clear_calls();
    assert!(bed.calls().is_empty());
}

#[test]
fn fault_injection_reaches_iam_actions_too() {
    let bed = TestBed::start();
    bed.fail_action("GetRole", "Throttling", 1);
    let through_gate = bed.iam_via_gate("AKIAGCPFEDRECORDER02");
    let error =
        block_on(through_gate.get_role().role_name("gcpfed-x").send()).expect_err("no such role");
    assert_eq!(
        aws_sdk_iam::error::ProvideErrorMetadata::code(&error),
        Some("NoSuchEntity"),
        "the SDK retried past the injected throttle"
    );
    let codes: Vec<(Option<String>, bool)> = bed
        .calls()
        .into_iter()
        .map(|c| (c.error_code, c.injected))
        .collect();
    assert_eq!(
        codes,
        vec![
            (Some("Throttling".into()), true),
            (Some("NoSuchEntity".into()), false)
        ]
    );
}

#[test]
fn reset_clears_roles_calls_faults_and_accounts() {
    let bed = TestBed::start();
    create_role(&bed, "gcpfed-reset", &exact_policy(RUNNER_ID, AUD), None);
    bed.set_service_accounts(&[ServiceAccount::new(
        "solo@p.iam.gserviceaccount.com",
        "1",
        &["default"],
    )]);
    let token = bed.metadata_token("default", AUD);
    bed.fail_sts("Throttling", 5);
    bed.assume_role_with_web_identity(&role_arn("gcpfed-reset"), "s1", &token, None);
    assert!(!bed.calls().is_empty());

    bed.reset();

    assert!(bed.calls().is_empty());
    let roles = block_on(bed.iam().list_roles().send()).expect("ListRoles");
    assert!(roles.roles().is_empty(), "{:?}", roles.roles());
    let claims = jwt_claims(&bed.metadata_token("default", AUD));
    assert_eq!(claims["sub"], RUNNER_ID);
    // No fault left, and managed policies are back after the reset.
    let managed = block_on(
        bed.iam()
            .get_policy()
            .policy_arn("arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess")
            .send(),
    );
    assert!(managed.is_ok(), "{managed:?}");
    let arn = create_role(&bed, "gcpfed-reset", &exact_policy(RUNNER_ID, AUD), None);
    let token = bed.metadata_token("default", AUD);
    assert_allowed(&bed.assume_role_with_web_identity(&arn, "s1", &token, None));
}

// ---------------------------------------------------------------------------------------
// Metadata emulator

const GOOGLE: [(&str, &str); 1] = [("Metadata-Flavor", "Google")];

#[test]
fn metadata_requires_flavor_header() {
    let bed = TestBed::start();
    let path = identity_path("default", AUD);
    assert_eq!(bed.metadata_get(&path, &[]).status, 403);
    assert_eq!(
        bed.metadata_get(&path, &[("Metadata-Flavor", "Other")])
            .status,
        403
    );
    assert_eq!(bed.metadata_get(&path, &GOOGLE).status, 200);
}

#[test]
fn metadata_rejects_x_forwarded_for() {
    let bed = TestBed::start();
    let answer = bed.metadata_get(
        &identity_path("default", AUD),
        &[
            ("Metadata-Flavor", "Google"),
            ("X-Forwarded-For", "10.0.0.1"),
        ],
    );
    assert_eq!(answer.status, 403);
}

#[test]
fn metadata_requires_audience() {
    let bed = TestBed::start();
    let base = "/computeMetadata/v1/instance/service-accounts/default/identity";
    assert_eq!(bed.metadata_get(base, &GOOGLE).status, 400);
    assert_eq!(
        bed.metadata_get(&format!("{base}?audience=&format=full"), &GOOGLE)
            .status,
        400
    );
}

#[test]
fn metadata_unknown_account_is_404() {
    let bed = TestBed::start();
    let answer = bed.metadata_get(
        &identity_path("nobody@gcpfed-test.iam.gserviceaccount.com", AUD),
        &GOOGLE,
    );
    assert_eq!(answer.status, 404);
    assert_eq!(answer.header("Metadata-Flavor"), Some("Google"));
}

#[test]
fn metadata_answers_carry_flavor_header() {
    let bed = TestBed::start();
    let answer = bed.metadata_get(&identity_path("default", AUD), &GOOGLE);
    assert_eq!(answer.status, 200);
    assert_eq!(answer.header("Metadata-Flavor"), Some("Google"));
    assert!(answer
        .header("Content-Type")
        .unwrap()
        .starts_with("text/html"));
    assert_eq!(answer.body.split('.').count(), 3, "a bare JWT");
    let refused = bed.metadata_get(&identity_path("default", AUD), &[]);
    assert_eq!(refused.header("Metadata-Flavor"), Some("Google"));
}

#[test]
fn metadata_default_alias_resolves_to_the_runner() {
    let bed = TestBed::start();
    let claims = jwt_claims(&bed.metadata_token("default", AUD));
    assert_eq!(claims["iss"], GOOGLE_ISSUER);
    assert_eq!(claims["aud"], AUD);
    assert_eq!(claims["azp"], RUNNER_ID);
    assert_eq!(claims["sub"], RUNNER_ID);
    assert_eq!(claims["email"], RUNNER_EMAIL);
    let (iat, exp) = (
        claims["iat"].as_i64().unwrap(),
        claims["exp"].as_i64().unwrap(),
    );
    assert_eq!(exp - iat, 3600);

    let by_email = jwt_claims(&bed.metadata_token(DEPLOYER_EMAIL, AUD));
    assert_eq!(by_email["sub"], DEPLOYER_ID);
    assert_eq!(by_email["azp"], DEPLOYER_ID);
}

#[test]
fn metadata_full_format_claims_present() {
    let bed = TestBed::start();
    let claims = jwt_claims(&bed.metadata_token("default", AUD));
    assert_eq!(claims["email"], RUNNER_EMAIL);
    assert_eq!(claims["email_verified"], true);
    let engine = &claims["google"]["compute_engine"];
    for key in [
        "project_id",
        "project_number",
        "zone",
        "instance_id",
        "instance_name",
        "instance_creation_timestamp",
    ] {
        assert!(!engine[key].is_null(), "compute_engine.{key} in {engine}");
    }
    assert_eq!(engine["project_id"], "gcpfed-test");

    let standard = bed.metadata_get(
        &format!("/computeMetadata/v1/instance/service-accounts/default/identity?audience={AUD}"),
        &GOOGLE,
    );
    assert_eq!(standard.status, 200);
    let claims = jwt_claims(&standard.body);
    assert!(claims.get("email").is_none() && claims.get("google").is_none());
}

#[test]
fn metadata_injected_status_twice_then_ok() {
    let bed = TestBed::start();
    bed.metadata_fail_status(500, 2);
    let path = identity_path("default", AUD);
    assert_eq!(bed.metadata_get(&path, &GOOGLE).status, 500);
    assert_eq!(bed.metadata_get(&path, &GOOGLE).status, 500);
    assert_eq!(bed.metadata_get(&path, &GOOGLE).status, 200);
}

#[test]
fn metadata_injected_delay() {
    let bed = TestBed::start();
    let path = identity_path("default", AUD);
    bed.metadata_delay(800, 1);
    let started = Instant::now();
    assert_eq!(bed.metadata_get(&path, &GOOGLE).status, 200);
    assert!(started.elapsed() >= Duration::from_millis(800));
    assert_eq!(bed.metadata_get(&path, &GOOGLE).status, 200);
}

#[test]
fn metadata_service_accounts_are_configurable() {
    let bed = TestBed::start();
    bed.set_service_accounts(&[
        ServiceAccount::new(
            "builder@proj.iam.gserviceaccount.com",
            "100000000000000000777",
            &["default"],
        ),
        ServiceAccount::new(
            "second@proj.iam.gserviceaccount.com",
            "100000000000000000778",
            &["second"],
        ),
    ]);
    let claims = jwt_claims(&bed.metadata_token("default", AUD));
    assert_eq!(claims["sub"], "100000000000000000777");
    assert_eq!(claims["email"], "builder@proj.iam.gserviceaccount.com");
    assert_eq!(
        jwt_claims(&bed.metadata_token("second", AUD))["sub"],
        "100000000000000000778"
    );
    assert_eq!(
        bed.metadata_get(&identity_path(RUNNER_EMAIL, AUD), &GOOGLE)
            .status,
        404
    );
    let listing = bed.metadata_get("/computeMetadata/v1/instance/service-accounts/", &GOOGLE);
    assert_eq!(
        listing.body,
        "default/\nbuilder@proj.iam.gserviceaccount.com/\nsecond/\nsecond@proj.iam.gserviceaccount.com/\n"
    );
    let email = bed.metadata_get(
        "/computeMetadata/v1/instance/service-accounts/default/email",
        &GOOGLE,
    );
    assert_eq!(email.body, "builder@proj.iam.gserviceaccount.com");
}

#[test]
fn metadata_jwks_publishes_the_signing_key() {
    let bed = TestBed::start();
    let token = bed.metadata_token("default", AUD);
    let header: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(token.split('.').next().unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(header["alg"], "RS256");
    let path = bed
        .jwks_url
        .strip_prefix(&format!("http://{}", bed.metadata_host))
        .expect("JWKS on the metadata emulator's port");
    let jwks: Value = serde_json::from_str(&bed.metadata_get(path, &[]).body).unwrap();
    let keys = jwks["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0]["kid"], header["kid"]);
    assert_eq!(keys[0]["kty"], "RSA");
    assert!(
        keys[0]["n"].as_str().unwrap().len() > 300,
        "a 2048-bit modulus"
    );

    let unknown = bed.mint_token(&TokenSpec {
        unknown_key: true,
        ..TokenSpec::new(RUNNER_EMAIL, AUD)
    });
    let unknown_header: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(unknown.split('.').next().unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_ne!(unknown_header["kid"], header["kid"]);
}

// ---------------------------------------------------------------------------------------
// The bed itself

#[test]
fn bed_stops_when_its_handle_is_dropped() {
    let bed = TestBed::start();
    let pid = bed.pid();
    let gate = bed.aws_endpoint.trim_start_matches("http://").to_owned();
    let metadata = bed.metadata_host.clone();
    assert!(std::path::Path::new(&format!("/proc/{pid}")).exists());
    let started = Instant::now();
    drop(bed);
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "stopped by stdin EOF, not killed after the timeout ({:?})",
        started.elapsed()
    );
    assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists());
    for address in [gate, metadata] {
        assert!(
            std::net::TcpStream::connect(&address).is_err(),
            "{address} still listens"
        );
    }
}

#[test]
fn closed_port_host_has_no_listener() {
    let host = closed_port_host();
    assert!(host.starts_with("127.0.0.1:"));
    assert!(std::net::TcpStream::connect(&host).is_err());
}

#[test]
fn provider_hcl_and_env_point_at_the_bed() {
    let bed = TestBed::start();
    let hcl = bed.provider_hcl();
    assert!(hcl.contains(&format!("metadata_host = \"{}\"", bed.metadata_host)));
    assert!(hcl.contains(&format!("iam = \"{}\"", bed.aws_endpoint)));
    assert!(hcl.contains(&format!("sts = \"{}\"", bed.aws_endpoint)));
    let env = bed.aws_env();
    let get = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    assert_eq!(get("AWS_ENDPOINT_URL"), Some(bed.aws_endpoint.as_str()));
    assert_eq!(get("GCE_METADATA_HOST"), Some(bed.metadata_host.as_str()));
    assert_eq!(get("AWS_REGION"), Some(REGION));
    assert_eq!(default_service_accounts()[0].aliases, vec!["default"]);
}

#[test]
fn bed_python_unit_tests_pass() {
    let output = std::process::Command::new(support::python())
        .args([
            "-m",
            "unittest",
            "discover",
            "-s",
            "tests/testbed",
            "-p",
            "test_*.py",
        ])
        .current_dir(support::repo_root())
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
        .expect("run python unittest (run `make tools` if the venv is missing)");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(stderr.contains("OK"), "{stderr}");
}
