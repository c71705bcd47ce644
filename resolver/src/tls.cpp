#include "server_core.hpp"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <filesystem>
#include <stdexcept>

namespace idnode::resolver::detail {

namespace {

// TLS 1.2: ECDHE key exchange with AEAD ciphers only (no CBC, no RSA key transport, no SHA-1 MAC).
constexpr const char* kTls12Ciphers = "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
                                      "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
                                      "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";
// TLS 1.3 suites are all AEAD; listed explicitly so a system-wide OpenSSL config cannot add others.
constexpr const char* kTls13Suites =
    "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256";

void require_readable(const std::filesystem::path& path, const char* key) {
    std::error_code ec;
    if (!std::filesystem::is_regular_file(path, ec))
        throw std::runtime_error(std::string(key) + " '" + path.string() +
                                 "': no such file (or not a regular file)");
}

} // namespace

std::shared_ptr<ssl::context> make_tls_context(const NodeConfig::Https& https) {
    require_readable(https.cert, "https.cert");
    require_readable(https.key, "https.key");

    auto ctx = std::make_shared<ssl::context>(ssl::context::tls_server);
    SSL_CTX* native = ctx->native_handle();
    SSL_CTX_set_min_proto_version(native, TLS1_2_VERSION);
    ctx->set_options(ssl::context::default_workarounds | ssl::context::no_compression |
                     ssl::context::single_dh_use);
    SSL_CTX_set_options(native, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
    if (SSL_CTX_set_cipher_list(native, kTls12Ciphers) != 1 ||
        SSL_CTX_set_ciphersuites(native, kTls13Suites) != 1)
        throw std::runtime_error("OpenSSL rejected the cipher configuration");
    SSL_CTX_set1_groups_list(native, "X25519:P-256:P-384");

    if (!https.key_password.empty()) {
        ctx->set_password_callback(
            [password = https.key_password](std::size_t, ssl::context::password_purpose) {
                return password;
            });
    }

    boost::system::error_code ec;
    ctx->use_certificate_chain_file(https.cert.string(), ec);
    if (ec)
        throw std::runtime_error("https.cert '" + https.cert.string() +
                                 "': cannot load the certificate chain: " + ec.message());
    ctx->use_private_key_file(https.key.string(), ssl::context::pem, ec);
    if (ec && ERR_GET_REASON(static_cast<unsigned long>(ec.value())) == X509_R_KEY_VALUES_MISMATCH)
        throw std::runtime_error("https.key '" + https.key.string() +
                                 "' does not match the certificate in '" + https.cert.string() +
                                 "'");
    if (ec)
        throw std::runtime_error("https.key '" + https.key.string() +
                                 "': cannot load the private key: " + ec.message());
    if (SSL_CTX_check_private_key(native) != 1)
        throw std::runtime_error("https.key '" + https.key.string() +
                                 "' does not match the certificate in '" + https.cert.string() +
                                 "'");
    return ctx;
}

} // namespace idnode::resolver::detail
