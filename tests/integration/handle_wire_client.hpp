// A small blocking client of the binary Handle protocol for the integration tests, written from
// the protocol (not from any SDK): big-endian helpers, one TCP connection that frames replies,
// UDP exchanges that collect every fragment, and reassembly as HANDLE.NET's client does it
// (fragment i at i x 492 bytes).
#pragma once

#include "idnode/resolver/handle_protocol.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace idnode::test::handle_wire {

namespace hp = idnode::resolver::handle;

inline std::string unhex(std::string_view hex) {
    std::string out;
    for (std::size_t i = 0; i + 1 < hex.size(); i += 2)
        out.push_back(static_cast<char>(std::stoi(std::string(hex.substr(i, 2)), nullptr, 16)));
    return out;
}

inline std::uint32_t be32(std::string_view bytes, std::size_t at) {
    REQUIRE(at + 4 <= bytes.size());
    const auto* u = reinterpret_cast<const unsigned char*>(bytes.data() + at);
    return (std::uint32_t{u[0]} << 24) | (std::uint32_t{u[1]} << 16) | (std::uint32_t{u[2]} << 8) |
           u[3];
}

inline void put_be32(std::string& bytes, std::size_t at, std::uint32_t v) {
    for (std::size_t i = 0; i < 4; ++i)
        bytes[at + i] = static_cast<char>(v >> (24 - 8 * i));
}

inline std::uint32_t rc_of(std::string_view message) {
    return be32(message, hp::kEnvelopeSize + 4);
}
inline std::uint32_t opcode_of(std::string_view message) {
    return be32(message, hp::kEnvelopeSize);
}
inline std::string_view body_of(std::string_view message) {
    return message.substr(hp::kEnvelopeSize + hp::kHeaderSize,
                          be32(message, hp::kEnvelopeSize + 20));
}

inline sockaddr_in loopback(std::uint16_t port) {
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_port = htons(port);
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return to;
}

/// A blocking Handle-protocol TCP connection to 127.0.0.1.
class HandleConnection {
public:
    explicit HandleConnection(std::uint16_t port) {
        fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
        const sockaddr_in to = loopback(port);
        REQUIRE(::connect(fd_, reinterpret_cast<const sockaddr*>(&to), sizeof to) == 0);
        timeval tv{5, 0};
        ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    }
    ~HandleConnection() { ::close(fd_); }
    HandleConnection(const HandleConnection&) = delete;
    HandleConnection& operator=(const HandleConnection&) = delete;

    void send(std::string_view message) {
        REQUIRE(::send(fd_, message.data(), message.size(), MSG_NOSIGNAL) ==
                static_cast<ssize_t>(message.size()));
    }
    /// The next whole reply.
    std::string receive() {
        while (hp::probe_frame(buffer_).state != hp::FrameProbe::State::complete) {
            char chunk[4096];
            const ssize_t got = ::recv(fd_, chunk, sizeof chunk, 0);
            REQUIRE(got > 0);
            buffer_.append(chunk, static_cast<std::size_t>(got));
        }
        const std::size_t size = hp::probe_frame(buffer_).size;
        std::string message = buffer_.substr(0, size);
        buffer_.erase(0, size);
        return message;
    }
    std::string exchange(std::string_view message) {
        send(message);
        return receive();
    }

private:
    int fd_ = -1;
    std::string buffer_;
};

/// One request and its reply on a fresh TCP connection (as HANDLE.NET's client sends each
/// message).
inline std::string exchange_tcp(std::uint16_t port, std::string_view request) {
    HandleConnection c(port);
    return c.exchange(request);
}

/// Every datagram answering one UDP request, until none comes for 300 ms (3 s for the first).
inline std::vector<std::string> exchange_udp(std::uint16_t port, std::string_view request) {
    const int fd = ::socket(AF_INET, SOCK_DGRAM, 0);
    const sockaddr_in to = loopback(port);
    ::sendto(fd, request.data(), request.size(), 0, reinterpret_cast<const sockaddr*>(&to),
             sizeof to);
    std::vector<std::string> datagrams;
    for (;;) {
        timeval tv{datagrams.empty() ? 3 : 0, datagrams.empty() ? 0 : 300'000};
        ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        char buf[2048];
        const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
        if (n <= 0)
            break;
        datagrams.emplace_back(buf, static_cast<std::size_t>(n));
    }
    ::close(fd);
    return datagrams;
}

/// A multi-datagram reply put together as HANDLE.NET's client does (fragment i at i x 492), with
/// the envelope of an unfragmented message.
inline std::string reassemble(const std::vector<std::string>& datagrams) {
    REQUIRE_FALSE(datagrams.empty());
    const std::uint32_t length = be32(datagrams[0], 16);
    std::string message(length, '\0');
    for (const auto& d : datagrams) {
        const std::size_t at = be32(d, 12) * (hp::kMaxUdpDatagram - hp::kEnvelopeSize);
        REQUIRE(at + d.size() - hp::kEnvelopeSize <= length);
        std::copy(d.begin() + hp::kEnvelopeSize, d.end(),
                  message.begin() + static_cast<std::ptrdiff_t>(at));
    }
    std::string envelope = datagrams[0].substr(0, hp::kEnvelopeSize);
    envelope[2] = static_cast<char>(envelope[2] & ~hp::envflag::kTruncated);
    put_be32(envelope, 12, 0);
    return envelope + message;
}

} // namespace idnode::test::handle_wire
