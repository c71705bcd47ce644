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
bin_dir=$root/build/dev/bin
keep=0
while [ $# -gt 0 ]; do
    case "$1" in
        --records) records=${2:?}; shift 2 ;;
        --bin) bin_dir=${2:?}; shift 2 ;;
        --keep) keep=1; shift ;;
        -h|--help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "bulk_load.sh: unknown argument '$1'" >&2; exit 2 ;;
    esac
done
scratch=$root/build/bench/bulk
bench_name=bench
# shellcheck source=tools/bench/lib.sh
source "$root/tools/bench/lib.sh"
bin=$bin_dir
idnode_pid=""
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    stop_pid "$idnode_pid" TERM 15
    [ "$keep" -eq 0 ] && rm -rf "$scratch"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

rm -rf "$scratch"
mkdir -p "$scratch"
start_fresh_node "$scratch"
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
# The records name the steel template (issue 5: template-validated records).
for p in 88.118.8 88.118.9; do
    curl -sS --fail-with-body --cacert "$cert" -H "Authorization: Bearer $admin_key" \
        -X POST "https://localhost:$port/api/v1/templates?prefix=$p" --resolve "localhost:$port:127.0.0.1" \
        -H 'Content-Type: application/json' --data-binary @conf/templates/steel.json >/dev/null
done
# One identifier to resolve during the uploads.
api PUT /api/handles/88.118.9/probe '{"values":[{"index":1,"type":"URL","data":"https://e.cn/probe"}]}' >/dev/null

log "ascending upload of $records records"
"$bin/bulk_load" --port "$port" --ca "$cert" --key "$key" --prefix 88.118.8 --records "$records" \
    --order asc --run RUN1 --resolve 88.118.9/probe | tee "$scratch/asc.txt"
log "random-order upload of $records records"
"$bin/bulk_load" --port "$port" --ca "$cert" --key "$key" --prefix 88.118.9 --records "$records" \
    --order random --run RUN2 --resolve 88.118.9/probe | tee "$scratch/random.txt"
