// Known vectors for the llama.cpp block formats, made by llama.cpp itself: dlopens the prebuilt
// libggml-base.so that node-llama-cpp ships, runs its reference quantizers and dequantizers on
// deterministic inputs, and writes inputs and outputs to a safetensors file
// (test/fixtures/ggml_blocks.safetensors; layout in test/fixtures/README.md).
//
// Build and run through scripts/make_ggml_vectors.sh. Usage:
//   make_ggml_vectors LIBGGML_BASE_SO OUT.safetensors
//
// Functions used (all exported by libggml-base, declared in ggml-quants.h / ggml.h):
//   quantize_row_{q4_0,q8_0,tq2_0,q2_K,q3_K,q4_K,q5_K,q6_K}_ref   the bytes written to the fixture;
//   ggml_quantize_chunk(type, ..., imatrix = NULL)   the path llama-quantize takes: checked to give
//                                        the same bytes (it calls quantize_{q4_0,...}, which with
//                                        no importance matrix call the *_ref functions);
//   dequantize_row_{q4_0,...,q6_K}      the dequantized values written to the fixture;
//   ggml_get_type_traits(type)->to_float checked to give the same values bit for bit;
//   ggml_blck_size, ggml_type_size, ggml_type_name   checked against the expected block layout.
#include <dlfcn.h>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <strings.h>
#include <map>
#include <string>
#include <vector>

namespace {

// ggml.h: struct ggml_type_traits (v0.4.0 layout; checked below through type_name/blck_size).
typedef void (*to_float_t)(const void *x, float *y, int64_t k);
typedef void (*from_float_t)(const float *x, void *y, int64_t k);
struct type_traits {
  const char *type_name;
  int64_t blck_size;
  int64_t blck_size_interleave;
  size_t type_size;
  bool is_quantized;
  to_float_t to_float;
  from_float_t from_float_ref;
};
typedef size_t (*quantize_chunk_t)(int type, const float *src, void *dst, int64_t start, int64_t nrows,
                                   int64_t n_per_row, const float *imatrix);
typedef const type_traits *(*get_traits_t)(int type);
typedef int64_t (*blck_size_t)(int type);
typedef size_t (*type_size_t)(int type);
typedef const char *(*type_name_t)(int type);

void *lib = nullptr;
void *sym(const char *name) {
  void *p = dlsym(lib, name);
  if (!p) {
    fprintf(stderr, "symbol %s not found in the library: %s\n", name, dlerror());
    exit(1);
  }
  return p;
}

struct Format {
  const char *name;
  int type;       // enum ggml_type
  int block;      // elements per block
  int bytes;      // bytes per block
  float anchor;   // d = anchor-valued element / anchor: Q4_0 max/-8, Q8_0 amax/127, TQ2_0 amax/1
  int qlo, qhi;   // integer grid (x/d) used for the tie cases
  from_float_t quant_ref;
  to_float_t dequant;
  bool kquant;    // K-quant super-block: cases from makeKCases (no single anchor element)
};

// splitmix64: a fixed, portable stream; normals by Box-Muller in double, rounded to float.
struct Rng {
  uint64_t s;
  explicit Rng(uint64_t seed) : s(seed) {}
  uint64_t next() {
    uint64_t z = (s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  double uniform() { return (double)(next() >> 11) * 0x1.0p-53; }  // [0, 1)
  int below(int n) { return (int)(uniform() * n); }
  float normal() {
    double u = uniform(), v = uniform();
    return (float)(std::sqrt(-2.0 * std::log(1.0 - u)) * std::cos(2.0 * M_PI * v));
  }
};

// One case: a (rows, n) float matrix, filled block by block.
struct Case {
  std::string name;
  int rows, n;
  std::vector<float> x;
};

// Fills a block whose anchor element makes d exactly `d` (anchor·d is exact in float for the d
// used here), the rest drawn by `rest`.
template <typename F>
void anchored(const Format &f, float *b, float d, Rng &r, F rest) {
  for (int j = 0; j < f.block; j++) b[j] = rest(j);
  b[r.below(f.block)] = f.anchor * d;
}

// normal: N(0,1) with the scale changing block to block over 2^-10 .. 2^5.
void fillNormal(Case &c, int B, int nb, Rng &r) {
  for (int i = 0; i < c.rows * nb; i++) {
    float s = std::ldexp(1.0f, (int)(i * 7 % 16) - 10);
    for (int j = 0; j < B; j++) c.x[(size_t)i * B + j] = s * r.normal();
  }
}

std::vector<Case> makeCases(const Format &f, uint64_t seed) {
  Rng r(seed);
  const int B = f.block;
  const int n = B == 32 ? 256 : 512;  // 8 blocks of 32, or 2 blocks of 256 per row
  const int nb = n / B;
  std::vector<Case> cs;
  auto add = [&](const char *name, int rows) -> Case & {
    cs.push_back({name, rows, n, std::vector<float>((size_t)rows * n)});
    return cs.back();
  };
  fillNormal(add("normal", 4), B, nb, r);
  // ties: d a power of two and elements at d·(k + ½), exactly halfway between grid points
  // (roundf/lroundf send halves away from zero; Q4_0's +8.5 and truncation sends them up);
  // every other block also has exact grid points d·k.
  {
    Case &c = add("ties", 2);
    for (int i = 0; i < c.rows * nb; i++) {
      float d = std::ldexp(1.0f, i % 5 - 2) * (i % 3 == 0 ? -1.0f : 1.0f);
      if (f.anchor > 0) d = std::fabs(d);  // Q8_0, TQ2_0: d = amax ≥ 0
      anchored(f, &c.x[(size_t)i * B], d, r, [&](int j) {
        int k = f.qlo + r.below(f.qhi - f.qlo);  // k + ½ stays inside [qlo, qhi]
        return (i % 2 == 1 && j % 2 == 0) ? d * (float)k : d * ((float)k + 0.5f);
      });
    }
  }
  // near-ties: the same with d not a power of two, so id = 1/d is inexact and x·id lands within
  // an ulp of k + ½: float rounding of x·id (and of + 8.5 in Q4_0) decides the code.
  {
    Case &c = add("near_ties", 2);
    for (int i = 0; i < c.rows * nb; i++) {
      float d = (float)(0.5 + 1.5 * r.uniform()) * (i % 2 ? -1.0f : 1.0f);
      if (f.anchor > 0) d = std::fabs(d);
      anchored(f, &c.x[(size_t)i * B], d, r, [&](int) {
        int k = f.qlo + r.below(f.qhi - f.qlo);
        return d * ((float)k + 0.5f);
      });
    }
  }
  // zeros: all-zero blocks (d = 0 → id = 0), all −0 blocks, between ordinary blocks.
  {
    Case &c = add("zeros", 2);
    for (int i = 0; i < c.rows * nb; i++) {
      for (int j = 0; j < B; j++) {
        float v = i % 3 == 0 ? 0.0f : i % 3 == 1 ? -0.0f : 0.1f * r.normal();
        c.x[(size_t)i * B + j] = v;
      }
    }
  }
  // outlier: small values and one large element, alternately positive and negative.
  {
    Case &c = add("outlier", 2);
    for (int i = 0; i < c.rows * nb; i++) {
      float *b = &c.x[(size_t)i * B];
      for (int j = 0; j < B; j++) b[j] = 0.01f * r.normal();
      b[r.below(B)] = (i % 2 ? -1.0f : 1.0f) * (20.0f + 80.0f * (float)r.uniform());
    }
  }
  // signs: the largest magnitude appears as both +a and −a (Q4_0 keeps the first one, and its
  // grid is asymmetric), or only as −a, or only as +a.
  {
    Case &c = add("signs", 2);
    for (int i = 0; i < c.rows * nb; i++) {
      float *b = &c.x[(size_t)i * B];
      for (int j = 0; j < B; j++) b[j] = 0.5f * r.normal();
      float a = 3.0f + (float)r.uniform();
      int p = r.below(B), q = r.below(B);
      if (q == p) q = (p + 1) % B;
      switch (i % 4) {
        case 0: b[p] = a; b[q] = -a; break;
        case 1: b[p] = -a; b[q] = a; break;
        case 2: b[p] = -a; break;
        default: b[p] = a; break;
      }
    }
  }
  // tiny: scales where d is an f16 subnormal or rounds to f16 zero (while the float id used for
  // the codes is still finite).
  {
    Case &c = add("tiny", 2);
    const float scales[] = {1e-4f, 1e-5f, 1e-6f, 1e-7f, 1e-8f, 1e-12f, 1e-20f, 1e-30f};
    for (int i = 0; i < c.rows * nb; i++) {
      float s = scales[i % 8];
      for (int j = 0; j < B; j++) c.x[(size_t)i * B + j] = s * r.normal();
    }
  }
  // f16: d exactly on or next to f16 rounding boundaries: halfway between two f16 values
  // (ties to even, down and up), just past halfway, subnormal halfway points, the largest f16
  // and the first value that rounds past it to inf.
  {
    Case &c = add("f16", 2);
    const float ds[] = {
        1.0f + 0x1p-11f,  1.0f + 3 * 0x1p-11f, 1.0f + 0x1p-11f + 0x1p-20f, 0x1.8p-24f, 0x1p-25f,
        0x1.8p-23f,       65504.0f,            0.333333343f,                1e-3f,      1.0f + 0x1p-10f,
        0x1.ffcp-15f,     0x1.ffep-15f,        2.5f,                        0x1p-14f,   0x1.004p-14f,
        1000.25f};
    for (int i = 0; i < c.rows * nb; i++) {
      float d = ds[i % 16];
      float lim = std::fabs(f.anchor * d);
      anchored(f, &c.x[(size_t)i * B], d, r, [&](int) {
        float v = lim * (float)(2.0 * r.uniform() - 1.0);
        return v;
      });
    }
  }
  // overflow: d above the f16 range, stored as ±inf (dequantized values are then ±inf, or NaN
  // for code 0 · inf).
  {
    Case &c = add("overflow", 1);
    for (int i = 0; i < c.rows * nb; i++) {
      float d = 65520.0f * (1.0f + (float)i);
      float lim = std::fabs(f.anchor * d);
      anchored(f, &c.x[(size_t)i * B], d, r, [&](int) { return lim * (float)(2.0 * r.uniform() - 1.0); });
    }
  }
  return cs;
}

// K-quants: d, dmin and the 6-bit sub-block scales come out of an iterative search, so there is
// no anchor element; the cases aim at the search's branches and the rounding of its results.
std::vector<Case> makeKCases(const Format &f, uint64_t seed) {
  Rng r(seed);
  const int B = f.block, n = 2 * B, nb = 2;  // 2 super-blocks of 256 per row
  std::vector<Case> cs;
  auto add = [&](const char *name, int rows) -> Case & {
    cs.push_back({name, rows, n, std::vector<float>((size_t)rows * n)});
    return cs.back();
  };
  fillNormal(add("normal", 4), B, nb, r);
  // subscales: every 16 elements a different scale, 2^-12 .. 2^0 within one super-block, so small
  // sub-blocks quantize their 4/6-bit scale to 0 (llama.cpp then keeps the search's codes).
  {
    Case &c = add("subscales", 2);
    for (int i = 0; i < c.rows * nb; i++)
      for (int j = 0; j < B; j++) c.x[(size_t)i * B + j] = std::ldexp(1.0f, -(int)((j / 16 * 5 + i) % 13)) * r.normal();
  }
  // zeros: all +0, all −0, and normal blocks with one zero (or −0) sub-block of 16 or 32.
  {
    Case &c = add("zeros", 2);
    for (int i = 0; i < c.rows * nb; i++) {
      for (int j = 0; j < B; j++) {
        float v = i % 4 == 0 ? 0.0f : i % 4 == 1 ? -0.0f : r.normal();
        if (i % 4 >= 2 && j / 32 == i % 5) v = i % 4 == 2 ? 0.0f : -0.0f;
        c.x[(size_t)i * B + j] = v;
      }
    }
  }
  // constants: constant super-blocks (positive, negative) and constant sub-blocks (max == min,
  // all-equal groups) of differing values.
  {
    Case &c = add("constants", 2);
    for (int i = 0; i < c.rows * nb; i++) {
      float k = (float)(0.25 + r.uniform()) * (i % 2 ? -1.0f : 1.0f);
      for (int j = 0; j < B; j++) c.x[(size_t)i * B + j] = i < 2 ? k : k * (float)(1 + (j / 16) % 3) * ((j / 32) % 2 ? -1.0f : 1.0f);
    }
  }
  // outlier: small values and one large element per super-block, alternately + and −.
  {
    Case &c = add("outlier", 2);
    for (int i = 0; i < c.rows * nb; i++) {
      float *b = &c.x[(size_t)i * B];
      for (int j = 0; j < B; j++) b[j] = 0.01f * r.normal();
      b[r.below(B)] = (i % 2 ? -1.0f : 1.0f) * (20.0f + 80.0f * (float)r.uniform());
    }
  }
  // signs: negative-only blocks, positive-only blocks, and blocks whose largest |x| is negative.
  {
    Case &c = add("signs", 2);
    for (int i = 0; i < c.rows * nb; i++) {
      float *b = &c.x[(size_t)i * B];
      for (int j = 0; j < B; j++) {
        float v = std::fabs(r.normal());
        b[j] = i % 3 == 0 ? -v : i % 3 == 1 ? v : 0.3f * r.normal();
      }
      if (i % 3 == 2) b[r.below(B)] = -4.0f;
    }
  }
  // grid: values k/8 and k/8 + 1/16 for small integers k, so products with the search's scales
  // land on exact halves (nearest_int rounds them to even).
  {
    Case &c = add("grid", 2);
    for (int i = 0; i < c.rows * nb; i++)
      for (int j = 0; j < B; j++) c.x[(size_t)i * B + j] = (float)(r.below(64) - 32) / 8.0f + (i % 2 ? 0.0625f : 0.0f);
  }
  // requant: llama.cpp's own dequantized output of normal data (what a QAT student holds), so
  // quantizing it again must find the same grid.
  {
    Case &c = add("requant", 2);
    std::vector<float> x(n);
    std::vector<uint8_t> q((size_t)nb * f.bytes);
    for (int row = 0; row < c.rows; row++) {
      for (int j = 0; j < n; j++) x[j] = std::ldexp(1.0f, row * 3 - 4) * r.normal();
      f.quant_ref(x.data(), q.data(), n);
      f.dequant(q.data(), &c.x[(size_t)row * n], n);
    }
  }
  // tiny: scales where d and dmin are f16 subnormals or round to 0 while the float search runs.
  {
    Case &c = add("tiny", 4);
    const float scales[] = {1e-4f, 1e-5f, 1e-6f, 1e-7f, 1e-8f, 1e-12f, 1e-20f, 1e-30f};
    for (int i = 0; i < c.rows * nb; i++) {
      float s = scales[i % 8];
      for (int j = 0; j < B; j++) c.x[(size_t)i * B + j] = s * r.normal();
    }
  }
  // huge: large magnitudes: d at and past the f16 maximum (stored as inf; dequantized values are
  // then ±inf or NaN) and float overflow inside the search's sums (x² and x³ weights).
  {
    Case &c = add("huge", 4);
    const float scales[] = {3e3f, 6e4f, 1e5f, 1e6f, 1e9f, 1e12f, 1e14f, 4e5f};
    for (int i = 0; i < c.rows * nb; i++) {
      float s = scales[i % 8];
      for (int j = 0; j < B; j++) c.x[(size_t)i * B + j] = s * r.normal();
    }
  }
  return cs;
}

struct Entry {
  std::string dtype;
  std::vector<int64_t> shape;
  std::vector<uint8_t> data;
};

std::string shapeJson(const std::vector<int64_t> &s) {
  std::string o = "[";
  for (size_t i = 0; i < s.size(); i++) o += (i ? "," : "") + std::to_string(s[i]);
  return o + "]";
}

// safetensors: u64 LE header length, JSON header (space-padded to 8 bytes), data in name order.
void writeSafetensors(const char *path, const std::map<std::string, Entry> &ts,
                      const std::map<std::string, std::string> &meta) {
  std::string h = "{\"__metadata__\":{";
  bool first = true;
  for (auto &[k, v] : meta) {
    h += (first ? "" : ",") + std::string("\"") + k + "\":\"" + v + "\"";
    first = false;
  }
  h += "}";
  size_t off = 0;
  for (auto &[name, e] : ts) {
    h += ",\"" + name + "\":{\"dtype\":\"" + e.dtype + "\",\"shape\":" + shapeJson(e.shape) +
         ",\"data_offsets\":[" + std::to_string(off) + "," + std::to_string(off + e.data.size()) + "]}";
    off += e.data.size();
  }
  h += "}";
  while (h.size() % 8) h += ' ';
  std::string tmp = std::string(path) + ".tmp";
  FILE *fp = fopen(tmp.c_str(), "wb");
  if (!fp) { perror(tmp.c_str()); exit(1); }
  uint64_t n = h.size();
  uint8_t le[8];
  for (int i = 0; i < 8; i++) le[i] = (uint8_t)(n >> (8 * i));
  fwrite(le, 1, 8, fp);
  fwrite(h.data(), 1, h.size(), fp);
  for (auto &[name, e] : ts) fwrite(e.data.data(), 1, e.data.size(), fp);
  if (fclose(fp) != 0 || rename(tmp.c_str(), path) != 0) { perror(path); exit(1); }
}

template <typename T>
std::vector<uint8_t> bytesOf(const std::vector<T> &v) {
  std::vector<uint8_t> b(v.size() * sizeof(T));
  memcpy(b.data(), v.data(), b.size());
  return b;
}

}  // namespace

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: %s LIBGGML_BASE_SO OUT.safetensors\n", argv[0]);
    return 2;
  }
  lib = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
  if (!lib) {
    fprintf(stderr, "cannot load %s: %s\n", argv[1], dlerror());
    return 1;
  }
  auto chunk = (quantize_chunk_t)sym("ggml_quantize_chunk");
  auto traits = (get_traits_t)sym("ggml_get_type_traits");
  auto blck = (blck_size_t)sym("ggml_blck_size");
  auto tsize = (type_size_t)sym("ggml_type_size");
  auto tname = (type_name_t)sym("ggml_type_name");

  Format formats[] = {
      {"Q4_0", 2, 32, 18, -8.0f, -8, 8, (from_float_t)sym("quantize_row_q4_0_ref"), (to_float_t)sym("dequantize_row_q4_0"), false},
      {"Q8_0", 8, 32, 34, 127.0f, -127, 127, (from_float_t)sym("quantize_row_q8_0_ref"), (to_float_t)sym("dequantize_row_q8_0"), false},
      {"TQ2_0", 35, 256, 66, 1.0f, -1, 1, (from_float_t)sym("quantize_row_tq2_0_ref"), (to_float_t)sym("dequantize_row_tq2_0"), false},
      {"Q2_K", 10, 256, 84, 0, 0, 0, (from_float_t)sym("quantize_row_q2_K_ref"), (to_float_t)sym("dequantize_row_q2_K"), true},
      {"Q3_K", 11, 256, 110, 0, 0, 0, (from_float_t)sym("quantize_row_q3_K_ref"), (to_float_t)sym("dequantize_row_q3_K"), true},
      {"Q4_K", 12, 256, 144, 0, 0, 0, (from_float_t)sym("quantize_row_q4_K_ref"), (to_float_t)sym("dequantize_row_q4_K"), true},
      {"Q5_K", 13, 256, 176, 0, 0, 0, (from_float_t)sym("quantize_row_q5_K_ref"), (to_float_t)sym("dequantize_row_q5_K"), true},
      {"Q6_K", 14, 256, 210, 0, 0, 0, (from_float_t)sym("quantize_row_q6_K_ref"), (to_float_t)sym("dequantize_row_q6_K"), true},
  };

  std::map<std::string, Entry> out;
  std::map<std::string, std::string> meta;
  int total = 0;
  for (const Format &f : formats) {
    // The enum and block layout of this build are the ones the fixture claims.
    const type_traits *t = traits(f.type);
    if (strcasecmp(tname(f.type), f.name) != 0) {  // ggml names them in lower case
      fprintf(stderr, "ggml type %d is %s here, expected %s\n", f.type, tname(f.type), f.name);
      return 1;
    }
    if (blck(f.type) != f.block || (int)tsize(f.type) != f.bytes || t->blck_size != f.block ||
        (int)t->type_size != f.bytes || !t->is_quantized) {
      fprintf(stderr, "%s: block %lld / %zu bytes in this build, expected %d / %d\n", f.name,
              (long long)blck(f.type), tsize(f.type), f.block, f.bytes);
      return 1;
    }
    meta[std::string(f.name) + ".ggml_type"] = std::to_string(f.type);
    meta[std::string(f.name) + ".type_name"] = tname(f.type);
    uint64_t seed = 1000 + (uint64_t)f.type;
    std::string names;
    for (Case &c : f.kquant ? makeKCases(f, seed) : makeCases(f, seed)) {
      names += (names.empty() ? "" : ",") + c.name;
      const size_t nel = (size_t)c.rows * c.n, rowBytes = (size_t)c.n / f.block * f.bytes;
      std::vector<uint8_t> q(rowBytes * c.rows), q2(q.size(), 0xaa);
      f.quant_ref(c.x.data(), q.data(), (int64_t)nel);
      size_t wrote = chunk(f.type, c.x.data(), q2.data(), 0, c.rows, c.n, nullptr);
      if (wrote != q.size() || memcmp(q.data(), q2.data(), q.size()) != 0) {
        fprintf(stderr, "%s %s: ggml_quantize_chunk differs from quantize_row_*_ref\n", f.name, c.name.c_str());
        return 1;
      }
      std::vector<float> y(nel), y2(nel);
      f.dequant(q.data(), y.data(), (int64_t)nel);
      t->to_float(q.data(), y2.data(), (int64_t)nel);
      if (memcmp(y.data(), y2.data(), nel * sizeof(float)) != 0) {
        fprintf(stderr, "%s %s: type_traits.to_float differs from dequantize_row_*\n", f.name, c.name.c_str());
        return 1;
      }
      const std::string p = std::string(f.name) + "." + c.name;
      out[p + ".x"] = {"F32", {c.rows, c.n}, bytesOf(c.x)};
      out[p + ".q"] = {"U8", {c.rows, (int64_t)rowBytes}, q};
      out[p + ".y"] = {"F32", {c.rows, c.n}, bytesOf(y)};
      total++;
    }
    meta[std::string(f.name) + ".cases"] = names;
  }
  meta["source"] = "libggml-base.so of node-llama-cpp (llama.cpp release v0.4.0 per _nlcBuildMetadata.json)";
  meta["quantize"] = "quantize_row_*_ref (== ggml_quantize_chunk with imatrix NULL, checked)";
  meta["dequantize"] = "dequantize_row_* (== ggml_get_type_traits(type)->to_float, checked)";
  writeSafetensors(argv[2], out, meta);
  printf("wrote %s: %d cases, %zu tensors\n", argv[2], total, out.size());
  return 0;
}
