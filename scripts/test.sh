#!/usr/bin/env bash
# The one test command (CI runs it too): unit tests (swift test), then integration tests
# that start a real nginx and the real worker pool on loopback ports (pytest), on SQLite and
# again on PostgreSQL (a throwaway cluster: scripts/postgres.sh).
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/postgres.sh"

ensure_packages "${SYSTEM_PACKAGES[@]}" python3-venv postgresql
command -v swift >/dev/null || fail "swift is not on PATH (Swift 6 toolchain required)"
# Headless Chromium drives the login and consent pages. Without it those tests skip on a
# developer's machine; in CI (CI=true, as .ci/run sets) a missing browser is an error, so a
# run that skipped the browser security tests never passes (test_browser.py fails too).
if ! ensure_packages chromium chromium-driver; then
    case "${CI:-}" in
        ""|0|false|no) say "warning: chromium not installed; browser tests will be skipped" ;;
        *) fail "chromium and chromium-driver could not be installed (CI=$CI: browser tests may not be skipped)" ;;
    esac
fi

cd "$ROOT"
pg_up
trap pg_down EXIT
# The storage contract suite and the PostgreSQL backend's own tests run against it too.
export GATEHOUSE_TEST_POSTGRES=$PG_URI
say "== unit tests (swift test; the storage contract on SQLite, memory and PostgreSQL)"
swift build --build-tests 2>&1 | grep -E 'error:|Build complete' | tail -5 >&2
swift test 2>&1 | tail -n 25

say "== integration tests (nginx + worker pool + SQLite, over HTTPS)"
venv=$ROOT/.venv
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv" 2>/dev/null || python3 -m venv --without-pip "$venv"
fi
"$venv/bin/python" -m pip install -q --disable-pip-version-check pytest requests authlib requests-oauthlib selenium prometheus-client >/dev/null
export GATEHOUSE_BIN=${GATEHOUSE_BIN:-$ROOT/.build/debug/gatehouse}
GATEHOUSE_DATABASE= "$venv/bin/python" -m pytest -q -p no:cacheprovider Tests/integration "$@"

say "== integration tests again on PostgreSQL (a schema per stack; SQLite-file tests skip)"
GATEHOUSE_DATABASE=$PG_URI "$venv/bin/python" -m pytest -q -p no:cacheprovider Tests/integration "$@"

# scripts/install.sh in system mode under a real systemd (a container of this machine's root;
# ~15 s). It skips, saying why, without root or where no container boots.
say "== install.sh under systemd (scripts/test-systemd.sh)"
if [ $# -gt 0 ]; then
    say "SKIP systemd test: pytest arguments given (a selection)"
else
    scripts/test-systemd.sh --binary "$GATEHOUSE_BIN"
fi
