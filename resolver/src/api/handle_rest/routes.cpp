#include "api/families.hpp"

#include "api/handle_rest/codes.hpp"
#include "api/html/html_pages.hpp"
#include "api/html/page_routes.hpp"
#include "codec.hpp"
#include "idnode/node/clock.hpp"
#include "idnode/node/policy.hpp"
#include "idnode/node/records.hpp"
#include "idnode/node/resolution.hpp"
#include "idnode/resolver/prefix_records.hpp"

#include <boost/json.hpp>

#include <algorithm>

namespace idnode::resolver::api::handle_rest {
namespace json = boost::json;
namespace rc = handle::rc;
using namespace registry;
using node::Principal;

namespace {

std::string pretty(const json::value& v, int indent = 0) {
    const std::string pad(static_cast<std::size_t>(indent + 2), ' '),
        end_pad(static_cast<std::size_t>(indent), ' ');
    if (const auto* o = v.if_object()) {
        if (o->empty())
            return "{}";
        std::string s = "{\n";
        bool first = true;
        for (const auto& [k, val] : *o) {
            s += (first ? "" : ",\n") + pad + json::serialize(json::string(k)) + ": " +
                 pretty(val, indent + 2);
            first = false;
        }
        return s + "\n" + end_pad + "}";
    }
    if (const auto* a = v.if_array()) {
        if (a->empty())
            return "[]";
        std::string s = "[\n";
        for (std::size_t i = 0; i < a->size(); ++i) {
            s += (i ? ",\n" : "") + pad + pretty((*a)[i], indent + 2);
        }
        return s + "\n" + end_pad + "]";
    }
    return json::serialize(v);
}

std::string uuid4() {
    std::string hex = random_hex(16);
    hex[12] = '4';
    hex[16] = "89ab"[static_cast<unsigned char>(hex[16]) % 4];
    return hex.substr(0, 8) + "-" + hex.substr(8, 4) + "-" + hex.substr(12, 4) + "-" +
           hex.substr(16, 4) + "-" + hex.substr(20);
}

} // namespace

class HandleRestRoutes final : public RouteFamily {
public:
    HandleRestRoutes(ApiContext& api, resolver::html::PageRoutes& pages)
        : RouteFamily(api), pages_(pages) {}

    void register_routes(Router& router) override;

private:
    /// The handle named by the route's {handle...} parameter, percent-decoded once.
    /// `for_read`: a resolution, which also serves the prefix handles 0.NA/<p> of prefixes homed
    /// here and takes a bare prefix "88.118.8" for its prefix handle (prefix_records.hpp).
    std::optional<Response> path_handle(const Request& req, const RequestContext& ctx,
                                        std::optional<Handle>& out,
                                        std::string suffix_to_append = {}, bool for_read = false) {
        auto decoded = percent_decode(ctx.param("handle"));
        if (!decoded) {
            return handle_error(req, rc::kInvalidHandle, ctx.param("handle"),
                                "malformed percent-encoding in the handle");
        }
        *decoded += suffix_to_append;
        if (for_read) {
            *decoded = with_prefix_handle(*decoded);
        }
        auto parsed = parse_handle(*decoded, api_.options.handle_limits);
        if (!parsed) {
            return handle_error(req, rc::kInvalidHandle, *decoded, parsed.error().message);
        }
        const bool served =
            for_read ? serves(api_.homing, *parsed) : api_.homing.homes(parsed->prefix_key());
        if (!served) {
            return handle_error(req, rc::kServerNotResponsible, *decoded,
                                not_homed_message(parsed->prefix()));
        }
        out = std::move(parsed).value();
        return std::nullopt;
    }

    /// The path's handle and the caller, who must be allowed to write it (node::write_refusal);
    /// otherwise the response to send.
    std::optional<Response> writer_of(const Request& req, RequestContext& ctx,
                                      std::optional<Handle>& h, Principal& who,
                                      std::string suffix = {}) {
        if (auto r = path_handle(req, ctx, h, std::move(suffix)))
            return r;
        if (auto r = authenticate(api_, req, ctx, who, ApiFamily::handle))
            return r;
        if (auto refusal = node::write_refusal(api_.registry.snapshot(), who, *h))
            return handle_refusal(req, *refusal, h->spelling());
        return std::nullopt;
    }

    Response get_handle(const Request& req, RequestContext& ctx) {
        if (resolver::html::wants_html(req[http::field::accept]))
            return pages_.html_resolution(req, ctx, false);
        std::optional<Handle> h;
        if (auto r = path_handle(req, ctx, h, {}, true))
            return *r;
        Principal who;
        if (auto r = authenticate(api_, req, ctx, who, ApiFamily::handle))
            return *r;
        auto query = parse_query(req.target());
        if (!query)
            return handle_error(req, rc::kInvalidValue, h->spelling(), "malformed query string");
        const Query q{std::move(*query)};
        ValueFilter filter;
        filter.types = q.all("type");
        for (const auto& i : q.all("index")) {
            std::uint64_t n;
            if (!parse_uint(i, n) || n == 0 || n > INT32_MAX) {
                return handle_error(req, rc::kInvalidValue, h->spelling(),
                                    "index must be a positive integer");
            }
            filter.indices.push_back(static_cast<std::int32_t>(n));
        }
        auto snapshot = api_.registry.snapshot();
        const bool include_private = node::may_read_private(snapshot, who, h->prefix_key());
        const bool want_pretty = q.has("pretty");
        json::array values;  // only for ?pretty
        std::string compact; // the usual case: serialized straight from the stored record
        auto st =
            visit_served(snapshot, api_.homing, api_.site, *h,
                         static_cast<std::uint32_t>(node::unix_now()), [&](const RecordView& view) {
                             if (!want_pretty) {
                                 compact.reserve(96 + view.bytes().size() * 2);
                                 compact += "{\"responseCode\":1,\"handle\":";
                                 append_json_string(compact, h->spelling());
                                 compact += ",\"values\":[";
                             }
                             bool first = true;
                             for (const ValueView& v : view) {
                                 if (filter.selects(v.index, v.type) &&
                                     (include_private || v.permissions.public_read())) {
                                     if (want_pretty) {
                                         json::object o;
                                         value_to_json(o, v);
                                         values.push_back(std::move(o));
                                     } else {
                                         if (!first)
                                             compact += ',';
                                         first = false;
                                         append_value_json(compact, v);
                                     }
                                 }
                             }
                             if (!want_pretty)
                                 compact += "]}";
                         });
        api_.resolutions.count(*h, static_cast<bool>(st));
        if (!st) {
            const auto m = wire_code(st.code());
            return handle_json(req, m.rc, h->spelling(),
                               st.code() == Errc::not_found ? "" : st.error().message, m.status);
        }
        if (!want_pretty)
            return json_response(req, http::status::ok, std::move(compact));
        json::object body{{"responseCode", rc::kSuccess},
                          {"handle", h->spelling()},
                          {"values", std::move(values)}};
        return json_response(req, http::status::ok, pretty(body));
    }

    void put_handle(Request&& req, Responder responder) {
        RequestContext& ctx = responder.context();
        auto query = parse_query(req.target());
        if (!query)
            return responder.send(
                handle_error(req, rc::kInvalidValue, {}, "malformed query string"));
        const Query q{std::move(*query)};
        const bool mint = q.flag("mintNewSuffix", false);
        std::optional<Handle> h;
        Principal who;
        if (auto r = writer_of(req, ctx, h, who, mint ? uuid4() : std::string{}))
            return responder.send(*r);

        auto body = parse_json_body(req.body());
        if (!body)
            return responder.send(
                handle_error(req, rc::kInvalidValue, h->spelling(), body.error().message));
        auto values = record_values_from_json(*body);
        if (!values)
            return responder.send(
                handle_error(req, rc::kInvalidValue, h->spelling(), values.error().message));
        const auto indices = q.all("index");
        // The one shared step (node/records.hpp): template lookup, validation, TEMPLATE value,
        // non-public template items.
        auto prepared = node::prepare_record(api_.registry.snapshot(), *h, std::nullopt,
                                             std::move(*values), !indices.empty());
        if (!prepared.ok()) {
            const auto m = wire_code(prepared.error->code);
            return responder.send(
                handle_json(req, m.rc == rc::kHandleNotFound ? rc::kInvalidValue : m.rc,
                            h->spelling(), prepared.message(false),
                            m.rc == rc::kHandleNotFound ? http::status::bad_request : m.status));
        }
        values = std::move(prepared.values);
        const bool overwrite = q.flag("overwrite", true);
        WriteOp op;
        if (!indices.empty()) {
            std::vector<HandleValue> selected;
            for (const auto& i : indices) {
                std::uint64_t n;
                if (!parse_uint(i, n) || n == 0 || n > INT32_MAX) {
                    return responder.send(handle_error(req, rc::kInvalidValue, h->spelling(),
                                                       "index must be a positive integer"));
                }
                auto it = std::find_if(values->begin(), values->end(), [&](const HandleValue& v) {
                    return v.index == static_cast<std::int32_t>(n);
                });
                if (it == values->end()) {
                    return responder.send(
                        handle_error(req, rc::kInvalidValue, h->spelling(),
                                     "index " + i + " is named in the query but not in the body"));
                }
                selected.push_back(*it);
            }
            op = SetValues{*h, std::move(selected), true};
        } else {
            op = PutRecord{*h, std::move(*values), overwrite ? PutMode::upsert : PutMode::create};
        }
        const std::string spelling = h->spelling();
        submit_and_respond(
            api_, std::move(op), who.username,
            [req = std::move(req), spelling, overwrite](const OpResult& r) {
                if (r.outcome == registry::Outcome::failed) {
                    const auto m = wire_code(r.error.code);
                    return handle_json(req, m.rc, spelling, r.error.message, m.status);
                }
                if (r.outcome == registry::Outcome::unchanged && !overwrite) {
                    return handle_error(req, rc::kHandleAlreadyExists, spelling,
                                        "handle already exists");
                }
                return handle_json(req, rc::kSuccess, spelling, {},
                                   r.outcome == registry::Outcome::created ? http::status::created
                                                                           : http::status::ok);
            },
            responder);
    }

    void delete_handle(Request&& req, Responder responder) {
        RequestContext& ctx = responder.context();
        std::optional<Handle> h;
        Principal who;
        if (auto r = writer_of(req, ctx, h, who))
            return responder.send(*r);
        auto query = parse_query(req.target());
        if (!query)
            return responder.send(
                handle_error(req, rc::kInvalidValue, h->spelling(), "malformed query string"));
        const Query q{std::move(*query)};
        WriteOp op = DeleteRecord{*h};
        const auto indices = q.all("index");
        if (!indices.empty()) {
            RemoveValues rv{*h, {}};
            for (const auto& i : indices) {
                std::uint64_t n;
                if (!parse_uint(i, n) || n == 0 || n > INT32_MAX) {
                    return responder.send(handle_error(req, rc::kInvalidValue, h->spelling(),
                                                       "index must be a positive integer"));
                }
                rv.indices.push_back(static_cast<std::int32_t>(n));
            }
            op = std::move(rv);
        }
        const std::string spelling = h->spelling();
        submit_and_respond(
            api_, std::move(op), who.username,
            [req = std::move(req), spelling](const OpResult& r) {
                if (r.outcome == registry::Outcome::failed) {
                    const auto m = wire_code(r.error.code);
                    return handle_json(req, m.rc, spelling,
                                       r.error.code == Errc::not_found ? "" : r.error.message,
                                       m.status);
                }
                return handle_json(req, rc::kSuccess, spelling, {}, http::status::ok);
            },
            responder);
    }

    Response list_handles(const Request& req, RequestContext& ctx) {
        Principal who;
        if (auto r = authenticate(api_, req, ctx, who, ApiFamily::handle))
            return *r;
        if (who.anonymous())
            return handle_error(req, rc::kAuthenticationNeeded, {}, "listing needs authentication");
        auto query = parse_query(req.target());
        if (!query)
            return handle_error(req, rc::kInvalidValue, {}, "malformed query string");
        const Query q{std::move(*query)};
        const std::string prefix = q.get("prefix");
        auto folded = parse_prefix(prefix);
        if (!folded)
            return handle_error(req, rc::kInvalidHandle, {}, "prefix: " + folded.error().message);
        if (!api_.homing.homes(*folded))
            return handle_error(req, rc::kServerNotResponsible, {}, not_homed_message(prefix));
        auto snapshot = api_.registry.snapshot();
        if (!node::may_read_private(snapshot, who, *folded)) {
            return handle_error(req, rc::kInvalidAdmin, {},
                                "account " + who.username + " may not list " + prefix);
        }
        std::uint64_t page = 0, page_size = 100;
        if ((q.has("page") && !parse_uint(q.get("page"), page)) ||
            (q.has("pageSize") &&
             (!parse_uint(q.get("pageSize"), page_size) || page_size == 0 || page_size > 10000))) {
            return handle_error(req, rc::kInvalidValue, {},
                                "page must be >= 0 and pageSize 1 to 10000");
        }
        std::string cursor = q.get("cursor");
        if (cursor.empty() &&
            page > 0) { // skip whole pages (the cursor parameter avoids this walk)
            for (std::uint64_t skipped = 0; skipped < page * page_size;) {
                const auto step = std::min<std::uint64_t>(page * page_size - skipped, 10000);
                auto p = snapshot.list(prefix, cursor, step);
                if (!p)
                    return handle_error(req, rc::kInvalidValue, {}, p.error().message);
                skipped += p->handles.size();
                cursor = p->next_cursor;
                if (cursor.empty())
                    break;
            }
        }
        json::array handles;
        std::string next;
        if (page == 0 || !cursor.empty()) {
            auto p = snapshot.list(prefix, cursor, page_size);
            if (!p)
                return handle_error(req, rc::kInvalidValue, {}, p.error().message);
            for (auto& s : p->handles)
                handles.emplace_back(std::move(s));
            next = p->next_cursor;
        }
        json::object body{{"responseCode", rc::kSuccess},
                          {"prefix", prefix},
                          {"totalCount", std::to_string(snapshot.count(*folded))},
                          {"page", page},
                          {"pageSize", page_size},
                          {"handles", std::move(handles)}};
        if (!next.empty())
            body["nextCursor"] = next;
        return json_response(req, http::status::ok, json::serialize(body));
    }

    /// GET /api/prefixes: public, but credentials that are sent must be valid (bad credentials
    /// are a 401 on every route, never a silent downgrade to anonymous).
    Response list_homed(const Request& req, RequestContext& ctx) {
        Principal who;
        if (auto r = authenticate(api_, req, ctx, who, ApiFamily::handle))
            return *r;
        json::array prefixes;
        auto snapshot = api_.registry.snapshot();
        snapshot.for_each_entry(Table::prefixes, [&](const std::string&, const std::string& bytes) {
            if (auto rec = decode_prefix(bytes); rec && rec->status == PrefixStatus::active) {
                prefixes.emplace_back(rec->prefix);
            }
        });
        for (const auto& p : api_.options.homed_prefixes) {
            if (std::none_of(prefixes.begin(), prefixes.end(), [&](const json::value& v) {
                    return equals_folded(v.get_string(), p);
                })) {
                prefixes.emplace_back(p);
            }
        }
        json::object body{{"responseCode", rc::kSuccess},
                          {"totalCount", std::to_string(prefixes.size())},
                          {"prefixes", std::move(prefixes)}};
        return json_response(req, http::status::ok, json::serialize(body));
    }

    /// GET /{handle}: a path that is not a handle homed here is simply an unknown route (the
    /// catch-all must not turn every typo into a Handle error).
    Response proxy(const Request& req, RequestContext& ctx) {
        if (resolver::html::wants_html(req[http::field::accept]))
            return pages_.html_resolution(req, ctx, true);
        std::optional<Handle> h;
        if (path_handle(req, ctx, h)) {
            ctx.route = "unmatched";
            return refusal_response(req, Refusal::unknown_route, "unknown route");
        }
        std::string location;
        json::array values;
        std::string html_rows;
        auto st = node::visit_resolvable(api_.registry.snapshot(), *h, [&](const RecordView& view) {
            for (const ValueView& v : view) {
                if (!v.permissions.public_read())
                    continue;
                if (location.empty() && equals_folded(v.type, "URL") &&
                    resolver::html::redirect_target_ok(v.data))
                    location.assign(v.data);
                json::object o;
                value_to_json(o, v);
                values.push_back(std::move(o));
            }
        });
        api_.resolutions.count(*h, static_cast<bool>(st));
        if (!st) {
            const auto m = wire_code(st.code());
            return handle_json(req, m.rc, h->spelling(), {}, m.status);
        }
        auto query = parse_query(req.target());
        const bool noredirect = query && Query{*query}.has("noredirect");
        if (!location.empty() && !noredirect)
            return redirect_to(req, location);
        json::object body{{"responseCode", rc::kSuccess},
                          {"handle", h->spelling()},
                          {"values", std::move(values)}};
        return json_response(req, http::status::ok, json::serialize(body));
    }

    resolver::html::PageRoutes& pages_;
};

void HandleRestRoutes::register_routes(Router& router) {
    using V = http::verb;
    HandleRestRoutes* self = this;
    auto sync = [self](auto fn) { return bind_sync(self, fn); };
    auto async = [self](auto fn) { return bind_async(self, fn); };
    router.add(V::get, "/api/handles/{handle...}", sync(&HandleRestRoutes::get_handle));
    router.add_async(V::put, "/api/handles/{handle...}", async(&HandleRestRoutes::put_handle));
    router.add_async(V::delete_, "/api/handles/{handle...}",
                     async(&HandleRestRoutes::delete_handle));
    router.add(V::get, "/api/handles", sync(&HandleRestRoutes::list_handles));
    router.add(V::get, "/api/prefixes", sync(&HandleRestRoutes::list_homed));
    router.add(V::get, "/{handle...}", sync(&HandleRestRoutes::proxy));
}

std::unique_ptr<RouteFamily> make_routes(ApiContext& api, resolver::html::PageRoutes& pages) {
    return std::make_unique<HandleRestRoutes>(api, pages);
}

} // namespace idnode::resolver::api::handle_rest
