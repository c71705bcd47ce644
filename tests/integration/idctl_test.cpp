// idctl end to end through the real binaries: offline load (rejects file, exit 3), export and
// re-load round trip, the refusal to load under a running node, backup under write load restored
// into a fresh node, verify, exit codes for usage errors, and `idctl qr` (single and bulk, PNGs
// decoded with zbarimg).
#include "harness.hpp"

#include <boost/json.hpp>
#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <csignal>
#include <fcntl.h>
#include <fstream>
#include <random>
#include <set>
#include <spawn.h>
#include <sstream>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

using namespace idnode::test;
namespace json = boost::json;
using V = http::verb;

namespace {

std::string idctl() {
    return IDNODE_IDCTL_BINARY;
}

std::string init(const fs::path& db) {
    auto r = run_command({idctl(), "init", "--data-dir", db.string(), "--node-prefix", "88.118"});
    REQUIRE_MESSAGE(r.exit_code == 0, r.err);
    return std::string(json::parse(r.out).at("admin_key").as_string());
}

std::string read_file(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
}

void write_file(const fs::path& p, const std::string& text) {
    std::ofstream(p, std::ios::binary) << text;
}

std::vector<std::string> lines_of(const std::string& text) {
    std::vector<std::string> out;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) {
        out.push_back(line);
    }
    return out;
}

/// Export lines with the values' timestamps removed (each load stamps its own time).
std::vector<std::string> without_timestamps(const std::string& ndjson) {
    std::vector<std::string> out;
    for (const auto& line : lines_of(ndjson)) {
        json::value v = json::parse(line);
        for (auto& value : v.at("values").as_array()) {
            value.as_object().erase("timestamp");
        }
        out.push_back(json::serialize(v));
    }
    return out;
}

std::string export_prefix(const fs::path& db, const std::string& prefix) {
    auto r = run_command(
        {idctl(), "export", "--offline", "--data-dir", db.string(), "--prefix", prefix});
    REQUIRE_MESSAGE(r.exit_code == 0, r.err);
    return r.out;
}

} // namespace

TEST_CASE("offline load of a CSV with bad rows, export, re-load into a fresh node: identical") {
    TempDir dir("idctl-roundtrip");
    const fs::path a = dir.path() / "a", b = dir.path() / "b";
    init(a);
    init(b);
    const fs::path csv = dir.path() / "steel.csv";
    std::string text = "handle,1:URL,2000:heat_no,2001:grade\n";
    for (int i = 0; i < 200; ++i) {
        text += "88.118.8/H-" + std::to_string(1000 + i) + ",https://steel.example.cn/" +
                std::to_string(i) + ",\"H" + std::to_string(i) + ",a\",Q235\n";
    }
    text += "99.1/H-1,https://x,h,g\n";            // line 202: not homed
    text += "88.118.8/H-2,only-two-cells\n";       // line 203: wrong cell count
    text += "88.118.8/\x01,https://x,h,g\n";       // line 204: control character in the suffix
    text += "88.118.8/h-1000,https://other,h,g\n"; // line 205: same handle, other content
    write_file(csv, text);

    auto load = run_command({idctl(), "--json", "load", "--offline", "--data-dir", a.string(),
                             "--template", "v1", csv.string()});
    CHECK_MESSAGE(load.exit_code == 3, load.err);
    const json::value summary = json::parse(load.out);
    CHECK(summary.at("records").to_number<std::uint64_t>() == 204);
    CHECK(summary.at("created").to_number<std::uint64_t>() == 200);
    CHECK(summary.at("rejected").to_number<std::uint64_t>() == 4);
    std::map<std::int64_t, std::string> rejected;
    for (const auto& line : lines_of(read_file(fs::path(csv.string() + ".rejects.ndjson")))) {
        const json::value r = json::parse(line);
        rejected[r.at("line").as_int64()] = std::string(r.at("error").at("code").as_string());
    }
    CHECK(rejected == std::map<std::int64_t, std::string>{{202, "not_homed"},
                                                          {203, "invalid_value"},
                                                          {204, "invalid_handle"},
                                                          {205, "already_exists"}});

    const std::string first = export_prefix(a, "88.118.8");
    CHECK(lines_of(first).size() == 200);
    CHECK(first.find("\"TEMPLATE\"") != std::string::npos);
    const fs::path exported = dir.path() / "export.ndjson";
    write_file(exported, first);
    auto reload =
        run_command({idctl(), "load", "--offline", "--data-dir", b.string(), exported.string()});
    CHECK_MESSAGE(reload.exit_code == 0, reload.err);
    CHECK_FALSE(fs::exists(exported.string() + ".rejects.ndjson"));
    CHECK(without_timestamps(export_prefix(b, "88.118.8")) == without_timestamps(first));

    // Loading the same file again changes nothing (a crashed load is simply re-run).
    auto again = run_command(
        {idctl(), "--json", "load", "--offline", "--data-dir", b.string(), exported.string()});
    CHECK(again.exit_code == 0);
    CHECK(json::parse(again.out).at("unchanged").to_number<std::uint64_t>() == 200);

    auto verify = run_command({idctl(), "--json", "verify", "--data-dir", b.string()});
    CHECK_MESSAGE(verify.exit_code == 0, verify.out);
    CHECK(json::parse(verify.out).at("identifiers").to_number<std::uint64_t>() == 200);
}

TEST_CASE("offline loads, sorted and through spilled runs, equal the node's bulk path (export)") {
    TempDir dir("idctl-offline-vs-bulk");
    const fs::path sorted_db = dir.path() / "sorted", runs_db = dir.path() / "runs";
    init(sorted_db);
    init(runs_db);
    // ~2,600 records of ~500 bytes: more than --sort-memory 1MiB, so the shuffled load spills
    // runs and merges them. Mixed case (the key is folded), two enterprise prefixes, values with
    // ttl, permissions and base64 data, out-of-order value indices on some records (the writer's
    // slow path), and a duplicate handle in other case (already_exists in both paths).
    std::vector<std::string> lines;
    for (int i = 0; i < 2600; ++i) {
        const std::string n = std::to_string(100000 + i);
        const std::string handle = std::string(i % 3 == 0 ? "88.118.9/lot-" : "88.118.8/COIL-") + n;
        std::string line = R"({"handle":")" + handle + R"(","values":[)";
        if (i % 7 == 0) {
            line += R"({"index":2001,"type":"grade","data":"Q235B"},)";
        }
        line +=
            R"({"index":1,"type":"URL","data":{"format":"string","value":"https://steel.example.cn/coil/)" +
            n + R"("}},)";
        line += R"({"index":2000,"type":"heat_no","data":"H-)" + n + R"(","ttl":3600},)";
        line +=
            R"({"index":2002,"type":"blob","data":{"format":"base64","value":"AAEC"},"permissions":"1100"},)";
        line +=
            R"({"index":2003,"type":"mill_cert","data":"MC-2024-)" + n +
            R"(-HRC-QA-LINE2-and-some-padding-to-make-the-record-larger-than-usual-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}]})";
        lines.push_back(line);
    }
    lines.push_back(
        R"({"handle":"88.118.8/coil-100001","values":[{"index":1,"type":"URL","data":"https://other"}]})");
    std::string sorted_text, shuffled_text;
    {
        // Sorted by the folded handle, as `LC_ALL=C sort -f` would; the duplicate right after
        // the record it repeats (equal keys keep input order), so the whole file is in order.
        auto folded_handle = [](const std::string& line) {
            std::string h = line.substr(11, line.find('"', 11) - 11);
            for (char& ch : h) {
                ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
            }
            return h;
        };
        auto in_order = lines;
        std::stable_sort(in_order.begin(), in_order.end(),
                         [&](const std::string& a, const std::string& b) {
                             return folded_handle(a) < folded_handle(b);
                         });
        for (const auto& l : in_order) {
            sorted_text += l + "\n";
        }
        // Shuffled, the duplicate still after its original (so every path keeps the original).
        auto shuffled = std::vector<std::string>(lines.begin(), lines.end() - 1);
        std::mt19937 rng(7);
        std::shuffle(shuffled.begin(), shuffled.end(), rng);
        shuffled.push_back(lines.back());
        for (const auto& l : shuffled) {
            shuffled_text += l + "\n";
        }
    }
    const fs::path sorted_file = dir.path() / "sorted.ndjson",
                   shuffled_file = dir.path() / "shuffled.ndjson";
    write_file(sorted_file, sorted_text);
    write_file(shuffled_file, shuffled_text);

    auto sorted_load = run_command({idctl(), "--json", "load", "--offline", "--data-dir",
                                    sorted_db.string(), sorted_file.string()});
    CHECK_MESSAGE(sorted_load.exit_code == 3, sorted_load.err);
    const json::value s1 = json::parse(sorted_load.out);
    CHECK(s1.at("created").to_number<std::uint64_t>() == 2600);
    CHECK(s1.at("rejected").to_number<std::uint64_t>() == 1);
    CHECK(s1.at("sorted").as_bool());
    auto runs_load = run_command({idctl(), "--json", "load", "--offline", "--sort-memory", "1MiB",
                                  "--data-dir", runs_db.string(), shuffled_file.string()});
    CHECK_MESSAGE(runs_load.exit_code == 3, runs_load.err);
    const json::value s2 = json::parse(runs_load.out);
    CHECK(s2.at("created").to_number<std::uint64_t>() == 2600);
    CHECK(s2.at("rejected").to_number<std::uint64_t>() == 1);
    CHECK_FALSE(s2.at("sorted").as_bool());
    CHECK(s2.at("runs").to_number<std::uint64_t>() >= 1);

    // The same shuffled file through the running node's bulk endpoint, as the node's admin.
    NodeProcess node("offline-vs-bulk");
    const fs::path node_db = node.dir() / "db";
    const std::string admin = "Bearer " + init(node_db);
    node.start();
    HttpsClient c(node.https_port(), trust(node.pki().ca_cert), 30s);
    c.connect();
    for (const char* prefix : {"88.118.8", "88.118.9"}) {
        auto r = c.request(
            V::post, "/api/v1/prefixes",
            std::string(R"({"prefix":")") + prefix +
                R"(","enterprise":{"name":"E","credit_code":"91310000631696382C","industry":"C3120","contact":"ops@example.cn"}})",
            {{"Authorization", admin}});
        REQUIRE_MESSAGE(r.result() == http::status::created, r.body());
    }
    auto bulk =
        c.request(V::post, "/api/v1/bulk?mode=create", shuffled_text, {{"Authorization", admin}});
    REQUIRE_MESSAGE(bulk.result() == http::status::ok, bulk.body());
    const auto results = lines_of(bulk.body());
    REQUIRE(!results.empty());
    const json::value bulk_summary = json::parse(results.back()).at("summary");
    CHECK(bulk_summary.at("created").to_number<std::uint64_t>() == 2600);

    for (const char* prefix : {"88.118.8", "88.118.9"}) {
        CAPTURE(prefix);
        const auto via_node = without_timestamps(export_prefix(node_db, prefix));
        CHECK(via_node.size() == (std::string(prefix) == "88.118.8" ? 1733u : 867u));
        CHECK(without_timestamps(export_prefix(sorted_db, prefix)) == via_node);
        CHECK(without_timestamps(export_prefix(runs_db, prefix)) == via_node);
    }
    for (const fs::path& db : {sorted_db, runs_db}) {
        auto verify = run_command({idctl(), "--json", "verify", "--data-dir", db.string()});
        CHECK_MESSAGE(verify.exit_code == 0, verify.out);
    }
}

TEST_CASE("usage errors exit 2; unusable directories exit 1") {
    TempDir dir("idctl-usage");
    CHECK(run_command({idctl()}).exit_code == 2);
    CHECK(run_command({idctl(), "frobnicate"}).exit_code == 2);
    CHECK(run_command({idctl(), "verify"}).exit_code == 2); // --data-dir missing
    const fs::path db = dir.path() / "db";
    init(db);
    write_file(dir.path() / "x.ndjson", "");
    CHECK(run_command({idctl(), "load", "--offline", "--data-dir", db.string(), "--mode", "bogus",
                       (dir.path() / "x.ndjson").string()})
              .exit_code == 2);
    CHECK(
        run_command({idctl(), "load", "--offline", (dir.path() / "x.ndjson").string()}).exit_code ==
        2);
    CHECK(run_command({idctl(), "export", "--offline", "--data-dir", db.string(), "--prefix",
                       "not a prefix"})
              .exit_code == 2);
    auto missing = run_command({idctl(), "verify", "--data-dir", (dir.path() / "nope").string()});
    CHECK(missing.exit_code == 1);
    CHECK(missing.err.find("no database") != std::string::npos);
    CHECK_FALSE(fs::exists(dir.path() / "nope"));
    auto not_found = run_command({idctl(), "load", "--offline", "--data-dir", db.string(),
                                  (dir.path() / "absent.ndjson").string()});
    CHECK(not_found.exit_code == 1);
}

TEST_CASE("idctl config resolves flags over environment over the config file") {
    TempDir dir("idctl-config");
    const fs::path file = dir.path() / "config.toml";
    write_file(file, "url = \"https://file:8443\"\nkey = \"idn_file_secret\"\n");
    auto r = run_command({"env", "IDNODE_URL=https://env:8443", idctl(), "--json", "--config",
                          file.string(), "config"});
    REQUIRE_MESSAGE(r.exit_code == 0, r.err);
    const json::value v = json::parse(r.out);
    CHECK(v.at("url").as_string() == "https://env:8443");
    CHECK(v.at("url_source").as_string() == "environment");
    CHECK(v.at("credential_source").as_string() == "config file");
    CHECK(r.out.find("idn_file_secret") == std::string::npos); // secrets are never printed
    auto flag = run_command({"env", "IDNODE_URL=https://env:8443", idctl(), "--json", "--config",
                             file.string(), "--url", "https://flag", "config"});
    CHECK(json::parse(flag.out).at("url").as_string() == "https://flag");
    write_file(file, "bogus = 1\n");
    CHECK(run_command({idctl(), "--config", file.string(), "config"}).exit_code == 2);
}

TEST_CASE("offline load refuses a node that is running; backup under write load restores") {
    NodeProcess node("idctl-backup");
    const fs::path db = node.dir() / "db";
    const std::string admin = "Bearer " + init(db);
    node.start();

    const fs::path input = node.dir() / "in.ndjson";
    write_file(input, R"({"handle":"88.118.8/x","values":[{"index":1,"type":"URL","data":"u"}]})"
                      "\n");
    auto refused =
        run_command({idctl(), "load", "--offline", "--data-dir", db.string(), input.string()});
    CHECK(refused.exit_code == 1);
    CHECK(refused.err.find("stop idnode") != std::string::npos);

    // Writers keep going while the backup runs.
    std::atomic<bool> stop{false};
    std::atomic<int> acknowledged{0};
    std::thread writer([&] {
        HttpsClient c(node.https_port(), trust(node.pki().ca_cert));
        c.connect();
        for (int i = 0; !stop; ++i) {
            char name[32];
            std::snprintf(name, sizeof name, "W-%06d", i);
            auto r = c.request(V::put, std::string("/api/handles/88.118/") + name,
                               R"({"values":[{"index":1,"type":"URL","data":"https://w/)" +
                                   std::to_string(i) + R"("}]})",
                               {{"Authorization", admin}});
            if (r.result() != http::status::created) {
                break;
            }
            acknowledged = i + 1;
        }
    });
    REQUIRE(eventually([&] { return acknowledged >= 50; }, std::chrono::seconds(20)));
    const int before = acknowledged;
    const fs::path copy = node.dir() / "backup";
    auto backup =
        run_command({idctl(), "--json", "backup", "--data-dir", db.string(), copy.string()});
    const int after = acknowledged;
    REQUIRE(eventually([&] { return acknowledged >= after + 20; }, std::chrono::seconds(20)));
    stop = true;
    writer.join();
    REQUIRE_MESSAGE(backup.exit_code == 0, backup.err);
    CHECK(run_command({idctl(), "verify", "--data-dir", copy.string()}).exit_code == 0);

    // The copy holds a consistent prefix of the writes: everything acknowledged before the backup
    // started, nothing torn, and exactly what the live node has for those identifiers.
    const auto backed = lines_of(export_prefix(copy, "88.118"));
    const auto live = lines_of(export_prefix(db, "88.118"));
    CHECK(static_cast<int>(backed.size()) >= before);
    CHECK(static_cast<int>(backed.size()) <= after + 1);
    REQUIRE(live.size() >= backed.size());
    CHECK(std::equal(backed.begin(), backed.end(), live.begin()));

    // Restore: a fresh node serves the copy.
    NodeProcess restored("idctl-restored");
    fs::create_directories(restored.dir() / "db");
    fs::copy_file(copy / "data.mdb", restored.dir() / "db" / "data.mdb");
    restored.start();
    HttpsClient c(restored.https_port(), trust(restored.pki().ca_cert));
    c.connect();
    auto r = c.request(V::get, "/api/handles/88.118/W-000000");
    CHECK(r.result() == http::status::ok);
    CHECK(r.body().find("https://w/0") != std::string::npos);
    auto admin_works = c.request(V::put, "/api/handles/88.118/after-restore",
                                 R"({"values":[{"index":1,"type":"URL","data":"u"}]})",
                                 {{"Authorization", admin}});
    CHECK(admin_works.result() == http::status::created);
    CHECK(restored.stop() == 0);

    // With the node stopped, the offline load goes through.
    CHECK(node.stop() == 0);
    auto loaded =
        run_command({idctl(), "load", "--offline", "--data-dir", db.string(), input.string()});
    CHECK_MESSAGE(loaded.exit_code == 0, loaded.err);
}

TEST_CASE("idnode refuses to start while an offline load holds the database") {
    NodeProcess node("idctl-exclusive");
    const fs::path db = node.dir() / "db";
    init(db);
    const fs::path fifo = node.dir() / "input.fifo";
    REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
    // The load reads from a FIFO that the test keeps open: it holds the database meanwhile.
    const std::string binary = idctl();
    const std::string dir_arg = db.string(), file_arg = fifo.string();
    std::vector<char*> argv{const_cast<char*>(binary.c_str()),
                            const_cast<char*>("load"),
                            const_cast<char*>("--offline"),
                            const_cast<char*>("--data-dir"),
                            const_cast<char*>(dir_arg.c_str()),
                            const_cast<char*>(file_arg.c_str()),
                            nullptr};
    pid_t pid = -1;
    posix_spawn_file_actions_t quiet;
    posix_spawn_file_actions_init(&quiet);
    posix_spawn_file_actions_addopen(&quiet, 1, "/dev/null", O_WRONLY, 0);
    const int spawned = ::posix_spawn(&pid, binary.c_str(), &quiet, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&quiet);
    REQUIRE(spawned == 0);
    const int writer = ::open(fifo.c_str(), O_WRONLY);
    REQUIRE(writer >= 0);
    const std::string line =
        R"({"handle":"88.118.8/fifo","values":[{"index":1,"type":"URL","data":"u"}]})"
        "\n";
    REQUIRE(::write(writer, line.data(), line.size()) == static_cast<ssize_t>(line.size()));
    const bool held = eventually(
        [&] {
            const int fd = ::open((db / "registry.lock").c_str(), O_RDONLY);
            if (fd < 0) {
                return false;
            }
            const bool busy = ::flock(fd, LOCK_SH | LOCK_NB) != 0;
            ::close(fd);
            return busy;
        },
        std::chrono::seconds(10));
    CHECK(held);
    CHECK_THROWS_AS(node.start(), HarnessError);
    CHECK(node.stderr_text().find("offline load") != std::string::npos);
    ::close(writer); // end of input: the load finishes
    int status = 0;
    REQUIRE(::waitpid(pid, &status, 0) == pid);
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
    // Once the load is done, a node starts on the loaded database and serves the record.
    NodeProcess again("idctl-exclusive-after");
    again.set("node.data_dir", "\"" + db.string() + "\"");
    again.start();
    HttpsClient c(again.https_port(), trust(again.pki().ca_cert));
    c.connect();
    CHECK(c.request(V::get, "/api/handles/88.118.8/fifo").result() == http::status::ok);
    CHECK(again.stop() == 0);
    auto verify = run_command({idctl(), "--json", "verify", "--data-dir", db.string()});
    CHECK(verify.exit_code == 0);
    CHECK(json::parse(verify.out).at("identifiers").to_number<std::uint64_t>() == 1);
}

TEST_CASE("an offline load killed mid-way leaves a consistent database; re-running completes it") {
    TempDir dir("idctl-kill");
    const fs::path db = dir.path() / "db";
    init(db);
    const int records = reduced_mode() ? 20000 : 100000;
    const fs::path input = dir.path() / "in.ndjson";
    {
        std::ofstream out(input);
        for (int i = 0; i < records; ++i) {
            out << R"({"handle":"88.118.8/K-)" << (1000000 + i)
                << R"(","values":[{"index":1,"type":"URL","data":"https://k/)" << i
                << R"("},{"index":2000,"type":"batch","data":"B)" << (i % 13) << R"("}]})" << '\n';
        }
    }
    const std::string binary = idctl();
    const std::string dir_arg = db.string(), file_arg = input.string();
    std::vector<char*> argv{const_cast<char*>(binary.c_str()),
                            const_cast<char*>("load"),
                            const_cast<char*>("--offline"),
                            const_cast<char*>("--data-dir"),
                            const_cast<char*>(dir_arg.c_str()),
                            const_cast<char*>(file_arg.c_str()),
                            nullptr};
    posix_spawn_file_actions_t quiet;
    posix_spawn_file_actions_init(&quiet);
    posix_spawn_file_actions_addopen(&quiet, 1, "/dev/null", O_WRONLY, 0);
    pid_t pid = -1;
    const int spawned = ::posix_spawn(&pid, binary.c_str(), &quiet, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&quiet);
    REQUIRE(spawned == 0);
    // Kill it once it has committed something: a read-only verify beside the running load sees
    // its committed groups.
    auto committed = [&] {
        auto r = run_command({idctl(), "--json", "verify", "--data-dir", db.string()});
        return r.exit_code == 0 &&
               json::parse(r.out).at("identifiers").to_number<std::uint64_t>() > 0;
    };
    CHECK(eventually(committed, std::chrono::seconds(60)));
    ::kill(pid, SIGKILL);
    int status = 0;
    REQUIRE(::waitpid(pid, &status, 0) == pid);

    auto verify = run_command({idctl(), "--json", "verify", "--data-dir", db.string()});
    CHECK_MESSAGE(verify.exit_code == 0, verify.out);
    const auto partial = json::parse(verify.out).at("identifiers").to_number<std::uint64_t>();
    MESSAGE("killed after " << partial << " of " << records << " records");
    CHECK(partial > 0);

    auto rerun = run_command(
        {idctl(), "--json", "load", "--offline", "--data-dir", db.string(), input.string()},
        std::chrono::seconds(120));
    REQUIRE_MESSAGE(rerun.exit_code == 0, rerun.err);
    const json::value summary = json::parse(rerun.out);
    CHECK(summary.at("unchanged").to_number<std::uint64_t>() == partial);
    CHECK(summary.at("created").to_number<std::uint64_t>() == records - partial);
    auto final_verify = run_command({idctl(), "--json", "verify", "--data-dir", db.string()});
    CHECK(final_verify.exit_code == 0);
    CHECK(json::parse(final_verify.out).at("identifiers").to_number<std::uint64_t>() ==
          static_cast<std::uint64_t>(records));
}

namespace {

constexpr const char* kQrBase = "https://id.example.cn";

/// What zbarimg reads from a PNG ("" when it reads nothing), without the trailing newline.
std::string scan_png(const fs::path& png) {
    auto scan = run_command({"zbarimg", "--quiet", "--raw", png.string()});
    REQUIRE_MESSAGE(scan.exit_code == 0, ("zbarimg (Debian zbar-tools): " + scan.err));
    if (!scan.out.empty() && scan.out.back() == '\n') {
        scan.out.pop_back();
    }
    return scan.out;
}

} // namespace

TEST_CASE("idctl qr writes one handle as SVG and PNG; the PNG scans to its resolution URL") {
    TempDir dir("idctl-qr");
    const fs::path png = dir.path() / "label.png";
    auto r = run_command({idctl(), "--json", "qr", "88.118.8/COIL 7", "-o", png.string(), "--size",
                          "300", "--base-url", std::string(kQrBase) + "/"});
    REQUIRE_MESSAGE(r.exit_code == 0, r.err);
    const std::string url = std::string(kQrBase) + "/88.118.8/COIL%207";
    CHECK(json::parse(r.out).at("url").as_string() == url);
    CHECK(scan_png(png) == url);

    const fs::path svg = dir.path() / "label.SVG";
    r = run_command({idctl(), "qr", "88.118.8/COIL 7", "-o", svg.string(), "--base-url", kQrBase});
    REQUIRE_MESSAGE(r.exit_code == 0, r.err);
    const std::string text = read_file(svg);
    CHECK(text.find("<svg") != std::string::npos);
    CHECK(text.find("width=\"256\"") != std::string::npos);

    // Without --base-url the connection URL (here IDNODE_URL) is the base.
    const fs::path from_env = dir.path() / "env.png";
    r = run_command({"env", "IDNODE_URL=https://node.example:8443", idctl(), "--config",
                     (dir.path() / "none.toml").string(), "qr", "88.118.8/x", "-o",
                     from_env.string()});
    REQUIRE_MESSAGE(r.exit_code == 0, r.err);
    CHECK(scan_png(from_env) == "https://node.example:8443/88.118.8/x");
}

TEST_CASE("idctl qr --prefix writes one file per identifier, named by its encoded suffix") {
    TempDir dir("idctl-qr-bulk");
    const fs::path db = dir.path() / "db";
    init(db);
    const fs::path input = dir.path() / "in.ndjson";
    std::string ndjson;
    for (const char* h :
         {"88.118.8/coil-1", "88.118.8/a/b", "88.118.8/x y%", "88.118.8/..", "88.118.9/other"}) {
        ndjson += std::string(R"({"handle":")") + h +
                  R"(","values":[{"index":1,"type":"URL","data":"u"}]})" + "\n";
    }
    write_file(input, ndjson);
    auto load =
        run_command({idctl(), "load", "--offline", "--data-dir", db.string(), input.string()});
    REQUIRE_MESSAGE(load.exit_code == 0, load.err);

    const fs::path out = dir.path() / "labels";
    auto r = run_command({idctl(), "--json", "qr", "--prefix", "88.118.8", "--out", out.string(),
                          "--format", "png", "--data-dir", db.string(), "--base-url", kQrBase});
    REQUIRE_MESSAGE(r.exit_code == 0, r.err);
    CHECK(json::parse(r.out).at("written").to_number<int>() == 4);
    std::set<std::string> names;
    for (const auto& entry : fs::directory_iterator(out)) {
        names.insert(entry.path().filename().string());
    }
    CHECK(names == std::set<std::string>{"%2E%2E.png", "a%2Fb.png", "coil-1.png", "x%20y%25.png"});
    CHECK(scan_png(out / "a%2Fb.png") == std::string(kQrBase) + "/88.118.8/a/b");
    CHECK(scan_png(out / "x%20y%25.png") == std::string(kQrBase) + "/88.118.8/x%20y%25");

    // SVG is the default format; an empty prefix writes nothing and succeeds.
    const fs::path svgs = dir.path() / "svgs";
    r = run_command({idctl(), "qr", "--prefix", "88.118.9", "--out", svgs.string(), "--data-dir",
                     db.string(), "--base-url", kQrBase});
    REQUIRE_MESSAGE(r.exit_code == 0, r.err);
    CHECK(fs::exists(svgs / "other.svg"));
    r = run_command({idctl(), "qr", "--prefix", "88.118.7", "--out", svgs.string(), "--data-dir",
                     db.string(), "--base-url", kQrBase});
    CHECK(r.exit_code == 0);
    CHECK(std::distance(fs::directory_iterator(svgs), fs::directory_iterator()) == 1);
}

TEST_CASE("idctl qr rejects bad handles, formats, sizes and bases; failures exit 1") {
    TempDir dir("idctl-qr-errors");
    const std::string png = (dir.path() / "x.png").string();
    const std::string none = (dir.path() / "none.toml").string();
    auto qr = [&](std::vector<std::string> args) {
        std::vector<std::string> argv{"env", "-u", "IDNODE_URL", idctl(), "--config", none, "qr"};
        argv.insert(argv.end(), args.begin(), args.end());
        return run_command(argv);
    };
    auto bad_handle = qr({"no-slash", "-o", png, "--base-url", kQrBase});
    CHECK(bad_handle.exit_code == 2);
    CHECK(bad_handle.err.find("handle no-slash") != std::string::npos);
    auto bad_ext = qr({"88.118.8/x", "-o", (dir.path() / "x.gif").string(), "--base-url", kQrBase});
    CHECK(bad_ext.exit_code == 2);
    CHECK(bad_ext.err.find(".svg or .png") != std::string::npos);
    auto bad_size = qr({"88.118.8/x", "-o", png, "--size", "10", "--base-url", kQrBase});
    CHECK(bad_size.exit_code == 2);
    CHECK(bad_size.err.find("--size must be 64 to 4096") != std::string::npos);
    CHECK(qr({"88.118.8/x", "-o", png, "--size", "big", "--base-url", kQrBase}).exit_code == 2);
    CHECK(qr({"--prefix", "88.118.8", "--out", dir.path().string(), "--format", "gif", "--data-dir",
              dir.path().string(), "--base-url", kQrBase})
              .exit_code == 2);
    auto no_base = qr({"88.118.8/x", "-o", png});
    CHECK(no_base.exit_code == 2);
    CHECK(no_base.err.find("no base URL") != std::string::npos);
    CHECK(qr({"88.118.8/x", "-o", png, "--base-url", "ftp://x"}).exit_code == 2);
    CHECK(qr({"88.118.8/x", "--prefix", "88.118.8", "-o", png, "--base-url", kQrBase}).exit_code ==
          2);
    CHECK(qr({"88.118.8/x", "--base-url", kQrBase}).exit_code == 2); // no -o
    CHECK(qr({"--prefix", "not a prefix", "--out", dir.path().string(), "--data-dir",
              dir.path().string(), "--base-url", kQrBase})
              .exit_code == 2);
    CHECK(qr({"--prefix", "88.118.8", "--out", dir.path().string(), "--base-url", kQrBase})
              .exit_code == 2); // no --data-dir
    CHECK_FALSE(fs::exists(png));

    // A 1000-byte suffix needs more modules than 64 pixels hold: the PNG fails, exit 1.
    auto too_small = qr(
        {"88.118.8/" + std::string(1000, 'a'), "-o", png, "--size", "64", "--base-url", kQrBase});
    CHECK(too_small.exit_code == 1);
    CHECK_FALSE(too_small.err.empty());
    auto no_db = qr({"--prefix", "88.118.8", "--out", (dir.path() / "out").string(), "--data-dir",
                     (dir.path() / "nope").string(), "--base-url", kQrBase});
    CHECK(no_db.exit_code == 1);
    CHECK(no_db.err.find("no database") != std::string::npos);
    auto unwritable =
        qr({"88.118.8/x", "-o", (dir.path() / "no-dir" / "x.svg").string(), "--base-url", kQrBase});
    CHECK(unwritable.exit_code == 1);
    CHECK(unwritable.err.find("cannot write") != std::string::npos);
}
