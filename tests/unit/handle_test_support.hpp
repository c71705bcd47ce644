// Shared fixtures for the Handle protocol tests: the golden vectors (tests/data/handle-2.11.md),
// the record and site they were captured from, and a responder wired to them.
#pragma once

#include "idnode/codec/hex.hpp"
#include "idnode/registry/identifier.hpp"
#include "idnode/registry/value.hpp"
#include "idnode/resolver/handle_protocol.hpp"
#include "idnode/resolver/handle_responder.hpp"

#include <cstdint>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#ifndef IDNODE_TEST_DATA_DIR
#error "IDNODE_TEST_DATA_DIR must name tests/data"
#endif

namespace handle_test {

namespace hp = idnode::resolver::handle;
namespace reg = idnode::registry;

inline std::string from_hex(std::string_view hex) {
    if (hex.size() % 2 != 0) {
        throw std::invalid_argument("odd number of hex digits");
    }
    std::string out;
    out.reserve(hex.size() / 2);
    for (std::size_t i = 0; i < hex.size(); i += 2) {
        const int high = idnode::codec::hex_digit(hex[i]);
        const int low = idnode::codec::hex_digit(hex[i + 1]);
        if (high < 0 || low < 0) {
            throw std::invalid_argument("not a hex digit");
        }
        out.push_back(static_cast<char>(high * 16 + low));
    }
    return out;
}

/// The big-endian u32 at `at` (a test failure when it is not there).
inline std::uint32_t be32(std::string_view bytes, std::size_t at) {
    if (at + 4 > bytes.size()) {
        throw std::out_of_range("be32 past the end");
    }
    const auto* u = reinterpret_cast<const unsigned char*>(bytes.data() + at);
    return (std::uint32_t{u[0]} << 24) | (std::uint32_t{u[1]} << 16) | (std::uint32_t{u[2]} << 8) |
           u[3];
}

inline void put_be32(std::string& bytes, std::size_t at, std::uint32_t v) {
    for (std::size_t i = 0; i < 4; ++i) {
        bytes[at + i] = static_cast<char>(v >> (24 - 8 * i));
    }
}

inline std::string to_hex(std::string_view bytes) {
    static constexpr char digits[] = "0123456789abcdef";
    std::string out;
    out.reserve(bytes.size() * 2);
    for (const char ch : bytes) {
        const auto c = static_cast<unsigned char>(ch);
        out.push_back(digits[c >> 4]);
        out.push_back(digits[c & 15]);
    }
    return out;
}

struct Vector {
    std::string request;
    std::string response;
};

/// Parses "## name (tcp)" sections with "request  <hex>" and "response <hex>" lines.
inline std::map<std::string, Vector> load_vectors() {
    const std::string path = std::string(IDNODE_TEST_DATA_DIR) + "/handle-2.11.md";
    std::ifstream in(path);
    if (!in) {
        throw std::runtime_error("cannot open " + path);
    }
    std::map<std::string, Vector> vectors;
    std::string line, name;
    while (std::getline(in, line)) {
        if (line.rfind("## ", 0) == 0) {
            name = line.substr(3);
            if (const auto space = name.find(' '); space != std::string::npos) {
                name.resize(space); // drop " (tcp)"
            }
            continue;
        }
        std::istringstream words(line);
        std::string key, hex;
        if (!(words >> key >> hex) || name.empty()) {
            continue;
        }
        if (key == "request") {
            vectors[name].request = from_hex(hex);
        } else if (key == "response") {
            vectors[name].response = from_hex(hex);
        }
    }
    return vectors;
}

/// One captured line of a flow: who sent it ("request"/"client" or "response"/"server") and the
/// bytes (one Handle message, or one datagram for UDP).
struct CapturedLine {
    std::string label;
    std::string bytes;
};

/// Parses every "## name (transport)" section of a vectors file in tests/data into its hex lines,
/// in order (a UDP reply of several datagrams is several lines).
inline std::map<std::string, std::vector<CapturedLine>> load_flows(const std::string& file) {
    const std::string path = std::string(IDNODE_TEST_DATA_DIR) + "/" + file;
    std::ifstream in(path);
    if (!in) {
        throw std::runtime_error("cannot open " + path);
    }
    std::map<std::string, std::vector<CapturedLine>> flows;
    std::string line, name;
    while (std::getline(in, line)) {
        if (line.rfind("## ", 0) == 0) {
            name = line.substr(3);
            if (const auto space = name.find(' '); space != std::string::npos) {
                name.resize(space);
            }
            continue;
        }
        std::istringstream words(line);
        std::string key, hex;
        if (name.empty() || !(words >> key >> hex)) {
            continue;
        }
        if (key == "request" || key == "response" || key == "client" || key == "server") {
            flows[name].push_back({key, from_hex(hex)});
        }
    }
    return flows;
}

inline constexpr std::string_view kHandle = "88.999/STEEL-H2024-001";
inline constexpr std::uint32_t kValueTimestamp = 0x6b033aed;
/// The captured responses carry expiration 0x6b03e3ae = the server's clock + 43200.
inline constexpr std::uint32_t kCaptureNow = 0x6b03e3ae - hp::kResponseLifetimeSeconds;

inline reg::HandleValue make_value(std::int32_t index, std::string type, std::string data,
                                   const char* permissions) {
    reg::HandleValue v;
    v.index = index;
    v.type = std::move(type);
    v.data = std::move(data);
    v.ttl = 86400;
    v.timestamp = kValueTimestamp;
    v.permissions = *reg::Permissions::parse(permissions);
    return v;
}

/// The record behind the vectors, as the vectors file lists it.
inline std::vector<reg::HandleValue> steel_values() {
    return {make_value(1, "URL", "https://steel.example.cn/c/H2024-001", "1110"),
            make_value(2000, "heat_no", "\xE7\x82\x89\xE5\x8F\xB7 H2024-001", "1110"),
            make_value(2001, "price", "4120.50", "1100")};
}

/// The captured server's site: see "get-site-info" in the vectors file. The RSA modulus is taken
/// from the capture (it is the server's key, not something we can derive).
inline hp::SiteInfo capture_site(std::string_view rsa_modulus) {
    hp::SiteInfo site;
    site.data_format_version = 1;
    site.protocol_major = 2;
    site.protocol_minor = 11;
    site.serial = 1;
    site.primary = true;
    site.hash_option = hp::hash_option::kByAll;
    site.attributes = {{"desc", "research test server"}};
    hp::SiteServer server;
    server.server_id = 1;
    server.address = hp::ipv4_site_address(127, 0, 0, 1);
    server.public_key = hp::encode_rsa_public_key(std::string("\x01\x00\x01", 3), rsa_modulus);
    server.interfaces = {{hp::service::kAdminAndQuery, hp::Transport::tcp, 2641},
                         {hp::service::kQuery, hp::Transport::udp, 2641},
                         {hp::service::kAdminAndQuery, hp::Transport::http, 18000}};
    site.servers.push_back(std::move(server));
    return site;
}

/// Extracts the RSA modulus magnitude from the captured get-site-info response.
inline std::string capture_rsa_modulus(const std::string& response) {
    // envelope + header, then the site record; its first server's key is
    // "RSA_PUB_KEY" flags exponent modulus 0.
    auto site = hp::decode_site_info(std::string_view(response).substr(
        hp::kEnvelopeSize + hp::kHeaderSize,
        response.size() - hp::kEnvelopeSize - hp::kHeaderSize - 4));
    if (!site || site->servers.empty()) {
        throw std::runtime_error("captured site info does not decode");
    }
    const std::string& key = site->servers[0].public_key;
    auto u32 = [&](std::size_t at) {
        return (std::uint32_t(static_cast<unsigned char>(key.at(at))) << 24) |
               (std::uint32_t(static_cast<unsigned char>(key.at(at + 1))) << 16) |
               (std::uint32_t(static_cast<unsigned char>(key.at(at + 2))) << 8) |
               std::uint32_t(static_cast<unsigned char>(key.at(at + 3)));
    };
    std::size_t at = 0;
    at += 4 + u32(at); // type
    at += 2;           // flags
    at += 4 + u32(at); // exponent
    const std::uint32_t modulus_length = u32(at);
    return key.substr(at + 4, modulus_length);
}

/// A deterministic RandomFill: 0x11, 0x12, ... so nonces and session ids are predictable in tests.
struct CountingRandom {
    std::uint8_t next = 0x11;
    void operator()(std::span<std::uint8_t> out) {
        for (auto& b : out) {
            b = next++;
        }
    }
};

/// A responder over one stored record with `homed` prefixes.
class Fixture {
public:
    explicit Fixture(std::vector<reg::HandleValue> values = steel_values(),
                     std::string spelling = std::string(kHandle))
        : record_(reg::encode_record(spelling, values)), key_(reg::fold_case(spelling)) {
        lookup_ = [this](const reg::Handle& handle, const hp::RecordVisitor& visit) -> reg::Status {
            ++lookups;
            if (lookup_failure) {
                return reg::Error{*lookup_failure, "injected failure"};
            }
            if (handle.key() != key_) {
                return reg::Error{reg::Errc::not_found, "no such identifier"};
            }
            auto view = reg::RecordView::parse(record_);
            if (!view) {
                return view.error();
            }
            visit(*view);
            return {};
        };
        homed_ = [this](std::string_view prefix_key) {
            for (const auto& p : homed) {
                if (p == prefix_key)
                    return true;
            }
            return false;
        };
        random_ = [this](std::span<std::uint8_t> out) { counter(out); };
    }

    hp::Answer ask(std::string_view request, std::uint32_t now = kCaptureNow) {
        const hp::RequestContext context{lookup_, homed_, random_, now};
        return hp::answer(request, config, context);
    }

    hp::ResponderConfig config;
    std::vector<std::string> homed{"88.999"};
    std::optional<reg::Errc> lookup_failure;
    int lookups = 0;
    CountingRandom counter;

private:
    std::string record_;
    std::string key_;
    hp::Lookup lookup_;
    hp::HomedPredicate homed_;
    hp::RandomFill random_;
};

struct RequestSpec {
    std::uint32_t opcode = hp::opcode::kResolution;
    std::uint32_t op_flags = 0;
    std::uint8_t major = 2;
    std::uint8_t minor = 11;
    std::uint8_t suggested_major = 2;
    std::uint8_t suggested_minor = 11;
    std::uint32_t request_id = 0x01020304;
    std::uint32_t session_id = 0;
    std::uint8_t recursion_count = 0;
};

inline std::string make_message(const RequestSpec& spec, std::string_view body,
                                std::string_view credential = {}) {
    hp::Envelope env;
    env.major = spec.major;
    env.minor = spec.minor;
    env.suggested_major = spec.suggested_major;
    env.suggested_minor = spec.suggested_minor;
    env.request_id = spec.request_id;
    env.session_id = spec.session_id;
    hp::Header header;
    header.opcode = spec.opcode;
    header.op_flags = spec.op_flags;
    header.recursion_count = spec.recursion_count;
    header.expiration = 0x6b03e200;
    std::string out;
    hp::encode_message(out, env, header, body, credential);
    return out;
}

inline std::string resolution_body(std::string_view handle, std::vector<std::int32_t> indices = {},
                                   std::vector<std::string_view> types = {}) {
    std::string body;
    hp::encode_resolution_request(body, handle, indices, types);
    return body;
}

inline std::string resolve(std::string_view handle, std::vector<std::int32_t> indices = {},
                           std::vector<std::string_view> types = {}, RequestSpec spec = {}) {
    return make_message(spec, resolution_body(handle, std::move(indices), std::move(types)));
}

/// A decoded response, for assertions.
struct Parsed {
    hp::MessageView view;
    std::shared_ptr<const std::string> bytes; // keeps the views alive wherever Parsed moves
};

inline Parsed parse(std::string bytes) {
    Parsed p;
    p.bytes = std::make_shared<const std::string>(std::move(bytes));
    auto view = hp::decode_message(*p.bytes);
    if (!view) {
        throw std::runtime_error("response does not decode: " + view.error().describe());
    }
    p.view = *view;
    return p;
}

} // namespace handle_test
