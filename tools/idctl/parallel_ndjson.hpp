// NDJSON lines parsed into the registry's stored encoding on worker threads, for
// `load --offline`.
//
// Why: an offline load of sorted input runs two busy threads — the one parsing lines
// (NdjsonReader::parse_encoded) and the registry's writer — and the parsing one was the slower
// (about 1.2 against 1.0 µs per record), so the writer waited for it. Here the calling thread only
// reads the file in blocks of whole lines and hands the results on; `threads` workers, each with
// its own NdjsonReader, parse the blocks; the results come back to the calling thread in input
// order. The loader (which one thread drives) therefore sees exactly the sequence the
// single-threaded loop gives it: the same records, line numbers and rejections, in the same order.
//
// Lines are numbered from 1 as FileLines reads them (a final line without a newline counts; empty
// lines and lines of only "\r" are skipped but counted). Memory: about 2 × block_bytes per block,
// at most `blocks_in_flight` blocks.
//
// Thread safety: run() is called by one thread; the callbacks run on that thread.
#pragma once

#include "record_io.hpp"

#include <cstdint>
#include <cstdio>
#include <functional>
#include <string>
#include <string_view>

namespace idnode::idctl {

struct ParallelNdjsonOptions {
    /// Worker threads parsing blocks (at least 1).
    unsigned threads = 2;
    /// Bytes read per block (whole lines; a longer line makes its block larger).
    std::size_t block_bytes = 1 << 20;
    /// Blocks read ahead of the one being handed on; 0 = 2 × threads + 2.
    std::size_t blocks_in_flight = 0;
    /// Drop what has been read from the page cache (DropBehind; regular files only).
    bool drop_consumed_pages = false;
};

/// A parsed line: its number, the handle as written, and the record in the stored encoding.
/// The views stay valid until the callback returns.
using OnEncodedRecord =
    std::function<void(std::uint64_t line, std::string_view handle, std::string_view record)>;
/// A line that does not parse (the same LineError NdjsonReader::parse_encoded gives).
using OnRejectedLine = std::function<void(std::uint64_t line, const LineError& error)>;

/// Reads `file` to its end and calls `on_record` or `on_reject` for every non-empty line, in
/// input order, on the calling thread. Returns false when reading the file failed (`error` then
/// says why; the lines before the failure have been handed on). A callback that throws stops the
/// workers and the exception propagates.
bool parse_ndjson_parallel(std::FILE* file, const ParallelNdjsonOptions& options,
                           const OnEncodedRecord& on_record, const OnRejectedLine& on_reject,
                           std::string& error);

} // namespace idnode::idctl
