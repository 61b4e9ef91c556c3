#!/bin/sh
# Regenerates test/fixtures/ggml_blocks.safetensors from llama.cpp's own block quantizers (the
# prebuilt libggml-base.so node-llama-cpp ships for linux-x64). See test/fixtures/README.md.
set -eu
cd "$(dirname "$0")/.."
LIB="${GGML_BASE_LIB:-node_modules/@node-llama-cpp/linux-x64/bins/linux-x64/libggml-base.so}"
[ -f "$LIB" ] || { echo "libggml-base.so not found at $LIB (set GGML_BASE_LIB)" >&2; exit 1; }
BIN="$(mktemp -d)/make_ggml_vectors"
g++ -std=c++17 -O0 -Wall -Wextra -o "$BIN" scripts/make_ggml_vectors.cc -ldl
"$BIN" "$LIB" test/fixtures/ggml_blocks.safetensors
rm -rf "$(dirname "$BIN")"
