// llama.cpp's own quantize tool, as a library call: dlopens the prebuilt libllama that
// node-llama-cpp ships and runs llama_model_quantize(IN, OUT, params) with params =
// llama_model_quantize_default_params() and the requested llama_ftype (no importance matrix),
// which is what `llama-quantize IN OUT <type>` does. Used by scripts/make_kmix_fixture.sh.
//
// Usage: llama_quantize LIBLLAMA_SO IN.gguf OUT.gguf FTYPE   (FTYPE: llama.h enum llama_ftype,
//        e.g. 15 = MOSTLY_Q4_K_M, 17 = MOSTLY_Q5_K_M)
#include <dlfcn.h>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

// llama.h struct llama_model_quantize_params starts {int32_t nthread; enum llama_ftype ftype; …};
// only those two leading fields are set here, so the struct is handled as opaque bytes (a buffer
// larger than the struct: it is returned through a hidden pointer the callee writes).
struct Params {
  alignas(16) unsigned char bytes[512];
};
typedef Params (*default_params_t)();
typedef uint32_t (*quantize_t)(const char *in, const char *out, const Params *params);
typedef void (*backend_init_t)();

int main(int argc, char **argv) {
  if (argc != 5) {
    fprintf(stderr, "usage: %s LIBLLAMA_SO IN.gguf OUT.gguf FTYPE\n", argv[0]);
    return 2;
  }
  void *lib = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
  if (!lib) {
    fprintf(stderr, "cannot load %s: %s\n", argv[1], dlerror());
    return 1;
  }
  auto init = (backend_init_t)dlsym(lib, "llama_backend_init");
  auto defaults = (default_params_t)dlsym(lib, "llama_model_quantize_default_params");
  auto quantize = (quantize_t)dlsym(lib, "llama_model_quantize");
  if (!init || !defaults || !quantize) {
    fprintf(stderr, "llama_backend_init / llama_model_quantize[_default_params] not found in %s\n", argv[1]);
    return 1;
  }
  init();
  Params p = defaults();
  int32_t nthread = 1, ftype = atoi(argv[4]);
  memcpy(p.bytes, &nthread, 4);
  memcpy(p.bytes + 4, &ftype, 4);
  uint32_t rc = quantize(argv[2], argv[3], &p);
  if (rc != 0) {
    fprintf(stderr, "llama_model_quantize(%s, %s, ftype %d) failed: %u\n", argv[2], argv[3], ftype, rc);
    return 1;
  }
  return 0;
}
