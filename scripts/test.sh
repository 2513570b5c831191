#!/usr/bin/env bash
# `make test` after `make tools`: formatting check, clippy, then every test (unit, integration,
# acceptance under Terraform and OpenTofu). Runs all three steps even when one fails, then prints
# a plain summary; exits non-zero when any step failed.
#
#   scripts/test.sh [TEST_THREADS]
set -uo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
threads=${1:-4}
log_dir=target/test-logs
mkdir -p "$log_dir"
test_log=$log_dir/cargo-test.log

declare -a names=() results=() times=()
failed=0

step() {
  local name=$1
  shift
  printf '\n==> %s: %s\n' "$name" "$*"
  local start=$SECONDS rc=0
  "$@" || rc=$?
  names+=("$name")
  times+=("$((SECONDS - start))s")
  if [ "$rc" -eq 0 ]; then
    results+=("ok")
  else
    results+=("FAILED (exit $rc)")
    failed=1
  fi
}

run_cargo_test() {
  cargo test --no-fail-fast -- --test-threads="$threads" 2>&1 | tee "$test_log"
}

step fmt cargo fmt --all -- --check
step clippy cargo clippy --all-targets -- -D warnings
step tests run_cargo_test

# Sum cargo's per-binary "test result:" lines.
read -r passed failed_tests ignored binaries < <(
  awk '/^test result:/ {
         for (i = 1; i <= NF; i++) {
           if ($(i) ~ /^passed;?$/)  p += $(i-1)
           if ($(i) ~ /^failed;?$/)  f += $(i-1)
           if ($(i) ~ /^ignored;?$/) g += $(i-1)
         }
         b++
       }
       END { printf "%d %d %d %d\n", p, f, g, b }' "$test_log" 2>/dev/null || echo "0 0 0 0"
)

echo
echo "==> summary"
for i in "${!names[@]}"; do
  printf '  %-7s %-18s %s\n' "${names[$i]}" "${results[$i]}" "${times[$i]}"
done
failing=$(grep -E '^test .* \.\.\. FAILED$' "$test_log" | sed -E 's/^test (.*) \.\.\. FAILED$/\1/' | sort -u | paste -sd' ' -)
printf '  %d test binaries; failing tests: %s\n' "$binaries" "${failing:-none}"
echo "tests: $passed passed, $failed_tests failed, $ignored skipped"
exit "$failed"
