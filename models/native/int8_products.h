// Products of GGUF blocks with 8-bit activations, as llama.cpp multiplies Q4_1 and Q8_0 weights:
// each row's activations are cut into blocks of 32 with a scale d = max|x| / 127 and levels
// q = round(x / d), and a block's dot product is integer (AVX512-VNNI's vpdpbusd: 64 products of
// an unsigned and a signed byte in one instruction), scaled once. At one row the float32 kernels
// spent about 9 vector operations on a block of 32 weights, these 5.5. The Q4_1 minimum's term takes
// the sum of the rounded x, as llama.cpp's does: the product is then exactly the weights times the
// rounded x (with x's own sum the rounding errors, times levels 0-15, no longer cancel). A plain
// C++ loop computes the same where VNNI is missing (tests).
#pragma once
#include <cstring>

#include "block_products.h"

namespace {

bool detect_vnni() {
  __builtin_cpu_init();
  return BEST_ISA == 2 && __builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("avx512vl");
}
const bool HAS_VNNI = detect_vnni();
bool VNNI = HAS_VNNI;

// Blocks go in pairs of 64 bytes, laid out as the weights unpack: a Q4_1 pair's bytes hold the low
// nibbles of both blocks, then the high ones (levels 0-15 of A, of B, 16-31 of A, of B); a Q8_0
// pair is A then B. Every 4 bytes meet one 32-bit lane of the product, so per pair and row the
// scales come spread over the 16 lanes, and (for Q8_0 weights, read as unsigned w + 128) each
// lane's sum of levels times -128.
enum class Layout { Q4, Q8 };

struct QX {
  std::vector<int8_t> q;      // (rows, pairs, 64)
  std::vector<float> d;       // (rows, pairs, 16): the scale of the block each lane belongs to
  std::vector<int32_t> corr;  // Q8 layout only, (rows, pairs, 16): -128 * the lane's 4 levels summed
  std::vector<float> sums;    // (rows, blocks): d * the block's levels summed (the rounded x's sum)
  int64_t pairs = 0;
  Layout layout = Layout::Q4;
};

// Rows of a QX from one row on, as the kernels read them.
struct QRows {
  const int8_t* q;
  const float* d;
  const int32_t* corr;
  int64_t pairs;
  Layout layout;
};

QRows rows_from(const QX& x, int t) {
  const int64_t at = t * x.pairs;
  const int32_t* corr = x.corr.empty() ? nullptr : x.corr.data() + at * 16;
  return {x.q.data() + at * 64, x.d.data() + at * 16, corr, x.pairs, x.layout};
}

// Where level j of block i (within its pair) lies, and which lanes carry the block's scale.
inline int64_t level_offset(Layout layout, int64_t i, int j) {
  const int64_t h = i % 2, base = (i / 2) * 64;
  if (layout == Layout::Q8) return base + h * 32 + j;
  return base + (j < 16 ? 0 : 32) + h * 16 + j % 16;
}
inline bool lane_in_block(Layout layout, int lane, int64_t h) {
  return layout == Layout::Q8 ? lane / 8 == h : (lane / 4) % 2 == h;
}

// One block's levels written where the layout puts them; returns its scale, and the levels' sum.
float quantize_block_plain(const float* x, int8_t* q, Layout layout, int64_t i, int32_t& sum) {
  float top = 0.f;
  for (int j = 0; j < BLOCK; ++j) top = std::max(top, std::fabs(x[j]));
  const float inverse = top > 0.f ? 127.f / top : 0.f;
  sum = 0;
  for (int j = 0; j < BLOCK; ++j) {
    const int8_t level = static_cast<int8_t>(std::nearbyint(x[j] * inverse));
    q[level_offset(layout, i, j)] = level;
    sum += level;
  }
  return top / 127.f;
}

__attribute__((target("avx512f,avx512bw,avx512dq,fma")))
float quantize_block_avx512(const float* x, int8_t* q, Layout layout, int64_t i, int32_t& sum) {
  const __m512 a = _mm512_loadu_ps(x), b = _mm512_loadu_ps(x + 16);
  const float top = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(a), _mm512_abs_ps(b)));
  const __m512 inverse = _mm512_set1_ps(top > 0.f ? 127.f / top : 0.f);
  // cvtps rounds to nearest even, as nearbyint does in the plain loop: both give the same levels.
  const __m512i low = _mm512_cvtps_epi32(_mm512_mul_ps(a, inverse));
  const __m512i high = _mm512_cvtps_epi32(_mm512_mul_ps(b, inverse));
  _mm_storeu_si128(reinterpret_cast<__m128i*>(q + level_offset(layout, i, 0)), _mm512_cvtepi32_epi8(low));
  _mm_storeu_si128(reinterpret_cast<__m128i*>(q + level_offset(layout, i, 16)), _mm512_cvtepi32_epi8(high));
  sum = _mm512_reduce_add_epi32(_mm512_add_epi32(low, high));
  return top / 127.f;
}

// x (rows, k) float32 into `out`; an odd last block's partner is zeros with scale 0.
void quantize_rows(const float* x, int rows, int64_t k, Layout layout, QX& out) {
  const int64_t blocks = k / BLOCK;
  out.pairs = (blocks + 1) / 2;
  out.layout = layout;
  out.q.assign(rows * out.pairs * 64, 0);
  out.d.assign(rows * out.pairs * 16, 0.f);
  out.corr.assign(layout == Layout::Q8 ? rows * out.pairs * 16 : 0, 0);  // only Q8_0 weights need them
  out.sums.assign(rows * blocks, 0.f);
  for (int b = 0; b < rows; ++b) {
    int8_t* q = out.q.data() + b * out.pairs * 64;
    float* d = out.d.data() + b * out.pairs * 16;
    for (int64_t i = 0; i < blocks; ++i) {
      const float* xb = x + b * k + BLOCK * i;
      int32_t sum = 0;
      const float scale = ISA == 2 ? quantize_block_avx512(xb, q, layout, i, sum)
                                   : quantize_block_plain(xb, q, layout, i, sum);
      out.sums[b * blocks + i] = scale * float(sum);
      for (int lane = 0; lane < 16; ++lane)
        if (lane_in_block(layout, lane, i % 2)) d[(i / 2) * 16 + lane] = scale;
    }
    if (layout != Layout::Q8) continue;
    int32_t* corr = out.corr.data() + b * out.pairs * 16;
    for (int64_t lane = 0; lane < out.pairs * 16; ++lane)
      corr[lane] = -128 * (q[4 * lane] + q[4 * lane + 1] + q[4 * lane + 2] + q[4 * lane + 3]);
  }
}

// ---- plain loops: the same sums where VNNI is missing ------------------------------------------
float block_scale(const QRows& x, int b, int64_t i) {
  for (int lane = 0; lane < 16; ++lane)
    if (lane_in_block(x.layout, lane, i % 2)) return x.d[(b * x.pairs + i / 2) * 16 + lane];
  return 0.f;
}

// y[b, n] = the sum over blocks i of block(n, b, i, dot), dot being the integer dot product of
// the block's weight levels, level(n, i, j), with x's.
template <typename Level, typename Block>
void int8_plain(int64_t n_out, int64_t k, const QRows& x, int rows, int64_t n0, int64_t n1, float* y, Level level,
                Block block) {
  for (int64_t n = n0; n < n1; ++n)
    for (int b = 0; b < rows; ++b) {
      const int8_t* xq = x.q + b * x.pairs * 64;
      float s = 0.f;
      for (int64_t i = 0; i < k / BLOCK; ++i) {
        int32_t dot = 0;
        for (int j = 0; j < BLOCK; ++j) dot += level(n, i, j) * xq[level_offset(x.layout, i, j)];
        s += block(n, b, i, dot);
      }
      y[b * n_out + n] = s;
    }
}

void q4_int8_plain(const Q4& w, const QRows& x, const float* xsum, int rows, int64_t n0, int64_t n1, float* y) {
  const int64_t blocks = w.k / BLOCK;
  int8_plain(w.n, w.k, x, rows, n0, n1, y,
             [&](int64_t n, int64_t i, int j) {
               const uint8_t byte = w.qs[(n * blocks + i) * 16 + j % 16];  // weight j low, j + 16 high
               return int32_t(j < 16 ? byte & 0xF : byte >> 4);
             },
             [&](int64_t n, int b, int64_t i, int32_t dot) {
               return float(w.d[n * blocks + i]) * block_scale(x, b, i) * float(dot) +
                      float(w.m[n * blocks + i]) * xsum[b * blocks + i];
             });
}

void q8_int8_plain(const Q8& w, const QRows& x, int rows, int64_t n0, int64_t n1, float* y) {
  const int64_t blocks = w.k / BLOCK;
  int8_plain(w.n, w.k, x, rows, n0, n1, y,
             [&](int64_t n, int64_t i, int j) { return int32_t(w.qs[n * w.k + BLOCK * i + j]); },
             [&](int64_t n, int b, int64_t i, int32_t dot) {
               return float(w.d[n * blocks + i]) * block_scale(x, b, i) * float(dot);
             });
}

// ---- AVX512-VNNI: a pair of blocks (64 weights) per vpdpbusd, R rows per weight load ----------
#define VNNI_TARGET __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx512vnni,fma,f16c")))

// The two blocks' weight scales (float16) spread over the lanes as `index` says.
VNNI_TARGET inline __m512 pair_scales(const at::Half* d, bool both, __m512i index) {
  uint32_t bits = 0;  // fixed-size copies compile to single loads (a variable size called memcpy)
  if (both) {
    std::memcpy(&bits, d, 4);
  } else {
    uint16_t one;
    std::memcpy(&one, d, 2);
    bits = one;
  }
  const __m128 two = _mm_cvtph_ps(_mm_cvtsi32_si128(static_cast<int>(bits)));
  return _mm512_permutexvar_ps(index, _mm512_castps128_ps512(two));
}

// Adds the dot product of m[0, blocks) (float16) and xsum[0, blocks) to acc's lanes.
VNNI_TARGET inline __m512 add_min_terms(__m512 acc, const at::Half* m, const float* xsum, int64_t blocks) {
  for (int64_t i = 0; i < blocks; i += 16) {
    const __mmask16 keep = blocks - i >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << (blocks - i)) - 1);
    const __m512 minima = _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(keep, m + i));
    acc = _mm512_fmadd_ps(minima, _mm512_maskz_loadu_ps(keep, xsum + i), acc);
  }
  return acc;
}

template <int R>
VNNI_TARGET void q4_vnni(const Q4& w, const QRows& x, const float* xsum, int64_t n0, int64_t n1, float* y) {
  const int64_t blocks = w.k / BLOCK, pairs = x.pairs;
  const __m256i low = _mm256_set1_epi8(0x0F);
  const __m512i index = _mm512_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1, 1);
  for (int64_t n = n0; n < n1; ++n) {
    __m512 acc[R];
    for (int b = 0; b < R; ++b) acc[b] = _mm512_setzero_ps();
    const uint8_t* q = w.qs + n * blocks * 16;
    const at::Half* d = w.d + n * blocks;  // read in place: widening a row first cost 6% of a step
    for (int64_t p = 0; p < pairs; ++p) {
      const bool both = 2 * p + 1 < blocks;
      const __m256i packed = both ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q + 32 * p))
                                  : _mm256_maskz_loadu_epi8(0xFFFF, q + 32 * p);
      const __m512i levels = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_and_si256(packed, low)),
                                                _mm256_and_si256(_mm256_srli_epi16(packed, 4), low), 1);
      const __m512 scales = pair_scales(d + 2 * p, both, index);
      for (int b = 0; b < R; ++b) {
        const int64_t at = b * pairs + p;
        const __m512i dot = _mm512_dpbusd_epi32(_mm512_setzero_si512(), levels, _mm512_loadu_si512(x.q + 64 * at));
        const __m512 part = _mm512_mul_ps(_mm512_cvtepi32_ps(dot), _mm512_loadu_ps(x.d + 16 * at));
        acc[b] = _mm512_fmadd_ps(part, scales, acc[b]);
      }
    }
    for (int b = 0; b < R; ++b)
      y[b * w.n + n] = _mm512_reduce_add_ps(add_min_terms(acc[b], w.m + n * blocks, xsum + b * blocks, blocks));
  }
}

template <int R>
VNNI_TARGET void q8_vnni(const Q8& w, const QRows& x, int64_t n0, int64_t n1, float* y) {
  const int64_t blocks = w.k / BLOCK, pairs = x.pairs;
  const __m512i flip = _mm512_set1_epi8(static_cast<char>(0x80));  // w + 128: vpdpbusd takes unsigned weights
  const __m512i index = _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1);
  for (int64_t n = n0; n < n1; ++n) {
    __m512 acc[R];
    for (int b = 0; b < R; ++b) acc[b] = _mm512_setzero_ps();
    const int8_t* q = w.qs + n * w.k;
    const at::Half* d = w.d + n * blocks;
    for (int64_t p = 0; p < pairs; ++p) {
      const bool both = 2 * p + 1 < blocks;
      const __m512i levels = _mm512_xor_si512(
          both ? _mm512_loadu_si512(q + 64 * p) : _mm512_maskz_loadu_epi8(0xFFFFFFFFull, q + 64 * p), flip);
      const __m512 scales = pair_scales(d + 2 * p, both, index);
      for (int b = 0; b < R; ++b) {
        const int64_t at = b * pairs + p;
        // Starting from -128 * sum(levels) per lane takes the +128 back out: the sum is exact.
        const __m512i dot = _mm512_dpbusd_epi32(_mm512_loadu_si512(x.corr + 16 * at), levels,
                                                _mm512_loadu_si512(x.q + 64 * at));
        const __m512 part = _mm512_mul_ps(_mm512_cvtepi32_ps(dot), _mm512_loadu_ps(x.d + 16 * at));
        acc[b] = _mm512_fmadd_ps(part, scales, acc[b]);
      }
    }
    for (int b = 0; b < R; ++b) y[b * w.n + n] = _mm512_reduce_add_ps(acc[b]);
  }
}

}  // namespace
