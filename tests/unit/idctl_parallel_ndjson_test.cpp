// parse_ndjson_parallel must hand on exactly what the single-threaded loop (FileLines +
// NdjsonReader::parse_encoded) gives: the same records, line numbers and rejections, in order —
// whatever the block size, the number of workers, and however lines fall across blocks.
#include "file_lines.hpp"
#include "page_cache.hpp"
#include "parallel_ndjson.hpp"
#include "record_io.hpp"
#include "temp_dir.hpp"

#include <doctest/doctest.h>

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

using namespace idnode::idctl;

namespace {

/// An in-memory FILE* over `text` (closed on destruction).
struct MemoryFile {
    explicit MemoryFile(const std::string& text) : bytes(text) {
        file = ::fmemopen(bytes.data(), bytes.size(), "rb");
        REQUIRE(file != nullptr);
    }
    ~MemoryFile() { std::fclose(file); }
    std::string bytes;
    std::FILE* file = nullptr;
};

/// "line|handle|record-or-error" for every line, as the single-threaded loop of cmd_load.cpp
/// reads them: FileLines over a temp file, blank lines skipped, NdjsonReader::parse_encoded.
std::vector<std::string> sequential(const std::string& text) {
    const std::string path = (std::filesystem::temp_directory_path() /
                              ("idctl-parallel-ndjson-" + std::to_string(::getpid())))
                                 .string();
    {
        std::ofstream out(path, std::ios::binary);
        out << text;
    }
    std::vector<std::string> out;
    {
        FileLines lines(path);
        REQUIRE(lines.is_open());
        NdjsonReader reader;
        std::string handle, record;
        LineError error;
        std::uint64_t line = 0;
        std::string_view l;
        while (lines.next(l)) {
            ++line;
            if (is_blank_line(l)) {
                continue;
            }
            if (reader.parse_encoded(l, handle, record, error)) {
                out.push_back(std::to_string(line) + '|' + handle + '|' + record);
            } else {
                out.push_back(std::to_string(line) + '|' + error.handle + "|error " +
                              error.error.message);
            }
        }
    }
    std::filesystem::remove(path);
    return out;
}

std::vector<std::string> parallel(const std::string& text, ParallelNdjsonOptions options) {
    MemoryFile f(text);
    std::vector<std::string> out;
    std::string read_error;
    REQUIRE(parse_ndjson_parallel(
        f.file, options,
        [&](std::uint64_t line, std::string_view handle, std::string_view record) {
            out.push_back(std::to_string(line) + '|' + std::string(handle) + '|' +
                          std::string(record));
        },
        [&](std::uint64_t line, const LineError& e) {
            out.push_back(std::to_string(line) + '|' + e.handle + "|error " + e.error.message);
        },
        read_error));
    return out;
}

std::string good_line(int i) {
    return R"({"handle":"88.118.8/SN-)" + std::to_string(i) +
           R"(","values":[{"index":1,"type":"URL","data":"https://x/)" + std::to_string(i) +
           R"("},{"index":2000,"type":"batch","data":{"format":"string","value":"B)" +
           std::to_string(i % 7) + R"("}}]})";
}

} // namespace

TEST_CASE("parallel NDJSON parsing hands on what the sequential loop does, in order") {
    std::string text;
    for (int i = 0; i < 400; ++i) {
        switch (i % 25) {
        case 3:
            text += "\n"; // empty line: skipped, counted
            break;
        case 7:
            text += "\r\n"; // a lone CR: skipped, counted
            break;
        case 11:
            text += R"({"handle":"88.118.8/BAD","values":[{"index":"x"}]})"
                    "\n";
            break;
        case 13:
            text += "not json at all\n";
            break;
        case 17:
            text += good_line(i) + "\r\n"; // CRLF
            break;
        case 19: // a line far longer than the small blocks below
            text += R"({"handle":"88.118.8/LONG","values":[{"index":1,"type":"note","data":")" +
                    std::string(5000, 'a') + "\"}]}\n";
            break;
        default:
            text += good_line(i) + "\n";
        }
    }
    const auto expected = sequential(text);
    REQUIRE(expected.size() > 300);
    for (unsigned threads : {1u, 2u, 4u}) {
        for (std::size_t block : {std::size_t{64}, std::size_t{1000}, std::size_t{1} << 20}) {
            CAPTURE(threads);
            CAPTURE(block);
            ParallelNdjsonOptions o;
            o.threads = threads;
            o.block_bytes = block;
            CHECK(parallel(text, o) == expected);
        }
    }
    SUBCASE("dropping pages behind the reader is a no-op on a stream without a file") {
        ParallelNdjsonOptions o;
        o.drop_consumed_pages = true;
        CHECK(parallel(text, o) == expected);
    }
    SUBCASE("a final line without a newline counts") {
        const std::string unterminated = text + good_line(9999);
        const auto all = parallel(unterminated, {});
        REQUIRE(all.size() == expected.size() + 1);
        CHECK(all.back().rfind("401|88.118.8/SN-9999|", 0) == 0);
        CHECK(all == sequential(unterminated));
    }
    SUBCASE("an empty file hands on nothing") {
        CHECK(parallel("", {}).empty());
        CHECK(parallel("\n\n", {}).empty());
    }
}

TEST_CASE("a callback that throws stops the workers and the exception propagates") {
    std::string text;
    for (int i = 0; i < 5000; ++i) {
        text += good_line(i) + "\n";
    }
    MemoryFile f(text);
    ParallelNdjsonOptions o;
    o.block_bytes = 256;
    int seen = 0;
    std::string read_error;
    CHECK_THROWS_AS(parse_ndjson_parallel(
                        f.file, o,
                        [&](std::uint64_t, std::string_view, std::string_view) {
                            if (++seen == 100) {
                                throw std::runtime_error("stop");
                            }
                        },
                        [](std::uint64_t, const LineError&) {}, read_error),
                    std::runtime_error);
    CHECK(seen == 100);
}

TEST_CASE("a read error is reported, not taken for the end of the file") {
    // A directory opens as a FILE* but fails to read (EISDIR).
    std::FILE* dir = std::fopen("/", "rb");
    REQUIRE(dir != nullptr);
    std::string read_error;
    const bool ok = parse_ndjson_parallel(
        dir, {}, [](std::uint64_t, std::string_view, std::string_view) {},
        [](std::uint64_t, const LineError&) {}, read_error);
    std::fclose(dir);
    CHECK_FALSE(ok);
    CHECK_FALSE(read_error.empty());
}

namespace {

/// Order-sensitive digest of what a loop handed on ("line|handle|record" per line).
struct Digest {
    std::uint64_t lines = 0;
    std::uint64_t hash = 1469598103934665603ull;
    void add(std::uint64_t line, std::string_view handle, std::string_view record) {
        ++lines;
        const std::string number = std::to_string(line);
        for (std::string_view part : {std::string_view(number), handle, record}) {
            for (unsigned char c : part) {
                hash = (hash ^ c) * 1099511628211ull;
            }
            hash = (hash ^ '|') * 1099511628211ull;
        }
    }
    bool operator==(const Digest&) const = default;
};

Digest read_sequentially(const std::filesystem::path& path, bool drop) {
    FileLines lines(path.string());
    REQUIRE(lines.is_open());
    if (drop) {
        lines.drop_consumed_pages();
    }
    NdjsonReader reader;
    std::string handle, record;
    LineError error;
    Digest d;
    std::uint64_t line = 0;
    std::string_view l;
    while (lines.next(l)) {
        ++line;
        if (!is_blank_line(l)) {
            REQUIRE(reader.parse_encoded(l, handle, record, error));
            d.add(line, handle, record);
        }
    }
    REQUIRE_FALSE(lines.error());
    return d;
}

Digest read_in_parallel(const std::filesystem::path& path, bool drop) {
    std::FILE* f = std::fopen(path.c_str(), "rb");
    REQUIRE(f != nullptr);
    ParallelNdjsonOptions o;
    o.drop_consumed_pages = drop;
    Digest d;
    std::string read_error;
    const bool ok = parse_ndjson_parallel(
        f, o,
        [&](std::uint64_t line, std::string_view h, std::string_view r) { d.add(line, h, r); },
        [&](std::uint64_t, const LineError&) { d.lines += 1u << 30; }, read_error);
    std::fclose(f);
    REQUIRE(ok);
    return d;
}

} // namespace

TEST_CASE("an offline load's input is dropped from the page cache behind the reader, unchanged") {
    idnode::test::TempDir dir("idctl-drop-behind");
    const auto path = dir / "input.ndjson";
    {
        std::ofstream out(path, std::ios::binary);
        for (int i = 0; out.tellp() < (48 << 20); ++i) {
            out << good_line(i) << '\n';
        }
    }
    {
        // Clean pages only can be dropped: the file must be on the disk first.
        const int fd = ::open(path.c_str(), O_RDONLY);
        REQUIRE(fd >= 0);
        REQUIRE(::fdatasync(fd) == 0);
        ::close(fd);
    }
    constexpr std::uint64_t kFront = 32 << 20;              // read and dropped well before the end
    const Digest expected = read_sequentially(path, false); // also brings the file into the cache
    REQUIRE(expected.lines > 200000);
    const auto cached = idnode::test::resident_fraction(path, 0, kFront);
    REQUIRE(cached.has_value());
    const bool observable = idnode::test::page_cache_drops_clean_pages(dir.path()) && *cached > 0.9;
    if (!observable) {
        MESSAGE("the page cache does not keep or drop this file's pages: residency not checked");
    }

    CHECK(read_sequentially(path, true) == expected);
    if (observable) {
        CHECK(*idnode::test::resident_fraction(path, 0, kFront) < 0.1);
    }
    CHECK(read_sequentially(path, false) == expected); // read back in: nothing was lost
    if (observable) {
        CHECK(*idnode::test::resident_fraction(path, 0, kFront) > 0.9);
    }
    CHECK(read_in_parallel(path, true) == expected);
    if (observable) {
        CHECK(*idnode::test::resident_fraction(path, 0, kFront) < 0.1);
    }
    CHECK(read_in_parallel(path, false) == expected);
}
