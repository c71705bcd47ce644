// Bulk registration benchmark client (issue 5's "Done when"): one HTTPS bulk upload of N records
// (~300 bytes each) streamed with chunked encoding to POST /api/v1/bulk?results=errors, timed
// from the first byte sent to the summary line (every record durable by then); and HTTPS
// resolution throughput (GET /api/handles/…, one keep-alive connection) measured while idle and
// during the upload. Run by tools/bench/bulk_load.sh, which starts and prepares the node.
//
//   bulk_load --port P --ca FILE --key KEY --prefix 88.118.8 [--records N] [--order asc|random]
//             [--run NAME] [--resolve HANDLE] [--idle-seconds S]
//
// Prints a table and `bench:` lines (DESIGN §5.6). Talks to 127.0.0.1 only.
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>

#include <CLI/CLI.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <numeric>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace asio = boost::asio;
namespace ssl = asio::ssl;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

namespace {

struct Connection {
    asio::io_context ioc;
    ssl::context ctx{ssl::context::tls_client};
    std::unique_ptr<beast::ssl_stream<tcp::socket>> stream;
    beast::flat_buffer buffer;

    Connection(std::uint16_t port, const std::string& ca) {
        ctx.load_verify_file(ca);
        ctx.set_verify_mode(ssl::verify_peer);
        stream = std::make_unique<beast::ssl_stream<tcp::socket>>(ioc, ctx);
        SSL_set_tlsext_host_name(stream->native_handle(), "localhost");
        stream->next_layer().connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
        stream->next_layer().set_option(tcp::no_delay(true));
        stream->handshake(ssl::stream_base::client);
    }
};

/// One production-run record of ~300 bytes with template-style fields (index >= 2000).
void append_record(std::string& out, const std::string& prefix, const std::string& run,
                   std::uint64_t serial) {
    char suffix[32];
    std::snprintf(suffix, sizeof suffix, "%010llu", static_cast<unsigned long long>(serial));
    out += R"({"handle":")";
    out += prefix;
    out += '/';
    out += run;
    out += '-';
    out += suffix;
    out += R"(","values":[{"index":1,"type":"URL","data":"https://mes.example.cn/p/)";
    out += suffix;
    out += R"("},{"index":2000,"type":"heat_no","data":"H2024-)";
    out += suffix + 4;
    out +=
        R"("},{"index":2001,"type":"grade","data":"Q235B"},{"index":2002,"type":"standard","data":"GB/T 700-2006"},{"index":2003,"type":"batch","data":"B-)";
    out += run;
    out += R"("},{"index":2004,"type":"production_date","data":"2024-11-22"}]})";
    out += '\n';
}

} // namespace

int main(int argc, char** argv) {
    CLI::App app{"bulk registration benchmark client"};
    std::uint16_t port = 0;
    std::string ca, key, prefix, order = "asc", run = "RUN1", resolve_handle;
    std::uint64_t records = 1000000;
    double idle_seconds = 3;
    app.add_option("--port", port)->required();
    app.add_option("--ca", ca)->required();
    app.add_option("--key", key, "API key of an account owning --prefix")->required();
    app.add_option("--prefix", prefix)->required();
    app.add_option("--records", records);
    app.add_option("--order", order)->check(CLI::IsMember({"asc", "random"}));
    app.add_option("--run", run, "production run name (part of every suffix)");
    app.add_option("--resolve", resolve_handle,
                   "handle to resolve while idle and during the upload (empty = skip)");
    app.add_option("--idle-seconds", idle_seconds);
    CLI11_PARSE(app, argc, argv);

    // ---- resolution while idle ---------------------------------------------------------------
    std::atomic<bool> stop{false};
    std::atomic<std::uint64_t> resolved{0};
    auto resolver = [&] {
        Connection c(port, ca);
        http::request<http::empty_body> req{http::verb::get, "/api/handles/" + resolve_handle, 11};
        req.set(http::field::host, "localhost");
        while (!stop.load()) {
            http::write(*c.stream, req);
            http::response<http::string_body> res;
            http::read(*c.stream, c.buffer, res);
            if (res.result() != http::status::ok) {
                std::cerr << "resolve failed: " << res.result_int() << " " << res.body() << "\n";
                return;
            }
            resolved.fetch_add(1);
        }
    };
    double idle_rate = 0;
    if (!resolve_handle.empty()) {
        std::thread t(resolver);
        const auto start = Clock::now();
        std::this_thread::sleep_for(std::chrono::duration<double>(idle_seconds));
        stop = true;
        t.join();
        idle_rate = static_cast<double>(resolved.load()) /
                    std::chrono::duration<double>(Clock::now() - start).count();
        stop = false;
        resolved = 0;
    }

    // ---- the upload -----------------------------------------------------------------------------
    std::vector<std::uint64_t> serials;
    if (order == "random") {
        serials.resize(records);
        std::iota(serials.begin(), serials.end(), 0);
        std::shuffle(serials.begin(), serials.end(), std::mt19937_64(42));
    }
    Connection c(port, ca);
    std::thread resolving;
    if (!resolve_handle.empty())
        resolving = std::thread(resolver);
    const auto start = Clock::now();
    std::string head =
        "POST /api/v1/bulk?mode=create&results=errors HTTP/1.1\r\nHost: localhost\r\n"
        "Authorization: Bearer " +
        key + "\r\nTransfer-Encoding: chunked\r\n\r\n";
    asio::write(*c.stream, asio::buffer(head));
    std::string chunk;
    std::uint64_t bytes = 0;
    const std::uint64_t per_chunk = 512;
    for (std::uint64_t i = 0; i < records; i += per_chunk) {
        chunk.clear();
        const std::uint64_t end = std::min(records, i + per_chunk);
        for (std::uint64_t j = i; j < end; ++j)
            append_record(chunk, prefix, run, serials.empty() ? j : serials[j]);
        char size[32];
        const int n = std::snprintf(size, sizeof size, "%zx\r\n", chunk.size());
        chunk.insert(0, size, static_cast<std::size_t>(n));
        chunk += "\r\n";
        bytes += chunk.size();
        asio::write(*c.stream, asio::buffer(chunk));
    }
    asio::write(*c.stream, asio::buffer(std::string("0\r\n\r\n")));
    http::response_parser<http::string_body> parser;
    parser.body_limit(1ull << 30);
    http::read(*c.stream, c.buffer, parser);
    const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
    stop = true;
    if (resolving.joinable())
        resolving.join();
    const double busy_rate = static_cast<double>(resolved.load()) / seconds;
    const auto& body = parser.get().body();
    const auto summary = body.rfind("{\"summary\"");
    if (parser.get().result() != http::status::ok || summary == std::string::npos) {
        std::cerr << "upload failed: " << parser.get().result_int() << " " << body.substr(0, 2000)
                  << "\n";
        return 1;
    }
    const double rate = static_cast<double>(records) / seconds;
    std::printf("| figure | value |\n|---|---|\n");
    std::printf("| records (%s order) | %llu |\n", order.c_str(),
                static_cast<unsigned long long>(records));
    std::printf("| average line bytes | %.0f |\n", static_cast<double>(bytes) / records);
    std::printf("| upload seconds (durable) | %.2f |\n", seconds);
    std::printf("| records/s durable | %.0f |\n", rate);
    std::printf("| summary | %s |\n",
                body.substr(summary, body.find('\n', summary) - summary).c_str());
    if (!resolve_handle.empty()) {
        std::printf("| resolutions/s idle (1 connection) | %.0f |\n", idle_rate);
        std::printf("| resolutions/s during upload | %.0f |\n", busy_rate);
    }
    std::printf("bench: bulk_%s_records_per_s %.0f records/s\n", order.c_str(), rate);
    if (!resolve_handle.empty()) {
        std::printf("bench: resolve_idle_per_s %.0f req/s\n", idle_rate);
        std::printf("bench: resolve_during_bulk_%s_per_s %.0f req/s\n", order.c_str(), busy_rate);
        std::printf("bench: resolve_during_vs_idle ratio %.2f\n",
                    idle_rate > 0 ? busy_rate / idle_rate : 0.0);
    }
    return body.find("\"errors\":0") == std::string::npos ? 1 : 0;
}
