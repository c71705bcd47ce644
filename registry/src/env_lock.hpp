// Who may open an environment (docs/storage.md, "one node per data directory").
//
// Three guards, each against one misuse:
// - OpenEnvironments: one open per directory per process (LMDB's locks are per process; a second
//   open corrupts the first one's reader table). The registry's only global state.
// - registry.lock (RegistryImpl::take_access_lock, env_lock.cpp): one writing process per
//   directory, a node or an offline load, never both, never two nodes.
// - LMDB's own lock file probed with F_GETLK (RegistryImpl::refuse_other_processes): an
//   exclusive (offline) writer refuses to start while any other process has the environment
//   open.
//
// Thread-safety: OpenEnvironments is safe from any thread (one mutex). The RegistryImpl members
// run only while opening and closing.
#pragma once

#include <mutex>
#include <set>
#include <string>

namespace idnode::registry::store {

/// LMDB forbids opening one environment twice in a process (its locks are per process, and a
/// second open corrupts the first one's reader table). This process-wide set is the one piece of
/// global state in the registry: it exists only to turn that misuse into a StartupError.
class OpenEnvironments {
public:
    static bool claim(const std::string& dir) {
        std::lock_guard lock(mutex());
        return set().insert(dir).second;
    }
    static void release(const std::string& dir) {
        std::lock_guard lock(mutex());
        set().erase(dir);
    }

private:
    static std::mutex& mutex() {
        static std::mutex m;
        return m;
    }
    static std::set<std::string>& set() {
        static std::set<std::string> s;
        return s;
    }
};

} // namespace idnode::registry::store
