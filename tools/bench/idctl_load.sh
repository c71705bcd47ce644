#!/usr/bin/env bash
# `idctl load` over HTTPS (the online load target: 1 M records at >= 120,000 records/s,
# docs/performance.md#online-load-idctl_loadsh): a fresh node, N generated NDJSON records of ~330
# bytes (ascending suffixes, URL + four string values) uploaded by `idctl --json load --streams S`
# with an enterprise key; prints the table and `bench:` lines (docs/performance.md). Client and
# server share this machine's cores.
#
#   tools/bench/idctl_load.sh [--records N] [--streams S] [--bin DIR] [--keep]
#
#   --records N   records to load (default 1000000)
#   --streams S   idctl's parallel bulk streams (default 2)
#   --bin DIR     directory with idnode and idctl (default build/dev/bin)
#   --keep        keep the scratch directory build/bench/idctl_load
#
# Everything talks to 127.0.0.1 only; the node started here is stopped on exit.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"
records=1000000
streams=2
bin_dir=$root/build/dev/bin
keep=0
while [ $# -gt 0 ]; do
    case "$1" in
        --records) records=${2:?}; shift 2 ;;
        --streams) streams=${2:?}; shift 2 ;;
        --bin) bin_dir=${2:?}; shift 2 ;;
        --keep) keep=1; shift ;;
        -h|--help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "idctl_load.sh: unknown argument '$1'" >&2; exit 2 ;;
    esac
done
scratch=$root/build/bench/idctl_load
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
idctl=("$bin/idctl" --url "https://localhost:$port" --ca-file "$cert")
"${idctl[@]}" --key "$admin_key" prefix allocate 88.118.8 --name "Bench Steel" \
    --credit-code 91310000631696382C --industry C3130 >/dev/null || fail "prefix allocate"
"${idctl[@]}" --key "$admin_key" account create mes --role enterprise --prefix 88.118.8 \
    >/dev/null || fail "account create"
key=$("${idctl[@]}" --key "$admin_key" --json account key create mes |
    sed 's/.*"key":"\([^"]*\)".*/\1/')

log "generating $records records"
awk -v n="$records" 'BEGIN {
    for (i = 0; i < n; i++) {
        printf "{\"handle\":\"88.118.8/SN-2024-%09d\",\"values\":[{\"index\":1,\"type\":\"URL\",\"data\":\"https://steel.example.cn/p/%09d\"},{\"index\":2000,\"type\":\"heat_no\",\"data\":\"H%08d\"},{\"index\":2001,\"type\":\"grade\",\"data\":\"Q235B\"},{\"index\":2002,\"type\":\"standard\",\"data\":\"GB/T 700-2006\"},{\"index\":2004,\"type\":\"batch_no\",\"data\":\"B-%06d\"}]}\n", i, i, i, int(i / 1000)
    }
}' >"$scratch/records.ndjson"
bytes=$(stat -c %s "$scratch/records.ndjson")

log "idctl load --streams $streams ($((bytes / 1048576)) MiB)"
cpu_of() { # user+sys CPU seconds of a process so far (all its threads; from /proc)
    awk -v hz="$(getconf CLK_TCK)" '{ printf "%.2f", ($14 + $15) / hz }' "/proc/$1/stat"
}
children_cpu() { # user+sys CPU seconds of this shell's finished children, from `times`
    tail -1 "$1" | awk '{ split($1, u, /[ms]/); split($2, s, /[ms]/)
                          printf "%.2f", u[1] * 60 + u[2] + s[1] * 60 + s[2] }'
}
times >"$scratch/times0.txt" # in this shell: a $(…) subshell would have no children
node_cpu0=$(cpu_of "$idnode_pid")
start=$(date +%s.%N)
"${idctl[@]}" --key "$key" --json load --streams "$streams" "$scratch/records.ndjson" \
    >"$scratch/summary.json" 2>"$scratch/load.stderr" || {
    cat "$scratch/load.stderr" >&2; fail "idctl load"; }
end=$(date +%s.%N)
times >"$scratch/times1.txt"
node_cpu=$(awk -v a="$node_cpu0" -v b="$(cpu_of "$idnode_pid")" 'BEGIN { printf "%.2f", b - a }')
idctl_cpu=$(awk -v a="$(children_cpu "$scratch/times0.txt")" \
    -v b="$(children_cpu "$scratch/times1.txt")" 'BEGIN { printf "%.2f", b - a }')
wall=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.2f", b - a }')
rate=$(sed 's/.*"records_per_second":\([0-9.eE+-]*\).*/\1/' "$scratch/summary.json")
created=$(sed 's/.*"created":\([0-9]*\).*/\1/' "$scratch/summary.json")
[ "$created" = "$records" ] || fail "created $created of $records ($(cat "$scratch/summary.json"))"
identifiers=$("${idctl[@]}" --key "$admin_key" --json stats | sed 's/.*"identifiers":\([0-9]*\).*/\1/')
[ "$identifiers" = "$records" ] || fail "the node holds $identifiers identifiers"

printf '| figure | value |\n|---|---|\n'
printf '| records | %s |\n| NDJSON bytes | %s |\n| streams | %s |\n' "$records" "$bytes" "$streams"
printf '| idctl wall time (s, incl. start-up) | %s |\n' "$wall"
printf '| records/s (idctl summary) | %.0f |\n' "$rate"
printf '| idnode CPU (s) / µs per record | %s / %.1f |\n' "$node_cpu" \
    "$(awk -v c="$node_cpu" -v n="$records" 'BEGIN { print c * 1e6 / n }')"
printf '| idctl CPU (s) / µs per record | %s / %.1f |\n' "$idctl_cpu" \
    "$(awk -v c="$idctl_cpu" -v n="$records" 'BEGIN { print c * 1e6 / n }')"
printf '| load average at the end | %s |\n' "$(cut -d' ' -f1-3 /proc/loadavg)"
printf 'bench: idctl_load_records_per_s %.0f records/s\n' "$rate"
