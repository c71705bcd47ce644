// Routes (服务寻址) below the network: the prefix record's route encoding (records of older
// builds still decode; corrupt bytes are refused), the node's validation of a route (every
// refusal), the lookups the resolver uses (route_of, routed_owner), the write policy's
// routed_elsewhere and who may manage a route, and the compare-and-set write of the record.
#include "idnode/node/policy.hpp"
#include "idnode/node/routes.hpp"
#include "store_helpers.hpp"
#include "test_keys.hpp"

#include <doctest/doctest.h>

#include <future>

using namespace idnode;
using namespace idnode::test;

namespace {

std::string unhex(std::string_view hex) {
    std::string out;
    for (std::size_t i = 0; i + 1 < hex.size(); i += 2)
        out.push_back(static_cast<char>(std::stoi(std::string(hex.substr(i, 2)), nullptr, 16)));
    return out;
}

PrefixRecord enterprise(std::string prefix) {
    PrefixRecord p;
    p.prefix = std::move(prefix);
    p.enterprise = EnterpriseInfo{"Iron Co", "91110000100000000A", "C3120", "ops"};
    p.created = kT0;
    return p;
}

PrefixRoute two_servers() {
    PrefixRoute r;
    r.servers.push_back({"192.0.2.10", 2641, 2641, 8443, "-----BEGIN PUBLIC KEY-----\n..."});
    r.servers.push_back({"2001:db8::1", 0, 2642, 0, ""});
    return r;
}

PrefixRoute service(std::string handle) {
    PrefixRoute r;
    r.service_handle = std::move(handle);
    return r;
}

BatchResult submit(Registry& reg, WriteOp op) {
    WriteBatch batch;
    batch.account = "test";
    batch.ops.push_back(std::move(op));
    std::promise<BatchResult> done;
    reg.submit(std::move(batch), [&](BatchResult r) { done.set_value(std::move(r)); });
    return done.get_future().get();
}

void put_prefix(Registry& reg, const PrefixRecord& p) {
    const auto r = submit(reg, PutEntry{Table::prefixes, fold_case(p.prefix), encode_prefix(p)});
    REQUIRE_MESSAGE(r.front().ok(), describe(r.front()));
}

node::Principal principal(std::string name, std::optional<Role> role,
                          std::vector<std::string> prefixes = {}) {
    return node::Principal{std::move(name), role, std::move(prefixes), node::Credential::password};
}

} // namespace

// ---- the stored route ----------------------------------------------------------------------

TEST_CASE("prefix records of older builds decode without a route and are written the same") {
    // Enterprise prefix 88.118.8 of "宝钢" as the build before routes wrote it (format 1):
    // kind 2, status 1, created 1700000000, prefix, name, credit code, industry, contact.
    const std::string old = unhex("01"
                                  "02"
                                  "01"
                                  "000000006553f100"
                                  "00000008"
                                  "38382e3131382e38"
                                  "00000006"
                                  "e5ae9de992a2"
                                  "00000002"
                                  "3931"
                                  "00000005"
                                  "4333313230"
                                  "00000000");
    auto p = decode_prefix(old);
    REQUIRE(p.ok());
    CHECK(p->prefix == "88.118.8");
    CHECK(p->enterprise.name == "宝钢");
    CHECK(p->created == 1700000000);
    CHECK_FALSE(p->route.has_value());
    CHECK(encode_prefix(*p) == old); // an older build still reads an unrouted prefix
}

TEST_CASE("routes round-trip in format 2 and go away again") {
    for (const PrefixRoute& route : {two_servers(), service("0.NA/88.118.9.SERV")}) {
        PrefixRecord p = enterprise("88.118.9");
        const std::string plain = encode_prefix(p);
        p.route = route;
        const std::string routed = encode_prefix(p);
        CHECK(routed[0] == '\x02');
        CHECK(routed.substr(1, plain.size() - 1) == plain.substr(1));
        auto back = decode_prefix(routed);
        REQUIRE(back.ok());
        REQUIRE(back->route.has_value());
        CHECK(*back->route == route);
        CHECK(back->prefix == "88.118.9");
        back->route.reset();
        CHECK(encode_prefix(*back) == plain);
        // Every truncation is refused.
        for (std::size_t n = 0; n < routed.size(); ++n) {
            CAPTURE(n);
            CHECK(decode_prefix(std::string_view(routed).substr(0, n)).code() == Errc::corrupt);
        }
    }
}

TEST_CASE("corrupt routes are refused") {
    PrefixRecord p = enterprise("88.118.9");
    const std::string plain = encode_prefix(p);
    const std::string body = plain.substr(1);
    auto routed = [&](std::string route_hex) {
        return std::string("\x02", 1) + body + unhex(route_hex);
    };
    const std::string server = "00000007" // "1.2.3.4"
                               "312e322e332e34"
                               "0a51"
                               "0a51"
                               "0000"
                               "00000000";
    // The well-formed one first, so that each refusal below is about its one change.
    REQUIRE(decode_prefix(routed("01"
                                 "00000001" +
                                 server))
                .ok());
    REQUIRE(decode_prefix(routed("02"
                                 "00000001"
                                 "58"))
                .ok());
    std::string seventeen;
    for (int i = 0; i < 17; ++i)
        seventeen += server;
    for (const auto& [what, bytes] : std::vector<std::pair<const char*, std::string>>{
             {"format 3", std::string("\x03", 1) + body +
                              unhex("0200000001"
                                    "58")},
             {"format 2 without a route", routed("")},
             {"format 1 with a route", std::string("\x01", 1) + body +
                                           unhex("0200000001"
                                                 "58")},
             {"unknown route kind", routed("03"
                                           "00000001"
                                           "58")},
             {"no servers", routed("01"
                                   "00000000")},
             {"17 servers", routed("01"
                                   "00000011" +
                                   seventeen)},
             {"empty address", routed("01"
                                      "00000001"
                                      "00000000"
                                      "0a51"
                                      "0a51"
                                      "0000"
                                      "00000000")},
             {"neither tcp nor udp", routed("01"
                                            "00000001"
                                            "00000007"
                                            "312e322e332e34"
                                            "0000"
                                            "0000"
                                            "20fb"
                                            "00000000")},
             {"empty service handle", routed("02"
                                             "00000000")},
             {"trailing bytes", routed("02"
                                       "00000001"
                                       "58"
                                       "00")},
             {"trailing bytes after servers", routed("01"
                                                     "00000001" +
                                                     server + "00")},
         }) {
        CAPTURE(what);
        auto decoded = decode_prefix(bytes);
        REQUIRE_FALSE(decoded.ok());
        CHECK(decoded.code() == Errc::corrupt);
    }
}

// ---- validation ----------------------------------------------------------------------------

TEST_CASE("route validation: accepted routes are normalised") {
    PrefixRoute r = two_servers();
    r.servers[0].public_key_pem = make_key("RSA", 2048).public_pem;
    r.servers[1].address = "2001:0DB8:0:0:0:0:0:0001";
    r.servers.push_back({"::ffff:192.0.2.1", 2641, 0, 0, make_key("SM2").public_pem});
    CHECK_FALSE(node::route_refusal(r, "88.118.9"));
    CHECK(r.servers[1].address == "2001:db8::1");
    CHECK(r.servers[2].address == "::ffff:192.0.2.1");

    PrefixRoute sixteen;
    sixteen.servers.assign(kMaxRouteServers, {"192.0.2.10", 2641, 0, 0, ""});
    CHECK_FALSE(node::route_refusal(sixteen, "88.118.9"));

    for (const char* handle : {"0.NA/88.118.9.SERV", "0.NA/88.118", "88.118.8/SERVICE",
                               "0.NA/88.118.90", "88.118.90/X"}) {
        CAPTURE(handle);
        auto s = service(handle);
        CHECK_FALSE(node::route_refusal(s, "88.118.9"));
    }
}

TEST_CASE("route validation: every refusal names its problem") {
    const std::string rsa1024 = make_key("RSA", 1024).public_pem;
    const auto rsa = make_key("RSA", 2048);
    const std::string p256 = make_key("EC", 0, "P-256").public_pem;
    auto with_server = [](PrefixRouteServer s) {
        PrefixRoute r;
        r.servers.push_back(std::move(s));
        return r;
    };
    PrefixRoute both = two_servers();
    both.service_handle = "0.NA/88.118.9.SERV";
    PrefixRoute seventeen;
    seventeen.servers.assign(kMaxRouteServers + 1, {"192.0.2.10", 2641, 0, 0, ""});
    PrefixRoute second_bad = two_servers();
    second_bad.servers[0].public_key_pem.clear();
    second_bad.servers[1].address = "example.com";

    const std::vector<std::pair<PrefixRoute, std::string>> cases = {
        {PrefixRoute{}, "give either"},
        {both, "give either"},
        {seventeen, "at most 16 servers"},
        {second_bad, "servers[1]: address \"example.com\" is not an IPv4 or IPv6"},
        {with_server({"192.0.2", 2641, 0, 0, ""}), "not an IPv4 or IPv6"},
        {with_server({"192.0.2.1:2641", 2641, 0, 0, ""}), "not an IPv4 or IPv6"},
        {with_server({std::string("192.0.2.1\0x", 11), 2641, 0, 0, ""}), "not an IPv4 or IPv6"},
        {with_server({"0.0.0.0", 2641, 0, 0, ""}), "unspecified"},
        {with_server({"::", 2641, 0, 0, ""}), "unspecified"},
        {with_server({"192.0.2.1", 0, 0, 8443, ""}), "tcp or a udp port"},
        {with_server({"192.0.2.1", 2641, 0, 0, "not a key"}), "BEGIN PUBLIC KEY"},
        {with_server({"192.0.2.1", 2641, 0, 0, rsa.private_pem}), "private key"},
        {with_server({"192.0.2.1", 2641, 0, 0, rsa1024}), "at least 2048"},
        {with_server({"192.0.2.1", 2641, 0, 0, p256}), "only the SM2 curve"},
        {service("no-slash"), "service_handle:"},
        {service("0.NA/88.118.9"), "only through the route itself"},
        {service("0.na/88.118.9"), "only through the route itself"},
        {service("88.118.9/SERV"), "only through the route itself"},
        {service("88.118.9.1/SERV"), "only through the route itself"},
    };
    for (auto [route, expected] : cases) {
        CAPTURE(expected);
        const auto why = node::route_refusal(route, "88.118.9");
        REQUIRE(why.has_value());
        CHECK(why->find(expected) != std::string::npos);
    }
}

TEST_CASE("route_target and the refusal name the enterprise node") {
    CHECK(node::route_target(two_servers()) == "192.0.2.10:2641");
    PrefixRoute v6 = two_servers();
    std::swap(v6.servers[0], v6.servers[1]);
    CHECK(node::route_target(v6) == "[2001:db8::1]:2642"); // no TCP port: the UDP one
    CHECK(node::route_target(service("0.NA/88.118.9.SERV")) == "service handle 0.NA/88.118.9.SERV");
    const auto refusal = node::routed_elsewhere("88.118.9", two_servers());
    CHECK(refusal.outcome == node::Outcome::routed_elsewhere);
    CHECK(refusal.code() == "routed_elsewhere");
    CHECK(refusal.message.find("192.0.2.10:2641") != std::string::npos);
    CHECK(refusal.message_zh.find("192.0.2.10:2641") != std::string::npos);
}

// ---- over a registry -----------------------------------------------------------------------

namespace {

/// 88.118 (node), 88.118.9 (iron's, routed), 88.118.9.5 (allocated below it, not routed),
/// 88.118.8 (steel's), 88.118.7 (suspended and routed), 88.118.6 (a corrupt record).
struct RoutedNode {
    TempDir dir;
    std::unique_ptr<Registry> reg = Registry::open(options_in(dir));

    RoutedNode() {
        PrefixRecord node_prefix = enterprise("88.118");
        node_prefix.kind = PrefixKind::node;
        node_prefix.enterprise = {};
        put_prefix(*reg, node_prefix);
        PrefixRecord iron = enterprise("88.118.9");
        iron.route = two_servers();
        put_prefix(*reg, iron);
        put_prefix(*reg, enterprise("88.118.9.5"));
        put_prefix(*reg, enterprise("88.118.8"));
        PrefixRecord closed = enterprise("88.118.7");
        closed.status = PrefixStatus::suspended;
        closed.route = service("0.NA/88.118.7.SERV");
        put_prefix(*reg, closed);
        REQUIRE(submit(*reg, PutEntry{Table::prefixes, "88.118.6", "not a prefix record"})
                    .front()
                    .ok());
    }
};

} // namespace

TEST_CASE("route_of and routed_owner: what the resolver reads") {
    RoutedNode n;
    const auto snapshot = n.reg->snapshot();
    CHECK(node::route_of(snapshot, "88.118.9") == two_servers());
    CHECK_FALSE(node::route_of(snapshot, "88.118.9.5")); // below, not routed itself
    CHECK_FALSE(node::route_of(snapshot, "88.118.8"));
    CHECK_FALSE(node::route_of(snapshot, "88.118.99")); // not a prefix
    CHECK_FALSE(node::route_of(snapshot, "88.118.6"));  // corrupt

    auto owner = node::routed_owner(snapshot, "88.118.9.77");
    REQUIRE(owner.has_value());
    CHECK(owner->prefix == "88.118.9");
    CHECK(owner->route == two_servers());
    CHECK(node::routed_owner(snapshot, "88.118.9")->prefix == "88.118.9");
    CHECK_FALSE(node::routed_owner(snapshot, "88.118.9.5"));
    CHECK_FALSE(node::routed_owner(snapshot, "88.118.9.5.1"));
    CHECK_FALSE(node::routed_owner(snapshot, "88.118.8"));
    CHECK_FALSE(node::routed_owner(snapshot, "86.1"));
}

TEST_CASE("write policy: identifiers under a routed prefix are routed_elsewhere") {
    RoutedNode n;
    const auto admin = principal("root", Role::admin);
    const auto iron = principal("iron", Role::enterprise, {"88.118.9"});
    const auto steel = principal("steel", Role::enterprise, {"88.118.8"});
    const auto anonymous = principal("", std::nullopt);
    const auto snapshot = n.reg->snapshot();
    auto write = [&](const node::Principal& who, std::string_view h) {
        return node::write_refusal(snapshot, who, handle(h));
    };
    for (const auto* who : {&admin, &iron}) {
        CAPTURE(who->username);
        auto refusal = write(*who, "88.118.9/SN-1");
        REQUIRE(refusal.has_value());
        CHECK(refusal->outcome == node::Outcome::routed_elsewhere);
        CHECK(refusal->message.find("192.0.2.10:2641") != std::string::npos);
        // Not allocated itself, below the routed prefix: the enterprise node holds it.
        refusal = write(*who, "88.118.9.77/SN-1");
        REQUIRE(refusal.has_value());
        CHECK(refusal->outcome == node::Outcome::routed_elsewhere);
        CHECK(refusal->message.find("prefix 88.118.9 ") != std::string::npos);
    }
    // Who may not write at all hears that first.
    CHECK(write(steel, "88.118.9/SN-1")->outcome == node::Outcome::forbidden);
    CHECK(write(anonymous, "88.118.9/SN-1")->outcome == node::Outcome::unauthorized);
    // A prefix allocated below a routed one is held here.
    CHECK_FALSE(write(admin, "88.118.9.5/SN-1"));
    CHECK(write(admin, "88.118.9.5.1/SN-1")->reason == "prefix_not_allocated");
    // Suspended and routed: the suspension speaks.
    CHECK(write(admin, "88.118.7/SN-1")->reason == "prefix_suspended");
    // Unrouted prefixes as before.
    CHECK_FALSE(write(steel, "88.118.8/SN-1"));
    CHECK(write(admin, "88.118.99/SN-1")->reason == "prefix_not_allocated");
    // Templates of a routed prefix stay manageable.
    CHECK_FALSE(node::access_refusal(snapshot, iron, "88.118.9", "88.118.9",
                                     node::Subject::templates, node::Access::write));
}

TEST_CASE("route access: an admin or the enterprise owning the prefix") {
    RoutedNode n;
    const auto snapshot = n.reg->snapshot();
    const auto admin = principal("root", Role::admin);
    const auto iron = principal("iron", Role::enterprise, {"88.118.9"});
    const auto closed_owner = principal("closed", Role::enterprise, {"88.118.7"});
    const auto steel = principal("steel", Role::enterprise, {"88.118.8"});
    const auto reader = principal("auditor", Role::reader, {"88.118.9"});
    const auto anonymous = principal("", std::nullopt);
    using A = node::Access;
    auto check = [&](const node::Principal& who, std::string_view prefix, A access) {
        return node::route_access_refusal(snapshot, who, prefix, prefix, access);
    };
    for (A access : {A::read, A::write}) {
        CAPTURE(static_cast<int>(access));
        CHECK_FALSE(check(admin, "88.118.9", access));
        CHECK_FALSE(check(iron, "88.118.9", access));
        CHECK_FALSE(check(admin, "88.118.8", access)); // unrouted: may set one
        CHECK(check(steel, "88.118.9", access)->outcome == node::Outcome::forbidden);
        CHECK(check(reader, "88.118.9", access)->outcome == node::Outcome::forbidden);
        // Owning the parent is not owning the prefix.
        CHECK(check(iron, "88.118.9.5", access)->outcome == node::Outcome::forbidden);
        CHECK(check(anonymous, "88.118.9", access)->outcome == node::Outcome::unauthorized);
        CHECK(check(admin, "88.118.99", access)->outcome == node::Outcome::not_found);
        CHECK(check(admin, "88.118.6", access)->reason == "corrupt");
        CHECK_FALSE(check(admin, "88.118.7", access)); // suspended: the operator still may
    }
    CHECK_FALSE(check(admin, "88.118", A::read));
    const auto node_prefix = check(admin, "88.118", A::write);
    REQUIRE(node_prefix.has_value());
    CHECK(node_prefix->outcome == node::Outcome::invalid);
    CHECK(node_prefix->reason == "node_prefix");
    CHECK_FALSE(check(closed_owner, "88.118.7", A::read));
    CHECK(check(closed_owner, "88.118.7", A::write)->reason == "prefix_suspended");
}

TEST_CASE("PutEntry::expected: a read-modify-write never undoes a concurrent change") {
    RoutedNode n;
    const std::string read = *n.reg->snapshot().get_entry(Table::prefixes, "88.118.8");
    PrefixRecord suspended = *decode_prefix(read);
    suspended.status = PrefixStatus::suspended;
    PrefixRecord routed = *decode_prefix(read);
    routed.route = two_servers();

    // The suspension commits first; the route, made from the same read, is refused.
    PutEntry first{Table::prefixes, "88.118.8", encode_prefix(suspended), PutMode::replace};
    first.expected = read;
    REQUIRE(submit(*n.reg, first).front().ok());
    PutEntry second{Table::prefixes, "88.118.8", encode_prefix(routed), PutMode::replace};
    second.expected = read;
    const auto refused = submit(*n.reg, second).front();
    CHECK(refused.error.code == Errc::already_exists);
    CHECK(refused.error.message.find("changed concurrently") != std::string::npos);
    auto stored = n.reg->snapshot().prefix_record("88.118.8");
    REQUIRE(stored.ok());
    CHECK(stored->status == PrefixStatus::suspended);
    CHECK_FALSE(stored->route);

    // Writing what is stored is unchanged whatever was expected; an absent entry is refused.
    CHECK(submit(*n.reg, first).front().outcome == registry::Outcome::unchanged);
    PutEntry absent{Table::prefixes, "88.118.55", encode_prefix(routed), PutMode::upsert};
    absent.expected = read;
    CHECK(submit(*n.reg, absent).front().error.code == Errc::already_exists);
    CHECK_FALSE(n.reg->snapshot().get_entry(Table::prefixes, "88.118.55"));
}

TEST_CASE("a route travels in the change log and in a backup") {
    RoutedNode n;
    std::optional<PrefixRoute> logged;
    for (const auto& change : n.reg->snapshot().changes(0, 1000)) {
        if (change.kind == ChangeKind::prefix && change.key == "88.118.9")
            logged = decode_prefix(change.value)->route;
    }
    CHECK(logged == two_servers());

    TempDir out;
    REQUIRE(n.reg->backup(out.path() / "copy").ok());
    auto copy_options = options_in(out);
    copy_options.data_dir = out.path() / "copy";
    copy_options.mode = OpenMode::read_only;
    auto copy = Registry::open(copy_options);
    CHECK(node::route_of(copy->snapshot(), "88.118.9") == two_servers());
    // The copy verifies, but for the corrupt record of 88.118.6 the fixture wrote on purpose.
    CHECK(copy->verify().problems.size() == 1);
}
