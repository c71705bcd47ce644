// The SDK's client: errors and their mapping from the node's answers, and the Handle REST / admin
// calls. The transport (connections, pool, credentials, retries) is transport.cpp; the record
// JSON model is record_json.cpp.
#include "client_impl.hpp"

#include "idnode/sdk/version.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/json.hpp>

#include <openssl/ssl.h>

#include <poll.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <fstream>
#include <iterator>
#include <random>
#include <thread>

namespace idnode::sdk {

namespace json = boost::json;
using namespace detail;

// ---- errors -------------------------------------------------------------------------------------

const char* to_string(ErrorKind kind) noexcept {
    // Indexed by the enumerator's value.
    static constexpr const char* kNames[] = {"ok",
                                             "invalid argument",
                                             "connection failed",
                                             "TLS failure",
                                             "timeout",
                                             "connection lost",
                                             "protocol error",
                                             "server error",
                                             "authentication failed",
                                             "not found",
                                             "already exists",
                                             "cancelled"};
    static_assert(std::size(kNames) == static_cast<std::size_t>(ErrorKind::cancelled) + 1);
    const auto i = static_cast<std::size_t>(kind);
    return i < std::size(kNames) ? kNames[i] : "unknown error";
}

std::string Error::to_string() const {
    std::string s = sdk::to_string(kind);
    if (http_status != 0)
        s += ", http " + std::to_string(http_status);
    if (response_code != 0)
        s += ", rc " + std::to_string(response_code);
    if (!code.empty())
        s += ", " + code;
    if (!message.empty())
        s += ": " + message;
    return s;
}

const char* version() noexcept {
    return IDNODE_VERSION;
}

namespace detail {

Error make_error(ErrorKind kind, std::string message, int http_status, int rc) {
    Error e;
    e.kind = kind;
    e.message = std::move(message);
    e.http_status = http_status;
    e.response_code = rc;
    return e;
}

Error transport_error(const error_code& ec, const char* what) {
    std::string message = std::string(what) + ": " + ec.message();
    if (ec == beast::error::timeout || ec == net::error::timed_out)
        return make_error(ErrorKind::timeout, std::string(what) + ": timed out");
    if (ec.category() == net::error::get_ssl_category() ||
        ec.category() == net::ssl::error::get_stream_category()) {
        // OpenSSL's reason ("certificate verify failed") is the useful part.
        if (ec.category() == net::error::get_ssl_category()) {
            const char* reason = ERR_reason_error_string(static_cast<unsigned long>(ec.value()));
            if (reason != nullptr)
                message = std::string(what) + ": " + reason;
        }
        if (ec != net::ssl::error::stream_truncated)
            return make_error(ErrorKind::tls, message);
    }
    return make_error(ErrorKind::connection, message);
}

int int_of(const json::value* v) {
    if (v == nullptr)
        return 0;
    if (v->is_int64())
        return static_cast<int>(v->get_int64());
    if (v->is_uint64())
        return static_cast<int>(v->get_uint64());
    return 0;
}

Error error_from_response(int status, std::string_view body) {
    Error e;
    e.http_status = status;
    switch (status) {
    case 401:
        e.kind = ErrorKind::auth;
        break;
    case 404:
        e.kind = ErrorKind::not_found;
        break;
    case 409:
        e.kind = ErrorKind::conflict;
        break;
    default:
        e.kind = status >= 400 ? ErrorKind::http : ErrorKind::protocol;
    }
    error_code ec;
    json::value v = json::parse(body, ec);
    if (ec || !v.is_object()) {
        e.message = std::string(body.substr(0, 512));
        return e;
    }
    const json::object& o = v.get_object();
    e.response_code = int_of(o.if_contains("responseCode"));
    if (const auto* m = o.if_contains("message"); m != nullptr && m->is_string())
        e.message = std::string(m->get_string());
    if (const auto* err = o.if_contains("error"); err != nullptr && err->is_object()) {
        const auto& eo = err->get_object();
        if (const auto* c = eo.if_contains("code"); c != nullptr && c->is_string())
            e.code = std::string(c->get_string());
        if (const auto* m = eo.if_contains("message"); m != nullptr && m->is_string())
            e.message = std::string(m->get_string());
    }
    if (e.response_code == 100 && e.message.empty())
        e.message = "handle not found";
    if (e.response_code == 101 && e.message.empty())
        e.message = "handle already exists";
    return e;
}

} // namespace detail

// ---- Client -------------------------------------------------------------------------------------

namespace {

/// Percent-encodes a handle for the path: everything but unreserved characters and '/' (the
/// server decodes exactly once, so "%" in a suffix must travel as %25).
std::string encode_path(std::string_view s, bool keep_slash = true) {
    static constexpr char hex[] = "0123456789ABCDEF";
    std::string out;
    for (char ch : s) {
        const auto c = static_cast<unsigned char>(ch);
        if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~' ||
            (keep_slash && c == '/')) {
            out += ch;
        } else {
            out += '%';
            out += hex[c >> 4];
            out += hex[c & 15];
        }
    }
    return out;
}

Status handle_check(std::string_view handle) {
    if (handle.empty() || handle.find('/') == std::string_view::npos)
        return make_error(ErrorKind::invalid_argument,
                          "a handle is prefix/suffix, got \"" + std::string(handle) + "\"");
    return {};
}

Result<PutOutcome> put_outcome(const Result<HttpResponse>& r) {
    if (!r)
        return r.error();
    return r->status == 201 ? PutOutcome::created : PutOutcome::replaced;
}

Result<std::string> body_of(Result<HttpResponse> r) {
    if (!r)
        return r.error();
    return std::move(r->body);
}

Status status_of(const Result<HttpResponse>& r) {
    if (!r)
        return r.error();
    return {};
}

} // namespace

Result<Client> Client::create(const ClientOptions& options) {
    auto endpoint = parse_url(options.url);
    if (!endpoint)
        return endpoint.error();
    if (options.max_connections < 1)
        return make_error(ErrorKind::invalid_argument, "max_connections must be at least 1");
    if (options.connect_timeout.count() <= 0 || options.request_timeout.count() <= 0)
        return make_error(ErrorKind::invalid_argument, "timeouts must be positive");
    if (options.api_key.empty() && !options.username.empty() && options.password.empty())
        return make_error(ErrorKind::invalid_argument, "username given without a password");
    auto impl = std::make_shared<Impl>(options);
    impl->endpoint = std::move(endpoint).value();
    error_code ec;
    if (options.insecure_skip_verify) {
        impl->tls.set_verify_mode(ssl::verify_none);
    } else {
        impl->tls.set_verify_mode(ssl::verify_peer);
        if (!options.ca_file.empty()) {
            if (!std::ifstream(options.ca_file))
                return make_error(ErrorKind::invalid_argument,
                                  "cannot read ca_file " + options.ca_file);
            impl->tls.load_verify_file(options.ca_file, ec);
            if (ec)
                return make_error(ErrorKind::invalid_argument,
                                  "ca_file " + options.ca_file + ": " + ec.message());
        } else {
            impl->tls.set_default_verify_paths(ec);
        }
    }
    impl->pool.emplace(impl->tls, impl->endpoint, options.max_connections);
    return Client(std::move(impl));
}

Client::Client(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}
Client::Client(const Client&) = default;
Client& Client::operator=(const Client&) = default;
Client::Client(Client&&) noexcept = default;
Client& Client::operator=(Client&&) noexcept = default;
Client::~Client() = default;

std::string Client::auth_method() const {
    return impl_->auth_method();
}

Result<Record> Client::resolve(std::string_view handle, const ResolveFilter& filter) const {
    if (auto st = handle_check(handle); !st)
        return st.error();
    Call call;
    call.target = "/api/handles/" + encode_path(handle);
    char sep = '?';
    for (const auto& t : filter.types) {
        call.target += sep + std::string("type=") + encode_path(t, false);
        sep = '&';
    }
    for (auto i : filter.indices) {
        call.target += sep + std::string("index=") + std::to_string(i);
        sep = '&';
    }
    call.idempotent = true;
    auto r = impl_->execute_ok(call);
    if (!r)
        return r.error();
    auto rec = Record::from_json(r->body, handle);
    if (!rec) {
        Error e = rec.error();
        e.kind = ErrorKind::protocol;
        return e;
    }
    rec->handle = std::string(handle);
    return rec;
}

Result<std::vector<Record>> Client::resolve_many(const std::vector<std::string>& handles) const {
    constexpr std::size_t kMaxPerRequest = 1000; // docs/api.md#batch-resolve
    std::vector<Record> out(handles.size());
    // Positions still to ask for. The node answers a handle it was asked twice in one request
    // once ({"sameAs": i}, copied here), and records past the size limit of one answer RC 3
    // "ask again": those are asked for again as long as each round answers something.
    std::vector<std::size_t> todo(handles.size());
    for (std::size_t i = 0; i < todo.size(); ++i)
        todo[i] = i;
    while (!todo.empty()) {
        std::vector<std::size_t> again;
        bool progress = false;
        for (std::size_t start = 0; start < todo.size(); start += kMaxPerRequest) {
            const std::size_t end = std::min(todo.size(), start + kMaxPerRequest);
            json::array body;
            for (std::size_t i = start; i < end; ++i)
                body.emplace_back(handles[todo[i]]);
            Call call;
            call.method = http::verb::post;
            call.target = "/api/v1/resolve";
            call.body = json::serialize(body);
            call.idempotent = true;
            auto r = impl_->execute_ok(call);
            if (!r)
                return r.error();
            error_code ec;
            json::value v = json::parse(r->body, ec);
            if (ec || !v.is_array() || v.get_array().size() != end - start)
                return make_error(ErrorKind::protocol,
                                  "resolve answer is not an array of " +
                                      std::to_string(end - start) + " records",
                                  r->status);
            const json::array& entries = v.get_array();
            for (std::size_t i = 0; i < end - start; ++i) {
                const std::size_t at = todo[start + i];
                const auto* o = entries[i].if_object();
                if (const auto* same = o ? o->if_contains("sameAs") : nullptr) {
                    const auto* n = same->if_int64();
                    if (n == nullptr || *n < 0 || static_cast<std::size_t>(*n) >= i)
                        return make_error(ErrorKind::protocol, "bad \"sameAs\" in resolve answer",
                                          r->status);
                    out[at] = out[todo[start + static_cast<std::size_t>(*n)]];
                    out[at].handle = handles[at];
                } else {
                    auto rec = record_from(entries[i], handles[at]);
                    if (!rec)
                        return make_error(ErrorKind::protocol, rec.error().message, r->status);
                    out[at] = std::move(rec).value();
                }
                if (out[at].response_code == 3)
                    again.push_back(at);
                else
                    progress = true;
            }
        }
        if (!progress) // the node is busy, not just full: report RC 3 as it came
            break;
        todo = std::move(again);
    }
    return out;
}

namespace {
Call put_call(const Record& record, bool overwrite) {
    Call call;
    call.method = http::verb::put;
    call.target = "/api/handles/" + encode_path(record.handle);
    if (!overwrite)
        call.target += "?overwrite=false";
    call.body = json::serialize(record_json(record, false));
    call.idempotent = overwrite; // a create retried after success would report a conflict
    return call;
}
} // namespace

Result<PutOutcome> Client::create(const Record& record) const {
    if (auto st = handle_check(record.handle); !st)
        return st.error();
    return put_outcome(impl_->execute_ok(put_call(record, false)));
}

Result<PutOutcome> Client::replace(const Record& record) const {
    if (auto st = handle_check(record.handle); !st)
        return st.error();
    return put_outcome(impl_->execute_ok(put_call(record, true)));
}

Result<PutOutcome> Client::upsert(const Record& record) const {
    return replace(record);
}

Status Client::remove(std::string_view handle) const {
    if (auto st = handle_check(handle); !st)
        return st;
    Call call;
    call.method = http::verb::delete_;
    call.target = "/api/handles/" + encode_path(handle);
    return status_of(impl_->execute_ok(call));
}

Status Client::set_values(std::string_view handle, const std::vector<Value>& values) const {
    if (auto st = handle_check(handle); !st)
        return st;
    if (values.empty())
        return make_error(ErrorKind::invalid_argument, "set_values needs at least one value");
    Record r;
    r.handle = std::string(handle);
    r.values = values;
    Call call = put_call(r, true);
    for (std::size_t i = 0; i < values.size(); ++i)
        call.target += (i == 0 ? "?index=" : "&index=") + std::to_string(values[i].index);
    return status_of(impl_->execute_ok(call));
}

Status Client::remove_values(std::string_view handle,
                             const std::vector<std::int32_t>& indices) const {
    if (auto st = handle_check(handle); !st)
        return st;
    if (indices.empty())
        return make_error(ErrorKind::invalid_argument, "remove_values needs at least one index");
    Call call;
    call.method = http::verb::delete_;
    call.target = "/api/handles/" + encode_path(handle);
    for (std::size_t i = 0; i < indices.size(); ++i)
        call.target += (i == 0 ? "?index=" : "&index=") + std::to_string(indices[i]);
    call.idempotent = true; // removing absent values again changes nothing
    return status_of(impl_->execute_ok(call));
}

Result<std::string> Client::list_handles(std::string_view prefix, std::uint64_t page,
                                         std::uint64_t page_size) const {
    Call call;
    call.target = "/api/handles?prefix=" + encode_path(prefix, false) +
                  "&page=" + std::to_string(page) + "&pageSize=" + std::to_string(page_size);
    call.idempotent = true;
    return body_of(impl_->execute_ok(call));
}

Result<std::string> Client::list_handles_cursor(std::string_view prefix, std::string_view cursor,
                                                std::uint64_t page_size) const {
    Call call;
    call.target = "/api/handles?prefix=" + encode_path(prefix, false) +
                  "&pageSize=" + std::to_string(page_size);
    if (!cursor.empty())
        call.target += "&cursor=" + encode_path(cursor, false);
    call.idempotent = true;
    return body_of(impl_->execute_ok(call));
}

namespace {
Call get(std::string target) {
    Call c;
    c.target = std::move(target);
    c.idempotent = true;
    return c;
}
Call with_body(http::verb m, std::string target, std::string_view body, bool idempotent) {
    Call c;
    c.method = m;
    c.target = std::move(target);
    c.body = std::string(body);
    c.idempotent = idempotent;
    return c;
}
/// The admin state switches: POST `object`/`action` without a body (idempotent: the node answers
/// the same when the state is already there).
Call post_action(std::string object, std::string_view action) {
    return with_body(http::verb::post, std::move(object) + "/" + std::string(action), {}, true);
}
/// The node wants the current password before a caller that authenticated by login token
/// mints a lasting credential for itself (a key, a password): the client adds it when it logs
/// in with a password as `username` (the node ignores it when it is not needed).
void add_current_password(const ClientOptions& o, std::string_view username, json::object& body) {
    if (o.api_key.empty() && !o.password.empty() && o.username == username)
        body["current_password"] = o.password;
}
} // namespace

Result<std::string> Client::allocate_prefix(std::string_view request_json) const {
    return body_of(
        impl_->execute_ok(with_body(http::verb::post, "/api/v1/prefixes", request_json, false)));
}
Result<std::string> Client::list_prefixes() const {
    return body_of(impl_->execute_ok(get("/api/v1/prefixes")));
}
Result<std::string> Client::get_prefix(std::string_view prefix) const {
    return body_of(impl_->execute_ok(get("/api/v1/prefixes/" + encode_path(prefix, false))));
}
Status Client::suspend_prefix(std::string_view prefix) const {
    return status_of(impl_->execute_ok(
        post_action("/api/v1/prefixes/" + encode_path(prefix, false), "suspend")));
}
Status Client::resume_prefix(std::string_view prefix) const {
    return status_of(
        impl_->execute_ok(post_action("/api/v1/prefixes/" + encode_path(prefix, false), "resume")));
}
Result<std::string> Client::set_prefix_route(std::string_view prefix,
                                             std::string_view route_json) const {
    return body_of(impl_->execute_ok(
        with_body(http::verb::put, "/api/v1/prefixes/" + encode_path(prefix, false) + "/route",
                  route_json, true)));
}
Result<std::string> Client::get_prefix_route(std::string_view prefix) const {
    return body_of(
        impl_->execute_ok(get("/api/v1/prefixes/" + encode_path(prefix, false) + "/route")));
}
Status Client::clear_prefix_route(std::string_view prefix) const {
    return status_of(impl_->execute_ok(
        with_body(http::verb::delete_, "/api/v1/prefixes/" + encode_path(prefix, false) + "/route",
                  {}, false)));
}
Result<std::string> Client::create_account(std::string_view request_json) const {
    return body_of(
        impl_->execute_ok(with_body(http::verb::post, "/api/v1/accounts", request_json, false)));
}
Result<std::string> Client::list_accounts() const {
    return body_of(impl_->execute_ok(get("/api/v1/accounts")));
}
Status Client::set_password(std::string_view username, std::string_view password) const {
    json::object body{{"password", password}};
    add_current_password(impl_->options, username, body);
    return status_of(impl_->execute_ok(
        with_body(http::verb::put, "/api/v1/accounts/" + encode_path(username, false) + "/password",
                  json::serialize(body), true)));
}
Status Client::disable_account(std::string_view username) const {
    return status_of(impl_->execute_ok(
        post_action("/api/v1/accounts/" + encode_path(username, false), "disable")));
}
Status Client::enable_account(std::string_view username) const {
    return status_of(impl_->execute_ok(
        post_action("/api/v1/accounts/" + encode_path(username, false), "enable")));
}
Status Client::delete_account(std::string_view username) const {
    return status_of(impl_->execute_ok(with_body(
        http::verb::delete_, "/api/v1/accounts/" + encode_path(username, false), {}, false)));
}
Result<ApiKey> Client::create_key(std::string_view username) const {
    json::object body;
    add_current_password(impl_->options, username, body);
    auto r = impl_->execute_ok(
        with_body(http::verb::post, "/api/v1/accounts/" + encode_path(username, false) + "/keys",
                  body.empty() ? std::string() : json::serialize(body), false));
    if (!r)
        return r.error();
    error_code ec;
    json::value v = json::parse(r->body, ec);
    const json::object* o = ec ? nullptr : v.if_object();
    const json::value* id = o ? o->if_contains("key_id") : nullptr;
    const json::value* key = o ? o->if_contains("key") : nullptr;
    if (id == nullptr || key == nullptr || !id->is_string() || !key->is_string())
        return make_error(ErrorKind::protocol, "key answer without key_id and key", r->status);
    return ApiKey{std::string(id->get_string()), std::string(key->get_string())};
}
Status Client::revoke_key(std::string_view username, std::string_view key_id) const {
    return status_of(impl_->execute_ok(with_body(
        http::verb::delete_,
        "/api/v1/accounts/" + encode_path(username, false) + "/keys/" + encode_path(key_id, false),
        {}, false)));
}
Result<std::string> Client::add_identity(std::string_view username,
                                         std::string_view request_json) const {
    error_code ec;
    json::value body = json::parse(request_json, ec);
    if (ec || !body.is_object())
        return make_error(ErrorKind::invalid_argument,
                          "the identity request must be a JSON object");
    add_current_password(impl_->options, username, body.get_object());
    return body_of(impl_->execute_ok(with_body(
        http::verb::post, "/api/v1/accounts/" + encode_path(username, false) + "/identities",
        json::serialize(body), false)));
}
Result<std::string> Client::list_identities(std::string_view username) const {
    return body_of(
        impl_->execute_ok(get("/api/v1/accounts/" + encode_path(username, false) + "/identities")));
}
Status Client::remove_identity(std::string_view username, std::string_view handle,
                               std::int32_t index) const {
    // The handle goes as one percent-encoded segment (its '/' too): the node splits the
    // identity at the last '/', before the index.
    return status_of(impl_->execute_ok(
        with_body(http::verb::delete_,
                  "/api/v1/accounts/" + encode_path(username, false) + "/identities/" +
                      encode_path(handle, false) + "/" + std::to_string(index),
                  {}, false)));
}
Result<std::string> Client::list_templates() const {
    return body_of(impl_->execute_ok(get("/api/v1/templates")));
}
Result<std::string> Client::get_template(std::string_view prefix, std::string_view version) const {
    return body_of(impl_->execute_ok(get("/api/v1/templates/" + encode_path(prefix, false) + "/" +
                                         encode_path(version, false))));
}
Result<std::string> Client::create_template(std::string_view template_json) const {
    return body_of(
        impl_->execute_ok(with_body(http::verb::post, "/api/v1/templates", template_json, false)));
}
Result<std::string> Client::update_template(std::string_view prefix, std::string_view version,
                                            std::string_view template_json) const {
    return body_of(impl_->execute_ok(with_body(http::verb::put,
                                               "/api/v1/templates/" + encode_path(prefix, false) +
                                                   "/" + encode_path(version, false),
                                               template_json, true)));
}
Status Client::delete_template(std::string_view prefix, std::string_view version) const {
    return status_of(impl_->execute_ok(with_body(http::verb::delete_,
                                                 "/api/v1/templates/" + encode_path(prefix, false) +
                                                     "/" + encode_path(version, false),
                                                 {}, false)));
}
Result<std::string> Client::stats() const {
    return body_of(impl_->execute_ok(get("/api/v1/stats")));
}

Result<HttpResponse> Client::request(std::string_view method, std::string_view target,
                                     std::string_view body, bool idempotent) const {
    const http::verb verb = http::string_to_verb(method);
    if (verb == http::verb::unknown)
        return make_error(ErrorKind::invalid_argument,
                          "unknown HTTP method " + std::string(method));
    if (target.empty() || target.front() != '/')
        return make_error(ErrorKind::invalid_argument, "target must start with '/'");
    Call call;
    call.method = verb;
    call.target = std::string(target);
    call.body = std::string(body);
    call.idempotent = idempotent;
    return impl_->execute(call);
}

} // namespace idnode::sdk
