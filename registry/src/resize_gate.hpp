// ResizeGate: how read snapshots and map growth take turns (docs/storage.md, "map growth").
//
// mdb_env_set_mapsize requires that no transaction of this process is active, while snapshots
// must stay cheap (the resolver takes one per request). The gate is writer-preferring: growth
// closes it and waits for the open snapshots to end, with a bounded patience, because a thread
// may hold a snapshot while it waits for its own write (waiting forever would deadlock it).
//
// Thread-safety: every member is safe to call from any thread; enter/leave are two atomic
// operations on the fast path. Lifetime: owned by RegistryImpl, outlives every snapshot.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <thread>

namespace idnode::registry::store {

/// How long growth waits for open snapshots before the group fails with Errc::unavailable.
inline constexpr std::chrono::milliseconds kResizePatience{2000};
/// Growth adds at least this much to the map (doubling otherwise).
inline constexpr std::uint64_t kMinGrowth = 64ull << 20;

/// Writer-preferring gate between snapshot holders and map growth. Snapshots enter and leave
/// with two atomic operations; growth sets `resizing_`, which stops new snapshots, then waits for
/// the open ones to end (mdb_env_set_mapsize requires that no transaction is active).
class ResizeGate {
public:
    void enter() noexcept {
        for (;;) {
            resizing_.wait(true);
            readers_.fetch_add(1);
            if (!resizing_.load()) {
                return;
            }
            leave();
        }
    }
    void leave() noexcept { readers_.fetch_sub(1); }
    /// Stops new snapshots and waits for open ones to end, at most `patience`. Returns false
    /// (and lets snapshots through again) when they did not end in time: a thread may hold a
    /// snapshot while it waits for its own write, and waiting forever would deadlock it.
    bool begin_resize(std::chrono::milliseconds patience) noexcept {
        resizing_.store(true);
        const auto deadline = std::chrono::steady_clock::now() + patience;
        while (readers_.load() != 0) {
            if (std::chrono::steady_clock::now() >= deadline) {
                end_resize();
                return false;
            }
            std::this_thread::sleep_for(std::chrono::microseconds(200));
        }
        return true;
    }
    void end_resize() noexcept {
        resizing_.store(false);
        resizing_.notify_all();
    }

private:
    std::atomic<bool> resizing_{false};
    std::atomic<std::uint64_t> readers_{0};
};

} // namespace idnode::registry::store
