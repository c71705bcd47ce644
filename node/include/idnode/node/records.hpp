// The template step of every identifier write (Handle REST PUT, SNMS create/update/batch, bulk,
// and later the Handle protocol), between the write policy (policy.hpp) and the registry's
// submit. See docs/data-model.md#templates.
//
// - prepare_record resolves the template (a `templateVersion`, or a client-sent index 1001
//   TEMPLATE value; with `partial`, the stored record's), validates the values against it
//   (registry/template.hpp), stores the version as value 1001 TEMPLATE, and makes values of
//   `public:false` items non-public. Records without a template stay free-form.
// - The per-record size limit: one record's JSON text as the client sent it is at most
//   limits.max_body_bytes on every write path (record_too_large names the limit).
// Reads use the caller's snapshot; nothing here writes. A template changed between this step and
// the commit is tolerated (items are only ever added or disabled).
// Thread safety: pure functions; a TemplateCache belongs to one request.
#pragma once

#include "idnode/registry/registry.hpp"
#include "idnode/registry/template.hpp"

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace idnode::node {

/// The refusal of a record over the per-record limit (too_large, naming the limit).
registry::Error record_too_large(std::size_t bytes, std::size_t limit);

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

/// Submits one write operation and calls `done` with its result on the writer thread.
void submit_one(registry::Registry& registry, registry::WriteOp op, std::string account,
                std::function<void(const registry::OpResult&)> done);

} // namespace idnode::node
