//! Integration tests of the local test bed: the strict STS gate in front of moto, the GCE
//! metadata emulator, the call recorder, fault injection and the bed's lifecycle.
//!
//! What only reads the bed or creates roles of its own runs on one bed that the whole binary
//! shares ([`shared_bed`]): the gate's decision table (every answer real STS gives to a token,
//! trust policy and parameters) and the emulator's plain answers. A test that injects faults,
//! reads the call recorder, resets or reconfigures the bed starts its own.

mod support;

use std::sync::OnceLock;
use std::time::Duration;

use base64::Engine as _;
use serde_json::{json, Value};
use support::bed::*;
use support::iam::create_role;
use support::trust_policy_by_hand;

const AUD: &str = "https://gcpfed.test/ci";

/// The bed of every test that neither injects faults, reads the recorder nor resets: started
/// once, stopped when the test process exits (its stdin then closes).
fn shared_bed() -> &'static TestBed {
    static BED: OnceLock<TestBed> = OnceLock::new();
    BED.get_or_init(TestBed::start)
}

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
// STS gate: the decision table

/// What the gate must answer to one call.
enum Expect {
    Allowed,
    /// 403 AccessDenied with STS's own message.
    AccessDenied,
    /// A 400 with this error code, and a message as [`Message`] says.
    Invalid(&'static str, Message),
}

/// What a refusal's message must be.
enum Message {
    Any,
    Is(&'static str),
    StartsWith(&'static str),
    EndsWith(&'static str),
}

/// The role a call names: one made for the case with this trust policy (and maximum session,
/// when given), or an ARN that names no role of the bed.
enum Role {
    Trusting(String, Option<i32>),
    Absent(String),
}

/// One call to the gate and the answer it must get.
struct Case {
    what: &'static str,
    role: Role,
    token: String,
    session_name: String,
    duration: Option<i32>,
    expect: Expect,
}

impl Case {
    fn new(what: &'static str, trust: &str, token: String, expect: Expect) -> Case {
        Case {
            what,
            role: Role::Trusting(trust.to_owned(), None),
            token,
            session_name: "s1".into(),
            duration: None,
            expect,
        }
    }

    fn max_session(mut self, seconds: i32) -> Case {
        if let Role::Trusting(_, max) = &mut self.role {
            *max = Some(seconds);
        }
        self
    }

    fn session(mut self, name: &str) -> Case {
        self.session_name = name.into();
        self
    }

    fn duration(mut self, seconds: i32) -> Case {
        self.duration = Some(seconds);
        self
    }

    fn absent_role(what: &'static str, arn: &str, token: String) -> Case {
        Case {
            role: Role::Absent(arn.into()),
            ..Case::new(what, "", token, Expect::AccessDenied)
        }
    }

    /// Makes the role (named after the case's row), calls the gate and checks the answer.
    fn check(&self, bed: &TestBed, row: usize) {
        let arn = match &self.role {
            Role::Trusting(trust, max) => {
                create_role(&bed.iam(), &format!("gcpfed-case-{row}"), trust, *max)
            }
            Role::Absent(arn) => arn.clone(),
        };
        let answer =
            bed.assume_role_with_web_identity(&arn, &self.session_name, &self.token, self.duration);
        let context = format!("case {row} ({}): {}", self.what, answer.body);
        let outcome = std::panic::catch_unwind(|| match &self.expect {
            Expect::Allowed => assert_allowed(&answer),
            Expect::AccessDenied => assert_access_denied(&answer),
            Expect::Invalid(code, message) => {
                assert_refused(&answer, 400, code);
                let text = answer.message.clone().unwrap_or_default();
                let fits = match message {
                    Message::Any => true,
                    Message::Is(m) => text == *m,
                    Message::StartsWith(m) => text.starts_with(m),
                    Message::EndsWith(m) => text.ends_with(m),
                };
                assert!(fits, "message {text:?}");
            }
        });
        if outcome.is_err() {
            panic!("the gate answered wrongly in {context}");
        }
    }
}

/// Every answer of real STS that the gate reproduces, one row per call: the token (signature,
/// issuer, expiry), the trust policy with the claim mapping of INTERFACE.md (aud key = azp,
/// oaud = aud, sub = sub), its operators, and the parameters (duration, session name).
#[test]
fn sts_gate_decides_like_real_sts() {
    use Expect::{AccessDenied, Allowed, Invalid};
    let bed = shared_bed();
    let exact = trust_policy_by_hand(AUD, &[RUNNER_ID]);
    let minted = |spec: TokenSpec| bed.mint_token(&spec);
    let runner_spec = || TokenSpec::new(RUNNER_EMAIL, AUD);
    let metadata = |account: &str, audience: &str| bed.metadata_token(account, audience);

    // A token whose payload was swapped after signing: the outsider's signature over the
    // runner's claims.
    let forged = {
        let outsider = minted(TokenSpec::new(OUTSIDER_EMAIL, AUD));
        let runner_claims = jwt_claims(&minted(runner_spec()));
        let parts: Vec<&str> = outsider.split('.').collect();
        let forged_payload = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(serde_json::to_vec(&runner_claims).unwrap());
        format!("{}.{}.{}", parts[0], forged_payload, parts[2])
    };

    let email_policy = policy(vec![statement(
        "Allow",
        json!({"StringEquals": {
            "accounts.google.com:email": DEPLOYER_EMAIL,
            "accounts.google.com:oaud": AUD,
        }}),
    )]);
    // A policy written with the naive mapping (aud key = the requested audience) must not let
    // anyone in: accounts.google.com:aud is compared with azp.
    let naive = policy(vec![statement(
        "Allow",
        json!({"StringEquals": {
            "accounts.google.com:aud": AUD,
            "accounts.google.com:sub": RUNNER_ID,
        }}),
    )]);
    let string_like = policy(vec![statement(
        "Allow",
        json!({
            "StringEquals": {"accounts.google.com:aud": [RUNNER_ID, DEPLOYER_ID]},
            "StringLike": {
                "accounts.google.com:oaud": "https://gcpfed.test/*",
                "accounts.google.com:sub": "10485760000000000000?",
            },
        }),
    )]);
    let list_valued = policy(vec![statement(
        "Allow",
        json!({"StringEquals": {
            "accounts.google.com:aud": [DEPLOYER_ID, RUNNER_ID],
            "accounts.google.com:oaud": ["https://gcpfed.test/a", AUD],
            "accounts.google.com:sub": [DEPLOYER_ID, RUNNER_ID],
        }}),
    )]);
    let explicit_deny = policy(vec![
        statement(
            "Allow",
            json!({"StringEquals": {"accounts.google.com:sub": [RUNNER_ID, DEPLOYER_ID]}}),
        ),
        statement(
            "Deny",
            json!({"StringEquals": {"accounts.google.com:sub": DEPLOYER_ID}}),
        ),
    ]);
    let unsupported_allow = policy(vec![statement(
        "Allow",
        json!({"StringNotEquals": {"accounts.google.com:sub": OUTSIDER_ID}}),
    )]);
    let unsupported_deny = {
        let exact: Value = serde_json::from_str(&exact).unwrap();
        policy(vec![
            exact["Statement"][0].clone(),
            statement(
                "Deny",
                json!({"DateGreaterThan": {"aws:CurrentTime": "2020-01-01T00:00:00Z"}}),
            ),
        ])
    };
    let absent_claim = policy(vec![statement(
        "Allow",
        json!({"StringLike": {"accounts.google.com:amr": "*"}}),
    )]);
    let github = json!({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow",
        "Principal": {"Federated": "arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com"},
        "Action": "sts:AssumeRoleWithWebIdentity",
    }]})
    .to_string();
    let lists_and_wildcards = json!({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow",
        "Principal": {"Federated": ["cognito-identity.amazonaws.com", "accounts.google.com"]},
        "Action": ["sts:TagSession", "sts:*"],
        "Condition": {"StringEquals": {"accounts.google.com:sub": RUNNER_ID}},
    }]})
    .to_string();
    let edge_session = format!("{}@b.c=d,e+f-g_h", "a".repeat(50));
    assert_eq!(edge_session.len(), 64);

    let runner = || metadata("default", AUD);
    let cases = vec![
        // The token.
        Case::new(
            "an email condition; an issuer without scheme",
            &email_policy,
            minted(TokenSpec {
                issuer: Some("accounts.google.com".into()),
                ..TokenSpec::new(DEPLOYER_EMAIL, AUD)
            }),
            Allowed,
        ),
        Case::new(
            "an email condition, another account",
            &email_policy,
            minted(runner_spec()),
            AccessDenied,
        ),
        Case::new(
            "a token signed by a key the JWKS lacks",
            &exact,
            minted(TokenSpec {
                unknown_key: true,
                ..runner_spec()
            }),
            Invalid("InvalidIdentityToken", Message::Any),
        ),
        Case::new(
            "claims altered after signing",
            &exact,
            forged,
            Invalid("InvalidIdentityToken", Message::Any),
        ),
        Case::new(
            "not a JWT",
            &exact,
            "not-a-jwt".into(),
            Invalid("InvalidIdentityToken", Message::Any),
        ),
        Case::new(
            "an expired token",
            &exact,
            minted(TokenSpec {
                expires_in: -60,
                ..runner_spec()
            }),
            Invalid(
                "ExpiredTokenException",
                Message::StartsWith("Token expired: current date/time"),
            ),
        ),
        Case::new(
            "another issuer",
            &exact,
            minted(TokenSpec {
                issuer: Some("https://token.actions.githubusercontent.com".into()),
                ..runner_spec()
            }),
            Invalid("InvalidIdentityToken", Message::Any),
        ),
        // The trust policy and the claim mapping.
        Case::new(
            "another sub",
            &exact,
            minted(TokenSpec {
                sub: Some(OUTSIDER_ID.into()),
                ..runner_spec()
            }),
            AccessDenied,
        ),
        Case::new(
            "another oaud (requested audience)",
            &exact,
            metadata("default", "https://gcpfed.test/other"),
            AccessDenied,
        ),
        Case::new(
            "another azp",
            &exact,
            minted(TokenSpec {
                azp: Some(DEPLOYER_ID.into()),
                ..runner_spec()
            }),
            AccessDenied,
        ),
        Case::new(
            "the aud key maps to azp, not to the token's audience",
            &naive,
            runner(),
            AccessDenied,
        ),
        Case::new(
            "another service account",
            &exact,
            metadata(OUTSIDER_EMAIL, AUD),
            AccessDenied,
        ),
        Case::absent_role("a missing role", &role_arn("gcpfed-nowhere"), runner()),
        Case::absent_role(
            "a role of another account",
            "arn:aws:iam::210987654321:role/gcpfed-allow",
            runner(),
        ),
        Case::new(
            "StringLike wildcards, the runner",
            &string_like,
            metadata("default", "https://gcpfed.test/ci"),
            Allowed,
        ),
        Case::new(
            "StringLike wildcards, the deployer",
            &string_like,
            metadata(DEPLOYER_EMAIL, "https://gcpfed.test/deploy/prod"),
            Allowed,
        ),
        Case::new(
            "StringLike wildcards, an audience outside the pattern",
            &string_like,
            metadata("default", "https://other.test/ci"),
            AccessDenied,
        ),
        // `?` is exactly one character: a 22-digit sub does not match.
        Case::new(
            "StringLike `?`, one character too many",
            &string_like,
            minted(TokenSpec {
                sub: Some(format!("{RUNNER_ID}0")),
                ..runner_spec()
            }),
            AccessDenied,
        ),
        Case::new(
            "list-valued conditions, the runner",
            &list_valued,
            runner(),
            Allowed,
        ),
        Case::new(
            "list-valued conditions, the deployer",
            &list_valued,
            metadata(DEPLOYER_EMAIL, AUD),
            Allowed,
        ),
        Case::new(
            "list-valued conditions, the other audience",
            &list_valued,
            metadata(DEPLOYER_EMAIL, "https://gcpfed.test/a"),
            Allowed,
        ),
        Case::new(
            "list-valued conditions, an outsider",
            &list_valued,
            metadata(OUTSIDER_EMAIL, AUD),
            AccessDenied,
        ),
        Case::new("an explicit deny, the runner", &explicit_deny, runner(), Allowed),
        Case::new(
            "an explicit deny wins, the deployer",
            &explicit_deny,
            metadata(DEPLOYER_EMAIL, AUD),
            AccessDenied,
        ),
        // What the gate cannot evaluate fails closed.
        Case::new(
            "an Allow with an unsupported operator does not allow",
            &unsupported_allow,
            runner(),
            AccessDenied,
        ),
        Case::new(
            "a Deny with an unsupported operator denies, even beside a matching Allow",
            &unsupported_deny,
            runner(),
            AccessDenied,
        ),
        Case::new(
            "a condition on a key with no claim behind it fails",
            &absent_claim,
            runner(),
            AccessDenied,
        ),
        Case::new(
            "another federated principal does not match",
            &github,
            runner(),
            AccessDenied,
        ),
        Case::new(
            "action and principal lists, wildcards",
            &lists_and_wildcards,
            runner(),
            Allowed,
        ),
        // The parameters: duration against the role's maximum and STS's bounds.
        Case::new("the role's maximum duration", &exact, runner(), Allowed)
            .max_session(7200)
            .duration(7200),
        Case::new(
            "above the role's maximum duration",
            &exact,
            runner(),
            Invalid(
                "ValidationError",
                Message::Is(
                    "The requested DurationSeconds exceeds the MaxSessionDuration set for this \
                     role.",
                ),
            ),
        )
        .max_session(7200)
        .duration(7201),
        Case::new(
            "above STS's maximum duration",
            &exact,
            runner(),
            Invalid(
                "ValidationError",
                Message::Is(
                    "1 validation error detected: Value '43201' at 'durationSeconds' failed to \
                     satisfy constraint: Member must have value less than or equal to 43200",
                ),
            ),
        )
        .max_session(7200)
        .duration(43201),
        Case::new(
            "below STS's minimum duration",
            &exact,
            runner(),
            Invalid(
                "ValidationError",
                Message::EndsWith("Member must have value greater than or equal to 900"),
            ),
        )
        .max_session(7200)
        .duration(899),
        // Moto's roles default to 3600: the implicit 3600 fits, and the bed says so.
        Case::new("the default duration within the default maximum", &exact, runner(), Allowed),
        Case::new(
            "above the default maximum",
            &exact,
            runner(),
            Invalid("ValidationError", Message::Any),
        )
        .duration(3601),
        // The session name.
        Case::new(
            "a session name outside [\\w+=,.@-]",
            &exact,
            runner(),
            Invalid(
                "ValidationError",
                Message::Is(
                    r"1 validation error detected: Value 'bad name!' at 'roleSessionName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\w+=,.@-]*",
                ),
            ),
        )
        .session("bad name!"),
        Case::new(
            "a one-character session name",
            &exact,
            runner(),
            Invalid(
                "ValidationError",
                Message::Is(
                    "1 validation error detected: Value 'a' at 'roleSessionName' failed to satisfy constraint: Member must have length greater than or equal to 2",
                ),
            ),
        )
        .session("a"),
        Case::new(
            "a 65-character session name",
            &exact,
            runner(),
            Invalid(
                "ValidationError",
                Message::EndsWith("Member must have length less than or equal to 64"),
            ),
        )
        .session(&"x".repeat(65)),
        // Both rules broken at once: two errors, as the service model reports them.
        Case::new(
            "a session name breaking both rules",
            &exact,
            runner(),
            Invalid(
                "ValidationError",
                Message::StartsWith("2 validation errors detected: "),
            ),
        )
        .session("!"),
        // Unicode letters are not \w for STS.
        Case::new(
            "a session name with a non-ASCII letter",
            &exact,
            runner(),
            Invalid("ValidationError", Message::Any),
        )
        .session("sessión"),
        Case::new(
            "a 64-character session name of every allowed kind",
            &exact,
            runner(),
            Allowed,
        )
        .session(&edge_session),
    ];
    for (row, case) in cases.iter().enumerate() {
        case.check(bed, row);
    }
}

// ---------------------------------------------------------------------------------------
// STS gate: the allowed path, as the recorder sees it

#[test]
fn sts_gate_allows_matching_request_and_returns_motos_credentials() {
    let bed = TestBed::start();
    let arn = create_role(
        &bed.iam(),
        "gcpfed-allow",
        &trust_policy_by_hand(AUD, &[RUNNER_ID]),
        None,
    );
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

// ---------------------------------------------------------------------------------------
// STS gate: fault injection

#[test]
fn sts_gate_throttles_twice_then_succeeds() {
    let bed = TestBed::start();
    let arn = create_role(
        &bed.iam(),
        "gcpfed-throttle",
        &trust_policy_by_hand(AUD, &[RUNNER_ID]),
        None,
    );
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
    let arn = create_role(
        &bed.iam(),
        "gcpfed-idp",
        &trust_policy_by_hand(AUD, &[RUNNER_ID]),
        None,
    );
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
    let arn = create_role(
        &bed.iam(),
        "gcpfed-sdk",
        &trust_policy_by_hand(AUD, &[RUNNER_ID]),
        None,
    );
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
    create_role(
        &bed.iam(),
        "gcpfed-reset",
        &trust_policy_by_hand(AUD, &[RUNNER_ID]),
        None,
    );
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
    let arn = create_role(
        &bed.iam(),
        "gcpfed-reset",
        &trust_policy_by_hand(AUD, &[RUNNER_ID]),
        None,
    );
    let token = bed.metadata_token("default", AUD);
    assert_allowed(&bed.assume_role_with_web_identity(&arn, "s1", &token, None));
}

// ---------------------------------------------------------------------------------------
// Metadata emulator

const GOOGLE: [(&str, &str); 1] = [("Metadata-Flavor", "Google")];

#[test]
fn metadata_requires_flavor_header() {
    let bed = shared_bed();
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
    let bed = shared_bed();
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
    let bed = shared_bed();
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
    let bed = shared_bed();
    let answer = bed.metadata_get(
        &identity_path("nobody@gcpfed-test.iam.gserviceaccount.com", AUD),
        &GOOGLE,
    );
    assert_eq!(answer.status, 404);
    assert_eq!(answer.header("Metadata-Flavor"), Some("Google"));
}

#[test]
fn metadata_answers_carry_flavor_header() {
    let bed = shared_bed();
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
    let bed = shared_bed();
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
    let bed = shared_bed();
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
    // The delayed answer misses a client deadline a quarter of the delay away...
    let late = bed.metadata_get_within(&path, &GOOGLE, Duration::from_millis(200));
    assert!(
        late.as_ref().is_err_and(|e| e.is_timeout()),
        "the delayed answer came in time: {:?}",
        late.map(|a| a.status)
    );
    // ... and the fault was used up by that one request.
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
    let bed = shared_bed();
    let token = bed.metadata_token("default", AUD);
    let header = support::unverified_header(&token).expect("a JWT header");
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
    let unknown_header = support::unverified_header(&unknown).expect("a JWT header");
    assert_ne!(unknown_header["kid"], header["kid"]);
}

// ---------------------------------------------------------------------------------------
// The bed itself

#[test]
fn bed_stops_on_stdin_eof_when_its_handle_goes() {
    let bed = TestBed::start();
    let pid = bed.pid();
    let gate = bed.aws_endpoint.trim_start_matches("http://").to_owned();
    let metadata = bed.metadata_host.clone();
    assert!(std::path::Path::new(&format!("/proc/{pid}")).exists());
    // `stop` is what dropping the handle does; it says whether the bed exited by itself.
    assert!(
        bed.stop(),
        "the bed did not exit on stdin EOF and was killed after the timeout"
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
    let bed = shared_bed();
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

/// The gate hands calls to moto in its own process (tests/testbed/bed_moto.py) instead of
/// over HTTP: its answers must be moto's own, byte for byte but for the request ID, whether
/// the call is a form POST, a query-string GET, percent-encoded or an error.
#[test]
fn gate_answers_exactly_as_moto_answers() {
    let bed = shared_bed();
    let trust = trust_policy_by_hand(AUD, &["104857600000000000001"]);
    let iam = bed.iam();
    create_role(&iam, "gcpfed-fidelity", &trust, None);
    let http = reqwest::blocking::Client::new();
    let authorization = "AWS4-HMAC-SHA256 Credential=AKIAGCPFEDFIDELITY01/20260101/us-east-1/iam/aws4_request, SignedHeaders=host, Signature=0";
    let request_id = |body: &str| {
        let mut text = body.to_owned();
        while let (Some(start), Some(end)) = (text.find("<RequestId>"), text.find("</RequestId>")) {
            text.replace_range(start..end + "</RequestId>".len(), "<RequestId/>");
        }
        text
    };
    let cases: [(&str, &str, &str); 5] = [
        (
            "POST",
            "/",
            "Action=GetRole&Version=2010-05-08&RoleName=gcpfed-fidelity",
        ),
        (
            "POST",
            "/",
            "Action=GetRole&Version=2010-05-08&RoleName=gcpfed-no-such-role",
        ),
        (
            "POST",
            "/",
            "Action=ListRoles&Version=2010-05-08&PathPrefix=%2F",
        ),
        (
            "GET",
            "/?Action=GetRole&Version=2010-05-08&RoleName=gcpfed-fidelity",
            "",
        ),
        ("POST", "/", "Action=NoSuchAction&Version=2010-05-08"),
    ];
    let mut statuses = Vec::new();
    for (method, target, body) in cases {
        let answer = |base: &str| {
            let request = http
                .request(method.parse().unwrap(), format!("{base}{target}"))
                .header("Authorization", authorization);
            let request = if body.is_empty() {
                request
            } else {
                request
                    .header(
                        "Content-Type",
                        "application/x-www-form-urlencoded; charset=utf-8",
                    )
                    .body(body.to_owned())
            };
            let response = request.send().expect("the bed answers");
            let status = response.status().as_u16();
            let content_type = response
                .headers()
                .get("content-type")
                .map(|v| v.to_str().unwrap().to_owned());
            (status, content_type, request_id(&response.text().unwrap()))
        };
        let through_gate = answer(&bed.aws_endpoint);
        let from_moto = answer(&bed.moto_endpoint);
        assert_eq!(through_gate, from_moto, "{method} {target} {body}");
        statuses.push(through_gate.0);
    }
    // The cases cover answers and errors (a guard against comparing two identical failures).
    assert_eq!(statuses[..4], [200, 404, 200, 200]);
    assert!(statuses[4] >= 400, "{statuses:?}");
}
