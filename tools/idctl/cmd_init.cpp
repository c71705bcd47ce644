// `idctl init` (offline): creates a node's database, homes its node prefix, creates the admin
// account and its first API key, makes the Handle server's key pair (handle.private_key), and
// prints {"admin_key":"…","handle_key":"<path>"} once (tests and tools/dev read it).
// `idctl config`: shows the connection settings the online commands would use, and from where.
#include "cli.hpp"

#include "idnode/registry/admin.hpp"
#include "idnode/registry/registry.hpp"

#include <boost/json.hpp>

#include <openssl/evp.h>
#include <openssl/pem.h>

#include <sys/stat.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <memory>
#include <optional>

namespace idnode::idctl {

using namespace idnode::registry;

namespace {

std::int64_t unix_now() {
    return std::chrono::duration_cast<std::chrono::seconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

/// Writes a fresh RSA-2048 private key (PKCS#8 PEM, mode 0600) to `path`, which must not exist:
/// a node's key is its identity in site info, so an existing one is never replaced.
std::optional<std::string> write_handle_key(const std::filesystem::path& path) {
    if (std::filesystem::exists(path)) {
        return path.string() + " exists; a server key is never overwritten";
    }
    std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key(EVP_RSA_gen(2048), &EVP_PKEY_free);
    if (!key) {
        return "cannot generate an RSA key pair";
    }
    const mode_t old_mask = ::umask(077);
    std::FILE* file = std::fopen(path.c_str(), "wx");
    ::umask(old_mask);
    if (file == nullptr) {
        return "cannot create " + path.string();
    }
    const bool written =
        PEM_write_PrivateKey(file, key.get(), nullptr, nullptr, 0, nullptr, nullptr) == 1;
    if (std::fclose(file) != 0 || !written) {
        std::filesystem::remove(path);
        return "cannot write " + path.string();
    }
    return std::nullopt;
}

/// Refuses an already initialised directory.
int init(const std::string& data_dir, const std::string& node_prefix, const std::string& admin_user,
         std::string handle_key) {
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
    if (handle_key.empty()) {
        handle_key = (std::filesystem::path(data_dir) / "handle-key.pem").string();
    }
    if (auto problem = write_handle_key(handle_key)) {
        return fail("init", "--handle-key: " + *problem);
    }
    for (const auto& r : registry->write(std::move(batch))) {
        if (!r.ok()) {
            std::filesystem::remove(handle_key); // init may be run again
            return fail("init", r.error.message);
        }
    }
    boost::json::object out{{"admin_key", key.key}, {"handle_key", handle_key}};
    std::cout << boost::json::serialize(out) << std::endl;
    return kExitOk;
}

} // namespace

Command add_init_command(CLI::App& root, const GlobalOptions&) {
    struct Args {
        std::string data_dir, node_prefix, admin_user = "admin", handle_key;
    };
    auto args = std::make_shared<Args>();
    auto* cmd = root.add_subcommand("init", "initialise a node's database (offline)");
    cmd->add_option("--data-dir", args->data_dir, "the node's data directory")->required();
    cmd->add_option("--node-prefix", args->node_prefix, "node prefix to home, e.g. 88.118")
        ->required();
    cmd->add_option("--admin-user", args->admin_user, "name of the admin account (default admin)");
    cmd->add_option("--handle-key", args->handle_key,
                    "where to write the Handle server's private key (handle.private_key; default "
                    "DATA_DIR/handle-key.pem; never overwritten)");
    return {cmd, [args] {
                return init(args->data_dir, args->node_prefix, args->admin_user, args->handle_key);
            }};
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
