// Metadata templates (docs/data-model.md#templates): the SNMS v5 model plus our typed extension,
// their binary encoding for the registry's `templates` table, the update rules and the record
// validator.
//
// A template is keyed by (prefix, version); the entry key is `template_key(prefix, version)` =
// folded prefix + "/" + version. Records name the template they were registered against with the
// value at index 1001 (`TEMPLATE`, data = version); the template is looked up under the record's
// own prefix. The registry writer keeps a usage count per template key (ReadSnapshot::
// template_usage) so that a template in use cannot be deleted (Errc::in_use).
//
// Messages: every violation names the field (index, idType and the item's name) and exists in
// English (native and Handle REST APIs) and Chinese (SNMS API).
//
// Thread safety: pure functions and plain data.
#pragma once

#include "idnode/registry/error.hpp"
#include "idnode/registry/value.hpp"

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace idnode::registry {

/// metadata.type of an item. SNMS knows only `string`; the others are our extension.
enum class FieldType : std::uint8_t {
    string = 1,
    integer = 2,
    number = 3,
    date = 4,     // YYYY-MM-DD, a real calendar date
    datetime = 5, // RFC 3339, e.g. 2024-11-22T10:00:00+08:00
    url = 6,      // scheme://rest, no spaces
    enumeration = 7,
    handle = 8 // a syntactically valid identifier (prefix/suffix)
};
const char* field_type_name(FieldType t) noexcept;
std::optional<FieldType> parse_field_type(std::string_view text) noexcept;

inline constexpr std::uint32_t kMaxFieldLength = 65536;

struct TemplateItem {
    std::string name;    // human name, usually Chinese ("炉号")
    std::string id_type; // value type stored with the value ("heat_no")
    std::int32_t id_index = 0;
    bool required = false;
    bool enabled = true; // SNMS "state": 1 enabled, 0 disabled
    FieldType type = FieldType::string;
    std::uint32_t min_length = 0;               // characters (code points)
    std::uint32_t max_length = kMaxFieldLength; // characters (code points)
    std::vector<std::string> values;            // enum choices
    bool is_public = true;                      // false: stored values are not publicly readable
    friend bool operator==(const TemplateItem&, const TemplateItem&) = default;
};

struct Template {
    std::string prefix;            // as given, e.g. "88.118.8"
    std::string version;           // 1-64 of [A-Za-z0-9._-]
    std::string industry_category; // GB/T 4754 section letter, "C"
    std::string industry_specific; // two digits, "31"
    std::string industry_trade;    // three digits, "312"
    std::string industry_subclass; // four digits, "3120"
    std::uint8_t type = 1;         // 1 active identifier carrier, 2 other
    std::string description;
    std::vector<TemplateItem> items;
    std::int64_t created = 0; // unix seconds, set by the server
    std::int64_t updated = 0;
    friend bool operator==(const Template&, const Template&) = default;

    const TemplateItem* item(std::int32_t index) const noexcept;
};

/// Validates the version grammar and returns the entry key (folded prefix + "/" + version).
Result<std::string> template_key(std::string_view prefix, std::string_view version);

/// Structural checks of a template a client sent (invalid_value, message names the item):
/// prefix and version grammar; type 1 or 2; industry codes consistent (category a letter A-T,
/// specific/trade/subclass refine each other); at least one item, at most 2000; per item: name and
/// idType non-empty UTF-8 (idType <= 128 bytes, no control characters), idIndex >= 2000, unique
/// idIndex and idType; min <= max <= 65536; enum has 1-256 distinct values and only enum has them.
Status validate_template(const Template& t);

/// The rules for PUT on an existing template: same version; every existing item is still there
/// with the same idIndex, idType and metadata.type (items are never deleted or renumbered); new
/// items may be added; state may change. invalid_value naming the item otherwise.
Status check_template_update(const Template& stored, const Template& updated);

std::string encode_template(const Template& t);
Result<Template> decode_template(std::string_view bytes);

// ---- record validation --------------------------------------------------------------------

enum class ViolationKind : std::uint8_t {
    unknown_index,    // index >= 2000 not defined by the template
    type_mismatch,    // the value's type differs from the item's idType
    disabled_item,    // the item is disabled (state 0)
    missing_required, // a required enabled item has no value
    wrong_type,       // data does not parse as metadata.type
    length,           // data length outside [minLength, maxLength]
    enum_miss,        // data not among metadata.values
    not_utf8          // data of a template field is not UTF-8 text
};

struct Violation {
    ViolationKind kind;
    std::int32_t index = 0;
    std::string id_type;     // the item's idType ("" for unknown_index)
    std::string name;        // the item's name ("" for unknown_index)
    std::string value_type;  // the type the client sent (type_mismatch, unknown_index)
    std::size_t length = 0;  // characters sent (length)
    std::string expectation; // "1 to 32", "date YYYY-MM-DD", "one of: a, b"

    std::string english() const;
    std::string chinese() const;
};

/// Checks `values` (a whole record) against `t`. Values below index 2000 (URL, HS_ADMIN, the
/// TEMPLATE value) are not template fields and are not checked. Returns every violation, in
/// index order; empty = valid.
std::vector<Violation> validate_record(const Template& t, std::span<const HandleValue> values);

/// Validates a value of one field type (used by validate_record); empty string = valid, else the
/// expectation text for the message ("date YYYY-MM-DD").
std::string check_field_type(FieldType type, std::string_view data,
                             std::span<const std::string> enum_values);

/// Number of UTF-8 code points (text is assumed valid UTF-8).
std::size_t utf8_length(std::string_view text) noexcept;

} // namespace idnode::registry
