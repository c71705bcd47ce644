// `idctl export --prefix P [-o FILE]` over HTTPS: walks the prefix with the list cursor
// (GET /api/handles?prefix=…&cursor=…, 1000 handles a page) and fetches the records with batch
// resolve (POST /api/v1/resolve, 200 handles a request so that even 255-byte handles stay under
// the node's 64 KiB body limit). Each record is written as one NDJSON line of the bulk shape
// (Record::to_json: handle, templateVersion, values) that `idctl load` accepts. Private values
// are included when the account may read them (an admin, or the prefix's owner).
// A record deleted between listing and resolving is skipped.
#include "online.hpp"

#include <boost/json.hpp>

#include <fstream>
#include <iostream>

namespace idnode::idctl {

namespace json = boost::json;

int export_online(const std::string& prefix, const std::string& output,
                  const GlobalOptions& global) {
    if (prefix.empty()) {
        return fail("export", "--prefix is empty", kExitUsage);
    }
    std::optional<sdk::Client> client;
    if (int rc = open_client("export", global, client); rc != kExitOk) {
        return rc;
    }
    std::ofstream file;
    if (!output.empty()) {
        file.open(output, std::ios::out | std::ios::trunc | std::ios::binary);
        if (!file) {
            return fail("export", "cannot write " + output);
        }
    }
    std::ostream& out = output.empty() ? std::cout : file;
    constexpr std::size_t kResolveBatch = 200;
    std::string cursor;
    std::uint64_t exported = 0;
    std::vector<std::string> handles;
    do {
        auto page = client->list_handles_cursor(prefix, cursor, 1000);
        if (!page) {
            return sdk_fail("export", page.error());
        }
        boost::system::error_code ec;
        const json::value v = json::parse(*page, ec);
        const json::object* o = ec ? nullptr : v.if_object();
        const json::value* list = o ? o->if_contains("handles") : nullptr;
        if (list == nullptr || !list->is_array()) {
            return fail("export", "the node's list answer has no handles array");
        }
        handles.clear();
        for (const auto& h : list->get_array()) {
            if (h.is_string()) {
                handles.emplace_back(h.get_string());
            }
        }
        const json::value* next = o->if_contains("nextCursor");
        cursor = next != nullptr && next->is_string() ? std::string(next->get_string()) : "";
        for (std::size_t i = 0; i < handles.size(); i += kResolveBatch) {
            std::vector<std::string> batch(
                handles.begin() + static_cast<std::ptrdiff_t>(i),
                handles.begin() +
                    static_cast<std::ptrdiff_t>(std::min(handles.size(), i + kResolveBatch)));
            auto records = client->resolve_many(batch);
            if (!records) {
                return sdk_fail("export", records.error());
            }
            for (const auto& r : *records) {
                if (r.response_code == 1) {
                    out << r.to_json() << '\n';
                    ++exported;
                } else if (r.response_code != 100) {
                    return fail("export", r.handle + ": the node answered rc " +
                                              std::to_string(r.response_code));
                }
            }
        }
        if (!out) {
            return fail("export", "writing the export failed");
        }
    } while (!cursor.empty());
    return finish_export(out, output, exported, global);
}

} // namespace idnode::idctl
