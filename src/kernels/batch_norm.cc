// Batch normalisation in training mode (NCHW, float32) for MindSpore's CPU backend, as two aot-type Custom
// kernels: forward (normalise with the batch statistics, return them) and backward (input, scale and shift
// gradients).
//
// Why: MindSpore's CPU batch norm runs oneDNN's plain-layout (ncsp) implementation, which here took a third of an
// SSD-MobileNetV2 training step. The work is memory-bound; these loops read each plane contiguously, keep the
// per-channel sums in double, and split the channels over the cores.
//
// BatchNormForward(x [B, C, H, W], gamma [C], beta [C], params [3]) -> y [B, C, H, W], mean [C], var [C] (biased)
// BatchNormGrad(x, dy, y, gamma, mean, var, params) -> dx [B, C, H, W], dgamma [C], dbeta [C]
// params = {eps, fused activation (0 none, 1 clamp to [0, upper]), upper}: ReLU (upper inf) and ReLU6 (upper 6)
// after the normalisation are applied here, and their gradient mask (0 < y < upper) taken from the output y, so
// that the activation costs no pass and no tensor of its own.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "parallel.h"

namespace {


// ReLU/ReLU6 as compares and selects, which vectorise (std::min/max did not here) and keep a NaN a NaN.
inline float clamp_to(float v, float upper) { return v < 0.0f ? 0.0f : (v > upper ? upper : v); }

// The activation's gradient mask from its output: the gradient passes where 0 < y < upper. A product, as
// MindSpore's ReLU6Grad computes it (a NaN gradient stays NaN); a select did not vectorise here.
inline float masked(float g, float y, float upper) {
  return g * static_cast<float>((y > 0.0f) & (y < upper));
}

bool all_float32(int nparam, const char **dtypes) {
  for (int i = 0; i < nparam; ++i) {
    if (std::strcmp(dtypes[i], "float32") != 0) return false;
  }
  return true;
}

bool is_vector(int *ndims, int64_t **shapes, int index, int64_t length) {
  return ndims[index] == 1 && shapes[index][0] == length;
}

}  // namespace

extern "C" int BatchNormForward(int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes,
                                void *stream, void *extra) {
  if (nparam != 7 || !all_float32(nparam, dtypes) || ndims[0] != 4 || ndims[4] != 4) return 1;
  const int64_t batch = shapes[0][0], channels = shapes[0][1], plane = shapes[0][2] * shapes[0][3];
  if (!is_vector(ndims, shapes, 1, channels) || !is_vector(ndims, shapes, 2, channels) ||
      !is_vector(ndims, shapes, 3, 3) || !is_vector(ndims, shapes, 5, channels) ||
      !is_vector(ndims, shapes, 6, channels) || batch * plane == 0)
    return 1;
  const float *x = static_cast<const float *>(params[0]);
  const float *gamma = static_cast<const float *>(params[1]);
  const float *beta = static_cast<const float *>(params[2]);
  const float eps = static_cast<const float *>(params[3])[0];
  const bool clamp = static_cast<const float *>(params[3])[1] != 0.0f;
  const float upper = static_cast<const float *>(params[3])[2];
  float *y = static_cast<float *>(params[4]);
  float *mean_out = static_cast<float *>(params[5]);
  float *var_out = static_cast<float *>(params[6]);
  const double count = static_cast<double>(batch * plane);
  fdet::parallel_for(channels, batch * channels * plane, [&](int64_t begin, int64_t end, int64_t) {
    for (int64_t c = begin; c < end; ++c) {
      // Shifted sums (by the channel's first value) keep E[x^2] - E[x]^2 accurate when |mean| >> std.
      const float shift = x[c * plane];
      double sum = 0.0, sum_sq = 0.0;
      for (int64_t b = 0; b < batch; ++b) {
        const float *__restrict__ xp = x + (b * channels + c) * plane;
        float s = 0.0f, s2 = 0.0f;
        for (int64_t i = 0; i < plane; ++i) {
          const float d = xp[i] - shift;
          s += d;
          s2 += d * d;
        }
        sum += s;
        sum_sq += s2;
      }
      const double mean_shifted = sum / count;
      const double var = std::max(sum_sq / count - mean_shifted * mean_shifted, 0.0);
      const double mean = mean_shifted + shift;
      mean_out[c] = static_cast<float>(mean);
      var_out[c] = static_cast<float>(var);
      const float scale = static_cast<float>(gamma[c] / std::sqrt(var + eps));
      const float offset = static_cast<float>(beta[c] - mean * scale);
      for (int64_t b = 0; b < batch; ++b) {
        const float *__restrict__ xp = x + (b * channels + c) * plane;
        float *__restrict__ yp = y + (b * channels + c) * plane;
        if (clamp) {
          for (int64_t i = 0; i < plane; ++i) yp[i] = clamp_to(xp[i] * scale + offset, upper);
        } else {
          for (int64_t i = 0; i < plane; ++i) yp[i] = xp[i] * scale + offset;
        }
      }
    }
  });
  return 0;
}

extern "C" int BatchNormGrad(int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes,
                             void *stream, void *extra) {
  if (nparam != 10 || !all_float32(nparam, dtypes) || ndims[0] != 4 || ndims[1] != 4 || ndims[2] != 4 ||
      ndims[7] != 4)
    return 1;
  const int64_t batch = shapes[0][0], channels = shapes[0][1], plane = shapes[0][2] * shapes[0][3];
  for (int i = 0; i < 4; ++i) {
    if (shapes[1][i] != shapes[0][i] || shapes[2][i] != shapes[0][i] || shapes[7][i] != shapes[0][i]) return 1;
  }
  if (!is_vector(ndims, shapes, 3, channels) || !is_vector(ndims, shapes, 4, channels) ||
      !is_vector(ndims, shapes, 5, channels) || !is_vector(ndims, shapes, 6, 3) ||
      !is_vector(ndims, shapes, 8, channels) || !is_vector(ndims, shapes, 9, channels) || batch * plane == 0)
    return 1;
  const float *x = static_cast<const float *>(params[0]);
  const float *dy = static_cast<const float *>(params[1]);
  const float *y = static_cast<const float *>(params[2]);
  const float *gamma = static_cast<const float *>(params[3]);
  const float *mean = static_cast<const float *>(params[4]);
  const float *var = static_cast<const float *>(params[5]);
  const float eps = static_cast<const float *>(params[6])[0];
  const bool clamp = static_cast<const float *>(params[6])[1] != 0.0f;
  const float upper = static_cast<const float *>(params[6])[2];
  float *dx = static_cast<float *>(params[7]);
  float *dgamma = static_cast<float *>(params[8]);
  float *dbeta = static_cast<float *>(params[9]);
  const double count = static_cast<double>(batch * plane);
  fdet::parallel_for(channels, batch * channels * plane, [&](int64_t begin, int64_t end, int64_t) {
    for (int64_t c = begin; c < end; ++c) {
      const float m = mean[c];
      const double invstd = 1.0 / std::sqrt(static_cast<double>(var[c]) + eps);
      double sum_dy = 0.0, sum_dy_centred = 0.0;
      for (int64_t b = 0; b < batch; ++b) {
        const float *__restrict__ xp = x + (b * channels + c) * plane;
        const float *__restrict__ gp = dy + (b * channels + c) * plane;
        const float *__restrict__ yp = y + (b * channels + c) * plane;
        float s = 0.0f, sc = 0.0f;
        if (clamp) {
          for (int64_t i = 0; i < plane; ++i) {
            const float g = masked(gp[i], yp[i], upper);
            s += g;
            sc += g * (xp[i] - m);
          }
        } else {
          for (int64_t i = 0; i < plane; ++i) {
            s += gp[i];
            sc += gp[i] * (xp[i] - m);
          }
        }
        sum_dy += s;
        sum_dy_centred += sc;
      }
      dbeta[c] = static_cast<float>(sum_dy);
      dgamma[c] = static_cast<float>(sum_dy_centred * invstd);
      // dx = gamma * invstd * (dy - mean(dy) - xhat * mean(dy * xhat)), with xhat = (x - mean) * invstd.
      const float k = static_cast<float>(gamma[c] * invstd);
      const float mean_dy = static_cast<float>(sum_dy / count);
      const float slope = static_cast<float>(sum_dy_centred * invstd * invstd / count);
      for (int64_t b = 0; b < batch; ++b) {
        const float *__restrict__ xp = x + (b * channels + c) * plane;
        const float *__restrict__ gp = dy + (b * channels + c) * plane;
        const float *__restrict__ yp = y + (b * channels + c) * plane;
        float *__restrict__ out = dx + (b * channels + c) * plane;
        if (clamp) {
          for (int64_t i = 0; i < plane; ++i) {
            out[i] = k * (masked(gp[i], yp[i], upper) - mean_dy - (xp[i] - m) * slope);
          }
        } else {
          for (int64_t i = 0; i < plane; ++i) out[i] = k * (gp[i] - mean_dy - (xp[i] - m) * slope);
        }
      }
    }
  });
  return 0;
}
