// The Handle protocol codec on its own: envelope/header/credential decoding and its rejection of
// malformed input, bodies, site information, framing and UDP datagrams.
#include "handle_test_support.hpp"

#include <doctest/doctest.h>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include <random>

using namespace handle_test;

namespace {

std::string u32be(std::uint32_t v) {
    std::string s(4, '\0');
    s[0] = static_cast<char>(v >> 24);
    s[1] = static_cast<char>(v >> 16);
    s[2] = static_cast<char>(v >> 8);
    s[3] = static_cast<char>(v);
    return s;
}

/// Replaces 4 bytes at `at` with `v`.
std::string patched(std::string bytes, std::size_t at, std::uint32_t v) {
    bytes.replace(at, 4, u32be(v));
    return bytes;
}

/// An envelope whose message_length matches `rest`, followed by `rest`.
std::string framed(std::string_view rest, std::uint8_t flags_byte = 0x02) {
    std::string out = std::string("\x02\x0b", 2);
    out.push_back(static_cast<char>(flags_byte));
    out.push_back('\x0b');
    out += u32be(0) + u32be(7) + u32be(0) + u32be(static_cast<std::uint32_t>(rest.size()));
    out.append(rest);
    return out;
}

std::string header(std::uint32_t body_length, std::uint32_t opcode = 1) {
    return u32be(opcode) + u32be(0) + u32be(0) + std::string("\xff\xff\x00\x00", 4) +
           u32be(0x6b03e200) + u32be(body_length);
}

const std::string kBody = resolution_body("88.999/X");

struct MessageCase {
    const char* name;
    std::string bytes;
    hp::WireErrc expected;
};

} // namespace

TEST_CASE("a well-formed request decodes into envelope, header, body and no credential") {
    const std::string message = resolve("88.999/STEEL-H2024-001", {2000}, {"URL"});
    auto view = hp::decode_message(message);
    REQUIRE(view.ok());
    CHECK(view->envelope.major == 2);
    CHECK(view->envelope.minor == 11);
    CHECK(view->envelope.suggested_major == 2);
    CHECK(view->envelope.suggested_minor == 11);
    CHECK(view->envelope.request_id == 0x01020304);
    CHECK(view->header.opcode == hp::opcode::kResolution);
    CHECK(view->header.site_info_serial == 0xFFFF);
    CHECK(view->header_and_body.size() == hp::kHeaderSize + view->body.size());
    CHECK_FALSE(view->credential.has_value());
    auto request = hp::decode_resolution_request(view->body);
    REQUIRE(request.ok());
    CHECK(request->handle == "88.999/STEEL-H2024-001");
    CHECK(request->indices == std::vector<std::int32_t>{2000});
    REQUIRE(request->types.size() == 1);
    CHECK(request->types[0] == "URL");
}

TEST_CASE("an envelope that suggests no version is taken to suggest its own") {
    auto env = hp::decode_envelope(framed("", 0x00));
    REQUIRE(env.ok());
    CHECK(env->suggested_major == 2);
    CHECK(env->suggested_minor == 11);
}

TEST_CASE("decoder rejection table: envelope, header, body and credential lengths") {
    const std::string good =
        framed(header(static_cast<std::uint32_t>(kBody.size())) + kBody + u32be(0));
    REQUIRE(hp::decode_message(good).ok());
    const std::size_t body_length_at = hp::kEnvelopeSize + 20;
    const std::size_t credential_at = good.size() - 4;

    const std::vector<MessageCase> cases = {
        {"empty input", "", hp::WireErrc::truncated},
        {"19-byte envelope", good.substr(0, 19), hp::WireErrc::truncated},
        {"declared length over 256 KiB", patched(good, 16, hp::kMaxMessageLength + 1),
         hp::WireErrc::oversize},
        {"declared length with the sign bit", patched(good, 16, 0x8000'0000u),
         hp::WireErrc::oversize},
        {"declared length larger than the bytes",
         patched(good, 16, static_cast<std::uint32_t>(good.size())), hp::WireErrc::length_mismatch},
        {"declared length smaller than the bytes", good + "x", hp::WireErrc::length_mismatch},
        {"header cut short", framed(header(0).substr(0, 10)), hp::WireErrc::truncated},
        {"body length larger than what is left", patched(good, body_length_at, 0x1000),
         hp::WireErrc::length_overrun},
        {"negative body length", patched(good, body_length_at, 0xFFFF'FFF0u),
         hp::WireErrc::negative_length},
        {"no credential length", framed(header(static_cast<std::uint32_t>(kBody.size())) + kBody),
         hp::WireErrc::truncated},
        {"credential length larger than what is left", patched(good, credential_at, 9),
         hp::WireErrc::length_overrun},
        {"negative credential length", patched(good, credential_at, 0x8000'0001u),
         hp::WireErrc::negative_length},
        {"bytes after the credential",
         framed(header(static_cast<std::uint32_t>(kBody.size())) + kBody + u32be(0) + "zz"),
         hp::WireErrc::trailing_bytes},
        {"multi-datagram (TC) request", framed(header(0) + u32be(0), 0x22),
         hp::WireErrc::unsupported_envelope},
        {"encrypted envelope", framed(header(0) + u32be(0), 0x42),
         hp::WireErrc::unsupported_envelope},
        {"compressed envelope", framed(header(0) + u32be(0), 0x82),
         hp::WireErrc::unsupported_envelope},
        {"major version 3", "\x03" + framed(header(0) + u32be(0)).substr(1),
         hp::WireErrc::unsupported_version},
        {"malformed credential", framed(header(0) + u32be(3) + "abc"), hp::WireErrc::truncated},
    };
    for (const auto& c : cases) {
        INFO(c.name);
        auto view = hp::decode_message(c.bytes);
        REQUIRE_FALSE(view.ok());
        CHECK(hp::wire_errc_name(view.error().code) == std::string(hp::wire_errc_name(c.expected)));
        CHECK(view.error().offset <= c.bytes.size());
        CHECK_FALSE(view.error().describe().empty());
    }
}

TEST_CASE("decoder rejection table: RESOLUTION bodies") {
    const std::string handle = u32be(8) + "88.999/X";
    const std::vector<std::pair<const char*, std::pair<std::string, hp::WireErrc>>> cases = {
        {"empty body", {"", hp::WireErrc::truncated}},
        {"handle length larger than what is left",
         {u32be(200) + "88.999/X", hp::WireErrc::length_overrun}},
        {"negative handle length", {u32be(0xFFFF'FFFFu) + "88", hp::WireErrc::negative_length}},
        {"no index list", {handle, hp::WireErrc::truncated}},
        {"negative index count",
         {handle + u32be(0x8000'0000u) + u32be(0), hp::WireErrc::negative_length}},
        {"index count larger than what is left",
         {handle + u32be(3) + u32be(1) + u32be(0), hp::WireErrc::length_overrun}},
        {"no type list", {handle + u32be(0), hp::WireErrc::truncated}},
        {"negative type count",
         {handle + u32be(0) + u32be(0xFFFF'FFFEu), hp::WireErrc::negative_length}},
        {"type longer than what is left",
         {handle + u32be(0) + u32be(1) + u32be(50) + "URL", hp::WireErrc::length_overrun}},
        {"type count larger than what is left",
         {handle + u32be(0) + u32be(2) + u32be(3) + "URL", hp::WireErrc::length_overrun}},
    };
    for (const auto& [name, c] : cases) {
        INFO(name);
        auto request = hp::decode_resolution_request(c.first);
        REQUIRE_FALSE(request.ok());
        CHECK(std::string(hp::wire_errc_name(request.error().code)) ==
              hp::wire_errc_name(c.second));
    }
}

TEST_CASE("a resolution request round-trips through encode and decode") {
    const std::vector<std::int32_t> indices{1, 2000, -5};
    const std::vector<std::string_view> types{"URL", "", "HS_SITE.6"};
    std::string body;
    hp::encode_resolution_request(body, "0.NA/88.999", indices, types);
    auto request = hp::decode_resolution_request(body);
    REQUIRE(request.ok());
    CHECK(request->handle == "0.NA/88.999");
    CHECK(request->indices == indices);
    CHECK(request->types == types);
}

TEST_CASE("a credential section is parsed field by field") {
    std::string credential;
    credential += std::string("\x00\x00\x00\x00", 4); // version, reserved, options
    credential += u32be(0) + u32be(7);                // signer handle "", index/counter 7
    credential += u32be(9) + "HS_SIGNED";             // type
    const std::string section = u32be(6) + "SHA256" + u32be(3) + "sig";
    credential += u32be(static_cast<std::uint32_t>(section.size())) + section;
    auto parsed = hp::decode_credential(credential);
    REQUIRE(parsed.ok());
    CHECK(parsed->signer_index == 7);
    CHECK(parsed->type == "HS_SIGNED");
    CHECK(parsed->signed_info == section);

    const std::string message =
        make_message(RequestSpec{}, resolution_body("88.999/X"), credential);
    auto view = hp::decode_message(message);
    REQUIRE(view.ok());
    REQUIRE(view->credential.has_value());
    CHECK(view->credential->type == "HS_SIGNED");

    CHECK_FALSE(hp::decode_credential(credential.substr(0, credential.size() - 1)).ok());
    CHECK_FALSE(hp::decode_credential(credential + "x").ok());
}

TEST_CASE("garbage never crashes the decoders") {
    std::mt19937 rng(20240611);
    std::uniform_int_distribution<int> byte(0, 255);
    std::uniform_int_distribution<int> length(0, 200);
    const std::string seed = resolve("88.999/STEEL-H2024-001", {1}, {"URL"});
    for (int i = 0; i < 5000; ++i) {
        std::string bytes;
        if (i % 2 == 0) {
            bytes.resize(static_cast<std::size_t>(length(rng)));
            for (auto& b : bytes)
                b = static_cast<char>(byte(rng));
        } else {
            // Mutations of a valid message reach the deeper decoders.
            bytes = seed;
            for (int k = 0; k < 3; ++k) {
                bytes[static_cast<std::size_t>(length(rng)) % bytes.size()] =
                    static_cast<char>(byte(rng));
            }
        }
        auto view = hp::decode_message(bytes);
        if (view.ok()) {
            (void)hp::decode_resolution_request(view->body);
        }
        (void)hp::decode_resolution_request(bytes);
        (void)hp::decode_site_info(bytes);
        (void)hp::decode_credential(bytes);
        (void)hp::decode_request_digest(bytes);
        (void)hp::decode_resolution_response(bytes);
        (void)hp::probe_frame(bytes);
    }
}

TEST_CASE("probe_frame cuts a TCP stream into messages") {
    const std::string first = resolve("88.999/A");
    const std::string second = resolve("88.999/BB");
    const std::string stream = first + second;

    auto probe = hp::probe_frame(std::string_view(stream).substr(0, 10));
    CHECK(probe.state == hp::FrameProbe::State::need_more);
    CHECK(probe.size == hp::kEnvelopeSize);

    probe = hp::probe_frame(std::string_view(stream).substr(0, first.size() - 1));
    CHECK(probe.state == hp::FrameProbe::State::need_more);
    CHECK(probe.size == first.size());

    probe = hp::probe_frame(stream); // pipelined: the first message is complete
    CHECK(probe.state == hp::FrameProbe::State::complete);
    CHECK(probe.size == first.size());
    probe = hp::probe_frame(std::string_view(stream).substr(probe.size));
    CHECK(probe.state == hp::FrameProbe::State::complete);
    CHECK(probe.size == second.size());

    probe = hp::probe_frame(patched(first, 16, hp::kMaxMessageLength + 1));
    CHECK(probe.state == hp::FrameProbe::State::oversize);
    probe = hp::probe_frame(patched(first, 16, hp::kMaxMessageLength));
    CHECK(probe.state == hp::FrameProbe::State::need_more);
}

TEST_CASE("error bodies and request digests decode") {
    std::string body;
    hp::encode_error_body(body, "That prefix doesn't live here");
    auto message = hp::decode_error_body(body);
    REQUIRE(message.ok());
    CHECK(*message == "That prefix doesn't live here");

    for (auto algorithm : {hp::DigestAlgorithm::md5_legacy, hp::DigestAlgorithm::sha1,
                           hp::DigestAlgorithm::sha256}) {
        std::string digest;
        hp::append_request_digest(digest, algorithm, "header and body");
        digest += "rest";
        auto view = hp::decode_request_digest(digest);
        REQUIRE(view.ok());
        CHECK(view->algorithm == algorithm);
        CHECK(view->digest.size() == (algorithm == hp::DigestAlgorithm::sha1     ? 20u
                                      : algorithm == hp::DigestAlgorithm::sha256 ? 32u
                                                                                 : 16u));
        CHECK(view->rest == "rest");
    }
    CHECK(hp::digest_algorithm_for(2, 11) == hp::DigestAlgorithm::sha256);
    CHECK(hp::digest_algorithm_for(2, 7) == hp::DigestAlgorithm::sha256);
    CHECK(hp::digest_algorithm_for(2, 6) == hp::DigestAlgorithm::sha1);
    CHECK(hp::digest_algorithm_for(2, 1) == hp::DigestAlgorithm::sha1);
    CHECK(hp::digest_algorithm_for(2, 0) == hp::DigestAlgorithm::md5_legacy);
    CHECK_FALSE(hp::decode_request_digest("\x09").ok());
    CHECK_FALSE(hp::decode_request_digest("\x03short").ok());
}

TEST_CASE("a resolution response body decodes into values") {
    const auto values = steel_values();
    std::string body =
        u32be(static_cast<std::uint32_t>(kHandle.size())) + std::string(kHandle) + u32be(3);
    for (const auto& v : values) {
        reg::encode_value(body, v);
    }
    auto record = hp::decode_resolution_response(body);
    REQUIRE(record.ok());
    CHECK(record->spelling == kHandle);
    REQUIRE(record->values.size() == 3);
    CHECK(record->values[1] == values[1]);
    CHECK_FALSE(hp::decode_resolution_response(body.substr(0, body.size() - 1)).ok());
    CHECK_FALSE(hp::decode_resolution_response(patched(body, 4 + kHandle.size(), 1000)).ok());
}

TEST_CASE("site information round-trips and rejects what it cannot represent") {
    hp::SiteInfo site = capture_site(std::string(256, '\x7f'));
    site.multi_primary = true;
    site.servers.push_back(hp::SiteServer{2,
                                          *hp::parse_site_address("2001:db8::1"),
                                          "",
                                          {{hp::service::kQuery, hp::Transport::https, 8443}}});
    const std::string bytes = hp::encode_site_info(site);
    auto decoded = hp::decode_site_info(bytes);
    REQUIRE(decoded.ok());
    CHECK(*decoded == site);

    CHECK_FALSE(hp::decode_site_info(bytes.substr(0, bytes.size() - 1)).ok());
    CHECK_FALSE(hp::decode_site_info(bytes + "x").ok());
    std::string bad_transport = bytes;
    bad_transport[bad_transport.size() - 5] = '\x07'; // last interface's transport
    auto rejected = hp::decode_site_info(bad_transport);
    REQUIRE_FALSE(rejected.ok());
    CHECK(rejected.error().code == hp::WireErrc::invalid_field);
}

TEST_CASE("site addresses: IPv4 in the low four bytes, IPv6 as is") {
    const auto v4 = hp::parse_site_address("127.0.0.1");
    REQUIRE(v4.has_value());
    CHECK(*v4 == hp::ipv4_site_address(127, 0, 0, 1));
    CHECK(to_hex(std::string(v4->begin(), v4->end())) == "0000000000000000000000007f000001");
    const auto v6 = hp::parse_site_address("::1");
    REQUIRE(v6.has_value());
    CHECK((*v6)[15] == 1);
    CHECK_FALSE(hp::parse_site_address("localhost").has_value());
    CHECK_FALSE(hp::parse_site_address("").has_value());
}

TEST_CASE("the RSA key encoding adds a sign byte only when the top bit is set") {
    const std::string key =
        hp::encode_rsa_public_key(std::string("\x00\x01\x00\x01", 4), "\x7f\x01");
    CHECK(to_hex(key) == "0000000b" + to_hex("RSA_PUB_KEY") + "0000" + "00000003010001" +
                             "000000027f01" + "00000000");
    const std::string signed_key = hp::encode_rsa_public_key("\x03", "\x80");
    CHECK(to_hex(signed_key).find("000000020080") != std::string::npos);
}

TEST_CASE("the HS_SITE value for 0.NA/<prefix> carries the encoded site") {
    const hp::SiteInfo site = capture_site(std::string(256, '\x55'));
    const reg::HandleValue value = hp::site_info_value(site, 1234);
    CHECK(value.index == 1);
    CHECK(value.type == "HS_SITE");
    CHECK(value.data == hp::encode_site_info(site));
    CHECK(value.timestamp == 1234);
    CHECK(value.permissions.public_read());
    CHECK(reg::validate_values(std::span(&value, 1)).ok());
}

TEST_CASE("UDP: a reply that fits goes out unchanged") {
    const std::string reply(300, 'r');
    const auto datagrams = hp::udp_datagrams(reply);
    REQUIRE(datagrams.size() == 1);
    CHECK(datagrams[0] == reply);
}

TEST_CASE("UDP: a large reply goes out as every part within max_reply_bytes, else not at all") {
    // A real message of 1,300 bytes: envelope + header + body + credential.
    const std::string body(1300 - hp::kEnvelopeSize - hp::kHeaderSize - 4, 'b');
    RequestSpec spec;
    spec.request_id = 0xCAFE;
    const std::string reply = make_message(spec, body);
    REQUIRE(reply.size() == 1300);

    auto check_part = [&](const std::string& datagram, std::uint32_t sequence) {
        CHECK(datagram.size() <= hp::kMaxUdpDatagram);
        auto env = hp::decode_envelope(datagram);
        REQUIRE(env.ok());
        CHECK((env->flags & hp::envflag::kTruncated) != 0);
        CHECK(env->message_id == sequence);
        CHECK(env->message_length == reply.size() - hp::kEnvelopeSize); // the whole message
        CHECK(env->request_id == 0xCAFE);
        CHECK(env->suggested_major == 2); // the version bits survive the flag
        // A TC datagram is recognisably incomplete to the decoder.
        CHECK(hp::decode_message(datagram).error().code == hp::WireErrc::unsupported_envelope);
    };

    SUBCASE("within max_reply_bytes: every part, reassembling to the reply") {
        // 1280 payload bytes in 492-byte parts: 3 datagrams, 1340 bytes sent.
        const auto datagrams = hp::udp_datagrams(reply, {hp::kMaxUdpDatagram, 1340});
        REQUIRE(datagrams.size() == 3);
        std::string reassembled = reply.substr(0, hp::kEnvelopeSize);
        for (std::uint32_t i = 0; i < datagrams.size(); ++i) {
            check_part(datagrams[i], i);
            if (i + 1 < datagrams.size()) {
                CHECK(datagrams[i].size() == hp::kMaxUdpDatagram);
            }
            reassembled += datagrams[i].substr(hp::kEnvelopeSize);
        }
        CHECK(reassembled == reply);
    }
    SUBCASE("over max_reply_bytes: nothing (the server answers RC 2 instead)") {
        CHECK(hp::udp_datagrams(reply, {hp::kMaxUdpDatagram, 1339}).empty());
    }
}

TEST_CASE("a PEM RSA public key becomes an HS_PUBKEY; other keys are refused") {
    auto pem_of = [](EVP_PKEY* key) {
        BIO* bio = BIO_new(BIO_s_mem());
        REQUIRE(PEM_write_bio_PUBKEY(bio, key) == 1);
        char* data = nullptr;
        const long size = BIO_get_mem_data(bio, &data);
        std::string pem(data, static_cast<std::size_t>(size));
        BIO_free(bio);
        return pem;
    };
    EVP_PKEY* rsa = EVP_RSA_gen(1024);
    REQUIRE(rsa != nullptr);
    auto encoded = hp::encode_public_key_pem(pem_of(rsa));
    EVP_PKEY_free(rsa);
    REQUIRE(encoded.ok());
    const std::string& key = *encoded;
    CHECK(key.substr(0, 15) == u32be(11) + "RSA_PUB_KEY");
    CHECK(to_hex(key.substr(15, 9)) == "0000"
                                       "00000003"
                                       "010001");
    CHECK(key.substr(24, 4) == u32be(129)); // 1024-bit modulus plus its sign byte
    CHECK(key.size() == 24 + 4 + 129 + 4);

    EVP_PKEY* ec = EVP_EC_gen("P-256");
    REQUIRE(ec != nullptr);
    auto refused = hp::encode_public_key_pem(pem_of(ec));
    EVP_PKEY_free(ec);
    REQUIRE_FALSE(refused.ok());
    CHECK(refused.error().message.find("RSA") != std::string::npos);
    CHECK_FALSE(hp::encode_public_key_pem("not a key").ok());
}
