#!/usr/bin/env bash
# HTTPS resolution benchmark: idnode vs nginx serving the same JSON bodies as static files, in one
# run (issue 3's "Done when"; row 3 of issue 8's table).
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
# Markdown table and the `bench:` lines of DESIGN §5.6.
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

log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
fail() { log "FAILED: $*"; exit 1; }

scratch=$root/build/bench/https
bin=$root/build/release/bin
www=""
idnode_pid=""
nginx_pid=""

stop_pid() { # pid, signal, seconds to wait before SIGKILL
    local pid=$1 sig=$2 patience=$3 i
    [ -n "$pid" ] || return 0
    kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
    kill "-$sig" "$pid" 2>/dev/null || true
    for ((i = 0; i < patience * 10; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null || true
}

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    stop_pid "$idnode_pid" TERM 15
    # nginx: TERM to the master is a fast shutdown; it takes its workers with it.
    stop_pid "$nginx_pid" TERM 10
    if [ -f "$scratch/nginx/nginx.pid" ]; then # a master that outlived its shell child
        local p
        p=$(cat "$scratch/nginx/nginx.pid" 2>/dev/null || true)
        # only if that pid is still our nginx (never a recycled pid of someone else's process)
        if [ -n "$p" ] && tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null |
            grep -qF "$scratch/nginx/nginx.conf"; then
            kill -KILL "$p" 2>/dev/null || true
        fi
    fi
    if [ "$keep" -eq 0 ]; then
        remove_scratch
    else
        log "kept $scratch${www:+ and $www}"
    fi
    [ "$rc" -ne 0 ] && log "exit $rc"
    exit "$rc"
}
# Many small files in one directory: unlinking them in inode order touches the inode table
# sequentially instead of in the directory's hash order.
remove_tree() {
    local dir=$1
    [ -d "$dir" ] || return 0
    find "$dir" -type f -printf '%i %p\n' 2>/dev/null | sort -n | cut -d' ' -f2- |
        xargs -d '\n' -r rm -f 2>/dev/null || true
    rm -rf "$dir"
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
missing=()
for p in nginx wrk curl openssl; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    [ "$(id -u)" -eq 0 ] || fail "missing Debian packages (run as root): ${missing[*]}"
    log "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    timeout 600 apt-get update -qq || fail "apt-get update"
    # policy-rc.d (containers) or the absence of an init system keeps nginx's own service from
    # starting; this script runs its own nginx on a private config.
    timeout 900 apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null ||
        fail "apt-get install ${missing[*]}"
fi
nginx_bin=$(command -v nginx || echo /usr/sbin/nginx)
[ -x "$nginx_bin" ] || fail "nginx binary not found"

# ---- 2. build --------------------------------------------------------------------------------
log "building release binaries (idnode, idctl, load_registry)"
timeout 600 cmake --preset release >/dev/null || fail "cmake configure"
timeout 3000 cmake --build --preset release --target idnode idctl load_registry >/dev/null ||
    fail "build"

# ---- 3. scratch data: certificate, data directory, identifiers, static bodies -----------------
remove_scratch
mkdir -p "$scratch"/{nginx,verify/idnode,verify/nginx}
need_kb=$((records * 6))
if [ "$(stat -f -c %T /dev/shm 2>/dev/null)" = tmpfs ] &&
    [ "$(df -Pk /dev/shm | awk 'NR == 2 {print $4}')" -gt $((need_kb * 3 / 2)) ] &&
    [ "$(awk '/^MemAvailable:/ {print $2}' /proc/meminfo)" -gt $((need_kb + 4194304)) ]; then
    www=$(mktemp -d /dev/shm/idnode-bench-www.XXXXXX)
else
    www=$scratch/www
    mkdir -p "$www"
fi
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
cat >"$scratch/idnode.toml" <<EOF
[node]
data_dir = "$scratch/db"

[https]
listen = "127.0.0.1:0"
cert = "$cert"
key = "$key"
threads = 2

[handle]
listen = "127.0.0.1:0"

[ops]
listen = "127.0.0.1:0"

[limits]
max_connections = 10000
rate_per_ip = 0
rate_per_account = 0

[log]
level = "warn"
access = "off"
EOF
"$bin/idnode" --config "$scratch/idnode.toml" >"$scratch/idnode.stdout" 2>"$scratch/idnode.stderr" &
idnode_pid=$!
idnode_port=""
for _ in $(seq 1 100); do
    line=$(grep -m1 'idnode listening' "$scratch/idnode.stdout" 2>/dev/null || true)
    if [ -n "$line" ]; then
        idnode_port=$(sed 's/.*https=127\.0\.0\.1:\([0-9]*\).*/\1/' <<<"$line")
        break
    fi
    kill -0 "$idnode_pid" 2>/dev/null || { cat "$scratch/idnode.stderr" >&2; fail "idnode exited"; }
    sleep 0.1
done
[[ "$idnode_port" =~ ^[0-9]+$ ]] || fail "idnode did not report its port in 10 s"

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
nginx_port=""
for _ in $(seq 1 50); do
    p=$((20000 + RANDOM % 40000))
    if port_free "$p"; then nginx_port=$p; break; fi
done
[ -n "$nginx_port" ] || fail "no free port for nginx"

ng=$scratch/nginx
cat >"$ng/nginx.conf" <<EOF
# Static JSON over HTTPS: the reference point. TLS settings mirror resolver/src/tls.cpp.
daemon off;
master_process on;
user root;
worker_processes 2;
pid $ng/nginx.pid;
error_log $ng/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    server_tokens off;
    types { }
    default_type application/json;
    # No open_file_cache: with random keys over 1 M files it would hold few of them (and its
    # descriptors are bounded by the open-file limit); like Debian's default nginx.conf.
    sendfile on;
    tcp_nopush on;
    tcp_nodelay on;
    keepalive_timeout 60s;
    keepalive_requests 100000000;   # idnode has no per-connection request cap either
    client_body_temp_path $ng/client_body;
    proxy_temp_path $ng/proxy;
    fastcgi_temp_path $ng/fastcgi;
    uwsgi_temp_path $ng/uwsgi;
    scgi_temp_path $ng/scgi;
    server {
        listen 127.0.0.1:$nginx_port ssl;
        ssl_certificate $cert;
        ssl_certificate_key $key;
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_ciphers ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305;
        ssl_conf_command Ciphersuites TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256;
        ssl_prefer_server_ciphers on;
        ssl_ecdh_curve X25519:prime256v1:secp384r1;
        root $www;
        location / { }
    }
}
EOF
timeout 30 "$nginx_bin" -t -q -p "$ng" -c "$ng/nginx.conf" 2>"$ng/check.log" ||
    { cat "$ng/check.log" >&2; fail "nginx configuration"; }
"$nginx_bin" -p "$ng" -c "$ng/nginx.conf" 2>>"$ng/error.log" &
nginx_pid=$!
for _ in $(seq 1 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$nginx_port") 2>/dev/null && break
    kill -0 "$nginx_pid" 2>/dev/null || { cat "$ng/error.log" >&2; fail "nginx exited"; }
    sleep 0.1
done
(exec 3<>"/dev/tcp/127.0.0.1/$nginx_port") 2>/dev/null || fail "nginx is not listening"
log "idnode on 127.0.0.1:$idnode_port (pid $idnode_pid), nginx on 127.0.0.1:$nginx_port (pid $nginx_pid)"

# ---- 5. the same bytes from both ---------------------------------------------------------------
tls_of() { # negotiated protocol and cipher, as wrk (OpenSSL defaults) gets them
    timeout 10 openssl s_client -connect "127.0.0.1:$1" -servername localhost </dev/null 2>/dev/null |
        awk '/^New, /{print $2, $NF}' | tr -d ',' | head -1
}
tls_idnode=$(tls_of "$idnode_port")
tls_nginx=$(tls_of "$nginx_port")
log "TLS: idnode ${tls_idnode:-?}; nginx ${tls_nginx:-?}"
[ -n "$tls_idnode" ] && [ "$tls_idnode" = "$tls_nginx" ] ||
    fail "the servers negotiate different TLS parameters ('$tls_idnode' vs '$tls_nginx')"

{ head -1 "$scratch/handles.txt"; tail -1 "$scratch/handles.txt"; shuf -n 200 "$scratch/handles.txt"; } |
    sort -u >"$scratch/verify/sample.txt"
for server in idnode nginx; do
    port=$idnode_port
    [ "$server" = nginx ] && port=$nginx_port
    : >"$scratch/verify/$server.curl"
    i=0
    while read -r h; do
        i=$((i + 1))
        printf 'url = "https://127.0.0.1:%s/api/handles/%s"\noutput = "%s"\n' \
            "$port" "$h" "$scratch/verify/$server/$i" >>"$scratch/verify/$server.curl"
    done <"$scratch/verify/sample.txt"
    timeout 120 curl -sS --fail --cacert "$cert" -K "$scratch/verify/$server.curl" ||
        fail "fetching the sample from $server"
    i=0
    while read -r h; do
        i=$((i + 1))
        cmp -s "$scratch/verify/$server/$i" "$www/api/handles/$h" ||
            fail "$server's body for $h differs from the static file (see $scratch/verify with --keep)"
    done <"$scratch/verify/sample.txt"
done
log "$(wc -l <"$scratch/verify/sample.txt") sampled bodies are byte-identical from idnode, nginx and the static files"

# ---- 6. load ---------------------------------------------------------------------------------
lua=$root/tools/bench/https_resolve.lua
run_wrk() { # server port duration outfile
    timeout $(($3 + 60)) wrk -t2 -c64 -d"$3"s --latency -s "$lua" "https://127.0.0.1:$2" \
        -- "$scratch/handles.txt" >"$4" 2>&1 || { cat "$4" >&2; fail "wrk against $1"; }
    if grep -q 'Non-2xx' "$4"; then cat "$4" >&2; fail "$1 answered non-2xx responses"; fi
    if grep -Eq 'Socket errors: connect [1-9]|read [1-9]|write [1-9]' "$4"; then
        cat "$4" >&2
        fail "socket errors against $1"
    fi
    grep -q '^Requests/sec:' "$4" || { cat "$4" >&2; fail "no result from wrk against $1"; }
}
to_ms() { # wrk duration (12.34us / 1.23ms / 1.02s) -> milliseconds
    awk -v v="$1" 'BEGIN {
        n = v + 0; u = v; sub(/^[0-9.]+/, "", u)
        if (u == "us") n /= 1000; else if (u == "s") n *= 1000; else if (u == "m") n *= 60000
        printf "%.3f", n }'
}
rps_of() { awk '/^Requests\/sec:/{print $2}' "$1"; }
pct_of() { to_ms "$(awk -v p="$2%" '$1 == p {print $2; exit}' "$1")"; }

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
run_wrk idnode "$idnode_port" "$warm" "$scratch/warm-idnode.txt"
run_wrk nginx "$nginx_port" "$warm" "$scratch/warm-nginx.txt"

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
busy_before=$(cpu_busy)
log "machine before the runs: load average $load_before, ${busy_before}% of $(nproc) cores busy with other work (servers idle)"

# CPU time the server itself used per request (user + system, from /proc): a figure that the
# machine's other load disturbs much less than requests/s, since it does not count waiting.
clk=$(getconf CLK_TCK)
cpu_ticks() { # pids -> utime + stime in clock ticks (fields 14, 15; comm may hold spaces)
    local s=0 p t
    for p in "$@"; do
        t=$(sed 's/.*) //' "/proc/$p/stat" 2>/dev/null | awk '{print $12 + $13}')
        s=$((s + ${t:-0}))
    done
    echo "$s"
}
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
    run_wrk "$server" "$port" "$seconds" "$scratch/run$n-$server.txt"
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
mean() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (a + b) / 2 }'; }
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

Target (issue 3): idnode requests/s >= 0.80 x nginx's — $met.
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
