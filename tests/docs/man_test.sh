#!/usr/bin/env bash
# The man pages under docs/man/ render without a single warning, and `cmake --install` puts them
# where man(1) finds them.
#
# Usage: man_test.sh SOURCE_DIR BUILD_DIR
# Each page is rendered twice: by man-db (`man --warnings -l`, 80 columns, the way a reader sees
# it) and by groff alone with every warning enabled (`groff -ww -z -man`). Anything either writes
# on stderr fails the test, and so does a page that renders without its NAME section.
set -euo pipefail
src=${1:?source dir} build=${2:?build dir}
for tool in man groff; do
    command -v "$tool" >/dev/null || { echo "FAIL: $tool is not installed (tools/debian-packages.txt: man-db, groff-base)"; exit 1; }
done
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
status=0
pages=("$src"/docs/man/*.[0-9])
[ ${#pages[@]} -eq 3 ] || { echo "FAIL: expected 3 man pages, found ${#pages[@]}: ${pages[*]}"; exit 1; }
for page in "${pages[@]}"; do
    name=$(basename "$page")
    MANWIDTH=80 MAN_KEEP_FORMATTING= LC_ALL=C.UTF-8 man --warnings -l "$page" >"$work/$name.txt" 2>"$work/$name.err" || {
        echo "FAIL: man -l $name exited non-zero"; status=1; }
    groff -ww -z -man "$page" 2>>"$work/$name.err" || { echo "FAIL: groff $name exited non-zero"; status=1; }
    if [ -s "$work/$name.err" ]; then
        echo "FAIL: $name has warnings:"; sed 's/^/    /' "$work/$name.err"; status=1
    fi
    grep -q '^NAME' "$work/$name.txt" || { echo "FAIL: $name rendered without a NAME section"; status=1; }
    echo "ok: $name ($(wc -l <"$work/$name.txt") lines at 80 columns)"
done
# Installation: component docs into a scratch prefix.
cmake --install "$build" --component docs --prefix "$work/prefix" >"$work/install.log" 2>&1 || {
    echo "FAIL: cmake --install --component docs"; cat "$work/install.log"; exit 1; }
for want in man8/idnode.8 man1/idctl.1 man5/idnode.toml.5; do
    found=$(find "$work/prefix" -path "*/man/$want" | head -1)
    if [ -z "$found" ] || ! cmp -s "$found" "$src/docs/man/$(basename "$want")"; then
        echo "FAIL: cmake --install did not install $want"; status=1
    else
        echo "ok: installed ${found#"$work/prefix/"}"
    fi
done
exit $status
