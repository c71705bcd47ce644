// idnode — the secondary-node server.
//
// Exit codes: 0 after a graceful stop (SIGTERM/SIGINT) or a successful --check-config;
// 1 when the configuration is invalid or the node cannot start (the reason goes to stderr).
// stdout carries exactly one line once both listeners are bound, flushed at once so that
// scripts and tests can find the (possibly ephemeral) ports:
//   idnode listening https=127.0.0.1:8443 ops=127.0.0.1:9464
#include "idnode/registry/registry.hpp"
#include "idnode/resolver/config.hpp"
#include "idnode/resolver/handle_keys.hpp"
#include "idnode/resolver/handle_server.hpp"
#include "idnode/resolver/logging.hpp"
#include "idnode/resolver/metrics.hpp"
#include "idnode/resolver/node_api.hpp"
#include "idnode/resolver/router.hpp"
#include "idnode/resolver/server.hpp"
#include "idnode/resolver/version.hpp"

#include <CLI/CLI.hpp>
#include <spdlog/logger.h>

#include <algorithm>
#include <csignal>
#include <fstream>
#include <iostream>
#include <optional>
#include <sstream>

namespace {

using namespace idnode::resolver;

NodeConfig read_config(const std::optional<std::string>& path) {
    if (path)
        return load_config(*path);
    NodeConfig defaults; // every key at its documented default
    apply_environment(defaults);
    return defaults;
}

std::string read_key_file(const std::filesystem::path& file, const char* key) {
    std::ifstream in(file, std::ios::binary);
    std::ostringstream pem;
    pem << in.rdbuf();
    if (!in)
        throw idnode::registry::StartupError(idnode::registry::Errc::invalid_value,
                                             std::string(key) + ": cannot read " + file.string());
    return pem.str();
}

/// The server's key pair from handle.private_key (null when not configured). Throws
/// StartupError naming the key and the file when the file cannot be read or holds no usable key.
std::shared_ptr<const handle::ServerKey> server_key(const NodeConfig& config) {
    const auto& file = config.handle.private_key;
    if (file.empty())
        return nullptr;
    auto key = handle::ServerKey::from_pem(read_key_file(file, "handle.private_key"));
    if (!key)
        throw idnode::registry::StartupError(idnode::registry::Errc::invalid_value,
                                             "handle.private_key: " + file.string() + ": " +
                                                 key.error().message);
    return std::make_shared<const handle::ServerKey>(std::move(*key));
}

/// The public key published in site info, in HS_PUBKEY encoding: the private key's public half,
/// or handle.public_key when only that is set ("" when neither is). Both set: they must match.
std::string site_public_key(const NodeConfig& config, const handle::ServerKey* key) {
    const auto& file = config.handle.public_key;
    if (file.empty())
        return key != nullptr ? key->public_key() : std::string();
    auto encoded = handle::encode_public_key_pem(read_key_file(file, "handle.public_key"));
    if (!encoded)
        throw idnode::registry::StartupError(idnode::registry::Errc::invalid_value,
                                             "handle.public_key: " + file.string() + ": " +
                                                 encoded.error().message);
    if (key != nullptr && *encoded != key->public_key())
        throw idnode::registry::StartupError(
            idnode::registry::Errc::invalid_value,
            "handle.public_key: " + file.string() +
                " is not the public half of handle.private_key (set only private_key)");
    return std::move(*encoded);
}

int check_config(const std::string& path) {
    try {
        const NodeConfig config = load_config(path);
        // Loading the certificate and key catches the most common deployment mistake too.
        check_tls_files(config);
        const auto key = server_key(config);
        (void)site_public_key(config, key.get());
        std::cout << path << ": configuration is valid\n";
        return 0;
    } catch (const std::exception& e) {
        std::cerr << "idnode: " << e.what() << "\n";
        return 1;
    }
}

handle::HandleServerOptions handle_options(const NodeConfig& config, NodeApi& api,
                                           Logging& logging) {
    handle::HandleServerOptions o;
    o.address = config.handle.listen.host;
    o.port = config.handle.listen.port;
    o.homed_prefixes = api.homed_prefixes();
    o.resolutions = &api.resolutions(); // one resolutions_today for HTTPS and the Handle protocol
    // Administration over the Handle protocol: one login throttle and one budget per account.
    o.authenticator = &api.authenticator();
    o.account_rate = &api.account_rate_limit();
    o.max_record_bytes = static_cast<std::size_t>(config.limits.max_body_bytes);
    o.allow_password_login = config.handle.allow_password_login;
    o.log = [&logging](bool warning, const std::string& line) {
        if (warning)
            logging.app().warn("{}", line);
        else
            logging.app().info("{}", line);
    };
    o.idle_timeout =
        std::chrono::duration_cast<std::chrono::milliseconds>(config.limits.idle_timeout);
    o.max_connections = config.limits.max_connections;
    o.rate_per_ip = static_cast<std::uint32_t>(config.limits.rate_per_ip);
    o.udp_policy.max_reply_bytes = config.handle.udp_max_reply_bytes;
    o.responder.server_key = server_key(config);
    handle::SiteInfo& site = o.responder.site;
    site.serial = config.handle.site_serial;
    site.attributes.push_back({"desc", "idnode secondary node"});
    handle::SiteServer self;
    const std::string advertised = config.handle.advertise_address.empty()
                                       ? config.handle.listen.host
                                       : config.handle.advertise_address;
    if (auto address = handle::parse_site_address(advertised)) {
        self.address = *address;
    }
    // Port 0 = the bound port, filled in by start().
    self.public_key = site_public_key(config, o.responder.server_key.get());
    // Only the interfaces that speak the Handle protocol: the HTTPS port serves the REST API,
    // not Handle messages POSTed to it, so it is not listed (a client would try it and fail).
    self.interfaces = {{handle::service::kQuery, handle::Transport::tcp, 0},
                       {handle::service::kQuery, handle::Transport::udp, 0}};
    site.servers.push_back(std::move(self));
    return o;
}

/// Handle protocol figures on /metrics, read from the server's own counters at scrape time (one
/// stats() call per metric; the server keeps them in atomics, so serving never waits on a scrape).
void register_handle_metrics(MetricsRegistry& metrics, const handle::HandleServer& server) {
    auto counter = [&](std::string name, std::string help,
                       std::uint64_t handle::HandleServerStats::*field) {
        metrics.collector(std::move(name), std::move(help), MetricType::counter,
                          [&server, field](Collection& c) {
                              c.add({}, static_cast<double>(server.stats().*field));
                          });
    };
    auto by_code =
        [&](std::string name, std::string help, std::string label,
            std::vector<handle::HandleServerStats::CodeCount> handle::HandleServerStats::*field) {
            metrics.collector(
                std::move(name), std::move(help), MetricType::counter,
                [&server, field, label](Collection& c) {
                    const auto stats = server.stats(); // the loop must not outlive it
                    for (const auto& [code, count] : stats.*field)
                        c.add({{label, std::to_string(code)}}, static_cast<double>(count));
                });
        };
    by_code("idnode_handle_requests_total",
            "Handle protocol requests by opcode (1 RESOLUTION, 2 GET_SITE_INFO; 0 unreadable)",
            "opcode", &handle::HandleServerStats::requests_by_opcode);
    by_code("idnode_handle_responses_total", "Handle protocol responses by response code", "rc",
            &handle::HandleServerStats::responses_by_rc);
    metrics.collector("idnode_handle_request_seconds",
                      "Handle protocol server-side latency (request read to reply sent)",
                      MetricType::histogram, [&server](Collection& c) {
                          auto s = server.stats();
                          c.add_histogram({}, HistogramData{std::move(s.latency_bounds),
                                                            std::move(s.latency_counts),
                                                            s.latency_sum_seconds});
                      });
    counter("idnode_handle_udp_requests_total", "Handle protocol UDP datagrams received",
            &handle::HandleServerStats::udp_requests);
    counter("idnode_handle_tcp_requests_total", "Handle protocol TCP requests received",
            &handle::HandleServerStats::tcp_requests);
    counter("idnode_handle_malformed_total", "Handle protocol requests answered RC 4 or dropped",
            &handle::HandleServerStats::malformed);
    counter("idnode_handle_rate_limited_total",
            "Handle protocol requests refused by the per-IP limit",
            &handle::HandleServerStats::rate_limited);
    counter("idnode_handle_udp_fragmented_total",
            "UDP replies sent as several datagrams (RFC 3652 multi-datagram messages)",
            &handle::HandleServerStats::udp_fragmented);
    counter("idnode_handle_udp_too_large_total",
            "UDP replies over handle.udp_max_reply_bytes, answered RC 2 (ask over TCP)",
            &handle::HandleServerStats::udp_too_large);
    counter("idnode_handle_tcp_connections_accepted_total",
            "Handle protocol TCP connections accepted",
            &handle::HandleServerStats::tcp_connections_accepted);
    counter("idnode_handle_tcp_connections_rejected_total",
            "Handle protocol TCP connections refused over the connection cap",
            &handle::HandleServerStats::tcp_connections_rejected);
    metrics.gauge_callback(
        "idnode_handle_tcp_connections_open", "open Handle protocol TCP connections",
        [&server] { return static_cast<double>(server.stats().tcp_connections_open); });
}

int serve(const std::optional<std::string>& path) {
    const NodeConfig config = read_config(path);
    Logging logging(config.log);
    MetricsRegistry metrics;

    idnode::registry::RegistryOptions store;
    store.data_dir = config.node.data_dir;
    store.max_db_size = config.node.max_db_size;
    // One line when the disk fills up and one when it has room again: the registry raises each
    // change once, however many writes fail meanwhile.
    store.on_disk_event = [&logging](const idnode::registry::DiskEvent& e) {
        if (e.full)
            logging.app().error("storage full: the filesystem of {} has {} bytes free; writes "
                                "fail with 507 storage_full until space is freed (LMDB: {})",
                                e.data_dir.string(), e.free_bytes, e.detail);
        else
            logging.app().warn("storage: the filesystem of {} has room again ({} bytes free, {}); "
                               "writes resume",
                               e.data_dir.string(), e.free_bytes, e.detail);
    };
    // Declared before the server: destroyed after it, so the writer drains every acknowledged
    // write of the requests the server finished while stopping.
    auto registry = idnode::registry::Registry::open(store);

    // Registry gauges for /metrics (read from the writer's last commit; no transaction).
    auto& reg = *registry;
    metrics.gauge_callback("idnode_identifiers", "identifiers stored",
                           [&reg] { return static_cast<double>(reg.stats().identifiers); });
    metrics.gauge_callback("idnode_db_used_bytes", "database bytes in use",
                           [&reg] { return static_cast<double>(reg.stats().used_bytes); });
    metrics.gauge_callback("idnode_db_map_bytes", "current LMDB map size",
                           [&reg] { return static_cast<double>(reg.stats().map_size); });
    metrics.gauge_callback("idnode_db_max_bytes", "configured node.max_db_size",
                           [&reg] { return static_cast<double>(reg.stats().max_db_size); });
    metrics.gauge_callback("idnode_writer_queue_ops", "write operations waiting for the writer",
                           [&reg] { return static_cast<double>(reg.stats().queued_ops); });
    metrics.gauge_callback(
        "idnode_writer_submits_refused",
        "batches the writer queue refused since start (a bulk upload then pauses and retries)",
        [&reg] { return static_cast<double>(reg.stats().submits_refused); });
    metrics.gauge_callback("idnode_writer_commits", "group commits since start",
                           [&reg] { return static_cast<double>(reg.stats().commits); });
    metrics.gauge_callback("idnode_writer_committed_ops", "operations committed since start",
                           [&reg] { return static_cast<double>(reg.stats().committed_ops); });
    metrics.gauge_callback(
        "idnode_writer_last_commit_seconds", "duration of the last group commit",
        [&reg] { return static_cast<double>(reg.stats().last_commit_us) / 1e6; });
    metrics.gauge_callback(
        "idnode_storage_full",
        "1 while the data directory's filesystem is full (writes fail with 507 storage_full)",
        [&reg] { return reg.disk_space().full ? 1.0 : 0.0; });
    metrics.gauge_callback("idnode_db_disk_free_bytes",
                           "bytes free for the database on node.data_dir's filesystem",
                           [&reg] { return static_cast<double>(reg.disk_space().free_bytes); });

    NodeApi api(*registry, NodeApiOptions{config.node.homed_prefixes,
                                          {},
                                          config.node.public_base_url,
                                          config.limits.rate_per_account,
                                          config.snms.token_v1,
                                          config.snms.token_ttl_s,
                                          &metrics,
                                          config.limits.max_body_bytes,
                                          std::max(config.limits.max_batch_body_bytes,
                                                   config.limits.max_body_bytes),
                                          config.limits.idempotency_ttl_s});
    Router router;
    api.register_routes(router);
    Server server(config, router.as_dispatch(), metrics, logging);
    server.set_stream_dispatch(router.as_stream_dispatch());
    server.set_body_limit_lookup(router.as_body_limit_lookup());
    // Without node.public_base_url, QR codes point at the HTTPS listener with the port actually
    // bound (a wildcard listen address was refused by the configuration check).
    if (config.node.public_base_url.empty())
        api.set_public_base_url("https://" + server.https_endpoint().to_string());
    server.add_readiness_check([&reg]() -> std::string {
        const auto space = reg.disk_space();
        return space.full ? "storage full (" + std::to_string(space.free_bytes) +
                                " bytes free on the data directory's filesystem)"
                          : std::string();
    });

    // The Handle protocol (TCP + UDP) shares the HTTPS server's io_context and threads, and
    // stops when it stops.
    handle::HandleServer handle_server(server.io_context(), *registry,
                                       handle_options(config, api, logging));
    handle_server.start();
    api.set_site_info(handle_server.responder_config().site);
    server.on_stop([&handle_server] { handle_server.stop(); });
    register_handle_metrics(metrics, handle_server);

    std::cout << "idnode listening https=" << server.https_endpoint().to_string()
              << " ops=" << server.ops_endpoint().to_string() << " handle="
              << HostPort{config.handle.listen.host, handle_server.tcp_port()}.to_string()
              << std::endl;
    logging.app().info("idnode {} starting", version());
    server.run();
    return 0;
}

} // namespace

int main(int argc, char** argv) {
    CLI::App app{"idnode — secondary node of an industrial-internet identifier resolution system"};
    app.set_version_flag("--version", std::string("idnode ") + version());
    std::optional<std::string> config_path;
    std::optional<std::string> check_path;
    auto* config_opt =
        app.add_option("--config", config_path,
                       "TOML configuration file (see conf/idnode.toml); without it every key "
                       "has its default");
    app.add_option(
           "--check-config", check_path,
           "validate FILE (syntax, keys, types, certificate files) and exit: 0 valid, 1 not")
        ->excludes(config_opt);
    CLI11_PARSE(app, argc, argv);

    if (check_path)
        return check_config(*check_path);
    // A log or stdout pipe whose reader went away must surface as a write error, not kill the
    // node (sockets already use MSG_NOSIGNAL).
    std::signal(SIGPIPE, SIG_IGN);
    try {
        return serve(config_path);
    } catch (const std::exception& e) {
        std::cerr << "idnode: " << e.what() << std::endl;
        return 1;
    }
}
