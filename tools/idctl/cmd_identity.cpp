// `idctl account identity add|list|remove`: the Handle-protocol identities of an account
// (docs/api.md#identities, idctl(1)).
#include "idnode/codec/base64.hpp"
#include "idnode/codec/utf8.hpp"
#include "key_pair.hpp"
#include "online_commands.hpp"

#include <boost/json.hpp>

#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>

#include <unistd.h>

namespace idnode::idctl {

namespace json = boost::json;

namespace {

// ---- account identity ---------------------------------------------------------------------------

std::vector<std::string> identity_row(const json::value& v) {
    const auto& o = v.as_object();
    return {field(o, "handle"), field(o, "index"), field(o, "kind"), field(o, "created")};
}
const std::vector<std::string> kIdentityHeaders = {"handle", "index", "kind", "created"};

/// The whole of a small file (a key), or nullopt.
std::optional<std::string> read_small_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        return std::nullopt;
    }
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
}

/// HANDLE.NET's file-encryption codes are below this (hdllib Common.MAX_ENCRYPT).
constexpr std::uint32_t kHandleMaxEncrypt = 9;

/// How --public-key-file's content goes to the node: a PEM as "public_key"; anything else as
/// HANDLE.NET's binary public key, "public_key_hs" in base64 (hdl-keygen's admpub.bin holds the
/// HS_PUBKEY bytes and nothing else; the node checks them). A HANDLE.NET private key file
/// (admpriv.bin) starts with an int4 encryption flag below kHandleMaxEncrypt where a public key
/// starts with the length of its type name (11): that one is refused here, with why, so that a
/// private key never leaves the machine.
std::optional<std::pair<std::string, std::string>> public_key_field(const std::string& content) {
    if (content.find("-----BEGIN ") != std::string::npos) {
        return std::pair{std::string("public_key"), content};
    }
    if (content.size() >= 4) {
        const auto* u = reinterpret_cast<const unsigned char*>(content.data());
        const std::uint32_t first = (std::uint32_t{u[0]} << 24) | (std::uint32_t{u[1]} << 16) |
                                    (std::uint32_t{u[2]} << 8) | std::uint32_t{u[3]};
        if (first < kHandleMaxEncrypt) {
            return std::nullopt;
        }
    }
    return std::pair{std::string("public_key_hs"), codec::base64_encode(content)};
}

} // namespace

/// `account identity add|list|remove`: the Handle-protocol identities of an account.
Command add_identity_commands(CLI::App* account, const GlobalOptions& global) {
    Group g{account->add_subcommand("identity", "Handle-protocol identities of an account"), {}};
    g.app->require_subcommand(1);

    struct Add {
        std::string username, handle, secret_file, public_file, generate;
        std::int32_t index = 0;
    };
    auto a = std::make_shared<Add>();
    auto* add = g.app->add_subcommand(
        "add", "register an identity (index:handle) with a secret key or a public key");
    add->add_option("username", a->username, "the account")->required();
    add->add_option("--handle", a->handle, "the identity's handle, e.g. 88.118.8/ADMIN")
        ->required();
    add->add_option("--index", a->index, "the identity's index, e.g. 300")
        ->required()
        ->check(CLI::Range(1, 2147483647));
    auto* secret = add->add_option(
        "--secret-key-file", a->secret_file,
        "a file holding the secret key (HS_SECKEY; UTF-8 text, one trailing newline dropped)");
    auto* pub = add->add_option("--public-key-file", a->public_file,
                                "a public key, RSA, DSA or SM2: PEM (BEGIN PUBLIC KEY) or "
                                "HANDLE.NET's binary public key file (admpub.bin)");
    auto* gen = add->add_option("--generate-key-pair", a->generate,
                                "make an RSA-2048 key pair: the private key goes to this new "
                                "file (mode 0600), the public key is registered");
    secret->excludes(pub)->excludes(gen);
    pub->excludes(gen);
    g.children.push_back(
        {add, [a, &global] {
             const std::string command = "account identity add";
             json::object req{{"handle", a->handle}, {"index", a->index}};
             if (a->secret_file.empty() && a->public_file.empty() && a->generate.empty()) {
                 return fail(command,
                             "give one of --secret-key-file, --public-key-file and "
                             "--generate-key-pair",
                             kExitUsage);
             }
             if (!a->secret_file.empty()) {
                 auto secret = read_small_file(a->secret_file);
                 if (!secret) {
                     return fail(command, "cannot read " + a->secret_file, kExitUsage);
                 }
                 // Files written by `echo` end in a newline that is not part of the secret.
                 if (secret->size() >= 1 && secret->back() == '\n') {
                     secret->pop_back();
                     if (!secret->empty() && secret->back() == '\r') {
                         secret->pop_back();
                     }
                 }
                 if (secret->empty() || !codec::is_text(*secret)) {
                     return fail(command, a->secret_file + " must hold a non-empty UTF-8 secret",
                                 kExitUsage);
                 }
                 req["secret_key"] = *secret;
             } else if (!a->public_file.empty()) {
                 auto content = read_small_file(a->public_file);
                 if (!content) {
                     return fail(command, "cannot read " + a->public_file, kExitUsage);
                 }
                 auto field = public_key_field(*content);
                 if (!field) {
                     return fail(command,
                                 a->public_file +
                                     " is a HANDLE.NET private key file (it starts with an "
                                     "encryption flag): give its public key (admpub.bin) or a "
                                     "PEM public key",
                                 kExitUsage);
                 }
                 req[field->first] = std::move(field->second);
             }
             std::optional<sdk::Client> client;
             if (int rc = open_client(command, global, client)) {
                 return rc;
             }
             if (!a->generate.empty()) {
                 std::string error;
                 auto pair = generate_rsa_key_pair(2048, error);
                 if (!pair) {
                     return fail(command, error);
                 }
                 // The private key is on disk before the public half is registered, so that a
                 // registered key always has its private half somewhere.
                 if (!write_private_file(a->generate, pair->private_key_pem, error)) {
                     return fail(command, error);
                 }
                 req["public_key"] = pair->public_key_pem;
             }
             auto r = client->add_identity(a->username, json::serialize(req));
             if (!r) {
                 if (!a->generate.empty()) {
                     ::unlink(a->generate.c_str()); // a key nobody can use
                 }
                 return sdk_fail(command, r.error());
             }
             auto v = parse_json_text(*r);
             if (!v || !v->is_object()) {
                 return fail(command, "the node's answer is not JSON");
             }
             if (!a->generate.empty()) {
                 v->as_object()["private_key_file"] = a->generate;
             }
             if (global.json) {
                 print_json(std::cout, *v);
             } else {
                 print_table(std::cout, kIdentityHeaders, {identity_row(*v)});
                 if (!a->generate.empty()) {
                     std::cerr << "private key written to " << a->generate << '\n';
                 }
             }
             return static_cast<int>(kExitOk);
         }});

    auto list_user = std::make_shared<std::string>();
    auto* list = g.app->add_subcommand("list", "list an account's identities (never a secret)");
    list->add_option("username", *list_user, "the account")->required();
    g.children.push_back({list, [list_user, &global] {
                              return call_and_show(
                                  "account identity list", global,
                                  [&](sdk::Client& c) { return c.list_identities(*list_user); },
                                  [](const json::value& v) {
                                      print_rows(v, "identities", kIdentityHeaders, identity_row);
                                  });
                          }});

    struct Remove {
        std::string username, handle;
        std::int32_t index = 0;
    };
    auto rm = std::make_shared<Remove>();
    auto* remove = g.app->add_subcommand("remove", "remove an identity");
    remove->add_option("username", rm->username, "the account")->required();
    remove->add_option("--handle", rm->handle, "the identity's handle")->required();
    remove->add_option("--index", rm->index, "the identity's index")
        ->required()
        ->check(CLI::Range(1, 2147483647));
    g.children.push_back({remove, [rm, &global] {
                              return call_and_report(
                                  "account identity remove", global,
                                  [&](sdk::Client& c) {
                                      return c.remove_identity(rm->username, rm->handle, rm->index);
                                  },
                                  json::object{{"username", rm->username},
                                               {"handle", rm->handle},
                                               {"index", rm->index},
                                               {"removed", true}},
                                  "removed identity " + std::to_string(rm->index) + ":" +
                                      rm->handle + " of " + rm->username);
                          }});
    return g.command();
}

} // namespace idnode::idctl
