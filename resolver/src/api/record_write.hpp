// The one step from "a record a client sent" to "a validated write operation", shared by every
// write path (Handle REST PUT, SNMS create/update/batch, bulk). Internal to the resolver.
//
// - record_from_json: {"handle"?, "templateVersion"?, "<values_key>":[values]} -> RecordInput.
// - check_writable:   may `who` write the handle (auth, prefix ownership, prefix allocated and
//                     active)? The refusal says why, for each API to map to its own codes.
// - prepare_record:   resolves the template (templateVersion, or a client-sent index 1001
//                     TEMPLATE value; with `partial`, the stored record's), validates the values
//                     against it (template.hpp), stores the version as value 1001 TEMPLATE, and
//                     makes values of `public:false` items non-public. Records without a template
//                     stay free-form.
// - The per-record size limit: one record's JSON text as the client sent it is at most
//   limits.max_body_bytes on every write path — the body of a single-record write (Handle REST
//   PUT, SNMS create/update; the server answers 413), one element of an SNMS batch
//   (record_json_sizes; that record fails alone), one bulk NDJSON line (error `too_large`).
// Reads use the caller's snapshot; nothing here writes. A template changed between this check and
// the commit is tolerated (items are only ever added or disabled).
#pragma once

#include "auth.hpp"
#include "idnode/registry/registry.hpp"
#include "idnode/registry/template.hpp"

#include <boost/json/value.hpp>

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace idnode::resolver::api {

struct RecordInput {
    std::string handle; // as sent ("" when the document has no "handle")
    std::optional<std::string> template_version;
    std::vector<registry::HandleValue> values;
};

/// The byte length of each top-level element of `json_array`, as sent (surrounding whitespace
/// excluded): the size of each record of a batch. `json_array` must already have parsed as a
/// JSON array; anything else gives an unspecified result (never a read out of bounds).
std::vector<std::size_t> record_json_sizes(std::string_view json_array);

/// The refusal of a record over the per-record limit (too_large, naming the limit).
registry::Error record_too_large(std::size_t bytes, std::size_t limit);

/// Parses a record document. `values_key` is "values" (Handle REST, bulk) or "value" (SNMS).
/// invalid_value with a message naming the member on failure.
registry::Result<RecordInput> record_from_json(const boost::json::value& json,
                                               std::string_view values_key);

enum class WriteRefusal { none, auth_needed, forbidden, not_allocated, suspended };
struct WriteCheck {
    WriteRefusal refusal = WriteRefusal::none;
    std::string message;
    bool ok() const noexcept { return refusal == WriteRefusal::none; }
};
WriteCheck check_writable(const registry::ReadSnapshot& snapshot, const Principal& who,
                          const registry::Handle& handle);

struct PreparedRecord {
    std::vector<registry::HandleValue> values;   // ready to store when ok()
    std::optional<registry::Error> error;        // not_found: no such template; invalid_value
    std::vector<registry::Violation> violations; // template violations (error is then set)

    bool ok() const noexcept { return !error.has_value(); }
    /// The violations joined ("; "), in English or Chinese, at most about 1 KiB (the first ones,
    /// then "and N more"); else the error's message.
    std::string message(bool chinese) const;
};

/// Templates loaded by earlier records of the same request (a batch), by entry key. Valid only
/// with the snapshot they were read from.
using TemplateCache = std::map<std::string, registry::Template, std::less<>>;

/// `partial`: the values are a subset to add/replace (PUT ?index=): required items are not
/// checked, and without a template version the stored record's TEMPLATE value is used.
/// `cache` (optional) saves the template lookup for the following records of a batch.
PreparedRecord prepare_record(const registry::ReadSnapshot& snapshot,
                              const registry::Handle& handle,
                              std::optional<std::string> template_version,
                              std::vector<registry::HandleValue> values, bool partial = false,
                              TemplateCache* cache = nullptr);

/// Loads the template (prefix, version); not_found / corrupt as an Error.
registry::Result<registry::Template> load_template(const registry::ReadSnapshot& snapshot,
                                                   std::string_view prefix,
                                                   std::string_view version);

} // namespace idnode::resolver::api
