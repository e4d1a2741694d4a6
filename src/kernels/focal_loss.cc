// Sigmoid focal loss, summed, and its gradient, for MindSpore's CPU backend (aot-type Custom kernels).
//
// Why: written with MindSpore ops, the loss over [B, A, C] logits (8 x 51150 x 80 for the 640 FPN models) keeps
// about ten full-size temporaries for the backward pass (2.7 GB) and takes about 2 s per step here. These loops
// make one pass each way and keep nothing but the logits.
//
// Built with -ffast-math (src/kernels/build.py), so that exp and log vectorise; fast-math assumes no NaN or inf,
// so non-finite logits are found from their bits (which it cannot optimise away) and turned into a NaN loss and
// NaN gradients, as the ops version gives: training then sees the overflow and skips the step.
//
// FocalLossSum(logits [B, A, C], labels int32 [B, A], params [alpha, gamma]) -> loss [1]
// FocalLossGrad(logits, labels, params, dloss [1]) -> dlogits [B, A, C]
// labels: -1 ignored anchor, 0 background, k + 1 class k (the same targets as src/losses.py).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "parallel.h"

namespace {


inline bool finite(float v) {
  uint32_t bits;
  std::memcpy(&bits, &v, sizeof(bits));
  return (bits & 0x7f800000u) != 0x7f800000u;
}

inline float quiet_nan() {
  const uint32_t bits = 0x7fc00000u;
  float v;
  std::memcpy(&v, &bits, sizeof(v));
  return v;
}

// softplus(x) = log(1 + exp(x)), without overflow. log(1 + e) rather than log1p(e), which has no vector version;
// for e < 6e-8 it rounds to 0, an absolute error below 6e-8.
inline float softplus(float x) { return std::max(x, 0.0f) + std::log(1.0f + std::exp(-std::fabs(x))); }

// sigmoid(x) from exp(-|x|), which never overflows. The plain 1 / (1 + exp(-x)) overflows exp for x < -88.7, and
// under -ffast-math the division by that infinity is not 0 but NaN (a reciprocal estimate): a confident negative
// logit of -89 then turned a whole training step into NaN.
inline float sigmoid(float x) {
  const float e = std::exp(-std::fabs(x));
  const float r = 1.0f / (1.0f + e);
  return x >= 0.0f ? r : e * r;
}

inline float power(float base, float gamma) { return gamma == 2.0f ? base * base : std::pow(base, gamma); }

bool check(int nparam, int *ndims, int64_t **shapes, const char **dtypes, int64_t *rows, int64_t *classes) {
  if (ndims[0] != 3 || ndims[1] != 2 || ndims[2] != 1 || shapes[2][0] != 2) return false;
  if (shapes[1][0] != shapes[0][0] || shapes[1][1] != shapes[0][1]) return false;
  if (std::strcmp(dtypes[0], "float32") != 0 || std::strcmp(dtypes[1], "int32") != 0 ||
      std::strcmp(dtypes[2], "float32") != 0 || std::strcmp(dtypes[nparam - 1], "float32") != 0)
    return false;
  *rows = shapes[0][0] * shapes[0][1];
  *classes = shapes[0][2];
  return true;
}

}  // namespace

extern "C" int FocalLossSum(int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes,
                            void *stream, void *extra) {
  int64_t rows, classes;
  if (nparam != 4 || !check(nparam, ndims, shapes, dtypes, &rows, &classes)) return 1;
  const float *logits = static_cast<const float *>(params[0]);
  const int32_t *labels = static_cast<const int32_t *>(params[1]);
  const float alpha = static_cast<const float *>(params[2])[0], gamma = static_cast<const float *>(params[2])[1];
  std::vector<double> partial(fdet::hardware_threads(), 0.0);
  std::vector<int> non_finite(fdet::hardware_threads(), 0);
  fdet::parallel_for(rows, rows * classes, [&](int64_t begin, int64_t end, int64_t thread) {
    double total = 0.0;
    int bad = 0;
    for (int64_t r = begin; r < end; ++r) {
      const int32_t label = labels[r];
      if (label < 0) continue;
      const float *x = logits + r * classes;
      float sum = 0.0f;
      for (int64_t c = 0; c < classes; ++c) bad |= !finite(x[c]);
      for (int64_t c = 0; c < classes; ++c) {
        // Negative: (1 - alpha) p^gamma (-log(1 - p)), with -log(1 - p) = softplus(x).
        const float p = sigmoid(x[c]);
        sum += (1.0f - alpha) * power(p, gamma) * softplus(x[c]);
      }
      if (label > 0 && label <= classes) {  // the positive column: alpha (1 - p)^gamma (-log p) instead
        const float xc = x[label - 1], p = sigmoid(xc);
        sum += alpha * power(1.0f - p, gamma) * softplus(-xc) - (1.0f - alpha) * power(p, gamma) * softplus(xc);
      }
      total += sum;
    }
    partial[thread] = total;
    non_finite[thread] = bad;
  });
  double total = 0.0;
  for (double v : partial) total += v;
  const bool bad = std::find(non_finite.begin(), non_finite.end(), 1) != non_finite.end();
  static_cast<float *>(params[3])[0] = bad ? quiet_nan() : static_cast<float>(total);
  return 0;
}

extern "C" int FocalLossGrad(int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes,
                             void *stream, void *extra) {
  int64_t rows, classes;
  if (nparam != 5 || !check(nparam, ndims, shapes, dtypes, &rows, &classes)) return 1;
  const float *logits = static_cast<const float *>(params[0]);
  const int32_t *labels = static_cast<const int32_t *>(params[1]);
  const float alpha = static_cast<const float *>(params[2])[0], gamma = static_cast<const float *>(params[2])[1];
  const float scale = static_cast<const float *>(params[3])[0];
  float *grad = static_cast<float *>(params[4]);
  fdet::parallel_for(rows, rows * classes, [&](int64_t begin, int64_t end, int64_t) {
    for (int64_t r = begin; r < end; ++r) {
      const int32_t label = labels[r];
      const float *x = logits + r * classes;
      float *g = grad + r * classes;
      if (label < 0) {
        std::fill(g, g + classes, 0.0f);
        continue;
      }
      for (int64_t c = 0; c < classes; ++c) {
        // d/dx of (1 - alpha) p^gamma softplus(x) = (1 - alpha) p^gamma (gamma (1 - p) softplus(x) + p).
        const float p = sigmoid(x[c]);
        g[c] = scale * (1.0f - alpha) * power(p, gamma) * (gamma * (1.0f - p) * softplus(x[c]) + p);
      }
      int bad = 0;
      for (int64_t c = 0; c < classes; ++c) bad |= !finite(x[c]);
      if (bad) {
        std::fill(g, g + classes, quiet_nan());
        continue;
      }
      if (label > 0 && label <= classes) {
        // d/dx of alpha (1 - p)^gamma softplus(-x) = -alpha (1 - p)^gamma (gamma p softplus(-x) + 1 - p).
        const float xc = x[label - 1], p = sigmoid(xc);
        g[label - 1] = -scale * alpha * power(1.0f - p, gamma) * (gamma * p * softplus(-xc) + 1.0f - p);
      }
    }
  });
  return 0;
}
