// `idctl load`: the options shared by the offline load (cmd_load.cpp, straight into LMDB) and
// the online one (cmd_load_online.cpp, over HTTPS through the SDK's bulk call).
#pragma once

#include "cli.hpp"

#include <string>

namespace idnode::idctl {

struct LoadArgs {
    bool offline = false;
    std::string data_dir;
    std::string file;
    std::string format; // ndjson | csv | "" (by extension)
    std::string mode = "create";
    std::string template_version;
    std::string rejects;
    // offline
    std::string sort_memory = "256MiB";
    std::string temp_dir;
    std::string max_db_size = "64GiB";
    int parse_threads = 2; // NDJSON parsing workers (parallel_ndjson.hpp); 0 = the reading thread
    // online
    int streams = 2; // on this 2-core machine 2 beat 1, 4 and 8 (tools/bench/idctl_load.sh)
    bool resume = false;
    std::string checkpoint;       // "" = FILE.checkpoint
    int progress_interval_ms = 0; // 0 = 200 ms on a terminal, 5 s otherwise
};

/// "csv" or "ndjson" from --format, else the file's extension; "" when --format is invalid.
std::string load_format(const LoadArgs& a);

int load_online(const LoadArgs& args, const GlobalOptions& global);

} // namespace idnode::idctl
