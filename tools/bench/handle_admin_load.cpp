// handle_admin_load — durable creates and resolutions over authenticated Handle-protocol TCP
// connections, against a running idnode (tools/bench/handle_admin.sh runs the whole comparison).
//
//   handle_admin_load --tcp 127.0.0.1:PORT --identity 301:0.NA/88.118 --secret-file F
//                     --prefix 88.118 [--clients 16] [--seconds 10]
//
// Each client is one thread with one TCP connection that logs in as the identity the way IDIS
// clients do (LOGIN_ID_SYSTEM, the RC 402 challenge, RESPONSE_TO_CHALLENGE with an HMAC-SHA256
// proof), then, closed loop (one request outstanding per client, as a wrk client is):
//   1. creates: CREATE_HANDLE of a new handle PREFIX/TCP-<run>-<client>-<n> with the six values of
//      tools/bench/https_register.lua (about 400 bytes) — each answered after the durable commit;
//      then the same with `--pipeline` creates outstanding per connection (replies in order);
//   2. resolutions on the logged-in connections (non-public values readable);
//   3. resolutions on anonymous connections (new connections, no login),
// `--seconds` each, resolving the handles created in 1. Prints a table and `bench:` lines.
// Traffic goes only to the given address; use loopback.
#include "idnode/resolver/handle_auth.hpp"
#include "idnode/resolver/handle_protocol.hpp"

#include <CLI/CLI.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <deque>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace hp = idnode::resolver::handle;
using Clock = std::chrono::steady_clock;

namespace {

constexpr std::uint32_t kLoginIdSystem = 2001;

std::uint32_t get32(std::string_view s, std::size_t at) {
    const auto* u = reinterpret_cast<const unsigned char*>(s.data() + at);
    return (std::uint32_t{u[0]} << 24) | (std::uint32_t{u[1]} << 16) | (std::uint32_t{u[2]} << 8) |
           u[3];
}

std::string message(std::uint32_t opcode, std::string_view body, std::uint32_t request_id,
                    std::uint32_t session_id = 0) {
    hp::Envelope env;
    env.request_id = request_id;
    env.session_id = session_id;
    hp::Header header;
    header.opcode = opcode;
    std::string out;
    hp::encode_message(out, env, header, body);
    return out;
}

void put_bytes(std::string& out, std::string_view s) {
    const auto n = static_cast<std::uint32_t>(s.size());
    for (int i = 3; i >= 0; --i)
        out.push_back(static_cast<char>(n >> (8 * i)));
    out.append(s);
}

/// The six values of https_register.lua in the Handle value encoding.
std::string record_values() {
    const std::pair<int, std::pair<const char*, const char*>> values[] = {
        {1, {"URL", "https://trace.steel.example.cn/coil/bench"}},
        {2000, {"heat_no", "H24C512345"}},
        {2001, {"grade", "Q355B"}},
        {2002, {"standard", "GB/T 1591-2018"}},
        {2003, {"dimensions", "4.75x1500 mm, coil 24120 kg"}},
        {2004, {"batch_no", "B202407-01234-L2"}}};
    std::string out;
    const std::string count("\0\0\0\x06", 4);
    out += count;
    for (const auto& [index, tv] : values) {
        std::string v;
        for (int i = 3; i >= 0; --i)
            v.push_back(static_cast<char>(static_cast<std::uint32_t>(index) >> (8 * i)));
        v += std::string(4, '\0');             // timestamp (the server sets it)
        v.push_back(0);                        // ttl type: relative
        v += std::string("\0\x01\x51\x80", 4); // ttl 86400
        v.push_back(0x0e);                     // admin read/write, public read
        put_bytes(v, tv.first);
        put_bytes(v, tv.second);
        v += std::string(4, '\0'); // no references
        out += v;
    }
    return out;
}

class Connection {
public:
    explicit Connection(std::uint16_t port) {
        fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in to{};
        to.sin_family = AF_INET;
        to.sin_port = htons(port);
        to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (::connect(fd_, reinterpret_cast<sockaddr*>(&to), sizeof to) != 0)
            throw std::runtime_error("connect failed");
        int one = 1;
        ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    ~Connection() { ::close(fd_); }
    Connection(const Connection&) = delete;
    Connection& operator=(const Connection&) = delete;

    void send(std::string_view request) {
        if (::send(fd_, request.data(), request.size(), MSG_NOSIGNAL) !=
            static_cast<ssize_t>(request.size()))
            throw std::runtime_error("send failed");
    }
    std::string exchange(std::string_view request) {
        send(request);
        return receive();
    }
    std::string receive() {
        while (hp::probe_frame(buffer_).state != hp::FrameProbe::State::complete) {
            char chunk[8192];
            const ssize_t got = ::recv(fd_, chunk, sizeof chunk, 0);
            if (got <= 0)
                throw std::runtime_error("connection closed");
            buffer_.append(chunk, static_cast<std::size_t>(got));
        }
        const std::size_t size = hp::probe_frame(buffer_).size;
        std::string reply = buffer_.substr(0, size);
        buffer_.erase(0, size);
        return reply;
    }

private:
    int fd_ = -1;
    std::string buffer_;
};

std::uint32_t rc_of(std::string_view reply) {
    return get32(reply, hp::kEnvelopeSize + 4);
}

void login(Connection& c, const std::string& handle, std::int32_t index,
           const std::string& secret) {
    std::string body;
    put_bytes(body, handle);
    for (int i = 3; i >= 0; --i)
        body.push_back(static_cast<char>(static_cast<std::uint32_t>(index) >> (8 * i)));
    const std::string challenge = c.exchange(message(kLoginIdSystem, body, 1));
    if (rc_of(challenge) != hp::rc::kAuthenticationNeeded)
        throw std::runtime_error("login: no challenge");
    const std::string_view cbody =
        std::string_view(challenge).substr(hp::kEnvelopeSize + hp::kHeaderSize);
    const std::string digest(cbody.substr(1, 32));
    const std::string nonce(cbody.substr(37, 16));
    std::string answer;
    hp::encode_challenge_answer(answer, {hp::kSecretKeyAuth, handle, index,
                                         hp::secret_key_proof_hmac_sha256(secret, nonce, digest)});
    const std::string reply =
        c.exchange(message(hp::opcode::kChallengeResponse, answer, 2, get32(challenge, 4)));
    if (rc_of(reply) != hp::rc::kSuccess)
        throw std::runtime_error("login refused: RC " + std::to_string(rc_of(reply)));
}

struct Phase {
    std::string name;
    std::uint64_t done = 0;
    std::uint64_t errors = 0;
    double seconds = 0;
    std::vector<double> latencies_us;
    double rate() const { return seconds > 0 ? static_cast<double>(done) / seconds : 0; }
    double percentile(double p) {
        if (latencies_us.empty())
            return 0;
        std::sort(latencies_us.begin(), latencies_us.end());
        return latencies_us[static_cast<std::size_t>(p *
                                                     static_cast<double>(latencies_us.size() - 1))];
    }
};

} // namespace

int main(int argc, char** argv) {
    CLI::App app{"durable creates and resolutions over authenticated Handle TCP connections"};
    std::string target, identity, secret_file, prefix;
    unsigned clients = 16;
    double seconds = 10;
    app.add_option("--tcp", target, "HOST:PORT of the node's Handle port (loopback)")->required();
    app.add_option("--identity", identity, "INDEX:HANDLE of a secret-key identity")->required();
    app.add_option("--secret-file", secret_file, "the identity's secret")->required();
    app.add_option("--prefix", prefix, "prefix the identity may write under")->required();
    app.add_option("--clients", clients, "connections, one thread each (default 16)");
    app.add_option("--seconds", seconds, "length of each phase (default 10)");
    unsigned pipeline = 8;
    app.add_option("--pipeline", pipeline,
                   "creates outstanding per connection in the pipelined phase (default 8; 1 = no "
                   "such phase)");
    CLI11_PARSE(app, argc, argv);

    const auto colon = identity.find(':');
    const auto port_colon = target.rfind(':');
    if (colon == std::string::npos || port_colon == std::string::npos) {
        std::fprintf(stderr, "--identity INDEX:HANDLE and --tcp HOST:PORT\n");
        return 2;
    }
    const auto index = static_cast<std::int32_t>(std::stol(identity.substr(0, colon)));
    const std::string id_handle = identity.substr(colon + 1);
    const auto port = static_cast<std::uint16_t>(std::stoi(target.substr(port_colon + 1)));
    std::ifstream in(secret_file, std::ios::binary);
    std::stringstream secret_text;
    secret_text << in.rdbuf();
    std::string secret = secret_text.str();
    while (!secret.empty() && (secret.back() == '\n' || secret.back() == '\r'))
        secret.pop_back();

    const std::string run = std::to_string(std::time(nullptr));
    const std::string values = record_values();
    std::vector<std::vector<std::string>> created(clients);

    auto run_phase = [&](const std::string& name, bool authenticated, bool create, unsigned depth) {
        Phase phase;
        phase.name = name;
        std::atomic<bool> stop{false};
        std::vector<Phase> per_client(clients);
        std::vector<std::thread> threads;
        const auto start = Clock::now();
        for (unsigned t = 0; t < clients; ++t) {
            threads.emplace_back([&, t] {
                try {
                    Connection c(port);
                    if (authenticated)
                        login(c, id_handle, index, secret);
                    std::uint32_t id = 10;
                    std::size_t next = 0;
                    if (create && depth > 1) {
                        // Pipelined: `depth` creates outstanding on the one connection; each
                        // reply (in order) sends the next.
                        std::deque<std::pair<std::string, Clock::time_point>> outstanding;
                        std::size_t n = 0;
                        auto send_next = [&] {
                            std::string body;
                            std::string handle = prefix + "/TCP-" + run + "-" + std::to_string(t) +
                                                 "-" + std::to_string(n++);
                            put_bytes(body, handle);
                            body += values;
                            c.send(message(hp::opcode::kCreateHandle, body, ++id));
                            outstanding.emplace_back(std::move(handle), Clock::now());
                        };
                        for (unsigned i = 0; i < depth; ++i)
                            send_next();
                        while (!outstanding.empty()) {
                            const std::string reply = c.receive();
                            auto [handle, begin] = std::move(outstanding.front());
                            outstanding.pop_front();
                            if (rc_of(reply) == hp::rc::kSuccess) {
                                ++per_client[t].done;
                                per_client[t].latencies_us.push_back(
                                    std::chrono::duration<double, std::micro>(Clock::now() - begin)
                                        .count());
                                created[t].push_back(std::move(handle));
                            } else {
                                ++per_client[t].errors;
                            }
                            if (!stop.load(std::memory_order_relaxed))
                                send_next();
                        }
                        return;
                    }
                    while (!stop.load(std::memory_order_relaxed)) {
                        std::string body;
                        std::string handle;
                        if (create) {
                            handle = prefix + "/TCP-" + run + "-" + std::to_string(t) + "-" +
                                     std::to_string(created[t].size());
                            put_bytes(body, handle);
                            body += values;
                        } else {
                            if (created[t].empty())
                                return;
                            handle = created[t][next++ % created[t].size()];
                            hp::encode_resolution_request(body, handle, {}, {});
                        }
                        const auto begin = Clock::now();
                        const std::string reply = c.exchange(
                            message(create ? hp::opcode::kCreateHandle : hp::opcode::kResolution,
                                    body, ++id));
                        const auto us =
                            std::chrono::duration<double, std::micro>(Clock::now() - begin).count();
                        if (rc_of(reply) == hp::rc::kSuccess) {
                            ++per_client[t].done;
                            per_client[t].latencies_us.push_back(us);
                            if (create)
                                created[t].push_back(handle);
                        } else {
                            ++per_client[t].errors;
                        }
                    }
                } catch (const std::exception& e) {
                    std::fprintf(stderr, "client %u: %s\n", t, e.what());
                    ++per_client[t].errors;
                }
            });
        }
        std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
        stop = true;
        for (auto& th : threads)
            th.join();
        phase.seconds = std::chrono::duration<double>(Clock::now() - start).count();
        for (auto& p : per_client) {
            phase.done += p.done;
            phase.errors += p.errors;
            phase.latencies_us.insert(phase.latencies_us.end(), p.latencies_us.begin(),
                                      p.latencies_us.end());
        }
        return phase;
    };

    std::vector<Phase> phases;
    phases.push_back(run_phase("tcp_auth_creates", true, true, 1));
    if (pipeline > 1) {
        phases.push_back(run_phase("tcp_auth_creates_pipelined", true, true, pipeline));
    }
    phases.push_back(run_phase("tcp_auth_resolutions", true, false, 1));
    phases.push_back(run_phase("tcp_anon_resolutions", false, false, 1));

    std::printf("%-24s %12s %10s %10s %8s\n", "phase", "req/s", "p50 us", "p99 us", "errors");
    for (auto& p : phases) {
        std::printf("%-24s %12.0f %10.0f %10.0f %8llu\n", p.name.c_str(), p.rate(),
                    p.percentile(0.5), p.percentile(0.99),
                    static_cast<unsigned long long>(p.errors));
    }
    for (auto& p : phases) {
        std::printf("bench: handle_%s %.0f req/s\n", p.name.c_str(), p.rate());
        std::printf("bench: handle_%s_errors %llu count\n", p.name.c_str(),
                    static_cast<unsigned long long>(p.errors));
    }
    return 0;
}
