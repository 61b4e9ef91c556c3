// Node-API entry point: registers every kernel family plus thread/ISA controls.
#include "amx.h"
#include "common.h"

#include <cstdlib>

namespace kdqat {

static Napi::Value GetThreads(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), num_threads());
}
static Napi::Value SetThreads(const Napi::CallbackInfo& info) {
  set_num_threads(static_cast<int>(i64(info[0])));
  return info.Env().Undefined();
}
static Napi::Value GetIsa(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), isa_name(cpu_isa()));
}

// The code paths compiled per kernel family and the one each selected. A family with fewer
// paths than the CPU supports runs its best one below the cap (topk, plain C++, has only the
// portable one): the runner (scripts/test.mjs) reports that per family. A family whose top path
// needs an instruction set beyond its level (gemmQ8's avx512: avx512vnni) lists that path only
// on CPUs that have it.
struct Family {
  const char* name;
  const char* paths[kNumIsas];  // ascending; nullptr-padded
  const char* (*selected)();
  const char* top_needs = nullptr;  // a cpu_has feature the last path also needs
};
static const Family kFamilies[] = {
    {"gemm", {"portable", "avx2", "avx512"}, gemm_isa},
    {"elementwise", {"portable", "avx2", "avx512"}, elementwise_isa},
    {"nn", {"portable", "avx2", "avx512"}, nn_isa},
    {"optim", {"portable", "avx2", "avx512"}, optim_isa},
    {"attention", {"portable", "avx2", "avx512"}, attention_isa},
    {"quant", {"portable", "avx2", "avx512"}, quant_isa},
    {"kquant", {"portable", "avx2", "avx512"}, kquant_isa},
    {"topk", {"portable"}, topk_isa},
    {"gemmQ8", {"portable", "avx2", "avx512"}, gemm_q8_isa, "avx512vnni"},
};

// isaInfo() → { cpu, cap, isa, levels: [{ isa, features, missing }], families: { gemm: {
// selected, paths }, ... }, bf16: { available, reason }, amx: { available, reason, matmulBf16,
// matmulQ8 }, gemmPrefetch }: cpu is the best level this CPU
// supports, cap the KDQAT_ISA value (null when unset), isa the level in force (cpu capped).
static Napi::Value GetIsaInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  o.Set("cpu", isa_name(cpu_best_isa()));
  o.Set("vendor", cpu_vendor());
  const char* cap = std::getenv("KDQAT_ISA");
  o.Set("cap", cap && *cap ? Napi::Value(Napi::String::New(env, cap)) : env.Null());
  o.Set("isa", isa_name(cpu_isa()));
  Napi::Array levels = Napi::Array::New(env);
  for (int i = 0; i < kNumIsas; i++) {
    Napi::Object l = Napi::Object::New(env);
    Napi::Array feats = Napi::Array::New(env), missing = Napi::Array::New(env);
    for (const char* const* f = isa_features(static_cast<Isa>(i)); *f; f++) {
      feats.Set(feats.Length(), *f);
      if (!cpu_has(*f)) missing.Set(missing.Length(), *f);
    }
    l.Set("isa", isa_name(static_cast<Isa>(i)));
    l.Set("features", feats);
    l.Set("missing", missing);
    levels.Set(i, l);
  }
  o.Set("levels", levels);
  Napi::Object fams = Napi::Object::New(env);
  for (const Family& f : kFamilies) {
    Napi::Object x = Napi::Object::New(env);
    Napi::Array paths = Napi::Array::New(env);
    int np = 0;
    while (np < kNumIsas && f.paths[np]) np++;
    if (f.top_needs && !cpu_has(f.top_needs)) np--;
    for (int i = 0; i < np; i++) paths.Set(paths.Length(), f.paths[i]);
    x.Set("selected", f.selected());
    x.Set("paths", paths);
    fams.Set(f.name, x);
  }
  o.Set("families", fams);
  // matmulBf16 (gemm_bf16.cc): not a SIMD level of its own, an extra instruction set on top of
  // avx512; reason says what is missing when it cannot run.
  Napi::Object bf16 = Napi::Object::New(env);
  const char* why = gemm_bf16_unavailable();
  bf16.Set("available", why == nullptr);
  bf16.Set("reason", why ? Napi::Value(Napi::String::New(env, why)) : env.Null());
  o.Set("bf16", bf16);
  // AMX (amx.h): an engine on top of avx512 for matmulBf16 and matmulQ8 (which of them use it),
  // and the only engine of matmulOnGrid.
  Napi::Object amx = Napi::Object::New(env);
  const char* amx_why = amx_unavailable();
  amx.Set("available", amx_why == nullptr);
  amx.Set("reason", amx_why ? Napi::Value(Napi::String::New(env, amx_why)) : env.Null());
  amx.Set("matmulBf16", gemm_bf16_unavailable() == nullptr && gemm_bf16_uses_amx());
  amx.Set("matmulQ8", gemm_q8_uses_amx());
  amx.Set("matmulOnGrid", gemm_grid_available());
  o.Set("amx", amx);
  o.Set("gemmPrefetch", gemm_uses_prefetch());
  return o;
}

static Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("getThreads", Napi::Function::New(env, GetThreads));
  exports.Set("setThreads", Napi::Function::New(env, SetThreads));
  exports.Set("isa", Napi::Function::New(env, GetIsa));
  exports.Set("isaInfo", Napi::Function::New(env, GetIsaInfo));
  InitAllocator(env, exports);
  InitGemm(env, exports);
  InitGemmBf16(env, exports);
  InitGemmQ8(env, exports);
  InitGemmGrid(env, exports);
  InitElementwise(env, exports);
  InitNN(env, exports);
  InitAttention(env, exports);
  InitOptim(env, exports);
  InitQuant(env, exports);
  InitKQuant(env, exports);
  InitKlFused(env, exports);
  InitMpi(env, exports);
  // Every family picks its table now, at load, not on its first call (dispatch.h).
  for (const Family& f : kFamilies) f.selected();
  return exports;
}

}  // namespace kdqat

static Napi::Object InitAddon(Napi::Env env, Napi::Object exports) {
  return kdqat::Init(env, exports);
}

NODE_API_MODULE(kdqat, InitAddon)
