// Data-parallel training over MPI (src/train/distributed.ts): init, rank/size, a deterministic
// in-place all-reduce SUM, barrier, abort, finalize. Compiled against Open MPI when
// scripts/mpi-flags.cjs finds mpi.h (binding.gyp defines KDQAT_MPI); otherwise every entry
// point but mpiInfo() throws, saying how to install MPI and rebuild.
//
// The all-reduce is not MPI_Allreduce: MPI does not promise the same float summation order on
// every run (or on every rank, for some algorithms). Here the sum runs along a chain in rank
// order, pipelined in chunks: rank 0 sends its chunk to rank 1, rank r adds its own to the
// partial sum it receives and passes it on — ((x0 + x1) + x2) + … element by element — and the
// last rank sends the finished chunk back down the chain. So the result is bitwise reproducible
// and identical on every rank. Every link carries n values each way (2n per rank, whatever N,
// where gathering to rank 0 put 2(N − 1)·n on rank 0's link); a bandwidth-optimal ring moves
// 2(N − 1)/N·n but adds chunk c in the order c+1, c+2, …, so not in rank order. The chain's cost
// over the ring is at most 2× the bytes plus N − 1 chunk hops of latency each way.
#include <algorithm>
#include <atomic>
#include <csignal>
#include <cstring>
#include <string>
#include <vector>

#include <unistd.h>

#include "common.h"
#include "args.h"

#ifdef KDQAT_MPI
#include <dlfcn.h>
// The C API only: Open MPI's deprecated C++ bindings need libmpi_cxx, which is not linked.
#define OMPI_SKIP_MPICXX 1
#define MPICH_SKIP_MPICXX 1
#include <mpi.h>
#endif

namespace kdqat {
namespace {

constexpr const char* kInstall =
    "this kdqat addon was built without MPI (mpi.h was not found at build time); install Open MPI "
    "(Debian/Ubuntu: apt-get install openmpi-bin libopenmpi-dev), then rebuild the addon: "
    "npm rebuild kdqat (or npx node-gyp rebuild in the kdqat directory)";

// Last words (mpiLastWords): what this rank prints if mpirun ends it with SIGTERM (it does when
// another rank dies), e.g. the last good checkpoint. Two buffers, so the handler never reads one
// being rewritten; only async-signal-safe calls in the handler.
constexpr size_t kWords = 4096;
char g_words[2][kWords];
size_t g_words_len[2] = {0, 0};
std::atomic<int> g_words_at{-1};

extern "C" void kdqat_on_sigterm(int sig) {
  const int w = g_words_at.load();
  if (w >= 0) {
    ssize_t ignored = write(2, g_words[w], g_words_len[w]);
    (void)ignored;
  }
  _exit(128 + sig);
}

// mpiLastWords(text): print `text` to stderr if this process is ended by SIGTERM (replaces the
// previous text; the handler is installed on the first call).
Napi::Value MpiLastWords(const Napi::CallbackInfo& info) {
  Args a(info, "mpiLastWords", 1);
  if (!info[0].IsString()) throw a.type_error("text must be a string");
  const std::string text = info[0].As<Napi::String>().Utf8Value();
  const int next = g_words_at.load() == 0 ? 1 : 0;
  const size_t n = std::min(text.size(), kWords);
  std::memcpy(g_words[next], text.data(), n);
  g_words_len[next] = n;
  if (g_words_at.exchange(next) < 0) {
    struct sigaction act;
    std::memset(&act, 0, sizeof act);
    act.sa_handler = kdqat_on_sigterm;
    sigemptyset(&act.sa_mask);
    sigaction(SIGTERM, &act, nullptr);
  }
  return info.Env().Undefined();
}

#ifdef KDQAT_MPI
bool g_init = false, g_final = false;

void need_init(const Args& a) {
  if (!g_init) throw a.type_error("MPI is not initialized; call mpiInit() first");
  if (g_final) throw a.type_error("MPI was finalized");
}

// Sum in rank order along the chain 0 → 1 → … → N−1, then back down, in chunks so the links
// work in parallel (rank r sums chunk k while rank r+1 sums chunk k−1).
template <typename T>
void reduce_sum(T* p, int64_t n, MPI_Datatype type) {
  int rank = 0, size = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  if (size == 1 || n == 0) return;
  const int64_t kChunk = int64_t(1) << 18;  // 256 Ki values: 1 MB of float per message
  const int64_t chunks = (n + kChunk - 1) / kChunk;
  // Kept between calls: a fresh buffer every step cost as much as the transfers.
  static std::vector<T> in;
  in.resize(std::max(in.size(), static_cast<size_t>(std::min(n, kChunk))));
  std::vector<MPI_Request> sent;
  sent.reserve(static_cast<size_t>(2 * chunks));
  const int up = rank + 1, down = rank - 1;
  // Up the chain: partial sums of ranks 0..r, in rank order.
  for (int64_t k = 0; k < chunks; k++) {
    const int64_t off = k * kChunk;
    const int c = static_cast<int>(std::min(kChunk, n - off));
    T* x = p + off;
    if (rank > 0) {
      MPI_Recv(in.data(), c, type, down, 0, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
      for (int i = 0; i < c; i++) x[i] = in[i] + x[i];  // (x0 + … + x_{r−1}) + x_r
    }
    if (up < size) {
      sent.emplace_back();
      MPI_Isend(x, c, type, up, 0, MPI_COMM_WORLD, &sent.back());
    }
  }
  // Back down: the last rank's sums replace every other rank's partial ones (once the upward
  // sends are complete, so no chunk is overwritten while still being sent).
  MPI_Waitall(static_cast<int>(sent.size()), sent.data(), MPI_STATUSES_IGNORE);
  sent.clear();
  for (int64_t k = 0; k < chunks; k++) {
    const int64_t off = k * kChunk;
    const int c = static_cast<int>(std::min(kChunk, n - off));
    T* x = p + off;
    if (up < size) MPI_Recv(x, c, type, up, 1, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    if (rank > 0) {
      sent.emplace_back();
      MPI_Isend(x, c, type, down, 1, MPI_COMM_WORLD, &sent.back());
    }
  }
  MPI_Waitall(static_cast<int>(sent.size()), sent.data(), MPI_STATUSES_IGNORE);
}
#endif

// mpiInfo() → { compiled, version }: whether this addon has MPI, and the library's version
// string once initialized (null before).
Napi::Value MpiInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
#ifdef KDQAT_MPI
  o.Set("compiled", true);
  if (g_init) {
    char v[MPI_MAX_LIBRARY_VERSION_STRING];
    int len = 0;
    MPI_Get_library_version(v, &len);
    o.Set("version", std::string(v, len));
  } else {
    o.Set("version", env.Null());
  }
  o.Set("reason", env.Null());
#else
  o.Set("compiled", false);
  o.Set("version", env.Null());
  o.Set("reason", kInstall);
#endif
  return o;
}

// mpiInit() → { rank, size }. Idempotent.
Napi::Value MpiInit(const Napi::CallbackInfo& info) {
  Args a(info, "mpiInit");
#ifdef KDQAT_MPI
  if (g_final) throw a.type_error("MPI was finalized; it cannot be initialized again");
  if (!g_init) {
    // Node loads this addon with RTLD_LOCAL, so libmpi's symbols are invisible to the plugins
    // Open MPI dlopens itself (mca_*.so): promote libmpi to the global scope first.
    if (!dlopen("libmpi.so.40", RTLD_NOW | RTLD_GLOBAL) && !dlopen("libmpi.so", RTLD_NOW | RTLD_GLOBAL)) {
      const char* e = dlerror();
      throw a.type_error(std::string("cannot load libmpi.so.40: ") + (e ? e : "unknown error"));
    }
    int provided = 0;
    if (MPI_Init_thread(nullptr, nullptr, MPI_THREAD_SINGLE, &provided) != MPI_SUCCESS)
      throw a.type_error("MPI_Init failed");
    g_init = true;
  }
  int rank = 0, size = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  Napi::Object o = Napi::Object::New(info.Env());
  o.Set("rank", rank);
  o.Set("size", size);
  return o;
#else
  throw a.type_error(kInstall);
#endif
}

// mpiAllReduceSum(x): x (a Float32Array or Float64Array, the same length on every rank)
// becomes the sum over ranks, in rank order, on every rank.
Napi::Value MpiAllReduceSum(const Napi::CallbackInfo& info) {
  Args a(info, "mpiAllReduceSum", 1);
#ifdef KDQAT_MPI
  need_init(a);
  const Napi::Value v = info[0];
  if (v.IsTypedArray() && v.As<Napi::TypedArray>().TypedArrayType() == napi_float64_array) {
    auto x = v.As<Napi::Float64Array>();
    reduce_sum<double>(x.Data(), static_cast<int64_t>(x.ElementLength()), MPI_DOUBLE);
  } else {
    const Buf<float> x = a.f32_buf(0, "x");  // or a TypeError naming what x is
    reduce_sum<float>(x.p, x.n, MPI_FLOAT);
  }
  return info.Env().Undefined();
#else
  throw a.type_error(kInstall);
#endif
}

Napi::Value MpiBarrier(const Napi::CallbackInfo& info) {
  Args a(info, "mpiBarrier");
#ifdef KDQAT_MPI
  need_init(a);
  MPI_Barrier(MPI_COMM_WORLD);
  return info.Env().Undefined();
#else
  throw a.type_error(kInstall);
#endif
}

// mpiAbort(code): ends every rank of the job (mpirun reports the code); does not return.
Napi::Value MpiAbort(const Napi::CallbackInfo& info) {
  Args a(info, "mpiAbort", 1);
  const int32_t code = a.int32(0, "code");
#ifdef KDQAT_MPI
  need_init(a);
  MPI_Abort(MPI_COMM_WORLD, code);
  return info.Env().Undefined();
#else
  (void)code;
  throw a.type_error(kInstall);
#endif
}

Napi::Value MpiFinalize(const Napi::CallbackInfo& info) {
  Args a(info, "mpiFinalize");
#ifdef KDQAT_MPI
  if (g_init && !g_final) {
    MPI_Finalize();
    g_final = true;
  }
  return info.Env().Undefined();
#else
  throw a.type_error(kInstall);
#endif
}

}  // namespace

void InitMpi(Napi::Env env, Napi::Object exports) {
  exports.Set("mpiInfo", Napi::Function::New(env, MpiInfo));
  exports.Set("mpiInit", Napi::Function::New(env, MpiInit));
  exports.Set("mpiAllReduceSum", Napi::Function::New(env, MpiAllReduceSum));
  exports.Set("mpiBarrier", Napi::Function::New(env, MpiBarrier));
  exports.Set("mpiAbort", Napi::Function::New(env, MpiAbort));
  exports.Set("mpiFinalize", Napi::Function::New(env, MpiFinalize));
  exports.Set("mpiLastWords", Napi::Function::New(env, MpiLastWords));
}

}  // namespace kdqat
