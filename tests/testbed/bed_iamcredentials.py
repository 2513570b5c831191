"""Our emulator of Google's IAM Credentials API: `generateIdToken`, as the provider calls it to
impersonate a service account, and the OAuth access tokens the metadata emulator hands out for it.

    POST /v1/projects/-/serviceAccounts/{EMAIL_OR_UNIQUE_ID}:generateIdToken
    Authorization: Bearer <access token from the metadata emulator's .../token>
    {"audience": "...", "includeEmail": true, "delegates": ["projects/-/serviceAccounts/..."]}
    -> {"token": "<RS256 ID token signed with the bed's keys>"}

Checked in the order Google's front end and IAM apply them: the bearer token (401
UNAUTHENTICATED), the API enabled in the project (403 SERVICE_DISABLED), the token's scopes
(403 ACCESS_TOKEN_SCOPE_INSUFFICIENT), the request (400 INVALID_ARGUMENT), the accounts (404
NOT_FOUND), then `iam.serviceAccounts.getOpenIdToken` on each link of the chain: the caller on the
first delegate, each delegate on the next, the last one on the target (403 IAM_PERMISSION_DENIED).
Errors are Google's JSON error format with a google.rpc.ErrorInfo detail. Tokens are minted for
the TARGET: azp = sub = its unique ID; email and email_verified when includeEmail.

Control (tests), on this server: /_testbed/iam/...
    POST reset                   the defaults below
    POST grants {"member", "target"}   member (email) gets roles/iam.serviceAccountTokenCreator on target
    PUT  grants [...]            replace all grants
    PUT  api {"enabled": bool}   enable or disable the API in the project
    PUT  scopes {"scopes": [..]} the VM's access scopes (carried by every access token issued later)
    POST faults {"status", "times"}    answer the next calls with a 5xx/429 in Google's format
    GET  calls / DELETE calls    generateIdToken calls: target, delegates, status, reason
    GET  secrets                 every access token and ID token issued (for no-leak tests)
"""

from __future__ import annotations

import copy
import json
import secrets
import threading
import time
from urllib.parse import unquote, urlsplit

import bed_http
import bed_state
import bed_tokens

CLOUD_PLATFORM = "https://www.googleapis.com/auth/cloud-platform"
# The scopes that allow generateIdToken (the API's discovery document lists cloud-platform).
ALLOWED_SCOPES = (CLOUD_PLATFORM, "https://www.googleapis.com/auth/iam")
SERVICE = "iamcredentials.googleapis.com"
PERMISSION = "iam.serviceAccounts.getOpenIdToken"
DELEGATE_PREFIX = "projects/-/serviceAccounts/"
PREFIX = "/v1/projects/-/serviceAccounts/"
SUFFIX = ":generateIdToken"
CONTROL = "/_testbed/iam/"

# Accounts of the project that are not attached to the VM: only the IAM Credentials API mints
# their tokens (the metadata emulator does not know them).
PROJECT_ACCOUNTS = [
    {"email": "team-a@gcpfed-test.iam.gserviceaccount.com", "unique_id": "104857600000000000011"},
    {"email": "team-b@gcpfed-test.iam.gserviceaccount.com", "unique_id": "104857600000000000012"},
    {"email": "hop-1@gcpfed-test.iam.gserviceaccount.com", "unique_id": "104857600000000000021"},
    {"email": "hop-2@gcpfed-test.iam.gserviceaccount.com", "unique_id": "104857600000000000022"},
]


class IamState:
    """Grants, the API's state, the VM's scopes and the tokens issued; one lock."""

    def __init__(self, bed: bed_state.BedState) -> None:
        self.bed = bed
        self.lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.grants: set[tuple[str, str]] = set()
            self.enabled = True
            self.scopes = [CLOUD_PLATFORM]
            self.access_tokens: dict[str, dict] = {}
            self.id_tokens: list[str] = []
            self.calls: list[dict] = []
            self.faults: list[list[int]] = []

    # --- accounts ---------------------------------------------------------------------
    def find(self, name: str) -> dict | None:
        for account in self.bed.get_accounts() + PROJECT_ACCOUNTS:
            if name in (account["email"], account["unique_id"]):
                return {"email": account["email"], "unique_id": account["unique_id"]}
        return None

    # --- access tokens (the metadata emulator's /token) -------------------------------
    def issue_access_token(self, account: dict) -> dict:
        token = "ya29.bed-" + secrets.token_urlsafe(48)
        with self.lock:
            self.access_tokens[token] = {
                "email": account["email"],
                "unique_id": account["unique_id"],
                "scopes": list(self.scopes),
                "exp": time.time() + 3599,
            }
        return {"access_token": token, "expires_in": 3599, "token_type": "Bearer"}

    def scopes_text(self) -> str:
        with self.lock:
            return "".join(f"{s}\n" for s in self.scopes)

    def holder(self, token: str) -> dict | None:
        with self.lock:
            holder = self.access_tokens.get(token)
        if holder is None or holder["exp"] < time.time():
            return None
        return holder

    # --- control ----------------------------------------------------------------------
    def set_grants(self, grants) -> None:
        if not isinstance(grants, list):
            raise bed_state.BadRequest("grants: expected a JSON list")
        parsed = {self._grant(g) for g in grants}
        with self.lock:
            self.grants = parsed

    def add_grant(self, grant) -> None:
        parsed = self._grant(grant)
        with self.lock:
            self.grants.add(parsed)

    def _grant(self, grant) -> tuple[str, str]:
        if not isinstance(grant, dict):
            raise bed_state.BadRequest("grants: each grant is {\"member\", \"target\"}")
        member, target = grant.get("member"), grant.get("target")
        for name in (member, target):
            if not isinstance(name, str) or self.find(name) is None:
                raise bed_state.BadRequest(f"grants: unknown service account {name!r}")
        return (self.find(member)["email"], self.find(target)["email"])

    def allowed(self, member: dict, target: dict) -> bool:
        with self.lock:
            return (member["email"], target["email"]) in self.grants

    def take_fault(self) -> int | None:
        with self.lock:
            return bed_state._take(self.faults)

    def record(self, call: dict) -> None:
        with self.lock:
            self.calls.append(call)


def google_error(code: int, status: str, message: str, reason: str | None = None,
                 domain: str = "googleapis.com", metadata: dict | None = None) -> dict:
    error = {"code": code, "message": message, "status": status}
    if reason is not None:
        error["details"] = [{
            "@type": "type.googleapis.com/google.rpc.ErrorInfo",
            "reason": reason,
            "domain": domain,
            "metadata": metadata or {},
        }]
    return {"error": error}


class Refusal(Exception):
    def __init__(self, body: dict) -> None:
        super().__init__(body["error"]["status"])
        self.body = body


def make_handler(iam: IamState):
    project_number = str(bed_state.PROJECT["project_number"])

    class IamCredentialsHandler(bed_http.Handler):
        def version_string(self) -> str:
            return "ESF"

        def do_GET(self) -> None:
            self.route()

        def do_POST(self) -> None:
            self.route()

        do_PUT = do_DELETE = do_POST

        def route(self) -> None:
            path = urlsplit(self.path).path
            if path.startswith(CONTROL):
                self.control(path[len(CONTROL):])
            elif self.command == "POST" and path.startswith(PREFIX) and path.endswith(SUFFIX):
                self.generate_id_token(unquote(path[len(PREFIX):-len(SUFFIX)]))
            else:
                self.read_body()
                self.send_json(404, google_error(404, "NOT_FOUND", f"The requested URL {path} was not found."))

        # --- the API --------------------------------------------------------------------
        def generate_id_token(self, name: str) -> None:
            raw = self.read_body()
            call = {"target": name, "delegates": [], "status": 200, "reason": None}
            try:
                token = self.mint(name, raw, call)
            except Refusal as refusal:
                error = refusal.body["error"]
                call["status"] = error["code"]
                details = error.get("details") or [{}]
                call["reason"] = details[0].get("reason", error["status"])
                iam.record(call)
                self.send_json(error["code"], refusal.body)
                return
            iam.record(call)
            self.send_json(200, {"token": token})

        def mint(self, name: str, raw: bytes, call: dict) -> str:
            fault = iam.take_fault()
            if fault is not None:
                status = "RESOURCE_EXHAUSTED" if fault == 429 else "UNAVAILABLE"
                raise Refusal(google_error(fault, status, "The service is currently unavailable."))

            auth = self.headers.get("Authorization", "")
            holder = iam.holder(auth[len("Bearer "):]) if auth.startswith("Bearer ") else None
            if holder is None:
                raise Refusal(google_error(
                    401, "UNAUTHENTICATED",
                    "Request had invalid authentication credentials. Expected OAuth 2 access token, "
                    "login cookie or other valid authentication credential.",
                    "ACCESS_TOKEN_TYPE_UNSUPPORTED" if auth else "CREDENTIALS_MISSING",
                    metadata={"service": SERVICE, "method": "google.iam.credentials.v1.IAMCredentials.GenerateIdToken"}))
            call["caller"] = holder["email"]
            if not iam.enabled:
                raise Refusal(google_error(
                    403, "PERMISSION_DENIED",
                    f"IAM Service Account Credentials API has not been used in project {project_number} "
                    "before or it is disabled. Enable it by visiting "
                    f"https://console.developers.google.com/apis/api/{SERVICE}/overview?project={project_number} "
                    "then retry.",
                    "SERVICE_DISABLED",
                    metadata={"consumer": f"projects/{project_number}", "service": SERVICE}))
            if not any(scope in ALLOWED_SCOPES for scope in holder["scopes"]):
                raise Refusal(google_error(
                    403, "PERMISSION_DENIED", "Request had insufficient authentication scopes.",
                    "ACCESS_TOKEN_SCOPE_INSUFFICIENT",
                    metadata={"service": SERVICE, "method": "google.iam.credentials.v1.IAMCredentials.GenerateIdToken"}))

            try:
                body = json.loads(raw or b"{}")
            except ValueError:
                body = None
            if not isinstance(body, dict):
                raise Refusal(google_error(400, "INVALID_ARGUMENT", "Invalid JSON payload received."))
            audience, delegates = body.get("audience"), body.get("delegates", [])
            if not isinstance(audience, str) or not audience:
                raise Refusal(google_error(400, "INVALID_ARGUMENT", "Audience must be set."))
            if not isinstance(delegates, list) or not all(
                    isinstance(d, str) and d.startswith(DELEGATE_PREFIX) for d in delegates):
                raise Refusal(google_error(
                    400, "INVALID_ARGUMENT",
                    "Invalid form of delegates; expected projects/-/serviceAccounts/{ACCOUNT_EMAIL_OR_UNIQUEID}."))
            call["delegates"] = [d[len(DELEGATE_PREFIX):] for d in delegates]

            target = iam.find(name)
            if target is None:
                raise Refusal(google_error(404, "NOT_FOUND", f"Not found; Gaia id not found for email {name}"))
            chain = [{"email": holder["email"], "unique_id": holder["unique_id"]}]
            for delegate in call["delegates"]:
                account = iam.find(delegate)
                if account is None:
                    raise Refusal(google_error(404, "NOT_FOUND", f"Not found; Gaia id not found for email {delegate}"))
                chain.append(account)
            chain.append(target)
            for member, resource in zip(chain, chain[1:]):
                if not iam.allowed(member, resource):
                    # Google's message names neither side of the link.
                    raise Refusal(google_error(
                        403, "PERMISSION_DENIED",
                        f"Permission '{PERMISSION}' denied on resource (or it may not exist).",
                        "IAM_PERMISSION_DENIED", domain="iam.googleapis.com",
                        metadata={"permission": PERMISSION}))

            now = int(time.time())
            claims = {
                "aud": audience,
                "azp": target["unique_id"],
                "exp": now + 3600,
                "iat": now,
                "iss": bed_tokens.GOOGLE_ISSUER,
                "sub": target["unique_id"],
            }
            if body.get("includeEmail") is True:
                claims["email"] = target["email"]
                claims["email_verified"] = True
            token = iam.bed.keys.mint(claims)
            with iam.lock:
                iam.id_tokens.append(token)
            return token

        # --- control ----------------------------------------------------------------------
        def control(self, what: str) -> None:
            try:
                value = self.read_json()
                key = (self.command, what)
                if key == ("POST", "reset"):
                    iam.reset()
                elif key == ("POST", "grants"):
                    iam.add_grant(value)
                elif key == ("PUT", "grants"):
                    iam.set_grants(value)
                elif key == ("PUT", "api"):
                    with iam.lock:
                        iam.enabled = bool((value or {}).get("enabled"))
                elif key == ("PUT", "scopes"):
                    scopes = (value or {}).get("scopes")
                    if not isinstance(scopes, list) or not all(isinstance(s, str) for s in scopes):
                        raise bed_state.BadRequest("scopes: expected {\"scopes\": [..]}")
                    with iam.lock:
                        iam.scopes = list(scopes)
                elif key == ("POST", "faults"):
                    status, times = (value or {}).get("status"), (value or {}).get("times", 1)
                    if status not in (429, 500, 502, 503, 504) or not isinstance(times, int):
                        raise bed_state.BadRequest("faults: status 429 or 5xx, times an integer")
                    with iam.lock:
                        iam.faults.append([status, times])
                elif key == ("GET", "calls"):
                    with iam.lock:
                        self.send_json(200, copy.deepcopy(iam.calls))
                    return
                elif key == ("DELETE", "calls"):
                    with iam.lock:
                        iam.calls = []
                elif key == ("GET", "secrets"):
                    with iam.lock:
                        self.send_json(200, {"access_tokens": list(iam.access_tokens),
                                             "id_tokens": list(iam.id_tokens)})
                    return
                else:
                    self.send_json(404, {"error": f"no control {self.command} {what}"})
                    return
            except (bed_state.BadRequest, ValueError) as err:
                self.send_json(400, {"error": str(err)})
                return
            self.send_json(200, {"ok": True})

    return IamCredentialsHandler


def start(iam: IamState) -> bed_http.Server:
    return bed_http.Server(("127.0.0.1", 0), make_handler(iam))
