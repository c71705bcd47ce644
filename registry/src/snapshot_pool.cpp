// Pooled read transactions and map growth (resize_gate.hpp): a snapshot renews a reset read
// transaction from the pool; growth closes the gate, drops the pool and resizes the map.
#include "registry_impl.hpp"

#include <algorithm>
#include <stdexcept>

namespace idnode::registry {

using namespace store;

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

} // namespace idnode::registry
