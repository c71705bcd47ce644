// Who may open the environment: registry.lock and LMDB's lock file (env_lock.hpp).
#include "registry_impl.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace idnode::registry {

using namespace store;

// Every writing opener, the node (shared) and an offline load (exclusive) alike, holds an
// exclusive flock on registry.lock: neither can start while another writer runs, and two nodes
// never serve one directory (each would keep its own rate limits, throttles and idempotency
// keys). The holder writes its pid and role into the file, only for the refusal message: the
// kernel drops a flock when its process dies (SIGKILL included), so a stale file never blocks a
// restart. read_only openers take none: a backup may run beside anything.
void RegistryImpl::take_access_lock() {
    const auto path = options_.data_dir / "registry.lock";
    access_lock_fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0640);
    if (access_lock_fd_ < 0) {
        const int err = errno;
        OpenEnvironments::release(claimed_dir_);
        throw StartupError(Errc::internal,
                           "cannot open " + path.string() + ": " + std::strerror(err));
    }
    const bool exclusive = options_.mode == OpenMode::exclusive;
    if (::flock(access_lock_fd_, LOCK_EX | LOCK_NB) != 0) {
        const std::string holder = lock_holder(); // "<pid> node" or "<pid> offline"
        release_environment();
        const auto space = holder.find(' ');
        const std::string pid = space == std::string::npos ? "" : holder.substr(0, space);
        const std::string role = space == std::string::npos ? "" : holder.substr(space + 1);
        const std::string dir = options_.data_dir.string();
        const std::string in_pid = pid.empty() ? "" : " (pid " + pid + ")";
        if (exclusive) {
            throw StartupError(Errc::unavailable, "the database in " + dir +
                                                      " is in use by another process" + in_pid +
                                                      " (stop idnode first)");
        }
        if (role == "offline") {
            throw StartupError(Errc::unavailable,
                               "the database in " + dir +
                                   " is being written by an offline load (idctl load --offline" +
                                   (pid.empty() ? "" : ", pid " + pid) +
                                   "); wait for it to finish");
        }
        const std::string who = role == "node" ? "another idnode" : "another process";
        throw StartupError(Errc::unavailable,
                           "the database in " + dir + " is already in use by " + who + in_pid +
                               ": one node per data directory (stop that one, or give this one "
                               "its own node.data_dir)");
    }
    // Best effort: a full disk must not stop the node from starting.
    const std::string holder = std::to_string(::getpid()) + (exclusive ? " offline\n" : " node\n");
    if (::ftruncate(access_lock_fd_, 0) == 0) {
        [[maybe_unused]] const auto written =
            ::pwrite(access_lock_fd_, holder.data(), holder.size(), 0);
    }
}

/// What the current holder of registry.lock wrote into it ("" if nothing readable).
std::string RegistryImpl::lock_holder() const {
    char buf[64];
    const ssize_t n = ::pread(access_lock_fd_, buf, sizeof buf - 1, 0);
    if (n <= 0) {
        return {};
    }
    std::string text(buf, static_cast<std::size_t>(n));
    const auto end = text.find('\n');
    if (end == std::string::npos) {
        return {}; // written half-way (its holder is starting): not worth quoting
    }
    text.resize(end);
    return text;
}

// Every process that has the environment open holds LMDB's shared fcntl lock on byte 0 of
// lock.mdb (LMDB takes it in mdb_env_open). A conflicting lock reported by F_GETLK therefore
// means another process (an idnode without the flock, a backup, an export) has it open. Locks of
// this process are never reported, and the in-process guard covers those.
void RegistryImpl::refuse_other_processes() {
    const auto path = options_.data_dir / "lock.mdb";
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return; // MDB_NOLOCK environments have no lock file; nothing to learn
    }
    struct flock probe {};
    probe.l_type = F_WRLCK;
    probe.l_whence = SEEK_SET;
    probe.l_start = 0;
    probe.l_len = 1;
    const int rc = ::fcntl(fd, F_GETLK, &probe);
    ::close(fd);
    if (rc == 0 && probe.l_type != F_UNLCK) {
        throw StartupError(Errc::unavailable, "the database in " + options_.data_dir.string() +
                                                  " is open in process " +
                                                  std::to_string(probe.l_pid) +
                                                  " (stop idnode first)");
    }
}

} // namespace idnode::registry
