#include "record_io.hpp"

#include "idnode/registry/identifier.hpp"
#include "values_json.hpp" // resolver/src/api: the server's own JSON form of values

#include <boost/json.hpp>

#include <charconv>

namespace idnode::idctl {

namespace json = boost::json;
using registry::Errc;
using registry::Error;
using registry::HandleValue;

void set_template_version(std::vector<HandleValue>& values, const std::string& version) {
    std::erase_if(values, [](const HandleValue& v) { return v.index == registry::kIndexTemplate; });
    HandleValue t;
    t.index = registry::kIndexTemplate;
    t.type = "TEMPLATE";
    t.data = version;
    values.push_back(std::move(t));
}

NdjsonReader::NdjsonReader() = default;

bool NdjsonReader::parse(std::string_view line, InputRecord& out, LineError& error) {
    error.handle.clear();
    json::monotonic_resource storage(buffer_, sizeof buffer_);
    parser_.reset(&storage);
    boost::system::error_code ec;
    parser_.write(line.data(), line.size(), ec); // the whole line is one complete document
    if (ec) {
        error.error = Error{Errc::invalid_value, "not JSON: " + ec.message()};
        return false;
    }
    const json::value doc = parser_.release();
    const json::object* obj = doc.if_object();
    if (obj == nullptr) {
        error.error = Error{Errc::invalid_value, "a line must be a JSON object"};
        return false;
    }
    const json::value* handle = obj->if_contains("handle");
    if (handle == nullptr || !handle->is_string()) {
        error.error = Error{Errc::invalid_value, "\"handle\" must be a string"};
        return false;
    }
    out.handle.assign(handle->get_string());
    error.handle = out.handle;
    const json::value* values = obj->if_contains("values");
    if (values == nullptr) {
        error.error = Error{Errc::invalid_value, "the line needs \"values\""};
        return false;
    }
    auto parsed = resolver::api::values_from_json(*values);
    if (!parsed) {
        error.error = parsed.error();
        return false;
    }
    out.values = std::move(parsed).value();
    if (const json::value* t = obj->if_contains("templateVersion")) {
        if (!t->is_string() || t->get_string().empty()) {
            error.error = Error{Errc::invalid_value, "templateVersion must be a non-empty string"};
            return false;
        }
        set_template_version(out.values, std::string(t->get_string()));
    }
    return true;
}

namespace {

/// A minimal scanner over one NDJSON line for the fast path. Every failure just means "not the
/// common shape": the caller falls back to the general parser, which produces the real error.
class Scanner {
public:
    explicit Scanner(std::string_view text) : p_(text.data()), end_(text.data() + text.size()) {}

    void skip_ws() noexcept {
        while (p_ != end_ && (*p_ == ' ' || *p_ == '\t' || *p_ == '\r' || *p_ == '\n')) {
            ++p_;
        }
    }
    bool at_end() noexcept {
        skip_ws();
        return p_ == end_;
    }
    bool eat(char c) noexcept {
        skip_ws();
        if (p_ != end_ && *p_ == c) {
            ++p_;
            return true;
        }
        return false;
    }
    bool peek(char c) noexcept {
        skip_ws();
        return p_ != end_ && *p_ == c;
    }
    /// A string without escapes or control characters, valid UTF-8.
    bool string(std::string_view& out) noexcept {
        if (!eat('"')) {
            return false;
        }
        const char* start = p_;
        bool ascii = true;
        while (p_ != end_) {
            const auto c = static_cast<unsigned char>(*p_);
            if (c == '"') {
                out = std::string_view(start, static_cast<std::size_t>(p_ - start));
                ++p_;
                return ascii || registry::find_invalid_utf8(out) == std::string_view::npos;
            }
            if (c == '\\' || c < 0x20) {
                return false;
            }
            ascii = ascii && c < 0x80;
            ++p_;
        }
        return false;
    }
    /// A non-negative JSON integer within [min, INT32_MAX] (no sign, fraction or exponent).
    bool int32(std::int32_t min, std::int32_t& out) noexcept {
        skip_ws();
        const char* start = p_;
        std::int64_t v = 0;
        while (p_ != end_ && *p_ >= '0' && *p_ <= '9' && p_ - start < 11) {
            v = v * 10 + (*p_ - '0');
            ++p_;
        }
        const auto n = p_ - start;
        if (n == 0 || (n > 1 && *start == '0') || v < min || v > INT32_MAX ||
            (p_ != end_ &&
             (*p_ == '.' || *p_ == 'e' || *p_ == 'E' || (*p_ >= '0' && *p_ <= '9')))) {
            return false;
        }
        out = static_cast<std::int32_t>(v);
        return true;
    }

private:
    const char* p_;
    const char* end_;
};

} // namespace

bool NdjsonReader::scan(std::string_view line, std::string_view& handle,
                        std::string_view& template_version) {
    fast_values_.clear();
    Scanner s(line);
    bool have_handle = false, have_values = false, have_template = false;
    if (!s.eat('{')) {
        return false;
    }
    do {
        std::string_view key;
        if (!s.string(key) || !s.eat(':')) {
            return false;
        }
        if (key == "handle" && !have_handle) {
            have_handle = s.string(handle);
            if (!have_handle) {
                return false;
            }
        } else if (key == "templateVersion" && !have_template) {
            have_template = s.string(template_version) && !template_version.empty();
            if (!have_template) {
                return false;
            }
        } else if (key == "values" && !have_values) {
            have_values = true;
            if (!s.eat('[') || s.peek(']')) {
                return false;
            }
            do {
                FastValue v{0, {}, {}, registry::kDefaultTtl, registry::Permissions{}};
                bool have_index = false, have_type = false, have_data = false, have_ttl = false,
                     have_perms = false, have_ts = false;
                if (!s.eat('{')) {
                    return false;
                }
                do {
                    std::string_view field;
                    if (!s.string(field) || !s.eat(':')) {
                        return false;
                    }
                    bool ok = false;
                    if (field == "index" && !have_index) {
                        ok = have_index = s.int32(1, v.index);
                    } else if (field == "type" && !have_type) {
                        ok = have_type = s.string(v.type);
                    } else if (field == "data" && !have_data) {
                        if (s.peek('"')) {
                            ok = s.string(v.data);
                        } else {
                            std::string_view k1, k2, format;
                            ok = s.eat('{') && s.string(k1) && k1 == "format" && s.eat(':') &&
                                 s.string(format) && format == "string" && s.eat(',') &&
                                 s.string(k2) && k2 == "value" && s.eat(':') && s.string(v.data) &&
                                 s.eat('}');
                        }
                        have_data = ok;
                    } else if (field == "ttl" && !have_ttl) {
                        ok = have_ttl = s.int32(0, v.ttl);
                    } else if (field == "permissions" && !have_perms) {
                        std::string_view text;
                        if (s.string(text)) {
                            if (auto p = registry::Permissions::parse(text)) {
                                v.permissions = *p;
                                ok = have_perms = true;
                            }
                        }
                    } else if (field == "timestamp" && !have_ts) {
                        std::string_view ignored; // output for information, ignored on input
                        ok = have_ts = s.string(ignored);
                    }
                    if (!ok) {
                        return false;
                    }
                } while (s.eat(','));
                if (!s.eat('}') || !have_index || !have_type || !have_data) {
                    return false;
                }
                fast_values_.push_back(v);
            } while (s.eat(','));
            if (!s.eat(']')) {
                return false;
            }
        } else {
            return false;
        }
    } while (s.eat(','));
    return s.eat('}') && s.at_end() && have_handle && have_values;
}

bool NdjsonReader::parse_encoded(std::string_view line, std::string& handle, std::string& record,
                                 LineError& error) {
    std::string_view fast_handle, template_version;
    if (scan(line, fast_handle, template_version)) {
        ++fast_lines_;
        handle.assign(fast_handle);
        registry::RecordEncoder encoder(record, fast_handle);
        for (const FastValue& v : fast_values_) {
            if (!template_version.empty() && v.index == registry::kIndexTemplate) {
                continue; // replaced by templateVersion, appended last (set_template_version)
            }
            encoder.add(v.index, v.type, v.data, v.ttl, v.permissions);
        }
        if (!template_version.empty()) {
            encoder.add(registry::kIndexTemplate, "TEMPLATE", template_version);
        }
        return true;
    }
    ++general_lines_;
    if (!parse(line, general_, error)) {
        return false;
    }
    handle = general_.handle;
    registry::RecordEncoder encoder(record, handle);
    for (const auto& v : general_.values) {
        encoder.add(v);
    }
    return true;
}

bool split_csv(std::string_view line, std::vector<std::string>& cells) {
    cells.clear();
    if (!line.empty() && line.back() == '\r') {
        line.remove_suffix(1);
    }
    std::string cell;
    std::size_t i = 0;
    for (;;) {
        cell.clear();
        if (i < line.size() && line[i] == '"') {
            ++i;
            for (;;) {
                if (i >= line.size()) {
                    return false; // unterminated quote
                }
                if (line[i] == '"') {
                    if (i + 1 < line.size() && line[i + 1] == '"') {
                        cell.push_back('"');
                        i += 2;
                        continue;
                    }
                    ++i;
                    break;
                }
                cell.push_back(line[i++]);
            }
            if (i < line.size() && line[i] != ',') {
                return false; // text after a closing quote
            }
        } else {
            const std::size_t end = std::min(line.find(',', i), line.size());
            cell.assign(line.substr(i, end - i));
            i = end;
        }
        cells.push_back(cell);
        if (i >= line.size()) {
            return true;
        }
        ++i; // the comma
    }
}

registry::Result<CsvReader>
CsvReader::from_header(std::string_view header, std::optional<std::string> template_version,
                       const std::map<std::string, std::int32_t>& template_indices) {
    std::vector<std::string> cells;
    if (!split_csv(header, cells) || cells.empty() || cells[0] != "handle") {
        return Error{Errc::invalid_value, "the CSV header must start with \"handle\""};
    }
    if (cells.size() < 2) {
        return Error{Errc::invalid_value, "the CSV header names no value columns"};
    }
    CsvReader reader;
    reader.template_version_ = std::move(template_version);
    std::int32_t next = 1;
    for (std::size_t c = 1; c < cells.size(); ++c) {
        const std::string& cell = cells[c];
        Column col{next, cell};
        if (const auto colon = cell.find(':'); colon != std::string::npos) {
            std::int32_t index = 0;
            const auto* first = cell.data();
            const auto [end, ec] = std::from_chars(first, first + colon, index);
            if (ec != std::errc{} || end != first + colon || index <= 0) {
                return Error{Errc::invalid_value, "header column " + std::to_string(c + 1) + " \"" +
                                                      cell +
                                                      "\": INDEX:TYPE needs a positive index"};
            }
            col = Column{index, cell.substr(colon + 1)};
        } else if (auto t = template_indices.find(cell); t != template_indices.end()) {
            col.index = t->second;
        }
        if (col.type.empty()) {
            return Error{Errc::invalid_value,
                         "header column " + std::to_string(c + 1) + " has no type"};
        }
        for (const auto& other : reader.columns_) {
            if (other.index == col.index) {
                return Error{Errc::invalid_value, "header column " + std::to_string(c + 1) +
                                                      ": index " + std::to_string(col.index) +
                                                      " is used twice"};
            }
        }
        next = col.index + 1;
        reader.columns_.push_back(std::move(col));
    }
    return reader;
}

bool CsvReader::parse(std::string_view line, InputRecord& out, LineError& error) const {
    error.handle.clear();
    std::vector<std::string> cells;
    if (!split_csv(line, cells)) {
        error.error = Error{Errc::invalid_value, "unterminated or misplaced quote"};
        return false;
    }
    error.handle = cells[0];
    if (cells.size() != columns_.size() + 1) {
        error.error =
            Error{Errc::invalid_value, "expected " + std::to_string(columns_.size() + 1) +
                                           " cells, found " + std::to_string(cells.size())};
        return false;
    }
    out.handle = std::move(cells[0]);
    out.values.clear();
    for (std::size_t c = 0; c < columns_.size(); ++c) {
        if (cells[c + 1].empty()) {
            continue;
        }
        HandleValue v;
        v.index = columns_[c].index;
        v.type = columns_[c].type;
        v.data = std::move(cells[c + 1]);
        out.values.push_back(std::move(v));
    }
    if (template_version_) {
        set_template_version(out.values, *template_version_);
    }
    if (out.values.empty()) {
        error.error = Error{Errc::invalid_value, "the row has no values"};
        return false;
    }
    return true;
}

std::string input_record_to_ndjson(const InputRecord& record) {
    json::object line;
    line["handle"] = record.handle;
    json::array values;
    values.reserve(record.values.size());
    for (const HandleValue& v : record.values) {
        values.push_back(resolver::api::value_to_json(v));
    }
    line["values"] = std::move(values);
    return json::serialize(line);
}

std::string record_to_ndjson(const registry::RecordView& record) {
    json::object line;
    line["handle"] = record.spelling();
    json::array values;
    values.reserve(record.size());
    for (const registry::ValueView& v : record) {
        json::object o;
        resolver::api::value_to_json(o, v);
        values.push_back(std::move(o));
    }
    line["values"] = std::move(values);
    return json::serialize(line);
}

} // namespace idnode::idctl
