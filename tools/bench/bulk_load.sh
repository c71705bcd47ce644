#!/usr/bin/env bash
# Bulk registration benchmark, client and server on this machine's cores, against a release idnode
# (https.threads = 2, durable) on 127.0.0.1. It checks the bulk targets (at least 150,000 records/s
# durable for an ascending upload; resolutions during an upload at least half of idle,
# docs/performance.md#bulk-registration-bulk_loadsh-and-bulk_pipeline_bench) in two steps:
#
#   1. upload rate: one HTTPS bulk upload (bulk_load) of N template-validated records of ~470
#      bytes into a fresh node, suffixes ascending (one production run, the MES case); then the
#      same N records (same handles, same bytes) shuffled, into another fresh node;
#   2. resolution throughput during an upload vs idle: wrk (-t2 -c64, https_resolve.lua, random
#      handles among the N registered in step 1) for S seconds with the node idle, then the same
#      wrk run while a second ascending upload streams into the same node (N records, or more
#      when needed to outlast the wrk run at the rate of step 1).
#
#   tools/bench/bulk_load.sh [--records N] [--seconds S] [--bin DIR] [--keep]
#
#   --records N   records per upload (default 1000000)
#   --seconds S   length of each measured wrk run (default 8)
#   --bin DIR     directory with idnode, idctl and bulk_load (default build/release/bin, built
#                 with the release preset when one of them is missing)
#   --keep        keep the scratch directory build/bench/bulk
#
# Prints a Markdown table, then `bench:` lines (docs/performance.md); exits non-zero if a step
# failed or the upload measured "during" ended before its wrk run did. Everything talks to
# 127.0.0.1 only; every process started here is stopped on exit.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"
records=1000000
seconds=8
bin_dir=""
keep=0
while [ $# -gt 0 ]; do
    case "$1" in
        --records) records=${2:?}; shift 2 ;;
        --seconds) seconds=${2:?}; shift 2 ;;
        --bin) bin_dir=${2:?}; shift 2 ;;
        --keep) keep=1; shift ;;
        -h|--help) sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "bulk_load.sh: unknown argument '$1'" >&2; exit 2 ;;
    esac
done
[[ "$records" =~ ^[1-9][0-9]*$ ]] || { echo "bulk_load.sh: --records must be a positive integer" >&2; exit 2; }
[[ "$seconds" =~ ^[1-9][0-9]*$ ]] || { echo "bulk_load.sh: --seconds must be a positive integer" >&2; exit 2; }
scratch=$root/build/bench/bulk
bench_name=bulk
# shellcheck source=tools/bench/lib.sh
source "$root/tools/bench/lib.sh"
if [ -n "$bin_dir" ]; then
    bin=$bin_dir
elif [ ! -x "$bin/idnode" ] || [ ! -x "$bin/idctl" ] || [ ! -x "$bin/bulk_load" ]; then
    build_release idnode idctl bulk_load
fi
for b in idnode idctl bulk_load; do [ -x "$bin/$b" ] || fail "$bin/$b is missing"; done
command -v wrk >/dev/null || fail "wrk is missing (Debian package wrk)"

idnode_pid="" upload_pid=""
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    stop_pid "$upload_pid" TERM 5
    stop_pid "$idnode_pid" TERM 15
    [ "$keep" -eq 0 ] && rm -rf "$scratch"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# An upload of N records at no less than ~2,000 records/s, plus the setup.
upload_timeout=$((120 + records / 2000))
lua=$root/tools/bench/https_resolve.lua

# A fresh node in DIR with enterprise prefix 88.118.8, the steel template under it, and an
# enterprise account owning it. Sets idnode_pid, port, cert and api_key (the account's key).
prepare_node() { # dir
    mkdir -p "$1"
    start_fresh_node "$1"
    api() { # method path [curl data arguments...]
        local method=$1 path=$2
        shift 2
        timeout 30 curl -sS --fail-with-body --cacert "$cert" -H "Authorization: Bearer $admin_key" \
            -X "$method" "https://localhost:$port$path" --resolve "localhost:$port:127.0.0.1" \
            -H 'Content-Type: application/json' "$@"
    }
    api POST /api/v1/prefixes --data '{"prefix":"88.118.8","enterprise":{"name":"E","credit_code":"91310000631696382C","industry":"C3120","contact":"ops@example.cn"}}' >/dev/null ||
        fail "creating prefix 88.118.8"
    api POST /api/v1/accounts --data '{"username":"mes","role":"enterprise","prefixes":["88.118.8"]}' >/dev/null ||
        fail "creating account mes"
    # The records name the steel template: the bulk target is for template-validated records.
    api POST "/api/v1/templates?prefix=88.118.8" --data-binary @conf/templates/steel.json >/dev/null ||
        fail "loading the steel template"
    api_key=$(api POST /api/v1/accounts/mes/keys | sed 's/.*"key":"\([^"]*\)".*/\1/')
    [[ "$api_key" == idn_* ]] || fail "no API key for mes"
}
bulk() { # order run label [outfile]: a foreground upload of N records under 88.118.8
    timeout "$upload_timeout" "$bin/bulk_load" --port "$port" --ca "$cert" --key "$api_key" \
        --prefix 88.118.8 --records "$records" --order "$1" --run "$2" --label "$3" \
        >"$scratch/$3.txt" 2>"$scratch/$3.err" || { cat "$scratch/$3.txt" "$scratch/$3.err" >&2; fail "upload $3"; }
}
rate_of() { awk -v name="bench: bulk_$2_records_per_s" 'index($0, name) == 1 {print $3}' "$1"; }

rm -rf "$scratch"
mkdir -p "$scratch"
log "release binaries in $bin; $records records per upload, wrk runs of $seconds s; load average $(cut -d' ' -f1-3 /proc/loadavg)"

# ---- node A: ascending upload, then resolution idle and during a second upload ---------------
prepare_node "$scratch/a"
log "ascending upload of $records records (88.118.8/RUN1-…)"
bulk asc RUN1 asc
asc_rate=$(rate_of "$scratch/asc.txt" asc)
line_bytes=$(awk '/^bench: bulk_asc_line_bytes/ {print $3}' "$scratch/asc.txt")
log "ascending: $asc_rate records/s durable"

# The handles wrk resolves: every record of the ascending upload (all registered now).
awk -v n="$records" 'BEGIN { for (i = 0; i < n; i++) printf "88.118.8/RUN1-%010d\n", i }' >"$scratch/handles.txt"
wrk_resolve() { # outfile seconds
    run_wrk idnode "$1" -t2 -c64 -d"$2"s --latency -s "$lua" "https://127.0.0.1:$port" -- "$scratch/handles.txt"
}
log "resolution warm-up: 2 s"
wrk_resolve "$scratch/wrk-warm.txt" 2
log "resolution, node idle: $seconds s"
load_idle=$(cut -d' ' -f1 /proc/loadavg)
wrk_resolve "$scratch/wrk-idle.txt" "$seconds"

# The upload beside wrk must outlast it (wrk first loads its handle list, then runs S seconds):
# at least N records, and at least (S + 4) s worth at the rate measured alone. Beside wrk it runs
# at a fraction of that rate, so it is still streaming when wrk stops (checked below).
during_records=$(awk -v n="$records" -v r="$asc_rate" -v s="$seconds" \
    'BEGIN { m = int(r * (s + 4)); print (m > n) ? m : n }')
during_timeout=$((120 + during_records / 2000))
log "resolution during an ascending upload of $during_records more records (88.118.8/RUN2-…): $seconds s"
timeout "$during_timeout" "$bin/bulk_load" --port "$port" --ca "$cert" --key "$api_key" \
    --prefix 88.118.8 --records "$during_records" --order asc --run RUN2 --label asc_during_wrk \
    >"$scratch/asc_during_wrk.txt" 2>"$scratch/asc_during_wrk.err" &
upload_pid=$!
for _ in $(seq 1 300); do
    grep -q 'bulk_load: streaming' "$scratch/asc_during_wrk.err" 2>/dev/null && break
    kill -0 "$upload_pid" 2>/dev/null || break
    sleep 0.1
done
grep -q 'bulk_load: streaming' "$scratch/asc_during_wrk.err" || { cat "$scratch/asc_during_wrk.err" >&2; fail "the second upload did not start"; }
sleep 1 # let the upload reach its steady state (batches in flight, writer busy)
load_during=$(cut -d' ' -f1 /proc/loadavg)
wrk_resolve "$scratch/wrk-during.txt" "$seconds"
kill -0 "$upload_pid" 2>/dev/null && upload_outlived_wrk=1 || upload_outlived_wrk=0
upload_rc=0
wait "$upload_pid" || upload_rc=$?
upload_pid=""
[ "$upload_rc" -eq 0 ] || { cat "$scratch/asc_during_wrk.txt" "$scratch/asc_during_wrk.err" >&2; fail "upload during wrk (exit $upload_rc)"; }
during_upload_rate=$(rate_of "$scratch/asc_during_wrk.txt" asc_during_wrk)
stop_pid "$idnode_pid" TERM 15
idnode_pid=""
rm -rf "$scratch/a/db"

idle_rps=$(rps_of "$scratch/wrk-idle.txt")
during_rps=$(rps_of "$scratch/wrk-during.txt")
resolve_ratio=$(ratio "$during_rps" "$idle_rps")

# ---- node B: the same records, shuffled --------------------------------------------------------
prepare_node "$scratch/b"
log "random-order upload of the same $records records into a fresh node"
bulk random RUN1 random
random_rate=$(rate_of "$scratch/random.txt" random)
stop_pid "$idnode_pid" TERM 15
idnode_pid=""
order_ratio=$(ratio "$random_rate" "$asc_rate")

fmt_int() { printf "%'d" "$1" 2>/dev/null || echo "$1"; }
cat <<EOF

## Bulk registration, $(date -u +%Y-%m-%d) — $records records of ~$line_bytes bytes per upload

| figure | value |
| --- | --- |
| ascending upload, fresh node (records/s, durable) | $(fmt_int "$asc_rate") |
| random-order upload of the same records, fresh node (records/s, durable) | $(fmt_int "$random_rate") |
| random / ascending | $order_ratio |
| HTTPS resolutions/s, node idle (wrk -t2 -c64, ${seconds} s; p50 / p99 ms) | $(fmt_int "$idle_rps") ($(pct_of "$scratch/wrk-idle.txt" 50) / $(pct_of "$scratch/wrk-idle.txt" 99)) |
| HTTPS resolutions/s during an ascending upload (same wrk run; p50 / p99 ms) | $(fmt_int "$during_rps") ($(pct_of "$scratch/wrk-during.txt" 50) / $(pct_of "$scratch/wrk-during.txt" 99)) |
| during / idle (target: at least 0.5) | $resolve_ratio |
| that upload's own rate beside wrk ($during_records records; records/s, durable) | $(fmt_int "$during_upload_rate") |

idnode release, https.threads = 2, durable; client (bulk_load, wrk) on the same $(nproc) cores;
records name the steel template. Resolutions are random handles among the N of the first upload.
1-minute load average at the idle / during wrk runs: $load_idle / $load_during (other users of the
machine count here too).
EOF
echo "bench: bulk_asc_records_per_s $asc_rate records/s"
echo "bench: bulk_random_records_per_s $random_rate records/s"
echo "bench: bulk_random_vs_asc ratio $order_ratio"
echo "bench: resolve_idle_per_s $idle_rps req/s"
echo "bench: resolve_during_bulk_per_s $during_rps req/s"
echo "bench: resolve_during_bulk_vs_idle ratio $resolve_ratio"
echo "bench: bulk_asc_beside_wrk_records_per_s $during_upload_rate records/s"
if [ "$upload_outlived_wrk" -ne 1 ]; then
    log "the upload ended before the wrk run did: 'during' is partly idle; use more --records or fewer --seconds"
    exit 1
fi
