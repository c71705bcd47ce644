// /api/v1/prefixes/{prefix}/route: where an enterprise prefix's identifiers live when the
// enterprise runs its own node (企业节点). Parse → node (policy.hpp route_access_refusal,
// routes.hpp route_refusal) → render; docs/api.md#enterprise-node-routes.
//
//   PUT     {"servers":[{"address","tcp","udp","https","public_key"}]} or {"service_handle"}
//           -> 200 the route as stored (addresses in canonical form)
//   GET     -> 200 the route and this node's own Handle site (for the enterprise node to
//           configure itself); 404 not_routed when there is none
//   DELETE  -> 204; 404 not_routed when there was none
//
// The route is a field of the prefix record: it is written with the record's bytes as read
// (PutEntry::expected), so a route change and a concurrent suspension of the same prefix cannot
// undo each other (the later one answers 409 and writes nothing).
#include "api/families.hpp"

#include "codec.hpp"
#include "idnode/node/handle_public_key.hpp"
#include "idnode/node/policy.hpp"
#include "idnode/node/routes.hpp"

#include <boost/json.hpp>

#include <arpa/inet.h>

namespace idnode::resolver::api::native {
namespace json = boost::json;
using namespace registry;
using node::Principal;

namespace {

/// The most a route body may be, whatever limits.max_body_bytes says: 16 servers with 4096-bit
/// RSA keys take about 13 KiB.
constexpr std::size_t kMaxRouteBodyBytes = 64 * 1024;

json::object route_json(std::string_view prefix, const PrefixRoute& route) {
    json::object o{{"prefix", prefix}};
    if (!route.service_handle.empty()) {
        o["service_handle"] = route.service_handle;
        return o;
    }
    json::array servers;
    for (const auto& s : route.servers) {
        json::object server{{"address", s.address},
                            {"tcp", s.tcp_port},
                            {"udp", s.udp_port},
                            {"https", s.https_port}};
        if (!s.public_key_pem.empty())
            server["public_key"] = s.public_key_pem;
        servers.push_back(std::move(server));
    }
    o["servers"] = std::move(servers);
    return o;
}

std::string site_address_text(const handle::SiteAddress& a) {
    char text[INET6_ADDRSTRLEN] = {};
    const bool v4 = std::all_of(a.begin(), a.begin() + 12, [](std::uint8_t b) { return b == 0; });
    inet_ntop(v4 ? AF_INET : AF_INET6, a.data() + (v4 ? 12 : 0), text, sizeof text);
    return text;
}

/// This node's Handle site as it publishes it in HS_SITE, in the shape of a route's servers.
json::object site_json(const handle::SiteInfo& site) {
    json::array servers;
    for (const auto& s : site.servers) {
        json::object server{{"address", site_address_text(s.address)}};
        std::uint32_t tcp = 0, udp = 0, https = 0;
        for (const auto& i : s.interfaces) {
            (i.transport == handle::Transport::tcp   ? tcp
             : i.transport == handle::Transport::udp ? udp
                                                     : https) = i.port;
        }
        server["tcp"] = tcp;
        server["udp"] = udp;
        server["https"] = https;
        if (!s.public_key.empty()) {
            if (auto pem = node::pem_from_hs_public_key(s.public_key))
                server["public_key"] = *pem;
        }
        servers.push_back(std::move(server));
    }
    return json::object{{"serial", site.serial}, {"servers", std::move(servers)}};
}

/// One port field: absent = 0, else an integer 0 to 65535.
std::optional<std::string> port_field(const json::object& o, const char* name, std::uint16_t& out) {
    const auto* v = o.if_contains(name);
    if (v == nullptr)
        return std::nullopt;
    const auto* n = v->if_int64();
    if (n == nullptr || *n < 0 || *n > 65535)
        return std::string(name) + " must be a port number, 0 to 65535";
    out = static_cast<std::uint16_t>(*n);
    return std::nullopt;
}

std::optional<std::string> server_from_json(const json::value& v, PrefixRouteServer& out) {
    const auto* o = v.if_object();
    if (o == nullptr)
        return std::string("must be an object");
    for (const auto& [key, value] : *o) {
        if (key != "address" && key != "tcp" && key != "udp" && key != "https" &&
            key != "public_key")
            return "unknown field \"" + std::string(key) + "\"";
    }
    const auto* address = o->if_contains("address");
    if (address == nullptr || !address->is_string())
        return std::string("address (a string) is required");
    out.address = std::string(address->get_string());
    for (auto [name, port] : {std::pair{"tcp", &out.tcp_port}, std::pair{"udp", &out.udp_port},
                              std::pair{"https", &out.https_port}}) {
        if (auto why = port_field(*o, name, *port))
            return why;
    }
    if (const auto* key = o->if_contains("public_key")) {
        if (!key->is_string())
            return std::string("public_key must be a string (a PEM)");
        out.public_key_pem = std::string(key->get_string());
    }
    return std::nullopt;
}

/// The route a PUT body asks for, or why the body is not one (the node checks the values).
std::optional<std::string> route_from_json(const json::object& o, PrefixRoute& out) {
    for (const auto& [key, value] : o) {
        if (key != "servers" && key != "service_handle")
            return "unknown field \"" + std::string(key) + "\"; give \"servers\" or " +
                   "\"service_handle\"";
    }
    const auto* servers = o.if_contains("servers");
    const auto* service = o.if_contains("service_handle");
    if ((servers == nullptr) == (service == nullptr))
        return std::string("give exactly one of \"servers\" and \"service_handle\"");
    if (service != nullptr) {
        if (!service->is_string() || service->get_string().empty())
            return std::string("service_handle must be a non-empty string");
        out.service_handle = std::string(service->get_string());
        return std::nullopt;
    }
    const auto* list = servers->if_array();
    if (list == nullptr || list->empty() || list->size() > kMaxRouteServers)
        return "servers must be an array of 1 to " + std::to_string(kMaxRouteServers) + " servers";
    out.servers.resize(list->size());
    for (std::size_t i = 0; i < list->size(); ++i) {
        if (auto why = server_from_json((*list)[i], out.servers[i]))
            return "servers[" + std::to_string(i) + "]: " + *why;
    }
    return std::nullopt;
}

Response no_content(const Request& req) {
    Response res{http::status::no_content, req.version()};
    res.keep_alive(req.keep_alive());
    res.prepare_payload();
    return res;
}

} // namespace

class PrefixRouteRoutes final : public RouteFamily {
    using RouteFamily::RouteFamily;
    void register_routes(Router& router) override;

    /// What every handler starts from: the caller, allowed `access` to the {prefix}'s route,
    /// and the prefix record as read (with its bytes, for the compare-and-set write).
    struct Target {
        Principal who;
        std::string folded;
        std::string bytes;
        PrefixRecord record;
    };

    std::optional<Response> target(const Request& req, RequestContext& ctx, node::Access access,
                                   Target& t) {
        if (auto r = authenticate(api_, req, ctx, t.who, ApiFamily::native))
            return r;
        auto decoded = percent_decode(ctx.param("prefix"));
        auto folded = decoded ? parse_prefix(*decoded)
                              : Result<std::string>(Error{Errc::invalid_value, "bad escape"});
        if (!folded)
            return error_response(req, http::status::bad_request, "invalid_prefix",
                                  folded.error().message);
        t.folded = std::move(folded).value();
        auto snapshot = api_.registry.snapshot();
        if (auto refusal = node::route_access_refusal(snapshot, t.who, t.folded, *decoded, access))
            return native_refusal(req, *refusal);
        // route_access_refusal found and decoded the record in this very snapshot.
        t.bytes = *snapshot.get_entry(Table::prefixes, t.folded);
        t.record = decode_prefix(t.bytes).value();
        return std::nullopt;
    }

    Response not_routed(const Request& req, const PrefixRecord& record) {
        return error_response(req, http::status::not_found, "not_routed",
                              "prefix " + record.prefix +
                                  " is not routed: its identifiers live on this node");
    }

    Response get_route(const Request& req, RequestContext& ctx) {
        Target t;
        if (auto r = target(req, ctx, node::Access::read, t))
            return *r;
        if (!t.record.route)
            return not_routed(req, t.record);
        auto o = route_json(t.record.prefix, *t.record.route);
        o["site"] = site_json(api_.site);
        return json_response(req, http::status::ok, json::serialize(o));
    }

    void put_route(Request&& req, Responder responder) {
        Target t;
        if (auto r = target(req, responder.context(), node::Access::write, t))
            return responder.send(*r);
        if (req.body().size() > kMaxRouteBodyBytes)
            return responder.send(refusal_response(
                req, Refusal::body_too_large,
                "a route body is at most " + std::to_string(kMaxRouteBodyBytes) + " bytes"));
        auto body = object_body(req);
        if (!body.ok())
            return responder.send(std::move(body.refusal));
        PrefixRoute route;
        auto why = route_from_json(body.value.get_object(), route);
        if (!why)
            why = node::route_refusal(route, t.folded);
        if (why)
            return responder.send(
                error_response(req, http::status::bad_request, "invalid_value", echo_safe(*why)));
        PrefixRecord updated = t.record;
        updated.route = std::move(route);
        write(std::move(req), std::move(responder), t, updated, [updated](const Request& r) {
            return json_response(r, http::status::ok,
                                 json::serialize(route_json(updated.prefix, *updated.route)));
        });
    }

    void delete_route(Request&& req, Responder responder) {
        Target t;
        if (auto r = target(req, responder.context(), node::Access::write, t))
            return responder.send(*r);
        if (!t.record.route)
            return responder.send(not_routed(req, t.record));
        PrefixRecord updated = t.record;
        updated.route.reset();
        write(std::move(req), std::move(responder), t, updated, no_content);
    }

    /// Stores `updated` over the record as `t` read it; `ok` renders the success.
    void write(Request&& req, Responder responder, const Target& t, const PrefixRecord& updated,
               std::function<Response(const Request&)> ok) {
        PutEntry put{Table::prefixes, t.folded, encode_prefix(updated), PutMode::replace};
        put.expected = t.bytes;
        submit_and_respond(
            api_, std::move(put), t.who.username,
            [req = std::move(req), ok = std::move(ok)](const OpResult& r) {
                if (!r.ok())
                    return native_error(req, r.error.code, r.error.message);
                return ok(req);
            },
            std::move(responder));
    }
};

void PrefixRouteRoutes::register_routes(Router& router) {
    using V = http::verb;
    PrefixRouteRoutes* self = this;
    const std::string path = "/api/v1/prefixes/{prefix}/route";
    router.add(V::get, path, bind_sync(self, &PrefixRouteRoutes::get_route));
    router.add_async(V::put, path, bind_async(self, &PrefixRouteRoutes::put_route));
    router.add_async(V::delete_, path, bind_async(self, &PrefixRouteRoutes::delete_route));
}

std::unique_ptr<RouteFamily> make_prefix_route_routes(ApiContext& api) {
    return std::make_unique<PrefixRouteRoutes>(api);
}

} // namespace idnode::resolver::api::native
