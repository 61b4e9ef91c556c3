// Argument checking for the 'nn' and 'optim' Node-API wrappers: every buffer is checked for its
// type and exact length before any kernel runs, so bad input throws a JS TypeError/RangeError
// naming the kernel and the argument instead of reading or writing out of bounds.
#pragma once
#include <cmath>
#include <string>

#include "common.h"

namespace kdqat::nn {

class Args {
 public:
  Args(const Napi::CallbackInfo& info, const char* fn, size_t count) : info_(info), fn_(fn) {
    if (info.Length() < count) {
      throw type_error("expects " + std::to_string(count) + " arguments, got " +
                       std::to_string(info.Length()));
    }
  }

  Napi::Error range_error(const std::string& msg) const {
    return Napi::RangeError::New(info_.Env(), std::string(fn_) + ": " + msg);
  }
  Napi::Error type_error(const std::string& msg) const {
    return Napi::TypeError::New(info_.Env(), std::string(fn_) + ": " + msg);
  }

  // A Float32Array of exactly `len` elements (at least `len` if at_least).
  float* f32(size_t i, const char* name, int64_t len, bool at_least = false) const {
    const Napi::Value v = info_[i];
    if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array) {
      throw type_error(std::string(name) + " must be a Float32Array");
    }
    check_len(name, static_cast<int64_t>(v.As<Napi::Float32Array>().ElementLength()), len,
              at_least);
    return v.As<Napi::Float32Array>().Data();
  }
  // Like f32, but null (or undefined) gives nullptr.
  float* f32_opt(size_t i, const char* name, int64_t len) const {
    const Napi::Value v = info_[i];
    return v.IsNull() || v.IsUndefined() ? nullptr : f32(i, name, len);
  }
  int32_t* i32(size_t i, const char* name, int64_t len) const {
    const Napi::Value v = info_[i];
    if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_int32_array) {
      throw type_error(std::string(name) + " must be an Int32Array");
    }
    check_len(name, static_cast<int64_t>(v.As<Napi::Int32Array>().ElementLength()), len, false);
    return v.As<Napi::Int32Array>().Data();
  }
  // The element count of a Float32Array argument (for kernels sized by their buffers).
  int64_t f32_length(size_t i, const char* name) const {
    const Napi::Value v = info_[i];
    if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array) {
      throw type_error(std::string(name) + " must be a Float32Array");
    }
    return static_cast<int64_t>(v.As<Napi::Float32Array>().ElementLength());
  }
  // A size argument: an integer in [0, 2^31).
  int64_t dim(size_t i, const char* name) const {
    const double d = number(i, name);
    if (!(d >= 0 && d < 2147483648.0) || d != std::floor(d)) {
      throw range_error(std::string(name) + " must be an integer in [0, 2^31), got " +
                        std::to_string(d));
    }
    return static_cast<int64_t>(d);
  }
  double number(size_t i, const char* name) const {
    if (!info_[i].IsNumber()) throw type_error(std::string(name) + " must be a number");
    return info_[i].As<Napi::Number>().DoubleValue();
  }
  // A positive finite number (a temperature, a clamp ε).
  double positive(size_t i, const char* name) const {
    const double d = number(i, name);
    if (!(d > 0 && std::isfinite(d))) {
      throw range_error(std::string(name) + " must be a positive finite number, got " + std::to_string(d));
    }
    return d;
  }
  bool boolean(size_t i) const { return info_[i].ToBoolean().Value(); }

  // a·b for sizes, refusing anything beyond 2^53 (no typed array is that long).
  int64_t mul(int64_t a, int64_t b) const {
    if (a != 0 && b > (int64_t(1) << 53) / a) throw range_error("sizes too large");
    return a * b;
  }

 private:
  void check_len(const char* name, int64_t got, int64_t want, bool at_least) const {
    if (at_least ? got < want : got != want) {
      throw range_error(std::string(name) + " has length " + std::to_string(got) + ", expected " +
                        (at_least ? "at least " : "") + std::to_string(want));
    }
  }

  const Napi::CallbackInfo& info_;
  const char* fn_;
};

// Rows per parallel_for chunk so that one chunk holds about `work` elements of n each.
inline int64_t row_grain(int64_t n, int64_t work = 16384) {
  return n >= work ? 1 : work / (n > 0 ? n : 1);
}

}  // namespace kdqat::nn
