// The SDK's Handle-protocol administration client (idnode/sdk/handle_admin.hpp) against the real
// idnode binary: identities registered over HTTPS with the SDK's Client, then logins with a
// secret key and an RSA key over the node's Handle TCP port, every write with its read-back over
// HTTPS, and the refusals the node answers with their Handle RCs.
#include "harness.hpp"
#include "json_helpers.hpp"

#include "idnode/sdk/client.hpp"
#include "idnode/sdk/handle_admin.hpp"

#include <doctest/doctest.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <thread>

using namespace idnode::test;
namespace sdk = idnode::sdk;

namespace {

const char* kEnterprise =
    R"("enterprise":{"name":"宝钢","credit_code":"91310000631696382C","industry":"C3120","contact":"ops@example.cn"})";
const char* kSecret = "steel-handle-secret-1";
const char* kIdentity = "88.118.8/ADMIN";

/// A fresh RSA-2048 key pair as PEM (private, public).
std::pair<std::string, std::string> rsa_key_pair() {
    std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key(EVP_RSA_gen(2048), &EVP_PKEY_free);
    REQUIRE(key);
    auto pem_of = [&](bool private_key) {
        std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new(BIO_s_mem()), &BIO_free);
        REQUIRE((private_key ? PEM_write_bio_PrivateKey(bio.get(), key.get(), nullptr, nullptr, 0,
                                                        nullptr, nullptr)
                             : PEM_write_bio_PUBKEY(bio.get(), key.get())) == 1);
        char* data = nullptr;
        const long size = BIO_get_mem_data(bio.get(), &data);
        return std::string(data, static_cast<std::size_t>(size));
    };
    return {pem_of(true), pem_of(false)};
}

std::string json_string(std::string_view s) {
    std::string out = "\"";
    for (const char c : s) {
        if (c == '\n')
            out += "\\n";
        else if (c == '"' || c == '\\')
            out += std::string("\\") + c;
        else
            out += c;
    }
    return out + "\"";
}

const sdk::Value* find(const sdk::Record& r, std::int32_t index) {
    const auto it = std::find_if(r.values.begin(), r.values.end(),
                                 [&](const sdk::Value& v) { return v.index == index; });
    return it == r.values.end() ? nullptr : &*it;
}

/// A node with enterprise prefix 88.118.8 (account "steel") and steel's identities
/// 301:88.118.8/ADMIN (secret key) and 300:88.118.8/ADMIN (RSA public key), registered over
/// HTTPS with the SDK's Client.
struct HandleNode {
    NodeProcess node{"sdk-handle-admin"};
    std::string admin_key;
    std::string private_pem;
    std::optional<sdk::Client> https;

    /// `idle_timeout_s` > 0 makes the node close idle connections after that long.
    explicit HandleNode(int idle_timeout_s = 0) {
        if (idle_timeout_s > 0)
            node.set("limits.idle_timeout_s", std::to_string(idle_timeout_s));
        const auto init = run_command({std::string(IDNODE_IDCTL_BINARY), "init", "--data-dir",
                                       (node.dir() / "db").string(), "--node-prefix", "88.118"});
        REQUIRE_MESSAGE(init.exit_code == 0, init.err);
        admin_key = std::string(parse_json(init.out).at("admin_key").as_string());
        node.start();
        sdk::ClientOptions o;
        o.url = "https://127.0.0.1:" + std::to_string(node.https_port());
        o.ca_file = node.pki().ca_cert.string();
        o.api_key = admin_key;
        o.request_timeout = std::chrono::seconds(10);
        auto c = sdk::Client::create(o);
        REQUIRE_MESSAGE(c.ok(), c.error().to_string());
        https.emplace(std::move(c).value());
        auto prefix =
            https->allocate_prefix(std::string(R"({"prefix":"88.118.8",)") + kEnterprise + "}");
        REQUIRE_MESSAGE(prefix.ok(), prefix.error().to_string());
        REQUIRE(https->create_account(
            R"({"username":"steel","role":"enterprise","prefixes":["88.118.8"]})"));
        auto secret =
            https->add_identity("steel", std::string(R"({"handle":")") + kIdentity +
                                             R"(","index":301,"secret_key":")" + kSecret + "\"}");
        REQUIRE_MESSAGE(secret.ok(), secret.error().to_string());
        auto [priv, pub] = rsa_key_pair();
        private_pem = priv;
        auto rsa = https->add_identity("steel", std::string(R"({"handle":")") + kIdentity +
                                                    R"(","index":300,"public_key":)" +
                                                    json_string(pub) + "}");
        REQUIRE_MESSAGE(rsa.ok(), rsa.error().to_string());
    }

    sdk::HandleAdminClient admin_client() const {
        sdk::HandleAdminOptions o;
        o.host = "127.0.0.1";
        o.port = node.handle_port();
        o.connect_timeout = std::chrono::seconds(3);
        o.request_timeout = std::chrono::seconds(10);
        auto c = sdk::HandleAdminClient::create(o);
        REQUIRE_MESSAGE(c.ok(), c.error().to_string());
        return std::move(c).value();
    }
};

} // namespace

TEST_CASE("secret-key login: create, add, modify, remove values, delete; read back over HTTPS") {
    HandleNode n;
    auto c = n.admin_client();
    CHECK_FALSE(c.logged_in());
    auto login = c.login_identity(kIdentity, 301, sdk::SecretKey{kSecret});
    REQUIRE_MESSAGE(login.ok(), login.error().to_string());
    CHECK(c.logged_in());

    const std::string h = "88.118.8/HA-1";
    sdk::Value price = sdk::Value::text(2001, "price", "4120.50");
    price.permissions = "1100"; // admins only
    price.ttl = 3600;
    sdk::Value blob = sdk::Value::text(2002, "blob", std::string("\0\x01\xff", 3));
    auto st =
        c.create(h, {sdk::Value::text(1, "URL", "https://steel.example.cn/coil/1"), price, blob});
    REQUIRE_MESSAGE(st.ok(), st.error().to_string());

    auto rec = n.https->resolve(h);
    REQUIRE_MESSAGE(rec.ok(), rec.error().to_string());
    REQUIRE(find(*rec, 1) != nullptr);
    CHECK(find(*rec, 1)->data == "https://steel.example.cn/coil/1");
    REQUIRE(find(*rec, 2001) != nullptr);
    CHECK(find(*rec, 2001)->permissions == "1100");
    CHECK(find(*rec, 2001)->ttl == 3600);
    REQUIRE(find(*rec, 2002) != nullptr);
    CHECK(find(*rec, 2002)->data == std::string("\0\x01\xff", 3));
    // The node named the creating identity in an HS_ADMIN value.
    REQUIRE(find(*rec, 100) != nullptr);
    CHECK(find(*rec, 100)->format == "admin");
    CHECK(find(*rec, 100)->data.find(kIdentity) != std::string::npos);

    // The same record over the Handle protocol, non-public value included once logged in.
    auto resolved = c.resolve(h);
    REQUIRE_MESSAGE(resolved.ok(), resolved.error().to_string());
    CHECK(resolved->handle == h);
    CHECK(resolved->values.size() == 4);
    REQUIRE(find(*resolved, 2001) != nullptr);
    CHECK(find(*resolved, 2001)->permissions == "1100");
    CHECK(find(*resolved, 2001)->data == "4120.50");
    REQUIRE(find(*resolved, 2002) != nullptr);
    CHECK(find(*resolved, 2002)->format == "base64");
    CHECK(find(*resolved, 2002)->data == std::string("\0\x01\xff", 3));
    REQUIRE(find(*resolved, 100) != nullptr);
    CHECK(find(*resolved, 100)->format == "admin");
    CHECK(find(*resolved, 100)->data == find(*rec, 100)->data);
    CHECK(find(*resolved, 1)->timestamp.size() == 20); // 2026-12-07T18:00:00Z
    auto filtered = c.resolve(h, sdk::ResolveFilter{{"URL"}, {}});
    REQUIRE(filtered.ok());
    CHECK(filtered->values.size() == 1);

    // add_values: new index; an existing one is RC 201.
    st = c.add_values(h, {sdk::Value::text(2003, "email", "qa@steel.example.cn")});
    REQUIRE_MESSAGE(st.ok(), st.error().to_string());
    rec = n.https->resolve(h);
    REQUIRE(find(*rec, 2003) != nullptr);
    st = c.add_values(h, {sdk::Value::text(2003, "email", "again@steel.example.cn")});
    REQUIRE_FALSE(st.ok());
    CHECK(st.error().response_code == 201);
    CHECK(st.error().kind == sdk::ErrorKind::http);
    CHECK(st.error().message.find("2003") != std::string::npos);

    // modify_values: existing index; a missing one is RC 200.
    st = c.modify_values(h, {sdk::Value::text(2003, "email", "ops@steel.example.cn")});
    REQUIRE_MESSAGE(st.ok(), st.error().to_string());
    rec = n.https->resolve(h);
    CHECK(find(*rec, 2003)->data == "ops@steel.example.cn");
    st = c.modify_values(h, {sdk::Value::text(2999, "x", "y")});
    REQUIRE_FALSE(st.ok());
    CHECK(st.error().response_code == 200);

    // remove_values, then remove the handle.
    st = c.remove_values(h, {2003, 2002});
    REQUIRE_MESSAGE(st.ok(), st.error().to_string());
    rec = n.https->resolve(h);
    CHECK(find(*rec, 2003) == nullptr);
    CHECK(find(*rec, 2002) == nullptr);
    CHECK(find(*rec, 1) != nullptr);
    st = c.remove(h);
    REQUIRE_MESSAGE(st.ok(), st.error().to_string());
    rec = n.https->resolve(h);
    REQUIRE_FALSE(rec.ok());
    CHECK(rec.error().kind == sdk::ErrorKind::not_found);

    // Deleting it again: not found, RC 100; resolving it too.
    st = c.remove(h);
    REQUIRE_FALSE(st.ok());
    CHECK(st.error().kind == sdk::ErrorKind::not_found);
    CHECK(st.error().response_code == 100);
    auto gone = c.resolve(h);
    REQUIRE_FALSE(gone.ok());
    CHECK(gone.error().response_code == 100);
    CHECK(n.node.stop() == 0);
}

TEST_CASE("RSA login, an explicit HS_ADMIN value, create twice, foreign prefix") {
    HandleNode n;
    auto c = n.admin_client();
    auto login = c.login_identity(kIdentity, 300, sdk::PrivateKeyPem{n.private_pem});
    REQUIRE_MESSAGE(login.ok(), login.error().to_string());

    const std::string h = "88.118.8/HA-RSA";
    sdk::Value admin;
    admin.index = 100;
    admin.type = "HS_ADMIN";
    admin.format = "admin";
    admin.data = R"({"handle":"88.118.8/ADMIN","index":300,"permissions":"111111111111"})";
    auto st = c.create(h, {sdk::Value::text(1, "URL", "https://steel.example.cn/rsa"), admin});
    REQUIRE_MESSAGE(st.ok(), st.error().to_string());
    auto rec = n.https->resolve(h);
    REQUIRE_MESSAGE(rec.ok(), rec.error().to_string());
    REQUIRE(find(*rec, 100) != nullptr);
    CHECK(find(*rec, 100)->format == "admin");
    CHECK(find(*rec, 100)->data.find("\"index\":300") != std::string::npos);
    CHECK(find(*rec, 100)->data.find("111111111111") != std::string::npos);

    // Create twice: conflict, RC 101.
    st = c.create(h, {sdk::Value::text(1, "URL", "https://steel.example.cn/other")});
    REQUIRE_FALSE(st.ok());
    CHECK(st.error().kind == sdk::ErrorKind::conflict);
    CHECK(st.error().response_code == 101);

    // steel owns 88.118.8, not the node prefix 88.118: RC 401, nothing written.
    st = c.create("88.118/NOT-STEELS", {sdk::Value::text(1, "URL", "https://x.example")});
    REQUIRE_FALSE(st.ok());
    CHECK(st.error().response_code == 401);
    CHECK(st.error().kind == sdk::ErrorKind::http);
    CHECK_FALSE(st.error().message.empty());
    CHECK(n.https->resolve("88.118/NOT-STEELS").error().kind == sdk::ErrorKind::not_found);

    // Local validation: nothing is sent.
    sdk::Value bad = sdk::Value::text(2, "x", "y");
    bad.permissions = "11";
    st = c.add_values(h, {bad});
    REQUIRE_FALSE(st.ok());
    CHECK(st.error().kind == sdk::ErrorKind::invalid_argument);
    sdk::Value bad_admin = admin;
    bad_admin.data = R"({"handle":"x"})";
    CHECK(c.add_values(h, {bad_admin}).error().kind == sdk::ErrorKind::invalid_argument);
    CHECK(c.remove_values(h, {}).error().kind == sdk::ErrorKind::invalid_argument);

    st = c.remove(h);
    CHECK_MESSAGE(st.ok(), st.error().to_string());
    CHECK(n.node.stop() == 0);
}

TEST_CASE("refusals: wrong secret, writes before login, private values before login") {
    HandleNode n;
    // A record with a value only admins read, written over HTTPS.
    sdk::Record r;
    r.handle = "88.118.8/PRIV-1";
    r.values.push_back(sdk::Value::text(1, "URL", "https://steel.example.cn/p"));
    sdk::Value price = sdk::Value::text(2001, "price", "4120.50");
    price.permissions = "1100";
    r.values.push_back(price);
    REQUIRE(n.https->create(r).ok());

    auto c = n.admin_client();
    // Before login: writes are challenged (RC 402), surfaced as an auth error; nothing written.
    auto st = c.create("88.118.8/EARLY", {sdk::Value::text(1, "URL", "https://x.example")});
    REQUIRE_FALSE(st.ok());
    CHECK(st.error().kind == sdk::ErrorKind::auth);
    CHECK(st.error().response_code == 402);
    CHECK(st.error().message.find("login_identity") != std::string::npos);
    CHECK(n.https->resolve("88.118.8/EARLY").error().kind == sdk::ErrorKind::not_found);
    CHECK(c.remove(r.handle).error().response_code == 402);

    // A private value before login: RC 402; public only leaves it out.
    auto anon = c.resolve(r.handle);
    REQUIRE_FALSE(anon.ok());
    CHECK(anon.error().kind == sdk::ErrorKind::auth);
    CHECK(anon.error().response_code == 402);
    auto public_only = c.resolve(r.handle, {}, true);
    REQUIRE_MESSAGE(public_only.ok(), public_only.error().to_string());
    CHECK(public_only->values.size() == 1);
    CHECK(find(*public_only, 2001) == nullptr);

    // The wrong secret: RC 403, not logged in, still no write.
    st = c.login_identity(kIdentity, 301, sdk::SecretKey{"not-the-secret"});
    REQUIRE_FALSE(st.ok());
    CHECK(st.error().kind == sdk::ErrorKind::auth);
    CHECK(st.error().response_code == 403);
    CHECK_FALSE(c.logged_in());
    // The client asked to log in (LOGIN_ID_SYSTEM) and is not: the IDIS "log in first".
    const auto early =
        c.create("88.118.8/EARLY", {sdk::Value::text(1, "URL", "https://x.example")});
    REQUIRE_FALSE(early.ok());
    CHECK(early.error().response_code == 408);
    CHECK(early.error().kind == sdk::ErrorKind::auth);
    // An identity that does not exist: 403 as well; a secret for the RSA identity: 404.
    CHECK(c.login_identity(kIdentity, 399, sdk::SecretKey{kSecret}).error().response_code == 403);
    CHECK(c.login_identity(kIdentity, 300, sdk::SecretKey{kSecret}).error().response_code == 404);
    // An RSA key the identity does not hold: 403. A PEM that is not a key: nothing sent.
    const auto other = rsa_key_pair();
    CHECK(c.login_identity(kIdentity, 300, sdk::PrivateKeyPem{other.first}).error().response_code ==
          403);
    CHECK(c.login_identity(kIdentity, 300, sdk::PrivateKeyPem{"not a key"}).error().kind ==
          sdk::ErrorKind::invalid_argument);

    // Logged in: the private value comes back.
    REQUIRE(c.login_identity(kIdentity, 301, sdk::SecretKey{kSecret}).ok());
    auto full = c.resolve(r.handle);
    REQUIRE_MESSAGE(full.ok(), full.error().to_string());
    CHECK(full->values.size() == 2);
    REQUIRE(find(*full, 2001) != nullptr);
    CHECK(find(*full, 2001)->data == "4120.50");
    CHECK(n.node.stop() == 0);
}

TEST_CASE("a connection the node closed while idle: reconnected and logged in again") {
    HandleNode n(1);
    auto c = n.admin_client();
    REQUIRE(c.login_identity(kIdentity, 301, sdk::SecretKey{kSecret}).ok());
    REQUIRE(c.create("88.118.8/IDLE-1", {sdk::Value::text(1, "URL", "https://x.example/1")}).ok());
    std::this_thread::sleep_for(std::chrono::milliseconds(2500)); // past idle_timeout_s = 1
    auto st = c.create("88.118.8/IDLE-2", {sdk::Value::text(1, "URL", "https://x.example/2")});
    CHECK_MESSAGE(st.ok(), st.error().to_string());
    CHECK(c.logged_in());
    CHECK(n.https->resolve("88.118.8/IDLE-2").ok());
    CHECK(n.node.stop() == 0);
    // The node is gone: a connect error, and no write is claimed.
    st = c.remove("88.118.8/IDLE-2");
    REQUIRE_FALSE(st.ok());
    CHECK(st.error().kind == sdk::ErrorKind::connect);
}

TEST_CASE("bad options, and a port where nothing listens") {
    sdk::HandleAdminOptions o;
    o.host = "";
    CHECK(sdk::HandleAdminClient::create(o).error().kind == sdk::ErrorKind::invalid_argument);
    o.host = "127.0.0.1";
    o.port = 0;
    CHECK(sdk::HandleAdminClient::create(o).error().kind == sdk::ErrorKind::invalid_argument);
    o.port = 2641;
    o.request_timeout = std::chrono::milliseconds(0);
    CHECK(sdk::HandleAdminClient::create(o).error().kind == sdk::ErrorKind::invalid_argument);

    // A port that was just free: the connection is refused.
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    socklen_t len = sizeof addr;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
    ::close(fd);
    o.port = ntohs(addr.sin_port);
    o.request_timeout = std::chrono::seconds(2);
    o.connect_timeout = std::chrono::seconds(2);
    auto c = sdk::HandleAdminClient::create(o);
    REQUIRE(c.ok());
    auto st = c->login_identity(kIdentity, 301, sdk::SecretKey{kSecret});
    REQUIRE_FALSE(st.ok());
    CHECK(st.error().kind == sdk::ErrorKind::connect);
    CHECK(c->resolve("88.118.8/x").error().kind == sdk::ErrorKind::connect);
}
