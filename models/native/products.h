// A product of GGUF blocks over every row of a step: the activations' form (float32, or 8-bit
// blocks), the kernel for this processor, and the split of output rows between threads.
#pragma once
#include "block_products.h"
#include "int8_products.h"

namespace {

// Calls f with std::integral_constant<int, rows> (1..TILE_ROWS): kernels take rows at compile time.
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

// What a product prepares from its input before the threads start, reused from one to the next.
struct Prepared {
  std::vector<float> xsum;  // float32 x: per row and block, the sum of x (the Q4_1 minimum's term)
  QX quantized;             // x as 8-bit blocks, when the step asks for them
};

// Each task runs every tile of rows over its own output rows, so their weights stay in cache
// from one tile to the next. `tile(t, rows, n0, n1)` computes rows [t, t + rows).
template <typename Tile>
void over_tiles(int64_t n, int rows, Tile&& tile) {
  at::parallel_for(0, n, GRAIN, [&](int64_t n0, int64_t n1) {
    for (int t = 0; t < rows; t += TILE_ROWS) tile(t, std::min(TILE_ROWS, rows - t), n0, n1);
  });
}

void q4_product(const Q4& w, const float* x, int rows, float* y, Prepared& prep, bool int8) {
  const int64_t blocks = w.k / BLOCK;
  TORCH_CHECK(blocks <= MAX_BLOCKS, "rows of more than ", MAX_BLOCKS * BLOCK, " weights");
  if (int8) {
    quantize_rows(x, rows, w.k, Layout::Q4, prep.quantized);  // with the rounded x's block sums
  } else {
    prep.xsum.assign(rows * blocks, 0.f);
    for (int b = 0; b < rows; ++b)
      for (int64_t i = 0; i < blocks; ++i)
        for (int j = 0; j < BLOCK; ++j) prep.xsum[b * blocks + i] += x[b * w.k + BLOCK * i + j];
  }
  const float* xs = int8 ? prep.quantized.sums.data() : prep.xsum.data();
  const QX& qx = prep.quantized;
  over_tiles(w.n, rows, [&](int t, int tile, int64_t n0, int64_t n1) {
    const float* xst = xs + t * blocks;
    float* yt = y + t * w.n;
    if (int8) {
      const QRows xt = rows_from(qx, t);
      if (!VNNI) return q4_int8_plain(w, xt, xst, tile, n0, n1, yt);
      return with_rows(tile, [&](auto r) { q4_vnni<decltype(r)::value>(w, xt, xst, n0, n1, yt); });
    }
    const float* xt = x + t * w.k;
    if (ISA == 0) return q4_plain(w, xt, xst, tile, n0, n1, yt);
    with_rows(tile, [&](auto r) {
      if (ISA == 2) q4_avx512<decltype(r)::value>(w, xt, xst, n0, n1, yt);
      else q4_avx2<decltype(r)::value>(w, xt, xst, n0, n1, yt);
    });
  });
}

void q8_product(const Q8& w, const float* x, int rows, float* y, Prepared& prep, bool int8) {
  TORCH_CHECK(w.k / BLOCK <= MAX_BLOCKS, "rows of more than ", MAX_BLOCKS * BLOCK, " weights");
  if (int8) quantize_rows(x, rows, w.k, Layout::Q8, prep.quantized);
  const QX& qx = prep.quantized;
  over_tiles(w.n, rows, [&](int t, int tile, int64_t n0, int64_t n1) {
    float* yt = y + t * w.n;
    if (int8) {
      const QRows xt = rows_from(qx, t);
      if (!VNNI) return q8_int8_plain(w, xt, tile, n0, n1, yt);
      return with_rows(tile, [&](auto r) { q8_vnni<decltype(r)::value>(w, xt, n0, n1, yt); });
    }
    const float* xt = x + t * w.k;
    if (ISA == 0) return q8_plain(w, xt, tile, n0, n1, yt);
    with_rows(tile, [&](auto r) {
      if (ISA == 2) q8_avx512<decltype(r)::value>(w, xt, n0, n1, yt);
      else q8_avx2<decltype(r)::value>(w, xt, n0, n1, yt);
    });
  });
}

}  // namespace
