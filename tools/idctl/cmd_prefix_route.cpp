// `idctl prefix route set|show|clear`: the enterprise node (企业节点) a prefix is routed to
// (docs/api.md#enterprise-node-routes, idctl(1)).
//
//   set PREFIX --server ADDR[,tcp=P][,udp=P][,https=P][,key=PEM_FILE]…   (1 to 16 servers)
//   set PREFIX --service-handle H
//   show PREFIX       the route and this node's own site (what the enterprise node configures)
//   clear PREFIX      the identifiers live here again
// A --server without tcp= and udp= gets the Handle protocol's port 2641 for both.
#include "online_commands.hpp"

#include <boost/json.hpp>

#include <charconv>
#include <fstream>
#include <iostream>
#include <sstream>

namespace idnode::idctl {

namespace json = boost::json;

namespace {

constexpr std::int64_t kHandlePort = 2641;

/// One --server flag as the node wants it, or why it is not one.
std::optional<std::string> server_from_flag(const std::string& flag, json::object& out) {
    std::vector<std::string> parts;
    std::stringstream in(flag);
    for (std::string part; std::getline(in, part, ',');)
        parts.push_back(part);
    if (parts.empty() || parts.front().empty())
        return "--server " + flag + ": the address comes first";
    out["address"] = parts.front();
    for (std::size_t i = 1; i < parts.size(); ++i) {
        const std::string& part = parts[i];
        const auto eq = part.find('=');
        const std::string name = part.substr(0, eq);
        const std::string value = eq == std::string::npos ? std::string() : part.substr(eq + 1);
        if (eq == std::string::npos || value.empty() ||
            out.contains(name == "key" ? "public_key" : name))
            return "--server " + flag + ": \"" + part + "\" is not one tcp=, udp=, https= or key=";
        if (name == "key") {
            std::ifstream file(value, std::ios::binary);
            if (!file)
                return "cannot read " + value;
            std::stringstream pem;
            pem << file.rdbuf();
            out["public_key"] = pem.str();
            continue;
        }
        if (name != "tcp" && name != "udp" && name != "https")
            return "--server " + flag + ": \"" + name + "\" is not one of tcp, udp, https, key";
        std::int64_t port = 0;
        const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), port);
        if (ec != std::errc{} || end != value.data() + value.size() || port < 0 || port > 65535)
            return "--server " + flag + ": " + name + " must be a port, 0 to 65535";
        out[name] = port;
    }
    if (!out.contains("tcp") && !out.contains("udp")) {
        out["tcp"] = kHandlePort;
        out["udp"] = kHandlePort;
    }
    return std::nullopt;
}

const std::vector<std::string> kServerHeaders = {"address", "tcp", "udp", "https", "public_key"};

std::vector<std::string> server_row(const json::value& v) {
    const auto& o = v.as_object();
    return {field(o, "address"), field(o, "tcp"), field(o, "udp"), field(o, "https"),
            o.contains("public_key") ? "yes" : "-"};
}

void print_route(const json::value& v) {
    const auto& o = v.as_object();
    if (const auto* service = o.if_contains("service_handle")) {
        std::cout << field(o, "prefix") << " is routed to service handle " << str(service) << '\n';
    } else {
        std::cout << field(o, "prefix") << " is routed to:\n";
        print_rows(v, "servers", kServerHeaders, server_row);
    }
    if (const auto* site = o.if_contains("site"); site != nullptr && site->is_object()) {
        std::cout << "\nthis node's site (serial " << field(site->get_object(), "serial") << "):\n";
        print_rows(*site, "servers", kServerHeaders, server_row);
    }
}

} // namespace

Command add_route_commands(CLI::App* prefix, const GlobalOptions& global) {
    Group g{prefix->add_subcommand("route", "the enterprise node a prefix is routed to (admin, "
                                            "or the enterprise owning the prefix)"),
            {}};
    g.app->require_subcommand(1);

    struct Set {
        std::string prefix, service_handle;
        std::vector<std::string> servers;
    };
    auto s = std::make_shared<Set>();
    auto* set = g.app->add_subcommand(
        "set", "route a prefix to an enterprise node: its identifiers are then refused here");
    set->add_option("prefix", s->prefix, "the prefix, e.g. 88.118.9")->required();
    auto* server = set->add_option("--server", s->servers,
                                   "a server of the node: ADDR[,tcp=P][,udp=P][,https=P]"
                                   "[,key=PEM_FILE] (repeatable, up to 16; no tcp= nor udp= "
                                   "means both 2641)");
    auto* service = set->add_option("--service-handle", s->service_handle,
                                    "a handle whose HS_SITE values name the node's servers");
    server->excludes(service);
    g.children.push_back({set, [s, &global] {
                              const std::string command = "prefix route set";
                              json::object req;
                              if (!s->service_handle.empty()) {
                                  req["service_handle"] = s->service_handle;
                              } else if (!s->servers.empty()) {
                                  json::array servers;
                                  for (const auto& flag : s->servers) {
                                      json::object one;
                                      if (auto why = server_from_flag(flag, one))
                                          return fail(command, *why, kExitUsage);
                                      servers.push_back(std::move(one));
                                  }
                                  req["servers"] = std::move(servers);
                              } else {
                                  return fail(command,
                                              "give --server (one or more) or --service-handle",
                                              kExitUsage);
                              }
                              return call_and_show(
                                  command, global,
                                  [&](sdk::Client& c) {
                                      return c.set_prefix_route(s->prefix, json::serialize(req));
                                  },
                                  print_route);
                          }});

    auto shown = std::make_shared<std::string>();
    auto* show = g.app->add_subcommand(
        "show",
        "show a prefix's route and this node's own site (to configure the enterprise node)");
    show->add_option("prefix", *shown, "the prefix")->required();
    g.children.push_back({show, [shown, &global] {
                              return call_and_show(
                                  "prefix route show", global,
                                  [&](sdk::Client& c) { return c.get_prefix_route(*shown); },
                                  print_route);
                          }});

    auto cleared = std::make_shared<std::string>();
    auto* clear = g.app->add_subcommand(
        "clear", "remove a prefix's route: its identifiers live on this node again");
    clear->add_option("prefix", *cleared, "the prefix")->required();
    g.children.push_back({clear, [cleared, &global] {
                              return call_and_report(
                                  "prefix route clear", global,
                                  [&](sdk::Client& c) { return c.clear_prefix_route(*cleared); },
                                  json::object{{"prefix", *cleared}, {"routed", false}},
                                  *cleared + " is no longer routed");
                          }});
    return g.command();
}

} // namespace idnode::idctl
