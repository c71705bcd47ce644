// Record documents as clients send them, shared by every JSON write path (Handle REST PUT, SNMS
// create/update/batch, bulk lines): {"handle"?, "templateVersion"?, "<values_key>":[values]}.
// What happens to the record next (template step, write policy) is node/records.hpp and
// node/policy.hpp. Internal to the resolver.
#pragma once

#include "idnode/registry/registry.hpp"

#include <boost/json/value.hpp>

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

/// Parses a record document. `values_key` is "values" (Handle REST, bulk) or "value" (SNMS).
/// invalid_value with a message naming the member on failure.
registry::Result<RecordInput> record_from_json(const boost::json::value& json,
                                               std::string_view values_key);

} // namespace idnode::resolver::api
