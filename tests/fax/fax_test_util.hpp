// Test documents for the fax tests: hand-written PDFs with vector patterns, PNGs, TIFFs.
#pragma once

#include <string>
#include <vector>

#include "fax/bitmap.hpp"

namespace switchboard::fax::test {

// A fresh directory under /tmp (short paths: spandsp keeps 256 bytes), removed with the object.
class temp_dir {
 public:
  temp_dir();
  ~temp_dir();
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;
  std::string operator/(const std::string& name) const { return path_ + "/" + name; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

struct pdf_page_spec {
  double width_pt = 595.276;  // A4
  double height_pt = 841.89;
  int rotate = 0;         // /Rotate
  bool dangling = false;  // the page tree points at an object that does not exist
};

// A valid PDF whose page i shows a frame, i+1 bars, 150 pseudo-random boxes and thin lines seeded
// by i: every page differs and has structure for the T.4/T.6 coders.
void write_pdf(const std::string& path, const std::vector<pdf_page_spec>& pages);
void write_pdf(const std::string& path, int pages, double width_pt = 595.276,
               double height_pt = 841.89);

// An 8-bit grayscale PNG with a pattern (dpi <= 0: no pHYs chunk).
void write_png(const std::string& path, int width, int height, double dpi);
// An 8-bit grayscale TIFF (one or more pages), a pattern on each.
void write_gray_tiff(const std::string& path, int width, int height, double dpi, int pages = 1);
// A bilevel TIFF with the given geometry, G4, one page (for validate_tiff_f's refusals).
void write_bilevel_tiff(const std::string& path, int width, int height, double x_dpi, double y_dpi);

void write_file(const std::string& path, const std::string& bytes);
bool file_exists(const std::string& path);
std::string read_file(const std::string& path);

}  // namespace switchboard::fax::test
