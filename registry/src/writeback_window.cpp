#include "writeback_window.hpp"

#include <fcntl.h>

namespace idnode::registry {

void WritebackWindow::after_commit(std::uint64_t written_end) noexcept {
    if (window_ == 0 || fd_ < 0) {
        return;
    }
    if (next_checkpoint_ == 0) { // the first call (at open): the file as the load found it
        last_checkpoint_ = written_end;
        next_checkpoint_ = written_end + window_;
        return;
    }
    if (written_end < next_checkpoint_) {
        return;
    }
    const auto end = static_cast<off_t>(written_end);
    const auto previous = static_cast<off_t>(last_checkpoint_);
#ifdef __linux__
    // Start writing out everything dirty so far (pages below the previous checkpoint are
    // rewritten branch and free-list pages; new leaves are above it).
    ::sync_file_range(fd_, 0, end, SYNC_FILE_RANGE_WRITE);
    // The pages below the previous checkpoint were sent to the disk a window ago: wait for
    // them (normally already done) and let the kernel reuse their memory.
    ::sync_file_range(fd_, 0, previous, SYNC_FILE_RANGE_WAIT_BEFORE);
#endif
    ::posix_fadvise(fd_, 0, previous, POSIX_FADV_DONTNEED);
    last_checkpoint_ = written_end;
    next_checkpoint_ = written_end + window_;
}

} // namespace idnode::registry
