// idnode::sdk::HandleAdminClient — writes identifiers over the binary Handle protocol on TCP
// (docs/sdk.md#handle-protocol-client, docs/handle-protocol.md#administration), for systems that
// administer as a Handle *identity* (a (handle, index) pair registered for an account with
// Client::add_identity) rather than with an API key over HTTPS.
//
//   idnode::sdk::HandleAdminOptions o;
//   o.host = "127.0.0.1";
//   o.port = 2641;
//   auto admin = idnode::sdk::HandleAdminClient::create(o);   // validates, does not connect
//   auto st = admin->login_identity("0.NA/88.118.8", 300, idnode::sdk::SecretKey{"…"});
//   st = admin->create("88.118.8/SN-1", {idnode::sdk::Value::text(1, "URL", "https://…")});
//   if (!st) std::cerr << st.error().to_string() << "\n";   // "conflict, rc 101: handle exists"
//
// Connection: one plain TCP connection, opened by the first call. A login lasts as long as that
// connection; when the connection is found closed (the node closes idle ones) before a request is
// sent, the client reconnects and logs in again with the credentials it was given. A request whose
// connection fails after it was sent is never resent (a write may have happened): the call
// returns ErrorKind::connection or timeout and the next call reconnects.
// Thread safety: calls on one client are serialised (one request at a time on its connection);
// use several clients for parallel writes. Not copyable; movable.
// Errors: Result/Status as in result.hpp, with Error::response_code = the Handle RC and
// Error::message = the node's message. RC 100 → not_found, 101 → conflict, 402–406 → auth
// (402: not logged in or the value needs authentication; 403: identity unknown or proof wrong),
// any other RC (401 not allowed to write there, 200/201/202 value errors, 3 busy, ...) → http
// (http_status stays 0). Nothing throws for network or server failures.
//
// C++17: this header is part of the public API; it names no Boost, OpenSSL or socket type.
#pragma once

#include "idnode/sdk/client.hpp"
#include "idnode/sdk/export.hpp"
#include "idnode/sdk/result.hpp"

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace idnode::sdk {

struct HandleAdminOptions {
    std::string host = "127.0.0.1"; ///< name or address of the node's Handle TCP listener
    std::uint16_t port = 2641;
    std::chrono::milliseconds connect_timeout{5000};
    /// Each request (send and whole answer) must finish within this; writes are answered after
    /// the node's durable commit.
    std::chrono::milliseconds request_timeout{30000};
};

/// An HS_SECKEY identity's secret (as registered with "secret_key"). The proof sent is
/// HMAC-SHA256 of the secret over the challenge; the secret itself never crosses the network.
struct SecretKey {
    std::string secret;
};

/// The PEM private key ("-----BEGIN PRIVATE KEY-----" or "BEGIN RSA PRIVATE KEY") of an
/// HS_PUBKEY identity whose public key was registered; RSA only. The proof is an
/// RSASSA-PKCS1-v1_5 SHA-256 signature over the challenge.
struct PrivateKeyPem {
    std::string pem;
};

class IDNODE_SDK_API HandleAdminClient {
public:
    /// Validates the options (host, port, timeouts) without connecting.
    static Result<HandleAdminClient> create(const HandleAdminOptions& options);

    /// IDIS LOGIN_ID_SYSTEM, answered with the secret-key proof. Refused → ErrorKind::auth with
    /// RC 403 (identity unknown, its account disabled, or wrong secret) or 404 (the identity has
    /// a public key). On success later calls on this client act as the identity's account.
    Status login_identity(std::string_view handle, std::int32_t index, const SecretKey& key);
    /// The same with an RSA private key; a key that cannot be read (or is not RSA) is
    /// invalid_argument before anything is sent.
    Status login_identity(std::string_view handle, std::int32_t index, const PrivateKeyPem& key);
    /// Whether a login succeeded (and has not been undone by a failed reconnection).
    bool logged_in() const;

    /// CREATE_HANDLE. The handle exists → conflict (RC 101). Without an HS_ADMIN value the node
    /// adds one at index 100 naming the identity. Values are sent with their index, type, data
    /// (format "admin": `data` is the {"handle","index","permissions"} JSON text, sent as HS_ADMIN
    /// bytes), ttl and permissions ("" = "1110"); timestamps are set by the node.
    Status create(std::string_view handle, const std::vector<Value>& values);
    /// ADD_VALUE: every index must be new (else RC 201, ErrorKind::http).
    Status add_values(std::string_view handle, const std::vector<Value>& values);
    /// MODIFY_VALUE: every index must exist (else RC 200, ErrorKind::http).
    Status modify_values(std::string_view handle, const std::vector<Value>& values);
    /// REMOVE_VALUE: indices that do not exist are ignored.
    Status remove_values(std::string_view handle, const std::vector<std::int32_t>& indices);
    /// DELETE_HANDLE. Missing → not_found (RC 100).
    Status remove(std::string_view handle);
    /// RESOLUTION of the values `filter` selects (all by default). Before login a selection that
    /// includes a value without public read fails with auth / RC 402 unless `public_only` (then
    /// such values are left out); after login the node returns the non-public values the account
    /// may read over HTTPS too. Not found → not_found (RC 100). Values come back with format
    /// "admin" (HS_ADMIN), "string" (UTF-8 text) or "base64" (other bytes; `data` holds the raw
    /// bytes), the node's RFC 3339 timestamp, and permissions ("" when "1110").
    Result<Record> resolve(std::string_view handle, const ResolveFilter& filter = {},
                           bool public_only = false);

    HandleAdminClient(HandleAdminClient&&) noexcept;
    HandleAdminClient& operator=(HandleAdminClient&&) noexcept;
    HandleAdminClient(const HandleAdminClient&) = delete;
    HandleAdminClient& operator=(const HandleAdminClient&) = delete;
    ~HandleAdminClient();

    struct Impl;

private:
    explicit HandleAdminClient(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
};

} // namespace idnode::sdk
