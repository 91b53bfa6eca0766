#!/usr/bin/env bash
# Debian packages the project and its tests need; installs only what is missing.
set -euo pipefail

# command -> package
declare -A wanted=(
  [busybox]=busybox-static
  [skopeo]=skopeo
  [umoci]=umoci
  [runc]=runc
  [pasta]=passt  # user-mode networking of containers (services/containers/network.py)
  [docker-registry]=docker-registry
  [hyperfine]=hyperfine
  [zstd]=zstd
  [chromium]=chromium
  [podman]=podman
  [msgfmt]=gettext  # compilemessages: the Chinese catalogue (locale/) for `make run` and `make test`
  [rpm]=rpm  # reads rpm databases (rpmdb.sqlite, Packages) inside images: services/packages.py
  [rpmbuild]=rpm  # the tests build a tiny rpm package
  [debootstrap]=debootstrap  # the tests' real Debian root filesystem
)
missing=()
for cmd in "${!wanted[@]}"; do
  if [ "$cmd" = busybox ]; then
    # busybox-static, not the dynamic busybox: tests copy it into image root filesystems.
    dpkg -s busybox-static >/dev/null 2>&1 || missing+=(busybox-static)
  elif [ "$cmd" = chromium ]; then
    command -v chromium >/dev/null 2>&1 || missing+=(chromium)
    # Chinese glyphs, so the browser tests' screenshots of the Chinese pages show text, not boxes.
    dpkg -s fonts-wqy-microhei >/dev/null 2>&1 || missing+=(fonts-wqy-microhei)
  elif ! command -v "$cmd" >/dev/null 2>&1 && [ ! -x "/usr/sbin/$cmd" ]; then
    missing+=("${wanted[$cmd]}")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
  echo "missing Debian packages: ${missing[*]} (run as root, or: sudo apt-get install ${missing[*]})" >&2
  exit 1
fi
echo "installing Debian packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
