#!/usr/bin/env bash
# Run a command with Debian's chromium for the browser tests: RUNBASE_TEST_CHROMIUM holds its
# path. Installs Debian's chromium package when it is missing (needs root); never downloads a
# browser build. Without it the command still runs (browser tests skip) unless CI=true.
set -uo pipefail

browser=/usr/bin/chromium
if [ ! -x "$browser" ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing chromium from Debian ..." >&2
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) >&2
fi
if [ ! -x "$browser" ]; then
    [ "${CI:-}" = true ] && { echo "no chromium available" >&2; exit 1; }
    echo "no chromium: the browser tests will be skipped" >&2
    exec "$@"
fi
export RUNBASE_TEST_CHROMIUM="$browser"
exec "$@"
