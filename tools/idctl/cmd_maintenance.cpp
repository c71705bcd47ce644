// Offline read-side commands on a node's data directory, safe while the node runs (the registry
// is opened read_only):
//   idctl export --offline --data-dir DIR --prefix P [--output FILE]   NDJSON that `load` accepts
//   (`export` without --offline goes over HTTPS: export_online in cmd_export_online.cpp)
//   idctl backup --data-dir DIR OUT        consistent, compacted hot copy (OUT/data.mdb)
//   idctl verify --data-dir DIR            walks every record and index; exit 1 on problems
#include "cli.hpp"
#include "online.hpp"
#include "record_io.hpp"

#include "idnode/registry/registry.hpp"

#include <boost/json.hpp>

#include <chrono>
#include <fstream>
#include <iostream>

namespace idnode::idctl {

using namespace idnode::registry;

namespace {

Result<std::unique_ptr<Registry>> open_read_only(const std::string& data_dir) {
    RegistryOptions options;
    options.data_dir = data_dir;
    options.mode = OpenMode::read_only;
    try {
        return Registry::open(options);
    } catch (const StartupError& e) {
        return Error{e.code(), e.what()};
    }
}

int export_prefix(const std::string& data_dir, const std::string& prefix, const std::string& output,
                  const GlobalOptions& global) {
    if (auto p = parse_prefix(prefix); !p) {
        return fail("export", "--prefix: " + p.error().message, kExitUsage);
    }
    auto registry = open_read_only(data_dir);
    if (!registry) {
        return fail("export", registry.error().message);
    }
    std::ofstream file;
    if (!output.empty()) {
        file.open(output, std::ios::out | std::ios::trunc);
        if (!file) {
            return fail("export", "cannot write " + output);
        }
    }
    std::ostream& out = output.empty() ? std::cout : file;
    std::string cursor;
    std::uint64_t exported = 0;
    // One snapshot per page: a long-lived read transaction would pin old pages of a running
    // node. A record deleted between pages is simply not exported.
    do {
        auto snap = (*registry)->snapshot();
        auto page = snap.list(prefix, cursor, 1000);
        if (!page) {
            return fail("export", page.error().message);
        }
        for (const auto& spelling : page->handles) {
            auto handle = parse_handle(spelling, HandleLimits{kHandleProtocolMaxLength});
            if (!handle) {
                return fail("export", "stored handle " + spelling + ": " + handle.error().message);
            }
            Status st = snap.visit(
                *handle, [&](const RecordView& view) { out << record_to_ndjson(view) << '\n'; });
            if (!st && st.code() != Errc::not_found) {
                return fail("export", st.error().message);
            }
            exported += st ? 1 : 0;
        }
        cursor = page->next_cursor;
    } while (!cursor.empty());
    return finish_export(out, output, exported, global);
}

int backup(const std::string& data_dir, const std::string& out_dir, const GlobalOptions& global) {
    auto registry = open_read_only(data_dir);
    if (!registry) {
        return fail("backup", registry.error().message);
    }
    const auto started = std::chrono::steady_clock::now();
    if (Status st = (*registry)->backup(out_dir); !st) {
        return fail("backup", st.error().message);
    }
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    std::error_code ec;
    const auto bytes = std::filesystem::file_size(std::filesystem::path(out_dir) / "data.mdb", ec);
    if (global.json) {
        print_json(std::cout, boost::json::object{{"backup", out_dir},
                                                  {"bytes", ec ? 0 : bytes},
                                                  {"seconds", seconds}});
    } else {
        print_table(std::cout, {"backup", "bytes", "seconds"},
                    {{out_dir, std::to_string(ec ? 0 : bytes), std::to_string(seconds)}});
    }
    return kExitOk;
}

int verify(const std::string& data_dir, const GlobalOptions& global) {
    auto registry = open_read_only(data_dir);
    if (!registry) {
        return fail("verify", registry.error().message);
    }
    const VerifyReport report = (*registry)->verify();
    if (global.json) {
        boost::json::array problems;
        for (const auto& p : report.problems) {
            problems.emplace_back(p);
        }
        print_json(std::cout, boost::json::object{{"ok", report.ok()},
                                                  {"identifiers", report.identifiers},
                                                  {"changes", report.changes},
                                                  {"admin_entries", report.admin_entries},
                                                  {"problems", std::move(problems)}});
    } else {
        print_table(
            std::cout, {"identifiers", "changes", "admin entries", "problems"},
            {{std::to_string(report.identifiers), std::to_string(report.changes),
              std::to_string(report.admin_entries), std::to_string(report.problems.size())}});
        for (const auto& p : report.problems) {
            std::cout << "problem: " << p << '\n';
        }
    }
    return report.ok() ? kExitOk : kExitFailed;
}

} // namespace

Command add_export_command(CLI::App& root, const GlobalOptions& global) {
    struct Args {
        bool offline = false;
        std::string data_dir, prefix, output;
    };
    auto a = std::make_shared<Args>();
    auto* cmd = root.add_subcommand(
        "export", "stream the identifiers under a prefix as NDJSON that `idctl load` accepts");
    cmd->add_flag("--offline", a->offline, "read the node's database directly (needs --data-dir)");
    cmd->add_option("--data-dir", a->data_dir, "the node's data directory (offline)");
    cmd->add_option("--prefix", a->prefix, "identifiers under exactly this prefix")->required();
    cmd->add_option("--output,-o", a->output, "write to FILE instead of stdout");
    return {cmd, [a, &global] {
                if (!a->offline) {
                    if (!a->data_dir.empty()) {
                        return fail("export", "--data-dir needs --offline", kExitUsage);
                    }
                    return export_online(a->prefix, a->output, global);
                }
                if (a->data_dir.empty()) {
                    return fail("export", "--offline needs --data-dir", kExitUsage);
                }
                return export_prefix(a->data_dir, a->prefix, a->output, global);
            }};
}

Command add_backup_command(CLI::App& root, const GlobalOptions& global) {
    struct Args {
        std::string data_dir, out_dir;
    };
    auto a = std::make_shared<Args>();
    auto* cmd = root.add_subcommand(
        "backup", "consistent, compacted copy of a node's database, also while it runs");
    cmd->add_option("--data-dir", a->data_dir, "the node's data directory")->required();
    cmd->add_option("out", a->out_dir, "new directory for the copy (gets data.mdb)")->required();
    return {cmd, [a, &global] { return backup(a->data_dir, a->out_dir, global); }};
}

Command add_verify_command(CLI::App& root, const GlobalOptions& global) {
    auto data_dir = std::make_shared<std::string>();
    auto* cmd = root.add_subcommand(
        "verify", "check every record, counter, change-log entry and admin table; exit 1 on "
                  "problems");
    cmd->add_option("--data-dir", *data_dir, "the node's data directory")->required();
    return {cmd, [data_dir, &global] { return verify(*data_dir, global); }};
}

} // namespace idnode::idctl
