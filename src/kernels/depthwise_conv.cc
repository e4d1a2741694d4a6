// Depthwise 2-D convolution (NCHW, float32, symmetric zero padding) for MindSpore's CPU backend, as three
// aot-type Custom kernels: forward, gradient of the input, gradient of the weight.
//
// Why: MindSpore's CPU convolution goes through oneDNN in plain NCHW, where a depthwise conv becomes one tiny
// GEMM per channel (about 1 GFLOP/s here). These kernels run each of the k x k taps as one contiguous loop over a
// padded copy of the plane (see PhasePlane), which the compiler vectorises, and split the work over the cores by
// (image, channel) plane or by channel.
//
// The forward kernel takes (x, weight, geometry) and the two gradients (x, dy, weight, geometry), where geometry is
// int32 [2] = {stride, padding}, the same for both axes; x is passed to the gradients for its shape, or its data.
// Kernel signature: MindSpore's aot interface, int f(nparam, params, ndims, shapes, dtypes, stream, extra).
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "parallel.h"

namespace {

struct Geometry {
  int64_t batch, channels, height, width, out_height, out_width, kernel, stride, pad;

  int64_t input_elements() const { return batch * channels * height * width; }
};

// A zero-padded copy of one input plane, with its columns split by phase modulo the stride: phase r holds the
// padded columns r, r + s, r + 2s, ... Tap (i, j) of output (oy, ox) then reads phase j % s, row oy * s + i,
// column ox + j / s: every inner loop below runs over contiguous memory, so the compiler vectorises it.
struct PhasePlane {
  int64_t rows, cols, stride, pad, height, width;  // rows = H + 2p; cols per phase
  std::vector<float> data;                         // [stride][rows][cols], then slack for the flat loops' scratch reads

  explicit PhasePlane(const Geometry &g)
      : rows(g.height + 2 * g.pad),
        cols((g.width + 2 * g.pad + g.stride - 1) / g.stride + g.kernel),
        stride(g.stride),
        pad(g.pad),
        height(g.height),
        width(g.width),
        data(static_cast<size_t>(g.stride * rows * cols + g.stride * cols + g.kernel)) {}

  float *row(int64_t phase, int64_t r) { return data.data() + (phase * rows + r) * cols; }

  // Padded column c = x + pad lands in phase c % stride at column c / stride. Per phase: the first column
  // that holds an image pixel, and the image column x it holds (stepping by `stride` from there).
  void phase_start(int64_t phase, int64_t *column, int64_t *x) const {
    *column = pad > phase ? (pad - phase + stride - 1) / stride : 0;
    *x = *column * stride + phase - pad;
  }

  void load(const float *__restrict__ plane) {
    std::fill(data.begin(), data.end(), 0.0f);
    for (int64_t phase = 0; phase < stride; ++phase) {
      int64_t column, x0;
      phase_start(phase, &column, &x0);
      const int64_t count = x0 < width ? (width - x0 + stride - 1) / stride : 0;
      for (int64_t y = 0; y < height; ++y) {
        const float *__restrict__ src = plane + y * width + x0;
        float *__restrict__ dst = row(phase, y + pad) + column;
        if (stride == 1) {
          std::copy(src, src + count, dst);
        } else {
          for (int64_t n = 0; n < count; ++n) dst[n] = src[n * stride];
        }
      }
    }
  }

  // Writes the padded plane's interior into `plane` (the input gradient; padding cells are dropped).
  void store(float *__restrict__ plane) {
    for (int64_t phase = 0; phase < stride; ++phase) {
      int64_t column, x0;
      phase_start(phase, &column, &x0);
      const int64_t count = x0 < width ? (width - x0 + stride - 1) / stride : 0;
      for (int64_t y = 0; y < height; ++y) {
        float *__restrict__ dst = plane + y * width + x0;
        const float *__restrict__ src = row(phase, y + pad) + column;
        if (stride == 1) {
          std::copy(src, src + count, dst);
        } else {
          for (int64_t n = 0; n < count; ++n) dst[n * stride] = src[n];
        }
      }
    }
  }
};

// Each tap runs as one loop over the whole plane. Output (oy, ox) sits at oy * pitch + ox of a buffer whose row
// pitch is stride * cols, the distance between the padded rows of consecutive output rows; tap (i, j) then reads
// phase j % stride at that index + i * cols + j / stride. Entries past the output width, and the rows between
// (stride > 1), are scratch: computed and dropped, which costs less than a loop per row on small planes.
inline void to_pitch(const float *__restrict__ src, int64_t rows, int64_t width, int64_t pitch,
                     float *__restrict__ dst) {
  for (int64_t r = 0; r < rows; ++r) {
    std::copy(src + r * width, src + (r + 1) * width, dst + r * pitch);
    std::fill(dst + r * pitch + width, dst + (r + 1) * pitch, 0.0f);
  }
}

inline void from_pitch(const float *__restrict__ src, int64_t rows, int64_t width, int64_t pitch,
                       float *__restrict__ dst) {
  for (int64_t r = 0; r < rows; ++r) std::copy(src + r * pitch, src + r * pitch + width, dst + r * width);
}

// Checks dtypes and shapes (x at x_index, dy at dy_index, weight at w_index, geometry last among the inputs).
bool read_geometry(int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes, int x_index,
                   int dy_index, int w_index, Geometry *g) {
  const int geometry_index = nparam - 2;
  for (int i = 0; i < nparam; ++i) {
    if (i == geometry_index) continue;
    if (ndims[i] != 4 || std::strcmp(dtypes[i], "float32") != 0) return false;
  }
  if (ndims[geometry_index] != 1 || shapes[geometry_index][0] != 2) return false;
  const int32_t *geometry = static_cast<const int32_t *>(params[geometry_index]);
  const int64_t *in = shapes[x_index], *out = shapes[dy_index], *w = shapes[w_index];
  *g = Geometry{in[0], in[1], in[2], in[3], out[2], out[3], w[2], geometry[0], geometry[1]};
  return w[0] == in[1] && w[1] == 1 && w[2] == w[3] && out[0] == in[0] && out[1] == in[1] && g->stride > 0 &&
         g->pad >= 0 && (g->height + 2 * g->pad - g->kernel) / g->stride + 1 == g->out_height &&
         (g->width + 2 * g->pad - g->kernel) / g->stride + 1 == g->out_width;
}

}  // namespace

// inputs: x [B, C, H, W], weight [C, 1, K, K], geometry; output y [B, C, Ho, Wo].
extern "C" int DepthwiseConvForward(int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes,
                                    void *stream, void *extra) {
  Geometry g;
  if (nparam != 4 || !read_geometry(nparam, params, ndims, shapes, dtypes, 0, 3, 1, &g)) return 1;
  const float *x = static_cast<const float *>(params[0]);
  const float *w = static_cast<const float *>(params[1]);
  float *y = static_cast<float *>(params[3]);
  fdet::parallel_for(g.batch * g.channels, g.input_elements(), [&](int64_t begin, int64_t end, int64_t) {
    PhasePlane padded(g);
    const int64_t k = g.kernel, s = g.stride, cols = padded.cols, pitch = s * cols, n = g.out_height * pitch;
    std::vector<float> wide(n);
    for (int64_t plane = begin; plane < end; ++plane) {
      padded.load(x + plane * g.height * g.width);
      const float *wp = w + (plane % g.channels) * k * k;
      float *__restrict__ out = wide.data();
      std::fill(out, out + n, 0.0f);
      for (int64_t i = 0; i < k; ++i) {
        for (int64_t j = 0; j < k; ++j) {
          const float *__restrict__ in = padded.row(j % s, i) + j / s;
          const float wv = wp[i * k + j];
          for (int64_t q = 0; q < n; ++q) out[q] += wv * in[q];
        }
      }
      from_pitch(out, g.out_height, g.out_width, pitch, y + plane * g.out_height * g.out_width);
    }
  });
  return 0;
}

// inputs: x (for its shape), dy [B, C, Ho, Wo], weight, geometry; output dx [B, C, H, W].
extern "C" int DepthwiseConvInputGrad(int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes,
                                      void *stream, void *extra) {
  Geometry g;
  if (nparam != 5 || !read_geometry(nparam, params, ndims, shapes, dtypes, 0, 1, 2, &g)) return 1;
  const float *dy = static_cast<const float *>(params[1]);
  const float *w = static_cast<const float *>(params[2]);
  float *dx = static_cast<float *>(params[4]);
  fdet::parallel_for(g.batch * g.channels, g.input_elements(), [&](int64_t begin, int64_t end, int64_t) {
    PhasePlane grad(g);
    const int64_t k = g.kernel, s = g.stride, cols = grad.cols, pitch = s * cols, n = g.out_height * pitch;
    std::vector<float> wide(n);
    for (int64_t plane = begin; plane < end; ++plane) {
      std::fill(grad.data.begin(), grad.data.end(), 0.0f);
      to_pitch(dy + plane * g.out_height * g.out_width, g.out_height, g.out_width, pitch, wide.data());
      const float *wp = w + (plane % g.channels) * k * k;
      const float *__restrict__ src = wide.data();
      // The transpose of the forward loop: every output scatters back into the padded input cells it read.
      for (int64_t i = 0; i < k; ++i) {
        for (int64_t j = 0; j < k; ++j) {
          float *__restrict__ dst = grad.row(j % s, i) + j / s;
          const float wv = wp[i * k + j];
          for (int64_t q = 0; q < n; ++q) dst[q] += wv * src[q];
        }
      }
      grad.store(dx + plane * g.height * g.width);
    }
  });
  return 0;
}

// inputs: x [B, C, H, W], dy [B, C, Ho, Wo], weight (for its shape), geometry; output dw [C, 1, K, K]. Split by
// channel, so that every thread sums over the whole batch for its own channels and no two threads write one weight.
extern "C" int DepthwiseConvWeightGrad(int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes,
                                       void *stream, void *extra) {
  Geometry g;
  if (nparam != 5 || !read_geometry(nparam, params, ndims, shapes, dtypes, 0, 1, 2, &g)) return 1;
  const float *x = static_cast<const float *>(params[0]);
  const float *dy = static_cast<const float *>(params[1]);
  float *dw = static_cast<float *>(params[4]);
  fdet::parallel_for(g.channels, g.input_elements(), [&](int64_t begin, int64_t end, int64_t) {
    PhasePlane padded(g);
    const int64_t k = g.kernel, s = g.stride, cols = padded.cols, pitch = s * cols, n = g.out_height * pitch;
    std::vector<float> wide(n), acc(k * k);
    for (int64_t c = begin; c < end; ++c) {
      std::fill(acc.begin(), acc.end(), 0.0f);
      for (int64_t b = 0; b < g.batch; ++b) {
        padded.load(x + (b * g.channels + c) * g.height * g.width);
        to_pitch(dy + (b * g.channels + c) * g.out_height * g.out_width, g.out_height, g.out_width, pitch,
                 wide.data());
        const float *__restrict__ grad_flat = wide.data();  // zero in the scratch entries
        for (int64_t i = 0; i < k; ++i) {
          for (int64_t j = 0; j < k; ++j) {
            const float *__restrict__ in = padded.row(j % s, i) + j / s;
            float sum = 0.0f;
            for (int64_t q = 0; q < n; ++q) sum += grad_flat[q] * in[q];
            acc[i * k + j] += sum;
          }
        }
      }
      std::copy(acc.begin(), acc.end(), dw + c * k * k);
    }
  });
  return 0;
}
