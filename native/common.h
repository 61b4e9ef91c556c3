// Shared helpers for the kernels: argument unpacking from JavaScript values, CPU feature
// dispatch and the thread pool. Every kernel file includes this and defines one Init function.
#pragma once
#include <napi.h>
#include <cstdint>
#include <functional>

namespace kdqat {

// ---- CPU features (checked once at run time; code paths use __attribute__((target))) ----
enum class Isa { Portable = 0, Avx2 = 1, Avx512 = 2 };
constexpr int kNumIsas = 3;
Isa cpu_isa();            // best ISA this CPU supports, capped by KDQAT_ISA=portable|avx2|avx512
Isa cpu_best_isa();       // best ISA this CPU supports, ignoring KDQAT_ISA
const char* isa_name(Isa);
// The CPU features an ISA level needs (null-terminated list, as __builtin_cpu_supports names
// them) and whether this CPU has each: isaInfo() reports what is missing for a level.
const char* const* isa_features(Isa);
bool cpu_has(const char* feature);
const char* cpu_vendor();  // CPUID's vendor string: "GenuineIntel", "AuthenticAMD", …
// An on/off environment switch (KDQAT_AMX, KDQAT_GEMM_PREFETCH): "on" true, "off" false, unset or
// empty `fallback`; any other value is ignored with a warning naming the variable and `what` the
// fallback means.
bool env_on_off(const char* name, bool fallback, const char* what);

// The code path each kernel family selected for cpu_isa(), read from the table or kernel it
// actually dispatches to (reported by isaInfo() in addon.cc and asserted by the tests).
const char* gemm_isa();
bool gemm_uses_prefetch();  // the fp32 GEMM runs its AVX-512 instance with prefetches (gemm.cc)
const char* nn_isa();
const char* optim_isa();  // adamw, sgd, sumSquares: bodies in the nn tables
const char* quant_isa();
const char* attention_isa();
const char* elementwise_isa();
const char* kquant_isa();
const char* topk_isa();
const char* gemm_q8_isa();  // matmulQ8 (gemm_q8.cc): its avx512 path also needs avx512vnni   // topkLogits, topkKl (kl_fused.cc): one plain C++ path, "portable"
// Why matmulBf16 cannot run here (no avx512_bf16, or KDQAT_ISA below avx512), or null when it can.
const char* gemm_bf16_unavailable();
// Whether matmulBf16 / matmulQ8 run their AMX kernels (amx.h), read back from the kernel selected.
bool gemm_bf16_uses_amx();
bool gemm_q8_uses_amx();
// Whether matmulOnGrid (gemm_grid.cc) can run here: it exists only on AMX.
bool gemm_grid_available();

// ---- thread pool: persistent workers, passive waiting, no thread creation per call ----
int num_threads();
void set_num_threads(int n);
// Runs fn(begin, end) over [0, n) split into at most 4·num_threads() contiguous chunks of at
// least `grain` items (the same chunks for a given n, grain and thread count, whichever thread
// runs them); the calling thread takes part. Nested calls run serially.
void parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn);
// The same over chunks of `grain` items (at most 65535 chunks), which the threads claim one at
// a time, so a thread on a faster (less shared) core runs more of them. For work whose results
// do not depend on where chunks begin and end (e.g. the GEMM's independent blocks).
void parallel_for_dynamic(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn);

// ---- argument unpacking ----
inline float* f32(const Napi::Value& v) {
  return v.As<Napi::Float32Array>().Data();
}
inline float* f32_or_null(const Napi::Value& v) {
  return v.IsNull() || v.IsUndefined() ? nullptr : v.As<Napi::Float32Array>().Data();
}
inline size_t f32_len(const Napi::Value& v) {
  return v.As<Napi::Float32Array>().ElementLength();
}
inline int32_t* i32(const Napi::Value& v) {
  return v.As<Napi::Int32Array>().Data();
}
inline int32_t* i32_or_null(const Napi::Value& v) {
  return v.IsNull() || v.IsUndefined() ? nullptr : v.As<Napi::Int32Array>().Data();
}
inline size_t i32_len(const Napi::Value& v) {
  return v.As<Napi::Int32Array>().ElementLength();
}
inline int64_t i64(const Napi::Value& v) {
  return v.As<Napi::Number>().Int64Value();
}
inline double num(const Napi::Value& v) {
  return v.As<Napi::Number>().DoubleValue();
}
inline bool flag(const Napi::Value& v) {
  return v.ToBoolean().Value();
}

// One Init per kernel family (each in its own .cc file).
void InitGemm(Napi::Env env, Napi::Object exports);
void InitGemmBf16(Napi::Env env, Napi::Object exports);
void InitGemmQ8(Napi::Env env, Napi::Object exports);
void InitGemmGrid(Napi::Env env, Napi::Object exports);
void InitElementwise(Napi::Env env, Napi::Object exports);
void InitNN(Napi::Env env, Napi::Object exports);
void InitAttention(Napi::Env env, Napi::Object exports);
void InitOptim(Napi::Env env, Napi::Object exports);
void InitQuant(Napi::Env env, Napi::Object exports);
void InitKQuant(Napi::Env env, Napi::Object exports);
void InitKlFused(Napi::Env env, Napi::Object exports);  // kl_fused.cc: topkKl
void InitMpi(Napi::Env env, Napi::Object exports);      // mpi.cc: mpiInit, mpiAllReduceSum, …
// Allocation policy for tensor buffers, applied once when the addon loads, and release()
// (allocator.cc).
void InitAllocator(Napi::Env env, Napi::Object exports);

}  // namespace kdqat
