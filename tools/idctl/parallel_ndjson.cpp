// parse_ndjson_parallel (parallel_ndjson.hpp): the calling thread reads blocks of whole lines and
// hands results on in order; workers parse blocks first come, first served.
#include "parallel_ndjson.hpp"

#include "file_lines.hpp"

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <exception>
#include <limits>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace idnode::idctl {

namespace {

constexpr std::uint32_t kNoError = std::numeric_limits<std::uint32_t>::max();

/// One parsed line of a block: where its handle and record are in Block::out, or which error.
struct ParsedLine {
    std::uint64_t line = 0; // within the block, from 1
    std::uint32_t error = kNoError;
    std::uint32_t handle_size = 0;
    std::size_t at = 0; // handle, then the record, in Block::out
    std::size_t record_size = 0;
};

/// Whole lines read from the file and, once a worker is done, what they parsed to. Reused.
struct Block {
    std::unique_ptr<char[]> text; // no zero-fill on growth (std::string would clear each MiB)
    std::size_t capacity = 0, size = 0;
    std::uint64_t lines = 0; // lines in `text`, empty ones included
    std::vector<ParsedLine> parsed_lines;
    std::string out;
    std::vector<LineError> errors;
    bool parsed = false; // guarded by Shared::mutex
    std::exception_ptr failure;

    void grow(std::size_t at_least) {
        if (at_least <= capacity) {
            return;
        }
        auto bigger = std::make_unique<char[]>(at_least);
        if (size != 0) {
            std::memcpy(bigger.get(), text.get(), size);
        }
        text = std::move(bigger);
        capacity = at_least;
    }
    void reset() {
        size = 0;
        lines = 0;
        parsed_lines.clear();
        out.clear();
        errors.clear();
        parsed = false;
        failure = nullptr;
    }
};

/// Splits the file into blocks that end at a newline (the last one may not).
class BlockReader {
public:
    BlockReader(std::FILE* file, std::size_t block_bytes, bool drop_consumed_pages)
        : file_(file), block_bytes_(std::max<std::size_t>(block_bytes, 64)) {
        if (drop_consumed_pages) {
            const off_t at = ::ftello(file);
            read_end_ = at > 0 ? static_cast<std::uint64_t>(at) : 0;
            drop_ = DropBehind(file, read_end_);
        }
    }

    /// Fills `b` with the next whole lines; false at the end of the file (or after a read
    /// error: failed()).
    bool fill(Block& b) {
        b.reset();
        if (eof_ && carry_.empty()) {
            return false;
        }
        b.grow(carry_.size() + block_bytes_);
        if (!carry_.empty()) {
            std::memcpy(b.text.get(), carry_.data(), carry_.size());
            b.size = carry_.size();
            carry_.clear();
        }
        for (;;) {
            if (eof_) {
                return b.size != 0; // the final line, without a newline
            }
            const std::size_t got =
                std::fread(b.text.get() + b.size, 1, b.capacity - b.size, file_);
            b.size += got;
            read_end_ += got;
            drop_.consumed(read_end_); // in our memory now: the kernel's copy is not needed
            if (got == 0) {
                eof_ = true;
                failed_ = std::ferror(file_) != 0;
                if (failed_) {
                    return false;
                }
                continue;
            }
            if (const void* nl = ::memrchr(b.text.get(), '\n', b.size)) {
                const auto keep =
                    static_cast<std::size_t>(static_cast<const char*>(nl) - b.text.get()) + 1;
                carry_.assign(b.text.get() + keep, b.size - keep);
                b.size = keep;
                return true;
            }
            b.grow(b.capacity * 2); // one line longer than the block so far: read on
        }
    }
    bool done() const noexcept { return eof_ && carry_.empty(); }
    bool failed() const noexcept { return failed_; }

private:
    std::FILE* file_;
    std::size_t block_bytes_;
    std::string carry_;          // the partial line after the last newline read
    std::uint64_t read_end_ = 0; // file offset after the last byte read (with drop_ only)
    DropBehind drop_;
    bool eof_ = false;
    bool failed_ = false;
};

/// Parses every line of `b` with `reader` (the worker's own).
void parse_block(Block& b, NdjsonReader& reader, std::string& handle, std::string& record,
                 LineError& error) {
    const char* p = b.text.get();
    const char* const end = p + b.size;
    std::uint64_t line = 0;
    while (p < end) {
        const char* nl = static_cast<const char*>(std::memchr(p, '\n', end - p));
        const char* line_end = nl != nullptr ? nl : end;
        const std::string_view text(p, static_cast<std::size_t>(line_end - p));
        p = nl != nullptr ? nl + 1 : end;
        ++line;
        if (is_blank_line(text)) {
            continue;
        }
        ParsedLine out;
        out.line = line;
        if (reader.parse_encoded(text, handle, record, error)) {
            out.at = b.out.size();
            out.handle_size = static_cast<std::uint32_t>(handle.size());
            out.record_size = record.size();
            b.out.append(handle);
            b.out.append(record);
        } else {
            out.error = static_cast<std::uint32_t>(b.errors.size());
            b.errors.push_back(error);
        }
        b.parsed_lines.push_back(out);
    }
    b.lines = line;
}

/// What the calling thread and the workers share.
struct Shared {
    std::mutex mutex;
    std::condition_variable work;   // a block to parse, or stop
    std::condition_variable parsed; // a block is parsed
    std::deque<Block*> todo;        // in input order
    bool stopping = false;
};

void worker_loop(Shared& shared) {
    NdjsonReader reader;
    std::string handle, record;
    LineError error;
    for (;;) {
        Block* b = nullptr;
        {
            std::unique_lock lock(shared.mutex);
            shared.work.wait(lock, [&] { return shared.stopping || !shared.todo.empty(); });
            if (shared.stopping) {
                return;
            }
            b = shared.todo.front();
            shared.todo.pop_front();
        }
        try {
            parse_block(*b, reader, handle, record, error);
        } catch (...) {
            b->failure = std::current_exception();
        }
        {
            std::lock_guard lock(shared.mutex);
            b->parsed = true;
        }
        // Only the calling thread waits on `parsed`, but it waits for one particular block.
        shared.parsed.notify_all();
    }
}

/// Stops and joins the workers however run() ends (a callback may throw).
class Workers {
public:
    Workers(Shared& shared, unsigned count) : shared_(shared) {
        for (unsigned i = 0; i < count; ++i) {
            threads_.emplace_back([&shared] { worker_loop(shared); });
        }
    }
    ~Workers() {
        {
            std::lock_guard lock(shared_.mutex);
            shared_.stopping = true;
        }
        shared_.work.notify_all();
        for (auto& t : threads_) {
            t.join();
        }
    }
    Workers(const Workers&) = delete;
    Workers& operator=(const Workers&) = delete;

private:
    Shared& shared_;
    std::vector<std::thread> threads_;
};

} // namespace

bool parse_ndjson_parallel(std::FILE* file, const ParallelNdjsonOptions& options,
                           const OnEncodedRecord& on_record, const OnRejectedLine& on_reject,
                           std::string& error) {
    const unsigned threads = std::max(1u, options.threads);
    const std::size_t max_blocks =
        options.blocks_in_flight != 0 ? options.blocks_in_flight : 2 * threads + 2;
    BlockReader reader(file, options.block_bytes, options.drop_consumed_pages);
    std::deque<std::unique_ptr<Block>> in_order; // read, handed to the workers, not yet on
    std::vector<std::unique_ptr<Block>> spare;
    Shared shared;
    Workers workers(shared, threads); // declared after what the workers touch: joined first
    std::uint64_t first_line = 0;     // lines in the blocks already handed on
    for (;;) {
        while (!reader.done() && !reader.failed() && in_order.size() < max_blocks) {
            std::unique_ptr<Block> b;
            if (spare.empty()) {
                b = std::make_unique<Block>();
            } else {
                b = std::move(spare.back());
                spare.pop_back();
            }
            if (!reader.fill(*b)) {
                spare.push_back(std::move(b));
                break;
            }
            Block* raw = b.get();
            in_order.push_back(std::move(b));
            {
                std::lock_guard lock(shared.mutex);
                shared.todo.push_back(raw);
            }
            shared.work.notify_one();
        }
        if (in_order.empty()) {
            break;
        }
        Block& b = *in_order.front();
        {
            std::unique_lock lock(shared.mutex);
            shared.parsed.wait(lock, [&] { return b.parsed; });
        }
        if (b.failure) {
            std::rethrow_exception(b.failure);
        }
        const std::string_view out(b.out);
        for (const ParsedLine& l : b.parsed_lines) {
            if (l.error == kNoError) {
                on_record(first_line + l.line, out.substr(l.at, l.handle_size),
                          out.substr(l.at + l.handle_size, l.record_size));
            } else {
                on_reject(first_line + l.line, b.errors[l.error]);
            }
        }
        first_line += b.lines;
        spare.push_back(std::move(in_order.front()));
        in_order.pop_front();
    }
    if (reader.failed()) {
        error = std::strerror(errno);
        return false;
    }
    return true;
}

} // namespace idnode::idctl
