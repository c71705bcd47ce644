// The online idctl commands on the client SDK (idctl(1), docs/api.md#native-api):
//   resolve HANDLE… [--type T]… [--index N]…     values as a table (--json: the records)
//   get HANDLE                                    the record as one NDJSON line (put/load accept
//   it) put HANDLE [--value INDEX:TYPE=DATA]… [--file F] [--template V] [--mode …] [--merge] delete
//   HANDLE [--index N]… prefix allocate|list|show|suspend|resume, prefix route set|show|clear
//   (cmd_prefix_route.cpp) account
//   create|list|passwd|disable|enable|delete,
//   account key create|revoke, account identity add|list|remove, template import|list|show,
//   stats
// Human tables by default, one JSON document with --json. Exit 0 ok, 1 the node refused or could
// not be reached, 2 usage.
#include "idnode/codec/base64.hpp"
#include "idnode/codec/client_value_json.hpp"
#include "idnode/codec/utf8.hpp"
#include "key_pair.hpp"
#include "online.hpp"
#include "online_commands.hpp"

#include <boost/json.hpp>

#include <charconv>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>
#include <termios.h>
#include <unistd.h>

namespace idnode::idctl {

namespace json = boost::json;

namespace {
// ---- values -------------------------------------------------------------------------------------

using codec::base64_encode;

/// The value as the Handle REST API shows it, timestamp and permissions included (the codec's
/// client value JSON, the SDK's own).
json::object value_json(const sdk::Value& v) {
    return codec::client_value_to_json(
        codec::ClientValue{v.index, v.type, v.data, v.format, v.ttl, v.timestamp, v.permissions},
        true);
}

std::string shown_data(const sdk::Value& v) {
    if (v.format == "base64") {
        return "(" + std::to_string(v.data.size()) + " bytes) " + base64_encode(v.data);
    }
    return v.data;
}

/// "INDEX:TYPE=DATA" → a string value.
std::optional<sdk::Value> parse_value_flag(const std::string& text) {
    const auto colon = text.find(':');
    const auto eq = text.find('=');
    if (colon == std::string::npos || eq == std::string::npos || eq < colon) {
        return std::nullopt;
    }
    std::int32_t index = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + colon, index);
    if (ec != std::errc{} || end != text.data() + colon || index <= 0 || eq == colon + 1) {
        return std::nullopt;
    }
    return sdk::Value::text(index, text.substr(colon + 1, eq - colon - 1), text.substr(eq + 1));
}

// ---- resolve / get / put / delete -----------------------------------------------------------

Command add_resolve(CLI::App& root, const GlobalOptions& global) {
    struct Args {
        std::vector<std::string> handles, types;
        std::vector<std::int32_t> indices;
    };
    auto a = std::make_shared<Args>();
    auto* cmd = root.add_subcommand("resolve", "show the values of one or more identifiers");
    cmd->add_option("handle", a->handles, "identifiers, e.g. 88.118.8/SN-1")->required();
    cmd->add_option("--type", a->types, "only values of this type (repeatable)");
    cmd->add_option("--index", a->indices, "only values with this index (repeatable)");
    return {cmd, [a, &global] {
                std::optional<sdk::Client> client;
                if (int rc = open_client("resolve", global, client); rc != kExitOk) {
                    return rc;
                }
                std::vector<sdk::Record> records;
                int missing = 0;
                if (a->handles.size() == 1) {
                    auto r = client->resolve(a->handles[0], {a->types, a->indices});
                    if (!r) {
                        return sdk_fail("resolve", r.error());
                    }
                    records.push_back(std::move(r).value());
                } else {
                    if (!a->types.empty() || !a->indices.empty()) {
                        return fail("resolve", "--type/--index apply to a single handle",
                                    kExitUsage);
                    }
                    auto r = client->resolve_many(a->handles);
                    if (!r) {
                        return sdk_fail("resolve", r.error());
                    }
                    records = std::move(r).value();
                }
                json::array out;
                std::vector<std::vector<std::string>> rows;
                for (const auto& rec : records) {
                    json::array values;
                    for (const auto& v : rec.values) {
                        values.push_back(value_json(v));
                        rows.push_back({rec.handle, std::to_string(v.index), v.type, shown_data(v),
                                        std::to_string(v.ttl), v.timestamp});
                    }
                    if (rec.response_code != 1) {
                        ++missing;
                        rows.push_back({rec.handle, "", "",
                                        rec.response_code == 100
                                            ? "(not found)"
                                            : "(rc " + std::to_string(rec.response_code) + ")",
                                        "", ""});
                    }
                    out.push_back(json::object{{"handle", rec.handle},
                                               {"responseCode", rec.response_code},
                                               {"values", std::move(values)}});
                }
                if (global.json) {
                    if (out.size() == 1) {
                        print_json(std::cout, out[0]);
                    } else {
                        print_json(std::cout, out);
                    }
                } else {
                    print_table(std::cout, {"handle", "index", "type", "data", "ttl", "timestamp"},
                                rows);
                }
                // Several handles: some missing is a partial success, all missing a failure.
                if (missing == 0) {
                    return static_cast<int>(kExitOk);
                }
                return missing == static_cast<int>(records.size()) ? static_cast<int>(kExitFailed)
                                                                   : static_cast<int>(kExitPartial);
            }};
}

Command add_get(CLI::App& root, const GlobalOptions& global) {
    auto handle = std::make_shared<std::string>();
    auto* cmd = root.add_subcommand(
        "get", "print an identifier's record as one NDJSON line, the shape put and load accept");
    cmd->add_option("handle", *handle, "the identifier")->required();
    return {cmd, [handle, &global] {
                std::optional<sdk::Client> client;
                if (int rc = open_client("get", global, client); rc != kExitOk) {
                    return rc;
                }
                auto r = client->resolve(*handle);
                if (!r) {
                    return sdk_fail("get", r.error());
                }
                std::cout << r->to_json() << '\n';
                return static_cast<int>(kExitOk);
            }};
}

Command add_put(CLI::App& root, const GlobalOptions& global) {
    struct Args {
        std::string handle, file, template_version, mode = "upsert";
        std::vector<std::string> values;
        bool merge = false;
    };
    auto a = std::make_shared<Args>();
    auto* cmd = root.add_subcommand("put", "create or replace an identifier's record");
    cmd->add_option("handle", a->handle, "the identifier (optional with --file naming it)");
    cmd->add_option("--value", a->values, "INDEX:TYPE=DATA, a string value (repeatable)");
    cmd->add_option("--file", a->file,
                    "the record as JSON ({\"handle\"?,\"templateVersion\"?,\"values\"} or a "
                    "values array), - for stdin");
    cmd->add_option("--template", a->template_version, "template version the record follows");
    cmd->add_option("--mode", a->mode,
                    "upsert (default: create or replace), create (fail if it exists) or replace");
    cmd->add_flag("--merge", a->merge,
                  "add the given values or replace those with the same index; keep the others");
    return {cmd, [a, &global] {
                sdk::Record record;
                if (!a->file.empty()) {
                    std::stringstream text;
                    if (a->file == "-") {
                        text << std::cin.rdbuf();
                    } else {
                        std::ifstream in(a->file, std::ios::binary);
                        if (!in) {
                            return fail("put", "cannot read " + a->file, kExitUsage);
                        }
                        text << in.rdbuf();
                    }
                    auto r = sdk::Record::from_json(text.str(), a->handle);
                    if (!r) {
                        return fail("put", a->file + ": " + r.error().message, kExitUsage);
                    }
                    record = std::move(r).value();
                    if (!a->handle.empty()) {
                        record.handle = a->handle;
                    }
                }
                record.handle = record.handle.empty() ? a->handle : record.handle;
                for (const auto& text : a->values) {
                    auto v = parse_value_flag(text);
                    if (!v) {
                        return fail("put", "--value \"" + text + "\": expected INDEX:TYPE=DATA",
                                    kExitUsage);
                    }
                    record.values.push_back(std::move(*v));
                }
                if (!a->template_version.empty()) {
                    record.template_version = a->template_version;
                }
                if (record.handle.empty()) {
                    return fail("put", "which handle? give HANDLE or a --file naming it",
                                kExitUsage);
                }
                if (record.values.empty()) {
                    return fail("put", "no values: give --value or --file", kExitUsage);
                }
                if (a->mode != "upsert" && a->mode != "create" && a->mode != "replace") {
                    return fail("put", "--mode must be upsert, create or replace", kExitUsage);
                }
                if (a->merge && (a->mode != "upsert" || !record.template_version.empty())) {
                    return fail("put", "--merge takes neither --mode nor --template", kExitUsage);
                }
                std::optional<sdk::Client> client;
                if (int rc = open_client("put", global, client); rc != kExitOk) {
                    return rc;
                }
                std::string outcome;
                if (a->merge) {
                    if (auto st = client->set_values(record.handle, record.values); !st) {
                        return sdk_fail("put", st.error());
                    }
                    outcome = "updated";
                } else {
                    auto r = a->mode == "create"    ? client->create(record)
                             : a->mode == "replace" ? client->replace(record)
                                                    : client->upsert(record);
                    if (!r) {
                        return sdk_fail("put", r.error());
                    }
                    outcome = *r == sdk::PutOutcome::created ? "created" : "replaced";
                }
                if (global.json) {
                    print_json(std::cout,
                               json::object{{"handle", record.handle}, {"outcome", outcome}});
                } else {
                    std::cout << outcome << ' ' << record.handle << '\n';
                }
                return static_cast<int>(kExitOk);
            }};
}

Command add_delete(CLI::App& root, const GlobalOptions& global) {
    struct Args {
        std::string handle;
        std::vector<std::int32_t> indices;
    };
    auto a = std::make_shared<Args>();
    auto* cmd = root.add_subcommand("delete", "delete an identifier, or only some of its values");
    cmd->add_option("handle", a->handle, "the identifier")->required();
    cmd->add_option("--index", a->indices, "delete only the value with this index (repeatable)");
    return {cmd, [a, &global] {
                std::optional<sdk::Client> client;
                if (int rc = open_client("delete", global, client); rc != kExitOk) {
                    return rc;
                }
                auto st = a->indices.empty() ? client->remove(a->handle)
                                             : client->remove_values(a->handle, a->indices);
                if (!st) {
                    return sdk_fail("delete", st.error());
                }
                if (global.json) {
                    json::array indices;
                    for (auto i : a->indices) {
                        indices.emplace_back(i);
                    }
                    print_json(std::cout, json::object{{"handle", a->handle},
                                                       {"deleted", true},
                                                       {"indices", std::move(indices)}});
                } else {
                    std::cout << "deleted " << a->handle
                              << (a->indices.empty() ? "" : " (some values)") << '\n';
                }
                return static_cast<int>(kExitOk);
            }};
}

// ---- prefix -------------------------------------------------------------------------------------

std::vector<std::string> prefix_row(const json::value& v) {
    const auto& o = v.as_object();
    const auto* e = o.if_contains("enterprise");
    const json::object none;
    const json::object& ent = e && e->is_object() ? e->get_object() : none;
    return {field(o, "prefix"), field(o, "kind"),          field(o, "status"),
            field(ent, "name"), field(ent, "credit_code"), field(ent, "industry"),
            field(o, "created")};
}
const std::vector<std::string> kPrefixHeaders = {"prefix",      "kind",     "status", "enterprise",
                                                 "credit_code", "industry", "created"};

Command add_prefix(CLI::App& root, const GlobalOptions& global) {
    Group g{root.add_subcommand("prefix", "enterprise prefixes (admin)"), {}};
    g.app->require_subcommand(1);

    struct Alloc {
        std::string prefix, parent, name, credit_code, industry, contact;
    };
    auto a = std::make_shared<Alloc>();
    auto* alloc = g.app->add_subcommand(
        "allocate", "allocate an enterprise prefix: PREFIX, or the next free one under --parent");
    alloc->add_option("prefix", a->prefix, "the prefix, e.g. 88.118.8");
    alloc->add_option("--parent", a->parent, "allocate the next free number under this prefix");
    alloc->add_option("--name", a->name, "enterprise name")->required();
    alloc->add_option("--credit-code", a->credit_code, "unified social credit code (18 chars)")
        ->required();
    alloc->add_option("--industry", a->industry, "GB/T 4754 industry code, e.g. C3130")->required();
    alloc->add_option("--contact", a->contact, "contact person or address");
    g.children.push_back(
        {alloc, [a, &global] {
             if (a->prefix.empty() == a->parent.empty()) {
                 return fail("prefix allocate", "give PREFIX or --parent", kExitUsage);
             }
             json::object req{{"enterprise", json::object{{"name", a->name},
                                                          {"credit_code", a->credit_code},
                                                          {"industry", a->industry},
                                                          {"contact", a->contact}}}};
             if (!a->prefix.empty()) {
                 req["prefix"] = a->prefix;
             } else {
                 req["parent"] = a->parent;
             }
             return call_and_show(
                 "prefix allocate", global,
                 [&req](sdk::Client& c) { return c.allocate_prefix(json::serialize(req)); },
                 [](const json::value& v) {
                     print_table(std::cout, kPrefixHeaders, {prefix_row(v)});
                 });
         }});

    auto* list = g.app->add_subcommand("list", "list the prefixes of this node");
    g.children.push_back({list, [&global] {
                              return call_and_show(
                                  "prefix list", global,
                                  [](sdk::Client& c) { return c.list_prefixes(); },
                                  [](const json::value& v) {
                                      print_rows(v, "prefixes", kPrefixHeaders, prefix_row);
                                  });
                          }});

    auto shown = std::make_shared<std::string>();
    auto* show_cmd = g.app->add_subcommand("show", "show one prefix");
    show_cmd->add_option("prefix", *shown, "the prefix")->required();
    g.children.push_back({show_cmd, [shown, &global] {
                              return call_and_show(
                                  "prefix show", global,
                                  [&shown](sdk::Client& c) { return c.get_prefix(*shown); },
                                  [](const json::value& v) {
                                      print_table(std::cout, kPrefixHeaders, {prefix_row(v)});
                                  });
                          }});

    for (const bool suspend : {true, false}) {
        const std::string name = suspend ? "suspend" : "resume";
        auto target = std::make_shared<std::string>();
        auto* sub = g.app->add_subcommand(
            name, suspend ? "suspend a prefix: its identifiers can no longer be written"
                          : "make a suspended prefix active again");
        sub->add_option("prefix", *target, "the prefix")->required();
        g.children.push_back(
            {sub, [target, suspend, name, &global] {
                 const std::string status = suspend ? "suspended" : "active";
                 return call_and_report(
                     "prefix " + name, global,
                     [&](sdk::Client& c) {
                         return suspend ? c.suspend_prefix(*target) : c.resume_prefix(*target);
                     },
                     json::object{{"prefix", *target}, {"status", status}}, *target + ' ' + status);
             }});
    }
    g.children.push_back(add_route_commands(g.app, global));
    return g.command();
}

// ---- account ------------------------------------------------------------------------------------

std::vector<std::string> account_row(const json::value& v) {
    const auto& o = v.as_object();
    std::string prefixes;
    for (const auto& p : array_at(v, "prefixes")) {
        prefixes += (prefixes.empty() ? "" : ",") + str(&p);
    }
    const auto* disabled = o.if_contains("disabled");
    return {field(o, "username"),
            field(o, "role"),
            prefixes,
            field(o, "has_password"),
            disabled && disabled->is_bool() && disabled->get_bool() ? "disabled" : "active",
            field(o, "created")};
}
const std::vector<std::string> kAccountHeaders = {"username", "role",   "prefixes",
                                                  "password", "status", "created"};

Command add_account(CLI::App& root, const GlobalOptions& global) {
    Group g{root.add_subcommand("account", "accounts, API keys and Handle identities (admin)"), {}};
    g.app->require_subcommand(1);

    struct Create {
        std::string username, role;
        std::vector<std::string> prefixes;
        bool password_stdin = false;
    };
    auto c = std::make_shared<Create>();
    auto* create = g.app->add_subcommand("create", "create an account");
    create->add_option("username", c->username, "the account name")->required();
    create->add_option("--role", c->role, "admin, enterprise or reader")->required();
    create->add_option("--prefix", c->prefixes,
                       "prefix the account owns (enterprise) or may read (reader); repeatable");
    create->add_flag("--password-stdin", c->password_stdin,
                     "read a password for the account from stdin (else it has only API keys)");
    g.children.push_back(
        {create, [c, &global] {
             json::array prefixes;
             for (const auto& p : c->prefixes) {
                 prefixes.emplace_back(p);
             }
             json::object req{
                 {"username", c->username}, {"role", c->role}, {"prefixes", std::move(prefixes)}};
             if (c->password_stdin) {
                 auto pw = read_secret("password: ");
                 if (!pw || pw->empty()) {
                     return fail("account create", "no password on stdin", kExitUsage);
                 }
                 req["password"] = *pw;
             }
             return call_and_show(
                 "account create", global,
                 [&req](sdk::Client& cl) { return cl.create_account(json::serialize(req)); },
                 [](const json::value& v) {
                     print_table(std::cout, kAccountHeaders, {account_row(v)});
                 });
         }});

    auto* list = g.app->add_subcommand("list", "list the accounts");
    g.children.push_back({list, [&global] {
                              return call_and_show(
                                  "account list", global,
                                  [](sdk::Client& c) { return c.list_accounts(); },
                                  [](const json::value& v) {
                                      print_rows(v, "accounts", kAccountHeaders, account_row);
                                  });
                          }});

    auto pw_user = std::make_shared<std::string>();
    auto* passwd = g.app->add_subcommand(
        "passwd", "set an account's password (read from stdin; login tokens of the old one die)");
    passwd->add_option("username", *pw_user, "the account")->required();
    g.children.push_back({passwd, [pw_user, &global] {
                              auto pw = read_secret("new password: ");
                              if (!pw || pw->empty()) {
                                  return fail("account passwd", "no password on stdin", kExitUsage);
                              }
                              return call_and_report(
                                  "account passwd", global,
                                  [&](sdk::Client& c) { return c.set_password(*pw_user, *pw); },
                                  json::object{{"username", *pw_user}, {"password", "changed"}},
                                  "password of " + *pw_user + " changed");
                          }});

    // disable | enable | delete USER: one request each, the same output shape.
    struct Switch {
        const char* name;
        const char* help;
        sdk::Status (sdk::Client::*call)(std::string_view) const;
        const char* done; // the JSON "status" and the text's verb
    };
    for (const Switch& sw : {
             Switch{"disable", "disable an account: none of its credentials works until enabled",
                    &sdk::Client::disable_account, "disabled"},
             Switch{"enable", "enable a disabled account", &sdk::Client::enable_account, "active"},
             Switch{"delete", "delete an account and its API keys (its prefixes stay allocated)",
                    &sdk::Client::delete_account, "deleted"},
         }) {
        auto user = std::make_shared<std::string>();
        auto* cmd = g.app->add_subcommand(sw.name, sw.help);
        cmd->add_option("username", *user, "the account")->required();
        const std::string command = std::string("account ") + sw.name;
        g.children.push_back(
            {cmd, [user, sw, command, &global] {
                 return call_and_report(
                     command, global, [&](sdk::Client& c) { return (c.*sw.call)(*user); },
                     json::object{{"username", *user}, {"status", sw.done}}, *user + ' ' + sw.done);
             }});
    }

    Group keys{g.app->add_subcommand("key", "API keys of an account"), {}};
    keys.app->require_subcommand(1);
    auto key_user = std::make_shared<std::string>();
    auto* key_create =
        keys.app->add_subcommand("create", "make a new API key (shown once, never again)");
    key_create->add_option("username", *key_user, "the account")->required();
    keys.children.push_back({key_create, [key_user, &global] {
                                 std::optional<sdk::Client> client;
                                 if (int rc = open_client("account key create", global, client)) {
                                     return rc;
                                 }
                                 auto r = client->create_key(*key_user);
                                 if (!r) {
                                     return sdk_fail("account key create", r.error());
                                 }
                                 if (global.json) {
                                     print_json(std::cout, json::object{{"username", *key_user},
                                                                        {"key_id", r->key_id},
                                                                        {"key", r->key}});
                                 } else {
                                     print_table(std::cout, {"username", "key_id", "key"},
                                                 {{*key_user, r->key_id, r->key}});
                                     std::cerr << "the key is shown only now: store it\n";
                                 }
                                 return static_cast<int>(kExitOk);
                             }});
    struct Revoke {
        std::string username, key_id;
    };
    auto rv = std::make_shared<Revoke>();
    auto* key_revoke = keys.app->add_subcommand("revoke", "revoke an API key");
    key_revoke->add_option("username", rv->username, "the account")->required();
    key_revoke->add_option("key_id", rv->key_id, "the key's id (key create shows it)")->required();
    keys.children.push_back(
        {key_revoke, [rv, &global] {
             return call_and_report(
                 "account key revoke", global,
                 [&](sdk::Client& c) { return c.revoke_key(rv->username, rv->key_id); },
                 json::object{
                     {"username", rv->username}, {"key_id", rv->key_id}, {"revoked", true}},
                 "revoked key " + rv->key_id + " of " + rv->username);
         }});
    g.children.push_back(keys.command());
    g.children.push_back(add_identity_commands(g.app, global));
    return g.command();
}

// ---- template -----------------------------------------------------------------------------------

std::vector<std::string> template_row(const json::value& v) {
    const auto& o = v.as_object();
    const std::string industry = field(o, "industrySubclass").empty()
                                     ? field(o, "industryCategory")
                                     : field(o, "industrySubclass");
    return {field(o, "prefix"), field(o, "version"),
            industry,           std::to_string(array_at(v, "items").size()),
            field(o, "usage"),  field(o, "description")};
}
const std::vector<std::string> kTemplateHeaders = {"prefix", "version", "industry",
                                                   "items",  "usage",   "description"};

Command add_template(CLI::App& root, const GlobalOptions& global) {
    Group g{root.add_subcommand("template", "metadata templates"), {}};
    g.app->require_subcommand(1);

    struct Import {
        std::string file, prefix;
    };
    auto im = std::make_shared<Import>();
    auto* import = g.app->add_subcommand(
        "import", "create a template from a JSON document, or update it when the version exists");
    import->add_option("file", im->file, "the template document (conf/templates/*.json)")
        ->required();
    import->add_option("--prefix", im->prefix,
                       "the prefix it belongs to (needed when the document names none)");
    g.children.push_back(
        {import, [im, &global] {
             std::ifstream in(im->file, std::ios::binary);
             if (!in) {
                 return fail("template import", "cannot read " + im->file, kExitUsage);
             }
             std::stringstream text;
             text << in.rdbuf();
             auto doc = parse_json_text(text.str());
             if (!doc || !doc->is_object()) {
                 return fail("template import", im->file + " is not a JSON object", kExitUsage);
             }
             auto& o = doc->as_object();
             if (!im->prefix.empty()) {
                 if (const auto* p = o.if_contains("prefix");
                     p != nullptr && (!p->is_string() || p->get_string() != im->prefix)) {
                     return fail("template import",
                                 im->file + " names prefix " + str(p) + ", not " + im->prefix,
                                 kExitUsage);
                 }
                 o["prefix"] = im->prefix;
             }
             if (field(o, "prefix").empty()) {
                 return fail("template import", im->file + " names no prefix: pass --prefix",
                             kExitUsage);
             }
             std::optional<sdk::Client> client;
             if (int rc = open_client("template import", global, client)) {
                 return rc;
             }
             std::string action = "created";
             auto r = client->create_template(json::serialize(o));
             if (!r && r.error().kind == sdk::ErrorKind::conflict) {
                 action = "updated";
                 r = client->update_template(field(o, "prefix"), field(o, "version"),
                                             json::serialize(o));
             }
             if (!r) {
                 return sdk_fail("template import", r.error());
             }
             if (global.json) {
                 print_json(std::cout, json::object{{"prefix", field(o, "prefix")},
                                                    {"version", field(o, "version")},
                                                    {"action", action}});
             } else {
                 std::cout << action << " template " << field(o, "prefix") << ' '
                           << field(o, "version") << '\n';
             }
             return static_cast<int>(kExitOk);
         }});

    auto list_prefix = std::make_shared<std::string>();
    auto* list = g.app->add_subcommand("list", "list the templates you may read");
    list->add_option("--prefix", *list_prefix, "only this prefix's templates");
    g.children.push_back({list, [list_prefix, &global] {
                              std::optional<sdk::Client> client;
                              if (int rc = open_client("template list", global, client)) {
                                  return rc;
                              }
                              auto r = client->list_templates();
                              if (!r) {
                                  return sdk_fail("template list", r.error());
                              }
                              auto v = parse_json_text(*r);
                              if (!v) {
                                  return fail("template list", "the node's answer is not JSON");
                              }
                              json::array kept;
                              for (const auto& t : array_at(*v, "templates")) {
                                  if (list_prefix->empty() ||
                                      field(t.as_object(), "prefix") == *list_prefix) {
                                      kept.push_back(t);
                                  }
                              }
                              if (global.json) {
                                  print_json(std::cout, json::object{{"templates", kept}});
                              } else {
                                  std::vector<std::vector<std::string>> rows;
                                  for (const auto& t : kept) {
                                      rows.push_back(template_row(t));
                                  }
                                  print_table(std::cout, kTemplateHeaders, rows);
                              }
                              return static_cast<int>(kExitOk);
                          }});

    struct Show {
        std::string prefix, version;
    };
    auto sh = std::make_shared<Show>();
    auto* show_cmd = g.app->add_subcommand("show", "show a template and its items");
    show_cmd->add_option("prefix", sh->prefix, "the prefix")->required();
    show_cmd->add_option("version", sh->version, "the version")->required();
    g.children.push_back(
        {show_cmd, [sh, &global] {
             return call_and_show(
                 "template show", global,
                 [&sh](sdk::Client& c) { return c.get_template(sh->prefix, sh->version); },
                 [](const json::value& v) {
                     print_table(std::cout, kTemplateHeaders, {template_row(v)});
                     std::cout << '\n';
                     std::vector<std::vector<std::string>> rows;
                     for (const auto& item : array_at(v, "items")) {
                         const auto& o = item.as_object();
                         const auto* m = o.if_contains("metadata");
                         const json::object none;
                         const json::object& meta = m && m->is_object() ? m->get_object() : none;
                         rows.push_back({field(o, "idIndex"), field(o, "idType"), field(o, "name"),
                                         field(meta, "type"), field(o, "required"),
                                         field(o, "state") == "1" ? "enabled" : "disabled",
                                         o.contains("public") ? field(o, "public") : "true"});
                     }
                     print_table(std::cout,
                                 {"index", "idType", "name", "type", "required", "state", "public"},
                                 rows);
                 });
         }});
    return g.command();
}

// ---- stats --------------------------------------------------------------------------------------

Command add_stats(CLI::App& root, const GlobalOptions& global) {
    auto* cmd = root.add_subcommand("stats", "identifiers per prefix, registrations and "
                                             "resolutions today");
    return {cmd, [&global] {
                return call_and_show(
                    "stats", global, [](sdk::Client& c) { return c.stats(); },
                    [](const json::value& v) {
                        const auto& o = v.as_object();
                        print_table(std::cout,
                                    {"identifiers", "registrations_today", "resolutions_today"},
                                    {{field(o, "identifiers"), field(o, "registrations_today"),
                                      field(o, "resolutions_today")}});
                        std::vector<std::vector<std::string>> rows;
                        for (const auto& p : array_at(v, "prefixes")) {
                            rows.push_back({field(p.as_object(), "prefix"),
                                            field(p.as_object(), "identifiers")});
                        }
                        if (!rows.empty()) {
                            std::cout << '\n';
                            print_table(std::cout, {"prefix", "identifiers"}, rows);
                        }
                    });
            }};
}

} // namespace

Command add_resolve_command(CLI::App& root, const GlobalOptions& global) {
    return add_resolve(root, global);
}
Command add_get_command(CLI::App& root, const GlobalOptions& global) {
    return add_get(root, global);
}
Command add_put_command(CLI::App& root, const GlobalOptions& global) {
    return add_put(root, global);
}
Command add_delete_command(CLI::App& root, const GlobalOptions& global) {
    return add_delete(root, global);
}
Command add_prefix_command(CLI::App& root, const GlobalOptions& global) {
    return add_prefix(root, global);
}
Command add_account_command(CLI::App& root, const GlobalOptions& global) {
    return add_account(root, global);
}
Command add_template_command(CLI::App& root, const GlobalOptions& global) {
    return add_template(root, global);
}
Command add_stats_command(CLI::App& root, const GlobalOptions& global) {
    return add_stats(root, global);
}

} // namespace idnode::idctl
