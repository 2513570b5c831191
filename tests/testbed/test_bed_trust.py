"""Unit tests of the bed's pure parts: trust-policy evaluation, token verification and STS
parameter checks. Run: python -m unittest discover -s tests/testbed -p 'test_*.py'
(tests/testbed_gate.rs runs them too)."""

from __future__ import annotations

import json
import sys
import time
import unittest
from pathlib import Path
from urllib.parse import quote

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bed_sts  # noqa: E402
import bed_tokens  # noqa: E402
from bed_trust import Decision, evaluate, glob_match, parse_policy  # noqa: E402

RUNNER = "104857600000000000001"
OTHER = "113000000000000000099"
AUD = "https://gcpfed.test/ci"
CLAIMS = {"iss": "https://accounts.google.com", "aud": AUD, "azp": RUNNER, "sub": RUNNER, "email": "ci@x"}


def policy(*statements):
    return {"Version": "2012-10-17", "Statement": list(statements)}


def allow(condition=None, **overrides):
    statement = {
        "Effect": "Allow",
        "Principal": {"Federated": "accounts.google.com"},
        "Action": "sts:AssumeRoleWithWebIdentity",
    }
    if condition is not None:
        statement["Condition"] = condition
    statement.update(overrides)
    return statement


def deny(condition=None, **overrides):
    statement = allow(condition, **overrides)
    statement["Effect"] = "Deny"
    return statement


EXACT = {"StringEquals": {
    "accounts.google.com:aud": RUNNER,
    "accounts.google.com:oaud": AUD,
    "accounts.google.com:sub": RUNNER,
}}


class TrustPolicyTest(unittest.TestCase):
    def test_exact_policy_allows_matching_claims(self):
        self.assertIs(evaluate(policy(allow(EXACT)), CLAIMS), Decision.ALLOW)

    def test_claim_mapping_aud_is_azp_and_oaud_is_aud(self):
        swapped = dict(CLAIMS, azp=AUD, aud=RUNNER)
        self.assertIs(evaluate(policy(allow(EXACT)), swapped), Decision.IMPLICIT_DENY)
        for claim, value in (("sub", OTHER), ("azp", OTHER), ("aud", "x")):
            with self.subTest(claim=claim):
                self.assertIs(evaluate(policy(allow(EXACT)), dict(CLAIMS, **{claim: value})), Decision.IMPLICIT_DENY)

    def test_missing_claim_fails_condition(self):
        claims = {k: v for k, v in CLAIMS.items() if k != "email"}
        cond = {"StringEquals": {"accounts.google.com:email": "ci@x"}}
        self.assertIs(evaluate(policy(allow(cond)), CLAIMS), Decision.ALLOW)
        self.assertIs(evaluate(policy(allow(cond)), claims), Decision.IMPLICIT_DENY)

    def test_keys_are_case_insensitive(self):
        cond = {"StringEquals": {"Accounts.Google.Com:Sub": RUNNER}}
        self.assertIs(evaluate(policy(allow(cond)), CLAIMS), Decision.ALLOW)

    def test_string_like_and_lists(self):
        cond = {"StringLike": {"accounts.google.com:oaud": ["nope", "https://gcpfed.test/*"],
                               "accounts.google.com:sub": "10485760000000000000?"}}
        self.assertIs(evaluate(policy(allow(cond)), CLAIMS), Decision.ALLOW)
        self.assertIs(evaluate(policy(allow(cond)), dict(CLAIMS, sub=RUNNER + "1")), Decision.IMPLICIT_DENY)
        self.assertTrue(glob_match("a*c", "abbbc"))
        self.assertFalse(glob_match("a?c", "abbc"))
        self.assertFalse(glob_match("a.c", "abc"), "regex characters are literal")

    def test_string_equals_is_case_sensitive(self):
        cond = {"StringEquals": {"accounts.google.com:oaud": AUD.upper()}}
        self.assertIs(evaluate(policy(allow(cond)), CLAIMS), Decision.IMPLICIT_DENY)

    def test_deny_wins_and_unsupported_fails_closed(self):
        self.assertIs(
            evaluate(policy(allow(EXACT), deny({"StringEquals": {"accounts.google.com:sub": RUNNER}})), CLAIMS),
            Decision.EXPLICIT_DENY,
        )
        self.assertIs(
            evaluate(policy(allow(EXACT), deny({"StringEquals": {"accounts.google.com:sub": OTHER}})), CLAIMS),
            Decision.ALLOW,
        )
        self.assertIs(evaluate(policy(allow({"StringNotEquals": {"accounts.google.com:sub": OTHER}})), CLAIMS),
                      Decision.IMPLICIT_DENY)
        self.assertIs(evaluate(policy(allow(EXACT), deny({"Bool": {"aws:x": "true"}})), CLAIMS), Decision.EXPLICIT_DENY)
        self.assertIs(evaluate(policy(allow(EXACT), deny(NotPrincipal={"AWS": "x"})), CLAIMS), Decision.EXPLICIT_DENY)
        self.assertIs(evaluate(policy(allow(EXACT, Principal="*")), CLAIMS), Decision.IMPLICIT_DENY)

    def test_action_and_principal_forms(self):
        self.assertIs(evaluate(policy(allow(EXACT, Action=["sts:TagSession", "STS:assumerolewith*"])), CLAIMS),
                      Decision.ALLOW)
        self.assertIs(evaluate(policy(allow(EXACT, Action="sts:AssumeRole")), CLAIMS), Decision.IMPLICIT_DENY)
        self.assertIs(evaluate(policy(allow(EXACT, Principal={"Federated": ["x", "accounts.google.com"]})), CLAIMS),
                      Decision.ALLOW)
        self.assertIs(evaluate(policy(allow(EXACT, Principal={"AWS": "arn:aws:iam::1:root"})), CLAIMS),
                      Decision.IMPLICIT_DENY)

    def test_policy_forms(self):
        text = json.dumps(policy(allow(EXACT)))
        self.assertEqual(parse_policy(text), parse_policy(quote(text)))
        self.assertIs(evaluate(quote(text), CLAIMS), Decision.ALLOW)
        self.assertIs(evaluate("{not json", CLAIMS), Decision.IMPLICIT_DENY)
        self.assertIs(evaluate({"Statement": allow(EXACT)}, CLAIMS), Decision.ALLOW)
        self.assertIs(evaluate(policy(dict(allow(EXACT), Effect="Maybe")), CLAIMS), Decision.IMPLICIT_DENY)


class TokenTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.keys = bed_tokens.KeyStore()

    def claims(self, **overrides):
        now = int(time.time())
        return {**CLAIMS, "iat": now, "exp": now + 3600, **overrides}

    def code(self, token):
        with self.assertRaises(bed_tokens.TokenRejected) as caught:
            self.keys.verify(token)
        return caught.exception.code

    def test_valid_token(self):
        self.assertEqual(self.keys.verify(self.keys.mint(self.claims()))["sub"], RUNNER)
        self.assertEqual(self.keys.verify(self.keys.mint(self.claims(iss="accounts.google.com")))["sub"], RUNNER)

    def test_rejections(self):
        self.assertEqual(self.code(self.keys.mint(self.claims(), unknown_key=True)), "InvalidIdentityToken")
        self.assertEqual(self.code(self.keys.mint(self.claims(exp=int(time.time()) - 1))), "ExpiredTokenException")
        self.assertEqual(self.code(self.keys.mint(self.claims(iss="https://evil"))), "InvalidIdentityToken")
        self.assertEqual(self.code(self.keys.mint({k: v for k, v in self.claims().items() if k != "exp"})),
                         "InvalidIdentityToken")
        for garbage in ("", "a.b", "a.b.c", "...", "e30.e30.", "e30.e30.e30.e30"):
            self.assertEqual(self.code(garbage), "InvalidIdentityToken", garbage)
        header, _, signature = self.keys.mint(self.claims()).split(".")
        forged = bed_tokens.b64url_encode(json.dumps(self.claims(sub=OTHER)).encode())
        self.assertEqual(self.code(f"{header}.{forged}.{signature}"), "InvalidIdentityToken")
        unsigned_header = bed_tokens.b64url_encode(b'{"alg":"none"}')
        self.assertEqual(self.code(f"{unsigned_header}.{forged}."), "InvalidIdentityToken")

    def test_jwks_has_the_published_key_only(self):
        kids = [k["kid"] for k in self.keys.jwks()["keys"]]
        self.assertEqual(kids, [self.keys.published.kid])
        self.assertNotIn(self.keys.unpublished().kid, kids)


class StsParameterTest(unittest.TestCase):
    def params(self, **overrides):
        base = {
            "RoleArn": "arn:aws:iam::123456789012:role/r",
            "RoleSessionName": "s1",
            "WebIdentityToken": "x.y.z",
        }
        base.update(overrides)
        return {k: v for k, v in base.items() if v is not None}

    def message(self, **overrides):
        with self.assertRaises(bed_sts.StsError) as caught:
            bed_sts.validate_parameters(self.params(**overrides))
        self.assertEqual((caught.exception.code, caught.exception.status), ("ValidationError", 400))
        return caught.exception.message

    def test_defaults_and_bounds(self):
        self.assertEqual(bed_sts.validate_parameters(self.params()), 3600)
        self.assertEqual(bed_sts.validate_parameters(self.params(DurationSeconds="900")), 900)
        self.assertEqual(bed_sts.validate_parameters(self.params(DurationSeconds="43200")), 43200)
        self.assertIn("greater than or equal to 900", self.message(DurationSeconds="899"))
        self.assertIn("less than or equal to 43200", self.message(DurationSeconds="43201"))

    def test_session_names(self):
        self.assertEqual(
            self.message(RoleSessionName="a b"),
            "1 validation error detected: Value 'a b' at 'roleSessionName' failed to satisfy constraint: "
            "Member must satisfy regular expression pattern: [\\w+=,.@-]*",
        )
        self.assertTrue(self.message(RoleSessionName="!").startswith("2 validation errors detected: "))
        self.assertIn("Value null at 'roleSessionName'", self.message(RoleSessionName=None))
        self.assertEqual(bed_sts.validate_parameters(self.params(RoleSessionName="a_b=c,d.e@f-g+h")), 3600)

    def test_token_is_never_echoed(self):
        message = self.message(WebIdentityToken="abc")
        self.assertNotIn("'abc'", message)

    def test_error_shape(self):
        body = bed_sts.error_xml("AccessDenied", "a <b> & c", request_id="r-1").decode()
        self.assertIn('<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">', body)
        self.assertIn("<Type>Sender</Type>", body)
        self.assertIn("<Message>a &lt;b&gt; &amp; c</Message>", body)
        self.assertIn("<RequestId>r-1</RequestId>", body)


if __name__ == "__main__":
    unittest.main()
