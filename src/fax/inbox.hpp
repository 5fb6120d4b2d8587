// Received faxes: SPOOL/inbox/ID/{fax.tif, fax.pdf, page1.png, meta.json}.
//
// An entry is built in SPOOL/tmp/ID, every file fsynced, then renamed into SPOOL/inbox/ and the
// inbox directory fsynced: a fax appears whole, or not at all (a crash leaves only tmp/ debris).
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace switchboard::fax {

struct inbox_meta {
  std::string id;            // the entry's directory name
  std::string sender;        // user ID the relay authenticated
  std::string remote_ident;  // the sender's T.30 station identity (TSI)
  int pages = 0;
  std::string resolution;  // "fine", "standard"
  std::string coding;      // "MH", "MR", "MMR"
  bool ecm = false;
  int bit_rate = 0;
  std::int64_t started = 0;  // unix seconds
  std::int64_t finished = 0;
  std::string result;       // T.30 completion text
  std::uint64_t bytes = 0;  // received on the wire
};

// Makes the inbox entry from a completely received TIFF-F (moved, not copied) and renders the PDF
// and the page-1 PNG. Returns the entry's directory. Throws fax_error / filesystem_error.
std::filesystem::path commit_received(const std::filesystem::path& spool,
                                      const std::filesystem::path& rx_tiff, inbox_meta meta);

// Entries, oldest first (by finish time, then ID). Entries whose meta.json is unreadable are
// skipped.
std::vector<inbox_meta> list_inbox(const std::filesystem::path& spool);

}  // namespace switchboard::fax
