// Opening and closing the environment: options, the databases of the schema (schema.hpp), the
// schema version check and its upgrade steps (docs/storage.md, "schema upgrades").
#include "registry_impl.hpp"

#include "wire.hpp"

#include <algorithm>
#include <chrono>

namespace idnode::registry {

using namespace store;

namespace {

std::int64_t system_now() {
    return std::chrono::duration_cast<std::chrono::seconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

/// The administrative tables added after schema 1 shipped, which older databases lack.
constexpr Table kTablesAddedLater[] = {Table::idempotency, Table::identities};

/// Opens, through `open` (creating or only finding), the databases every environment of this
/// schema has; the caller handles the tables added later (kTablesAddedLater).
template <class Open> void open_schema_databases(RegistryImpl& impl, Open&& open) {
    impl.meta_ = open(kMetaDb);
    impl.ids_ = open(kIdsDb);
    impl.counters_ = open(kCountersDb);
    impl.changes_ = open(kChangesDb);
    for (const Table t : {Table::prefixes, Table::templates, Table::accounts, Table::api_keys}) {
        impl.tables_[static_cast<int>(t)] = open(kTableNames[static_cast<int>(t)]);
    }
}

} // namespace

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
        open_schema_databases(*this, open);
        // Added after schema 1 shipped: MDB_CREATE adds them to older databases as they open,
        // and builds without them ignore them, so no schema upgrade is needed either way.
        for (const Table t : kTablesAddedLater) {
            tables_[static_cast<int>(t)] = open(kTableNames[static_cast<int>(t)]);
        }
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
    open_schema_databases(*this, open);
    for (const Table t : kTablesAddedLater) {
        // Absent in databases no writable open of this build has touched yet: read as empty.
        MDB_dbi dbi;
        const char* name = kTableNames[static_cast<int>(t)];
        const int rc = mdb_dbi_open(txn.get(), name, 0, &dbi);
        if (rc != MDB_NOTFOUND) {
            lmdb::check(rc, name);
            tables_[static_cast<int>(t)] = dbi;
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

Status RegistryImpl::sync() {
    const int rc = mdb_env_sync(env_->get(), 1);
    if (rc != MDB_SUCCESS) {
        return Error{Errc::internal, std::string("mdb_env_sync: ") + mdb_strerror(rc)};
    }
    return {};
}

} // namespace idnode::registry
