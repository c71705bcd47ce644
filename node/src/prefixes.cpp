#include "idnode/node/prefixes.hpp"

#include "idnode/registry/identifier.hpp"
#include "idnode/registry/registry.hpp"
#include "idnode/registry/value.hpp"

#include <algorithm>
#include <charconv>

namespace idnode::node {
using registry::Errc;

std::optional<std::string> enterprise_refusal(const registry::EnterpriseInfo& e) {
    if (e.name.empty() || e.name.size() > 256 ||
        registry::find_invalid_utf8(e.name) != std::string::npos) {
        return "enterprise.name is required (UTF-8, at most 256 bytes)";
    }
    // Unified social credit code: 18 characters of digits and upper-case letters (GB 32100).
    if (e.credit_code.size() != 18 ||
        e.credit_code.find_first_not_of("0123456789ABCDEFGHJKLMNPQRTUWXY") != std::string::npos) {
        return "enterprise.credit_code must be an 18-character unified social credit code";
    }
    // GB/T 4754 industry code: a section letter A-T, optionally 2 to 4 digits ("C3120").
    const auto& i = e.industry;
    if (i.empty() || i.size() > 5 || i.size() == 2 || i[0] < 'A' || i[0] > 'T' ||
        i.find_first_not_of("0123456789", 1) != std::string::npos) {
        return "enterprise.industry must be a GB/T 4754 code such as C3120";
    }
    if (e.contact.size() > 256 || registry::find_invalid_utf8(e.contact) != std::string::npos) {
        return "enterprise.contact must be UTF-8, at most 256 bytes";
    }
    return std::nullopt;
}

struct PrefixAllocator::Attempt {
    registry::PrefixRecord record;
    std::string parent; // folded; empty for an explicit prefix
    std::string account;
    std::function<void(Allocation)> done;
    int retries = 0;
};

namespace {
// Taken numbers in a row before giving up: each one means an explicit allocation got there
// first, so more than a few is not a race but a client allocating numbers ahead.
constexpr int kMaxRetries = 5;

Allocation refused(Outcome outcome, std::string reason, std::string message) {
    return Allocation{outcome, {}, std::move(reason), std::move(message)};
}
} // namespace

void PrefixAllocator::allocate(AllocationRequest request, std::function<void(Allocation)> done) {
    if (auto bad = enterprise_refusal(request.enterprise))
        return done(refused(Outcome::invalid, "invalid_value", *bad));
    auto attempt = std::make_shared<Attempt>();
    attempt->record.kind = registry::PrefixKind::enterprise;
    attempt->record.created = request.now;
    attempt->record.enterprise = std::move(request.enterprise);
    attempt->account = std::move(request.account);
    attempt->done = std::move(done);
    if (!request.prefix.empty()) {
        auto folded = registry::parse_prefix(request.prefix);
        if (!folded)
            return attempt->done(
                refused(Outcome::invalid, "invalid_prefix", folded.error().message));
        if (!homing_.homes(*folded) || homing_.is_node_prefix(*folded)) {
            return attempt->done(refused(Outcome::invalid, "not_homed",
                                         "prefix must lie below a node prefix homed here"));
        }
        attempt->record.prefix = std::move(request.prefix);
    } else {
        auto folded = registry::parse_prefix(request.parent);
        if (!folded || !homing_.is_node_prefix(*folded)) {
            return attempt->done(
                refused(Outcome::invalid, "not_homed", "parent must be a node prefix homed here"));
        }
        attempt->parent = std::move(folded).value();
    }
    submit(std::move(attempt));
}

std::uint64_t PrefixAllocator::reserve(const std::string& parent) {
    std::lock_guard lock(mutex_);
    auto it = next_.find(parent);
    if (it == next_.end()) {
        std::uint64_t highest = 0;
        const std::string start = parent + ".";
        registry_.snapshot().for_each_entry(
            registry::Table::prefixes, [&](const std::string& key, const std::string&) {
                if (key.size() <= start.size() || key.compare(0, start.size(), start) != 0)
                    return;
                std::uint64_t n = 0;
                const char* first = key.data() + start.size();
                const char* last = key.data() + key.size();
                const auto [end, ec] = std::from_chars(first, last, n);
                if (ec == std::errc{} && end == last)
                    highest = std::max(highest, n);
            });
        it = next_.emplace(parent, highest + 1).first;
    }
    return it->second++;
}

void PrefixAllocator::submit(std::shared_ptr<Attempt> attempt) {
    if (!attempt->parent.empty())
        attempt->record.prefix = attempt->parent + "." + std::to_string(reserve(attempt->parent));
    registry::WriteBatch batch;
    batch.account = attempt->account;
    batch.ops.push_back(
        registry::PutEntry{registry::Table::prefixes, registry::fold_case(attempt->record.prefix),
                           registry::encode_prefix(attempt->record), registry::PutMode::create});
    registry_.submit(std::move(batch), [this, attempt](registry::BatchResult results) {
        const registry::OpResult& r = results.front();
        if (r.outcome == registry::Outcome::created)
            return attempt->done(Allocation{Outcome::created, attempt->record, {}, {}});
        const bool taken =
            r.outcome == registry::Outcome::unchanged || r.error.code == Errc::already_exists;
        // The number is taken: the next one is in memory already, so trying it costs no scan.
        if (taken && !attempt->parent.empty() && attempt->retries++ < kMaxRetries)
            return submit(attempt);
        if (taken) {
            return attempt->done(
                refused(Outcome::conflict, "already_exists",
                        "prefix " + attempt->record.prefix + " is already allocated"));
        }
        attempt->done(Allocation{outcome_of(r.error.code),
                                 {},
                                 std::string(registry::errc_name(r.error.code)),
                                 r.error.message});
    });
}

} // namespace idnode::node
