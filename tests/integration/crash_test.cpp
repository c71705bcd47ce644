// Crash safety (docs/storage.md#crash-safety): the real `idnode` killed with SIGKILL at random
// moments of an online bulk load, and `idctl load --offline` killed mid-way. After every kill: the
// environment opens, `idctl verify` finds nothing (records decode, counters match, the change log
// is contiguous and replays to the data), every acknowledged record is present with exactly the
// values sent, and no record is partial (each stored record is exactly one of the versions that
// were sent for it).
//
// Iterations: IDNODE_CRASH_ITERATIONS (default 20; 6 under IDNODE_TEST_REDUCED=1, the sanitizer
// run). The random seed is printed; IDNODE_CRASH_SEED replays a run.
//
// A process kill leaves the kernel's page cache intact, so this proves that LMDB's on-disk state is
// consistent at every instant and that nothing is acknowledged before its commit; it does not
// simulate power loss (lost page cache), which depends on fsync and the disk.
#include "harness.hpp"
#include "json_helpers.hpp"

#include <boost/json.hpp>
#include <doctest/doctest.h>

#include <csignal>
#include <cstdlib>
#include <fcntl.h>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

using namespace idnode::test;
namespace json = boost::json;
using V = http::verb;

namespace {

fs::path idctl_binary() {
    return IDNODE_IDCTL_BINARY;
}

std::uint64_t env_number(const char* name, std::uint64_t fallback) {
    const char* v = std::getenv(name);
    return v != nullptr && *v != '\0' ? std::strtoull(v, nullptr, 10) : fallback;
}

/// `idctl verify --json`; fails the test with the problems if any.
json::object verify(const fs::path& data_dir) {
    auto r = run_command(
        {idctl_binary().string(), "--json", "verify", "--data-dir", data_dir.string()}, 60s);
    INFO("idctl verify stdout: " << r.out << "\nstderr: " << r.err);
    REQUIRE(r.exit_code == 0);
    auto report = parse_json(r.out).as_object();
    REQUIRE(report.at("ok").as_bool());
    return report;
}

/// Decodes an HTTP/1.1 response with a chunked body as it arrives, byte piece by byte piece:
/// the head is skipped, the body is handed out as complete NDJSON lines.
class ChunkedLines {
public:
    /// Feeds raw bytes; appends every newly completed body line to `lines`.
    void feed(std::string_view bytes, std::vector<std::string>& lines) {
        raw_.append(bytes);
        for (;;) {
            if (!in_body_) {
                const auto end = raw_.find("\r\n\r\n");
                if (end == std::string::npos)
                    return;
                raw_.erase(0, end + 4);
                in_body_ = true;
            }
            if (chunk_left_ == 0) {
                const auto eol = raw_.find("\r\n");
                if (eol == std::string::npos)
                    return;
                if (eol == 0) { // the CRLF after a chunk's data
                    raw_.erase(0, 2);
                    continue;
                }
                chunk_left_ = std::stoull(raw_.substr(0, eol), nullptr, 16);
                raw_.erase(0, eol + 2);
                if (chunk_left_ == 0) {
                    done_ = true;
                    return;
                }
            }
            const std::size_t take = std::min<std::size_t>(chunk_left_, raw_.size());
            if (take == 0)
                return;
            body_.append(raw_, 0, take);
            raw_.erase(0, take);
            chunk_left_ -= take;
            std::size_t nl;
            while ((nl = body_.find('\n')) != std::string::npos) {
                lines.push_back(body_.substr(0, nl));
                body_.erase(0, nl + 1);
            }
        }
    }
    bool done() const noexcept { return done_; }

private:
    std::string raw_, body_;
    bool in_body_ = false, done_ = false;
    std::uint64_t chunk_left_ = 0;
};

/// One value as the node shows it, minus the server-set timestamp, as comparable text. The
/// request side is built the same way, so equal text = byte-identical index, type, data, ttl and
/// permissions.
std::string canonical_value(const json::object& v) {
    std::string out = std::to_string(v.at("index").as_int64());
    out += '\x1f';
    out += v.at("type").as_string();
    out += '\x1f';
    const auto& data = v.at("data");
    if (data.is_string()) {
        out += "string\x1f";
        out += data.as_string();
    } else {
        out += data.at("format").as_string();
        out += '\x1f';
        out += data.at("value").as_string();
    }
    out += '\x1f';
    out += std::to_string(v.contains("ttl") ? v.at("ttl").as_int64() : 86400);
    out += '\x1f';
    out += v.contains("permissions") ? std::string(v.at("permissions").as_string()) : "1110";
    return out;
}

std::string canonical_record(const json::array& values) {
    std::vector<std::string> parts;
    for (const auto& v : values)
        parts.push_back(canonical_value(v.as_object()));
    std::sort(parts.begin(), parts.end());
    std::string out;
    for (const auto& p : parts) {
        out += p;
        out += '\x1e';
    }
    return out;
}

const std::string kAbsent = "<absent>";

/// A record line for the bulk upload: 2 to 5 values, data sizes up to ~3 KB (some records need
/// LMDB overflow pages), some values without public read, UTF-8 text.
std::string make_line(std::mt19937_64& rng, const std::string& handle, const std::string& tag) {
    json::array values;
    values.push_back(json::object{
        {"index", 1}, {"type", "URL"}, {"data", "https://e.cn/" + tag}, {"ttl", 3600}});
    values.push_back(json::object{
        {"index", 2001}, {"type", "heat_no"}, {"data", "炉号-" + tag}, {"ttl", 86400}});
    const int extra = static_cast<int>(rng() % 4);
    for (int i = 0; i < extra; ++i) {
        const std::size_t size = rng() % 4 == 0 ? 1500 + rng() % 1600 : rng() % 64;
        std::string data(size, 'a');
        for (auto& c : data)
            c = static_cast<char>('a' + rng() % 26);
        json::object v{{"index", 2002 + i},
                       {"type", "field_" + std::to_string(i)},
                       {"data", data},
                       {"ttl", 60 + static_cast<int>(rng() % 1000)}};
        if (rng() % 3 == 0)
            v["permissions"] = "1100";
        values.push_back(std::move(v));
    }
    return json::serialize(json::object{{"handle", handle}, {"values", std::move(values)}});
}

/// A node with enterprise prefix 88.118.8 and an enterprise account `steel` that owns it.
struct CrashNode {
    NodeProcess node{"crash"};
    std::string admin, steel;

    CrashNode() {
        const auto init = run_command({idctl_binary().string(), "init", "--data-dir",
                                       data_dir().string(), "--node-prefix", "88.118"});
        REQUIRE_MESSAGE(init.exit_code == 0, init.err);
        admin = "Bearer " + std::string(parse_json(init.out).at("admin_key").as_string());
        node.start();
        auto c = client();
        auto p = c->request(
            V::post, "/api/v1/prefixes",
            R"({"prefix":"88.118.8","enterprise":{"name":"E","credit_code":"91310000631696382C","industry":"C3120","contact":"ops@example.cn"}})",
            {{"Authorization", admin}});
        REQUIRE_MESSAGE(p.result() == http::status::created, p.body());
        auto a = c->request(V::post, "/api/v1/accounts",
                            R"({"username":"steel","role":"enterprise","prefixes":["88.118.8"]})",
                            {{"Authorization", admin}});
        REQUIRE_MESSAGE(a.result() == http::status::created, a.body());
        auto k = c->request(V::post, "/api/v1/accounts/steel/keys", {}, {{"Authorization", admin}});
        REQUIRE_MESSAGE(k.result() == http::status::created, k.body());
        steel = "Bearer " + std::string(parse_json(k.body()).at("key").as_string());
    }

    fs::path data_dir() const { return node.dir() / "db"; }

    std::unique_ptr<HttpsClient> client(Millis timeout = 10s) {
        auto c =
            std::make_unique<HttpsClient>(node.https_port(), trust(node.pki().ca_cert), timeout);
        c->connect();
        return c;
    }

    /// Stored state of `handles` (as the owner sees it): canonical record text or kAbsent.
    std::map<std::string, std::string> resolve(const std::vector<std::string>& handles) {
        std::map<std::string, std::string> out;
        auto c = client();
        for (std::size_t at = 0; at < handles.size(); at += 500) {
            json::array a;
            for (std::size_t i = at; i < std::min(handles.size(), at + 500); ++i)
                a.emplace_back(handles[i]);
            auto r = c->request(V::post, "/api/v1/resolve", json::serialize(a),
                                {{"Authorization", steel}});
            REQUIRE_MESSAGE(r.result() == http::status::ok, r.body());
            const json::value answer = parse_json(r.body());
            for (const auto& e : answer.as_array()) {
                const auto& o = e.as_object();
                const std::string handle(o.at("handle").as_string());
                const auto rc = o.at("responseCode").as_int64();
                REQUIRE_MESSAGE((rc == 1 || rc == 100), handle << " answered RC " << rc);
                out[handle] = rc == 100 ? kAbsent : canonical_record(o.at("values").as_array());
            }
        }
        return out;
    }
};

/// A child process (idctl) that the test can kill at any moment. Output goes to files.
class Child {
public:
    Child(const std::vector<std::string>& argv, const fs::path& out, const fs::path& err) {
        std::vector<char*> args;
        for (const auto& a : argv)
            args.push_back(const_cast<char*>(a.c_str()));
        args.push_back(nullptr);
        const int out_fd = ::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        const int err_fd = ::open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (out_fd < 0 || err_fd < 0)
            throw HarnessError("cannot open the output files of " + argv[0]);
        pid_ = ::fork();
        if (pid_ < 0)
            throw HarnessError("fork failed");
        if (pid_ == 0) {
            ::dup2(out_fd, 1);
            ::dup2(err_fd, 2);
            ::execv(args[0], args.data());
            ::_exit(127);
        }
        ::close(out_fd);
        ::close(err_fd);
    }
    ~Child() {
        if (pid_ > 0 && !status_) {
            ::kill(pid_, SIGKILL);
            ::waitpid(pid_, nullptr, 0);
        }
    }
    Child(const Child&) = delete;
    Child& operator=(const Child&) = delete;

    void kill(int signal_number) {
        if (!status_)
            ::kill(pid_, signal_number);
    }
    /// Exit code, or 128 + signal.
    int wait(Millis timeout = 60s) {
        const bool exited = eventually(
            [&] {
                int status = 0;
                if (::waitpid(pid_, &status, WNOHANG) == pid_)
                    status_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
                return status_.has_value();
            },
            timeout);
        if (!exited)
            throw HarnessError("child did not exit in time");
        return *status_;
    }

private:
    pid_t pid_ = -1;
    std::optional<int> status_;
};

std::string read_text(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), {}};
}

/// `idctl export --offline` of a prefix with every value's timestamp removed, one line per record.
std::vector<std::string> export_without_timestamps(const fs::path& data_dir,
                                                   const std::string& prefix) {
    auto r = run_command({idctl_binary().string(), "export", "--offline", "--data-dir",
                          data_dir.string(), "--prefix", prefix},
                         60s);
    REQUIRE_MESSAGE(r.exit_code == 0, r.err);
    std::vector<std::string> out;
    std::size_t start = 0;
    while (start < r.out.size()) {
        auto end = r.out.find('\n', start);
        if (end == std::string::npos)
            end = r.out.size();
        if (end > start) {
            auto line = parse_json(std::string_view(r.out).substr(start, end - start)).as_object();
            for (auto& v : line.at("values").as_array())
                v.as_object().erase("timestamp");
            out.push_back(json::serialize(line));
        }
        start = end + 1;
    }
    return out;
}

} // namespace

TEST_CASE("crash: SIGKILL at random moments of an online bulk load loses no acknowledged record") {
    const std::uint64_t iterations = env_number("IDNODE_CRASH_ITERATIONS", reduced_mode() ? 6 : 20);
    const std::uint64_t seed = env_number("IDNODE_CRASH_SEED", std::random_device{}());
    MESSAGE("crash test: " << iterations << " iterations, IDNODE_CRASH_SEED=" << seed);
    std::mt19937_64 rng(seed);

    std::signal(SIGPIPE, SIG_IGN); // writes to the killed node must fail, not kill the test
    CrashNode n;
    const int pool = 3000; // handles written again and again (creates and replacements)
    std::vector<std::string> handles;
    for (int i = 0; i < pool; ++i)
        handles.push_back("88.118.8/K-" + std::to_string(10000 + i));
    // What is known to be stored per handle (kAbsent at first); checked and refreshed after every
    // kill from what the restarted node serves.
    std::map<std::string, std::string> stored;
    for (const auto& h : handles)
        stored[h] = kAbsent;

    std::uint64_t total_acked = 0, total_sent = 0, kills_with_acks = 0, total_changes = 0;
    const auto started = std::chrono::steady_clock::now();
    for (std::uint64_t it = 0; it < iterations; ++it) {
        CAPTURE(it);
        REQUIRE(n.node.running());
        auto c = n.client();
        c->write_raw("POST /api/v1/bulk?mode=upsert HTTP/1.1\r\nHost: localhost\r\n"
                     "Authorization: " +
                     n.steel + "\r\nTransfer-Encoding: chunked\r\n\r\n");

        // The kill comes from another thread at a random moment, whatever the client is doing.
        const auto kill_after = Millis(20 + rng() % 500);
        const pid_t pid = n.node.pid();
        std::thread killer([pid, kill_after] {
            std::this_thread::sleep_for(kill_after);
            ::kill(pid, SIGKILL);
        });

        struct Sent {
            std::string handle;
            std::string canonical;
        };
        std::vector<Sent> sent; // by line number - 1
        std::vector<std::string> result_lines;
        ChunkedLines decoder;
        try {
            for (;;) {
                std::string chunk;
                const std::size_t lines = 20 + rng() % 200;
                for (std::size_t i = 0; i < lines; ++i) {
                    const std::string& h = handles[rng() % handles.size()];
                    const std::string line =
                        make_line(rng, h, std::to_string(it) + "-" + std::to_string(sent.size()));
                    sent.push_back({h, canonical_record(parse_json(line).at("values").as_array())});
                    chunk += line;
                    chunk += '\n';
                }
                char size[32];
                std::snprintf(size, sizeof size, "%zx\r\n", chunk.size());
                c->write_raw(std::string(size) + chunk + "\r\n");
                decoder.feed(c->read_some(2ms), result_lines);
            }
        } catch (const std::exception&) {
            // The node died: the connection failed while writing or reading.
        }
        killer.join();
        // Whatever the node sent before it died may still be in the socket.
        try {
            for (int quiet = 0; quiet < 3;) {
                const std::string got = c->read_some(20ms);
                quiet = got.empty() ? quiet + 1 : 0;
                decoder.feed(got, result_lines);
            }
        } catch (const std::exception&) {
        }
        c.reset();
        REQUIRE(n.node.wait(10s) == 128 + SIGKILL);

        // Acknowledged lines: the last acknowledged version of each handle must be stored, unless
        // a later line for it (sent, not yet acknowledged) was committed too.
        std::map<std::string, std::size_t> last_acked; // handle -> line index
        std::size_t acked_here = 0;
        for (const auto& text : result_lines) {
            const auto o = parse_json(text).as_object();
            if (o.contains("summary"))
                continue;
            const std::string status(o.at("status").as_string());
            INFO("result line: " << text);
            REQUIRE((status == "created" || status == "replaced" || status == "unchanged"));
            const auto line = static_cast<std::size_t>(o.at("line").as_int64());
            REQUIRE(line >= 1);
            REQUIRE(line <= sent.size());
            REQUIRE(std::string(o.at("handle").as_string()) == sent[line - 1].handle);
            last_acked[sent[line - 1].handle] = line - 1;
            ++acked_here;
        }
        total_acked += acked_here;
        total_sent += sent.size();
        kills_with_acks += acked_here > 0 && acked_here < sent.size();

        // Allowed states per handle touched in this iteration.
        std::map<std::string, std::set<std::string>> allowed;
        for (std::size_t i = 0; i < sent.size(); ++i) {
            auto& set = allowed[sent[i].handle];
            auto acked = last_acked.find(sent[i].handle);
            if (acked == last_acked.end()) {
                set.insert(stored[sent[i].handle]); // nothing acknowledged: the old state too
                set.insert(sent[i].canonical);
            } else if (i >= acked->second) {
                set.insert(sent[i].canonical); // the acknowledged version or a later one
            }
        }

        // The environment opens and is consistent, offline (the node is dead).
        const auto report = verify(n.data_dir());
        const auto changes = static_cast<std::uint64_t>(report.at("changes").as_int64());
        CHECK(changes >= total_changes); // the change log never shrinks
        total_changes = changes;

        n.node.start();
        const auto now = n.resolve(handles);
        for (const auto& h : handles) {
            const std::string& got = now.at(h);
            auto a = allowed.find(h);
            if (a == allowed.end()) {
                INFO("untouched handle " << h);
                CHECK(got == stored[h]);
            } else {
                INFO("handle " << h << (last_acked.contains(h) ? " (acknowledged)" : "")
                               << " holds " << got.substr(0, 200));
                CHECK(a->second.contains(got)); // present, byte-identical, not partial
            }
            stored[h] = got;
        }
    }
    const auto per_iteration =
        std::chrono::duration_cast<Millis>(std::chrono::steady_clock::now() - started) /
        static_cast<long>(iterations);
    MESSAGE("crash test: " << per_iteration.count()
                           << " ms per iteration (upload until the kill, verify, restart, check)");
    MESSAGE("crash test: " << total_sent << " lines sent, " << total_acked << " acknowledged, "
                           << kills_with_acks << " of " << iterations
                           << " kills cut an upload after some acknowledgements");
    CHECK(total_acked > 0);
    CHECK(n.node.stop() == 0);
    const auto report = verify(n.data_dir());
    std::uint64_t present = 0;
    for (const auto& [h, s] : stored)
        present += s != kAbsent;
    CHECK(static_cast<std::uint64_t>(report.at("identifiers").as_int64()) == present);
}

TEST_CASE("crash: idctl load --offline killed mid-way; the re-run matches an uninterrupted load") {
    const std::uint64_t seed = env_number("IDNODE_CRASH_SEED", std::random_device{}());
    MESSAGE("offline crash test: IDNODE_CRASH_SEED=" << seed);
    std::mt19937_64 rng(seed);
    const int records = reduced_mode() ? 3000 : 10000;
    const std::uint64_t kills = std::max<std::uint64_t>(
        3, env_number("IDNODE_CRASH_ITERATIONS", reduced_mode() ? 6 : 20) / 3);

    TempDir dir("crash-offline");
    const fs::path file = dir.path() / "records.ndjson";
    {
        // Shuffled input: the loader sorts what arrives out of key order.
        std::vector<std::string> lines;
        for (int i = 0; i < records; ++i)
            lines.push_back(make_line(rng, "88.118/L-" + std::to_string(100000 + i),
                                      "offline-" + std::to_string(i)));
        std::shuffle(lines.begin(), lines.end(), rng);
        std::ofstream out(file, std::ios::binary);
        for (const auto& l : lines)
            out << l << '\n';
    }
    auto init = [&](const fs::path& data_dir) {
        auto r = run_command({idctl_binary().string(), "init", "--data-dir", data_dir.string(),
                              "--node-prefix", "88.118"});
        REQUIRE_MESSAGE(r.exit_code == 0, r.err);
    };
    const std::vector<std::string> load_args{idctl_binary().string(), "load", "--offline"};
    auto load_argv = [&](const fs::path& data_dir) {
        auto a = load_args;
        a.insert(a.end(), {"--data-dir", data_dir.string(), file.string()});
        return a;
    };

    // The reference: one uninterrupted load, timed to aim the kills.
    const fs::path reference = dir.path() / "reference";
    init(reference);
    const auto started = std::chrono::steady_clock::now();
    {
        Child load(load_argv(reference), dir.path() / "ref.out", dir.path() / "ref.err");
        REQUIRE_MESSAGE(load.wait() == 0, read_text(dir.path() / "ref.err"));
    }
    const auto took =
        std::chrono::duration_cast<Millis>(std::chrono::steady_clock::now() - started);
    MESSAGE("uninterrupted offline load of " << records << " records: " << took.count() << " ms");

    const fs::path crashed = dir.path() / "crashed";
    init(crashed);
    int cut = 0;
    // Where the kills aim: within the duration of an uninterrupted load. The reference load (a
    // first, cold run) can take much longer than the loads that follow, so a load that finishes
    // before its kill narrows the aim to the delay it outlived (still an upper bound).
    auto span = static_cast<std::uint64_t>(std::max<long>(took.count(), 10));
    for (std::uint64_t k = 0; k < kills; ++k) {
        CAPTURE(k);
        Child load(load_argv(crashed), dir.path() / "load.out", dir.path() / "load.err");
        const std::uint64_t delay = span / 20 + rng() % (span * 3 / 4 + 1);
        std::this_thread::sleep_for(Millis(delay));
        load.kill(SIGKILL);
        const int code = load.wait();
        if (code == 0) {
            span = std::max<std::uint64_t>(delay, 10);
        }
        INFO("stderr: " << read_text(dir.path() / "load.err"));
        CHECK((code == 128 + SIGKILL || code == 0));
        cut += code == 128 + SIGKILL;
        verify(crashed); // opens, decodes, counters and change log consistent after every kill
    }
    MESSAGE(cut << " of " << kills << " offline loads were killed before they finished");
    CHECK(cut > 0);
    {
        Child load(load_argv(crashed), dir.path() / "load.out", dir.path() / "load.err");
        REQUIRE_MESSAGE(load.wait() == 0, read_text(dir.path() / "load.err"));
    }

    const auto ref_report = verify(reference);
    const auto crash_report = verify(crashed);
    CHECK(ref_report.at("identifiers") == records);
    CHECK(crash_report.at("identifiers") == records);
    // Every record was created exactly once in both: the same number of change-log entries.
    CHECK(crash_report.at("changes") == ref_report.at("changes"));
    const auto a = export_without_timestamps(reference, "88.118");
    const auto b = export_without_timestamps(crashed, "88.118");
    REQUIRE(a.size() == static_cast<std::size_t>(records));
    CHECK(a == b);
}
