// PNG (libpng) and JPEG (libjpeg-turbo) decoding, converted to RGB or L exactly as Pillow's open + convert do:
// alpha dropped (not composited), palettes looked up, L = (19595 R + 38470 G + 7471 B + 32768) >> 16,
// 16-bit samples: their high byte (16-bit grayscale: clipped to 255, as Pillow's I;16 -> L/RGB), CMYK inverted.
#include "xdeploy/predictor.hpp"
#include "internal.hpp"

#include <csetjmp>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>

#include <png.h>
#include <jpeglib.h>
#include <jerror.h>

namespace xdeploy {
namespace {

const char* kReadFix = "Check that the file is readable and complete: copy or download it again.";

std::string thousands(std::uint64_t n) {
  std::string s = std::to_string(n), out;
  int k = 0;
  for (auto it = s.rbegin(); it != s.rend(); ++it, ++k) {
    if (k && k % 3 == 0) out.insert(out.begin(), ',');
    out.insert(out.begin(), *it);
  }
  return out;
}

void check_pixels(std::uint64_t h, std::uint64_t w, std::uint64_t limit) {
  if (h * w > limit)
    throw Error("The image has " + thousands(h * w) + " pixels, more than the limit of " + thousands(limit) +
                    " that guards against decompression bombs.",
                "Downscale the image first or, if you trust its source, raise the limit: --max-pixels N "
                "(xdeploy::Options::max_pixels).");
}

// Interleaved 8-bit samples with `src_channels` channels (1: L, 2: LA, 3: RGB, 4: RGBA) -> `mode`.
Image convert(int h, int w, int src_channels, const std::vector<std::uint8_t>& src, const std::string& mode) {
  Image img;
  img.height = h; img.width = w; img.channels = mode == "L" ? 1 : 3;
  std::size_t n = static_cast<std::size_t>(h) * w;
  img.pixels.resize(n * img.channels);
  const std::uint8_t* s = src.data();
  std::uint8_t* d = img.pixels.data();
  for (std::size_t i = 0; i < n; ++i, s += src_channels) {
    if (src_channels <= 2) {  // L or LA
      if (img.channels == 1) d[i] = s[0];
      else d[3 * i] = d[3 * i + 1] = d[3 * i + 2] = s[0];
    } else if (img.channels == 1) {
      d[i] = static_cast<std::uint8_t>((19595u * s[0] + 38470u * s[1] + 7471u * s[2] + 0x8000u) >> 16);
    } else {
      d[3 * i] = s[0]; d[3 * i + 1] = s[1]; d[3 * i + 2] = s[2];
    }
  }
  return img;
}

// ---- PNG ----
struct PngSource { const std::uint8_t* data; std::size_t size, pos; };

void png_read(png_structp png, png_bytep out, png_size_t n) {
  auto* src = static_cast<PngSource*>(png_get_io_ptr(png));
  if (src->size - src->pos < n) png_error(png, "image file is truncated");
  std::memcpy(out, src->data + src->pos, n);
  src->pos += n;
}

struct PngError { char message[256]; };
void png_fail(png_structp png, png_const_charp msg) {
  auto* e = static_cast<PngError*>(png_get_error_ptr(png));
  std::snprintf(e->message, sizeof e->message, "%s", msg);
  png_longjmp(png, 1);
}
void png_warn(png_structp, png_const_charp) {}

// Decodes into `raw` (8-bit samples, `channels` per pixel; 16-bit grayscale clipped to 255). Returns "" or the error.
// Only C frames lie between setjmp and longjmp: the C++ objects live in the caller.
std::string png_decode(const std::vector<std::uint8_t>& bytes, std::uint64_t limit, std::vector<std::uint8_t>& raw,
                       int& h, int& w, int& channels, std::uint64_t& pixels) {
  PngSource src{bytes.data(), bytes.size(), 0};
  PngError err{};
  png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &err, png_fail, png_warn);
  if (!png) return "out of memory";
  png_infop info = png_create_info_struct(png);
  if (!info) { png_destroy_read_struct(&png, nullptr, nullptr); return "out of memory"; }
  std::vector<png_bytep>* rows = new std::vector<png_bytep>();  // freed below on both paths
  if (setjmp(png_jmpbuf(png))) {
    png_destroy_read_struct(&png, &info, nullptr);
    delete rows;
    return err.message[0] ? err.message : "libpng error";
  }
  png_set_user_limits(png, 0x7fffffff, 0x7fffffff);
  png_set_read_fn(png, &src, png_read);
  png_read_info(png, info);
  png_uint_32 pw = png_get_image_width(png, info), ph = png_get_image_height(png, info);
  pixels = static_cast<std::uint64_t>(pw) * ph;
  if (pixels > limit) { png_destroy_read_struct(&png, &info, nullptr); delete rows; h = static_cast<int>(ph); w = static_cast<int>(pw); return "limit"; }
  int depth = png_get_bit_depth(png, info), type = png_get_color_type(png, info);
  bool gray16 = depth == 16 && type == PNG_COLOR_TYPE_GRAY;
  if (type == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);  // and tRNS to alpha, which is dropped later
  if (type == PNG_COLOR_TYPE_GRAY && depth < 8) png_set_expand_gray_1_2_4_to_8(png);  // Pillow's 1, L;2, L;4 scale too
  if (depth == 16 && !gray16) png_set_strip_16(png);  // the high byte, as Pillow's RGB;16B, RGBA;16B, LA;16B
  if (gray16) png_set_swap(png);  // native little-endian 16-bit samples, clipped below
  png_set_interlace_handling(png);
  png_read_update_info(png, info);
  channels = png_get_channels(png, info);
  std::size_t rowbytes = png_get_rowbytes(png, info);
  raw.resize(rowbytes * ph);
  rows->resize(ph);
  for (png_uint_32 y = 0; y < ph; ++y) (*rows)[y] = raw.data() + y * rowbytes;
  png_read_image(png, rows->data());
  png_read_end(png, nullptr);
  png_destroy_read_struct(&png, &info, nullptr);
  delete rows;
  h = static_cast<int>(ph); w = static_cast<int>(pw);
  if (gray16) {  // Pillow opens it as I;16 and clips to 255 when converting
    std::size_t n = static_cast<std::size_t>(ph) * pw;
    for (std::size_t i = 0; i < n; ++i) {
      unsigned v = raw[2 * i] | (raw[2 * i + 1] << 8);
      raw[i] = static_cast<std::uint8_t>(v > 255 ? 255 : v);
    }
    raw.resize(n);
    channels = 1;
  }
  return "";
}

// ---- JPEG ----
struct JpegError {
  jpeg_error_mgr mgr;
  std::jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
};
void jpeg_fail(j_common_ptr c) {
  auto* e = reinterpret_cast<JpegError*>(c->err);
  c->err->format_message(c, e->message);
  std::longjmp(e->jump, 1);
}
void jpeg_message(j_common_ptr c, int level) {
  // A truncated file is an error (Pillow: "image file is truncated"); other warnings are ignored, as Pillow does.
  if (level < 0 && c->err->msg_code == JWRN_JPEG_EOF) {
    auto* e = reinterpret_cast<JpegError*>(c->err);
    std::snprintf(e->message, sizeof e->message, "image file is truncated");
    std::longjmp(e->jump, 1);
  }
}

std::string jpeg_decode(const std::vector<std::uint8_t>& bytes, std::uint64_t limit, std::vector<std::uint8_t>& raw,
                        int& h, int& w, int& channels, std::uint64_t& pixels) {
  jpeg_decompress_struct cinfo;
  JpegError err;
  std::memset(&cinfo, 0, sizeof cinfo);
  err.message[0] = 0;
  cinfo.err = jpeg_std_error(&err.mgr);
  err.mgr.error_exit = jpeg_fail;
  err.mgr.emit_message = jpeg_message;
  if (setjmp(err.jump)) {
    jpeg_destroy_decompress(&cinfo);
    return err.message[0] ? err.message : "libjpeg error";
  }
  jpeg_create_decompress(&cinfo);
  jpeg_mem_src(&cinfo, bytes.data(), static_cast<unsigned long>(bytes.size()));
  jpeg_save_markers(&cinfo, JPEG_APP0 + 14, 0xffff);
  jpeg_read_header(&cinfo, TRUE);
  h = static_cast<int>(cinfo.image_height); w = static_cast<int>(cinfo.image_width);
  pixels = static_cast<std::uint64_t>(cinfo.image_width) * cinfo.image_height;
  if (pixels > limit) { jpeg_destroy_decompress(&cinfo); return "limit"; }
  bool cmyk = cinfo.jpeg_color_space == JCS_CMYK || cinfo.jpeg_color_space == JCS_YCCK;
  bool gray = cinfo.jpeg_color_space == JCS_GRAYSCALE;
  cinfo.out_color_space = cmyk ? JCS_CMYK : gray ? JCS_GRAYSCALE : JCS_RGB;
  jpeg_start_decompress(&cinfo);
  int nc = cinfo.output_components;
  std::size_t stride = static_cast<std::size_t>(cinfo.output_width) * nc;
  raw.resize(stride * cinfo.output_height);
  while (cinfo.output_scanline < cinfo.output_height) {
    JSAMPROW row = raw.data() + stride * cinfo.output_scanline;
    jpeg_read_scanlines(&cinfo, &row, 1);
  }
  bool adobe = cinfo.saw_Adobe_marker;
  jpeg_finish_decompress(&cinfo);
  jpeg_destroy_decompress(&cinfo);
  channels = nc;
  if (cmyk) {  // Pillow: Adobe CMYK is stored inverted ("CMYK;I"); RGB = round((255 - C)(255 - K)/255)
    std::size_t n = static_cast<std::size_t>(w) * h;
    for (std::size_t i = 0; i < n; ++i) {
      unsigned c[4];  // Pillow's CMYK values: Adobe files store them inverted ("CMYK;I")
      for (int k = 0; k < 4; ++k) c[k] = adobe ? 255u - raw[4 * i + k] : raw[4 * i + k];
      unsigned nk = 255u - c[3];
      for (int k = 0; k < 3; ++k) {  // Pillow's cmyk2rgb: nk - MULDIV255(c, nk)
        unsigned t = c[k] * nk + 128;
        raw[3 * i + k] = static_cast<std::uint8_t>(nk - ((t + (t >> 8)) >> 8));
      }
    }
    raw.resize(n * 3);
    channels = 3;
  }
  return "";
}

}  // namespace

Image decode_image(const std::vector<std::uint8_t>& bytes, const std::string& mode, std::uint64_t max_pixels) {
  if (mode != "RGB" && mode != "L")
    throw Error("The C++ host converts images to RGB or L, not " + mode + ".", "Re-export the bundle.");
  static const std::uint8_t png_sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  bool png = bytes.size() >= 8 && std::memcmp(bytes.data(), png_sig, 8) == 0;
  bool jpeg = bytes.size() >= 3 && bytes[0] == 0xff && bytes[1] == 0xd8 && bytes[2] == 0xff;
  if (!png && !jpeg) {
    auto starts = [&](const char* s) { return bytes.size() >= std::strlen(s) && std::memcmp(bytes.data(), s, std::strlen(s)) == 0; };
    if (starts("BM") || starts("GIF8") || starts("II*") || starts("MM\x00*") || (starts("RIFF") && bytes.size() > 12 && std::memcmp(bytes.data() + 8, "WEBP", 4) == 0))
      throw Error("the C++ host decodes PNG and JPEG files only, and this is another image format.",
                  "Convert the image to PNG (lossless) first, or decode it yourself and pass its pixels (xdeploy::Image).");
    throw Error("this cannot be identified as an image (it is neither PNG nor JPEG).",
                "Pass a PNG or JPEG image file.");
  }
  std::vector<std::uint8_t> raw;
  int h = 0, w = 0, channels = 0;
  std::uint64_t pixels = 0;
  std::string e = png ? png_decode(bytes, max_pixels, raw, h, w, channels, pixels)
                      : jpeg_decode(bytes, max_pixels, raw, h, w, channels, pixels);
  if (e == "limit") check_pixels(static_cast<std::uint64_t>(h), static_cast<std::uint64_t>(w), max_pixels);
  if (!e.empty()) throw Error("the image could not be read (" + e + ").", kReadFix);
  if (h <= 0 || w <= 0) throw Error("the image is empty (" + std::to_string(h) + "x" + std::to_string(w) + ").",
                                    "Pass an image of at least 1x1 pixels.");
  return convert(h, w, channels, raw, mode);
}

Image read_image_file(const std::string& path, const std::string& mode, std::uint64_t max_pixels) {
  return decode_image(detail::read_file(path, detail::kMaxImageFileBytes), mode, max_pixels);
}

}  // namespace xdeploy
