// Handle-protocol identities over the native API and idctl against the real idnode binary
// (docs/api.md#identities): who may register, list and remove whose identities (admin, self,
// another account, anonymous), the 400/403/404/409/413 answers, secrets never shown, identities
// going with their account, and `idctl account identity add|list|remove` including
// --generate-key-pair; public keys as PEM and as HANDLE.NET's binary HS_PUBKEY bytes
// (public_key_hs, admpub.bin).
#include "harness.hpp"
#include "idnode/codec/base64.hpp"
#include "idnode/registry/registry.hpp"
#include "json_helpers.hpp"
#include "test_keys.hpp"

#include <boost/json.hpp>
#include <doctest/doctest.h>

#include <fstream>
#include <sys/stat.h>

using namespace idnode::test;
namespace json = boost::json;
using V = http::verb;
using S = http::status;

namespace {

std::string read_text(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
}

void write_text(const fs::path& path, const std::string& text) {
    std::ofstream out(path, std::ios::binary);
    out << text;
    REQUIRE(out.good());
}

/// Prefixes 88.118.8 (steel's) and 88.118.9 (iron's); steel has a password and an API key.
struct IdentityNode {
    NodeProcess node{"identities"};
    std::unique_ptr<HttpsClient> c;
    std::string admin_key, admin, steel_key, iron;
    const std::string password = "steel-secret-1";

    IdentityNode() {
        auto init = run_command({IDNODE_IDCTL_BINARY, "init", "--data-dir",
                                 (node.dir() / "db").string(), "--node-prefix", "88.118"});
        REQUIRE_MESSAGE(init.exit_code == 0, init.err);
        admin_key = std::string(body_of(Response{S::ok, 11, init.out}).at("admin_key").as_string());
        admin = "Bearer " + admin_key;
        node.start();
        c = std::make_unique<HttpsClient>(node.https_port(), trust(node.pki().ca_cert));
        c->connect();
        for (const char* p : {"88.118.8", "88.118.9"})
            call(
                admin, V::post, "/api/v1/prefixes",
                std::string(R"({"prefix":")") + p +
                    R"(","enterprise":{"name":"示例钢铁","credit_code":"91310000631696382C","industry":"C3130","contact":"ops@example.cn"}})",
                S::created);
        call(admin, V::post, "/api/v1/accounts",
             R"({"username":"steel","role":"enterprise","prefixes":["88.118.8"],"password":")" +
                 password + R"("})",
             S::created);
        call(admin, V::post, "/api/v1/accounts",
             R"({"username":"iron","role":"enterprise","prefixes":["88.118.9"]})", S::created);
        steel_key = key_of("steel");
        iron = key_of("iron");
    }

    std::string key_of(const std::string& user) {
        auto r = call(admin, V::post, "/api/v1/accounts/" + user + "/keys", {}, S::created);
        return "Bearer " + std::string(body_of(r).at("key").as_string());
    }

    Response call(const std::string& authorization, V method, const std::string& target,
                  const std::string& body, S expected) {
        std::vector<std::pair<std::string, std::string>> headers;
        if (!authorization.empty())
            headers.emplace_back("Authorization", authorization);
        auto r = c->request(method, target, body, headers);
        REQUIRE_MESSAGE(r.result() == expected, target, " ", r.body());
        return r;
    }

    std::vector<std::string> idctl(std::vector<std::string> args) const {
        std::vector<std::string> out{IDNODE_IDCTL_BINARY,
                                     "--url",
                                     "https://localhost:" + std::to_string(node.https_port()),
                                     "--ca-file",
                                     node.pki().ca_cert.string(),
                                     "--key",
                                     admin_key};
        out.insert(out.end(), args.begin(), args.end());
        return out;
    }
};

const std::string kIdentities = "/api/v1/accounts/steel/identities";

} // namespace

TEST_CASE("identities: register, list and remove over the native API") {
    IdentityNode n;
    const std::string steel_basic = basic_authorization("steel", n.password);

    // An admin registers a secret-key identity for steel: 201, the secret never comes back.
    auto created = n.call(
        n.admin, V::post, kIdentities,
        R"({"handle":"88.118.8/ADMIN","index":300,"secret_key":"interop-secret"})", S::created);
    CHECK(created.body().find("interop-secret") == std::string::npos);
    const auto o = body_of(created).as_object();
    CHECK(o.at("handle").as_string() == "88.118.8/ADMIN");
    CHECK(o.at("index").as_int64() == 300);
    CHECK(o.at("kind").as_string() == "secret_key");
    CHECK(o.if_contains("public_key") == nullptr);
    CHECK(o.if_contains("secret_key") == nullptr);
    CHECK(o.contains("created"));

    // 409: the same pair in any case, whoever asks.
    auto dup =
        n.call(n.admin, V::post, kIdentities,
               R"({"handle":"88.118.8/admin","index":300,"secret_key":"other"})", S::conflict);
    CHECK(error_code(dup) == "already_exists");

    // The account itself: with its password (Basic) at once; with an API key only with the
    // current password (a key is a lasting credential).
    const auto rsa = make_key("RSA", 2048);
    json::object pub{{"handle", "0.NA/88.118.8"}, {"index", 301}, {"public_key", rsa.public_pem}};
    auto own = n.call(steel_basic, V::post, kIdentities, json::serialize(pub), S::created);
    CHECK(body_of(own).at("kind").as_string() == "public_key");
    CHECK(body_of(own).at("public_key").as_string() == rsa.public_pem);
    json::object sm2{
        {"handle", "88.118.8/SM2"}, {"index", 300}, {"public_key", make_key("SM2").public_pem}};
    CHECK(error_code(n.call(n.steel_key, V::post, kIdentities, json::serialize(sm2),
                            S::forbidden)) == "current_password_required");
    sm2["current_password"] = "wrong-password";
    CHECK(error_code(n.call(n.steel_key, V::post, kIdentities, json::serialize(sm2),
                            S::forbidden)) == "wrong_current_password");
    sm2["current_password"] = n.password;
    n.call(n.steel_key, V::post, kIdentities, json::serialize(sm2), S::created);

    // Another account, anonymous, an unknown account.
    const std::string body = R"({"handle":"88.118.8/X","index":1,"secret_key":"k"})";
    CHECK(error_code(n.call(n.iron, V::post, kIdentities, body, S::forbidden)) == "forbidden");
    CHECK(error_code(n.call({}, V::post, kIdentities, body, S::unauthorized)) == "unauthorized");
    CHECK(error_code(n.call(n.admin, V::post, "/api/v1/accounts/nobody/identities", body,
                            S::not_found)) == "not_found");

    // 400: the body, the handle, the index, the keys.
    for (const std::string& bad : {
             std::string("not json"),
             std::string(R"(["88.118.8/X"])"),
             std::string(R"({"index":1,"secret_key":"k"})"),
             std::string(R"({"handle":"88.118.8/X","index":"1","secret_key":"k"})"),
             std::string(R"({"handle":"88.118.8/X","index":1.5,"secret_key":"k"})"),
             std::string(R"({"handle":"88.118.8/X","index":0,"secret_key":"k"})"),
             std::string(R"({"handle":"88.118.8/X","index":2147483648,"secret_key":"k"})"),
             std::string(R"({"handle":"no-slash","index":1,"secret_key":"k"})"),
             std::string(R"({"handle":"88.118.8/X","index":1})"),
             std::string(R"({"handle":"88.118.8/X","index":1,"secret_key":"k","public_key":"p"})"),
             std::string(R"({"handle":"88.118.8/X","index":1,"secret_key":""})"),
             std::string(R"({"handle":"88.118.8/X","index":1,"secret_key":7})"),
             std::string(R"({"handle":"88.118.8/X","index":1,"public_key":"hello"})"),
             json::serialize(json::object{{"handle", "88.118.8/X"},
                                          {"index", 1},
                                          {"public_key", make_key("RSA", 1024).public_pem}}),
             json::serialize(json::object{{"handle", "88.118.8/X"},
                                          {"index", 1},
                                          {"public_key", make_key("EC", 0, "P-256").public_pem}}),
         }) {
        CAPTURE(bad);
        auto r = n.call(n.admin, V::post, kIdentities, bad, S::bad_request);
        CHECK_FALSE(error_code(r).empty());
    }
    // 403 where steel has no standing, 413 beyond the single-record body limit.
    CHECK(error_code(n.call(n.admin, V::post, kIdentities,
                            R"({"handle":"88.118.9/ADMIN","index":300,"secret_key":"k"})",
                            S::forbidden)) == "identity_outside_prefixes");
    n.call(n.admin, V::post, kIdentities,
           R"({"handle":"88.118.8/X","index":1,"secret_key":")" + std::string(70000, 'k') + "\"}",
           S::payload_too_large);
    // The node closes a connection after a 413.
    CHECK(n.c->wait_closed(std::chrono::seconds(3)));
    n.c->connect();

    // GET: steel and the admin see the three, never a secret; iron and anonymous do not.
    for (const auto& who : {n.admin, steel_basic, n.steel_key}) {
        auto listed = n.call(who, V::get, kIdentities, {}, S::ok);
        CHECK(listed.body().find("interop-secret") == std::string::npos);
        const auto doc = body_of(listed);
        const auto& items = doc.at("identities").as_array();
        REQUIRE(items.size() == 3);
        for (const auto& item : items)
            CHECK(item.as_object().if_contains("secret_key") == nullptr);
    }
    n.call(n.iron, V::get, kIdentities, {}, S::forbidden);
    n.call({}, V::get, kIdentities, {}, S::unauthorized);
    n.call(n.admin, V::get, "/api/v1/accounts/nobody/identities", {}, S::not_found);
    CHECK(body_of(n.call(n.iron, V::get, "/api/v1/accounts/iron/identities", {}, S::ok))
              .at("identities")
              .as_array()
              .empty());

    // DELETE: the handle's '/' in the path, or one percent-encoded segment; 404 after.
    n.call(n.iron, V::delete_, kIdentities + "/88.118.8/ADMIN/300", {}, S::forbidden);
    n.call({}, V::delete_, kIdentities + "/88.118.8/ADMIN/300", {}, S::unauthorized);
    n.call(n.admin, V::delete_, kIdentities + "/88.118.8/ADMIN/x", {}, S::bad_request);
    n.call(n.admin, V::delete_, kIdentities + "/88.118.8/ADMIN/0", {}, S::bad_request);
    n.call(n.admin, V::delete_, kIdentities + "/300", {}, S::bad_request);
    n.call(steel_basic, V::delete_, kIdentities + "/88.118.8/admin/300", {}, S::no_content);
    CHECK(error_code(n.call(steel_basic, V::delete_, kIdentities + "/88.118.8/ADMIN/300", {},
                            S::not_found)) == "not_found");
    n.call(n.admin, V::delete_, kIdentities + "/0.NA%2F88.118.8/301", {}, S::no_content);
    CHECK(body_of(n.call(n.admin, V::get, kIdentities, {}, S::ok))
              .at("identities")
              .as_array()
              .size() == 1);

    // An identity of iron cannot be removed through steel's path (not found there).
    n.call(n.admin, V::post, "/api/v1/accounts/iron/identities",
           R"({"handle":"88.118.9/ADMIN","index":300,"secret_key":"k"})", S::created);
    n.call(n.admin, V::delete_, kIdentities + "/88.118.9/ADMIN/300", {}, S::not_found);

    // Deleting an account deletes its identities: a new account of the same name has none, and
    // the pair is free again.
    n.call(n.admin, V::delete_, "/api/v1/accounts/iron", {}, S::no_content);
    n.call(n.admin, V::post, "/api/v1/accounts",
           R"({"username":"iron","role":"enterprise","prefixes":["88.118.9"]})", S::created);
    CHECK(body_of(n.call(n.admin, V::get, "/api/v1/accounts/iron/identities", {}, S::ok))
              .at("identities")
              .as_array()
              .empty());
    n.call(n.admin, V::post, "/api/v1/accounts/iron/identities",
           R"({"handle":"88.118.9/ADMIN","index":300,"secret_key":"k2"})", S::created);
}

TEST_CASE("identities: idctl account identity add, list and remove") {
    IdentityNode n;
    TempDir files("identity-keys");
    const auto secret_file = files.path() / "secret";
    write_text(secret_file, "interop-secret\n");

    auto added = run_command(
        n.idctl({"--json", "account", "identity", "add", "steel", "--handle", "88.118.8/ADMIN",
                 "--index", "300", "--secret-key-file", secret_file.string()}));
    REQUIRE_MESSAGE(added.exit_code == 0, added.err);
    CHECK(body_of(Response{S::ok, 11, added.out}).at("kind").as_string() == "secret_key");
    CHECK(added.out.find("interop-secret") == std::string::npos);
    {
        // Stored as given, without the file's trailing newline (a read-only open beside the
        // running node, as backups do).
        idnode::registry::RegistryOptions o;
        o.data_dir = n.node.dir() / "db";
        o.mode = idnode::registry::OpenMode::read_only;
        auto reg = idnode::registry::Registry::open(o);
        auto stored = reg->snapshot().identity("88.118.8/ADMIN", 300);
        REQUIRE(stored.ok());
        CHECK(stored->secret == "interop-secret");
        CHECK(stored->account == "steel");
    }

    // --generate-key-pair: a new private key file (0600), its public half registered.
    const auto key_file = files.path() / "steel-admin.pem";
    auto generated = run_command(
        n.idctl({"--json", "account", "identity", "add", "steel", "--handle", "0.NA/88.118.8",
                 "--index", "301", "--generate-key-pair", key_file.string()}));
    REQUIRE_MESSAGE(generated.exit_code == 0, generated.err);
    const auto g = body_of(Response{S::ok, 11, generated.out}).as_object();
    CHECK(g.at("kind").as_string() == "public_key");
    CHECK(g.at("private_key_file").as_string() == key_file.string());
    const std::string private_pem = read_text(key_file);
    CHECK(private_pem.find("-----BEGIN PRIVATE KEY-----") == 0);
    struct stat st {};
    REQUIRE(::stat(key_file.c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0600);
    // The registered public key is the private key's public half.
    const auto derived = run_command({"openssl", "pkey", "-in", key_file.string(), "-pubout"});
    REQUIRE_MESSAGE(derived.exit_code == 0, derived.err);
    CHECK(std::string(g.at("public_key").as_string()) == derived.out);

    // An existing key file is never overwritten; a refused registration leaves no key file.
    auto exists =
        run_command(n.idctl({"account", "identity", "add", "steel", "--handle", "88.118.8/OTHER",
                             "--index", "300", "--generate-key-pair", key_file.string()}));
    CHECK(exists.exit_code == 1);
    CHECK(exists.err.find("File exists") != std::string::npos);
    CHECK(read_text(key_file) == private_pem);
    const auto refused_file = files.path() / "refused.pem";
    auto refused =
        run_command(n.idctl({"account", "identity", "add", "steel", "--handle", "88.118.8/admin",
                             "--index", "300", "--generate-key-pair", refused_file.string()}));
    CHECK(refused.exit_code == 1);
    CHECK(refused.err.find("already exists") != std::string::npos);
    CHECK_FALSE(fs::exists(refused_file));

    // --public-key-file, and the usage errors.
    const auto pub_file = files.path() / "dsa.pub";
    write_text(pub_file, make_key("DSA", 1024).public_pem);
    auto dsa =
        run_command(n.idctl({"account", "identity", "add", "steel", "--handle", "88.118.8/DSA",
                             "--index", "7", "--public-key-file", pub_file.string()}));
    REQUIRE_MESSAGE(dsa.exit_code == 0, dsa.err);
    CHECK(dsa.out.find("88.118.8/DSA") != std::string::npos);
    CHECK(run_command(n.idctl({"account", "identity", "add", "steel", "--handle", "88.118.8/N",
                               "--index", "1"}))
              .exit_code == 2);
    CHECK(run_command(n.idctl({"account", "identity", "add", "steel", "--handle", "88.118.8/N",
                               "--index", "1", "--secret-key-file", secret_file.string(),
                               "--public-key-file", pub_file.string()}))
              .exit_code == 2);
    CHECK(run_command(n.idctl({"account", "identity", "add", "steel", "--handle", "88.118.8/N",
                               "--index", "0", "--secret-key-file", secret_file.string()}))
              .exit_code == 2);
    const auto rsa1024 = files.path() / "small.pub";
    write_text(rsa1024, make_key("RSA", 1024).public_pem);
    auto small =
        run_command(n.idctl({"account", "identity", "add", "steel", "--handle", "88.118.8/N",
                             "--index", "1", "--public-key-file", rsa1024.string()}));
    CHECK(small.exit_code == 1);
    CHECK(small.err.find("at least 2048") != std::string::npos);

    // list: a table, or the node's JSON; never a secret.
    auto table = run_command(n.idctl({"account", "identity", "list", "steel"}));
    REQUIRE_MESSAGE(table.exit_code == 0, table.err);
    CHECK(table.out.find("88.118.8/ADMIN") != std::string::npos);
    CHECK(table.out.find("0.NA/88.118.8") != std::string::npos);
    CHECK(table.out.find("interop-secret") == std::string::npos);
    auto listed = run_command(n.idctl({"--json", "account", "identity", "list", "steel"}));
    REQUIRE_MESSAGE(listed.exit_code == 0, listed.err);
    CHECK(body_of(Response{S::ok, 11, listed.out}).at("identities").as_array().size() == 3);
    CHECK(listed.out.find("interop-secret") == std::string::npos);

    // remove, then it is gone; removing it again fails.
    auto removed = run_command(n.idctl({"--json", "account", "identity", "remove", "steel",
                                        "--handle", "0.NA/88.118.8", "--index", "301"}));
    REQUIRE_MESSAGE(removed.exit_code == 0, removed.err);
    CHECK(body_of(Response{S::ok, 11, removed.out}).at("removed").as_bool());
    auto again = run_command(n.idctl(
        {"account", "identity", "remove", "steel", "--handle", "0.NA/88.118.8", "--index", "301"}));
    CHECK(again.exit_code == 1);
    CHECK(again.err.find("has no identity") != std::string::npos);
    auto after = run_command(n.idctl({"--json", "account", "identity", "list", "steel"}));
    CHECK(body_of(Response{S::ok, 11, after.out}).at("identities").as_array().size() == 2);
}

TEST_CASE("identities: HANDLE.NET's binary public key (public_key_hs) over the API and idctl") {
    IdentityNode n;
    auto message_of = [](const Response& r) {
        return std::string(body_of(r).at("error").at("message").as_string());
    };

    // RSA and DSA as HANDLE.NET's client encodes them: registered, stored and listed as PEM.
    const auto rsa = make_key("RSA", 2048);
    const auto dsa = make_key("DSA", 2048);
    for (const auto& [handle, key] :
         {std::pair{"88.118.8/RSA-BIN", &rsa}, std::pair{"88.118.8/DSA-BIN", &dsa}}) {
        json::object body{{"handle", handle},
                          {"index", 300},
                          {"public_key_hs",
                           idnode::codec::base64_encode(handle_net_public_key(key->public_pem))}};
        auto created = n.call(n.admin, V::post, kIdentities, json::serialize(body), S::created);
        CHECK(body_of(created).at("kind").as_string() == "public_key");
        CHECK(body_of(created).at("public_key").as_string() == key->public_pem);
    }
    const auto listed = body_of(n.call(n.admin, V::get, kIdentities, {}, S::ok));
    REQUIRE(listed.at("identities").as_array().size() == 2);
    for (const auto& item : listed.at("identities").as_array()) {
        const std::string handle(item.at("handle").as_string());
        CHECK(item.at("public_key").as_string() ==
              (handle == "88.118.8/RSA-BIN" ? rsa.public_pem : dsa.public_pem));
    }

    // Refusals: 400 with a message naming what is wrong.
    const std::string bytes = handle_net_public_key(rsa.public_pem);
    auto refused = [&](const json::object& body, std::string_view expected) {
        auto r = n.call(n.admin, V::post, kIdentities, json::serialize(body), S::bad_request);
        // invalid_value: the body (the route); invalid: the key (the service).
        const std::string code = error_code(r);
        CHECK((code == "invalid_value" || code == "invalid"));
        CHECK_MESSAGE(message_of(r).find(expected) != std::string::npos, message_of(r));
    };
    const json::object base{{"handle", "88.118.8/BAD"}, {"index", 1}};
    auto with = [&](json::object o, std::string_view name, std::string_view v) {
        o[name] = v;
        return o;
    };
    refused(with(base, "public_key_hs", idnode::codec::base64_encode(bytes.substr(0, 100))),
            "public_key_hs: the RSA modulus is cut short");
    refused(with(base, "public_key_hs", idnode::codec::base64_encode(bytes + "trailing")),
            "public_key_hs: 12 bytes follow the RSA modulus");
    refused(with(base, "public_key_hs", "not base64!"), "public_key_hs must be a base64 string");
    json::object number = base;
    number["public_key_hs"] = 7;
    refused(number, "public_key_hs must be a base64 string");
    refused(
        with(base, "public_key_hs",
             idnode::codec::base64_encode(handle_net_public_key(make_key("RSA", 1024).public_pem))),
        "public_key_hs is RSA of 1024 bits; at least 2048");
    refused(with(with(base, "public_key", rsa.public_pem), "public_key_hs",
                 idnode::codec::base64_encode(bytes)),
            "exactly one of secret_key, public_key and public_key_hs");
    CHECK(body_of(n.call(n.admin, V::get, kIdentities, {}, S::ok))
              .at("identities")
              .as_array()
              .size() == 2);

    // idctl: --public-key-file takes HANDLE.NET's admpub.bin as it is.
    TempDir files("identity-binary-keys");
    const auto admpub = files.path() / "admpub.bin";
    const auto other = make_key("RSA", 2048);
    write_text(admpub, handle_net_public_key(other.public_pem));
    auto added = run_command(
        n.idctl({"--json", "account", "identity", "add", "steel", "--handle", "0.NA/88.118.8",
                 "--index", "300", "--public-key-file", admpub.string()}));
    REQUIRE_MESSAGE(added.exit_code == 0, added.err);
    CHECK(body_of(Response{S::ok, 11, added.out}).at("public_key").as_string() == other.public_pem);
    // A private key file (admpriv.bin: an int4 encryption flag first, 1 = none) is refused
    // before anything is sent.
    const auto admpriv = files.path() / "admpriv.bin";
    write_text(admpriv, std::string("\0\0\0\x01", 4) + std::string("\0\0\0\x0f", 4) +
                            "RSA_PRIVCRT_KEY" + std::string(300, '\x42'));
    auto priv =
        run_command(n.idctl({"account", "identity", "add", "steel", "--handle", "0.NA/88.118.8",
                             "--index", "301", "--public-key-file", admpriv.string()}));
    CHECK(priv.exit_code == 2);
    CHECK(priv.err.find("is a HANDLE.NET private key file") != std::string::npos);
    // A damaged binary key: the node's reason.
    const auto damaged = files.path() / "damaged.bin";
    write_text(damaged, handle_net_public_key(other.public_pem).substr(0, 40));
    auto broken =
        run_command(n.idctl({"account", "identity", "add", "steel", "--handle", "0.NA/88.118.8",
                             "--index", "302", "--public-key-file", damaged.string()}));
    CHECK(broken.exit_code == 1);
    CHECK(broken.err.find("public_key_hs: the RSA modulus is cut short") != std::string::npos);
    auto all = run_command(n.idctl({"--json", "account", "identity", "list", "steel"}));
    REQUIRE_MESSAGE(all.exit_code == 0, all.err);
    CHECK(body_of(Response{S::ok, 11, all.out}).at("identities").as_array().size() == 3);
}
