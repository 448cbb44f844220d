#!/usr/bin/env bash
# CreateOrder sagas per second, and their latency, on SQLite and on
# PostgreSQL, beside PRODUCT §9's goal (more than 575/s on this 2-core
# machine; peer: dtm, 575/s on 4 cores with MySQL, a published figure).
#
#   bash bench/saga.sh [seconds] [clients]
#
# Builds the binary and bench/sagabench, then for each database runs the
# whole system under `marquee dev` (participants' barriers are always on)
# and drives orders over gRPC with N closed-loop clients, each placing a
# plan order with the approved card 4242 and waiting for it to end (see
# bench/sagabench). Prints completed sagas per second over the window,
# p50/p99 of create → completed, the CPU each service used, and the top of
# CPU profiles of orders, billing and playback taken during the window.
#
# PostgreSQL: MARQUEE_BENCH_POSTGRES (default
# postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable); the run uses
# a private schema in the marquee_<service> databases, dropped afterwards.
# Set MARQUEE_BENCH_POSTGRES=off to skip it.
#
# Figures of `bash bench/saga.sh 20 32` on this 2-core machine (AMD EPYC),
# calm, 2026-11-25:
#   SQLite      214 sagas/s, create → completed p50 98 ms, p99 266 ms;
#               services 1.49 cores (7.0 ms CPU per saga), the machine 90% busy
#   PostgreSQL  105 sagas/s, p50 195 ms, p99 435 ms; services 0.8 cores,
#               the PostgreSQL server 0.85, 11.8 commits per saga
#   goal        > 575/s (PRODUCT §9); dtm 575/s on 4 cores with MySQL (published)
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-20}
clients=${2:-32}
pg=${MARQUEE_BENCH_POSTGRES:-postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
go build -o "$work/marquee" ./cmd/marquee
go build -o "$work/sagabench" ./bench/sagabench

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "binary:  $("$work/marquee" version | head -1)"
echo "command: bash bench/saga.sh $secs $clients"
echo

top() { # dir
  for svc in orders billing playback; do
    [[ -s "$1/$svc.pprof" ]] || continue
    echo "-- $svc: top by cumulative CPU (flat% is the function's own)"
    go tool pprof -top -cum -nodecount=22 "$1/$svc.pprof" 2>/dev/null | sed -n '/flat%/,$p' | cut -c1-150
  done
}

echo "== SQLite"
"$work/sagabench" -bin "$work/marquee" -clients "$clients" -duration "${secs}s" -profile "$work/prof-sqlite"
echo
if [[ "$pg" != off ]]; then
  echo "== PostgreSQL ($(psql "$pg" -Atc 'show server_version' 2>/dev/null || echo '?'))"
  "$work/sagabench" -bin "$work/marquee" -postgres "$pg" -clients "$clients" -duration "${secs}s" -profile "$work/prof-postgres"
  echo
fi
echo "== where the time goes: SQLite"
top "$work/prof-sqlite"
if [[ "$pg" != off ]]; then
  echo
  echo "== where the time goes: PostgreSQL"
  top "$work/prof-postgres"
fi
