#!/usr/bin/env bash
# The browser of the real-browser tests (make test-ui): Debian's chromium package, installed through apt
# when it is missing. Playwright drives it; `playwright install` would download its own build instead.
#
# Exit 0 with a note when it cannot be installed here (no apt, not root, or no chromium package): the UI
# tests then skip, naming the reason. Exit 1 when apt was tried and failed.
set -euo pipefail

if command -v "${RZERO_CHROMIUM:-chromium}" >/dev/null 2>&1; then
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "install_chromium: no apt-get on this machine; install chromium yourself (or set RZERO_CHROMIUM)" \
       "or the UI tests skip" >&2
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "install_chromium: chromium is missing and installing it needs root:" \
       "sudo apt-get install -y chromium (or set RZERO_CHROMIUM); until then the UI tests skip" >&2
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
echo "install_chromium: apt-get install chromium (about 350 MB, a few minutes)" >&2
apt-get update -qq
if ! apt-cache show chromium >/dev/null 2>&1; then
  echo "install_chromium: this distribution has no 'chromium' apt package; the UI tests skip" >&2
  exit 0
fi
apt-get install -y -qq chromium >/dev/null
chromium --version >&2
