#include <png.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <utility>

#include "fax/image_io.hpp"

namespace switchboard::fax {

std::size_t bitmap::black_pixels() const {
  std::size_t n = 0;
  for (const std::uint8_t b : bits) n += static_cast<std::size_t>(__builtin_popcount(b));
  return n;
}

bool same_pixels(const bitmap& a, const bitmap& b) {
  return a.width == b.width && a.height == b.height && a.bits == b.bits;
}

long long differing_pixels(const bitmap& a, const bitmap& b) {
  if (a.width != b.width || a.height != b.height || a.bits.size() != b.bits.size()) return -1;
  long long n = 0;
  for (std::size_t i = 0; i < a.bits.size(); ++i) {
    n += __builtin_popcount(static_cast<unsigned>(a.bits[i] ^ b.bits[i]));
  }
  return n;
}

}  // namespace switchboard::fax

namespace switchboard::fax::detail {

std::string errno_text(int err) {
  return std::strerror(err);
}

int pixels(double inches, double dpi) {
  return std::max(1, static_cast<int>(std::lround(inches * dpi)));
}

gray_image to_gray(const bitmap& b) {
  gray_image g(b.width, b.height);
  g.x_dpi = b.x_dpi;
  g.y_dpi = b.y_dpi;
  for (int y = 0; y < b.height; ++y) {
    std::uint8_t* out = g.row(y);
    for (int x = 0; x < b.width; ++x) out[x] = b.black(x, y) ? 0 : 255;
  }
  return g;
}

namespace {

// For each output index, the source indices it covers and their weights (summing to 1).
struct span_weights {
  std::vector<int> first;  // per output: index into src/weight
  std::vector<int> count;  // per output
  std::vector<int> src;
  std::vector<float> weight;
};

span_weights box_weights(int src_size, int dst_size) {
  span_weights w;
  w.first.resize(static_cast<std::size_t>(dst_size));
  w.count.resize(static_cast<std::size_t>(dst_size));
  const double scale = static_cast<double>(src_size) / dst_size;
  for (int i = 0; i < dst_size; ++i) {
    const double start = i * scale;
    const double end = std::min<double>(src_size, (i + 1) * scale);
    w.first[static_cast<std::size_t>(i)] = static_cast<int>(w.src.size());
    int j = std::min(src_size - 1, static_cast<int>(std::floor(start)));
    double total = 0;
    const std::size_t begin = w.src.size();
    for (; j < src_size && j < end; ++j) {
      const double cover = std::min<double>(end, j + 1) - std::max<double>(start, j);
      if (cover <= 1e-9) continue;
      w.src.push_back(j);
      w.weight.push_back(static_cast<float>(cover));
      total += cover;
    }
    if (w.src.size() == begin) {  // degenerate (cannot happen for positive sizes): nearest
      w.src.push_back(std::min(src_size - 1, static_cast<int>(start)));
      w.weight.push_back(1.0F);
      total = 1;
    }
    for (std::size_t k = begin; k < w.src.size(); ++k) {
      w.weight[k] = static_cast<float>(w.weight[k] / total);
    }
    w.count[static_cast<std::size_t>(i)] = static_cast<int>(w.src.size() - begin);
  }
  return w;
}

// Calls out(x, y, value) for every output pixel, value in [0, 255].
template <typename Out>
void resample_core(const gray_image& src, int width, int height, Out&& out) {
  if (width <= 0 || height <= 0 || src.width <= 0 || src.height <= 0) {
    throw fax_error("cannot resize an empty image");
  }
  const span_weights wx = box_weights(src.width, width);
  const span_weights wy = box_weights(src.height, height);
  // Horizontal pass for all source rows, then vertical.
  std::vector<float> tmp(static_cast<std::size_t>(width) * static_cast<std::size_t>(src.height));
  for (int y = 0; y < src.height; ++y) {
    const std::uint8_t* in = src.row(y);
    float* t = tmp.data() + static_cast<std::size_t>(y) * width;
    for (int x = 0; x < width; ++x) {
      const auto f = static_cast<std::size_t>(wx.first[static_cast<std::size_t>(x)]);
      const int n = wx.count[static_cast<std::size_t>(x)];
      float v = 0;
      for (int k = 0; k < n; ++k) v += wx.weight[f + k] * in[wx.src[f + k]];
      t[x] = v;
    }
  }
  std::vector<float> line(static_cast<std::size_t>(width));
  for (int y = 0; y < height; ++y) {
    const auto f = static_cast<std::size_t>(wy.first[static_cast<std::size_t>(y)]);
    const int n = wy.count[static_cast<std::size_t>(y)];
    std::fill(line.begin(), line.end(), 0.0F);
    for (int k = 0; k < n; ++k) {
      const float w = wy.weight[f + k];
      const float* t = tmp.data() + static_cast<std::size_t>(wy.src[f + k]) * width;
      for (int x = 0; x < width; ++x) line[static_cast<std::size_t>(x)] += w * t[x];
    }
    for (int x = 0; x < width; ++x) out(x, y, line[static_cast<std::size_t>(x)]);
  }
}

}  // namespace

gray_image resample(const gray_image& src, int width, int height) {
  gray_image g(width, height);
  resample_core(src, width, height, [&g](int x, int y, float v) {
    g.row(y)[x] = static_cast<std::uint8_t>(std::clamp(std::lround(v), 0L, 255L));
  });
  return g;
}

bitmap resample_to_bitmap(const gray_image& src, int width, int height) {
  if (width == src.width && height == src.height) return threshold(src);
  bitmap b(width, height);
  resample_core(src, width, height, [&b](int x, int y, float v) {
    if (v < 128.0F) b.set(x, y, true);
  });
  return b;
}

bitmap threshold(const gray_image& src) {
  bitmap b(src.width, src.height);
  for (int y = 0; y < src.height; ++y) {
    const std::uint8_t* in = src.row(y);
    for (int x = 0; x < src.width; ++x) {
      if (in[x] < 128) b.set(x, y, true);
    }
  }
  return b;
}

gray_image rotate_clockwise(const gray_image& src) {
  gray_image r(src.height, src.width);
  r.x_dpi = src.y_dpi;
  r.y_dpi = src.x_dpi;
  for (int y = 0; y < src.height; ++y) {
    const std::uint8_t* in = src.row(y);
    for (int x = 0; x < src.width; ++x) r.row(x)[src.height - 1 - y] = in[x];
  }
  return r;
}

bitmap centre_on_fax_width(const bitmap& content) {
  if (content.width > fax_width) throw fax_error("internal: page wider than the fax width");
  if (content.width == fax_width) return content;
  bitmap out(fax_width, content.height);
  const int left = (fax_width - content.width) / 2;
  for (int y = 0; y < content.height; ++y) {
    for (int x = 0; x < content.width; ++x) {
      if (content.black(x, y)) out.set(left + x, y, true);
    }
  }
  return out;
}

temp_output::temp_output(std::string target)
    : target_(std::move(target)), temp_(target_ + ".part") {}

temp_output::~temp_output() {
  if (!committed_) std::remove(temp_.c_str());
}

void temp_output::commit() {
  if (std::rename(temp_.c_str(), target_.c_str()) != 0) {
    const int err = errno;
    throw fax_error(target_ + ": cannot rename " + temp_ + " into place: " + errno_text(err));
  }
  committed_ = true;
}

// --- PNG -------------------------------------------------------------------------------------

namespace {

std::uint32_t be32(const unsigned char* p) {
  return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) |
         std::uint32_t{p[3]};
}

void put_be32(std::vector<std::uint8_t>& out, std::uint32_t v) {
  out.push_back(static_cast<std::uint8_t>(v >> 24));
  out.push_back(static_cast<std::uint8_t>(v >> 16));
  out.push_back(static_cast<std::uint8_t>(v >> 8));
  out.push_back(static_cast<std::uint8_t>(v));
}

// The pHYs chunk, if it comes before the image data and is in pixels per metre.
void read_png_resolution(const std::string& path, gray_image& g) {
  std::ifstream in(path, std::ios::binary);
  unsigned char head[8];
  if (!in.read(reinterpret_cast<char*>(head), 8)) return;
  for (int chunks = 0; chunks < 1000; ++chunks) {
    if (!in.read(reinterpret_cast<char*>(head), 8)) return;
    const std::uint32_t length = be32(head);
    const std::string type(reinterpret_cast<const char*>(head + 4), 4);
    if (type == "IDAT" || type == "IEND") return;
    if (type == "pHYs" && length == 9) {
      unsigned char d[9];
      if (!in.read(reinterpret_cast<char*>(d), 9)) return;
      if (d[8] == 1 && be32(d) > 0 && be32(d + 4) > 0) {
        g.x_dpi = be32(d) * 0.0254;
        g.y_dpi = be32(d + 4) * 0.0254;
      }
      return;
    }
    in.seekg(static_cast<std::streamoff>(length) + 4, std::ios::cur);
  }
}

}  // namespace

gray_image read_png(const std::string& path, std::uint64_t max_pixels) {
  png_image img;
  std::memset(&img, 0, sizeof img);
  img.version = PNG_IMAGE_VERSION;
  if (!png_image_begin_read_from_file(&img, path.c_str())) {
    throw fax_error(path + ": not a readable PNG: " + img.message);
  }
  if (img.width == 0 || img.height == 0 || img.width > 100000 || img.height > 100000 ||
      static_cast<std::uint64_t>(img.width) * img.height > max_pixels) {
    png_image_free(&img);
    throw fax_error(path + ": PNG of " + std::to_string(img.width) + " x " +
                    std::to_string(img.height) + " pixels is too large to fax");
  }
  img.format = PNG_FORMAT_GRAY;  // colour to grey, transparency composited on white
  gray_image g(static_cast<int>(img.width), static_cast<int>(img.height));
  png_color white{255, 255, 255};
  if (!png_image_finish_read(&img, &white, g.px.data(), 0, nullptr)) {
    const std::string message = img.message;
    png_image_free(&img);
    throw fax_error(path + ": cannot decode PNG: " + message);
  }
  read_png_resolution(path, g);
  return g;
}

void write_png(const std::string& path, const gray_image& image) {
  png_image img;
  std::memset(&img, 0, sizeof img);
  img.version = PNG_IMAGE_VERSION;
  img.width = static_cast<png_uint_32>(image.width);
  img.height = static_cast<png_uint_32>(image.height);
  img.format = PNG_FORMAT_GRAY;
  png_alloc_size_t size = 0;
  if (!png_image_write_to_memory(&img, nullptr, &size, 0, image.px.data(), 0, nullptr)) {
    throw fax_error(path + ": cannot encode PNG: " + img.message);
  }
  std::vector<std::uint8_t> data(size);
  if (!png_image_write_to_memory(&img, data.data(), &size, 0, image.px.data(), 0, nullptr)) {
    throw fax_error(path + ": cannot encode PNG: " + img.message);
  }
  data.resize(size);
  // The simplified API writes no pHYs: add one after IHDR (8-byte signature + 25-byte IHDR).
  if (image.x_dpi > 0 && image.y_dpi > 0 && data.size() > 33) {
    std::vector<std::uint8_t> chunk;
    put_be32(chunk, 9);
    const char* type = "pHYs";
    chunk.insert(chunk.end(), type, type + 4);
    put_be32(chunk, static_cast<std::uint32_t>(std::lround(image.x_dpi / 0.0254)));
    put_be32(chunk, static_cast<std::uint32_t>(std::lround(image.y_dpi / 0.0254)));
    chunk.push_back(1);  // unit: metre
    const uLong crc = crc32(crc32(0L, Z_NULL, 0), chunk.data() + 4, 13);
    put_be32(chunk, static_cast<std::uint32_t>(crc));
    data.insert(data.begin() + 33, chunk.begin(), chunk.end());
  }
  temp_output out(path);
  std::FILE* f = std::fopen(out.path().c_str(), "wb");
  if (f == nullptr) {
    const int err = errno;
    throw fax_error(path + ": cannot create: " + errno_text(err));
  }
  const bool ok = std::fwrite(data.data(), 1, data.size(), f) == data.size();
  const bool closed = std::fclose(f) == 0;
  if (!ok || !closed) throw fax_error(path + ": write failed");
  out.commit();
}

}  // namespace switchboard::fax::detail
