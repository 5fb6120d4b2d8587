// Internal to the fax library: grayscale images, resampling, and thin RAII layers over libtiff and
// libpng that turn their errors into fax_error. Not an API for other layers.
#pragma once

#include <cstdarg>
#include <cstdint>
#include <string>
#include <vector>

#include <tiffio.h>

#include "fax/bitmap.hpp"
#include "fax/document.hpp"
#include "fax/error.hpp"

namespace switchboard::fax::detail {

// 8 bits per pixel, 0 = black, 255 = white, rows top to bottom without padding.
struct gray_image {
  int width = 0;
  int height = 0;
  double x_dpi = 0;  // 0 = unknown
  double y_dpi = 0;
  std::vector<std::uint8_t> px;

  gray_image() = default;
  gray_image(int w, int h)
      : width(w), height(h), px(static_cast<std::size_t>(w) * static_cast<std::size_t>(h), 255) {}
  std::uint8_t* row(int y) { return px.data() + static_cast<std::size_t>(y) * width; }
  const std::uint8_t* row(int y) const { return px.data() + static_cast<std::size_t>(y) * width; }
};

gray_image to_gray(const bitmap& b);
// Area-averaging resize (a box filter: every source pixel counts by the area it covers).
gray_image resample(const gray_image& src, int width, int height);
// Resize as above and threshold: an output pixel is black if its average is darker than mid-grey,
// so a one-pixel line survives a 2:1 reduction.
bitmap resample_to_bitmap(const gray_image& src, int width, int height);
bitmap threshold(const gray_image& src);
// Turned a quarter clockwise.
gray_image rotate_clockwise(const gray_image& src);
// `content` (at most fax_width wide) centred on a white fax_width row.
bitmap centre_on_fax_width(const bitmap& content);

// Pixels needed to show `inches` at `dpi`, at least 1.
int pixels(double inches, double dpi);

// A file written under a temporary name and renamed over the target by commit(); removed if
// never committed.
class temp_output {
 public:
  explicit temp_output(std::string target);
  ~temp_output();
  temp_output(const temp_output&) = delete;
  temp_output& operator=(const temp_output&) = delete;
  const std::string& path() const { return temp_; }
  void commit();

 private:
  std::string target_;
  std::string temp_;
  bool committed_ = false;
};

std::string errno_text(int err);

// --- libtiff ---------------------------------------------------------------------------------

// An open TIFF whose libtiff errors are collected (not printed) for the exception text.
class tiff_handle {
 public:
  tiff_handle(const std::string& path, const char* mode);
  // An in-memory TIFF ("w" to build one, "r" to read `data`).
  tiff_handle(std::vector<std::uint8_t>& data, const char* mode);
  ~tiff_handle();
  tiff_handle(const tiff_handle&) = delete;
  tiff_handle& operator=(const tiff_handle&) = delete;

  TIFF* get() const { return tif_; }
  const std::string& path() const { return path_; }
  // Throws fax_error("<path>: <what>: <libtiff message>").
  [[noreturn]] void fail(const std::string& what) const;
  // Selects a page; throws if there is none.
  void select(int page_index);
  int page_count() const;
  // Flushes and closes (so write errors are seen); the destructor closes silently.
  void close();

  std::string last_error;  // most recent libtiff error message

 private:
  static int on_error(TIFF*, void* self, const char* module, const char* fmt, va_list ap);
  static int on_warning(TIFF*, void* self, const char* module, const char* fmt, va_list ap);
  void open(const char* mode);

  std::string path_;
  TIFF* tif_ = nullptr;
  struct memory_file;
  memory_file* mem_ = nullptr;
};

struct tiff_page_info {
  int width = 0;
  int height = 0;
  int bits_per_sample = 1;
  int samples_per_pixel = 1;
  int photometric = PHOTOMETRIC_MINISWHITE;
  int compression = COMPRESSION_NONE;
  double x_dpi = 0;  // 0 = unknown (no tag, or ResolutionUnit none)
  double y_dpi = 0;
  bool tiled = false;
};
tiff_page_info page_info(const tiff_handle& t);

// The current page of a 1-bit strip TIFF.
bitmap read_bilevel(tiff_handle& t, const tiff_page_info& info);
// The current page of any TIFF, as grey (through libtiff's RGBA reader, alpha over white).
// Refuses a page of more than max_pixels.
gray_image read_gray(tiff_handle& t, const tiff_page_info& info,
                     std::uint64_t max_pixels = 200'000'000);

// Appends one page of TIFF-F to a file opened for writing.
void write_fax_page(tiff_handle& t, const bitmap& page, int page_index, int page_total,
                    tiff_coding coding);
// One page as raw T.6 (G4) data, most significant bit first, as PDF's /CCITTFaxDecode K -1 wants.
std::vector<std::uint8_t> encode_g4(const bitmap& page);

// --- libpng ----------------------------------------------------------------------------------

// x_dpi/y_dpi from pHYs, else 0. Refuses an image of more than max_pixels.
gray_image read_png(const std::string& path, std::uint64_t max_pixels = 200'000'000);
void write_png(const std::string& path, const gray_image& image);  // pHYs from x_dpi/y_dpi if set

}  // namespace switchboard::fax::detail
