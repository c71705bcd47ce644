// idctl — operator and client command line for idnode.
//
// Exit codes (DESIGN §5.5): 0 ok, 1 operation failed, 2 usage, 3 partial success.
// Implemented so far: `init` (offline, on --data-dir). The networked commands come with the SDK
// (issue 7).
#include "idnode/registry/admin.hpp"
#include "idnode/registry/registry.hpp"
#include "idnode/sdk/version.hpp"

#include <CLI/CLI.hpp>

#include <chrono>
#include <iostream>

namespace {

using namespace idnode::registry;

std::int64_t unix_now() {
    return std::chrono::duration_cast<std::chrono::seconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

/// Creates the environment, homes the node prefix, creates the admin account and its first API
/// key, and prints {"admin_key":"…"} once. Refuses an already initialised directory.
int init(const std::string& data_dir, const std::string& node_prefix,
         const std::string& admin_user) {
    auto folded = parse_prefix(node_prefix);
    if (!folded) {
        std::cerr << "idctl init: --node-prefix: " << folded.error().message << "\n";
        return 2;
    }
    if (Status st = validate_username(admin_user); !st) {
        std::cerr << "idctl init: --admin-user: " << st.error().message << "\n";
        return 2;
    }
    RegistryOptions options;
    options.data_dir = data_dir;
    std::unique_ptr<Registry> registry;
    try {
        registry = Registry::open(options);
    } catch (const StartupError& e) {
        std::cerr << "idctl init: " << e.what() << "\n";
        return 1;
    }
    if (!registry->snapshot().list_entries(Table::accounts, {}, 1).entries.empty()) {
        std::cerr << "idctl init: " << data_dir << " is already initialised (it has accounts)\n";
        return 1;
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
            std::cerr << "idctl init: " << r.error.message << "\n";
            return 1;
        }
    }
    std::cout << "{\"admin_key\":\"" << key.key << "\"}" << std::endl;
    return 0;
}

} // namespace

int main(int argc, char** argv) {
    CLI::App app{"idctl — operate an idnode and register, resolve and load identifiers"};
    app.set_version_flag("--version", std::string("idctl ") + idnode::sdk::version());
    app.require_subcommand(1);

    std::string data_dir, node_prefix, admin_user = "admin";
    auto* init_cmd = app.add_subcommand("init", "initialise a node's database (offline)");
    init_cmd->add_option("--data-dir", data_dir, "the node's data directory")->required();
    init_cmd->add_option("--node-prefix", node_prefix, "node prefix to home, e.g. 88.118")
        ->required();
    init_cmd->add_option("--admin-user", admin_user, "name of the admin account (default admin)");

    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        const int rc = app.exit(e);
        return rc == 0 ? 0 : 2;
    }
    if (init_cmd->parsed()) {
        return init(data_dir, node_prefix, admin_user);
    }
    return 2;
}
