#!/usr/bin/env bash
# SNMS batchCreate benchmark (the target: a batch of 2,000 template-validated records, durable, in
# under 100 ms; docs/performance.md#snms-batches-snms_batchsh): POST /identityv2/data/batchCreate
# with 2,000 records validated against the steel seed template (conf/templates/steel.json), over
# HTTPS, to a durable node (every commit fsynced), and report the server-side time of each call.
#
#   tools/bench/snms_batch.sh [--preset dev|release] [--rounds N] [--seconds S] [--keep]
#
#   --preset P   which build to use (default dev; the binaries must exist: tools/dev build P)
#   --rounds N   batches of 2,000 new records to send (default 20)
#   --seconds S  send no new batch once S seconds have passed (default 120: time-bounded on a
#                shared machine); at least one batch is always sent
#   --keep       keep the scratch directory (build/bench/snms) afterwards
#
# Steps: certificate (conf/dev-cert.sh), `idctl init`, start idnode on ephemeral 127.0.0.1 ports
# with the default limits (the batch routes' own 8 MiB body bound admits the ~1.8 MB batch),
# allocate 88.118.8 with a password account, load the steel template through POST /api/v1/templates, log in with
# POST /identity/token, then send N batches on one keep-alive connection per curl call. Time per
# call = curl's time_total - time_pretransfer (request upload + validation + one durable group
# commit + response; the TLS handshake excluded). Every record must come back "成功".
# Reports median, p90 (nearest rank) and best.
# Prints a table, then `bench:` lines (docs/performance.md). Talks to 127.0.0.1 only; stops the
# node.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"
preset=dev
rounds=20
seconds=120
keep=0
while [ $# -gt 0 ]; do
    case "$1" in
        --preset) preset=${2:?}; shift 2 ;;
        --rounds) rounds=${2:?}; shift 2 ;;
        --seconds) seconds=${2:?}; shift 2 ;;
        --keep) keep=1; shift ;;
        -h|--help) sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "snms_batch.sh: unknown argument '$1'" >&2; exit 2 ;;
    esac
done
[[ "$rounds" =~ ^[1-9][0-9]*$ ]] || { echo "--rounds must be a positive integer" >&2; exit 2; }
[[ "$seconds" =~ ^[1-9][0-9]*$ ]] || { echo "--seconds must be a positive integer" >&2; exit 2; }
bin=$root/build/$preset/bin
[ -x "$bin/idnode" ] && [ -x "$bin/idctl" ] || { echo "build first: tools/dev build $preset" >&2; exit 1; }

log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
scratch=$root/build/bench/snms
rm -rf "$scratch"
mkdir -p "$scratch"
pid=
cleanup() {
    if [ -n "$pid" ]; then kill -TERM "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
    [ "$keep" = 1 ] || rm -rf "$scratch"
}
trap cleanup EXIT

conf/dev-cert.sh "$scratch/cert.pem" "$scratch/key.pem" >/dev/null 2>&1
admin=$("$bin/idctl" init --data-dir "$scratch/db" --node-prefix 88.118 | sed 's/.*"admin_key":"\([^"]*\)".*/\1/')
cat > "$scratch/idnode.toml" <<EOF
[node]
data_dir = "$scratch/db"
[https]
listen = "127.0.0.1:0"
cert = "$scratch/cert.pem"
key = "$scratch/key.pem"
threads = 2
[handle]
listen = "127.0.0.1:0"
[ops]
listen = "127.0.0.1:0"
[log]
access = "off"
EOF
"$bin/idnode" --config "$scratch/idnode.toml" > "$scratch/stdout" 2> "$scratch/stderr" &
pid=$!
for _ in $(seq 1 100); do
    grep -q 'idnode listening' "$scratch/stdout" 2>/dev/null && break
    kill -0 "$pid" 2>/dev/null || { cat "$scratch/stderr" >&2; exit 1; }
    sleep 0.1
done
port=$(sed -n 's/.*https=[^ ]*:\([0-9]*\).*/\1/p' "$scratch/stdout")
url="https://127.0.0.1:$port"
c() { curl -sS --cacert "$scratch/cert.pem" "$@"; }

c -f -H "Authorization: Bearer $admin" -X POST "$url/api/v1/prefixes" -d \
    '{"prefix":"88.118.8","enterprise":{"name":"示例钢铁","credit_code":"91310000631696382C","industry":"C3130","contact":"ops@example.cn"}}' >/dev/null
c -f -H "Authorization: Bearer $admin" -X POST "$url/api/v1/accounts" -d \
    '{"username":"bench","role":"enterprise","prefixes":["88.118.8"],"password":"bench-secret-1"}' >/dev/null
c -f -H "Authorization: Bearer $admin" -X POST "$url/api/v1/templates?prefix=88.118.8" \
    --data-binary @conf/templates/steel.json >/dev/null
token=$(c -f -X POST "$url/identity/token" -d '{"username":"bench","password":"bench-secret-1"}' |
        sed 's/.*"token":"\([^"]*\)".*/\1/')

make_batch() { # round -> JSON array of 2,000 steel records (~650 bytes each)
    awk -v r="$1" 'BEGIN {
        printf "[";
        for (i = 0; i < 2000; i++) {
            sn = sprintf("COIL-%02d-%06d", r, i);
            printf "%s{\"handle\":\"88.118.8/%s\",\"templateVersion\":\"steel-1.0\",\"value\":[", (i ? "," : ""), sn;
            printf "{\"index\":1,\"type\":\"URL\",\"data\":{\"format\":\"string\",\"value\":\"https://steel.example.cn/coil/%s\"}},", sn;
            printf "{\"index\":2000,\"type\":\"heat_no\",\"data\":{\"format\":\"string\",\"value\":\"H24%06d\"}},", i;
            printf "{\"index\":2001,\"type\":\"grade\",\"data\":{\"format\":\"string\",\"value\":\"Q345B\"}},";
            printf "{\"index\":2002,\"type\":\"standard\",\"data\":{\"format\":\"string\",\"value\":\"GB/T 1591-2018\"}},";
            printf "{\"index\":2003,\"type\":\"dimensions\",\"data\":{\"format\":\"string\",\"value\":\"3.0×1500×C\"}},";
            printf "{\"index\":2004,\"type\":\"batch_no\",\"data\":{\"format\":\"string\",\"value\":\"B%02d%04d\"}},", r, i / 100;
            printf "{\"index\":2006,\"type\":\"delivery_condition\",\"data\":{\"format\":\"string\",\"value\":\"热轧\"}},";
            printf "{\"index\":2007,\"type\":\"production_date\",\"data\":{\"format\":\"string\",\"value\":\"2024-11-22\"}},";
            printf "{\"index\":2008,\"type\":\"net_weight_t\",\"data\":{\"format\":\"string\",\"value\":\"21.35\"}},";
            printf "{\"index\":2011,\"type\":\"unit_price_cny\",\"data\":{\"format\":\"string\",\"value\":\"4120.50\"}}]}";
        }
        printf "]";
    }'
}

times=()
printf '| round | records | bytes | server ms |\n|---|---|---|---|\n'
started=$SECONDS
for r in $(seq 1 "$rounds"); do
    if [ "$r" -gt 1 ] && [ $((SECONDS - started)) -ge "$seconds" ]; then
        log "stopping after $((r - 1)) rounds: --seconds $seconds reached"
        break
    fi
    make_batch "$r" > "$scratch/batch.json"
    out=$(c -X POST "$url/identityv2/data/batchCreate" -H "Authorization: Bearer $token" \
          -H 'Content-Type: application/json' --data-binary @"$scratch/batch.json" \
          -o "$scratch/result.json" -w '%{http_code} %{time_pretransfer} %{time_total}')
    read -r code pre total <<< "$out"
    [ "$code" = 200 ] || { log "HTTP $code: $(head -c 300 "$scratch/result.json")"; exit 1; }
    ok=$(grep -o '"msg":"成功"' "$scratch/result.json" | wc -l)
    [ "$ok" = 2000 ] || { log "only $ok of 2000 records succeeded: $(head -c 300 "$scratch/result.json")"; exit 1; }
    ms=$(awk -v a="$pre" -v b="$total" 'BEGIN { printf "%.1f", (b - a) * 1000 }')
    times+=("$ms")
    printf '| %d | 2000 | %d | %s |\n' "$r" "$(stat -c %s "$scratch/batch.json")" "$ms"
done
sorted=$(printf '%s\n' "${times[@]}" | sort -n)
median=$(printf '%s\n' "$sorted" | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }')
p90=$(printf '%s\n' "$sorted" | awk '{ a[NR] = $1 } END { r = int(NR * 0.9); if (r < NR * 0.9) r++; print a[r] }')
best=$(printf '%s\n' "$sorted" | head -1)
printf '\n%d calls: median %s ms, p90 %s ms, best %s ms\n' "${#times[@]}" "$median" "$p90" "$best"
echo "bench: snms_batch_create_2000_calls ${#times[@]} calls"
echo "bench: snms_batch_create_2000_median_ms $median ms"
echo "bench: snms_batch_create_2000_p90_ms $p90 ms"
echo "bench: snms_batch_create_2000_best_ms $best ms"
