// Offline bulk load straight into a node's environment (`idctl load --offline`), for initial
// migrations of millions of identifiers while the node is stopped.
//
// Every record goes through the registry's own writer (the same validation, timestamps, counters,
// change-log entries, long-handle keys and encoding as an online write; records arrive
// pre-encoded as PutEncodedRecord, so a new record in key order is appended without being
// decoded or copied into value objects), in large
// group-committed transactions without fsync (MDB_NOSYNC); finish() syncs the environment once
// and only then reports success. A crashed or interrupted load is simply run again: with the
// default `create` mode, records already stored identically report `unchanged`.
//
// Order and speed: the registry appends keys beyond the current last key with MDB_APPEND. Input
// already in key order (ascending by the upper-cased handle, byte order: `LC_ALL=C sort -f`) is
// written as it arrives, once its first records (up to 16,384, within the sort memory) proved to
// be in order; until then they wait in the sort buffer, so that input out of order from its start
// is sorted as a whole. From the first record out of order on, the rest is sorted in bounded
// memory first: records fill one half of `sort_memory_bytes` while a background thread sorts the
// other half and spills it as a run to an unlinked temp file; the runs and the last buffer are
// merged, so that the writer again sees ascending keys. Equal handles keep their input order.
//
// Thread safety: one thread drives a loader (add, reject, finish). The rejection sink is called
// with an internal lock held, from that thread or from the registry's writer thread.
#pragma once

#include "idnode/registry/error.hpp"
#include "idnode/registry/identifier.hpp"
#include "idnode/registry/registry.hpp"
#include "idnode/registry/value.hpp"

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace idnode::registry {

struct OfflineLoadOptions {
    std::filesystem::path data_dir = "var/db";
    std::uint64_t max_db_size = 64ull << 30;
    /// create: identical existing records are `unchanged`, different ones rejected
    /// (already_exists); upsert: replace existing records; replace: only existing ones.
    PutMode mode = PutMode::create;
    /// Memory for sorting (unsorted input only): two buffers of half this size, one filling while
    /// the other is sorted and spilled as a run.
    std::size_t sort_memory_bytes = 256ull << 20;
    /// Where sorted runs go (unlinked files); empty = the data directory itself (same disk).
    std::filesystem::path temp_dir;
    /// Records per batch handed to the writer, which commits up to max_group_ops per transaction.
    /// Small enough that the batches in flight (two groups' worth) and each transaction's dirty
    /// pages stay warm in the caches: measured faster than 5000/50000 (tools/bench).
    std::size_t batch_records = 1000;
    std::size_t max_group_ops = 10000;
    /// RegistryOptions::writeback_window_bytes: the load keeps about two windows of the database
    /// in the page cache instead of everything it wrote. 0 = leave it to the kernel.
    std::uint64_t writeback_window_bytes = 256ull << 20;
    /// Recorded as the account of every change-log entry.
    std::string account = "idctl-load";
    HandleLimits handle_limits{};
    ValueLimits value_limits{};
    /// Clock for value timestamps and change-log times (tests inject a fixed one).
    std::function<std::int64_t()> clock;
};

struct LoadRejection {
    std::uint64_t line = 0; // as given to add()/reject()
    std::string handle;     // as given (may be invalid)
    Error error;
};

struct LoadSummary {
    std::uint64_t records = 0; // add() and reject() calls
    std::uint64_t created = 0;
    std::uint64_t replaced = 0;
    std::uint64_t unchanged = 0;
    std::uint64_t rejected = 0;
    bool sorted = true;     // every record arrived in key order (no sort was needed)
    std::uint64_t runs = 0; // sorted runs spilled to temp files
};

class OfflineLoader {
public:
    using RejectionSink = std::function<void(const LoadRejection&)>;

    /// Opens the environment in `options.data_dir` exclusively. Throws StartupError:
    /// not_found if the directory holds no initialised node (no database or no node prefix),
    /// unavailable if another process (a running idnode) has it open, or what Registry::open
    /// throws.
    static std::unique_ptr<OfflineLoader> open(OfflineLoadOptions options, RejectionSink rejected);

    /// Closes the environment. Without a successful finish() the records written so far stay
    /// (unsynced); a new load completes them.
    ~OfflineLoader();
    OfflineLoader(const OfflineLoader&) = delete;
    OfflineLoader& operator=(const OfflineLoader&) = delete;

    /// Offers one record. Invalid handles (grammar) and handles under a prefix this node does not
    /// home (not_homed) are rejected at once through the sink; what the writer finds (invalid
    /// values, already_exists, too_large, ...) is reported when the record's batch commits.
    void add(std::uint64_t line, std::string_view handle, std::vector<HandleValue> values);

    /// The fast form of add(): the record already in the stored encoding (RecordEncoder, spelled
    /// as `handle`; timestamps are set by the writer), copied into the batch being filled, so the
    /// caller may reuse its buffer at once. Same checks, outcomes and stored bytes as add() with
    /// the decoded values; in key order with ascending value indices it is appended without ever
    /// being decoded. A record that does not parse is rejected (invalid_value) at once.
    void add_encoded(std::uint64_t line, std::string_view handle, std::string_view record);

    /// Counts a record the caller could not parse as rejected and passes it to the sink.
    void reject(std::uint64_t line, std::string_view handle, Error error);

    /// Writes what is buffered (merging sorted runs), waits for every commit, syncs the
    /// environment to disk, and returns the counts. An error (storage_full, internal) means the
    /// load did not complete; nothing is reported as loaded then. Call once.
    Result<LoadSummary> finish();

    /// The homed node prefixes (folded) read at open.
    const std::vector<std::string>& homed_prefixes() const noexcept;

private:
    struct Impl;
    explicit OfflineLoader(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
};

} // namespace idnode::registry
