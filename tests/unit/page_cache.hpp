// How much of a file is in the page cache (mincore over a read-only mapping), for the tests of
// code that drops pages behind itself (registry WritebackWindow, idctl DropBehind).
#pragma once

#include <fcntl.h>
#include <linux/magic.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <optional>
#include <vector>

namespace idnode::test {

/// Fraction of the pages of [offset, offset + length) of `path` that are resident; nullopt if
/// the file cannot be mapped. length 0 = to the end of the file.
inline std::optional<double> resident_fraction(const std::filesystem::path& path,
                                               std::uint64_t offset = 0, std::uint64_t length = 0) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return std::nullopt;
    }
    struct stat st {};
    std::optional<double> result;
    const auto page = static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE));
    if (::fstat(fd, &st) == 0 && offset < static_cast<std::uint64_t>(st.st_size)) {
        const std::uint64_t size = static_cast<std::uint64_t>(st.st_size);
        const std::uint64_t start = offset / page * page;
        const std::uint64_t end = length == 0 ? size : std::min(size, offset + length);
        const std::size_t span = static_cast<std::size_t>(end - start);
        void* map = ::mmap(nullptr, span, PROT_READ, MAP_SHARED, fd, static_cast<off_t>(start));
        if (map != MAP_FAILED) {
            std::vector<unsigned char> pages((span + page - 1) / page);
            if (::mincore(map, span, pages.data()) == 0) {
                std::size_t resident = 0;
                for (unsigned char p : pages) {
                    resident += p & 1u;
                }
                result = static_cast<double>(resident) / static_cast<double>(pages.size());
            }
            ::munmap(map, span);
        }
    }
    ::close(fd);
    return result;
}

/// False where dropping clean pages cannot work (tmpfs keeps every page: it has no disk behind
/// it), so a test of dropping has nothing to observe there.
inline bool page_cache_drops_clean_pages(const std::filesystem::path& dir) {
    struct statfs fs {};
    return ::statfs(dir.c_str(), &fs) == 0 && fs.f_type != TMPFS_MAGIC;
}

} // namespace idnode::test
