#include "harness.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>

#include <openssl/bio.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <random>
#include <sstream>
#include <thread>

namespace idnode::test {

namespace asio = boost::asio;
namespace ssl = boost::asio::ssl;
namespace beast = boost::beast;
using tcp = asio::ip::tcp;
using error_code = boost::system::error_code;
using Clock = std::chrono::steady_clock;

namespace {

std::string read_file(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
}

void write_file(const fs::path& path, std::string_view text) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << text;
    if (!out)
        throw HarnessError("cannot write " + path.string());
}

int decode_status(int status) {
    if (WIFEXITED(status))
        return WEXITSTATUS(status);
    if (WIFSIGNALED(status))
        return 128 + WTERMSIG(status);
    return -1;
}

std::string millis_text(Millis m) {
    return std::to_string(m.count()) + " ms";
}

/// Every argument as a NUL-terminated array for execvp (points into `args`).
std::vector<char*> exec_argv(const std::vector<std::string>& args) {
    std::vector<char*> out;
    for (const auto& a : args)
        out.push_back(const_cast<char*>(a.c_str()));
    out.push_back(nullptr);
    return out;
}

} // namespace

bool reduced_mode() {
    return std::getenv("IDNODE_TEST_REDUCED") != nullptr;
}

void sleep_for_poll() {
    std::this_thread::sleep_for(5ms);
}

// ---- TempDir ------------------------------------------------------------------------------------

TempDir::TempDir(std::string_view tag) {
    static std::atomic<unsigned> counter{0};
    std::random_device random;
    for (int attempt = 0; attempt < 100; ++attempt) {
        const auto candidate =
            fs::temp_directory_path() /
            ("idnode-" + std::string(tag) + "-" + std::to_string(::getpid()) + "-" +
             std::to_string(counter++) + "-" + std::to_string(random() % 100000));
        std::error_code ec;
        if (fs::create_directory(candidate, ec)) {
            path_ = candidate;
            return;
        }
    }
    throw HarnessError("cannot create a temporary directory");
}

TempDir::~TempDir() {
    if (std::getenv("IDNODE_KEEP_TEST_DIRS")) {
        std::cerr << "kept test dir " << path_ << "\n";
        return;
    }
    std::error_code ec;
    fs::remove_all(path_, ec);
}

// ---- processes ----------------------------------------------------------------------------------

CommandResult run_command(const std::vector<std::string>& argv, Millis timeout) {
    int out_pipe[2];
    int err_pipe[2];
    if (::pipe2(out_pipe, O_CLOEXEC) != 0 || ::pipe2(err_pipe, O_CLOEXEC) != 0)
        throw HarnessError("pipe2 failed");
    auto args = exec_argv(argv);
    const pid_t pid = ::fork();
    if (pid < 0)
        throw HarnessError("fork failed");
    if (pid == 0) {
        ::dup2(out_pipe[1], 1);
        ::dup2(err_pipe[1], 2);
        ::execvp(args[0], args.data());
        ::_exit(127);
    }
    ::close(out_pipe[1]);
    ::close(err_pipe[1]);
    CommandResult result;
    const auto deadline = Clock::now() + timeout;
    std::array<pollfd, 2> fds{{{out_pipe[0], POLLIN, 0}, {err_pipe[0], POLLIN, 0}}};
    int open_fds = 2;
    while (open_fds > 0) {
        const auto left = std::chrono::duration_cast<Millis>(deadline - Clock::now()).count();
        if (left <= 0) {
            ::kill(pid, SIGKILL);
            ::waitpid(pid, nullptr, 0);
            ::close(out_pipe[0]);
            ::close(err_pipe[0]);
            throw HarnessError(argv[0] + " did not finish within " + millis_text(timeout));
        }
        if (::poll(fds.data(), fds.size(), static_cast<int>(left)) < 0 && errno != EINTR)
            break;
        for (std::size_t i = 0; i < fds.size(); ++i) {
            if (fds[i].fd < 0 || fds[i].revents == 0)
                continue;
            char buffer[4096];
            const ssize_t n = ::read(fds[i].fd, buffer, sizeof buffer);
            if (n > 0) {
                (i == 0 ? result.out : result.err).append(buffer, static_cast<std::size_t>(n));
            } else if (n == 0 || errno != EINTR) {
                ::close(fds[i].fd);
                fds[i].fd = -1;
                --open_fds;
            }
        }
    }
    int status = 0;
    ::waitpid(pid, &status, 0);
    result.exit_code = decode_status(status);
    return result;
}

fs::path idnode_binary() {
    return IDNODE_BINARY;
}

// ---- PKI ----------------------------------------------------------------------------------------

namespace {

void openssl(const std::vector<std::string>& args) {
    std::vector<std::string> argv{"openssl"};
    argv.insert(argv.end(), args.begin(), args.end());
    const auto result = run_command(argv);
    if (result.exit_code != 0)
        throw HarnessError("openssl " + args.front() + " failed: " + result.err);
}

void make_ca(const fs::path& cert, const fs::path& key, const std::string& name) {
    openssl({"req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-days", "2", "-subj", "/CN=" + name, "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign", "-keyout", key.string(), "-out",
             cert.string()});
}

} // namespace

TestPki TestPki::create(const fs::path& dir) {
    TestPki pki;
    pki.ca_cert = dir / "ca-cert.pem";
    pki.ca_key = dir / "ca-key.pem";
    pki.server_cert = dir / "server-cert.pem";
    pki.server_key = dir / "server-key.pem";
    pki.other_ca_cert = dir / "other-ca-cert.pem";
    make_ca(pki.ca_cert, pki.ca_key, "idnode test CA");
    make_ca(pki.other_ca_cert, dir / "other-ca-key.pem", "unrelated test CA");
    pki.issue_server_cert(pki.server_cert, pki.server_key, "localhost");
    return pki;
}

void TestPki::issue_server_cert(const fs::path& cert, const fs::path& key,
                                std::string_view common_name) const {
    const fs::path dir = ca_cert.parent_path();
    static std::atomic<unsigned> serial{0};
    const std::string tag = "issue-" + std::to_string(serial++);
    const fs::path new_key = dir / (tag + "-key.pem");
    const fs::path csr = dir / (tag + ".csr");
    const fs::path new_cert = dir / (tag + "-cert.pem");
    const fs::path ext = dir / (tag + ".ext");
    write_file(ext, "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n"
                    "keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n");
    openssl({"req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-subj", "/CN=" + std::string(common_name), "-keyout", new_key.string(), "-out",
             csr.string()});
    openssl({"x509", "-req", "-in", csr.string(), "-CA", ca_cert.string(), "-CAkey",
             ca_key.string(), "-set_serial", std::to_string(1000 + serial.load()), "-days", "2",
             "-extfile", ext.string(), "-out", new_cert.string()});
    // Key first: a reload that sees the new certificate must also see its key. (The server
    // checks that they match, so a torn pair is refused rather than served.)
    fs::rename(new_key, key);
    fs::rename(new_cert, cert);
}

// ---- NodeProcess --------------------------------------------------------------------------------

NodeProcess::NodeProcess(std::string_view tag) : dir_(tag), pki_(TestPki::create(dir_.path())) {
    fs::copy_file(pki_.server_cert, cert_path());
    fs::copy_file(pki_.server_key, key_path());
    const auto quote = [](const fs::path& p) { return "\"" + p.string() + "\""; };
    set("node.data_dir", quote(dir_.path() / "db"));
    set("https.listen", "\"127.0.0.1:0\"");
    set("https.cert", quote(cert_path()));
    set("https.key", quote(key_path()));
    set("https.threads", "2");
    set("handle.listen", "\"127.0.0.1:0\"");
    set("ops.listen", "\"127.0.0.1:0\"");
    set("log.access", quote(dir_.path() / "access.log"));
}

NodeProcess::~NodeProcess() {
    if (pid_ > 0 && !exit_code_) {
        ::kill(pid_, SIGKILL);
        int status = 0;
        ::waitpid(pid_, &status, 0);
    }
    if (stdout_fd_ >= 0)
        ::close(stdout_fd_);
}

NodeProcess& NodeProcess::set(const std::string& dotted_key, std::string toml_value) {
    const auto dot = dotted_key.find('.');
    if (dot == std::string::npos)
        throw HarnessError("NodeProcess::set needs a dotted key: " + dotted_key);
    config_[dotted_key.substr(0, dot)][dotted_key.substr(dot + 1)] = std::move(toml_value);
    return *this;
}

std::string NodeProcess::config_text() const {
    std::string text;
    for (const auto& [section, keys] : config_) {
        text += "[" + section + "]\n";
        for (const auto& [key, value] : keys)
            text += key + " = " + value + "\n";
    }
    return text;
}

void NodeProcess::start(Millis timeout) {
    if (pid_ > 0 && !exit_code_)
        throw HarnessError("NodeProcess::start called while the node is running");
    // A node that exited may be started again on the same directory (restart tests).
    pid_ = -1;
    exit_code_.reset();
    https_port_ = ops_port_ = 0;
    if (stdout_fd_ >= 0) {
        ::close(stdout_fd_);
        stdout_fd_ = -1;
    }
    write_file(config_path(), config_text());

    int out_pipe[2];
    if (::pipe2(out_pipe, O_CLOEXEC) != 0)
        throw HarnessError("pipe2 failed");
    const fs::path err_path = dir_.path() / "stderr.log";
    const int err_fd = ::open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    const int null_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (err_fd < 0 || null_fd < 0)
        throw HarnessError("cannot open " + err_path.string());
    const std::vector<std::string> args{idnode_binary().string(), "--config",
                                        config_path().string()};
    auto argv = exec_argv(args);
    pid_ = ::fork();
    if (pid_ < 0)
        throw HarnessError("fork failed");
    if (pid_ == 0) {
        ::dup2(null_fd, 0);
        ::dup2(out_pipe[1], 1);
        ::dup2(err_fd, 2);
        ::execv(argv[0], argv.data());
        ::_exit(127);
    }
    ::close(out_pipe[1]);
    ::close(err_fd);
    ::close(null_fd);
    stdout_fd_ = out_pipe[0];

    // Read the one stdout line with a deadline.
    std::string line;
    const auto deadline = Clock::now() + timeout;
    while (line.find('\n') == std::string::npos) {
        const auto left = std::chrono::duration_cast<Millis>(deadline - Clock::now()).count();
        if (left <= 0)
            throw HarnessError("idnode printed no listening line within " + millis_text(timeout) +
                               "; stderr:\n" + stderr_text());
        pollfd pfd{stdout_fd_, POLLIN, 0};
        if (::poll(&pfd, 1, static_cast<int>(left)) <= 0)
            continue;
        char buffer[256];
        const ssize_t n = ::read(stdout_fd_, buffer, sizeof buffer);
        if (n <= 0) {
            const int code = wait(5s);
            throw HarnessError("idnode exited (" + std::to_string(code) +
                               ") before listening; stderr:\n" + stderr_text());
        }
        line.append(buffer, static_cast<std::size_t>(n));
    }
    line.resize(line.find('\n'));
    // "idnode listening https=127.0.0.1:PORT ops=127.0.0.1:PORT"
    const auto port_after = [&](std::string_view key) -> std::uint16_t {
        const auto at = line.find(key);
        if (at == std::string::npos)
            throw HarnessError("unexpected listening line: " + line);
        const auto end = line.find(' ', at);
        const std::string endpoint = line.substr(at + key.size(), end - at - key.size());
        return static_cast<std::uint16_t>(std::stoi(endpoint.substr(endpoint.rfind(':') + 1)));
    };
    if (line.rfind("idnode listening ", 0) != 0)
        throw HarnessError("unexpected listening line: " + line);
    https_port_ = port_after("https=");
    ops_port_ = port_after("ops=");
    if (line.find("handle=") != std::string::npos)
        handle_port_ = port_after("handle=");
}

std::uint16_t NodeProcess::https_port() const {
    if (https_port_ == 0)
        throw HarnessError("node not started");
    return https_port_;
}

std::uint16_t NodeProcess::ops_port() const {
    if (ops_port_ == 0)
        throw HarnessError("node not started");
    return ops_port_;
}

void NodeProcess::signal(int signal_number) {
    if (pid_ <= 0 || exit_code_)
        throw HarnessError("signal to a node that is not running");
    ::kill(pid_, signal_number);
}

bool NodeProcess::running() {
    if (pid_ <= 0 || exit_code_)
        return false;
    int status = 0;
    const pid_t r = ::waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
        exit_code_ = decode_status(status);
        return false;
    }
    return true;
}

int NodeProcess::wait(Millis timeout) {
    if (!eventually([&] { return !running(); }, timeout))
        throw HarnessError("idnode did not exit within " + millis_text(timeout) + "; stderr:\n" +
                           stderr_text());
    if (!exit_code_)
        throw HarnessError("idnode was never started");
    return *exit_code_;
}

int NodeProcess::stop(Millis timeout) {
    if (running())
        signal(SIGTERM);
    const int code = wait(timeout);
    if (code != 0) {
        // Tests check the code; the reason (a sanitizer report, an exception) is in stderr, which
        // is otherwise gone with the temp dir by the time anyone reads the CI log.
        std::cerr << "idnode exited with " << code << " after SIGTERM; its stderr:\n"
                  << stderr_text() << "\n";
    }
    return code;
}

std::string NodeProcess::stderr_text() const {
    return read_file(dir_.path() / "stderr.log");
}

std::string NodeProcess::access_log() const {
    return read_file(dir_.path() / "access.log");
}

TlsOptions trust(const fs::path& ca_file) {
    TlsOptions options;
    options.ca_file = ca_file;
    return options;
}

// ---- HttpsClient --------------------------------------------------------------------------------

HttpsClient::HttpsClient(std::uint16_t port, TlsOptions tls, Millis timeout)
    : port_(port), tls_(std::move(tls)), timeout_(timeout), ctx_(ssl::context::tls_client) {
    SSL_CTX* native = ctx_.native_handle();
    if (tls_.legacy) {
        SSL_CTX_set_security_level(native, 0);
        SSL_CTX_set_cipher_list(native, "DEFAULT:@SECLEVEL=0");
    }
    if (tls_.min_version != 0)
        SSL_CTX_set_min_proto_version(native, tls_.min_version);
    if (tls_.max_version != 0)
        SSL_CTX_set_max_proto_version(native, tls_.max_version);
    if (!tls_.tls12_ciphers.empty() &&
        SSL_CTX_set_cipher_list(native, tls_.tls12_ciphers.c_str()) != 1)
        throw HarnessError("client: OpenSSL rejected cipher list " + tls_.tls12_ciphers);
    if (!tls_.ca_file.empty()) {
        ctx_.load_verify_file(tls_.ca_file.string());
        ctx_.set_verify_mode(ssl::verify_peer);
    } else {
        ctx_.set_verify_mode(ssl::verify_none);
    }
}

HttpsClient::~HttpsClient() {
    close();
}

template <class Start> void HttpsClient::run_with_deadline(const char* what, Start&& start) {
    bool done = false;
    error_code result;
    start([&](error_code ec, auto&&...) {
        result = ec;
        done = true;
    });
    ioc_.restart();
    ioc_.run_for(timeout_);
    if (!done) {
        error_code ignored;
        stream_->next_layer().close(ignored);
        ioc_.restart();
        ioc_.run(); // lets the aborted operation complete
        throw HarnessError(std::string(what) + ": timed out after " + millis_text(timeout_));
    }
    if (result)
        throw HarnessError(std::string(what) + ": " + result.message());
}

void HttpsClient::connect() {
    close();
    stream_ = std::make_unique<Stream>(ioc_, ctx_);
    buffer_.clear();
    if (!tls_.server_name.empty()) {
        SSL_set_tlsext_host_name(stream_->native_handle(), tls_.server_name.c_str());
        if (!tls_.ca_file.empty())
            stream_->set_verify_callback(ssl::host_name_verification(tls_.server_name));
    }
    const tcp::endpoint endpoint(asio::ip::make_address("127.0.0.1"), port_);
    if (!tls_.source_address.empty()) {
        auto& socket = stream_->next_layer();
        socket.open(tcp::v4());
        socket.bind(tcp::endpoint(asio::ip::make_address(tls_.source_address), 0));
    }
    run_with_deadline("connect", [&](auto handler) {
        stream_->next_layer().async_connect(endpoint, std::move(handler));
    });
    run_with_deadline("TLS handshake", [&](auto handler) {
        stream_->async_handshake(ssl::stream_base::client, std::move(handler));
    });
}

void HttpsClient::send(Request request) {
    if (!stream_)
        throw HarnessError("send before connect");
    if (request.find(http::field::host) == request.end())
        request.set(http::field::host, tls_.server_name.empty() ? "127.0.0.1" : tls_.server_name);
    request.prepare_payload();
    run_with_deadline("write request", [&](auto handler) {
        http::async_write(*stream_, request, std::move(handler));
    });
}

void HttpsClient::write_raw(std::string_view bytes) {
    if (!stream_)
        throw HarnessError("write before connect");
    run_with_deadline("write", [&](auto handler) {
        asio::async_write(*stream_, asio::buffer(bytes.data(), bytes.size()), std::move(handler));
    });
}

Response HttpsClient::read_response(bool head) {
    if (!stream_)
        throw HarnessError("read before connect");
    http::response_parser<http::string_body> parser;
    parser.body_limit(64 * 1024 * 1024);
    parser.skip(head);
    run_with_deadline("read response", [&](auto handler) {
        http::async_read(*stream_, buffer_, parser, std::move(handler));
    });
    return parser.release();
}

Response HttpsClient::request(http::verb method, std::string target, std::string body,
                              const std::vector<std::pair<std::string, std::string>>& headers) {
    Request request{method, target, 11};
    for (const auto& [name, value] : headers)
        request.set(name, value);
    request.body() = std::move(body);
    send(std::move(request));
    return read_response(method == http::verb::head);
}

std::string HttpsClient::read_some(Millis wait) {
    if (!stream_)
        throw HarnessError("read before connect");
    if (buffer_.size() > 0) {
        std::string out = beast::buffers_to_string(buffer_.data());
        buffer_.consume(buffer_.size());
        return out;
    }
    // Bytes may already be inside the TLS layer, where poll() cannot see them: decrypted but
    // unread (SSL_pending), or whole records asio has handed to OpenSSL's read BIO but OpenSSL has
    // not decrypted yet (two records arriving in one TCP read). Only poll when both are empty.
    SSL* ssl = stream_->native_handle();
    if (SSL_pending(ssl) == 0 && BIO_ctrl_pending(SSL_get_rbio(ssl)) == 0) {
        pollfd pfd{stream_->next_layer().native_handle(), POLLIN, 0};
        if (::poll(&pfd, 1, static_cast<int>(wait.count())) <= 0)
            return {};
    }
    std::array<char, 65536> scratch{};
    std::size_t n = 0;
    run_with_deadline("read", [&](auto handler) {
        stream_->async_read_some(asio::buffer(scratch),
                                 [&n, handler](error_code ec, std::size_t got) mutable {
                                     n = got;
                                     handler(ec);
                                 });
    });
    return std::string(scratch.data(), n);
}

bool HttpsClient::wait_closed(Millis timeout) {
    if (!stream_)
        return true;
    const auto deadline = Clock::now() + timeout;
    std::array<char, 4096> scratch{};
    bool closed = false;
    bool pending = true;
    while (!closed && Clock::now() < deadline) {
        pending = true;
        stream_->async_read_some(asio::buffer(scratch), [&](error_code ec, std::size_t) {
            pending = false;
            if (ec)
                closed = true;
        });
        ioc_.restart();
        ioc_.run_until(deadline);
        if (pending)
            break;
    }
    if (pending) {
        error_code ignored;
        stream_->next_layer().close(ignored);
        ioc_.restart();
        ioc_.run();
    }
    return closed;
}

bool HttpsClient::peer_hung_up() const {
    if (!stream_)
        return true;
    pollfd pfd{const_cast<Stream&>(*stream_).next_layer().native_handle(), POLLRDHUP, 0};
    return ::poll(&pfd, 1, 0) > 0 && (pfd.revents & (POLLRDHUP | POLLHUP | POLLERR)) != 0;
}

std::string HttpsClient::peer_common_name() const {
    if (!stream_)
        return {};
    X509* cert = SSL_get1_peer_certificate(stream_->native_handle());
    if (cert == nullptr)
        return {};
    char name[256] = {};
    X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, name, sizeof name);
    X509_free(cert);
    return name;
}

std::string HttpsClient::protocol() const {
    return stream_ ? SSL_get_version(stream_->native_handle()) : "";
}

void HttpsClient::close() {
    if (!stream_)
        return;
    error_code ignored;
    stream_->next_layer().close(ignored);
    ioc_.restart();
    ioc_.run();
    stream_.reset();
}

// ---- TcpClient ----------------------------------------------------------------------------------

TcpClient::TcpClient(std::uint16_t port, Millis timeout) : socket_(ioc_), timeout_(timeout) {
    bool done = false;
    error_code result;
    socket_.async_connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port),
                          [&](error_code ec) {
                              result = ec;
                              done = true;
                          });
    ioc_.run_for(timeout_);
    if (!done || result)
        throw HarnessError("tcp connect to port " + std::to_string(port) +
                           " failed: " + (done ? result.message() : "timeout"));
}

void TcpClient::write(std::string_view bytes) {
    bool done = false;
    error_code result;
    asio::async_write(socket_, asio::buffer(bytes.data(), bytes.size()),
                      [&](error_code ec, std::size_t) {
                          result = ec;
                          done = true;
                      });
    ioc_.restart();
    ioc_.run_for(timeout_);
    if (!done || result)
        throw HarnessError("tcp write failed: " + (done ? result.message() : "timeout"));
}

std::pair<std::string, bool> TcpClient::read_until_closed(Millis timeout) {
    const auto deadline = Clock::now() + timeout;
    std::string data;
    std::array<char, 4096> scratch{};
    for (;;) {
        bool done = false;
        error_code result;
        std::size_t got = 0;
        socket_.async_read_some(asio::buffer(scratch), [&](error_code ec, std::size_t n) {
            result = ec;
            got = n;
            done = true;
        });
        ioc_.restart();
        ioc_.run_until(deadline);
        if (!done) {
            socket_.cancel();
            ioc_.restart();
            ioc_.run();
            return {data, false};
        }
        data.append(scratch.data(), got);
        if (result)
            return {data, true};
    }
}

bool TcpClient::peer_closed(Millis wait) {
    return read_until_closed(wait == 0ms ? 1ms : wait).second;
}

// ---- plain HTTP ---------------------------------------------------------------------------------

Response http_get(std::uint16_t port, std::string target, Millis timeout) {
    asio::io_context ioc;
    tcp::socket socket(ioc);
    beast::flat_buffer buffer;
    http::response_parser<http::string_body> parser;
    parser.body_limit(16 * 1024 * 1024);
    Request request{http::verb::get, target, 11};
    request.set(http::field::host, "127.0.0.1");
    request.set(http::field::connection, "close");

    error_code failure;
    std::string stage = "connect";
    bool done = false;
    socket.async_connect(
        tcp::endpoint(asio::ip::make_address("127.0.0.1"), port), [&](error_code ec) {
            if (ec) {
                failure = ec;
                done = true;
                return;
            }
            stage = "write";
            http::async_write(socket, request, [&](error_code ec, std::size_t) {
                if (ec) {
                    failure = ec;
                    done = true;
                    return;
                }
                stage = "read";
                http::async_read(socket, buffer, parser, [&](error_code ec, std::size_t) {
                    failure = ec;
                    done = true;
                });
            });
        });
    ioc.run_for(timeout);
    if (!done)
        throw HarnessError("GET " + target + " on port " + std::to_string(port) + ": " + stage +
                           " timed out");
    if (failure)
        throw HarnessError("GET " + target + " on port " + std::to_string(port) + ": " + stage +
                           ": " + failure.message());
    return parser.release();
}

std::optional<double> metric_value(const std::string& text, std::string_view sample) {
    std::istringstream lines(text);
    for (std::string line; std::getline(lines, line);) {
        if (line.size() > sample.size() && line.compare(0, sample.size(), sample) == 0 &&
            line[sample.size()] == ' ')
            return std::stod(line.substr(sample.size() + 1));
    }
    return std::nullopt;
}

std::string basic_authorization(const std::string& user, const std::string& password) {
    static constexpr char b64[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const std::string in = user + ":" + password;
    std::string out;
    for (std::size_t i = 0; i < in.size(); i += 3) {
        std::uint32_t n = static_cast<unsigned char>(in[i]) << 16;
        if (i + 1 < in.size())
            n |= static_cast<unsigned char>(in[i + 1]) << 8;
        if (i + 2 < in.size())
            n |= static_cast<unsigned char>(in[i + 2]);
        out += b64[(n >> 18) & 63];
        out += b64[(n >> 12) & 63];
        out += i + 1 < in.size() ? b64[(n >> 6) & 63] : '=';
        out += i + 2 < in.size() ? b64[n & 63] : '=';
    }
    return "Basic " + out;
}

} // namespace idnode::test
