#!/usr/bin/env bash
# The whole test suite, set-up included: installs Debian's `redis-server` when it is missing
# (the shared tier's tests start their own server on a free 127.0.0.1 port, without
# persistence), then runs every test of the workspace with every feature.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v redis-server >/dev/null 2>&1; then
  echo "redis-server is missing: installing Debian's redis-server package" >&2
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
fi
# The package may start a server of its own on 6379; the tests do not use it.

exec cargo test --workspace --all-features "$@"
