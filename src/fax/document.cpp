// to_tiff_f: PDF, PNG or TIFF in, TIFF Class F out.
#include <poppler-document.h>
#include <poppler-global.h>
#include <poppler-image.h>
#include <poppler-page-renderer.h>
#include <poppler-page.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <mutex>

#include "fax/document.hpp"
#include "fax/image_io.hpp"

namespace switchboard::fax {

namespace {

using detail::gray_image;

constexpr double fax_width_in = fax_width / fax_x_dpi;  // 8.47 in = 215 mm

enum class input_kind { pdf, png, tiff };

input_kind detect(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    const int err = errno;
    throw fax_error(path + ": cannot open: " + detail::errno_text(err));
  }
  char head[1024];
  in.read(head, sizeof head);
  const auto n = static_cast<std::size_t>(in.gcount());
  if (n == 0) throw fax_error(path + ": the file is empty");
  const std::string_view s(head, n);
  if (s.starts_with("\x89PNG\r\n\x1a\n")) return input_kind::png;
  if (s.starts_with(std::string_view("II*\0", 4)) || s.starts_with(std::string_view("MM\0*", 4)) ||
      s.starts_with(std::string_view("II+\0", 4)) || s.starts_with(std::string_view("MM\0+", 4))) {
    return input_kind::tiff;
  }
  // PDF readers accept the header anywhere in the first 1024 bytes.
  if (s.find("%PDF-") != std::string_view::npos) return input_kind::pdf;
  throw fax_error(path + ": not a PDF, PNG or TIFF file");
}

// How a page of w x h inches lands on the fax: turned to portrait if it is landscape and too wide,
// shrunk (never enlarged) to the fax width.
struct placement {
  bool rotate = false;
  double scale = 1.0;
  int width = 0;  // pixels at the fax resolution, <= fax_width
  int height = 0;
};

// Throws for a page longer than max_page_length_mm on the fax.
void check_length(double length_mm, const std::string& where) {
  if (length_mm > max_page_length_mm) {
    char text[128];
    std::snprintf(text, sizeof text, "is %.0f mm long on the fax; the limit is %.0f mm", length_mm,
                  max_page_length_mm);
    throw fax_error(where + text);
  }
}

placement place(double w_in, double h_in, double ydpi, const std::string& where) {
  if (!(w_in > 0) || !(h_in > 0) || !std::isfinite(w_in) || !std::isfinite(h_in)) {
    throw fax_error(where + "has no area");
  }
  placement p;
  if (w_in > h_in && w_in > fax_width_in * 1.01) {
    p.rotate = true;
    std::swap(w_in, h_in);
  }
  p.scale = std::min(1.0, fax_width_in / w_in);
  check_length(h_in * p.scale * 25.4, where);
  p.width = std::min(fax_width, detail::pixels(w_in * p.scale, fax_x_dpi));
  p.height = detail::pixels(h_in * p.scale, ydpi);
  return p;
}

bitmap finish(bitmap content, double ydpi) {
  bitmap page = detail::centre_on_fax_width(content);
  page.x_dpi = fax_x_dpi;
  page.y_dpi = ydpi;
  return page;
}

// A raster image (PNG or a TIFF page) laid out on a fax page.
bitmap raster_page(const gray_image& image, double ydpi, const std::string& where) {
  double w_in = fax_width_in;  // no resolution: fill the fax width, square pixels
  double h_in = fax_width_in * image.height / image.width;
  if (image.x_dpi > 0 && image.y_dpi > 0) {
    w_in = image.width / image.x_dpi;
    h_in = image.height / image.y_dpi;
  }
  const placement p = place(w_in, h_in, ydpi, where);
  if (p.rotate) {
    return finish(detail::resample_to_bitmap(detail::rotate_clockwise(image), p.width, p.height),
                  ydpi);
  }
  return finish(detail::resample_to_bitmap(image, p.width, p.height), ydpi);
}

class tiff_f_output {
 public:
  tiff_f_output(const std::string& path, tiff_coding coding)
      : temp_(path), tiff_(temp_.path(), "w"), coding_(coding) {}
  void add(const bitmap& page, int index, int total) {
    detail::write_fax_page(tiff_, page, index, total, coding_);
  }
  void commit() {
    tiff_.close();
    temp_.commit();
  }

 private:
  detail::temp_output temp_;
  detail::tiff_handle tiff_;
  tiff_coding coding_;
};

std::string page_prefix(const std::string& path, int index) {
  return path + ": page " + std::to_string(index + 1) + ": ";
}

// --- PDF -------------------------------------------------------------------------------------

thread_local std::string poppler_message;

void on_poppler_message(const std::string& message, void*) {
  poppler_message = message;
}

void quiet_poppler() {
  static std::once_flag once;
  std::call_once(once, [] { poppler::set_debug_error_function(&on_poppler_message, nullptr); });
}

std::string poppler_detail() {
  if (poppler_message.empty()) return "";
  std::string m = poppler_message;
  while (!m.empty() && (m.back() == '\n' || m.back() == ' ')) m.pop_back();
  return " (poppler: " + m + ")";
}

int pdf_to_tiff_f(const std::string& input, const std::string& output, const tiff_f_options& o) {
  quiet_poppler();
  poppler_message.clear();
  std::unique_ptr<poppler::document> doc(poppler::document::load_from_file(input));
  if (!doc) throw fax_error(input + ": not a readable PDF" + poppler_detail());
  if (doc->is_locked()) throw fax_error(input + ": the PDF is password-protected");
  const int pages = doc->pages();
  if (pages <= 0) throw fax_error(input + ": the PDF has no pages");
  if (pages > o.max_pages) throw fax_error(input + ": too many pages");
  const double ydpi = y_dpi(o.res);
  poppler::page_renderer renderer;
  renderer.set_image_format(poppler::image::format_gray8);
  tiff_f_output out(output, o.coding);
  for (int i = 0; i < pages; ++i) {
    const std::string where = page_prefix(input, i);
    poppler_message.clear();
    std::unique_ptr<poppler::page> page(doc->create_page(i));
    if (!page) throw fax_error(where + "cannot be read" + poppler_detail());
    const poppler::rectf box = page->page_rect(poppler::crop_box);
    double w_in = box.width() / 72.0;
    double h_in = box.height() / 72.0;
    const auto orientation = page->orientation();
    if (orientation == poppler::page::landscape || orientation == poppler::page::seascape) {
      std::swap(w_in, h_in);
    }
    const placement p = place(w_in, h_in, ydpi, where);
    const poppler::image img =
        renderer.render_page(page.get(), fax_x_dpi * p.scale, ydpi * p.scale, -1, -1, -1, -1,
                             p.rotate ? poppler::rotate_90 : poppler::rotate_0);
    if (!img.is_valid() || img.width() <= 0 || img.height() <= 0 ||
        img.format() != poppler::image::format_gray8) {
      throw fax_error(where + "poppler could not render it" + poppler_detail());
    }
    // Threshold; the rendering may be a pixel off the computed size, so crop to the fax width.
    const int width = std::min(img.width(), fax_width);
    bitmap content(width, img.height());
    const char* data = img.const_data();
    for (int y = 0; y < img.height(); ++y) {
      const auto* row = reinterpret_cast<const unsigned char*>(
          data + static_cast<std::ptrdiff_t>(y) * img.bytes_per_row());
      const int left = (img.width() - width) / 2;
      for (int x = 0; x < width; ++x) {
        if (row[left + x] < 128) content.set(x, y, true);
      }
    }
    out.add(finish(std::move(content), ydpi), i, pages);
  }
  out.commit();
  return pages;
}

// --- PNG and TIFF ----------------------------------------------------------------------------

int png_to_tiff_f(const std::string& input, const std::string& output, const tiff_f_options& o) {
  const gray_image image = detail::read_png(input, o.max_source_pixels);
  tiff_f_output out(output, o.coding);
  out.add(raster_page(image, y_dpi(o.res), page_prefix(input, 0)), 0, 1);
  out.commit();
  return 1;
}

int tiff_to_tiff_f(const std::string& input, const std::string& output, const tiff_f_options& o) {
  detail::tiff_handle in(input, "r");
  const int pages = in.page_count();
  if (pages <= 0) in.fail("no pages");
  if (pages > o.max_pages) in.fail("too many pages");
  const double ydpi = y_dpi(o.res);
  auto near = [](double v, double want) { return v >= want * 0.95 && v <= want * 1.05; };
  tiff_f_output out(output, o.coding);
  for (int i = 0; i < pages; ++i) {
    const std::string where = page_prefix(input, i);
    try {
      in.select(i);
      const auto info = detail::page_info(in);
      if (info.bits_per_sample == 1 && info.samples_per_pixel == 1 && !info.tiled &&
          info.width == fax_width && near(info.x_dpi, fax_x_dpi) && near(info.y_dpi, ydpi)) {
        // Already fax geometry: exact pixels, under the same bounds as a scaled page.
        check_length(info.height / ydpi * 25.4, where);
        if (static_cast<std::uint64_t>(info.width) * static_cast<std::uint64_t>(info.height) >
            o.max_source_pixels) {
          in.fail("page of " + std::to_string(info.width) + " x " + std::to_string(info.height) +
                  " pixels is too large to fax");
        }
        bitmap page = detail::read_bilevel(in, info);
        page.x_dpi = fax_x_dpi;
        page.y_dpi = ydpi;
        out.add(page, i, pages);
      } else {
        out.add(raster_page(detail::read_gray(in, info, o.max_source_pixels), ydpi, where), i,
                pages);
      }
    } catch (const fax_error& e) {
      std::string what = e.what();
      if (what.starts_with(where)) throw;
      if (what.starts_with(input + ": ")) what.erase(0, input.size() + 2);
      throw fax_error(where + what);
    }
  }
  out.commit();
  return pages;
}

}  // namespace

int to_tiff_f(const std::string& input, const std::string& output, resolution res) {
  tiff_f_options o;
  o.res = res;
  return to_tiff_f(input, output, o);
}

int to_tiff_f(const std::string& input, const std::string& output, const tiff_f_options& options) {
  switch (detect(input)) {
    case input_kind::pdf:
      return pdf_to_tiff_f(input, output, options);
    case input_kind::png:
      return png_to_tiff_f(input, output, options);
    case input_kind::tiff:
      return tiff_to_tiff_f(input, output, options);
  }
  throw fax_error(input + ": unsupported input");
}

}  // namespace switchboard::fax
