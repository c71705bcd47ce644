# Shared shell parts of the benchmark scripts (tools/bench/run, tools/bench/https_vs_nginx.sh).
# Source it after `set -euo pipefail` and after setting `root` (repository) and `scratch` (the
# script's scratch directory); `bin` is set here. Functions that fail call `fail` (exit 1), so the
# calling script's EXIT trap cleans up.

bin=$root/build/release/bin
bench_name=${bench_name:-bench}

log() { printf '[%s %s] %s\n' "$bench_name" "$(date +%H:%M:%S)" "$*" >&2; }
fail() { log "FAILED: $*"; exit 1; }

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

# nginx: TERM to the master is a fast shutdown; it takes its workers with it. Also a master that
# outlived its shell child, but only if that pid is still our nginx (never a recycled pid).
stop_nginx() { # shell pid, nginx directory (holding nginx.conf and nginx.pid)
    local p
    stop_pid "$1" TERM 10
    if [ -f "$2/nginx.pid" ]; then
        p=$(cat "$2/nginx.pid" 2>/dev/null || true)
        if [ -n "$p" ] && tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | grep -qF "$2/nginx.conf"; then
            kill -KILL "$p" 2>/dev/null || true
        fi
    fi
}

# Many small files in one directory: unlinking them in inode order touches the inode table
# sequentially instead of in the directory's hash order (~3x faster than rm -rf here).
remove_tree() {
    local dir=$1
    [ -d "$dir" ] || return 0
    find "$dir" -type f -printf '%i %p\n' 2>/dev/null | sort -n | cut -d' ' -f2- |
        xargs -d '\n' -r rm -f 2>/dev/null || true
    rm -rf "$dir"
}

# Where N static bodies go: a private tmpfs directory when /dev/shm has room for them (about 5 KiB
# of memory each), else DIR/www. Prints the directory.
make_www_dir() { # records, fallback parent directory
    local need_kb=$(($1 * 6)) www
    if [ "$(stat -f -c %T /dev/shm 2>/dev/null)" = tmpfs ] &&
        [ "$(df -Pk /dev/shm | awk 'NR == 2 {print $4}')" -gt $((need_kb * 3 / 2)) ] &&
        [ "$(awk '/^MemAvailable:/ {print $2}' /proc/meminfo)" -gt $((need_kb + 4194304)) ]; then
        www=$(mktemp -d /dev/shm/idnode-bench-www.XXXXXX)
    else
        www=$2/www
        mkdir -p "$www"
    fi
    echo "$www"
}

ensure_packages() { # Debian packages; installed with apt-get when missing (as root)
    local missing=() p
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    [ "$(id -u)" -eq 0 ] || fail "missing Debian packages (run as root): ${missing[*]}"
    log "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    timeout 600 apt-get update -qq || fail "apt-get update"
    # policy-rc.d (containers) or the absence of an init system keeps nginx's own service from
    # starting; the scripts run their own nginx on a private config.
    timeout 900 apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null ||
        fail "apt-get install ${missing[*]}"
}

build_release() { # targets
    log "building release binaries ($*)"
    timeout 600 cmake --preset release >/dev/null || fail "cmake configure"
    timeout 3000 cmake --build --preset release --target "$@" >/dev/null || fail "build"
}

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
free_port() {
    local p
    for _ in $(seq 1 50); do
        p=$((20000 + RANDOM % 40000))
        if port_free "$p"; then echo "$p"; return 0; fi
    done
    fail "no free port"
}

# Starts idnode on DATA_DIR with https.threads = 2 and rate limits off, every listener on an
# ephemeral 127.0.0.1 port. Sets idnode_pid, idnode_port (HTTPS), idnode_handle_port (TCP and
# UDP). Files go to DIR (idnode.toml, idnode.stdout, idnode.stderr).
start_idnode() { # data dir, cert, key, dir
    local data=$1 cert=$2 key=$3 dir=$4 line
    mkdir -p "$dir"
    cat >"$dir/idnode.toml" <<EOF
[node]
data_dir = "$data"

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
    "$bin/idnode" --config "$dir/idnode.toml" >"$dir/idnode.stdout" 2>"$dir/idnode.stderr" &
    idnode_pid=$!
    idnode_port="" idnode_handle_port=""
    for _ in $(seq 1 300); do
        line=$(grep -m1 'idnode listening' "$dir/idnode.stdout" 2>/dev/null || true)
        if [ -n "$line" ]; then
            idnode_port=$(sed 's/.*https=127\.0\.0\.1:\([0-9]*\).*/\1/' <<<"$line")
            idnode_handle_port=$(sed 's/.*handle=127\.0\.0\.1:\([0-9]*\).*/\1/' <<<"$line")
            break
        fi
        kill -0 "$idnode_pid" 2>/dev/null || { cat "$dir/idnode.stderr" >&2; fail "idnode exited"; }
        sleep 0.1
    done
    [[ "$idnode_port" =~ ^[0-9]+$ ]] || fail "idnode did not report its port in 30 s"
    [[ "$idnode_handle_port" =~ ^[0-9]+$ ]] || fail "idnode did not report its Handle port"
}

# A fresh node for the online load benchmarks: a dev certificate and an `idctl init`ed data
# directory under DIR, then start_idnode. Sets cert, key, admin_key and port (= idnode_port).
start_fresh_node() { # dir
    local dir=$1
    cert=$dir/cert.pem key=$dir/key.pem
    timeout 60 "$root/conf/dev-cert.sh" "$cert" "$key" >/dev/null 2>&1 || fail "certificate"
    timeout 60 "$bin/idctl" init --data-dir "$dir/db" --node-prefix 88.118 >"$dir/admin.json" ||
        fail "idctl init"
    admin_key=$(sed 's/.*"admin_key":"\([^"]*\)".*/\1/' "$dir/admin.json")
    start_idnode "$dir/db" "$cert" "$key" "$dir"
    port=$idnode_port
}

# Starts nginx serving WWW as static JSON over HTTPS with idnode's TLS settings, 2 workers. Sets
# nginx_pid and nginx_port. Files go to DIR (nginx.conf, nginx.pid, logs).
start_nginx() { # www, cert, key, dir
    local www=$1 cert=$2 key=$3 ng=$4 nginx_bin
    nginx_bin=$(command -v nginx || echo /usr/sbin/nginx)
    [ -x "$nginx_bin" ] || fail "nginx binary not found"
    mkdir -p "$ng"
    nginx_port=$(free_port)
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
}

tls_of() { # negotiated protocol and cipher, as wrk (OpenSSL defaults) gets them
    timeout 10 openssl s_client -connect "127.0.0.1:$1" -servername localhost </dev/null 2>/dev/null |
        awk '/^New, /{print $2, $NF}' | tr -d ',' | head -1
}

# Fetches a random sample of handles from both servers and compares each body byte for byte with
# the static file. Needs idnode_port, nginx_port.
verify_bodies() { # handles file, www, cert, work dir
    local handles=$1 www=$2 cert=$3 dir=$4 server port i h
    mkdir -p "$dir/idnode" "$dir/nginx"
    { head -1 "$handles"; tail -1 "$handles"; shuf -n 200 "$handles"; } | sort -u >"$dir/sample.txt"
    for server in idnode nginx; do
        port=$idnode_port
        [ "$server" = nginx ] && port=$nginx_port
        : >"$dir/$server.curl"
        i=0
        while read -r h; do
            i=$((i + 1))
            printf 'url = "https://127.0.0.1:%s/api/handles/%s"\noutput = "%s"\n' \
                "$port" "$h" "$dir/$server/$i" >>"$dir/$server.curl"
        done <"$dir/sample.txt"
        timeout 120 curl -sS --fail --cacert "$cert" -K "$dir/$server.curl" ||
            fail "fetching the sample from $server"
        i=0
        while read -r h; do
            i=$((i + 1))
            cmp -s "$dir/$server/$i" "$www/api/handles/$h" ||
                fail "$server's body for $h differs from the static file"
        done <"$dir/sample.txt"
    done
    log "$(wc -l <"$dir/sample.txt") sampled bodies are byte-identical from idnode, nginx and the static files"
}

# wrk, bounded, and checked: no non-2xx answers, no socket errors (except `read`/`write` errors
# when `allow_close` is set: with Connection: close some clients see the server's close first).
run_wrk() { # label outfile wrk-arguments...
    local label=$1 out=$2 d=30
    shift 2
    local a
    for a in "$@"; do [[ "$a" =~ ^-d([0-9]+)s$ ]] && d=${BASH_REMATCH[1]}; done
    # The margin covers the Lua script's start-up (it reads the handle list into every thread).
    local rc=0
    timeout $((d + 120)) wrk "$@" >"$out" 2>&1 || rc=$?
    [ "$rc" -eq 0 ] || { cat "$out" >&2; fail "wrk against $label (exit $rc; 124 = timed out)"; }
    if grep -q 'Non-2xx' "$out"; then cat "$out" >&2; fail "$label answered non-2xx responses"; fi
    if grep -Eq 'Socket errors: connect [1-9]' "$out" ||
        { [ -z "${allow_close:-}" ] && grep -Eq 'Socket errors:.*(read|write) [1-9]' "$out"; }; then
        cat "$out" >&2
        fail "socket errors against $label"
    fi
    grep -q '^Requests/sec:' "$out" || { cat "$out" >&2; fail "no result from wrk against $label"; }
}
to_ms() { # wrk duration (12.34us / 1.23ms / 1.02s) -> milliseconds
    awk -v v="$1" 'BEGIN {
        n = v + 0; u = v; sub(/^[0-9.]+/, "", u)
        if (u == "us") n /= 1000; else if (u == "s") n *= 1000; else if (u == "m") n *= 60000
        printf "%.3f", n }'
}
rps_of() { awk '/^Requests\/sec:/{printf "%.0f", $2}' "$1"; }
pct_of() { to_ms "$(awk -v p="$2%" '$1 == p {print $2; exit}' "$1")"; }
mean() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (a + b) / 2 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", (b > 0) ? a / b : 0 }'; }

# CPU time of processes (user + system, clock ticks; fields 14, 15 — comm may hold spaces).
cpu_ticks() { # pids
    local s=0 p t
    for p in "$@"; do
        t=$(sed 's/.*) //' "/proc/$p/stat" 2>/dev/null | awk '{print $12 + $13}')
        s=$((s + ${t:-0}))
    done
    echo "$s"
}
rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
# Private (anonymous) resident memory: RSS without file-backed pages. idnode's RSS counts the
# pages of the LMDB map it has read (shared page cache, reclaimable, the same pages nginx reads
# through read()/sendfile without them showing in its RSS); RssAnon is what the process itself
# allocated.
rss_anon_kb() { awk '/^RssAnon:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
