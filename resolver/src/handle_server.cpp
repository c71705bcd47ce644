// The Handle protocol server: binding, start and stop, statistics and the public face. The
// transports are in handle_server_tcp.cpp and handle_server_udp.cpp, what they share in
// handle_server_impl.hpp; see handle_server.hpp for the contract.
#include "handle_server_impl.hpp"

#include <boost/asio/post.hpp>

#include <stdexcept>
#include <system_error>

namespace idnode::resolver::handle {

using namespace detail;

// ---- Bind, start, stop --------------------------------------------------------------------------

void HandleServer::Impl::bind(const asio::ip::address& address) {
    const auto fail = [&](const boost::system::error_code& ec, const char* what,
                          std::uint16_t port) {
        throw std::system_error(ec.value(), std::system_category(),
                                std::string("handle server: cannot ") + what + " " +
                                    address.to_string() + ":" + std::to_string(port));
    };
    // With port 0 the kernel picks the TCP port; UDP must then get the same number, which another
    // program may hold: try a few.
    const int attempts = options_.port == 0 && options_.enable_tcp && options_.enable_udp ? 32 : 1;
    for (int attempt = 1;; ++attempt) {
        boost::system::error_code ec;
        std::uint16_t port = options_.port;
        if (options_.enable_tcp) {
            const tcp::endpoint endpoint(address, port);
            acceptor_.open(endpoint.protocol(), ec);
            if (!ec) {
                acceptor_.set_option(tcp::acceptor::reuse_address(true), ec);
            }
            if (!ec) {
                acceptor_.bind(endpoint, ec);
            }
            if (!ec) {
                acceptor_.listen(asio::socket_base::max_listen_connections, ec);
            }
            if (ec) {
                fail(ec, "listen on TCP", port);
            }
            port = acceptor_.local_endpoint().port();
        }
        if (options_.enable_udp) {
            const udp::endpoint endpoint(address, port);
            udp_socket_.open(endpoint.protocol(), ec);
            if (!ec) {
                udp_socket_.bind(endpoint, ec);
            }
            if (ec) {
                udp_socket_.close();
                if (attempt < attempts && ec == asio::error::address_in_use) {
                    acceptor_.close();
                    continue;
                }
                fail(ec, "bind UDP", port);
            }
            boost::system::error_code ignored;
            if (options_.udp_receive_buffer > 0) {
                udp_socket_.set_option(
                    asio::socket_base::receive_buffer_size(static_cast<int>(
                        std::min<std::size_t>(options_.udp_receive_buffer, std::size_t{1} << 30))),
                    ignored);
            }
            if (options_.udp_send_buffer > 0) {
                udp_socket_.set_option(
                    asio::socket_base::send_buffer_size(static_cast<int>(
                        std::min<std::size_t>(options_.udp_send_buffer, std::size_t{1} << 30))),
                    ignored);
            }
            udp_socket_.non_blocking(true, ignored);
            udp_port_ = udp_socket_.local_endpoint().port();
        }
        if (options_.enable_tcp) {
            tcp_port_ = acceptor_.local_endpoint().port();
        }
        return;
    }
}

void HandleServer::Impl::start() {
    if (started_.exchange(true)) {
        throw std::logic_error("HandleServer::start() called twice");
    }
    boost::system::error_code ec;
    const auto address = asio::ip::make_address(options_.address, ec);
    if (ec) {
        throw std::system_error(ec.value(), std::system_category(),
                                "handle server: invalid listen address '" + options_.address + "'");
    }
    bind(address);
    for (auto& server : options_.responder.site.servers) {
        for (auto& interface : server.interfaces) {
            if (interface.port != 0) {
                continue;
            }
            if (interface.transport == Transport::tcp) {
                interface.port = tcp_port_;
            } else if (interface.transport == Transport::udp) {
                interface.port = udp_port_;
            }
        }
    }
    auto self = shared_from_this();
    if (options_.enable_tcp) {
        asio::post(acceptor_.get_executor(), [self] { self->do_accept(); });
    }
    if (options_.enable_udp) {
        start_udp();
    }
}

void HandleServer::Impl::stop() {
    if (stopped_.exchange(true)) {
        return;
    }
    auto self = shared_from_this();
    asio::post(acceptor_.get_executor(), [self] {
        boost::system::error_code ignored;
        self->acceptor_.close(ignored);
        self->accept_retry_.cancel();
    });
    asio::post(udp_socket_.get_executor(), [self] {
        boost::system::error_code ignored;
        self->udp_socket_.close(ignored);
    });
    shutdown_connections();
}

HandleServerStats HandleServer::Impl::stats() const {
    HandleServerStats out;
    const auto load = [](const Counters::Counter& c) { return c.load(std::memory_order_relaxed); };
    for (std::size_t i = 0; i < kKnownOpcodes.size(); ++i) {
        if (const auto n = load(counters_.by_opcode[i])) {
            out.requests_by_opcode.push_back({kKnownOpcodes[i], n});
        }
    }
    for (std::size_t i = 0; i < kRcSlots; ++i) {
        if (const auto n = load(counters_.by_rc[i])) {
            out.responses_by_rc.push_back({static_cast<std::uint32_t>(i), n});
        }
    }
    out.udp_requests = load(counters_.udp_requests);
    out.udp_datagrams_sent = load(counters_.udp_datagrams_sent);
    out.udp_fragmented = load(counters_.udp_fragmented);
    out.udp_too_large = load(counters_.udp_too_large);
    out.udp_send_errors = load(counters_.udp_send_errors);
    out.udp_batches = load(counters_.udp_batches);
    out.tcp_requests = load(counters_.tcp_requests);
    out.tcp_batches = load(counters_.tcp_batches);
    out.dropped = load(counters_.dropped);
    out.malformed = load(counters_.malformed);
    out.rate_limited = load(counters_.rate_limited);
    out.rate_limited_udp = load(counters_.rate_limited_udp);
    out.internal_errors = load(counters_.internal_errors);
    out.tcp_connections_open = load(counters_.tcp_open);
    out.tcp_connections_accepted = load(counters_.tcp_accepted);
    out.tcp_connections_rejected = load(counters_.tcp_rejected);
    out.tcp_idle_closed = load(counters_.tcp_idle_closed);
    out.tcp_protocol_closed = load(counters_.tcp_protocol_closed);
    std::uint64_t cumulative = 0;
    for (std::size_t i = 0; i < kLatencyBoundsUs.size(); ++i) {
        out.latency_bounds.push_back(static_cast<double>(kLatencyBoundsUs[i]) / 1e6);
        cumulative += load(counters_.latency[i]);
        out.latency_counts.push_back(cumulative);
    }
    cumulative += load(counters_.latency[kLatencyBoundsUs.size()]);
    out.latency_counts.push_back(cumulative);
    out.latency_sum_seconds = static_cast<double>(load(counters_.latency_sum_ns)) / 1e9;
    return out;
}

// ---- Public face -------------------------------------------------------------------------------

HandleServer::HandleServer(asio::io_context& io, registry::Registry& registry,
                           HandleServerOptions options)
    : impl_(std::make_shared<Impl>(io, registry, std::move(options))) {}

HandleServer::~HandleServer() {
    impl_->stop();
}

void HandleServer::start() {
    impl_->start();
}

void HandleServer::stop() {
    impl_->stop();
}

std::uint16_t HandleServer::tcp_port() const noexcept {
    return impl_->tcp_port_;
}

std::uint16_t HandleServer::udp_port() const noexcept {
    return impl_->udp_port_;
}

HandleServerStats HandleServer::stats() const {
    return impl_->stats();
}

const ResponderConfig& HandleServer::responder_config() const noexcept {
    return impl_->options_.responder;
}

} // namespace idnode::resolver::handle
