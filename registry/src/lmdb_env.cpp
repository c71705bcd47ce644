#include "lmdb_env.hpp"

#include <system_error>

namespace idnode::registry::lmdb {

MdbError::MdbError(int rc, const std::string& where)
    : std::runtime_error(where + ": " + mdb_strerror(rc)), rc_(rc) {}

Env::Env(const EnvSettings& s) {
    check(mdb_env_create(&env_), "mdb_env_create");
    try {
        check(mdb_env_set_maxdbs(env_, s.max_dbs), "mdb_env_set_maxdbs");
        check(mdb_env_set_maxreaders(env_, s.max_readers), "mdb_env_set_maxreaders");
        if (s.map_size != 0) {
            check(mdb_env_set_mapsize(env_, s.map_size), "mdb_env_set_mapsize");
        }
        check(mdb_env_open(env_, s.dir.c_str(), s.flags, 0640), "mdb_env_open");
    } catch (...) {
        mdb_env_close(env_);
        throw;
    }
}

Env::~Env() {
    mdb_env_close(env_);
}

std::uint64_t Env::map_size() const {
    MDB_envinfo info;
    check(mdb_env_info(env_, &info), "mdb_env_info");
    return info.me_mapsize;
}

std::uint64_t Env::used_bytes() const {
    MDB_envinfo info;
    MDB_stat stat;
    check(mdb_env_info(env_, &info), "mdb_env_info");
    check(mdb_env_stat(env_, &stat), "mdb_env_stat");
    return (static_cast<std::uint64_t>(info.me_last_pgno) + 1) * stat.ms_psize;
}

int Env::data_fd() const noexcept {
    mdb_filehandle_t fd = -1;
    return mdb_env_get_fd(env_, &fd) == MDB_SUCCESS ? fd : -1;
}

Txn::Txn(MDB_env* env, unsigned flags) {
    check(mdb_txn_begin(env, nullptr, flags, &txn_), "mdb_txn_begin");
}

int Txn::commit() noexcept {
    if (txn_ == nullptr) {
        return EINVAL;
    }
    const int rc = mdb_txn_commit(txn_); // frees the txn whatever the outcome
    txn_ = nullptr;
    return rc;
}

void Txn::abort() noexcept {
    if (txn_ != nullptr) {
        mdb_txn_abort(txn_);
        txn_ = nullptr;
    }
}

bool Txn::get(MDB_dbi dbi, std::string_view key, std::string_view& value) const {
    MDB_val k = to_val(key), v;
    const int rc = mdb_get(txn_, dbi, &k, &v);
    if (rc == MDB_NOTFOUND) {
        return false;
    }
    check(rc, "mdb_get");
    value = to_view(v);
    return true;
}

void Txn::put(MDB_dbi dbi, std::string_view key, std::string_view value, unsigned flags) {
    MDB_val k = to_val(key), v = to_val(value);
    check(mdb_put(txn_, dbi, &k, &v, flags), "mdb_put");
}

bool Txn::del(MDB_dbi dbi, std::string_view key) {
    MDB_val k = to_val(key);
    const int rc = mdb_del(txn_, dbi, &k, nullptr);
    if (rc == MDB_NOTFOUND) {
        return false;
    }
    check(rc, "mdb_del");
    return true;
}

Cursor::Cursor(const Txn& txn, MDB_dbi dbi) {
    check(mdb_cursor_open(txn.get(), dbi, &cursor_), "mdb_cursor_open");
}

Cursor::~Cursor() {
    mdb_cursor_close(cursor_);
}

bool Cursor::move(MDB_cursor_op op, std::string_view& key, std::string_view& value) {
    MDB_val k = to_val(key), v{};
    const int rc = mdb_cursor_get(cursor_, &k, &v, op);
    if (rc == MDB_NOTFOUND) {
        return false;
    }
    check(rc, "mdb_cursor_get");
    key = to_view(k);
    value = to_view(v);
    return true;
}

char* Cursor::reserve(std::string_view key, std::size_t size, unsigned flags) {
    MDB_val k = to_val(key), v{size, nullptr};
    check(mdb_cursor_put(cursor_, &k, &v, flags | MDB_RESERVE), "mdb_cursor_put");
    return static_cast<char*>(v.mv_data);
}

} // namespace idnode::registry::lmdb
