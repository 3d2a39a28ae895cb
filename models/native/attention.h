// Attention of one new query per row over the row's KV cache (float32 or bfloat16 buffers
// of transformers' layout, (rows+, kv_heads, room, dim), read through their strides).
#pragma once
#include "block_products.h"

namespace {

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
}  // namespace
