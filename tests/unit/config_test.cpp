#include "idnode/resolver/config.hpp"

#include <doctest/doctest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <unistd.h>

using namespace idnode::resolver;

namespace {

/// The ConfigError message for `text`, or "" if it parsed.
std::string error_of(std::string_view text) {
    try {
        (void)parse_config(text, "t.toml");
    } catch (const ConfigError& e) {
        return e.what();
    }
    return "";
}

bool contains(const std::string& haystack, std::string_view needle) {
    return haystack.find(needle) != std::string::npos;
}

} // namespace

TEST_CASE("an empty document gives every documented default") {
    const NodeConfig c = parse_config("", "empty");
    CHECK(c.node.data_dir == "var/db");
    CHECK(c.node.homed_prefixes.empty());
    CHECK(c.node.max_db_size == 64 * GiB);
    CHECK(c.node.public_base_url.empty());
    CHECK(c.https.listen == HostPort{"127.0.0.1", 8443});
    CHECK(c.https.cert == "var/dev-cert.pem");
    CHECK(c.https.key == "var/dev-key.pem");
    CHECK(c.https.threads == 0);
    CHECK(c.https.hsts_max_age_s == 31536000);
    CHECK(c.https.key_password.empty());
    CHECK(c.handle.listen == HostPort{"127.0.0.1", 2641});
    CHECK(c.handle.advertise_address.empty());
    CHECK(c.handle.site_serial == 1);
    CHECK(c.ops.listen == HostPort{"127.0.0.1", 9464});
    CHECK(c.snms.token_v1);
    CHECK(c.snms.token_ttl_s == 86400);
    CHECK(c.limits.max_header_bytes == 8192);
    CHECK(c.limits.max_body_bytes == 65536);
    CHECK(c.limits.max_batch_body_bytes == 8 * MiB);
    CHECK(c.limits.header_timeout == std::chrono::seconds(10));
    CHECK(c.limits.idle_timeout == std::chrono::seconds(60));
    CHECK(c.limits.max_connections == 10000);
    CHECK(c.limits.rate_per_ip == 200); // on by default (docs/configuration.md#limits)
    CHECK(c.limits.rate_per_account == 0);
    CHECK(c.limits.idempotency_ttl_s == 86400);
    CHECK(c.log.level == "info");
    CHECK(c.log.access == "off");
    CHECK(c.log.format == LogFormat::text);
    CHECK(c.effective_threads() >= 1);
}

TEST_CASE("the shipped conf/idnode.toml parses and equals the defaults") {
    const auto path = std::filesystem::path(IDNODE_SOURCE_DIR) / "conf" / "idnode.toml";
    std::ifstream in(path);
    REQUIRE(in);
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const NodeConfig c = parse_config(text, path.string());
    CHECK(c.https.listen.port == 8443);
    // Uncommenting every "# key = default" line must also parse and change nothing.
    std::string uncommented;
    std::istringstream lines(text);
    for (std::string line; std::getline(lines, line);) {
        if (line.rfind("# ", 0) == 0 && line.find(" = ") != std::string::npos &&
            line.find(' ', 2) > line.find(" = ") - 1)
            line = line.substr(2);
        uncommented += line + "\n";
    }
    const NodeConfig u = parse_config(uncommented, "uncommented");
    CHECK(u.node.max_db_size == c.node.max_db_size);
    CHECK(u.https.listen == c.https.listen);
    CHECK(u.ops.listen == c.ops.listen);
    CHECK(u.limits.max_header_bytes == c.limits.max_header_bytes);
    CHECK(u.limits.max_connections == c.limits.max_connections);
    CHECK(u.limits.idempotency_ttl_s == c.limits.idempotency_ttl_s);
    CHECK(u.log.access == c.log.access);
}

TEST_CASE("every key can be set") {
    const NodeConfig c = parse_config(R"(
[node]
data_dir = "/srv/idnode"
homed_prefixes = ["88.118", "88.999"]
max_db_size = "512MiB"
public_base_url = "https://id.example.com"
[https]
listen = "[::1]:443"
cert = "c.pem"
key = "k.pem"
threads = 4
hsts_max_age_s = 0
[handle]
listen = "0.0.0.0:2641"
advertise_address = "192.0.2.7"
site_serial = 7
private_key = "/etc/idnode/handle-key.pem"
udp_max_reply_bytes = "4KiB"
allow_password_login = true
[ops]
listen = "localhost:0"
[snms]
token_v1 = false
token_ttl_s = 3600
[limits]
max_header_bytes = "16KiB"
max_body_bytes = 1048576
max_batch_body_bytes = "16MiB"
header_timeout_s = 5
idle_timeout_s = 30
max_connections = 3
rate_per_ip = 2.5
rate_per_account = 100
idempotency_ttl_s = 600
[log]
level = "debug"
access = "/var/log/idnode/access.log"
format = "json"
)");
    CHECK(c.node.data_dir == "/srv/idnode");
    CHECK(c.node.homed_prefixes == std::vector<std::string>{"88.118", "88.999"});
    CHECK(c.node.max_db_size == 512 * MiB);
    CHECK(c.node.public_base_url == "https://id.example.com");
    CHECK(c.https.listen == HostPort{"::1", 443});
    CHECK(c.https.listen.to_string() == "[::1]:443");
    CHECK(c.https.threads == 4);
    CHECK(c.https.hsts_max_age_s == 0);
    CHECK(c.effective_threads() == 4);
    CHECK(c.handle.listen == HostPort{"0.0.0.0", 2641});
    CHECK(c.handle.advertise_address == "192.0.2.7");
    CHECK(c.handle.site_serial == 7);
    CHECK(c.handle.private_key == "/etc/idnode/handle-key.pem");
    CHECK(c.handle.udp_max_reply_bytes == 4 * KiB);
    CHECK(c.handle.allow_password_login);
    CHECK(c.ops.listen == HostPort{"127.0.0.1", 0});
    CHECK_FALSE(c.snms.token_v1);
    CHECK(c.snms.token_ttl_s == 3600);
    CHECK(c.limits.max_header_bytes == 16 * KiB);
    CHECK(c.limits.max_body_bytes == MiB);
    CHECK(c.limits.max_batch_body_bytes == 16 * MiB);
    CHECK(c.limits.header_timeout == std::chrono::seconds(5));
    CHECK(c.limits.idle_timeout == std::chrono::seconds(30));
    CHECK(c.limits.max_connections == 3);
    CHECK(c.limits.rate_per_ip == 2.5);
    CHECK(c.limits.rate_per_account == 100);
    CHECK(c.limits.idempotency_ttl_s == 600);
    CHECK(c.log.level == "debug");
    CHECK(c.log.access == "/var/log/idnode/access.log");
    CHECK(c.log.format == LogFormat::json);
}

TEST_CASE("unknown keys are errors that name the key and its line") {
    CHECK(error_of("[https]\nlisen = \"127.0.0.1:1\"\n") ==
          "t.toml:2:1: unknown key 'https.lisen'");
    CHECK(contains(error_of("[httpz]\nlisten = \"127.0.0.1:1\"\n"), "unknown key 'httpz'"));
    CHECK(contains(error_of("verbose = true\n"), "unknown key 'verbose'"));
    CHECK(contains(error_of("[https.tls]\nmin = 1\n"), "unknown key 'https.tls'"));
    CHECK(contains(error_of("[https]\nkey_password = \"secret\"\n"),
                   "unknown key 'https.key_password'"));
    CHECK(contains(error_of("https = 3\n"), "key 'https' must be a table (got integer)"));
}

TEST_CASE("a wrong type names the key and the expected type") {
    CHECK(contains(error_of("[https]\nthreads = \"4\"\n"),
                   "key 'https.threads' must be an integer (got string)"));
    CHECK(contains(error_of("[https]\nlisten = 8443\n"),
                   "key 'https.listen' must be a string (got integer)"));
    CHECK(contains(error_of("[https]\ncert = true\n"),
                   "key 'https.cert' must be a string (got boolean)"));
    CHECK(contains(error_of("[node]\nhomed_prefixes = \"88.118\"\n"),
                   "key 'node.homed_prefixes' must be an array of prefix strings (got string)"));
    CHECK(contains(error_of("[node]\nhomed_prefixes = [88]\n"),
                   "key 'node.homed_prefixes' must be a string (got integer)"));
    CHECK(contains(error_of("[node]\nmax_db_size = 1.5\n"),
                   "key 'node.max_db_size' must be a size (integer bytes or a string like "
                   "\"64GiB\") (got float)"));
    CHECK(contains(error_of("[snms]\ntoken_v1 = \"yes\"\n"),
                   "key 'snms.token_v1' must be a boolean (got string)"));
    CHECK(contains(error_of("[limits]\nrate_per_ip = \"5\"\n"),
                   "key 'limits.rate_per_ip' must be a number (requests per second) (got string)"));
    CHECK(contains(error_of("[limits]\nheader_timeout_s = 1.5\n"),
                   "key 'limits.header_timeout_s' must be an integer (got float)"));
    CHECK(contains(error_of("[log]\nformat = 1\n"), "key 'log.format' must be a string"));
    CHECK(contains(error_of("[handle]\nsite_serial = 1979-05-27\n"),
                   "key 'handle.site_serial' must be an integer (got date)"));
}

TEST_CASE("out-of-range and malformed values name the key and the reason") {
    CHECK(contains(error_of("[https]\nthreads = -1\n"), "key 'https.threads': must be in 0..1024"));
    CHECK(contains(error_of("[limits]\nmax_connections = 0\n"),
                   "key 'limits.max_connections': must be in 1..1000000"));
    CHECK(contains(error_of("[limits]\nmax_header_bytes = 100\n"),
                   "key 'limits.max_header_bytes': must be between 1024"));
    CHECK(contains(error_of("[limits]\nmax_body_bytes = -5\n"), "must not be negative"));
    CHECK(contains(error_of("[limits]\nmax_batch_body_bytes = \"2GiB\"\n"),
                   "key 'limits.max_batch_body_bytes'"));
    CHECK(contains(error_of("[limits]\nrate_per_ip = -1\n"), "key 'limits.rate_per_ip'"));
    CHECK(contains(error_of("[handle]\nsite_serial = 70000\n"), "key 'handle.site_serial'"));
    CHECK(contains(error_of("[handle]\nudp_max_reply_bytes = 511\n"),
                   "key 'handle.udp_max_reply_bytes'"));
    CHECK(contains(error_of("[log]\nlevel = \"loud\"\n"),
                   "key 'log.level': 'loud' is not one of trace, debug"));
    CHECK(contains(error_of("[log]\nformat = \"xml\"\n"), "'xml' is not one of text, json"));
    CHECK(contains(error_of("[log]\naccess = \"\"\n"), "key 'log.access': must not be empty"));
    CHECK(contains(error_of("[node]\nhomed_prefixes = [\"88..1\"]\n"),
                   "key 'node.homed_prefixes': '88..1'"));
    CHECK(contains(error_of("[node]\nhomed_prefixes = [\"88.1\", \"88.1\"]\n"), "listed twice"));
    CHECK(contains(error_of("[node]\npublic_base_url = \"ftp://x\"\n"), "https://"));
    CHECK(contains(error_of("[handle]\nadvertise_address = \"example.com\"\n"),
                   "is not an IP address"));
    CHECK(contains(error_of("[https]\nlisten = \"127.0.0.1:1\"\n[ops]\nlisten = \"127.0.0.1:1\"\n"),
                   "https.listen and ops.listen are the same address"));
    CHECK(contains(error_of("[https\n"), "t.toml:1:"));
    CHECK(contains(error_of("[https]\nhsts_max_age_s = -1\n"), "key 'https.hsts_max_age_s'"));
}

TEST_CASE("a wildcard https.listen needs node.public_base_url") {
    for (const char* wildcard : {"0.0.0.0:8443", "[::]:8443", "[0::0]:0"}) {
        CAPTURE(wildcard);
        const std::string listen = std::string("[https]\nlisten = \"") + wildcard + "\"\n";
        CHECK(contains(error_of(listen),
                       "node.public_base_url must be set when https.listen is a wildcard"));
        CHECK(error_of("[node]\npublic_base_url = \"https://id.example.com\"\n" + listen) == "");
    }
    CHECK(error_of("[https]\nlisten = \"[::1]:8443\"\n") == "");
    CHECK(error_of("[https]\nlisten = \"10.0.0.1:8443\"\n") == "");
}

TEST_CASE("size strings") {
    std::string why;
    CHECK(parse_size("0", why) == 0u);
    CHECK(parse_size("123", why) == 123u);
    CHECK(parse_size("1B", why) == 1u);
    CHECK(parse_size("8KiB", why) == 8192u);
    CHECK(parse_size("512MiB", why) == 512 * MiB);
    CHECK(parse_size("64GiB", why) == 64 * GiB);
    CHECK(parse_size("64 GiB", why) == 64 * GiB);
    CHECK(parse_size("2TiB", why) == 2 * 1024 * GiB);
    CHECK(parse_size("3KB", why) == 3000u);
    CHECK(parse_size("1GB", why) == 1000000000u);
    CHECK_FALSE(parse_size("", why));
    CHECK_FALSE(parse_size("GiB", why));
    CHECK_FALSE(parse_size("1.5GiB", why));
    CHECK_FALSE(parse_size("64gb", why));
    CHECK(contains(why, "unknown unit"));
    CHECK_FALSE(parse_size("-1", why));
    CHECK_FALSE(parse_size("99999999999999999999", why));
    CHECK_FALSE(parse_size("17000000TiB", why));
    CHECK(contains(why, "too large"));
    CHECK(contains(error_of("[node]\nmax_db_size = \"64 parsecs\"\n"),
                   "key 'node.max_db_size': size '64 parsecs' has an unknown unit"));
}

TEST_CASE("host:port parsing") {
    std::string why;
    CHECK(parse_host_port("127.0.0.1:8443", why) == HostPort{"127.0.0.1", 8443});
    CHECK(parse_host_port("0.0.0.0:0", why) == HostPort{"0.0.0.0", 0});
    CHECK(parse_host_port("localhost:1", why) == HostPort{"127.0.0.1", 1});
    CHECK(parse_host_port("[::1]:65535", why) == HostPort{"::1", 65535});
    CHECK(parse_host_port("[::]:80", why) == HostPort{"::", 80});
    CHECK_FALSE(parse_host_port("127.0.0.1", why));
    CHECK(contains(why, "host:port"));
    CHECK_FALSE(parse_host_port("127.0.0.1:65536", why));
    CHECK(contains(why, "0..65535"));
    CHECK_FALSE(parse_host_port("127.0.0.1:", why));
    CHECK_FALSE(parse_host_port("127.0.0.1:8x", why));
    CHECK_FALSE(parse_host_port("example.com:80", why));
    CHECK(contains(why, "not an IP address"));
    CHECK_FALSE(parse_host_port("::1:80", why));
    CHECK(contains(why, "bracketed"));
    CHECK_FALSE(parse_host_port("[::1]80", why));
    CHECK_FALSE(parse_host_port("[nope]:80", why));
    CHECK_FALSE(parse_host_port("256.1.1.1:80", why));
    CHECK(contains(error_of("[ops]\nlisten = \"127.0.0.1:99999\"\n"),
                   "key 'ops.listen': port '99999' is not a number in 0..65535"));
}

TEST_CASE("load_config reads a file, reports a missing one, and applies the secret override") {
    const auto dir = std::filesystem::temp_directory_path() /
                     ("idnode-config-test-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir);
    const auto path = dir / "node.toml";
    {
        std::ofstream out(path);
        out << "[https]\nthreads = 3\n";
    }
    ::setenv("IDNODE_HTTPS_KEY_PASSWORD", "s3cret", 1);
    const NodeConfig c = load_config(path);
    ::unsetenv("IDNODE_HTTPS_KEY_PASSWORD");
    CHECK(c.https.threads == 3);
    CHECK(c.https.key_password == "s3cret");

    try {
        (void)load_config(dir / "missing.toml");
        FAIL("expected ConfigError");
    } catch (const ConfigError& e) {
        CHECK(contains(e.what(), "missing.toml: cannot read"));
    }
    std::filesystem::remove_all(dir);
}
