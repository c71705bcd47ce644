// RegistryImpl: the store behind registry.hpp, shared by the files that implement it. Each file
// owns one concern (docs/architecture.md, "registry"):
//   open.cpp           open, schema check and upgrade, close
//   env_lock.cpp       who may open the environment (env_lock.hpp)
//   snapshot.cpp       ReadSnapshot: the read API
//   snapshot_pool.cpp  pooled read transactions, map growth through the ResizeGate
//   writer.cpp         the queue, the writer thread and group commit, disk-full episodes
//   apply.cpp          one write operation inside a group (put, set, remove, delete, entries)
//   append.cpp         the append fast paths of new records (bulk loads)
//   admin_tables.cpp   typed reads of the administrative tables
//   verify.cpp, backup.cpp   maintenance
//   registry.cpp       the Registry facade
//
// Threads: the writer thread alone runs writer_loop, commit_group and the apply paths (and owns
// every write transaction); snapshot()/release() run on any thread; the stat_ atomics are written
// by the writer and read anywhere. Lifetime: the Registry owns its RegistryImpl; the destructor
// drains the queue before closing the environment, and every ReadSnapshot must end before it.
#pragma once

#include "idnode/registry/registry.hpp"

#include "env_lock.hpp"
#include "lmdb_env.hpp"
#include "resize_gate.hpp"
#include "schema.hpp"
#include "writeback_window.hpp"

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace idnode::registry {

namespace store {

struct Pending {
    WriteBatch batch;
    Completion done;
};

/// Raised inside a group when LMDB reports the map full; the group is aborted and retried.
struct MapFull {};

inline OpResult failed(Errc code, std::string message) {
    return OpResult{Outcome::failed, Error{code, std::move(message)}, 0};
}

} // namespace store

class RegistryImpl {
public:
    explicit RegistryImpl(RegistryOptions options);
    ~RegistryImpl();

    ReadSnapshot snapshot();
    void release(std::unique_ptr<ReadSnapshot::State> state) noexcept;
    void clear_read_pool() noexcept;
    void submit(WriteBatch batch, Completion done);
    SubmitStatus try_submit(WriteBatch& batch, Completion& done, std::function<void()> on_space);
    Status sync();
    RegistryStats stats() const;
    Status backup(const std::filesystem::path& out_dir);
    VerifyReport verify(std::size_t max_problems);
    DiskSpace disk_space();
    void check_change_log_matches_data(lmdb::Txn& txn, std::uint64_t changes,
                                       const std::function<void(std::string)>& problem);

    const RegistryOptions& options() const noexcept { return options_; }

    MDB_dbi ids_ = 0, counters_ = 0, changes_ = 0, meta_ = 0;
    MDB_dbi tables_[store::kTableSlots] = {}; // by Table; 0 = absent (added later, read-only)

    MDB_dbi table(Table t) const noexcept { return tables_[static_cast<int>(t)]; }

private:
    struct GroupContext;

    void open_databases();
    void open_databases_read_only();
    void take_access_lock();
    std::string lock_holder() const;
    [[noreturn]] void refuse_lock(const std::string& holder, bool exclusive);
    void refuse_other_processes();
    void release_environment() noexcept;
    void check_schema(lmdb::Txn& txn);
    void writer_loop();
    std::vector<BatchResult> commit_group(std::vector<store::Pending>& group, std::size_t first,
                                          std::size_t count);
    bool disk_full_error(int rc) const;
    std::optional<std::uint64_t> free_bytes() const;
    void set_disk_full(bool full, std::string detail, std::uint64_t free);
    enum class Growth { grown, at_limit, snapshots_open };
    Growth grow_map();
    void adopt_foreign_resize();
    OpResult apply(GroupContext& ctx, const WriteOp& op, const std::string& account);
    OpResult apply_put(GroupContext& ctx, const PutRecord& op, const std::string& account);
    OpResult append_new_put(GroupContext& ctx, const PutRecord& op, std::string_view key,
                            const std::string& account);
    OpResult store_record(GroupContext& ctx, std::string_view key, const Handle& handle,
                          const std::string& spelling, std::vector<HandleValue>& values,
                          const std::vector<HandleValue>* previous, Outcome outcome,
                          const std::string& account);
    OpResult apply_set(GroupContext& ctx, const SetValues& op, const std::string& account);
    OpResult apply_remove(GroupContext& ctx, const RemoveValues& op, const std::string& account);
    OpResult apply_delete(GroupContext& ctx, const DeleteRecord& op, const std::string& account);
    OpResult apply_put_entry(GroupContext& ctx, const PutEntry& op, const std::string& account);
    OpResult apply_delete_entry(GroupContext& ctx, const DeleteEntry& op,
                                const std::string& account);
    OpResult apply_put_encoded(GroupContext& ctx, const PutEncodedRecord& op,
                               const std::string& account);

    RegistryOptions options_;
    std::string claimed_dir_; // canonical data_dir, claimed in OpenEnvironments
    int access_lock_fd_ = -1; // flock on data_dir/registry.lock (see OpenMode)
    std::unique_ptr<lmdb::Env> env_;
    WritebackWindow writeback_{-1, 0}; // writer thread only; see writeback_window_bytes
    store::ResizeGate gate_;

    std::mutex pool_mutex_;
    std::vector<std::unique_ptr<ReadSnapshot::State>> read_pool_; // reset, ready to renew

    std::mutex queue_mutex_;
    std::condition_variable queue_ready_;
    std::condition_variable queue_space_;
    std::deque<store::Pending> queue_;
    std::size_t queued_ops_ = 0;
    bool stopping_ = false;
    // try_submit callers refused for lack of room; each is called once when the writer next
    // takes work off the queue (or at shutdown).
    std::vector<std::function<void()>> space_waiters_;
    std::thread writer_;

    std::atomic<std::uint64_t> stat_map_size_{0};
    std::atomic<std::uint64_t> stat_used_bytes_{0};
    std::atomic<std::uint64_t> stat_identifiers_{0};
    std::atomic<std::uint64_t> stat_queued_{0};
    std::atomic<std::uint64_t> stat_commits_{0};
    std::atomic<std::uint64_t> stat_committed_ops_{0};
    std::atomic<std::uint64_t> stat_last_commit_us_{0};
    std::atomic<std::uint64_t> stat_growths_{0};
    std::atomic<std::uint64_t> stat_refused_{0};

    // In a disk-full episode (DiskEvent); changed under disk_mutex_, which also orders the
    // on_disk_event calls, read without it.
    std::atomic<bool> disk_full_{false};
    std::mutex disk_mutex_;
};

// A snapshot's state is pooled with its (reset) read transaction, so that starting a snapshot
// costs a renew and no allocation. Destroying a State (pool cleared) aborts its transaction.
struct ReadSnapshot::State {
    State(RegistryImpl* owner, MDB_txn* txn) noexcept : impl(owner), txn(txn) {}
    RegistryImpl* impl;
    lmdb::Txn txn;
};

} // namespace idnode::registry
