// CPU feature detection and the persistent thread pool.
//
// Workers are created once (KDQAT_THREADS, default = hardware threads) and wait passively on a
// condition variable after a short spin, so an idle kdqat never burns the other core. A call
// splits the range into contiguous chunks (the same chunks whoever runs them, so results never
// depend on scheduling): four per thread (parallel_for: the chunks depend on the thread count,
// as reductions over them may), or as many as there are grains (parallel_for_dynamic, for work
// whose results do not depend on where chunks begin). Each thread owns a contiguous run of the
// chunks (the caller included) and, when it is through, takes what is left of the others' from
// their ends: on a machine shared with other work the caller runs the chunk of a worker that has
// not woken up yet instead of waiting for it, and with many chunks a thread on a core running
// at full speed takes over blocks from one on a core shared with other work.
#include "common.h"

#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <thread>
#include <vector>
#include <cpuid.h>
#include <immintrin.h>
#include <string>

namespace kdqat {

// ---------------------------------------------------------------------------------------------
// Level → required features; a level is usable when the CPU has all of them (and all of the
// levels below it). Later paths (avx512_fp16, AMX) add a row here.
const char* const kPortableFeatures[] = {nullptr};
const char* const kAvx2Features[] = {"avx2", "fma", nullptr};
const char* const kAvx512Features[] = {"avx512f", "avx512bw", "avx512vl", "avx512dq", nullptr};

const char* const* isa_features(Isa isa) {
  switch (isa) {
    case Isa::Avx512: return kAvx512Features;
    case Isa::Avx2: return kAvx2Features;
    default: return kPortableFeatures;
  }
}

bool cpu_has(const char* f) {
  __builtin_cpu_init();
  // __builtin_cpu_supports needs a string literal, hence the chain.
  if (!std::strcmp(f, "avx2")) return __builtin_cpu_supports("avx2");
  if (!std::strcmp(f, "fma")) return __builtin_cpu_supports("fma");
  if (!std::strcmp(f, "avx512f")) return __builtin_cpu_supports("avx512f");
  if (!std::strcmp(f, "avx512bw")) return __builtin_cpu_supports("avx512bw");
  if (!std::strcmp(f, "avx512vl")) return __builtin_cpu_supports("avx512vl");
  if (!std::strcmp(f, "avx512dq")) return __builtin_cpu_supports("avx512dq");
  if (!std::strcmp(f, "avx512bf16")) return __builtin_cpu_supports("avx512bf16");
  if (!std::strcmp(f, "avx512vnni")) return __builtin_cpu_supports("avx512vnni");
  return false;
}

const char* cpu_vendor() {
  static const std::string v = [] {
    unsigned a, b, c, d;
    char s[13] = {};
    if (!__get_cpuid(0, &a, &b, &c, &d)) return std::string();
    std::memcpy(s, &b, 4);  // CPUID leaf 0: the vendor string in EBX, EDX, ECX
    std::memcpy(s + 4, &d, 4);
    std::memcpy(s + 8, &c, 4);
    return std::string(s);
  }();
  return v.c_str();
}

bool env_on_off(const char* name, bool fallback, const char* what) {
  const char* env = std::getenv(name);
  if (!env || !*env) return fallback;
  if (!std::strcmp(env, "on")) return true;
  if (!std::strcmp(env, "off")) return false;
  std::fprintf(stderr, "kdqat: %s=%s is not on or off; ignored (%s)\n", name, env, what);
  return fallback;
}

Isa cpu_best_isa() {
  static const Isa isa = [] {
    Isa best = Isa::Portable;
    for (int i = 1; i < kNumIsas; i++) {
      bool all = true;
      for (const char* const* f = isa_features(static_cast<Isa>(i)); *f; f++) all = all && cpu_has(*f);
      if (!all) break;
      best = static_cast<Isa>(i);
    }
    return best;
  }();
  return isa;
}

Isa cpu_isa() {
  static const Isa isa = [] {
    Isa best = cpu_best_isa();
    const char* cap = std::getenv("KDQAT_ISA");
    if (cap && *cap) {
      Isa want = best;
      if (!std::strcmp(cap, "portable")) want = Isa::Portable;
      else if (!std::strcmp(cap, "avx2")) want = Isa::Avx2;
      else if (!std::strcmp(cap, "avx512")) want = Isa::Avx512;
      else
        std::fprintf(stderr, "kdqat: KDQAT_ISA=%s is not one of portable, avx2, avx512; ignored "
                             "(running %s)\n", cap, isa_name(best));
      if (static_cast<int>(want) < static_cast<int>(best)) best = want;
    }
    return best;
  }();
  return isa;
}

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::Avx512: return "avx512";
    case Isa::Avx2: return "avx2";
    default: return "portable";
  }
}

// ---------------------------------------------------------------------------------------------
namespace {

struct Job {
  const std::function<void(int64_t, int64_t)>* fn = nullptr;
  int64_t n = 0;
  int chunks = 0;
};

class Pool {
 public:
  Pool() {
    int n = static_cast<int>(std::thread::hardware_concurrency());
    if (const char* env = std::getenv("KDQAT_THREADS")) {
      int v = std::atoi(env);
      if (v > 0) n = v;
    }
    resize(n < 1 ? 1 : n);
  }
  ~Pool() { stop(); }

  int size() const { return nthreads_; }

  void resize(int n) {
    if (n < 1) n = 1;
    if (n > kMaxThreads) n = kMaxThreads;
    stop();
    nthreads_ = n;
    quit_ = false;
    // Workers start from the current generation, read here and not when the thread first
    // runs: a job posted before a new worker is scheduled must not be missed.
    const uint64_t gen0 = generation_.load(std::memory_order_acquire);
    for (int i = 1; i < n; i++) workers_.emplace_back([this, i, gen0] { loop(i, gen0); });
  }

  // kChunksPerThread chunks per thread, or (dynamic) as many chunks of `grain` items as there
  // are, at most kMaxChunks.
  void run(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn, bool dynamic) {
    if (n <= 0) return;
    if (grain < 1) grain = 1;
    int64_t max_chunks = (n + grain - 1) / grain;
    int chunks = static_cast<int>(
        std::min<int64_t>(dynamic ? kMaxChunks : kChunksPerThread * nthreads_, max_chunks));
    if (nthreads_ <= 1 || chunks <= 1 || in_parallel_) {
      fn(0, n);
      return;
    }
    std::lock_guard<std::mutex> serial(run_mu_);  // one parallel region at a time
    job_.fn = &fn;
    job_.n = n;
    job_.chunks = chunks;
    pending_.store(chunks, std::memory_order_relaxed);
    uint64_t g;
    {
      std::lock_guard<std::mutex> lk(mu_);
      g = generation_.load(std::memory_order_relaxed) + 1;
      // Thread p (the caller is 0) owns the contiguous chunks [chunks·p/P, chunks·(p+1)/P): the
      // same rows of a GEMM on every call, so what it left in its caches is its own. Each range
      // is one word naming the job (low 32 bits of its generation) and the range's next and end
      // chunk: a claim is one compare-exchange.
      const int P = nthreads_;
      for (int p = 0; p < P; p++)
        range_[p].store(word(g, static_cast<uint64_t>(chunks) * p / P,
                             static_cast<uint64_t>(chunks) * (p + 1) / P),
                        std::memory_order_relaxed);
      generation_.store(g, std::memory_order_release);
    }
    cv_.notify_all();
    in_parallel_ = true;
    claim_and_run(g, 0);
    in_parallel_ = false;
    // Wait for the workers: spin a little, then sleep.
    for (int spin = 0; pending_.load(std::memory_order_acquire) != 0; spin++) {
      if (spin < 20000) {
        _mm_pause();
      } else {
        std::unique_lock<std::mutex> lk(done_mu_);
        done_cv_.wait(lk, [&] { return pending_.load(std::memory_order_acquire) == 0; });
      }
    }
  }

 private:
  static constexpr int64_t kMaxChunks = 0xffff;  // a range word's 16-bit chunk fields
  // parallel_for's chunks per thread: enough for a thread to take over part of another's run
  // when that one's core is busy, few enough that a chunk stays far above a claim's cost.
  static constexpr int64_t kChunksPerThread = 4;
  static constexpr int kMaxThreads = 256;        // resize's cap
  static uint64_t word(uint64_t gen, uint64_t next, uint64_t end) {
    return (gen << 32) | (next << 16) | end;
  }

  void run_chunk(int64_t c) {
    int64_t begin = job_.n * c / job_.chunks;
    int64_t end = job_.n * (c + 1) / job_.chunks;
    if (begin < end) (*job_.fn)(begin, end);
    if (pending_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
      std::lock_guard<std::mutex> lk(done_mu_);
      done_cv_.notify_one();
    }
  }

  // Claims one chunk of thread q's range, from its front (q's own claims) or its back (another
  // thread's): the chunk's index, or -1 when the range is empty or names another job.
  int64_t claim(int q, uint64_t tag, bool front) {
    std::atomic<uint64_t>& r = range_[q];
    uint64_t w = r.load(std::memory_order_acquire);
    for (;;) {
      if ((w >> 32) != tag) return -1;
      const uint64_t next = (w >> 16) & 0xffffu, end = w & 0xffffu;
      if (next >= end) return -1;
      const uint64_t nw = front ? word(tag, next + 1, end) : word(tag, next, end - 1);
      if (r.compare_exchange_weak(w, nw, std::memory_order_acq_rel, std::memory_order_acquire))
        return static_cast<int64_t>(front ? next : end - 1);
    }
  }

  // Runs the chunks of job `gen` as thread `self`: its own range front to back, then what is
  // left of the others' ranges, from their backs (a thread that has not woken up yet, or runs
  // on a core shared with other work, leaves chunks the others take). A claim succeeds only
  // while the range word names that job, so a worker waking late never touches a newer job's
  // chunks before it is posted; job_ is stable while any chunk of it is unfinished (the caller
  // waits).
  void claim_and_run(uint64_t gen, int self) {
    const uint64_t tag = gen & 0xffffffffu;
    const int P = nthreads_;
    for (int64_t c; (c = claim(self, tag, true)) >= 0;) run_chunk(c);
    for (int k = 1; k < P; k++)
      for (int64_t c; (c = claim((self + k) % P, tag, false)) >= 0;) run_chunk(c);
  }

  void loop(int id, uint64_t seen) {
    in_parallel_ = true;
    for (;;) {
      // Spin briefly for back-to-back kernels, then block.
      uint64_t g = seen;
      for (int spin = 0; spin < 20000; spin++) {
        g = generation_.load(std::memory_order_acquire);
        if (g != seen || quit_) break;
        _mm_pause();
      }
      if (g == seen && !quit_) {
        std::unique_lock<std::mutex> lk(mu_);
        cv_.wait(lk, [&] { return generation_.load(std::memory_order_acquire) != seen || quit_; });
        g = generation_.load(std::memory_order_acquire);
      }
      if (quit_) return;
      seen = g;
      claim_and_run(g, id);
    }
  }

  void stop() {
    {
      std::lock_guard<std::mutex> lk(mu_);
      quit_ = true;
    }
    cv_.notify_all();
    for (auto& t : workers_) t.join();
    workers_.clear();
  }

  int nthreads_ = 1;
  std::vector<std::thread> workers_;
  std::mutex mu_, done_mu_, run_mu_;
  std::condition_variable cv_, done_cv_;
  std::atomic<uint64_t> generation_{0};
  std::atomic<int> pending_{0};
  std::atomic<uint64_t> range_[kMaxThreads] = {};
  std::atomic<bool> quit_{false};
  Job job_;
  static thread_local bool in_parallel_;
};

thread_local bool Pool::in_parallel_ = false;

Pool& pool() {
  static Pool p;
  return p;
}

}  // namespace

int num_threads() { return pool().size(); }
void set_num_threads(int n) {
  if (n != pool().size()) pool().resize(n);
}
void parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn) {
  pool().run(n, grain, fn, false);
}
void parallel_for_dynamic(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn) {
  pool().run(n, grain, fn, true);
}

}  // namespace kdqat
