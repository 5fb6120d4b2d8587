// Fax documents: conversion to TIFF Class F (RFC 3949 profile F) before sending, and PDF / PNG
// renderings of received faxes. Synchronous and CPU-bound (a PDF page takes tens of milliseconds):
// a daemon should run these on a worker thread (net::offload), not on the I/O thread.
//
// Every function throws fax_error with a message naming the file and, where it applies, the page
// (1-based, as a user counts): "report.pdf: page 3: ...". Output files are written to a temporary
// name next to the target and renamed at the end, so a failed conversion leaves nothing behind.
#pragma once

#include <cstdint>
#include <string>

#include "fax/bitmap.hpp"

namespace switchboard::fax {

// Vertical fax resolution; horizontal is always 204 dpi (8 pixels/mm), 1728 pixels per row.
enum class resolution { standard, fine };  // 204 x 98 dpi, 204 x 196 dpi

inline constexpr int fax_width = 1728;
inline constexpr double fax_x_dpi = 204.0;
inline constexpr double y_dpi(resolution r) {
  return r == resolution::fine ? 196.0 : 98.0;
}

enum class tiff_coding { mh, mr, mmr };  // T.4 1-D, T.4 2-D, T.6 (the TIFF Compression tag)

struct tiff_f_options {
  resolution res = resolution::fine;
  tiff_coding coding = tiff_coding::mmr;
  // Work bounds for untrusted input (the fuzz targets set small ones): a document with more
  // pages, or a raster page (PNG, TIFF) of more pixels before scaling, is refused.
  int max_pages = 0xFFFF;
  std::uint64_t max_source_pixels = 200'000'000;
};

// Converts a PDF, PNG or TIFF (recognised by its first bytes, not its name) into a multi-page
// TIFF-F: 1728 pixels wide at 204 x 196 (fine) or 204 x 98 (standard) dpi, bilevel, min-is-white,
// FillOrder LSB2MSB, one strip per page, PageNumber n/total. Returns the number of pages.
//  - PDF: each page rendered with poppler in grayscale and thresholded. Pages keep their true size
//    when they fit the 215 mm fax width (A4 is centred), wider pages are scaled down to fit;
//    landscape pages wider than the fax width are turned to portrait. Encrypted PDFs are refused.
//  - PNG: one page. With a pHYs resolution the image keeps its physical size (scaled down if too
//    wide); without one it is scaled to the full fax width.
//  - TIFF: every directory is a page, any width, resolution or colour depth, scaled as for PNG.
//    A page that already is TIFF-F geometry at the requested resolution keeps its exact pixels.
// Pages longer than max_page_length_mm are refused (T.30 allows unlimited length, but a 2 m
// "page" is a conversion accident).
inline constexpr double max_page_length_mm = 1000.0;
int to_tiff_f(const std::string& input, const std::string& output, resolution res);
int to_tiff_f(const std::string& input, const std::string& output, const tiff_f_options& options);

// Number of pages (directories) in a TIFF file.
int tiff_page_count(const std::string& tiff);

// Checks that every page is one spandsp can send without rescaling: 1 bit per sample, 1728 pixels
// wide, 204 dpi across and 98 or 196 dpi down (±5%). Returns the number of pages.
int validate_tiff_f(const std::string& tiff);

// The pixels of one page (0-based index) of a bilevel TIFF, for display or comparison.
bitmap decode_tiff_page(const std::string& tiff, int page_index);

// A PDF with one page per TIFF page, sized from the TIFF resolution (an A4 fax page gives an A4
// PDF page). G4 pages stored as a single min-is-white strip (what spandsp writes for ECM faxes)
// are embedded as they are (/CCITTFaxDecode, K -1); other pages are decoded and re-encoded as G4.
// Returns the number of pages.
int tiff_to_pdf(const std::string& tiff, const std::string& pdf);

// An 8-bit grayscale PNG of one page (0-based) with square pixels (standard-resolution rows are
// doubled, so the preview is not squashed) and a pHYs resolution. max_width > 0 scales the page
// down (area averaging) to at most that many pixels across.
void tiff_page_to_png(const std::string& tiff, int page_index, const std::string& png,
                      int max_width = 0);

}  // namespace switchboard::fax
