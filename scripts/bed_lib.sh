# Sourced by scripts/demo.sh and scripts/bed.sh: start the local test bed in the background and
# stop it again, the one home of that logic. Needs ROOT and PYTHON set.
#
#   bed_start DIR   starts tests/testbed/testbed.py, stopping with this shell (--parent-pid);
#                   waits until DIR/bed.json is written (exits 1 with the bed's log if it is
#                   not); sets bed_pid, aws_endpoint and metadata_host
#   bed_stop        SIGTERM, up to 5 s, then SIGKILL; reaps it; safe to call twice
#   write_cli_config FILE DIR
#                   a Terraform / OpenTofu CLI configuration whose dev_overrides point the
#                   provider at DIR under BOTH registry hosts: Terraform resolves gcpfed/gcpfed
#                   on registry.terraform.io, OpenTofu on registry.opentofu.org (with the first
#                   only, `tofu` would look for the provider online). No `init` is needed.

bed_pid=""

bed_stop() {
  if [ -n "$bed_pid" ] && kill -0 "$bed_pid" 2>/dev/null; then
    kill -TERM "$bed_pid" 2>/dev/null || true
    for _ in $(seq 50); do
      kill -0 "$bed_pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$bed_pid" 2>/dev/null || true
  fi
  if [ -n "$bed_pid" ]; then
    wait "$bed_pid" 2>/dev/null || true
  fi
  bed_pid=""
}

bed_start() {
  local dir=$1
  "$PYTHON" "$ROOT/tests/testbed/testbed.py" --serve --ready-file "$dir/bed.json" --parent-pid $$ \
    </dev/null >"$dir/bed.out" 2>"$dir/bed.log" &
  bed_pid=$!
  for _ in $(seq 600); do
    [ -s "$dir/bed.json" ] && break
    if ! kill -0 "$bed_pid" 2>/dev/null; then
      echo "the test bed exited before it was ready:" >&2
      cat "$dir/bed.log" >&2
      exit 1
    fi
    sleep 0.1
  done
  [ -s "$dir/bed.json" ] || { echo "the test bed was not ready after 60 s" >&2; cat "$dir/bed.log" >&2; exit 1; }
  read -r aws_endpoint metadata_host < <("$PYTHON" -c '
import json, sys
info = json.load(open(sys.argv[1]))
print(info["aws_endpoint"], info["metadata_host"])' "$dir/bed.json")
}

write_cli_config() {
  cat >"$1" <<TFRC
provider_installation {
  dev_overrides {
    "registry.terraform.io/gcpfed/gcpfed" = "$2"
    "registry.opentofu.org/gcpfed/gcpfed" = "$2"
  }
  direct {}
}
TFRC
}
