#!/usr/bin/env bash
# Installs Debian's `redis-server` when it is missing: the shared tier's tests start their own
# server from it, on a free 127.0.0.1 port and without persistence.
set -euo pipefail
command -v redis-server >/dev/null 2>&1 && exit 0
echo "redis-server is missing: installing Debian's redis-server package" >&2
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
$sudo apt-get update -qq
$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
