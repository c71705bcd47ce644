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
#include <future>
#include <mutex>
#include <optional>

#include <sys/mman.h>
#include <unistd.h>

namespace idnode::registry {

namespace {

/// Records waiting to be sorted, in one arena (no allocation per record): each entry is the sort
/// key (folded handle) followed by the record in the registry's own encoding.
struct SortEntry {
    std::size_t at = 0;
    std::uint32_t key_size = 0;
    std::uint32_t record_size = 0;
    std::uint64_t line = 0;
    // The 8 key bytes after the prefix every key of the buffer shares, big-endian, zero-padded:
    // comparing it orders most pairs without touching the arena (a cache miss per key).
    std::uint64_t probe = 0;
};

/// One record as the merge sees it; the views stay valid until its source advances.
struct SortHead {
    std::string_view key;
    std::uint64_t line = 0;
    std::string_view record;
};

bool head_less(const SortHead& a, const SortHead& b) {
    if (a.key != b.key) {
        return a.key < b.key;
    }
    return a.line < b.line; // equal handles keep their input order
}

/// Records waiting to be sorted: keys and records back to back in one arena, plus their places.
struct SortBuffer {
    std::string bytes;
    std::vector<SortEntry> entries;

    void add(std::string_view key, std::uint64_t line, std::string_view record) {
        entries.push_back(SortEntry{bytes.size(), static_cast<std::uint32_t>(key.size()),
                                    static_cast<std::uint32_t>(record.size()), line});
        bytes.append(key);
        bytes.append(record);
    }
    std::size_t size_bytes() const { return bytes.size() + entries.size() * sizeof(SortEntry); }
    std::string_view key(const SortEntry& e) const {
        return std::string_view(bytes).substr(e.at, e.key_size);
    }
    SortHead head(const SortEntry& e) const {
        const std::string_view all(bytes);
        return SortHead{all.substr(e.at, e.key_size), e.line,
                        all.substr(e.at + e.key_size, e.record_size)};
    }
    void sort() {
        if (entries.empty()) {
            return;
        }
        // Length of the prefix all keys share (keys arrive in arena order: a sequential pass).
        const std::string_view first = key(entries.front());
        std::size_t common = first.size();
        for (const auto& e : entries) {
            const std::string_view k = key(e);
            const std::size_t n = std::min(common, k.size());
            std::size_t i = 0;
            while (i < n && k[i] == first[i]) {
                ++i;
            }
            common = i;
        }
        for (auto& e : entries) {
            const std::string_view k = key(e);
            std::uint64_t probe = 0;
            for (std::size_t i = 0; i < 8; ++i) {
                const std::size_t at = common + i;
                probe = (probe << 8) |
                        (at < k.size() ? static_cast<unsigned char>(k[at]) : std::uint64_t{0});
            }
            e.probe = probe;
        }
        // Byte-wise order of keys with a shared prefix = order of the bytes after it; the probe
        // (zero-padded) agrees with it wherever it differs. Ties fall back to the whole key.
        std::sort(entries.begin(), entries.end(), [this](const SortEntry& a, const SortEntry& b) {
            if (a.probe != b.probe) {
                return a.probe < b.probe;
            }
            const std::string_view ka = key(a), kb = key(b);
            if (ka != kb) {
                return ka < kb;
            }
            return a.line < b.line; // equal handles keep their input order
        });
    }
    void clear() {
        bytes.clear(); // keeps the capacity for the next fill
        entries.clear();
    }
};

/// A sorted run in an unlinked temp file: [u32 key][key][u64 line][u32 record][record]...
/// (host byte order: a run never leaves this process). Buffered by hand: one write/read call
/// per MiB, none per record.
class RunFile {
public:
    explicit RunFile(const std::filesystem::path& dir) {
        std::string pattern = (dir / "idctl-load-run-XXXXXX").string();
        fd_ = ::mkstemp(pattern.data());
        if (fd_ < 0) {
            throw std::runtime_error("cannot create a sort run in " + dir.string() + ": " +
                                     std::strerror(errno));
        }
        ::unlink(pattern.c_str()); // nothing to clean up after a crash
        buffer_.reserve(kBufferBytes * 2);
    }
    ~RunFile() { ::close(fd_); }
    RunFile(const RunFile&) = delete;
    RunFile& operator=(const RunFile&) = delete;

    void write(std::string_view key, std::uint64_t line, std::string_view record) {
        append_u32(static_cast<std::uint32_t>(key.size()));
        buffer_.append(key);
        buffer_.append(reinterpret_cast<const char*>(&line), sizeof line);
        append_u32(static_cast<std::uint32_t>(record.size()));
        buffer_.append(record);
        if (buffer_.size() >= kBufferBytes) {
            flush();
        }
    }
    /// Switches from writing to reading from the start. Throws on a write error (disk full).
    void rewind() {
        flush();
        if (::lseek(fd_, 0, SEEK_SET) != 0) {
            throw std::runtime_error(std::string("rewinding a sort run failed: ") +
                                     std::strerror(errno));
        }
        buffer_.clear();
        begin_ = 0;
    }
    /// Next item (views valid until the next call); false at the end.
    bool read(SortHead& item) {
        std::uint32_t key_size = 0, record_size = 0;
        if (!fill(sizeof key_size)) {
            if (buffer_.size() != begin_) {
                throw std::runtime_error("a sort run is truncated");
            }
            return false;
        }
        std::memcpy(&key_size, buffer_.data() + begin_, sizeof key_size);
        if (!fill(sizeof key_size + key_size + sizeof item.line + sizeof record_size)) {
            throw std::runtime_error("a sort run is truncated");
        }
        const std::size_t record_size_at = begin_ + 4 + key_size + sizeof item.line;
        std::memcpy(&record_size, buffer_.data() + record_size_at, sizeof record_size);
        const std::size_t total = 4 + key_size + sizeof item.line + 4 + record_size;
        if (!fill(total)) {
            throw std::runtime_error("a sort run is truncated");
        }
        const char* p = buffer_.data() + begin_;
        item.key = std::string_view(p + 4, key_size);
        std::memcpy(&item.line, p + 4 + key_size, sizeof item.line);
        item.record = std::string_view(p + total - record_size, record_size);
        begin_ += total;
        return true;
    }

private:
    static constexpr std::size_t kBufferBytes = 1 << 20;

    void append_u32(std::uint32_t v) {
        buffer_.append(reinterpret_cast<const char*>(&v), sizeof v);
    }
    void flush() {
        std::size_t done = 0;
        while (done < buffer_.size()) {
            const ssize_t n = ::write(fd_, buffer_.data() + done, buffer_.size() - done);
            if (n < 0 && errno == EINTR) {
                continue;
            }
            if (n <= 0) {
                throw std::runtime_error(std::string("writing a sort run failed: ") +
                                         std::strerror(errno));
            }
            done += static_cast<std::size_t>(n);
        }
        buffer_.clear();
    }
    /// Makes `n` bytes available from begin_; false if the file ends first.
    bool fill(std::size_t n) {
        while (buffer_.size() - begin_ < n) {
            if (begin_ > 0) {
                buffer_.erase(0, begin_);
                begin_ = 0;
            }
            const std::size_t have = buffer_.size();
            buffer_.resize(std::max(have + kBufferBytes, n));
            ssize_t got;
            do {
                got = ::read(fd_, buffer_.data() + have, buffer_.size() - have);
            } while (got < 0 && errno == EINTR);
            if (got < 0) {
                throw std::runtime_error(std::string("reading a sort run failed: ") +
                                         std::strerror(errno));
            }
            buffer_.resize(have + static_cast<std::size_t>(got));
            if (got == 0) {
                return false;
            }
        }
        return true;
    }

    int fd_ = -1;
    std::string buffer_;
    std::size_t begin_ = 0;
};

/// Asks for transparent huge pages on a large buffer that is filled once from start to end (the
/// sort buffers): one fault per 2 MiB instead of per 4 KiB. A hint; without it nothing changes.
void advise_huge_pages(char* data, std::size_t size) {
#ifdef MADV_HUGEPAGE
    constexpr std::uintptr_t kHuge = 2u << 20;
    const auto at = reinterpret_cast<std::uintptr_t>(data);
    const std::uintptr_t begin = (at + kHuge - 1) & ~(kHuge - 1);
    const std::uintptr_t end = (at + size) & ~(kHuge - 1);
    if (end > begin) {
        ::madvise(reinterpret_cast<void*>(begin), end - begin, MADV_HUGEPAGE);
    }
#else
    (void)data;
    (void)size;
#endif
}

bool fatal_code(Errc code) {
    return code == Errc::storage_full || code == Errc::internal || code == Errc::unavailable;
}

/// One batch of records for the writer: the records back to back, each one's place and input
/// line (the spelling for the rejections file is read back from the record).
struct Batch {
    std::string bytes;
    std::vector<std::pair<std::size_t, std::size_t>> slices;
    std::vector<std::uint64_t> lines;

    std::string spelling(std::size_t i) const {
        auto view =
            RecordView::parse(std::string_view(bytes).substr(slices[i].first, slices[i].second));
        return view ? std::string(view->spelling()) : std::string();
    }
};

/// Batches handed back by the writer once their ops are gone. The loader keeps at most `keep`
/// batches in flight and the pool keeps as many, so that a long load cycles through the same warm
/// buffers instead of faulting in fresh memory (and copying into it) for every batch.
class BatchPool {
public:
    explicit BatchPool(std::size_t keep) : keep_(keep) {}

    static std::shared_ptr<Batch> take(const std::shared_ptr<BatchPool>& self,
                                       std::size_t reserve_bytes, std::size_t reserve_records) {
        Batch* batch = nullptr;
        {
            std::lock_guard lock(self->mutex_);
            if (!self->free_.empty()) {
                batch = self->free_.back().release();
                self->free_.pop_back();
            }
        }
        if (batch == nullptr) {
            batch = new Batch();
            batch->bytes.reserve(reserve_bytes);
            batch->slices.reserve(reserve_records);
            batch->lines.reserve(reserve_records);
        }
        batch->bytes.clear();
        batch->slices.clear();
        batch->lines.clear();
        return std::shared_ptr<Batch>(batch, [self](Batch* b) { self->give(b); });
    }

private:
    void give(Batch* b) {
        std::unique_ptr<Batch> owned(b);
        std::lock_guard lock(mutex_);
        if (free_.size() < keep_) {
            free_.push_back(std::move(owned));
        }
    }
    const std::size_t keep_;
    std::mutex mutex_;
    std::vector<std::unique_ptr<Batch>> free_;
};

} // namespace

struct OfflineLoader::Impl {
    OfflineLoadOptions options;
    RejectionSink sink;
    std::unique_ptr<Registry> registry;
    std::vector<std::string> homed;

    LoadSummary summary;
    std::string last_key; // of the last record that arrived in order
    // The first records wait in the sort buffer until kProbeRecords of them arrived in order
    // (then they are fed, and later ones go straight to the writer while they stay in order).
    // A file that is out of order from its start is thereby sorted as a whole: feeding its first
    // record or two at once would put their (random) keys ahead of about everything that
    // follows, and every record sorting below them would miss the append path.
    static constexpr std::size_t kProbeRecords = 16384;
    bool probing = true;
    bool spilling = false;

    // The batch being filled (pooled), and how many batches may wait for the writer at once.
    std::shared_ptr<BatchPool> pool;
    std::shared_ptr<Batch> batch;
    std::size_t batch_reserve = 4 << 20;
    std::size_t max_in_flight = 1;

    // The last prefix checked against the homed ones (sorted input repeats it).
    std::string last_homed_prefix;
    bool last_homed = false;
    Handle handle;         // of the record being added
    std::string reencoded; // add_encoded with a record spelled differently from its handle
    std::string encoded;   // add()

    // Sort path: `filling` takes records; a full one becomes `spilled`, which a background
    // thread sorts and writes as a run. Declared before pending_spill, whose destructor waits
    // for that thread.
    SortBuffer filling, spilled;
    std::vector<std::unique_ptr<RunFile>> runs;
    std::future<std::unique_ptr<RunFile>> pending_spill;

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
        if (!batch || batch->slices.empty()) {
            return;
        }
        {
            // Bounded: the pool's batches stay warm, and memory stays ~max_in_flight batches.
            std::unique_lock lock(mutex);
            idle.wait(lock, [&] { return in_flight < max_in_flight; });
            ++in_flight;
        }
        std::shared_ptr<const Batch> submitted = std::move(batch);
        const std::string_view bytes(submitted->bytes);
        const std::shared_ptr<const void> owner(submitted, &submitted->bytes);
        WriteBatch out;
        out.account = options.account;
        out.ops.reserve(submitted->slices.size());
        for (const auto& [at, size] : submitted->slices) {
            out.ops.emplace_back(PutEncodedRecord{bytes.substr(at, size), owner, options.mode});
        }
        registry->submit(std::move(out), [this, submitted](BatchResult results) {
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
                            sink(LoadRejection{submitted->lines[i], submitted->spelling(i),
                                               r.error});
                        }
                    }
                }
            }
            --in_flight;
            idle.notify_all();
        });
    }

    /// Appends a record (spelled as its handle) to the batch being filled.
    void feed(std::uint64_t line, std::string_view record) {
        if (!batch) {
            batch = BatchPool::take(pool, batch_reserve, options.batch_records);
        }
        batch->slices.emplace_back(batch->bytes.size(), record.size());
        batch->bytes.append(record);
        batch->lines.push_back(line);
        if (batch->slices.size() >= options.batch_records) {
            batch_reserve = std::max(batch_reserve, batch->bytes.size());
            submit_batch();
        }
    }

    /// Whether the probe can take this record without reaching the spill limit.
    bool probe_has_room(std::string_view key, std::string_view record) const {
        return filling.entries.size() < kProbeRecords &&
               filling.size_bytes() + key.size() + record.size() + sizeof(SortEntry) <
                   sort_buffer_limit();
    }

    /// The probe ended with every record in order: feed them (arrival order is key order).
    void end_probe_in_order() {
        probing = false;
        for (const SortEntry& e : filling.entries) {
            const SortHead h = filling.head(e);
            feed(h.line, h.record);
        }
        filling.clear();
    }

    /// Half of --sort-memory: one buffer fills while the other is sorted and spilled.
    std::size_t sort_buffer_limit() const {
        return std::max<std::size_t>(options.sort_memory_bytes / 2, 1);
    }

    void buffer_for_sort(std::string_view key, std::uint64_t line, std::string_view record) {
        if (filling.bytes.capacity() < sort_buffer_limit()) {
            // Once, at the limit (an empty string's capacity is not 0): appends then never
            // reallocate and copy what is already there. Pages are touched only as it fills.
            filling.bytes.reserve(sort_buffer_limit());
            advise_huge_pages(filling.bytes.data(), filling.bytes.capacity());
        }
        filling.add(key, line, record);
        if (filling.size_bytes() >= sort_buffer_limit()) {
            spill();
        }
    }

    /// Collects the run the background spill wrote (rethrowing its failure).
    void wait_for_spill() {
        if (pending_spill.valid()) {
            runs.push_back(pending_spill.get());
            ++summary.runs;
        }
    }

    /// Hands the full buffer to a background thread that sorts it and writes it as a run, and
    /// goes on filling the other one: parsing and sorting overlap.
    void spill() {
        wait_for_spill();
        std::swap(filling, spilled);
        pending_spill = std::async(std::launch::async, [this] {
            spilled.sort();
            auto run = std::make_unique<RunFile>(options.temp_dir);
            for (const auto& e : spilled.entries) {
                const SortHead h = spilled.head(e);
                run->write(h.key, h.line, h.record);
            }
            run->rewind();
            spilled.clear();
            return run;
        });
    }

    /// K-way merge of the spilled runs and the in-memory buffer, fed in key order.
    void merge_and_feed() {
        wait_for_spill();
        filling.sort();
        struct Head {
            SortHead item;
            std::size_t source; // runs.size() = the in-memory buffer
        };
        std::size_t buffer_pos = 0;
        auto next = [&](std::size_t source, SortHead& item) {
            if (source < runs.size()) {
                return runs[source]->read(item);
            }
            if (buffer_pos == filling.entries.size()) {
                return false;
            }
            item = filling.head(filling.entries[buffer_pos++]);
            return true;
        };
        if (runs.empty()) {
            SortHead item;
            while (!failed && next(0, item)) {
                feed(item.line, item.record);
            }
        } else {
            auto greater = [](const Head& a, const Head& b) { return head_less(b.item, a.item); };
            std::vector<Head> heads;
            for (std::size_t s = 0; s <= runs.size(); ++s) {
                Head h{{}, s};
                if (next(s, h.item)) {
                    heads.push_back(h);
                }
            }
            std::make_heap(heads.begin(), heads.end(), greater);
            while (!heads.empty() && !failed) {
                std::pop_heap(heads.begin(), heads.end(), greater);
                Head& h = heads.back();
                feed(h.item.line, h.item.record); // copies: the views die when the source moves
                if (next(h.source, h.item)) {
                    std::push_heap(heads.begin(), heads.end(), greater);
                } else {
                    heads.pop_back();
                }
            }
        }
        filling = SortBuffer();
        spilled = SortBuffer();
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
    ro.log_record_copies = false; // compact change-log entries (ChangeEntry::loaded)
    ro.writeback_window_bytes = options.writeback_window_bytes;
    ro.mode = OpenMode::exclusive;
    ro.clock = options.clock;
    impl->registry = Registry::open(std::move(ro));
    impl->registry->snapshot().for_each_prefix(
        [&](const std::string& key, const PrefixRecord& prefix) {
            if (prefix.kind == PrefixKind::node) {
                impl->homed.push_back(key);
            }
        });
    if (impl->homed.empty()) {
        throw StartupError(Errc::not_found, "the database in " + options.data_dir.string() +
                                                " homes no node prefix (initialise it with idctl "
                                                "init first)");
    }
    impl->options = std::move(options);
    impl->sink = std::move(rejected);
    // One group being committed and one queued behind it keep the writer busy.
    const std::size_t per_group = (impl->options.max_group_ops + impl->options.batch_records - 1) /
                                  impl->options.batch_records;
    impl->max_in_flight = std::max<std::size_t>(2 * per_group, 2);
    impl->pool = std::make_shared<BatchPool>(impl->max_in_flight + 1);
    return std::unique_ptr<OfflineLoader>(new OfflineLoader(std::move(impl)));
}

void OfflineLoader::add(std::uint64_t line, std::string_view text,
                        std::vector<HandleValue> values) {
    std::string& record = impl_->encoded;
    RecordEncoder encoder(record, text);
    for (const auto& v : values) {
        encoder.add(v);
    }
    add_encoded(line, text, record);
}

void OfflineLoader::add_encoded(std::uint64_t line, std::string_view text,
                                std::string_view record) {
    Impl& m = *impl_;
    ++m.summary.records;
    if (m.failed) {
        return; // finish() reports the error; the load is not complete anyway
    }
    Handle& handle = m.handle; // reused: no allocation per record
    if (Status st = parse_handle(text, m.options.handle_limits, handle); !st) {
        m.report(line, text, st.error());
        return;
    }
    if (!m.homes(handle.prefix_key())) {
        m.report(line, text,
                 Error{Errc::not_homed,
                       "prefix " + std::string(handle.prefix()) + " is not homed by this node"});
        return;
    }
    auto view = RecordView::parse(record);
    if (!view) {
        m.report(line, text,
                 Error{Errc::invalid_value, handle.spelling() +
                                                ": the encoded record is malformed (" +
                                                view.error().message + ")"});
        return;
    }
    if (view->spelling() != text) {
        // The writer takes the identifier from the record: spell it as the handle given.
        RecordEncoder encoder(m.reencoded, text);
        for (const ValueView& v : *view) {
            encoder.add(v.to_value());
        }
        record = m.reencoded;
    }
    const std::string& key = handle.key();
    if (m.spilling) {
        m.buffer_for_sort(key, line, record);
        return;
    }
    const bool in_order = key >= m.last_key;
    if (in_order) {
        m.last_key = key;
    }
    if (m.probing && !m.probe_has_room(key, record)) {
        m.end_probe_in_order();
    }
    if (m.probing) {
        m.buffer_for_sort(key, line, record);
        if (!in_order) {
            m.probing = false; // everything so far stays in the sort buffer
            m.spilling = true;
            m.summary.sorted = false;
        }
        return;
    }
    if (in_order) {
        m.feed(line, record);
        return;
    }
    m.spilling = true;
    m.summary.sorted = false;
    m.submit_batch(); // what arrived in order is written as it is
    m.buffer_for_sort(key, line, record);
}

void OfflineLoader::reject(std::uint64_t line, std::string_view handle, Error error) {
    ++impl_->summary.records;
    impl_->report(line, handle, std::move(error));
}

Result<LoadSummary> OfflineLoader::finish() {
    Impl& m = *impl_;
    try {
        if (m.probing) {
            m.end_probe_in_order();
        }
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
