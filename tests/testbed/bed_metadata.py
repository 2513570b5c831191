"""Our GCE metadata server emulator: the identity endpoint of each configured service account,
its OAuth access token (`token`, issued by bed_iamcredentials with the VM's scopes), a few
neighbouring paths, the issuer's JWKS, and per-test fault injection (status, delay).

Behaviour copied from the real server's documented contract: 403 without
`Metadata-Flavor: Google` or with `X-Forwarded-For`, 400 without `audience`, 404 for an
unknown account, `Metadata-Flavor: Google` on every answer.
"""

from __future__ import annotations

import json
import time
from urllib.parse import parse_qs, unquote, urlsplit

import bed_http
import bed_latency
import bed_state

JWKS_PATH = "/oauth2/v3/certs"
SA_PREFIX = "/computeMetadata/v1/instance/service-accounts/"
HTML = "text/html; charset=UTF-8"
TEXT = "application/text"


def make_handler(state: bed_state.BedState, latency: bed_latency.Latency | None = None, iam=None):
    latency = latency or bed_latency.Latency()
    # `iam` (bed_iamcredentials.IamState) issues the OAuth access tokens of `.../token` and
    # holds the VM's access scopes; without it the metadata server has no token endpoint.

    class MetadataHandler(bed_http.Handler):
        def version_string(self) -> str:
            return "Metadata Server for VM"

        def do_GET(self) -> None:
            self.route()

        def do_HEAD(self) -> None:
            self.route()

        def do_POST(self) -> None:
            self.read_body()
            self.answer(405, "Method not allowed\n", HTML)

        do_PUT = do_DELETE = do_PATCH = do_POST

        # -------------------------------------------------------------------------------
        def answer(self, status: int, body: str, content_type: str = TEXT) -> None:
            # Every metadata answer pays the configured round trip (the discovery documents
            # below are Google's public endpoints, which the provider never calls).
            latency.before_metadata_answer()
            self.send_bytes(
                status,
                body.encode("utf-8"),
                content_type,
                {
                    "Metadata-Flavor": "Google",
                    "X-XSS-Protection": "0",
                    "X-Frame-Options": "SAMEORIGIN",
                },
            )

        def route(self) -> None:
            url = urlsplit(self.path)
            if url.path in (JWKS_PATH, "/.well-known/openid-configuration"):
                # Google's public endpoints, not the metadata server: no flavor, no faults.
                self.serve_discovery(url.path)
                return

            status_fault, delay_fault = state.take_metadata_faults()
            if delay_fault:
                time.sleep(delay_fault / 1000.0)
            if status_fault is not None:
                self.answer(status_fault, f"injected fault: HTTP {status_fault}\n", HTML)
                return

            if self.headers.get("X-Forwarded-For") is not None:
                self.answer(403, "Forbidden: X-Forwarded-For is not allowed\n", HTML)
                return
            if self.headers.get("Metadata-Flavor") != "Google":
                self.answer(403, 'Missing required header "Metadata-Flavor": "Google"\n', HTML)
                return

            query = parse_qs(url.query, keep_blank_values=True)
            path = url.path
            if path.startswith(SA_PREFIX):
                self.serve_service_accounts(path[len(SA_PREFIX):], query)
                return
            simple = self.simple_paths().get(path)
            if simple is None:
                self.answer(404, "Not Found\n", HTML)
            else:
                self.answer(200, simple)

        def simple_paths(self) -> dict:
            p = bed_state.PROJECT
            return {
                "/": "computeMetadata/\n",
                "/computeMetadata/": "v1/\n",
                "/computeMetadata/v1/": "instance/\nproject/\n",
                "/computeMetadata/v1/project/project-id": p["project_id"],
                "/computeMetadata/v1/project/numeric-project-id": str(p["project_number"]),
                "/computeMetadata/v1/instance/id": p["instance_id"],
                "/computeMetadata/v1/instance/name": p["instance_name"],
                "/computeMetadata/v1/instance/zone": f"projects/{p['project_number']}/zones/{p['zone']}",
            }

        def serve_discovery(self, path: str) -> None:
            if path == JWKS_PATH:
                body = state.keys.jwks()
            else:
                host = f"{self.server.server_name}:{self.server.server_port}"
                body = {
                    "issuer": "https://accounts.google.com",
                    "jwks_uri": f"http://{host}{JWKS_PATH}",
                    "id_token_signing_alg_values_supported": ["RS256"],
                    "subject_types_supported": ["public"],
                }
            self.send_bytes(200, json.dumps(body).encode("utf-8"), "application/json; charset=UTF-8")

        def serve_service_accounts(self, rest: str, query: dict) -> None:
            accounts = state.get_accounts()
            if rest == "":
                if query.get("recursive", [""])[0].lower() == "true":
                    listing = {}
                    for account in accounts:
                        entry = {"aliases": account["aliases"], "email": account["email"], "scopes": []}
                        for name in account["aliases"] + [account["email"]]:
                            listing[name] = entry
                    self.answer(200, json.dumps(listing), "application/json")
                    return
                names = []
                for account in accounts:
                    names.extend(account["aliases"])
                    names.append(account["email"])
                self.answer(200, "".join(f"{n}/\n" for n in names))
                return

            name, _, leaf = rest.partition("/")
            account = state.find_account(unquote(name))
            if account is None:
                self.answer(404, "Not Found\n", HTML)
                return
            if leaf == "":
                self.answer(200, "aliases\nemail\nidentity\nscopes\ntoken\n")
            elif leaf == "email":
                self.answer(200, account["email"])
            elif leaf == "aliases":
                self.answer(200, "".join(f"{a}\n" for a in account["aliases"]))
            elif leaf == "scopes":
                scopes = iam.scopes_text() if iam else "https://www.googleapis.com/auth/cloud-platform\n"
                self.answer(200, scopes)
            elif leaf == "token" and iam is not None:
                # As on Compute Engine: the token carries the VM's access scopes, whatever
                # `scopes` the request asks for.
                self.answer(200, json.dumps(iam.issue_access_token(account)), "application/json")
            elif leaf == "identity":
                self.serve_identity(account, query)
            else:
                self.answer(404, "Not Found\n", HTML)

        def serve_identity(self, account: dict, query: dict) -> None:
            audience = query.get("audience", [""])[0]
            if not audience:
                self.answer(400, "non-empty audience parameter required\n", HTML)
                return
            token_format = query.get("format", ["standard"])[0]
            if token_format not in ("standard", "full"):
                self.answer(400, "format must be 'standard' or 'full'\n", HTML)
                return
            licenses = query.get("licenses", ["FALSE"])[0].upper() == "TRUE"
            claims = state.identity_claims(account, audience, token_format == "full", licenses)
            self.answer(200, state.keys.mint(claims), HTML)

    return MetadataHandler


def start(state: bed_state.BedState, latency: bed_latency.Latency | None = None, iam=None) -> bed_http.Server:
    return bed_http.Server(("127.0.0.1", 0), make_handler(state, latency, iam))
