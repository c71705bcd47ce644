// Thin RAII layer over LMDB, internal to the registry (never included by public headers).
//
// - Env owns an MDB_env; destroying it closes the environment.
// - Txn owns an MDB_txn; destroying an un-committed Txn aborts it, so an early return or an
//   exception can never leak a write transaction or leave one half-applied.
// - Cursor is created from a Txn and must not outlive it; it is neither copyable nor movable so
//   it stays in the scope that opened it.
// LMDB failures surface as MdbError (an exception internal to the registry: the store converts
// it into Errc values at its boundary).
#pragma once

#include <lmdb.h>

#include <cstdint>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <string_view>

namespace idnode::registry::lmdb {

class MdbError : public std::runtime_error {
public:
    MdbError(int rc, const std::string& where);
    int rc() const noexcept { return rc_; }

private:
    int rc_;
};

/// Throws MdbError unless rc == MDB_SUCCESS.
inline void check(int rc, const char* where) {
    if (rc != MDB_SUCCESS) {
        throw MdbError(rc, where);
    }
}

inline MDB_val to_val(std::string_view s) noexcept {
    return MDB_val{s.size(), const_cast<char*>(s.data())};
}
inline std::string_view to_view(const MDB_val& v) noexcept {
    return {static_cast<const char*>(v.mv_data), v.mv_size};
}

struct EnvSettings {
    std::filesystem::path dir;
    std::uint64_t map_size = 0;
    unsigned max_dbs = 16;
    unsigned max_readers = 1024;
    unsigned flags = 0;
};

class Env {
public:
    explicit Env(const EnvSettings& settings);
    ~Env();
    Env(const Env&) = delete;
    Env& operator=(const Env&) = delete;

    MDB_env* get() const noexcept { return env_; }
    std::uint64_t map_size() const;
    std::uint64_t used_bytes() const;
    /// The data file's descriptor (LMDB's own; never close it), or -1.
    int data_fd() const noexcept;
    unsigned max_key_size() const noexcept {
        return static_cast<unsigned>(mdb_env_get_maxkeysize(env_));
    }

private:
    MDB_env* env_ = nullptr;
};

class Txn {
public:
    /// Begins a transaction (read-only when `flags` has MDB_RDONLY).
    Txn(MDB_env* env, unsigned flags);
    /// Adopts an already begun (or renewed) transaction.
    explicit Txn(MDB_txn* adopted) noexcept : txn_(adopted) {}
    ~Txn() { abort(); }
    Txn(const Txn&) = delete;
    Txn& operator=(const Txn&) = delete;

    MDB_txn* get() const noexcept { return txn_; }
    /// Commits; the Txn is finished afterwards whatever the outcome. Returns LMDB's code.
    int commit() noexcept;
    void abort() noexcept;
    /// Gives up ownership without ending the transaction (to reset and pool a read txn).
    MDB_txn* release() noexcept {
        auto* t = txn_;
        txn_ = nullptr;
        return t;
    }

    /// MDB_NOTFOUND -> false; other failures throw.
    bool get(MDB_dbi dbi, std::string_view key, std::string_view& value) const;
    void put(MDB_dbi dbi, std::string_view key, std::string_view value, unsigned flags = 0);
    /// Returns false if the key was absent.
    bool del(MDB_dbi dbi, std::string_view key);

private:
    MDB_txn* txn_ = nullptr;
};

class Cursor {
public:
    Cursor(const Txn& txn, MDB_dbi dbi);
    ~Cursor();
    Cursor(const Cursor&) = delete;
    Cursor& operator=(const Cursor&) = delete;

    /// Positions with `op` (MDB_FIRST, MDB_NEXT, MDB_SET_RANGE, MDB_LAST, ...). Returns false at
    /// the end (MDB_NOTFOUND); other failures throw.
    bool move(MDB_cursor_op op, std::string_view& key, std::string_view& value);

    /// mdb_cursor_put with MDB_RESERVE added to `flags`: makes room for `size` bytes under `key`
    /// and returns where to write them. The place stays valid only until the next write in the
    /// transaction (a later put may move or spill the page): fill it at once. Failures throw.
    char* reserve(std::string_view key, std::size_t size, unsigned flags);

private:
    MDB_cursor* cursor_ = nullptr;
};

} // namespace idnode::registry::lmdb
