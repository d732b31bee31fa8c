#!/usr/bin/env bash
# Set up k8sreach on a Debian machine, as root: system packages the lab and the gateway
# checks use, a virtual environment in .venv, and the project installed into it.
# `scripts/setup.sh --demo` then runs `k8sreach demo`.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(python3 python3-venv iproute2 iptables bird2 dnsmasq-base openssh-server
          openssh-client socat conntrack ipvsadm gcc libc6-dev procps openssl
          bind9-dnsutils)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup: needs root to install ${missing[*]} (run: sudo $0)" >&2
    exit 2
  fi
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # The packages may start their daemons in the machine's own namespace; the lab runs its
  # own copies inside namespaces, so stop any the package started.
  for svc in bird ssh; do
    if command -v systemctl >/dev/null && systemctl is-active --quiet "$svc" 2>/dev/null; then
      systemctl stop "$svc" || true
    fi
  done
fi

python=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$python" -m venv .venv
fi
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[test]'
echo "setup: ready ($(.venv/bin/k8sreach --version))"

if [ "${1:-}" = "--demo" ]; then
  exec .venv/bin/k8sreach demo
fi
