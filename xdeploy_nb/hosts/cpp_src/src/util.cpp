// Files (read whole, bundle members without symbolic links), sha256 (OpenSSL EVP), Python-style text and JSON.
#include "xdeploy/predictor.hpp"
#include "internal.hpp"

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <set>
#include <system_error>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

namespace fs = std::filesystem;

namespace xdeploy {

Error::Error(std::string problem, std::string fix)
    : std::runtime_error(fix.empty() ? problem : problem + "\nFix: " + fix), problem_(std::move(problem)), fix_(std::move(fix)) {}

namespace detail {
namespace {

struct Fd {  // RAII file descriptor
  int fd = -1;
  explicit Fd(int f) : fd(f) {}
  ~Fd() { if (fd >= 0) ::close(fd); }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
};

std::vector<std::uint8_t> read_fd(int fd, std::uint64_t n, const std::string& what) {
  std::vector<std::uint8_t> data(n);
  std::uint64_t got = 0;
  while (got < n) {
    ssize_t r = ::read(fd, data.data() + got, std::min<std::uint64_t>(n - got, 1 << 24));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) throw Error(what + " could not be read (" + std::strerror(errno) + ").", "Check that the file is readable.");
    if (r == 0) break;
    got += static_cast<std::uint64_t>(r);
  }
  data.resize(got);
  return data;
}

}  // namespace

std::vector<std::uint8_t> read_file(const std::string& path, std::uint64_t cap) {
  Fd f(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK));  // a FIFO or device is refused below, not waited on
  if (f.fd < 0) {
    if (errno == ENOENT) throw Error("there is no such file.", "Check the path.");
    throw Error(std::string("the file could not be opened (") + std::strerror(errno) + ").", "Check that the file is readable.");
  }
  struct stat st;
  if (::fstat(f.fd, &st) != 0 || !S_ISREG(st.st_mode)) throw Error("this is not a regular file.", "Pass a file.");
  if (static_cast<std::uint64_t>(st.st_size) > cap)
    throw Error("the file has " + std::to_string(st.st_size) + " bytes, more than the " + std::to_string(cap) + " read at most.",
                "Pass a smaller file.");
  return read_fd(f.fd, static_cast<std::uint64_t>(st.st_size), "The file");
}

std::vector<std::uint8_t> read_bundle_file(const std::string& dir, const std::string& name, std::uint64_t cap, std::int64_t size) {
  const std::string fix = "Copy the bundle again from its source, or re-export it.";
  if (name.empty() || name.size() > 255 || name[0] == '.' || name.find('/') != std::string::npos || name.find('\\') != std::string::npos ||
      name.find('\0') != std::string::npos)
    throw Error("manifest.json names the file " + py_repr(name) + ", which is not a plain file name in the bundle.",
                "Re-export the bundle with this version of xdeploy_nb.");
  Fd d(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (d.fd < 0) throw Error(dir + " is not a folder that can be read.", "Point to a folder written by `export_bundle`.");
  Fd f(::openat(d.fd, name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK));
  std::string where = (fs::path(dir) / name).string();
  if (f.fd < 0) {
    if (errno == ELOOP) throw Error(where + " is a symbolic link: the C++ host loads only the bundle's own regular files.",
                                    "Copy the bundle with its files (cp -rL), not links to them.");
    if (errno == ENOENT) throw Error("The bundle " + dir + " lacks " + name + ", which its manifest lists.",
                                     "Copy the whole bundle folder, or re-export it.");
    throw Error(where + " could not be opened (" + std::strerror(errno) + ").", "Check that the bundle's files are readable.");
  }
  struct stat st;
  if (::fstat(f.fd, &st) != 0 || !S_ISREG(st.st_mode)) throw Error(where + " is not a regular file.", fix);
  std::uint64_t n = static_cast<std::uint64_t>(st.st_size);
  if (n > cap) throw Error(where + " has " + std::to_string(n) + " bytes, more than the " + std::to_string(cap) + " allowed.", fix);
  if (size >= 0 && n != static_cast<std::uint64_t>(size))
    throw Error(where + " does not match the sha256 in manifest.json: it is truncated or was changed after export.", fix);
  auto data = read_fd(f.fd, n, where);
  if (size >= 0 && data.size() != static_cast<std::uint64_t>(size))
    throw Error(where + " does not match the sha256 in manifest.json: it is truncated or was changed after export.", fix);
  return data;
}

std::string sha256_hex(const std::vector<std::uint8_t>& bytes) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  std::unique_ptr<EVP_MD_CTX, void (*)(EVP_MD_CTX*)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  if (!ctx || EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr) != 1 ||
      EVP_DigestUpdate(ctx.get(), bytes.data(), bytes.size()) != 1 || EVP_DigestFinal_ex(ctx.get(), md, &len) != 1)
    throw Error("OpenSSL could not compute a sha256.", "Check the OpenSSL installation.");
  static const char* hex = "0123456789abcdef";
  std::string s;
  for (unsigned i = 0; i < len; ++i) { s += hex[md[i] >> 4]; s += hex[md[i] & 15]; }
  return s;
}

bool valid_utf8(const std::string& s) {
  std::size_t i = 0, n = s.size();
  while (i < n) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    int len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (!len || i + len > n) return false;
    std::uint32_t cp = len == 1 ? c : len == 2 ? (c & 0x1f) : len == 3 ? (c & 0x0f) : (c & 0x07);
    for (int k = 1; k < len; ++k) {
      unsigned char d = static_cast<unsigned char>(s[i + k]);
      if ((d >> 6) != 2) return false;
      cp = (cp << 6) | (d & 0x3f);
    }
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
        (cp >= 0xd800 && cp <= 0xdfff))
      return false;
    i += len;
  }
  return true;
}

std::string py_repr(const std::string& s) {
  char q = (s.find('\'') != std::string::npos && s.find('"') == std::string::npos) ? '"' : '\'';
  std::string out(1, q);
  for (unsigned char c : s) {
    if (c == '\\' || c == static_cast<unsigned char>(q)) { out += '\\'; out += static_cast<char>(c); }
    else if (c == '\n') out += "\\n";
    else if (c == '\r') out += "\\r";
    else if (c == '\t') out += "\\t";
    else if (c < 0x20 || c == 0x7f) { char b[8]; std::snprintf(b, sizeof b, "\\x%02x", c); out += b; }
    else out += static_cast<char>(c);
  }
  return out + q;
}

std::string describe_path(const std::string& s) {
  std::string r = py_repr(s);
  return r.size() <= 80 ? r : r.substr(0, 38) + "..." + r.substr(r.size() - 38);
}

std::string normal_path(const std::string& p) {
  std::vector<std::string> parts;
  std::size_t i = 0;
  while (i <= p.size()) {
    std::size_t j = p.find('/', i);
    if (j == std::string::npos) j = p.size();
    std::string part = p.substr(i, j - i);
    if (!part.empty() && part != ".") parts.push_back(part);
    i = j + 1;
  }
  std::string out = !p.empty() && p[0] == '/' ? "/" : "";
  for (std::size_t k = 0; k < parts.size(); ++k) out += (k ? "/" : "") + parts[k];
  return out.empty() ? "." : out;
}

}  // namespace detail

std::string python_float(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "Infinity" : "-Infinity";
  if (v == 0) return std::signbit(v) ? "-0.0" : "0.0";
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::scientific);  // shortest round-trip digits
  std::string s(buf, r.ptr);
  bool neg = s[0] == '-';
  if (neg) s.erase(0, 1);
  auto e = s.find('e');
  int exp = std::stoi(s.substr(e + 1));
  std::string digits;
  for (char c : s.substr(0, e)) if (c != '.') digits += c;
  int decpt = exp + 1;  // Python's repr: fixed notation for -4 < decpt <= 16
  std::string out;
  if (decpt > -4 && decpt <= 16) {
    if (decpt <= 0) out = "0." + std::string(-decpt, '0') + digits;
    else if (static_cast<std::size_t>(decpt) >= digits.size()) out = digits + std::string(decpt - digits.size(), '0') + ".0";
    else out = digits.substr(0, decpt) + "." + digits.substr(decpt);
  } else {
    out = digits.substr(0, 1) + (digits.size() > 1 ? "." + digits.substr(1) : "");
    char eb[16];
    std::snprintf(eb, sizeof eb, "e%c%02d", exp < 0 ? '-' : '+', std::abs(exp));
    out += eb;
  }
  return neg ? "-" + out : out;
}

namespace {

void json_string(const std::string& s, std::string& out) {  // ensure_ascii, as Python's json.dumps
  out += '"';
  std::size_t i = 0;
  while (i < s.size()) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    std::uint32_t cp = c;
    int len = 1;
    if (c >= 0x80) {
      len = (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 1;
      cp = len == 2 ? (c & 0x1f) : len == 3 ? (c & 0x0f) : len == 4 ? (c & 0x07) : 0xfffd;
      for (int k = 1; k < len && i + k < s.size(); ++k) cp = (cp << 6) | (static_cast<unsigned char>(s[i + k]) & 0x3f);
    }
    i += len;
    char b[16];
    if (cp == '"') out += "\\\"";
    else if (cp == '\\') out += "\\\\";
    else if (cp == '\n') out += "\\n";
    else if (cp == '\r') out += "\\r";
    else if (cp == '\t') out += "\\t";
    else if (cp == '\b') out += "\\b";
    else if (cp == '\f') out += "\\f";
    else if (cp < 0x20 || (cp >= 0x7f && cp < 0x10000)) { std::snprintf(b, sizeof b, "\\u%04x", cp); out += b; }
    else if (cp >= 0x10000) {
      cp -= 0x10000;
      std::snprintf(b, sizeof b, "\\u%04x\\u%04x", 0xd800 + (cp >> 10), 0xdc00 + (cp & 0x3ff));
      out += b;
    } else out += static_cast<char>(cp);
  }
  out += '"';
}

void dump(const Json& j, int indent, int level, std::string& out) {
  std::string pad = indent < 0 ? "" : "\n" + std::string(static_cast<std::size_t>(indent) * (level + 1), ' ');
  std::string end = indent < 0 ? "" : "\n" + std::string(static_cast<std::size_t>(indent) * level, ' ');
  const char* sep = indent < 0 ? ", " : ",";
  switch (j.type()) {
    case Json::value_t::object: {
      if (j.empty()) { out += "{}"; return; }
      out += '{';
      bool first = true;
      for (auto it = j.begin(); it != j.end(); ++it) {
        if (!first) out += sep;
        first = false;
        out += pad;
        json_string(it.key(), out);
        out += ": ";
        dump(it.value(), indent, level + 1, out);
      }
      out += end + '}';
      return;
    }
    case Json::value_t::array: {
      if (j.empty()) { out += "[]"; return; }
      out += '[';
      bool first = true;
      for (const auto& v : j) {
        if (!first) out += sep;
        first = false;
        out += pad;
        dump(v, indent, level + 1, out);
      }
      out += end + ']';
      return;
    }
    case Json::value_t::string: json_string(j.get_ref<const std::string&>(), out); return;
    case Json::value_t::number_float: out += python_float(j.get<double>()); return;
    default: out += j.dump(); return;  // null, bool, integers
  }
}

}  // namespace

std::string python_json(const Json& j, int indent) {
  std::string out;
  dump(j, indent, 0, out);
  return out;
}

}  // namespace xdeploy

namespace xdeploy {

std::vector<std::string> image_files(const std::vector<std::string>& paths) {
  static const std::set<std::string> exts{".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"};  // IMAGE_EXTENSIONS
  auto parts = [](const std::string& s) {  // Python sorts Paths by their parts
    std::vector<std::string> v;
    std::size_t i = 0;
    while (i <= s.size()) { std::size_t j = s.find('/', i); if (j == std::string::npos) j = s.size(); v.push_back(s.substr(i, j - i)); i = j + 1; }
    return v;
  };
  std::vector<std::string> files;
  for (const auto& raw : paths) {
    std::string p = detail::normal_path(raw);
    std::error_code ec;
    if (fs::is_directory(p, ec)) {
      std::vector<std::string> found;
      for (auto it = fs::recursive_directory_iterator(p, fs::directory_options::skip_permission_denied, ec);
           !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
        std::string ext = it->path().extension().string();
        std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
        if (exts.count(ext)) found.push_back(detail::normal_path(it->path().string()));
      }
      std::sort(found.begin(), found.end(), [&](const std::string& a, const std::string& b) { return parts(a) < parts(b); });
      files.insert(files.end(), found.begin(), found.end());
    } else if (fs::exists(p, ec)) files.push_back(p);
    else throw Error(p + " does not exist.", "Check the path.");
  }
  if (files.empty()) {
    std::string list;
    for (const auto& p : paths) list += (list.empty() ? "" : ", ") + p;
    throw Error("There are no image files in " + list + ".", "Pass image files (.bmp, .gif, .jpeg, .jpg, .png, .tif, .tiff, .webp) or folders that hold them.");
  }
  return files;
}

}  // namespace xdeploy
