"""State shared by the gate, the metadata emulator and the control API: service accounts,
signing keys, injected faults and the call record. Every access goes through one lock.
"""

from __future__ import annotations

import copy
import threading
import time
from dataclasses import dataclass, field

import bed_tokens

PROJECT = {
    "project_id": "gcpfed-test",
    "project_number": 123456789000,
    "zone": "us-central1-a",
    "instance_id": "4242424242424242424",
    "instance_name": "ci-runner-1",
}

DEFAULT_ACCOUNTS = [
    {
        "email": "ci-runner@gcpfed-test.iam.gserviceaccount.com",
        "unique_id": "104857600000000000001",
        "aliases": ["default"],
    },
    {
        "email": "deployer@gcpfed-test.iam.gserviceaccount.com",
        "unique_id": "104857600000000000002",
        "aliases": [],
    },
    {
        "email": "outsider@other-project.iam.gserviceaccount.com",
        "unique_id": "113000000000000000099",
        "aliases": [],
    },
]


class BadRequest(Exception):
    """A control-API request that does not make sense; answered with HTTP 400."""


@dataclass
class AwsFault:
    code: str
    status: int
    error_type: str
    message: str
    remaining: int
    action: str | None  # None: any action
    # Forward the call to moto, then reset the connection without answering: the call took
    # effect but its answer is lost (default off; see bed_gate's "drop_answer").
    drop_answer: bool = False


@dataclass
class MetadataFaults:
    status: list = field(default_factory=list)  # [[status, remaining]]
    delay: list = field(default_factory=list)  # [[millis, remaining]]


def _take(queue: list):
    """Consume one use of the first entry of a [[value, remaining]] queue."""
    while queue and queue[0][1] <= 0:
        queue.pop(0)
    if not queue:
        return None
    queue[0][1] -= 1
    value = queue[0][0]
    if queue[0][1] <= 0:
        queue.pop(0)
    return value


def validate_accounts(accounts) -> list[dict]:
    if not isinstance(accounts, list):
        raise BadRequest("service accounts: expected a JSON list")
    result = []
    for entry in accounts:
        if not isinstance(entry, dict):
            raise BadRequest("service accounts: each entry is an object")
        email, unique_id = entry.get("email"), entry.get("unique_id")
        aliases = entry.get("aliases", [])
        if not isinstance(email, str) or "@" not in email:
            raise BadRequest("service accounts: email must be an email address")
        if not isinstance(unique_id, str) or not unique_id:
            raise BadRequest("service accounts: unique_id must be a non-empty string")
        if not isinstance(aliases, list) or not all(isinstance(a, str) for a in aliases):
            raise BadRequest("service accounts: aliases must be a list of strings")
        result.append({"email": email, "unique_id": unique_id, "aliases": list(aliases)})
    return result


class BedState:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.keys = bed_tokens.KeyStore()
        self.started = int(time.time())
        self.accounts = copy.deepcopy(DEFAULT_ACCOUNTS)
        self.aws_faults: list[AwsFault] = []
        self.metadata_faults = MetadataFaults()
        self.calls: list[dict] = []

    # --- accounts -------------------------------------------------------------------
    def set_accounts(self, accounts) -> None:
        validated = validate_accounts(accounts)
        with self.lock:
            self.accounts = validated

    def get_accounts(self) -> list[dict]:
        with self.lock:
            return copy.deepcopy(self.accounts)

    def find_account(self, name: str) -> dict | None:
        with self.lock:
            for account in self.accounts:
                if name == account["email"] or name in account["aliases"]:
                    return dict(account)
        return None

    # --- tokens ---------------------------------------------------------------------
    def identity_claims(self, account: dict, audience: str, full: bool, licenses: bool) -> dict:
        now = int(time.time())
        claims = {
            "aud": audience,
            "azp": account["unique_id"],
            "exp": now + 3600,
            "iat": now,
            "iss": bed_tokens.GOOGLE_ISSUER,
            "sub": account["unique_id"],
        }
        if full:
            claims["email"] = account["email"]
            claims["email_verified"] = True
            engine = {
                "instance_creation_timestamp": self.started,
                "instance_id": PROJECT["instance_id"],
                "instance_name": PROJECT["instance_name"],
                "project_id": PROJECT["project_id"],
                "project_number": PROJECT["project_number"],
                "zone": PROJECT["zone"],
            }
            if licenses:
                engine["license_id"] = []
            claims["google"] = {"compute_engine": engine}
        return claims

    def mint_for_test(self, spec) -> str:
        """Token minting for tests: see the control API's /_testbed/token."""
        if not isinstance(spec, dict):
            raise BadRequest("token: expected a JSON object")
        name = spec.get("service_account", "default")
        audience = spec.get("audience")
        if not isinstance(name, str) or not isinstance(audience, str) or not audience:
            raise BadRequest("token: service_account and a non-empty audience are required")
        account = self.find_account(name)
        if account is None:
            raise BadRequest(f"token: unknown service account {name!r}")
        expires_in = spec.get("expires_in", 3600)
        if isinstance(expires_in, bool) or not isinstance(expires_in, int):
            raise BadRequest("token: expires_in must be an integer (seconds)")
        claims = self.identity_claims(account, audience, full=spec.get("format", "full") == "full", licenses=False)
        now = int(time.time())
        claims["exp"] = now + expires_in
        claims["iat"] = now if expires_in > 0 else now + expires_in - 3600
        for override, claim in (("issuer", "iss"), ("azp", "azp"), ("sub", "sub")):
            value = spec.get(override)
            if value is not None:
                claims[claim] = value
        return self.keys.mint(claims, unknown_key=bool(spec.get("unknown_key", False)))

    # --- faults ---------------------------------------------------------------------
    def add_aws_fault(self, spec) -> None:
        if not isinstance(spec, dict):
            raise BadRequest("faults: expected a JSON object")
        code = spec.get("code")
        times = spec.get("times", 1)
        drop_answer = spec.get("drop_answer", False)
        if not isinstance(drop_answer, bool):
            raise BadRequest("faults: drop_answer must be true or false")
        if drop_answer and code is None:
            code = "AnswerDropped"
        if not isinstance(code, str) or not code:
            raise BadRequest("faults: code is required")
        if isinstance(times, bool) or not isinstance(times, int) or times < 0:
            raise BadRequest("faults: times must be a non-negative integer")
        import bed_sts  # local: keeps the import graph one-way for the unit tests

        status, error_type, message = bed_sts.FAULTS.get(code, (400, "Sender", f"Injected {code}"))
        status = int(spec.get("status", status))
        message = str(spec.get("message", message))
        action = spec.get("action", "AssumeRoleWithWebIdentity")
        with self.lock:
            self.aws_faults.append(AwsFault(code, status, error_type, message, times, action, drop_answer))

    def take_aws_fault(self, action: str | None) -> AwsFault | None:
        with self.lock:
            for fault in self.aws_faults:
                if fault.remaining > 0 and (fault.action is None or fault.action == action):
                    fault.remaining -= 1
                    taken = copy.copy(fault)
                    self.aws_faults = [f for f in self.aws_faults if f.remaining > 0]
                    return taken
        return None

    def add_metadata_fault(self, spec) -> None:
        if not isinstance(spec, dict):
            raise BadRequest("metadata faults: expected a JSON object")
        times = spec.get("times", 1)
        if isinstance(times, bool) or not isinstance(times, int) or times < 0:
            raise BadRequest("metadata faults: times must be a non-negative integer")
        status, delay = spec.get("status"), spec.get("delay_ms")
        if status is None and delay is None:
            raise BadRequest("metadata faults: give status or delay_ms")
        with self.lock:
            if status is not None:
                if not isinstance(status, int) or not 100 <= status <= 599:
                    raise BadRequest("metadata faults: status must be an HTTP status code")
                self.metadata_faults.status.append([status, times])
            if delay is not None:
                if not isinstance(delay, int) or delay < 0:
                    raise BadRequest("metadata faults: delay_ms must be a non-negative integer")
                self.metadata_faults.delay.append([delay, times])

    def take_metadata_faults(self) -> tuple[int | None, int | None]:
        with self.lock:
            return _take(self.metadata_faults.status), _take(self.metadata_faults.delay)

    # --- calls ----------------------------------------------------------------------
    def record(self, call: dict) -> None:
        with self.lock:
            call["seq"] = len(self.calls) + 1
            self.calls.append(call)

    def get_calls(self) -> list[dict]:
        with self.lock:
            return copy.deepcopy(self.calls)

    def clear_calls(self) -> None:
        with self.lock:
            self.calls = []

    def reset(self) -> None:
        with self.lock:
            self.accounts = copy.deepcopy(DEFAULT_ACCOUNTS)
            self.aws_faults = []
            self.metadata_faults = MetadataFaults()
            self.calls = []
