// The Predictor: manifest.json read and checked as the Python runtime checks it, files loaded by their sha256,
// preprocess.onnx then model.onnx run with ONNX Runtime's C++ API, outputs decoded per task.
#include "xdeploy/predictor.hpp"
#include "internal.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <thread>

#include <sched.h>

#include <onnxruntime_cxx_api.h>

namespace xdeploy {
namespace {

constexpr int kSchemaVersion = 1;     // xdeploy_nb.core.SCHEMA_VERSION
constexpr int kSpecVersion = 1;       // xdeploy_nb.preprocess.SPEC_VERSION
const char* kReexport = "Re-export the bundle with this version of xdeploy_nb.";
const char* kMismatch = "Re-export the bundle: its model file and manifest.json do not belong together.";

Error manifest_error(const std::string& problem) { return Error("manifest.json: " + problem + ".", kReexport); }

// Checked access to the manifest: a missing or mistyped field is a ManifestError naming its path, never a crash.
const Json& at(const Json& j, const std::string& key, const std::string& path) {
  if (!j.is_object()) throw manifest_error(path + " is not an object");
  auto it = j.find(key);
  if (it == j.end()) throw manifest_error((path.empty() ? "" : path + ".") + key + " is missing");
  return *it;
}
std::string str(const Json& j, const std::string& what) {
  if (!j.is_string()) throw manifest_error(what + " is not a string");
  return j.get<std::string>();
}
std::int64_t integer(const Json& j, const std::string& what) {
  if (!j.is_number_integer()) throw manifest_error(what + " is not an integer");
  return j.get<std::int64_t>();
}
double number(const Json& j, const std::string& what) {
  if (!j.is_number()) throw manifest_error(what + " is not a number");
  double v = j.get<double>();
  if (!std::isfinite(v)) throw manifest_error(what + " is not a finite number");
  return v;
}
std::vector<std::string> strings(const Json& j, const std::string& what) {
  if (!j.is_array()) throw manifest_error(what + " is not a list");
  std::vector<std::string> out;
  for (const auto& v : j) out.push_back(str(v, what + " item"));
  return out;
}
std::string py_list(const std::vector<std::string>& v) {
  std::string s = "[";
  for (std::size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + detail::py_repr(v[i]);
  return s + "]";
}
std::string shape_text(const Json& shape) {
  std::string s = "[";
  bool first = true;
  for (const auto& d : shape) { s += (first ? "" : ", ") + (d.is_string() ? d.get<std::string>() : d.dump()); first = false; }
  return s + "]";
}

int cpus() {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof set, &set) == 0) return std::max(1, CPU_COUNT(&set));
  return std::max(1u, std::thread::hardware_concurrency());
}

const char* ort_type(ONNXTensorElementDataType t) {
  switch (t) {
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT8: return "tensor(uint8)";
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT64: return "tensor(int64)";
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT: return "tensor(float)";
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT16: return "tensor(float16)";
    default: return "tensor(other)";
  }
}
std::string manifest_type(const std::string& dtype) {
  if (dtype == "uint8") return "tensor(uint8)";
  if (dtype == "int64") return "tensor(int64)";
  if (dtype == "float32") return "tensor(float)";
  if (dtype == "float16") return "tensor(float16)";
  throw manifest_error("dtype " + detail::py_repr(dtype) + " is not uint8, int64, float32 or float16");
}

// A category value as Python compares dict keys: (is it a bool, the value); numbers by value.
bool same_value(const Json& a, const Json& b) {
  if (a.is_boolean() || b.is_boolean()) return a.is_boolean() && b.is_boolean() && a.get<bool>() == b.get<bool>();
  if (a.is_string() || b.is_string()) return a.is_string() && b.is_string() && a.get_ref<const std::string&>() == b.get_ref<const std::string&>();
  if (a.is_number() && b.is_number()) {
    if (a.is_number_integer() && b.is_number_integer()) {
      if (a.is_number_unsigned() || b.is_number_unsigned()) return a.get<std::uint64_t>() == b.get<std::uint64_t>() && a.get<double>() >= 0 && b.get<double>() >= 0;
      return a.get<std::int64_t>() == b.get<std::int64_t>();
    }
    return a.get<double>() == b.get<double>();
  }
  return false;
}

// Python's repr of a row value, for messages.
std::string value_repr(const Json& v) {
  if (v.is_string()) return detail::py_repr(v.get<std::string>());
  if (v.is_boolean()) return v.get<bool>() ? "True" : "False";
  if (v.is_null()) return "None";
  if (v.is_number_float()) {
    double d = v.get<double>();
    if (std::isnan(d)) return "nan";
    if (std::isinf(d)) return d > 0 ? "inf" : "-inf";
    return python_float(d);
  }
  return v.dump();
}

bool is_missing(const Json& v) { return v.is_null() || (v.is_number_float() && std::isnan(v.get<double>())); }

// Python's float(text): surrounding whitespace, underscores between digits, inf/infinity/nan in any case.
std::optional<double> py_float(const std::string& text) {
  std::size_t a = text.find_first_not_of(" \t\n\r\f\v"), b = text.find_last_not_of(" \t\n\r\f\v");
  if (a == std::string::npos) return std::nullopt;
  std::string s = text.substr(a, b - a + 1), lower;
  for (char c : s) lower += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  std::string body = lower[0] == '+' || lower[0] == '-' ? lower.substr(1) : lower;
  double sign = lower[0] == '-' ? -1.0 : 1.0;
  if (body == "inf" || body == "infinity") return sign * std::numeric_limits<double>::infinity();
  if (body == "nan") return std::numeric_limits<double>::quiet_NaN();
  std::string clean;
  bool digits = false, dot = false, exp = false;
  for (std::size_t i = 0; i < body.size(); ++i) {
    char c = body[i];
    if (std::isdigit(static_cast<unsigned char>(c))) { digits = true; clean += c; }
    else if (c == '_') {
      if (i == 0 || i + 1 >= body.size() || !std::isdigit(static_cast<unsigned char>(body[i - 1])) ||
          !std::isdigit(static_cast<unsigned char>(body[i + 1]))) return std::nullopt;
    } else if (c == '.' && !dot && !exp) { dot = true; clean += c; }
    else if (c == 'e' && digits && !exp) {
      exp = true; clean += c;
      if (i + 1 < body.size() && (body[i + 1] == '+' || body[i + 1] == '-')) clean += body[++i];
      if (i + 1 >= body.size()) return std::nullopt;
    } else return std::nullopt;
  }
  if (!digits) return std::nullopt;
  char* end = nullptr;
  double v = std::strtod(clean.c_str(), &end);
  if (end != clean.c_str() + clean.size()) return std::nullopt;
  return sign * v;
}

// Python's `_csv_number`: an int if the text is digits (after a sign), else a float if it reads as one, else the text.
Json csv_number(const std::string& v) {
  std::size_t a = v.find_first_not_of(" \t\n\r\f\v"), b = v.find_last_not_of(" \t\n\r\f\v");
  std::string t = a == std::string::npos ? "" : v.substr(a, b - a + 1);
  std::size_t k = t.find_first_not_of("+-");
  std::string d = k == std::string::npos ? "" : t.substr(k);
  if (!d.empty() && std::all_of(d.begin(), d.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    bool neg = std::count(t.begin(), t.begin() + k, '-') % 2 == 1;
    if (k <= 1) {
      try { return Json(neg ? -std::stoll(d) : std::stoll(d)); } catch (...) { return Json(std::strtod(t.c_str(), nullptr)); }
    }
  }
  if (auto f = py_float(v)) return Json(*f);
  return Json(v);
}

struct Fill { double value; std::string flag; };

}  // namespace

struct Predictor::Impl {
  std::string dir;
  Options opt;
  Json m;
  std::string digest, kind, task, mode, activation = "softmax";
  double threshold = 0.5;
  std::vector<std::string> labels;
  // model
  std::vector<std::string> in_names;
  Json in_shape;                        // the first input's shape, as the manifest says
  std::string out_name;
  std::vector<std::int64_t> out_dims;   // the output's shape after [batch]: [n] or [n, H, W] (-1: any)
  std::int64_t fixed_batch = -1;
  // images
  std::string graph_in, graph_out;
  int channels = 3;
  // tables
  std::vector<std::string> x_cat, x_cont, columns;
  std::map<std::string, Fill> fills;
  std::map<std::string, Json> categories;
  // ONNX Runtime (no global state: each Predictor owns its environment and sessions)
  Ort::Env env{nullptr};
  Ort::Session model{nullptr}, graph{nullptr};
  Ort::MemoryInfo mem{nullptr};
  std::unique_ptr<detail::EtModel> et;  // format "executorch": model.pte instead of the ONNX model
  std::string model_file = "model.onnx";

  void read_manifest();
  void check_image();
  void check_tabular(bool collab);
  std::vector<std::uint8_t> checked(const Json& entry, const std::string& what);
  Ort::Session open(const std::vector<std::uint8_t>& bytes, const std::string& file, int threads);
  void check_session(const std::string& file);
  std::vector<float> run(std::vector<Ort::Value>& feeds, std::size_t n, std::vector<std::int64_t>& dims);
  std::vector<Json> decode(const std::vector<float>& out, std::size_t n, const std::vector<std::int64_t>& dims);
  std::vector<std::uint8_t> pregraph(const Image& img);
  std::vector<Json> predict_pixels(const std::vector<std::vector<std::uint8_t>>& inputs);
  // `n` images, `batch_size` at a time (a fixed batch size wins), image i's model input made by `prepare(i)`
  template <class Prepare>
  std::vector<Json> predict_images_by(std::size_t n, int batch_size, const std::string& fix, Prepare prepare);
};

void Predictor::Impl::read_manifest() {
  std::string f = dir + "/manifest.json";
  std::vector<std::uint8_t> bytes;
  try {
    bytes = detail::read_bundle_file(dir, "manifest.json", detail::kMaxManifestBytes);
  } catch (const Error& e) {
    if (e.problem().find("lacks manifest.json") != std::string::npos)
      throw Error(dir + " has no manifest.json, so it is not a bundle.", "Point to a folder written by `export_bundle`.");
    throw;
  }
  digest = detail::sha256_hex(bytes);
  if (!opt.expected_digest.empty()) {
    std::string want = opt.expected_digest.rfind("sha256:", 0) == 0 ? opt.expected_digest.substr(7) : opt.expected_digest;
    std::transform(want.begin(), want.end(), want.begin(), [](unsigned char c) { return std::tolower(c); });
    if (want != digest)
      throw Error("The bundle's manifest.json has the sha256 " + digest + ", not the expected " + want +
                      ": it is another bundle, or it was changed.",
                  "Ship the bundle you built the app for, or update the expected digest (xdeploy::Options::expected_digest).");
  }
  std::string text(bytes.begin(), bytes.end());
  if (!detail::valid_utf8(text)) throw Error(f + " is not valid JSON (UnicodeDecodeError).", "Re-export the bundle; the file is damaged.");
  try {
    m = Json::parse(text);
  } catch (const Json::exception& e) {
    throw Error(f + " is not valid JSON (" + std::string(e.what()).substr(0, 200) + ").", "Re-export the bundle; the file is damaged.");
  }
  if (!m.is_object()) throw manifest_error("is not a JSON object");
  const Json& sv = at(m, "schema_version", "");
  if (sv.is_number_integer() && sv.get<std::int64_t>() > kSchemaVersion)
    throw Error("The bundle uses manifest schema " + sv.dump() + "; this C++ host reads up to " + std::to_string(kSchemaVersion) + ".",
                "Upgrade xdeploy_nb and write the C++ project again (`xdeploy cpp BUNDLE OUT`).");
  if (integer(sv, "schema_version") < 1) throw manifest_error("schema_version is not a version (an integer >= 1)");
  if (str(at(m, "schema", ""), "schema") != "xdeploy_nb.bundle") throw manifest_error("schema is not 'xdeploy_nb.bundle'");
  task = str(at(m, "task", ""), "task");
  static const std::set<std::string> tasks{"single_label", "multi_label", "regression", "segmentation"};
  if (!tasks.count(task))
    throw Error("manifest.json: the task " + detail::py_repr(task) + " is not one this C++ host serves (it serves single_label, "
                "multi_label, regression and segmentation).", "Serve it with the Python Predictor, or upgrade xdeploy_nb.");
  const Json& pre = at(m, "preprocessing", "");
  kind = str(at(pre, "kind", "preprocessing"), "preprocessing.kind");
  if (kind == "text")
    throw Error("This is a text bundle, which the C++ host does not serve: a text model's input is fastai's tokenisation "
                "(its rules and vocabulary), which xdeploy_nb implements in Python only.",
                "Serve text bundles with the Python Predictor (`xdeploy predict`, `xdeploy serve`).");
  if (kind != "image" && kind != "tabular" && kind != "collab")
    throw Error("manifest.json: the input kind " + detail::py_repr(kind) + " is not one this C++ host serves (image, tabular, collab).",
                "Serve it with the Python Predictor, or upgrade xdeploy_nb.");
  const Json& spec = at(pre, "spec", "preprocessing");
  if (!spec.is_object()) throw manifest_error("preprocessing has no 'spec', so inputs cannot be prepared");
  if (spec.contains("version")) {
    std::int64_t v = integer(spec["version"], "preprocessing.spec.version");
    if (v > kSpecVersion)
      throw Error("manifest.json: the preprocessing spec has version " + std::to_string(v) + "; this C++ host reads up to " +
                      std::to_string(kSpecVersion) + ".", "Upgrade xdeploy_nb and write the C++ project again (`xdeploy cpp BUNDLE OUT`).");
  }
  const Json& ins = at(m, "inputs", "");
  if (!ins.is_array() || ins.empty()) throw manifest_error("inputs is not a list of inputs");
  for (const auto& i : ins) {
    in_names.push_back(str(at(i, "name", "inputs[]"), "inputs[].name"));
    manifest_type(str(at(i, "dtype", "inputs[]"), "inputs[].dtype"));
    const Json& s = at(i, "shape", "inputs[]");
    if (!s.is_array() || s.empty()) throw manifest_error("an input's shape is not a list");
    for (const auto& d : s) if (!(d.is_string() || (d.is_number_integer() && d.get<std::int64_t>() >= 1))) throw manifest_error("an input's shape holds " + d.dump());
  }
  in_shape = ins[0]["shape"];
  if (in_shape[0].is_number_integer()) fixed_batch = in_shape[0].get<std::int64_t>();
  const Json& outs = at(m, "outputs", "");
  std::size_t rank = task == "segmentation" ? 4 : 2;
  if (!outs.is_array() || outs.size() != 1 || !at(outs[0], "shape", "outputs[0]").is_array() || outs[0]["shape"].size() != rank)
    throw manifest_error(std::string("a bundle has one output, of shape ") + (rank == 2 ? "[batch, n]" : "[batch, n, H, W]"));
  out_name = str(at(outs[0], "name", "outputs[0]"), "outputs[0].name");
  if (str(at(outs[0], "dtype", "outputs[0]"), "outputs[0].dtype") != "float32")
    throw Error("manifest.json: the output is " + outs[0]["dtype"].get<std::string>() + "; the C++ host reads float32 outputs.",
                "Use the fp32 model (the default variant).");
  for (std::size_t k = 1; k < rank; ++k) {
    const Json& d = outs[0]["shape"][k];
    if (d.is_number_integer() && d.get<std::int64_t>() < 1) throw manifest_error("the output's shape holds " + d.dump());
    out_dims.push_back(d.is_number_integer() ? d.get<std::int64_t>() : -1);
  }
  activation = str(at(outs[0], "activation", "outputs[0]"), "outputs[0].activation");
  if (activation != "softmax" && activation != "sigmoid" && activation != "none") throw manifest_error("the output's activation is not softmax, sigmoid or none");
  if (outs[0].contains("threshold")) threshold = number(outs[0]["threshold"], "outputs[0].threshold");
  labels = strings(at(m, "labels", ""), "labels");
  if (task != "regression" && labels.empty()) throw Error("manifest.json: a classification bundle has no labels.", "Re-export the bundle.");
  if ((!labels.empty() || task != "regression") && out_dims[0] >= 0 && static_cast<std::size_t>(out_dims[0]) != labels.size())
    throw manifest_error("the output has " + std::to_string(out_dims[0]) + " values per item but there are " + std::to_string(labels.size()) + " labels");
  if (kind == "image") check_image();
  else check_tabular(kind == "collab");
}

void Predictor::Impl::check_image() {
  const Json& ins = m["inputs"];
  const Json& i0 = ins[0];
  if (ins.size() != 1 || i0["dtype"] != "uint8" || i0["shape"].size() != 4 || (i0.contains("layout") && i0["layout"] != "NCHW")) {
    std::string have;
    for (const auto& i : ins) have += (have.empty() ? "" : "; ") + i["name"].get<std::string>() + " " + i["dtype"].get<std::string>() + " " + shape_text(i["shape"]);
    throw manifest_error("an image bundle has one uint8 input of shape [batch, C, H, W], layout NCHW; this one has " + have);
  }
  const Json& pre = m["preprocessing"];
  const Json& input = at(pre["spec"], "input", "preprocessing.spec");
  const Json& md = at(input, "mode", "preprocessing.spec.input");
  mode = md.is_string() ? md.get<std::string>() : "";
  if (mode != "RGB" && mode != "L")
    throw Error("This bundle opens images in mode " + (md.is_string() ? detail::py_repr(mode) : std::string("None")) +
                    ", not 'RGB' or 'L': the C++ host converts decoded images to RGB or L only.", "Serve it with the Python Predictor.");
  channels = mode == "RGB" ? 3 : 1;
  if (!pre.contains("graph") || pre["graph"].is_null()) {
    std::string why = pre.contains("graph_unavailable") && pre["graph_unavailable"].is_string()
                          ? pre["graph_unavailable"].get<std::string>() : "it was exported before xdeploy_nb wrote one";
    throw Error("The bundle " + dir + " has no preprocessing graph (preprocess.onnx), which the C++ host runs to resize and crop "
                "images as Pillow does: " + why + ".",
                "Re-export the bundle with this version of xdeploy_nb and a Resize with BILINEAR or BICUBIC resampling "
                "(fastai's default), or serve it with the Python Predictor.");
  }
}

void Predictor::Impl::check_tabular(bool collab) {
  const Json& spec = m["preprocessing"]["spec"];
  x_cat = strings(at(spec, "x_cat", "preprocessing.spec"), "preprocessing.spec.x_cat");
  x_cont = strings(at(spec, "x_cont", "preprocessing.spec"), "preprocessing.spec.x_cont");
  columns = strings(at(spec, "columns", "preprocessing.spec"), "preprocessing.spec.columns");
  const Json& cats = at(spec, "categories", "preprocessing.spec");
  if (!cats.is_object()) throw manifest_error("preprocessing.spec.categories is not an object");
  for (auto it = cats.begin(); it != cats.end(); ++it) {
    if (!it.value().is_array()) throw manifest_error("the vocabulary of " + detail::py_repr(it.key()) + " is not a list");
    for (const auto& v : it.value()) if (!(v.is_string() || v.is_number() || v.is_boolean())) throw manifest_error("a vocabulary holds " + v.dump());
    categories[it.key()] = it.value();
  }
  const Json& fm = at(spec, "fill_missing", "preprocessing.spec");
  if (!fm.is_array()) throw manifest_error("preprocessing.spec.fill_missing is not a list");
  for (const auto& f : fm) {
    const Json& flag = at(f, "flag", "fill_missing[]");
    if (!flag.is_null() && !flag.is_string()) throw manifest_error("a fill_missing flag is not a string or null");
    fills[str(at(f, "column", "fill_missing[]"), "fill_missing[].column")] = Fill{number(at(f, "value", "fill_missing[]"), "fill_missing[].value"),
                                                                                    flag.is_string() ? flag.get<std::string>() : ""};
  }
  const Json& ins = m["inputs"];
  if (collab) {
    if (ins.size() != 1 || ins[0]["name"] != "x_cat" || ins[0]["dtype"] != "int64" || ins[0]["shape"].size() != 2 || !x_cont.empty())
      throw manifest_error("a collab bundle has one input, x_cat (int64 [batch, 2]), not " + in_names[0]);
    if (ins[0]["shape"][1].is_number_integer() && ins[0]["shape"][1].get<std::size_t>() != x_cat.size())
      throw manifest_error("x_cat has " + ins[0]["shape"][1].dump() + " columns, but the spec names " + std::to_string(x_cat.size()));
  } else {
    std::set<std::pair<std::string, std::string>> have;
    for (const auto& i : ins) if (i["shape"].size() == 2) have.insert({i["name"].get<std::string>(), i["dtype"].get<std::string>()});
    if (ins.size() != 2 || have != std::set<std::pair<std::string, std::string>>{{"x_cat", "int64"}, {"x_cont", "float32"}})
      throw manifest_error("a tabular bundle has the inputs x_cat (int64 [batch, n_cat]) and x_cont (float32 [batch, n_cont])");
    for (const auto& i : ins) {
      const auto& names = i["name"] == "x_cat" ? x_cat : x_cont;
      if (i["shape"][1].is_number_integer() && i["shape"][1].get<std::size_t>() != names.size())
        throw manifest_error(i["name"].get<std::string>() + " has " + i["shape"][1].dump() + " columns, but the spec names " + std::to_string(names.size()));
    }
    for (const auto& [c, f] : fills) {
      if (std::find(x_cont.begin(), x_cont.end(), c) == x_cont.end() || (!f.flag.empty() && std::find(x_cat.begin(), x_cat.end(), f.flag) == x_cat.end()))
        throw manifest_error("fill_missing names " + detail::py_repr(c) + ", which is not a continuous column (or its flag not a category column)");
    }
  }
  for (const auto& c : x_cat) {
    auto it = categories.find(c);
    if (it == categories.end() || it->second.empty() || it->second[0] != "#na#")
      throw manifest_error("the " + std::string(collab ? "" : "category ") + "column " + detail::py_repr(c) +
                           " has no vocabulary starting with '#na#' (code 0: missing or unseen)");
  }
}

std::vector<std::uint8_t> Predictor::Impl::checked(const Json& entry, const std::string& what) {
  std::string file = str(at(entry, "file", what), what + ".file");
  std::string sha = str(at(entry, "sha256", what), what + ".sha256");
  std::int64_t size = integer(at(entry, "size", what), what + ".size");
  if (size < 0) throw manifest_error(what + ".size is negative");
  auto data = detail::read_bundle_file(dir, file, static_cast<std::uint64_t>(size), size);
  if (detail::sha256_hex(data) != sha)
    throw Error(dir + "/" + file + " does not match the sha256 in manifest.json: it is truncated or was changed after export.",
                "Copy the bundle again from its source, or re-export it.");
  return data;
}

Ort::Session Predictor::Impl::open(const std::vector<std::uint8_t>& bytes, const std::string& file, int threads) {
  Ort::SessionOptions so;
  so.SetIntraOpNumThreads(threads);
  so.SetInterOpNumThreads(1);
  so.SetExecutionMode(ExecutionMode::ORT_SEQUENTIAL);
  so.SetLogSeverityLevel(3);
  try {
    return Ort::Session(env, bytes.data(), bytes.size(), so);
  } catch (const Ort::Exception& e) {
    std::string w = e.what();
    if (w.find("xternal") != std::string::npos)
      throw Error(file + " keeps its weights in external data files, which a bundle does not hash, so they are not loaded.",
                  "Re-export the bundle: `export_bundle` writes each ONNX model as one self-contained file.");
    throw Error("onnxruntime " + Ort::GetVersionString() + " cannot load " + file + " on cpu: " + w,
                "Re-export the bundle, or build the app with a newer ONNX Runtime if the model needs one.");
  }
}

void Predictor::Impl::check_session(const std::string& file) {
  Ort::AllocatorWithDefaultOptions alloc;
  std::map<std::string, std::string> have, want;
  for (std::size_t i = 0; i < model.GetInputCount(); ++i)
    have[model.GetInputNameAllocated(i, alloc).get()] = ort_type(model.GetInputTypeInfo(i).GetTensorTypeAndShapeInfo().GetElementType());
  for (const auto& i : m["inputs"]) want[i["name"].get<std::string>()] = manifest_type(i["dtype"].get<std::string>());
  auto text = [](const std::map<std::string, std::string>& d) {
    std::string s = "{";
    for (const auto& [k, v] : d) s += (s.size() > 1 ? ", " : "") + detail::py_repr(k) + ": " + detail::py_repr(v);
    return s + "}";
  };
  if (have != want) throw Error(file + " takes the inputs " + text(have) + ", but manifest.json says " + text(want) + ".", kMismatch);
  std::map<std::string, std::string> outs;
  for (std::size_t i = 0; i < model.GetOutputCount(); ++i)
    outs[model.GetOutputNameAllocated(i, alloc).get()] = ort_type(model.GetOutputTypeInfo(i).GetTensorTypeAndShapeInfo().GetElementType());
  if (!outs.count(out_name) || outs[out_name] != "tensor(float)")
    throw Error(file + " has the outputs " + text(outs) + ", but manifest.json says " + detail::py_repr(out_name) + " (tensor(float)).", kMismatch);
}

Predictor::Predictor(const std::string& bundle, Options options) : impl_(std::make_unique<Impl>()) {
  Impl& p = *impl_;
  p.dir = bundle;
  p.opt = std::move(options);
  if (p.opt.threads < 0) throw Error("threads=" + std::to_string(p.opt.threads) + " is not a positive number of threads.",
                                     "Pass a number >= 1, or 0 for one per CPU.");
  try {
    p.read_manifest();
    // the artifact: the ONNX model of the variant asked for
    const Json& arts = at(p.m, "artifacts", "");
    if (!arts.is_array()) throw manifest_error("artifacts is not a list");
    const Json* art = nullptr;
    std::string have;
    const std::string& fmt = p.opt.format;
    if (fmt != "onnx" && fmt != "executorch")
      throw Error("Unknown format " + detail::py_repr(fmt) + ".", "Use 'onnx' (the default) or 'executorch'.");
    for (const auto& a : arts) {
      if (str(at(a, "format", "artifacts[]"), "artifacts[].format") != fmt) continue;
      std::string v = a.contains("variant") ? str(a["variant"], "artifacts[].variant") : "fp32";
      have += (have.empty() ? "" : ", ") + detail::py_repr(v);
      if (v == p.opt.variant && !art) art = &a;
    }
    if (have.empty()) throw Error("The bundle has no " + fmt + " artifact.", "Re-export it with " + detail::py_repr(fmt) + " among its formats.");
    if (!art) throw Error("The bundle has no " + detail::py_repr(p.opt.variant) + " variant of its " + fmt + " model (it has " + have + ").",
                          "Use a variant the bundle has (--variant), or re-export it with that variant.");
    std::string file = (*art)["file"].get<std::string>();
    auto model_bytes = p.checked(*art, "the " + fmt + " artifact");
    p.model_file = file;
    p.env = Ort::Env(ORT_LOGGING_LEVEL_ERROR, "xdeploy");
    p.mem = Ort::MemoryInfo::CreateCpu(OrtArenaAllocator, OrtMemTypeDefault);
    if (fmt == "executorch") p.et = std::make_unique<detail::EtModel>(std::move(model_bytes), file);
    else {
      p.model = p.open(model_bytes, file, p.opt.threads ? p.opt.threads : cpus());
      p.check_session(file);
    }
    if (p.kind == "image") {
      const Json& g = p.m["preprocessing"]["graph"];
      auto graph_bytes = p.checked(g, "preprocessing.graph");
      p.graph_in = str(at(at(g, "input", "preprocessing.graph"), "name", "preprocessing.graph.input"), "the graph's input name");
      p.graph_out = str(at(at(g, "output", "preprocessing.graph"), "name", "preprocessing.graph.output"), "the graph's output name");
      p.graph = p.open(graph_bytes, g["file"].get<std::string>(), 1);
      Ort::AllocatorWithDefaultOptions alloc;
      bool ok = p.graph.GetInputCount() == 1 && p.graph.GetOutputCount() == 1 &&
                p.graph.GetInputNameAllocated(0, alloc).get() == p.graph_in && p.graph.GetOutputNameAllocated(0, alloc).get() == p.graph_out &&
                p.graph.GetInputTypeInfo(0).GetTensorTypeAndShapeInfo().GetElementType() == ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT8 &&
                p.graph.GetOutputTypeInfo(0).GetTensorTypeAndShapeInfo().GetElementType() == ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT8;
      if (!ok) throw Error(g["file"].get<std::string>() + " does not have the uint8 input and output manifest.json describes.", "Re-export the bundle.");
    }
  } catch (const Json::exception& e) {
    throw manifest_error(std::string("a field has an unexpected type (") + e.what() + ")");
  } catch (const Ort::Exception& e) {
    throw Error(std::string("onnxruntime failed while opening the bundle: ") + e.what(), "Re-export the bundle.");
  }
}

Predictor::~Predictor() = default;
Predictor::Predictor(Predictor&&) noexcept = default;
Predictor& Predictor::operator=(Predictor&&) noexcept = default;

const Json& Predictor::manifest() const { return impl_->m; }
std::string Predictor::kind() const { return impl_->kind; }
std::string Predictor::task() const { return impl_->task; }
std::string Predictor::mode() const { return impl_->mode; }
std::string Predictor::device() const { return "cpu"; }
std::string Predictor::manifest_digest() const { return "sha256:" + impl_->digest; }

// One decoded image through preprocess.onnx: the model's input for it, uint8 [1, C, h, w].
std::vector<std::uint8_t> Predictor::Impl::pregraph(const Image& img) {
  if (img.height <= 0 || img.width <= 0)
    throw Error("The image is empty (" + std::to_string(img.height) + "x" + std::to_string(img.width) + ").", "Pass an image of at least 1x1 pixels.");
  if (img.channels != channels)
    throw Error("The preprocessing graph takes an HxWx" + std::to_string(channels) + " (" + mode + ") image, not one of " +
                    std::to_string(img.channels) + " channels.", "Convert it first (RGB: alpha dropped; L: Pillow's luma).");
  if (img.pixels.size() != static_cast<std::size_t>(img.height) * img.width * img.channels)
    throw Error("The image's pixels do not fill its height x width x channels.", "Pass packed HWC uint8 rows.");
  std::uint64_t n = static_cast<std::uint64_t>(img.height) * img.width;
  if (n > opt.max_pixels) {
    throw Error("The image has " + std::to_string(n) + " pixels, more than the limit of " + std::to_string(opt.max_pixels) +
                    " that guards against decompression bombs.", "Downscale the image first or, if you trust its source, raise the limit: --max-pixels N.");
  }
  std::array<std::int64_t, 3> dims{img.height, img.width, img.channels};
  auto in = Ort::Value::CreateTensor<std::uint8_t>(mem, const_cast<std::uint8_t*>(img.pixels.data()), img.pixels.size(), dims.data(), 3);
  const char* in_n = graph_in.c_str();
  const char* out_n = graph_out.c_str();
  Ort::RunOptions ro;
  ro.SetRunLogSeverityLevel(4);
  auto out = graph.Run(ro, &in_n, &in, 1, &out_n, 1);
  auto info = out[0].GetTensorTypeAndShapeInfo();
  auto shape = info.GetShape();
  for (std::size_t k = 1; k < 4 && k < in_shape.size(); ++k)
    if (shape.size() != 4 || shape[0] != 1 || (in_shape[k].is_number_integer() && shape[k] != in_shape[k].get<std::int64_t>()))
      throw Error("The preprocessing graph made an input of another shape than the model takes.", kMismatch);
  const std::uint8_t* d = out[0].GetTensorData<std::uint8_t>();
  return std::vector<std::uint8_t>(d, d + info.GetElementCount());
}

std::vector<float> Predictor::Impl::run(std::vector<Ort::Value>& feeds, std::size_t n, std::vector<std::int64_t>& dims) {
  std::vector<const char*> names;
  for (const auto& s : in_names) names.push_back(s.c_str());
  const char* out_n = out_name.c_str();
  Ort::RunOptions ro;
  ro.SetRunLogSeverityLevel(4);
  std::vector<Ort::Value> out;
  std::vector<std::int64_t> shape;
  std::vector<float> et_out;
  if (et) {  // the same feeds, as tensors over the same buffers
    std::vector<detail::TensorView> views;
    for (auto& f : feeds) {
      auto fi = f.GetTensorTypeAndShapeInfo();
      auto t = fi.GetElementType();
      views.push_back({t == ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT8 ? 0 : t == ONNX_TENSOR_ELEMENT_DATA_TYPE_INT64 ? 1 : 2,
                       f.GetTensorMutableRawData(), fi.GetShape()});
    }
    et_out = et->run(views, shape);
  } else {
    try {
      out = model.Run(ro, names.data(), feeds.data(), feeds.size(), &out_n, 1);
    } catch (const Ort::Exception& e) {
      throw Error(model_file + " could not be run on cpu: " + e.what(),
                  "Check the inputs against the manifest's inputs (e.g. category codes within each column's vocabulary).");
    }
    shape = out[0].GetTensorTypeAndShapeInfo().GetShape();
  }
  std::size_t per = 1;
  for (std::size_t k = 1; k < shape.size(); ++k) per *= static_cast<std::size_t>(shape[k]);
  if (shape.size() != out_dims.size() + 1 || static_cast<std::size_t>(shape[0]) < n)
    throw Error("The model returns outputs of another shape than manifest.json describes.", kMismatch);
  for (std::size_t k = 0; k < out_dims.size(); ++k)
    if (out_dims[k] >= 0 && shape[k + 1] != out_dims[k]) throw Error("The model returns outputs of another shape than manifest.json describes.", kMismatch);
  if (!labels.empty() && static_cast<std::size_t>(shape[1]) != labels.size())
    throw Error("The model returns " + std::to_string(shape[1]) + " values per item, but manifest.json has " + std::to_string(labels.size()) +
                " labels, one per value.", kMismatch);
  const float* d = et ? et_out.data() : out[0].GetTensorData<float>();
  std::vector<float> res(d, d + n * per);
  std::vector<std::size_t> bad;
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t k = 0; k < per; ++k)
      if (!std::isfinite(res[i * per + k])) { bad.push_back(i); break; }
  if (!bad.empty()) {
    std::string list = "[";
    for (std::size_t i = 0; i < bad.size() && i < 10; ++i) list += (i ? ", " : "") + std::to_string(bad[i]);
    throw Error("The model's outputs for item(s) " + list + "] are not finite (NaN or infinite), so no prediction is made from them.",
                "Check those inputs: values far outside what the model was trained on can overflow it.");
  }
  dims.assign(shape.begin() + 1, shape.end());
  return res;
}

std::vector<Json> Predictor::Impl::decode(const std::vector<float>& out, std::size_t n, const std::vector<std::int64_t>& dims) {
  std::vector<Json> res;
  std::size_t c = static_cast<std::size_t>(dims[0]);
  if (task == "segmentation") {
    std::size_t h = static_cast<std::size_t>(dims[1]), w = static_cast<std::size_t>(dims[2]), hw = h * w;
    for (std::size_t i = 0; i < n; ++i) {
      const float* p = out.data() + i * c * hw;
      std::vector<std::size_t> count(c, 0);
      Json mask = Json::array();
      for (std::size_t y = 0; y < h; ++y) {
        Json row = Json::array();
        for (std::size_t x = 0; x < w; ++x) {
          std::size_t best = 0;
          for (std::size_t k = 1; k < c; ++k) if (p[k * hw + y * w + x] > p[best * hw + y * w + x]) best = k;
          ++count[best];
          row.push_back(static_cast<std::int64_t>(best));
        }
        mask.push_back(std::move(row));
      }
      Json classes = Json::object();
      for (std::size_t k = 0; k < c; ++k) {
        if (!count[k]) continue;
        char buf[64];
        std::snprintf(buf, sizeof buf, "%.6f", static_cast<double>(count[k]) / static_cast<double>(hw));  // Python's round(share, 6)
        classes[labels[k]] = std::strtod(buf, nullptr);
      }
      Json d;
      d["mask"] = std::move(mask);
      d["classes"] = std::move(classes);
      res.push_back(std::move(d));
    }
    return res;
  }
  double cut = threshold;
  if (task == "multi_label" && activation == "none")
    cut = threshold <= 0 ? -INFINITY : threshold >= 1 ? INFINITY : std::log(threshold / (1 - threshold));
  for (std::size_t i = 0; i < n; ++i) {
    const float* r = out.data() + i * c;
    Json probs = Json::array();
    for (std::size_t k = 0; k < c; ++k) probs.push_back(static_cast<double>(r[k]));
    Json d;
    if (task == "single_label") {
      std::size_t best = 0;
      for (std::size_t k = 1; k < c; ++k) if (r[k] > r[best]) best = k;
      d["label"] = labels[best];
      d["index"] = static_cast<std::int64_t>(best);
      d["probs"] = std::move(probs);
    } else if (task == "multi_label") {
      Json on = Json::array();
      for (std::size_t k = 0; k < c; ++k) if (static_cast<double>(r[k]) >= cut) on.push_back(labels[k]);
      d["labels"] = std::move(on);
      d["probs"] = std::move(probs);
    } else {
      d["value"] = c == 1 ? Json(static_cast<double>(r[0])) : std::move(probs);
    }
    res.push_back(std::move(d));
  }
  return res;
}

// Model inputs of `inputs.size()` images (each uint8 [C, h, w]) -> their predictions, batch by batch.
std::vector<Json> Predictor::Impl::predict_pixels(const std::vector<std::vector<std::uint8_t>>& inputs) {
  std::size_t n = inputs.size();
  if (!n) return {};
  std::size_t per = inputs[0].size();
  std::size_t b = fixed_batch > 0 ? static_cast<std::size_t>(fixed_batch) : n;
  std::vector<std::uint8_t> batch(per * b);
  for (std::size_t i = 0; i < b; ++i) std::memcpy(batch.data() + i * per, inputs[std::min(i, n - 1)].data(), per);  // fixed batches: padded with the last
  std::vector<std::int64_t> dims{static_cast<std::int64_t>(b)};
  for (std::size_t k = 1; k < 4; ++k) dims.push_back(in_shape[k].is_number_integer() ? in_shape[k].get<std::int64_t>() : 0);
  if (!in_shape[1].is_number_integer() || !in_shape[2].is_number_integer() || !in_shape[3].is_number_integer()) {
    throw Error("The model's input has sizes chosen at run time; the C++ host feeds fixed-size images.", "Re-export the bundle with a Resize.");
  }
  std::vector<Ort::Value> feeds;
  feeds.push_back(Ort::Value::CreateTensor<std::uint8_t>(mem, batch.data(), batch.size(), dims.data(), dims.size()));
  std::vector<std::int64_t> od;
  auto out = run(feeds, std::min(n, b), od);
  return decode(out, std::min(n, b), od);
}

template <class Prepare>
std::vector<Json> Predictor::Impl::predict_images_by(std::size_t n, int batch_size, const std::string& fix,
                                                     Prepare prepare) {
  if (kind != "image") throw Error("This is a " + kind + " bundle: it takes table rows, not images.", fix);
  if (batch_size < 1) throw Error("batch_size=" + std::to_string(batch_size) + " is not a positive number of items.", "Pass an int >= 1.");
  std::size_t b = fixed_batch > 0 ? static_cast<std::size_t>(fixed_batch) : static_cast<std::size_t>(batch_size);
  std::vector<Json> res;
  for (std::size_t s = 0; s < n; s += b) {
    std::vector<std::vector<std::uint8_t>> xs;
    for (std::size_t i = s; i < std::min(n, s + b); ++i) xs.push_back(prepare(i));
    for (auto& d : predict_pixels(xs)) res.push_back(std::move(d));
  }
  return res;
}

std::vector<Json> Predictor::predict_images(const std::vector<Image>& images, int batch_size) {
  Impl& p = *impl_;
  return p.predict_images_by(images.size(), batch_size, "Use predict_rows.", [&](std::size_t i) {
    try { return p.pregraph(images[i]); }
    catch (const Error& e) { throw Error("Item " + std::to_string(i) + " (a " + std::to_string(images[i].height) + "x" + std::to_string(images[i].width) + " image): " + e.problem(), e.fix()); }
    catch (const Ort::Exception& e) { throw Error("Item " + std::to_string(i) + ": the preprocessing graph failed (" + e.what() + ").", "Re-export the bundle."); }
  });
}

Json Predictor::predict_image(const Image& image) { return predict_images({image}).at(0); }

std::vector<Json> Predictor::predict_files(const std::vector<std::string>& paths, int batch_size) {
  Impl& p = *impl_;
  return p.predict_images_by(paths.size(), batch_size, "Use predict_rows or read_csv.", [&](std::size_t i) {
    std::string where = "Item " + std::to_string(i) + " (" + detail::describe_path(paths[i]) + ")";
    try { return p.pregraph(read_image_file(paths[i], p.mode, p.opt.max_pixels)); }
    catch (const Error& e) { throw Error(where + ": " + e.problem(), e.fix()); }
    catch (const Ort::Exception& e) { throw Error(where + ": the preprocessing graph failed (" + e.what() + ").", "Re-export the bundle."); }
    catch (const std::bad_alloc&) { throw Error(where + ": there is not enough memory to decode it.", "Downscale the image first."); }
  });
}

std::vector<Json> Predictor::predict_rows(const std::vector<Json>& rows, int batch_size) {
  Impl& p = *impl_;
  if (p.kind == "image") throw Error("This is an image bundle: it takes images, not table rows.", "Use predict_files or predict_images.");
  if (batch_size < 1) throw Error("batch_size=" + std::to_string(batch_size) + " is not a positive number of items.", "Pass an int >= 1.");
  constexpr double kF32Max = 3.4028234663852886e38;
  std::size_t nc = p.x_cat.size(), nx = p.x_cont.size();
  std::size_t b = p.fixed_batch > 0 ? static_cast<std::size_t>(p.fixed_batch) : static_cast<std::size_t>(batch_size);
  std::vector<Json> res;
  for (std::size_t s = 0; s < rows.size(); s += b) {
    std::size_t n = std::min(rows.size(), s + b) - s, rb = p.fixed_batch > 0 ? b : n;
    std::vector<std::int64_t> cat(rb * nc, 0);
    std::vector<float> cont(rb * nx, 0.f);
    for (std::size_t k = 0; k < n; ++k) {
      std::size_t i = s + k;
      const Json& row = rows[i];
      if (!row.is_object())
        throw Error("Tabular rows must be dicts (column -> value) or a pandas DataFrame.", "Pass {'island': 'Biscoe', 'bill_length_mm': 40.1, ...} per row.");
      std::vector<std::string> missing;
      for (const auto& c : p.columns) if (!row.contains(c)) missing.push_back(c);
      if (!missing.empty())
        throw Error("Row " + std::to_string(i) + " has no column " + detail::py_repr(missing[0]) +
                        (missing.size() > 1 ? " (and " + std::to_string(missing.size() - 1) + " more)" : "") + ".",
                    "Give every row the columns " + py_list(p.columns) + " (None for an unknown value).");
      Json vals = row;
      for (std::size_t j = 0; j < nx; ++j) {
        const std::string& c = p.x_cont[j];
        const Json& v = row[c];
        double x;
        if (is_missing(v)) x = NAN;
        else if (v.is_boolean()) x = v.get<bool>() ? 1 : 0;
        else if (v.is_number()) x = v.get<double>();
        else if (v.is_string()) {
          auto f = py_float(v.get<std::string>());
          if (!f) throw Error("Row " + std::to_string(i) + ": column " + detail::py_repr(c) + " is " + value_repr(v) + ", which is not a number.",
                              "Pass a number (or None if unknown) for " + detail::py_repr(c) + ".");
          x = *f;
        } else throw Error("Row " + std::to_string(i) + ": column " + detail::py_repr(c) + " is " + v.dump() + ", which is not a number.",
                           "Pass a number (or None if unknown) for " + detail::py_repr(c) + ".");
        if (!std::isnan(x) && !(std::fabs(x) <= kF32Max))
          throw Error("Row " + std::to_string(i) + ": column " + detail::py_repr(c) + " is " + value_repr(v) +
                          ", which is not a finite number that float32 can hold (|x| <= 3.4e38).",
                      "Pass a finite number (or None if unknown) for " + detail::py_repr(c) + ".");
        auto f = p.fills.find(c);
        if (std::isnan(x)) {
          if (f == p.fills.end())
            throw Error("Row " + std::to_string(i) + ": column " + detail::py_repr(c) +
                            " is missing, and the training data had no missing values there to learn a fill from.",
                        "Pass a value for " + detail::py_repr(c) + ", or retrain with missing values in that column.");
          x = f->second.value;
          if (!f->second.flag.empty()) vals[f->second.flag] = true;
        } else if (f != p.fills.end() && !f->second.flag.empty()) vals[f->second.flag] = false;
        cont[k * nx + j] = static_cast<float>(x);
      }
      for (std::size_t j = 0; j < nc; ++j) {
        const std::string& c = p.x_cat[j];
        const Json& v = vals.contains(c) ? vals[c] : Json();
        std::int64_t code = 0;
        if (!is_missing(v)) {
          if (!(v.is_string() || v.is_number() || v.is_boolean()))
            throw Error("Row " + std::to_string(i) + ": column " + detail::py_repr(c) + " is " + v.dump() + ", which is not a category value.",
                        "Pass a string or a number (or None if unknown) for " + detail::py_repr(c) + ".");
          const Json& vocab = p.categories[c];
          for (std::size_t t = 1; t < vocab.size(); ++t) if (same_value(vocab[t], v)) code = static_cast<std::int64_t>(t);  // the last wins, as in a dict
        }
        cat[k * nc + j] = code;
      }
    }
    for (std::size_t k = n; k < rb; ++k) {  // a fixed batch: padded with the last row
      std::copy(cat.begin() + (n - 1) * nc, cat.begin() + n * nc, cat.begin() + k * nc);
      std::copy(cont.begin() + (n - 1) * nx, cont.begin() + n * nx, cont.begin() + k * nx);
    }
    std::vector<Ort::Value> feeds;
    std::array<std::int64_t, 2> dc{static_cast<std::int64_t>(rb), static_cast<std::int64_t>(nc)}, dx{static_cast<std::int64_t>(rb), static_cast<std::int64_t>(nx)};
    for (const auto& name : p.in_names) {
      if (name == "x_cat") feeds.push_back(Ort::Value::CreateTensor<std::int64_t>(p.mem, cat.data(), cat.size(), dc.data(), 2));
      else feeds.push_back(Ort::Value::CreateTensor<float>(p.mem, cont.data(), cont.size(), dx.data(), 2));
    }
    std::vector<std::int64_t> od;
    auto out = p.run(feeds, n, od);
    for (auto& d : p.decode(out, n, od)) res.push_back(std::move(d));
  }
  return res;
}

// The CSV reader of `xdeploy predict` (Python's csv module, excel dialect; `_csv_value` types the cells).
std::vector<Json> Predictor::read_csv(const std::string& path) const {
  const Impl& p = *impl_;
  auto lower = path;
  std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
  if (lower.size() < 4 || lower.substr(lower.size() - 4) != ".csv")
    throw Error("A tabular model takes its rows from one CSV file.", "Pass the path of a CSV file with a header row.");
  std::vector<std::uint8_t> bytes;
  try { bytes = detail::read_file(path, detail::kMaxCsvBytes); }
  catch (const Error&) { throw Error(detail::normal_path(path) + " is not a file.", "Pass the path of a CSV file with a header row."); }
  std::string text(bytes.begin(), bytes.end());
  if (!detail::valid_utf8(text)) throw Error(detail::normal_path(path) + " is not UTF-8 text.", "Save the CSV file as UTF-8.");
  // records of fields: quotes (doubled inside), separators, CR/LF/CRLF line ends; an empty line is no record
  std::vector<std::vector<std::string>> recs;
  std::vector<std::string> rec;
  std::string field;
  bool quoted = false, in_field = false, after_quote = false;
  constexpr std::size_t kFieldLimit = 131072;  // Python's csv.field_size_limit()
  auto too_large = [&] {
    throw Error(detail::normal_path(path) + " is not a CSV file this can read (field larger than field limit (131072)).",
                "Pass a CSV file with a header row and fields under 128 KiB.");
  };
  auto end_field = [&] { rec.push_back(field); field.clear(); in_field = false; after_quote = false; };
  for (std::size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (quoted) {
      if (c == '"') {
        if (i + 1 < text.size() && text[i + 1] == '"') { field += '"'; ++i; }
        else { quoted = false; after_quote = true; }
      } else field += c;
      if (field.size() > kFieldLimit) too_large();
      continue;
    }
    if (c == '"' && !in_field && field.empty()) { quoted = true; in_field = true; continue; }
    if (c == ',') { end_field(); in_field = true; continue; }
    if (c == '\n' || c == '\r') {
      if (c == '\r' && i + 1 < text.size() && text[i + 1] == '\n') ++i;
      if (in_field || !rec.empty() || !field.empty() || after_quote) end_field();
      if (!rec.empty()) recs.push_back(rec);
      rec.clear();
      continue;
    }
    field += c;
    in_field = true;
    if (field.size() > kFieldLimit) too_large();
  }
  if (quoted) throw Error(detail::normal_path(path) + " is not a CSV file this can read (unexpected end of data).",
                          "Pass a CSV file with a header row and fields under 128 KiB.");
  if (in_field || !field.empty() || !rec.empty() || after_quote) end_field();
  if (!rec.empty()) recs.push_back(rec);
  if (recs.size() < 2) throw Error(detail::normal_path(path) + " has no rows.", "Pass a CSV file with a header row and one line per row.");
  const auto& header = recs[0];
  const Json& cats = p.m["preprocessing"]["spec"]["categories"];
  auto typed = [&](const std::string& v, const std::string& col) -> Json {
    if (v.empty()) return Json();
    if (std::find(p.x_cont.begin(), p.x_cont.end(), col) != p.x_cont.end()) {
      if (auto f = py_float(v)) return Json(*f);
      return Json(v);
    }
    if (!cats.contains(col)) return csv_number(v);
    const Json& vocab = cats[col];
    bool all_bool = vocab.size() > 1, all_num = vocab.size() > 1;
    for (std::size_t t = 1; t < vocab.size(); ++t) { all_bool &= vocab[t].is_boolean(); all_num &= vocab[t].is_number(); }
    if (all_bool) {
      std::string s = v;
      std::size_t a = s.find_first_not_of(" \t\n\r\f\v"), b2 = s.find_last_not_of(" \t\n\r\f\v");
      s = a == std::string::npos ? "" : s.substr(a, b2 - a + 1);
      std::transform(s.begin(), s.end(), s.begin(), [](unsigned char ch) { return std::tolower(ch); });
      if (s == "true") return Json(true);
      if (s == "false") return Json(false);
      return Json(v);
    }
    if (all_num) return csv_number(v);
    return Json(v);
  };
  std::vector<Json> rows;
  for (std::size_t r = 1; r < recs.size(); ++r) {
    if (recs[r].size() > header.size())
      throw Error(detail::normal_path(path) + " has rows with more fields than its header.", "Check the CSV file's quoting and separators.");
    Json row = Json::object();
    for (std::size_t k = 0; k < header.size(); ++k) row[header[k]] = k < recs[r].size() ? typed(recs[r][k], header[k]) : Json();
    rows.push_back(std::move(row));
  }
  return rows;
}

}  // namespace xdeploy
