// Received faxes for people: a PDF with the CCITT data embedded, and a PNG preview.
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "fax/document.hpp"
#include "fax/image_io.hpp"

namespace switchboard::fax {

namespace {

using detail::tiff_handle;

// The page's G4 data, most significant bit first: straight from the file when it holds exactly
// that, otherwise decoded and re-encoded.
std::vector<std::uint8_t> page_g4(tiff_handle& t, const detail::tiff_page_info& info) {
  TIFF* tif = t.get();
  std::uint32_t t6 = 0;
  TIFFGetField(tif, TIFFTAG_T6OPTIONS, &t6);
  if (info.compression == COMPRESSION_CCITTFAX4 && info.photometric == PHOTOMETRIC_MINISWHITE &&
      !info.tiled && TIFFNumberOfStrips(tif) == 1 && (t6 & GROUP4OPT_UNCOMPRESSED) == 0 &&
      info.bits_per_sample == 1 && info.samples_per_pixel == 1) {
    const tmsize_t size = TIFFRawStripSize(tif, 0);
    if (size > 0) {
      std::vector<std::uint8_t> raw(static_cast<std::size_t>(size));
      if (TIFFReadRawStrip(tif, 0, raw.data(), size) == size) {
        std::uint16_t fill = FILLORDER_MSB2LSB;
        TIFFGetFieldDefaulted(tif, TIFFTAG_FILLORDER, &fill);
        if (fill == FILLORDER_LSB2MSB) TIFFReverseBits(raw.data(), size);
        return raw;
      }
    }
  }
  return detail::encode_g4(detail::read_bilevel(t, info));
}

std::string num(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3f", v);
  return buf;
}

class pdf_builder {
 public:
  // Object numbers: 1 catalog, 2 pages, 3 info, then 3 per page (page, contents, image).
  void add_page(int width, int height, double x_dpi, double y_dpi, std::vector<std::uint8_t> g4) {
    pages_.push_back(page{width, height, x_dpi, y_dpi, std::move(g4)});
  }

  std::string build() {
    std::string out = "%PDF-1.4\n%\xE2\xE3\xCF\xD3\n";
    const int objects = 3 + 3 * static_cast<int>(pages_.size());
    std::vector<std::size_t> offsets(static_cast<std::size_t>(objects) + 1, 0);
    auto begin = [&](int n) {
      offsets[static_cast<std::size_t>(n)] = out.size();
      out += std::to_string(n) + " 0 obj\n";
    };
    begin(1);
    out += "<< /Type /Catalog /Pages 2 0 R >>\nendobj\n";
    begin(2);
    out += "<< /Type /Pages /Kids [";
    for (std::size_t i = 0; i < pages_.size(); ++i) out += std::to_string(4 + 3 * i) + " 0 R ";
    out += "] /Count " + std::to_string(pages_.size()) + " >>\nendobj\n";
    begin(3);
    out += "<< /Producer (Switchboard fax) >>\nendobj\n";
    for (std::size_t i = 0; i < pages_.size(); ++i) {
      const page& p = pages_[i];
      const int n = 4 + 3 * static_cast<int>(i);
      const std::string w = num(p.width * 72.0 / p.x_dpi);
      const std::string h = num(p.height * 72.0 / p.y_dpi);
      begin(n);
      out += "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 " + w + " " + h +
             "] /Resources << /XObject << /Im0 " + std::to_string(n + 2) + " 0 R >> >> /Contents " +
             std::to_string(n + 1) + " 0 R >>\nendobj\n";
      const std::string content = "q " + w + " 0 0 " + h + " 0 0 cm /Im0 Do Q\n";
      begin(n + 1);
      out += "<< /Length " + std::to_string(content.size()) + " >>\nstream\n" + content +
             "endstream\nendobj\n";
      begin(n + 2);
      out += "<< /Type /XObject /Subtype /Image /Width " + std::to_string(p.width) + " /Height " +
             std::to_string(p.height) +
             " /ColorSpace /DeviceGray /BitsPerComponent 1 /Filter /CCITTFaxDecode"
             " /DecodeParms << /K -1 /Columns " +
             std::to_string(p.width) + " /Rows " + std::to_string(p.height) +
             " /BlackIs1 false >> /Length " + std::to_string(p.g4.size()) + " >>\nstream\n";
      out.append(reinterpret_cast<const char*>(p.g4.data()), p.g4.size());
      out += "\nendstream\nendobj\n";
    }
    const std::size_t xref = out.size();
    out += "xref\n0 " + std::to_string(objects + 1) + "\n0000000000 65535 f \n";
    for (int n = 1; n <= objects; ++n) {
      char line[24];
      std::snprintf(line, sizeof line, "%010zu 00000 n \n", offsets[static_cast<std::size_t>(n)]);
      out += line;
    }
    out += "trailer\n<< /Size " + std::to_string(objects + 1) +
           " /Root 1 0 R /Info 3 0 R >>\nstartxref\n" + std::to_string(xref) + "\n%%EOF\n";
    return out;
  }

 private:
  struct page {
    int width;
    int height;
    double x_dpi;
    double y_dpi;
    std::vector<std::uint8_t> g4;
  };
  std::vector<page> pages_;
};

// Fax pages without a resolution are taken as fine.
void default_resolution(detail::tiff_page_info& info) {
  if (info.x_dpi <= 0 || info.y_dpi <= 0) {
    info.x_dpi = fax_x_dpi;
    info.y_dpi = y_dpi(resolution::fine);
  }
}

}  // namespace

int tiff_to_pdf(const std::string& tiff, const std::string& pdf) {
  tiff_handle t(tiff, "r");
  const int pages = t.page_count();
  if (pages <= 0) t.fail("no pages");
  pdf_builder builder;
  for (int i = 0; i < pages; ++i) {
    t.select(i);
    auto info = detail::page_info(t);
    default_resolution(info);
    try {
      builder.add_page(info.width, info.height, info.x_dpi, info.y_dpi, page_g4(t, info));
    } catch (const fax_error& e) {
      throw fax_error(tiff + ": page " + std::to_string(i + 1) + ": " + e.what());
    }
  }
  const std::string data = builder.build();
  detail::temp_output out(pdf);
  std::FILE* f = std::fopen(out.path().c_str(), "wb");
  if (f == nullptr) {
    const int err = errno;
    throw fax_error(pdf + ": cannot create: " + detail::errno_text(err));
  }
  const bool ok = std::fwrite(data.data(), 1, data.size(), f) == data.size();
  const bool closed = std::fclose(f) == 0;
  if (!ok || !closed) throw fax_error(pdf + ": write failed");
  out.commit();
  return pages;
}

void tiff_page_to_png(const std::string& tiff, int page_index, const std::string& png,
                      int max_width) {
  tiff_handle t(tiff, "r");
  t.select(page_index);
  auto info = detail::page_info(t);
  default_resolution(info);
  const detail::gray_image page = detail::to_gray(detail::read_bilevel(t, info));
  // Square pixels at the horizontal resolution, then at most max_width across.
  int width = page.width;
  double dpi = info.x_dpi;
  if (max_width > 0 && max_width < width) {
    dpi = dpi * max_width / width;
    width = max_width;
  }
  const int height = detail::pixels(page.height / info.y_dpi, dpi);
  detail::gray_image out =
      (width == page.width && height == page.height) ? page : detail::resample(page, width, height);
  out.x_dpi = dpi;
  out.y_dpi = dpi;
  detail::write_png(png, out);
}

}  // namespace switchboard::fax
