// The LMDB store behind registry.hpp.
//
// Layout of the environment (named databases; versioned names so that a future incompatible
// layout can live beside the old one during an upgrade):
//   meta          "schema_version" -> u32 BE
//   ids_v1        identifier key -> encoded record (value.hpp)
//   counters_v1   "n/" + folded prefix -> u64 BE identifiers under it; "total" -> u64 BE;
//                 "d/" + YYYY-MM-DD (UTC) [+ "/" + folded prefix] -> u64 BE identifiers created
//                 that day (all prefixes / under that prefix); deletions do not lower them
//   changes_v1    u64 BE sequence -> change entry (GroupContext::log, decode_change): u8 kind,
//                 u8 op (| 0x80: loaded, no record copy), u64 BE time, then account, key and
//                 value each as u32 BE size + bytes
//   prefixes_v1, templates_v1, accounts_v1, apikeys_v1   opaque key -> opaque bytes
//   idempotency_v1  account + 0x00 + Idempotency-Key -> BulkOutcome (admin.hpp); not change-logged
//
// Identifier keys are the case-folded handle. LMDB keys are limited (511 bytes by default) while
// handles may be configured up to 2048 bytes, so a longer key keeps its first bytes (the prefix
// stays in order for listings) followed by 0x00 and the SHA-256 of the whole folded handle; 0x00
// cannot occur in a handle, so the two forms never collide.
#include "idnode/registry/registry.hpp"

#include "idnode/registry/admin.hpp"

#include "lmdb_env.hpp"
#include "record_encoding.hpp"
#include "wire.hpp"
#include "writeback_window.hpp"

#include <openssl/sha.h>

#include <fcntl.h>
#include <sys/file.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <ctime>
#include <deque>
#include <map>
#include <mutex>
#include <set>
#include <thread>
#include <tuple>
#include <unordered_map>

namespace idnode::registry {

const char* outcome_name(Outcome o) noexcept {
    switch (o) {
    case Outcome::created:
        return "created";
    case Outcome::replaced:
        return "replaced";
    case Outcome::updated:
        return "updated";
    case Outcome::unchanged:
        return "unchanged";
    case Outcome::deleted:
        return "deleted";
    case Outcome::failed:
        return "failed";
    }
    return "unknown";
}

namespace {

constexpr std::string_view kSchemaKey = "schema_version";
constexpr std::string_view kTotalKey = "total";
constexpr std::size_t kShortKeyLimit = 480; // below LMDB's default 511-byte key limit
constexpr std::uint64_t kMinGrowth = 64ull << 20;
constexpr std::chrono::milliseconds kResizePatience{2000};

/// The LMDB key of an identifier: the folded handle itself when short (no copy), otherwise the
/// truncated form with its SHA-256 (see the file comment).
class IdentifierKey {
public:
    explicit IdentifierKey(std::string_view folded) {
        if (folded.size() <= kShortKeyLimit) {
            view_ = folded;
            return;
        }
        const std::size_t keep = kShortKeyLimit - 1 - SHA256_DIGEST_LENGTH;
        long_.assign(folded.substr(0, keep));
        long_.resize(keep + 1 + SHA256_DIGEST_LENGTH, '\0'); // the 0x00 marker, then the digest
        SHA256(reinterpret_cast<const unsigned char*>(folded.data()), folded.size(),
               reinterpret_cast<unsigned char*>(long_.data() + keep + 1));
        view_ = long_;
    }
    IdentifierKey(const IdentifierKey&) = delete;
    IdentifierKey& operator=(const IdentifierKey&) = delete;
    operator std::string_view() const noexcept { return view_; }

private:
    std::string long_;
    std::string_view view_;
};

std::string counter_key(std::string_view prefix_key) {
    std::string k = "n/";
    k.append(prefix_key);
    return k;
}

/// Counter of the identifiers registered against a template: "t/" + template entry key (folded
/// prefix + "/" + version, template.hpp). Empty when the record names no template (or a version
/// too long to be a template's, which therefore cannot exist).
std::string template_usage_key(std::string_view prefix_key, std::string_view version) {
    if (version.empty() || version.size() > 64) {
        return {};
    }
    std::string k = "t/";
    k.append(prefix_key).append("/").append(version);
    return k;
}
std::string template_usage_key(std::string_view prefix_key,
                               const std::vector<HandleValue>& values) {
    for (const auto& v : values) {
        if (v.index == kIndexTemplate) {
            return template_usage_key(prefix_key, v.data);
        }
    }
    return {};
}

/// "d/YYYY-MM-DD" of a unix time (UTC): the key of that day's registrations counter.
std::string day_counter_key(std::int64_t unix_seconds) {
    const std::time_t t = static_cast<std::time_t>(unix_seconds);
    std::tm tm{};
    gmtime_r(&t, &tm);
    char buffer[16];
    std::strftime(buffer, sizeof buffer, "%Y-%m-%d", &tm);
    return std::string("d/") + buffer;
}

std::string be64(std::uint64_t v) {
    std::string s;
    wire::put_u64(s, v);
    return s;
}

std::uint64_t read_be64(std::string_view v) {
    return v.size() == 8 ? wire::load_u64(v.data()) : 0;
}

using wire::from_hex;
using wire::to_hex;

/// Set in a change entry's op byte when the entry stores no copy of the record
/// (ChangeEntry::loaded); its value is then empty.
constexpr std::uint8_t kLoadedOpFlag = 0x80;

bool decode_change(std::uint64_t seq, std::string_view bytes, ChangeEntry& e) {
    wire::Reader r(bytes);
    std::uint8_t kind, op;
    std::uint64_t time;
    std::string_view account, key, value;
    if (!r.u8(kind) || !r.u8(op) || !r.u64(time) || !r.bytes(account) || !r.bytes(key) ||
        !r.bytes(value) || r.remaining() != 0) {
        return false;
    }
    e.loaded = (op & kLoadedOpFlag) != 0;
    if (e.loaded && (!value.empty() || kind != static_cast<std::uint8_t>(ChangeKind::identifier))) {
        return false; // only identifier entries are written without their record
    }
    e.sequence = seq;
    e.kind = static_cast<ChangeKind>(kind);
    e.op = static_cast<ChangeOp>(op & ~kLoadedOpFlag);
    e.time = static_cast<std::int64_t>(time);
    e.account.assign(account);
    e.key.assign(key);
    e.value.assign(value);
    return true;
}

ChangeKind change_kind(Table t) {
    switch (t) {
    case Table::prefixes:
        return ChangeKind::prefix;
    case Table::templates:
        return ChangeKind::template_;
    case Table::accounts:
        return ChangeKind::account;
    case Table::api_keys:
        return ChangeKind::api_key;
    case Table::idempotency:
        break; // never logged (logged_table)
    }
    return ChangeKind::prefix;
}

/// Tables whose writes are registry content and get change-log entries (registry.hpp Table).
bool logged_table(Table t) noexcept {
    return t != Table::idempotency;
}

ChangeOp change_op(Outcome o) {
    switch (o) {
    case Outcome::created:
        return ChangeOp::create;
    case Outcome::replaced:
        return ChangeOp::replace;
    case Outcome::deleted:
        return ChangeOp::remove;
    default:
        return ChangeOp::update;
    }
}

OpResult failed(Errc code, std::string message) {
    return OpResult{Outcome::failed, Error{code, std::move(message)}, 0};
}

std::int64_t system_now() {
    return std::chrono::duration_cast<std::chrono::seconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

bool same_values(const std::vector<HandleValue>& a, const std::vector<HandleValue>& b) {
    if (a.size() != b.size()) {
        return false;
    }
    for (std::size_t i = 0; i < a.size(); ++i) {
        if (!a[i].same_content(b[i])) {
            return false;
        }
    }
    return true;
}

void sort_by_index(std::vector<HandleValue>& values) {
    std::sort(values.begin(), values.end(),
              [](const HandleValue& x, const HandleValue& y) { return x.index < y.index; });
}

/// Timestamps: a value whose content is unchanged keeps the timestamp it was stored with; every
/// new or changed value is stamped `now`.
void stamp(std::vector<HandleValue>& values, const std::vector<HandleValue>& previous,
           std::uint32_t now) {
    for (auto& v : values) {
        v.timestamp = now;
        for (const auto& old : previous) {
            if (old.index == v.index && old.same_content(v)) {
                v.timestamp = old.timestamp;
                break;
            }
        }
    }
}

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

struct Pending {
    WriteBatch batch;
    Completion done;
};

/// Raised inside a group when LMDB reports the map full; the group is aborted and retried.
struct MapFull {};

} // namespace

// ------------------------------------------------------------------------------------------------

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
    MDB_dbi tables_[6] = {}; // by Table; 0 = absent (only idempotency, read-only opens)

    MDB_dbi table(Table t) const noexcept { return tables_[static_cast<int>(t)]; }

private:
    struct GroupContext;

    void open_databases();
    void open_databases_read_only();
    void take_access_lock();
    std::string lock_holder() const;
    void refuse_other_processes();
    void release_environment() noexcept;
    void check_schema(lmdb::Txn& txn);
    void writer_loop();
    std::vector<BatchResult> commit_group(std::vector<Pending>& group, std::size_t first,
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
    ResizeGate gate_;

    std::mutex pool_mutex_;
    std::vector<std::unique_ptr<ReadSnapshot::State>> read_pool_; // reset, ready to renew

    std::mutex queue_mutex_;
    std::condition_variable queue_ready_;
    std::condition_variable queue_space_;
    std::deque<Pending> queue_;
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

// ---- ReadSnapshot ------------------------------------------------------------------------------

// A snapshot's state is pooled with its (reset) read transaction, so that starting a snapshot
// costs a renew and no allocation. Destroying a State (pool cleared) aborts its transaction.
struct ReadSnapshot::State {
    State(RegistryImpl* owner, MDB_txn* txn) noexcept : impl(owner), txn(txn) {}
    RegistryImpl* impl;
    lmdb::Txn txn;
};

ReadSnapshot::ReadSnapshot(std::unique_ptr<State> state) noexcept : state_(std::move(state)) {}
ReadSnapshot::ReadSnapshot(ReadSnapshot&&) noexcept = default;
ReadSnapshot& ReadSnapshot::operator=(ReadSnapshot&& other) noexcept {
    if (this != &other) {
        if (state_) {
            state_->impl->release(std::move(state_));
        }
        state_ = std::move(other.state_);
    }
    return *this;
}
ReadSnapshot::~ReadSnapshot() {
    if (state_) {
        state_->impl->release(std::move(state_));
    }
}

Status ReadSnapshot::visit(const Handle& handle,
                           const std::function<void(const RecordView&)>& visitor) const {
    std::string_view bytes;
    if (!state_->txn.get(state_->impl->ids_, IdentifierKey(handle.key()), bytes)) {
        return Error{Errc::not_found, "identifier " + handle.spelling() + " is not registered"};
    }
    auto view = RecordView::parse(bytes);
    if (!view) {
        return view.error();
    }
    if (!equals_folded(view->spelling(), handle.spelling())) {
        // Only reachable for keys longer than kShortKeyLimit whose SHA-256 collided: treat as
        // absent.
        return Error{Errc::not_found, "identifier " + handle.spelling() + " is not registered"};
    }
    visitor(*view);
    return {};
}

Result<Resolution> ReadSnapshot::get(const Handle& handle, const GetOptions& options) const {
    Resolution out;
    Status st = visit(handle, [&](const RecordView& view) {
        out.record.spelling.assign(view.spelling());
        out.record.values.reserve(view.size());
        for (const ValueView& v : view) {
            if (!options.filter.selects(v.index, v.type)) {
                continue;
            }
            if (!options.include_private && !v.permissions.public_read()) {
                out.omitted_private = true;
                continue;
            }
            out.record.values.push_back(v.to_value());
        }
    });
    if (!st) {
        return st.error();
    }
    return out;
}

bool ReadSnapshot::contains(const Handle& handle) const {
    std::string_view bytes;
    return state_->txn.get(state_->impl->ids_, IdentifierKey(handle.key()), bytes);
}

Result<ListPage> ReadSnapshot::list(std::string_view prefix, std::string_view cursor,
                                    std::size_t limit) const {
    auto folded = parse_prefix(prefix);
    if (!folded) {
        return folded.error();
    }
    const std::string start = *folded + "/";
    std::string position = start;
    if (!cursor.empty()) {
        if (!from_hex(cursor, position) || position.compare(0, start.size(), start) != 0) {
            return Error{Errc::invalid_value,
                         "cursor does not belong to prefix " + std::string(prefix)};
        }
    }
    ListPage page;
    lmdb::Cursor c(state_->txn, state_->impl->ids_);
    std::string_view key = position, value;
    bool more = c.move(MDB_SET_RANGE, key, value);
    if (more && !cursor.empty() && key == position) {
        more = c.move(MDB_NEXT, key, value); // the cursor names the last key already returned
    }
    while (more && key.substr(0, start.size()) == start) {
        if (page.handles.size() == limit) {
            page.next_cursor = to_hex(position);
            break;
        }
        auto view = RecordView::parse(value);
        if (!view) {
            return view.error();
        }
        page.handles.emplace_back(view->spelling());
        position.assign(key);
        more = c.move(MDB_NEXT, key, value);
    }
    return page;
}

std::uint64_t ReadSnapshot::count(std::string_view prefix) const {
    std::string_view v;
    if (!state_->txn.get(state_->impl->counters_, counter_key(fold_case(prefix)), v)) {
        return 0;
    }
    return read_be64(v);
}

std::uint64_t ReadSnapshot::template_usage(std::string_view template_key) const {
    std::string_view v;
    const std::string key = "t/" + std::string(template_key);
    return state_->txn.get(state_->impl->counters_, key, v) ? read_be64(v) : 0;
}

std::uint64_t ReadSnapshot::count_all() const {
    std::string_view v;
    return state_->txn.get(state_->impl->counters_, kTotalKey, v) ? read_be64(v) : 0;
}

std::uint64_t ReadSnapshot::registrations(std::int64_t unix_seconds,
                                          std::string_view prefix) const {
    std::string key = day_counter_key(unix_seconds);
    if (!prefix.empty()) {
        key += '/';
        key += fold_case(prefix);
    }
    std::string_view v;
    return state_->txn.get(state_->impl->counters_, key, v) ? read_be64(v) : 0;
}

std::vector<std::pair<std::string, std::uint64_t>> ReadSnapshot::prefix_counts() const {
    std::vector<std::pair<std::string, std::uint64_t>> out;
    lmdb::Cursor c(state_->txn, state_->impl->counters_);
    std::string_view key = "n/", value;
    bool more = c.move(MDB_SET_RANGE, key, value);
    while (more && key.substr(0, 2) == "n/") {
        out.emplace_back(std::string(key.substr(2)), read_be64(value));
        more = c.move(MDB_NEXT, key, value);
    }
    return out;
}

std::optional<std::string> ReadSnapshot::get_entry(Table table, std::string_view key) const {
    std::string_view v;
    const MDB_dbi dbi = state_->impl->table(table);
    if (key.empty() || dbi == 0 || !state_->txn.get(dbi, key, v)) {
        return std::nullopt;
    }
    return std::string(v);
}

void ReadSnapshot::for_each_entry(
    Table table, const std::function<void(const std::string&, const std::string&)>& fn) const {
    std::string cursor;
    do {
        auto page = list_entries(table, cursor, 1000);
        for (const auto& [key, value] : page.entries)
            fn(key, value);
        cursor = std::move(page.next_cursor);
    } while (!cursor.empty());
}

EntryPage ReadSnapshot::list_entries(Table table, std::string_view cursor,
                                     std::size_t limit) const {
    EntryPage page;
    if (state_->impl->table(table) == 0) {
        return page; // a table this database does not have yet (read-only open)
    }
    lmdb::Cursor c(state_->txn, state_->impl->table(table));
    std::string position;
    std::string_view key, value;
    bool more;
    if (cursor.empty() || !from_hex(cursor, position)) {
        more = c.move(MDB_FIRST, key, value);
    } else {
        key = position;
        more = c.move(MDB_SET_RANGE, key, value);
        if (more && key == position) {
            more = c.move(MDB_NEXT, key, value);
        }
    }
    while (more) {
        if (page.entries.size() == limit) {
            page.next_cursor = to_hex(page.entries.back().first);
            break;
        }
        page.entries.emplace_back(std::string(key), std::string(value));
        more = c.move(MDB_NEXT, key, value);
    }
    return page;
}

std::vector<ChangeEntry> ReadSnapshot::changes(std::uint64_t from, std::size_t limit) const {
    std::vector<ChangeEntry> out;
    lmdb::Cursor c(state_->txn, state_->impl->changes_);
    const std::string start = be64(from);
    std::string_view key = start, value;
    bool more = c.move(MDB_SET_RANGE, key, value);
    while (more && out.size() < limit) {
        ChangeEntry e;
        if (key.size() != 8 || !decode_change(read_be64(key), value, e)) {
            throw std::runtime_error("change log entry " + to_hex(key) + " is corrupt");
        }
        if (e.loaded) {
            // No copy in the log: the record as stored in this snapshot (ChangeEntry::loaded).
            auto handle = parse_handle(e.key, HandleLimits{kHandleProtocolMaxLength});
            std::string_view record;
            if (handle &&
                state_->txn.get(state_->impl->ids_, IdentifierKey(handle->key()), record)) {
                e.value.assign(record);
            }
        }
        out.push_back(std::move(e));
        more = c.move(MDB_NEXT, key, value);
    }
    return out;
}

std::uint64_t ReadSnapshot::last_sequence() const {
    lmdb::Cursor c(state_->txn, state_->impl->changes_);
    std::string_view key, value;
    return c.move(MDB_LAST, key, value) ? read_be64(key) : 0;
}

// ---- RegistryImpl: open, snapshots, map growth -------------------------------------------------

RegistryImpl::RegistryImpl(RegistryOptions options) : options_(std::move(options)) {
    if (!options_.clock) {
        options_.clock = system_now;
    }
    std::error_code ec;
    const bool read_only = options_.mode == OpenMode::read_only;
    if (read_only) {
        if (!std::filesystem::exists(options_.data_dir / "data.mdb", ec)) {
            throw StartupError(Errc::not_found, "no database in " + options_.data_dir.string() +
                                                    " (initialise it with idctl init)");
        }
    } else {
        std::filesystem::create_directories(options_.data_dir, ec);
        if (ec) {
            throw StartupError(Errc::internal, "cannot create data directory " +
                                                   options_.data_dir.string() + ": " +
                                                   ec.message());
        }
    }
    claimed_dir_ = std::filesystem::canonical(options_.data_dir, ec).string();
    if (ec || !OpenEnvironments::claim(claimed_dir_)) {
        throw StartupError(Errc::unavailable, "the database in " + options_.data_dir.string() +
                                                  " is already open in this process");
    }
    if (!read_only) {
        take_access_lock();
    }
    const auto page = 4096ull;
    // 0 = map the whole max_db_size at once: address space only (the file grows as pages are
    // written), and the map never has to grow while snapshots are open.
    std::uint64_t initial = options_.initial_map_size == 0
                                ? options_.max_db_size
                                : std::min(options_.initial_map_size, options_.max_db_size);
    const auto data_file = options_.data_dir / "data.mdb";
    if (std::filesystem::exists(data_file, ec)) {
        initial = std::max<std::uint64_t>(initial, std::filesystem::file_size(data_file, ec));
    }
    initial = std::max<std::uint64_t>((initial + page - 1) / page * page, 1 << 20);

    lmdb::EnvSettings settings;
    settings.dir = options_.data_dir;
    settings.map_size = initial;
    settings.max_dbs = 16;
    settings.max_readers = options_.max_readers;
    // NOTLS: read transactions are pooled and may be used by any thread (one at a time).
    // NORDAHEAD: random point reads on a database larger than RAM must not pull in neighbours.
    settings.flags = MDB_NOTLS | MDB_NORDAHEAD | (options_.durable ? 0u : MDB_NOSYNC) |
                     (read_only ? MDB_RDONLY : 0u);
    try {
        env_ = std::make_unique<lmdb::Env>(settings);
        if (options_.mode == OpenMode::exclusive) {
            refuse_other_processes();
        }
        if (read_only) {
            open_databases_read_only();
        } else {
            open_databases();
        }
        stat_map_size_ = env_->map_size();
        stat_used_bytes_ = env_->used_bytes();
        if (!read_only && !options_.durable) {
            writeback_ = WritebackWindow(env_->data_fd(), options_.writeback_window_bytes);
            writeback_.after_commit(stat_used_bytes_);
        }
    } catch (const lmdb::MdbError& e) {
        release_environment();
        throw StartupError(Errc::internal, "cannot open the database in " +
                                               options_.data_dir.string() + ": " + e.what());
    } catch (...) {
        release_environment();
        throw;
    }
    if (!read_only) {
        writer_ = std::thread([this] { writer_loop(); });
    }
}

void RegistryImpl::release_environment() noexcept {
    clear_read_pool();
    env_.reset();
    if (access_lock_fd_ >= 0) {
        ::close(access_lock_fd_); // drops the flock
        access_lock_fd_ = -1;
    }
    OpenEnvironments::release(claimed_dir_);
}

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

namespace {

void wake(std::vector<std::function<void()>>& waiters) noexcept {
    for (auto& waiter : waiters) {
        try {
            waiter();
        } catch (...) {
            // on_space must not throw (registry.hpp); one that does must not stop the others.
        }
    }
    waiters.clear();
}

} // namespace

RegistryImpl::~RegistryImpl() {
    std::vector<std::function<void()>> waiters;
    {
        std::lock_guard lock(queue_mutex_);
        stopping_ = true;
        waiters.swap(space_waiters_);
    }
    queue_ready_.notify_all();
    queue_space_.notify_all();
    wake(waiters); // their retries complete at once with Errc::unavailable
    if (writer_.joinable()) {
        writer_.join();
    }
    release_environment();
}

void RegistryImpl::clear_read_pool() noexcept {
    std::lock_guard lock(pool_mutex_);
    read_pool_.clear(); // each State aborts its transaction
}

void RegistryImpl::open_databases() {
    for (int attempt = 0;; ++attempt) {
        lmdb::Txn txn(env_->get(), 0);
        auto open = [&](const char* name) {
            MDB_dbi dbi;
            lmdb::check(mdb_dbi_open(txn.get(), name, MDB_CREATE, &dbi), name);
            return dbi;
        };
        meta_ = open("meta");
        ids_ = open("ids_v1");
        counters_ = open("counters_v1");
        changes_ = open("changes_v1");
        tables_[static_cast<int>(Table::prefixes)] = open("prefixes_v1");
        tables_[static_cast<int>(Table::templates)] = open("templates_v1");
        tables_[static_cast<int>(Table::accounts)] = open("accounts_v1");
        tables_[static_cast<int>(Table::api_keys)] = open("apikeys_v1");
        // Added after schema 1 shipped: MDB_CREATE adds it to older databases as they open, and
        // builds without it ignore it, so no schema upgrade is needed either way.
        tables_[static_cast<int>(Table::idempotency)] = open("idempotency_v1");
        check_schema(txn);
        const int rc = txn.commit();
        if (rc == MDB_MAP_FULL && attempt == 0) {
            lmdb::check(mdb_env_set_mapsize(env_->get(), env_->map_size() * 2),
                        "mdb_env_set_mapsize");
            continue;
        }
        lmdb::check(rc, "commit schema");
        lmdb::Txn read(env_->get(), MDB_RDONLY);
        std::string_view total;
        if (read.get(counters_, kTotalKey, total)) {
            stat_identifiers_ = read_be64(total);
        }
        return;
    }
}

// A read-only open must not create anything: every database must exist and the schema must be
// exactly this build's (an older one needs the upgrade a writable open performs).
void RegistryImpl::open_databases_read_only() {
    lmdb::Txn txn(env_->get(), MDB_RDONLY);
    auto open = [&](const char* name) {
        MDB_dbi dbi;
        const int rc = mdb_dbi_open(txn.get(), name, 0, &dbi);
        if (rc == MDB_NOTFOUND) {
            throw StartupError(Errc::not_found, "the database in " + options_.data_dir.string() +
                                                    " has no table " + name +
                                                    " (not initialised by idnode/idctl)");
        }
        lmdb::check(rc, name);
        return dbi;
    };
    meta_ = open("meta");
    ids_ = open("ids_v1");
    counters_ = open("counters_v1");
    changes_ = open("changes_v1");
    tables_[static_cast<int>(Table::prefixes)] = open("prefixes_v1");
    tables_[static_cast<int>(Table::templates)] = open("templates_v1");
    tables_[static_cast<int>(Table::accounts)] = open("accounts_v1");
    tables_[static_cast<int>(Table::api_keys)] = open("apikeys_v1");
    {
        // Absent in databases no writable open of this build has touched yet: read as empty.
        MDB_dbi dbi;
        const int rc = mdb_dbi_open(txn.get(), "idempotency_v1", 0, &dbi);
        if (rc != MDB_NOTFOUND) {
            lmdb::check(rc, "idempotency_v1");
            tables_[static_cast<int>(Table::idempotency)] = dbi;
        }
    }
    std::string_view stored;
    if (!txn.get(meta_, kSchemaKey, stored) || stored.size() != 4) {
        throw StartupError(Errc::corrupt, "schema_version key is missing or malformed");
    }
    const std::uint32_t version = wire::load_u32(stored.data());
    if (version != kSchemaVersion) {
        throw StartupError(Errc::internal, "database schema version " + std::to_string(version) +
                                               " differs from this build's (" +
                                               std::to_string(kSchemaVersion) +
                                               "); open it once with a matching idnode to upgrade");
    }
    std::string_view total;
    if (txn.get(counters_, kTotalKey, total)) {
        stat_identifiers_ = read_be64(total);
    }
    lmdb::check(txn.commit(), "commit read-only open"); // keeps the dbi handles
}

// Upgrade steps: upgrades[v] turns schema v into v + 1 inside the open transaction. There are
// none yet; version 1 is the first layout.
void RegistryImpl::check_schema(lmdb::Txn& txn) {
    std::string_view stored;
    if (!txn.get(meta_, kSchemaKey, stored)) {
        std::string v;
        wire::put_u32(v, kSchemaVersion);
        txn.put(meta_, kSchemaKey, v);
        return;
    }
    if (stored.size() != 4) {
        throw StartupError(Errc::corrupt, "schema_version key is malformed");
    }
    const std::uint32_t version = wire::load_u32(stored.data());
    if (version > kSchemaVersion) {
        throw StartupError(Errc::internal, "database schema version " + std::to_string(version) +
                                               " is newer than this idnode understands (" +
                                               std::to_string(kSchemaVersion) +
                                               "); upgrade idnode");
    }
    using Upgrade = void (*)(lmdb::Txn&);
    static constexpr Upgrade upgrades[] = {nullptr}; // index 0 unused: there is no schema 0
    for (std::uint32_t v = version; v < kSchemaVersion; ++v) {
        upgrades[v](txn);
    }
    if (version != kSchemaVersion) {
        std::string v;
        wire::put_u32(v, kSchemaVersion);
        txn.put(meta_, kSchemaKey, v);
    }
}

ReadSnapshot RegistryImpl::snapshot() {
    gate_.enter();
    std::unique_ptr<ReadSnapshot::State> state;
    {
        std::lock_guard lock(pool_mutex_);
        if (!read_pool_.empty()) {
            state = std::move(read_pool_.back());
            read_pool_.pop_back();
        }
    }
    int rc = MDB_SUCCESS;
    for (int attempt = 0; attempt < 3; ++attempt) {
        if (state) {
            rc = mdb_txn_renew(state->txn.get());
            if (rc != MDB_SUCCESS) {
                state.reset();
            }
        } else {
            MDB_txn* txn = nullptr;
            rc = mdb_txn_begin(env_->get(), nullptr, MDB_RDONLY, &txn);
            if (rc == MDB_SUCCESS) {
                state = std::make_unique<ReadSnapshot::State>(this, txn);
            }
        }
        if (rc == MDB_SUCCESS) {
            break;
        }
        if (rc == MDB_READERS_FULL) {
            int dead = 0;
            mdb_reader_check(env_->get(), &dead); // clear slots of crashed processes, then retry
        } else if (rc == MDB_MAP_RESIZED) {
            gate_.leave();
            adopt_foreign_resize();
            gate_.enter();
        } else {
            break;
        }
    }
    if (rc != MDB_SUCCESS) {
        gate_.leave();
        throw std::runtime_error(std::string("cannot start a read transaction: ") +
                                 mdb_strerror(rc));
    }
    return ReadSnapshot(std::move(state));
}

void RegistryImpl::release(std::unique_ptr<ReadSnapshot::State> state) noexcept {
    mdb_txn_reset(state->txn.get());
    {
        std::lock_guard lock(pool_mutex_);
        read_pool_.push_back(std::move(state));
    }
    gate_.leave();
}

// Another process (an offline tool) grew the map: adopt its size.
void RegistryImpl::adopt_foreign_resize() {
    while (!gate_.begin_resize(kResizePatience)) {
        // This process cannot use the environment until it adopts the new size; keep trying.
    }
    clear_read_pool();
    mdb_env_set_mapsize(env_->get(), 0);
    stat_map_size_ = env_->map_size();
    gate_.end_resize();
}

// Called by the writer with no write transaction open.
RegistryImpl::Growth RegistryImpl::grow_map() {
    const std::uint64_t current = env_->map_size();
    if (current >= options_.max_db_size) {
        return Growth::at_limit;
    }
    std::uint64_t next = std::max(current * 2, current + kMinGrowth);
    next = std::min(next, options_.max_db_size) / 4096 * 4096;
    if (next <= current) {
        return Growth::at_limit;
    }
    if (!gate_.begin_resize(kResizePatience)) {
        return Growth::snapshots_open;
    }
    clear_read_pool();
    const int rc = mdb_env_set_mapsize(env_->get(), next);
    gate_.end_resize();
    lmdb::check(rc, "mdb_env_set_mapsize");
    stat_map_size_ = env_->map_size();
    stat_growths_.fetch_add(1);
    return Growth::grown;
}

// ---- disk space --------------------------------------------------------------------------------

std::optional<std::uint64_t> RegistryImpl::free_bytes() const {
    struct statvfs fs {};
    if (::statvfs(options_.data_dir.c_str(), &fs) != 0) {
        return std::nullopt;
    }
    return static_cast<std::uint64_t>(fs.f_bavail) * fs.f_frsize;
}

// LMDB passes on ENOSPC/EDQUOT from a write that failed outright, but turns a short write (the
// filesystem took part of the pages, then ran out) into EIO. A short write leaves the filesystem
// with next to nothing free, so EIO with less than kDiskFullBelow free is a full disk; with more,
// it is a real I/O error (Errc::internal).
bool RegistryImpl::disk_full_error(int rc) const {
    if (rc == ENOSPC || rc == EDQUOT) {
        return true;
    }
    if (rc != EIO) {
        return false;
    }
    const auto free = free_bytes();
    return free && *free < kDiskFullBelow;
}

void RegistryImpl::set_disk_full(bool full, std::string detail, std::uint64_t free) {
    std::lock_guard lock(disk_mutex_);
    if (disk_full_.load() == full) {
        return; // once per episode
    }
    disk_full_.store(full);
    if (options_.on_disk_event) {
        try {
            options_.on_disk_event(DiskEvent{full, options_.data_dir, free, std::move(detail)});
        } catch (...) {
            // on_disk_event must not throw (registry.hpp); the writer must go on regardless.
        }
    }
}

DiskSpace RegistryImpl::disk_space() {
    const auto free = free_bytes();
    if (free && *free >= kDiskRoomAgain && disk_full_.load()) {
        set_disk_full(false, "space was freed", *free);
    }
    return DiskSpace{disk_full_.load(), free.value_or(0)};
}

// ---- the writer
// ----------------------------------------------------------------------------------

namespace {

/// A batch submitted after shutdown began: every op fails with Errc::unavailable, at once.
void complete_unavailable(const WriteBatch& batch, Completion& done) {
    BatchResult results(batch.ops.size(),
                        failed(Errc::unavailable, "the registry is shutting down"));
    if (done) {
        done(std::move(results));
    }
}

} // namespace

void RegistryImpl::submit(WriteBatch batch, Completion done) {
    const std::size_t ops = std::max<std::size_t>(batch.ops.size(), 1);
    std::unique_lock lock(queue_mutex_);
    // Backpressure: wait for room, but always admit into an empty queue so that a batch larger
    // than the limit cannot block forever, and never make the writer thread wait (a completion
    // that submits a follow-up write would otherwise wait for itself).
    if (options_.mode == OpenMode::read_only) {
        lock.unlock();
        BatchResult results(batch.ops.size(),
                            failed(Errc::unavailable, "the registry is open read-only"));
        if (done) {
            done(std::move(results));
        }
        return;
    }
    const bool on_writer = std::this_thread::get_id() == writer_.get_id();
    queue_space_.wait(lock, [&] {
        return on_writer || stopping_ || queue_.empty() ||
               queued_ops_ + ops <= options_.max_queued_ops;
    });
    if (stopping_) {
        lock.unlock();
        complete_unavailable(batch, done);
        return;
    }
    queued_ops_ += ops;
    stat_queued_ = queued_ops_;
    queue_.push_back(Pending{std::move(batch), std::move(done)});
    lock.unlock();
    queue_ready_.notify_one();
}

SubmitStatus RegistryImpl::try_submit(WriteBatch& batch, Completion& done,
                                      std::function<void()> on_space) {
    if (options_.mode == OpenMode::read_only) {
        submit(std::move(batch), std::move(done)); // completes at once, never waits
        return SubmitStatus::queued;
    }
    const std::size_t ops = std::max<std::size_t>(batch.ops.size(), 1);
    std::unique_lock lock(queue_mutex_);
    if (stopping_) {
        lock.unlock();
        complete_unavailable(batch, done);
        return SubmitStatus::queued;
    }
    // The admission rule of submit(), decided and acted on under one lock (never a wait).
    const bool on_writer = std::this_thread::get_id() == writer_.get_id();
    if (!on_writer && !queue_.empty() && queued_ops_ + ops > options_.max_queued_ops) {
        if (on_space) {
            space_waiters_.push_back(std::move(on_space));
        }
        stat_refused_.fetch_add(1);
        return SubmitStatus::full;
    }
    queued_ops_ += ops;
    stat_queued_ = queued_ops_;
    queue_.push_back(Pending{std::move(batch), std::move(done)});
    lock.unlock();
    queue_ready_.notify_one();
    return SubmitStatus::queued;
}

void RegistryImpl::writer_loop() {
    std::vector<Pending> group;
    std::vector<std::function<void()>> waiters;
    for (;;) {
        {
            std::unique_lock lock(queue_mutex_);
            queue_ready_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
            if (queue_.empty()) {
                return; // stopping and drained
            }
            // Group commit: take everything queued, up to max_group_ops (at least one batch).
            std::size_t ops = 0;
            while (!queue_.empty() && (group.empty() || ops + queue_.front().batch.ops.size() <=
                                                            options_.max_group_ops)) {
                ops += std::max<std::size_t>(queue_.front().batch.ops.size(), 1);
                group.push_back(std::move(queue_.front()));
                queue_.pop_front();
            }
            queued_ops_ -= ops;
            stat_queued_ = queued_ops_;
            waiters.swap(space_waiters_);
        }
        queue_space_.notify_all();
        wake(waiters); // before the commit, so that their retries can make the next group
        std::vector<BatchResult> results = commit_group(group, 0, group.size());
        for (std::size_t i = 0; i < group.size(); ++i) {
            if (group[i].done) {
                try {
                    group[i].done(std::move(results[i]));
                } catch (...) {
                    // A completion must not throw (registry.hpp); one that does must not stop the
                    // writer for everybody else.
                }
            }
        }
        group.clear();
    }
}

struct RegistryImpl::GroupContext {
    GroupContext(lmdb::Txn& t, std::uint32_t now_seconds, std::uint64_t first_sequence,
                 bool log_record_copies)
        : txn(t), now(now_seconds), next_sequence(first_sequence),
          log_record_copies(log_record_copies) {}

    lmdb::Txn& txn;
    std::uint32_t now;
    std::uint64_t next_sequence;
    // RegistryOptions::log_record_copies: false = identifier creations and replacements are
    // logged without their record (ChangeEntry::loaded).
    bool log_record_copies;
    std::map<std::string, std::int64_t> count_deltas; // counter key -> delta
    std::int64_t total_delta = 0;
    std::string day_key; // "d/YYYY-MM-DD" of `now`, computed on the first creation
    // Largest identifier key when the group began (or one appended since; may be stale after a
    // delete, which only makes it larger than the real last key, so appending stays correct).
    std::string ids_last_key;

    /// Inserts a new identifier. Keys beyond the current last key use MDB_APPEND: ascending
    /// loads (production runs) then fill pages completely instead of splitting them in half.
    void insert_identifier(MDB_dbi ids, std::string_view key, std::string_view bytes) {
        if (key > std::string_view(ids_last_key)) {
            txn.put(ids, key, bytes, MDB_APPEND);
            ids_last_key.assign(key);
        } else {
            txn.put(ids, key, bytes);
        }
    }

    /// Moves the record from the usage count of its old template to its new one.
    void track_template(std::string_view prefix_key, const std::vector<HandleValue>* before,
                        const std::vector<HandleValue>* after) {
        const std::string b = before ? template_usage_key(prefix_key, *before) : std::string();
        const std::string a = after ? template_usage_key(prefix_key, *after) : std::string();
        if (a == b) {
            return;
        }
        if (!b.empty()) {
            count_deltas[b] -= 1;
        }
        if (!a.empty()) {
            count_deltas[a] += 1;
        }
    }

    /// Counts a new identifier: under its prefix, in total, and in today's registrations.
    void count_created(std::string_view prefix_key) {
        count_deltas[counter_key(prefix_key)] += 1;
        total_delta += 1;
        if (day_key.empty())
            day_key = day_counter_key(now);
        count_deltas[day_key] += 1;
        std::string per_prefix = day_key;
        per_prefix += '/';
        per_prefix.append(prefix_key);
        count_deltas[per_prefix] += 1;
    }

    /// Appends the change-log entry (kind, op, time, account, key, value; decode_change reads
    /// it), written straight into its place in the page: a bulk load logs one entry per record.
    void log(ChangeKind kind, Outcome outcome, const std::string& account, std::string_view key,
             std::string_view value, OpResult& result, MDB_dbi changes) {
        if (logs_without_record(kind, outcome)) {
            log_loaded(outcome, account, key, result, changes);
            return;
        }
        char* out = log_reserve(kind, outcome, account, key, value.size(), result, changes);
        if (!value.empty()) {
            std::memcpy(out, value.data(), value.size());
        }
    }

    /// True when this entry is written by log_loaded (no record copy).
    bool logs_without_record(ChangeKind kind, Outcome outcome) const noexcept {
        return !log_record_copies && kind == ChangeKind::identifier &&
               (outcome == Outcome::created || outcome == Outcome::replaced);
    }

    /// The compact entry of an offline load: op flagged loaded, no value (ChangeEntry::loaded).
    void log_loaded(Outcome outcome, const std::string& account, std::string_view key,
                    OpResult& result, MDB_dbi changes) {
        log_reserve(ChangeKind::identifier, outcome, account, key, 0, result, changes,
                    kLoadedOpFlag);
    }

    /// log() without the value: returns where its `value_size` bytes go, to be filled before the
    /// next write of the transaction. The entry's key is the next sequence number, so every entry
    /// is appended (MDB_APPEND through one cursor kept for the group: no descent per entry).
    char* log_reserve(ChangeKind kind, Outcome outcome, const std::string& account,
                      std::string_view key, std::size_t value_size, OpResult& result,
                      MDB_dbi changes, std::uint8_t op_flags = 0) {
        result.sequence = next_sequence++;
        char seq[8];
        store_be(seq, result.sequence, 8);
        const std::size_t size = 1 + 1 + 8 + 4 + account.size() + 4 + key.size() + 4 + value_size;
        if (!changes_appender) {
            changes_appender = std::make_unique<lmdb::Cursor>(txn, changes);
        }
        char* p = changes_appender->reserve(std::string_view(seq, 8), size, MDB_APPEND);
        *p++ = static_cast<char>(kind);
        *p++ = static_cast<char>(static_cast<std::uint8_t>(change_op(outcome)) | op_flags);
        store_be(p, static_cast<std::uint64_t>(std::int64_t{now}), 8);
        p += 8;
        for (std::string_view part : {std::string_view(account), key}) {
            store_be(p, part.size(), 4);
            if (!part.empty()) {
                std::memcpy(p + 4, part.data(), part.size());
            }
            p += 4 + part.size();
        }
        store_be(p, value_size, 4);
        return p + 4;
    }

    /// Appends a new identifier whose key is beyond every stored one (the caller checked it
    /// against ids_last_key) through the group's identifier cursor, MDB_APPEND | MDB_RESERVE:
    /// returns where its `size` bytes go, to be filled before the next write.
    char* append_identifier(MDB_dbi ids, std::string_view key, std::size_t size) {
        if (!ids_appender) {
            ids_appender = std::make_unique<lmdb::Cursor>(txn, ids);
        }
        char* out = ids_appender->reserve(key, size, MDB_APPEND);
        ids_last_key.assign(key);
        return out;
    }

    /// Write cursors must be closed before their transaction commits.
    void close_cursors() noexcept {
        ids_appender.reset();
        changes_appender.reset();
    }

    static void store_be(char* out, std::uint64_t v, int bytes) noexcept {
        for (int i = 0; i < bytes; ++i) {
            out[i] = static_cast<char>(v >> (8 * (bytes - 1 - i)));
        }
    }

    /// count_created plus the template usage count, remembering the last keys: a sorted load
    /// hits the same prefix (and template) counters for long stretches.
    void count_one(std::string_view prefix_key, std::string_view template_version) {
        if (prefix_key != last_prefix_key || last_prefix_delta == nullptr) {
            last_prefix_key.assign(prefix_key);
            last_prefix_delta = &count_deltas[counter_key(prefix_key)];
            if (day_key.empty())
                day_key = day_counter_key(now);
            last_day_delta = &count_deltas[day_key];
            std::string per_prefix = day_key;
            per_prefix += '/';
            per_prefix.append(prefix_key);
            last_day_prefix_delta = &count_deltas[per_prefix];
        }
        *last_prefix_delta += 1;
        *last_day_delta += 1;
        *last_day_prefix_delta += 1;
        total_delta += 1;
        if (template_version.empty()) {
            return;
        }
        const std::string tkey = template_usage_key(prefix_key, template_version);
        if (tkey.empty()) {
            return;
        }
        if (tkey != last_template_key || last_template_delta == nullptr) {
            last_template_key = tkey;
            last_template_delta = &count_deltas[tkey];
        }
        *last_template_delta += 1;
    }

    // The identifier cursor serves only runs of consecutive appends (apply_put_encoded and
    // append_new_put): apply() and apply_put drop it before any other operation, so that every
    // other write to ids_ sees exactly what it saw before this cursor existed (a plain mdb_put).
    // Nothing but log() writes changes_.
    std::unique_ptr<lmdb::Cursor> ids_appender, changes_appender;
    std::vector<std::size_t> stamp_offsets; // of the timestamps in a record (apply_put_encoded)
    std::string key_buffer;
    std::string record_buffer;                      // append_new_put's encoding, reused
    std::vector<const HandleValue*> ordered_values; // append_new_put's values in index order
    std::string last_prefix_key, last_template_key;
    // Into count_deltas (a std::map: element addresses stay valid).
    std::int64_t* last_prefix_delta = nullptr;
    std::int64_t* last_day_delta = nullptr;
    std::int64_t* last_day_prefix_delta = nullptr;
    std::int64_t* last_template_delta = nullptr;
};

std::vector<BatchResult> RegistryImpl::commit_group(std::vector<Pending>& group, std::size_t first,
                                                    std::size_t count) {
    const auto started = std::chrono::steady_clock::now();
    for (;;) {
        std::vector<BatchResult> results(count);
        bool map_full = false;
        try {
            lmdb::Txn txn(env_->get(), 0);
            std::uint64_t last_seq = 0;
            {
                lmdb::Cursor c(txn, changes_);
                std::string_view k, v;
                if (c.move(MDB_LAST, k, v)) {
                    last_seq = read_be64(k);
                }
            }
            GroupContext ctx(txn, static_cast<std::uint32_t>(options_.clock()), last_seq + 1,
                             options_.log_record_copies);
            {
                lmdb::Cursor c(txn, ids_);
                std::string_view k, v;
                if (c.move(MDB_LAST, k, v)) {
                    ctx.ids_last_key.assign(k);
                }
            }
            for (std::size_t b = 0; b < count; ++b) {
                const Pending& p = group[first + b];
                results[b].reserve(p.batch.ops.size());
                for (const WriteOp& op : p.batch.ops) {
                    results[b].push_back(apply(ctx, op, p.batch.account));
                }
            }
            for (const auto& [key, delta] : ctx.count_deltas) {
                std::string_view old;
                const std::uint64_t value =
                    (txn.get(counters_, key, old) ? read_be64(old) : 0) + delta;
                if (value == 0) {
                    txn.del(counters_, key);
                } else {
                    txn.put(counters_, key, be64(value));
                }
            }
            std::uint64_t total = 0;
            if (ctx.total_delta != 0) {
                std::string_view old;
                total = (txn.get(counters_, kTotalKey, old) ? read_be64(old) : 0) + ctx.total_delta;
                txn.put(counters_, kTotalKey, be64(total));
            }
            ctx.close_cursors();
            const int rc = txn.commit();
            if (rc == MDB_MAP_FULL) {
                throw MapFull{};
            }
            lmdb::check(rc, "mdb_txn_commit");
            if (ctx.total_delta != 0) {
                stat_identifiers_ = total;
            }
        } catch (const MapFull&) {
            map_full = true;
        } catch (const lmdb::MdbError& e) {
            if (e.rc() == MDB_MAP_FULL) {
                map_full = true;
            } else if (disk_full_error(e.rc())) {
                // The disk (not the map) is full: LMDB aborted the transaction, so nothing of the
                // group is stored; the pages it managed to write lie beyond the last commit and
                // are written over later. Every write tries again: they resume once there is room.
                set_disk_full(true, e.what(), free_bytes().value_or(0));
                for (std::size_t b = 0; b < count; ++b) {
                    results[b].assign(
                        group[first + b].batch.ops.size(),
                        failed(Errc::storage_full,
                               "storage full: no space left on the database's disk (writes "
                               "resume once space is freed; reads still work)"));
                }
                return results;
            } else if (e.rc() == MDB_MAP_RESIZED) {
                adopt_foreign_resize();
                continue;
            } else {
                for (std::size_t b = 0; b < count; ++b) {
                    results[b].assign(group[first + b].batch.ops.size(),
                                      failed(Errc::internal, e.what()));
                }
                return results;
            }
        }
        if (map_full) {
            const Growth growth = grow_map();
            if (growth == Growth::grown) {
                continue; // retry the whole group in the larger map
            }
            if (growth == Growth::snapshots_open) {
                for (std::size_t b = 0; b < count; ++b) {
                    results[b].assign(
                        group[first + b].batch.ops.size(),
                        failed(Errc::unavailable,
                               "the map must grow but read snapshots stayed open; retry"));
                }
                return results;
            }
            if (count > 1) {
                // At the hard limit: commit batch by batch so that small batches (and deletions,
                // which free pages) can still succeed while the batches that do not fit fail.
                std::vector<BatchResult> each;
                for (std::size_t b = 0; b < count; ++b) {
                    each.push_back(std::move(commit_group(group, first + b, 1).front()));
                }
                return each;
            }
            results[0].assign(
                group[first].batch.ops.size(),
                failed(Errc::storage_full, "storage full: the database reached max_db_size (" +
                                               std::to_string(options_.max_db_size) + " bytes)"));
            return results;
        }
        std::size_t ops = 0;
        for (std::size_t b = 0; b < count; ++b) {
            ops += results[b].size();
        }
        stat_commits_.fetch_add(1);
        stat_committed_ops_.fetch_add(ops);
        stat_last_commit_us_ =
            static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(
                                           std::chrono::steady_clock::now() - started)
                                           .count());
        stat_used_bytes_ = env_->used_bytes();
        writeback_.after_commit(stat_used_bytes_);
        if (disk_full_.load(std::memory_order_relaxed)) {
            set_disk_full(false, "a write succeeded", free_bytes().value_or(0));
        }
        return results;
    }
}

OpResult RegistryImpl::apply(GroupContext& ctx, const WriteOp& op, const std::string& account) {
    if (!std::holds_alternative<PutEncodedRecord>(op) && !std::holds_alternative<PutRecord>(op)) {
        ctx.ids_appender.reset(); // see GroupContext::ids_appender (apply_put drops it itself)
    }
    return std::visit(
        [&](const auto& o) -> OpResult {
            using T = std::decay_t<decltype(o)>;
            if constexpr (std::is_same_v<T, PutRecord>) {
                return apply_put(ctx, o, account);
            } else if constexpr (std::is_same_v<T, SetValues>) {
                return apply_set(ctx, o, account);
            } else if constexpr (std::is_same_v<T, RemoveValues>) {
                return apply_remove(ctx, o, account);
            } else if constexpr (std::is_same_v<T, DeleteRecord>) {
                return apply_delete(ctx, o, account);
            } else if constexpr (std::is_same_v<T, PutEntry>) {
                return apply_put_entry(ctx, o, account);
            } else if constexpr (std::is_same_v<T, PutEncodedRecord>) {
                return apply_put_encoded(ctx, o, account);
            } else {
                return apply_delete_entry(ctx, o, account);
            }
        },
        op);
}

namespace {

/// The stored record under `key`, decoded; nullopt when absent. A corrupt stored record becomes
/// an Error for this operation only.
struct Existing {
    bool found = false;
    Record record;
    std::optional<Error> error;
};

Existing load_existing(lmdb::Txn& txn, MDB_dbi ids, std::string_view key) {
    Existing e;
    std::string_view bytes;
    if (!txn.get(ids, key, bytes)) {
        return e;
    }
    auto rec = decode_record(bytes);
    if (!rec) {
        e.error = rec.error();
        return e;
    }
    e.found = true;
    e.record = std::move(rec).value();
    return e;
}

} // namespace

OpResult RegistryImpl::apply_put(GroupContext& ctx, const PutRecord& op,
                                 const std::string& account) {
    if (Status st = validate_values(op.values, options_.value_limits); !st) {
        return failed(st.code(), op.handle.spelling() + ": " + st.error().message);
    }
    const IdentifierKey key(op.handle.key());
    if (op.mode != PutMode::replace && std::string_view(key) > std::string_view(ctx.ids_last_key)) {
        // Beyond every stored key (ids_last_key is never below the real last key): the record
        // is new, no lookup needed.
        return append_new_put(ctx, op, key, account);
    }
    ctx.ids_appender.reset(); // the writes below are plain puts
    Existing existing = load_existing(ctx.txn, ids_, key);
    if (existing.error) {
        return failed(existing.error->code, existing.error->message);
    }
    std::vector<HandleValue> values = op.values;
    sort_by_index(values);
    Outcome outcome;
    std::string spelling = op.handle.spelling();
    if (existing.found) {
        if (same_values(existing.record.values, values)) {
            return OpResult{Outcome::unchanged, {}, 0};
        }
        if (op.mode == PutMode::create) {
            return failed(Errc::already_exists,
                          "identifier " + op.handle.spelling() + " already exists");
        }
        spelling = existing.record.spelling; // the registered spelling is kept
        outcome = Outcome::replaced;
    } else {
        if (op.mode == PutMode::replace) {
            return failed(Errc::not_found,
                          "identifier " + op.handle.spelling() + " is not registered");
        }
        outcome = Outcome::created;
    }
    stamp(values, existing.record.values, ctx.now);
    ctx.track_template(op.handle.prefix_key(), existing.found ? &existing.record.values : nullptr,
                       &values);
    const std::string bytes = encode_record(spelling, values);
    if (outcome == Outcome::created) {
        ctx.insert_identifier(ids_, key, bytes);
    } else {
        ctx.txn.put(ids_, key, bytes);
    }
    if (outcome == Outcome::created) {
        ctx.count_created(op.handle.prefix_key());
    }
    OpResult result{outcome, {}, 0};
    ctx.log(ChangeKind::identifier, outcome, account, spelling, bytes, result, changes_);
    return result;
}

// apply_put of a new record whose key is beyond every stored one, writing exactly what the
// general path writes (encode_record of the values sorted by index, every one stamped `now` as
// stamp() does with no previous values; the same counters; the same change-log entry) but
// without copying the values: encoded once into a reused buffer, then copied into the identifier
// appended through the group's cursor and into the change-log entry.
OpResult RegistryImpl::append_new_put(GroupContext& ctx, const PutRecord& op, std::string_view key,
                                      const std::string& account) {
    // Values in index order (validate_values made the indices unique); usually already sorted.
    std::vector<const HandleValue*>& ordered = ctx.ordered_values;
    ordered.clear();
    bool sorted = true;
    for (const HandleValue& v : op.values) {
        sorted = sorted && (ordered.empty() || ordered.back()->index < v.index);
        ordered.push_back(&v);
    }
    if (!sorted) {
        std::sort(ordered.begin(), ordered.end(),
                  [](const HandleValue* x, const HandleValue* y) { return x->index < y->index; });
    }
    const std::string& spelling = op.handle.spelling();
    std::string& bytes = ctx.record_buffer;
    encode_record_stamped(bytes, spelling, ordered, ctx.now);
    std::string_view template_version;
    for (const HandleValue* v : ordered) {
        if (v->index == kIndexTemplate) {
            template_version = v->data;
        }
    }
    std::memcpy(ctx.append_identifier(ids_, key, bytes.size()), bytes.data(), bytes.size());
    // The same counter deltas as track_template(prefix, nullptr, values) + count_created(prefix).
    ctx.count_one(op.handle.prefix_key(), template_version);
    OpResult result{Outcome::created, {}, 0};
    ctx.log(ChangeKind::identifier, Outcome::created, account, spelling, bytes, result, changes_);
    return result;
}

namespace {

bool valid_type_text(std::string_view type) noexcept {
    if (type.empty() || type.size() > kMaxTypeBytes) {
        return false;
    }
    bool ascii = true;
    for (char ch : type) {
        const auto c = static_cast<unsigned char>(ch);
        if (c < 0x20 || c == 0x7F) {
            return false;
        }
        ascii = ascii && c < 0x80;
    }
    return ascii || find_invalid_utf8(type) == std::string_view::npos;
}

} // namespace

// The bulk-load fast path: a new record appended in key order, its values already encoded in
// ascending index order. It performs exactly the checks of validate_values (as a yes/no) and
// writes exactly what apply_put would write; every other case takes apply_put itself, so the
// outcomes and error messages are the same by construction.
OpResult RegistryImpl::apply_put_encoded(GroupContext& ctx, const PutEncodedRecord& op,
                                         const std::string& account) {
    if (options_.mode != OpenMode::exclusive) {
        return failed(Errc::invalid_value,
                      "pre-encoded records are accepted only by an exclusive (offline) registry");
    }
    auto view = RecordView::parse(op.record);
    if (!view) {
        return failed(Errc::invalid_value,
                      "the encoded record is malformed (" + view.error().message + ")");
    }
    const std::string_view spelling = view->spelling();
    // The folded key, built in a reused buffer (Handle::key() without the allocations).
    std::string& folded = ctx.key_buffer;
    folded.assign(spelling);
    for (char& c : folded) {
        if (c >= 'a' && c <= 'z') {
            c = static_cast<char>(c - 'a' + 'A');
        }
    }
    const std::size_t slash = folded.find('/');
    const IdentifierKey key(folded);
    bool fast = slash != std::string::npos && op.mode != PutMode::replace && view->size() > 0 &&
                view->size() <= options_.value_limits.max_values &&
                std::string_view(key) > std::string_view(ctx.ids_last_key);
    std::string_view template_version;
    ctx.stamp_offsets.clear();
    if (fast) {
        std::int64_t previous_index = 0;
        std::size_t bytes = 16;
        for (const ValueView& v : *view) {
            if (v.index <= previous_index || v.reference_count != 0 || !valid_type_text(v.type)) {
                fast = false;
                break;
            }
            previous_index = v.index;
            bytes += 26 + v.type.size() + v.data.size();
            if (v.index == kIndexTemplate) {
                template_version = v.data;
            }
            // The value's timestamp: 4 bytes after its index.
            ctx.stamp_offsets.push_back(static_cast<std::size_t>(v.wire.data() - op.record.data()) +
                                        4);
        }
        fast = fast && bytes <= options_.value_limits.max_record_bytes;
    }
    if (!fast) {
        ctx.ids_appender.reset(); // apply_put writes through plain puts
        // The submitter validated the spelling under its own length limit: re-parse it under the
        // protocol's maximum only to rebuild the Handle.
        auto handle = parse_handle(spelling, HandleLimits{kHandleProtocolMaxLength});
        if (!handle) {
            return failed(handle.error().code,
                          std::string(spelling) + ": " + handle.error().message);
        }
        auto record = view->to_record();
        return apply_put(
            ctx, PutRecord{std::move(handle).value(), std::move(record.values), op.mode}, account);
    }
    // The record goes straight into its place in the page, every value stamped `now` (a new
    // record has no earlier timestamps to keep); the change-log entry gets the same bytes.
    const char stamp_bytes[4] = {static_cast<char>(ctx.now >> 24), static_cast<char>(ctx.now >> 16),
                                 static_cast<char>(ctx.now >> 8), static_cast<char>(ctx.now)};
    const std::size_t size = op.record.size();
    auto write_stamped = [&](char* out) {
        std::memcpy(out, op.record.data(), size);
        for (const std::size_t at : ctx.stamp_offsets) {
            std::memcpy(out + at, stamp_bytes, 4);
        }
    };
    write_stamped(ctx.append_identifier(ids_, key, size));
    ctx.count_one(std::string_view(folded).substr(0, slash), template_version);
    OpResult result{Outcome::created, {}, 0};
    if (ctx.logs_without_record(ChangeKind::identifier, Outcome::created)) {
        ctx.log_loaded(Outcome::created, account, spelling, result, changes_);
    } else {
        write_stamped(ctx.log_reserve(ChangeKind::identifier, Outcome::created, account, spelling,
                                      size, result, changes_));
    }
    return result;
}

OpResult RegistryImpl::apply_set(GroupContext& ctx, const SetValues& op,
                                 const std::string& account) {
    if (Status st = validate_values(op.values, options_.value_limits); !st) {
        return failed(st.code(), op.handle.spelling() + ": " + st.error().message);
    }
    const IdentifierKey key(op.handle.key());
    Existing existing = load_existing(ctx.txn, ids_, key);
    if (existing.error) {
        return failed(existing.error->code, existing.error->message);
    }
    if (!existing.found && !op.create_if_missing) {
        return failed(Errc::not_found, "identifier " + op.handle.spelling() + " is not registered");
    }
    std::vector<HandleValue> merged = existing.record.values;
    for (const auto& v : op.values) {
        auto it = std::find_if(merged.begin(), merged.end(),
                               [&](const HandleValue& m) { return m.index == v.index; });
        if (it == merged.end()) {
            merged.push_back(v);
        } else {
            *it = v;
        }
    }
    sort_by_index(merged);
    if (existing.found && same_values(existing.record.values, merged)) {
        return OpResult{Outcome::unchanged, {}, 0};
    }
    if (Status st = validate_values(merged, options_.value_limits); !st) {
        return failed(st.code(), op.handle.spelling() + ": " + st.error().message);
    }
    stamp(merged, existing.record.values, ctx.now);
    ctx.track_template(op.handle.prefix_key(), existing.found ? &existing.record.values : nullptr,
                       &merged);
    const std::string spelling = existing.found ? existing.record.spelling : op.handle.spelling();
    const std::string bytes = encode_record(spelling, merged);
    if (existing.found) {
        ctx.txn.put(ids_, key, bytes);
    } else {
        ctx.insert_identifier(ids_, key, bytes);
    }
    const Outcome outcome = existing.found ? Outcome::updated : Outcome::created;
    if (!existing.found) {
        ctx.count_created(op.handle.prefix_key());
    }
    OpResult result{outcome, {}, 0};
    ctx.log(ChangeKind::identifier, outcome, account, spelling, bytes, result, changes_);
    return result;
}

OpResult RegistryImpl::apply_remove(GroupContext& ctx, const RemoveValues& op,
                                    const std::string& account) {
    const IdentifierKey key(op.handle.key());
    Existing existing = load_existing(ctx.txn, ids_, key);
    if (existing.error) {
        return failed(existing.error->code, existing.error->message);
    }
    if (!existing.found) {
        return failed(Errc::not_found, "identifier " + op.handle.spelling() + " is not registered");
    }
    std::vector<HandleValue> kept;
    for (const auto& v : existing.record.values) {
        if (std::find(op.indices.begin(), op.indices.end(), v.index) == op.indices.end()) {
            kept.push_back(v);
        }
    }
    if (kept.size() == existing.record.values.size()) {
        return OpResult{Outcome::unchanged, {}, 0};
    }
    if (kept.empty()) {
        return apply_delete(ctx, DeleteRecord{op.handle}, account);
    }
    ctx.track_template(op.handle.prefix_key(), &existing.record.values, &kept);
    const std::string bytes = encode_record(existing.record.spelling, kept);
    ctx.txn.put(ids_, key, bytes);
    OpResult result{Outcome::updated, {}, 0};
    ctx.log(ChangeKind::identifier, Outcome::updated, account, existing.record.spelling, bytes,
            result, changes_);
    return result;
}

OpResult RegistryImpl::apply_delete(GroupContext& ctx, const DeleteRecord& op,
                                    const std::string& account) {
    const IdentifierKey key(op.handle.key());
    std::string_view bytes;
    if (!ctx.txn.get(ids_, key, bytes)) {
        return failed(Errc::not_found, "identifier " + op.handle.spelling() + " is not registered");
    }
    std::string spelling = op.handle.spelling();
    if (auto view = RecordView::parse(bytes)) {
        spelling.assign(view->spelling());
        for (const ValueView& v : *view) {
            if (v.index == kIndexTemplate) {
                if (auto k = template_usage_key(op.handle.prefix_key(), v.data); !k.empty()) {
                    ctx.count_deltas[k] -= 1;
                }
            }
        }
    }
    ctx.txn.del(ids_, key);
    ctx.count_deltas[counter_key(op.handle.prefix_key())] -= 1;
    ctx.total_delta -= 1;
    OpResult result{Outcome::deleted, {}, 0};
    ctx.log(ChangeKind::identifier, Outcome::deleted, account, spelling, {}, result, changes_);
    return result;
}

OpResult RegistryImpl::apply_put_entry(GroupContext& ctx, const PutEntry& op,
                                       const std::string& account) {
    if (op.key.empty() || op.key.size() > kShortKeyLimit) {
        return failed(Errc::invalid_value,
                      "entry key must be 1 to " + std::to_string(kShortKeyLimit) + " bytes");
    }
    const MDB_dbi dbi = table(op.table);
    std::string_view old;
    const bool found = ctx.txn.get(dbi, op.key, old);
    Outcome outcome;
    if (found) {
        if (old == op.value) {
            return OpResult{Outcome::unchanged, {}, 0};
        }
        if (op.mode == PutMode::create) {
            return failed(Errc::already_exists, "entry " + op.key + " already exists");
        }
        outcome = Outcome::replaced;
    } else {
        if (op.mode == PutMode::replace) {
            return failed(Errc::not_found, "entry " + op.key + " does not exist");
        }
        outcome = Outcome::created;
    }
    ctx.txn.put(dbi, op.key, op.value);
    OpResult result{outcome, {}, 0};
    if (logged_table(op.table)) {
        ctx.log(change_kind(op.table), outcome, account, op.key, op.value, result, changes_);
    }
    return result;
}

OpResult RegistryImpl::apply_delete_entry(GroupContext& ctx, const DeleteEntry& op,
                                          const std::string& account) {
    if (op.table == Table::templates && !op.key.empty()) {
        // The template entry key is "<folded prefix>/<version>"; see template.hpp.
        const std::string usage = "t/" + op.key;
        std::string_view stored;
        const std::int64_t count =
            static_cast<std::int64_t>(ctx.txn.get(counters_, usage, stored) ? read_be64(stored)
                                                                            : 0) +
            (ctx.count_deltas.count(usage) ? ctx.count_deltas[usage] : 0);
        if (count > 0) {
            return failed(Errc::in_use, "template " + op.key + " is used by " +
                                            std::to_string(count) + " identifiers");
        }
    }
    if (op.key.empty() || !ctx.txn.del(table(op.table), op.key)) {
        return failed(Errc::not_found, "entry " + op.key + " does not exist");
    }
    OpResult result{Outcome::deleted, {}, 0};
    if (logged_table(op.table)) {
        ctx.log(change_kind(op.table), Outcome::deleted, account, op.key, {}, result, changes_);
    }
    return result;
}

Status RegistryImpl::sync() {
    const int rc = mdb_env_sync(env_->get(), 1);
    if (rc != MDB_SUCCESS) {
        return Error{Errc::internal, std::string("mdb_env_sync: ") + mdb_strerror(rc)};
    }
    return {};
}

RegistryStats RegistryImpl::stats() const {
    RegistryStats s;
    s.map_size = stat_map_size_;
    s.max_db_size = options_.max_db_size;
    s.used_bytes = stat_used_bytes_;
    s.identifiers = stat_identifiers_;
    s.queued_ops = stat_queued_;
    s.commits = stat_commits_;
    s.committed_ops = stat_committed_ops_;
    s.last_commit_us = stat_last_commit_us_;
    s.map_growths = stat_growths_;
    s.submits_refused = stat_refused_;
    return s;
}

// ---- Registry facade
// -----------------------------------------------------------------------------

Registry::Registry(std::unique_ptr<RegistryImpl> impl) : impl_(std::move(impl)) {}
Registry::~Registry() = default;

std::unique_ptr<Registry> Registry::open(RegistryOptions options) {
    return std::unique_ptr<Registry>(
        new Registry(std::make_unique<RegistryImpl>(std::move(options))));
}

ReadSnapshot Registry::snapshot() const {
    return impl_->snapshot();
}

void Registry::submit(WriteBatch batch, Completion done) {
    impl_->submit(std::move(batch), std::move(done));
}

SubmitStatus Registry::try_submit(WriteBatch& batch, Completion& done,
                                  std::function<void()> on_space) {
    return impl_->try_submit(batch, done, std::move(on_space));
}

BatchResult Registry::write(WriteBatch batch) {
    std::mutex m;
    std::condition_variable cv;
    std::optional<BatchResult> out;
    impl_->submit(std::move(batch), [&](BatchResult r) {
        std::lock_guard lock(m);
        out = std::move(r);
        cv.notify_one();
    });
    std::unique_lock lock(m);
    cv.wait(lock, [&] { return out.has_value(); });
    return std::move(*out);
}

OpResult Registry::write(WriteOp op, std::string account) {
    WriteBatch batch;
    batch.account = std::move(account);
    batch.ops.push_back(std::move(op));
    return std::move(write(std::move(batch)).front());
}

Status Registry::sync() {
    return impl_->sync();
}
RegistryStats Registry::stats() const {
    return impl_->stats();
}
const RegistryOptions& Registry::options() const noexcept {
    return impl_->options();
}
DiskSpace Registry::disk_space() const {
    return impl_->disk_space();
}

// ---- maintenance: backup and verify -----------------------------------------------------------

Status Registry::backup(const std::filesystem::path& out_dir) const {
    return impl_->backup(out_dir);
}

VerifyReport Registry::verify(std::size_t max_problems) const {
    return impl_->verify(max_problems);
}

namespace {

/// 64-bit FNV-1a; `basis` selects one of two independent-enough hashes of the same bytes.
std::uint64_t fnv1a(std::string_view bytes, std::uint64_t basis = 14695981039346656037ull) {
    std::uint64_t h = basis;
    for (const char c : bytes) {
        h ^= static_cast<unsigned char>(c);
        h *= 1099511628211ull;
    }
    return h;
}

/// What the change log says about one key: its last entry, reduced to hashes so that the check
/// runs in bounded memory (see check_change_log_matches_data).
struct LastChange {
    std::uint64_t key_a = 0, key_b = 0;
    std::uint64_t sequence = 0;
    std::uint64_t value_hash = 0; // of the value bytes and their size
    std::uint8_t table = 0;       // 0 = identifiers, else Table
    bool removed = false;
    bool loaded = false; // no record copy to compare (ChangeEntry::loaded): presence only

    auto key() const { return std::tie(table, key_a, key_b); }
};

std::uint64_t value_hash(std::string_view bytes) {
    return fnv1a(bytes) ^ (bytes.size() * 0x9E3779B97F4A7C15ull);
}

/// Memory the change-log check may use per pass (40 bytes per entry: ~27 million entries); larger
/// logs are checked in several passes, each over a slice of the key space.
constexpr std::uint64_t kVerifyPassBytes = 1ull << 30;

} // namespace

// The change log must replay to the data: for every key, the last entry carries exactly the bytes
// stored now (a record or an administrative entry), or is a removal and nothing is stored; every
// stored key has an entry. Keys are compared as two 64-bit hashes and values as a hash of bytes
// and size, so a pass needs 40 bytes per change-log entry; beyond kVerifyPassBytes the key space is
// split into slices walked one after another (more passes over the log, same memory).
void RegistryImpl::check_change_log_matches_data(lmdb::Txn& txn, std::uint64_t changes,
                                                 const std::function<void(std::string)>& problem) {
    const std::uint64_t passes = changes * sizeof(LastChange) / kVerifyPassBytes + 1;
    const HandleLimits limits{kHandleProtocolMaxLength};
    for (std::uint64_t pass = 0; pass < passes; ++pass) {
        auto in_slice = [&](std::string_view key) { return fnv1a(key) % passes == pass; };
        std::vector<LastChange> last;
        {
            lmdb::Cursor c(txn, changes_);
            std::string_view key, value;
            for (bool more = c.move(MDB_FIRST, key, value); more;
                 more = c.move(MDB_NEXT, key, value)) {
                ChangeEntry e;
                if (key.size() != 8 || !decode_change(read_be64(key), value, e)) {
                    continue; // reported by the contiguity walk
                }
                const int kind = static_cast<int>(e.kind);
                if (kind < 1 || kind > 5) {
                    continue; // reported by the contiguity walk
                }
                const auto t = static_cast<std::uint8_t>(kind - 1);
                std::string stored_key;
                if (e.kind == ChangeKind::identifier) {
                    auto handle = parse_handle(e.key, limits);
                    if (!handle) {
                        if (pass == 0) {
                            problem("changes: entry " + std::to_string(e.sequence) +
                                    " names an invalid handle: " + handle.error().message);
                        }
                        continue;
                    }
                    stored_key.assign(std::string_view(IdentifierKey(handle->key())));
                } else {
                    stored_key = std::move(e.key);
                }
                if (!in_slice(stored_key)) {
                    continue;
                }
                last.push_back(LastChange{
                    fnv1a(stored_key), std::hash<std::string_view>{}(stored_key), e.sequence,
                    value_hash(e.value), t, e.op == ChangeOp::remove, e.loaded});
            }
        }
        // Entries arrive in sequence order; a stable sort by key keeps that order within a key, so
        // the last entry of each run is the key's last change. Compact in place to those.
        std::stable_sort(last.begin(), last.end(), [](const LastChange& a, const LastChange& b) {
            return a.key() < b.key();
        });
        std::size_t kept = 0;
        for (std::size_t i = 0; i < last.size(); ++i) {
            if (i + 1 < last.size() && last[i + 1].key() == last[i].key()) {
                continue;
            }
            last[kept++] = last[i];
        }
        last.resize(kept);
        std::vector<bool> matched(last.size(), false);

        auto walk = [&](std::uint8_t t, MDB_dbi dbi, const char* name) {
            lmdb::Cursor c(txn, dbi);
            std::string_view key, value;
            for (bool more = c.move(MDB_FIRST, key, value); more;
                 more = c.move(MDB_NEXT, key, value)) {
                if (!in_slice(key)) {
                    continue;
                }
                const LastChange probe{
                    fnv1a(key), std::hash<std::string_view>{}(key), 0, 0, t, false, false};
                auto it = std::lower_bound(
                    last.begin(), last.end(), probe,
                    [](const LastChange& a, const LastChange& b) { return a.key() < b.key(); });
                auto where = [&] {
                    return std::string("changes: ") + name + " key " +
                           (t == 0 ? to_hex(key.substr(0, 64)) : std::string(key));
                };
                if (it == last.end() || it->key() != probe.key()) {
                    problem(where() + " is stored but has no change-log entry");
                    continue;
                }
                matched[static_cast<std::size_t>(it - last.begin())] = true;
                if (it->removed) {
                    problem(where() + " is stored but its last change (" +
                            std::to_string(it->sequence) + ") removed it");
                } else if (!it->loaded && it->value_hash != value_hash(value)) {
                    problem(where() + " differs from its last change (" +
                            std::to_string(it->sequence) + ")");
                }
            }
        };
        walk(0, ids_, "ids");
        walk(static_cast<std::uint8_t>(Table::prefixes), table(Table::prefixes), "prefixes");
        walk(static_cast<std::uint8_t>(Table::templates), table(Table::templates), "templates");
        walk(static_cast<std::uint8_t>(Table::accounts), table(Table::accounts), "accounts");
        walk(static_cast<std::uint8_t>(Table::api_keys), table(Table::api_keys), "apikeys");
        for (std::size_t i = 0; i < last.size(); ++i) {
            if (!matched[i] && !last[i].removed) {
                problem("changes: entry " + std::to_string(last[i].sequence) +
                        " is the last change of a key that is not stored");
            }
        }
    }
}

Status RegistryImpl::backup(const std::filesystem::path& out_dir) {
    std::error_code ec;
    if (std::filesystem::exists(out_dir / "data.mdb", ec)) {
        return Error{Errc::already_exists, (out_dir / "data.mdb").string() +
                                               " already exists; back up into a new "
                                               "directory"};
    }
    std::filesystem::create_directories(out_dir, ec);
    if (ec) {
        return Error{Errc::internal, "cannot create " + out_dir.string() + ": " + ec.message()};
    }
    // MDB_CP_COMPACT copies from one read transaction, page by page in key order, leaving free
    // pages out; writers (here or in another process) carry on meanwhile.
    for (int attempt = 0;; ++attempt) {
        gate_.enter();
        const int rc = mdb_env_copy2(env_->get(), out_dir.c_str(), MDB_CP_COMPACT);
        gate_.leave();
        if (rc == MDB_MAP_RESIZED && attempt == 0) {
            std::filesystem::remove(out_dir / "data.mdb", ec);
            adopt_foreign_resize();
            continue;
        }
        if (rc != MDB_SUCCESS) {
            std::filesystem::remove(out_dir / "data.mdb", ec);
            return Error{rc == ENOSPC ? Errc::storage_full : Errc::internal,
                         std::string("backup to ") + out_dir.string() + ": " + mdb_strerror(rc)};
        }
        return {};
    }
}

VerifyReport RegistryImpl::verify(std::size_t max_problems) {
    VerifyReport report;
    auto problem = [&](std::string text) {
        if (report.problems.size() < max_problems) {
            report.problems.push_back(std::move(text));
        }
    };
    ReadSnapshot snap = snapshot();
    lmdb::Txn& txn = snap.state_->txn;

    std::string_view stored;
    if (!txn.get(meta_, kSchemaKey, stored) || stored.size() != 4) {
        problem("meta: schema_version is missing or malformed");
    } else if (wire::load_u32(stored.data()) != kSchemaVersion) {
        problem("meta: schema_version is " + std::to_string(wire::load_u32(stored.data())) +
                ", expected " + std::to_string(kSchemaVersion));
    }

    // Identifiers: every record decodes, its key is the folded spelling (or the long-key form),
    // values are in ascending unique index order; recount per prefix.
    std::map<std::string, std::uint64_t> counted; // counter key -> identifiers
    {
        const HandleLimits limits{kHandleProtocolMaxLength};
        lmdb::Cursor c(txn, ids_);
        std::string_view key, value;
        for (bool more = c.move(MDB_FIRST, key, value); more; more = c.move(MDB_NEXT, key, value)) {
            ++report.identifiers;
            const std::string where = "ids: key " + to_hex(key.substr(0, 64)) + ": ";
            auto view = RecordView::parse(value);
            if (!view) {
                problem(where + "record does not decode: " + view.error().message);
                continue;
            }
            auto handle = parse_handle(view->spelling(), limits);
            if (!handle) {
                problem(where + "stored spelling is not a valid handle: " + handle.error().message);
                continue;
            }
            if (std::string_view(IdentifierKey(handle->key())) != key) {
                problem(where + "key does not match the folded spelling " + handle->spelling());
            }
            std::int64_t previous = 0;
            for (const ValueView& v : *view) {
                if (v.index <= previous) {
                    problem(where + handle->spelling() +
                            ": value indices not ascending/unique at " + std::to_string(v.index));
                    break;
                }
                previous = v.index;
            }
            if (view->size() == 0) {
                problem(where + handle->spelling() + ": record has no values");
            }
            counted[counter_key(handle->prefix_key())] += 1;
        }
    }

    // Counters equal the recount.
    {
        lmdb::Cursor c(txn, counters_);
        std::string_view key, value;
        std::map<std::string, std::uint64_t> stored_counts;
        bool have_total = false;
        std::uint64_t total = 0;
        for (bool more = c.move(MDB_FIRST, key, value); more; more = c.move(MDB_NEXT, key, value)) {
            if (key == kTotalKey) {
                have_total = value.size() == 8;
                total = read_be64(value);
                continue;
            }
            if (key.substr(0, 2) != "n/") {
                continue; // counters of other kinds are not identifier counts
            }
            if (value.size() != 8) {
                problem("counters: " + std::string(key) + " is not 8 bytes");
                continue;
            }
            stored_counts.emplace(std::string(key), read_be64(value));
        }
        for (const auto& [k, n] : counted) {
            auto it = stored_counts.find(k);
            const std::uint64_t s = it == stored_counts.end() ? 0 : it->second;
            if (s != n) {
                problem("counters: " + k.substr(2) + " says " + std::to_string(s) + ", found " +
                        std::to_string(n) + " identifiers");
            }
        }
        for (const auto& [k, s] : stored_counts) {
            if (!counted.contains(k)) {
                problem("counters: " + k.substr(2) + " says " + std::to_string(s) +
                        ", found 0 identifiers");
            }
        }
        if (report.identifiers != 0 || have_total) {
            if (!have_total || total != report.identifiers) {
                problem("counters: total says " + std::to_string(have_total ? total : 0) +
                        ", found " + std::to_string(report.identifiers) + " identifiers");
            }
        }
    }

    // Change log: decodable, sequences contiguous (no gap, no reordering).
    {
        lmdb::Cursor c(txn, changes_);
        std::string_view key, value;
        std::uint64_t expected = 0;
        for (bool more = c.move(MDB_FIRST, key, value); more; more = c.move(MDB_NEXT, key, value)) {
            ++report.changes;
            if (key.size() != 8) {
                problem("changes: key " + to_hex(key) + " is not a 64-bit sequence");
                continue;
            }
            const std::uint64_t seq = read_be64(key);
            if (expected != 0 && seq != expected) {
                problem("changes: gap before sequence " + std::to_string(seq) + " (expected " +
                        std::to_string(expected) + ")");
            }
            expected = seq + 1;
            ChangeEntry e;
            if (!decode_change(seq, value, e)) {
                problem("changes: entry " + std::to_string(seq) + " does not decode");
                continue;
            }
            const auto kind = static_cast<int>(e.kind);
            const auto op = static_cast<int>(e.op);
            if (kind < 1 || kind > 5 || op < 1 || op > 4) {
                problem("changes: entry " + std::to_string(seq) + " has kind " +
                        std::to_string(kind) + " op " + std::to_string(op));
            } else if (e.kind == ChangeKind::identifier && e.op != ChangeOp::remove && !e.loaded) {
                if (auto view = RecordView::parse(e.value); !view) {
                    problem("changes: entry " + std::to_string(seq) +
                            " carries a record that does not decode: " + view.error().message);
                }
            }
        }
    }

    check_change_log_matches_data(txn, report.changes, problem);

    // Administrative tables decode with their own codecs (templates are opaque documents owned by
    // the layer above; only their presence is counted).
    auto walk = [&](Table t, const char* name, auto&& check) {
        lmdb::Cursor c(txn, table(t));
        std::string_view key, value;
        for (bool more = c.move(MDB_FIRST, key, value); more; more = c.move(MDB_NEXT, key, value)) {
            ++report.admin_entries;
            if (auto err = check(value)) {
                problem(std::string(name) + ": " + std::string(key) + ": " + *err);
            }
        }
    };
    auto message_of = [](const auto& r) -> std::optional<std::string> {
        if (r) {
            return std::nullopt;
        }
        return r.error().message;
    };
    walk(Table::prefixes, "prefixes",
         [&](std::string_view v) { return message_of(decode_prefix(v)); });
    walk(Table::accounts, "accounts",
         [&](std::string_view v) { return message_of(decode_account(v)); });
    walk(Table::api_keys, "apikeys",
         [&](std::string_view v) { return message_of(decode_api_key(v)); });
    walk(Table::templates, "templates", [](std::string_view v) -> std::optional<std::string> {
        if (v.empty()) {
            return std::string("empty template document");
        }
        return std::nullopt;
    });
    // Bulk outcomes are bookkeeping, not administrative entries: checked, not counted.
    if (table(Table::idempotency) != 0) {
        lmdb::Cursor c(txn, table(Table::idempotency));
        std::string_view key, value;
        for (bool more = c.move(MDB_FIRST, key, value); more; more = c.move(MDB_NEXT, key, value)) {
            if (auto outcome = decode_bulk_outcome(value); !outcome) {
                std::string name(key); // "<account>\0<Idempotency-Key>"
                std::replace(name.begin(), name.end(), '\0', '/');
                problem("idempotency: " + name + ": " + outcome.error().message);
            }
        }
    }
    return report;
}

} // namespace idnode::registry
