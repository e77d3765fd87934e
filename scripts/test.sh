#!/usr/bin/env bash
# Command 2 of the README: set up, install the Debian tools the tests compare against, run the tests.
set -euo pipefail
cd "$(dirname "$0")/.."
need_apt=0
for tool in ffprobe ffmpeg sha256sum pdftoppm; do command -v "$tool" >/dev/null 2>&1 || need_apt=1; done
[ -e /usr/lib/x86_64-linux-gnu/libEGL.so.1 ] || need_apt=1
if [ "$need_apt" = 1 ] && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # ffmpeg/ffprobe: reference for probe tests; poppler-utils: PDF checks; the rest: Qt offscreen.
  apt-get install -y -qq ffmpeg poppler-utils libegl1 libgl1 libxkbcommon0 libfontconfig1 libdbus-1-3 \
    libglib2.0-0 >/dev/null
fi
bash scripts/setup.sh
VENV="${VENV:-.venv}"
export QT_QPA_PLATFORM=offscreen
set +e
"$VENV/bin/python" -m pytest "$@"
code=$?
set -e
if [ "$code" = 5 ]; then
  echo "pytest collected no tests: failing" >&2
  exit 1
fi
exit "$code"
