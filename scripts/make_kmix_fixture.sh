#!/bin/sh
# Regenerates test/fixtures/llama_quantize_kmix.json: what llama.cpp's own quantize tool
# (llama_model_quantize in node-llama-cpp's prebuilt libllama, no importance matrix) makes of the
# shipped teacher's F32 GGUF for Q4_K_M, Q5_K_M and Q6_K: every tensor's type and the SHA-256 of
# its bytes. test/io/gguf-llama-quantize.test.ts checks kdqat's own exports against it.
set -eu
cd "$(dirname "$0")/.."
BINS="${LLAMA_BINS:-node_modules/@node-llama-cpp/linux-x64/bins/linux-x64}"
[ -f "$BINS/libllama.v0.4.0.so" ] || { echo "libllama.v0.4.0.so not found in $BINS (set LLAMA_BINS)" >&2; exit 1; }
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
g++ -std=c++17 -O0 -Wall -Wextra -o "$TMP/llama_quantize" scripts/llama_quantize.cc -ldl
node bin/kdqat.js export --model teachers/llama-sotu --format gguf --out "$TMP/F32.gguf" > /dev/null
for spec in Q4_K_M:15 Q5_K_M:17 Q6_K:18; do
  name="${spec%%:*}"
  LD_LIBRARY_PATH="$BINS" "$TMP/llama_quantize" "$BINS/libllama.v0.4.0.so" "$TMP/F32.gguf" "$TMP/$name.gguf" "${spec##*:}" \
    > "$TMP/$name.log" 2>&1 || { cat "$TMP/$name.log" >&2; exit 1; }
done
node --import tsx scripts/kmix_fixture.ts "$TMP" test/fixtures/llama_quantize_kmix.json Q4_K_M Q5_K_M Q6_K
