# Sourced by scripts/release.sh, install.sh and mirror.sh (after `cd` to the repository root and
# setting TOOL to their name): the names, the Python and the version rule they share.

NAME=terraform-provider-gcpfed
# The test venv's Python when there is one (make exports GCPFED_PYTHON), else the system's:
# only the standard library is used, so a CI runner needs nothing installed.
PYTHON=${GCPFED_PYTHON:-python3}
[ -x "$PYTHON" ] || command -v "$PYTHON" >/dev/null 2>&1 || PYTHON=python3

say() { printf '%s: %s\n' "$TOOL" "$*" >&2; }
die() { say "error: $*"; exit 1; }

# The version in Cargo.toml: what the binary's --version prints.
CARGO_VERSION=$(sed -n 's/^version *= *"\(.*\)"$/\1/p' Cargo.toml | head -n1)
# VERSION=X.Y.Z (a leading v as in a tag is dropped); default Cargo.toml's.
VERSION=${VERSION:-$CARGO_VERSION}
VERSION=${VERSION#v}
DIST=${DIST:-dist}
