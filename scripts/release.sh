#!/usr/bin/env bash
# `make release VERSION=X.Y.Z`: release artifacts in the Terraform Registry's layout (what
# goreleaser writes for the Registry), in $DIST (default dist/):
#
#   terraform-provider-gcpfed_X.Y.Z_<os>_<arch>.zip   holds terraform-provider-gcpfed_vX.Y.Z(.exe)
#   terraform-provider-gcpfed_X.Y.Z_manifest.json     a copy of terraform-registry-manifest.json
#   terraform-provider-gcpfed_X.Y.Z_SHA256SUMS        the zips and the manifest
#   terraform-provider-gcpfed_X.Y.Z_SHA256SUMS.sig    detached binary GPG signature
#   signing-key.asc                                   the armored public key
#
#   scripts/release.sh all    zips for $TARGETS, then sums and signature (make release)
#   scripts/release.sh zips   build and zip $TARGETS only (make release-zips; one CI runner each)
#   scripts/release.sh sign   manifest, SHA256SUMS over every zip of VERSION in $DIST, signature
#                             (make release-sign; the CI job that gathers the runners' zips)
#
# Inputs (environment): VERSION (default: Cargo.toml's; a different one is refused: the binary's
# --version comes from Cargo.toml, and a zip must not say one version while its binary says
# another), TARGETS (space-separated <os>_<arch>, default the machine's own), DIST, NO_BUILD=1
# (package the binaries an earlier run built, without cargo: tests/distribution.rs packages one
# build twice),
# GPG_PRIVATE_KEY (armored secret key, GPG_PASSPHRASE if it has one) or GPG_FINGERPRINT (a key
# of the caller's keyring); with neither, a throwaway key in a temporary GNUPGHOME.
#
# Reproducible: the same commit gives the same zip bytes. Paths of the checkout, the cargo home
# and the target directory are remapped out of the binary; zip entries have a fixed time (the
# commit's), fixed permissions and a fixed order; Cargo.lock is used as is (--locked).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
TOOL=release
# shellcheck source=scripts/release_common.sh
. scripts/release_common.sh

[[ $VERSION =~ ^[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]+)?$ ]] ||
  die "VERSION=$VERSION is not a semantic version X.Y.Z (for example VERSION=0.1.0)"
[ "$VERSION" = "$CARGO_VERSION" ] ||
  die "VERSION=$VERSION but Cargo.toml says $CARGO_VERSION: set version = \"$VERSION\" in Cargo.toml (the binary's --version comes from it), add a CHANGELOG.md section, commit, then run make release VERSION=$VERSION again"

# CHANGELOG.md has a section per release ("## X.Y.Z" or "## X.Y.Z (date)").
grep -Eq "^## ${VERSION//./\\.}( |\$)" CHANGELOG.md ||
  die "CHANGELOG.md has no \"## $VERSION\" section: add one (BREAKING CHANGES, FEATURES, ENHANCEMENTS, BUG FIXES)"

mkdir -p "$DIST"
DIST=$(cd "$DIST" && pwd)

host_platform() {
  local os arch
  case "$(uname -s)" in
    Linux) os=linux ;; Darwin) os=darwin ;; MINGW* | MSYS* | CYGWIN*) os=windows ;;
    *) die "unknown OS $(uname -s): set TARGETS" ;;
  esac
  case "$(uname -m)" in
    x86_64 | amd64) arch=amd64 ;; aarch64 | arm64) arch=arm64 ;;
    *) die "unknown architecture $(uname -m): set TARGETS" ;;
  esac
  echo "${os}_${arch}"
}
TARGETS=${TARGETS:-$(host_platform)}

# The Rust target triple of a Registry platform.
triple_of() {
  case "$1" in
    linux_amd64) echo x86_64-unknown-linux-gnu ;;
    linux_arm64) echo aarch64-unknown-linux-gnu ;;
    darwin_amd64) echo x86_64-apple-darwin ;;
    darwin_arm64) echo aarch64-apple-darwin ;;
    windows_amd64) echo x86_64-pc-windows-msvc ;;
    *) die "unknown platform $1 in TARGETS (known: linux_amd64 linux_arm64 darwin_amd64 darwin_arm64 windows_amd64)" ;;
  esac
}

# The commit's time: the zip entries' mtime (and SOURCE_DATE_EPOCH for anything that reads it).
source_date_epoch() {
  if [ -n "${SOURCE_DATE_EPOCH:-}" ]; then
    echo "$SOURCE_DATE_EPOCH"
  elif git -C "$ROOT" rev-parse HEAD >/dev/null 2>&1; then
    git -C "$ROOT" log -1 --format=%ct
  else
    echo 315532800 # 1980-01-01, the earliest time a zip entry can hold
  fi
}

build_zip() {
  local platform=$1 triple target_dir cargo_home exe="" binary
  triple=$(triple_of "$platform")
  [[ $platform == windows_* ]] && exe=.exe
  target_dir=${CARGO_TARGET_DIR:-$ROOT/target}
  cargo_home=${CARGO_HOME:-$HOME/.cargo}
  # Remaps: the most specific last (rustc applies the last matching one). An explicit --target
  # keeps these flags away from build scripts and keeps this build apart from target/release.
  local rustflags="--remap-path-prefix=$cargo_home=/cargo --remap-path-prefix=$ROOT=/build"
  rustflags+=" --remap-path-prefix=$target_dir=/build/target"
  binary=$target_dir/$triple/release/$NAME$exe
  if [ "${NO_BUILD:-}" = 1 ]; then
    [ -f "$binary" ] || die "NO_BUILD=1 but $binary does not exist: run make release first"
    say "NO_BUILD=1: packaging $binary as built before (no cargo run)"
  else
    say "building $NAME $VERSION for $platform ($triple)"
    SOURCE_DATE_EPOCH=$(source_date_epoch) RUSTFLAGS="$rustflags" \
      cargo build --release --locked --target "$triple" --bin "$NAME"
    [ -f "$binary" ] || die "cargo did not produce $binary"
  fi
  "$PYTHON" "$ROOT/scripts/release_zip.py" "$binary" "${NAME}_v$VERSION$exe" \
    "$DIST/${NAME}_${VERSION}_${platform}.zip" "$(source_date_epoch)"
  say "wrote $DIST/${NAME}_${VERSION}_${platform}.zip"
}

gnupg_tmp=""
cleanup() {
  if [ -n "$gnupg_tmp" ]; then
    gpgconf --homedir "$gnupg_tmp" --kill gpg-agent >/dev/null 2>&1 || true
    rm -rf "$gnupg_tmp"
  fi
}
trap cleanup EXIT

# Sets SIGNER (a fingerprint) and, for keys that are not the caller's, GNUPGHOME to a temporary
# directory: the caller's ~/.gnupg is only ever read, and only when GPG_FINGERPRINT names a key in it.
choose_key() {
  command -v gpg >/dev/null 2>&1 || die "gpg is needed to sign SHA256SUMS (apt-get install gnupg)"
  if [ -n "${GPG_PRIVATE_KEY:-}" ]; then
    gnupg_tmp=$(mktemp -d "${TMPDIR:-/tmp}/gcpfed-gnupg.XXXXXX")
    export GNUPGHOME=$gnupg_tmp
    printf '%s\n' "$GPG_PRIVATE_KEY" | gpg --batch --quiet --pinentry-mode loopback \
      --passphrase "${GPG_PASSPHRASE:-}" --import 2>/dev/null ||
      die "GPG_PRIVATE_KEY could not be imported (an ASCII-armored secret key is expected)"
    SIGNER=$(gpg --batch --no-auto-check-trustdb --with-colons --list-secret-keys | awk -F: '/^fpr:/ {print $10; exit}')
    [ -n "$SIGNER" ] || die "GPG_PRIVATE_KEY holds no secret key"
    say "signing with the key from GPG_PRIVATE_KEY ($SIGNER), imported into a temporary GNUPGHOME"
  elif [ -n "${GPG_FINGERPRINT:-}" ]; then
    SIGNER=$GPG_FINGERPRINT
    gpg --batch --list-secret-keys "$SIGNER" >/dev/null 2>&1 ||
      die "GPG_FINGERPRINT=$SIGNER: no such secret key in ${GNUPGHOME:-~/.gnupg}"
    say "signing with $SIGNER from ${GNUPGHOME:-~/.gnupg}"
  else
    gnupg_tmp=$(mktemp -d "${TMPDIR:-/tmp}/gcpfed-gnupg.XXXXXX")
    export GNUPGHOME=$gnupg_tmp
    say "WARNING: neither GPG_PRIVATE_KEY nor GPG_FINGERPRINT is set: signing with a THROWAWAY key"
    say "generated in the temporary GNUPGHOME $gnupg_tmp (deleted on exit; your keyring is untouched)."
    say "Users must trust signing-key.asc from this very dist/ for this release only."
    gpg --batch --quiet --passphrase '' --quick-generate-key \
      "terraform-provider-gcpfed throwaway release key" rsa4096 sign 1d 2>/dev/null
    SIGNER=$(gpg --batch --no-auto-check-trustdb --with-colons --list-secret-keys | awk -F: '/^fpr:/ {print $10; exit}')
  fi
}

sign() {
  local sums=${NAME}_${VERSION}_SHA256SUMS manifest=${NAME}_${VERSION}_manifest.json
  cp "$ROOT/terraform-registry-manifest.json" "$DIST/$manifest"
  (
    cd "$DIST"
    shopt -s nullglob
    local zips=("${NAME}_${VERSION}"_*.zip)
    [ ${#zips[@]} -gt 0 ] || die "no ${NAME}_${VERSION}_*.zip in $DIST: run make release-zips first"
    # C-locale order, two spaces: the format of sha256sum and goreleaser.
    printf '%s\n' "${zips[@]}" "$manifest" | LC_ALL=C sort | while IFS= read -r file; do
      "$PYTHON" -c 'import hashlib,sys; print(hashlib.sha256(open(sys.argv[1],"rb").read()).hexdigest())' "$file" |
        tr -d '\n'
      printf '  %s\n' "$file"
    done >"$sums"
  )
  choose_key
  rm -f "$DIST/$sums.sig" "$DIST/signing-key.asc"
  gpg --batch --quiet --no-auto-check-trustdb --pinentry-mode loopback --passphrase "${GPG_PASSPHRASE:-}" \
    --local-user "$SIGNER" --detach-sign --output "$DIST/$sums.sig" "$DIST/$sums"
  gpg --batch --no-auto-check-trustdb --armor --export "$SIGNER" >"$DIST/signing-key.asc"
  gpg --batch --quiet --verify "$DIST/$sums.sig" "$DIST/$sums" 2>/dev/null ||
    die "the signature just made does not verify"
  say "wrote $DIST/$sums, $sums.sig (key $SIGNER) and signing-key.asc"
}

case "${1:-all}" in
  zips) for platform in $TARGETS; do build_zip "$platform"; done ;;
  sign) sign ;;
  all)
    for platform in $TARGETS; do build_zip "$platform"; done
    sign
    ;;
  *) die "usage: scripts/release.sh [all|zips|sign]" ;;
esac
