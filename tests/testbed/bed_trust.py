"""Evaluation of an IAM role trust policy for `sts:AssumeRoleWithWebIdentity` with a Google
ID token, with the claim mapping AWS applies to `accounts.google.com` (INTERFACE.md):

    accounts.google.com:aud   <-> claim azp
    accounts.google.com:oaud  <-> claim aud
    accounts.google.com:sub   <-> claim sub
    accounts.google.com:email <-> claim email

Supported: Effect Allow/Deny, Principal Federated (string or list), Action (string or list,
wildcards), Condition operators StringEquals and StringLike (values string or list, any-of;
operators and keys all-of). Anything else fails closed: an Allow statement that uses it does
not allow, a Deny statement that uses it denies.
"""

from __future__ import annotations

import json
import re
from enum import Enum
from urllib.parse import unquote

GOOGLE_PROVIDER = "accounts.google.com"
ACTION = "sts:AssumeRoleWithWebIdentity"

CLAIM_FOR_KEY = {
    "accounts.google.com:aud": "azp",
    "accounts.google.com:oaud": "aud",
    "accounts.google.com:sub": "sub",
    "accounts.google.com:email": "email",
}

SUPPORTED_OPERATORS = ("StringEquals", "StringLike")


class Decision(Enum):
    ALLOW = "allow"
    EXPLICIT_DENY = "explicit_deny"
    IMPLICIT_DENY = "implicit_deny"


def parse_policy(document) -> dict | None:
    """A policy as IAM hands it back: a dict already, JSON text, or URL-encoded JSON text."""
    if isinstance(document, dict):
        return document
    if not isinstance(document, str):
        return None
    for candidate in (document, unquote(document)):
        try:
            parsed = json.loads(candidate)
        except ValueError:
            continue
        return parsed if isinstance(parsed, dict) else None
    return None


def _as_list(value) -> list:
    return value if isinstance(value, list) else [value]


def _as_text(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def glob_match(pattern: str, text: str, ignore_case: bool = False) -> bool:
    """IAM wildcard match: `*` any run of characters, `?` exactly one."""
    regex = "".join(
        ".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern
    )
    flags = re.DOTALL | (re.IGNORECASE if ignore_case else 0)
    return re.fullmatch(regex, text, flags) is not None


def _principal_names_google(principal) -> bool | None:
    """True/False when decidable, None when the principal form is not supported."""
    if not isinstance(principal, dict):
        return None
    federated = principal.get("Federated")
    if federated is None:
        return False
    names = _as_list(federated)
    if not all(isinstance(n, str) for n in names):
        return None
    return any(n.lower() == GOOGLE_PROVIDER for n in names)


def _action_matches(action) -> bool | None:
    if action is None:
        return None
    patterns = _as_list(action)
    if not all(isinstance(p, str) for p in patterns):
        return None
    return any(glob_match(p, ACTION, ignore_case=True) for p in patterns)


def _claim_values(claims: dict, key: str) -> list[str] | None:
    claim = CLAIM_FOR_KEY.get(key.lower())
    if claim is None or claim not in claims or claims[claim] is None:
        return None
    return [_as_text(v) for v in _as_list(claims[claim])]


def _operator_holds(operator: str, block, claims: dict) -> bool | None:
    """All keys of one operator block hold (None: operator or block not supported)."""
    if operator not in SUPPORTED_OPERATORS or not isinstance(block, dict):
        return None
    for key, expected in block.items():
        actual = _claim_values(claims, key)
        if actual is None:
            return False
        wanted = [_as_text(v) for v in _as_list(expected)]
        if operator == "StringEquals":
            ok = any(a == w for a in actual for w in wanted)
        else:
            ok = any(glob_match(w, a) for a in actual for w in wanted)
        if not ok:
            return False
    return True


def _statement_matches(statement: dict, claims: dict, fail_value: bool) -> bool:
    """Whether a statement applies to this request; `fail_value` for what it cannot judge."""
    if "NotPrincipal" in statement or "NotAction" in statement:
        return fail_value
    principal = _principal_names_google(statement.get("Principal"))
    if principal is None:
        return fail_value
    if not principal:
        return False
    action = _action_matches(statement.get("Action"))
    if action is None:
        return fail_value
    if not action:
        return False
    condition = statement.get("Condition", {})
    if not isinstance(condition, dict):
        return fail_value
    for operator, block in condition.items():
        holds = _operator_holds(operator, block, claims)
        if holds is None:
            holds = fail_value
        if not holds:
            return False
    return True


def evaluate(document, claims: dict) -> Decision:
    policy = parse_policy(document)
    if policy is None:
        return Decision.IMPLICIT_DENY
    statements = policy.get("Statement")
    if statements is None:
        return Decision.IMPLICIT_DENY
    statements = _as_list(statements)
    if not all(isinstance(s, dict) for s in statements):
        return Decision.IMPLICIT_DENY
    allowed = False
    for statement in statements:
        effect = statement.get("Effect")
        if effect == "Deny":
            if _statement_matches(statement, claims, fail_value=True):
                return Decision.EXPLICIT_DENY
        elif effect == "Allow":
            if _statement_matches(statement, claims, fail_value=False):
                allowed = True
        else:
            # A statement IAM itself would reject: refuse the whole policy.
            return Decision.IMPLICIT_DENY
    return Decision.ALLOW if allowed else Decision.IMPLICIT_DENY
