#!/usr/bin/env bash
# The Marquee gateway against nginx and Caddy, on the same backend, in one
# run (PRODUCT §9, BENCH.md).
#
#   bash bench/gateway.sh [seconds-per-run] [rounds]     (defaults: 5 s, 5 rounds)
#
# Installs what is missing: wrk and nginx (Debian packages), Caddy (go
# install, cached in ${MARQUEE_BENCH_CACHE:-~/.cache/marquee-bench}, outside
# the repository). Then, with a tiny Go backend answering a 100-byte body:
#  1. closed loop, wrk -t1 -c32, interleaved rounds: direct to the backend;
#     the Marquee gateway with JWT authentication (a valid ES256 token,
#     verified against a JWKS from a bench-only fake identity over gRPC) and
#     rate limiting on, on an HTTP pass-through route; nginx proxy_pass (1
#     worker, upstream keepalive); Caddy reverse_proxy. Requests per second,
#     p50/p99, and per round the ratios gateway/nginx and gateway/Caddy;
#  2. the gateway's JSON-to-gRPC route (GET /api/v1/titles/{id}, JWT and rate
#     limiting on, to a fake catalog over gRPC), beside it;
#  3. open loop at a fixed 5,000 requests per second (bench/gatewaybench
#     openloop: latency from each request's due time, corrected for
#     coordinated omission): p50/p99 of each, and the p99 added to direct;
#  4. the gateway's CPU and memory (from /proc) and a CPU profile under load,
#     top entries.
# Pinning: the load generator on core 0; backend and proxies on core 1;
# GOMAXPROCS=1 for every Go process, nginx worker_processes 1. No access log
# anywhere (nginx access_log off; Caddy and the gateway log none by default
# here).
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-5}
rounds=${2:-5}
cache=${MARQUEE_BENCH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/marquee-bench}

# --- tools --------------------------------------------------------------
need() { command -v "$1" >/dev/null 2>&1; }
if ! need wrk || ! need nginx; then
  echo "installing wrk and nginx (apt-get)..." >&2
  apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk nginx >/dev/null
fi
need taskset || { echo "bench: needs taskset (util-linux)" >&2; exit 1; }
caddy=$(command -v caddy || true)
if [ -z "$caddy" ]; then
  caddy=$cache/bin/caddy
  if [ ! -x "$caddy" ]; then
    echo "installing Caddy into $cache/bin (go install, about a minute)..." >&2
    mkdir -p "$cache/bin"
    GOBIN=$cache/bin go install github.com/caddyserver/caddy/v2/cmd/caddy@latest
  fi
fi

work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
go build -o "$work/gatewaybench" ./bench/gatewaybench
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
bport=$(port); gport=$(port); gwport=$(port); adport=$(port); nport=$(port); cport=$(port)

# --- the backend and the three proxies, on core 1 ----------------------
GOMAXPROCS=1 taskset -c 1 "$work/gatewaybench" backend -http 127.0.0.1:$bport -grpc 127.0.0.1:$gport >"$work/backend.out" 2>&1 &
pids+=($!)
GOMAXPROCS=1 taskset -c 1 "$work/gatewaybench" gateway -addr 127.0.0.1:$gwport -admin 127.0.0.1:$adport \
  -backend 127.0.0.1:$bport -catalog 127.0.0.1:$gport -token "$work/token" >"$work/gateway.out" 2>&1 &
gwpid=$!
pids+=($gwpid)

mkdir -p "$work/nginx"
cat >"$work/nginx/nginx.conf" <<EOF
worker_processes 1;
daemon off;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $work/nginx/body;
  proxy_temp_path $work/nginx/proxy;
  fastcgi_temp_path $work/nginx/fcgi;
  uwsgi_temp_path $work/nginx/uwsgi;
  scgi_temp_path $work/nginx/scgi;
  upstream backend { server 127.0.0.1:$bport; keepalive 64; }
  server {
    listen 127.0.0.1:$nport;
    location / {
      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
EOF
taskset -c 1 nginx -p "$work/nginx" -c "$work/nginx/nginx.conf" >"$work/nginx.out" 2>&1 &
pids+=($!)

cat >"$work/Caddyfile" <<EOF
{
	admin off
	auto_https off
	persist_config off
}
http://127.0.0.1:$cport {
	reverse_proxy 127.0.0.1:$bport
}
EOF
GOMAXPROCS=1 XDG_DATA_HOME=$work XDG_CONFIG_HOME=$work taskset -c 1 "$caddy" run --config "$work/Caddyfile" --adapter caddyfile >"$work/caddy.out" 2>&1 &
pids+=($!)

waitfor() { # url [header]
  for _ in $(seq 1 200); do
    if curl -fs -o /dev/null ${2:+-H "$2"} "$1"; then return 0; fi
    sleep 0.05
  done
  echo "bench: $1 did not come up" >&2
  cat "$work"/*.out >&2
  exit 1
}
waitfor "http://127.0.0.1:$bport/bench"
until [ -s "$work/token" ]; do sleep 0.05; done
auth() { echo "Authorization: Bearer $(cat "$work/token")"; }
waitfor "http://127.0.0.1:$gwport/bench" "$(auth)"
waitfor "http://127.0.0.1:$nport/bench"
waitfor "http://127.0.0.1:$cport/bench"
if curl -fs -o /dev/null "http://127.0.0.1:$gwport/bench"; then
  echo "bench: the gateway served a request without a token" >&2; exit 1
fi

echo "command: bash bench/gateway.sh $secs $rounds"
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'); load $(cut -d' ' -f1-3 /proc/loadavg)"
caddyver=$(go version -m "$caddy" 2>/dev/null | awk '$1 == "mod" {print $3}')
echo "peers:   $(nginx -v 2>&1 | sed 's/.*: //'), caddy ${caddyver:-$("$caddy" version | cut -d' ' -f1)}, $(go version | cut -d' ' -f3)"
echo

# --- 1. closed loop, interleaved ---------------------------------------
to_us() { # wrk latency (850.00us, 1.23ms, 2.00s) to microseconds
  awk -v v="$1" 'BEGIN { n = v + 0; if (v ~ /us$/) print n; else if (v ~ /ms$/) print n * 1000; else if (v ~ /s$/) print n * 1000000; else print n }'
}
declare -A rps p50 p99
targets=(direct gateway nginx caddy)
declare -A url=(
  [direct]="http://127.0.0.1:$bport/bench"
  [gateway]="http://127.0.0.1:$gwport/bench"
  [nginx]="http://127.0.0.1:$nport/bench"
  [caddy]="http://127.0.0.1:$cport/bench"
)
wrkrun() { # label url → "rps p50us p99us non2xx"
  local out
  out=$(taskset -c 0 wrk -t1 -c32 -d"${secs}s" --latency -H "$(auth)" "$2")
  local r l50 l99 bad
  r=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
  l50=$(to_us "$(echo "$out" | awk '$1=="50%" {print $2}')")
  l99=$(to_us "$(echo "$out" | awk '$1=="99%" {print $2}')")
  bad=$(echo "$out" | awk '/Non-2xx/ {print $NF}')
  echo "$r $l50 $l99 ${bad:-0}"
}
echo "1. wrk -t1 -c32 -d${secs}s, 100-byte body, interleaved rounds (req/s, p50, p99):"
for round in $(seq 1 "$rounds"); do
  line="round $round:"
  for t in "${targets[@]}"; do
    read -r r l50 l99 bad < <(wrkrun "$t" "${url[$t]}")
    if [ "$bad" != "0" ]; then echo "bench: $t answered $bad non-2xx" >&2; exit 1; fi
    rps[$t,$round]=$r; p50[$t,$round]=$l50; p99[$t,$round]=$l99
    line+=$(printf '  %s %.0f (%.0f/%.0f us)' "$t" "$r" "$l50" "$l99")
  done
  line+=$(awk -v g="${rps[gateway,$round]}" -v n="${rps[nginx,$round]}" -v c="${rps[caddy,$round]}" \
    'BEGIN { printf "   gateway/nginx %.2f  gateway/caddy %.2f", g/n, g/c }')
  echo "$line"
done
median() { sort -n | awk '{a[NR]=$1} END { if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2 }'; }
echo "medians:"
for t in "${targets[@]}"; do
  mr=$(for i in $(seq 1 "$rounds"); do echo "${rps[$t,$i]}"; done | median)
  m50=$(for i in $(seq 1 "$rounds"); do echo "${p50[$t,$i]}"; done | median)
  m99=$(for i in $(seq 1 "$rounds"); do echo "${p99[$t,$i]}"; done | median)
  printf '  %-8s %8.0f req/s   p50 %6.0f us   p99 %6.0f us\n' "$t" "$mr" "$m50" "$m99"
done
gn=$(for i in $(seq 1 "$rounds"); do awk -v g="${rps[gateway,$i]}" -v n="${rps[nginx,$i]}" 'BEGIN{print g/n}'; done | median)
gc=$(for i in $(seq 1 "$rounds"); do awk -v g="${rps[gateway,$i]}" -v c="${rps[caddy,$i]}" 'BEGIN{print g/c}'; done | median)
printf '  ratio gateway/nginx (median of rounds) %.2f  (bar: >= 0.8)\n' "$gn"
printf '  ratio gateway/caddy (median of rounds) %.2f  (bar: >= 2)\n' "$gc"
echo

# --- 2. JSON to gRPC ------------------------------------------------------
echo "2. the gateway's JSON-to-gRPC route, GET /api/v1/titles/{id} (JWT + rate limit, fake catalog over gRPC):"
for i in 1 2; do
  read -r r l50 l99 bad < <(wrkrun grpc "http://127.0.0.1:$gwport/api/v1/titles/t1")
  printf '  run %d: %8.0f req/s   p50 %6.0f us   p99 %6.0f us   non-2xx %s\n' "$i" "$r" "$l50" "$l99" "$bad"
done
echo

# --- 3. open loop at 5,000 rps --------------------------------------------
echo "3. open loop at 5,000 req/s for 10 s, 64 connections (latency from the due time):"
declare -A ol
for round in 1 2; do
  for t in "${targets[@]}"; do
    out=$(taskset -c 0 "$work/gatewaybench" openloop -url "${url[$t]}" -rate 5000 -duration 10s -H "$(auth)")
    l50=$(echo "$out" | sed -n 's/.* p50 \([0-9]*\)us.*/\1/p')
    l99=$(echo "$out" | sed -n 's/.* p99 \([0-9]*\)us.*/\1/p')
    ol[$t,$round]=$l99
    printf '  round %d %-8s %s\n' "$round" "$t" "$out"
  done
  for t in gateway nginx caddy; do
    printf '  round %d p99 added by %-8s %6d us\n' "$round" "$t" $(( ${ol[$t,$round]} - ${ol[direct,$round]} ))
  done
done
echo "  (bar: the gateway's p99 added latency under 1,000 us)"
echo

# --- 4. the gateway's CPU and memory, and a profile ---------------------
echo "4. the gateway under wrk -t1 -c32 for ${secs}s:"
clk=$(getconf CLK_TCK)
cpu() { awk '{print $14 + $15}' "/proc/$gwpid/stat"; }
c0=$(cpu)
(taskset -c 0 wrk -t1 -c32 -d"$((secs + 4))s" -H "$(auth)" "${url[gateway]}" >"$work/wrk-profile.out") &
wrkpid=$!
sleep 1
curl -fs "http://127.0.0.1:$adport/debug/pprof/profile?seconds=$secs" >"$work/cpu.pprof"
wait $wrkpid
c1=$(cpu)
awk -v d="$((c1 - c0))" -v hz="$clk" -v s="$((secs + 4))" 'BEGIN { printf "  CPU: %.2f cores busy on average\n", d/hz/s }'
grep -E 'VmRSS|VmHWM' "/proc/$gwpid/status" | sed 's/^/  /'
echo "  $(awk '/Requests\/sec/ {print $2}' "$work/wrk-profile.out") req/s while profiled; top of the CPU profile:"
go tool pprof -top -nodecount=25 "$work/gatewaybench" "$work/cpu.pprof" 2>/dev/null | sed -n '4,40p' | sed 's/^/  /'
