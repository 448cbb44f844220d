#!/usr/bin/env bash
# Catalog through the gateway, and marquee dev start-up time.
#
#   bash bench/catalog.sh [seconds]
#
# Builds the binary, then:
#  1. starts `marquee dev` five times on a fresh data directory and reports
#     the time from exec to "every service ready" (median, min, max);
#  2. with the system up, runs wrk (1 thread, 32 connections) against
#     GET /api/v1/titles?page_size=20 and GET /api/v1/titles/{id}, pinned
#     to core 0 while the system runs on core 1, and prints requests per
#     second with p50/p99 latency.
# Needs wrk (apt-get install wrk) and taskset.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10}
command -v wrk >/dev/null || { echo "bench: needs wrk (apt-get install -y wrk)" >&2; exit 1; }

work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; wait 2>/dev/null; rm -rf "$work"' EXIT
go build -o "$work/marquee" ./cmd/marquee
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo "binary:  $("$work/marquee" version)"
echo

# 1. Time to ready.
times=()
for i in 1 2 3 4 5; do
  addr=127.0.0.1:$(port)
  start=$(date +%s%N)
  taskset -c 1 "$work/marquee" dev --data "$work/data$i" --addr "$addr" --console-addr 127.0.0.1:$(port) > "$work/dev$i.out" 2>&1 &
  pid=$!
  until grep -q "Marquee is ready" "$work/dev$i.out" 2>/dev/null; do
    kill -0 $pid 2>/dev/null || { cat "$work/dev$i.out"; exit 1; }
    sleep 0.01
  done
  times+=($(( ($(date +%s%N) - start) / 1000000 )))
  kill -TERM $pid; wait $pid || true
done
sorted=($(printf '%s\n' "${times[@]}" | sort -n))
echo "marquee dev, exec to every service ready (fresh data dir, 5 runs): median ${sorted[2]} ms (min ${sorted[0]}, max ${sorted[4]})"
echo

# 2. Throughput and latency through the gateway.
addr=127.0.0.1:$(port)
taskset -c 1 "$work/marquee" dev --data "$work/data" --addr "$addr" --console-addr 127.0.0.1:$(port) > "$work/dev.out" 2>&1 &
until grep -q "Marquee is ready" "$work/dev.out" 2>/dev/null; do sleep 0.05; done
id=$(curl -s "http://$addr/api/v1/titles?page_size=1" | sed -n 's/.*"id":"\([^"]*\)".*/\1/p' | head -1)
run() { # label url
  out=$(taskset -c 0 wrk -t1 -c32 -d"${secs}s" --latency "$2")
  rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
  p50=$(echo "$out" | awk '$1=="50%" {print $2}')
  p99=$(echo "$out" | awk '$1=="99%" {print $2}')
  non2xx=$(echo "$out" | awk '/Non-2xx/ {print $NF}')
  printf '%-40s %10s req/s   p50 %8s   p99 %8s   non-2xx %s\n' "$1" "$rps" "$p50" "$p99" "${non2xx:-0}"
}
echo "wrk -t1 -c32 -d${secs}s (closed loop), system on core 1, wrk on core 0:"
run "GET /api/v1/titles?page_size=20" "http://$addr/api/v1/titles?page_size=20"
run "GET /api/v1/titles/$id" "http://$addr/api/v1/titles/$id"
run "GET /api/v1/titles?q=night" "http://$addr/api/v1/titles?q=night"
