#!/usr/bin/env bash
# The Marquee sidecar pair against an HAProxy mTLS pair, in one run
# (PRODUCT §9: added latency under 150 µs at p50 and 500 µs at p99 at
# 1,000 req/s, no worse than HAProxy; under 0.1 vCPU and 25 MB per
# sidecar). Method and fairness, and the flags: bench/mesh.md.
#
#   bash bench/mesh.sh [meshbench flags]      (defaults: -rate 1000 -duration 20s -rounds 2; about 2.5 minutes)
#
# Builds the binary and bench/meshbench, which serves a small gRPC
# application and drives it at a fixed rate (open loop, latency from each
# request's due time) three ways: direct; through `marquee sidecar` beside
# the client and beside the server (mTLS between them, certificates from
# `marquee control-plane`); and through two HAProxy processes set up as
# the same pair (TLS 1.3, client certificates, one thread each, upstream
# connections reused). Paths run one after another, rounds interleaved.
# On two or more cores, the proxies are pinned to CPU 1 and meshbench (load
# generator and application) to CPU 0.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v haproxy >/dev/null 2>&1; then
  echo "bench: needs HAProxy; install it with: apt-get install haproxy" >&2
  exit 1
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
go build -o "$work/marquee" ./cmd/marquee
go build -o "$work/meshbench" ./bench/meshbench

pin=()
pinflags=()
if [ "$(nproc)" -ge 2 ] && command -v taskset >/dev/null 2>&1; then
  pin=(taskset -c 0)
  pinflags=(-proxy-cpus 1)
fi
# Flags given to this script come last and so win over these defaults.
"${pin[@]}" "$work/meshbench" -bin "$work/marquee" -rate 1000 -duration 20s "${pinflags[@]}" "$@"
