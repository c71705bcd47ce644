#!/usr/bin/env bash
# Durable single-record creates: the Handle protocol (one authenticated TCP connection per client,
# LOGIN_ID_SYSTEM, CREATE_HANDLE) against PUT /api/handles over HTTPS keep-alive, 16 clients each,
# on one node in one run; and resolutions on authenticated against anonymous Handle connections
# (docs/performance.md#handle-protocol-administration).
#
#   tools/bench/handle_admin.sh [--seconds S] [--rounds R] [--keep]
#
# Steps: install wrk and curl when missing (as root); build the release binaries; `idctl init` a
# node (rate limits off, https.threads = 2); register the secret-key identity 301:0.NA/88.118 for
# the admin account; then R rounds of: `wrk -t2 -c16` with tools/bench/https_register.lua (every
# request a new handle: a durable create, 201) and handle_admin_load --clients 16 (creates with
# one in flight per connection, then 8 pipelined per connection, then resolutions on the logged-in
# and on anonymous connections), S seconds each. Prints a table and
# `bench:` lines; the ratios compare figures of the same round. Only 127.0.0.1; every process
# started here is stopped on exit; the scratch data (build/bench/handle-admin) is removed unless
# --keep.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"
seconds=10
rounds=2
keep=""
while [ $# -gt 0 ]; do
    case "$1" in
    --seconds) seconds=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --keep) keep=1; shift ;;
    *) echo "usage: $0 [--seconds S] [--rounds R] [--keep]" >&2; exit 2 ;;
    esac
done

scratch=$root/build/bench/handle-admin
bench_name=handle-admin
# shellcheck source=tools/bench/lib.sh
source "$root/tools/bench/lib.sh"

idnode_pid=""
cleanup() {
    stop_pid "$idnode_pid" TERM 20
    [ -n "$keep" ] || rm -rf "$scratch"
}
trap cleanup EXIT

ensure_packages wrk curl openssl
build_release idnode idctl handle_admin_load
rm -rf "$scratch"
mkdir -p "$scratch"
start_fresh_node "$scratch"

printf 'bench-secret-%s' "$RANDOM$RANDOM" >"$scratch/secret"
curl -sS --fail --max-time 10 --cacert "$cert" -H "Authorization: Bearer $admin_key" \
    -H 'Content-Type: application/json' \
    -d "{\"handle\":\"0.NA/88.118\",\"index\":301,\"secret_key\":\"$(cat "$scratch/secret")\"}" \
    "https://127.0.0.1:$port/api/v1/accounts/admin/identities" >/dev/null ||
    fail "registering the identity"

declare -a https_rates tcp_rates pipe_rates auth_rates anon_rates
for ((r = 1; r <= rounds; r++)); do
    log "round $r: HTTPS PUT, 16 connections, ${seconds} s"
    allow_close="" run_wrk "idnode (PUT)" "$scratch/put-$r.txt" -t2 -c16 -d"${seconds}"s --latency \
        -s "$root/tools/bench/https_register.lua" "https://127.0.0.1:$port" -- "$admin_key" 88.118
    https_rates+=("$(rps_of "$scratch/put-$r.txt")")
    log "round $r: Handle protocol, 16 connections, ${seconds} s per phase"
    timeout $((seconds * 4 + 60)) "$bin/handle_admin_load" --tcp "127.0.0.1:$idnode_handle_port" \
        --identity 301:0.NA/88.118 --secret-file "$scratch/secret" --prefix 88.118 \
        --clients 16 --seconds "$seconds" --pipeline 8 >"$scratch/tcp-$r.txt" ||
        fail "handle_admin_load"
    grep -q 'bench: handle_tcp_auth_creates_errors 0 count' "$scratch/tcp-$r.txt" ||
        { cat "$scratch/tcp-$r.txt" >&2; fail "Handle creates had errors"; }
    tcp_rates+=("$(awk '/^bench: handle_tcp_auth_creates /{print $3}' "$scratch/tcp-$r.txt")")
    pipe_rates+=("$(awk '/^bench: handle_tcp_auth_creates_pipelined /{print $3}' "$scratch/tcp-$r.txt")")
    auth_rates+=("$(awk '/^bench: handle_tcp_auth_resolutions /{print $3}' "$scratch/tcp-$r.txt")")
    anon_rates+=("$(awk '/^bench: handle_tcp_anon_resolutions /{print $3}' "$scratch/tcp-$r.txt")")
done

echo
echo "| round | HTTPS PUT creates/s | Handle TCP creates/s (1 in flight) | ratio | Handle TCP creates/s (8 pipelined) | ratio | auth resolutions/s | anon resolutions/s | ratio |"
echo "|---|---|---|---|---|---|---|---|---|"
sum_https=0 sum_tcp=0 sum_pipe=0 sum_auth=0 sum_anon=0
for ((i = 0; i < rounds; i++)); do
    echo "| $((i + 1)) | ${https_rates[$i]} | ${tcp_rates[$i]} | $(ratio "${tcp_rates[$i]}" "${https_rates[$i]}") | ${pipe_rates[$i]} | $(ratio "${pipe_rates[$i]}" "${https_rates[$i]}") | ${auth_rates[$i]} | ${anon_rates[$i]} | $(ratio "${auth_rates[$i]}" "${anon_rates[$i]}") |"
    sum_https=$((sum_https + https_rates[i])) sum_tcp=$((sum_tcp + tcp_rates[i]))
    sum_pipe=$((sum_pipe + pipe_rates[i]))
    sum_auth=$((sum_auth + auth_rates[i])) sum_anon=$((sum_anon + anon_rates[i]))
done
echo
echo "bench: https_put_creates $((sum_https / rounds)) req/s"
echo "bench: handle_tcp_creates $((sum_tcp / rounds)) req/s"
echo "bench: handle_tcp_creates_vs_https_put $(ratio "$sum_tcp" "$sum_https") ratio"
echo "bench: handle_tcp_pipelined_creates $((sum_pipe / rounds)) req/s"
echo "bench: handle_tcp_pipelined_creates_vs_https_put $(ratio "$sum_pipe" "$sum_https") ratio"
echo "bench: handle_auth_resolutions $((sum_auth / rounds)) req/s"
echo "bench: handle_anon_resolutions $((sum_anon / rounds)) req/s"
echo "bench: handle_auth_vs_anon_resolutions $(ratio "$sum_auth" "$sum_anon") ratio"
