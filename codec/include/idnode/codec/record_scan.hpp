// The fast path for one NDJSON record line of the bulk shape (docs/api.md#bulk)
// `{"handle":…,"templateVersion"?:…,"values":[…]}`: a hand-written scanner that reads the common
// shape straight into views of the line, without a JSON document or value objects. Shared by the
// bulk endpoint (bulk.hpp BulkLineParser) and idctl (record_io.hpp NdjsonReader::parse_encoded).
//
// The common shape: an object with exactly the members handle (string), values (non-empty array)
// and optionally templateVersion (non-empty string), each at most once, in any order; each value
// an object with index (1..2^31-1), type (string), data (a string, or exactly
// {"format":"string","value":<string>}) and optionally ttl (0..2^31-1), permissions (a valid
// "1110" form) and timestamp (a string, ignored), each at most once, in any order. Integers are
// plain digits (no sign, fraction or exponent); strings have no escapes or control characters and
// are valid UTF-8; whitespace is JSON's (space, tab, CR, LF).
//
// Anything else (escapes, other members, other data formats, duplicate members, numbers as
// strings, invalid JSON …) is "not handled": scan() returns false and the caller parses the line
// with its general JSON path, which decides whether the line is valid and with which message. So a
// scanned line means exactly what the general path makes of it: that is the contract the callers'
// equivalence tests check (tests/unit/bulk_line_parser_test.cpp, the bulk_ndjson fuzz target).
//
// Not thread-safe (reuses its value buffer); one per thread.
#pragma once

#include "idnode/registry/value.hpp"

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace idnode::codec {

/// One value of a scanned line; the views point into the scanned line.
struct ScannedValue {
    std::int32_t index = 0;
    std::string_view type;
    std::string_view data; // the text of a "string" format value
    std::int32_t ttl = registry::kDefaultTtl;
    registry::Permissions permissions{};
};

class RecordLineScanner {
public:
    /// Scans one line (its newline excluded). true: the line has the common shape and handle(),
    /// template_version() and values() describe it until the next scan() (views into `line`,
    /// which must outlive their use). false: not handled here; use the general parser (false
    /// never says that the line is invalid).
    bool scan(std::string_view line);

    std::string_view handle() const noexcept { return handle_; }
    /// Empty when the line has no templateVersion.
    std::string_view template_version() const noexcept { return template_version_; }
    /// In input order.
    std::span<const ScannedValue> values() const noexcept { return values_; }

    /// The values to store, as the general path derives them from the line: input order; with a
    /// templateVersion, every index 1001 value is dropped and 1001 TEMPLATE = version is appended
    /// last (record_values_from_json, idctl's set_template_version). Replaces `out`'s content.
    void stored_values(std::vector<registry::HandleValue>& out) const;

    /// The same values straight into the registry's stored encoding (RecordEncoder) of a record
    /// spelled `spelling`; replaces `record`'s content.
    void encode(std::string& record, std::string_view spelling) const;

private:
    template <class Fn> void for_each_stored(Fn&& fn) const;

    std::string_view handle_;
    std::string_view template_version_;
    std::vector<ScannedValue> values_;
};

} // namespace idnode::codec
