#!/usr/bin/env bash
# Installs the SDK component of the build tree BUILD into a temp prefix and builds the consumer
# in this directory against it, once with find_package (CMake) and once with pkg-config.
#   run.sh BUILD_DIR CONSUMER_DIR CXX CC [EXTRA_FLAGS]
set -euo pipefail
build=$1 src=$2 cxx=$3 cc=$4 extra=${5:-}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/idnode-sdk-install.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
prefix=$tmp/prefix

cmake --install "$build" --component sdk --prefix "$prefix" >/dev/null
# Only the SDK: headers, library, CMake package, pkg-config file — nothing of the node.
test -f "$prefix/include/idnode/sdk.h"
test -f "$prefix/include/idnode/sdk/client.hpp"
test -f "$prefix/include/idnode/sdk/handle_admin.hpp"
ls "$prefix"/lib*/libidnode-sdk.so* >/dev/null
ls "$prefix"/lib*/cmake/idnode/idnodeConfig.cmake "$prefix"/lib*/cmake/idnode/idnodeConfigVersion.cmake >/dev/null
pc=$(ls "$prefix"/lib*/pkgconfig/idnode-sdk.pc)
if find "$prefix" -name 'idnode' -type f -o -name 'idctl' -type f -o -name '*registry*' -o -name '*resolver*' | grep -q .; then
    echo "install put more than the SDK into $prefix" >&2; exit 1
fi
# Run-time dependencies: libssl/libcrypto and the C/C++ runtime, no Boost, no LMDB.
if ldd "$prefix"/lib*/libidnode-sdk.so | grep -Ei 'boost|lmdb|spdlog'; then
    echo "the SDK library depends on a build-time library" >&2; exit 1
fi
# No Boost or OpenSSL symbol is exported.
if nm -D --defined-only "$prefix"/lib*/libidnode-sdk.so | grep -Ei ' (boost|_ZN5boost|SSL_|_ZNK5boost)'; then
    echo "the SDK library exports Boost/OpenSSL symbols" >&2; exit 1
fi

# 1) CMake: find_package(idnode REQUIRED COMPONENTS sdk) → idnode::sdk
cmake -S "$src" -B "$tmp/cmake-build" -DCMAKE_PREFIX_PATH="$prefix" \
      -DCMAKE_CXX_COMPILER="$cxx" -DCMAKE_C_COMPILER="$cc" \
      -DCMAKE_CXX_FLAGS="$extra" -DCMAKE_C_FLAGS="$extra" >/dev/null
cmake --build "$tmp/cmake-build" >/dev/null
"$tmp/cmake-build/consumer_cxx"
"$tmp/cmake-build/consumer_c"
# a component that does not exist is reported as missing
mkdir -p "$tmp/missing"
printf 'cmake_minimum_required(VERSION 3.16)\nproject(m NONE)\nfind_package(idnode REQUIRED COMPONENTS nope)\n' \
    > "$tmp/missing/CMakeLists.txt"
if cmake -S "$tmp/missing" -B "$tmp/missing/b" -DCMAKE_PREFIX_PATH="$prefix" >/dev/null 2>&1; then
    echo "find_package accepted an unknown component" >&2; exit 1
fi

# 2) pkg-config, with the tree moved elsewhere (the .pc file is relocatable)
mv "$prefix" "$tmp/moved"
pc=${pc/$prefix/$tmp/moved}
export PKG_CONFIG_PATH=$(dirname "$pc")
flags=$(pkg-config --cflags --libs idnode-sdk)
libdir=$(pkg-config --variable=libdir idnode-sdk)
"$cxx" -std=c++17 $extra "$src/main.cpp" $flags -Wl,-rpath,"$libdir" -o "$tmp/pc_cxx"
"$cc" -std=c89 -pedantic $extra "$src/main.c" $flags -Wl,-rpath,"$libdir" -o "$tmp/pc_c"
"$tmp/pc_cxx"
"$tmp/pc_c"
test "$(pkg-config --modversion idnode-sdk)" = "$(sed -n 's/^Version: //p' "$pc")"
echo "sdk install: ok"
