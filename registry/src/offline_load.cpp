// Offline bulk load (offline_load.hpp): an exclusive, non-durable Registry whose writer does all
// the record work, fed in key order (directly, or after an external merge sort).
#include "idnode/registry/offline_load.hpp"

#include "idnode/registry/admin.hpp"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <queue>
#include <unistd.h>

namespace idnode::registry {

namespace {

/// One record waiting to be sorted: its sort key (folded handle), input line, and the record in
/// the registry's own encoding (spelling + values), which is also its on-disk form in a run.
struct SortItem {
    std::string key;
    std::uint64_t line = 0;
    std::string record;
};

bool item_less(const SortItem& a, const SortItem& b) {
    if (a.key != b.key) {
        return a.key < b.key;
    }
    return a.line < b.line;
}

void put_u32(std::FILE* f, std::uint32_t v) {
    std::fwrite(&v, sizeof v, 1, f);
}

/// A sorted run in an unlinked temp file: [u32 key][key][u64 line][u32 record][record]...
/// (host byte order: a run never leaves this process).
class RunFile {
public:
    explicit RunFile(const std::filesystem::path& dir) {
        std::string pattern = (dir / "idctl-load-run-XXXXXX").string();
        const int fd = ::mkstemp(pattern.data());
        if (fd < 0) {
            throw std::runtime_error("cannot create a sort run in " + dir.string() + ": " +
                                     std::strerror(errno));
        }
        ::unlink(pattern.c_str()); // nothing to clean up after a crash
        file_ = ::fdopen(fd, "w+b");
        if (file_ == nullptr) {
            ::close(fd);
            throw std::runtime_error("fdopen failed for a sort run");
        }
        buffer_.resize(1 << 20);
        std::setvbuf(file_, buffer_.data(), _IOFBF, buffer_.size());
    }
    ~RunFile() {
        if (file_ != nullptr) {
            std::fclose(file_);
        }
    }
    RunFile(const RunFile&) = delete;
    RunFile& operator=(const RunFile&) = delete;

    void write(const SortItem& item) {
        put_u32(file_, static_cast<std::uint32_t>(item.key.size()));
        std::fwrite(item.key.data(), 1, item.key.size(), file_);
        std::fwrite(&item.line, sizeof item.line, 1, file_);
        put_u32(file_, static_cast<std::uint32_t>(item.record.size()));
        std::fwrite(item.record.data(), 1, item.record.size(), file_);
    }
    /// Switches from writing to reading from the start. Throws on a write error (disk full).
    void rewind() {
        if (std::fflush(file_) != 0 || std::ferror(file_)) {
            throw std::runtime_error(std::string("writing a sort run failed: ") +
                                     std::strerror(errno));
        }
        std::rewind(file_);
    }
    /// Next item; false at the end.
    bool read(SortItem& item) {
        std::uint32_t n = 0;
        if (std::fread(&n, sizeof n, 1, file_) != 1) {
            return false;
        }
        item.key.resize(n);
        std::uint32_t r = 0;
        if (std::fread(item.key.data(), 1, n, file_) != n ||
            std::fread(&item.line, sizeof item.line, 1, file_) != 1 ||
            std::fread(&r, sizeof r, 1, file_) != 1) {
            throw std::runtime_error("a sort run is truncated");
        }
        item.record.resize(r);
        if (std::fread(item.record.data(), 1, r, file_) != r) {
            throw std::runtime_error("a sort run is truncated");
        }
        return true;
    }

private:
    std::FILE* file_ = nullptr;
    std::vector<char> buffer_;
};

bool fatal_code(Errc code) {
    return code == Errc::storage_full || code == Errc::internal || code == Errc::unavailable;
}

} // namespace

struct OfflineLoader::Impl {
    OfflineLoadOptions options;
    RejectionSink sink;
    std::unique_ptr<Registry> registry;
    std::vector<std::string> homed;

    LoadSummary summary;
    std::string last_key; // of the last record fed in order
    bool spilling = false;

    // Direct path: the batch being filled, with each record's input line and spelling (kept
    // for the rejections file; concatenated to avoid an allocation per record).
    WriteBatch batch;
    std::vector<std::uint64_t> batch_lines;
    std::string batch_spellings;
    std::vector<std::uint32_t> batch_spelling_ends;

    // The last prefix checked against the homed ones (sorted input repeats it).
    std::string last_homed_prefix;
    bool last_homed = false;

    // Sort path.
    std::vector<SortItem> buffer;
    std::size_t buffer_bytes = 0;
    std::vector<std::unique_ptr<RunFile>> runs;

    // Shared with completions on the writer thread.
    std::mutex mutex;
    std::condition_variable idle;
    std::size_t in_flight = 0;
    std::optional<Error> fatal;
    std::atomic<bool> failed{false}; // fatal is set: stop feeding

    // Closing the registry drains its queue, running completions that use the members above:
    // it must go first.
    ~Impl() { registry.reset(); }

    void report(std::uint64_t line, std::string_view handle, Error error) {
        std::lock_guard lock(mutex);
        ++summary.rejected;
        if (sink) {
            sink(LoadRejection{line, std::string(handle), std::move(error)});
        }
    }

    bool homes(std::string_view prefix_key) {
        if (!last_homed_prefix.empty() && prefix_key == last_homed_prefix) {
            return last_homed;
        }
        last_homed = std::any_of(homed.begin(), homed.end(), [&](const std::string& node) {
            return prefix_is_under(prefix_key, node);
        });
        last_homed_prefix.assign(prefix_key);
        return last_homed;
    }

    void submit_batch() {
        if (batch.ops.empty()) {
            return;
        }
        {
            std::lock_guard lock(mutex);
            ++in_flight;
        }
        WriteBatch out;
        out.account = options.account;
        out.ops.swap(batch.ops);
        batch.ops.reserve(options.batch_records);
        auto lines = std::make_shared<std::vector<std::uint64_t>>();
        lines->swap(batch_lines);
        batch_lines.reserve(options.batch_records);
        // Spellings for the rejections file, looked at only when something failed.
        auto spellings = std::make_shared<std::pair<std::string, std::vector<std::uint32_t>>>();
        spellings->first.swap(batch_spellings);
        spellings->second.swap(batch_spelling_ends);
        batch_spelling_ends.reserve(options.batch_records);
        auto spelling = [spellings](std::size_t i) {
            const auto& [text, ends] = *spellings;
            const std::size_t begin = i == 0 ? 0 : ends[i - 1];
            return text.substr(begin, ends[i] - begin);
        };
        registry->submit(std::move(out), [this, lines, spelling](BatchResult results) {
            std::lock_guard lock(mutex);
            for (std::size_t i = 0; i < results.size(); ++i) {
                const OpResult& r = results[i];
                switch (r.outcome) {
                case Outcome::created:
                    ++summary.created;
                    break;
                case Outcome::replaced:
                case Outcome::updated:
                    ++summary.replaced;
                    break;
                case Outcome::unchanged:
                    ++summary.unchanged;
                    break;
                default:
                    if (fatal_code(r.error.code)) {
                        if (!fatal) {
                            fatal = r.error;
                            failed = true;
                        }
                    } else {
                        ++summary.rejected;
                        if (sink) {
                            sink(LoadRejection{(*lines)[i], spelling(i), r.error});
                        }
                    }
                }
            }
            --in_flight;
            idle.notify_all();
        });
    }

    void feed(std::uint64_t line, Handle handle, std::string record) {
        batch_spellings.append(handle.spelling());
        batch_spelling_ends.push_back(static_cast<std::uint32_t>(batch_spellings.size()));
        batch.ops.push_back(PutEncodedRecord{std::move(handle), std::move(record), options.mode});
        batch_lines.push_back(line);
        if (batch.ops.size() >= options.batch_records) {
            submit_batch();
        }
    }

    void spill() {
        std::sort(buffer.begin(), buffer.end(), item_less);
        auto run = std::make_unique<RunFile>(options.temp_dir);
        for (const auto& item : buffer) {
            run->write(item);
        }
        run->rewind();
        runs.push_back(std::move(run));
        ++summary.runs;
        buffer.clear();
        buffer_bytes = 0;
    }

    void feed_encoded(SortItem& item) {
        auto view = RecordView::parse(item.record);
        auto handle = view ? parse_handle(view->spelling(), options.handle_limits)
                           : Result<Handle>(view.error());
        if (!handle) {
            report(item.line, view ? std::string(view->spelling()) : std::string(), handle.error());
            return;
        }
        feed(item.line, std::move(handle).value(), std::move(item.record));
    }

    /// K-way merge of the spilled runs and the in-memory buffer, fed in key order.
    void merge_and_feed() {
        std::sort(buffer.begin(), buffer.end(), item_less);
        if (runs.empty()) {
            for (auto& item : buffer) {
                feed_encoded(item);
            }
            buffer.clear();
            return;
        }
        struct Head {
            SortItem item;
            std::size_t source; // runs.size() = the in-memory buffer
        };
        auto greater = [](const Head& a, const Head& b) { return item_less(b.item, a.item); };
        std::priority_queue<Head, std::vector<Head>, decltype(greater)> heads(greater);
        std::size_t buffer_pos = 0;
        auto next = [&](std::size_t source, SortItem& item) {
            if (source < runs.size()) {
                return runs[source]->read(item);
            }
            if (buffer_pos == buffer.size()) {
                return false;
            }
            item = std::move(buffer[buffer_pos++]);
            return true;
        };
        for (std::size_t s = 0; s <= runs.size(); ++s) {
            Head h{{}, s};
            if (next(s, h.item)) {
                heads.push(std::move(h));
            }
        }
        while (!heads.empty()) {
            Head h = std::move(const_cast<Head&>(heads.top()));
            heads.pop();
            feed_encoded(h.item);
            if (next(h.source, h.item)) {
                heads.push(std::move(h));
            }
            if (failed) {
                break;
            }
        }
        buffer.clear();
        runs.clear();
    }
};

OfflineLoader::OfflineLoader(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

OfflineLoader::~OfflineLoader() = default;

std::unique_ptr<OfflineLoader> OfflineLoader::open(OfflineLoadOptions options,
                                                   RejectionSink rejected) {
    std::error_code ec;
    if (!std::filesystem::exists(options.data_dir / "data.mdb", ec)) {
        throw StartupError(Errc::not_found, "no database in " + options.data_dir.string() +
                                                " (initialise it with idctl init first)");
    }
    auto impl = std::make_unique<Impl>();
    if (options.temp_dir.empty()) {
        options.temp_dir = options.data_dir;
    }
    options.batch_records = std::max<std::size_t>(options.batch_records, 1);
    RegistryOptions ro;
    ro.data_dir = options.data_dir;
    ro.max_db_size = options.max_db_size;
    ro.value_limits = options.value_limits;
    ro.max_group_ops = options.max_group_ops;
    ro.max_queued_ops = options.max_group_ops * 4;
    ro.durable = false;
    ro.mode = OpenMode::exclusive;
    ro.clock = options.clock;
    impl->registry = Registry::open(std::move(ro));
    {
        auto snap = impl->registry->snapshot();
        std::string cursor;
        do {
            auto page = snap.list_entries(Table::prefixes, cursor, 1000);
            for (const auto& [key, value] : page.entries) {
                auto prefix = decode_prefix(value);
                if (prefix && prefix->kind == PrefixKind::node) {
                    impl->homed.push_back(key);
                }
            }
            cursor = page.next_cursor;
        } while (!cursor.empty());
    }
    if (impl->homed.empty()) {
        throw StartupError(Errc::not_found, "the database in " + options.data_dir.string() +
                                                " homes no node prefix (initialise it with idctl "
                                                "init first)");
    }
    impl->options = std::move(options);
    impl->sink = std::move(rejected);
    impl->batch.ops.reserve(impl->options.batch_records);
    return std::unique_ptr<OfflineLoader>(new OfflineLoader(std::move(impl)));
}

void OfflineLoader::add(std::uint64_t line, std::string_view text,
                        std::vector<HandleValue> values) {
    std::string record;
    RecordEncoder encoder(record, text);
    for (const auto& v : values) {
        encoder.add(v);
    }
    add_encoded(line, text, std::move(record));
}

void OfflineLoader::add_encoded(std::uint64_t line, std::string_view text, std::string record) {
    Impl& m = *impl_;
    ++m.summary.records;
    if (m.failed) {
        return; // finish() reports the error; the load is not complete anyway
    }
    auto handle = parse_handle(text, m.options.handle_limits);
    if (!handle) {
        m.report(line, text, handle.error());
        return;
    }
    if (!m.homes(handle->prefix_key())) {
        m.report(line, text,
                 Error{Errc::not_homed,
                       "prefix " + std::string(handle->prefix()) + " is not homed by this node"});
        return;
    }
    if (!m.spilling && handle->key() >= m.last_key) {
        m.last_key = handle->key();
        m.feed(line, std::move(handle).value(), std::move(record));
        return;
    }
    if (!m.spilling) {
        m.spilling = true;
        m.summary.sorted = false;
        m.submit_batch(); // what arrived in order is written as it is
    }
    SortItem item{handle->key(), line, std::move(record)};
    m.buffer_bytes += item.key.size() + item.record.size() + sizeof(SortItem);
    m.buffer.push_back(std::move(item));
    if (m.buffer_bytes >= m.options.sort_memory_bytes) {
        m.spill();
    }
}

void OfflineLoader::reject(std::uint64_t line, std::string_view handle, Error error) {
    ++impl_->summary.records;
    impl_->report(line, handle, std::move(error));
}

Result<LoadSummary> OfflineLoader::finish() {
    Impl& m = *impl_;
    try {
        if (m.spilling) {
            m.merge_and_feed();
        }
        m.submit_batch();
    } catch (const std::exception& e) {
        std::unique_lock lock(m.mutex);
        m.idle.wait(lock, [&] { return m.in_flight == 0; });
        return Error{Errc::internal, e.what()};
    }
    {
        std::unique_lock lock(m.mutex);
        m.idle.wait(lock, [&] { return m.in_flight == 0; });
        if (m.fatal) {
            return *m.fatal;
        }
    }
    if (Status st = m.registry->sync(); !st) {
        return st.error();
    }
    std::lock_guard lock(m.mutex);
    return m.summary;
}

const std::vector<std::string>& OfflineLoader::homed_prefixes() const noexcept {
    return impl_->homed;
}

} // namespace idnode::registry
