// The Handle protocol as HandleAdminClient speaks it (handle_admin.cpp): constants, big-endian
// encoding, the value encoding and its JSON forms, the login proofs, request framing and answer
// parsing. Internal to the SDK, which must not pull the resolver (it is a standalone library), so
// these few pieces are written here from the protocol description rather than linked.
// Thread safety: pure functions and plain values.
#pragma once

#include "idnode/sdk/client.hpp"
#include "idnode/sdk/result.hpp"

#include <openssl/evp.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace idnode::sdk::handle_wire {

inline constexpr std::size_t kEnvelopeSize = 20;

inline constexpr std::size_t kHeaderSize = 24;

/// The node refuses requests longer than this after the envelope (and closes the connection).
inline constexpr std::size_t kMaxRequestLength = 256 * 1024;

/// Answers carry whole records (up to the node's 1 MiB record limit); anything far beyond is a
/// broken stream, not an answer.
inline constexpr std::size_t kMaxAnswerLength = 16 * 1024 * 1024;

inline constexpr std::uint32_t kOpResolution = 1;

inline constexpr std::uint32_t kOpCreateHandle = 100;

inline constexpr std::uint32_t kOpDeleteHandle = 101;

inline constexpr std::uint32_t kOpAddValue = 102;

inline constexpr std::uint32_t kOpRemoveValue = 103;

inline constexpr std::uint32_t kOpModifyValue = 104;

inline constexpr std::uint32_t kOpChallengeResponse = 200;

inline constexpr std::uint32_t kOpLoginIdSystem = 2001;

inline constexpr std::uint32_t kRcSuccess = 1;

inline constexpr std::uint32_t kRcHandleNotFound = 100;

inline constexpr std::uint32_t kRcHandleAlreadyExists = 101;

inline constexpr std::uint32_t kRcAuthenticationNeeded = 402;

inline constexpr std::uint32_t kRcAuthenticationError = 406;
/// IDIS: a login on a logged-in connection (407), a write before the login (408).
inline constexpr std::uint32_t kRcIdisLoginFirst = 408;

inline constexpr std::uint32_t kFlagPublicOnly = 0x0100'0000;

inline constexpr std::uint8_t kDigestSha256 = 3;

inline constexpr std::uint8_t kProofHmacSha256 = 0x13;

inline constexpr std::uint8_t kPermPublicWrite = 0x01;

inline constexpr std::uint8_t kPermPublicRead = 0x02;

inline constexpr std::uint8_t kPermAdminWrite = 0x04;

inline constexpr std::uint8_t kPermAdminRead = 0x08;

inline constexpr std::uint8_t kDefaultPermissions =
    kPermAdminRead | kPermAdminWrite | kPermPublicRead;

// ---- big-endian encoding
// -------------------------------------------------------------------------

void put_u8(std::string& out, std::uint8_t v);

void put_u16(std::string& out, std::uint16_t v);

void put_u32(std::string& out, std::uint32_t v);

void put_i32(std::string& out, std::int32_t v);

void put_bytes(std::string& out, std::string_view bytes);

std::uint32_t load_u32(std::string_view bytes, std::size_t at);

/// Bounds-checked reading of an answer body; any failure leaves `ok` false for good.
class Reader {
public:
    explicit Reader(std::string_view bytes) : rest_(bytes) {}
    bool ok() const noexcept { return ok_; }
    bool at_end() const noexcept { return ok_ && rest_.empty(); }
    std::size_t left() const noexcept { return rest_.size(); }

    std::uint8_t u8() {
        if (!need(1))
            return 0;
        const auto v = static_cast<std::uint8_t>(rest_[0]);
        rest_.remove_prefix(1);
        return v;
    }
    std::uint32_t u32() {
        if (!need(4))
            return 0;
        const std::uint32_t v = load_u32(rest_, 0);
        rest_.remove_prefix(4);
        return v;
    }
    std::int32_t i32() { return static_cast<std::int32_t>(u32()); }
    std::string_view bytes() {
        const std::uint32_t n = u32();
        if (!need(n))
            return {};
        const std::string_view v = rest_.substr(0, n);
        rest_.remove_prefix(n);
        return v;
    }
    std::string_view raw(std::size_t n) {
        if (!need(n))
            return {};
        const std::string_view v = rest_.substr(0, n);
        rest_.remove_prefix(n);
        return v;
    }

private:
    bool need(std::size_t n) {
        if (ok_ && rest_.size() >= n)
            return true;
        ok_ = false;
        rest_ = {};
        return false;
    }
    std::string_view rest_;
    bool ok_ = true;
};

// ---- values
// --------------------------------------------------------------------------------------

Result<std::uint8_t> permission_bits(std::string_view text);

std::string permission_text(std::uint8_t bits);

/// HS_ADMIN bytes from the "admin" JSON text: permissions u16 (12 bits as "0/1" characters, most
/// significant first, HANDLE.NET's order), handle, index.
Result<std::string> admin_bytes(std::string_view json_text, const std::string& where);

/// The "admin" JSON text of HS_ADMIN bytes, as the node shows them over HTTPS; nullopt when the
/// bytes are not an admin record that form carries exactly.
std::optional<std::string> admin_json(std::string_view bytes);

std::string rfc3339(std::uint32_t unix_seconds);

/// handle + value count + values in the Handle value encoding (RFC 3651 §3.1): the body of
/// CREATE_HANDLE, ADD_VALUE and MODIFY_VALUE.
Result<std::string> values_body(std::string_view handle, const std::vector<Value>& values);

/// A RESOLUTION answer body: handle, value count, values.
Result<Record> record_of(std::string_view body, std::string_view asked);

std::string sha256(std::string_view bytes);

using PkeyPtr = std::shared_ptr<EVP_PKEY>;

Result<PkeyPtr> read_rsa_key(std::string_view pem);

/// HS_PUBKEY signed response: digest name, then RSASSA-PKCS1-v1_5 SHA-256 over nonce || digest.
Result<std::string> rsa_proof(EVP_PKEY* key, std::string_view nonce, std::string_view digest);

/// HS_SECKEY signed response 0x13: HMAC-SHA256(secret, nonce || digest).
std::string secret_proof(std::string_view secret, std::string_view nonce, std::string_view digest);

struct Request {
    std::string wire;            ///< the whole message
    std::string header_and_body; ///< what the node's challenge digest covers
    std::uint32_t request_id = 0;
};

Request make_request(std::uint32_t opcode, std::string_view body, std::uint32_t request_id,
                     std::uint32_t session_id = 0, std::uint32_t op_flags = 0);

struct Answer {
    std::uint32_t session_id = 0;
    std::uint32_t request_id = 0;
    std::uint32_t opcode = 0;
    std::uint32_t rc = 0;
    std::string body;
};

Result<Answer> parse_answer(std::string_view message);

/// What a 402 asks the client to sign.
struct Challenge {
    std::uint32_t session_id = 0;
    std::string digest;
    std::string nonce;
};

Result<Challenge> challenge_of(const Answer& a);

ErrorKind kind_of(std::uint32_t rc);

/// The Error of an answer whose RC is not success: the node's message (a length-prefixed UTF-8
/// string) when the body is one, else `fallback`.
Error error_of(const Answer& a, std::string fallback);

std::string rc_fallback(std::uint32_t rc);

} // namespace idnode::sdk::handle_wire
