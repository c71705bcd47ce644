// The Registry facade (registry.hpp) over RegistryImpl (registry_impl.hpp lists the files that
// implement it, one concern each).
#include "idnode/registry/registry.hpp"
#include "enum_names.hpp"

#include "registry_impl.hpp"

#include <condition_variable>
#include <mutex>
#include <optional>

namespace idnode::registry {

const char* outcome_name(Outcome o) noexcept {
    static constexpr const char* kNames[] = {"created",   "replaced", "updated",
                                             "unchanged", "deleted",  "failed"};
    static_assert(std::size(kNames) == static_cast<std::size_t>(Outcome::failed) + 1);
    return detail::enum_name(o, kNames, 0, "unknown");
}

// ---- Registry facade
// -----------------------------------------------------------------------------

Registry::Registry(std::unique_ptr<RegistryImpl> impl) : impl_(std::move(impl)) {}
Registry::~Registry() = default;

namespace {

// Identities were first keyed "<index>:<handle>" (identity_key_from_schema1). A writable open
// moves such entries to their current keys through the ordinary write path, so that the change
// log (and verify(), which matches it against the tables) sees a removal and a creation; both
// operations of an entry commit in one transaction. The table is tiny: one entry per client
// identity.
void rekey_first_layout_identities(Registry& registry) {
    WriteBatch batch;
    registry.snapshot().for_each_entry(
        Table::identities, [&](const std::string& key, const std::string& value) {
            if (auto rekeyed = identity_key_from_schema1(key)) {
                batch.ops.emplace_back(
                    PutEntry{Table::identities, std::move(*rekeyed), value, PutMode::create});
                batch.ops.emplace_back(DeleteEntry{Table::identities, key});
            }
        });
    if (!batch.ops.empty()) {
        (void)registry.write(std::move(batch));
    }
}

} // namespace

std::unique_ptr<Registry> Registry::open(RegistryOptions options) {
    const bool writable = options.mode != OpenMode::read_only;
    auto registry =
        std::unique_ptr<Registry>(new Registry(std::make_unique<RegistryImpl>(std::move(options))));
    if (writable) {
        rekey_first_layout_identities(*registry);
    }
    return registry;
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

} // namespace idnode::registry
