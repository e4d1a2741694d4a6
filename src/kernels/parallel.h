// Splitting a kernel's work over the cores, shared by the kernels in this folder.
#pragma once

#include <algorithm>
#include <cstdint>
#include <thread>
#include <vector>

namespace fdet {

inline int64_t hardware_threads() { return std::max<int64_t>(1, std::thread::hardware_concurrency()); }

// Runs body(begin, end, thread_index) over [0, count) in contiguous chunks, one per core, and waits for all.
template <typename Body>
void parallel_for(int64_t count, const Body &body) {
  const int64_t threads = std::max<int64_t>(1, std::min<int64_t>(hardware_threads(), count));
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
