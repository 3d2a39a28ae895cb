// One decode step of a Llama (SmolLM2) on the CPU: every layer in one call, no Python per op.
// Weights: GGUF Q4_1 blocks for the decoder products (32 weights: scale d, minimum m, 4-bit
// levels q; w = d * q + m), Q8_0 blocks for the output layer (w = d * q). Activations float32,
// or 8-bit blocks as llama.cpp takes them (int8_products.h).
// Kernels are compiled for AVX-512 and AVX2 with function-level target attributes and chosen
// at run time, so one compiled file serves every x86-64 machine (no -march=native).
#include <optional>

#include "attention.h"
#include "products.h"

namespace {

Q4 q4_of(const std::vector<torch::Tensor>& t, size_t at) {  // (qs (N, K/2) uint8, d (N, K/32), m (N, K/32))
  const auto& qs = t[at];
  return {qs.data_ptr<uint8_t>(), t[at + 1].data_ptr<at::Half>(), t[at + 2].data_ptr<at::Half>(), qs.size(0), qs.size(1) * 2};
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


// The sizes of a step, and scratch vectors every layer reuses.
struct Shapes {
  int rows;
  int64_t width, heads, kv_heads, dim, q_width, kv_width, qkv_width;
  float eps;
};

struct Scratch {
  std::vector<float> h, qkv, attended, delta, gate_up, act, cos, sin;
  Prepared prep;
  bool int8;  // 8-bit activations (int8_products.h) rather than float32
};

// The rows' inputs: the model's embedding table, or with tied embeddings (an empty `embed`)
// the output layer's Q8_0 rows, as llama.cpp reads them.
std::vector<float> embed_rows(const torch::Tensor& tokens, const torch::Tensor& embed, const torch::Tensor& out_qs,
                              const torch::Tensor& out_d, const Shapes& s) {
  std::vector<float> x(s.rows * s.width);
  if (embed.numel() != 0) {
    auto e32 = embed.index_select(0, tokens).to(torch::kFloat32).contiguous();
    std::copy(e32.data_ptr<float>(), e32.data_ptr<float>() + s.rows * s.width, x.begin());
    return x;
  }
  const int64_t* token = tokens.data_ptr<int64_t>();
  const int8_t* q = out_qs.data_ptr<int8_t>();
  const at::Half* d = out_d.data_ptr<at::Half>();
  for (int b = 0; b < s.rows; ++b) {
    TORCH_CHECK(token[b] >= 0 && token[b] < out_qs.size(0), "token id out of the vocabulary");
    for (int64_t i = 0; i < s.width; ++i)
      x[b * s.width + i] = float(d[token[b] * (s.width / BLOCK) + i / BLOCK]) * q[token[b] * s.width + i];
  }
  return x;
}

// Rotary angles per row, as transformers' LlamaRotaryEmbedding computes them.
void rope_tables(const torch::Tensor& positions, const torch::Tensor& inv_freq, double scaling, const Shapes& s,
                 Scratch& w) {
  const int64_t half = s.dim / 2;
  const float* freq = inv_freq.data_ptr<float>();
  const int64_t* pos = positions.data_ptr<int64_t>();
  w.cos.resize(s.rows * s.dim);
  w.sin.resize(s.rows * s.dim);
  for (int b = 0; b < s.rows; ++b)
    for (int64_t i = 0; i < s.dim; ++i) {
      const float angle = float(pos[b]) * freq[i % half];
      w.cos[b * s.dim + i] = std::cos(angle) * float(scaling);
      w.sin[b * s.dim + i] = std::sin(angle) * float(scaling);
    }
}

// Writes the new keys and values into column `length` of the cache, then attends over it.
template <typename T>
void cache_and_attend(torch::Tensor& keys, torch::Tensor& values, const uint8_t* mask, int64_t length,
                      const Shapes& s, Scratch& w) {
  store<T>(keys, s.rows, s.kv_heads, s.dim, length, w.qkv.data() + s.q_width, s.qkv_width);
  store<T>(values, s.rows, s.kv_heads, s.dim, length, w.qkv.data() + s.q_width + s.kv_width, s.qkv_width);
  attend_all<T>(keys, values, mask, length + 1, w.qkv.data(), s.rows, s.heads, s.kv_heads, s.dim, s.qkv_width,
                w.attended.data());
}

void add(std::vector<float>& x, const std::vector<float>& delta) {
  for (size_t i = 0; i < x.size(); ++i) x[i] += delta[i];
}

// One decoder layer on x (rows, width) in place; its tensors start at weights[at].
void run_layer(std::vector<float>& x, const std::vector<torch::Tensor>& weights, size_t at, torch::Tensor& keys,
               torch::Tensor& values, const uint8_t* mask, int64_t length, const Shapes& s, Scratch& w) {
  for (int b = 0; b < s.rows; ++b)
    rms_norm(&x[b * s.width], weights[at].data_ptr<float>(), s.width, s.eps, &w.h[b * s.width]);
  w.qkv.assign(s.rows * s.qkv_width, 0.f);
  q4_product(q4_of(weights, at + 1), w.h.data(), s.rows, w.qkv.data(), w.prep, w.int8);
  for (int b = 0; b < s.rows; ++b)
    for (int64_t head = 0; head < s.heads + s.kv_heads; ++head)  // q and k heads alike
      rotate(&w.qkv[b * s.qkv_width + head * s.dim], &w.cos[b * s.dim], &w.sin[b * s.dim], s.dim);
  if (keys.scalar_type() == torch::kBFloat16) cache_and_attend<at::BFloat16>(keys, values, mask, length, s, w);
  else cache_and_attend<float>(keys, values, mask, length, s, w);
  q4_product(q4_of(weights, at + 4), w.attended.data(), s.rows, w.delta.data(), w.prep, w.int8);
  add(x, w.delta);
  for (int b = 0; b < s.rows; ++b)
    rms_norm(&x[b * s.width], weights[at + 7].data_ptr<float>(), s.width, s.eps, &w.h[b * s.width]);
  const Q4 gate_up = q4_of(weights, at + 8);
  const int64_t inner = gate_up.n / 2;
  w.gate_up.resize(s.rows * gate_up.n);
  q4_product(gate_up, w.h.data(), s.rows, w.gate_up.data(), w.prep, w.int8);
  w.act.resize(s.rows * inner);
  for (int b = 0; b < s.rows; ++b)
    for (int64_t i = 0; i < inner; ++i) {
      const float g = w.gate_up[b * gate_up.n + i];
      w.act[b * inner + i] = g / (1.f + std::exp(-g)) * w.gate_up[b * gate_up.n + inner + i];  // silu(gate) * up
    }
  q4_product(q4_of(weights, at + 11), w.act.data(), s.rows, w.delta.data(), w.prep, w.int8);
  add(x, w.delta);
}

constexpr size_t LAYER_TENSORS = 14;
constexpr int HOLD_GIL_ROWS = 4;  // steps of up to this many rows (up to ~20 ms) keep the GIL

// weights: per layer [input_norm, qkv (qs, d, m), out (qs, d, m), post_norm, gate_up (qs, d, m), down (qs, d, m)];
// then final_norm, output (qs int8 (N, K), d). An empty `embed` means tied embeddings. keys/values:
// per layer, the cache buffers; `length` columns are filled, column `length` is written here.
// mask (rows, length + 1). int8: activations as 8-bit blocks (int8_products.h), else float32.
// Returns logits (rows, vocab) float32.
torch::Tensor step(torch::Tensor tokens, torch::Tensor positions, torch::Tensor mask, torch::Tensor embed,
                   std::vector<torch::Tensor> weights, std::vector<torch::Tensor> keys, std::vector<torch::Tensor> values,
                   int64_t length, torch::Tensor inv_freq, double rope_scaling, int64_t heads, int64_t kv_heads,
                   int64_t dim, double eps, bool int8) {
  const int rows = static_cast<int>(tokens.size(0));
  TORCH_CHECK(rows >= 1 && rows <= MAX_ROWS, "the native step takes 1 to ", MAX_ROWS, " rows");
  // Larger steps let the event loop run meanwhile (a 48-row step takes ~150 ms; holding the GIL
  // that long made the loop lag p99 158 ms). Small ones keep it, so the loop works between steps
  // rather than during them (at one row the measured difference was inside the noise).
  std::optional<py::gil_scoped_release> released;
  if (rows > HOLD_GIL_ROWS) released.emplace();
  TORCH_CHECK(positions.size(0) == rows && mask.size(0) == rows, "tokens, positions and mask need one row each");
  TORCH_CHECK(mask.size(1) == length + 1, "the mask needs one column per cached token and the new one");
  const size_t tail = keys.size() * LAYER_TENSORS;
  TORCH_CHECK(values.size() == keys.size() && weights.size() == tail + 3, "one cache layer per weight layer");
  const auto& out_qs = weights[tail + 1];
  const int64_t width = out_qs.size(1);
  const Shapes s{rows, width, heads, kv_heads, dim, heads * dim, kv_heads * dim, (heads + 2 * kv_heads) * dim,
                 static_cast<float>(eps)};
  Scratch w;
  w.int8 = int8;
  w.h.resize(rows * width);
  w.attended.resize(rows * s.q_width);
  w.delta.resize(rows * width);
  std::vector<float> x = embed_rows(tokens, embed, out_qs, weights[tail + 2], s);
  rope_tables(positions, inv_freq, rope_scaling, s, w);
  auto mask8 = mask.to(torch::kUInt8).contiguous();
  for (size_t l = 0; l < keys.size(); ++l)
    run_layer(x, weights, l * LAYER_TENSORS, keys[l], values[l], mask8.data_ptr<uint8_t>(), length, s, w);
  for (int b = 0; b < rows; ++b)
    rms_norm(&x[b * width], weights[tail].data_ptr<float>(), width, s.eps, &w.h[b * width]);
  const Q8 out{out_qs.data_ptr<int8_t>(), weights[tail + 2].data_ptr<at::Half>(), out_qs.size(0), out_qs.size(1)};
  auto logits = torch::empty({rows, out.n}, torch::kFloat32);
  q8_product(out, w.h.data(), rows, logits.data_ptr<float>(), w.prep, int8);
  return logits;
}

void check_input(const torch::Tensor& x, int64_t k) {
  TORCH_CHECK(x.dim() == 2 && x.size(0) >= 1 && x.size(0) <= MAX_ROWS && x.size(1) == k,
              "x must be (1 to ", MAX_ROWS, " rows, ", k, ")");
}

// One product alone (benchmarks and tests): x (rows, K) float32 -> (rows, N).
torch::Tensor linear_q4(torch::Tensor x, torch::Tensor qs, torch::Tensor d, torch::Tensor m, bool int8) {
  auto input = x.to(torch::kFloat32).contiguous();
  Q4 w{qs.data_ptr<uint8_t>(), d.data_ptr<at::Half>(), m.data_ptr<at::Half>(), qs.size(0), qs.size(1) * 2};
  check_input(input, w.k);
  auto out = torch::empty({input.size(0), w.n}, torch::kFloat32);
  Prepared prep;
  q4_product(w, input.data_ptr<float>(), static_cast<int>(input.size(0)), out.data_ptr<float>(), prep, int8);
  return out;
}

torch::Tensor linear_q8(torch::Tensor x, torch::Tensor qs, torch::Tensor d, bool int8) {
  auto input = x.to(torch::kFloat32).contiguous();
  Q8 w{qs.data_ptr<int8_t>(), d.data_ptr<at::Half>(), qs.size(0), qs.size(1)};
  check_input(input, w.k);
  auto out = torch::empty({input.size(0), w.n}, torch::kFloat32);
  Prepared prep;
  q8_product(w, input.data_ptr<float>(), static_cast<int>(input.size(0)), out.data_ptr<float>(), prep, int8);
  return out;
}

std::string isa_name() { return VNNI ? "AVX-512 VNNI" : ISA == 2 ? "AVX-512" : ISA == 1 ? "AVX2" : "plain C++"; }

// Tests run every kernel set this processor has: "best", "avx512", "avx2" or "plain".
std::string use_kernels(const std::string& name) {
  const int isa = name == "best" ? BEST_ISA : name == "avx512" ? 2 : name == "avx2" ? 1 : name == "plain" ? 0 : -1;
  TORCH_CHECK(isa >= 0 && isa <= BEST_ISA, "this processor has no ", name, " kernels");
  ISA = isa;
  VNNI = name == "best" && HAS_VNNI;
  return isa_name();
}

}  // namespace

PYBIND11_MODULE(TORCH_EXTENSION_NAME, module) {
  // The products alone release the GIL; `step` decides by its row count (HOLD_GIL_ROWS).
  using release = py::call_guard<py::gil_scoped_release>;
  module.def("step", &step, "one decode step of every row (see decode_step.cpp)");
  module.def("linear_q4", &linear_q4, "x @ W.T for Q4_1 blocks (qs, d, m)", py::arg("x"), py::arg("qs"), py::arg("d"),
             py::arg("m"), py::arg("int8") = false, release());
  module.def("linear_q8", &linear_q8, "x @ W.T for Q8_0 blocks (qs, d)", py::arg("x"), py::arg("qs"), py::arg("d"),
             py::arg("int8") = false, release());
  module.def("vnni", [] { return VNNI; }, "whether 8-bit activations take AVX512-VNNI (else plain loops)");
  module.def("isa", &isa_name, "the instruction set the kernels chose on this processor");
  module.def("use_kernels", &use_kernels, "switch kernel sets (tests); returns the one in use");
}
