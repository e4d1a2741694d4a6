/**
 * Helpers of the C++ inference program that do not touch MindSpore: a small command-line flag parser, number
 * parsing, the image folder listing, the preprocessing (the same arithmetic as src/data/augment.py's EvalTransform)
 * and atomic file writes. main.cc holds everything that talks to the MindSpore C++ API.
 */
#ifndef FDET_ASCEND310_INFER_INC_UTILS_H_
#define FDET_ASCEND310_INFER_INC_UTILS_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace fdet {

// ------------------------------------------------------------------------------------------------------ flags
/// Flags given as `--name value` or `--name=value`; every flag takes a value. `--help` / `-h` asks for the usage.
class FlagParser {
 public:
  enum class Result { kOk, kHelp, kError };

  /// Registers `--name`; `*value` keeps its current content as the default.
  void Add(const std::string &name, std::string *value, const std::string &help);

  /// Fills the registered strings. On kError, `*error` is one line naming the culprit.
  Result Parse(int argc, char **argv, std::string *error) const;

  /// One line per flag with its default, for `--help` and error messages.
  std::string Usage(const std::string &program) const;

 private:
  struct Flag {
    std::string name;
    std::string *value;
    std::string help;
    std::string default_value;
  };
  const Flag *Find(const std::string &name) const;
  std::vector<Flag> flags_;
};

/// A whole string as a base-10 integer in [lo, hi]; false on anything else ("", "3x", out of range).
bool ParseInt(const std::string &text, long lo, long hi, long *out);

/// Exactly three comma-separated finite numbers ("123.675,116.28,103.53"). Each is read as a double and then rounded
/// to float32, which is what numpy's `np.asarray(values, np.float32)` does with the config's Python floats.
bool ParseFloat3(const std::string &text, std::array<float, 3> *out);

// ------------------------------------------------------------------------------------------------------ files
/// File names (not paths) of the images directly inside `dir` (.jpg .jpeg .png .bmp, any case), sorted bytewise.
/// Returns false with `*error` set when `dir` is missing or not a folder; an empty result is not an error here.
bool ListImages(const std::string &dir, std::vector<std::string> *names, std::string *error);

/// A regular file (after symlinks) that this process can read.
bool IsReadableFile(const std::string &path);

/// `name` without its last extension: "000123.jpg" -> "000123".
std::string FileStem(const std::string &name);

/// `mkdir -p`.
bool MakeDirs(const std::string &dir, std::string *error);

/// Writes `size` bytes to `path` through a temporary sibling and a rename, so `path` is either absent, the old file,
/// or the complete new file: never a truncated one.
bool WriteFileAtomic(const std::string &path, const void *data, size_t size, std::string *error);

// ------------------------------------------------------------------------------------------------------ images
/// `(level - mean[c]) / std[c]` in float32 for each uint8 level and RGB channel. The Python eval path normalises
/// through the same 256-entry float32 table (cv2.LUT), so both give bit-identical inputs.
using NormTable = std::array<std::array<float, 256>, 3>;
NormTable MakeNormTable(const std::array<float, 3> &mean, const std::array<float, 3> &stdev);

/// Reads `path` and makes the network input: imread (colour, BGR) -> RGB -> resize to width x height with bilinear
/// interpolation (skipped when the size already matches, as in Python) -> normalise -> CHW float32, contiguous.
/// Returns false when OpenCV cannot read the file. `*orig_h` / `*orig_w` receive the decoded image size.
bool PreprocessImage(const std::string &path, int height, int width, const NormTable &table,
                     std::vector<float> *chw, int *orig_h, int *orig_w);

}  // namespace fdet

#endif  // FDET_ASCEND310_INFER_INC_UTILS_H_
