// A scratch file per fuzzing process for the targets whose code under test reads a path.
#pragma once

#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <span>
#include <string>

namespace switchboard::fuzz {

// A directory of its own under $TMPDIR (or /tmp), removed when the process ends normally.
class scratch_dir {
 public:
  explicit scratch_dir(const std::string& name)
      : dir_(std::filesystem::temp_directory_path() / (name + "." + std::to_string(::getpid()))) {
    std::filesystem::create_directories(dir_);
  }
  ~scratch_dir() {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  scratch_dir(const scratch_dir&) = delete;
  scratch_dir& operator=(const scratch_dir&) = delete;

  // Writes `data` to `name` in the directory (replacing it) and returns its path.
  std::string write(const std::string& name, std::span<const std::uint8_t> data) const {
    const std::string path = (dir_ / name).string();
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(data.data()),
              static_cast<std::streamsize>(data.size()));
    return path;
  }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }

 private:
  std::filesystem::path dir_;
};

}  // namespace switchboard::fuzz
