// A fresh, empty temporary directory that removes itself (and everything in it) when destroyed.
// Each store test case opens its LMDB environment in one of these.
#pragma once

#include <cstdlib>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <system_error>
#include <utility>

namespace idnode::test {

class TempDir {
public:
    explicit TempDir(const std::string& tag = "idnode-test") {
        std::filesystem::path base = std::filesystem::temp_directory_path();
        std::string pattern = (base / (tag + "-XXXXXX")).string();
        if (::mkdtemp(pattern.data()) == nullptr) {
            throw std::runtime_error("mkdtemp failed for " + pattern);
        }
        path_ = pattern;
    }
    ~TempDir() {
        if (!path_.empty()) {
            std::error_code ignored;
            std::filesystem::remove_all(path_, ignored);
        }
    }
    TempDir(TempDir&& other) noexcept : path_(std::exchange(other.path_, {})) {}
    TempDir& operator=(TempDir&&) = delete;
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;

    const std::filesystem::path& path() const noexcept { return path_; }
    /// A path inside the directory (not created).
    std::filesystem::path operator/(const std::string& name) const { return path_ / name; }

private:
    std::filesystem::path path_;
};

/// True when IDNODE_TEST_REDUCED is set to something other than "0" (the sanitizer run).
inline bool reduced() {
    const char* v = std::getenv("IDNODE_TEST_REDUCED");
    return v != nullptr && *v != '\0' && std::string(v) != "0";
}

} // namespace idnode::test
