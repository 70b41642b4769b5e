#!/usr/bin/env bash
# One-time set-up on a fresh machine: Debian packages for CPU rendering and the report's
# browser test, then mtopt itself.
# Safe to run again: it installs only what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
ldconfig -p | grep -q 'libOSMesa.so' || need_apt+=(libosmesa6)
# headless Chromium: the results page's screenshot test (tests/evaluation/test_report.py)
command -v chromium >/dev/null || need_apt+=(chromium)
if ((${#need_apt[@]})); then
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  echo "setup: installing Debian packages: ${need_apt[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

# MuJoCo 4 (pinned before Meta-World came) ships as mujoco + mujoco-core, whose files in the
# mujoco package break MuJoCo 3.3 (what metaworld needs): drop them and reinstall mujoco clean
if python -m pip show mujoco-core >/dev/null 2>&1; then
  echo "setup: removing MuJoCo 4's mujoco-core and mujoco-studio (mtopt pins mujoco 3.3.0)"
  python -m pip uninstall --disable-pip-version-check -q -y mujoco-core mujoco-studio
  python -m pip uninstall --disable-pip-version-check -q -y mujoco
fi
python -m pip install --disable-pip-version-check -q -e ".[dev,ray,lerobot]"
# the evaluation videos' H.264 encoder: the ffmpeg binary that the imageio-ffmpeg wheel ships
echo "setup: done ($(python -c 'import mtopt, torch, mujoco, imageio_ffmpeg as f; print("mtopt", mtopt.__version__, "torch", torch.__version__, "mujoco", mujoco.__version__, "ffmpeg", f.get_ffmpeg_version())'))"
