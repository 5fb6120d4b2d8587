#include "fax/inbox.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>

#include "fax/document.hpp"
#include "fax/error.hpp"

namespace switchboard::fax {

namespace fs = std::filesystem;

namespace {

void fsync_path(const fs::path& p) {
  const int fd = ::open(p.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    throw fs::filesystem_error("open for fsync", p,
                               std::error_code(errno, std::generic_category()));
  const int rc = ::fsync(fd);
  ::close(fd);
  if (rc != 0)
    throw fs::filesystem_error("fsync", p, std::error_code(errno, std::generic_category()));
}

nlohmann::json to_json(const inbox_meta& m) {
  return {{"id", m.id},
          {"sender", m.sender},
          {"remote_ident", m.remote_ident},
          {"pages", m.pages},
          {"resolution", m.resolution},
          {"coding", m.coding},
          {"ecm", m.ecm},
          {"bit_rate", m.bit_rate},
          {"started", m.started},
          {"finished", m.finished},
          {"result", m.result},
          {"bytes", m.bytes}};
}

inbox_meta from_json(const nlohmann::json& j) {
  inbox_meta m;
  m.id = j.at("id").get<std::string>();
  m.sender = j.at("sender").get<std::string>();
  m.remote_ident = j.value("remote_ident", "");
  m.pages = j.at("pages").get<int>();
  m.resolution = j.value("resolution", "");
  m.coding = j.value("coding", "");
  m.ecm = j.value("ecm", false);
  m.bit_rate = j.value("bit_rate", 0);
  m.started = j.value("started", std::int64_t{0});
  m.finished = j.value("finished", std::int64_t{0});
  m.result = j.value("result", "");
  m.bytes = j.value("bytes", std::uint64_t{0});
  return m;
}

std::string new_id(const inbox_meta& m) {
  std::random_device rd;
  char suffix[9];
  std::snprintf(suffix, sizeof suffix, "%08x", static_cast<unsigned>(rd()));
  return std::to_string(m.finished) + "-" + m.sender + "-" + suffix;
}

}  // namespace

fs::path commit_received(const fs::path& spool, const fs::path& rx_tiff, inbox_meta meta) {
  meta.id = new_id(meta);
  const fs::path tmp = spool / "tmp" / meta.id;
  const fs::path inbox = spool / "inbox";
  fs::create_directories(tmp);
  fs::create_directories(inbox);
  fs::rename(rx_tiff, tmp / "fax.tif");
  meta.pages = tiff_to_pdf((tmp / "fax.tif").string(), (tmp / "fax.pdf").string());
  tiff_page_to_png((tmp / "fax.tif").string(), 0, (tmp / "page1.png").string(), 1024);
  {
    std::ofstream out(tmp / "meta.json");
    out << to_json(meta).dump(2) << '\n';
    if (!out) throw fax_error("cannot write " + (tmp / "meta.json").string());
  }
  for (const char* f : {"fax.tif", "fax.pdf", "page1.png", "meta.json"}) fsync_path(tmp / f);
  fsync_path(tmp);
  fs::rename(tmp, inbox / meta.id);
  fsync_path(inbox);
  return inbox / meta.id;
}

std::vector<inbox_meta> list_inbox(const fs::path& spool) {
  std::vector<inbox_meta> out;
  const fs::path inbox = spool / "inbox";
  if (!fs::is_directory(inbox)) return out;
  for (const auto& e : fs::directory_iterator(inbox)) {
    try {
      std::ifstream in(e.path() / "meta.json");
      out.push_back(from_json(nlohmann::json::parse(in)));
    } catch (const std::exception&) {
      // not a complete entry (or hand-edited): skipped
    }
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) {
    return std::tie(a.finished, a.id) < std::tie(b.finished, b.id);
  });
  return out;
}

}  // namespace switchboard::fax
