#!/usr/bin/env bash
# `make install [VERSION=X.Y.Z]`: unpacks this machine's release zip into the directories that
# Terraform and OpenTofu search without any configuration (their implied filesystem mirror),
#
#   ~/.terraform.d/plugins/registry.terraform.io/gcpfed/gcpfed/X.Y.Z/<os>_<arch>/
#   ~/.terraform.d/plugins/registry.opentofu.org/gcpfed/gcpfed/X.Y.Z/<os>_<arch>/
#
# so that a configuration with `version = "X.Y.Z"` runs `init` offline, without dev_overrides,
# and records the binary's h1: hash in .terraform.lock.hcl. Uses $DIST's zip when there is one
# (checked against $DIST's SHA256SUMS when present), else builds it (scripts/release.sh zips).
# Prints where the binary is, for `credential_process` in ~/.aws/config. With BINDIR=DIR it
# also copies the binary there as `terraform-provider-gcpfed` (for example BINDIR=~/.local/bin).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
TOOL=install
# shellcheck source=scripts/release_common.sh
. scripts/release_common.sh
[ -n "${HOME:-}" ] || die "HOME is not set: Terraform and OpenTofu look under ~/.terraform.d/plugins"

case "$(uname -s)/$(uname -m)" in
  Linux/x86_64) platform=linux_amd64 ;; Linux/aarch64) platform=linux_arm64 ;;
  Darwin/x86_64) platform=darwin_amd64 ;; Darwin/arm64) platform=darwin_arm64 ;;
  *) die "no release platform for $(uname -s)/$(uname -m)" ;;
esac
zip=$DIST/${NAME}_${VERSION}_${platform}.zip
sums=$DIST/${NAME}_${VERSION}_SHA256SUMS

if [ ! -f "$zip" ]; then
  say "$zip does not exist: building it"
  VERSION=$VERSION DIST=$DIST TARGETS=$platform scripts/release.sh zips
fi

binary=$("$PYTHON" - "$zip" "$sums" "$HOME" "$VERSION" "$platform" "${BINDIR:-}" <<'PY'
import hashlib, os, sys, zipfile

zip_path, sums, home, version, platform, bindir = sys.argv[1:7]
name = "terraform-provider-gcpfed"
data = open(zip_path, "rb").read()
if os.path.exists(sums):
    expected = {line.split("  ", 1)[1].strip(): line.split("  ", 1)[0] for line in open(sums) if "  " in line}
    want = expected.get(os.path.basename(zip_path))
    if want != hashlib.sha256(data).hexdigest():
        sys.exit(f"install: error: {zip_path} does not match {sums}: rebuild it with make release")
entry = f"{name}_v{version}"
with zipfile.ZipFile(zip_path) as archive:
    binary = archive.read(entry)
targets = [
    os.path.join(home, ".terraform.d", "plugins", host, "gcpfed", "gcpfed", version, platform, entry)
    for host in ("registry.terraform.io", "registry.opentofu.org")
]
if bindir:
    targets.append(os.path.join(os.path.expanduser(bindir), name))
for target in targets:
    os.makedirs(os.path.dirname(target), exist_ok=True)
    tmp = target + ".tmp"
    with open(tmp, "wb") as f:
        f.write(binary)
    os.chmod(tmp, 0o755)
    os.replace(tmp, target)
    print(f"install: wrote {target}", file=sys.stderr)
print(targets[-1] if bindir else targets[0])
PY
)

cat <<MSG
Installed $NAME $VERSION ($platform): Terraform and OpenTofu find it offline, without
dev_overrides, for required_providers { gcpfed = { source = "gcpfed/gcpfed", version = "$VERSION" } }.

The binary, for credential_process in ~/.aws/config:
  $binary
for example:
  [profile gcp-runner]
  credential_process = $binary credential-process --role-arn ROLE_ARN --audience AUDIENCE
MSG
