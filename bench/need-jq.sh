#!/usr/bin/env bash
# `make bench` needs jq for the blog-style baseline script; installs Debian's jq when missing.
set -euo pipefail
command -v jq >/dev/null 2>&1 && exit 0
echo "bench: installing jq with apt-get" >&2
run() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
run env DEBIAN_FRONTEND=noninteractive apt-get update -q
run env DEBIAN_FRONTEND=noninteractive apt-get install -y -q jq
command -v jq >/dev/null 2>&1 || { echo "bench: jq is still missing after apt-get install" >&2; exit 1; }
