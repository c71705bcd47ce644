// The C ABI (idnode/sdk.h) over the C++ client: JSON text in and out, status codes, per-thread
// details of the last failure. No exception crosses the boundary.
#include "idnode/sdk.h"

#include "idnode/sdk/client.hpp"
#include "idnode/sdk/version.hpp"

#include <boost/json.hpp>

#include <cstdlib>
#include <cstring>
#include <new>

namespace json = boost::json;
using namespace idnode::sdk;

struct idnode_client {
    Client client;
};

namespace {

struct LastError {
    std::string message;
    int http_status = 0;
    int response_code = 0;
};
thread_local LastError last_error;

void clear_error() {
    last_error = LastError{};
}

int fail(const Error& e) {
    last_error.message = e.to_string();
    last_error.http_status = e.http_status;
    last_error.response_code = e.response_code;
    return static_cast<int>(e.kind);
}

int fail(ErrorKind kind, const std::string& message) {
    Error e;
    e.kind = kind;
    e.message = message;
    return fail(e);
}

char* duplicate(const std::string& s) {
    char* p = static_cast<char*>(std::malloc(s.size() + 1));
    if (p != nullptr)
        std::memcpy(p, s.c_str(), s.size() + 1);
    return p;
}

int give(const std::string& s, char** out) {
    *out = duplicate(s);
    return *out != nullptr ? IDNODE_OK : fail(ErrorKind::invalid_argument, "out of memory");
}

json::value record_to_json(const Record& r) {
    json::value v = json::parse(r.to_json());
    auto& o = v.as_object();
    o["responseCode"] = r.response_code;
    auto& values = o["values"].as_array();
    for (std::size_t i = 0; i < values.size() && i < r.values.size(); ++i) {
        if (!r.values[i].timestamp.empty())
            values[i].as_object()["timestamp"] = r.values[i].timestamp;
    }
    return v;
}

/// Runs `body`, turning any escaping exception (a bug, or bad_alloc) into a status.
template <class F> int guarded(F&& body) {
    clear_error();
    try {
        return body();
    } catch (const std::bad_alloc&) {
        return fail(ErrorKind::invalid_argument, "out of memory");
    } catch (const std::exception& e) {
        return fail(ErrorKind::protocol, std::string("internal error: ") + e.what());
    }
}

bool parse_object(const char* text, json::object& out, std::string& error) {
    if (text == nullptr || *text == '\0') {
        out.clear();
        return true;
    }
    boost::system::error_code ec;
    json::value v = json::parse(text, ec);
    if (ec || !v.is_object()) {
        error = ec ? ec.message() : "not a JSON object";
        return false;
    }
    out = std::move(v.get_object());
    return true;
}

} // namespace

extern "C" {

const char* idnode_strerror(int status) {
    if (status < 0 || status > static_cast<int>(ErrorKind::cancelled))
        return "unknown status";
    return to_string(static_cast<ErrorKind>(status));
}

const char* idnode_version(void) {
    return version();
}
const char* idnode_last_error(void) {
    return last_error.message.c_str();
}
int idnode_last_http_status(void) {
    return last_error.http_status;
}
int idnode_last_response_code(void) {
    return last_error.response_code;
}
void idnode_free(char* p) {
    std::free(p);
}

int idnode_client_open(const char* options_json, idnode_client** out) {
    if (out == nullptr)
        return fail(ErrorKind::invalid_argument, "out is NULL");
    *out = nullptr;
    return guarded([&] {
        json::object o;
        std::string error;
        if (!parse_object(options_json, o, error))
            return fail(ErrorKind::invalid_argument, "options: " + error);
        ClientOptions opt;
        for (const auto& [key, v] : o) {
            auto str = [&](std::string& dst) {
                if (!v.is_string())
                    return false;
                dst = std::string(v.get_string());
                return true;
            };
            auto num = [&](std::int64_t& dst) {
                if (!v.is_int64() || v.get_int64() < 0)
                    return false;
                dst = v.get_int64();
                return true;
            };
            std::int64_t n = 0;
            std::string s;
            bool ok = true;
            if (key == "url")
                ok = str(opt.url);
            else if (key == "ca_file")
                ok = str(opt.ca_file);
            else if (key == "insecure_skip_verify")
                ok = v.is_bool() && ((opt.insecure_skip_verify = v.get_bool()), true);
            else if (key == "api_key")
                ok = str(opt.api_key);
            else if (key == "username")
                ok = str(opt.username);
            else if (key == "password")
                ok = str(opt.password);
            else if (key == "password_auth") {
                ok = str(s) && (s == "automatic" || s == "token" || s == "basic");
                opt.password_auth = s == "token"   ? PasswordAuth::token
                                    : s == "basic" ? PasswordAuth::basic
                                                   : PasswordAuth::automatic;
            } else if (key == "connect_timeout_ms")
                ok = num(n) && ((opt.connect_timeout = std::chrono::milliseconds(n)), true);
            else if (key == "request_timeout_ms")
                ok = num(n) && ((opt.request_timeout = std::chrono::milliseconds(n)), true);
            else if (key == "max_connections")
                ok = num(n) && n <= 1024 && ((opt.max_connections = static_cast<int>(n)), true);
            else if (key == "max_attempts")
                ok = num(n) && n <= 100 && ((opt.retry.max_attempts = static_cast<int>(n)), true);
            else
                return fail(ErrorKind::invalid_argument,
                            "options: unknown key \"" + std::string(key) + "\"");
            if (!ok)
                return fail(ErrorKind::invalid_argument,
                            "options: bad value for \"" + std::string(key) + "\"");
        }
        auto client = Client::create(opt);
        if (!client)
            return fail(client.error());
        *out = new idnode_client{std::move(client).value()};
        return IDNODE_OK;
    });
}

void idnode_client_close(idnode_client* client) {
    delete client;
}

int idnode_resolve(idnode_client* client, const char* handle, const char* filter_json,
                   char** record_json) {
    if (record_json == nullptr || client == nullptr || handle == nullptr)
        return fail(ErrorKind::invalid_argument, "NULL argument");
    *record_json = nullptr;
    return guarded([&] {
        json::object f;
        std::string error;
        if (!parse_object(filter_json, f, error))
            return fail(ErrorKind::invalid_argument, "filter: " + error);
        ResolveFilter filter;
        if (const auto* types = f.if_contains("types")) {
            if (!types->is_array())
                return fail(ErrorKind::invalid_argument, "filter.types must be an array");
            for (const auto& t : types->get_array()) {
                if (!t.is_string())
                    return fail(ErrorKind::invalid_argument, "filter.types: strings only");
                filter.types.emplace_back(t.get_string());
            }
        }
        if (const auto* indices = f.if_contains("indices")) {
            if (!indices->is_array())
                return fail(ErrorKind::invalid_argument, "filter.indices must be an array");
            for (const auto& i : indices->get_array()) {
                if (!i.is_int64() || i.get_int64() <= 0 || i.get_int64() > INT32_MAX)
                    return fail(ErrorKind::invalid_argument,
                                "filter.indices: positive integers only");
                filter.indices.push_back(static_cast<std::int32_t>(i.get_int64()));
            }
        }
        auto r = client->client.resolve(handle, filter);
        if (!r)
            return fail(r.error());
        return give(json::serialize(record_to_json(*r)), record_json);
    });
}

int idnode_resolve_many(idnode_client* client, const char* handles_json, char** records_json) {
    if (records_json == nullptr || client == nullptr || handles_json == nullptr)
        return fail(ErrorKind::invalid_argument, "NULL argument");
    *records_json = nullptr;
    return guarded([&] {
        boost::system::error_code ec;
        json::value v = json::parse(handles_json, ec);
        if (ec || !v.is_array())
            return fail(ErrorKind::invalid_argument, "handles must be a JSON array of strings");
        std::vector<std::string> handles;
        for (const auto& h : v.get_array()) {
            if (!h.is_string())
                return fail(ErrorKind::invalid_argument, "handles must be strings");
            handles.emplace_back(h.get_string());
        }
        auto r = client->client.resolve_many(handles);
        if (!r)
            return fail(r.error());
        json::array out;
        for (const auto& rec : *r)
            out.push_back(record_to_json(rec));
        return give(json::serialize(out), records_json);
    });
}

int idnode_put(idnode_client* client, const char* mode, const char* record_json, int* created) {
    if (client == nullptr || mode == nullptr || record_json == nullptr)
        return fail(ErrorKind::invalid_argument, "NULL argument");
    return guarded([&] {
        auto rec = Record::from_json(record_json);
        if (!rec)
            return fail(rec.error());
        const std::string m = mode;
        Result<PutOutcome> r = m == "create"    ? client->client.create(*rec)
                               : m == "replace" ? client->client.replace(*rec)
                               : m == "upsert"
                                   ? client->client.upsert(*rec)
                                   : Result<PutOutcome>(Error{ErrorKind::invalid_argument,
                                                              0,
                                                              0,
                                                              {},
                                                              "mode must be create, replace or "
                                                              "upsert"});
        if (!r)
            return fail(r.error());
        if (created != nullptr)
            *created = *r == PutOutcome::created ? 1 : 0;
        return IDNODE_OK;
    });
}

int idnode_delete(idnode_client* client, const char* handle) {
    if (client == nullptr || handle == nullptr)
        return fail(ErrorKind::invalid_argument, "NULL argument");
    return guarded([&] {
        auto st = client->client.remove(handle);
        return st ? IDNODE_OK : fail(st.error());
    });
}

int idnode_set_values(idnode_client* client, const char* handle, const char* values_json) {
    if (client == nullptr || handle == nullptr || values_json == nullptr)
        return fail(ErrorKind::invalid_argument, "NULL argument");
    return guarded([&] {
        // The record parser reads a bare values array too (with the handle given here).
        auto rec = Record::from_json(values_json, handle);
        if (!rec)
            return fail(rec.error());
        if (rec->values.empty())
            return fail(ErrorKind::invalid_argument, "values: at least one value");
        auto st = client->client.set_values(handle, rec->values);
        return st ? IDNODE_OK : fail(st.error());
    });
}

int idnode_remove_values(idnode_client* client, const char* handle, const char* indices_json) {
    if (client == nullptr || handle == nullptr || indices_json == nullptr)
        return fail(ErrorKind::invalid_argument, "NULL argument");
    return guarded([&] {
        boost::system::error_code ec;
        json::value v = json::parse(indices_json, ec);
        if (ec || !v.is_array() || v.get_array().empty())
            return fail(ErrorKind::invalid_argument,
                        "indices must be a non-empty JSON array of integers");
        std::vector<std::int32_t> indices;
        for (const auto& i : v.get_array()) {
            if (!i.is_int64() || i.get_int64() <= 0 || i.get_int64() > INT32_MAX)
                return fail(ErrorKind::invalid_argument, "indices: positive integers only");
            indices.push_back(static_cast<std::int32_t>(i.get_int64()));
        }
        auto st = client->client.remove_values(handle, indices);
        return st ? IDNODE_OK : fail(st.error());
    });
}

int idnode_list_handles(idnode_client* client, const char* prefix, const char* cursor,
                        unsigned page_size, char** page_json) {
    if (client == nullptr || prefix == nullptr || page_json == nullptr)
        return fail(ErrorKind::invalid_argument, "NULL argument");
    *page_json = nullptr;
    if (page_size > 1000)
        return fail(ErrorKind::invalid_argument, "page_size must be 1..1000 (0 = 1000)");
    return guarded([&] {
        auto r = client->client.list_handles_cursor(prefix, cursor != nullptr ? cursor : "",
                                                    page_size == 0 ? 1000 : page_size);
        if (!r)
            return fail(r.error());
        return give(*r, page_json);
    });
}

int idnode_request(idnode_client* client, const char* method, const char* target, const char* body,
                   int* http_status, char** response_body) {
    if (client == nullptr || method == nullptr || target == nullptr || http_status == nullptr ||
        response_body == nullptr)
        return fail(ErrorKind::invalid_argument, "NULL argument");
    *response_body = nullptr;
    *http_status = 0;
    return guarded([&] {
        auto r = client->client.request(method, target, body != nullptr ? body : "");
        if (!r)
            return fail(r.error());
        *http_status = r->status;
        return give(r->body, response_body);
    });
}

int idnode_bulk(idnode_client* client, const char* options_json, const char* ndjson,
                char** summary_json) {
    if (client == nullptr || ndjson == nullptr || summary_json == nullptr)
        return fail(ErrorKind::invalid_argument, "NULL argument");
    *summary_json = nullptr;
    return guarded([&] {
        json::object o;
        std::string error;
        if (!parse_object(options_json, o, error))
            return fail(ErrorKind::invalid_argument, "options: " + error);
        BulkOptions opt;
        if (const auto* m = o.if_contains("mode")) {
            const std::string_view s = m->is_string() ? std::string_view(m->get_string()) : "";
            if (s == "create")
                opt.mode = BulkMode::create;
            else if (s == "upsert")
                opt.mode = BulkMode::upsert;
            else if (s == "replace")
                opt.mode = BulkMode::replace;
            else
                return fail(ErrorKind::invalid_argument, "mode must be create, upsert or replace");
        }
        if (const auto* s = o.if_contains("streams")) {
            if (!s->is_int64())
                return fail(ErrorKind::invalid_argument, "streams must be an integer");
            opt.streams = static_cast<int>(s->get_int64());
        }
        json::array rejected;
        opt.errors_only = true;
        opt.on_result = [&](const BulkItemResult& r) {
            rejected.push_back(json::object{{"index", r.index},
                                            {"handle", r.handle},
                                            {"code", r.error_code},
                                            {"message", r.error_message}});
        };
        std::string_view rest = ndjson;
        auto r = client->client.bulk_lines(
            [&](std::string& line) {
                if (rest.empty())
                    return false;
                const auto nl = rest.find('\n');
                line.assign(rest.substr(0, nl));
                rest = nl == std::string_view::npos ? std::string_view{} : rest.substr(nl + 1);
                return true;
            },
            opt);
        if (!r)
            return fail(r.error());
        json::object s{{"records", r->records},     {"created", r->created},
                       {"replaced", r->replaced},   {"unchanged", r->unchanged},
                       {"errors", r->errors},       {"resent", r->resent},
                       {"elapsed_s", r->elapsed_s}, {"rejected", std::move(rejected)}};
        return give(json::serialize(s), summary_json);
    });
}

} // extern "C"
