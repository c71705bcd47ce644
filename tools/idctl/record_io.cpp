#include "record_io.hpp"

#include "idnode/codec/record_scan.hpp" // the bulk endpoint's fast line scanner
#include "idnode/codec/values_json.hpp" // the server's own JSON form of values

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

NdjsonReader::NdjsonReader() : scanner_(std::make_unique<codec::RecordLineScanner>()) {}
NdjsonReader::~NdjsonReader() = default;

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
    auto parsed = codec::values_from_json(*values);
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

bool NdjsonReader::parse_encoded(std::string_view line, std::string& handle, std::string& record,
                                 LineError& error) {
    if (scanner_->scan(line)) {
        ++fast_lines_;
        handle.assign(scanner_->handle());
        scanner_->encode(record, scanner_->handle());
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
        values.push_back(codec::value_to_json(v));
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
        codec::value_to_json(o, v);
        values.push_back(std::move(o));
    }
    line["values"] = std::move(values);
    return json::serialize(line);
}

} // namespace idnode::idctl
