// libFuzzer entry point for the Handle protocol decoders and the pure responder.
//
// Built two ways:
// - always, with replay_main.cpp, as `handle_protocol_fuzz_replay`: ctest feeds it the seed corpus
//   (tests/fuzz/corpus/handle_protocol) under the normal compiler and sanitizer presets;
// - with clang and -DIDNODE_FUZZ=ON as the real fuzzer `handle_protocol_fuzz` (see
//   tests/CMakeLists.txt): `handle_protocol_fuzz tests/fuzz/corpus/handle_protocol`.
//
// Besides "no crash, no over-read" (the sanitizers' job) it checks the responder's promises: an
// answer is either nothing or one well-formed message within the size cap, and the UDP form of it
// never exceeds 512 bytes per datagram.
#include "idnode/registry/identifier.hpp"
#include "idnode/registry/value.hpp"
#include "idnode/resolver/handle_auth.hpp"
#include "idnode/resolver/handle_protocol.hpp"
#include "idnode/resolver/handle_responder.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

namespace {

namespace hp = idnode::resolver::handle;
namespace reg = idnode::registry;

void require(bool condition) {
    if (!condition) {
        std::abort();
    }
}

struct World {
    std::string record;
    hp::ResponderConfig config;
    hp::Lookup lookup;
    hp::HomedPredicate homed;
    hp::RandomFill random;

    World() {
        reg::HandleValue url;
        url.index = 1;
        url.type = "URL";
        url.data = "https://steel.example.cn/c/H2024-001";
        reg::HandleValue secret = url;
        secret.index = 2001;
        secret.type = "price";
        secret.data = "4120.50";
        secret.permissions.bits = reg::Permissions::kAdminRead | reg::Permissions::kAdminWrite;
        const reg::HandleValue values[] = {url, secret};
        record = reg::encode_record("88.999/STEEL-H2024-001", values);

        hp::SiteServer server;
        server.address = hp::ipv4_site_address(127, 0, 0, 1);
        server.public_key = hp::encode_rsa_public_key(std::string("\x01\x00\x01", 3), "\xb7\xf4");
        server.interfaces = {{hp::service::kAdminAndQuery, hp::Transport::tcp, 2641},
                             {hp::service::kQuery, hp::Transport::udp, 2641}};
        config.site.attributes = {{"desc", "fuzz"}};
        config.site.servers.push_back(server);

        lookup = [this](const reg::Handle& handle, const hp::RecordVisitor& visit) -> reg::Status {
            if (handle.key() != "88.999/STEEL-H2024-001") {
                return reg::Error{reg::Errc::not_found, ""};
            }
            auto view = reg::RecordView::parse(record);
            if (!view) {
                return view.error();
            }
            visit(*view);
            return {};
        };
        homed = [](std::string_view prefix) { return prefix == "88.999"; };
        random = [](std::span<std::uint8_t> out) {
            for (auto& b : out) {
                b = 0x5A;
            }
        };
    }
};

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static const World world; // immutable after construction
    const std::string_view input(reinterpret_cast<const char*>(data), size);

    // Every decoder on the raw bytes.
    if (auto view = hp::decode_message(input)) {
        (void)hp::decode_resolution_request(view->body);
        (void)hp::decode_site_info_request(view->body);
        (void)hp::decode_error_body(view->body);
    }
    (void)hp::decode_resolution_request(input);
    (void)hp::decode_site_info(input);
    (void)hp::decode_credential(input);
    (void)hp::decode_request_digest(input);
    (void)hp::decode_resolution_response(input);
    // Challenge answers and their proofs, as the administration path reads them (a proof with a
    // costly PBKDF2 count is refused before any work; see kMaxPbkdf2Iterations).
    if (auto answer = hp::decode_challenge_answer(input)) {
        const std::string nonce(16, 'n');
        const std::string digest(32, 'd');
        (void)hp::verify_secret_key_proof("fuzz", nonce, digest, answer->signed_response);
    }
    (void)hp::verify_secret_key_proof("fuzz", "n", "d", input);
    const auto frame = hp::probe_frame(input);
    require(frame.size >= hp::kEnvelopeSize);

    // The responder, as a server would call it.
    const hp::RequestContext context{world.lookup, world.homed, world.random, 1'800'000'000u};
    const hp::Answer answer = hp::answer(input, world.config, context);
    if (answer.disposition == hp::Disposition::drop) {
        require(answer.message.empty());
        return 0;
    }
    auto response = hp::decode_message(answer.message);
    require(response.ok());
    require(response->header.response_code == answer.response_code);
    require(response->envelope.message_length <= hp::kMaxMessageLength);
    const hp::UdpReplyPolicy policy;
    std::size_t sent = 0;
    for (const auto& datagram : hp::udp_datagrams(answer.message, policy)) {
        require(datagram.size() <= hp::kMaxUdpDatagram);
        sent += datagram.size();
    }
    require(sent <= std::max(policy.max_reply_bytes, answer.message.size()));
    return 0;
}
