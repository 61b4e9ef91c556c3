// Node-API entry point: registers every kernel family plus thread/ISA controls.
#include "common.h"

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

static Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("getThreads", Napi::Function::New(env, GetThreads));
  exports.Set("setThreads", Napi::Function::New(env, SetThreads));
  exports.Set("isa", Napi::Function::New(env, GetIsa));
  InitGemm(env, exports);
  InitElementwise(env, exports);
  InitNN(env, exports);
  InitAttention(env, exports);
  InitOptim(env, exports);
  InitQuant(env, exports);
  return exports;
}

}  // namespace kdqat

static Napi::Object InitAddon(Napi::Env env, Napi::Object exports) {
  return kdqat::Init(env, exports);
}

NODE_API_MODULE(kdqat, InitAddon)
