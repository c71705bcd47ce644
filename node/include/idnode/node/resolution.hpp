// Resolution as every front end does it: the record of a handle, with the values the caller may
// see, counted for /api/v1/stats (resolutions_today). The front end renders the values in its
// own shape while it visits the stored record (no copy of the record is made).
// See docs/api.md#stats.
//
// Counting rule: every resolution asked for counts once in the node's total, found or not,
// whichever protocol asked (Handle REST, native, batch, SNMS, pages, the Handle protocol); one
// that found a record also counts under the record's prefix.
// Thread safety: every member may be called from many threads at once.
#pragma once

#include "idnode/node/clock.hpp"
#include "idnode/node/policy.hpp"
#include "idnode/node/principal.hpp"
#include "idnode/node/resolution_counter.hpp"
#include "idnode/registry/registry.hpp"

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace idnode::node {

/// Visits the record a resolution of `handle` sees, as every front end resolves
/// (docs/api.md#identities): the stored record with, for each public-key identity registered under
/// the handle, an HS_PUBKEY value at the identity's index (HANDLE.NET's binary encoding; public
/// read, admin write; it takes the place of a stored value at the same index, since that key is
/// what authenticates as the pair). Secret-key identities add nothing: HS_SECKEY is never readable.
/// A handle with identities but no stored record resolves to the identity values alone. Without
/// identities this is snapshot.visit (one extra range seek on a small table). The status is the
/// registry's: not_found when there is neither a record nor a public-key identity.
registry::Status visit_resolvable(const registry::ReadSnapshot& snapshot,
                                  const registry::Handle& handle,
                                  const std::function<void(const registry::RecordView&)>& visit);

/// Visits a record composed at read time (identity values, prefix records): `values` in index
/// order under `spelling`. Errc::corrupt (or invalid_value) when they do not make a record.
registry::Status visit_composed(std::string_view spelling,
                                std::vector<registry::HandleValue> values,
                                const std::function<void(const registry::RecordView&)>& visit);

/// Which values of a record the caller sees.
struct Visibility {
    bool include_private = false;
    bool shows(const registry::ValueView& value) const noexcept {
        return include_private || value.permissions.public_read();
    }
};

/// Resolutions gathered by a front end that answers in batches (the Handle protocol server reads
/// up to 64 datagrams at a time), added to the counters under one lock per batch instead of one
/// per resolution. Not thread-safe: one per batch loop.
class ResolutionTally {
public:
    void found(std::string_view prefix_key) {
        for (auto& [prefix, n] : found_) {
            if (prefix == prefix_key) {
                ++n;
                return;
            }
        }
        found_.emplace_back(std::string(prefix_key), 1);
    }
    void unresolved() noexcept { ++unresolved_; }
    bool empty() const noexcept { return unresolved_ == 0 && found_.empty(); }

private:
    friend class Resolutions;
    std::uint64_t unresolved_ = 0;
    std::vector<std::pair<std::string, std::uint64_t>> found_; // a batch sees a few prefixes
};

class Resolutions {
public:
    explicit Resolutions(std::size_t max_prefixes = 65536) : counter_(max_prefixes) {}

    /// Visits the record of `handle` (`on_record(view, visibility)`) and counts the resolution.
    /// The status is the registry's: not_found, corrupt, unavailable...
    template <class OnRecord>
    registry::Status resolve(const registry::ReadSnapshot& snapshot, const Principal& who,
                             const registry::Handle& handle, OnRecord&& on_record) {
        const Visibility visibility{may_read_private(snapshot, who, handle.prefix_key())};
        auto status = visit_resolvable(snapshot, handle, [&](const registry::RecordView& view) {
            on_record(view, visibility);
        });
        count(handle, static_cast<bool>(status));
        return status;
    }

    /// A resolution of `handle` answered elsewhere (a repeat within a batch; the Handle
    /// protocol's responder): counts it as found or not.
    void count(const registry::Handle& handle, bool found) {
        if (found)
            count_found(handle.prefix_key());
        else
            count_unresolved();
    }
    /// One resolution that found a record under the (folded) prefix `prefix_key`.
    void count_found(std::string_view prefix_key) { counter_.count_found(unix_now(), prefix_key); }
    /// `n` resolutions that found nothing, or could not even look (an invalid handle, a prefix not
    /// homed here): the node's total only.
    void count_unresolved(std::uint64_t n = 1) { counter_.count(unix_now(), n); }

    /// Adds a batch's tally and empties it.
    void add(ResolutionTally& tally) {
        if (tally.empty())
            return;
        counter_.add(unix_now(), tally.unresolved_, tally.found_);
        tally.unresolved_ = 0;
        tally.found_.clear();
    }

    const ResolutionCounter& counter() const noexcept { return counter_; }

private:
    ResolutionCounter counter_;
};

} // namespace idnode::node
