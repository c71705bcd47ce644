#include "idnode/resolver/server.hpp"

#include "server_core.hpp"

#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>

#include <spdlog/logger.h>

#include <csignal>
#include <thread>

namespace idnode::resolver {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using error_code = boost::system::error_code;

namespace {

constexpr std::chrono::seconds kDrainTimeout{10};
constexpr std::chrono::milliseconds kDrainPoll{10};
constexpr std::chrono::milliseconds kAcceptRetry{100};
constexpr std::chrono::seconds kHousekeeping{1};

std::shared_ptr<detail::ssl::context> startup_tls(const NodeConfig& config) {
    try {
        return detail::make_tls_context(config.https);
    } catch (const std::exception& e) {
        throw StartupError(e.what());
    }
}

void listen(tcp::acceptor& acceptor, const HostPort& where, const char* key) {
    error_code ec;
    const auto address = asio::ip::make_address(where.host, ec);
    if (ec)
        throw StartupError(std::string("cannot listen on ") + key + " " + where.to_string() + ": " +
                           ec.message());
    const tcp::endpoint endpoint(address, where.port);
    acceptor.open(endpoint.protocol(), ec);
    if (!ec)
        acceptor.set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec)
        acceptor.bind(endpoint, ec);
    if (!ec)
        acceptor.listen(asio::socket_base::max_listen_connections, ec);
    if (ec)
        throw StartupError(std::string("cannot listen on ") + key + " " + where.to_string() + ": " +
                           ec.message());
}

HostPort bound(const tcp::acceptor& acceptor) {
    error_code ec;
    const auto endpoint = acceptor.local_endpoint(ec);
    if (ec)
        return {};
    return HostPort{endpoint.address().to_string(), endpoint.port()};
}

} // namespace

void check_tls_files(const NodeConfig& config) {
    (void)startup_tls(config);
}

class Server::Impl {
public:
    Impl(const NodeConfig& config, Dispatch dispatch, MetricsRegistry& metrics, Logging& logging)
        : core_(config, std::move(dispatch), metrics, logging, startup_tls(config)), ioc_(1),
          https_acceptor_(asio::make_strand(ioc_)), ops_acceptor_(asio::make_strand(ioc_)),
          signals_(ioc_), housekeeping_(ioc_), drain_timer_(ioc_), accept_retry_(ioc_) {
        // One io_context per I/O thread (each run by exactly one thread): a connection lives on
        // one of them, so its handlers are serialised without a strand and without locking.
        for (unsigned i = 1; i < config.effective_threads(); ++i) {
            workers_.push_back(std::make_unique<asio::io_context>(1));
            guards_.emplace_back(asio::make_work_guard(*workers_.back()));
        }
        listen(https_acceptor_, config.https.listen, "https.listen");
        listen(ops_acceptor_, config.ops.listen, "ops.listen");
        https_endpoint_ = bound(https_acceptor_);
        ops_endpoint_ = bound(ops_acceptor_);
        // Installed now, not in run(): a signal that arrives between startup and run() must be
        // handled, not kill the process with the default action.
        signals_.add(SIGTERM);
        signals_.add(SIGINT);
        signals_.add(SIGHUP);
    }

    ~Impl() {
        error_code ignored;
        https_acceptor_.close(ignored);
        ops_acceptor_.close(ignored);
        ioc_.stop();
        for (auto& w : workers_)
            w->stop();
        // Members are destroyed in reverse order: timers and acceptors, then the io_context
        // (which destroys pending handlers and with them the sessions), then core_.
    }

    HostPort https_endpoint() const { return https_endpoint_; }
    asio::io_context& ioc() noexcept { return ioc_; }
    void add_stop_hook(std::function<void()> hook) { stop_hooks_.push_back(std::move(hook)); }
    void add_readiness_check(std::function<std::string()> reason) {
        core_.readiness_checks.push_back(std::move(reason));
    }
    void set_stream_dispatch(StreamDispatch d) { core_.stream_dispatch = std::move(d); }
    void set_body_limit_lookup(BodyLimitLookup l) { core_.body_limit_lookup = std::move(l); }
    HostPort ops_endpoint() const { return ops_endpoint_; }

    void run() {
        wait_for_signal();
        accept_https();
        accept_ops();
        housekeeping();
        core_.ready.store(true);
        core_.metrics.ready.set(1);
        const unsigned threads = core_.config.effective_threads();
        core_.logging.app().info("serving https={} ops={} threads={}", https_endpoint_.to_string(),
                                 ops_endpoint_.to_string(), threads);
        std::vector<std::thread> pool;
        pool.reserve(threads - 1);
        for (auto& w : workers_)
            pool.emplace_back([this, ioc = w.get()] { run_loop(*ioc); });
        run_loop(ioc_);
        for (auto& t : pool)
            t.join();
        core_.logging.app().info("stopped");
    }

    void request_stop() {
        asio::post(ioc_, [this] { begin_stop(); });
    }

    bool reload_certificate() {
        try {
            core_.tls.set(detail::make_tls_context(core_.config.https));
        } catch (const std::exception& e) {
            core_.metrics.cert_reloads.with({"failed"}).inc();
            core_.logging.app().error("certificate reload failed, keeping the current one: {}",
                                      e.what());
            return false;
        }
        core_.metrics.cert_reloads.with({"ok"}).inc();
        core_.logging.app().info("certificate reloaded from {}", core_.config.https.cert.string());
        return true;
    }

private:
    void run_loop(asio::io_context& ioc) {
        for (;;) {
            try {
                ioc.run();
                return;
            } catch (const std::exception& e) {
                // A handler broke an invariant; keep the other connections alive.
                core_.logging.app().critical("unexpected exception on an I/O thread: {}", e.what());
            }
        }
    }

    void wait_for_signal() {
        signals_.async_wait([this](error_code ec, int signal) {
            if (ec)
                return;
            if (signal == SIGHUP) {
                reload_certificate();
            } else if (stopping_) {
                core_.logging.app().warn("second stop signal: closing remaining connections");
                finish_stop();
                return;
            } else {
                core_.logging.app().info("signal {}: stopping gracefully", signal);
                begin_stop();
            }
            wait_for_signal();
        });
    }

    void accept_https() {
        // Round robin over the I/O threads' io_contexts (the first is ioc_ itself).
        const std::size_t pick = next_worker_++ % (workers_.size() + 1);
        const auto executor = pick == 0 ? ioc_.get_executor() : workers_[pick - 1]->get_executor();
        https_acceptor_.async_accept(executor, [this](error_code ec, tcp::socket socket) {
            if (ec == asio::error::operation_aborted || !https_acceptor_.is_open())
                return;
            if (ec) {
                // Typically EMFILE: back off briefly instead of spinning.
                core_.logging.app().warn("accept on https.listen failed: {}", ec.message());
                accept_retry_.expires_after(kAcceptRetry);
                accept_retry_.async_wait([this](error_code wait_ec) {
                    if (!wait_ec)
                        asio::post(https_acceptor_.get_executor(), [this] { accept_https(); });
                });
                return;
            }
            if (stopping_) {
                error_code ignored;
                socket.close(ignored);
            } else if (core_.open_connections.load(std::memory_order_relaxed) >=
                           core_.config.limits.max_connections &&
                       !core_.shed_oldest_unproven()) {
                core_.metrics.rejected.with({"max_connections"}).inc();
                error_code ignored;
                socket.close(ignored);
            } else {
                detail::start_https_session(core_, std::move(socket));
            }
            accept_https();
        });
    }

    void accept_ops() {
        ops_acceptor_.async_accept(
            asio::make_strand(ioc_), [this](error_code ec, tcp::socket socket) {
                if (ec == asio::error::operation_aborted || !ops_acceptor_.is_open())
                    return;
                if (!ec)
                    detail::start_ops_session(core_, std::move(socket));
                accept_ops();
            });
    }

    void housekeeping() {
        housekeeping_.expires_after(kHousekeeping);
        housekeeping_.async_wait([this](error_code ec) {
            if (ec)
                return;
            core_.ip_limiter.prune();
            core_.logging.flush();
            housekeeping();
        });
    }

    void begin_stop() {
        if (stopping_.exchange(true))
            return;
        core_.ready.store(false);
        core_.metrics.ready.set(0);
        for (const auto& hook : stop_hooks_)
            hook(); // other listeners on this io_context (the Handle protocol) stop with us
        asio::post(https_acceptor_.get_executor(), [this] {
            error_code ignored;
            https_acceptor_.close(ignored);
        });
        for (const auto& session : core_.live_sessions())
            detail::drain_https_session(session);
        drain_deadline_ = std::chrono::steady_clock::now() + kDrainTimeout;
        wait_for_drain();
    }

    void wait_for_drain() {
        if (core_.open_connections.load() == 0) {
            finish_stop();
            return;
        }
        if (std::chrono::steady_clock::now() >= drain_deadline_) {
            core_.logging.app().warn("{} connection(s) still open after {} s; closing them",
                                     core_.open_connections.load(), kDrainTimeout.count());
            finish_stop();
            return;
        }
        drain_timer_.expires_after(kDrainPoll);
        drain_timer_.async_wait([this](error_code ec) {
            if (!ec)
                wait_for_drain();
        });
    }

    void finish_stop() {
        asio::post(ops_acceptor_.get_executor(), [this] {
            error_code ignored;
            ops_acceptor_.close(ignored);
        });
        core_.logging.flush();
        ioc_.stop();
        guards_.clear();
        for (auto& w : workers_)
            w->stop();
    }

    detail::ServerCore core_;
    // The workers are declared before ioc_ so that they outlive it: an accept still pending on
    // ioc_ holds a socket of a worker's context, and is destroyed with ioc_.
    std::vector<std::unique_ptr<asio::io_context>> workers_;
    std::vector<asio::executor_work_guard<asio::io_context::executor_type>> guards_;
    asio::io_context ioc_;
    std::vector<std::function<void()>> stop_hooks_; // set before run(); run once, on an I/O thread
    std::size_t next_worker_ = 0;                   // used on the https acceptor's strand only
    tcp::acceptor https_acceptor_;
    tcp::acceptor ops_acceptor_;
    asio::signal_set signals_;
    asio::steady_timer housekeeping_;
    asio::steady_timer drain_timer_;
    asio::steady_timer accept_retry_;
    HostPort https_endpoint_;
    HostPort ops_endpoint_;
    std::atomic<bool> stopping_{false};
    std::chrono::steady_clock::time_point drain_deadline_{};
};

Server::Server(const NodeConfig& config, Dispatch dispatch, MetricsRegistry& metrics,
               Logging& logging)
    : impl_(std::make_unique<Impl>(config, std::move(dispatch), metrics, logging)) {}

Server::~Server() = default;

HostPort Server::https_endpoint() const {
    return impl_->https_endpoint();
}
HostPort Server::ops_endpoint() const {
    return impl_->ops_endpoint();
}
void Server::run() {
    impl_->run();
}
asio::io_context& Server::io_context() noexcept {
    return impl_->ioc();
}

void Server::set_stream_dispatch(StreamDispatch dispatch) {
    impl_->set_stream_dispatch(std::move(dispatch));
}

void Server::set_body_limit_lookup(BodyLimitLookup lookup) {
    impl_->set_body_limit_lookup(std::move(lookup));
}

void Server::on_stop(std::function<void()> hook) {
    impl_->add_stop_hook(std::move(hook));
}

void Server::add_readiness_check(std::function<std::string()> reason) {
    impl_->add_readiness_check(std::move(reason));
}

void Server::request_stop() {
    impl_->request_stop();
}
bool Server::reload_certificate() {
    return impl_->reload_certificate();
}

} // namespace idnode::resolver
