// One decode step of a Llama (SmolLM2) on the CPU: every layer in one call, no Python per op.
// Weights: GGUF Q4_1 blocks for the decoder products (32 weights: scale d, minimum m, 4-bit
// levels q; w = d * q + m), Q8_0 blocks for the output layer (w = d * q). Activations float32.
// Kernels are compiled for AVX-512 and AVX2 with function-level target attributes and chosen
// at run time, so one compiled file serves every x86-64 machine (no -march=native).
#include <torch/extension.h>
#include <ATen/Parallel.h>
#include <immintrin.h>
#include <cmath>
#include <type_traits>
#include <vector>

namespace {

constexpr int BLOCK = 32;
constexpr int MAX_ROWS = 8;

int detect_isa() {
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw")) return 2;
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return 1;
  return 0;
}
const int ISA = detect_isa();

// ---- Q4_1 rows [n0, n1): y[b, n] = sum_k d_k * dot(q_k, x_bk) + m_k * sum(x_bk) -------------
struct Q4 { const uint8_t* qs; const float* d; const float* m; int64_t n; int64_t k; };
struct Q8 { const int8_t* qs; const float* d; int64_t n; int64_t k; };

float min_sums(const float* m, const float* xsum, int64_t blocks) {
  float s = 0.f;
  for (int64_t i = 0; i < blocks; ++i) s += m[i] * xsum[i];
  return s;
}

// R rows at compile time: the accumulators stay in registers (a runtime count spilled them to
// the stack, and every block waited on a store and a load: 2.5x slower).
template <int R>
__attribute__((target("avx512f,avx512bw,avx512dq,fma")))
void q4_avx512(const Q4& w, const float* x, const float* xsum, int64_t n0, int64_t n1, float* y) {
  const int64_t blocks = w.k / BLOCK;
  const __m512i low = _mm512_set1_epi32(0xF);
  for (int64_t n = n0; n < n1; ++n) {
    __m512 acc[R][2];
    for (int b = 0; b < R; ++b) acc[b][0] = acc[b][1] = _mm512_setzero_ps();
    const uint8_t* q = w.qs + n * blocks * 16;
    const float* d = w.d + n * blocks;
    // Two blocks a turn, each on its own accumulators: two chains hide the FMA latency.
    for (int64_t pair = 0; pair < blocks; pair += 2)
    for (int chain = 0; chain < 2 && pair + chain < blocks; ++chain) {
      const int64_t i = pair + chain;
      __m512i levels = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(q + 16 * i)));
      __m512 lo = _mm512_cvtepi32_ps(_mm512_and_si512(levels, low));   // weights 0..15 of the block
      __m512 hi = _mm512_cvtepi32_ps(_mm512_srli_epi32(levels, 4));   // weights 16..31
      __m512 scale = _mm512_set1_ps(d[i]);
      for (int b = 0; b < R; ++b) {
        const float* xb = x + b * w.k + BLOCK * i;
        __m512 t = _mm512_mul_ps(lo, _mm512_loadu_ps(xb));
        t = _mm512_fmadd_ps(hi, _mm512_loadu_ps(xb + 16), t);
        acc[b][chain] = _mm512_fmadd_ps(scale, t, acc[b][chain]);
      }
    }
    for (int b = 0; b < R; ++b)
      y[b * w.n + n] = _mm512_reduce_add_ps(_mm512_add_ps(acc[b][0], acc[b][1])) +
                       min_sums(w.m + n * blocks, xsum + b * blocks, blocks);
  }
}

__attribute__((target("avx2,fma")))
float hsum256(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

template <int R>
__attribute__((target("avx2,fma")))
void q4_avx2(const Q4& w, const float* x, const float* xsum, int64_t n0, int64_t n1, float* y) {
  const int64_t blocks = w.k / BLOCK;
  const __m256i low = _mm256_set1_epi32(0xF);
  constexpr int rows = R;
  for (int64_t n = n0; n < n1; ++n) {
    __m256 acc[MAX_ROWS];
    for (int b = 0; b < rows; ++b) acc[b] = _mm256_setzero_ps();
    const uint8_t* q = w.qs + n * blocks * 16;
    const float* d = w.d + n * blocks;
    for (int64_t i = 0; i < blocks; ++i) {
      __m256i a = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(q + 16 * i)));
      __m256i c = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(q + 16 * i + 8)));
      __m256 w0 = _mm256_cvtepi32_ps(_mm256_and_si256(a, low)), w16 = _mm256_cvtepi32_ps(_mm256_srli_epi32(a, 4));
      __m256 w8 = _mm256_cvtepi32_ps(_mm256_and_si256(c, low)), w24 = _mm256_cvtepi32_ps(_mm256_srli_epi32(c, 4));
      __m256 scale = _mm256_set1_ps(d[i]);
      for (int b = 0; b < rows; ++b) {
        const float* xb = x + b * w.k + BLOCK * i;
        __m256 t = _mm256_mul_ps(w0, _mm256_loadu_ps(xb));
        t = _mm256_fmadd_ps(w8, _mm256_loadu_ps(xb + 8), t);
        t = _mm256_fmadd_ps(w16, _mm256_loadu_ps(xb + 16), t);
        t = _mm256_fmadd_ps(w24, _mm256_loadu_ps(xb + 24), t);
        acc[b] = _mm256_fmadd_ps(scale, t, acc[b]);
      }
    }
    for (int b = 0; b < rows; ++b)
      y[b * w.n + n] = hsum256(acc[b]) + min_sums(w.m + n * blocks, xsum + b * blocks, blocks);
  }
}

void q4_plain(const Q4& w, const float* x, const float* xsum, int rows, int64_t n0, int64_t n1, float* y) {
  const int64_t blocks = w.k / BLOCK;
  for (int64_t n = n0; n < n1; ++n)
    for (int b = 0; b < rows; ++b) {
      float s = 0.f;
      for (int64_t i = 0; i < blocks; ++i) {
        const uint8_t* q = w.qs + (n * blocks + i) * 16;
        const float* xb = x + b * w.k + BLOCK * i;
        float t = 0.f;
        for (int j = 0; j < 16; ++j) t += (q[j] & 0xF) * xb[j] + (q[j] >> 4) * xb[j + 16];
        s += w.d[n * blocks + i] * t + w.m[n * blocks + i] * xsum[b * blocks + i];
      }
      y[b * w.n + n] = s;
    }
}

// ---- Q8_0 rows: y[b, n] = sum_k d_k * dot(q_k, x_bk) --------------------------------------
template <int R>
__attribute__((target("avx512f,avx512bw,avx512dq,fma")))
void q8_avx512(const Q8& w, const float* x, int64_t n0, int64_t n1, float* y) {
  const int64_t blocks = w.k / BLOCK;
  for (int64_t n = n0; n < n1; ++n) {
    __m512 acc[R][2];
    for (int b = 0; b < R; ++b) acc[b][0] = acc[b][1] = _mm512_setzero_ps();
    const int8_t* q = w.qs + n * w.k;
    const float* d = w.d + n * blocks;
    for (int64_t pair = 0; pair < blocks; pair += 2)
    for (int chain = 0; chain < 2 && pair + chain < blocks; ++chain) {
      const int64_t i = pair + chain;
      const __m128i* p = reinterpret_cast<const __m128i*>(q + BLOCK * i);
      __m512 a = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(p)));
      __m512 c = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(p + 1)));
      __m512 scale = _mm512_set1_ps(d[i]);
      for (int b = 0; b < R; ++b) {
        const float* xb = x + b * w.k + BLOCK * i;
        __m512 t = _mm512_mul_ps(a, _mm512_loadu_ps(xb));
        t = _mm512_fmadd_ps(c, _mm512_loadu_ps(xb + 16), t);
        acc[b][chain] = _mm512_fmadd_ps(scale, t, acc[b][chain]);
      }
    }
    for (int b = 0; b < R; ++b) y[b * w.n + n] = _mm512_reduce_add_ps(_mm512_add_ps(acc[b][0], acc[b][1]));
  }
}

template <int R>
__attribute__((target("avx2,fma")))
void q8_avx2(const Q8& w, const float* x, int64_t n0, int64_t n1, float* y) {
  const int64_t blocks = w.k / BLOCK;
  constexpr int rows = R;
  for (int64_t n = n0; n < n1; ++n) {
    __m256 acc[MAX_ROWS];
    for (int b = 0; b < rows; ++b) acc[b] = _mm256_setzero_ps();
    const int8_t* q = w.qs + n * w.k;
    const float* d = w.d + n * blocks;
    for (int64_t i = 0; i < blocks; ++i) {
      __m256 v[4];
      for (int j = 0; j < 4; ++j)
        v[j] = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(q + BLOCK * i + 8 * j))));
      __m256 scale = _mm256_set1_ps(d[i]);
      for (int b = 0; b < rows; ++b) {
        const float* xb = x + b * w.k + BLOCK * i;
        __m256 t = _mm256_mul_ps(v[0], _mm256_loadu_ps(xb));
        for (int j = 1; j < 4; ++j) t = _mm256_fmadd_ps(v[j], _mm256_loadu_ps(xb + 8 * j), t);
        acc[b] = _mm256_fmadd_ps(scale, t, acc[b]);
      }
    }
    for (int b = 0; b < rows; ++b) y[b * w.n + n] = hsum256(acc[b]);
  }
}

void q8_plain(const Q8& w, const float* x, int rows, int64_t n0, int64_t n1, float* y) {
  const int64_t blocks = w.k / BLOCK;
  for (int64_t n = n0; n < n1; ++n)
    for (int b = 0; b < rows; ++b) {
      float s = 0.f;
      for (int64_t i = 0; i < blocks; ++i) {
        float t = 0.f;
        for (int j = 0; j < BLOCK; ++j) t += w.qs[n * w.k + BLOCK * i + j] * x[b * w.k + BLOCK * i + j];
        s += w.d[n * blocks + i] * t;
      }
      y[b * w.n + n] = s;
    }
}

// Calls f with std::integral_constant<int, rows> (1..MAX_ROWS): kernels take rows at compile time.
template <typename F>
void with_rows(int rows, F&& f) {
  switch (rows) {
    case 1: return f(std::integral_constant<int, 1>{});
    case 2: return f(std::integral_constant<int, 2>{});
    case 3: return f(std::integral_constant<int, 3>{});
    case 4: return f(std::integral_constant<int, 4>{});
    case 5: return f(std::integral_constant<int, 5>{});
    case 6: return f(std::integral_constant<int, 6>{});
    case 7: return f(std::integral_constant<int, 7>{});
    default: return f(std::integral_constant<int, 8>{});
  }
}

constexpr int64_t GRAIN = 16;  // output rows per task: enough work to outweigh scheduling

void q4_product(const Q4& w, const float* x, int rows, float* y, std::vector<float>& xsum) {
  const int64_t blocks = w.k / BLOCK;
  xsum.assign(rows * blocks, 0.f);  // per-block sums of x, once per input, for the m * sum(x) terms
  for (int b = 0; b < rows; ++b)
    for (int64_t i = 0; i < blocks; ++i)
      for (int j = 0; j < BLOCK; ++j) xsum[b * blocks + i] += x[b * w.k + BLOCK * i + j];
  const float* xs = xsum.data();
  at::parallel_for(0, w.n, GRAIN, [&](int64_t n0, int64_t n1) {
    if (ISA == 0) return q4_plain(w, x, xs, rows, n0, n1, y);
    with_rows(rows, [&](auto r) {
      if (ISA == 2) q4_avx512<decltype(r)::value>(w, x, xs, n0, n1, y);
      else q4_avx2<decltype(r)::value>(w, x, xs, n0, n1, y);
    });
  });
}

void q8_product(const Q8& w, const float* x, int rows, float* y) {
  at::parallel_for(0, w.n, GRAIN, [&](int64_t n0, int64_t n1) {
    if (ISA == 0) return q8_plain(w, x, rows, n0, n1, y);
    with_rows(rows, [&](auto r) {
      if (ISA == 2) q8_avx512<decltype(r)::value>(w, x, n0, n1, y);
      else q8_avx2<decltype(r)::value>(w, x, n0, n1, y);
    });
  });
}

Q4 q4_of(const std::vector<torch::Tensor>& t, size_t at) {  // (qs (N, K/2) uint8, d (N, K/32), m (N, K/32))
  const auto& qs = t[at];
  return {qs.data_ptr<uint8_t>(), t[at + 1].data_ptr<float>(), t[at + 2].data_ptr<float>(), qs.size(0), qs.size(1) * 2};
}

// ---- the rest of a layer ------------------------------------------------------------------
void rms_norm(const float* x, const float* weight, int64_t width, float eps, float* out) {
  double s = 0.0;
  for (int64_t i = 0; i < width; ++i) s += double(x[i]) * x[i];
  const float scale = 1.f / std::sqrt(float(s / width) + eps);
  for (int64_t i = 0; i < width; ++i) out[i] = weight[i] * (x[i] * scale);
}

// transformers' rotate_half: element i pairs with i + D/2.
void rotate(float* v, const float* cos, const float* sin, int64_t dim) {
  const int64_t half = dim / 2;
  for (int64_t i = 0; i < half; ++i) {
    const float a = v[i], b = v[i + half];
    v[i] = a * cos[i] - b * sin[i];
    v[i + half] = b * cos[i + half] + a * sin[i + half];
  }
}

// ---- attention of one query head over its row's cache (float32 or bfloat16 keys and values) --
// The scalar loop took a third of a step at a few hundred cached tokens; AVX-512 takes 16 lanes
// of a head at a time, with the head's width known at compile time so q and the sums stay in registers.
template <typename T>
void attend_plain(const float* q, const T* k, int64_t k_step, const T* v, int64_t v_step, const uint8_t* mask,
                  int64_t length, int64_t dim, float scale, float* scores, float* out) {
  float top = -INFINITY;
  for (int64_t t = 0; t < length; ++t) {
    if (!mask[t]) continue;
    float s = 0.f;
    for (int64_t i = 0; i < dim; ++i) s += q[i] * float(k[t * k_step + i]);
    scores[t] = s * scale;
    top = std::max(top, scores[t]);
  }
  float total = 0.f;
  for (int64_t t = 0; t < length; ++t) { scores[t] = mask[t] ? std::exp(scores[t] - top) : 0.f; total += scores[t]; }
  std::fill(out, out + dim, 0.f);
  for (int64_t t = 0; t < length; ++t) {
    if (scores[t] == 0.f) continue;
    const float p = scores[t] / total;
    for (int64_t i = 0; i < dim; ++i) out[i] += p * float(v[t * v_step + i]);
  }
}

__attribute__((target("avx512f,avx512bw,avx512dq,fma")))
inline __m512 lanes(const float* p) { return _mm512_loadu_ps(p); }

__attribute__((target("avx512f,avx512bw,avx512dq,fma")))
inline __m512 lanes(const at::BFloat16* p) {  // bfloat16 is float32's top half
  __m256i half = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(half), 16));
}

template <typename T, int DIM>
__attribute__((target("avx512f,avx512bw,avx512dq,fma")))
void attend_avx512(const float* q, const T* k, int64_t k_step, const T* v, int64_t v_step, const uint8_t* mask,
                   int64_t length, float scale, float* scores, float* out) {
  constexpr int C = DIM / 16;
  __m512 qv[C], acc[C];
  for (int c = 0; c < C; ++c) { qv[c] = _mm512_loadu_ps(q + 16 * c); acc[c] = _mm512_setzero_ps(); }
  float top = -INFINITY;
  for (int64_t t = 0; t < length; ++t) {
    if (!mask[t]) continue;
    const T* kt = k + t * k_step;
    __m512 sum = _mm512_mul_ps(qv[0], lanes(kt));
    for (int c = 1; c < C; ++c) sum = _mm512_fmadd_ps(qv[c], lanes(kt + 16 * c), sum);
    scores[t] = _mm512_reduce_add_ps(sum) * scale;
    top = std::max(top, scores[t]);
  }
  float total = 0.f;
  for (int64_t t = 0; t < length; ++t) { scores[t] = mask[t] ? std::exp(scores[t] - top) : 0.f; total += scores[t]; }
  for (int64_t t = 0; t < length; ++t) {
    if (scores[t] == 0.f) continue;
    const __m512 p = _mm512_set1_ps(scores[t] / total);
    const T* vt = v + t * v_step;
    for (int c = 0; c < C; ++c) acc[c] = _mm512_fmadd_ps(p, lanes(vt + 16 * c), acc[c]);
  }
  for (int c = 0; c < C; ++c) _mm512_storeu_ps(out + 16 * c, acc[c]);
}

template <typename T>
void attend_one(const float* q, const T* k, int64_t k_step, const T* v, int64_t v_step, const uint8_t* mask,
                int64_t length, int64_t dim, float scale, float* scores, float* out) {
  if (ISA == 2 && dim == 64) return attend_avx512<T, 64>(q, k, k_step, v, v_step, mask, length, scale, scores, out);
  if (ISA == 2 && dim == 128) return attend_avx512<T, 128>(q, k, k_step, v, v_step, mask, length, scale, scores, out);
  if (ISA == 2 && dim == 32) return attend_avx512<T, 32>(q, k, k_step, v, v_step, mask, length, scale, scores, out);
  attend_plain(q, k, k_step, v, v_step, mask, length, dim, scale, scores, out);
}

template <typename T>
void attend_all(const torch::Tensor& keys, const torch::Tensor& values, const uint8_t* mask, int64_t length,
                const float* qkv, int rows, int64_t heads, int64_t kv_heads, int64_t dim, int64_t qkv_width, float* out) {
  // keys/values: (rows+, kv_heads, room, dim) buffers; column `length - 1` was just written.
  const T* kp = keys.data_ptr<T>();
  const T* vp = values.data_ptr<T>();
  const auto ks = keys.strides(), vs = values.strides();
  TORCH_CHECK(ks[3] == 1 && vs[3] == 1, "the cache's head dimension must be contiguous");
  const int64_t group = heads / kv_heads;
  const float scale = 1.f / std::sqrt(float(dim));
  at::parallel_for(0, rows * heads, 1, [&](int64_t begin, int64_t end) {
    std::vector<float> scores(length);
    for (int64_t task = begin; task < end; ++task) {
      const int64_t b = task / heads, h = task % heads, g = h / group;
      attend_one<T>(qkv + b * qkv_width + h * dim, kp + b * ks[0] + g * ks[1], ks[2], vp + b * vs[0] + g * vs[1],
                    vs[2], mask + b * length, length, dim, scale, scores.data(), out + b * heads * dim + h * dim);
    }
  });
}

template <typename T>
void store(torch::Tensor& buffer, int rows, int64_t kv_heads, int64_t dim, int64_t column, const float* source,
           int64_t source_width) {
  T* p = buffer.data_ptr<T>();
  const auto s = buffer.strides();
  for (int b = 0; b < rows; ++b)
    for (int64_t h = 0; h < kv_heads; ++h)
      for (int64_t i = 0; i < dim; ++i) p[b * s[0] + h * s[1] + column * s[2] + i] = T(source[b * source_width + h * dim + i]);
}

// weights: per layer [input_norm, qkv (qs, d, m), out (qs, d, m), post_norm, gate_up (qs, d, m), down (qs, d, m)];
// then final_norm, output (qs int8 (N, K), d). An empty `embed` means tied embeddings: the
// input rows come from the output layer's blocks. keys/values: per layer, the cache buffers; `length`
// columns are filled, column `length` is written here. mask (rows, length + 1) uint8.
torch::Tensor step(torch::Tensor tokens, torch::Tensor positions, torch::Tensor mask, torch::Tensor embed,
                   std::vector<torch::Tensor> weights, std::vector<torch::Tensor> keys, std::vector<torch::Tensor> values,
                   int64_t length, torch::Tensor inv_freq, double rope_scaling, int64_t heads, int64_t kv_heads,
                   int64_t dim, double eps) {
  const int rows = static_cast<int>(tokens.size(0));
  TORCH_CHECK(rows >= 1 && rows <= MAX_ROWS, "the native step takes 1 to ", MAX_ROWS, " rows");
  TORCH_CHECK(mask.size(1) == length + 1, "the mask needs one column per cached token and the new one");
  const int64_t layers = static_cast<int64_t>(keys.size());
  const size_t tail = static_cast<size_t>(layers) * 14;
  const auto& out_qs = weights[tail + 1];
  const int64_t width = out_qs.size(1);
  const int64_t q_width = heads * dim, kv_width = kv_heads * dim, qkv_width = q_width + 2 * kv_width;
  const float fe = static_cast<float>(eps);
  std::vector<float> x(rows * width);
  const int64_t* token = tokens.data_ptr<int64_t>();
  if (embed.numel() == 0) {  // tied embeddings: a token's input row is its output layer's Q8_0 row
    const int8_t* q = out_qs.data_ptr<int8_t>();
    const float* d = weights[tail + 2].data_ptr<float>();
    for (int b = 0; b < rows; ++b) {
      TORCH_CHECK(token[b] >= 0 && token[b] < out_qs.size(0), "token id out of the vocabulary");
      for (int64_t i = 0; i < width; ++i)
        x[b * width + i] = d[token[b] * (width / BLOCK) + i / BLOCK] * q[token[b] * width + i];
    }
  } else {
    auto e32 = embed.index_select(0, tokens).to(torch::kFloat32).contiguous();
    std::copy(e32.data_ptr<float>(), e32.data_ptr<float>() + rows * width, x.begin());
  }
  std::vector<float> h(rows * width), qkv, attended(rows * q_width), delta(rows * width), xsum, act;
  // Rotary angles per row, as transformers' LlamaRotaryEmbedding computes them.
  const int64_t half = dim / 2;
  std::vector<float> cos(rows * dim), sin(rows * dim);
  const float* freq = inv_freq.data_ptr<float>();
  const int64_t* pos = positions.data_ptr<int64_t>();
  for (int b = 0; b < rows; ++b)
    for (int64_t i = 0; i < dim; ++i) {
      const float angle = float(pos[b]) * freq[i % half];
      cos[b * dim + i] = std::cos(angle) * float(rope_scaling);
      sin[b * dim + i] = std::sin(angle) * float(rope_scaling);
    }
  auto mask8 = mask.to(torch::kUInt8).contiguous();
  const uint8_t* m8 = mask8.data_ptr<uint8_t>();
  const bool bf16 = keys[0].scalar_type() == torch::kBFloat16;
  for (int64_t l = 0; l < layers; ++l) {
    const size_t at = static_cast<size_t>(l) * 14;
    for (int b = 0; b < rows; ++b) rms_norm(&x[b * width], weights[at].data_ptr<float>(), width, fe, &h[b * width]);
    Q4 wqkv = q4_of(weights, at + 1);
    qkv.assign(rows * qkv_width, 0.f);
    q4_product(wqkv, h.data(), rows, qkv.data(), xsum);
    for (int b = 0; b < rows; ++b)
      for (int64_t head = 0; head < heads + kv_heads; ++head)
        rotate(&qkv[b * qkv_width + head * dim], &cos[b * dim], &sin[b * dim], dim);
    if (bf16) {
      store<at::BFloat16>(keys[l], rows, kv_heads, dim, length, qkv.data() + q_width, qkv_width);
      store<at::BFloat16>(values[l], rows, kv_heads, dim, length, qkv.data() + q_width + kv_width, qkv_width);
      attend_all<at::BFloat16>(keys[l], values[l], m8, length + 1, qkv.data(), rows, heads, kv_heads, dim, qkv_width, attended.data());
    } else {
      store<float>(keys[l], rows, kv_heads, dim, length, qkv.data() + q_width, qkv_width);
      store<float>(values[l], rows, kv_heads, dim, length, qkv.data() + q_width + kv_width, qkv_width);
      attend_all<float>(keys[l], values[l], m8, length + 1, qkv.data(), rows, heads, kv_heads, dim, qkv_width, attended.data());
    }
    q4_product(q4_of(weights, at + 4), attended.data(), rows, delta.data(), xsum);
    for (int64_t i = 0; i < rows * width; ++i) x[i] += delta[i];
    for (int b = 0; b < rows; ++b) rms_norm(&x[b * width], weights[at + 7].data_ptr<float>(), width, fe, &h[b * width]);
    Q4 wgu = q4_of(weights, at + 8);
    const int64_t inner = wgu.n / 2;
    std::vector<float> gate_up(rows * wgu.n);
    q4_product(wgu, h.data(), rows, gate_up.data(), xsum);
    act.assign(rows * inner, 0.f);
    for (int b = 0; b < rows; ++b)
      for (int64_t i = 0; i < inner; ++i) {
        const float g = gate_up[b * wgu.n + i];
        act[b * inner + i] = g / (1.f + std::exp(-g)) * gate_up[b * wgu.n + inner + i];
      }
    q4_product(q4_of(weights, at + 11), act.data(), rows, delta.data(), xsum);
    for (int64_t i = 0; i < rows * width; ++i) x[i] += delta[i];
  }
  for (int b = 0; b < rows; ++b) rms_norm(&x[b * width], weights[tail].data_ptr<float>(), width, fe, &h[b * width]);
  Q8 out{out_qs.data_ptr<int8_t>(), weights[tail + 2].data_ptr<float>(), out_qs.size(0), out_qs.size(1)};
  auto logits = torch::empty({rows, out.n}, torch::kFloat32);
  q8_product(out, h.data(), rows, logits.data_ptr<float>());
  return logits;
}

// One product alone (benchmarks and tests): x (rows, K) float32 -> (rows, N).
torch::Tensor linear_q4(torch::Tensor x, torch::Tensor qs, torch::Tensor d, torch::Tensor m) {
  auto input = x.to(torch::kFloat32).contiguous();
  Q4 w{qs.data_ptr<uint8_t>(), d.data_ptr<float>(), m.data_ptr<float>(), qs.size(0), qs.size(1) * 2};
  auto out = torch::empty({input.size(0), w.n}, torch::kFloat32);
  std::vector<float> xsum;
  q4_product(w, input.data_ptr<float>(), static_cast<int>(input.size(0)), out.data_ptr<float>(), xsum);
  return out;
}

torch::Tensor linear_q8(torch::Tensor x, torch::Tensor qs, torch::Tensor d) {
  auto input = x.to(torch::kFloat32).contiguous();
  Q8 w{qs.data_ptr<int8_t>(), d.data_ptr<float>(), qs.size(0), qs.size(1)};
  auto out = torch::empty({input.size(0), w.n}, torch::kFloat32);
  q8_product(w, input.data_ptr<float>(), static_cast<int>(input.size(0)), out.data_ptr<float>());
  return out;
}

std::string isa_name() { return ISA == 2 ? "AVX-512" : ISA == 1 ? "AVX2" : "plain C++"; }

}  // namespace

PYBIND11_MODULE(TORCH_EXTENSION_NAME, module) {
  module.def("step", &step, "one decode step of every row (see decode_step.cpp)");
  module.def("linear_q4", &linear_q4, "x @ W.T for Q4_1 blocks (qs, d, m)");
  module.def("linear_q8", &linear_q8, "x @ W.T for Q8_0 blocks (qs, d)");
  module.def("isa", &isa_name, "the instruction set the kernels chose on this processor");
}
