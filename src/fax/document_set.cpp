#include "fax/document_set.hpp"

#include <unistd.h>
#include <filesystem>

#include "fax/error.hpp"
#include "fax/image_io.hpp"

namespace switchboard::fax {

namespace fs = std::filesystem;

int to_tiff_f(const std::vector<std::string>& inputs, const std::string& output, resolution res) {
  if (inputs.empty()) throw fax_error("no documents to send");
  if (inputs.size() == 1) return to_tiff_f(inputs.front(), output, res);
  // Each document alone first (all conversion errors surface before anything is combined).
  std::vector<std::string> parts;
  struct cleanup {
    std::vector<std::string>& files;
    ~cleanup() {
      std::error_code ignored;
      for (const auto& f : files) fs::remove(f, ignored);
    }
  } remove_parts{parts};
  int total = 0;
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    parts.push_back(output + ".part" + std::to_string(i) + "-" + std::to_string(::getpid()));
    total += to_tiff_f(inputs[i], parts.back(), res);
  }
  detail::temp_output temp(output);
  detail::tiff_handle out(temp.path(), "w");
  int index = 0;
  for (const auto& part : parts) {
    const int pages = tiff_page_count(part);
    for (int p = 0; p < pages; ++p) {
      detail::write_fax_page(out, decode_tiff_page(part, p), index++, total, tiff_coding::mmr);
    }
  }
  out.close();
  temp.commit();
  return total;
}

}  // namespace switchboard::fax
