// xdeploy: run an xdeploy_nb bundle (manifest.json + preprocess.onnx + model.onnx) from C++17, with ONNX Runtime.
// The answers are the Python Predictor's (xdeploy_nb.runtime, preprocess='graph'): same keys, labels and numbers.
#pragma once
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>
#include <nlohmann/json.hpp>

namespace xdeploy {

using Json = nlohmann::ordered_json;  // predictions keep their keys in the Python host's order

// Every failure: what is wrong (problem) and what to do about it (fix), as the Python host words them.
class Error : public std::runtime_error {
 public:
  Error(std::string problem, std::string fix = "");
  const std::string& problem() const noexcept { return problem_; }
  const std::string& fix() const noexcept { return fix_; }
 private:
  std::string problem_, fix_;
};

// A decoded image: height x width x channels uint8 pixels, rows packed (no padding), channels RGB or L.
struct Image {
  int height = 0, width = 0, channels = 0;
  std::vector<std::uint8_t> pixels;
};

// Pillow's default decompression-bomb limit (PIL.Image.MAX_IMAGE_PIXELS).
constexpr std::uint64_t kMaxPixels = 89478485;

// Decode a PNG or JPEG file's bytes and convert them to `mode` ("RGB" or "L") as Pillow's open + convert do.
// Images over max_pixels are refused from the header, before they are decoded.
Image decode_image(const std::vector<std::uint8_t>& bytes, const std::string& mode, std::uint64_t max_pixels = kMaxPixels);
Image read_image_file(const std::string& path, const std::string& mode, std::uint64_t max_pixels = kMaxPixels);

struct Options {
  std::string expected_digest;      // sha256 of manifest.json's bytes (hex, optionally "sha256:..."); empty: not checked
  int threads = 0;                  // intra-op threads of the model; 0: one per CPU
  std::uint64_t max_pixels = kMaxPixels;
  std::string variant = "fp32";     // which variant of the model
  std::string format = "onnx";      // "onnx" (ONNX Runtime), or "executorch" (model.pte; a build with XDEPLOY_EXECUTORCH)
};

class Predictor {
 public:
  // Open the bundle folder: read and check manifest.json, the files' sha256, and open both ONNX models.
  explicit Predictor(const std::string& bundle, Options options = {});
  ~Predictor();
  Predictor(Predictor&&) noexcept;
  Predictor& operator=(Predictor&&) noexcept;
  Predictor(const Predictor&) = delete;
  Predictor& operator=(const Predictor&) = delete;

  const Json& manifest() const;
  std::string kind() const;         // "image", "tabular" or "collab"
  std::string task() const;         // "single_label", "multi_label", "regression" or "segmentation"
  std::string mode() const;         // images: "RGB" or "L"
  std::string device() const;       // where the model runs ("cpu")
  std::string manifest_digest() const;  // "sha256:<hex>" of manifest.json as read

  // Images: decoded pixels (any size, `mode()`'s channels) -> one prediction each.
  std::vector<Json> predict_images(const std::vector<Image>& images, int batch_size = 64);
  Json predict_image(const Image& image);
  // Image files (PNG, JPEG) -> one prediction each; errors name the item.
  std::vector<Json> predict_files(const std::vector<std::string>& paths, int batch_size = 64);
  // Tabular and collab: one JSON object per row (column -> string, number, bool or null for missing).
  std::vector<Json> predict_rows(const std::vector<Json>& rows, int batch_size = 64);
  // The rows of a CSV file with a header, typed as the bundle's columns are (as `xdeploy predict` reads them).
  std::vector<Json> read_csv(const std::string& path) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The image files that `paths` name, folders expanded (recursively, sorted), as `xdeploy predict` finds them.
std::vector<std::string> image_files(const std::vector<std::string>& paths);

// `value` as Python's repr(float) writes it (shortest round-trip digits), e.g. 0.1, 1e-05, 3.0.
std::string python_float(double value);
// `j` as Python's json.dumps(j, indent=indent) writes it (ensure_ascii; floats as python_float).
std::string python_json(const Json& j, int indent = 1);

}  // namespace xdeploy
