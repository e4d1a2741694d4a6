#include "inc/utils.h"

#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <sstream>
#include <system_error>

#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

namespace fs = std::filesystem;

namespace fdet {

// ------------------------------------------------------------------------------------------------------ flags
void FlagParser::Add(const std::string &name, std::string *value, const std::string &help) {
  flags_.push_back(Flag{name, value, help, *value});
}

const FlagParser::Flag *FlagParser::Find(const std::string &name) const {
  for (const Flag &flag : flags_) {
    if (flag.name == name) return &flag;
  }
  return nullptr;
}

FlagParser::Result FlagParser::Parse(int argc, char **argv, std::string *error) const {
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") return Result::kHelp;
    if (arg.rfind("--", 0) != 0 || arg.size() == 2) {
      *error = "unexpected argument '" + arg + "' (flags look like --name=value)";
      return Result::kError;
    }
    std::string name = arg.substr(2);
    std::string value;
    bool has_value = false;
    size_t eq = name.find('=');
    if (eq != std::string::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
      has_value = true;
    }
    const Flag *flag = Find(name);
    if (flag == nullptr) {
      *error = "unknown flag --" + name;
      return Result::kError;
    }
    if (!has_value) {
      if (i + 1 >= argc) {
        *error = "flag --" + name + " needs a value";
        return Result::kError;
      }
      value = argv[++i];
    }
    *flag->value = value;
  }
  return Result::kOk;
}

std::string FlagParser::Usage(const std::string &program) const {
  std::ostringstream out;
  out << "usage: " << program << " --mindir_path=MODEL --dataset_path=IMAGE_DIR [flags]\n";
  for (const Flag &flag : flags_) {
    out << "  --" << flag.name << ": " << flag.help;
    if (!flag.default_value.empty()) out << " (default " << flag.default_value << ")";
    out << "\n";
  }
  return out.str();
}

bool ParseInt(const std::string &text, long lo, long hi, long *out) {
  if (text.empty() || std::isspace(static_cast<unsigned char>(text[0]))) return false;
  errno = 0;
  char *end = nullptr;
  long value = std::strtol(text.c_str(), &end, 10);
  if (errno != 0 || *end != '\0' || value < lo || value > hi) return false;
  *out = value;
  return true;
}

bool ParseFloat3(const std::string &text, std::array<float, 3> *out) {
  std::array<float, 3> values{};
  size_t start = 0;
  for (size_t k = 0; k < 3; ++k) {
    size_t comma = text.find(',', start);
    bool last = (k == 2);
    if (last != (comma == std::string::npos)) return false;  // not exactly three fields
    std::string field = text.substr(start, last ? std::string::npos : comma - start);
    if (field.empty() || std::isspace(static_cast<unsigned char>(field[0]))) return false;
    errno = 0;
    char *end = nullptr;
    double value = std::strtod(field.c_str(), &end);
    if (errno != 0 || *end != '\0' || !std::isfinite(value)) return false;
    values[k] = static_cast<float>(value);  // double -> float32, round to nearest, as numpy does
    start = comma + 1;
  }
  *out = values;
  return true;
}

// ------------------------------------------------------------------------------------------------------ files
static std::string Lower(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return text;
}

bool ListImages(const std::string &dir, std::vector<std::string> *names, std::string *error) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    *error = fs::exists(dir, ec) ? "dataset path is not a folder: " + dir : "dataset folder not found: " + dir;
    return false;
  }
  static const char *const kExtensions[] = {".jpg", ".jpeg", ".png", ".bmp"};
  names->clear();
  fs::directory_iterator it(dir, ec), end;
  if (ec) {
    *error = "cannot list " + dir + ": " + ec.message();
    return false;
  }
  for (; it != end; it.increment(ec)) {
    if (ec) {
      *error = "cannot list " + dir + ": " + ec.message();
      return false;
    }
    std::error_code type_ec;
    if (!it->is_regular_file(type_ec)) continue;  // follows symlinks; skips folders
    std::string name = it->path().filename().string();
    std::string ext = Lower(it->path().extension().string());
    if (std::find(std::begin(kExtensions), std::end(kExtensions), ext) != std::end(kExtensions)) {
      names->push_back(name);
    }
  }
  std::sort(names->begin(), names->end());
  return true;
}

bool IsReadableFile(const std::string &path) {
  std::error_code ec;
  return fs::is_regular_file(path, ec) && access(path.c_str(), R_OK) == 0;
}

std::string FileStem(const std::string &name) {
  size_t dot = name.rfind('.');
  return (dot == std::string::npos || dot == 0) ? name : name.substr(0, dot);
}

bool MakeDirs(const std::string &dir, std::string *error) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec || !fs::is_directory(dir, ec)) {
    *error = "cannot create folder " + dir + (ec ? ": " + ec.message() : "");
    return false;
  }
  return true;
}

bool WriteFileAtomic(const std::string &path, const void *data, size_t size, std::string *error) {
  // The temporary name starts with the final one, so a crash leaves an obviously unfinished ".tmp" file behind.
  std::string tmp = path + ".tmp" + std::to_string(static_cast<long>(getpid()));
  FILE *file = std::fopen(tmp.c_str(), "wb");
  if (file == nullptr) {
    *error = "cannot create " + tmp + ": " + std::strerror(errno);
    return false;
  }
  bool ok = size == 0 || std::fwrite(data, 1, size, file) == size;
  ok = (std::fflush(file) == 0) && ok;
  ok = (std::fclose(file) == 0) && ok;
  if (!ok) {
    *error = "cannot write " + tmp + ": " + std::strerror(errno);
    std::remove(tmp.c_str());
    return false;
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    *error = "cannot rename " + tmp + " to " + path + ": " + std::strerror(errno);
    std::remove(tmp.c_str());
    return false;
  }
  return true;
}

// ------------------------------------------------------------------------------------------------------ images
NormTable MakeNormTable(const std::array<float, 3> &mean, const std::array<float, 3> &stdev) {
  NormTable table{};
  for (size_t c = 0; c < 3; ++c) {
    for (int level = 0; level < 256; ++level) {
      // float32 subtract, then float32 divide: numpy's `(levels - mean[c]) / std[c]` on float32 arrays.
      float centred = static_cast<float>(level) - mean[c];
      table[c][level] = centred / stdev[c];
    }
  }
  return table;
}

bool PreprocessImage(const std::string &path, int height, int width, const NormTable &table,
                     std::vector<float> *chw, int *orig_h, int *orig_w) {
  cv::Mat bgr = cv::imread(path, cv::IMREAD_COLOR);
  if (bgr.empty()) return false;
  *orig_h = bgr.rows;
  *orig_w = bgr.cols;
  cv::Mat rgb;
  cv::cvtColor(bgr, rgb, cv::COLOR_BGR2RGB);
  if (rgb.rows != height || rgb.cols != width) {
    cv::Mat resized;
    cv::resize(rgb, resized, cv::Size(width, height), 0, 0, cv::INTER_LINEAR);
    rgb = resized;
  }
  const size_t plane = static_cast<size_t>(height) * static_cast<size_t>(width);
  chw->resize(3 * plane);
  float *r = chw->data();
  float *g = r + plane;
  float *b = g + plane;
  for (int y = 0; y < height; ++y) {
    const uint8_t *px = rgb.ptr<uint8_t>(y);
    const size_t row = static_cast<size_t>(y) * static_cast<size_t>(width);
    for (int x = 0; x < width; ++x, px += 3) {
      r[row + x] = table[0][px[0]];
      g[row + x] = table[1][px[1]];
      b[row + x] = table[2][px[2]];
    }
  }
  return true;
}

}  // namespace fdet
