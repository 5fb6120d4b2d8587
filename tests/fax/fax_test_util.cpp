#include "fax_test_util.hpp"

#include <tiffio.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "fax/image_io.hpp"

namespace switchboard::fax::test {

temp_dir::temp_dir() {
  char tmpl[] = "/tmp/sbfax-XXXXXX";
  if (mkdtemp(tmpl) == nullptr) throw std::runtime_error("mkdtemp failed");
  path_ = tmpl;
}

temp_dir::~temp_dir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

void write_file(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out << bytes;
  if (!out) throw std::runtime_error("cannot write " + path);
}

bool file_exists(const std::string& path) {
  return std::filesystem::exists(path);
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

namespace {

// Deterministic pseudo-random numbers (the same documents on every run).
struct lcg {
  unsigned long long state;
  double next() {  // [0, 1)
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    return static_cast<double>(state >> 11) / static_cast<double>(1ULL << 53);
  }
};

std::string f2(double v) {
  char b[32];
  std::snprintf(b, sizeof b, "%.2f", v);
  return b;
}

std::string page_content(int index, double w, double h) {
  std::string c = "0 g\n";
  const double m = 36;
  // frame
  c += f2(m) + " " + f2(m) + " " + f2(w - 2 * m) + " 2 re f\n";
  c += f2(m) + " " + f2(h - m - 2) + " " + f2(w - 2 * m) + " 2 re f\n";
  c += f2(m) + " " + f2(m) + " 2 " + f2(h - 2 * m) + " re f\n";
  c += f2(w - m - 2) + " " + f2(m) + " 2 " + f2(h - 2 * m) + " re f\n";
  // index + 1 bars along the top
  for (int i = 0; i <= index; ++i) {
    c += f2(m + 12 + i * 16) + " " + f2(h - m - 40) + " 10 30 re f\n";
  }
  lcg r{static_cast<unsigned long long>(index) * 7919 + 17};
  for (int i = 0; i < 150; ++i) {
    const double bw = 2 + r.next() * 60;
    const double bh = 1 + r.next() * 25;
    const double x = m + 4 + r.next() * (w - 2 * m - 8 - bw);
    const double y = m + 4 + r.next() * (h - 2 * m - 60 - bh);
    c += f2(x) + " " + f2(y) + " " + f2(bw) + " " + f2(bh) + " re f\n";
  }
  // thin diagonals and a dark-grey (thresholds to black) block, a light one (to white)
  c += "0.6 w\n";
  for (int i = 0; i < 12; ++i) {
    const double x = m + r.next() * (w - 2 * m);
    const double y = m + r.next() * (h - 2 * m);
    c += f2(x) + " " + f2(y) + " m " + f2(m + r.next() * (w - 2 * m)) + " " +
         f2(m + r.next() * (h - 2 * m)) + " l S\n";
  }
  c += "0.25 g " + f2(w / 2) + " " + f2(h / 3) + " 40 20 re f\n";
  c += "0.85 g " + f2(w / 3) + " " + f2(h / 3) + " 40 20 re f\n";
  return c;
}

}  // namespace

void write_pdf(const std::string& path, const std::vector<pdf_page_spec>& pages) {
  std::string out = "%PDF-1.4\n";
  std::vector<std::size_t> offsets;
  auto obj = [&](const std::string& body) {
    offsets.push_back(out.size());
    out += std::to_string(offsets.size()) + " 0 obj\n" + body + "\nendobj\n";
  };
  const int n = static_cast<int>(pages.size());
  obj("<< /Type /Catalog /Pages 2 0 R >>");
  std::string kids;
  for (int i = 0; i < n; ++i) {
    kids += pages[static_cast<std::size_t>(i)].dangling ? "999 0 R "
                                                        : std::to_string(3 + 2 * i) + " 0 R ";
  }
  obj("<< /Type /Pages /Kids [" + kids + "] /Count " + std::to_string(n) + " >>");
  for (int i = 0; i < n; ++i) {
    const pdf_page_spec& p = pages[static_cast<std::size_t>(i)];
    const std::string box = "0 0 " + f2(p.width_pt) + " " + f2(p.height_pt);
    obj("<< /Type /Page /Parent 2 0 R /MediaBox [" + box + "] /Rotate " + std::to_string(p.rotate) +
        " /Contents " + std::to_string(4 + 2 * i) + " 0 R /Resources << >> >>");
    const std::string content = page_content(i, p.width_pt, p.height_pt);
    obj("<< /Length " + std::to_string(content.size()) + " >>\nstream\n" + content + "\nendstream");
  }
  const std::size_t xref = out.size();
  out += "xref\n0 " + std::to_string(offsets.size() + 1) + "\n0000000000 65535 f \n";
  for (const std::size_t off : offsets) {
    char line[24];
    std::snprintf(line, sizeof line, "%010zu 00000 n \n", off);
    out += line;
  }
  out += "trailer\n<< /Size " + std::to_string(offsets.size() + 1) +
         " /Root 1 0 R >>\nstartxref\n" + std::to_string(xref) + "\n%%EOF\n";
  write_file(path, out);
}

void write_pdf(const std::string& path, int pages, double width_pt, double height_pt) {
  pdf_page_spec spec;
  spec.width_pt = width_pt;
  spec.height_pt = height_pt;
  write_pdf(path, std::vector<pdf_page_spec>(static_cast<std::size_t>(pages), spec));
}

namespace {

detail::gray_image pattern(int width, int height, int seed) {
  detail::gray_image g(width, height);
  lcg r{static_cast<unsigned long long>(seed) + 3};
  for (int i = 0; i < 40; ++i) {
    const int bw = 1 + static_cast<int>(r.next() * width / 5);
    const int bh = 1 + static_cast<int>(r.next() * height / 5);
    const int x0 = static_cast<int>(r.next() * (width - bw));
    const int y0 = static_cast<int>(r.next() * (height - bh));
    const auto v = static_cast<std::uint8_t>(r.next() < 0.7 ? 0 : 200);
    for (int y = y0; y < y0 + bh; ++y) {
      for (int x = x0; x < x0 + bw; ++x) g.row(y)[x] = v;
    }
  }
  return g;
}

}  // namespace

void write_png(const std::string& path, int width, int height, double dpi) {
  detail::gray_image g = pattern(width, height, 1);
  if (dpi > 0) {
    g.x_dpi = dpi;
    g.y_dpi = dpi;
  }
  detail::write_png(path, g);
}

void write_gray_tiff(const std::string& path, int width, int height, double dpi, int pages) {
  TIFF* t = TIFFOpen(path.c_str(), "w");
  if (t == nullptr) throw std::runtime_error("cannot create " + path);
  for (int p = 0; p < pages; ++p) {
    const detail::gray_image g = pattern(width, height, p + 10);
    TIFFSetField(t, TIFFTAG_IMAGEWIDTH, static_cast<std::uint32_t>(width));
    TIFFSetField(t, TIFFTAG_IMAGELENGTH, static_cast<std::uint32_t>(height));
    TIFFSetField(t, TIFFTAG_BITSPERSAMPLE, 8);
    TIFFSetField(t, TIFFTAG_SAMPLESPERPIXEL, 1);
    TIFFSetField(t, TIFFTAG_PHOTOMETRIC, PHOTOMETRIC_MINISBLACK);
    TIFFSetField(t, TIFFTAG_PLANARCONFIG, PLANARCONFIG_CONTIG);
    TIFFSetField(t, TIFFTAG_COMPRESSION, COMPRESSION_ADOBE_DEFLATE);
    TIFFSetField(t, TIFFTAG_ROWSPERSTRIP, 64U);
    TIFFSetField(t, TIFFTAG_XRESOLUTION, static_cast<float>(dpi));
    TIFFSetField(t, TIFFTAG_YRESOLUTION, static_cast<float>(dpi));
    TIFFSetField(t, TIFFTAG_RESOLUTIONUNIT, RESUNIT_INCH);
    for (int y = 0; y < height; ++y) {
      std::vector<std::uint8_t> row(g.row(y), g.row(y) + width);
      if (TIFFWriteScanline(t, row.data(), static_cast<std::uint32_t>(y), 0) != 1) {
        TIFFClose(t);
        throw std::runtime_error("cannot write " + path);
      }
    }
    TIFFWriteDirectory(t);
  }
  TIFFClose(t);
}

void write_bilevel_tiff(const std::string& path, int width, int height, double x_dpi,
                        double y_dpi) {
  bitmap b(width, height, x_dpi, y_dpi);
  for (int y = 0; y < height; y += 7) {
    for (int x = y % 13; x < width; x += 11) b.set(x, y, true);
  }
  detail::tiff_handle t(path, "w");
  detail::write_fax_page(t, b, 0, 1, tiff_coding::mmr);
  t.close();
}

}  // namespace switchboard::fax::test
