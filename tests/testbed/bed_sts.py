"""What real STS checks on `AssumeRoleWithWebIdentity` and moto does not, and STS's error shape.

`check_assume_role_with_web_identity` raises `StsError` for a request real STS would refuse and
returns the token's claims otherwise. The role is read through a callback so that this module
stays free of I/O.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Callable
from xml.sax.saxutils import escape

import bed_tokens
import bed_trust

STS_NAMESPACE = "https://sts.amazonaws.com/doc/2011-06-15/"
ACCOUNT_ID = "123456789012"

NOT_AUTHORIZED = "Not authorized to perform sts:AssumeRoleWithWebIdentity"
DURATION_EXCEEDS = "The requested DurationSeconds exceeds the MaxSessionDuration set for this role."
SESSION_NAME_PATTERN = r"[\w+=,.@-]*"
_SESSION_NAME_RE = re.compile(SESSION_NAME_PATTERN, re.ASCII)
_ROLE_ARN_RE = re.compile(r"arn:aws:iam::(\d{12}):role/(?:[\x21-\x7e]*/)?([\w+=,.@-]{1,64})", re.ASCII)

# Faults a test can inject: code -> (HTTP status, error type, message).
FAULTS = {
    "Throttling": (400, "Sender", "Rate exceeded"),
    "IDPCommunicationError": (
        400,
        "Sender",
        "The identity provider could not be reached to verify the web identity token.",
    ),
    "InvalidIdentityToken": (
        400,
        "Sender",
        "Couldn't retrieve verification key from your identity provider,  "
        "please reference AssumeRoleWithWebIdentity documentation for requirements",
    ),
    "ServiceUnavailable": (503, "Receiver", "Service is unavailable at this time."),
    "InternalFailure": (500, "Receiver", "An internal error occurred."),
}


@dataclass
class StsError(Exception):
    code: str
    status: int
    message: str
    error_type: str = "Sender"


def new_request_id() -> str:
    return str(uuid.uuid4())


def error_xml(code: str, message: str, error_type: str = "Sender", request_id: str | None = None) -> bytes:
    request_id = request_id or new_request_id()
    return (
        f'<ErrorResponse xmlns="{STS_NAMESPACE}">\n'
        f"  <Error>\n"
        f"    <Type>{escape(error_type)}</Type>\n"
        f"    <Code>{escape(code)}</Code>\n"
        f"    <Message>{escape(message)}</Message>\n"
        f"  </Error>\n"
        f"  <RequestId>{request_id}</RequestId>\n"
        f"</ErrorResponse>\n"
    ).encode("utf-8")


def _validation_error(problems: list[str]) -> StsError:
    count = len(problems)
    noun = "validation error" if count == 1 else "validation errors"
    return StsError("ValidationError", 400, f"{count} {noun} detected: " + "; ".join(problems))


def _constraint(value: str | None, field: str, rule: str) -> str:
    shown = "null" if value is None else f"'{value}'"
    return f"Value {shown} at '{field}' failed to satisfy constraint: Member {rule}"


def validate_parameters(params: dict) -> int:
    """The service model's constraints; returns DurationSeconds (default 3600)."""
    problems: list[str] = []
    role_arn = params.get("RoleArn")
    session = params.get("RoleSessionName")
    token = params.get("WebIdentityToken")
    duration_text = params.get("DurationSeconds")

    if role_arn is None:
        problems.append(_constraint(None, "roleArn", "must not be null"))
    elif len(role_arn) < 20:
        problems.append(_constraint(role_arn, "roleArn", "must have length greater than or equal to 20"))
    elif len(role_arn) > 2048:
        problems.append(_constraint(role_arn, "roleArn", "must have length less than or equal to 2048"))

    if session is None:
        problems.append(_constraint(None, "roleSessionName", "must not be null"))
    else:
        if len(session) < 2:
            problems.append(_constraint(session, "roleSessionName", "must have length greater than or equal to 2"))
        if len(session) > 64:
            problems.append(_constraint(session, "roleSessionName", "must have length less than or equal to 64"))
        if not _SESSION_NAME_RE.fullmatch(session):
            problems.append(
                _constraint(
                    session,
                    "roleSessionName",
                    f"must satisfy regular expression pattern: {SESSION_NAME_PATTERN}",
                )
            )

    # The token itself is a secret: never echoed back.
    if token is None:
        problems.append(_constraint(None, "webIdentityToken", "must not be null"))
    elif len(token) < 4:
        problems.append(_constraint("***", "webIdentityToken", "must have length greater than or equal to 4"))
    elif len(token) > 20000:
        problems.append(_constraint("***", "webIdentityToken", "must have length less than or equal to 20000"))

    duration = 3600
    if duration_text is not None:
        try:
            duration = int(duration_text)
        except ValueError:
            problems.append(_constraint(duration_text, "durationSeconds", "must be a number"))
        else:
            if duration < 900:
                problems.append(_constraint(duration_text, "durationSeconds", "must have value greater than or equal to 900"))
            elif duration > 43200:
                problems.append(_constraint(duration_text, "durationSeconds", "must have value less than or equal to 43200"))
    if problems:
        raise _validation_error(problems)
    return duration


def check_assume_role_with_web_identity(
    params: dict,
    keys: bed_tokens.KeyStore,
    get_role: Callable[[str], dict | None],
    now: float | None = None,
) -> dict:
    """Raise StsError where real STS refuses; return the token's claims when it allows.

    `get_role(name)` returns IAM's GetRole `Role` member or None when there is no such role.
    """
    duration = validate_parameters(params)
    role_arn = params["RoleArn"]
    match = _ROLE_ARN_RE.fullmatch(role_arn)
    if match is None:
        raise StsError("ValidationError", 400, "Request ARN is invalid")

    try:
        claims = keys.verify(params["WebIdentityToken"], now=now)
    except bed_tokens.TokenRejected as rejected:
        raise StsError(rejected.code, 400, rejected.message) from None

    account, name = match.group(1), match.group(2)
    role = get_role(name) if account == ACCOUNT_ID else None
    if role is None or role.get("Arn") != role_arn:
        raise StsError("AccessDenied", 403, NOT_AUTHORIZED)
    decision = bed_trust.evaluate(role.get("AssumeRolePolicyDocument"), claims)
    if decision is not bed_trust.Decision.ALLOW:
        raise StsError("AccessDenied", 403, NOT_AUTHORIZED)

    if duration > int(role.get("MaxSessionDuration", 3600)):
        raise StsError("ValidationError", 400, DURATION_EXCEEDS)
    return claims
