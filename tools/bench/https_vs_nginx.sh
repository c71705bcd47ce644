#!/usr/bin/env bash
# HTTPS resolution benchmark: idnode vs nginx serving the same JSON bodies as static files, in one
# run (the HTTPS target: at least 0.80 of nginx's requests/s; row 3 of tools/bench/run's table,
# docs/performance.md#the-full-comparison-toolsbenchrun).
#
#   tools/bench/https_vs_nginx.sh [--records N] [--seconds S] [--keep]
#
#   --records N   identifiers to preload (default 1000000; 100000 for a quick run)
#   --seconds S   length of each measured wrk run (default 20)
#   --keep        keep the scratch data (build/bench/https and the bodies directory) afterwards
#
# Scratch data: build/bench/https (data directory, certificate, configs, logs, wrk output). The N
# static bodies go to a private tmpfs directory /dev/shm/idnode-bench-www.XXXXXX when /dev/shm is
# a tmpfs with room for them (about 5 KiB of memory each: one page per file plus inode and
# dentry), because deleting a million small files from one directory on this machine's disk takes
# many minutes; otherwise to build/bench/https/www (deleted in inode order, ~3x faster than
# rm -rf). build/bench/https/www-dir names the directory used. Either way nginx reads them from
# the page cache, as idnode reads LMDB's pages.
#
# Steps: install nginx, wrk and curl with apt-get when missing (as root); build the release
# binaries; make a certificate with conf/dev-cert.sh; `idctl init` a data directory; preload N
# identifiers with load_registry, which also writes one static file per identifier with the body
# idnode serves for it and the handle list; start idnode (https.threads = 2, rate limits off) and
# nginx (worker_processes 2, same certificate, same TLS versions, AEAD ciphers and preference
# order as idnode, keep-alive, access_log off) on ephemeral / free 127.0.0.1 ports; check a random
# sample of bodies from both servers byte for byte against the static files; warm both up; then
# run `wrk -t2 -c64 -d S --latency` with tools/bench/https_resolve.lua (random handles) against
# idnode, nginx, idnode, nginx (alternating spreads the machine's noise over both), and print a
# Markdown table and the `bench:` lines (docs/performance.md).
#
# Everything talks to 127.0.0.1 only, every step is bounded in time, every process started here
# is stopped on exit, and the scratch data is removed (unless --keep). Exit status: 0 when every
# step succeeded (whatever the ratio), non-zero otherwise.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"

records=1000000
seconds=20
keep=0
usage() { sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'; }
while [ $# -gt 0 ]; do
    case "$1" in
        --records) records=${2:?--records needs a value}; shift 2 ;;
        --records=*) records=${1#*=}; shift ;;
        --seconds) seconds=${2:?--seconds needs a value}; shift 2 ;;
        --seconds=*) seconds=${1#*=}; shift ;;
        --keep) keep=1; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "https_vs_nginx.sh: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
    esac
done
[[ "$records" =~ ^[1-9][0-9]*$ ]] || { echo "--records must be a positive integer" >&2; exit 2; }
[[ "$seconds" =~ ^[1-9][0-9]*$ ]] || { echo "--seconds must be a positive integer" >&2; exit 2; }

scratch=$root/build/bench/https
bench_name=bench
# shellcheck source=tools/bench/lib.sh
source "$root/tools/bench/lib.sh"
www=""
idnode_pid=""
nginx_pid=""

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    stop_pid "$idnode_pid" TERM 15
    stop_nginx "$nginx_pid" "$scratch/nginx"
    if [ "$keep" -eq 0 ]; then
        remove_scratch
    else
        log "kept $scratch${www:+ and $www}"
    fi
    [ "$rc" -ne 0 ] && log "exit $rc"
    exit "$rc"
}
remove_scratch() { # also a bodies directory left by an earlier (killed) run
    local previous=""
    [ -f "$scratch/www-dir" ] && previous=$(cat "$scratch/www-dir" 2>/dev/null || true)
    case "$previous" in
        /dev/shm/idnode-bench-www.*) remove_tree "$previous" ;;
    esac
    [ -n "$www" ] && [ "$www" != "$previous" ] && remove_tree "$www"
    remove_tree "$scratch"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---- 1. packages -----------------------------------------------------------------------------
ensure_packages nginx wrk curl openssl

# ---- 2. build --------------------------------------------------------------------------------
build_release idnode idctl load_registry

# ---- 3. scratch data: certificate, data directory, identifiers, static bodies -----------------
remove_scratch
mkdir -p "$scratch"/{nginx,verify/idnode,verify/nginx}
www=$(make_www_dir "$records" "$scratch")
echo "$www" >"$scratch/www-dir"
cert=$scratch/cert.pem key=$scratch/key.pem
timeout 60 conf/dev-cert.sh "$cert" "$key" || fail "certificate"
timeout 60 "$bin/idctl" init --data-dir "$scratch/db" --node-prefix 88.118 >"$scratch/admin.json" ||
    fail "idctl init"

log "preloading $records identifiers (registry + static bodies)"
load_timeout=$((600 + records / 500))
timeout "$load_timeout" "$bin/load_registry" --data-dir "$scratch/db" --records "$records" \
    --static-root "$www" --handles "$scratch/handles.txt" >"$scratch/load.txt" ||
    fail "load_registry (limit ${load_timeout} s)"
cat "$scratch/load.txt" >&2
[ "$(wc -l <"$scratch/handles.txt")" -eq "$records" ] || fail "handle list has the wrong length"
# Drop nothing from the page cache on purpose: both servers read warm data (LMDB pages, files).

# ---- 4. servers ------------------------------------------------------------------------------
start_idnode "$scratch/db" "$cert" "$key" "$scratch"
start_nginx "$www" "$cert" "$key" "$scratch/nginx"
log "idnode on 127.0.0.1:$idnode_port (pid $idnode_pid), nginx on 127.0.0.1:$nginx_port (pid $nginx_pid)"

# ---- 5. the same bytes from both ---------------------------------------------------------------
tls_idnode=$(tls_of "$idnode_port")
tls_nginx=$(tls_of "$nginx_port")
log "TLS: idnode ${tls_idnode:-?}; nginx ${tls_nginx:-?}"
[ -n "$tls_idnode" ] && [ "$tls_idnode" = "$tls_nginx" ] ||
    fail "the servers negotiate different TLS parameters ('$tls_idnode' vs '$tls_nginx')"

verify_bodies "$scratch/handles.txt" "$www" "$cert" "$scratch/verify"

# ---- 6. load ---------------------------------------------------------------------------------
lua=$root/tools/bench/https_resolve.lua
wrk_run() { # server port duration outfile
    run_wrk "$1" "$4" -t2 -c64 -d"$3"s --latency -s "$lua" "https://127.0.0.1:$2" -- "$scratch/handles.txt"
}
cpu_busy() { # percent of all cores busy over 2 s, from /proc/stat
    local a b
    a=($(head -1 /proc/stat)); sleep 2; b=($(head -1 /proc/stat))
    awk -v u1="${a[1]}" -v n1="${a[2]}" -v s1="${a[3]}" -v i1="${a[4]}" -v w1="${a[5]}" \
        -v q1="${a[6]}" -v sq1="${a[7]}" -v st1="${a[8]}" \
        -v u2="${b[1]}" -v n2="${b[2]}" -v s2="${b[3]}" -v i2="${b[4]}" -v w2="${b[5]}" \
        -v q2="${b[6]}" -v sq2="${b[7]}" -v st2="${b[8]}" 'BEGIN {
        busy = (u2-u1)+(n2-n1)+(s2-s1)+(q2-q1)+(sq2-sq1)+(st2-st1)
        idle = (i2-i1)+(w2-w1)
        printf "%.0f", (busy + idle) ? 100 * busy / (busy + idle) : 0 }'
}

warm=$((seconds < 5 ? seconds : 5))
log "warm-up: ${warm} s each"
wrk_run idnode "$idnode_port" "$warm" "$scratch/warm-idnode.txt"
wrk_run nginx "$nginx_port" "$warm" "$scratch/warm-nginx.txt"

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
busy_before=$(cpu_busy)
log "machine before the runs: load average $load_before, ${busy_before}% of $(nproc) cores busy with other work (servers idle)"

# CPU time the server itself used per request (user + system, from /proc): a figure that the
# machine's other load disturbs much less than requests/s, since it does not count waiting.
clk=$(getconf CLK_TCK)
declare -A cpu_us
order=(idnode nginx idnode nginx)
for i in "${!order[@]}"; do
    server=${order[$i]} n=$((i + 1))
    port=$idnode_port pids=$idnode_pid
    if [ "$server" = nginx ]; then
        port=$nginx_port
        pids=$(pgrep -P "$nginx_pid" | tr '\n' ' ')
        [ -n "$pids" ] || fail "no nginx worker processes"
    fi
    log "run $n/4: $server, ${seconds} s"
    t0=$(cpu_ticks $pids)
    wrk_run "$server" "$port" "$seconds" "$scratch/run$n-$server.txt"
    t1=$(cpu_ticks $pids)
    requests=$(awk '/ requests in /{print $1; exit}' "$scratch/run$n-$server.txt")
    cpu_us[$n]=$(awk -v t=$((t1 - t0)) -v c="$clk" -v r="${requests:-0}" \
        'BEGIN { printf "%.1f", (r > 0) ? t * 1e6 / c / r : 0 }')
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)
kill -0 "$idnode_pid" 2>/dev/null || fail "idnode died during the runs"
kill -0 "$nginx_pid" 2>/dev/null || fail "nginx died during the runs"

# ---- 7. report -------------------------------------------------------------------------------
declare -A rps p50 p99
for i in 1 2 3 4; do
    f=$(ls "$scratch"/run$i-*.txt)
    rps[$i]=$(rps_of "$f")
    p50[$i]=$(pct_of "$f" 50)
    p99[$i]=$(pct_of "$f" 99)
done
idnode_rps=$(mean "${rps[1]}" "${rps[3]}") nginx_rps=$(mean "${rps[2]}" "${rps[4]}")
idnode_p50=$(mean "${p50[1]}" "${p50[3]}") nginx_p50=$(mean "${p50[2]}" "${p50[4]}")
idnode_p99=$(mean "${p99[1]}" "${p99[3]}") nginx_p99=$(mean "${p99[2]}" "${p99[4]}")
idnode_cpu=$(mean "${cpu_us[1]}" "${cpu_us[3]}") nginx_cpu=$(mean "${cpu_us[2]}" "${cpu_us[4]}")
cpu_ratio=$(awk -v a="$idnode_cpu" -v b="$nginx_cpu" 'BEGIN { printf "%.3f", (a > 0) ? b / a : 0 }')
ratio=$(awk -v a="$idnode_rps" -v b="$nginx_rps" 'BEGIN { printf "%.3f", (b > 0) ? a / b : 0 }')
met=$(awk -v r="$ratio" 'BEGIN { print (r >= 0.8) ? "met" : "NOT met" }')

cat <<EOF

### HTTPS resolution: idnode vs nginx static files ($records identifiers, random keys)

wrk -t2 -c64 -d${seconds}s --latency, keep-alive, TLS ${tls_idnode}; idnode https.threads = 2,
nginx worker_processes 2; both on 127.0.0.1 with wrk on the same $(nproc)-core machine.
Load average before/after the runs: $load_before / $load_after; other work kept ${busy_before}% of the cores busy just before.

| run | server | requests/s | p50 ms | p99 ms | server CPU µs/request |
| --- | --- | ---: | ---: | ---: | ---: |
| 1 | idnode | ${rps[1]} | ${p50[1]} | ${p99[1]} | ${cpu_us[1]} |
| 2 | nginx | ${rps[2]} | ${p50[2]} | ${p99[2]} | ${cpu_us[2]} |
| 3 | idnode | ${rps[3]} | ${p50[3]} | ${p99[3]} | ${cpu_us[3]} |
| 4 | nginx | ${rps[4]} | ${p50[4]} | ${p99[4]} | ${cpu_us[4]} |
| mean | idnode | $idnode_rps | $idnode_p50 | $idnode_p99 | $idnode_cpu |
| mean | nginx | $nginx_rps | $nginx_p50 | $nginx_p99 | $nginx_cpu |
| | **idnode / nginx** | **$ratio** | | | nginx/idnode CPU: $cpu_ratio |

Target: idnode requests/s >= 0.80 x nginx's — $met.
(Server CPU per request is user + system time of idnode's process or nginx's workers divided by
the requests wrk completed; it is much less sensitive to the machine's other load than requests/s.)

bench: https_resolve_idnode $idnode_rps req/s
bench: https_resolve_nginx $nginx_rps req/s
bench: https_resolve_idnode_p50 $idnode_p50 ms
bench: https_resolve_nginx_p50 $nginx_p50 ms
bench: https_resolve_idnode_p99 $idnode_p99 ms
bench: https_resolve_nginx_p99 $nginx_p99 ms
bench: https_resolve_idnode_cpu $idnode_cpu us/req
bench: https_resolve_nginx_cpu $nginx_cpu us/req
bench: https_resolve_cpu_nginx_vs_idnode ratio $cpu_ratio
bench: https_resolve_vs_nginx ratio $ratio
EOF
