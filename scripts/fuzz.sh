#!/usr/bin/env bash
# `make fuzz`: runs every cargo-fuzz target of fuzz/ for a bounded time, one after the other, and
# prints the executions each one made. Not part of `make test` (it needs the nightly toolchain
# and minutes of CPU); whatever it finds becomes a unit test marked "found by make fuzz".
#
#   FUZZ_SECONDS=60        seconds per target (default 60)
#   FUZZ_TARGETS="a b"     only these targets (default: every target `cargo fuzz list` shows)
#   FUZZ_SANITIZER=none    cargo-fuzz's sanitizer (default none: the code under test is safe
#                          Rust, and without ASan the targets build faster and run ~2x more inputs)
#
# New inputs go to fuzz/corpus/<target> (git-ignored), read together with the committed seeds in
# fuzz/seeds/<target>; a crash is saved under fuzz/artifacts/<target> and fails this script.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"

SECONDS_PER_TARGET="${FUZZ_SECONDS:-60}"
SANITIZER="${FUZZ_SANITIZER:-none}"
CARGO_FUZZ_ROOT="$ROOT/.tools/cargo-fuzz"
export PATH="$CARGO_FUZZ_ROOT/bin:$PATH"

if ! rustup toolchain list | grep -q '^nightly'; then
  echo "make fuzz: the nightly toolchain is missing; install it with: rustup toolchain install nightly" >&2
  exit 1
fi
if [[ ! -x "$CARGO_FUZZ_ROOT/bin/cargo-fuzz" ]]; then
  echo "make fuzz: installing cargo-fuzz into $CARGO_FUZZ_ROOT"
  cargo install --root "$CARGO_FUZZ_ROOT" cargo-fuzz --locked
fi

targets="${FUZZ_TARGETS:-$(cargo +nightly fuzz list)}"
cargo +nightly fuzz build -s "$SANITIZER"

declare -A execs
status=0
for target in $targets; do
  mkdir -p "fuzz/corpus/$target"
  log="$(mktemp)"
  echo "== $target: ${SECONDS_PER_TARGET}s"
  if cargo +nightly fuzz run -s "$SANITIZER" "$target" "fuzz/corpus/$target" "fuzz/seeds/$target" \
      -- -max_total_time="$SECONDS_PER_TARGET" -print_final_stats=1 2>"$log"; then
    result=ok
  else
    result="FAILED (see fuzz/artifacts/$target and the log above)"
    status=1
    tail -n 40 "$log" >&2
  fi
  runs="$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || true)"
  execs[$target]="${runs:-?} executions, $result"
  rm -f "$log"
done

echo
echo "make fuzz: ${SECONDS_PER_TARGET}s per target"
for target in $targets; do
  printf '  %-16s %s\n' "$target" "${execs[$target]}"
done
exit "$status"
