// Full storage (docs/storage.md#map-size-and-storage-full): a node with a small node.max_db_size
// fills up. Then every write path says "storage full" precisely (Handle REST 507 RC 2, bulk
// per-line `storage_full`, SNMS status -2 with a message), reads keep working, and the database
// stays consistent (`idctl verify`). After raising the limit and restarting, writes resume.
//
// A full filesystem (the data directory on a small tmpfs, mounted by the test when it runs as
// root) answers the same, is logged once per episode, shows in /readyz and /metrics, and writes
// resume by themselves once space is freed.
//
// The Handle protocol server (TCP/UDP 2641) answers RESOLUTION and GET_SITE_INFO only; it has no
// write operations, so its RC 2 for storage full cannot arise (docs/handle-protocol.md#operations).
#include "harness.hpp"
#include "json_helpers.hpp"

#include <boost/json.hpp>
#include <doctest/doctest.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <sys/mount.h>
#include <unistd.h>

using namespace idnode::test;
namespace json = boost::json;
using V = http::verb;

namespace {

fs::path idctl_binary() {
    return IDNODE_IDCTL_BINARY;
}

json::object verify(const fs::path& data_dir) {
    auto r = run_command(
        {idctl_binary().string(), "--json", "verify", "--data-dir", data_dir.string()}, 60s);
    INFO("idctl verify stdout: " << r.out << "\nstderr: " << r.err);
    REQUIRE(r.exit_code == 0);
    auto report = parse_json(r.out).as_object();
    CHECK(report.at("ok").as_bool());
    return report;
}

std::string values_json(const std::string& url, std::size_t padding) {
    json::array values;
    values.push_back(json::object{{"index", 1}, {"type", "URL"}, {"data", url}});
    if (padding > 0)
        values.push_back(
            json::object{{"index", 2001}, {"type", "pad"}, {"data", std::string(padding, 'p')}});
    return json::serialize(values);
}

std::string bulk_line(const std::string& handle, std::size_t padding) {
    return R"({"handle":")" + handle + R"(","values":)" +
           values_json("https://e.cn/" + handle, padding) + "}\n";
}

struct FullNode {
    NodeProcess node{"full"};
    std::string admin, steel, token;

    std::unique_ptr<HttpsClient> client() {
        auto c = std::make_unique<HttpsClient>(node.https_port(), trust(node.pki().ca_cert), 20s);
        c->connect();
        return c;
    }
    fs::path data_dir() const { return node.dir() / "db"; }

    /// Bulk-creates `lines`; returns (created, storage_full errors, other errors).
    std::tuple<int, int, int> bulk(HttpsClient& c, const std::string& body) {
        auto r = c.request(V::post, "/api/v1/bulk?mode=create&results=errors", body,
                           {{"Authorization", steel}});
        REQUIRE_MESSAGE(r.result() == http::status::ok, r.body());
        int full = 0, other = 0;
        auto lines = ndjson_values(r.body());
        for (std::size_t i = 0; i + 1 < lines.size(); ++i) {
            const auto& e = lines[i].at("error");
            if (e.at("code") == "storage_full") {
                ++full;
                CHECK(std::string(e.at("message").as_string()).find("storage full") !=
                      std::string::npos);
            } else {
                ++other;
                MESSAGE("unexpected bulk error: " << json::serialize(lines[i]));
            }
        }
        const auto created = lines.back().at("summary").at("created").as_int64();
        return {static_cast<int>(created), full, other};
    }

    /// `idctl init` of `dir`; the admin key goes to `admin`.
    void init(const fs::path& dir) {
        const auto r = run_command({idctl_binary().string(), "init", "--data-dir", dir.string(),
                                    "--node-prefix", "88.118"});
        REQUIRE_MESSAGE(r.exit_code == 0, r.err);
        admin = "Bearer " + std::string(parse_json(r.out).at("admin_key").as_string());
    }

    /// On the running node: prefix 88.118.8, its enterprise account `steel` with an API key
    /// (`steel`) and an SNMS login token (`token`).
    void set_up(HttpsClient& c) {
        auto p = c.request(
            V::post, "/api/v1/prefixes",
            R"({"prefix":"88.118.8","enterprise":{"name":"E","credit_code":"91310000631696382C","industry":"C3120","contact":"ops@example.cn"}})",
            {{"Authorization", admin}});
        REQUIRE_MESSAGE(p.result() == http::status::created, p.body());
        auto a = c.request(V::post, "/api/v1/accounts",
                           R"({"username":"steel","role":"enterprise","prefixes":["88.118.8"],)"
                           R"("password":"steel-password-1"})",
                           {{"Authorization", admin}});
        REQUIRE_MESSAGE(a.result() == http::status::created, a.body());
        auto k = c.request(V::post, "/api/v1/accounts/steel/keys", {}, {{"Authorization", admin}});
        REQUIRE_MESSAGE(k.result() == http::status::created, k.body());
        steel = "Bearer " + std::string(parse_json(k.body()).at("key").as_string());
        auto login = c.request(V::post, "/identity/token",
                               R"({"username":"steel","password":"steel-password-1"})",
                               {{"Content-Type", "application/json"}});
        REQUIRE_MESSAGE(login.result() == http::status::ok, login.body());
        token =
            "Bearer " + std::string(parse_json(login.body()).at("data").at("token").as_string());
    }
};

/// A tmpfs of `bytes` mounted at `dir` for one test and detached on destruction. Mounting needs
/// root (CAP_SYS_ADMIN); otherwise skipped() says why.
class Tmpfs {
public:
    Tmpfs(fs::path dir, std::uint64_t bytes) : dir_(std::move(dir)) {
        fs::create_directories(dir_);
        if (::geteuid() != 0) {
            why_ = "not running as root";
            return;
        }
        const std::string options = "size=" + std::to_string(bytes) + ",mode=0755";
        if (::mount("tmpfs", dir_.c_str(), "tmpfs", MS_NOSUID | MS_NODEV, options.c_str()) != 0) {
            why_ = std::string("mount -t tmpfs failed: ") + std::strerror(errno);
            return;
        }
        mounted_ = true;
    }
    ~Tmpfs() {
        if (mounted_)
            ::umount2(dir_.c_str(), MNT_DETACH);
    }
    Tmpfs(const Tmpfs&) = delete;
    Tmpfs& operator=(const Tmpfs&) = delete;
    const std::string& skipped() const { return why_; }

private:
    fs::path dir_;
    bool mounted_ = false;
    std::string why_;
};

/// Writes `path` until the filesystem has no byte left (ENOSPC); returns the bytes written.
std::uint64_t fill_up(const fs::path& path) {
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    REQUIRE(fd >= 0);
    const std::string chunk(1 << 16, 'f');
    std::uint64_t total = 0;
    int err = 0;
    for (;;) {
        const ssize_t n = ::write(fd, chunk.data(), chunk.size());
        if (n <= 0) {
            err = errno;
            break;
        }
        total += static_cast<std::uint64_t>(n);
    }
    ::close(fd);
    REQUIRE(err == ENOSPC);
    return total;
}

std::size_t count_of(const std::string& text, const std::string& what) {
    std::size_t n = 0;
    for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1))
        ++n;
    return n;
}

} // namespace

TEST_CASE("storage full: writes fail with 507 / storage_full / SNMS -2, reads go on, restart with "
          "a larger limit resumes writes") {
    FullNode n;
    n.init(n.data_dir());
    n.node.set("node.max_db_size", "\"2MiB\"");
    n.node.start();
    auto c = n.client();
    // The SNMS login token is taken while there is room (logging in writes nothing, but be sure).
    n.set_up(*c);
    const std::string token = n.token;

    // Fill: bulk uploads of `batch` small records; when a batch no longer fits, halve it, down to
    // single records. Everything created stays readable.
    int next = 0, created_total = 0;
    for (int batch = 2000; batch >= 1;) {
        std::string body;
        for (int i = 0; i < batch; ++i)
            body += bulk_line("88.118.8/F-" + std::to_string(100000 + next + i), 200);
        const auto [created, full, other] = n.bulk(*c, body);
        CHECK(other == 0);
        REQUIRE(created + full == batch);
        created_total += created;
        next += batch;
        if (full > 0)
            batch /= 2;
        REQUIRE(next < 200000); // 2 MiB cannot hold that many
    }
    MESSAGE("filled 2 MiB with " << created_total << " records");
    REQUIRE(created_total > 1000);

    const std::string big = std::string(30000, 'b'); // needs fresh overflow pages: cannot fit

    // Handle REST: 507, RC 2, a message that says so.
    auto put = c->request(V::put, "/api/handles/88.118.8/FULL-1",
                          R"({"values":)" + values_json("https://e.cn/full", 30000) + "}",
                          {{"Authorization", n.steel}});
    CHECK(put.result() == http::status::insufficient_storage);
    auto put_body = parse_json(put.body());
    CHECK(put_body.at("responseCode") == 2);
    CHECK(std::string(put_body.at("message").as_string()).find("storage full") !=
          std::string::npos);

    // Bulk: HTTP 200 (the stream has begun), the line fails with storage_full.
    {
        const auto [created, full, other] = n.bulk(*c, bulk_line("88.118.8/FULL-2", 30000));
        CHECK(created == 0);
        CHECK(full == 1);
        CHECK(other == 0);
    }

    // SNMS: status -2 (business error) with a readable message, single and batch.
    auto snms = c->request(V::post, "/identityv2/data",
                           R"({"handle":"88.118.8/FULL-3","value":[{"index":1,"type":"URL",)"
                           R"("data":{"format":"string","value":")" +
                               big + R"("}}]})",
                           {{"Authorization", token}, {"Content-Type", "application/json"}});
    REQUIRE(snms.result() == http::status::ok);
    auto snms_body = parse_json(snms.body());
    CHECK(snms_body.at("status") == -2);
    CHECK(std::string(snms_body.at("message").as_string()).find("存储空间已满") !=
          std::string::npos);
    auto snms_batch = c->request(V::post, "/identityv2/data/batchCreate",
                                 R"([{"handle":"88.118.8/FULL-4","value":[{"index":1,"type":"URL",)"
                                 R"("data":{"format":"string","value":")" +
                                     big + R"("}}]}])",
                                 {{"Authorization", token}, {"Content-Type", "application/json"}});
    auto batch_body = parse_json(snms_batch.body());
    CHECK(batch_body.at("status") == 1); // the envelope; the record itself failed:
    CHECK(std::string(batch_body.at("data").as_array()[0].at("msg").as_string())
              .find("存储空间已满") != std::string::npos);

    // Reads keep working: Handle REST, batch resolve, SNMS detail, listing.
    auto get = c->request(V::get, "/api/handles/88.118.8/F-100000");
    CHECK(get.result() == http::status::ok);
    CHECK(get.body().find("https://e.cn/88.118.8/F-100000") != std::string::npos);
    CHECK(c->request(V::get, "/api/handles/88.118.8/FULL-1").result() == http::status::not_found);
    auto resolved = c->request(V::post, "/api/v1/resolve", R"(["88.118.8/F-100001"])");
    CHECK(parse_json(resolved.body()).as_array()[0].at("responseCode") == 1);
    auto detail = c->request(V::get, "/identityv2/data/detail?handle=88.118.8/F-100002");
    CHECK(parse_json(detail.body()).at("status") == 1);
    auto list = c->request(V::get, "/api/handles?prefix=88.118.8&pageSize=10", {},
                           {{"Authorization", n.steel}});
    CHECK(list.result() == http::status::ok);
    c.reset();

    // Nothing is corrupt.
    REQUIRE(n.node.stop() == 0);
    auto report = verify(n.data_dir());
    CHECK(report.at("identifiers") == created_total);

    // Raise the limit, restart: writes resume.
    n.node.set("node.max_db_size", "\"64MiB\"");
    n.node.start();
    c = n.client();
    auto again = c->request(V::put, "/api/handles/88.118.8/FULL-1",
                            R"({"values":)" + values_json("https://e.cn/full", 30000) + "}",
                            {{"Authorization", n.steel}});
    CHECK_MESSAGE(again.result() == http::status::created, again.body());
    {
        const auto [created, full, other] = n.bulk(*c, bulk_line("88.118.8/FULL-2", 30000));
        CHECK(created == 1);
        CHECK(full == 0);
        CHECK(other == 0);
    }
    auto snms_again = c->request(V::post, "/identityv2/data",
                                 R"({"handle":"88.118.8/FULL-3","value":[{"index":1,"type":"URL",)"
                                 R"("data":{"format":"string","value":")" +
                                     big + R"("}}]})",
                                 {{"Authorization", token}, {"Content-Type", "application/json"}});
    CHECK(parse_json(snms_again.body()).at("status") == 1);
    c.reset();
    REQUIRE(n.node.stop() == 0);
    report = verify(n.data_dir());
    CHECK(report.at("identifiers") == created_total + 3);
}

TEST_CASE("disk full: the filesystem (not max_db_size) runs out: 507 storage_full, logged once, "
          "/readyz and /metrics say so; freeing space resumes writes without a restart") {
    FullNode n;
    const fs::path mount = n.node.dir() / "disk";
    Tmpfs disk(mount, 24ull << 20);
    if (!disk.skipped().empty()) {
        MESSAGE("skipped: the disk-full test needs a tmpfs (" << disk.skipped() << ")");
        return;
    }
    const fs::path data_dir = mount / "db";
    n.init(data_dir);
    n.node.set("node.data_dir", "\"" + data_dir.string() + "\"");
    n.node.set("node.max_db_size", "\"1GiB\""); // far beyond the filesystem: the disk fills first
    n.node.start();
    auto c = n.client();
    n.set_up(*c);

    int acknowledged = 0;
    for (; acknowledged < 20; ++acknowledged) {
        auto r = c->request(V::put, "/api/handles/88.118.8/ROOM-" + std::to_string(acknowledged),
                            R"({"values":)" + values_json("https://e.cn/room", 0) + "}",
                            {{"Authorization", n.steel}});
        REQUIRE_MESSAGE(r.result() == http::status::created, r.body());
    }
    const fs::path filler = mount / "filler";
    MESSAGE("filler: " << fill_up(filler) << " bytes");

    // Records of 30 KB need fresh pages at the end of the file: every write path fails the same.
    const std::string big(30000, 'b');
    auto put = c->request(V::put, "/api/handles/88.118.8/FULL-1",
                          R"({"values":)" + values_json("https://e.cn/full", 30000) + "}",
                          {{"Authorization", n.steel}});
    CHECK(put.result() == http::status::insufficient_storage);
    auto put_body = parse_json(put.body());
    CHECK(put_body.at("responseCode") == 2);
    CHECK(std::string(put_body.at("message").as_string()).find("storage full") !=
          std::string::npos);
    {
        const auto [created, full, other] = n.bulk(*c, bulk_line("88.118.8/FULL-2", 30000));
        CHECK(created == 0);
        CHECK(full == 1);
        CHECK(other == 0);
    }
    const std::string snms_body = R"({"handle":"88.118.8/FULL-3","value":[{"index":1,"type":"URL",)"
                                  R"("data":{"format":"string","value":")" +
                                  big + R"("}}]})";
    auto snms = c->request(V::post, "/identityv2/data", snms_body,
                           {{"Authorization", n.token}, {"Content-Type", "application/json"}});
    auto snms_json = parse_json(snms.body());
    CHECK(snms_json.at("status") == -2);
    CHECK(std::string(snms_json.at("message").as_string()).find("存储空间已满") !=
          std::string::npos);
    auto again = c->request(V::put, "/api/handles/88.118.8/FULL-1",
                            R"({"values":)" + values_json("https://e.cn/full", 30000) + "}",
                            {{"Authorization", n.steel}});
    CHECK(again.result() == http::status::insufficient_storage);

    // Reads go on.
    CHECK(c->request(V::get, "/api/handles/88.118.8/ROOM-0").result() == http::status::ok);

    // Probes and metrics show it; the log has one line for the whole episode.
    auto ready = http_get(n.node.ops_port(), "/readyz");
    CHECK(ready.result() == http::status::service_unavailable);
    CHECK(ready.body().find("storage full") != std::string::npos);
    CHECK(http_get(n.node.ops_port(), "/metrics").body().find("\nidnode_storage_full 1") !=
          std::string::npos);
    const std::string full_line = "storage full: the filesystem of " + data_dir.string();
    CHECK(eventually([&] { return count_of(n.node.stderr_text(), full_line) > 0; }));
    CHECK_MESSAGE(count_of(n.node.stderr_text(), full_line) == 1, n.node.stderr_text());
    CHECK(n.node.stderr_text().find("bytes free") != std::string::npos);

    // The operator frees space: readiness returns before any write, then writes go through.
    fs::remove(filler);
    CHECK(eventually(
        [&] { return http_get(n.node.ops_port(), "/readyz").result() == http::status::ok; }));
    CHECK(http_get(n.node.ops_port(), "/metrics").body().find("\nidnode_storage_full 0") !=
          std::string::npos);
    CHECK(eventually([&] { return count_of(n.node.stderr_text(), "has room again") == 1; }));
    auto resumed = c->request(V::put, "/api/handles/88.118.8/FULL-1",
                              R"({"values":)" + values_json("https://e.cn/full", 30000) + "}",
                              {{"Authorization", n.steel}});
    CHECK_MESSAGE(resumed.result() == http::status::created, resumed.body());
    {
        const auto [created, full, other] = n.bulk(*c, bulk_line("88.118.8/FULL-2", 30000));
        CHECK(created == 1);
        CHECK(full == 0);
        CHECK(other == 0);
    }
    auto snms_again =
        c->request(V::post, "/identityv2/data", snms_body,
                   {{"Authorization", n.token}, {"Content-Type", "application/json"}});
    CHECK(parse_json(snms_again.body()).at("status") == 1);
    c.reset();
    CHECK(count_of(n.node.stderr_text(), full_line) == 1);

    // Nothing half-written: the database verifies and holds exactly the acknowledged records.
    REQUIRE(n.node.stop() == 0);
    auto report = verify(data_dir);
    CHECK(report.at("identifiers") == acknowledged + 3);
}
