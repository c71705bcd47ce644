// parse_ndjson_parallel must hand on exactly what the single-threaded loop (FileLines +
// NdjsonReader::parse_encoded) gives: the same records, line numbers and rejections, in order —
// whatever the block size, the number of workers, and however lines fall across blocks.
#include "file_lines.hpp"
#include "parallel_ndjson.hpp"
#include "record_io.hpp"

#include <doctest/doctest.h>

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
