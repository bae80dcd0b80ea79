#!/usr/bin/env bash
# The whole test suite, set-up included: installs Debian's `redis-server` when it is missing
# (the shared tier's tests start their own server on a free 127.0.0.1 port, without
# persistence), then runs every test of the workspace with every feature.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-redis.sh

exec cargo test --workspace --all-features "$@"
