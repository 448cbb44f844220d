#!/usr/bin/env bash
# marquee dev start-up time and memory at idle: with the mesh on and off,
# and with the mesh on and the whole system held to one core.
#
#   bash bench/idle.sh [runs]
#
# Builds the binary; for each mode starts `marquee dev` RUNS times (default
# 5) on a fresh data directory and reports the time from exec to "Marquee is
# ready" (median, min, max); after the last start it waits 10 s and sums
# the memory of every process of the system. Every process is the same
# binary, so RSS counts the binary's shared pages once per process; PSS
# (/proc/PID/smaps_rollup) shares them out and is what the system really
# uses. PRODUCT §9: ready under 3 s, whole system under 400 MB at idle.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-5}

work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; wait 2>/dev/null; rm -rf "$work"' EXIT
go build -o "$work/marquee" ./cmd/marquee
# Below the kernel's ephemeral range, as marquee dev draws its own ports.
port() { echo $((20000 + RANDOM % 12000)); }

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'); load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "binary:  $("$work/marquee" version)"
echo

for run in on off on:1; do
  mode=${run%%:*} pin=()
  [[ $run == *:* ]] && pin=(taskset -c "${run#*:}")
  times=()
  for i in $(seq 1 "$runs"); do
    data="$work/data-${run/:/-}-$i" out="$work/dev-${run/:/-}-$i.out"
    start=$(date +%s%N)
    "${pin[@]}" "$work/marquee" dev --mesh="$mode" --data "$data" --addr 127.0.0.1:$(port) --console-addr 127.0.0.1:$(port) > "$out" 2>&1 &
    pid=$!
    until grep -q "Marquee is ready" "$out" 2>/dev/null; do
      kill -0 $pid 2>/dev/null || { cat "$out"; exit 1; }
      sleep 0.01
    done
    times+=($(( ($(date +%s%N) - start) / 1000000 )))
    if [[ $i == "$runs" ]]; then
      sleep 10
      procs=0 rss=0 pss=0
      for p in $(pgrep -f -- "--data $data|$data/"); do
        [[ -r /proc/$p/smaps_rollup ]] || continue
        procs=$((procs + 1))
        rss=$((rss + $(awk '/^Rss:/{print $2}' /proc/$p/smaps_rollup)))
        pss=$((pss + $(awk '/^Pss:/{print $2}' /proc/$p/smaps_rollup)))
      done
    fi
    kill -TERM $pid; wait $pid || true
  done
  sorted=($(printf '%s\n' "${times[@]}" | sort -n))
  printf 'mesh %-3s %-8s ready: median %d ms (min %d, max %d, %d runs); at idle: %d processes, PSS %d MB, RSS %d MB\n' \
    "$mode" "${pin[*]:+on CPU ${run#*:}}" "${sorted[$((runs / 2))]}" "${sorted[0]}" "${sorted[-1]}" "$runs" "$procs" $((pss / 1024)) $((rss / 1024))
done
echo
echo "goals (PRODUCT §9): ready under 3000 ms; whole system under 400 MB at idle"
