// Reads a file (or stdin for "-") line by line in large chunks, for `load`. Lines are views valid
// until the next call; `offset()` is the byte position just after the last line returned, which
// the online load's checkpoint records so that `--resume` can seek back to it.
// Not thread-safe.
#pragma once

#include <fcntl.h>
#include <sys/stat.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

namespace idnode::idctl {

/// A line `load` skips (still counted in line numbers): empty, or only the "\r" of a CRLF.
inline bool is_blank_line(std::string_view line) noexcept {
    return line.empty() || (line.size() == 1 && line[0] == '\r');
}

/// Tells the kernel that the pages of a file read once, front to back, are not wanted again once
/// read (`load --offline`). Why: a migration file of gigabytes would otherwise stay in the page
/// cache after the load has passed it, every page of it taken from free memory (on this
/// project's virtual machines a first touch of long-free memory costs a host page fault: an
/// uncached 6.5 GB input halved the load's rate) or reclaimed from other files; dropped behind
/// the reader, the same few pages are reused. Regular files only; advice, so errors are ignored.
class DropBehind {
public:
    DropBehind() = default;
    /// `file` is borrowed; `start` is the offset reading starts at.
    DropBehind(std::FILE* file, std::uint64_t start) noexcept : dropped_(start & ~kPageMask) {
        struct stat st {};
        const int fd = file != nullptr ? ::fileno(file) : -1;
        if (fd >= 0 && ::fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
            fd_ = fd;
        }
    }
    /// Everything before `end` has been read and will not be read again.
    void consumed(std::uint64_t end) noexcept {
        if (fd_ >= 0 && end >= dropped_ + kStep) {
            const std::uint64_t to = end & ~kPageMask; // whole pages only
            ::posix_fadvise(fd_, static_cast<off_t>(dropped_), static_cast<off_t>(to - dropped_),
                            POSIX_FADV_DONTNEED);
            dropped_ = to;
        }
    }

private:
    static constexpr std::uint64_t kPageMask = 4095;
    static constexpr std::uint64_t kStep = 16 << 20; // one call per 16 MiB read
    int fd_ = -1;
    std::uint64_t dropped_ = 0;
};

class FileLines {
public:
    /// Opens `path` ("-" = stdin) and, when `start_offset` > 0, seeks there (files only).
    explicit FileLines(const std::string& path, std::uint64_t start_offset = 0) {
        file_ = path == "-" ? stdin : std::fopen(path.c_str(), "rb");
        owned_ = file_ != nullptr && file_ != stdin;
        if (file_ != nullptr && start_offset > 0) {
            if (!owned_ || std::fseek(file_, static_cast<long>(start_offset), SEEK_SET) != 0) {
                seek_failed_ = true;
            }
            base_ = start_offset;
        }
        buffer_.resize(4 << 20);
    }
    ~FileLines() {
        if (owned_) {
            std::fclose(file_);
        }
    }
    FileLines(const FileLines&) = delete;
    FileLines& operator=(const FileLines&) = delete;
    bool is_open() const noexcept { return file_ != nullptr && !seek_failed_; }
    bool error() const noexcept { return file_ != nullptr && std::ferror(file_); }
    /// From now on, drop what has been read from the page cache (DropBehind).
    void drop_consumed_pages() noexcept { drop_ = DropBehind(owned_ ? file_ : nullptr, base_); }
    /// The stream itself, for a reader that takes it whole (before any next()).
    std::FILE* stream() const noexcept { return file_; }
    /// Bytes of the file consumed: the offset just after the last line returned.
    std::uint64_t offset() const noexcept { return base_ + begin_; }

    bool next(std::string_view& line) {
        for (;;) {
            const char* start = buffer_.data() + begin_;
            if (const void* nl = std::memchr(start, '\n', end_ - begin_)) {
                const auto n = static_cast<std::size_t>(static_cast<const char*>(nl) - start);
                line = std::string_view(start, n);
                begin_ += n + 1;
                return true;
            }
            if (eof_) {
                if (begin_ == end_) {
                    return false;
                }
                line = std::string_view(start, end_ - begin_); // last line without newline
                begin_ = end_;
                return true;
            }
            // Move the partial line to the front (growing for very long lines) and read more.
            std::memmove(buffer_.data(), start, end_ - begin_);
            end_ -= begin_;
            base_ += begin_;
            begin_ = 0;
            drop_.consumed(base_ + end_);
            if (end_ == buffer_.size()) {
                buffer_.resize(buffer_.size() * 2);
            }
            const std::size_t got =
                std::fread(buffer_.data() + end_, 1, buffer_.size() - end_, file_);
            end_ += got;
            if (got == 0) {
                eof_ = true;
            }
        }
    }

private:
    std::FILE* file_ = nullptr;
    bool owned_ = false;
    bool seek_failed_ = false;
    std::vector<char> buffer_;
    std::uint64_t base_ = 0; // file offset of buffer_[0]
    std::size_t begin_ = 0, end_ = 0;
    bool eof_ = false;
    DropBehind drop_;
};

} // namespace idnode::idctl
