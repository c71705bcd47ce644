// The Handle protocol over TCP: accepting (with the connection cap) and one Connection per
// client, which frames pipelined requests, answers them in order and writes all their replies
// with one write. See handle_server.hpp for the contract.
#include "handle_server_impl.hpp"
#include "handle_wire.hpp"
#include "idnode/node/policy.hpp"

#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>

#include <deque>

namespace idnode::resolver::handle {

using namespace detail;

// ---- TCP ---------------------------------------------------------------------------------------

class HandleServer::Impl::Connection : public std::enable_shared_from_this<Connection> {
public:
    Connection(std::shared_ptr<Impl> server, tcp::socket socket)
        : server_(std::move(server)), socket_(std::move(socket)), timer_(socket_.get_executor()),
          lookup_(server_->registry_, server_->homing_, server_->options_.responder.site,
                  [server = server_.get()] { return server->now_unix(); }) {
        in_.resize(kInitialBuffer);
    }

    void start() {
        if (server_->stopped_) {
            close(); // accepted while stop() ran: it may not have seen this connection
            return;
        }
        boost::system::error_code ec;
        socket_.set_option(tcp::no_delay(true), ec);
        const auto peer = socket_.remote_endpoint(ec);
        if (ec) {
            close();
            return;
        }
        peer_ = ip_key(peer.address());
        peer_text_ = peer.address().to_string();
        last_activity_ = SteadyClock::now();
        if (server_->options_.idle_timeout.count() > 0) {
            arm_idle_timer(last_activity_ + server_->options_.idle_timeout);
        }
        do_read();
    }

    /// Runs start() on the connection's strand.
    void start_on_strand(std::shared_ptr<Connection> self) {
        asio::post(socket_.get_executor(), [self = std::move(self)] { self->start(); });
    }

    /// Runs shutdown_by_server() on the connection's strand.
    void post_shutdown(std::shared_ptr<Connection> self) {
        asio::post(socket_.get_executor(),
                   [self = std::move(self)] { self->shutdown_by_server(); });
    }

    /// From stop(): close now, or after the reply being written.
    void shutdown_by_server() {
        if (closed_) {
            return;
        }
        if (writing_ || writes_in_flight_ > 0) {
            closing_ = true;
            return;
        }
        close();
    }

private:
    /// The read buffer starts small (idle connections are cheap), doubles up to kPipelineBuffer
    /// while reads fill it (pipelining clients), and grows beyond only for one large frame.
    static constexpr std::size_t kInitialBuffer = 4 * 1024;
    static constexpr std::size_t kPipelineBuffer = 64 * 1024;
    static constexpr std::size_t kMaxBuffer = kEnvelopeSize + kMaxMessageLength;
    /// How long a connection being closed by us still reads (and discards) what the peer sends.
    static constexpr std::chrono::seconds kLinger{2};
    /// Administrative writes one connection may have under way at once (pipelined creates).
    static constexpr std::size_t kMaxWritesInFlight = 64;

    void arm_idle_timer(SteadyClock::time_point deadline) {
        timer_.expires_at(deadline);
        timer_.async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
            self->on_idle_timer(ec);
        });
    }

    void on_idle_timer(const boost::system::error_code& ec) {
        if (ec || closed_) {
            return;
        }
        const auto deadline = last_activity_ + server_->options_.idle_timeout;
        if (SteadyClock::now() >= deadline) {
            if (!draining_) {
                Counters::add(server_->counters_.tcp_idle_closed);
            }
            close();
            return;
        }
        arm_idle_timer(deadline);
    }

    void do_read() {
        if (in_begin_ > 0) {
            // What is left is at most one partial frame: move it to the front.
            std::memmove(in_.data(), in_.data() + in_begin_, in_end_ - in_begin_);
            in_end_ -= in_begin_;
            in_begin_ = 0;
        }
        if (in_end_ == in_.size()) {
            // Only a partial frame is buffered; grow for the frame probe_frame announced.
            in_.resize(std::min(kMaxBuffer, std::max(in_.size() * 2, need_)));
        } else if (last_read_filled_ && in_.size() < kPipelineBuffer) {
            // The client sends faster than we read: read more at a time.
            in_.resize(in_.size() * 2);
        } else if (in_.size() > kPipelineBuffer && in_end_ <= kPipelineBuffer / 2 &&
                   need_ <= kPipelineBuffer) {
            // A large frame has passed: give the memory back.
            in_.resize(kPipelineBuffer);
            in_.shrink_to_fit();
        }
        reading_ = true;
        socket_.async_read_some(
            asio::buffer(in_.data() + in_end_, in_.size() - in_end_),
            [self = shared_from_this()](const boost::system::error_code& ec, std::size_t n) {
                self->on_read(ec, n);
            });
    }

    void on_read(const boost::system::error_code& ec, std::size_t n) {
        reading_ = false;
        if (ec) {
            close(); // EOF, reset, or cancelled by close()
            return;
        }
        if (draining_) {
            drained_ += n;
            if (drained_ > kMaxBuffer) {
                close();
                return;
            }
            in_begin_ = in_end_ = 0;
            do_read();
            return;
        }
        last_activity_ = SteadyClock::now();
        last_read_filled_ = in_end_ + n == in_.size();
        in_end_ += n;
        pump();
    }

    /// After every event (a read, a write, a write's reply): answers what is buffered and may be
    /// answered now, writes the replies that are ready (in request order), and reads more when
    /// there is nothing else to wait for.
    void pump() {
        // While a write is under way its buffer (out_) must not change: on_write pumps again.
        if (closed_ || draining_ || writing_) {
            return;
        }
        if (!closing_) {
            process();
        }
        while (!slots_.empty() && slots_.front().ready) {
            out_.append(slots_.front().message);
            slots_.pop_front();
            ++slots_base_;
        }
        if (!out_.empty()) {
            writing_ = true;
            asio::async_write(socket_, asio::buffer(out_),
                              [self = shared_from_this()](const boost::system::error_code& ec,
                                                          std::size_t) { self->on_write(ec); });
            return;
        }
        if (closing_) {
            if (writes_in_flight_ == 0) {
                finish();
            }
            return;
        }
        if (!reading_ && !blocked_) {
            do_read();
        }
    }

    /// Whether a request must wait for the writes under way on this connection: everything but
    /// another CREATE_HANDLE does (a later request may depend on an earlier write: ADD after
    /// CREATE, a RESOLUTION after a write, a login), and so does anything past
    /// kMaxWritesInFlight.
    bool must_wait(std::string_view request) const noexcept {
        if (writes_in_flight_ == 0) {
            return false;
        }
        return writes_in_flight_ >= kMaxWritesInFlight ||
               peek_opcode(request) != opcode::kCreateHandle;
    }

    /// Queues a reply behind the ones still being written by the registry (or straight into the
    /// output when there are none).
    void queue_reply(std::string message) {
        if (slots_.empty()) {
            out_.append(message);
        } else {
            slots_.push_back({std::move(message), true});
        }
    }

    /// Answers every complete frame buffered, in order; one write for all the replies.
    void process() {
        Impl& s = *server_;
        const std::uint32_t now = s.now_unix();
        RequestContext context{lookup_.lookup(), s.homed_, s.random_, now};
        PrivateReadPredicate may_read_private;
        if (login_.principal) {
            may_read_private = [this](std::string_view prefix_key) {
                return node::may_read_private(lookup_.snapshot(), *login_.principal, prefix_key);
            };
            context.may_read_private = &may_read_private;
        }
        batch_requests_ = 0;
        batch_answered_ = 0;
        blocked_ = false;
        while (!closing_) {
            const std::string_view buffered(in_.data() + in_begin_, in_end_ - in_begin_);
            const FrameProbe probe = probe_frame(buffered);
            if (probe.state == FrameProbe::State::need_more) {
                need_ = probe.size;
                break;
            }
            const std::string_view request = buffered.substr(0, probe.size);
            if (probe.state == FrameProbe::State::complete && must_wait(request)) {
                blocked_ = true; // taken up again when the writes under way are answered
                break;
            }
            in_begin_ += probe.size;
            ++batch_requests_;
            Counters::add(s.counters_.tcp_requests);
            Answer a;
            try {
                if (s.rate_limited(peer_, last_activity_)) {
                    a = refuse(request, rc::kServerTooBusy, kRateLimitedMessage,
                               s.options_.responder, now);
                    Counters::add(s.counters_.rate_limited);
                } else if (s.admin_ && is_for_admin(request)) {
                    auto step = s.admin_->handle(request, login_, context, peer_text_);
                    if (step.work) {
                        // A write: its reply takes its place in the order when the registry
                        // has committed it.
                        start_write(std::move(step.work));
                        ++batch_answered_;
                        continue;
                    }
                    a = std::move(step.answer);
                } else {
                    a = answer(request, s.options_.responder, context);
                    if (a.challenge && s.admin_) {
                        // The client may prove itself to read what it asked for.
                        s.admin_->remember_challenge(request, *a.challenge);
                    }
                }
            } catch (const std::exception&) {
                // Out of memory, or the registry cannot start a read transaction: this request
                // gets no answer, so the stream of replies cannot continue in order. Close after
                // what was answered.
                Counters::add(s.counters_.internal_errors);
                closing_ = true;
                break;
            }
            if (probe.state == FrameProbe::State::oversize) {
                // The rest of the stream cannot be framed: whatever was answered, close after it.
                a.disposition = a.disposition == Disposition::drop ? Disposition::drop
                                                                   : Disposition::reply_and_close;
                closing_ = true;
            }
            s.account(a, resolutions_);
            if (a.disposition == Disposition::drop) {
                continue;
            }
            queue_reply(std::move(a.message));
            ++batch_answered_;
            if (a.disposition == Disposition::reply_and_close) {
                Counters::add(s.counters_.tcp_protocol_closed);
                closing_ = true;
            }
        }
        lookup_.end_batch();
        s.flush(resolutions_);
        if (batch_requests_ > 0) {
            Counters::add(s.counters_.tcp_batches);
        }
    }

    /// The opcode of a framed request (0 when the header is cut short: answer() reports that).
    static std::uint32_t peek_opcode(std::string_view request) noexcept {
        return request.size() >= kEnvelopeSize + 4 ? wire::load_u32(request.data() + kEnvelopeSize)
                                                   : 0;
    }

    /// Runs an administrative write; its reply comes back on this connection's strand and
    /// fills the slot kept for it.
    void start_write(std::function<void(std::function<void(Answer)>)> work) {
        const std::uint64_t slot = slots_base_ + slots_.size();
        slots_.push_back({std::string(), false});
        ++writes_in_flight_;
        work([self = shared_from_this(), slot](Answer reply) {
            asio::post(self->socket_.get_executor(),
                       [self, slot, reply = std::move(reply)]() mutable {
                           self->on_admin_reply(slot, std::move(reply));
                       });
        });
    }

    void on_admin_reply(std::uint64_t slot, Answer reply) {
        --writes_in_flight_;
        if (closed_) {
            return;
        }
        node::ResolutionTally none;
        server_->account(reply, none);
        Slot& filled = slots_.at(static_cast<std::size_t>(slot - slots_base_));
        filled.message =
            reply.disposition == Disposition::drop ? std::string() : std::move(reply.message);
        filled.ready = true;
        pump();
    }

    void on_write(const boost::system::error_code& ec) {
        writing_ = false;
        if (ec) {
            close();
            return;
        }
        const auto now = SteadyClock::now();
        server_->counters_.record_latency(batch_answered_, now - last_activity_);
        last_activity_ = now;
        out_.clear();
        if (out_.capacity() > kMaxBuffer) {
            std::string().swap(out_); // do not keep a huge buffer for an idle connection
        }
        pump();
    }

    /// Ends the connection after its last reply: stop sending, read (and discard) what the peer
    /// still sends for a moment so closing does not reset the connection before the peer has
    /// read our reply, then close.
    void finish() {
        if (closed_) {
            return;
        }
        if (server_->stopped_) {
            close();
            return;
        }
        boost::system::error_code ignored;
        socket_.shutdown(tcp::socket::shutdown_send, ignored);
        draining_ = true;
        in_begin_ = in_end_ = 0;
        const auto idle = server_->options_.idle_timeout;
        const auto linger = idle.count() > 0 ? std::min<SteadyClock::duration>(idle, kLinger)
                                             : SteadyClock::duration(kLinger);
        // The idle timer ends the lingering: its deadline is last_activity_ + idle_timeout.
        last_activity_ = SteadyClock::now() - idle + linger;
        arm_idle_timer(last_activity_ + idle);
        do_read();
    }

    void close() {
        if (closed_) {
            return;
        }
        closed_ = true;
        boost::system::error_code ignored;
        socket_.shutdown(tcp::socket::shutdown_both, ignored);
        socket_.close(ignored);
        timer_.cancel();
        Counters::add(server_->counters_.tcp_open, static_cast<std::uint64_t>(-1));
        server_->forget(this);
    }

    std::shared_ptr<Impl> server_;
    tcp::socket socket_;
    asio::steady_timer timer_;
    BatchLookup lookup_;
    IpKey peer_{};
    std::string peer_text_; // the client's address, for the failed-login throttle
    ConnectionLogin login_; // set by LOGIN_ID_SYSTEM
    std::vector<char> in_;
    std::size_t in_begin_ = 0;
    std::size_t in_end_ = 0;
    std::size_t need_ = kEnvelopeSize;
    std::string out_;
    std::size_t batch_requests_ = 0;    // frames in the batch being answered
    std::size_t batch_answered_ = 0;    // ... of which got a reply
    node::ResolutionTally resolutions_; // this batch's, for resolutions_today
    SteadyClock::time_point last_activity_{};
    bool last_read_filled_ = false;
    bool writing_ = false;
    bool reading_ = false;
    /// A buffered request waits for the writes under way (must_wait).
    bool blocked_ = false;
    /// Replies in request order from the first administrative write not yet answered: a write's
    /// slot is filled when the registry has committed it; replies behind it wait in line.
    struct Slot {
        std::string message;
        bool ready = false;
    };
    std::deque<Slot> slots_;
    std::uint64_t slots_base_ = 0; // the number of the slot at slots_.front()
    std::size_t writes_in_flight_ = 0;
    bool closing_ = false;
    bool draining_ = false;
    bool closed_ = false;
    std::size_t drained_ = 0;
};

// ---- Accept, shut down -------------------------------------------------------------------------

void HandleServer::Impl::do_accept() {
    if (stopped_) {
        return;
    }
    acceptor_.async_accept(
        asio::make_strand(io_),
        [self = shared_from_this()](const boost::system::error_code& ec, tcp::socket socket) {
            self->on_accept(ec, std::move(socket));
        });
}

void HandleServer::Impl::on_accept(const boost::system::error_code& ec, tcp::socket socket) {
    if (stopped_ || ec == asio::error::operation_aborted) {
        return;
    }
    if (ec) {
        // Out of descriptors or memory: accepting again at once would spin. Try again shortly.
        accept_retry_.expires_after(std::chrono::milliseconds(100));
        accept_retry_.async_wait([self = shared_from_this()](const boost::system::error_code& e) {
            if (!e) {
                self->do_accept();
            }
        });
        return;
    }
    Counters::add(counters_.tcp_accepted);
    if (options_.max_connections > 0 &&
        counters_.tcp_open.load(std::memory_order_relaxed) >= options_.max_connections) {
        Counters::add(counters_.tcp_rejected);
        boost::system::error_code ignored;
        socket.close(ignored);
    } else {
        Counters::add(counters_.tcp_open);
        auto connection = std::make_shared<Connection>(shared_from_this(), std::move(socket));
        {
            std::lock_guard lock(connections_mutex_);
            connections_.emplace(connection.get(), connection);
        }
        // The socket already runs on its own strand: start there.
        connection->start_on_strand(connection);
    }
    do_accept();
}

void HandleServer::Impl::shutdown_connections() {
    std::vector<std::shared_ptr<Connection>> open;
    {
        std::lock_guard lock(connections_mutex_);
        for (auto& [raw, weak] : connections_) {
            if (auto c = weak.lock()) {
                open.push_back(std::move(c));
            }
        }
    }
    for (auto& c : open) {
        c->post_shutdown(c);
    }
}

} // namespace idnode::resolver::handle
