// HandleAdminClient: Handle protocol 2.11 over one plain TCP connection (POSIX sockets with poll
// deadlines), IDIS LOGIN_ID_SYSTEM with the challenge answered by an HMAC-SHA256 or RSA SHA-256
// proof, and the administrative requests of docs/handle-protocol.md#administration.
//
// The SDK is a standalone library (it must not pull the resolver, the registry or LMDB), so the
// few pieces of the protocol a client needs — message framing, the value encoding, the proofs —
// are written here from the protocol description rather than linked from resolver/.
#include "idnode/sdk/handle_admin.hpp"

#include "client_impl.hpp"
#include "handle_admin_wire.hpp"

#include <boost/json.hpp>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <mutex>
#include <optional>

namespace idnode::sdk {

namespace {

namespace json = boost::json;
using detail::make_error;
using Clock = std::chrono::steady_clock;
using namespace handle_wire;

} // namespace

// ---- the client
// ----------------------------------------------------------------------------------

struct HandleAdminClient::Impl {
    HandleAdminOptions options;
    std::mutex mutex;
    int fd = -1;
    std::string buffer; ///< bytes read past the last answer
    std::uint32_t next_request_id = 1;

    // The identity to log in as again after a reconnection.
    std::string identity_handle;
    std::int32_t identity_index = 0;
    std::optional<std::string> secret;
    PkeyPtr rsa_key;
    bool logged_in = false;

    ~Impl() { close(); }

    void close() {
        if (fd >= 0)
            ::close(fd);
        fd = -1;
        buffer.clear();
    }

    std::uint32_t request_id() {
        const std::uint32_t id = next_request_id++;
        if (next_request_id == 0 || next_request_id > 0x7FFF'FFFF)
            next_request_id = 1;
        return id;
    }

    /// Whether the node closed the idle connection (or sent something unasked).
    bool connection_usable() {
        if (fd < 0)
            return false;
        pollfd p{fd, POLLIN, 0};
        const int n = ::poll(&p, 1, 0);
        if (n == 0)
            return true;
        // Readable while nothing is outstanding: end of stream, an error, or stray bytes; none
        // of them leaves a connection whose next answer can be trusted.
        return false;
    }

    Status connect() {
        close();
        addrinfo hints{};
        hints.ai_family = AF_UNSPEC;
        hints.ai_socktype = SOCK_STREAM;
        addrinfo* found = nullptr;
        const std::string port = std::to_string(options.port);
        const int gai = ::getaddrinfo(options.host.c_str(), port.c_str(), &hints, &found);
        if (gai != 0) {
            return make_error(ErrorKind::connect,
                              "resolve " + options.host + ": " + ::gai_strerror(gai));
        }
        std::unique_ptr<addrinfo, decltype(&::freeaddrinfo)> list(found, &::freeaddrinfo);
        const auto deadline = Clock::now() + options.connect_timeout;
        std::string last = "no address";
        bool timed_out = false;
        for (const addrinfo* ai = found; ai != nullptr; ai = ai->ai_next) {
            const int s = ::socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
                                   ai->ai_protocol);
            if (s < 0) {
                last = std::strerror(errno);
                continue;
            }
            int rc = ::connect(s, ai->ai_addr, ai->ai_addrlen);
            if (rc != 0 && errno == EINPROGRESS) {
                const auto left =
                    std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
                pollfd p{s, POLLOUT, 0};
                const int n = left.count() > 0 ? ::poll(&p, 1, static_cast<int>(left.count())) : 0;
                if (n <= 0) {
                    timed_out = n == 0;
                    last = n == 0 ? "timed out" : std::strerror(errno);
                    ::close(s);
                    continue;
                }
                int err = 0;
                socklen_t len = sizeof err;
                ::getsockopt(s, SOL_SOCKET, SO_ERROR, &err, &len);
                rc = err == 0 ? 0 : -1;
                errno = err;
            }
            if (rc != 0) {
                last = std::strerror(errno);
                ::close(s);
                continue;
            }
            int one = 1;
            ::setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
            fd = s;
            return {};
        }
        const std::string what = "connect " + options.host + ":" + port + ": " + last;
        return make_error(timed_out ? ErrorKind::timeout : ErrorKind::connect, what);
    }

    /// Sends one request and reads its answer within the request timeout. A failure closes the
    /// connection: its stream position is unknown, so it cannot carry another request.
    Result<Answer> exchange(const Request& request) {
        const auto deadline = Clock::now() + options.request_timeout;
        auto fail = [&](ErrorKind kind, const std::string& what) -> Error {
            close();
            return make_error(kind, what);
        };
        auto wait = [&](short events) -> int {
            const auto left =
                std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
            if (left.count() <= 0)
                return 0;
            pollfd p{fd, events, 0};
            int n;
            do {
                n = ::poll(&p, 1, static_cast<int>(left.count()));
            } while (n < 0 && errno == EINTR);
            return n;
        };
        std::size_t sent = 0;
        while (sent < request.wire.size()) {
            const ssize_t n =
                ::send(fd, request.wire.data() + sent, request.wire.size() - sent, MSG_NOSIGNAL);
            if (n > 0) {
                sent += static_cast<std::size_t>(n);
                continue;
            }
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
                const int w = wait(POLLOUT);
                if (w == 0)
                    return fail(ErrorKind::timeout, "send: timed out");
                if (w < 0)
                    return fail(ErrorKind::connection,
                                std::string("send: ") + std::strerror(errno));
                continue;
            }
            return fail(ErrorKind::connection, std::string("send: ") + std::strerror(errno));
        }
        for (;;) {
            if (buffer.size() >= kEnvelopeSize) {
                const std::size_t length = load_u32(buffer, 16);
                if (length > kMaxAnswerLength)
                    return fail(ErrorKind::protocol, "answer longer than 16 MiB");
                if (buffer.size() >= kEnvelopeSize + length) {
                    const std::string message = buffer.substr(0, kEnvelopeSize + length);
                    buffer.erase(0, kEnvelopeSize + length);
                    auto answer = parse_answer(message);
                    if (!answer) {
                        close();
                        return answer.error();
                    }
                    if (answer->request_id != request.request_id) {
                        return fail(ErrorKind::protocol,
                                    "answer to request " + std::to_string(answer->request_id) +
                                        ", expected " + std::to_string(request.request_id));
                    }
                    return answer;
                }
            }
            char chunk[16384];
            const ssize_t n = ::recv(fd, chunk, sizeof chunk, 0);
            if (n > 0) {
                buffer.append(chunk, static_cast<std::size_t>(n));
                continue;
            }
            if (n == 0)
                return fail(ErrorKind::connection, "the node closed the connection");
            if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
                const int w = wait(POLLIN);
                if (w == 0)
                    return fail(ErrorKind::timeout, "answer: timed out");
                if (w < 0)
                    return fail(ErrorKind::connection,
                                std::string("recv: ") + std::strerror(errno));
                continue;
            }
            return fail(ErrorKind::connection, std::string("recv: ") + std::strerror(errno));
        }
    }

    /// LOGIN_ID_SYSTEM on the open connection with the stored identity.
    Status login() {
        std::string body;
        put_bytes(body, identity_handle);
        put_i32(body, identity_index);
        const Request request = make_request(kOpLoginIdSystem, body, request_id());
        auto challenge_answer = exchange(request);
        if (!challenge_answer)
            return challenge_answer.error();
        if (challenge_answer->rc != kRcAuthenticationNeeded)
            return error_of(*challenge_answer, rc_fallback(challenge_answer->rc));
        auto challenge = challenge_of(*challenge_answer);
        if (!challenge) {
            close();
            return challenge.error();
        }
        // The digest names the request the proof authorises: never sign another one.
        if (challenge->digest != sha256(request.header_and_body)) {
            close();
            return make_error(ErrorKind::protocol,
                              "the challenge's digest is not that of the login request");
        }
        std::string proof;
        std::string_view auth_type;
        if (secret) {
            auth_type = "HS_SECKEY";
            proof = secret_proof(*secret, challenge->nonce, challenge->digest);
        } else {
            auth_type = "HS_PUBKEY";
            auto signed_response = rsa_proof(rsa_key.get(), challenge->nonce, challenge->digest);
            if (!signed_response)
                return signed_response.error();
            proof = std::move(signed_response).value();
        }
        std::string answer_body;
        put_bytes(answer_body, auth_type);
        put_bytes(answer_body, identity_handle);
        put_i32(answer_body, identity_index);
        put_bytes(answer_body, proof);
        auto reply = exchange(
            make_request(kOpChallengeResponse, answer_body, request_id(), challenge->session_id));
        if (!reply)
            return reply.error();
        if (reply->rc != kRcSuccess)
            return error_of(*reply, rc_fallback(reply->rc));
        return {};
    }

    /// A usable connection, logged in again when the client had logged in before.
    Status ready() {
        if (connection_usable())
            return {};
        if (auto st = connect(); !st)
            return st;
        if (!logged_in)
            return {};
        if (auto st = login(); !st) {
            logged_in = false;
            Error e = st.error();
            e.message = "logging in again after reconnecting: " + e.message;
            return e;
        }
        return {};
    }

    Result<Answer> call(std::uint32_t opcode, std::string_view body, std::uint32_t flags = 0) {
        if (body.size() + kHeaderSize + 4 > kMaxRequestLength) {
            return make_error(ErrorKind::invalid_argument,
                              "request of " + std::to_string(body.size()) +
                                  " bytes is over the Handle protocol's 256 KiB");
        }
        if (auto st = ready(); !st)
            return st.error();
        return exchange(make_request(opcode, body, request_id(), 0, flags));
    }

    Status write(std::uint32_t opcode, std::string_view body) {
        std::lock_guard lock(mutex);
        auto answer = call(opcode, body);
        if (!answer)
            return answer.error();
        if (answer->rc != kRcSuccess)
            return error_of(*answer, rc_fallback(answer->rc));
        return {};
    }

    Status login_as(std::string_view handle, std::int32_t index, std::optional<std::string> key,
                    PkeyPtr rsa) {
        std::lock_guard lock(mutex);
        identity_handle = std::string(handle);
        identity_index = index;
        secret = std::move(key);
        rsa_key = std::move(rsa);
        // A new login starts on a new connection: the node binds a login to its connection for
        // good, and a failed one must not leave the previous identity in force.
        logged_in = false;
        close();
        if (auto st = connect(); !st)
            return st;
        auto st = login();
        logged_in = st.ok();
        return st;
    }
};

Result<HandleAdminClient> HandleAdminClient::create(const HandleAdminOptions& options) {
    if (options.host.empty())
        return make_error(ErrorKind::invalid_argument, "host is empty");
    if (options.port == 0)
        return make_error(ErrorKind::invalid_argument, "port must not be 0");
    if (options.connect_timeout.count() <= 0 || options.request_timeout.count() <= 0)
        return make_error(ErrorKind::invalid_argument, "timeouts must be positive");
    auto impl = std::make_unique<Impl>();
    impl->options = options;
    return HandleAdminClient(std::move(impl));
}

HandleAdminClient::HandleAdminClient(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
HandleAdminClient::HandleAdminClient(HandleAdminClient&&) noexcept = default;
HandleAdminClient& HandleAdminClient::operator=(HandleAdminClient&&) noexcept = default;
HandleAdminClient::~HandleAdminClient() = default;

Status HandleAdminClient::login_identity(std::string_view handle, std::int32_t index,
                                         const SecretKey& key) {
    if (handle.empty())
        return make_error(ErrorKind::invalid_argument, "identity handle is empty");
    if (key.secret.empty())
        return make_error(ErrorKind::invalid_argument, "secret key is empty");
    return impl_->login_as(handle, index, key.secret, nullptr);
}

Status HandleAdminClient::login_identity(std::string_view handle, std::int32_t index,
                                         const PrivateKeyPem& key) {
    if (handle.empty())
        return make_error(ErrorKind::invalid_argument, "identity handle is empty");
    auto rsa = read_rsa_key(key.pem);
    if (!rsa)
        return rsa.error();
    return impl_->login_as(handle, index, std::nullopt, std::move(rsa).value());
}

bool HandleAdminClient::logged_in() const {
    std::lock_guard lock(impl_->mutex);
    return impl_->logged_in;
}

Status HandleAdminClient::create(std::string_view handle, const std::vector<Value>& values) {
    if (handle.empty())
        return make_error(ErrorKind::invalid_argument, "handle is empty");
    auto body = values_body(handle, values);
    if (!body)
        return body.error();
    return impl_->write(kOpCreateHandle, *body);
}

Status HandleAdminClient::add_values(std::string_view handle, const std::vector<Value>& values) {
    if (handle.empty() || values.empty())
        return make_error(ErrorKind::invalid_argument, "add_values needs a handle and values");
    auto body = values_body(handle, values);
    if (!body)
        return body.error();
    return impl_->write(kOpAddValue, *body);
}

Status HandleAdminClient::modify_values(std::string_view handle, const std::vector<Value>& values) {
    if (handle.empty() || values.empty())
        return make_error(ErrorKind::invalid_argument, "modify_values needs a handle and values");
    auto body = values_body(handle, values);
    if (!body)
        return body.error();
    return impl_->write(kOpModifyValue, *body);
}

Status HandleAdminClient::remove_values(std::string_view handle,
                                        const std::vector<std::int32_t>& indices) {
    if (handle.empty() || indices.empty())
        return make_error(ErrorKind::invalid_argument, "remove_values needs a handle and indices");
    std::string body;
    put_bytes(body, handle);
    put_u32(body, static_cast<std::uint32_t>(indices.size()));
    for (const std::int32_t i : indices)
        put_i32(body, i);
    return impl_->write(kOpRemoveValue, body);
}

Status HandleAdminClient::remove(std::string_view handle) {
    if (handle.empty())
        return make_error(ErrorKind::invalid_argument, "handle is empty");
    std::string body;
    put_bytes(body, handle);
    return impl_->write(kOpDeleteHandle, body);
}

Result<Record> HandleAdminClient::resolve(std::string_view handle, const ResolveFilter& filter,
                                          bool public_only) {
    if (handle.empty())
        return make_error(ErrorKind::invalid_argument, "handle is empty");
    std::string body;
    put_bytes(body, handle);
    put_u32(body, static_cast<std::uint32_t>(filter.indices.size()));
    for (const std::int32_t i : filter.indices)
        put_i32(body, i);
    put_u32(body, static_cast<std::uint32_t>(filter.types.size()));
    for (const auto& t : filter.types)
        put_bytes(body, t);
    std::lock_guard lock(impl_->mutex);
    auto answer = impl_->call(kOpResolution, body, public_only ? kFlagPublicOnly : 0);
    if (!answer)
        return answer.error();
    if (answer->rc == kRcAuthenticationNeeded) {
        return error_of(*answer, "a selected value has no public read: log in "
                                 "(login_identity) or resolve public values only");
    }
    if (answer->rc != kRcSuccess)
        return error_of(*answer, rc_fallback(answer->rc));
    return record_of(answer->body, handle);
}

} // namespace idnode::sdk
