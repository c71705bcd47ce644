#!/usr/bin/env bash
# Bulk registration benchmark (issue 5's "Done when"): one HTTPS bulk upload of N records of
# ~300 bytes into a fresh node, client and server on this machine's cores; ascending suffixes
# (one production run, the MES case) and then a second run in random order into another prefix;
# HTTPS resolution throughput while idle and during each upload.
#
#   tools/bench/bulk_load.sh [--records N] [--bin DIR] [--keep]
#
#   --records N   records per upload (default 1000000)
#   --bin DIR     directory with idnode, idctl and bulk_load (default build/dev/bin)
#   --keep        keep the scratch directory build/bench/bulk
#
# Everything talks to 127.0.0.1 only; the node started here is stopped on exit.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"
records=1000000
bin=$root/build/dev/bin
keep=0
while [ $# -gt 0 ]; do
    case "$1" in
        --records) records=${2:?}; shift 2 ;;
        --bin) bin=${2:?}; shift 2 ;;
        --keep) keep=1; shift ;;
        -h|--help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "bulk_load.sh: unknown argument '$1'" >&2; exit 2 ;;
    esac
done
log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
fail() { log "FAILED: $*"; exit 1; }
scratch=$root/build/bench/bulk
idnode_pid=""
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    if [ -n "$idnode_pid" ] && kill -0 "$idnode_pid" 2>/dev/null; then
        kill -TERM "$idnode_pid" 2>/dev/null || true
        for _ in $(seq 1 150); do kill -0 "$idnode_pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$idnode_pid" 2>/dev/null || true
        wait "$idnode_pid" 2>/dev/null || true
    fi
    [ "$keep" -eq 0 ] && rm -rf "$scratch"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

rm -rf "$scratch"
mkdir -p "$scratch"
cert=$scratch/cert.pem key=$scratch/key.pem
timeout 60 conf/dev-cert.sh "$cert" "$key" >/dev/null 2>&1 || fail "certificate"
timeout 60 "$bin/idctl" init --data-dir "$scratch/db" --node-prefix 88.118 >"$scratch/admin.json" ||
    fail "idctl init"
admin_key=$(sed 's/.*"admin_key":"\([^"]*\)".*/\1/' "$scratch/admin.json")
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
rate_per_ip = 0
rate_per_account = 0
[log]
level = "warn"
access = "off"
EOF
"$bin/idnode" --config "$scratch/idnode.toml" >"$scratch/idnode.stdout" 2>"$scratch/idnode.stderr" &
idnode_pid=$!
port=""
for _ in $(seq 1 100); do
    line=$(grep -m1 'idnode listening' "$scratch/idnode.stdout" 2>/dev/null || true)
    if [ -n "$line" ]; then port=$(sed 's/.*https=127\.0\.0\.1:\([0-9]*\).*/\1/' <<<"$line"); break; fi
    kill -0 "$idnode_pid" 2>/dev/null || { cat "$scratch/idnode.stderr" >&2; fail "idnode exited"; }
    sleep 0.1
done
[[ "$port" =~ ^[0-9]+$ ]] || fail "idnode did not report its port"
api() { # method path body
    curl -sS --fail-with-body --cacert "$cert" -H "Authorization: Bearer $admin_key" \
        -X "$1" "https://localhost:$port$2" --resolve "localhost:$port:127.0.0.1" \
        ${3:+-H 'Content-Type: application/json' --data "$3"}
}
for p in 88.118.8 88.118.9; do
    api POST /api/v1/prefixes "{\"prefix\":\"$p\",\"enterprise\":{\"name\":\"E\",\"credit_code\":\"91310000631696382C\",\"industry\":\"C3120\",\"contact\":\"ops@example.cn\"}}" >/dev/null
done
api POST /api/v1/accounts '{"username":"mes","role":"enterprise","prefixes":["88.118.8","88.118.9"]}' >/dev/null
key=$(api POST /api/v1/accounts/mes/keys | sed 's/.*"key":"\([^"]*\)".*/\1/')
# One identifier to resolve during the uploads.
api PUT /api/handles/88.118.9/probe '{"values":[{"index":1,"type":"URL","data":"https://e.cn/probe"}]}' >/dev/null

log "ascending upload of $records records"
"$bin/bulk_load" --port "$port" --ca "$cert" --key "$key" --prefix 88.118.8 --records "$records" \
    --order asc --run RUN1 --resolve 88.118.9/probe | tee "$scratch/asc.txt"
log "random-order upload of $records records"
"$bin/bulk_load" --port "$port" --ca "$cert" --key "$key" --prefix 88.118.9 --records "$records" \
    --order random --run RUN2 --resolve 88.118.9/probe | tee "$scratch/random.txt"
