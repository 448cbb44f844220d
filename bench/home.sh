#!/usr/bin/env bash
# The home page and media delivery through the gateway, and media delivery
# beside nginx serving the same file, in one run on this machine (BENCH.md).
#
#   bash bench/home.sh [seconds-per-run] [rounds]     (defaults: 5 s, 3 rounds)
#
# Builds the binary and starts `marquee dev` on a fresh data directory and
# free ports, pinned to core 1 (every Go process then runs with GOMAXPROCS
# 1); the load generator runs on core 0. Logs in as the demo viewer (from
# credentials.json in the data directory) and picks the adult demo profile.
#
# The gateway `marquee dev` starts applies the built-in rate classes (home:
# 1,200 a minute per account, burst 200; media: 6,000 a minute per client,
# burst 1,000), so a closed-loop load generator measures mostly 429s there;
# the script shows that in a short run, then starts a second gateway
# (`marquee gateway`, same binary, the same peers as the dev gateway, its own
# admin port) with the built-in routing document whose rate classes are
# raised out of reach: every limit is still checked on every request, none
# refuses. All figures below go through that gateway. Then, with wrk -t1
# -c32 and the viewer's Authorization header:
#  1. GET /api/v1/home?profile_id={adult}: requests per second, p50, p99,
#     non-2xx, home rows degraded during the run (the gateway's
#     marquee_home_degraded_rows_total), CPU of the whole system;
#  2. media: a playback session for an available movie, then its signed
#     stream_url, the whole file and a 64 KiB Range (bytes=0-65535), through
#     the gateway, straight to playback's media endpoint (to split the cost
#     of the gateway hop from playback's), and the same file (checked byte
#     for byte) served by nginx (Debian package, foreground, its own config,
#     worker_processes 1, sendfile on, access_log off) on 127.0.0.1. Rounds
#     are interleaved, the order reversed every other round; requests per
#     second, MB/s of body (10^6 bytes), p50/p99, CPU of the process under
#     test, core 1 busy and how much of core 1 processes not started here
#     took (the machine is shared), the gateway's non-2xx answers by status
#     (its metrics); medians and the gateway/nginx ratio per round;
#  3. a 5-second CPU profile (admin port /debug/pprof/profile) of the
#     gateway and catalog under the home load, and of the gateway and
#     playback under the whole-file media load; top 15 entries each; and
#     the warnings and errors the system logged while measured.
# Installs wrk and nginx with apt-get when missing. Needs taskset, curl,
# python3 and go.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-5}
rounds=${2:-3}
[[ $secs =~ ^[0-9]+$ && $secs -ge 2 ]] || { echo "bench: seconds-per-run must be an integer >= 2" >&2; exit 2; }
[[ $rounds =~ ^[0-9]+$ && $rounds -ge 1 ]] || { echo "bench: rounds must be a positive integer" >&2; exit 2; }
psecs=$((secs > 7 ? secs : 7)) # a profiled run: 1 s warm-up, 5 s profile, 1 s margin
began=$(date +%s)

fail() { echo "bench: FAILED: $*" >&2; exit 1; }
phase() { echo "bench: $* ($(( $(date +%s) - began )) s)" >&2; }
need() { command -v "$1" >/dev/null 2>&1; }

# --- tools --------------------------------------------------------------
if ! need wrk || ! need nginx; then
  echo "installing wrk and nginx (apt-get)..." >&2
  sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
  { $sudo apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq wrk nginx >/dev/null; } ||
    fail "apt-get install wrk nginx"
fi
for t in wrk nginx taskset curl python3 go; do need "$t" || fail "needs $t on PATH"; done
[ "$(nproc)" -ge 2 ] || fail "needs 2 cores (system on core 1, load generator on core 0); nproc says $(nproc)"

# --- clean-up: every process this script started, by id ----------------
work=$(mktemp -d)
chmod 711 "$work" # nginx's worker (user nobody under root) must reach its files
pids=()     # started here: dev supervisor, bench gateway, nginx master
children=() # marquee dev's processes, killed too in case the supervisor is gone
bgpids=()   # background wrk and curl
cleanup() {
  local p
  for p in "${bgpids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for _ in $(seq 1 50); do
    local alive=0
    for p in "${pids[@]}" "${children[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
    [ $alive = 0 ] && break
    sleep 0.1
  done
  for p in "${pids[@]}" "${children[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
json() { python3 -c "import json,sys; d=json.load(sys.stdin); $1"; } # json 'python using d' < body

phase "building the binary"
go build -o "$work/marquee" ./cmd/marquee || fail "go build ./cmd/marquee"

# --- the system, on core 1 ----------------------------------------------
addr=127.0.0.1:$(port)
console=127.0.0.1:$(port)
data=$work/data
# Without the mesh: this measures the gateway and playback themselves
# (bench/mesh.sh measures the sidecars), and reads the services' addresses
# from the dev gateway's --peers.
devcmd=(taskset -c 1 "$work/marquee" dev --mesh=off --data "$data" --addr "$addr" --console-addr "$console")
MARQUEE_POSTGRES= MARQUEE_NATS= "${devcmd[@]}" >"$work/dev.out" 2>&1 &
devpid=$!
pids+=($devpid)
for i in $(seq 1 1800); do
  grep -q "Marquee is ready" "$work/dev.out" 2>/dev/null && break
  kill -0 $devpid 2>/dev/null || { cat "$work/dev.out" >&2; tail -n 20 "$data"/logs/*.log >&2 2>/dev/null || true; fail "marquee dev exited before ready"; }
  [ "$i" = 1800 ] && { cat "$work/dev.out" >&2; fail "marquee dev not ready after 90 s"; }
  sleep 0.05
done
mapfile -t children < <(pgrep -P $devpid)
phase "marquee dev is ready"

# argv of one of dev's processes, by its program name ("gateway", "serve playback")
argv_of() {
  local p
  for p in "${children[@]}"; do
    if tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | grep -q "^[^ ]* $1 "; then
      echo "$p"; return 0
    fi
  done
  return 1
}
flag_of() { # pid flag → value
  local args i
  mapfile -d '' -t args <"/proc/$1/cmdline" || return 1
  for ((i = 0; i + 1 < ${#args[@]}; i++)); do
    [ "${args[$i]}" = "$2" ] && { echo "${args[$((i + 1))]}"; return 0; }
  done
  echo "bench: $2 not in the command line of $1" >&2
  return 1
}
devgw=$(argv_of gateway) || fail "no gateway among marquee dev's processes"
playpid=$(argv_of "serve playback") || fail "no playback among marquee dev's processes"
catpid=$(argv_of "serve catalog") || fail "no catalog among marquee dev's processes"
peers=$(flag_of "$devgw" --peers) || fail "no --peers for the dev gateway"
natsurl=$(flag_of "$devgw" --nats) || fail "no --nats for the dev gateway"
playadmin=$(flag_of "$playpid" --admin-addr) || fail "no --admin-addr for playback"
catadmin=$(flag_of "$catpid" --admin-addr) || fail "no --admin-addr for catalog"
declare -A PNAME ADMIN # pid → program name; name → admin address
for p in "${children[@]}"; do
  n=$(tr '\0' ' ' <"/proc/$p/cmdline" | awk '{ print ($2 == "serve" ? $3 : $2) }')
  [ "$p" = "$devgw" ] && n=dev-gateway
  PNAME[$p]=$n
  a=$(flag_of "$p" --admin-addr 2>/dev/null) && [ "$n" != dev-gateway ] && ADMIN[$n]=$a
done
playhttp=$(tr ';' '\n' <<<"$peers" | sed -n 's/^playback-http=\([^,]*\).*/\1/p')
[ -n "$playhttp" ] || fail "no playback-http in the peer table: $peers"

# The bench gateway: the built-in routes, rate classes out of reach.
python3 - internal/gateway/routes/default.json "$work/routes.json" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
for c in d["rate_classes"].values():
    c.update(rate=30_000_000, per="1m", burst=1 << 20)
json.dump(d, open(sys.argv[2], "w"), indent=1)
EOF
gwaddr=127.0.0.1:$(port)
gwadmin=127.0.0.1:$(port)
gwcmd=(taskset -c 1 "$work/marquee" gateway --addr "$gwaddr" --admin-addr "$gwadmin" --peers "$peers" --nats "$natsurl" --routes "$work/routes.json")
"${gwcmd[@]}" >"$work/gateway.out" 2>&1 &
gwpid=$!
pids+=($gwpid)
for i in $(seq 1 600); do
  curl -fs -o /dev/null "http://$gwadmin/readyz" && break
  kill -0 $gwpid 2>/dev/null || { cat "$work/gateway.out" >&2; fail "the bench gateway exited"; }
  [ "$i" = 600 ] && { cat "$work/gateway.out" >&2; fail "the bench gateway not ready after 30 s"; }
  sleep 0.05
done
PNAME[$gwpid]=gateway
ADMIN[gateway]=$gwadmin
gomax=$(curl -fs "http://$gwadmin/metrics" | awk '$1=="go_sched_gomaxprocs_threads" {print $2}')

phase "the bench gateway is ready"

# --- the viewer, the adult profile, a playback session -----------------
token=""
api() { # method url [json-body] → the body; fails unless 2xx
  local code
  code=$(curl -sS --max-time 15 -o "$work/api.body" -w '%{http_code}' -X "$1" \
    ${token:+-H "Authorization: Bearer $token"} ${3:+-H "Content-Type: application/json" --data "$3"} "$2") ||
    fail "$1 $2: curl failed"
  [[ $code == 2?? ]] || fail "$1 $2 = $code $(head -c 300 "$work/api.body")"
  cat "$work/api.body"
}
[ -s "$data/credentials.json" ] || fail "no $data/credentials.json"
login=$(json 'print(json.dumps({"email": d["demo"]["email"], "password": d["demo"]["password"]}))' <"$data/credentials.json")
token=$(api POST "http://$addr/api/v1/auth/login" "$login" | json 'print(d["access_token"])') || fail "log in as the demo viewer"
[ -n "$token" ] || fail "login gave no access_token"
adult=$(api GET "http://$gwaddr/api/v1/profiles" | json 'print(next(p["id"] for p in d["profiles"] if p.get("maturity_level") == "adult"))') ||
  fail "no adult demo profile"
homeurl="http://$gwaddr/api/v1/home?profile_id=$adult"
api GET "$homeurl" >"$work/home.json"
homeinfo=$(json 'print(len(d.get("rows", [])), ",".join(d.get("degraded") or []) or "none")' <"$work/home.json")
read -r homerows homedeg <<<"$homeinfo"
homebytes=$(wc -c <"$work/home.json")
[ "$homerows" -ge 3 ] || fail "home has $homerows rows, want at least 3"

title=$(api GET "http://$gwaddr/api/v1/titles?page_size=100&kind=movie" |
  json 'print(next(t["id"] for t in d["titles"] if t.get("available") and t.get("media_asset_id")))') || fail "no available movie"
session=$(api POST "http://$gwaddr/api/v1/playback/sessions" "{\"profile_id\":\"$adult\",\"title_id\":\"$title\"}")
stream=$(json 'print(d["stream_url"])' <<<"$session")
# The path and query of the stream URL, whatever host it names.
streampath=$(python3 -c 'import sys, urllib.parse as u; p = u.urlsplit(sys.argv[1]); print(p.path + "?" + p.query)' "$stream")
[[ $streampath == /media/*/*\?* ]] || fail "stream_url $stream is not /media/{asset}/{file}?..."
asset=$(cut -d/ -f3 <<<"${streampath%%\?*}")
file=$(cut -d/ -f4 <<<"${streampath%%\?*}")
src=internal/playback/media/assets/$asset/$file
[ -f "$src" ] || fail "$src does not exist"
size=$(stat -c %s "$src")
gwmedia="http://$gwaddr$streampath"
directmedia="http://$playhttp$streampath"

# --- nginx, on core 1 ---------------------------------------------------
nport=$(port)
mkdir -p "$work/nginx/www"
chmod 755 "$work/nginx" "$work/nginx/www"
cp "$src" "$work/nginx/www/$file"
chmod 644 "$work/nginx/www/$file"
cat >"$work/nginx/nginx.conf" <<EOF
worker_processes 1;
daemon off;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 1000000;
  client_body_temp_path $work/nginx/body;
  proxy_temp_path $work/nginx/proxy;
  fastcgi_temp_path $work/nginx/fcgi;
  uwsgi_temp_path $work/nginx/uwsgi;
  scgi_temp_path $work/nginx/scgi;
  types { video/webm webm; }
  server {
    listen 127.0.0.1:$nport;
    root $work/nginx/www;
  }
}
EOF
ngcmd=(taskset -c 1 nginx -p "$work/nginx" -e "$work/nginx/error.log" -c "$work/nginx/nginx.conf")
"${ngcmd[@]}" >"$work/nginx.out" 2>&1 &
ngpid=$!
pids+=($ngpid)
ngmedia="http://127.0.0.1:$nport/$file"
for i in $(seq 1 200); do
  curl -fs -o /dev/null "$ngmedia" && break
  kill -0 $ngpid 2>/dev/null || { cat "$work/nginx.out" "$work/nginx/error.log" >&2; fail "nginx exited"; }
  [ "$i" = 200 ] && { cat "$work/nginx/error.log" >&2; fail "nginx not serving $ngmedia after 10 s"; }
  sleep 0.05
done
ngworkers=$(pgrep -P $ngpid | tr '\n' ' ')
children+=($ngworkers)

# --- every target serves the same bytes --------------------------------
want=$(sha256sum <"$src" | cut -d' ' -f1)
check() { # label url
  local code got
  code=$(curl -sS --max-time 15 -H "Authorization: Bearer $token" -o "$work/check.full" -w '%{http_code}' "$2") || fail "$1: GET $2"
  got=$(sha256sum <"$work/check.full" | cut -d' ' -f1)
  [ "$code" = 200 ] && [ "$got" = "$want" ] || fail "$1: GET whole file = $code, sha256 $got, want 200 and $want ($src)"
  code=$(curl -sS --max-time 15 -H "Authorization: Bearer $token" -H "Range: bytes=0-65535" -o "$work/check.range" -w '%{http_code}' "$2") || fail "$1: GET $2 with Range"
  cmp -s "$work/check.range" <(head -c 65536 "$src") && [ "$code" = 206 ] ||
    fail "$1: GET bytes=0-65535 = $code with $(wc -c <"$work/check.range") bytes, want 206 and the file's first 65536"
}
check gateway "$gwmedia"
check "playback direct" "$directmedia"
check nginx "$ngmedia"

phase "nginx is ready, every target checked"

# --- what was run, where ------------------------------------------------
short() { sed "s|$work|\$WORK|g; s|$token|\$TOKEN|g"; }
echo "command: bash bench/home.sh $secs $rounds"
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo), Linux $(uname -r)"
echo "load:    $(cut -d' ' -f1-3 /proc/loadavg) (1/5/15 min) at start; the machine is shared"
echo "tools:   $(go version | cut -d' ' -f3), $(wrk -v 2>&1 | head -1 | cut -d' ' -f1-2), $(nginx -v 2>&1 | sed 's/.*: //'), marquee $("$work/marquee" version 2>/dev/null | head -1)"
echo "pinning: system and nginx on core 1 (the gateway's GOMAXPROCS: ${gomax:-?}), wrk on core 0"
echo "WORK=$work (removed at exit); TOKEN = the demo viewer's access token"
echo "  ${devcmd[*]}" | short
echo "  ${gwcmd[*]}" | short
echo "      (\$WORK/routes.json = internal/gateway/routes/default.json with every rate class at 30,000,000 a minute, burst 1,048,576)"
echo "  ${ngcmd[*]}" | short
sed 's/^/      /' "$work/nginx/nginx.conf" | short
echo "  taskset -c 0 wrk -t1 -c32 -d${secs}s --latency -H 'Authorization: Bearer \$TOKEN' [-H 'Range: bytes=0-65535'] URL"
echo "admin:   bench gateway $gwadmin, playback $playadmin, catalog $catadmin (from --admin-addr in their command lines)"
echo "viewer:  profile $adult (adult); title $title, session $(json 'print(d["session_id"])' <<<"$session")"
echo "media:   $asset/$file, $size bytes, sha256 $want, identical through every target"
echo

# --- measuring ------------------------------------------------------------
clk=$(getconf CLK_TCK)
to_ms() { # wrk latency (850.00us, 1.23ms, 2.00s, 1.00m) to milliseconds
  awk -v v="$1" 'BEGIN { n = v + 0; if (v ~ /us$/) print n / 1000; else if (v ~ /ms$/) print n; else if (v ~ /m$/) print n * 60000; else if (v ~ /s$/) print n * 1000; else print n }'
}
ticks() { # total utime+stime of pids (those still running)
  local files=() p
  for p in "$@"; do [ -r "/proc/$p/stat" ] && files+=("/proc/$p/stat"); done
  [ ${#files[@]} -gt 0 ] || { echo 0; return; }
  awk '{ t += $14 + $15 } END { print t + 0 }' "${files[@]}" 2>/dev/null || echo 0
}
core1() { awk '$1=="cpu1" { idle = $5 + $6; tot = 0; for (i = 2; i <= 9; i++) tot += $i; print tot - idle, tot }' /proc/stat; }
# homesnap → "key value" lines: CPU ticks per process, gRPC calls handled
# per service and method, home rows degraded per row
homesnap() {
  local p n
  for p in "${!PNAME[@]}"; do echo "cpu:${PNAME[$p]} $(ticks "$p")"; done
  for n in "${!ADMIN[@]}"; do
    curl -fs "http://${ADMIN[$n]}/metrics" | awk -v n="$n" -F'[{}" ]+' '
      /^grpc_server_handled_total\{/ && !/grpc.health/ { for (i = 2; i < NF; i++) if ($i ~ /(^|,)grpc_method=$/) m = $(i + 1); c[m] += $NF }
      /^marquee_home_degraded_rows_total\{/ { for (i = 2; i < NF; i++) if ($i ~ /(^|,)row=$/) print "deg:" $(i + 1), $NF }
      /^marquee_gateway_http_requests_total\{/ && /route="\/api\/v1\/home"/ { h += $NF }
      END { for (m in c) print "rpc:" n "." m, c[m]; if (n == "gateway") print "req:home", h + 0 }'
  done
}
gwhome() { curl -fs "http://$gwadmin/metrics" | awk '/^marquee_gateway_http_requests_total\{/ && /route="\/api\/v1\/home"/ { h += $NF } END { print h + 0 }'; }
settle_media() { sleep 0.3; } # the gateway counts a request when its answer is done
settle() { # until the requests wrk left in flight are answered (at most 3 s)
  local a b
  a=$(gwhome)
  for _ in $(seq 1 15); do sleep 0.2; b=$(gwhome); [ "$a" = "$b" ] && return 0; a=$b; done
}
declare -A HOMEACC # key → sum of deltas over the home runs
# gwcodes → "code count" lines: the bench gateway's answers by HTTP status
gwcodes() {
  curl -fs "http://$gwadmin/metrics" | awk -F'[{}" ]+' '/^marquee_gateway_http_requests_total\{/ {
    for (i = 2; i < NF; i++) if ($i ~ /(^|,)code=$/) c[$(i + 1)] += $NF } END { for (k in c) print k, c[k] }'
  curl -fs "http://$gwadmin/metrics" | awk '/^marquee_gateway_breaker_rejections_total/ { r += $NF } END { print "breaker-rejections", r + 0 }'
}
# codesnote before-file after-file → "  gateway answered: 503 x12, ..." (its non-2xx) or nothing
codesnote() {
  awk 'NR == FNR { a[$1] = $2; next } $1 !~ /^2/ && $2 - a[$1] > 0 { printf "%s %s x%d", (n++ ? "," : "  gateway answered:"), $1, $2 - a[$1] }' "$1" "$2"
}
# wrkrun url "pids" [range] → "rps p50ms p99ms non2xx errors cores core1% requests others"
# (others: cores of core 1 taken by processes this script did not start)
wrkrun() {
  local url=$1 sut=$2 range=${3:-} out t0 t1 c0 c1 o0 o1
  read -r -a sutp <<<"$sut"
  t0=$(ticks "${sutp[@]}"); o0=$(ticks "${ours[@]}"); read -r c0 tot0 < <(core1)
  out=$(taskset -c 0 wrk -t1 -c32 -d"${secs}s" --latency -H "Authorization: Bearer $token" ${range:+-H "Range: $range"} "$url") ||
    fail "wrk $url: $out"
  t1=$(ticks "${sutp[@]}"); o1=$(ticks "${ours[@]}"); read -r c1 tot1 < <(core1)
  local rps l50 l99 bad errs n
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  n=$(awk '/requests in/ {print $1}' <<<"$out")
  [ -n "$rps" ] || fail "wrk $url printed no Requests/sec: $out"
  l50=$(to_ms "$(awk '$1=="50%" {print $2}' <<<"$out")")
  l99=$(to_ms "$(awk '$1=="99%" {print $2}' <<<"$out")")
  bad=$(awk '/Non-2xx/ {print $NF}' <<<"$out")
  errs=$(awk '/Socket errors/ { n = 0; for (i = 3; i <= NF; i++) if ($i ~ /^[0-9]+,?$/) n += $i + 0; print n }' <<<"$out")
  awk -v r="$rps" -v a="$l50" -v b="$l99" -v n="${bad:-0}" -v e="${errs:-0}" -v d="$((t1 - t0))" -v hz="$clk" -v s="$secs" \
    -v cb="$((c1 - c0))" -v ct="$((tot1 - tot0))" -v q="$n" -v od="$((o1 - o0))" \
    'BEGIN { busy = (ct > 0 ? cb / ct : 0); o = busy - od / hz / s; if (o < 0) o = 0
             printf "%s %s %s %s %s %.2f %.0f %s %.2f\n", r, a, b, n, e, d / hz / s, 100 * busy, q, o }'
}
median() { sort -g | awk '{a[NR]=$1} END { if (NR == 0) print 0; else if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2 }'; }

allsys="${children[*]} $gwpid"
ours=("${children[@]}" "$gwpid" "$ngpid") # everything started here on core 1 (children has nginx's workers)

# The gateway as marquee dev starts it, default rate classes.
out=$(taskset -c 0 wrk -t1 -c32 -d2s -H "Authorization: Bearer $token" "http://$addr/api/v1/home?profile_id=$adult")
shipped_n=$(awk '/requests in/ {print $1}' <<<"$out")
shipped_bad=$(awk '/Non-2xx/ {print $NF}' <<<"$out")
echo "0. the dev gateway as shipped, GET /api/v1/home, wrk -t1 -c32 -d2s: $shipped_n requests, ${shipped_bad:-0} of them non-2xx"
echo "   (the built-in \"default\" rate class: 1,200 a minute per account, burst 200); all figures below use the bench gateway"
echo

declare -A R
labels=(gateway direct nginx)
declare -A URL=([gateway]=$gwmedia [direct]=$directmedia [nginx]=$ngmedia)
declare -A SUT=([gateway]="$gwpid $playpid" [direct]="$playpid" [nginx]="$ngpid $ngworkers")
kinds=(full range)
declare -A RANGE=([full]="" [range]="bytes=0-65535")
declare -A BYTES=([full]=$size [range]=65536)

field() { awk -v i="$1" '{print $i}'; } # nth field of a result
noisy=0.25 # a run where other work took more of core 1 than this is marked "!"
fmtrow() { # label "rps p50 p99 bad errs cores core1 requests others" bytes [note]
  local r a b n e c k q o
  read -r r a b n e c k q o <<<"$2"
  awk -v l="$1" -v r="$r" -v a="$a" -v b="$b" -v n="$n" -v e="$e" -v c="$c" -v k="$k" -v o="$o" -v by="$3" \
    -v note="${4:-}" -v lim="$noisy" \
    'BEGIN { if (by > 0) mb = sprintf("%8.1f", r * by / 1e6); else mb = sprintf("%8s", "-");
             printf "  %-26s %9.0f %s %9.2f %9.2f %7d %6d %6.2f %5.0f%% %6.2f%s%s\n", l, r, mb, a, b, n, e, c, k, o,
               (o > lim ? " !" : "  "), note }'
}
declare -A LOGLINES # log file → lines before measuring
logs=("$work/gateway.out" "$data"/logs/*.log)
for f in "${logs[@]}"; do [ -f "$f" ] && LOGLINES[$f]=$(wc -l <"$f"); done
phase "measuring"
echo "wrk -t1 -c32 -d${secs}s each; $rounds interleaved rounds (order reversed every other round)"
printf '  %-26s %9s %8s %9s %9s %7s %6s %6s %6s %6s\n' "" "req/s" "MB/s" "p50 ms" "p99 ms" "non-2xx" "errors" "cpu" "core1" "others"
for round in $(seq 1 "$rounds"); do
  homesnap >"$work/snap0"
  gwcodes >"$work/codes0"
  gl0=$(wc -l <"$work/gateway.out")
  R[home,$round]=$(wrkrun "$homeurl" "$allsys")
  settle
  homesnap >"$work/snap1"
  gwcodes >"$work/codes1"
  # the home page's failed dependency calls, from the gateway's log: those
  # cancelled (the requests wrk abandons when it stops) and the others
  tail -n +"$((gl0 + 1))" "$work/gateway.out" | grep -F '"msg":"home: dependency failed' >"$work/fails" || true
  R[homecancel,$round]=$(grep -c '"grpc_code":"Canceled"' "$work/fails" || true)
  R[homefail,$round]=$(grep -vc '"grpc_code":"Canceled"' "$work/fails" || true)
  R[homedeg,$round]=0
  while read -r key d; do
    HOMEACC[$key]=$(( ${HOMEACC[$key]:-0} + d ))
    [[ $key == deg:* ]] && R[homedeg,$round]=$(( ${R[homedeg,$round]} + d ))
  done < <(awk 'NR == FNR { a[$1] = $2; next } { print $1, $2 - a[$1] }' "$work/snap0" "$work/snap1")
  fmtrow "r$round home (gateway)" "${R[home,$round]}" 0 \
    "$(awk -v d="${R[homedeg,$round]}" -v n="$(field 8 <<<"${R[home,$round]}")" -v f="${R[homefail,$round]}" -v c="${R[homecancel,$round]}" \
      'BEGIN { printf "  degraded rows/request %.2f; failed calls %d (+%d cancelled)", (n > 0 ? d / n : 0), f, c }')$(codesnote "$work/codes0" "$work/codes1")"
  order=("${labels[@]}")
  [ $((round % 2)) = 0 ] && order=(nginx direct gateway)
  for k in "${kinds[@]}"; do
    for l in "${order[@]}"; do
      gwcodes >"$work/codes0"
      R[$k,$l,$round]=$(wrkrun "${URL[$l]}" "${SUT[$l]}" "${RANGE[$k]}")
      [ "$l" = gateway ] && settle_media
      gwcodes >"$work/codes1"
      fmtrow "r$round $k $l" "${R[$k,$l,$round]}" "${BYTES[$k]}" "$(codesnote "$work/codes0" "$work/codes1")"
    done
  done
done
echo "  (cpu: cores used by the process(es) under test: for home every marquee process, for gateway the gateway and"
echo "   playback, for direct playback, for nginx master and worker; core1: how busy core 1 was, whoever used it;"
echo "   others: cores of core 1 taken by processes this script did not start, i.e. other work on the shared machine,"
echo "   and interrupt time; ! marks runs where that was over $noisy: their figures say more about the neighbours)"
echo

col() { # key-prefix field → the values over rounds
  local i
  for i in $(seq 1 "$rounds"); do field "$2" <<<"${R[$1,$i]}"; done
}
echo "1. GET /api/v1/home?profile_id=<adult> through the gateway ($homebytes-byte answer, $homerows rows, degraded before the runs: $homedeg):"
printf '   median of %d runs: %.0f req/s   p50 %.2f ms   p99 %.2f ms   non-2xx %s   socket errors %s   cpu %.2f cores\n' \
  "$rounds" "$(col home 1 | median)" "$(col home 2 | median)" "$(col home 3 | median)" \
  "$(col home 4 | median)" "$(col home 5 | median)" "$(col home 6 | median)"
wrkreqs=0
for i in $(seq 1 "$rounds"); do wrkreqs=$((wrkreqs + $(field 8 <<<"${R[home,$i]}"))); done
homereqs=${HOMEACC[req:home]:-0} # answered by the gateway, including those wrk stopped waiting for
printf '   home rows served degraded during the runs: %s(%d requests answered, %d of them counted by wrk; by row:%s)\n' \
  "$(for i in $(seq 1 "$rounds"); do echo -n "${R[homedeg,$i]} "; done)" "$homereqs" "$wrkreqs" \
  "$(for k in "${!HOMEACC[@]}"; do [[ $k == deg:* && ${HOMEACC[$k]} -gt 0 ]] && echo -n " ${k#deg:} ${HOMEACC[$k]}"; done)"
echo "   failed dependency calls per run (gateway log; cancelled ones are requests wrk abandoned when it stopped, up to 32):" \
  "$(for i in $(seq 1 "$rounds"); do echo -n "r$i ${R[homefail,$i]} (+${R[homecancel,$i]} cancelled)  "; done)"
if [ "$homereqs" -gt 0 ]; then
  echo "   gRPC calls per home request (services' grpc_server_handled_total):" \
    "$(for k in "${!HOMEACC[@]}"; do [[ $k == rpc:* && ${HOMEACC[$k]} -gt 0 ]] &&
         awk -v k="${k#rpc:}" -v c="${HOMEACC[$k]}" -v n="$homereqs" 'BEGIN { printf "%s %.2f, ", k, c / n }'; done | sed 's/, $//')"
  echo "   CPU per home request (/proc utime+stime, ms):" \
    "$(for k in "${!HOMEACC[@]}"; do [[ $k == cpu:* ]] && echo "${HOMEACC[$k]} ${k#cpu:}"; done | sort -rn |
       awk -v n="$homereqs" -v hz="$clk" '{ ms = $1 * 1000 / hz / n; t += ms; printf "%s %.2f, ", $2, ms } END { printf "total %.2f", t }')"
fi
echo
echo "2. media, GET of the signed stream_url (medians of $rounds rounds; ratio: median of the per-round ratios):"
printf '   %-22s %20s %20s %20s %14s\n' "" "gateway" "nginx" "playback direct" "gateway/nginx"
echo "   (gateway: through the gateway to playback; playback direct: playback's media endpoint, no gateway; a latency ratio over 1 is slower)"
for k in full range; do
  case $k in full) what="whole file ($size B)";; range) what="Range 64 KiB";; esac
  for m in rps mbs p50 p99; do
    case $m in rps) f=1;; mbs) f=1;; p50) f=2;; p99) f=3;; esac
    vals=()
    for l in gateway nginx direct; do
      v=$(col "$k,$l" $f | median)
      [ $m = mbs ] && v=$(awk -v r="$v" -v b="${BYTES[$k]}" 'BEGIN { print r * b / 1e6 }')
      vals+=("$v")
    done
    ratio=$(for i in $(seq 1 "$rounds"); do
      awk -v g="$(field $f <<<"${R[$k,gateway,$i]}")" -v n="$(field $f <<<"${R[$k,nginx,$i]}")" 'BEGIN { print (n > 0 ? g / n : 0) }'
    done | median)
    case $m in rps) unit="req/s";; mbs) unit="MB/s";; p50) unit="p50 ms";; p99) unit="p99 ms";; esac
    awk -v w="$what" -v u="$unit" -v g="${vals[0]}" -v n="${vals[1]}" -v d="${vals[2]}" -v r="$ratio" \
      'BEGIN { printf "   %-15s %6s %20.1f %20.1f %20.1f %14.2f\n", w, u, g, n, d, r }'
  done
  bad=0
  for l in gateway nginx direct; do for i in $(seq 1 "$rounds"); do
    bad=$((bad + $(field 4 <<<"${R[$k,$l,$i]}") + $(field 5 <<<"${R[$k,$l,$i]}")))
  done; done
  echo "   $what: non-2xx and socket errors over every run: $bad"
done
echo "   per-round req/s ratio gateway/nginx (! when either run was marked):"
for k in full range; do
  echo "     $k:" "$(for i in $(seq 1 "$rounds"); do
    awk -v i="$i" -v g="$(field 1 <<<"${R[$k,gateway,$i]}")" -v n="$(field 1 <<<"${R[$k,nginx,$i]}")" \
      -v og="$(field 9 <<<"${R[$k,gateway,$i]}")" -v on="$(field 9 <<<"${R[$k,nginx,$i]}")" -v lim="$noisy" \
      'BEGIN { printf "r%d %.2f%s  ", i, g / n, (og > lim || on > lim ? " !" : "") }'; done)" \
    "$(for i in $(seq 1 "$rounds"); do
        awk -v g="$(field 1 <<<"${R[$k,gateway,$i]}")" -v n="$(field 1 <<<"${R[$k,nginx,$i]}")" \
          -v og="$(field 9 <<<"${R[$k,gateway,$i]}")" -v on="$(field 9 <<<"${R[$k,nginx,$i]}")" -v lim="$noisy" \
          'BEGIN { if (og <= lim && on <= lim) print g / n }'
      done | sort -g | awk '{ a[NR] = $1 } END { if (NR == 0) { print "  (no unmarked round)"; exit }
                    n = NR; m = (n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2)
                    printf "  median of the %d unmarked round(s): %.2f", n, m }')"
done
echo

phase "profiling"

# --- where the time goes ----------------------------------------------------
profile() { # label admin-addr out-file
  curl -fsS --max-time 20 "http://$2/debug/pprof/profile?seconds=5" -o "$3" || { echo "bench: profile of $1 at $2 failed" >&2; return 1; }
}
pprof=$(go tool -n pprof 2>/dev/null) && [ -x "$pprof" ] || pprof="go tool pprof" # the tool itself: faster than go tool each time
top15() { # label file
  echo "   -- $1 --"
  $pprof -top -nodecount=15 "$work/marquee" "$2" 2>/dev/null |
    awk '/^Duration|^Showing nodes/ { print; next } /flat%/ { p = 1 } p' | sed 's/^/   /'
  echo "      heaviest Marquee functions, by cumulative time:"
  $pprof -top -cum -nodecount=400 "$work/marquee" "$2" 2>/dev/null |
    awk '/marquee-tv\/marquee\/internal/ && n < 6 { n++; sub("github.com/marquee-tv/marquee/", ""); printf "      %8s %7s  %s\n", $4, $5, $6 }'
}
profiled() { # label url range "name admin ..." → profiles each named process during a wrk run
  local label=$1 url=$2 range=$3; shift 3
  taskset -c 0 wrk -t1 -c32 -d"${psecs}s" -H "Authorization: Bearer $token" ${range:+-H "Range: $range"} "$url" >"$work/wrk-prof.out" &
  local w=$! ps=() n
  bgpids+=($w)
  sleep 1
  while [ $# -ge 2 ]; do
    profile "$1" "$2" "$work/prof-$1.pprof" &
    ps+=($!); bgpids+=($!)
    n+=" $1"
    shift 2
  done
  local ok=1
  for p in "${ps[@]}"; do wait "$p" || ok=0; done
  wait $w || fail "wrk during the profile of $label"
  echo "3. CPU profiles (5 s) under the $label load, wrk -t1 -c32 -d${psecs}s:" \
    "$(awk '/Requests\/sec/ {print $2}' "$work/wrk-prof.out") req/s while profiled"
  [ $ok = 1 ] || fail "a profile under the $label load failed"
  for x in $n; do top15 "$x" "$work/prof-$x.pprof"; done
  echo
}
profiled home "$homeurl" "" gateway "$gwadmin" catalog "$catadmin"
profiled "whole-file media" "$gwmedia" "" gateway "$gwadmin" playback "$playadmin"

echo "4. warnings and errors logged while measured (count, process, level, message):"
warned=$(for f in "${logs[@]}"; do
  name=$(basename "$f" .log)
  case $f in "$work/gateway.out") name=gateway;; */gateway.log) name=dev-gateway;; esac
  [ -f "$f" ] || continue
  tail -n +"$(( ${LOGLINES[$f]:-0} + 1 ))" "$f" | awk -v name="$name" '
    function field(k) { return match($0, "\"" k "\":\"[^\"]*\"") ? substr($0, RSTART + length(k) + 4, RLENGTH - length(k) - 5) : "" }
    { lvl = field("level") } lvl == "WARN" || lvl == "ERROR" {
      line = name " " lvl " " field("msg")
      n = split("dependency call grpc_code", ks, " ")
      for (i = 1; i <= n; i++) if ((v = field(ks[i])) != "") line = line " " ks[i] "=" v
      print line
    }'
done | sort | uniq -c | sort -rn)
if [ -n "$warned" ]; then
  sed 's/^/  /' <<<"$warned" | awk 'NR <= 15'
else
  echo "   none"
fi
echo
echo "load at the end: $(cut -d' ' -f1-3 /proc/loadavg); whole run $(( $(date +%s) - began )) s"
