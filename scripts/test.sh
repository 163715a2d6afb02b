#!/usr/bin/env bash
# Runs leazzard's tests: unit tests, and end-to-end tests that start the real binary against a
# simulated Proxmox API and query it with `dig`. Lab tests (root, network namespaces) run only
# with LEAZZARD_LAB_TESTS=1; they say so when skipped.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v dig >/dev/null 2>&1 || need+=(dnsutils)
if [ "${#need[@]}" -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "test.sh: installing ${need[*]} (needed by the end-to-end tests)"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  else
    echo "test.sh: the end-to-end tests need: ${need[*]} (Debian/Ubuntu: sudo apt-get install ${need[*]})" >&2
    exit 1
  fi
fi

cargo test --all-targets "$@"
