// Products of GGUF blocks with float32 activations: Q4_1 (32 weights: scale d, minimum m, 4-bit
// levels q; w = d * q + m) and Q8_0 (w = d * q), one row of the output per task of
// at::parallel_for. Kernels are compiled for AVX-512 and AVX2 with function-level target
// attributes and chosen at run time (ISA), so the built file runs on any x86-64 machine.
#pragma once
#include <torch/extension.h>
#include <ATen/Parallel.h>
#include <immintrin.h>
#include <algorithm>
#include <cmath>
#include <type_traits>
#include <vector>

namespace {

constexpr int BLOCK = 32;
constexpr int TILE_ROWS = 8;  // rows a kernel holds in registers at once; more rows go tile by tile
constexpr int MAX_ROWS = 64;  // rows a step or product takes

int detect_isa() {
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw")) return 2;
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c")) return 1;
  return 0;
}
const int BEST_ISA = detect_isa();
int ISA = BEST_ISA;  // tests may pick a lesser kernel set (use_kernels in decode_step.cpp)

// ---- Q4_1 rows [n0, n1): y[b, n] = sum_k d_k * dot(q_k, x_bk) + m_k * sum(x_bk) -------------
// Scales and minima in float16 as GGUF stores them: alone a step is bound by reading its weights,
// and 2 bytes a block instead of 4 is 13% fewer bytes. These float32 kernels widen a row's first;
// the VNNI ones (int8_products.h) read them in place.
struct Q4 { const uint8_t* qs; const at::Half* d; const at::Half* m; int64_t n; int64_t k; };
struct Q8 { const int8_t* qs; const at::Half* d; int64_t n; int64_t k; };
constexpr int64_t MAX_BLOCKS = 1024;  // blocks a row (K up to 32,768): kernels widen them on the stack

__attribute__((target("avx512f,avx512bw,avx512vl")))
void widen_avx512(const at::Half* h, int64_t count, float* out) {
  for (int64_t i = 0; i < count; i += 16) {
    const __mmask16 keep = count - i >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << (count - i)) - 1);
    _mm512_mask_storeu_ps(out + i, keep, _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(keep, h + i)));
  }
}

__attribute__((target("avx2,f16c")))
void widen_avx2(const at::Half* h, int64_t count, float* out) {
  int64_t i = 0;
  for (; i + 8 <= count; i += 8)
    _mm256_storeu_ps(out + i, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(h + i))));
  for (; i < count; ++i) out[i] = float(h[i]);
}

// count float16 values as float32 (count <= MAX_BLOCKS).
inline void widen(const at::Half* h, int64_t count, float* out) {
  if (ISA == 2) return widen_avx512(h, count, out);
  if (ISA == 1) return widen_avx2(h, count, out);
  for (int64_t i = 0; i < count; ++i) out[i] = float(h[i]);
}

float min_sums(const float* m, const float* xsum, int64_t blocks) {
  float s = 0.f;
  for (int64_t i = 0; i < blocks; ++i) s += m[i] * xsum[i];
  return s;
}

// R rows at compile time: the accumulators stay in registers (with a runtime count they lived on
// the stack: a whole step took 18.8 ms on one thread, 16.1 ms with R known).
template <int R>
__attribute__((target("avx512f,avx512bw,avx512dq,fma")))
void q4_avx512(const Q4& w, const float* x, const float* xsum, int64_t n0, int64_t n1, float* y) {
  const int64_t blocks = w.k / BLOCK;
  const __m512i low = _mm512_set1_epi32(0xF);
  for (int64_t n = n0; n < n1; ++n) {
    __m512 acc[R][2];
    for (int b = 0; b < R; ++b) acc[b][0] = acc[b][1] = _mm512_setzero_ps();
    const uint8_t* q = w.qs + n * blocks * 16;
    float d[MAX_BLOCKS], m[MAX_BLOCKS];
    widen(w.d + n * blocks, blocks, d);
    widen(w.m + n * blocks, blocks, m);
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
                       min_sums(m, xsum + b * blocks, blocks);
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
    __m256 acc[R];
    for (int b = 0; b < rows; ++b) acc[b] = _mm256_setzero_ps();
    const uint8_t* q = w.qs + n * blocks * 16;
    float d[MAX_BLOCKS], m[MAX_BLOCKS];
    widen(w.d + n * blocks, blocks, d);
    widen(w.m + n * blocks, blocks, m);
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
      y[b * w.n + n] = hsum256(acc[b]) + min_sums(m, xsum + b * blocks, blocks);
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
    float d[MAX_BLOCKS];
    widen(w.d + n * blocks, blocks, d);
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
    __m256 acc[R];
    for (int b = 0; b < rows; ++b) acc[b] = _mm256_setzero_ps();
    const int8_t* q = w.qs + n * w.k;
    float d[MAX_BLOCKS];
    widen(w.d + n * blocks, blocks, d);
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

}  // namespace
