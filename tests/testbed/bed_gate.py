"""The AWS gate: the bed's AWS endpoint. It hands every call to moto (in-process, see bed_moto),
records it, checks `AssumeRoleWithWebIdentity` the way real STS does (see bed_sts), injects
faults, and serves the test bed's control API under /_testbed/ (never handed to moto). JSON in,
JSON out:

  GET    /_testbed/info               the endpoints of the ready line
  POST   /_testbed/reset              empty moto, forget calls and faults, default accounts
  GET    /_testbed/calls              recorded AWS calls, oldest first (an AssumeRoleWithWebIdentity
                                       call also holds the token sent and the credentials issued,
                                       for tests that search their outputs for them)
  DELETE /_testbed/calls              forget them (also POST /_testbed/calls/clear)
  POST   /_testbed/faults/aws         {"code", "times", "action"?="AssumeRoleWithWebIdentity",
                                       "status"?, "message"?}   (alias: /_testbed/faults/sts)
                                      or {"drop_answer": true, "times", "action"}: the call is
                                       forwarded to moto (it takes effect), then the connection
                                       is reset without an answer: a lost answer. Recorded with
                                       moto's status and error code, "injected" and
                                       "answer_dropped" true.
  POST   /_testbed/faults/metadata    {"status"? , "delay_ms"?, "times"}
  GET|PUT /_testbed/service-accounts  [{"email", "unique_id", "aliases"}]
  POST   /_testbed/token              {"service_account", "audience", "expires_in"?, "issuer"?,
                                       "azp"?, "sub"?, "unknown_key"?, "format"?} -> {"token"}
  GET    /_testbed/jwks               the published JWKS
  GET|POST /_testbed/latency          {"aws_ms"?, "metadata_ms"?}: the latency before each answer
                                       (see bed_latency); reset restores the start-up values

Every recorded call also holds `start_seq`, `end_seq` and `in_flight_at_start` (bed_latency).
"""

from __future__ import annotations

import html
import json
import re
import socket
import struct
import threading
import time
from typing import Callable
from urllib.parse import parse_qs, urlsplit

import bed_http
import bed_latency
import bed_moto
import bed_state
import bed_sts

HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "expect",
    "content-length",
}
UNSIGNED_STS_ACTIONS = {"AssumeRoleWithWebIdentity", "AssumeRoleWithSAML"}
IAM_NAMESPACE = "https://iam.amazonaws.com/doc/2010-05-08/"
_SCOPE_RE = re.compile(r"Credential=([^/,\s]+)/\d{8}/([^/,\s]+)/([^/,\s]+)/aws4_request")
_QUERY_SCOPE_RE = re.compile(r"^([^/]+)/\d{8}/([^/]+)/([^/]+)/aws4_request$")
_XML_CODE_RE = re.compile(rb"<Code>([^<]{1,256})</Code>")


class RequestInfo:
    """What the recorder needs to know about one AWS request."""

    def __init__(self, method: str, url, headers, body: bytes) -> None:
        self.params: dict[str, str] = {}
        for key, values in parse_qs(url.query, keep_blank_values=True).items():
            self.params[key] = values[0]
        content_type = headers.get("Content-Type", "")
        if content_type.startswith("application/x-www-form-urlencoded") and body:
            try:
                form = parse_qs(body.decode("utf-8"), keep_blank_values=True)
            except UnicodeDecodeError:
                form = {}
            for key, values in form.items():
                self.params[key] = values[0]

        self.access_key_id: str | None = None
        self.region: str | None = None
        self.service: str | None = None
        match = _SCOPE_RE.search(headers.get("Authorization", ""))
        if match:
            self.access_key_id, self.region, self.service = match.groups()
        else:
            scope = _QUERY_SCOPE_RE.match(self.params.get("X-Amz-Credential", ""))
            if scope:
                self.access_key_id, self.region, self.service = scope.groups()

        target = headers.get("X-Amz-Target")
        if "Action" in self.params:
            self.action = self.params["Action"]
        elif target:
            self.action = target.rsplit(".", 1)[-1]
        else:
            self.action = f"{method} {url.path}"
        if self.service is None:
            self.service = "sts" if self.action in UNSIGNED_STS_ACTIONS else "unknown"


def issued_credentials(body: bytes) -> dict[str, str | None]:
    """AccessKeyId, SecretAccessKey and SessionToken of an AssumeRoleWithWebIdentity answer."""
    text = body.decode("utf-8", "replace")
    found = {}
    for element, key in (
        ("AccessKeyId", "access_key_id"),
        ("SecretAccessKey", "secret_access_key"),
        ("SessionToken", "session_token"),
    ):
        match = re.search(f"<{element}>([^<]*)</{element}>", text)
        found[key] = html.unescape(match.group(1)) if match else None
    return found


def error_code_of(status: int, headers: list, body: bytes) -> str | None:
    if status < 400:
        return None
    match = _XML_CODE_RE.search(body[:65536])
    if match:
        return match.group(1).decode("utf-8", "replace")
    try:
        parsed = json.loads(body)
        if isinstance(parsed, dict):
            kind = parsed.get("__type") or parsed.get("code") or parsed.get("Code")
            if isinstance(kind, str):
                return kind.rsplit("#", 1)[-1]
    except ValueError:
        pass
    for name, value in headers:
        if name.lower() == "x-amzn-errortype":
            return value.split(":", 1)[0]
    return None


class Gate:
    def __init__(
        self,
        state: bed_state.BedState,
        moto: bed_moto.InProcessMoto,
        get_role: Callable[[str], dict | None],
        reset_moto: Callable[[], None],
        moto_ready: threading.Event,
        latency: bed_latency.Latency | None = None,
    ) -> None:
        self.state = state
        self.latency = latency or bed_latency.Latency()
        self.moto = moto
        self.get_role = get_role
        self.reset_moto = reset_moto
        self.moto_ready = moto_ready
        self.info: dict = {}
        self.server = bed_http.Server(("127.0.0.1", 0), self._handler())

    def answering(self, call: dict) -> None:
        """Just before a recorded call's answer (or its dropped answer) goes out: the configured
        latency, then the call's end in the overlap record."""
        self.latency.before_aws_answer()
        self.latency.ended(call)

    # ------------------------------------------------------------------------------------
    def forward(self, method: str, target: str, headers, body: bytes, extra: dict | None = None):
        """moto's answer to one call, computed in this thread (see bed_moto for why)."""
        self.moto_ready.wait(120)
        sent = {name: value for name, value in headers.items() if name.lower() not in HOP_BY_HOP}
        sent.update(extra or {})
        return self.moto.call(method, target, sent, body)

    def _handler(self):
        gate = self
        state = self.state

        class GateHandler(bed_http.Handler):
            def version_string(self) -> str:
                return "gcpfed-testbed-gate"

            def do_GET(self) -> None:
                self.dispatch()

            do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = do_OPTIONS = do_GET

            def dispatch(self) -> None:
                url = urlsplit(self.path)
                if url.path.startswith("/_testbed/"):
                    self.control(url.path)
                    return
                body = self.read_body()
                info = RequestInfo(self.command, url, self.headers, body)
                call = {
                    "time": time.time(),
                    "method": self.command,
                    "path": url.path,
                    "host": self.headers.get("Host"),
                    "service": info.service,
                    "region": info.region,
                    "action": info.action,
                    "access_key_id": info.access_key_id,
                    "status": 0,
                    "error_code": None,
                    "injected": False,
                    "role_arn": None,
                    "session_name": None,
                    "duration_seconds": None,
                    # Which role an IAM call is about: tests group the overlap record by it.
                    "role_name": info.params.get("RoleName"),
                }
                gate.latency.started(call)
                is_web_identity = info.action == "AssumeRoleWithWebIdentity"
                if is_web_identity:
                    call["role_arn"] = info.params.get("RoleArn")
                    call["session_name"] = info.params.get("RoleSessionName")
                    call["duration_seconds"] = info.params.get("DurationSeconds")
                    # Kept so that tests can search their outputs and files for the real token
                    # and the real issued secrets (no-leak checks need the values themselves).
                    call["web_identity_token"] = info.params.get("WebIdentityToken")

                fault = state.take_aws_fault(info.action)
                if fault is not None and fault.drop_answer:
                    self.forward_and_drop_answer(call, body)
                    return
                if fault is not None:
                    namespace = IAM_NAMESPACE if info.service == "iam" else bed_sts.STS_NAMESPACE
                    call.update(status=fault.status, error_code=fault.code, injected=True)
                    gate.answering(call)
                    self.send_aws_error(fault.status, fault.code, fault.message, fault.error_type, namespace)
                    state.record(call)
                    return

                extra = {}
                if is_web_identity:
                    try:
                        gate.moto_ready.wait(120)
                        bed_sts.check_assume_role_with_web_identity(info.params, state.keys, gate.get_role)
                    except bed_sts.StsError as refused:
                        call.update(status=refused.status, error_code=refused.code)
                        gate.answering(call)
                        self.send_aws_error(refused.status, refused.code, refused.message, refused.error_type)
                        state.record(call)
                        return
                    except Exception as err:  # noqa: BLE001 - answered as STS would, and logged
                        bed_http.log(f"checking AssumeRoleWithWebIdentity failed: {err!r}")
                        call.update(status=500, error_code="InternalFailure")
                        gate.answering(call)
                        self.send_aws_error(500, "InternalFailure", "test bed: role lookup failed", "Receiver")
                        state.record(call)
                        return
                    if "Authorization" not in self.headers:
                        # moto routes an unsigned request by its body; a GET has none.
                        extra["Authorization"] = (
                            "AWS4-HMAC-SHA256 Credential=TESTBEDUNSIGNED/20200101/us-east-1/sts/aws4_request, "
                            "SignedHeaders=host, Signature=0"
                        )
                try:
                    status, headers, data = gate.forward(self.command, self.path, self.headers, body, extra)
                except Exception as err:  # noqa: BLE001 - a moto crash is answered, recorded and logged
                    bed_http.log(f"moto failed on {info.action}: {err!r}")
                    call.update(status=502, error_code="TestBedUpstreamError")
                    gate.answering(call)
                    state.record(call)
                    self.send_bytes(502, f"test bed: moto failed: {err!r}\n".encode(), "text/plain")
                    return
                call.update(status=status, error_code=error_code_of(status, headers, data))
                if is_web_identity and status == 200:
                    call["issued"] = issued_credentials(data)
                gate.answering(call)
                state.record(call)
                self.relay(status, headers, data)

            def forward_and_drop_answer(self, call: dict, body: bytes) -> None:
                """Let moto perform the call, then reset the connection without a byte of answer."""
                try:
                    status, headers, data = gate.forward(self.command, self.path, self.headers, body)
                    call.update(status=status, error_code=error_code_of(status, headers, data))
                except Exception as err:  # noqa: BLE001 - as in dispatch
                    bed_http.log(f"moto failed on {call['action']}: {err!r}")
                    call.update(status=502, error_code="TestBedUpstreamError")
                call.update(injected=True, answer_dropped=True)
                gate.answering(call)
                state.record(call)
                # SO_LINGER 0: closing sends RST, as a load balancer or NAT dropping the flow would.
                try:
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                except OSError:
                    pass
                self.close_connection = True

            def relay(self, status: int, headers: list, data: bytes) -> None:
                try:
                    self.send_response(status)
                    for name, value in headers:
                        if name.lower() not in HOP_BY_HOP and name.lower() not in ("server", "date"):
                            self.send_header(name, value)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    if self.command != "HEAD":
                        self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    self.close_connection = True

            def send_aws_error(self, status, code, message, error_type="Sender", namespace=None) -> None:
                request_id = bed_sts.new_request_id()
                body = bed_sts.error_xml(code, message, error_type, request_id)
                if namespace and namespace != bed_sts.STS_NAMESPACE:
                    body = body.replace(bed_sts.STS_NAMESPACE.encode(), namespace.encode(), 1)
                self.send_bytes(status, body, "text/xml", {"x-amzn-RequestId": request_id})

            # ---------------------------------------------------------------- control API
            def control(self, path: str) -> None:
                try:
                    payload = self.read_json() if self.command in ("POST", "PUT") else None
                    self.send_json(200, self.control_answer(path, payload))
                except bed_state.BadRequest as err:
                    self.send_json(400, {"error": str(err)})
                except LookupError as err:
                    self.send_json(404, {"error": str(err)})
                except ValueError as err:
                    self.send_json(400, {"error": f"bad JSON: {err}"})

            def control_answer(self, path: str, payload):
                method = self.command
                if path == "/_testbed/info" and method == "GET":
                    return gate.info
                if path == "/_testbed/reset" and method == "POST":
                    gate.reset_moto()
                    state.reset()
                    gate.latency.reset()
                    return {"ok": True}
                if path == "/_testbed/calls" and method == "GET":
                    return state.get_calls()
                if (path == "/_testbed/calls" and method == "DELETE") or (
                    path == "/_testbed/calls/clear" and method == "POST"
                ):
                    state.clear_calls()
                    return {"ok": True}
                if path in ("/_testbed/faults/sts", "/_testbed/faults/aws") and method == "POST":
                    state.add_aws_fault(payload)
                    return {"ok": True}
                if path == "/_testbed/faults/metadata" and method == "POST":
                    state.add_metadata_fault(payload)
                    return {"ok": True}
                if path == "/_testbed/service-accounts":
                    if method == "GET":
                        return state.get_accounts()
                    if method in ("PUT", "POST"):
                        state.set_accounts(payload)
                        return {"ok": True}
                if path == "/_testbed/token" and method == "POST":
                    return {"token": state.mint_for_test(payload)}
                if path == "/_testbed/latency":
                    if method in ("PUT", "POST"):
                        gate.latency.set(payload)
                    return gate.latency.get()
                if path == "/_testbed/jwks" and method == "GET":
                    return state.keys.jwks()
                raise LookupError(f"no control endpoint {method} {path}")

        return GateHandler
