// Records as idctl reads and writes them: NDJSON lines in the bulk shape (docs/api.md#bulk)
// `{"handle":…,"templateVersion"?:…,"values":[…]}` with values as in docs/data-model.md#values
// (parsed by the codec's value JSON, so the formats are exactly the server's), and CSV whose
// header is `handle` followed by one column per value.
//
// CSV header cells: `TYPE` or `INDEX:TYPE` (`1:URL`, `2000:heat_no`). A plain TYPE column gets
// the next index after the previous column's (starting at 1). An empty cell means "no value";
// cells are data in the "string" format. Quoting per RFC 4180 within one line ("a,b", "say
// ""hi""); a quoted field spanning lines is not supported (rejected).
//
// Not thread-safe (a reader reuses its parse buffers); use one per thread.
#pragma once

#include "idnode/registry/error.hpp"
#include "idnode/registry/value.hpp"

#include <boost/json/monotonic_resource.hpp>
#include <boost/json/parser.hpp>

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace idnode::codec {
class RecordLineScanner; // idnode/codec/record_scan.hpp
}

namespace idnode::idctl {

struct InputRecord {
    std::string handle;
    std::vector<registry::HandleValue> values;
};

/// A failed line: the handle when it could be read (for the rejects file), and why.
struct LineError {
    std::string handle;
    registry::Error error;
};

class NdjsonReader {
public:
    NdjsonReader();
    ~NdjsonReader();
    /// Parses one line (without its newline). `templateVersion` becomes value 1001 TEMPLATE
    /// (replacing a client-sent one), as the server does.
    bool parse(std::string_view line, InputRecord& out, LineError& error);

    /// Parses one line straight into the registry's stored encoding (registry::RecordEncoder,
    /// spelling = `handle`, values in input order, templateVersion handled as parse() does), for
    /// `load --offline`. The common shape (handle/values/templateVersion; values with index, type,
    /// data as a string or {"format":"string","value":…}, ttl, permissions, timestamp; strings
    /// without escapes) is scanned without building a JSON document or value objects; any other
    /// line goes through parse(), so results and error messages are parse()'s. The scanner is the
    /// bulk endpoint's (idnode/codec/record_scan.hpp).
    bool parse_encoded(std::string_view line, std::string& handle, std::string& record,
                       LineError& error);

    /// Lines that took the fast scanner / the general parser (for tests and diagnostics).
    std::uint64_t fast_lines() const noexcept { return fast_lines_; }
    std::uint64_t general_lines() const noexcept { return general_lines_; }

private:
    std::unique_ptr<codec::RecordLineScanner> scanner_;
    unsigned char buffer_[16384];
    boost::json::parser parser_;
    InputRecord general_;
    std::uint64_t fast_lines_ = 0;
    std::uint64_t general_lines_ = 0;
};

class CsvReader {
public:
    /// Reads the header; invalid_value with a message if it is not `handle,…`. A plain `TYPE`
    /// column found in `template_indices` (a template's idType → idIndex) takes that index;
    /// others take the index after the previous column's.
    static registry::Result<CsvReader>
    from_header(std::string_view header, std::optional<std::string> template_version,
                const std::map<std::string, std::int32_t>& template_indices = {});
    bool parse(std::string_view line, InputRecord& out, LineError& error) const;

private:
    struct Column {
        std::int32_t index;
        std::string type;
    };
    std::vector<Column> columns_;
    std::optional<std::string> template_version_;
};

/// Splits one CSV line into cells; false on an unterminated quote.
bool split_csv(std::string_view line, std::vector<std::string>& cells);

/// Sets value 1001 TEMPLATE to `version`, replacing any existing index 1001.
void set_template_version(std::vector<registry::HandleValue>& values, const std::string& version);

/// One NDJSON line (no newline) of the bulk shape for a parsed input record (what the online
/// load sends for a CSV row; TEMPLATE travels as value 1001, which the server reads as the
/// template version).
std::string input_record_to_ndjson(const InputRecord& record);

/// One NDJSON line (no newline) for a stored record, which NdjsonReader reads back to the same
/// values (timestamps are output for information and ignored on input).
std::string record_to_ndjson(const registry::RecordView& record);

} // namespace idnode::idctl
