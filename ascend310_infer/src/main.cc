/**
 * C++ inference of an exported detector on a folder of images, on MindSpore Lite's C++ API.
 *
 * For every image `<stem>.<ext>` it writes the model's two outputs, raw float32 without header:
 *   <result_path>/<stem>_0.bin  boxes  [1, A, 4]  normalised x1, y1, x2, y2
 *   <result_path>/<stem>_1.bin  scores [1, A, C]  per-class probabilities
 * which postprocess.py turns into COCO detections. Preprocessing equals the Python eval path (see inc/utils.h).
 *
 * On MindSpore 2.x the C++ runtime is MindSpore Lite: `Model::Build(path, kMindIR, context)` with an
 * AscendDeviceInfo (the device id from --device_id) for --device_type Ascend310, a CPUDeviceInfo otherwise.
 *   Ascend310  MindSpore Lite's cloud-side inference package for Ascend (of the MindSpore version that exported the
 *              model) loads export.py's MINDIR as it is.
 *   CPU        the registry's mindspore-lite 2.0 wheel cannot read a MindIR written by MindSpore 2.x: the file is a
 *              Lite MindIR made by tools/convert_onnx from the exported ONNX (scripts/run_infer_cpp.sh does it).
 */
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "include/api/context.h"
#include "include/api/model.h"
#include "include/api/status.h"
#include "include/api/types.h"
#include "inc/utils.h"

namespace ms = mindspore;

namespace {

constexpr int kUsageError = 2;  // bad flags, missing model, empty or missing image folder
constexpr int kRunError = 1;    // the model or the device failed

struct Options {
  std::string mindir_path;
  std::string dataset_path;
  std::string device_type = "CPU";
  long device_id = 0;
  std::string result_path = "./result_Files";
  std::string time_path = "./time_Result";
  std::array<float, 3> mean{};
  std::array<float, 3> stdev{};
  long threads = 2;
};

// Returns -1 to go on, else the exit code.
int ParseOptions(int argc, char **argv, Options *opt) {
  std::string mindir_path, dataset_path, device_type = "CPU", device_id = "0";
  std::string result_path = "./result_Files", time_path = "./time_Result";
  std::string mean = "123.675,116.28,103.53", stdev = "58.395,57.12,57.375", threads = "2";
  fdet::FlagParser parser;
  parser.Add("mindir_path", &mindir_path, "model file (Lite build: a Lite MindIR from tools/convert_onnx)");
  parser.Add("dataset_path", &dataset_path, "folder of images (.jpg .jpeg .png .bmp), processed in name order");
  parser.Add("device_type", &device_type, "CPU | Ascend310");
  parser.Add("device_id", &device_id, "device id (Ascend310)");
  parser.Add("result_path", &result_path, "where <stem>_0.bin (boxes) and <stem>_1.bin (scores) go");
  parser.Add("time_path", &time_path, "where test_perform_static.txt goes");
  parser.Add("mean", &mean, "per-channel mean, RGB, pixel units");
  parser.Add("std", &stdev, "per-channel std, RGB, pixel units");
  parser.Add("threads", &threads, "CPU threads");

  std::string program = argc > 0 ? argv[0] : "main";
  std::string error;
  switch (parser.Parse(argc, argv, &error)) {
    case fdet::FlagParser::Result::kHelp:
      std::cout << parser.Usage(program);
      return 0;
    case fdet::FlagParser::Result::kError:
      std::cerr << "error: " << error << " (see " << program << " --help)" << std::endl;
      return kUsageError;
    case fdet::FlagParser::Result::kOk:
      break;
  }
  auto fail = [](const std::string &message) {
    std::cerr << "error: " << message << std::endl;
    return kUsageError;
  };
  if (mindir_path.empty()) return fail("--mindir_path is required");
  if (dataset_path.empty()) return fail("--dataset_path is required");
  if (device_type != "CPU" && device_type != "Ascend310") {
    return fail("--device_type must be CPU or Ascend310, got '" + device_type + "'");
  }
  if (!fdet::ParseInt(device_id, 0, 1023, &opt->device_id)) return fail("--device_id: not a device id: " + device_id);
  if (!fdet::ParseInt(threads, 1, 1024, &opt->threads)) return fail("--threads: not a thread count: " + threads);
  if (!fdet::ParseFloat3(mean, &opt->mean)) return fail("--mean needs three comma-separated numbers, got " + mean);
  if (!fdet::ParseFloat3(stdev, &opt->stdev)) return fail("--std needs three comma-separated numbers, got " + stdev);
  for (float s : opt->stdev) {
    if (!(s > 0.0f)) return fail("--std values must be positive, got " + stdev);
  }
  if (!fdet::IsReadableFile(mindir_path)) return fail("model file not found or unreadable: " + mindir_path);
  opt->mindir_path = mindir_path;
  opt->dataset_path = dataset_path;
  opt->device_type = device_type;
  opt->result_path = result_path;
  opt->time_path = time_path;
  return -1;
}

std::string ShapeText(const std::vector<int64_t> &shape) {
  std::ostringstream out;
  out << "[";
  for (size_t i = 0; i < shape.size(); ++i) out << (i ? ", " : "") << shape[i];
  out << "]";
  return out.str();
}

ms::Status BuildModel(const Options &opt, ms::Model *model) {
  auto context = std::make_shared<ms::Context>();
  if (opt.device_type == "Ascend310") {
    // Compiled in every build (Lite's headers declare AscendDeviceInfo); runs with Lite's Ascend package only.
    auto ascend = std::make_shared<ms::AscendDeviceInfo>();
    ascend->SetDeviceID(static_cast<uint32_t>(opt.device_id));
    context->MutableDeviceInfo().push_back(ascend);
  } else {
    context->SetThreadNum(static_cast<int32_t>(opt.threads));
    auto cpu = std::make_shared<ms::CPUDeviceInfo>();
    cpu->SetEnableFP16(false);  // float32, as in Python
    context->MutableDeviceInfo().push_back(cpu);
  }
  // Lite builds from the file itself (its Build(GraphCell) answers "Unsupported Feature").
  return model->Build(opt.mindir_path, ms::ModelType::kMindIR, context);
}

/// Which of the model's outputs are boxes and scores: by name when the names say so, else by shape (boxes end in 4).
struct OutputIndex {
  size_t boxes = 0;
  size_t scores = 0;
};

bool IdentifyOutputs(const std::vector<ms::MSTensor> &outputs, OutputIndex *index, std::string *error) {
  std::ostringstream listing;
  for (const ms::MSTensor &t : outputs) listing << " '" << t.Name() << "' " << ShapeText(t.Shape());
  auto fail = [&](const std::string &why) {
    *error = why + "; the model's outputs:" + listing.str();
    return false;
  };
  if (outputs.size() != 2) return fail("expected 2 outputs (boxes, scores), got " + std::to_string(outputs.size()));
  for (const ms::MSTensor &t : outputs) {
    const std::vector<int64_t> &s = t.Shape();
    if (s.size() != 3 || s[0] != 1 || s[1] <= 0 || s[2] <= 0) return fail("outputs must be [1, A, N]");
    if (t.DataType() != ms::DataType::kNumberTypeFloat32) return fail("outputs must be float32");
  }
  if (outputs[0].Name() == "boxes" && outputs[1].Name() == "scores") {
    *index = {0, 1};
  } else if (outputs[0].Name() == "scores" && outputs[1].Name() == "boxes") {
    *index = {1, 0};
  } else {
    bool four0 = outputs[0].Shape()[2] == 4, four1 = outputs[1].Shape()[2] == 4;
    if (four0 == four1) return fail("cannot tell boxes from scores: names are not boxes/scores and shapes agree");
    *index = four0 ? OutputIndex{0, 1} : OutputIndex{1, 0};
  }
  const std::vector<int64_t> &boxes = outputs[index->boxes].Shape(), &scores = outputs[index->scores].Shape();
  if (boxes[2] != 4) return fail("the boxes output must end in 4");
  if (boxes[1] != scores[1]) return fail("boxes and scores disagree on the number of anchors");
  return true;
}

struct Timing {
  double preprocess_ms = 0.0;
  double infer_ms = 0.0;
  size_t count = 0;
};

double MsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
}

bool WriteTiming(const Options &opt, const Timing &timing, std::string *error) {
  double n = timing.count ? static_cast<double>(timing.count) : 1.0;
  std::ostringstream text;
  text << "device type: " << opt.device_type << "\n";
  text << "NN inference cost average time: " << timing.infer_ms / n << " ms of infer_count " << timing.count << "\n";
  text << "preprocess cost average time: " << timing.preprocess_ms / n << " ms of infer_count " << timing.count
       << "\n";
  std::cout << text.str();
  std::string body = text.str();
  return fdet::MakeDirs(opt.time_path, error) &&
         fdet::WriteFileAtomic(opt.time_path + "/test_perform_static.txt", body.data(), body.size(), error);
}

}  // namespace

int main(int argc, char **argv) {
  Options opt;
  int code = ParseOptions(argc, argv, &opt);
  if (code >= 0) return code;

  std::vector<std::string> images;
  std::string error;
  if (!fdet::ListImages(opt.dataset_path, &images, &error)) {
    std::cerr << "error: " << error << std::endl;
    return kUsageError;
  }
  if (images.empty()) {
    std::cerr << "error: no .jpg/.jpeg/.png/.bmp images in " << opt.dataset_path << std::endl;
    return kUsageError;
  }
  // Two images with one stem ("a.jpg", "a.png") would write the same .bin files.
  std::map<std::string, std::string> by_stem;
  for (const std::string &name : images) {
    auto inserted = by_stem.emplace(fdet::FileStem(name), name);
    if (!inserted.second) {
      std::cerr << "error: " << inserted.first->second << " and " << name << " share a stem; their results would "
                << "overwrite each other" << std::endl;
      return kUsageError;
    }
  }
  if (!fdet::MakeDirs(opt.result_path, &error)) {
    std::cerr << "error: " << error << std::endl;
    return kRunError;
  }

  ms::Model model;
  ms::Status status = BuildModel(opt, &model);
  if (status != ms::kSuccess) {
    std::cerr << "error: cannot build the model " << opt.mindir_path << " for " << opt.device_type << ": "
              << status.ToString() << std::endl;
    if (opt.device_type == "CPU") {
      std::cerr << "hint: the mindspore-lite 2.0 wheel reads Lite MindIR files only: convert export.py's ONNX with "
                << "build/convert_onnx MODEL.onnx MODEL_lite.mindir (scripts/run_infer_cpp.sh does it)" << std::endl;
    } else {
      std::cerr << "hint: Ascend310 needs MindSpore Lite's Ascend package of the MindSpore version that exported "
                << "the model (build.sh LITE_PATH), with CANN installed" << std::endl;
    }
    return kRunError;
  }
  std::vector<ms::MSTensor> model_inputs = model.GetInputs();
  if (model_inputs.size() != 1) {
    std::cerr << "error: expected one model input, got " << model_inputs.size() << std::endl;
    return kRunError;
  }
  const ms::MSTensor &input = model_inputs[0];
  const std::vector<int64_t> in_shape = input.Shape();
  if (in_shape.size() != 4 || in_shape[0] != 1 || in_shape[1] != 3 || in_shape[2] <= 0 || in_shape[3] <= 0 ||
      input.DataType() != ms::DataType::kNumberTypeFloat32) {
    std::cerr << "error: the model input '" << input.Name() << "' is " << ShapeText(in_shape)
              << "; expected float32 NCHW [1, 3, H, W] (export with batch 1; convert ONNX with input format NCHW)"
              << std::endl;
    return kRunError;
  }
  const int height = static_cast<int>(in_shape[2]), width = static_cast<int>(in_shape[3]);
  OutputIndex out_index;
  if (!IdentifyOutputs(model.GetOutputs(), &out_index, &error)) {
    std::cerr << "error: " << error << std::endl;
    return kRunError;
  }
  {
    std::vector<ms::MSTensor> outs = model.GetOutputs();
    std::cout << "model " << opt.mindir_path << ": input '" << input.Name() << "' " << ShapeText(in_shape)
              << ", boxes '" << outs[out_index.boxes].Name() << "' " << ShapeText(outs[out_index.boxes].Shape())
              << ", scores '" << outs[out_index.scores].Name() << "' " << ShapeText(outs[out_index.scores].Shape())
              << "; " << images.size() << " images from " << opt.dataset_path << std::endl;
  }

  const fdet::NormTable table = fdet::MakeNormTable(opt.mean, opt.stdev);
  std::vector<float> chw;
  Timing timing;
  std::vector<std::string> unreadable;
  for (const std::string &name : images) {
    const std::string path = opt.dataset_path + "/" + name;
    auto start = std::chrono::steady_clock::now();
    int orig_h = 0, orig_w = 0;
    if (!fdet::PreprocessImage(path, height, width, table, &chw, &orig_h, &orig_w)) {
      std::cerr << "warning: cannot read image " << path << ": skipped" << std::endl;
      unreadable.push_back(name);
      continue;
    }
    std::vector<ms::MSTensor> inputs;
    inputs.emplace_back(input.Name(), input.DataType(), in_shape, chw.data(), chw.size() * sizeof(float));
    timing.preprocess_ms += MsSince(start);

    std::vector<ms::MSTensor> outputs;
    start = std::chrono::steady_clock::now();
    status = model.Predict(inputs, &outputs);
    timing.infer_ms += MsSince(start);
    if (status != ms::kSuccess) {
      std::cerr << "error: inference failed on " << path << ": " << status.ToString() << std::endl;
      return kRunError;
    }
    if (outputs.size() != 2) {
      std::cerr << "error: the model returned " << outputs.size() << " outputs on " << path << std::endl;
      return kRunError;
    }
    const std::string stem = opt.result_path + "/" + fdet::FileStem(name);
    const size_t order[2] = {out_index.boxes, out_index.scores};
    for (size_t k = 0; k < 2; ++k) {
      const ms::MSTensor &out = outputs[order[k]];
      std::shared_ptr<const void> data = out.Data();  // host copy for device tensors
      size_t expected = static_cast<size_t>(out.ElementNum()) * sizeof(float);
      if (data == nullptr || out.DataSize() != expected) {
        std::cerr << "error: output " << order[k] << " of " << path << " has no float32 data" << std::endl;
        return kRunError;
      }
      if (!fdet::WriteFileAtomic(stem + "_" + std::to_string(k) + ".bin", data.get(), out.DataSize(), &error)) {
        std::cerr << "error: " << error << std::endl;
        return kRunError;
      }
    }
    ++timing.count;
    std::cout << "[" << timing.count + unreadable.size() << "/" << images.size() << "] " << name << " (" << orig_w
              << "x" << orig_h << ")" << std::endl;
  }

  if (!WriteTiming(opt, timing, &error)) {
    std::cerr << "error: " << error << std::endl;
    return kRunError;
  }
  std::cout << "results of " << timing.count << " images in " << opt.result_path << std::endl;
  if (!unreadable.empty()) {
    std::cerr << "warning: " << unreadable.size() << " unreadable image(s) skipped:";
    for (const std::string &name : unreadable) std::cerr << " " << name;
    std::cerr << std::endl;
  }
  return timing.count > 0 ? 0 : kRunError;
}
