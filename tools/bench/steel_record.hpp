// One production-run NDJSON line for the bulk benchmarks (bulk_load over HTTPS, bulk_pipeline
// in-process): ~470 bytes naming the steel template (conf/templates/steel.json), so that every
// line goes through template validation, as the bulk target asks
// (docs/performance.md#bulk-registration-bulk_loadsh-and-bulk_pipeline_bench).
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>

namespace idnode::bench {

inline void append_steel_record(std::string& out, const std::string& prefix, const std::string& run,
                                std::uint64_t serial) {
    char suffix[32];
    std::snprintf(suffix, sizeof suffix, "%010llu", static_cast<unsigned long long>(serial));
    out += R"({"handle":")";
    out += prefix;
    out += '/';
    out += run;
    out += '-';
    out += suffix;
    out +=
        R"(","templateVersion":"steel-1.0","values":[{"index":1,"type":"URL","data":"https://mes.example.cn/p/)";
    out += suffix;
    out += R"("},{"index":2000,"type":"heat_no","data":"H2024-)";
    out += suffix + 4;
    out +=
        R"("},{"index":2001,"type":"grade","data":"Q235B"},{"index":2002,"type":"standard","data":"GB/T 700-2006"},{"index":2003,"type":"dimensions","data":"4.75x1500xC"},{"index":2004,"type":"batch_no","data":"B-)";
    out += run;
    out += R"("},{"index":2007,"type":"production_date","data":"2024-11-22"}]})";
    out += '\n';
}

} // namespace idnode::bench
