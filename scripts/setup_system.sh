#!/usr/bin/env bash
# The system packages the test suite needs, installed once when absent: Debian's chromium (the report and
# dashboard tests look at pages in a real browser) and postgresql (the shared-storage tests run a private
# server). Sourced by test.sh; needs root and apt-get to install, and says what is missing otherwise.
set -euo pipefail
missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
if ! command -v pg_ctl >/dev/null 2>&1 && ! ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1; then
  missing+=(postgresql)
fi
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing system packages for the tests: ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "warning: the tests need ${missing[*]} (Debian packages); install them as root, or those tests fail" >&2
  fi
fi
