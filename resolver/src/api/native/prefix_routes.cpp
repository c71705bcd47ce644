#include "api/families.hpp"

#include "codec.hpp"

#include <boost/json.hpp>

namespace idnode::resolver::api::native {
namespace json = boost::json;
using namespace registry;
using node::Principal;

namespace {

json::object prefix_json(const PrefixRecord& p) {
    json::object o{{"prefix", p.prefix},
                   {"kind", p.kind == PrefixKind::node ? "node" : "enterprise"},
                   {"status", p.status == PrefixStatus::active ? "active" : "suspended"},
                   {"created", iso8601(static_cast<std::uint32_t>(p.created))},
                   {"routed", p.route.has_value()}}; // the route: GET .../route
    if (p.kind == PrefixKind::enterprise) {
        o["enterprise"] = json::object{{"name", p.enterprise.name},
                                       {"credit_code", p.enterprise.credit_code},
                                       {"industry", p.enterprise.industry},
                                       {"contact", p.enterprise.contact}};
    }
    return o;
}

} // namespace

class PrefixRoutes final : public RouteFamily {
    using RouteFamily::RouteFamily;
    void register_routes(Router& router) override;

    void create_prefix(Request&& req, Responder responder) {
        Principal who;
        json::value body;
        if (auto r = admin_request(api_, req, responder.context(), who, body))
            return responder.send(*r);
        const json::object& o = body.get_object();
        const auto* ent = o.if_contains("enterprise");
        if (ent == nullptr || !ent->is_object()) {
            return responder.send(error_response(req, http::status::bad_request, "invalid_value",
                                                 "\"enterprise\" object is required"));
        }
        auto field = [&](const char* name) -> std::string {
            const auto* v = ent->get_object().if_contains(name);
            return v && v->is_string() ? std::string(v->get_string()) : std::string();
        };
        node::AllocationRequest request;
        request.enterprise = EnterpriseInfo{field("name"), field("credit_code"), field("industry"),
                                            field("contact")};
        request.account = who.username;
        request.now = node::unix_now();
        if (const auto* p = o.if_contains("prefix")) {
            if (!p->is_string())
                return responder.send(error_response(req, http::status::bad_request,
                                                     "invalid_value", "prefix must be a string"));
            request.prefix = std::string(p->get_string());
        } else if (const auto* par = o.if_contains("parent"); par && par->is_string()) {
            request.parent = std::string(par->get_string());
        } else {
            return responder.send(error_response(req, http::status::bad_request, "invalid_value",
                                                 "give \"prefix\" or \"parent\""));
        }
        api_.allocator.allocate(
            std::move(request), [req = std::move(req), responder](node::Allocation a) {
                if (a.outcome != node::Outcome::created) {
                    return responder.send(
                        error_response(req, native_status(a.outcome), a.reason, a.message));
                }
                responder.send(json_response(req, http::status::created,
                                             json::serialize(prefix_json(a.record))));
            });
    }

    Response list_prefixes(const Request& req, RequestContext& ctx) {
        Principal who;
        if (auto r = require_admin(api_, req, ctx, who))
            return *r;
        json::array out;
        auto snapshot = api_.registry.snapshot();
        snapshot.for_each_entry(Table::prefixes,
                                [&](const std::string& key, const std::string& bytes) {
                                    if (auto rec = decode_prefix(bytes)) {
                                        auto o = prefix_json(*rec);
                                        o["identifiers"] = snapshot.count(key);
                                        out.push_back(std::move(o));
                                    }
                                });
        return json_response(req, http::status::ok,
                             json::serialize(json::object{{"prefixes", std::move(out)}}));
    }

    Response get_prefix(const Request& req, RequestContext& ctx) {
        Principal who;
        if (auto r = require_admin(api_, req, ctx, who))
            return *r;
        auto decoded = percent_decode(ctx.param("prefix"));
        auto folded = decoded ? parse_prefix(*decoded)
                              : Result<std::string>(Error{Errc::invalid_value, "bad escape"});
        if (!folded)
            return error_response(req, http::status::bad_request, "invalid_prefix",
                                  folded.error().message);
        auto snapshot = api_.registry.snapshot();
        auto bytes = snapshot.get_entry(Table::prefixes, *folded);
        if (!bytes)
            return error_response(req, http::status::not_found, "not_found",
                                  "prefix " + *decoded + " is not allocated");
        auto rec = decode_prefix(*bytes);
        if (!rec)
            return native_error(req, rec.code(), rec.error().message);
        auto o = prefix_json(*rec);
        o["identifiers"] = snapshot.count(*folded);
        return json_response(req, http::status::ok, json::serialize(o));
    }

    void set_prefix_status(Request&& req, Responder responder, PrefixStatus status) {
        Principal who;
        RequestContext& ctx = responder.context();
        if (auto r = require_admin(api_, req, ctx, who))
            return responder.send(*r);
        auto decoded = percent_decode(ctx.param("prefix"));
        auto folded = decoded ? parse_prefix(*decoded)
                              : Result<std::string>(Error{Errc::invalid_value, "bad escape"});
        if (!folded)
            return responder.send(error_response(req, http::status::bad_request, "invalid_prefix",
                                                 folded.error().message));
        auto bytes = api_.registry.snapshot().get_entry(Table::prefixes, *folded);
        if (!bytes)
            return responder.send(error_response(req, http::status::not_found, "not_found",
                                                 "prefix is not allocated"));
        auto rec = decode_prefix(*bytes);
        if (!rec)
            return responder.send(native_error(req, rec.code(), rec.error().message));
        if (rec->kind != PrefixKind::enterprise) {
            return responder.send(error_response(req, http::status::bad_request, "invalid_prefix",
                                                 "node prefixes cannot be suspended"));
        }
        rec->status = status;
        const PrefixRecord updated = *rec;
        // Over the record as read: a concurrent route change must not be undone (nor undo this).
        PutEntry put{Table::prefixes, *folded, encode_prefix(updated), PutMode::replace};
        put.expected = std::move(*bytes);
        submit_and_respond(
            api_, std::move(put), who.username,
            [req = std::move(req), updated](const OpResult& r) {
                if (!r.ok())
                    return native_error(req, r.error.code, r.error.message);
                return json_response(req, http::status::ok, json::serialize(prefix_json(updated)));
            },
            responder);
    }
};

void PrefixRoutes::register_routes(Router& router) {
    using V = http::verb;
    PrefixRoutes* self = this;
    router.add_async(V::post, "/api/v1/prefixes", bind_async(self, &PrefixRoutes::create_prefix));
    router.add(V::get, "/api/v1/prefixes", bind_sync(self, &PrefixRoutes::list_prefixes));
    router.add(V::get, "/api/v1/prefixes/{prefix}", bind_sync(self, &PrefixRoutes::get_prefix));
    router.add_async(
        V::post, "/api/v1/prefixes/{prefix}/suspend", [self](Request&& req, Responder r) {
            self->set_prefix_status(std::move(req), std::move(r), PrefixStatus::suspended);
        });
    router.add_async(
        V::post, "/api/v1/prefixes/{prefix}/resume", [self](Request&& req, Responder r) {
            self->set_prefix_status(std::move(req), std::move(r), PrefixStatus::active);
        });
}

std::unique_ptr<RouteFamily> make_prefix_routes(ApiContext& api) {
    return std::make_unique<PrefixRoutes>(api);
}

} // namespace idnode::resolver::api::native
