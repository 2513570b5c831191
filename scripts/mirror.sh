#!/usr/bin/env bash
# `make mirror [VERSION=X.Y.Z]`: a provider network mirror (Terraform's provider network mirror
# protocol, the tree `terraform providers mirror` writes) from the release in $DIST, into
# $MIRROR (default $DIST/mirror):
#
#   <host>/gcpfed/gcpfed/index.json      {"versions": {"X.Y.Z": {}}}
#   <host>/gcpfed/gcpfed/X.Y.Z.json      {"archives": {"<os>_<arch>": {"url": "<zip>", "hashes": ["h1:..."]}}}
#   <host>/gcpfed/gcpfed/<zip>           the release zips
#
# for host registry.terraform.io and registry.opentofu.org. Serve $MIRROR over HTTPS and point
# `provider_installation { network_mirror { url = "https://HOST/PATH/" } }` at it. Before writing,
# it checks the SHA256SUMS signature (in a temporary GNUPGHOME) and every zip against SHA256SUMS:
# a mirror must not republish a tampered release. The key is $DIST/signing-key.asc unless
# SIGNING_KEY names a key file you pinned (the one in $DIST came with the artifacts it vouches for).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
TOOL=mirror
# shellcheck source=scripts/release_common.sh
. scripts/release_common.sh
MIRROR=${MIRROR:-$DIST/mirror}
SIGNING_KEY=${SIGNING_KEY:-$DIST/signing-key.asc}
sums=$DIST/${NAME}_${VERSION}_SHA256SUMS
[ -f "$sums" ] || die "$sums does not exist: run make release VERSION=$VERSION first"
[ -f "$sums.sig" ] && [ -f "$SIGNING_KEY" ] ||
  die "$sums.sig or $SIGNING_KEY is missing: run make release VERSION=$VERSION first"

gnupg=$(mktemp -d "${TMPDIR:-/tmp}/gcpfed-mirror-gnupg.XXXXXX")
trap 'gpgconf --homedir "$gnupg" --kill gpg-agent >/dev/null 2>&1 || true; rm -rf "$gnupg"' EXIT
gpg --homedir "$gnupg" --batch --quiet --import "$SIGNING_KEY" 2>/dev/null
gpg --homedir "$gnupg" --batch --quiet --verify "$sums.sig" "$sums" 2>/dev/null ||
  die "$sums.sig is not a valid signature of $sums by $SIGNING_KEY"

"$PYTHON" - "$DIST" "$MIRROR" "$VERSION" "$sums" <<'PY'
import base64, hashlib, json, os, re, shutil, sys, zipfile

dist, mirror, version, sums = sys.argv[1:5]
name = "terraform-provider-gcpfed"
listed = {}
for line in open(sums):
    digest, _, file = line.rstrip("\n").partition("  ")
    listed[file] = digest

def h1(zip_path):
    """Terraform's "h1:" hash of a provider package: SHA-256 over the sorted lines
    "<sha256 hex>  <name>\\n" of the files in the zip, base64."""
    lines = []
    with zipfile.ZipFile(zip_path) as archive:
        for info in sorted(archive.infolist(), key=lambda i: i.filename):
            if info.is_dir():
                continue
            lines.append(f"{hashlib.sha256(archive.read(info)).hexdigest()}  {info.filename}\n")
    return "h1:" + base64.b64encode(hashlib.sha256("".join(lines).encode()).digest()).decode()

pattern = re.compile(rf"^{name}_{re.escape(version)}_([a-z0-9]+_[a-z0-9]+)\.zip$")
archives = {}
for file in sorted(os.listdir(dist)):
    m = pattern.match(file)
    if not m:
        continue
    path = os.path.join(dist, file)
    digest = hashlib.sha256(open(path, "rb").read()).hexdigest()
    if listed.get(file) != digest:
        sys.exit(f"mirror: error: {path} does not match {sums}")
    archives[m[1]] = {"url": file, "hashes": [h1(path)]}
if not archives:
    sys.exit(f"mirror: error: no {name}_{version}_<os>_<arch>.zip in {dist}")

for host in ("registry.terraform.io", "registry.opentofu.org"):
    directory = os.path.join(mirror, host, "gcpfed", "gcpfed")
    os.makedirs(directory, exist_ok=True)
    index_path = os.path.join(directory, "index.json")
    index = json.load(open(index_path)) if os.path.exists(index_path) else {"versions": {}}
    index["versions"][version] = {}
    for file in archives.values():
        shutil.copyfile(os.path.join(dist, file["url"]), os.path.join(directory, file["url"]))
    with open(os.path.join(directory, f"{version}.json"), "w") as f:
        json.dump({"archives": archives}, f, indent=2, sort_keys=True)
        f.write("\n")
    with open(index_path, "w") as f:
        json.dump(index, f, indent=2, sort_keys=True)
        f.write("\n")
    print(f"mirror: wrote {directory} ({', '.join(sorted(archives))})", file=sys.stderr)
PY
say "serve $MIRROR over HTTPS and set provider_installation { network_mirror { url = \"https://<host>/<path>/\" } }"
