#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <memory>

#include "fax/document.hpp"
#include "fax/image_io.hpp"

namespace switchboard::fax::detail {

// --- an in-memory file for TIFFClientOpen ----------------------------------------------------

struct tiff_handle::memory_file {
  std::vector<std::uint8_t>& data;
  std::uint64_t pos = 0;

  static tmsize_t read(thandle_t h, void* buf, tmsize_t size) {
    auto& m = *static_cast<memory_file*>(h);
    if (size <= 0 || m.pos >= m.data.size()) return 0;
    const auto n = std::min<std::uint64_t>(static_cast<std::uint64_t>(size), m.data.size() - m.pos);
    std::memcpy(buf, m.data.data() + m.pos, n);
    m.pos += n;
    return static_cast<tmsize_t>(n);
  }
  static tmsize_t write(thandle_t h, void* buf, tmsize_t size) {
    auto& m = *static_cast<memory_file*>(h);
    if (size <= 0) return 0;
    const auto n = static_cast<std::uint64_t>(size);
    if (m.pos + n > m.data.size()) m.data.resize(m.pos + n);
    std::memcpy(m.data.data() + m.pos, buf, n);
    m.pos += n;
    return size;
  }
  static toff_t seek(thandle_t h, toff_t off, int whence) {
    auto& m = *static_cast<memory_file*>(h);
    std::uint64_t base = 0;
    if (whence == SEEK_CUR) base = m.pos;
    if (whence == SEEK_END) base = m.data.size();
    m.pos = base + off;
    return m.pos;
  }
  static int close(thandle_t) { return 0; }
  static toff_t size(thandle_t h) { return static_cast<memory_file*>(h)->data.size(); }
  static int map(thandle_t, void**, toff_t*) { return 0; }
  static void unmap(thandle_t, void*, toff_t) {}
};

int tiff_handle::on_error(TIFF*, void* self, const char* module, const char* fmt, va_list ap) {
  char text[512];
  std::vsnprintf(text, sizeof text, fmt, ap);
  auto& h = *static_cast<tiff_handle*>(self);
  h.last_error = text;
  (void)module;
  return 1;  // handled: libtiff prints nothing
}

int tiff_handle::on_warning(TIFF*, void*, const char*, const char*, va_list) {
  return 1;
}

tiff_handle::tiff_handle(const std::string& path, const char* mode) : path_(path) {
  open(mode);
}

tiff_handle::tiff_handle(std::vector<std::uint8_t>& data, const char* mode)
    : path_("(memory)"), mem_(new memory_file{data}) {
  open(mode);
}

void tiff_handle::open(const char* mode) {
  std::unique_ptr<TIFFOpenOptions, void (*)(TIFFOpenOptions*)> opts(TIFFOpenOptionsAlloc(),
                                                                    TIFFOpenOptionsFree);
  TIFFOpenOptionsSetErrorHandlerExtR(opts.get(), &tiff_handle::on_error, this);
  TIFFOpenOptionsSetWarningHandlerExtR(opts.get(), &tiff_handle::on_warning, this);
  if (mem_ != nullptr) {
    tif_ = TIFFClientOpenExt(path_.c_str(), mode, mem_, &memory_file::read, &memory_file::write,
                             &memory_file::seek, &memory_file::close, &memory_file::size,
                             &memory_file::map, &memory_file::unmap, opts.get());
  } else {
    tif_ = TIFFOpenExt(path_.c_str(), mode, opts.get());
  }
  if (tif_ == nullptr) {
    delete mem_;
    mem_ = nullptr;
    const bool writing = std::strchr(mode, 'w') != nullptr;
    throw fax_error(path_ + (writing ? ": cannot create TIFF: " : ": not a readable TIFF: ") +
                    (last_error.empty() ? "unknown error" : last_error));
  }
}

tiff_handle::~tiff_handle() {
  if (tif_ != nullptr) TIFFClose(tif_);
  delete mem_;
}

void tiff_handle::close() {
  if (tif_ == nullptr) return;
  TIFF* t = tif_;
  tif_ = nullptr;
  last_error.clear();
  const int flushed = TIFFFlush(t);
  TIFFClose(t);
  if (flushed != 1) {
    throw fax_error(path_ +
                    ": writing failed: " + (last_error.empty() ? "unknown error" : last_error));
  }
}

void tiff_handle::fail(const std::string& what) const {
  throw fax_error(path_ + ": " + what + (last_error.empty() ? "" : ": " + last_error));
}

int tiff_handle::page_count() const {
  const tdir_t n = TIFFNumberOfDirectories(tif_);
  return static_cast<int>(n);
}

void tiff_handle::select(int page_index) {
  if (page_index < 0 || page_index >= page_count() ||
      TIFFSetDirectory(tif_, static_cast<tdir_t>(page_index)) != 1) {
    fail("there is no page " + std::to_string(page_index + 1) + " (the file has " +
         std::to_string(page_count()) + ")");
  }
}

tiff_page_info page_info(const tiff_handle& t) {
  TIFF* tif = t.get();
  tiff_page_info info;
  std::uint32_t w = 0;
  std::uint32_t h = 0;
  TIFFGetField(tif, TIFFTAG_IMAGEWIDTH, &w);
  TIFFGetField(tif, TIFFTAG_IMAGELENGTH, &h);
  if (w == 0 || h == 0 || w > 100000 || h > 1000000) {
    t.fail("bad page size " + std::to_string(w) + " x " + std::to_string(h));
  }
  info.width = static_cast<int>(w);
  info.height = static_cast<int>(h);
  std::uint16_t v = 0;
  TIFFGetFieldDefaulted(tif, TIFFTAG_BITSPERSAMPLE, &v);
  info.bits_per_sample = v;
  TIFFGetFieldDefaulted(tif, TIFFTAG_SAMPLESPERPIXEL, &v);
  info.samples_per_pixel = v;
  v = PHOTOMETRIC_MINISWHITE;
  if (TIFFGetField(tif, TIFFTAG_PHOTOMETRIC, &v) == 1) info.photometric = v;
  TIFFGetFieldDefaulted(tif, TIFFTAG_COMPRESSION, &v);
  info.compression = v;
  info.tiled = TIFFIsTiled(tif) != 0;
  float xr = 0;
  float yr = 0;
  std::uint16_t unit = RESUNIT_INCH;
  const bool have_x = TIFFGetField(tif, TIFFTAG_XRESOLUTION, &xr) == 1;
  const bool have_y = TIFFGetField(tif, TIFFTAG_YRESOLUTION, &yr) == 1;
  TIFFGetFieldDefaulted(tif, TIFFTAG_RESOLUTIONUNIT, &unit);
  if (have_x && have_y && xr > 0 && yr > 0 && std::isfinite(xr) && std::isfinite(yr) &&
      unit != RESUNIT_NONE) {
    const double f = unit == RESUNIT_CENTIMETER ? 2.54 : 1.0;
    info.x_dpi = xr * f;
    info.y_dpi = yr * f;
  }
  return info;
}

bitmap read_bilevel(tiff_handle& t, const tiff_page_info& info) {
  if (info.bits_per_sample != 1 || info.samples_per_pixel != 1 || info.tiled) {
    t.fail("not a bilevel (1 bit per pixel, striped) page");
  }
  bitmap b(info.width, info.height, info.x_dpi, info.y_dpi);
  const tmsize_t line = TIFFScanlineSize(t.get());
  if (line < static_cast<tmsize_t>(b.stride())) t.fail("bad scanline size");
  std::vector<std::uint8_t> buf(static_cast<std::size_t>(line));
  const bool invert = info.photometric == PHOTOMETRIC_MINISBLACK;
  const int tail = info.width % 8;
  const auto tail_mask = static_cast<std::uint8_t>(tail == 0 ? 0xFF : (0xFF << (8 - tail)));
  for (int y = 0; y < info.height; ++y) {
    if (TIFFReadScanline(t.get(), buf.data(), static_cast<std::uint32_t>(y), 0) != 1) {
      t.fail("cannot decode row " + std::to_string(y + 1));
    }
    std::uint8_t* out = b.row(y);
    for (std::size_t i = 0; i < b.stride(); ++i) {
      out[i] = invert ? static_cast<std::uint8_t>(~buf[i]) : buf[i];
    }
    out[b.stride() - 1] &= tail_mask;
  }
  return b;
}

gray_image read_gray(tiff_handle& t, const tiff_page_info& info, std::uint64_t max_pixels) {
  if (static_cast<std::uint64_t>(info.width) * static_cast<std::uint64_t>(info.height) >
      max_pixels) {
    t.fail("page of " + std::to_string(info.width) + " x " + std::to_string(info.height) +
           " pixels is too large to fax");
  }
  if (info.bits_per_sample == 1 && info.samples_per_pixel == 1 && !info.tiled) {
    gray_image g = to_gray(read_bilevel(t, info));
    g.x_dpi = info.x_dpi;
    g.y_dpi = info.y_dpi;
    return g;
  }
  std::vector<std::uint32_t> rgba(static_cast<std::size_t>(info.width) *
                                  static_cast<std::size_t>(info.height));
  if (TIFFReadRGBAImageOriented(t.get(), static_cast<std::uint32_t>(info.width),
                                static_cast<std::uint32_t>(info.height), rgba.data(),
                                ORIENTATION_TOPLEFT, 0) != 1) {
    t.fail("cannot decode the image");
  }
  gray_image g(info.width, info.height);
  g.x_dpi = info.x_dpi;
  g.y_dpi = info.y_dpi;
  for (std::size_t i = 0; i < rgba.size(); ++i) {
    const std::uint32_t p = rgba[i];
    const unsigned r = TIFFGetR(p);
    const unsigned gr = TIFFGetG(p);
    const unsigned b = TIFFGetB(p);
    const unsigned a = TIFFGetA(p);
    const unsigned lum = (r * 299 + gr * 587 + b * 114 + 500) / 1000;
    g.px[i] = static_cast<std::uint8_t>((lum * a + 255 * (255 - a) + 127) / 255);
  }
  return g;
}

namespace {

void set_fax_fields(TIFF* tif, const bitmap& page, tiff_coding coding, int fill_order) {
  TIFFSetField(tif, TIFFTAG_SUBFILETYPE, FILETYPE_PAGE);
  TIFFSetField(tif, TIFFTAG_IMAGEWIDTH, static_cast<std::uint32_t>(page.width));
  TIFFSetField(tif, TIFFTAG_IMAGELENGTH, static_cast<std::uint32_t>(page.height));
  TIFFSetField(tif, TIFFTAG_BITSPERSAMPLE, 1);
  TIFFSetField(tif, TIFFTAG_SAMPLESPERPIXEL, 1);
  TIFFSetField(tif, TIFFTAG_PLANARCONFIG, PLANARCONFIG_CONTIG);
  TIFFSetField(tif, TIFFTAG_PHOTOMETRIC, PHOTOMETRIC_MINISWHITE);
  TIFFSetField(tif, TIFFTAG_FILLORDER, fill_order);
  TIFFSetField(tif, TIFFTAG_ORIENTATION, ORIENTATION_TOPLEFT);
  switch (coding) {
    case tiff_coding::mmr:
      TIFFSetField(tif, TIFFTAG_COMPRESSION, COMPRESSION_CCITTFAX4);
      TIFFSetField(tif, TIFFTAG_T6OPTIONS, 0);
      break;
    case tiff_coding::mr:
      TIFFSetField(tif, TIFFTAG_COMPRESSION, COMPRESSION_CCITTFAX3);
      TIFFSetField(tif, TIFFTAG_GROUP3OPTIONS, GROUP3OPT_2DENCODING | GROUP3OPT_FILLBITS);
      break;
    case tiff_coding::mh:
      TIFFSetField(tif, TIFFTAG_COMPRESSION, COMPRESSION_CCITTFAX3);
      TIFFSetField(tif, TIFFTAG_GROUP3OPTIONS, GROUP3OPT_FILLBITS);
      break;
  }
  TIFFSetField(tif, TIFFTAG_ROWSPERSTRIP, static_cast<std::uint32_t>(page.height));
  if (page.x_dpi > 0 && page.y_dpi > 0) {
    TIFFSetField(tif, TIFFTAG_XRESOLUTION, static_cast<float>(page.x_dpi));
    TIFFSetField(tif, TIFFTAG_YRESOLUTION, static_cast<float>(page.y_dpi));
    TIFFSetField(tif, TIFFTAG_RESOLUTIONUNIT, RESUNIT_INCH);
  }
}

}  // namespace

void write_fax_page(tiff_handle& t, const bitmap& page, int page_index, int page_total,
                    tiff_coding coding) {
  TIFF* tif = t.get();
  set_fax_fields(tif, page, coding, FILLORDER_LSB2MSB);
  TIFFSetField(tif, TIFFTAG_PAGENUMBER, page_index, page_total);
  TIFFSetField(tif, TIFFTAG_SOFTWARE, "Switchboard fax");
  // libtiff wants a mutable buffer; it does not change it.
  std::vector<std::uint8_t> data = page.bits;
  if (TIFFWriteEncodedStrip(tif, 0, data.data(), static_cast<tmsize_t>(data.size())) < 0) {
    t.fail("cannot write page " + std::to_string(page_index + 1));
  }
  if (TIFFWriteDirectory(tif) != 1) t.fail("cannot write page " + std::to_string(page_index + 1));
}

std::vector<std::uint8_t> encode_g4(const bitmap& page) {
  std::vector<std::uint8_t> file;
  {
    tiff_handle out(file, "w");
    set_fax_fields(out.get(), page, tiff_coding::mmr, FILLORDER_MSB2LSB);
    std::vector<std::uint8_t> data = page.bits;
    if (TIFFWriteEncodedStrip(out.get(), 0, data.data(), static_cast<tmsize_t>(data.size())) < 0) {
      out.fail("G4 encoding failed");
    }
    out.close();
  }
  tiff_handle in(file, "r");
  const tmsize_t size = TIFFRawStripSize(in.get(), 0);
  if (size <= 0) in.fail("G4 encoding produced no data");
  std::vector<std::uint8_t> raw(static_cast<std::size_t>(size));
  if (TIFFReadRawStrip(in.get(), 0, raw.data(), size) != size) in.fail("G4 read-back failed");
  return raw;
}

}  // namespace switchboard::fax::detail

namespace switchboard::fax {

using detail::tiff_handle;

int tiff_page_count(const std::string& tiff) {
  tiff_handle t(tiff, "r");
  return t.page_count();
}

bitmap decode_tiff_page(const std::string& tiff, int page_index) {
  tiff_handle t(tiff, "r");
  t.select(page_index);
  const auto info = detail::page_info(t);
  return detail::read_bilevel(t, info);
}

int validate_tiff_f(const std::string& tiff) {
  tiff_handle t(tiff, "r");
  const int pages = t.page_count();
  if (pages <= 0) t.fail("no pages");
  auto near = [](double v, double want) { return v >= want * 0.95 && v <= want * 1.05; };
  for (int i = 0; i < pages; ++i) {
    t.select(i);
    const auto info = detail::page_info(t);
    const std::string page = tiff + ": page " + std::to_string(i + 1) + ": ";
    if (info.bits_per_sample != 1 || info.samples_per_pixel != 1) {
      throw fax_error(page + std::to_string(info.bits_per_sample * info.samples_per_pixel) +
                      " bits per pixel (TIFF-F is bilevel: convert it with to_tiff_f)");
    }
    if (info.width != fax_width) {
      throw fax_error(page + std::to_string(info.width) + " pixels wide (TIFF-F needs " +
                      std::to_string(fax_width) + ")");
    }
    if (!near(info.x_dpi, fax_x_dpi) || !(near(info.y_dpi, y_dpi(resolution::fine)) ||
                                          near(info.y_dpi, y_dpi(resolution::standard)))) {
      char res[64];
      std::snprintf(res, sizeof res, "%.0f x %.0f dpi", info.x_dpi, info.y_dpi);
      throw fax_error(page + "resolution " + (info.x_dpi > 0 ? std::string(res) : "unknown") +
                      " (TIFF-F needs 204 x 98 or 204 x 196)");
    }
  }
  return pages;
}

}  // namespace switchboard::fax
