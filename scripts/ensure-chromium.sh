#!/bin/sh
# Gets the browser the dashboard's browser test drives: Debian's chromium at /usr/bin/chromium
# (playwright-core never downloads one). Run by `npm test` and by .ci/run before the tests.
#   - present: nothing to do;
#   - missing, and we are root with apt-get: installs the `chromium` package (as CI does);
#   - otherwise (or HOTWARM_NO_INSTALL=1): prints one line naming what to install and exits 0,
#     so the rest of the suite runs and only the browser test fails, with that same line.
# Never fails the test command by itself.
CHROMIUM=/usr/bin/chromium
HINT="the dashboard browser test needs Debian's chromium at $CHROMIUM: install it as root with 'apt-get install chromium'"

[ -x "$CHROMIUM" ] && exit 0

if [ "${HOTWARM_NO_INSTALL:-}" != 1 ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "test: installing chromium (apt-get) for the dashboard browser test" >&2
  log=$(mktemp)
  if (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) >"$log" 2>&1 && [ -x "$CHROMIUM" ]; then
    rm -f "$log"
    exit 0
  fi
  echo "test: apt-get could not install chromium (last lines of its output follow)" >&2
  tail -n 5 "$log" >&2
  rm -f "$log"
fi

echo "test: $HINT" >&2
exit 0
