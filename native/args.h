// The one argument/shape validator of the Node-API entry points: every wrapper builds an Args
// for its call and takes each argument through it before any kernel runs, so bad input throws a
// JS TypeError (wrong kind) or RangeError (wrong value or length) naming the kernel and the
// argument — "kernel: name must be …, got …" — instead of reading or writing out of bounds.
//
//   typed arrays  f32(i, name, len[, at_least]) / i32(…) / u16(…): exact (or minimum) length, data
//                 f32_opt / i32_opt: the same, or nullptr for null/undefined
//                 f32_buf / i32_buf: any length, {data, length}; length(name, got, want)
//                 scales: grid steps, one or one per row/column, finite and ≥ 0
//   sizes         dim: integer in [min, 2^31) (min 0 by default);  count: integer in [0, 2^53];  mul: overflow-safe
//   numbers       number, positive (finite > 0), int32 (JS ToInt32), flag (truthiness)
#pragma once
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "common.h"

namespace kdqat {

template <typename T>
struct Buf {
  T* p;
  int64_t n;
};

class Args {
 public:
  // `count`: the number of arguments the kernel needs (fewer is a TypeError).
  Args(const Napi::CallbackInfo& info, const char* fn, size_t count = 0) : info_(info), fn_(fn) {
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
  // A RangeError "fn: msg" unless ok.
  void need(bool ok, const std::string& msg) const {
    if (!ok) throw range_error(msg);
  }

  // ---- typed arrays ----
  Buf<float> f32_buf(size_t i, const char* name) const {
    const Napi::Value v = typed(i, name, napi_float32_array, "a Float32Array");
    auto a = v.As<Napi::Float32Array>();
    return {a.Data(), static_cast<int64_t>(a.ElementLength())};
  }
  Buf<int32_t> i32_buf(size_t i, const char* name) const {
    const Napi::Value v = typed(i, name, napi_int32_array, "an Int32Array");
    auto a = v.As<Napi::Int32Array>();
    return {a.Data(), static_cast<int64_t>(a.ElementLength())};
  }
  // A Float32Array of exactly `len` elements (at least `len` if at_least).
  float* f32(size_t i, const char* name, int64_t len, bool at_least = false) const {
    const Buf<float> b = f32_buf(i, name);
    check_len(name, b.n, len, at_least);
    return b.p;
  }
  // Like f32 / i32, or nullptr for null/undefined.
  float* f32_opt(size_t i, const char* name, int64_t len) const {
    if (absent(i)) return nullptr;
    const Napi::Value v = typed(i, name, napi_float32_array, "a Float32Array or null");
    check_len(name, static_cast<int64_t>(v.As<Napi::Float32Array>().ElementLength()), len, false);
    return v.As<Napi::Float32Array>().Data();
  }
  uint16_t* u16(size_t i, const char* name, int64_t len, bool at_least = false) const {
    const Napi::Value v = typed(i, name, napi_uint16_array, "a Uint16Array");
    auto a = v.As<Napi::Uint16Array>();
    check_len(name, static_cast<int64_t>(a.ElementLength()), len, at_least);
    return a.Data();
  }
  // Whether argument i is a Uint16Array (an operand that may be float32 or bf16 bits).
  bool is_u16(size_t i) const {
    return info_[i].IsTypedArray() && info_[i].As<Napi::TypedArray>().TypedArrayType() == napi_uint16_array;
  }
  int32_t* i32(size_t i, const char* name, int64_t len) const {
    const Buf<int32_t> b = i32_buf(i, name);
    check_len(name, b.n, len, false);
    return b.p;
  }
  int32_t* i32_opt(size_t i, const char* name, int64_t len) const {
    if (absent(i)) return nullptr;
    const Napi::Value v = typed(i, name, napi_int32_array, "an Int32Array or null");
    check_len(name, static_cast<int64_t>(v.As<Napi::Int32Array>().ElementLength()), len, false);
    return v.As<Napi::Int32Array>().Data();
  }
  // Grid steps (matmulQ8, matmulOnGrid): a Float32Array of one scale or one per `per_name` (len
  // `per`), each finite and ≥ 0.
  Buf<float> scales(size_t i, const char* name, int64_t per, const char* per_name) const {
    const Buf<float> s = f32_buf(i, name);
    need(s.n == 1 || s.n == per, std::string(name) + " has length " + std::to_string(s.n) + ", expected 1 or " +
                                     per_name + " = " + std::to_string(per));
    for (int64_t j = 0; j < s.n; j++)  // the message only for a bad one (formatting costs µs)
      if (!(std::isfinite(s.p[j]) && s.p[j] >= 0))
        need(false, std::string(name) + "[" + std::to_string(j) + "] must be a finite scale ≥ 0, got " + fmt(s.p[j]));
    return s;
  }
  // The element count of a Float32Array argument (for kernels sized by their buffers).
  int64_t f32_length(size_t i, const char* name) const { return f32_buf(i, name).n; }
  void length(const char* name, int64_t got, int64_t want) const {
    check_len(name, got, want, false);
  }
  bool absent(size_t i) const { return info_[i].IsNull() || info_[i].IsUndefined(); }

  // ---- numbers and sizes ----
  double number(size_t i, const char* name) const {
    const Napi::Value v = info_[i];
    if (!v.IsNumber()) throw type_error(std::string(name) + " must be a number, got " + kind(v));
    return v.As<Napi::Number>().DoubleValue();
  }
  // A size that indexes with int32 arithmetic: an integer in [min, 2^31).
  int64_t dim(size_t i, const char* name, int64_t min = 0) const {
    const double d = number(i, name);
    if (!(d >= static_cast<double>(min) && d < 2147483648.0) || d != std::floor(d)) {
      throw range_error(std::string(name) + " must be an integer in [" + std::to_string(min) +
                        ", 2^31), got " + fmt(d));
    }
    return static_cast<int64_t>(d);
  }
  // A count or offset: a non-negative integer up to 2^53 − 1 (exact in a double).
  int64_t count(size_t i, const char* name) const {
    const double d = number(i, name);
    if (!(d >= 0 && d <= 9007199254740991.0 && d == std::floor(d)))
      throw range_error(std::string(name) + " must be a non-negative integer, got " + fmt(d));
    return static_cast<int64_t>(d);
  }
  // A positive finite number (a temperature, a clamp ε).
  double positive(size_t i, const char* name) const {
    const double d = number(i, name);
    if (!(d > 0 && std::isfinite(d)))
      throw range_error(std::string(name) + " must be a positive finite number, got " + fmt(d));
    return d;
  }
  // ToInt32 of a number argument (what `seed | 0` gives in JavaScript).
  int32_t int32(size_t i, const char* name) const {
    number(i, name);
    return info_[i].As<Napi::Number>().Int32Value();
  }
  bool flag(size_t i) const { return info_[i].ToBoolean().Value(); }

  // a·b for sizes (both ≥ 0), refusing anything beyond 2^53 (no typed array is that long).
  int64_t mul(int64_t a, int64_t b) const {
    if (a != 0 && b > (int64_t(1) << 53) / a) throw range_error("sizes too large");
    return a * b;
  }

  // A number as JavaScript prints it for the cases messages need (integers, NaN, ±Infinity).
  static std::string fmt(double d) {
    if (std::isnan(d)) return "NaN";
    if (std::isinf(d)) return d > 0 ? "Infinity" : "-Infinity";
    if (d == std::floor(d) && std::fabs(d) < 1e15) return std::to_string(static_cast<int64_t>(d));
    char buf[32];  // the shortest %g text that reads back as d (JavaScript prints the shortest)
    for (int prec = 1; prec <= 17; prec++) {
      std::snprintf(buf, sizeof buf, "%.*g", prec, d);
      if (std::strtod(buf, nullptr) == d) break;
    }
    return buf;
  }
  Napi::Env env() const { return info_.Env(); }
  const char* name() const { return fn_; }

 private:
  Napi::Value typed(size_t i, const char* name, napi_typedarray_type want,
                    const char* what) const {
    const Napi::Value v = info_[i];
    if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != want)
      throw type_error(std::string(name) + " must be " + what + ", got " + kind(v));
    return v;
  }
  // What a wrong argument is, for messages: the typed array's class or the JS type.
  static std::string kind(const Napi::Value& v) {
    if (v.IsTypedArray()) {
      switch (v.As<Napi::TypedArray>().TypedArrayType()) {
        case napi_int8_array: return "Int8Array";
        case napi_uint8_array: return "Uint8Array";
        case napi_uint8_clamped_array: return "Uint8ClampedArray";
        case napi_int16_array: return "Int16Array";
        case napi_uint16_array: return "Uint16Array";
        case napi_int32_array: return "Int32Array";
        case napi_uint32_array: return "Uint32Array";
        case napi_float32_array: return "Float32Array";
        case napi_float64_array: return "Float64Array";
        default: return "a typed array";
      }
    }
    if (v.IsUndefined()) return "undefined";
    if (v.IsNull()) return "null";
    if (v.IsArray()) return "an Array";
    if (v.IsNumber()) return "a number";
    if (v.IsString()) return "a string";
    if (v.IsBoolean()) return "a boolean";
    return "an object";
  }
  void check_len(const char* name, int64_t got, int64_t want, bool at_least) const {
    if (at_least ? got < want : got != want) {
      throw range_error(std::string(name) + " has length " + std::to_string(got) + ", expected " +
                        (at_least ? "at least " : "") + std::to_string(want));
    }
  }

  const Napi::CallbackInfo& info_;
  const char* fn_;
};

}  // namespace kdqat
