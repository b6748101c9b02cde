// Helpers shared by the library's sources (not part of its API).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace xdeploy {
namespace detail {

constexpr std::uint64_t kMaxImageFileBytes = 1ull << 30;   // an image file larger than 1 GiB is refused unread
constexpr std::uint64_t kMaxManifestBytes = 64ull << 20;   // so is a manifest.json over 64 MiB
constexpr std::uint64_t kMaxCsvBytes = 1ull << 30;

// The whole file at `path` (a regular file, at most `cap` bytes).
std::vector<std::uint8_t> read_file(const std::string& path, std::uint64_t cap);
// The file `name` of the folder `dir`: a plain name (no folder, not hidden), a regular file and no symbolic link,
// at most `cap` bytes (and exactly `size` bytes unless size < 0). Errors name what is wrong.
std::vector<std::uint8_t> read_bundle_file(const std::string& dir, const std::string& name, std::uint64_t cap,
                                           std::int64_t size = -1);
std::string sha256_hex(const std::vector<std::uint8_t>& bytes);
// Python's repr of a str: 'text' with escapes, as messages quote names.
std::string py_repr(const std::string& s);
// Python's `_describe` of a path item: its repr, shortened to 80 characters.
std::string describe_path(const std::string& s);
// Python's str(Path(p)): duplicate slashes and "." parts removed, no trailing slash.
std::string normal_path(const std::string& p);
bool valid_utf8(const std::string& s);

}  // namespace detail
}  // namespace xdeploy

#include <memory>

namespace xdeploy {
namespace detail {

// A tensor the model reads: its element type (0 uint8, 1 int64, 2 float32), data and shape.
struct TensorView {
  int type;
  void* data;
  std::vector<std::int64_t> shape;
};

// model.pte run with ExecuTorch's runtime (the executorch wheel's C++ SDK), where the library is built with
// -DXDEPLOY_EXECUTORCH=ON; elsewhere its constructor says how to get it.
class EtModel {
 public:
  EtModel(std::vector<std::uint8_t> bytes, const std::string& file);
  ~EtModel();
  EtModel(const EtModel&) = delete;
  EtModel& operator=(const EtModel&) = delete;
  // The float32 output of `forward` for the inputs (in the manifest's order), and its shape.
  std::vector<float> run(const std::vector<TensorView>& inputs, std::vector<std::int64_t>& shape);
 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace detail
}  // namespace xdeploy
