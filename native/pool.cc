// CPU feature detection and the persistent thread pool.
//
// Workers are created once (KDQAT_THREADS, default = hardware threads) and wait passively on a
// condition variable after a short spin, so an idle kdqat never burns the other core. A call
// splits the range into one contiguous chunk per thread (the same chunks whoever runs them, so
// results never depend on scheduling); threads claim chunks from a shared ticket, the caller
// included, so on a machine shared with other work the caller runs the chunk of a worker that
// has not woken up yet instead of waiting for it.
#include "common.h"

#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <thread>
#include <vector>
#include <immintrin.h>

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
  return false;
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
    if (n > 256) n = 256;
    stop();
    nthreads_ = n;
    quit_ = false;
    // Workers start from the current generation, read here and not when the thread first
    // runs: a job posted before a new worker is scheduled must not be missed.
    const uint64_t gen0 = generation_.load(std::memory_order_acquire);
    for (int i = 1; i < n; i++) workers_.emplace_back([this, i, gen0] { loop(i, gen0); });
  }

  void run(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn) {
    if (n <= 0) return;
    if (grain < 1) grain = 1;
    int64_t max_chunks = (n + grain - 1) / grain;
    int chunks = static_cast<int>(std::min<int64_t>(nthreads_, max_chunks));
    if (chunks <= 1 || in_parallel_) {
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
      // The ticket names the job (low 32 bits of its generation), its chunk count and the next
      // chunk to claim, in one word: a claim is one compare-exchange.
      ticket_.store(ticket(g, chunks, 0), std::memory_order_release);
      generation_.store(g, std::memory_order_release);
    }
    cv_.notify_all();
    in_parallel_ = true;
    claim_and_run(g);
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
  static uint64_t ticket(uint64_t gen, uint64_t chunks, uint64_t next) {
    return (gen << 32) | (chunks << 16) | next;  // chunks ≤ 256 (resize caps the pool)
  }

  void run_chunk(int c) {
    int64_t begin = job_.n * c / job_.chunks;
    int64_t end = job_.n * (c + 1) / job_.chunks;
    if (begin < end) (*job_.fn)(begin, end);
  }

  // Claims and runs chunks of job `gen` until none is left. A claim succeeds only while the
  // ticket still names that job, so a worker waking late never touches a newer job's chunks
  // before it is posted; job_ is stable while any chunk of it is unfinished (the caller waits).
  void claim_and_run(uint64_t gen) {
    const uint64_t tag = gen & 0xffffffffu;
    uint64_t t = ticket_.load(std::memory_order_acquire);
    for (;;) {
      if ((t >> 32) != tag) return;
      const uint64_t chunks = (t >> 16) & 0xffffu, c = t & 0xffffu;
      if (c >= chunks) return;
      if (!ticket_.compare_exchange_weak(t, ticket(tag, chunks, c + 1), std::memory_order_acq_rel,
                                         std::memory_order_acquire)) {
        continue;  // t was reloaded
      }
      run_chunk(static_cast<int>(c));
      if (pending_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
        std::lock_guard<std::mutex> lk(done_mu_);
        done_cv_.notify_one();
      }
      t = ticket_.load(std::memory_order_acquire);
    }
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
      claim_and_run(g);
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
  std::atomic<uint64_t> ticket_{0};
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
  pool().run(n, grain, fn);
}

}  // namespace kdqat
