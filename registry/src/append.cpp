// The append fast paths: a new record whose key is beyond every stored one goes straight into
// its place in the last page (MDB_APPEND | MDB_RESERVE) with no lookup and no copy of its values.
// Both write the bytes apply_put would write, built by record_encoding.hpp.
#include "registry_impl.hpp"

#include "group_context.hpp"
#include "record_encoding.hpp"

#include <algorithm>
#include <cstring>

namespace idnode::registry {

using namespace store;

// apply_put of a new record whose key is beyond every stored one, writing exactly what the
// general path writes (the shared encoder of record_encoding.hpp over the values sorted by index,
// every one stamped `now` as stamp() does with no previous values; the same counters; the same
// change-log entry) but
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
// writes exactly what apply_put would write: the values were laid out by write_value
// (RecordEncoder, record_encoding.hpp) and only their timestamps are set here, with stamp_value;
// every other case takes apply_put itself, so the outcomes and error messages are the same by
// construction. put_paths_test compares the stored bytes of all put paths.
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
        std::size_t bytes = layout::kRecordEstimateBase; // validate_values' charge
        for (const ValueView& v : *view) {
            if (v.index <= previous_index || v.reference_count != 0 || !valid_type_text(v.type)) {
                fast = false;
                break;
            }
            previous_index = v.index;
            bytes += layout::kValueMinBytes + v.type.size() + v.data.size();
            if (v.index == kIndexTemplate) {
                template_version = v.data;
            }
            ctx.stamp_offsets.push_back(static_cast<std::size_t>(v.wire.data() - op.record.data()));
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
    const std::size_t size = op.record.size();
    auto write_stamped = [&](char* out) {
        std::memcpy(out, op.record.data(), size);
        for (const std::size_t value_at : ctx.stamp_offsets) {
            stamp_value(out + value_at, ctx.now);
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

} // namespace idnode::registry
