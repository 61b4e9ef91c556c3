// Keeps the process's freed tensor buffers for reuse instead of handing them back to the kernel.
//
// Node allocates ArrayBuffers with calloc (malloc for Buffer.allocUnsafeSlow, which ops use for
// outputs a kernel fully overwrites: uninitF32 in src/tensor/tensor.ts). glibc serves blocks
// above its mmap threshold (128 KiB at start, adapting up to 32 MiB) with a fresh mmap and
// unmaps them on free, so every new activation or gradient of a training step — a few MB each —
// is zero-filled page by page through page faults on first touch, inside the kernel that writes
// it. Raising the mmap
// threshold to its maximum and never trimming the heap top makes calloc recycle freed heap
// blocks (a memset instead of faults). Measured on the SmolLM2-135M KD-QAT step (AMD EPYC Zen 4,
// 2 threads, two alternating runs each, KDQAT_PROFILE=1): the binary kernels 1113/1102 →
// 906/1010 ms and AdamW 848/778 → 671/770 ms over the run; the whole step within noise. Only
// the allocation policy changes: no tensor's contents do.
//
// Blocks above 32 MiB (a BERT-base or SmolLM2 embedding's gradient and Adam moments, the
// logits of a chunk) still got an mmap each and so faulted in afresh on every step. With
// M_MMAP_MAX = 0 every block comes from the heap (glibc falls back to mmap only if the heap
// cannot grow). On a virtual machine the first touch of memory new to the process is far
// dearer than a memset: AMD EPYC Zen 5 (Firecracker guest) faults 25 MB in 40 ms (6.5 µs per
// 4 KiB page; 25 ms even with transparent huge pages), against ~2 ms to refill a recycled block.
// BERT-base KD-QAT step, 1 thread, 8 steps: 69.9k → 25.5k minor faults per step, 172 → 181
// tokens/s mean (best step 186 → 210), peak RSS unchanged (6.0 GB).
//
// The heap top was still given back above 1 GiB free (M_TRIM_THRESHOLD). Under --recompute the
// heap storage policy frees each buffer at once, so a step's live set swings by more than that,
// and whether the top crossed it depended on where the collector's timing left the blocks: on
// the Zen 5, BERT-base `--bf16 layers` with `selective`, 1 thread, 3 of 4 runs trimmed ~1 GB
// per step and faulted it back in (267–272k minor faults per step, 198–219 tokens/s), the
// others 2k (344). Never trimming (-1): 2.9–3.3k faults per step in 4 of 4 runs, 320–354
// tokens/s, peak RSS the same (3,533–3,572 MB against 3,547–3,566): the pages a trim returns
// are needed again in the next step, so keeping them costs no peak.
#include "args.h"
#include "common.h"

#include <cstdlib>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace kdqat {

static void TuneAllocator() {
#if defined(__GLIBC__)
  if (std::getenv("KDQAT_MALLOC_DEFAULTS")) return;  // the glibc defaults, for comparison
  mallopt(M_MMAP_THRESHOLD, 32 << 20);  // glibc's largest allowed value on 64-bit (32 MiB)
  mallopt(M_TRIM_THRESHOLD, -1);        // never give the heap top back (man mallopt: -1 disables)
  mallopt(M_MMAP_MAX, 0);               // no block of its own mapping: all come from the heap
#endif
}

// release(x): frees x's storage now instead of when the collector finds it unreachable, by
// detaching its ArrayBuffer (x and every view of that buffer have length 0 afterwards, so a
// later use throws a length error in the kernel that gets it rather than reading freed memory).
// V8 frees the backing store at once. For buffers nothing else holds: src/tensor/storage.ts
// calls it for those it gives back when its pool is full.
static Napi::Value Release(const Napi::CallbackInfo& info) {
  Args a(info, "release", 1);
  a.f32_buf(0, "x");  // a Float32Array, or a TypeError naming the argument
  Napi::ArrayBuffer b = info[0].As<Napi::Float32Array>().ArrayBuffer();
  if (!b.IsDetached()) b.Detach();
  return info.Env().Undefined();
}

void InitAllocator(Napi::Env env, Napi::Object exports) {
  TuneAllocator();
  exports.Set("release", Napi::Function::New(env, Release));
}

}  // namespace kdqat
