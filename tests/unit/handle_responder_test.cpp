// The pure responder beyond the captured vectors: filters, PUBL, error codes, versions, digests,
// 0.NA/<prefix>, malformed and hostile input.
#include "handle_test_support.hpp"

#include <doctest/doctest.h>

#include <openssl/evp.h>

#include <random>

using namespace handle_test;

namespace {

std::vector<std::int32_t> indices_of(const reg::Record& record) {
    std::vector<std::int32_t> out;
    for (const auto& v : record.values) {
        out.push_back(v.index);
    }
    return out;
}

/// The values of an RC 1 RESOLUTION response (no request digest in front).
reg::Record values_of(const hp::Answer& a) {
    const Parsed p = parse(a.message);
    auto record = hp::decode_resolution_response(p.view.body);
    REQUIRE(record.ok());
    return *record;
}

std::string error_message_of(const hp::Answer& a) {
    const Parsed p = parse(a.message);
    auto message = hp::decode_error_body(p.view.body);
    REQUIRE(message.ok());
    return std::string(*message);
}

std::string sha256(std::string_view bytes) {
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int size = 0;
    REQUIRE(EVP_Digest(bytes.data(), bytes.size(), digest, &size, EVP_sha256(), nullptr) == 1);
    return std::string(reinterpret_cast<const char*>(digest), size);
}

Fixture fixture_with_site() {
    Fixture f;
    f.config.site = capture_site(std::string(256, '\x42'));
    return f;
}

} // namespace

TEST_CASE("filters select values by any index or any type") {
    Fixture f;
    SUBCASE("index only") {
        const auto a = f.ask(resolve(kHandle, {2000}));
        REQUIRE(a.response_code == hp::rc::kSuccess);
        CHECK(indices_of(values_of(a)) == std::vector<std::int32_t>{2000});
    }
    SUBCASE("type only, case-insensitive") {
        const auto a = f.ask(resolve(kHandle, {}, {"url"}));
        REQUIRE(a.response_code == hp::rc::kSuccess);
        CHECK(indices_of(values_of(a)) == std::vector<std::int32_t>{1});
    }
    SUBCASE("index or type") {
        const auto a = f.ask(resolve(kHandle, {1}, {"heat_no"}));
        REQUIRE(a.response_code == hp::rc::kSuccess);
        CHECK(indices_of(values_of(a)) == std::vector<std::int32_t>{1, 2000});
    }
    SUBCASE("values come back with the stored bytes, timestamps included") {
        const auto a = f.ask(resolve(kHandle, {1, 2000}));
        const auto record = values_of(a);
        REQUIRE(record.values.size() == 2);
        CHECK(record.values[0] == steel_values()[0]);
        CHECK(record.values[1] == steel_values()[1]);
    }
}

TEST_CASE("a type ending in '.' selects its subtypes") {
    Fixture f({make_value(1, "URL", "https://a.example/", "1110"),
               make_value(2, "URL.mobile", "https://m.example/", "1110"),
               make_value(3, "URLX", "no", "1110")},
              "88.999/sub");
    const auto a = f.ask(resolve("88.999/sub", {}, {"URL."}));
    REQUIRE(a.response_code == hp::rc::kSuccess);
    const auto record = values_of(a);
    CHECK(indices_of(record) == std::vector<std::int32_t>{2});
}

TEST_CASE("PUBL leaves private values out; without it a private selection is challenged") {
    Fixture f;
    RequestSpec publ;
    publ.op_flags = hp::opflag::kPublicOnly;
    SUBCASE("PUBL, no filter: the public values") {
        const auto a = f.ask(resolve(kHandle, {}, {}, publ));
        REQUIRE(a.response_code == hp::rc::kSuccess);
        CHECK(indices_of(values_of(a)) == std::vector<std::int32_t>{1, 2000});
        CHECK((parse(a.message).view.header.op_flags & hp::opflag::kPublicOnly) != 0);
    }
    SUBCASE("PUBL, filter selecting only the private value: nothing left, RC 200") {
        const auto a = f.ask(resolve(kHandle, {2001}, {}, publ));
        CHECK(a.response_code == hp::rc::kValuesNotFound);
    }
    SUBCASE("no PUBL, filter selecting the private value: RC 402") {
        const auto a = f.ask(resolve(kHandle, {2001}));
        CHECK(a.response_code == hp::rc::kAuthenticationNeeded);
        CHECK(a.challenge.has_value());
    }
    SUBCASE("no PUBL, filter selecting only public values: RC 1, no challenge") {
        const auto a = f.ask(resolve(kHandle, {}, {"price.", "URL"}));
        CHECK(a.response_code == hp::rc::kSuccess);
        CHECK_FALSE(a.challenge.has_value());
    }
}

TEST_CASE("RC 200 when the filters match nothing") {
    Fixture f;
    const auto a = f.ask(resolve(kHandle, {42}, {"EMAIL"}));
    CHECK(a.response_code == hp::rc::kValuesNotFound);
    CHECK_FALSE(error_message_of(a).empty());
}

TEST_CASE("RC 100 for an unknown handle, with an empty message") {
    Fixture f;
    const auto a = f.ask(resolve("88.999/nope"));
    CHECK(a.response_code == hp::rc::kHandleNotFound);
    CHECK(error_message_of(a).empty());
}

TEST_CASE("RC 102 for invalid handles, before the store is asked") {
    Fixture f;
    const char* const invalid[] = {"88.999",      "88.999/",         "/suffix",         "88..999/x",
                                   "88.999/a\tb", "88.999/\xff\xfe", "88.999/\xc0\xaf", ""};
    for (const char* handle : invalid) {
        INFO(to_hex(handle));
        const auto a = f.ask(resolve(handle));
        CHECK(a.response_code == hp::rc::kInvalidHandle);
        CHECK(error_message_of(a).rfind("invalid handle", 0) == 0);
    }
    const std::string too_long = "88.999/" + std::string(300, 'x');
    CHECK(f.ask(resolve(too_long)).response_code == hp::rc::kInvalidHandle);
    CHECK(f.lookups == 0);
}

TEST_CASE("RC 301 for prefixes this node does not home") {
    Fixture f;
    const auto a = f.ask(resolve("88.1000/x"));
    CHECK(a.response_code == hp::rc::kServerNotResponsible);
    CHECK(error_message_of(a) == "That prefix doesn't live here");
    CHECK(f.lookups == 0);
}

TEST_CASE("store failures map to response codes without leaking details") {
    Fixture f;
    f.lookup_failure = reg::Errc::corrupt;
    auto a = f.ask(resolve(kHandle));
    CHECK(a.response_code == hp::rc::kError);
    CHECK(error_message_of(a).find("injected") == std::string::npos);
    f.lookup_failure = reg::Errc::unavailable;
    CHECK(f.ask(resolve(kHandle)).response_code == hp::rc::kServerTooBusy);
    f.lookup_failure = reg::Errc::not_homed;
    CHECK(f.ask(resolve(kHandle)).response_code == hp::rc::kServerNotResponsible);
}

TEST_CASE("0.NA/<prefix> of a homed prefix is answered from the lookup, which composes it") {
    // The record itself (HS_SITE, HS_ADMIN, the enterprise's details) is composed by the
    // server's lookup (prefix_records.hpp; handle_server_test and integration tests).
    Fixture f = fixture_with_site();
    SUBCASE("homed prefix, any case") {
        CHECK(f.ask(resolve("0.na/88.999")).response_code == hp::rc::kHandleNotFound);
        CHECK(f.lookups == 1);
    }
    SUBCASE("a prefix not homed here: RC 301 without a lookup") {
        CHECK(f.ask(resolve("0.NA/77.1")).response_code == hp::rc::kServerNotResponsible);
        CHECK(f.ask(resolve("0.NA/not a prefix")).response_code == hp::rc::kServerNotResponsible);
        CHECK(f.lookups == 0);
    }
}

TEST_CASE("GET_SITE_INFO answers with the configured site") {
    Fixture f = fixture_with_site();
    RequestSpec spec;
    spec.opcode = hp::opcode::kGetSiteInfo;
    for (const std::string& body : {std::string("\x00\x00\x00\x01/", 5), std::string()}) {
        const auto a = f.ask(make_message(spec, body));
        REQUIRE(a.response_code == hp::rc::kSuccess);
        const Parsed p = parse(a.message);
        CHECK(p.view.header.opcode == hp::opcode::kGetSiteInfo);
        CHECK(p.view.header.site_info_serial == f.config.site.serial);
        auto site = hp::decode_site_info(p.view.body);
        REQUIRE(site.ok());
        CHECK(*site == f.config.site);
    }
    const auto bad = f.ask(make_message(spec, std::string("\x00\x00\x00\x09/", 5)));
    CHECK(bad.response_code == hp::rc::kProtocolError);
}

TEST_CASE("unknown and unsupported opcodes get RC 5") {
    Fixture f;
    for (std::uint32_t opcode : {0u, 3u, hp::opcode::kCreateHandle, hp::opcode::kChallengeResponse,
                                 hp::opcode::kSessionSetup, 0xFFFF'FFFFu}) {
        INFO(opcode);
        RequestSpec spec;
        spec.opcode = opcode;
        const auto a = f.ask(make_message(spec, "whatever the body"));
        CHECK(a.disposition == hp::Disposition::reply);
        CHECK(a.response_code == hp::rc::kOperationNotSupported);
        CHECK(a.opcode == opcode);
        CHECK(parse(a.message).view.header.opcode == opcode);
    }
}

TEST_CASE("version negotiation: the client's suggestion, capped at 2.11; ours suggested") {
    Fixture f;
    struct Case {
        std::uint8_t major, minor, suggested_major, suggested_minor;
        std::uint8_t want_major, want_minor;
    };
    const Case cases[] = {
        {2, 11, 2, 11, 2, 11}, // the vectors
        {2, 10, 2, 10, 2, 10}, // an older client
        {2, 3, 2, 10, 2, 10},  // CAICT SDK: speaks 2.3, suggests 2.10
        {2, 11, 2, 12, 2, 11}, // a newer client
        {2, 11, 3, 0, 2, 11},  // a much newer one
        {2, 5, 0, 0, 2, 5},    // before 2.8 nothing was suggested
    };
    for (const auto& c : cases) {
        INFO(int(c.major) << "." << int(c.minor) << " suggesting " << int(c.suggested_major) << "."
                          << int(c.suggested_minor));
        RequestSpec spec;
        spec.major = c.major;
        spec.minor = c.minor;
        spec.suggested_major = c.suggested_major;
        spec.suggested_minor = c.suggested_minor;
        const auto a = f.ask(resolve(kHandle, {1}, {}, spec));
        REQUIRE(a.response_code == hp::rc::kSuccess);
        auto env = hp::decode_envelope(a.message);
        REQUIRE(env.ok());
        CHECK(int(env->major) == c.want_major);
        CHECK(int(env->minor) == c.want_minor);
        CHECK(int(env->suggested_major) == 2);
        CHECK(int(env->suggested_minor) == 11);
    }
}

TEST_CASE("the digest follows the response version: SHA-1 for 2.5") {
    Fixture f;
    RequestSpec spec;
    spec.major = 2;
    spec.minor = 5;
    spec.suggested_major = 0; // suggests nothing: answer in 2.5
    const auto a = f.ask(resolve(kHandle, {}, {}, spec));
    REQUIRE(a.response_code == hp::rc::kAuthenticationNeeded);
    const Parsed p = parse(a.message);
    auto digest = hp::decode_request_digest(p.view.body);
    REQUIRE(digest.ok());
    CHECK(digest->algorithm == hp::DigestAlgorithm::sha1);
    CHECK(digest->digest.size() == 20);
}

TEST_CASE("RD: a client that asks for the request digest gets it in front of any body") {
    Fixture f;
    RequestSpec spec;
    spec.op_flags = hp::opflag::kRequestDigest | hp::opflag::kPublicOnly;
    const std::string request = resolve(kHandle, {}, {}, spec);
    const std::string expected_digest = sha256(std::string_view(request).substr(
        hp::kEnvelopeSize, request.size() - hp::kEnvelopeSize - 4));

    auto check_digest = [&](const hp::Answer& a) {
        const Parsed p = parse(a.message);
        CHECK((p.view.header.op_flags & hp::opflag::kRequestDigest) != 0);
        auto digest = hp::decode_request_digest(p.view.body);
        REQUIRE(digest.ok());
        CHECK(digest->algorithm == hp::DigestAlgorithm::sha256);
        CHECK(digest->digest == expected_digest);
        return std::string(digest->rest);
    };
    const auto ok = f.ask(request);
    REQUIRE(ok.response_code == hp::rc::kSuccess);
    auto values = hp::decode_resolution_response(check_digest(ok));
    REQUIRE(values.ok());
    CHECK(values->values.size() == 2);

    f.homed.clear();
    const auto refused = f.ask(request);
    REQUIRE(refused.response_code == hp::rc::kServerNotResponsible);
    const std::string rest = check_digest(refused);
    auto message = hp::decode_error_body(rest);
    REQUIRE(message.ok());
    CHECK(*message == "That prefix doesn't live here");
}

TEST_CASE("response flags: AT and REC always; CA, PUBL, DNRF echoed; CT, ENC, KC not") {
    Fixture f;
    RequestSpec spec;
    spec.op_flags = hp::opflag::kCertified | hp::opflag::kEncrypted | hp::opflag::kKeepAlive |
                    hp::opflag::kCacheCertified | hp::opflag::kPublicOnly | hp::opflag::kDoNotRefer;
    spec.recursion_count = 3;
    const auto a = f.ask(resolve(kHandle, {1}, {}, spec));
    REQUIRE(a.response_code == hp::rc::kSuccess);
    const Parsed p = parse(a.message);
    CHECK(p.view.header.op_flags ==
          (hp::opflag::kAuthoritative | hp::opflag::kRecursive | hp::opflag::kCacheCertified |
           hp::opflag::kPublicOnly | hp::opflag::kDoNotRefer));
    CHECK(p.view.header.recursion_count == 3);
    CHECK(p.view.header.expiration == kCaptureNow + 43200);
    CHECK(p.view.envelope.message_id == 0);
}

TEST_CASE("session ids are echoed except for a challenge, which opens its own") {
    Fixture f;
    RequestSpec spec;
    spec.session_id = 77;
    CHECK(parse(f.ask(resolve(kHandle, {1}, {}, spec)).message).view.envelope.session_id == 77);
    const auto challenged = f.ask(resolve(kHandle, {}, {}, spec));
    REQUIRE(challenged.challenge.has_value());
    CHECK(parse(challenged.message).view.envelope.session_id == challenged.challenge->session_id);
    CHECK(challenged.challenge->session_id != 0);
    CHECK(challenged.challenge->session_id < 0x8000'0000u);
}

TEST_CASE("malformed requests: RC 4 addressed to the request, or nothing when unaddressable") {
    Fixture f;
    const std::string good = resolve(kHandle);

    SUBCASE("shorter than an envelope: dropped") {
        const auto a = f.ask(good.substr(0, 19));
        CHECK(a.disposition == hp::Disposition::drop);
        CHECK(a.message.empty());
        REQUIRE(a.malformed.has_value());
        CHECK(a.malformed->code == hp::WireErrc::truncated);
    }
    SUBCASE("a length mismatch (a bad datagram): RC 4 echoing the request id") {
        const auto a = f.ask(good + "junk");
        CHECK(a.disposition == hp::Disposition::reply);
        CHECK(a.response_code == hp::rc::kProtocolError);
        REQUIRE(a.malformed.has_value());
        const Parsed p = parse(a.message);
        CHECK(p.view.envelope.request_id == 0x01020304);
        CHECK(p.view.header.opcode == hp::opcode::kResolution);
        CHECK(error_message_of(a).find("length_mismatch") != std::string::npos);
    }
    SUBCASE("over 256 KiB declared: RC 4, then close") {
        std::string oversize = good;
        oversize[16] = '\x7f';
        const auto a = f.ask(oversize);
        CHECK(a.disposition == hp::Disposition::reply_and_close);
        CHECK(a.response_code == hp::rc::kProtocolError);
    }
    SUBCASE("a broken body: RC 4, connection kept") {
        RequestSpec spec;
        const auto a = f.ask(make_message(spec, std::string("\x00\x00\x00\x05"
                                                            "88",
                                                            6)));
        CHECK(a.disposition == hp::Disposition::reply);
        CHECK(a.response_code == hp::rc::kProtocolError);
    }
    SUBCASE("a TC (multi-datagram) request: RC 4 telling the client to use TCP") {
        std::string tc = good;
        tc[2] = static_cast<char>(tc[2] | hp::envflag::kTruncated);
        const auto a = f.ask(tc);
        CHECK(a.response_code == hp::rc::kProtocolError);
        CHECK(error_message_of(a).find("TCP") != std::string::npos);
    }
    SUBCASE("a message that is itself a response: never answered") {
        std::string response = good;
        response[hp::kEnvelopeSize + 7] = 1; // response code 1
        const auto a = f.ask(response);
        CHECK(a.disposition == hp::Disposition::drop);
        CHECK(a.message.empty());
        // Even when the rest of it is malformed.
        CHECK(f.ask(response + "junk").disposition == hp::Disposition::drop);
    }
    CHECK(f.lookups == 0);
}

TEST_CASE("a response that would exceed 256 KiB becomes RC 2") {
    std::vector<reg::HandleValue> values;
    for (int i = 1; i <= 5; ++i) {
        values.push_back(make_value(i, "BLOB", std::string(60'000, 'x'), "1110"));
    }
    Fixture f(values, "88.999/big");
    CHECK(f.ask(resolve("88.999/big", {1, 2, 3})).response_code == hp::rc::kSuccess);
    const auto a = f.ask(resolve("88.999/big"));
    CHECK(a.response_code == hp::rc::kError);
    CHECK(a.message.size() < 1024);
}

TEST_CASE("random and mutated requests never crash the responder and always frame correctly") {
    Fixture f = fixture_with_site();
    std::mt19937 rng(6);
    std::uniform_int_distribution<int> byte(0, 255);
    const std::vector<std::string> seeds = {resolve(kHandle), resolve(kHandle, {1, 2000}, {"URL."}),
                                            resolve("0.NA/88.999"),
                                            make_message({hp::opcode::kGetSiteInfo}, "")};
    for (int i = 0; i < 4000; ++i) {
        std::string request = seeds[static_cast<std::size_t>(i) % seeds.size()];
        const int edits = 1 + i % 4;
        for (int k = 0; k < edits; ++k) {
            request[static_cast<std::size_t>(byte(rng)) % request.size()] =
                static_cast<char>(byte(rng));
        }
        if (i % 7 == 0) {
            request.resize(static_cast<std::size_t>(byte(rng)) % request.size());
        }
        const auto a = f.ask(request);
        if (a.disposition == hp::Disposition::drop) {
            CHECK(a.message.empty());
            continue;
        }
        auto response = hp::decode_message(a.message);
        REQUIRE(response.ok());
        CHECK(response->header.response_code == a.response_code);
    }
}
