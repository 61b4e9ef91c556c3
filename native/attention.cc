// Kernel family 'attention' (see src/tensor/kernels.ts for the contract).
#include "common.h"

namespace kdqat {

void InitAttention(Napi::Env env, Napi::Object exports) {
  (void)env;
  (void)exports;
}

}  // namespace kdqat
