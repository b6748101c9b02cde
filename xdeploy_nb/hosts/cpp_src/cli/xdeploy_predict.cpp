// xdeploy-predict BUNDLE ITEMS... [--json]: what `xdeploy predict BUNDLE ITEMS... --json` prints, from C++.
// Errors: one message (problem, then "Fix: ..."; with --json one JSON line on stdout) and exit status 1.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

#include "xdeploy/predictor.hpp"

namespace {

const char* kUsage =
    "usage: xdeploy-predict BUNDLE ITEMS... [--json] [--batch-size N] [--variant NAME] [--format onnx|executorch] [--threads N]\n"
    "                       [--max-pixels N] [--expect-digest SHA256] [--describe] [--time]\n"
    "       xdeploy-predict --decode IMAGE [--mode RGB|L] > pixels.ppm\n"
    "Print the predictions of an xdeploy_nb bundle for image files (PNG, JPEG) or folders of them, or the rows of one\n"
    "CSV file, as `xdeploy predict BUNDLE ITEMS... --json` prints them. --time: also print, on stderr, the time to open the\n"
    "bundle and the median time per item (images predicted one at a time: read, decode, preprocess.onnx, model.onnx).\n"
    "--decode: write a PNG or JPEG file's pixels, decoded and converted as the host does (as Pillow does), as PPM (RGB) or\n"
    "PGM (L) on stdout.\n";

int fail(bool json, const std::string& problem, const std::string& fix) {
  if (json) {
    xdeploy::Json e;
    e["error"] = problem;
    e["fix"] = fix.empty() ? xdeploy::Json() : xdeploy::Json(fix);
    e["command"] = "predict";
    std::cout << xdeploy::python_json(e, -1) << std::endl;
  } else {
    std::cerr << "xdeploy-predict: " << problem << (fix.empty() ? "" : "\nFix: " + fix) << std::endl;
  }
  return 1;
}

std::string percent(double p, int digits) {
  char b[64];
  std::snprintf(b, sizeof b, "%.*f%%", digits, p * 100);
  return b;
}

void print_line(const std::string& name, const xdeploy::Json& d) {
  std::string s = name + ": ";
  if (d.contains("label")) s += d["label"].get<std::string>() + " (" + percent(d["probs"][d["index"].get<std::size_t>()].get<double>(), 1) + ")";
  else if (d.contains("labels")) {
    std::string l;
    for (const auto& x : d["labels"]) l += (l.empty() ? "" : ", ") + x.get<std::string>();
    s += l.empty() ? "(none)" : l;
  } else if (d.contains("mask")) {
    s += std::to_string(d["mask"].size()) + "x" + std::to_string(d["mask"][0].size()) + " mask: ";
    bool first = true;
    for (auto it = d["classes"].begin(); it != d["classes"].end(); ++it, first = false) s += (first ? "" : ", ") + it.key() + " " + percent(it.value().get<double>(), 0);
  } else if (d["value"].is_array()) {
    s += "[";
    for (std::size_t i = 0; i < d["value"].size(); ++i) s += (i ? ", " : "") + xdeploy::python_float(d["value"][i].get<double>());
    s += "]";
  } else s += xdeploy::python_float(d["value"].get<double>());
  std::cout << s << "\n";
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> pos;
  bool json = false, describe = false, timing = false;
  xdeploy::Options opt;
  std::string decode, mode = "RGB";
  int batch = 64;
  for (int i = 1; i < argc; ++i) if (std::string(argv[i]) == "--json") json = true;
  try {
    for (int i = 1; i < argc; ++i) {
      std::string a = argv[i];
      auto value = [&](const char* name) -> std::string {
        if (i + 1 >= argc) throw xdeploy::Error(std::string(name) + " needs a value.", kUsage);
        return argv[++i];
      };
      auto integer = [&](const char* name) -> long long {
        std::string v = value(name);
        char* end = nullptr;
        long long n = std::strtoll(v.c_str(), &end, 10);
        if (v.empty() || *end || n < 1) throw xdeploy::Error(std::string(name) + " " + v + " is not a positive integer.", "Pass a number >= 1.");
        return n;
      };
      if (a == "--json") continue;
      if (a == "-h" || a == "--help") { std::cout << kUsage; return 0; }
      if (a == "--describe") describe = true;
      else if (a == "--time") timing = true;
      else if (a == "--decode") decode = value("--decode");
      else if (a == "--mode") mode = value("--mode");
      else if (a == "--batch-size") batch = static_cast<int>(std::min<long long>(integer("--batch-size"), 1 << 20));
      else if (a == "--threads") opt.threads = static_cast<int>(std::min<long long>(integer("--threads"), 1024));
      else if (a == "--max-pixels") opt.max_pixels = static_cast<std::uint64_t>(integer("--max-pixels"));
      else if (a == "--variant") opt.variant = value("--variant");
      else if (a == "--format") opt.format = value("--format");
      else if (a == "--expect-digest") opt.expected_digest = value("--expect-digest");
      else if (a.size() > 1 && a[0] == '-' && a != "-") throw xdeploy::Error("unknown option " + a + ".", "See xdeploy-predict --help.");
      else pos.push_back(a);
    }
    if (!decode.empty()) {  // the decoded pixels, as binary PPM / PGM
      if (mode != "RGB" && mode != "L") throw xdeploy::Error("--mode " + mode + " is not RGB or L.", "Pass --mode RGB or --mode L.");
      xdeploy::Image img;
      try { img = xdeploy::read_image_file(decode, mode, opt.max_pixels); }
      catch (const xdeploy::Error& e) { throw xdeploy::Error(decode + ": " + e.problem(), e.fix()); }
      std::cout << (img.channels == 3 ? "P6\n" : "P5\n") << img.width << " " << img.height << "\n255\n";
      std::cout.write(reinterpret_cast<const char*>(img.pixels.data()), static_cast<std::streamsize>(img.pixels.size()));
      std::cout.flush();
      return 0;
    }
    if (pos.size() < (describe ? 1u : 2u)) throw xdeploy::Error("a bundle and at least one item are needed.", "Run: xdeploy-predict BUNDLE ITEMS... [--json]");
    auto t0 = std::chrono::steady_clock::now();
    xdeploy::Predictor p(pos[0], opt);
    if (describe) {
      xdeploy::Json d;
      d["kind"] = p.kind(); d["task"] = p.task(); d["device"] = p.device(); d["manifest"] = p.manifest_digest();
      d["open_ms"] = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
      std::cout << xdeploy::python_json(d, 1) << std::endl;
      if (pos.size() == 1) return 0;
    }
    std::vector<std::string> items(pos.begin() + 1, pos.end()), names;
    std::vector<xdeploy::Json> preds;
    double open_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    if (p.kind() == "image" && timing) {  // one at a time, each timed
      names = xdeploy::image_files(items);
      std::vector<double> ms;
      for (const auto& f : names) {
        auto t1 = std::chrono::steady_clock::now();
        preds.push_back(p.predict_files({f}, 1).at(0));
        ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t1).count());
      }
      std::sort(ms.begin(), ms.end());
      std::cerr << "open_ms " << open_ms << " per_item_ms " << ms[ms.size() / 2] << " items " << ms.size() << std::endl;
    } else if (p.kind() == "image") {
      names = xdeploy::image_files(items);
      preds = p.predict_files(names, batch);
    } else {
      if (items.size() != 1) throw xdeploy::Error("A tabular model takes its rows from one CSV file.", "Pass the path of a CSV file with a header row.");
      auto rows = p.read_csv(items[0]);
      for (std::size_t i = 0; i < rows.size(); ++i) names.push_back("row " + std::to_string(i));
      preds = p.predict_rows(rows, batch);
    }
    if (json) {
      xdeploy::Json out = xdeploy::Json::array();
      for (std::size_t i = 0; i < preds.size(); ++i) {
        xdeploy::Json d;
        d["item"] = names[i];
        for (auto it = preds[i].begin(); it != preds[i].end(); ++it) d[it.key()] = it.value();
        out.push_back(std::move(d));
      }
      std::cout << xdeploy::python_json(out, 1) << std::endl;
    } else {
      for (std::size_t i = 0; i < preds.size(); ++i) print_line(names[i], preds[i]);
    }
    return 0;
  } catch (const xdeploy::Error& e) {
    return fail(json, e.problem(), e.fix());
  } catch (const std::bad_alloc&) {
    return fail(json, "there was not enough memory for this input.", "Pass smaller images or fewer rows at a time.");
  } catch (const std::exception& e) {
    return fail(json, std::string("unexpected error: ") + e.what(), "This is a bug of xdeploy_nb's C++ host: please report it with the command you ran.");
  }
}
