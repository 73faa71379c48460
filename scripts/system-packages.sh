#!/usr/bin/env bash
# The machine's own packages `make test` needs beyond Python, in one list that `make test` and CI
# both run: PostgreSQL server binaries (throw-away warehouses), Chromium (the dashboard's
# browser tests) and Redis (the Celery executor's broker). Installs what is missing when it can
# (root with apt-get, or passwordless sudo); otherwise prints the one command that would, and
# fails before any test starts.
set -euo pipefail
purpose=test

missing=()
has_postgres() {
  command -v initdb >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 \
    || [ -x "${MOONWATCH_PG_BINDIR:-/nonexistent}/initdb" ]
}
has_postgres || missing+=(postgresql)
# Playwright drives the machine's Chromium (CHROMIUM_PATH, default /usr/bin/chromium).
[ -x "${CHROMIUM_PATH:-/usr/bin/chromium}" ] || missing+=(chromium)
# Redis: the Celery broker of MOONWATCH_EXECUTOR=celery (the Celery end-to-end test).
command -v redis-server >/dev/null 2>&1 || [ -x /usr/bin/redis-server ] || missing+=(redis-server)
[ ${#missing[@]} -eq 0 ] && exit 0

if command -v apt-get >/dev/null 2>&1; then
  runner=()
  if [ "$(id -u)" -ne 0 ]; then
    if sudo -n true 2>/dev/null; then runner=(sudo -n); else runner=(none); fi
  fi
  if [ "${runner[0]:-}" != none ]; then
    echo "system packages: installing ${missing[*]}"
    "${runner[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    "${runner[@]}" env DEBIAN_FRONTEND=noninteractive \
      apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    exit 0
  fi
  echo "Moonwatch needs these system packages for \`make $purpose\`: ${missing[*]}." >&2
  echo "Install them with: sudo apt-get install ${missing[*]}" >&2
else
  echo "Moonwatch needs these system packages for \`make $purpose\`: ${missing[*]}." >&2
  echo "Install them with your system's package manager (PostgreSQL server binaries with" >&2
  echo "initdb on PATH; Chromium, or point CHROMIUM_PATH at a Chromium binary)." >&2
fi
exit 1
