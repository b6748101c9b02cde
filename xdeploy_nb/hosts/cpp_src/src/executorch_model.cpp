// model.pte with ExecuTorch's runtime: the program loaded from the bytes whose sha256 was checked (BufferDataLoader),
// `forward` run on tensors made over the host's buffers (no copy), its float32 output copied out.
#include "internal.hpp"
#include "xdeploy/predictor.hpp"

#ifdef XDEPLOY_WITH_EXECUTORCH
#include <executorch/extension/data_loader/buffer_data_loader.h>
#include <executorch/extension/module/module.h>
#include <executorch/extension/tensor/tensor.h>
#endif

#ifdef XDEPLOY_WITH_EXECUTORCH
#include <executorch/runtime/platform/platform.h>
// ExecuTorch's log lines (it logs its CPU probing at Info level) would break the host's one-message errors: its platform
// layer lets an application replace this weak function, and the host's errors carry ExecuTorch's error codes instead.
extern "C" void et_pal_emit_log_message(et_timestamp_t, et_pal_log_level_t, const char*, const char*, size_t, const char*, size_t) {}
#endif

namespace xdeploy {
namespace detail {

#ifdef XDEPLOY_WITH_EXECUTORCH
namespace et = executorch::extension;

struct EtModel::Impl {
  std::vector<std::uint8_t> bytes;  // the program: the loader reads it in place, so it lives as long as the module
  std::string file;
  std::unique_ptr<et::Module> module;
};

EtModel::EtModel(std::vector<std::uint8_t> bytes, const std::string& file) : impl_(std::make_unique<Impl>()) {
  impl_->bytes = std::move(bytes);
  impl_->file = file;
  impl_->module = std::make_unique<et::Module>(std::make_unique<et::BufferDataLoader>(impl_->bytes.data(), impl_->bytes.size()));
  auto e = impl_->module->load_method("forward");
  if (e != executorch::runtime::Error::Ok)
    throw Error("ExecuTorch cannot load " + file + " (error " + std::to_string(static_cast<int>(e)) + ").",
                "Re-export the bundle with the executorch extra of the xdeploy_nb that built this app, or use the onnx model.");
}

EtModel::~EtModel() = default;

std::vector<float> EtModel::run(const std::vector<TensorView>& inputs, std::vector<std::int64_t>& shape) {
  using executorch::aten::ScalarType;
  std::vector<et::TensorPtr> tensors;
  std::vector<executorch::runtime::EValue> args;
  for (const auto& t : inputs) {
    std::vector<executorch::aten::SizesType> sizes(t.shape.begin(), t.shape.end());
    ScalarType st = t.type == 0 ? ScalarType::Byte : t.type == 1 ? ScalarType::Long : ScalarType::Float;
    tensors.push_back(et::from_blob(t.data, sizes, st));
    args.emplace_back(tensors.back());
  }
  auto r = impl_->module->forward(args);
  if (!r.ok())
    throw Error(impl_->file + " could not be run by ExecuTorch (error " + std::to_string(static_cast<int>(r.error())) + ").",
                "Check the inputs against the manifest's inputs; images larger than the model's input size need its preprocessing first.");
  const auto& outs = r.get();
  if (outs.empty() || !outs[0].isTensor())
    throw Error(impl_->file + " returned no tensor.", "Re-export the bundle: its model file and manifest.json do not belong together.");
  const auto& out = outs[0].toTensor();
  if (out.scalar_type() != ScalarType::Float)
    throw Error(impl_->file + " returns another type than float32.", "Re-export the bundle: its model file and manifest.json do not belong together.");
  shape.assign(out.sizes().begin(), out.sizes().end());
  const float* d = out.const_data_ptr<float>();
  return std::vector<float>(d, d + out.numel());
}

#else

struct EtModel::Impl {};

EtModel::EtModel(std::vector<std::uint8_t>, const std::string& file) {
  throw Error("This C++ host was built without ExecuTorch, so it cannot run " + file + ".",
              "Use the onnx model (the default), or build with -DXDEPLOY_EXECUTORCH=ON -Dexecutorch_DIR=<the executorch wheel's "
              "share/cmake> (`xdeploy_nb.hosts.cpp.host_build(executorch=True)`).");
}
EtModel::~EtModel() = default;
std::vector<float> EtModel::run(const std::vector<TensorView>&, std::vector<std::int64_t>&) { return {}; }

#endif

}  // namespace detail
}  // namespace xdeploy
