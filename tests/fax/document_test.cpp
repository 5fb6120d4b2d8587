#include "fax/document.hpp"

#include <gtest/gtest.h>
#include <poppler-document.h>
#include <poppler-image.h>
#include <poppler-page-renderer.h>
#include <poppler-page.h>
#include <tiffio.h>

#include <cmath>
#include <memory>

#include "fax/image_io.hpp"
#include "fax_test_util.hpp"

namespace switchboard::fax {
namespace {

using test::temp_dir;

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const fax_error& e) {
    return e.what();
  }
  return "(no fax_error)";
}

bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

struct tags {
  int compression = 0;
  int fill_order = 0;
  int photometric = -1;
  int page = -1;
  int pages = -1;
  float x_res = 0;
  float y_res = 0;
  std::uint32_t strips = 0;
};

tags read_tags(const std::string& path, int index) {
  TIFF* t = TIFFOpen(path.c_str(), "r");
  EXPECT_NE(t, nullptr);
  tags g;
  if (t == nullptr) return g;
  EXPECT_EQ(TIFFSetDirectory(t, static_cast<tdir_t>(index)), 1);
  std::uint16_t v = 0;
  TIFFGetField(t, TIFFTAG_COMPRESSION, &v);
  g.compression = v;
  TIFFGetField(t, TIFFTAG_FILLORDER, &v);
  g.fill_order = v;
  TIFFGetField(t, TIFFTAG_PHOTOMETRIC, &v);
  g.photometric = v;
  std::uint16_t a = 0;
  std::uint16_t b = 0;
  if (TIFFGetField(t, TIFFTAG_PAGENUMBER, &a, &b) == 1) {
    g.page = a;
    g.pages = b;
  }
  TIFFGetField(t, TIFFTAG_XRESOLUTION, &g.x_res);
  TIFFGetField(t, TIFFTAG_YRESOLUTION, &g.y_res);
  g.strips = TIFFNumberOfStrips(t);
  TIFFClose(t);
  return g;
}

// Columns [from, to) of a page have no black pixel.
bool white_columns(const bitmap& b, int from, int to) {
  for (int y = 0; y < b.height; ++y) {
    for (int x = from; x < to; ++x) {
      if (b.black(x, y)) return false;
    }
  }
  return true;
}

// --- PDF -------------------------------------------------------------------------------------

TEST(FaxDocument, A4PdfToFineTiffF) {
  temp_dir d;
  test::write_pdf(d / "in.pdf", 3);
  EXPECT_EQ(to_tiff_f(d / "in.pdf", d / "out.tif", resolution::fine), 3);
  EXPECT_EQ(validate_tiff_f(d / "out.tif"), 3);
  EXPECT_FALSE(test::file_exists(d / "out.tif.part"));
  for (int i = 0; i < 3; ++i) {
    const tags t = read_tags(d / "out.tif", i);
    EXPECT_EQ(t.compression, COMPRESSION_CCITTFAX4);
    EXPECT_EQ(t.fill_order, FILLORDER_LSB2MSB);
    EXPECT_EQ(t.photometric, PHOTOMETRIC_MINISWHITE);
    EXPECT_EQ(t.page, i);
    EXPECT_EQ(t.pages, 3);
    EXPECT_FLOAT_EQ(t.x_res, 204.0F);
    EXPECT_FLOAT_EQ(t.y_res, 196.0F);
    EXPECT_EQ(t.strips, 1U);
    const bitmap b = decode_tiff_page(d / "out.tif", i);
    EXPECT_EQ(b.width, 1728);
    EXPECT_EQ(b.height, 2292);  // 297 mm at 196 dpi
    // A4 (210 mm = 1687 px) keeps its true size, centred: 20 white columns each side.
    EXPECT_TRUE(white_columns(b, 0, 20));
    EXPECT_TRUE(white_columns(b, 1708, 1728));
    EXPECT_GT(b.black_pixels(), 20000U);
  }
  // Pages differ (page i has i + 1 bars and its own random boxes).
  EXPECT_FALSE(same_pixels(decode_tiff_page(d / "out.tif", 0), decode_tiff_page(d / "out.tif", 1)));
}

TEST(FaxDocument, A4PdfToStandard) {
  temp_dir d;
  test::write_pdf(d / "in.pdf", 1);
  EXPECT_EQ(to_tiff_f(d / "in.pdf", d / "out.tif", resolution::standard), 1);
  const bitmap b = decode_tiff_page(d / "out.tif", 0);
  EXPECT_EQ(b.width, 1728);
  EXPECT_EQ(b.height, 1146);
  EXPECT_FLOAT_EQ(read_tags(d / "out.tif", 0).y_res, 98.0F);
}

TEST(FaxDocument, LetterPdfIsScaledToTheFaxWidth) {
  temp_dir d;
  test::write_pdf(d / "in.pdf", 1, 612, 792);
  to_tiff_f(d / "in.pdf", d / "out.tif", resolution::fine);
  const bitmap b = decode_tiff_page(d / "out.tif", 0);
  EXPECT_EQ(b.width, 1728);
  EXPECT_NEAR(b.height, 11 * 196 * (1728.0 / 1734.0), 2);
}

TEST(FaxDocument, LandscapePagesAreTurnedToPortrait) {
  temp_dir d;
  std::vector<test::pdf_page_spec> pages(2);
  pages[0].width_pt = 841.89;  // landscape by its box
  pages[0].height_pt = 595.276;
  pages[1].rotate = 90;  // landscape by /Rotate
  test::write_pdf(d / "in.pdf", pages);
  EXPECT_EQ(to_tiff_f(d / "in.pdf", d / "out.tif", resolution::fine), 2);
  for (int i = 0; i < 2; ++i) {
    const bitmap b = decode_tiff_page(d / "out.tif", i);
    EXPECT_EQ(b.width, 1728) << i;
    EXPECT_NEAR(b.height, 2292, 2) << i;
    EXPECT_TRUE(white_columns(b, 0, 20)) << i;
  }
}

TEST(FaxDocument, CodingOptionsGiveTheSamePixels) {
  temp_dir d;
  test::write_pdf(d / "in.pdf", 1);
  tiff_f_options o;
  o.coding = tiff_coding::mmr;
  to_tiff_f(d / "in.pdf", d / "mmr.tif", o);
  o.coding = tiff_coding::mr;
  to_tiff_f(d / "in.pdf", d / "mr.tif", o);
  o.coding = tiff_coding::mh;
  to_tiff_f(d / "in.pdf", d / "mh.tif", o);
  EXPECT_EQ(read_tags(d / "mr.tif", 0).compression, COMPRESSION_CCITTFAX3);
  const bitmap ref = decode_tiff_page(d / "mmr.tif", 0);
  EXPECT_TRUE(same_pixels(ref, decode_tiff_page(d / "mr.tif", 0)));
  EXPECT_TRUE(same_pixels(ref, decode_tiff_page(d / "mh.tif", 0)));
  EXPECT_EQ(validate_tiff_f(d / "mh.tif"), 1);
}

// --- PNG and TIFF input ----------------------------------------------------------------------

TEST(FaxDocument, PngWithoutResolutionFillsTheWidth) {
  temp_dir d;
  test::write_png(d / "in.png", 400, 300, 0);
  EXPECT_EQ(to_tiff_f(d / "in.png", d / "out.tif", resolution::fine), 1);
  const bitmap b = decode_tiff_page(d / "out.tif", 0);
  EXPECT_EQ(b.width, 1728);
  EXPECT_EQ(b.height, static_cast<int>(std::lround(1728.0 / 204 * 300 / 400 * 196)));
  EXPECT_GT(b.black_pixels(), 1000U);
}

TEST(FaxDocument, PngWithResolutionKeepsItsSize) {
  temp_dir d;
  test::write_png(d / "in.png", 400, 300, 100);  // 4 x 3 inches
  to_tiff_f(d / "in.png", d / "out.tif", resolution::standard);
  const bitmap b = decode_tiff_page(d / "out.tif", 0);
  EXPECT_EQ(b.width, 1728);
  EXPECT_EQ(b.height, 294);               // 3 in at 98 dpi
  EXPECT_TRUE(white_columns(b, 0, 455));  // 816 px centred in 1728
  EXPECT_TRUE(white_columns(b, 1273, 1728));
}

TEST(FaxDocument, GrayTiffAt150DpiIsResampled) {
  temp_dir d;
  test::write_gray_tiff(d / "in.tif", 1275, 1650, 150, 2);  // letter at 150 dpi
  EXPECT_EQ(to_tiff_f(d / "in.tif", d / "out.tif", resolution::fine), 2);
  EXPECT_EQ(validate_tiff_f(d / "out.tif"), 2);
  const bitmap b = decode_tiff_page(d / "out.tif", 1);
  EXPECT_EQ(b.width, 1728);
  EXPECT_NEAR(b.height, 11 * 196 * (1728.0 / 1734.0), 2);
}

TEST(FaxDocument, TiffFInputKeepsItsExactPixels) {
  temp_dir d;
  test::write_pdf(d / "in.pdf", 2);
  to_tiff_f(d / "in.pdf", d / "a.tif", resolution::fine);
  tiff_f_options o;
  o.coding = tiff_coding::mr;
  to_tiff_f(d / "a.tif", d / "b.tif", o);
  for (int i = 0; i < 2; ++i) {
    EXPECT_TRUE(same_pixels(decode_tiff_page(d / "a.tif", i), decode_tiff_page(d / "b.tif", i)));
  }
  // Fine to standard halves the rows; thin lines survive the reduction.
  to_tiff_f(d / "a.tif", d / "s.tif", resolution::standard);
  const bitmap s = decode_tiff_page(d / "s.tif", 0);
  EXPECT_EQ(s.height, 1146);
  const bitmap f = decode_tiff_page(d / "a.tif", 0);
  EXPECT_GT(s.black_pixels() * 2, f.black_pixels() * 9 / 10);
}

// --- refusals --------------------------------------------------------------------------------

TEST(FaxDocument, WrongInputsGiveClearErrors) {
  temp_dir d;
  EXPECT_TRUE(
      contains(error_of([&] { to_tiff_f(d / "missing.pdf", d / "o.tif", resolution::fine); }),
               "missing.pdf: cannot open: No such file"));
  test::write_file(d / "empty.pdf", "");
  EXPECT_TRUE(contains(error_of([&] { to_tiff_f(d / "empty.pdf", d / "o.tif", resolution::fine); }),
                       "empty"));
  test::write_file(d / "notes.txt", "Dear fax machine,\n");
  EXPECT_TRUE(contains(error_of([&] { to_tiff_f(d / "notes.txt", d / "o.tif", resolution::fine); }),
                       "notes.txt: not a PDF, PNG or TIFF file"));
  test::write_file(d / "broken.pdf", "%PDF-1.4\n1 0 obj garbage\n");
  EXPECT_TRUE(
      contains(error_of([&] { to_tiff_f(d / "broken.pdf", d / "o.tif", resolution::fine); }),
               "broken.pdf: not a readable PDF"));
  test::write_file(d / "broken.png", std::string("\x89PNG\r\n\x1a\n", 8) + "garbage garbage");
  EXPECT_TRUE(contains(
      error_of([&] { to_tiff_f(d / "broken.png", d / "o.tif", resolution::fine); }), "broken.png"));
  test::write_file(d / "broken.tif", std::string("II*\0", 4) + "garbage");
  EXPECT_TRUE(
      contains(error_of([&] { to_tiff_f(d / "broken.tif", d / "o.tif", resolution::fine); }),
               "broken.tif: not a readable TIFF"));
  test::write_pdf(d / "ok.pdf", 1);
  EXPECT_TRUE(contains(
      error_of([&] { to_tiff_f(d / "ok.pdf", d / "no/such/dir/o.tif", resolution::fine); }),
      "cannot create"));
  EXPECT_FALSE(test::file_exists(d / "o.tif"));
  EXPECT_FALSE(test::file_exists(d / "o.tif.part"));
}

// The exact-pixel path for pages that already have fax geometry used to skip the length limit:
// a 1728-pixel TIFF-F page of 8000 rows at 196 dpi (1037 mm) went out as it was.
TEST(FaxDocument, AFaxGeometryPageLongerThanTheLimitIsRefused) {
  temp_dir d;
  test::write_bilevel_tiff(d / "long.tif", fax_width, 8000, 204, 196);
  EXPECT_TRUE(contains(error_of([&] { to_tiff_f(d / "long.tif", d / "o.tif", resolution::fine); }),
                       "long.tif: page 1: is 1037 mm long on the fax; the limit is 1000 mm"));
  EXPECT_FALSE(test::file_exists(d / "o.tif"));
  test::write_bilevel_tiff(d / "ok.tif", fax_width, 7700, 204, 196);  // 998 mm
  EXPECT_EQ(to_tiff_f(d / "ok.tif", d / "o.tif", resolution::fine), 1);
}

TEST(FaxDocument, WorkBoundsRefusePagesAndPixelsBeyondThem) {
  temp_dir d;
  test::write_gray_tiff(d / "three.tif", 40, 30, 100, 3);
  test::write_png(d / "big.png", 100, 60, 0);
  tiff_f_options o;
  o.max_pages = 2;
  EXPECT_TRUE(
      contains(error_of([&] { to_tiff_f(d / "three.tif", d / "o.tif", o); }), "too many pages"));
  o.max_pages = 3;
  EXPECT_EQ(to_tiff_f(d / "three.tif", d / "o.tif", o), 3);
  o.max_source_pixels = 5999;
  EXPECT_TRUE(
      contains(error_of([&] { to_tiff_f(d / "big.png", d / "p.tif", o); }), "too large to fax"));
  EXPECT_EQ(to_tiff_f(d / "three.tif", d / "p.tif", o), 3);  // 1200 pixels a page
  o.max_source_pixels = 6000;
  EXPECT_EQ(to_tiff_f(d / "big.png", d / "p.tif", o), 1);
}

TEST(FaxDocument, ABadPageIsNamedAndNothingIsWritten) {
  temp_dir d;
  std::vector<test::pdf_page_spec> pages(3);
  pages[2].dangling = true;  // page 3 is missing from the file
  test::write_pdf(d / "in.pdf", pages);
  const std::string e = error_of([&] { to_tiff_f(d / "in.pdf", d / "out.tif", resolution::fine); });
  EXPECT_TRUE(contains(e, "in.pdf: page 3: cannot be read")) << e;
  EXPECT_FALSE(test::file_exists(d / "out.tif"));
  EXPECT_FALSE(test::file_exists(d / "out.tif.part"));

  std::vector<test::pdf_page_spec> long_pages(3);
  long_pages[2].height_pt = 72 * 100;  // 100 inches
  test::write_pdf(d / "long.pdf", long_pages);
  const std::string l =
      error_of([&] { to_tiff_f(d / "long.pdf", d / "out.tif", resolution::fine); });
  EXPECT_TRUE(contains(l, "long.pdf: page 3: is 2540 mm long")) << l;
  EXPECT_FALSE(test::file_exists(d / "out.tif"));
}

TEST(FaxDocument, ValidateRefusesWhatSpandspCannotSend) {
  temp_dir d;
  test::write_bilevel_tiff(d / "narrow.tif", 1700, 100, 204, 196);
  EXPECT_TRUE(contains(error_of([&] { validate_tiff_f(d / "narrow.tif"); }),
                       "narrow.tif: page 1: 1700 pixels wide (TIFF-F needs 1728)"));
  test::write_bilevel_tiff(d / "300.tif", 1728, 100, 300, 300);
  EXPECT_TRUE(contains(error_of([&] { validate_tiff_f(d / "300.tif"); }), "resolution 300 x 300"));
  test::write_gray_tiff(d / "gray.tif", 1728, 100, 204);
  EXPECT_TRUE(contains(error_of([&] { validate_tiff_f(d / "gray.tif"); }), "8 bits per pixel"));
  test::write_bilevel_tiff(d / "ok.tif", 1728, 100, 204, 98);
  EXPECT_EQ(validate_tiff_f(d / "ok.tif"), 1);
  EXPECT_TRUE(contains(error_of([&] { decode_tiff_page(d / "ok.tif", 1); }), "there is no page 2"));
}

// --- received documents out ------------------------------------------------------------------

// Renders a PDF page at the fax resolution and thresholds it like a fax page.
bitmap render_pdf_page(const std::string& pdf, int index, double xdpi, double ydpi) {
  std::unique_ptr<poppler::document> doc(poppler::document::load_from_file(pdf));
  EXPECT_TRUE(doc);
  std::unique_ptr<poppler::page> page(doc->create_page(index));
  poppler::page_renderer r;
  r.set_image_format(poppler::image::format_gray8);
  const poppler::image img = r.render_page(page.get(), xdpi, ydpi);
  bitmap b(img.width(), img.height());
  for (int y = 0; y < img.height(); ++y) {
    const auto* row = reinterpret_cast<const unsigned char*>(img.const_data()) +
                      static_cast<std::ptrdiff_t>(y) * img.bytes_per_row();
    for (int x = 0; x < img.width(); ++x) {
      if (row[x] < 128) b.set(x, y, true);
    }
  }
  return b;
}

void check_pdf_matches_tiff(const std::string& tiff, const std::string& pdf, int pages) {
  std::unique_ptr<poppler::document> doc(poppler::document::load_from_file(pdf));
  ASSERT_TRUE(doc) << pdf;
  ASSERT_EQ(doc->pages(), pages);
  for (int i = 0; i < pages; ++i) {
    const bitmap want = decode_tiff_page(tiff, i);
    std::unique_ptr<poppler::page> page(doc->create_page(i));
    const poppler::rectf box = page->page_rect(poppler::media_box);
    EXPECT_NEAR(box.width(), want.width * 72.0 / want.x_dpi, 0.01);
    EXPECT_NEAR(box.height(), want.height * 72.0 / want.y_dpi, 0.01);
    const bitmap got = render_pdf_page(pdf, i, want.x_dpi, want.y_dpi);
    const long long diff = differing_pixels(want, got);
    EXPECT_EQ(diff, 0) << "page " << i + 1 << ": " << got.width << "x" << got.height;
  }
}

TEST(FaxDocument, TiffToPdfEmbedsG4Pages) {
  temp_dir d;
  test::write_pdf(d / "in.pdf", 3);
  to_tiff_f(d / "in.pdf", d / "fax.tif", resolution::fine);
  EXPECT_EQ(tiff_to_pdf(d / "fax.tif", d / "fax.pdf"), 3);
  check_pdf_matches_tiff(d / "fax.tif", d / "fax.pdf", 3);
  // A4 fax page (1728 px at 204 dpi = 215 mm; 297 mm long)
  std::unique_ptr<poppler::document> doc(poppler::document::load_from_file(d / "fax.pdf"));
  std::unique_ptr<poppler::page> page(doc->create_page(0));
  EXPECT_NEAR(page->page_rect().height(), 841.9, 0.5);
}

TEST(FaxDocument, TiffToPdfReencodesG3Pages) {
  temp_dir d;
  test::write_pdf(d / "in.pdf", 2);
  tiff_f_options o;
  o.res = resolution::standard;
  o.coding = tiff_coding::mr;
  to_tiff_f(d / "in.pdf", d / "fax.tif", o);
  EXPECT_EQ(tiff_to_pdf(d / "fax.tif", d / "fax.pdf"), 2);
  check_pdf_matches_tiff(d / "fax.tif", d / "fax.pdf", 2);
}

TEST(FaxDocument, PngPreviewHasSquarePixels) {
  temp_dir d;
  test::write_pdf(d / "in.pdf", 1);
  to_tiff_f(d / "in.pdf", d / "fine.tif", resolution::fine);
  to_tiff_f(d / "in.pdf", d / "std.tif", resolution::standard);
  tiff_page_to_png(d / "fine.tif", 0, d / "fine.png");
  tiff_page_to_png(d / "std.tif", 0, d / "std.png");
  tiff_page_to_png(d / "fine.tif", 0, d / "small.png", 400);
  const detail::gray_image fine = detail::read_png(d / "fine.png");
  EXPECT_EQ(fine.width, 1728);
  EXPECT_EQ(fine.height, 2386);  // 2292 rows * 204 / 196
  EXPECT_NEAR(fine.x_dpi, 204, 0.1);
  const detail::gray_image standard = detail::read_png(d / "std.png");
  EXPECT_EQ(standard.width, 1728);
  EXPECT_EQ(standard.height, 2386);
  const detail::gray_image small = detail::read_png(d / "small.png");
  EXPECT_EQ(small.width, 400);
  EXPECT_EQ(small.height, 552);
  EXPECT_NEAR(small.x_dpi, 204.0 * 400 / 1728, 0.1);
  // The page shows: dark pixels where the page is black.
  const bitmap page = decode_tiff_page(d / "fine.tif", 0);
  std::size_t dark = 0;
  for (const std::uint8_t v : fine.px) dark += v < 128;
  EXPECT_NEAR(static_cast<double>(dark), static_cast<double>(page.black_pixels()),
              page.black_pixels() * 0.1);
  EXPECT_TRUE(
      contains(error_of([&] { tiff_page_to_png(d / "fine.tif", 3, d / "x.png"); }), "no page 4"));
}

}  // namespace
}  // namespace switchboard::fax
