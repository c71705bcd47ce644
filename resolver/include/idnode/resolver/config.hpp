// Node configuration (docs/configuration.md): one plain struct with every key and its default,
// and the one function that reads configuration files.
//
// Contract
// - `load_config` / `parse_config` are the ONLY code that reads TOML. Everything else receives a
//   validated `NodeConfig` by const reference.
// - Unknown keys (at any depth) are an error naming the full dotted key: "unknown key
// 'https.lisen'".
// - A value of the wrong type names the key and the expected type:
//   "key 'https.threads' must be an integer (got string)".
// - Sizes (`node.max_db_size`, `limits.max_header_bytes`, `limits.max_body_bytes`,
//   `limits.max_batch_body_bytes`) are integers (bytes) or strings "<integer><unit>" with unit B,
//   KiB, MiB, GiB, TiB (powers of 1024) or KB, MB, GB, TB (powers of 1000); whitespace between
//   number and unit is allowed.
// - Listen addresses are "host:port" with an IPv4 literal, a bracketed IPv6 literal ("[::1]:8443")
//   or "localhost" (= 127.0.0.1); port 0 means "any free port" (tests use it).
// - Relative paths are kept as written and resolved against the working directory of `idnode`.
// - Environment overrides exist for secrets only; there is exactly one today:
//   IDNODE_HTTPS_KEY_PASSWORD — passphrase of an encrypted `https.key` PEM file. It is never read
//   from TOML (an `https.key_password` key is an unknown key) and never logged.
//
// Errors: both functions throw `ConfigError` (a startup failure) whose what() is a one-line reason
// prefixed with the source name and, where known, line:column.
// Thread safety: pure; no shared state.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace idnode::resolver {

/// Thrown by the configuration loader; what() is the whole human-readable reason.
class ConfigError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

/// A validated "host:port". `host` is a numeric IP address (v4 dotted or v6 without brackets).
struct HostPort {
    std::string host;
    std::uint16_t port = 0;

    /// "127.0.0.1:8443" or "[::1]:8443".
    std::string to_string() const;
    friend bool operator==(const HostPort&, const HostPort&) = default;
};

/// Parses "host:port" as described above. Returns std::nullopt and sets `why` on failure.
std::optional<HostPort> parse_host_port(std::string_view text, std::string& why);

/// Parses a size (see above) given as text. Returns std::nullopt and sets `why` on failure.
std::optional<std::uint64_t> parse_size(std::string_view text, std::string& why);

inline constexpr std::uint64_t KiB = 1024;
inline constexpr std::uint64_t MiB = 1024 * KiB;
inline constexpr std::uint64_t GiB = 1024 * MiB;

enum class LogFormat { text, json };

struct NodeConfig {
    struct Node {
        std::filesystem::path data_dir = "var/db";
        std::vector<std::string> homed_prefixes; // validated prefix spellings, e.g. "88.118"
        std::uint64_t max_db_size = 64 * GiB;
        /// The URL clients reach this node at (QR codes). Empty = "https://" + https.listen with
        /// the port actually bound; a wildcard https.listen (0.0.0.0, ::) then refuses to start,
        /// since no client can reach that address. Never taken from a request.
        std::string public_base_url;
    } node;

    struct Https {
        HostPort listen{"127.0.0.1", 8443};
        std::filesystem::path cert = "var/dev-cert.pem"; // PEM chain: leaf first
        std::filesystem::path key = "var/dev-key.pem";   // PEM private key
        unsigned threads = 0;                            // 0 = std::thread::hardware_concurrency()
        /// Strict-Transport-Security max-age on every HTTPS response; 0 = no header.
        std::uint32_t hsts_max_age_s = 31536000;
        /// From IDNODE_HTTPS_KEY_PASSWORD only; empty = key is not encrypted.
        std::string key_password;
    } https;

    struct Handle {
        HostPort listen{"127.0.0.1", 2641}; // TCP and UDP
        std::string advertise_address;      // IP literal; empty = the listen host
        std::uint16_t site_serial = 1;      // the Handle header carries it as u16
        /// PEM RSA public key published in this node's HS_SITE (what clients verify signed
        /// answers with); empty = none. HANDLE.NET clients know RSA and DSA keys only.
        std::filesystem::path public_key;
        /// PEM RSA private key of this server (`idctl init` makes one): its public half is
        /// published in HS_SITE and it signs answers to requests that set CERT. Empty = none.
        std::filesystem::path private_key;
        /// Most bytes sent over UDP for one request (all fragments, envelopes included); a
        /// larger answer is refused with RC 2 so that the client asks over TCP.
        std::uint64_t udp_max_reply_bytes = 8192;
        /// The IDIS password LOGIN (opcode 2000) over the Handle protocol: the password crosses
        /// the network in clear, so it is off unless the operator turns it on.
        bool allow_password_login = false;
    } handle;

    struct Ops {
        HostPort listen{"127.0.0.1", 9464};
    } ops;

    struct Snms {
        bool token_v1 = true;
        std::uint32_t token_ttl_s = 86400;
    } snms;

    struct Limits {
        std::uint64_t max_header_bytes = 8 * KiB;
        std::uint64_t max_body_bytes = 64 * KiB;
        // Body bound of the SNMS batch routes (batchCreate/Update/Delete, <= 2000 records a
        // call): 2000 records of up to 4 KiB each. Never below max_body_bytes.
        std::uint64_t max_batch_body_bytes = 8 * MiB;
        std::chrono::seconds header_timeout{10};
        std::chrono::seconds idle_timeout{60};
        std::uint32_t max_connections = 10000;
        // Requests/s per client address for anonymous callers (HTTPS) and for the Handle
        // protocol; burst = one second's worth; 0 = off. On by default so that a fresh install
        // is not open to floods.
        double rate_per_ip = 200;
        double rate_per_account = 0; // requests/s; 0 = off
        // How long a bulk upload's outcome answers a repeated Idempotency-Key.
        std::uint32_t idempotency_ttl_s = 86400;
    } limits;

    struct Log {
        std::string level = "info"; // trace|debug|info|warn|error|critical|off
        std::string access = "off"; // a file path, "stderr", or "off"
        LogFormat format = LogFormat::text;
    } log;

    /// Number of I/O threads to run: https.threads, or the core count when it is 0.
    unsigned effective_threads() const noexcept;
};

/// Parses TOML text. `source_name` prefixes error messages (usually the file path).
/// Does not consult the environment (so tests are hermetic); see `apply_environment`.
NodeConfig parse_config(std::string_view toml_text, std::string_view source_name = "config");

/// Reads and parses `path`, then applies the environment overrides. Throws ConfigError when the
/// file cannot be read or is invalid.
NodeConfig load_config(const std::filesystem::path& path);

/// Applies the secret overrides listed in the header comment from the process environment.
void apply_environment(NodeConfig& config);

} // namespace idnode::resolver
