// `idctl init` (offline): creates a node's database, homes its node prefix, creates the admin
// account and its first API key, and prints {"admin_key":"…"} once (tests and tools/dev read it).
// `idctl config`: shows the connection settings the online commands would use, and from where.
#include "cli.hpp"

#include "idnode/registry/admin.hpp"
#include "idnode/registry/registry.hpp"

#include <boost/json.hpp>

#include <chrono>
#include <iostream>

namespace idnode::idctl {

using namespace idnode::registry;

namespace {

std::int64_t unix_now() {
    return std::chrono::duration_cast<std::chrono::seconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

/// Refuses an already initialised directory.
int init(const std::string& data_dir, const std::string& node_prefix,
         const std::string& admin_user) {
    auto folded = parse_prefix(node_prefix);
    if (!folded) {
        return fail("init", "--node-prefix: " + folded.error().message, kExitUsage);
    }
    if (Status st = validate_username(admin_user); !st) {
        return fail("init", "--admin-user: " + st.error().message, kExitUsage);
    }
    RegistryOptions options;
    options.data_dir = data_dir;
    std::unique_ptr<Registry> registry;
    try {
        registry = Registry::open(options);
    } catch (const StartupError& e) {
        return fail("init", e.what());
    }
    if (registry->snapshot().has_entries(Table::accounts)) {
        return fail("init", data_dir + " is already initialised (it has accounts)");
    }
    const std::int64_t now = unix_now();
    PrefixRecord prefix;
    prefix.prefix = node_prefix;
    prefix.kind = PrefixKind::node;
    prefix.created = now;
    Account admin;
    admin.username = admin_user;
    admin.role = Role::admin;
    admin.created = now;
    auto key = generate_api_key(admin_user, now);

    WriteBatch batch;
    batch.account = "idctl-init";
    batch.ops.push_back(PutEntry{Table::prefixes, *folded, encode_prefix(prefix), PutMode::create});
    batch.ops.push_back(
        PutEntry{Table::accounts, admin_user, encode_account(admin), PutMode::create});
    batch.ops.push_back(
        PutEntry{Table::api_keys, key.record.key_id, encode_api_key(key.record), PutMode::create});
    for (const auto& r : registry->write(std::move(batch))) {
        if (!r.ok()) {
            return fail("init", r.error.message);
        }
    }
    std::cout << "{\"admin_key\":\"" << key.key << "\"}" << std::endl;
    return kExitOk;
}

} // namespace

Command add_init_command(CLI::App& root, const GlobalOptions&) {
    struct Args {
        std::string data_dir, node_prefix, admin_user = "admin";
    };
    auto args = std::make_shared<Args>();
    auto* cmd = root.add_subcommand("init", "initialise a node's database (offline)");
    cmd->add_option("--data-dir", args->data_dir, "the node's data directory")->required();
    cmd->add_option("--node-prefix", args->node_prefix, "node prefix to home, e.g. 88.118")
        ->required();
    cmd->add_option("--admin-user", args->admin_user, "name of the admin account (default admin)");
    return {cmd, [args] { return init(args->data_dir, args->node_prefix, args->admin_user); }};
}

Command add_config_command(CLI::App& root, const GlobalOptions& global) {
    auto* cmd = root.add_subcommand(
        "config", "show the connection settings online commands use, and where each came from");
    return {cmd, [&global] {
                const EnvLookup env = process_environment();
                const std::filesystem::path file = config_file_path(global.config_file, env);
                auto s = resolve_connection(global.connection, env, file);
                if (!s) {
                    return fail("config", s.error().message, kExitUsage);
                }
                // Secrets are never printed: only whether and from where they came.
                const std::string credential = !s->key.empty()    ? "api key"
                                               : !s->user.empty() ? "user " + s->user
                                                                  : "none";
                if (global.json) {
                    print_json(std::cout,
                               boost::json::object{
                                   {"url", s->url},
                                   {"url_source", source_name(s->url_source)},
                                   {"ca_file", s->ca_file},
                                   {"credential", credential},
                                   {"credential_source", source_name(s->credential_source)},
                                   {"config_file", file.string()}});
                } else {
                    print_table(std::cout, {"setting", "value", "from"},
                                {{"url", s->url, source_name(s->url_source)},
                                 {"ca_file", s->ca_file.empty() ? "(system)" : s->ca_file, ""},
                                 {"credential", credential, source_name(s->credential_source)},
                                 {"config_file", file.string(), ""}});
                }
                return static_cast<int>(kExitOk);
            }};
}

} // namespace idnode::idctl
