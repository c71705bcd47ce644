// resolutions_today of GET /api/v1/stats against the real binary: every way of resolving a handle
// counts once per resolution, by exact deltas — the Handle protocol over UDP and TCP, the Handle
// REST GET (its compact path), the proxy GET /{handle}, the SNMS detail query and the batch
// resolve. A resolution counts when the handle is valid and homed, found or not; an enterprise
// sees the ones that found records under its own prefixes (docs: stats).
#include "harness.hpp"
#include "json_helpers.hpp"

#include "idnode/resolver/handle_protocol.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <doctest/doctest.h>

using namespace idnode::test;
namespace json = boost::json;
namespace hp = idnode::resolver::handle;
using V = http::verb;

namespace {

fs::path idctl_binary() {
    return IDNODE_IDCTL_BINARY;
}

/// A node homing 88.118 with the enterprise prefix 88.118.8 (account "steel") and one record,
/// 88.118.8/R, that has a public value.
struct StatsNode {
    NodeProcess node{"stats"};
    std::string admin, steel;
    std::unique_ptr<HttpsClient> c;

    StatsNode() {
        const auto init = run_command({idctl_binary().string(), "init", "--data-dir",
                                       (node.dir() / "db").string(), "--node-prefix", "88.118"});
        REQUIRE_MESSAGE(init.exit_code == 0, init.err);
        admin = "Bearer " + std::string(parse_json(init.out).at("admin_key").as_string());
        node.start();
        c = std::make_unique<HttpsClient>(node.https_port(), trust(node.pki().ca_cert));
        c->connect();
        ok(V::post, "/api/v1/prefixes",
           R"({"prefix":"88.118.8","enterprise":{"name":"E","credit_code":"91310000631696382C","industry":"C3120","contact":"ops@example.cn"}})",
           admin, http::status::created);
        ok(V::post, "/api/v1/accounts",
           R"({"username":"steel","role":"enterprise","prefixes":["88.118.8"]})", admin,
           http::status::created);
        const auto key =
            ok(V::post, "/api/v1/accounts/steel/keys", {}, admin, http::status::created);
        steel = "Bearer " + std::string(parse_json(key.body()).at("key").as_string());
        ok(V::put, "/api/handles/88.118.8/R",
           R"({"values":[{"index":1,"type":"URL","data":{"format":"string","value":"https://e.cn/r"}}]})",
           steel, http::status::created);
    }

    Response ok(V method, const std::string& target, std::string body, const std::string& auth,
                http::status expected = http::status::ok) {
        std::vector<std::pair<std::string, std::string>> headers;
        if (!auth.empty())
            headers.emplace_back("Authorization", auth);
        auto r = c->request(method, target, std::move(body), headers);
        REQUIRE_MESSAGE(r.result() == expected, target << ": " << r.body());
        return r;
    }

    /// resolutions_today as `auth` sees it.
    std::int64_t resolutions(const std::string& auth) {
        return parse_json(ok(V::get, "/api/v1/stats", {}, auth).body())
            .at("resolutions_today")
            .as_int64();
    }
};

std::string handle_request(std::uint32_t opcode, const std::string& body, std::uint32_t id) {
    hp::Envelope env;
    env.request_id = id;
    hp::Header header;
    header.opcode = opcode;
    header.op_flags = hp::opflag::kPublicOnly;
    header.body_length = static_cast<std::uint32_t>(body.size());
    std::string out;
    hp::encode_message(out, env, header, body);
    return out;
}

std::string resolution(const std::string& handle, std::uint32_t id) {
    std::string body;
    hp::encode_resolution_request(body, handle, {}, {});
    return handle_request(hp::opcode::kResolution, body, id);
}

/// The response code of the answer to `request` over UDP; 0 without an answer within 2 s.
std::uint32_t udp_rc(std::uint16_t port, const std::string& request) {
    const int fd = ::socket(AF_INET, SOCK_DGRAM, 0);
    REQUIRE(fd >= 0);
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_port = htons(port);
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    timeval tv{2, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::sendto(fd, request.data(), request.size(), 0, reinterpret_cast<sockaddr*>(&to), sizeof to);
    char buf[2048];
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    ::close(fd);
    if (n <= 0)
        return 0;
    auto m = hp::decode_message(std::string_view(buf, static_cast<std::size_t>(n)));
    REQUIRE(m.ok());
    return m->header.response_code;
}

/// One TCP connection to the Handle port; rc() sends a request and reads its answer.
class HandleTcp {
public:
    explicit HandleTcp(std::uint16_t port) : fd_(::socket(AF_INET, SOCK_STREAM, 0)) {
        REQUIRE(fd_ >= 0);
        sockaddr_in to{};
        to.sin_family = AF_INET;
        to.sin_port = htons(port);
        to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        REQUIRE(::connect(fd_, reinterpret_cast<sockaddr*>(&to), sizeof to) == 0);
        timeval tv{3, 0};
        ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    }
    ~HandleTcp() { ::close(fd_); }
    HandleTcp(const HandleTcp&) = delete;
    HandleTcp& operator=(const HandleTcp&) = delete;

    std::uint32_t rc(const std::string& request) {
        REQUIRE(::send(fd_, request.data(), request.size(), MSG_NOSIGNAL) ==
                static_cast<ssize_t>(request.size()));
        std::string buffer;
        while (hp::probe_frame(buffer).state != hp::FrameProbe::State::complete) {
            char chunk[4096];
            const ssize_t got = ::recv(fd_, chunk, sizeof chunk, 0);
            REQUIRE(got > 0);
            buffer.append(chunk, static_cast<std::size_t>(got));
        }
        auto m =
            hp::decode_message(std::string_view(buffer).substr(0, hp::probe_frame(buffer).size));
        REQUIRE(m.ok());
        return m->header.response_code;
    }

private:
    int fd_;
};

} // namespace

TEST_CASE("stats: Handle protocol resolutions over UDP and TCP count in resolutions_today") {
    StatsNode n;
    const std::uint16_t port = n.node.handle_port();
    REQUIRE(port != 0);
    const auto admin_before = n.resolutions(n.admin);
    const auto steel_before = n.resolutions(n.steel);

    // N = 3 over UDP: found twice (any spelling), not found once.
    CHECK(udp_rc(port, resolution("88.118.8/R", 1)) == hp::rc::kSuccess);
    CHECK(udp_rc(port, resolution("88.118.8/r", 2)) == hp::rc::kSuccess);
    CHECK(udp_rc(port, resolution("88.118.8/missing", 3)) == hp::rc::kHandleNotFound);
    // M = 2 over TCP, on one connection: found, not found.
    {
        HandleTcp tcp(port);
        CHECK(tcp.rc(resolution("88.118.8/R", 4)) == hp::rc::kSuccess);
        CHECK(tcp.rc(resolution("88.118.8/missing", 5)) == hp::rc::kHandleNotFound);
        // Not resolutions of this node: a prefix it does not home, an invalid handle, and the
        // site information.
        CHECK(tcp.rc(resolution("77.1/x", 6)) == hp::rc::kServerNotResponsible);
        CHECK(tcp.rc(resolution("88.118.8", 7)) == hp::rc::kInvalidHandle);
        CHECK(tcp.rc(handle_request(hp::opcode::kGetSiteInfo, {}, 8)) == hp::rc::kSuccess);
    }
    CHECK(udp_rc(port, resolution("77.1/x", 9)) == hp::rc::kServerNotResponsible);

    CHECK(n.resolutions(n.admin) - admin_before == 3 + 2);
    // The enterprise sees the three that found its record.
    CHECK(n.resolutions(n.steel) - steel_before == 3);
    CHECK(n.node.stop() == 0);
}

TEST_CASE("stats: the Handle REST GET without ?pretty counts each resolution") {
    StatsNode n;
    const auto before = n.resolutions(n.admin);
    n.ok(V::get, "/api/handles/88.118.8/R", {}, {});
    n.ok(V::get, "/api/handles/88.118.8/R?type=URL", {}, {});
    n.ok(V::get, "/api/handles/88.118.8/missing", {}, {}, http::status::not_found);
    CHECK(n.resolutions(n.admin) - before == 3);
    CHECK(n.resolutions(n.steel) == 2);
    CHECK(n.node.stop() == 0);
}

TEST_CASE("stats: the proxy GET /{handle} counts each resolution") {
    StatsNode n;
    const auto before = n.resolutions(n.admin);
    n.ok(V::get, "/88.118.8/R?noredirect", {}, {});
    n.ok(V::get, "/88.118.8/R", {}, {}, http::status::found);
    CHECK(n.resolutions(n.admin) - before == 2);
    CHECK(n.resolutions(n.steel) == 2);
    CHECK(n.node.stop() == 0);
}

TEST_CASE("stats: the SNMS detail query counts each resolution") {
    StatsNode n;
    const auto before = n.resolutions(n.admin);
    n.ok(V::get, "/identityv2/data/detail?handle=88.118.8/R", {}, {});
    n.ok(V::get, "/identityv2/data/detail?handle=88.118.8/missing", {}, {});
    CHECK(n.resolutions(n.admin) - before == 2);
    CHECK(n.resolutions(n.steel) == 1);
    CHECK(n.node.stop() == 0);
}

TEST_CASE("stats: a batch resolve counts every handle it resolves") {
    StatsNode n;
    const auto before = n.resolutions(n.admin);
    const auto r =
        n.ok(V::post, "/api/v1/resolve", R"(["88.118.8/R","88.118.8/missing","88.118.8/r"])", {});
    const auto answers = parse_json(r.body()).as_array();
    REQUIRE(answers.size() == 3);
    CHECK(answers[0].at("responseCode").as_int64() == 1);
    CHECK(answers[1].at("responseCode").as_int64() == 100);
    CHECK(n.resolutions(n.admin) - before == 3);
    CHECK(n.resolutions(n.steel) == 2);
    CHECK(n.node.stop() == 0);
}
