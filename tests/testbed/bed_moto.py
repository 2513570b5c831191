"""moto inside the bed's process: the gate hands each AWS call straight to moto's WSGI application.

Why in-process: the bed is one Python process under one interpreter lock, so each millisecond of
CPU it spends on an AWS call queues the calls that arrive with it (a refresh sends three calls per
role at once, ten roles at a time). Forwarding every call over a second HTTP hop to moto's own
server cost more CPU than moto's answer itself: a client connection, a new server thread, a
second parse of the request and of the answer. Calling the WSGI application in the gate's thread
gives the same answers from the same moto state (moto's backends are process-wide). With moto's
module list read once (below), an IAM call costs the bed about 1 ms of CPU instead of 4-5 ms;
`make bench` prints that cost per IAM call.

moto's HTTP server still runs beside it, as the bed's unrecorded endpoint (`moto_endpoint`):
tests and the bench set up and inspect IAM through it without passing the gate.
"""

from __future__ import annotations

import functools
import io
import threading
import xml.etree.ElementTree as ElementTree
from urllib.parse import urlencode

import bed_http

IAM_NAMESPACE = "{https://iam.amazonaws.com/doc/2010-05-08/}"
# The bed's own IAM reads are signed for moto's default account; moto checks no signature.
_BED_AUTHORIZATION = (
    "AWS4-HMAC-SHA256 Credential=testing/20200101/us-east-1/iam/aws4_request, "
    "SignedHeaders=host, Signature=0"
)


def limit_iam_partitions() -> None:
    """Let moto build IAM for the `aws` partition only.

    To find the account of an access key, moto 5 creates the IAM backend of every partition
    (six of them, each loading ~1,600 AWS managed policies): about a second of CPU per bed
    and per reset. The bed emulates the `aws` partition only, so the others are never needed.
    """
    try:
        import moto.iam.models as iam_models
    except ImportError:
        return
    names = getattr(iam_models, "PARTITION_NAMES", None)
    if isinstance(names, (list, tuple)) and "aws" in names:
        iam_models.PARTITION_NAMES = ["aws"]


def remember_moto_modules() -> None:
    """moto routes every request by asking whether the service's name is one of its package
    directories, and lists and stats them (about 175) on each request: a third of its CPU per
    IAM call. The installed package does not change while the bed runs, so list them once."""
    import moto.backends as backends

    listing = getattr(backends, "list_of_moto_modules", None)
    if listing is None or getattr(listing, "remembered", False):
        return
    modules = tuple(listing())

    @functools.wraps(listing)
    def remembered():
        return modules

    remembered.remembered = True
    backends.list_of_moto_modules = remembered


class InProcessMoto:
    """moto's WSGI application, called in the caller's thread, one call at a time.

    One at a time because moto's IAM is not thread-safe: GetRole and every call that looks a
    role up iterate over all roles, and a CreateRole of another thread in the meantime failed
    them with "dictionary changed size during iteration", an HTTP 500 that real IAM never
    gives (about one 100-role apply in 12). The lock costs no throughput: moto's work is all
    CPU under the interpreter lock anyway, and the latency sleeps happen outside it."""

    def __init__(self) -> None:
        from moto.server import DomainDispatcherApplication, create_backend_app

        self.app = DomainDispatcherApplication(create_backend_app)
        self._one_at_a_time = threading.Lock()

    def call(self, method: str, target: str, headers: dict[str, str], body: bytes) -> tuple[int, list, bytes]:
        """One request (`target` is the path and query as sent), answered as moto's server
        would: (status, [(header, value)], body)."""
        path, _, query = target.partition("?")
        environ = {
            "REQUEST_METHOD": method,
            "SCRIPT_NAME": "",
            "PATH_INFO": _wsgi_path(path),
            "QUERY_STRING": query,
            "SERVER_NAME": "127.0.0.1",
            "SERVER_PORT": "80",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "REMOTE_ADDR": "127.0.0.1",
            "CONTENT_LENGTH": str(len(body)),
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": "http",
            "wsgi.input": io.BytesIO(body),
            "wsgi.errors": io.StringIO(),
            "wsgi.multithread": True,
            "wsgi.multiprocess": False,
            "wsgi.run_once": False,
        }
        for name, value in headers.items():
            key = name.upper().replace("-", "_")
            if key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
                if key == "CONTENT_TYPE":
                    environ[key] = value
                continue
            environ[f"HTTP_{key}"] = value

        answer: dict = {}

        def start_response(status: str, response_headers, exc_info=None):
            answer["status"] = int(status.split(" ", 1)[0])
            answer["headers"] = list(response_headers)
            return lambda data: answer.setdefault("written", []).append(data)

        try:
            with self._one_at_a_time:
                chunks = self.app(environ, start_response)
                try:
                    data = b"".join(answer.get("written", [])) + b"".join(chunks)
                finally:
                    close = getattr(chunks, "close", None)
                    if close is not None:
                        close()
        except Exception as err:  # noqa: BLE001 - answered as moto's server answers it
            # An exception out of moto (an action it does not know, say) is what moto's own
            # werkzeug server turns into its generic 500 page; the gate answers the same.
            from werkzeug.exceptions import InternalServerError

            bed_http.log(f"moto raised {err!r}; answering 500 as its server does")
            page = InternalServerError()
            return page.code, list(page.get_headers()), page.get_body().encode("utf-8")
        return answer["status"], answer["headers"], data


    def get_role(self, name: str) -> dict | None:
        """IAM's GetRole answer for `name` in the bed's account, as the members the STS gate
        reads (Arn, AssumeRolePolicyDocument as IAM sends it, MaxSessionDuration), or None
        when there is no such role. Unrecorded: this is the bed looking, not a client."""
        body = urlencode({"Action": "GetRole", "Version": "2010-05-08", "RoleName": name}).encode()
        headers = {
            "Authorization": _BED_AUTHORIZATION,
            "Content-Type": "application/x-www-form-urlencoded; charset=utf-8",
        }
        status, _headers, data = self.call("POST", "/", headers, body)
        root = ElementTree.fromstring(data)
        if status != 200:
            code = root.findtext(f".//{IAM_NAMESPACE}Code") or root.findtext(".//Code")
            if status == 404 and code == "NoSuchEntity":
                return None
            raise RuntimeError(f"moto answered GetRole with {status} {code}")
        role = root.find(f"./{IAM_NAMESPACE}GetRoleResult/{IAM_NAMESPACE}Role")
        if role is None:
            raise RuntimeError("moto's GetRole answer has no Role")
        found = {
            member: role.findtext(f"{IAM_NAMESPACE}{member}")
            for member in ("Arn", "AssumeRolePolicyDocument", "MaxSessionDuration")
        }
        return {member: value for member, value in found.items() if value is not None}


def _wsgi_path(path: str) -> str:
    """PATH_INFO as a WSGI server passes it: percent-decoded, as latin-1 text (PEP 3333)."""
    from urllib.parse import unquote_to_bytes

    return unquote_to_bytes(path or "/").decode("latin-1")
