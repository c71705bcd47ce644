#include "cli.hpp"

#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>

#include <algorithm>
#include <charconv>
#include <iostream>

namespace idnode::idctl {

void print_table(std::ostream& out, const std::vector<std::string>& headers,
                 const std::vector<std::vector<std::string>>& rows) {
    std::vector<std::size_t> width(headers.size());
    auto measure = [&](const std::vector<std::string>& row) {
        for (std::size_t i = 0; i < row.size() && i < width.size(); ++i) {
            width[i] = std::max(width[i], row[i].size());
        }
    };
    measure(headers);
    for (const auto& row : rows) {
        measure(row);
    }
    auto line = [&](const std::vector<std::string>& row) {
        for (std::size_t i = 0; i < row.size() && i < width.size(); ++i) {
            out << row[i];
            if (i + 1 < row.size()) {
                out << std::string(width[i] - row[i].size() + 2, ' ');
            }
        }
        out << '\n';
    };
    line(headers);
    for (const auto& row : rows) {
        line(row);
    }
}

int finish_export(std::ostream& out, const std::string& output, std::uint64_t exported,
                  const GlobalOptions& global) {
    out.flush();
    if (!out) {
        return fail("export", "writing the export failed");
    }
    if (!output.empty()) {
        if (global.json) {
            print_json(std::cout, boost::json::object{{"exported", exported}, {"file", output}});
        } else {
            std::cout << "exported " << exported << " identifiers to " << output << '\n';
        }
    }
    return kExitOk;
}

void print_json(std::ostream& out, const boost::json::value& value) {
    out << boost::json::serialize(value) << '\n';
}

int fail(const std::string& command, const std::string& message, int code) {
    std::cerr << "idctl " << command << ": " << message << '\n';
    return code;
}

std::optional<std::uint64_t> parse_size(std::string_view text) {
    std::uint64_t n = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
    if (ec != std::errc{} || end == text.data()) {
        return std::nullopt;
    }
    const std::string_view unit(end, static_cast<std::size_t>(text.data() + text.size() - end));
    std::uint64_t factor = 1;
    if (unit.empty() || unit == "B") {
        factor = 1;
    } else if (unit == "K" || unit == "KiB") {
        factor = 1ull << 10;
    } else if (unit == "M" || unit == "MiB") {
        factor = 1ull << 20;
    } else if (unit == "G" || unit == "GiB") {
        factor = 1ull << 30;
    } else if (unit == "T" || unit == "TiB") {
        factor = 1ull << 40;
    } else {
        return std::nullopt;
    }
    if (n > UINT64_MAX / factor) {
        return std::nullopt;
    }
    return n * factor;
}

} // namespace idnode::idctl
