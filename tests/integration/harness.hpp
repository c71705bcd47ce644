// Integration-test harness: run the real `idnode` binary and talk to it over the network.
//
//   idnode::test::NodeProcess node;                 // temp dir, test CA, server certificate
//   node.set("limits.rate_per_ip", "5");             // raw TOML values, dotted keys
//   node.start();                                    // waits for "idnode listening ..."
//   idnode::test::HttpsClient client(node.https_port(), {.ca_file = node.pki().ca_cert});
//   client.connect();
//   auto res = client.request(http::verb::get, "/api/handles/88.1/x");
//   CHECK(node.stop() == 0);                         // SIGTERM, wait, exit status
//
// Everything has a deadline: a hung server fails the test with a message instead of hanging
// ctest. Failures are reported by throwing `HarnessError` (doctest prints what()), including
// the node's stderr where it helps.
//
// Processes: every NodeProcess is killed (SIGKILL) and reaped by its destructor if still alive.
// Temp dirs are removed unless IDNODE_KEEP_TEST_DIRS is set (then their path is printed).
// Thread safety: none; use each object from one thread.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <sys/types.h>
#include <utility>
#include <vector>

namespace idnode::test {

namespace fs = std::filesystem;
namespace http = boost::beast::http;
using namespace std::chrono_literals;
using Millis = std::chrono::milliseconds;

using Request = http::request<http::string_body>;
using Response = http::response<http::string_body>;

class HarnessError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

/// True when the suite should do less work (set for the sanitizer build by tools/dev).
bool reduced_mode();

/// The Authorization header value for HTTP Basic (RFC 7617): "Basic base64(user:password)".
std::string basic_authorization(const std::string& user, const std::string& password);

/// A fresh directory under the system temp dir; removed recursively on destruction.
class TempDir {
public:
    explicit TempDir(std::string_view tag);
    ~TempDir();
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    const fs::path& path() const noexcept { return path_; }

private:
    fs::path path_;
};

/// Result of `run_command`.
struct CommandResult {
    int exit_code = -1; // 128 + signal number if killed by a signal
    std::string out;
    std::string err;
};

/// Runs argv[0] (searched in PATH) with no shell, capturing stdout and stderr.
/// Throws HarnessError if it cannot be started or does not finish within `timeout`.
CommandResult run_command(const std::vector<std::string>& argv, Millis timeout = 20s);

/// The idnode binary under test (set by CMake).
fs::path idnode_binary();

/// Test certificates made with the openssl CLI (EC P-256): a CA, a server certificate for
/// localhost / 127.0.0.1 signed by it, and an unrelated CA that must never verify the server.
struct TestPki {
    fs::path ca_cert;
    fs::path ca_key;
    fs::path server_cert;
    fs::path server_key;
    fs::path other_ca_cert;

    static TestPki create(const fs::path& dir);

    /// Issues a new server key + certificate (subject CN `common_name`, SAN localhost and
    /// 127.0.0.1) signed by this CA, replacing `cert`/`key` atomically (rename).
    void issue_server_cert(const fs::path& cert, const fs::path& key,
                           std::string_view common_name) const;
};

/// One `idnode` process with its own temp dir, config file, certificate and data dir.
///
/// Default config: every listener on 127.0.0.1 port 0, https.threads = 2, the test
/// certificate, log.access = <dir>/access.log. `set` overrides or adds any key.
class NodeProcess {
public:
    explicit NodeProcess(std::string_view tag = "node");
    ~NodeProcess();
    NodeProcess(const NodeProcess&) = delete;
    NodeProcess& operator=(const NodeProcess&) = delete;

    /// Sets `dotted_key` ("limits.max_connections") to a raw TOML value ("3", "\"json\"").
    NodeProcess& set(const std::string& dotted_key, std::string toml_value);

    /// The config file as it will be written by start().
    std::string config_text() const;
    fs::path config_path() const { return dir_.path() / "idnode.toml"; }

    /// Writes the config, starts the binary with `--config`, and waits for the listening line.
    /// Throws HarnessError (with the node's stderr) if it exits or stays silent.
    void start(Millis timeout = 10s);

    std::uint16_t https_port() const;
    std::uint16_t ops_port() const;
    /// The Handle protocol port (TCP and UDP), 0 if the node did not report one.
    std::uint16_t handle_port() const noexcept { return handle_port_; }
    pid_t pid() const noexcept { return pid_; }
    const fs::path& dir() const noexcept { return dir_.path(); }
    const TestPki& pki() const noexcept { return pki_; }
    /// Where the node reads its certificate/key (replace them, then SIGHUP).
    fs::path cert_path() const { return dir_.path() / "node-cert.pem"; }
    fs::path key_path() const { return dir_.path() / "node-key.pem"; }

    void signal(int signal_number);
    bool running();
    /// Waits for the process to exit; returns its exit code (128 + signal if killed).
    /// Throws HarnessError on timeout (the process is left running for the destructor).
    int wait(Millis timeout = 10s);
    /// SIGTERM, then wait.
    int stop(Millis timeout = 10s);

    /// Everything the node wrote on stderr so far.
    std::string stderr_text() const;
    /// The access log so far.
    std::string access_log() const;

private:
    TempDir dir_;
    TestPki pki_;
    std::map<std::string, std::map<std::string, std::string>> config_;
    pid_t pid_ = -1;
    int stdout_fd_ = -1;
    std::optional<int> exit_code_;
    std::uint16_t https_port_ = 0;
    std::uint16_t ops_port_ = 0;
    std::uint16_t handle_port_ = 0;
};

/// TLS settings of a test client.
struct TlsOptions {
    fs::path ca_file;                      // trust anchor; empty = do not verify the server
    std::string server_name = "localhost"; // SNI and hostname verification
    int min_version = 0;                   // e.g. TLS1_2_VERSION; 0 = OpenSSL default
    int max_version = 0;
    std::string tls12_ciphers; // OpenSSL cipher list for TLS <= 1.2; empty = default
    bool legacy = false;       // security level 0, so the client can offer TLS 1.0/1.1
    // Local address to connect from; another loopback address (127.0.0.2) makes the node see
    // a different client IP. Empty = the kernel's choice (127.0.0.1).
    std::string source_address;
};

/// Options that verify the server against `ca_file` with everything else at its default.
TlsOptions trust(const fs::path& ca_file);

/// A blocking HTTPS/1.1 client with deadlines, for one connection to 127.0.0.1:port.
class HttpsClient {
public:
    HttpsClient(std::uint16_t port, TlsOptions tls, Millis timeout = 5s);
    ~HttpsClient();
    HttpsClient(const HttpsClient&) = delete;
    HttpsClient& operator=(const HttpsClient&) = delete;

    /// TCP connect and TLS handshake (with certificate verification when ca_file is set).
    /// Throws HarnessError carrying OpenSSL's reason on failure.
    void connect();

    /// Sends one request (Host, Content-Length filled in) and reads its response.
    Response request(http::verb method, std::string target, std::string body = {},
                     const std::vector<std::pair<std::string, std::string>>& headers = {});

    /// Sends without reading (for pipelining); see `read_response`.
    void send(Request request);
    /// Writes raw bytes through TLS.
    void write_raw(std::string_view bytes);
    /// Reads one response; `head` = the request was HEAD (no body follows).
    Response read_response(bool head = false);
    /// Raw bytes (after TLS) that arrive within `wait`, for streamed responses read piece by
    /// piece; "" when nothing arrived. Throws HarnessError when the connection failed.
    std::string read_some(Millis wait);

    /// Waits up to `timeout` for the server to close the connection (TLS close_notify, EOF or
    /// reset). Returns false if the connection is still open then. Data received is discarded.
    bool wait_closed(Millis timeout);

    /// Non-blocking: true if the server has closed its side (FIN or reset seen by the kernel).
    /// Leaves the connection untouched.
    bool peer_hung_up() const;

    /// Subject CN of the server certificate seen in the handshake.
    std::string peer_common_name() const;
    /// "TLSv1.3", "TLSv1.2", ...
    std::string protocol() const;

    void close();

private:
    using Stream = boost::beast::ssl_stream<boost::asio::ip::tcp::socket>;
    template <class Start> void run_with_deadline(const char* what, Start&& start);

    std::uint16_t port_;
    TlsOptions tls_;
    Millis timeout_;
    boost::asio::io_context ioc_;
    boost::asio::ssl::context ctx_;
    std::unique_ptr<Stream> stream_;
    boost::beast::flat_buffer buffer_;
};

/// A plain TCP connection (no TLS) for protocol abuse tests: slow senders, plain HTTP on the
/// TLS port, and the ops listener.
class TcpClient {
public:
    explicit TcpClient(std::uint16_t port, Millis timeout = 5s);
    void write(std::string_view bytes);
    /// Reads until the peer closes or `timeout` passes. Returns what arrived and whether the peer
    /// closed.
    std::pair<std::string, bool> read_until_closed(Millis timeout);
    /// True if the peer has closed the connection (non-blocking check after a short wait).
    bool peer_closed(Millis wait = 0ms);

private:
    boost::asio::io_context ioc_;
    boost::asio::ip::tcp::socket socket_;
    Millis timeout_;
};

/// One plain-HTTP GET to 127.0.0.1:port (the ops listener).
Response http_get(std::uint16_t port, std::string target, Millis timeout = 5s);

/// Sleeps the polling interval of `eventually` (a few milliseconds).
void sleep_for_poll();

/// Polls `predicate` every few milliseconds until it is true or `timeout` passes.
template <class Predicate> bool eventually(Predicate&& predicate, Millis timeout = 5s) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        if (predicate())
            return true;
        if (std::chrono::steady_clock::now() >= deadline)
            return false;
        sleep_for_poll();
    }
}

/// The value of one sample in Prometheus text ("name{labels} value"); nullopt if absent.
std::optional<double> metric_value(const std::string& metrics_text, std::string_view sample);

} // namespace idnode::test
