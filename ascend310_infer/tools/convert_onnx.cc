/**
 * convert_onnx: ONNX -> MindSpore Lite MindIR, with the converter library of the mindspore-lite wheel.
 *
 *   convert_onnx MODEL.onnx OUT.mindir
 *
 * Why: MindSpore Lite 2.0 (the only Lite on the registry) cannot read a MindIR written by MindSpore 2.x, so on the CPU
 * the route is export.py's ONNX -> this tool -> `main --device_type CPU`.
 * The input format is NCHW (Lite's converter defaults to NHWC and would transpose the model input).
 * ONNX Resize nodes must carry mode="nearest" where nearest is meant: Lite reads a Resize without `mode` as bilinear
 * (export.py adds the attribute).
 * The converter writes <prefix>.mindir with mode 0400; this tool converts to a temporary name, makes the file
 * 0644 and renames it over OUT.mindir, so an older (read-only) result is replaced and a failure leaves no partial file.
 */
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "include/api/format.h"
#include "include/api/status.h"
#include "include/api/types.h"
#include "include/registry/converter_context.h"

namespace mindspore {
// The wheel ships libmindspore_converter.so without include/converter.h. This declares the part of the class that
// the tool needs, matching the library's exported symbols (nm -DC libmindspore_converter.so): the class holds one
// std::shared_ptr to its parameters, and its destructor is inline (not exported). Strings cross the library
// boundary as std::vector<char>, so this compiles with either C++ string ABI.
struct ConverterPara;
class Converter {
 public:
  Converter(converter::FmkType fmk_type, const std::vector<char> &model_file, const std::vector<char> &output_file,
            const std::vector<char> &weight_file);
  ~Converter() = default;
  void SetInputFormat(Format format);
  void SetSaveType(ModelType save_type);
  Status Convert();

 private:
  std::shared_ptr<ConverterPara> data_;
};
}  // namespace mindspore

namespace {

std::vector<char> Chars(const std::string &text) { return std::vector<char>(text.begin(), text.end()); }

bool EndsWith(const std::string &text, const std::string &suffix) {
  return text.size() >= suffix.size() && text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace

int main(int argc, char **argv) {
  if (argc != 3 || !EndsWith(argv[2], ".mindir")) {
    std::cerr << "usage: " << (argc ? argv[0] : "convert_onnx") << " MODEL.onnx OUT.mindir" << std::endl;
    return 2;
  }
  const std::string onnx_path = argv[1], out_path = argv[2];
  if (!std::ifstream(onnx_path, std::ios::binary)) {
    std::cerr << "error: ONNX model not found or unreadable: " << onnx_path << std::endl;
    return 2;
  }
  // The converter appends ".mindir" to the prefix it is given.
  const std::string tmp_prefix = out_path.substr(0, out_path.size() - 7) + ".tmp" + std::to_string(getpid());
  const std::string tmp_path = tmp_prefix + ".mindir";

  mindspore::Converter converter(mindspore::converter::kFmkTypeOnnx, Chars(onnx_path), Chars(tmp_prefix), {});
  converter.SetInputFormat(mindspore::NCHW);
  converter.SetSaveType(mindspore::ModelType::kMindIR);
  mindspore::Status status = converter.Convert();
  if (status != mindspore::kSuccess) {
    std::cerr << "error: conversion of " << onnx_path << " failed: " << status.ToString() << std::endl;
    std::remove(tmp_path.c_str());
    return 1;
  }
  if (chmod(tmp_path.c_str(), 0644) != 0 || std::rename(tmp_path.c_str(), out_path.c_str()) != 0) {
    std::cerr << "error: cannot move " << tmp_path << " to " << out_path << ": " << std::strerror(errno)
              << std::endl;
    std::remove(tmp_path.c_str());
    return 1;
  }
  std::cout << "converted " << onnx_path << " -> " << out_path << std::endl;
  return 0;
}
