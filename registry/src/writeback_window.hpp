// Bounds the page cache a bulk writer leaves behind in one file (offline loads).
//
// Why: an offline load writes gigabytes of new database pages with MDB_NOSYNC. Left to the
// kernel, every written page stays cached: dirty until background writeback reaches it, then
// clean but resident until memory runs out. A 10 M record load fills 5+ GB of page cache; each of
// those pages must first be taken from free memory (on a virtual machine whose free memory was
// handed back to the host, every first touch is a host page fault: measured as 2-3x the
// process's system time) or reclaimed from other files, and once dirty memory reaches the
// kernel's dirty limits the writer is throttled. Starting writeback early and dropping pages once
// they are on disk keeps the load's footprint at about two windows: its own freed pages are
// reused at once, and the final sync has little left to write.
//
// Only pages that are clean and not mapped are dropped, so nothing written is lost and the
// reader's mmap stays coherent: a dropped page that is read again is read from the disk.
//
// Thread safety: none; one writer thread owns an instance.
#pragma once

#include <cstdint>

namespace idnode::registry {

class WritebackWindow {
public:
    /// `fd` is borrowed (must outlive this object); `window_bytes` = 0 disables everything.
    WritebackWindow(int fd, std::uint64_t window_bytes) noexcept : fd_(fd), window_(window_bytes) {}

    /// Called after each commit with the file's written end (bytes). Once the file has grown by
    /// a window since the last checkpoint: starts writeback of everything written so far, waits
    /// for the writeback started at the previous checkpoint and drops those pages from the cache.
    /// Failures are ignored: this is advice to the kernel, and the final fsync reports real
    /// write errors.
    void after_commit(std::uint64_t written_end) noexcept;

private:
    int fd_;
    std::uint64_t window_;
    std::uint64_t last_checkpoint_ = 0; // file end at the last checkpoint (0 = none yet)
    std::uint64_t next_checkpoint_ = 0;
};

} // namespace idnode::registry
