// Bulk registration benchmark client (the bulk target: at least 150,000 records/s durable,
// docs/performance.md#bulk-registration-bulk_loadsh-and-bulk_pipeline_bench): one HTTPS bulk
// upload of N records (~470 bytes each, naming the steel template) streamed with chunked
// encoding to POST /api/v1/bulk?results=errors, timed from the first byte sent to the summary
// line (every record durable by then). Run by tools/bench/bulk_load.sh, which starts and prepares
// the node and measures resolution throughput (wrk) beside it.
//
//   bulk_load --port P --ca FILE --key KEY --prefix 88.118.8 [--records N] [--order asc|random]
//             [--run NAME] [--label NAME]
//
// Records are PREFIX/RUN-0000000000 … PREFIX/RUN-<N-1>, in ascending order or shuffled (a fixed
// seed: the same records in the same order every time). Prints "bulk_load: streaming" on stderr
// once the request head is sent, then a table and `bench:` lines (docs/performance.md); exit 1
// unless every record was accepted. Talks to 127.0.0.1 only.
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>

#include "steel_record.hpp"

#include <CLI/CLI.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <numeric>
#include <random>
#include <string>
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

} // namespace

int main(int argc, char** argv) {
    CLI::App app{"bulk registration benchmark client"};
    std::uint16_t port = 0;
    std::string ca, key, prefix, order = "asc", run = "RUN1", label;
    std::uint64_t records = 1000000;
    app.add_option("--port", port)->required();
    app.add_option("--ca", ca)->required();
    app.add_option("--key", key, "API key of an account owning --prefix")->required();
    app.add_option("--prefix", prefix)->required();
    app.add_option("--records", records)->check(CLI::PositiveNumber);
    app.add_option("--order", order)->check(CLI::IsMember({"asc", "random"}));
    app.add_option("--run", run, "production run name (part of every suffix)");
    app.add_option("--label", label, "name in the bench: line (default: the order)");
    CLI11_PARSE(app, argc, argv);
    if (label.empty())
        label = order;

    std::vector<std::uint64_t> serials;
    if (order == "random") {
        serials.resize(records);
        std::iota(serials.begin(), serials.end(), 0);
        std::shuffle(serials.begin(), serials.end(), std::mt19937_64(42));
    }
    Connection c(port, ca);
    const auto start = Clock::now();
    std::string head =
        "POST /api/v1/bulk?mode=create&results=errors HTTP/1.1\r\nHost: localhost\r\n"
        "Authorization: Bearer " +
        key + "\r\nTransfer-Encoding: chunked\r\n\r\n";
    asio::write(*c.stream, asio::buffer(head));
    std::cerr << "bulk_load: streaming" << std::endl;
    std::string chunk;
    std::uint64_t bytes = 0;
    const std::uint64_t per_chunk = 512;
    for (std::uint64_t i = 0; i < records; i += per_chunk) {
        chunk.clear();
        const std::uint64_t end = std::min(records, i + per_chunk);
        for (std::uint64_t j = i; j < end; ++j)
            idnode::bench::append_steel_record(chunk, prefix, run,
                                               serials.empty() ? j : serials[j]);
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
    std::printf("bench: bulk_%s_records_per_s %.0f records/s\n", label.c_str(), rate);
    std::printf("bench: bulk_%s_line_bytes %.0f bytes\n", label.c_str(),
                static_cast<double>(bytes) / records);
    const bool all_created =
        body.find("\"created\":" + std::to_string(records) + ",") != std::string::npos;
    if (!all_created)
        std::cerr << "not every record was created: "
                  << body.substr(summary, body.find('\n', summary) - summary) << "\n";
    return all_created ? 0 : 1;
}
