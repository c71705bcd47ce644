// The Handle protocol over UDP: datagrams read and answered in batches (recvmmsg / sendmmsg),
// one reply per request, split into RFC 3652 fragments when it is larger than a datagram. See
// handle_server.hpp for the contract.
#include "handle_server_impl.hpp"
#include "handle_wire.hpp"

#include <boost/asio/post.hpp>

#include <cerrno>

namespace idnode::resolver::handle {

using namespace detail;

// ---- UDP ---------------------------------------------------------------------------------------

class HandleServer::Impl::UdpService : public std::enable_shared_from_this<UdpService> {
public:
    explicit UdpService(std::shared_ptr<Impl> server)
        : server_(std::move(server)), socket_(server_->udp_socket_),
          batch_(server_->options_.udp_batch),
          lookup_(server_->registry_, server_->homing_, server_->options_.responder.site,
                  [server = server_.get()] { return server->now_unix(); }) {
        rx_buffer_.resize(batch_ * kSlot);
        rx_msgs_.resize(batch_);
        rx_iov_.resize(batch_);
        peers_.resize(batch_);
        for (std::size_t i = 0; i < batch_; ++i) {
            rx_iov_[i] = {rx_buffer_.data() + i * kSlot, kSlot};
        }
    }

    void start() { wait_readable(); }

private:
    /// Largest request read whole; a longer datagram is answered from its first kSlot bytes (it
    /// then fails to decode: RC 4). Requests are small; a client with more to say uses TCP.
    static constexpr std::size_t kSlot = 8 * 1024;
    /// Batches handled before yielding to other work on the io_context.
    static constexpr int kBatchesPerTurn = 16;

    void wait_readable() {
        socket_.async_wait(udp::socket::wait_read,
                           [self = shared_from_this()](const boost::system::error_code& ec) {
                               if (!ec) {
                                   self->on_readable();
                               }
                           });
    }

    void wait_writable() {
        socket_.async_wait(udp::socket::wait_write,
                           [self = shared_from_this()](const boost::system::error_code& ec) {
                               if (!ec) {
                                   self->resume_send();
                               }
                           });
    }

    void on_readable() {
        for (int turn = 0; turn < kBatchesPerTurn; ++turn) {
            const int n = receive();
            if (n <= 0) {
                wait_readable();
                return;
            }
            answer_batch(static_cast<std::size_t>(n));
            if (!send()) {
                wait_writable(); // socket buffer full: finish sending before reading more
                return;
            }
        }
        // Still busy: let other handlers run, then carry on.
        asio::post(socket_.get_executor(), [self = shared_from_this()] { self->on_readable(); });
    }

    void resume_send() {
        if (!send()) {
            wait_writable();
            return;
        }
        on_readable();
    }

    /// Reads up to batch_ datagrams without blocking; 0 when none is waiting (or on error).
    int receive() {
        for (std::size_t i = 0; i < batch_; ++i) {
            auto& h = rx_msgs_[i].msg_hdr;
            h = {};
            h.msg_name = &peers_[i];
            h.msg_namelen = sizeof(sockaddr_storage);
            h.msg_iov = &rx_iov_[i];
            h.msg_iovlen = 1;
            rx_msgs_[i].msg_len = 0;
        }
        const int fd = socket_.native_handle();
        int n;
        do {
            n = ::recvmmsg(fd, rx_msgs_.data(), static_cast<unsigned>(batch_), MSG_DONTWAIT,
                           nullptr);
        } while (n < 0 && errno == EINTR);
        received_at_ = SteadyClock::now();
        return n < 0 ? 0 : n;
    }

    void answer_batch(std::size_t n) {
        Impl& s = *server_;
        const std::uint32_t now = s.now_unix();
        const RequestContext context{lookup_.lookup(), s.homed_, s.random_, now};
        const UdpReplyPolicy& policy = s.options_.udp_policy;
        out_count_ = 0;
        out_sent_ = 0;
        Counters::add(s.counters_.udp_requests, n);
        Counters::add(s.counters_.udp_batches);
        batch_answered_ = 0;
        for (std::size_t i = 0; i < n; ++i) {
            const std::size_t length = std::min<std::size_t>(rx_msgs_[i].msg_len, kSlot);
            const std::string_view request(rx_buffer_.data() + i * kSlot, length);
            if (s.limiter_ && s.rate_limited(ip_key(peers_[i]), received_at_)) {
                Counters::add(s.counters_.rate_limited);
                Counters::add(s.counters_.rate_limited_udp);
                continue;
            }
            Answer a;
            try {
                const bool admin = s.admin_ && is_for_admin(request);
                a = admin ? s.admin_->udp_answer(request, context)
                          : answer(request, s.options_.responder, context);
            } catch (const std::exception&) {
                // Out of memory, or no read transaction to be had: no answer to this one.
                Counters::add(s.counters_.internal_errors);
                lookup_.end_batch();
                continue;
            }
            s.account(a, resolutions_);
            if (a.disposition == Disposition::drop) {
                continue;
            }
            ++batch_answered_;
            if (a.message.size() <= policy.max_datagram) {
                push(std::move(a.message), i);
                continue;
            }
            auto datagrams = udp_datagrams(a.message, policy);
            if (datagrams.empty()) {
                // Over handle.udp_max_reply_bytes: a short RC 2 sends the client to TCP at once.
                Counters::add(s.counters_.udp_too_large);
                Answer refusal =
                    refuse(request, rc::kError,
                           udp_too_large_message(a.message.size(), policy.max_reply_bytes),
                           s.options_.responder, now);
                if (refusal.disposition != Disposition::drop) {
                    push(std::move(refusal.message), i);
                }
                continue;
            }
            Counters::add(s.counters_.udp_fragmented);
            for (auto& datagram : datagrams) {
                push(std::move(datagram), i);
            }
        }
        lookup_.end_batch();
        s.flush(resolutions_);
    }

    void push(std::string&& datagram, std::size_t peer) {
        if (out_count_ == out_.size()) {
            out_.emplace_back();
            out_peer_.emplace_back();
        }
        out_[out_count_] = std::move(datagram);
        out_peer_[out_count_] = peer;
        ++out_count_;
    }

    /// Sends the replies not sent yet. False if the socket buffer is full (wait, then resume).
    bool send() {
        if (out_sent_ < out_count_) {
            tx_msgs_.resize(std::max(tx_msgs_.size(), out_count_));
            tx_iov_.resize(std::max(tx_iov_.size(), out_count_));
            for (std::size_t i = out_sent_; i < out_count_; ++i) {
                tx_iov_[i] = {out_[i].data(), out_[i].size()};
                auto& h = tx_msgs_[i].msg_hdr;
                h = {};
                const auto& peer = peers_[out_peer_[i]];
                h.msg_name = const_cast<sockaddr_storage*>(&peer);
                h.msg_namelen =
                    peer.ss_family == AF_INET6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in);
                h.msg_iov = &tx_iov_[i];
                h.msg_iovlen = 1;
            }
        }
        const int fd = socket_.native_handle();
        while (out_sent_ < out_count_) {
            const int n = ::sendmmsg(fd, tx_msgs_.data() + out_sent_,
                                     static_cast<unsigned>(out_count_ - out_sent_), MSG_DONTWAIT);
            if (n > 0) {
                out_sent_ += static_cast<std::size_t>(n);
                Counters::add(server_->counters_.udp_datagrams_sent, static_cast<std::uint64_t>(n));
                continue;
            }
            if (n < 0 && errno == EINTR) {
                continue;
            }
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS)) {
                return false;
            }
            // This datagram cannot be sent (e.g. an unreachable or invalid address): skip it.
            Counters::add(server_->counters_.udp_send_errors);
            ++out_sent_;
        }
        server_->counters_.record_latency(batch_answered_, SteadyClock::now() - received_at_);
        batch_answered_ = 0;
        for (std::size_t i = 0; i < out_count_; ++i) {
            out_[i].clear();
        }
        out_count_ = out_sent_ = 0;
        return true;
    }

    std::shared_ptr<Impl> server_;
    udp::socket& socket_;
    std::size_t batch_;
    BatchLookup lookup_;
    std::vector<char> rx_buffer_;
    std::vector<mmsghdr> rx_msgs_;
    std::vector<iovec> rx_iov_;
    std::vector<sockaddr_storage> peers_;
    SteadyClock::time_point received_at_{};
    std::size_t batch_answered_ = 0;
    node::ResolutionTally resolutions_; // this batch's, for resolutions_today
    std::vector<std::string> out_;
    std::vector<std::size_t> out_peer_;
    std::size_t out_count_ = 0;
    std::size_t out_sent_ = 0;
    std::vector<mmsghdr> tx_msgs_;
    std::vector<iovec> tx_iov_;
};

void HandleServer::Impl::start_udp() {
    auto service = std::make_shared<UdpService>(shared_from_this());
    asio::post(udp_socket_.get_executor(), [service] { service->start(); });
}

} // namespace idnode::resolver::handle
