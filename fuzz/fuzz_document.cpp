// The importers of `switchboard-fax send` (fax/document.hpp to_tiff_f: PDF through poppler, PNG
// through libpng, TIFF through libtiff; the kind recognised by its first bytes) fed arbitrary
// files. The input is written to a scratch file because the API takes paths.
//
// A conversion may fail only with fax_error, and then leaves no output file behind. One that
// succeeds must have written a TIFF-F that validate_tiff_f accepts, with the page count it
// returned, every page at most max_page_length_mm long. Work is bounded: at most 4 pages and
// 4 M source pixels per page (tiff_f_options), and the input length by -max_len (scripts/fuzz.sh).
#include <cstdint>
#include <filesystem>
#include <string>

#include "check.hpp"
#include "fax/document.hpp"
#include "fax/error.hpp"
#include "temp_file.hpp"

using namespace switchboard;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const fuzz::scratch_dir dir("fuzz_document");
  const std::string input = dir.write("input", {data, size});
  const std::string output = dir.path("output.tif");
  std::filesystem::remove(output);
  fax::tiff_f_options o;
  o.max_pages = 4;
  o.max_source_pixels = 4'000'000;
  // Vary resolution and coding with the input's length, so every corpus entry is stable.
  o.res = size % 2 == 0 ? fax::resolution::fine : fax::resolution::standard;
  o.coding = static_cast<fax::tiff_coding>(size / 2 % 3);
  int pages = 0;
  try {
    pages = fax::to_tiff_f(input, output, o);
  } catch (const fax::fax_error&) {
    FUZZ_CHECK(!std::filesystem::exists(output), "a failed conversion left its output");
    FUZZ_CHECK(!std::filesystem::exists(output + ".part"),
               "a failed conversion left its temp file");
    return 0;
  }
  FUZZ_CHECK(pages >= 1 && pages <= o.max_pages, "page count");
  FUZZ_CHECK(fax::validate_tiff_f(output) == pages, "the output is not the TIFF-F it claims");
  const double max_rows = fax::max_page_length_mm / 25.4 * fax::y_dpi(o.res) + 1;
  for (int i = 0; i < pages; ++i) {
    const fax::bitmap page = fax::decode_tiff_page(output, i);
    FUZZ_CHECK(page.width == fax::fax_width, "page width");
    FUZZ_CHECK(page.height >= 1 && page.height <= max_rows, "page longer than the limit");
  }
  return 0;
}
