// Client::bulk — POST /api/v1/bulk (docs/api.md#bulk) over N parallel streams.
//
// Each stream is one thread with its own connection. It sends one chunked NDJSON request and
// reads the NDJSON answer at the same time (both asynchronous on the connection's io_context, run
// by that thread): the server answers while the upload is still going, so writing everything
// before reading could deadlock on full socket buffers. Lines sent and not yet answered stay in a
// bounded window; the answer to request line N is the window's front. The SDK always asks for
// results=all because those answers are the acknowledgements that make resending safe.
#include "client_impl.hpp"

#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/json.hpp>

#include <algorithm>
#include <deque>
#include <thread>

namespace idnode::sdk {

namespace json = boost::json;
using namespace detail;

namespace {

const char* mode_name(BulkMode m) {
    switch (m) {
    case BulkMode::create:
        return "create";
    case BulkMode::upsert:
        return "upsert";
    case BulkMode::replace:
        return "replace";
    }
    return "create";
}

struct Pending {
    std::uint64_t index;
    std::string line;
};

/// State shared by the streams of one bulk call.
struct Shared {
    Client::Impl& impl;
    const BulkOptions& options;
    LineReader& reader;
    const Clock::time_point start = Clock::now();

    std::mutex reader_mutex;
    bool input_done = false;
    std::uint64_t next_index = 0;

    std::mutex result_mutex; // serialises on_result
    std::atomic<std::uint64_t> sent{0}, done{0}, created{0}, replaced{0}, unchanged{0}, errors{0},
        resent{0};
    std::atomic<bool> stop{false};
    std::mutex failure_mutex;
    std::optional<Error> failure;

    Shared(Client::Impl& i, const BulkOptions& o, LineReader& r) : impl(i), options(o), reader(r) {}

    // Connections of the streams now running, so that a failure or a cancel stops them at once
    // instead of when their next read or write completes.
    std::mutex connections_mutex;
    std::vector<Connection*> connections;

    void fail(Error e) {
        {
            std::lock_guard lock(failure_mutex);
            if (!failure)
                failure = std::move(e);
            stop = true;
        }
        std::lock_guard lock(connections_mutex);
        for (Connection* c : connections) {
            net::post(c->ioc, [c] {
                error_code ignored;
                beast::get_lowest_layer(c->stream).socket().close(ignored);
            });
        }
    }

    void report(std::uint64_t index, std::string handle, BulkStatus status, std::string code = {},
                std::string message = {}) {
        ++done;
        switch (status) {
        case BulkStatus::created:
            ++created;
            break;
        case BulkStatus::replaced:
            ++replaced;
            break;
        case BulkStatus::unchanged:
            ++unchanged;
            break;
        case BulkStatus::error:
            ++errors;
            break;
        }
        if (!options.on_result || (options.errors_only && status != BulkStatus::error))
            return;
        BulkItemResult r{index, std::move(handle), status, std::move(code), std::move(message)};
        std::lock_guard lock(result_mutex);
        options.on_result(r);
    }

    /// Up to `max` input lines; rejects lines that cannot travel as one NDJSON line.
    void pull(std::size_t max, std::deque<Pending>& out) {
        std::lock_guard lock(reader_mutex);
        std::string line;
        while (!input_done && max > 0 && !stop) {
            line.clear();
            if (!reader(line)) {
                input_done = true;
                break;
            }
            while (!line.empty() && (line.back() == '\n' || line.back() == '\r'))
                line.pop_back();
            if (line.empty())
                continue; // blank lines carry no record
            const std::uint64_t index = next_index++;
            if (line.find('\n') != std::string::npos) {
                report(index, {}, BulkStatus::error, "invalid_line",
                       "a record must be one line of JSON");
                continue;
            }
            out.push_back(Pending{index, std::move(line)});
            line = std::string();
            --max;
        }
    }
};

/// A success answer in exactly the shape the server writes, `{"line":N,"handle":"H","status":
/// "created|replaced|unchanged"}` with no escapes in H, read without building a JSON document
/// (one per record, so it shows in the client's CPU per record). Anything else - errors,
/// escapes, other spacing - returns false and goes through the general JSON path.
struct FastAnswer {
    std::uint64_t line = 0;
    std::string_view handle;
    BulkStatus status = BulkStatus::created;
};
bool scan_success_answer(std::string_view text, FastAnswer& out) {
    constexpr std::string_view kLine = "{\"line\":", kHandle = ",\"handle\":\"",
                               kStatus = "\",\"status\":\"";
    if (!text.starts_with(kLine))
        return false;
    text.remove_prefix(kLine.size());
    std::size_t digits = 0;
    std::uint64_t n = 0;
    while (digits < text.size() && digits < 19 && text[digits] >= '0' && text[digits] <= '9')
        n = n * 10 + static_cast<std::uint64_t>(text[digits++] - '0');
    if (digits == 0 || (digits > 1 && text[0] == '0'))
        return false;
    text.remove_prefix(digits);
    if (!text.starts_with(kHandle))
        return false;
    text.remove_prefix(kHandle.size());
    const std::size_t close = text.find_first_of("\"\\");
    if (close == std::string_view::npos || text[close] != '"')
        return false;
    for (std::size_t i = 0; i < close; ++i)
        if (static_cast<unsigned char>(text[i]) < 0x20)
            return false;
    out.handle = text.substr(0, close);
    text.remove_prefix(close);
    if (!text.starts_with(kStatus))
        return false;
    text.remove_prefix(kStatus.size());
    if (text == "created\"}")
        out.status = BulkStatus::created;
    else if (text == "replaced\"}")
        out.status = BulkStatus::replaced;
    else if (text == "unchanged\"}")
        out.status = BulkStatus::unchanged;
    else
        return false;
    out.line = n;
    return true;
}

std::string handle_of(const std::string& line) {
    error_code ec;
    json::value v = json::parse(line, ec);
    if (!ec && v.is_object()) {
        if (const auto* h = v.get_object().if_contains("handle"); h && h->is_string())
            return std::string(h->get_string());
    }
    return {};
}

/// One stream: repeated requests (after a drop) until the input is exhausted.
class Stream {
public:
    explicit Stream(Shared& shared) : s_(shared) {}

    void run() {
        int failures_in_a_row = 0;
        while (!s_.stop) {
            std::optional<Error> err;
            const std::uint64_t done_before = s_.done;
            const bool finished = one_request(err);
            if (finished)
                return;
            if (!err)
                continue;
            if (err->kind == ErrorKind::cancelled)
                return;
            if (!transport_failure_) { // the server refused the request as a whole
                s_.fail(*err);
                return;
            }
            // A dropped stream: what was sent and not answered is either resent (create) or
            // reported (other modes), then a new connection continues with the rest.
            salvage_window();
            failures_in_a_row = s_.done > done_before ? 1 : failures_in_a_row + 1;
            if (failures_in_a_row >= std::max(1, s_.impl.options.retry.max_attempts)) {
                s_.fail(*err);
                return;
            }
            s_.impl.backoff(failures_in_a_row, Millis(0));
        }
    }

private:
    void salvage_window() {
        if (s_.options.mode == BulkMode::create) {
            s_.resent += window_.size();
            while (!window_.empty()) {
                resend_.push_front(std::move(window_.back()));
                window_.pop_back();
            }
        } else {
            for (auto& p : window_) {
                s_.report(p.index, handle_of(p.line), BulkStatus::error, "connection_lost",
                          "the connection broke before the server answered; the record may or "
                          "may not be stored");
            }
            window_.clear();
        }
    }

    /// Fills `chunk_` with the next chunk's lines; false when there is nothing more to send.
    bool next_chunk(std::deque<Pending>& lines) {
        const std::size_t room = s_.options.window_records > window_.size()
                                     ? s_.options.window_records - window_.size()
                                     : 0;
        const std::size_t want = std::min(std::max<std::size_t>(1, s_.options.chunk_records), room);
        while (!resend_.empty() && lines.size() < want) {
            lines.push_back(std::move(resend_.front()));
            resend_.pop_front();
        }
        if (lines.size() < want)
            s_.pull(want - lines.size(), lines);
        return !lines.empty();
    }

    /// Returns true when the input is exhausted and every line answered; false with `err` set
    /// when this request failed (or with no error when it should simply go on).
    bool one_request(std::optional<Error>& err) {
        transport_failure_ = false;
        auto& impl = s_.impl;
        auto auth = impl.authorization({});
        if (!auth) {
            err = auth.error();
            return false;
        }
        {
            // Nothing left to send (other streams took the rest of the input)?
            std::lock_guard lock(s_.reader_mutex);
            if (s_.input_done && resend_.empty())
                return true;
        }
        Connection conn(impl.tls, impl.endpoint);
        struct Registration {
            Shared& s;
            Connection* c;
            Registration(Shared& shared, Connection* connection) : s(shared), c(connection) {
                std::lock_guard lock(s.connections_mutex);
                s.connections.push_back(c);
            }
            ~Registration() {
                std::lock_guard lock(s.connections_mutex);
                std::erase(s.connections, c);
            }
        } registration(s_, &conn);
        if (s_.stop)
            return false;
        if (auto ec = conn.connect(impl.options.connect_timeout)) {
            Error e = transport_error(ec, "connect");
            transport_failure_ = e.kind != ErrorKind::tls;
            if (e.kind == ErrorKind::connection)
                e.kind = ErrorKind::connect;
            err = e;
            return false;
        }
        auto& stream = conn.stream;
        auto& lowest = beast::get_lowest_layer(stream);
        const Millis idle = impl.options.request_timeout;

        std::string head = "POST /api/v1/bulk?mode=" + std::string(mode_name(s_.options.mode)) +
                           "&results=all HTTP/1.1\r\nHost: " + impl.endpoint.host_header +
                           "\r\nUser-Agent: " + impl.user_agent +
                           "\r\nContent-Type: application/x-ndjson\r\nAccept: "
                           "application/x-ndjson\r\nTransfer-Encoding: chunked\r\n";
        if (!auth->empty())
            head += "Authorization: " + *auth + "\r\n";
        head += "\r\n";

        std::uint64_t line_no = 0;  // request lines sent
        std::uint64_t answered = 0; // request lines answered
        bool writing_done = false, writer_paused = false, write_pending = false;
        bool write_failed = false;
        bool summary_seen = false, response_done = false, header_ok = false;
        int status = 0;
        std::string error_body, partial, out;
        std::optional<Error> local;

        http::response_parser<http::buffer_body> parser;
        parser.body_limit(boost::none);
        std::vector<char> buf(64 * 1024);

        auto close_with = [&](Error e) {
            if (!local)
                local = std::move(e);
            error_code ignored;
            lowest.socket().close(ignored);
        };

        std::function<void()> write_next;
        write_next = [&] {
            if (write_pending || writing_done || local)
                return;
            if (s_.stop) {
                close_with(make_error(ErrorKind::cancelled, "bulk load cancelled"));
                return;
            }
            std::deque<Pending> lines;
            out.clear();
            if (line_no == 0)
                out = head;
            if (next_chunk(lines)) {
                std::string payload;
                for (auto& p : lines) {
                    payload += p.line;
                    payload += '\n';
                    ++line_no;
                    window_.push_back(std::move(p));
                }
                s_.sent += lines.size();
                char size[20];
                std::snprintf(size, sizeof size, "%zx\r\n", payload.size());
                out += size;
                out += payload;
                out += "\r\n";
            } else if (window_.size() >= s_.options.window_records) {
                writer_paused = true; // wait for answers
                if (out.empty())
                    return;
            } else {
                out += "0\r\n\r\n";
                writing_done = true;
            }
            write_pending = true;
            lowest.expires_after(idle);
            net::async_write(stream, net::buffer(out), [&](error_code ec, std::size_t) {
                write_pending = false;
                if (ec) {
                    // The server may have answered (401, 413, ...) and closed before reading the
                    // whole body: the read side still has its answer, or fails in turn and
                    // reports the broken connection. Either way it decides.
                    writing_done = true;
                    write_failed = true;
                    return;
                }
                lowest.expires_after(idle);
                write_next();
            });
        };

        // The answer to line n must be the next one; it acknowledges the window's front.
        auto take_front = [&](std::uint64_t n, std::uint64_t& index) -> bool {
            if (n != answered + 1 || window_.empty()) {
                close_with(make_error(ErrorKind::protocol, "bulk answer for line " +
                                                               std::to_string(n) + ", expected " +
                                                               std::to_string(answered + 1)));
                return false;
            }
            ++answered;
            index = window_.front().index;
            window_.pop_front();
            return true;
        };
        auto resume_writer = [&] {
            if (writer_paused && !write_pending) {
                writer_paused = false;
                write_next();
            }
        };

        auto handle_line = [&](std::string_view text) -> bool {
            std::uint64_t index = 0;
            if (FastAnswer fast; scan_success_answer(text, fast)) {
                if (!take_front(fast.line, index))
                    return false;
                s_.report(index, std::string(fast.handle), fast.status);
                resume_writer();
                return true;
            }
            error_code ec;
            json::value v = json::parse(text, ec);
            const json::object* o = ec ? nullptr : v.if_object();
            if (o == nullptr) {
                close_with(
                    make_error(ErrorKind::protocol, "bulk answer line is not a JSON object: " +
                                                        std::string(text.substr(0, 200))));
                return false;
            }
            if (o->contains("summary")) {
                summary_seen = true;
                return true;
            }
            const auto* ln = o->if_contains("line");
            const std::uint64_t n = ln && ln->is_int64()
                                        ? static_cast<std::uint64_t>(ln->get_int64())
                                    : ln && ln->is_uint64() ? ln->get_uint64()
                                                            : 0;
            if (!take_front(n, index))
                return false;
            std::string handle;
            if (const auto* h = o->if_contains("handle"); h && h->is_string())
                handle = std::string(h->get_string());
            const auto* st = o->if_contains("status");
            const std::string_view status_text =
                st && st->is_string() ? std::string_view(st->get_string()) : "";
            if (status_text == "created") {
                s_.report(index, std::move(handle), BulkStatus::created);
            } else if (status_text == "replaced") {
                s_.report(index, std::move(handle), BulkStatus::replaced);
            } else if (status_text == "unchanged") {
                s_.report(index, std::move(handle), BulkStatus::unchanged);
            } else {
                std::string code = "error", message;
                if (const auto* e = o->if_contains("error")) {
                    if (e->is_string()) {
                        message = std::string(e->get_string());
                    } else if (e->is_object()) {
                        const auto& eo = e->get_object();
                        if (const auto* c = eo.if_contains("code"); c && c->is_string())
                            code = std::string(c->get_string());
                        if (const auto* m = eo.if_contains("message"); m && m->is_string())
                            message = std::string(m->get_string());
                    }
                }
                s_.report(index, std::move(handle), BulkStatus::error, std::move(code),
                          std::move(message));
            }
            resume_writer();
            return true;
        };

        std::function<void()> read_next;
        read_next = [&] {
            parser.get().body().data = buf.data();
            parser.get().body().size = buf.size();
            lowest.expires_after(idle);
            http::async_read_some(stream, conn.buffer, parser, [&](error_code ec, std::size_t) {
                if (ec == http::error::need_buffer)
                    ec = {};
                if (ec) {
                    if (!local) {
                        transport_failure_ = true;
                        close_with(transport_error(ec, "bulk answer"));
                    }
                    return;
                }
                if (parser.is_header_done() && status == 0) {
                    status = static_cast<int>(parser.get().result_int());
                    header_ok = status == 200;
                }
                const std::size_t got = buf.size() - parser.get().body().size;
                if (!header_ok) {
                    error_body.append(buf.data(), got);
                } else {
                    partial.append(buf.data(), got);
                    std::size_t pos = 0;
                    for (std::size_t nl; (nl = partial.find('\n', pos)) != std::string::npos;
                         pos = nl + 1) {
                        std::string_view l(partial.data() + pos, nl - pos);
                        if (!l.empty() && l.back() == '\r')
                            l.remove_suffix(1);
                        if (!l.empty() && !handle_line(l))
                            return;
                    }
                    partial.erase(0, pos);
                }
                if (parser.is_done()) {
                    response_done = true;
                    if (!header_ok) {
                        Error e = error_from_response(status, error_body);
                        if (status == 429 || status == 503) {
                            transport_failure_ = true; // try again later on a new stream
                        }
                        close_with(std::move(e));
                    } else if (!partial.empty() && handle_line(partial)) {
                        partial.clear();
                    }
                    if (!local && !summary_seen) {
                        transport_failure_ = true;
                        close_with(make_error(ErrorKind::protocol, "bulk answer without summary"));
                    }
                    if (!local && (!writing_done || write_failed)) {
                        // The server finished early; unsent input continues on a new request.
                        transport_failure_ = true;
                        close_with(make_error(ErrorKind::connection,
                                              "server ended the bulk answer early"));
                    }
                    lowest.expires_never();
                    return;
                }
                read_next();
            });
        };

        write_next();
        read_next();
        conn.ioc.restart();
        conn.ioc.run();

        if (local) {
            err = local;
            return false;
        }
        if (!window_.empty()) {
            transport_failure_ = true;
            err = make_error(ErrorKind::protocol, "bulk answer missing lines");
            return false;
        }
        (void)response_done;
        std::lock_guard lock(s_.reader_mutex);
        return s_.input_done && resend_.empty();
    }

    Shared& s_;
    std::deque<Pending> window_; // sent on the current request, not yet answered
    std::deque<Pending> resend_; // to send again after a drop (create mode)
    bool transport_failure_ = false;
};

BulkProgress progress_of(const Shared& s) {
    BulkProgress p;
    p.sent = s.sent;
    p.done = s.done;
    p.errors = s.errors;
    p.elapsed_s = std::chrono::duration<double>(Clock::now() - s.start).count();
    p.rate = p.elapsed_s > 0 ? static_cast<double>(p.done) / p.elapsed_s : 0;
    return p;
}

} // namespace

Result<BulkSummary> Client::bulk_lines(LineReader next_line, const BulkOptions& options) const {
    if (!next_line)
        return make_error(ErrorKind::invalid_argument, "bulk needs a reader");
    if (options.streams < 1 || options.streams > 64)
        return make_error(ErrorKind::invalid_argument, "bulk streams must be 1 to 64");
    if (options.window_records == 0)
        return make_error(ErrorKind::invalid_argument, "bulk window_records must be positive");
    Shared shared(*impl_, options, next_line);
    std::vector<std::thread> threads;
    std::mutex done_mutex;
    std::condition_variable done_cv;
    int running = options.streams;
    for (int i = 0; i < options.streams; ++i) {
        threads.emplace_back([&] {
            Stream(shared).run();
            std::lock_guard lock(done_mutex);
            --running;
            done_cv.notify_all();
        });
    }
    {
        std::unique_lock lock(done_mutex);
        const auto interval = std::max(options.progress_interval, Millis(10));
        while (!done_cv.wait_for(lock, interval, [&] { return running == 0; })) {
            if (options.on_progress) {
                lock.unlock();
                const bool go_on = options.on_progress(progress_of(shared));
                lock.lock();
                if (!go_on)
                    shared.fail(make_error(ErrorKind::cancelled, "bulk load cancelled"));
            }
        }
    }
    for (auto& t : threads)
        t.join();
    if (options.on_progress)
        options.on_progress(progress_of(shared));
    if (shared.failure)
        return *shared.failure;
    BulkSummary summary;
    summary.records = shared.next_index;
    summary.created = shared.created;
    summary.replaced = shared.replaced;
    summary.unchanged = shared.unchanged;
    summary.errors = shared.errors;
    summary.resent = shared.resent;
    summary.elapsed_s = std::chrono::duration<double>(Clock::now() - shared.start).count();
    return summary;
}

Result<BulkSummary> Client::bulk(RecordReader next_record, const BulkOptions& options) const {
    if (!next_record)
        return make_error(ErrorKind::invalid_argument, "bulk needs a reader");
    Record record;
    return bulk_lines(
        [&](std::string& line) {
            record = Record{};
            if (!next_record(record))
                return false;
            line = record.to_json();
            return true;
        },
        options);
}

} // namespace idnode::sdk
