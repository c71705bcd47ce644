// idctl end to end through the real binaries: offline load (rejects file, exit 3), export and
// re-load round trip, the refusal to load under a running node (and of a second node on one
// data directory), backup under write load restored into a fresh node, verify, exit codes for
// usage errors, and `idctl qr` (single and bulk, PNGs decoded with zbarimg).
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

TEST_CASE("a second idnode on the same data directory refuses to start; a node killed with "
          "SIGKILL leaves no lock behind") {
    NodeProcess first("two-nodes-first");
    const fs::path db = first.dir() / "db";
    const std::string admin = "Bearer " + init(db);
    first.start();

    NodeProcess second("two-nodes-second");
    second.set("node.data_dir", "\"" + db.string() + "\"");
    std::string refusal;
    try {
        second.start();
    } catch (const HarnessError& e) {
        refusal = e.what();
    }
    CHECK_MESSAGE(refusal.find("exited (1)") != std::string::npos, refusal);
    const std::string err = second.stderr_text();
    CHECK_MESSAGE(err.find(db.string() + " is already in use by another idnode (pid " +
                           std::to_string(first.pid()) + ")") != std::string::npos,
                  err);
    // Offline writers are still refused while a node runs.
    const fs::path input = first.dir() / "in.ndjson";
    write_file(input, R"({"handle":"88.118.8/x","values":[{"index":1,"type":"URL","data":"u"}]})"
                      "\n");
    auto offline =
        run_command({idctl(), "load", "--offline", "--data-dir", db.string(), input.string()});
    CHECK(offline.exit_code == 1);
    CHECK(offline.err.find("stop idnode") != std::string::npos);

    // The first node still serves; once it is killed (no clean shutdown), the second one starts.
    {
        HttpsClient c(first.https_port(), trust(first.pki().ca_cert));
        c.connect();
        auto put = c.request(V::put, "/api/handles/88.118/one",
                             R"({"values":[{"index":1,"type":"URL","data":"u"}]})",
                             {{"Authorization", admin}});
        CHECK(put.result() == http::status::created);
    }
    first.signal(SIGKILL);
    CHECK(first.wait() == 128 + SIGKILL);
    second.start();
    HttpsClient c(second.https_port(), trust(second.pki().ca_cert));
    c.connect();
    CHECK(c.request(V::get, "/api/handles/88.118/one").result() == http::status::ok);
    CHECK(second.stop() == 0);
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
    auto spawn_load = [&] {
        posix_spawn_file_actions_t quiet;
        posix_spawn_file_actions_init(&quiet);
        posix_spawn_file_actions_addopen(&quiet, 1, "/dev/null", O_WRONLY, 0);
        posix_spawn_file_actions_addopen(&quiet, 2, "/dev/null", O_WRONLY, 0);
        pid_t child = -1;
        const int spawned =
            ::posix_spawn(&child, binary.c_str(), &quiet, nullptr, argv.data(), environ);
        posix_spawn_file_actions_destroy(&quiet);
        REQUIRE(spawned == 0);
        return child;
    };
    pid_t pid = spawn_load();
    // Kill it once it has committed something: a read-only verify beside the running load sees
    // its committed groups. A verify that opened the environment just before the load did makes
    // the load refuse to start (it wants the environment to itself: exit 1, nothing written);
    // then it is simply started again.
    auto committed = [&] {
        int status = 0;
        if (::waitpid(pid, &status, WNOHANG) == pid)
            pid = spawn_load();
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

// ---- online commands (on the client SDK, against the real node over HTTPS) ----------------------

namespace {

/// idctl with the connection flags of `node` and `key` (empty = anonymous).
struct Online {
    const NodeProcess& node;
    std::string key;

    std::vector<std::string> argv(std::vector<std::string> args) const {
        std::vector<std::string> out{idctl(), "--url",
                                     "https://localhost:" + std::to_string(node.https_port()),
                                     "--ca-file", node.pki().ca_cert.string()};
        if (!key.empty()) {
            out.push_back("--key");
            out.push_back(key);
        }
        out.insert(out.end(), args.begin(), args.end());
        return out;
    }
    CommandResult run(std::vector<std::string> args, Millis timeout = 60s) const {
        return run_command(argv(std::move(args)), timeout);
    }
    /// Runs with --json, requires `expected_exit`, returns the parsed stdout.
    json::value json_of(std::vector<std::string> args, int expected_exit = 0) const {
        args.insert(args.begin(), "--json");
        auto r = run(std::move(args));
        REQUIRE_MESSAGE(r.exit_code == expected_exit, r.err << r.out);
        return json::parse(r.out);
    }
};

std::uint64_t u64(const json::value& v, std::string_view key) {
    return v.at(key).to_number<std::uint64_t>();
}

/// A running node initialised with `idctl init`; `admin` is its admin key.
struct OnlineNode {
    NodeProcess process;
    std::string admin_key;
    explicit OnlineNode(std::string_view tag) : process(tag) {
        admin_key = init(process.dir() / "db");
        process.set("limits.max_body_bytes", "1048576");
        process.start();
    }
    Online as(const std::string& key) const { return Online{process, key}; }

    /// The node must survive a multi-stream bulk upload cut off mid-way (here: idctl killed or
    /// interrupted). It once aborted ("pure virtual method called": the session destroyed a
    /// body parser while a read still parsed into it) a little after the client was gone, when
    /// the cut-off batches completed: give it that time, then require it alive.
    void require_survived_cut_off_upload() {
        const bool died = eventually([&] { return !process.running(); }, 1500ms);
        REQUIRE_MESSAGE(!died, "idnode died after a bulk upload was cut off:\n"
                                   << process.stderr_text().substr(0, 2000));
    }
    Online admin() const { return as(admin_key); }
};

/// Sets up 88.118.8 with the steel template and an enterprise account; returns its key.
std::string set_up_enterprise(const OnlineNode& n) {
    const json::value prefix =
        n.admin().json_of({"prefix", "allocate", "88.118.8", "--name", "Demo Steel",
                           "--credit-code", "91310000631696382C", "--industry", "C3130"});
    CHECK(prefix.at("prefix").as_string() == "88.118.8");
    CHECK(prefix.at("status").as_string() == "active");
    const json::value account = n.admin().json_of(
        {"account", "create", "demo-steel", "--role", "enterprise", "--prefix", "88.118.8"});
    CHECK(account.at("role").as_string() == "enterprise");
    const json::value key = n.admin().json_of({"account", "key", "create", "demo-steel"});
    const std::string enterprise_key(key.at("key").as_string());
    CHECK_FALSE(std::string(key.at("key_id").as_string()).empty());
    const json::value imported =
        n.as(enterprise_key)
            .json_of({"template", "import", IDNODE_SOURCE_DIR "/conf/templates/steel.json",
                      "--prefix", "88.118.8"});
    CHECK(imported.at("action").as_string() == "created");
    return enterprise_key;
}

/// A steel CSV row (plain template column names; --template maps them to the idIndexes).
std::string steel_row(int i) {
    return "88.118.8/COIL-" + std::to_string(100000 + i) + ",https://steel.example.cn/c/" +
           std::to_string(i) + ",H" + std::to_string(10000 + i) + ",Q235B,GB/T 700-2006,2.0x1250," +
           "B-" + std::to_string(i / 100) + ",2024-11-02\n";
}
const char* kSteelHeader =
    "handle,URL,heat_no,grade,standard,dimensions,batch_no,production_date\n";

std::map<std::uint64_t, std::string> rejects_of(const fs::path& file) {
    std::map<std::uint64_t, std::string> out;
    for (const auto& line : lines_of(read_file(file))) {
        const json::value r = json::parse(line);
        const auto n = r.at("line").to_number<std::uint64_t>();
        CHECK_MESSAGE(out.count(n) == 0, "line " << n << " rejected twice");
        out[n] = std::string(r.at("error").at("code").as_string());
    }
    return out;
}

} // namespace

TEST_CASE("idctl online: prefix, account, key, template, CSV load with rejects, kill and "
          "--resume, export, re-load into a fresh node: identical") {
    OnlineNode a("idctl-online-a");
    const std::string enterprise_key = set_up_enterprise(a);
    const Online steel = a.as(enterprise_key);

    // The CSV: good rows with three bad ones in the middle and one at the end.
    const int rows = reduced_mode() ? 3000 : 8000;
    std::string csv = kSteelHeader;
    std::map<std::uint64_t, std::string> expected_rejects;
    int good = 0;
    for (int i = 0; i < rows; ++i) {
        const std::uint64_t line = 2 + static_cast<std::uint64_t>(i); // line 1 is the header
        if (i == rows / 10) {
            csv += "88.118.8/BAD-CELLS,https://x,H1\n"; // wrong cell count: rejected by idctl
            expected_rejects[line] = "invalid_value";
            continue;
        }
        if (i == rows / 5) {
            csv += "88.118.8/BAD-HEAT,https://x,H1,Q235B,GB/T 700,2x2,B,2024-11-02\n"; // heat_no
            expected_rejects[line] = "invalid_value"; // shorter than the template's 4 characters
            continue;
        }
        if (i == rows * 3 / 10) {
            csv += "88.118.9/OTHER,https://x,H1234,Q235B,GB/T 700,2x2,B,2024-11-02\n"; // not ours
            expected_rejects[line] = "forbidden";
            continue;
        }
        csv += steel_row(i);
        ++good;
    }
    csv += "88.118.8/BAD-DATE,https://x,H1234,Q235B,GB/T 700,2x2,B,2024-13-45\n";
    expected_rejects[2 + static_cast<std::uint64_t>(rows)] = "invalid_value";
    const fs::path file = a.process.dir() / "coils.csv";
    write_file(file, csv);
    const fs::path rejects = file.string() + ".rejects.ndjson";
    const fs::path checkpoint = file.string() + ".checkpoint";

    // Killed (SIGKILL, as in a crash) after two thirds of the results: the checkpoint the last
    // progress tick wrote stays behind.
    const std::vector<std::string> load{"load", "--template",          "steel-1.0", "--streams",
                                        "2",    "--progress-interval", "10",        file.string()};
    std::vector<std::string> killed_argv = steel.argv(load);
    killed_argv.insert(killed_argv.begin(),
                       {"env", "IDCTL_TEST_RAISE_AFTER=9:" + std::to_string(rows * 2 / 3)});
    auto killed = run_command(killed_argv, 60s);
    REQUIRE_MESSAGE(killed.exit_code == 128 + SIGKILL, killed.err);
    REQUIRE(fs::exists(checkpoint));
    a.require_survived_cut_off_upload();
    const json::value mark = json::parse(read_file(checkpoint));
    const auto mark_line = u64(mark, "line");
    CHECK(mark_line > 1);
    CHECK(mark_line < 2 + static_cast<std::uint64_t>(rows));
    const auto identifiers_after_kill = u64(a.admin().json_of({"stats"}), "identifiers");
    CHECK(identifiers_after_kill > 0); // (batches the node had received still commit)

    // --resume continues from the checkpoint: exact count, every reject once.
    std::vector<std::string> resume = load;
    resume.insert(resume.end() - 1, "--resume");
    resume.insert(resume.begin(), "--json");
    auto resumed = steel.run(resume);
    REQUIRE_MESSAGE(resumed.exit_code == 3, resumed.err << resumed.out);
    const json::value summary = json::parse(resumed.out);
    CHECK(u64(summary, "resumed_after_line") == mark_line);
    CHECK(u64(summary, "rejected_total") == expected_rejects.size());
    CHECK_MESSAGE(rejects_of(rejects) == expected_rejects, read_file(rejects));
    CHECK_FALSE(fs::exists(checkpoint)); // a completed load leaves nothing to resume
    const json::value stats = a.admin().json_of({"stats"});
    CHECK(u64(stats, "identifiers") == static_cast<std::uint64_t>(good));
    // Records after the checkpoint that the killed run had committed came back unchanged.
    CHECK(u64(summary, "created") + identifiers_after_kill >= static_cast<std::uint64_t>(good));

    // Loading the whole file again: nothing new, the same rejects (create is idempotent).
    auto again = steel.json_of({"load", "--template", "steel-1.0", file.string()}, 3);
    CHECK(u64(again, "created") == 0);
    CHECK(u64(again, "unchanged") == static_cast<std::uint64_t>(good));
    CHECK(rejects_of(rejects) == expected_rejects);

    // Export over HTTPS: every identifier once, with its template.
    const fs::path exported = a.process.dir() / "export.ndjson";
    auto ex = steel.run({"export", "--prefix", "88.118.8", "-o", exported.string()});
    REQUIRE_MESSAGE(ex.exit_code == 0, ex.err);
    const auto export_a = lines_of(read_file(exported));
    CHECK(export_a.size() == static_cast<std::size_t>(good));
    std::set<std::string> handles;
    for (const auto& line : export_a) {
        const json::value v = json::parse(line);
        handles.insert(std::string(v.at("handle").as_string()));
        CHECK(v.at("templateVersion").as_string() == "steel-1.0");
    }
    CHECK(handles.size() == export_a.size());

    // A fresh node: the same set-up, the export loaded (NDJSON, 4 streams), exported again.
    OnlineNode b("idctl-online-b");
    const std::string key_b = set_up_enterprise(b);
    const json::value loaded = b.as(key_b).json_of({"load", "--streams", "4", exported.string()});
    CHECK(u64(loaded, "created") == static_cast<std::uint64_t>(good));
    CHECK_FALSE(fs::exists(exported.string() + ".rejects.ndjson"));
    auto ex_b = b.as(key_b).run({"export", "--prefix", "88.118.8"});
    REQUIRE_MESSAGE(ex_b.exit_code == 0, ex_b.err);
    CHECK(lines_of(ex_b.out) == export_a);
}

TEST_CASE("idctl online: Ctrl-C stops a load with a checkpoint; --resume finishes it") {
    OnlineNode n("idctl-online-int");
    const Online steel = n.as(set_up_enterprise(n));
    // Big enough that the interrupt (after a fifth of the results) lands well before the end.
    const int rows = reduced_mode() ? 8000 : 20000;
    std::string ndjson;
    for (int i = 0; i < rows; ++i) {
        ndjson += R"({"handle":"88.118.8/N-)" + std::to_string(i) +
                  R"(","values":[{"index":1,"type":"URL","data":"https://n/)" + std::to_string(i) +
                  "\"}]}\n";
        if (i == 10) {
            ndjson += "\n"; // a blank line keeps its number
        }
    }
    const fs::path file = n.process.dir() / "plain.ndjson";
    write_file(file, ndjson);
    std::vector<std::string> argv =
        steel.argv({"load", "--progress-interval", "10", file.string()});
    argv.insert(argv.begin(), {"env", "IDCTL_TEST_RAISE_AFTER=2:" + std::to_string(rows / 5)});
    auto interrupted = run_command(argv, 60s);
    CHECK(interrupted.exit_code == 1);
    CHECK(interrupted.err.find("interrupted") != std::string::npos);
    CHECK(interrupted.err.find("--resume") != std::string::npos);
    REQUIRE(fs::exists(file.string() + ".checkpoint"));
    n.require_survived_cut_off_upload();
    CHECK(interrupted.err.find(" records ") != std::string::npos); // plain progress lines

    // A changed file is not resumed.
    const auto original_time = fs::last_write_time(file);
    fs::last_write_time(file, original_time + std::chrono::seconds(5));
    auto changed = steel.run({"load", "--resume", file.string()});
    CHECK(changed.exit_code == 1);
    CHECK(changed.err.find("changed") != std::string::npos);
    fs::last_write_time(file, original_time);

    const json::value done = steel.json_of({"load", "--resume", file.string()});
    CHECK(u64(done, "resumed_after_line") > 0);
    CHECK(u64(n.admin().json_of({"stats"}), "identifiers") == static_cast<std::uint64_t>(rows));
    CHECK_FALSE(fs::exists(file.string() + ".rejects.ndjson"));
    auto no_checkpoint = steel.run({"load", "--resume", file.string()});
    CHECK(no_checkpoint.exit_code == 1);
    CHECK(no_checkpoint.err.find("no checkpoint") != std::string::npos);
}

TEST_CASE("idctl online: Ctrl-C before the first acknowledged batch still leaves a checkpoint; "
          "--resume loads everything") {
    OnlineNode n("idctl-online-early-int");
    const Online steel = n.as(set_up_enterprise(n));
    const int rows = 1000;
    std::string csv = kSteelHeader, ndjson;
    for (int i = 0; i < rows; ++i) {
        csv += steel_row(i);
        ndjson += R"({"handle":"88.118.8/E-)" + std::to_string(i) +
                  R"(","values":[{"index":1,"type":"URL","data":"https://e/)" + std::to_string(i) +
                  "\"}]}\n";
    }
    const fs::path csv_file = n.process.dir() / "early.csv";
    const fs::path ndjson_file = n.process.dir() / "early.ndjson";
    write_file(csv_file, csv);
    write_file(ndjson_file, ndjson);

    // The node is stopped (SIGSTOP) while idctl runs, so nothing can be acknowledged before the
    // interrupt: a CSV load is then still looking up its template, an NDJSON load is sending.
    auto interrupt_early = [&](std::vector<std::string> load) {
        n.process.signal(SIGSTOP);
        const std::vector<std::string> args = steel.argv(std::move(load));
        std::vector<char*> argv;
        for (const auto& a : args)
            argv.push_back(const_cast<char*>(a.c_str()));
        argv.push_back(nullptr);
        pid_t pid = -1;
        posix_spawn_file_actions_t quiet;
        posix_spawn_file_actions_init(&quiet);
        posix_spawn_file_actions_addopen(&quiet, 1, "/dev/null", O_WRONLY, 0);
        posix_spawn_file_actions_addopen(&quiet, 2, "/dev/null", O_WRONLY, 0);
        const int spawned = ::posix_spawn(&pid, argv[0], &quiet, nullptr, argv.data(), environ);
        posix_spawn_file_actions_destroy(&quiet);
        REQUIRE(spawned == 0);
        std::this_thread::sleep_for(300ms);
        ::kill(pid, SIGINT);
        int status = 0;
        REQUIRE(::waitpid(pid, &status, 0) == pid);
        n.process.signal(SIGCONT);
        INFO("idctl " << (WIFEXITED(status) ? "exited " : "died of signal ")
                      << (WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status)));
        CHECK((WIFEXITED(status) ? WEXITSTATUS(status) : -1) == 1);
    };

    interrupt_early(
        {"load", "--template", "steel-1.0", "--progress-interval", "10", csv_file.string()});
    REQUIRE(fs::exists(csv_file.string() + ".checkpoint"));
    const json::value csv_done =
        steel.json_of({"load", "--template", "steel-1.0", "--resume", csv_file.string()});
    CHECK(u64(csv_done, "records") == static_cast<std::uint64_t>(rows));
    CHECK_FALSE(fs::exists(csv_file.string() + ".checkpoint"));

    interrupt_early({"load", "--progress-interval", "10", ndjson_file.string()});
    REQUIRE(fs::exists(ndjson_file.string() + ".checkpoint"));
    const json::value ndjson_done = steel.json_of({"load", "--resume", ndjson_file.string()});
    CHECK(u64(ndjson_done, "records") == static_cast<std::uint64_t>(rows));
    CHECK_FALSE(fs::exists(ndjson_file.string() + ".checkpoint"));
    CHECK(u64(n.admin().json_of({"stats"}), "identifiers") == static_cast<std::uint64_t>(2 * rows));
}

TEST_CASE("idctl online: put, get, resolve, delete, prefix, account and template commands") {
    OnlineNode n("idctl-online-cmds");
    const std::string key = set_up_enterprise(n);
    const Online steel = n.as(key);
    const Online admin = n.admin();

    auto put = steel.json_of(
        {"put", "88.118.8/P-1", "--value", "1:URL=https://p/1", "--value", "2:EMAIL=a@b.cn"});
    CHECK(put.at("outcome").as_string() == "created");
    CHECK(steel.run({"put", "88.118.8/P-1", "--mode", "create", "--value", "1:URL=x"}).exit_code ==
          1); // exists
    auto merged = steel.json_of({"put", "88.118.8/P-1", "--merge", "--value", "3:NOTE=n"});
    CHECK(merged.at("outcome").as_string() == "updated");

    auto table = steel.run({"resolve", "88.118.8/P-1"});
    REQUIRE_MESSAGE(table.exit_code == 0, table.err);
    CHECK(table.out.find("https://p/1") != std::string::npos);
    CHECK(table.out.find("timestamp") != std::string::npos);
    auto filtered = steel.json_of({"resolve", "88.118.8/P-1", "--type", "EMAIL"});
    REQUIRE(filtered.at("values").as_array().size() == 1);
    CHECK(filtered.at("values").at(0).at("data").at("value").as_string() == "a@b.cn");
    auto many = steel.run({"--json", "resolve", "88.118.8/P-1", "88.118.8/NOPE"});
    CHECK(many.exit_code == 3); // one of two not found
    CHECK(json::parse(many.out).as_array().at(1).at("responseCode").as_int64() == 100);

    // get prints what put --file takes back.
    auto got = steel.run({"get", "88.118.8/P-1"});
    REQUIRE(got.exit_code == 0);
    const fs::path record = n.process.dir() / "p1.json";
    write_file(record, got.out);
    auto copy = steel.json_of({"put", "88.118.8/P-2", "--file", record.string()});
    CHECK(copy.at("outcome").as_string() == "created");
    auto got2 = steel.run({"get", "88.118.8/P-2"});
    CHECK(json::parse(got2.out).at("values") == json::parse(got.out).at("values"));

    CHECK(steel.run({"delete", "88.118.8/P-2", "--index", "3"}).exit_code == 0);
    CHECK(json::parse(steel.run({"get", "88.118.8/P-2"}).out).at("values").as_array().size() == 2);
    CHECK(steel.run({"delete", "88.118.8/P-2"}).exit_code == 0);
    auto gone = steel.run({"resolve", "88.118.8/P-2"});
    CHECK(gone.exit_code == 1);
    CHECK(gone.err.find("rc 100") != std::string::npos);

    // prefixes
    auto next = admin.json_of({"prefix", "allocate", "--parent", "88.118", "--name", "Next Co",
                               "--credit-code", "91420100MA4K2X8Y9Q", "--industry", "C3130"});
    const std::string next_prefix(next.at("prefix").as_string());
    CHECK(next_prefix.rfind("88.118.", 0) == 0);
    CHECK(next_prefix != "88.118.8");
    CHECK(admin.json_of({"prefix", "list"}).at("prefixes").as_array().size() >= 2);
    CHECK(admin.json_of({"prefix", "suspend", "88.118.8"}).at("status").as_string() == "suspended");
    CHECK(admin.json_of({"prefix", "show", "88.118.8"}).at("status").as_string() == "suspended");
    CHECK(steel.run({"put", "88.118.8/P-3", "--value", "1:URL=x"}).exit_code == 1);
    admin.json_of({"prefix", "resume", "88.118.8"});
    CHECK(steel.run({"put", "88.118.8/P-3", "--value", "1:URL=x"}).exit_code == 0);
    auto human = admin.run({"prefix", "list"});
    CHECK(human.out.find("Demo Steel") != std::string::npos);

    // accounts: a password from stdin, then a login with it; keys revoked stop working
    auto created =
        run_command({"sh", "-c", "printf 'first-pass\\n' | \"$0\" \"$@\"", idctl(), "--url",
                     "https://localhost:" + std::to_string(n.process.https_port()), "--ca-file",
                     n.process.pki().ca_cert.string(), "--key", n.admin_key, "account", "create",
                     "reader1", "--role", "reader", "--prefix", "88.118.8", "--password-stdin"});
    REQUIRE_MESSAGE(created.exit_code == 0, created.err);
    auto as_user = [&](const std::string& password) {
        return run_command({idctl(), "--url",
                            "https://localhost:" + std::to_string(n.process.https_port()),
                            "--ca-file", n.process.pki().ca_cert.string(), "--user", "reader1",
                            "--password", password, "stats"});
    };
    CHECK(as_user("first-pass").exit_code == 0);
    auto passwd = run_command(
        {"sh", "-c", "printf 'second-pass\\n' | \"$0\" \"$@\"", idctl(), "--url",
         "https://localhost:" + std::to_string(n.process.https_port()), "--ca-file",
         n.process.pki().ca_cert.string(), "--key", n.admin_key, "account", "passwd", "reader1"});
    REQUIRE_MESSAGE(passwd.exit_code == 0, passwd.err);
    CHECK(as_user("first-pass").exit_code == 1);
    CHECK(as_user("second-pass").exit_code == 0);
    auto new_key = admin.json_of({"account", "key", "create", "reader1"});
    const Online reader = n.as(std::string(new_key.at("key").as_string()));
    CHECK(reader.run({"stats"}).exit_code == 0);
    admin.json_of(
        {"account", "key", "revoke", "reader1", std::string(new_key.at("key_id").as_string())});
    auto revoked = reader.run({"stats"});
    CHECK(revoked.exit_code == 1);
    CHECK(revoked.err.find("http 401") != std::string::npos);
    CHECK(admin.json_of({"account", "list"}).at("accounts").as_array().size() == 3);
    // disable, enable, delete: the password stops working, works again, and the account goes
    CHECK(admin.json_of({"account", "disable", "reader1"}).at("status").as_string() == "disabled");
    CHECK(admin.run({"account", "list"}).out.find("disabled") != std::string::npos);
    CHECK(as_user("second-pass").exit_code == 1);
    CHECK(admin.json_of({"account", "enable", "reader1"}).at("status").as_string() == "active");
    CHECK(as_user("second-pass").exit_code == 0);
    CHECK(admin.run({"account", "delete", "reader1"}).out == "reader1 deleted\n");
    CHECK(as_user("second-pass").exit_code == 1);
    CHECK(admin.json_of({"account", "list"}).at("accounts").as_array().size() == 2);
    CHECK(admin.run({"account", "delete", "reader1"}).exit_code == 1);

    // templates
    auto list = steel.json_of({"template", "list", "--prefix", "88.118.8"});
    REQUIRE(list.at("templates").as_array().size() == 1);
    auto shown = steel.run({"template", "show", "88.118.8", "steel-1.0"});
    REQUIRE(shown.exit_code == 0);
    CHECK(shown.out.find("heat_no") != std::string::npos);
    auto reimport =
        steel.json_of({"template", "import", IDNODE_SOURCE_DIR "/conf/templates/steel.json",
                       "--prefix", "88.118.8"});
    CHECK(reimport.at("action").as_string() == "updated");
    CHECK(steel.run({"template", "show", "88.118.8", "nope-9"}).exit_code == 1);

    auto stats = admin.run({"stats"});
    CHECK(stats.exit_code == 0);
    CHECK(stats.out.find("88.118.8") != std::string::npos);
}

TEST_CASE("idctl online error paths: usage exits 2; unreachable node, wrong key, wrong CA and "
          "refusals exit 1") {
    OnlineNode n("idctl-online-errors");
    const Online admin = n.admin();
    const fs::path empty_home = n.process.dir() / "home";
    fs::create_directories(empty_home);

    // usage: exit 2, nothing sent
    auto no_url = run_command({"env", "-u", "IDNODE_URL", "-u", "IDNODE_KEY", "-u",
                               "XDG_CONFIG_HOME", "HOME=" + empty_home.string(), idctl(), "stats"});
    CHECK(no_url.exit_code == 2);
    CHECK(no_url.err.find("no node URL") != std::string::npos);
    CHECK(run_command({idctl(), "--url", "ftp://x", "stats"}).exit_code == 2);
    CHECK(run_command({idctl(), "--url", "https://localhost:1", "--ca-file",
                       (n.process.dir() / "absent.pem").string(), "stats"})
              .exit_code == 2);
    CHECK(admin.run({"resolve"}).exit_code == 2);
    CHECK(admin.run({"put", "88.118.8/x"}).exit_code == 2); // no values
    CHECK(admin.run({"put", "88.118.8/x", "--value", "URL=x"}).exit_code == 2);
    CHECK(admin.run({"put", "88.118.8/x", "--value", "1:URL=x", "--mode", "bogus"}).exit_code == 2);
    CHECK(admin.run({"prefix"}).exit_code == 2);
    CHECK(admin.run({"prefix", "allocate", "88.118.7"}).exit_code == 2); // --name etc. missing
    CHECK(admin.run({"prefix", "allocate", "--name", "n", "--credit-code", "c", "--industry", "i"})
              .exit_code == 2); // neither PREFIX nor --parent
    CHECK(admin.run({"account", "key"}).exit_code == 2);
    CHECK(admin.run({"account", "passwd", "x"}).exit_code == 2); // no password on stdin
    CHECK(admin.run({"template", "import", (n.process.dir() / "absent.json").string()}).exit_code ==
          2);
    CHECK(admin.run({"template", "import", IDNODE_SOURCE_DIR "/conf/templates/steel.json"})
              .exit_code == 2); // the document names no prefix
    const fs::path data = n.process.dir() / "d.ndjson";
    write_file(data, "{}\n");
    CHECK(admin.run({"load", "--streams", "0", data.string()}).exit_code == 2);
    CHECK(admin.run({"load", "--mode", "bogus", data.string()}).exit_code == 2);
    CHECK(admin.run({"load", "--template", "v1", data.string()}).exit_code == 2); // NDJSON
    CHECK(admin.run({"load", "--data-dir", "x", data.string()}).exit_code == 2);
    CHECK(admin.run({"load", "--resume", "-"}).exit_code == 2);
    CHECK(admin.run({"export"}).exit_code == 2);

    // unreachable: nothing listens there
    auto unreachable =
        run_command({idctl(), "--url", "https://127.0.0.1:1", "--ca-file",
                     n.process.pki().ca_cert.string(), "--key", n.admin_key, "stats"});
    CHECK(unreachable.exit_code == 1);
    CHECK(unreachable.err.find("connect") != std::string::npos);
    auto unreachable_load = run_command({idctl(), "--url", "https://127.0.0.1:1", "--ca-file",
                                         n.process.pki().ca_cert.string(), "--key", n.admin_key,
                                         "load", data.string()});
    CHECK(unreachable_load.exit_code == 1);

    // wrong key, no key, wrong CA
    const Online wrong = n.as("idn_0123456789abcdef_" + std::string(43, 'A'));
    auto denied = wrong.run({"stats"});
    CHECK(denied.exit_code == 1);
    CHECK(denied.err.find("http 401") != std::string::npos);
    auto denied_load = wrong.run({"load", data.string()});
    CHECK(denied_load.exit_code == 1);
    CHECK(n.as("").run({"prefix", "list"}).exit_code == 1);
    auto wrong_ca = run_command(
        {idctl(), "--url", "https://localhost:" + std::to_string(n.process.https_port()),
         "--ca-file", n.process.pki().other_ca_cert.string(), "--key", n.admin_key, "stats"});
    CHECK(wrong_ca.exit_code == 1);
    CHECK_MESSAGE(wrong_ca.err.find("certificate verify failed") != std::string::npos,
                  wrong_ca.err);

    // refusals by the node: exit 1 with its message
    auto bad_prefix = admin.run({"prefix", "allocate", "99.1.1", "--name", "n", "--credit-code",
                                 "91310000631696382C", "--industry", "C3130"});
    CHECK(bad_prefix.exit_code == 1);
    CHECK(bad_prefix.err.find("not_homed") != std::string::npos);
    CHECK(admin.run({"prefix", "suspend", "88.118.77"}).exit_code == 1);
    CHECK(admin.run({"account", "key", "revoke", "admin", "nope"}).exit_code == 1);
    CHECK(admin.run({"account", "create", "bad name!", "--role", "admin"}).exit_code == 1);
    CHECK(admin.run({"export", "--prefix", "99.1"}).exit_code == 1); // not homed
    auto all_bad = admin.json_of({"load", data.string()}, 3);        // "{}" is no record
    CHECK(u64(all_bad, "rejected") == 1);
}
