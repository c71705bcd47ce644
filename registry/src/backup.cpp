// Registry::backup: a compacted copy of the environment from one read transaction
// (docs/storage.md, "backup").
#include "registry_impl.hpp"

#include <cerrno>

namespace idnode::registry {

using namespace store;

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

} // namespace idnode::registry
