// The identifier registry: one LMDB environment holding identifiers, enterprise prefixes,
// templates, accounts and keys, the change log and counters. No LMDB type appears here.
//
// Concurrency contract
// - Reads take a ReadSnapshot: a consistent MVCC view. Any number of threads read at once and
//   never wait for writers. A snapshot must be short-lived (one request): never hold one across
//   an asynchronous hop, and never for longer than a page of a listing, because map growth waits
//   for open snapshots to end.
// - Writes are submitted to the registry's single writer thread, the only place that opens write
//   transactions. It group-commits everything queued into one durable transaction, then
//   completes each batch. A batch's completion runs on the writer thread after the commit is
//   durable: keep it short (post the result to your own executor).
// - An acknowledged write is visible to every snapshot taken after the completion ran.
// - Space: by default the whole max_db_size is mapped at open (address space only; the file grows
//   as data is written). Beyond it, or when the disk itself is full, writes fail with
//   Errc::storage_full while reads keep working. With a smaller initial_map_size the writer grows
//   the map by doubling on MDB_MAP_FULL; growth must wait for open snapshots to end, at most 2 s
//   (a thread holding a snapshot while it waits for its own write would otherwise deadlock);
//   if they do not end, that group's writes fail with Errc::unavailable.
#pragma once

#include "idnode/registry/admin.hpp"
#include "idnode/registry/error.hpp"
#include "idnode/registry/identifier.hpp"
#include "idnode/registry/template.hpp"
#include "idnode/registry/value.hpp"

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace idnode::registry {

inline constexpr std::uint32_t kSchemaVersion = 1;

/// How a process uses the environment.
/// - shared: the node. One writing process per directory (an exclusive flock on
///   data_dir/registry.lock, which the kernel drops when the process dies, even by SIGKILL):
///   a second node on the same directory would keep its own rate limits, throttles and
///   idempotency keys, so it is refused (StartupError, Errc::unavailable, naming the directory
///   and the holder's pid); read_only openers may coexist (LMDB is multi-process safe).
/// - exclusive: offline writers (`idctl load --offline`). Refused (StartupError, Errc::unavailable)
///   when any other process has the environment open, and keeps shared openers out until closed.
/// - read_only: no writer thread, no write transactions, the environment is never created or
///   upgraded (StartupError not_found if it was never initialised). Safe alongside a running node
///   (backup, verify, export). submit() completes at once with Errc::unavailable.
enum class OpenMode : std::uint8_t { shared, exclusive, read_only };

/// A disk-full episode of the data directory's filesystem begins or ends. It begins when a commit
/// fails for lack of space (ENOSPC or EDQUOT, or an I/O error while less than kDiskFullBelow
/// bytes are free: LMDB reports a short write as EIO): that group's writes fail with
/// Errc::storage_full and nothing of it is stored. It ends with the next commit that succeeds, or
/// when Registry::disk_space() finds kDiskRoomAgain bytes free. Not raised for the max_db_size
/// limit, which is the operator's own bound (writes fail with storage_full then too).
struct DiskEvent {
    bool full = false; // true: an episode begins; false: it ended
    std::filesystem::path data_dir;
    std::uint64_t free_bytes = 0; // available to this process when the event was raised
    std::string detail;           // begins: LMDB's error text; ends: how it was noticed
};

/// Below this many free bytes, an I/O error at commit counts as a full disk.
inline constexpr std::uint64_t kDiskFullBelow = 1ull << 20;
/// A disk-full episode ends once this many bytes are free again (or a commit succeeds).
inline constexpr std::uint64_t kDiskRoomAgain = 8ull << 20;

/// Registry::disk_space(): the episode state and the room on data_dir's filesystem now.
struct DiskSpace {
    bool full = false;            // in a disk-full episode (DiskEvent)
    std::uint64_t free_bytes = 0; // statvfs: blocks available to this process * fragment size
};

struct RegistryOptions {
    std::filesystem::path data_dir = "var/db";
    /// Hard limit of the database file. Writes beyond it fail with storage_full.
    std::uint64_t max_db_size = 64ull << 30;
    /// Map size to start with; 0 = max_db_size at once (recommended: no growth pauses). A smaller
    /// value is grown by doubling up to max_db_size. Never below the current file size.
    std::uint64_t initial_map_size = 0;
    ValueLimits value_limits{};
    /// Upper bound of operations folded into one group-commit transaction.
    std::size_t max_group_ops = 20000;
    /// Backpressure: submit() blocks, and try_submit() refuses, while this many operations are
    /// queued (a batch is always admitted into an empty queue).
    std::size_t max_queued_ops = 200000;
    /// false = commits are not fsynced (MDB_NOSYNC); call sync() before reporting success. Only
    /// for restartable offline loads.
    bool durable = true;
    /// false (offline loads only): identifier creations and replacements log a compact
    /// change-log entry that names the handle but stores no copy of the record
    /// (ChangeEntry::loaded). Halves what a bulk migration writes; see ChangeEntry.
    bool log_record_copies = true;
    /// Offline loads only (durable = false): every time the database file has grown by this
    /// many bytes, start writing the new pages out and drop the pages written a window earlier
    /// from the page cache, so that a load of gigabytes keeps about two windows of it instead of
    /// all of it (see src/writeback_window.hpp). 0 = leave it to the kernel (the node: its reads
    /// want the cache).
    std::uint64_t writeback_window_bytes = 0;
    unsigned max_readers = 1024;
    OpenMode mode = OpenMode::shared;
    /// Clock used for value timestamps and change-log times (tests inject a fixed one).
    std::function<std::int64_t()> clock;
    /// Told when the filesystem of data_dir runs out of space and when it has room again (see
    /// DiskEvent): once per change, so a caller can log each disk-full episode once. Runs on the
    /// writer thread or on the thread calling disk_space(); must be thread-safe, must not throw
    /// and must not call into the registry.
    std::function<void(const DiskEvent&)> on_disk_event;
};

// ---- writes ------------------------------------------------------------------------------------

/// create: fails with already_exists if a record with different content exists, reports
///         `unchanged` if the stored record has the same content (idempotent retries).
/// replace: replaces the whole record; not_found if absent.
/// upsert: creates or replaces the whole record.
enum class PutMode : std::uint8_t { create, replace, upsert };

struct PutRecord {
    Handle handle;
    std::vector<HandleValue> values;
    PutMode mode = PutMode::upsert;
};
/// Adds or replaces the given values by index, keeping the others; not_found if absent unless
/// create_if_missing.
struct SetValues {
    Handle handle;
    std::vector<HandleValue> values;
    bool create_if_missing = false;
};
/// Removes values by index; removing an index that is absent is not an error. Removing every
/// value deletes the record. not_found if the record is absent.
struct RemoveValues {
    Handle handle;
    std::vector<std::int32_t> indices;
};
struct DeleteRecord {
    Handle handle;
};

/// Administrative tables (prefixes, templates, accounts, API keys). The registry stores opaque
/// bytes under a key; typed stores above it own the encoding.
///
/// `idempotency` holds the outcomes of bulk uploads by (account, Idempotency-Key) (admin.hpp
/// BulkOutcome): node-local bookkeeping, not registry content, so its writes get no change-log
/// entry (sequence 0) and reach no mirror or report. A read-only open of a database written
/// before this table existed reads it as empty; a writable open creates it.
///
/// `identities` holds the Handle-protocol identities (admin.hpp Identity) under identity_key():
/// node state like accounts, change-logged (ChangeKind::identity). Added after schema 1 like
/// `idempotency`: a read-only open of an older database reads it as empty, a writable open
/// creates it.
enum class Table : std::uint8_t {
    prefixes = 1,
    templates = 2,
    accounts = 3,
    api_keys = 4,
    idempotency = 5,
    identities = 6
};
struct PutEntry {
    Table table = Table::prefixes;
    std::string key;
    std::string value;
    PutMode mode = PutMode::upsert;
    /// Set: write only if the entry holds exactly these bytes now (a read-modify-write of one
    /// field must not undo a concurrent change of another, e.g. a route set and a suspension of
    /// one prefix record); otherwise Errc::already_exists ("changed concurrently"), nothing
    /// written. Writing what is already stored is `unchanged` whatever this says.
    std::optional<std::string> expected{};
};
struct DeleteEntry {
    Table table = Table::prefixes;
    std::string key;
};

/// Bulk loads: a record already in the stored encoding (value.hpp: RecordEncoder or
/// encode_record); the identifier is the record's own spelling, which must be a handle that
/// parse_handle accepts (the submitter validates it: OfflineLoader does; the writer re-parses it
/// only on its slow path). Same semantics, validation, error messages, counters, change-log entry
/// and stored bytes as PutRecord with the decoded values. The writer's fast path (new key beyond
/// the last one, values in ascending index order, valid) stamps the timestamps while copying and
/// appends without decoding; anything else (an existing record, out-of-order indices, an invalid
/// value) is decoded and applied as a PutRecord. Only for an OpenMode::exclusive registry
/// (offline loads); elsewhere it fails with invalid_value.
///
/// Lifetime: `record` views bytes that `owner` keeps alive (typically one buffer shared by every
/// op of a batch, so that a load allocates per batch, not per record).
struct PutEncodedRecord {
    std::string_view record;
    std::shared_ptr<const void> owner;
    PutMode mode = PutMode::create;
};

using WriteOp = std::variant<PutRecord, SetValues, RemoveValues, DeleteRecord, PutEntry,
                             DeleteEntry, PutEncodedRecord>;

enum class Outcome : std::uint8_t { created, replaced, updated, unchanged, deleted, failed };
const char* outcome_name(Outcome o) noexcept;

struct OpResult {
    Outcome outcome = Outcome::failed;
    Error error{};              // set when outcome == failed
    std::uint64_t sequence = 0; // change-log sequence of this mutation; 0 when nothing changed

    bool ok() const noexcept { return outcome != Outcome::failed; }
};

struct WriteBatch {
    std::string account; // recorded in the change log
    std::vector<WriteOp> ops;
};

/// One result per operation, in order. A failed operation fails alone: the others commit.
using BatchResult = std::vector<OpResult>;
using Completion = std::function<void(BatchResult)>;

/// What Registry::try_submit did with a batch.
enum class SubmitStatus : std::uint8_t {
    queued, ///< taken (batch and completion moved from); the completion runs as for submit()
    full,   ///< refused because the queue has no room; batch and completion are untouched
};

// ---- reads -------------------------------------------------------------------------------------

struct GetOptions {
    ValueFilter filter;
    /// false: values without public-read permission are left out.
    bool include_private = false;
};

struct Resolution {
    Record record;                // selected values only
    bool omitted_private = false; // a selected value was left out for lack of permission
};

struct ListPage {
    std::vector<std::string> handles; // registered spellings, in key order
    std::string next_cursor;          // empty when there is nothing after this page
};

struct EntryPage {
    std::vector<std::pair<std::string, std::string>> entries; // key, value
    std::string next_cursor;
};

/// Administrative kinds number their Table one above it; 6 (idempotency) is never logged.
enum class ChangeKind : std::uint8_t {
    identifier = 1,
    prefix = 2,
    template_ = 3,
    account = 4,
    api_key = 5,
    identity = 7
};
enum class ChangeOp : std::uint8_t { create = 1, replace = 2, update = 3, remove = 4 };

struct ChangeEntry {
    std::uint64_t sequence = 0;
    ChangeKind kind = ChangeKind::identifier;
    ChangeOp op = ChangeOp::create;
    std::int64_t time = 0; // unix seconds
    std::string account;
    std::string key;   // handle spelling, prefix, ...
    std::string value; // the resulting encoded record/entry; empty for a removal (tombstone)
    /// Written by an offline load (RegistryOptions::log_record_copies = false): the log holds no
    /// copy of the record, so ReadSnapshot::changes() fills `value` with the identifier's record
    /// as stored in that snapshot (empty if it was deleted since). Until a later entry for the
    /// same handle exists, that is exactly the loaded record; once one exists, the loaded state
    /// itself is no longer in the log (the load's input file is its record), while replaying the
    /// log still ends in the stored data.
    bool loaded = false;
};

class RegistryImpl;

/// A consistent read-only view. Movable, not copyable; destroying it ends the read transaction.
/// Not thread-safe: use one snapshot from one thread at a time.
class ReadSnapshot {
public:
    ReadSnapshot(ReadSnapshot&&) noexcept;
    ReadSnapshot& operator=(ReadSnapshot&&) noexcept;
    ReadSnapshot(const ReadSnapshot&) = delete;
    ReadSnapshot& operator=(const ReadSnapshot&) = delete;
    ~ReadSnapshot();

    /// The record with the selected values, owned. not_found if absent; corrupt if the stored
    /// bytes fail validation.
    Result<Resolution> get(const Handle& handle, const GetOptions& options = {}) const;

    /// Zero-copy access: `visit` sees the validated stored record; the view is valid only
    /// during the call. Returns not_found / corrupt like get().
    Status visit(const Handle& handle, const std::function<void(const RecordView&)>& visit) const;

    bool contains(const Handle& handle) const;

    /// Identifiers under `prefix` (exactly that prefix, case-insensitive), in key order, after
    /// the opaque `cursor` from a previous page (empty = from the start).
    Result<ListPage> list(std::string_view prefix, std::string_view cursor,
                          std::size_t limit) const;

    /// Number of identifiers under exactly `prefix` (maintained counter, O(1)).
    std::uint64_t count(std::string_view prefix) const;
    std::uint64_t count_all() const;
    /// Identifiers created on the UTC day containing `unix_seconds`: all of them, or only those
    /// under exactly `prefix`. Kept by the writer in the same transaction; deletions do not
    /// lower it.
    std::uint64_t registrations(std::int64_t unix_seconds, std::string_view prefix = {}) const;
    /// Every prefix holding identifiers, with its count (folded prefix, count), in key order.
    std::vector<std::pair<std::string, std::uint64_t>> prefix_counts() const;

    /// Identifiers whose TEMPLATE value (index 1001) names the template with entry key
    /// `template_key` (template.hpp: folded prefix + "/" + version). Maintained by the writer,
    /// O(1). A template with a non-zero usage cannot be deleted (DeleteEntry fails with in_use).
    std::uint64_t template_usage(std::string_view template_key) const;

    // ---- administrative tables, typed (admin.hpp, template.hpp) ----------------------------
    // Each get reads one entry and decodes it: Errc::not_found (naming the key) when absent,
    // Errc::corrupt when the stored bytes do not decode. Each for_each visits every entry that
    // decodes, in key order, with its entry key; entries that do not decode are skipped (verify()
    // reports them). Prefer these to get_entry + decode_*: they are the one place that pairs a
    // table with its codec.

    /// Under the folded prefix (Handle::prefix_key(), parse_prefix).
    Result<PrefixRecord> prefix_record(std::string_view folded_prefix) const;
    Result<Account> account(std::string_view username) const;
    /// Under the key id (ParsedApiKey::key_id).
    Result<ApiKeyRecord> api_key(std::string_view key_id) const;
    /// Under the template entry key (template_key(prefix, version)).
    Result<Template> template_entry(std::string_view template_key) const;
    /// Under "<account>\0<Idempotency-Key>".
    Result<BulkOutcome> bulk_outcome(std::string_view key) const;
    /// The identity (`handle` as spelled, any case: it is folded here) with `index`; also
    /// not_found for a handle that does not parse (no identity can have it).
    Result<Identity> identity(std::string_view handle, std::int32_t index) const;

    void for_each_prefix(
        const std::function<void(const std::string& key, const PrefixRecord&)>& fn) const;
    void
    for_each_account(const std::function<void(const std::string& key, const Account&)>& fn) const;
    void for_each_api_key(
        const std::function<void(const std::string& key, const ApiKeyRecord&)>& fn) const;
    void
    for_each_template(const std::function<void(const std::string& key, const Template&)>& fn) const;
    /// The identities of one handle (Handle::key(), folded), in index order: what resolving that
    /// handle adds to its record (node/resolution.hpp). One range seek; entries that do not
    /// decode are skipped, as in for_each_*.
    std::vector<Identity> identities_of(std::string_view handle_folded) const;
    /// Every identity, or only those of `account` when it is not empty.
    void for_each_identity(const std::function<void(const std::string& key, const Identity&)>& fn,
                           std::string_view account = {}) const;
    /// Whether `table` holds any entry.
    bool has_entries(Table table) const;

    // ---- administrative tables, raw -----------------------------------------------------
    std::optional<std::string> get_entry(Table table, std::string_view key) const;
    EntryPage list_entries(Table table, std::string_view cursor, std::size_t limit) const;
    /// Every entry of `table` in key order (list_entries page by page): `fn(key, value)`.
    void for_each_entry(
        Table table,
        const std::function<void(const std::string& key, const std::string& value)>& fn) const;

    /// Change-log entries with sequence >= from, at most `limit` (loaded entries: see
    /// ChangeEntry::loaded).
    std::vector<ChangeEntry> changes(std::uint64_t from, std::size_t limit) const;
    std::uint64_t last_sequence() const;

private:
    friend class RegistryImpl;
    struct State;
    explicit ReadSnapshot(std::unique_ptr<State> state) noexcept;
    std::unique_ptr<State> state_;
};

/// What Registry::verify() found. Every problem is one line for humans ("ids: key 88.1/A: ...").
struct VerifyReport {
    std::uint64_t identifiers = 0;     // records walked
    std::uint64_t changes = 0;         // change-log entries walked
    std::uint64_t admin_entries = 0;   // prefixes, templates, accounts, keys walked (not outcomes)
    std::vector<std::string> problems; // empty = consistent
    bool ok() const noexcept { return problems.empty(); }
};

struct RegistryStats {
    std::uint64_t map_size = 0;      // current LMDB map size
    std::uint64_t max_db_size = 0;   // configured limit
    std::uint64_t used_bytes = 0;    // pages in use * page size (as of the last commit)
    std::uint64_t identifiers = 0;   // as of the last commit
    std::uint64_t queued_ops = 0;    // waiting for the writer
    std::uint64_t commits = 0;       // group commits since open
    std::uint64_t committed_ops = 0; // operations committed since open
    std::uint64_t last_commit_us = 0;
    std::uint64_t map_growths = 0;
    std::uint64_t submits_refused = 0; // try_submit() calls answered SubmitStatus::full
};

class Registry {
public:
    /// Opens (creating if needed) the environment in options.data_dir, checks or upgrades the
    /// schema version and starts the writer thread. Throws StartupError on failure.
    static std::unique_ptr<Registry> open(RegistryOptions options);

    /// Drains the queue (every submitted batch completes), stops the writer, closes LMDB.
    ~Registry();
    Registry(const Registry&) = delete;
    Registry& operator=(const Registry&) = delete;

    /// Starts a read snapshot. Thread-safe. Throws std::runtime_error only if LMDB cannot start
    /// a read transaction even after clearing stale reader slots (a broken deployment).
    ReadSnapshot snapshot() const;

    /// Queues a batch for the writer; `done` runs on the writer thread once the batch's group is
    /// durably committed (or failed). Blocks while the queue is full (backpressure). After
    /// shutdown began, completes at once with Errc::unavailable for every op.
    ///
    /// The wait lasts until the writer takes a group off the queue (each group frees up to
    /// max_group_ops), not until a deadline; a thread that must never wait (an I/O thread serving
    /// other connections) uses try_submit. The node's single-record writes (Handle REST PUT and
    /// DELETE, SNMS batches of at most 2,000 records, admin routes) call submit() from I/O threads
    /// and accept that wait: it happens only while bulk uploads or other writers fill the queue,
    /// and it ends with the writer's next group.
    void submit(WriteBatch batch, Completion done);

    /// The non-blocking submit (contract of the bulk endpoint, which calls it from I/O threads).
    /// Never waits for room. Thread-safe.
    /// - SubmitStatus::queued: admitted under the same rule as submit() (room for all of the
    ///   batch's ops, or the queue is empty, or called on the writer thread); `batch` and `done`
    ///   were moved from and `done` runs exactly as for submit(). Also queued, with `done` already
    ///   called with Errc::unavailable for every op, after shutdown began or on a read-only
    ///   registry.
    /// - SubmitStatus::full: nothing was queued and `batch` and `done` are left as they were. If
    ///   `on_space` is set it is called exactly once: on the writer thread right after the writer
    ///   next takes work off the queue (before committing it, so that the caller's retry can join
    ///   the next group), or on the thread destroying the registry when shutdown begins. Room is
    ///   not reserved for the caller: it retries try_submit and may be refused again (and then
    ///   waits again). Keep `on_space` short (post to your own executor); it must not throw.
    ///   Waiters are woken all at once, so many refused callers share the room that appears in
    ///   the order their retries arrive; each caller should keep a bounded number of batches
    ///   submitted (the bulk endpoint keeps at most 4) so that no one holds the whole queue.
    SubmitStatus try_submit(WriteBatch& batch, Completion& done,
                            std::function<void()> on_space = {});

    /// Blocking convenience over submit().
    BatchResult write(WriteBatch batch);
    OpResult write(WriteOp op, std::string account = {});

    /// Forces everything committed so far to disk (needed only with durable = false).
    Status sync();

    RegistryStats stats() const;
    const RegistryOptions& options() const noexcept;

    /// The data directory's filesystem (one statvfs; thread-safe). While in a disk-full episode,
    /// finding kDiskRoomAgain bytes free ends it (on_disk_event) without waiting for a write, so
    /// that a node's readiness returns as soon as the operator frees space.
    DiskSpace disk_space() const;

    /// Writes a consistent, compacted copy of the environment (one read transaction; free pages
    /// dropped) as `out_dir`/data.mdb. `out_dir` is created if needed and must not already hold a
    /// data.mdb (already_exists). Safe while this or another process keeps writing: writers are
    /// never blocked. Errors: already_exists, internal (I/O, with LMDB's text).
    Status backup(const std::filesystem::path& out_dir) const;

    /// Walks everything in one read snapshot: decodes every identifier record and checks its key
    /// (case folding, long-key form), recounts identifiers per prefix against the counters,
    /// checks the change log is contiguous and decodable and that it matches the data (the last
    /// entry of every identifier and administrative key carries exactly the stored bytes, or is a
    /// loaded entry (no copy) of a key that is stored, or is a removal of a key that is absent;
    /// every stored key has an entry), and decodes the
    /// administrative tables and the schema version. Problems are collected (at most
    /// `max_problems`), never fixed. Memory: 40 bytes per change-log entry up to 1 GiB, then
    /// more passes over the log (each over a slice of the keys) instead of more memory.
    VerifyReport verify(std::size_t max_problems = 1000) const;

private:
    explicit Registry(std::unique_ptr<RegistryImpl> impl);
    std::unique_ptr<RegistryImpl> impl_;
};

} // namespace idnode::registry
