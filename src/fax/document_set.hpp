// Several documents sent as one fax: each converted like to_tiff_f(), pages in the given order.
#pragma once

#include <string>
#include <vector>

#include "fax/document.hpp"

namespace switchboard::fax {

// Converts every input (PDF, PNG, TIFF) and writes all their pages, in order, into one TIFF-F.
// Any page that cannot be converted throws fax_error naming the file and page; nothing is written
// then. Returns the number of pages.
int to_tiff_f(const std::vector<std::string>& inputs, const std::string& output, resolution res);

}  // namespace switchboard::fax
