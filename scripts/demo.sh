#!/usr/bin/env bash
# `make demo` (after `cargo build` and `make tools`): start the local test bed, apply
# examples/quickstart with the real Terraform against it, print what it produced, destroy,
# and stop everything. Nothing it starts outlives it: the bed is stopped on any exit (and also
# stops by itself when this script's process is gone, through --parent-pid).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
PYTHON=${GCPFED_PYTHON:-$ROOT/.tools/venv/bin/python}
TERRAFORM=${GCPFED_TERRAFORM:-$ROOT/.tools/bin/terraform}
PROVIDER_DIR=$ROOT/target/debug

say() { printf '\n==> demo: %s\n' "$*"; }

[ -x "$PROVIDER_DIR/terraform-provider-gcpfed" ] || { echo "demo: build first (make build)" >&2; exit 1; }
[ -x "$TERRAFORM" ] || { echo "demo: run make tools first" >&2; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/gcpfed-demo.XXXXXX")
# shellcheck source=scripts/bed_lib.sh
. "$ROOT/scripts/bed_lib.sh"

cleanup() {
  local rc=$?
  bed_stop
  rm -rf "$work"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

say "starting the test bed (moto IAM/STS behind the STS gate, GCE metadata emulator)"
bed_start "$work"
echo "AWS (IAM + STS): $aws_endpoint    GCE metadata: $metadata_host    (pid $bed_pid)"

# The provider binary just built, through dev_overrides (no init, no registry).
write_cli_config "$work/cli.tfrc" "$PROVIDER_DIR"
cp -R "$ROOT/examples/quickstart" "$work/quickstart"
cd "$work/quickstart"

# Only what the demo means: no credential, endpoint or log setting of this machine leaks in.
while IFS= read -r var; do unset "$var"; done < <(compgen -e | grep -E '^(AWS_|TF_|GCE_METADATA|GOOGLE_)' || true)
export TF_CLI_CONFIG_FILE=$work/cli.tfrc TF_IN_AUTOMATION=1 CHECKPOINT_DISABLE=1 TF_INPUT=0
export TF_VAR_aws_endpoint=$aws_endpoint TF_VAR_metadata_host=$metadata_host
# The emulator's credentials for the provider's own IAM calls (the standard chain).
export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true

nocolor=()
[ -t 1 ] || nocolor=(-no-color)

say "terraform apply (examples/quickstart)"
"$TERRAFORM" apply -auto-approve -input=false "${nocolor[@]}"
say "terraform output"
"$TERRAFORM" output "${nocolor[@]}"
say "terraform show"
"$TERRAFORM" show "${nocolor[@]}"
say "terraform destroy"
"$TERRAFORM" destroy -auto-approve -input=false "${nocolor[@]}"

say "stopping the test bed"
bed_stop
say "done: applied, showed and destroyed examples/quickstart; the test bed is stopped"
