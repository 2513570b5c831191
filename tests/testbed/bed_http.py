"""Small HTTP plumbing shared by the gate and the metadata emulator (stdlib only, so that the
bed starts in well under a second)."""

from __future__ import annotations

import json
import os
import socketserver
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer

VERBOSE = os.environ.get("GCPFED_TESTBED_LOG", "") not in ("", "0")


def log(message: str) -> None:
    """Diagnostics to stderr only; never called with a token or a secret."""
    print(f"testbed: {message}", file=sys.stderr, flush=True)


class Server(socketserver.ThreadingMixIn, HTTPServer):
    daemon_threads = True
    allow_reuse_address = False
    request_queue_size = 64

    def server_bind(self) -> None:
        # HTTPServer.server_bind resolves the host name (getfqdn), which can stall offline.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name, self.server_port = host, port

    def handle_error(self, request, client_address) -> None:
        exc = sys.exc_info()[1]
        if isinstance(exc, (BrokenPipeError, ConnectionResetError, TimeoutError)):
            return
        log(f"unexpected error while serving a request: {exc!r}")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # TCP_NODELAY: headers and body go out in separate writes, and on a kept-alive connection
    # Nagle's algorithm holds the body until the client's delayed ACK (~40 ms per request).
    disable_nagle_algorithm = True
    # An idle keep-alive connection is closed after this long (seconds).
    timeout = 60

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - base class signature
        pass

    def log_request(self, code="-", size="-") -> None:
        if VERBOSE:
            path = self.path.split("?", 1)[0]
            log(f"{type(self).__name__} {self.command} {path} -> {code}")

    def read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                line = self.rfile.readline(65537)
                size = int(line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    # trailers until the empty line
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline(3)
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def send_bytes(self, status: int, body: bytes, content_type: str, headers: dict | None = None) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def send_json(self, status: int, value) -> None:
        self.send_bytes(status, json.dumps(value).encode("utf-8"), "application/json")

    def read_json(self):
        body = self.read_body()
        if not body.strip():
            return None
        return json.loads(body)
