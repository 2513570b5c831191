"""A private Terraform registry and a provider network mirror over HTTPS on 127.0.0.1, for
tests/distribution.rs: the engines install the provider from release artifacts exactly as
from a public registry (service discovery, versions, download with signing keys, SHA256SUMS
and its signature) or from a network mirror (index.json, <version>.json).

    python tests/registry/registry_server.py --cert-dir DIR [--site NAME=DIST_DIR ...]
                                             [--mirror MIRROR_DIR]

Each --site serves one dist/ (the output of `make release`) under /NAME/:
    /NAME/v1/providers/<ns>/<type>/versions
    /NAME/v1/providers/<ns>/<type>/<version>/download/<os>/<arch>
    /NAME/files/<file>
so that one server can hold a good release and tampered copies side by side; a CLI config's
`host` block points providers.v1 at https://127.0.0.1:PORT/NAME/v1/providers/.
/.well-known/terraform.json (service discovery) names the first site. /mirror/ serves
MIRROR_DIR (the output of `make mirror`) as a network mirror. /_requests lists the paths
requested so far (so a test can check that the signature was fetched).

At start it makes a throwaway CA and a certificate for 127.0.0.1, writes the CA to
DIR/ca.pem (the test names it in SSL_CERT_FILE), and prints one JSON line on stdout:
{"url": "https://127.0.0.1:PORT", "ca": "DIR/ca.pem"}. It serves until its stdin closes
(the test holds the other end), so it never outlives the test.
"""

from __future__ import annotations

import argparse
import datetime
import http.server
import json
import os
import re
import ssl
import subprocess
import sys
import tempfile
import threading
import urllib.parse

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

ZIP_NAME = re.compile(r"^terraform-provider-(?P<type>[a-z0-9-]+)_(?P<version>[^_]+)_(?P<os>[a-z0-9]+)_(?P<arch>[a-z0-9]+)\.zip$")


def make_certificates(cert_dir: str) -> tuple[str, str, str]:
    """A CA and a server certificate for 127.0.0.1 / localhost signed by it (one day)."""
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "gcpfed test registry CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    import ipaddress

    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]),
            critical=False,
        )
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    ca_path = os.path.join(cert_dir, "ca.pem")
    cert_path = os.path.join(cert_dir, "server.pem")
    key_path = os.path.join(cert_dir, "server.key")
    with open(ca_path, "wb") as f:
        f.write(ca.public_bytes(serialization.Encoding.PEM))
    with open(cert_path, "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    with open(key_path, "wb") as f:
        f.write(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
    return ca_path, cert_path, key_path


def key_id(armored_key_path: str) -> str:
    """The long key ID of the primary key in an armored public key (gpg in a throwaway home)."""
    with tempfile.TemporaryDirectory(prefix="gcpfed-registry-gnupg-") as home:
        out = subprocess.run(
            ["gpg", "--homedir", home, "--batch", "--with-colons", "--show-keys", armored_key_path],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        subprocess.run(["gpgconf", "--homedir", home, "--kill", "gpg-agent"], capture_output=True)
    for line in out.splitlines():
        fields = line.split(":")
        if fields[0] == "pub":
            return fields[4]
    raise ValueError(f"no public key in {armored_key_path}")


class Site:
    """One dist/ directory in the Registry's release layout."""

    def __init__(self, name: str, directory: str):
        self.name = name
        self.directory = directory

    def zips(self, provider_type: str) -> list[dict]:
        found = []
        for file in sorted(os.listdir(self.directory)):
            m = ZIP_NAME.match(file)
            if m and m["type"] == provider_type:
                found.append({**m.groupdict(), "filename": file})
        return found

    def protocols(self, provider_type: str, version: str) -> list[str]:
        manifest = os.path.join(self.directory, f"terraform-provider-{provider_type}_{version}_manifest.json")
        with open(manifest) as f:
            return json.load(f)["metadata"]["protocol_versions"]

    def shasum(self, provider_type: str, version: str, filename: str) -> str:
        sums = os.path.join(self.directory, f"terraform-provider-{provider_type}_{version}_SHA256SUMS")
        with open(sums) as f:
            for line in f:
                digest, _, name = line.strip().partition("  ")
                if name == filename:
                    return digest
        raise KeyError(filename)


class Handler(http.server.BaseHTTPRequestHandler):
    server_version = "gcpfed-test-registry"

    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        if os.environ.get("GCPFED_REGISTRY_LOG") == "1":
            sys.stderr.write("registry: " + format % args + "\n")

    def send_json(self, status: int, body) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def send_file(self, path: str) -> None:
        if not os.path.isfile(path):
            self.send_json(404, {"errors": ["not found"]})
            return
        with open(path, "rb") as f:
            data = f.read()
        # The network mirror protocol requires application/json for its index files.
        content_type = "application/json" if path.endswith(".json") else "application/octet-stream"
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:  # noqa: N802 - the base class's name
        app = self.server.app
        path = urllib.parse.urlsplit(self.path).path
        with app["lock"]:
            app["requests"].append(path)
        parts = [urllib.parse.unquote(p) for p in path.split("/") if p]
        if any(p in (".", "..") or "/" in p for p in parts):
            self.send_json(400, {"errors": ["bad path"]})
            return
        if path == "/.well-known/terraform.json":
            first = next(iter(app["sites"]), None)
            self.send_json(200, {"providers.v1": f"/{first}/v1/providers/"} if first else {})
        elif path == "/_requests":
            with app["lock"]:
                self.send_json(200, list(app["requests"]))
        elif parts[:1] == ["mirror"] and app["mirror"]:
            self.send_file(os.path.join(app["mirror"], *parts[1:]))
        elif len(parts) >= 2 and parts[0] in app["sites"]:
            self.site(app["sites"][parts[0]], parts[1:])
        else:
            self.send_json(404, {"errors": ["not found"]})

    def site(self, site: Site, parts: list[str]) -> None:
        base = f"{self.server.app['url']}/{site.name}"
        if parts[0] == "files" and len(parts) == 2:
            self.send_file(os.path.join(site.directory, parts[1]))
            return
        if parts[:2] != ["v1", "providers"] or len(parts) < 5:
            self.send_json(404, {"errors": ["not found"]})
            return
        namespace, provider_type = parts[2], parts[3]
        zips = site.zips(provider_type) if namespace == "gcpfed" else []
        if not zips:
            self.send_json(404, {"errors": ["provider not found"]})
        elif parts[4:] == ["versions"]:
            versions: dict[str, list] = {}
            for z in zips:
                versions.setdefault(z["version"], []).append({"os": z["os"], "arch": z["arch"]})
            self.send_json(
                200,
                {
                    "versions": [
                        {"version": v, "protocols": site.protocols(provider_type, v), "platforms": p}
                        for v, p in versions.items()
                    ]
                },
            )
        elif len(parts) == 8 and parts[5] == "download":
            version, os_name, arch = parts[4], parts[6], parts[7]
            match = [z for z in zips if (z["version"], z["os"], z["arch"]) == (version, os_name, arch)]
            if not match:
                self.send_json(404, {"errors": ["no such version or platform"]})
                return
            filename = match[0]["filename"]
            sums = f"terraform-provider-{provider_type}_{version}_SHA256SUMS"
            key_path = os.path.join(site.directory, "signing-key.asc")
            with open(key_path) as f:
                armor = f.read()
            self.send_json(
                200,
                {
                    "protocols": site.protocols(provider_type, version),
                    "os": os_name,
                    "arch": arch,
                    "filename": filename,
                    "download_url": f"{base}/files/{filename}",
                    "shasums_url": f"{base}/files/{sums}",
                    "shasums_signature_url": f"{base}/files/{sums}.sig",
                    "shasum": site.shasum(provider_type, version, filename),
                    "signing_keys": {
                        "gpg_public_keys": [
                            {
                                "key_id": key_id(key_path),
                                "ascii_armor": armor,
                                "trust_signature": "",
                                "source": "gcpfed",
                                "source_url": None,
                            }
                        ]
                    },
                },
            )
        else:
            self.send_json(404, {"errors": ["not found"]})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cert-dir", required=True)
    parser.add_argument("--site", action="append", default=[], help="NAME=DIST_DIR")
    parser.add_argument("--mirror", help="a `make mirror` tree, served under /mirror/")
    args = parser.parse_args()

    sites = {}
    for spec in args.site:
        name, _, directory = spec.partition("=")
        sites[name] = Site(name, os.path.abspath(directory))
    ca_path, cert_path, key_path = make_certificates(args.cert_dir)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_path, key_path)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    url = f"https://127.0.0.1:{server.server_address[1]}"
    server.app = {
        "url": url,
        "sites": sites,
        "mirror": os.path.abspath(args.mirror) if args.mirror else None,
        "requests": [],
        "lock": threading.Lock(),
    }
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True).start()
    print(json.dumps({"url": url, "ca": ca_path}), flush=True)
    # The test holds our stdin: end of file means the test is over (or gone).
    sys.stdin.read()
    server.shutdown()


if __name__ == "__main__":
    main()
