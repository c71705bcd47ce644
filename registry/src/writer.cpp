// The writer: the submission queue with its backpressure, the single writer thread, group
// commit (one write transaction for everything queued, retried after map growth) and disk-full
// episodes (registry.hpp, docs/architecture.md "a write's path").
#include "registry_impl.hpp"

#include "group_context.hpp"

#include <sys/statvfs.h>

#include <algorithm>
#include <cerrno>
#include <chrono>

namespace idnode::registry {

using namespace store;

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

} // namespace idnode::registry
