// Splitting a kernel's work over the cores, shared by the kernels in this folder.
#pragma once

#include <algorithm>
#include <cstdint>
#include <thread>
#include <vector>

namespace fdet {

inline int64_t hardware_threads() { return std::max<int64_t>(1, std::thread::hardware_concurrency()); }

// Below this many elements of work a call runs on the calling thread: starting a thread costs tens of
// microseconds, and far more when MindSpore's own threads hold the cores, which made small models' training
// several times slower than on MindSpore's ops.
constexpr int64_t kMinParallelWork = 1 << 18;

// Runs body(begin, end, thread_index) over [0, count) in contiguous chunks, one per core, and waits for all;
// `work` is the number of elements the whole call touches.
template <typename Body>
void parallel_for(int64_t count, int64_t work, const Body &body) {
  const int64_t threads =
      work < kMinParallelWork ? 1 : std::max<int64_t>(1, std::min<int64_t>(hardware_threads(), count));
  const int64_t chunk = (count + threads - 1) / threads;
  std::vector<std::thread> workers;
  for (int64_t t = 1; t < threads; ++t) {
    const int64_t begin = t * chunk, end = std::min(count, begin + chunk);
    if (begin < end) workers.emplace_back([&body, begin, end, t] { body(begin, end, t); });
  }
  body(0, std::min(count, chunk), 0);
  for (auto &w : workers) w.join();
}

}  // namespace fdet
