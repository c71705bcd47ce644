// load_registry — preloads a node's data directory with N steel-coil identifiers for the HTTPS
// resolution benchmark (tools/bench/https_vs_nginx.sh), and writes the same JSON bodies as static
// files for nginx.
//
//   load_registry --data-dir DIR --records N [--static-root WWW] [--handles FILE]
//                 [--mix steel|industries] [--ndjson FILE]
//                 [--prefix 88.118.8] [--batch 1000] [--seed S]
//
// DIR must have been initialised with `idctl init --data-dir DIR --node-prefix 88.118` (the node
// prefix must be homed there). The program then
//   1. registers the enterprise prefix record (`--prefix`, default 88.118.8) exactly as
//      `POST /api/v1/prefixes` stores it, unless it is already allocated;
//   2. writes N identifiers `<prefix>/SN-2024-<10 digits>` through Registry::write semantics
//      (Registry::submit, batches of `--batch` PutRecord creates, ~400 encoded bytes each: URL,
//      heat_no, grade, standard, dimensions, batch, mill_cert, delivery condition, production
//      date). The registry is opened with durable = false and sync()ed once at the end (an offline,
//      restartable load), and with a fixed clock, so every value's timestamp is the load's start
//      second — which makes the response bodies reproducible;
//   3. for each identifier writes WWW/api/handles/<handle> holding byte for byte the body that
//      `GET /api/handles/<handle>` returns from idnode for an anonymous caller (the formatting of
//      codec/src/values_json.cpp + resolver/src/api/handle_rest/routes.cpp get_handle:
//      boost::json compact output, keys in insertion order). The benchmark script fetches a
//      random sample through idnode and compares it with these files byte for byte, so a
//      formatting drift fails the run loudly;
//   4. writes the handle list (one per line) for the wrk script.
// Files are written on this thread while the registry's writer commits the previous batch.
//
// Prints one summary line: records, seconds, average encoded record and body bytes.
#include "idnode/codec/values_json.hpp"
#include "idnode/registry/admin.hpp"
#include "idnode/registry/identifier.hpp"
#include "idnode/registry/registry.hpp"
#include "idnode/registry/value.hpp"

#include <CLI/CLI.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <string>
#include <vector>

using namespace idnode::registry;
namespace fs = std::filesystem;

namespace {

[[noreturn]] void die(const std::string& message) {
    std::fprintf(stderr, "load_registry: %s\n", message.c_str());
    std::exit(1);
}

/// splitmix64: a deterministic, seedable value stream per identifier.
struct Rng {
    std::uint64_t s;
    std::uint64_t next() {
        std::uint64_t z = (s += 0x9E3779B97F4A7C15ull);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        return z ^ (z >> 31);
    }
    std::uint64_t below(std::uint64_t n) { return next() % n; }
};

std::string handle_text(const std::string& prefix, std::uint64_t i) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "/SN-2024-%010llu", static_cast<unsigned long long>(i));
    return prefix + buf;
}

HandleValue value(std::int32_t index, std::string type, std::string data) {
    HandleValue v;
    v.index = index;
    v.type = std::move(type);
    v.data = std::move(data);
    return v;
}

/// A hot-rolled coil's record: the steel template's fields with plausible, varied values.
std::vector<HandleValue> steel_record(std::uint64_t i, std::uint64_t seed) {
    static const char* const grades[] = {"Q235B",  "Q355B",   "Q345B", "SPHC",    "DC01",
                                         "S355JR", "HRB400E", "Q195",  "SAPH440", "SS400"};
    static const char* const standards[] = {
        "GB/T 700-2006",    "GB/T 1591-2018",  "GB/T 3274-2017",  "GB/T 711-2017",
        "GB/T 1499.2-2018", "EN 10025-2:2019", "JIS G 3101:2020", "GB/T 710-2008"};
    static const char* const conditions[] = {"hot rolled, mill edge", "hot rolled, trimmed edge",
                                             "hot rolled, pickled and oiled",
                                             "cold rolled, annealed", "as rolled"};
    Rng rng{seed ^ (i * 0x2545F4914F6CDD1Dull)};
    char heat[32], dims[64], batch[48], cert[64], date[16], url[128];
    const unsigned heat_no = 100000 + static_cast<unsigned>(rng.below(900000));
    std::snprintf(heat, sizeof heat, "H24%c%06u", static_cast<char>('A' + rng.below(6)), heat_no);
    std::snprintf(dims, sizeof dims, "%u.%02ux%u mm, coil %u kg",
                  1 + static_cast<unsigned>(rng.below(24)), static_cast<unsigned>(rng.below(100)),
                  900 + 10 * static_cast<unsigned>(rng.below(121)),
                  18000 + static_cast<unsigned>(rng.below(12001)));
    const unsigned month = 1 + static_cast<unsigned>(rng.below(12));
    const unsigned day = 1 + static_cast<unsigned>(rng.below(28));
    std::snprintf(batch, sizeof batch, "B2024%02u-%05u-L%u", month,
                  static_cast<unsigned>(rng.below(100000)),
                  1 + static_cast<unsigned>(rng.below(4)));
    std::snprintf(cert, sizeof cert, "MC-2024-%08llu-HRC-QA-LINE%u",
                  static_cast<unsigned long long>(i), 1 + static_cast<unsigned>(rng.below(3)));
    std::snprintf(date, sizeof date, "2024-%02u-%02u", month, day);
    std::snprintf(url, sizeof url, "https://trace.steel.example.cn/coil/SN-2024-%010llu?heat=%s",
                  static_cast<unsigned long long>(i), heat);
    return {value(1, "URL", url),
            value(2000, "heat_no", heat),
            value(2001, "grade", grades[rng.below(std::size(grades))]),
            value(2002, "standard", standards[rng.below(std::size(standards))]),
            value(2003, "dimensions", dims),
            value(2004, "batch", batch),
            value(2005, "mill_cert", cert),
            value(2006, "delivery_condition", conditions[rng.below(std::size(conditions))]),
            value(2007, "production_date", date)};
}

std::string fmt(const char* format, ...) __attribute__((format(printf, 1, 2)));
std::string fmt(const char* format, ...) {
    char buf[256];
    va_list args;
    va_start(args, format);
    const int n = std::vsnprintf(buf, sizeof buf, format, args);
    va_end(args);
    return std::string(buf, static_cast<std::size_t>(std::max(0, std::min(n, 255))));
}

template <std::size_t N> const char* pick(Rng& rng, const char* const (&choices)[N]) {
    return choices[rng.below(N)];
}

/// An auto part's record (conf/templates/auto-parts.json).
std::vector<HandleValue> auto_parts_record(std::uint64_t i, std::uint64_t seed) {
    static const char* const countries[] = {"CN", "DE", "JP", "US", "KR", "MX"};
    static const char* const suppliers[] = {"SUP-310115-BOSCH-HUAYU", "SUP-440300-BYD-PARTS",
                                            "SUP-320500-CONTI-AUTO", "SUP-330200-NINGBO-TUOPU"};
    Rng rng{seed ^ (i * 0x9E3779B97F4A7C15ull)};
    const unsigned month = 1 + static_cast<unsigned>(rng.below(12));
    return {
        value(1, "URL",
              fmt("https://trace.autoparts.example.cn/part/SN-2024-%010llu",
                  static_cast<unsigned long long>(i))),
        value(2000, "manufacturer_part_number",
              fmt("MPN-%04u-%05u-%c", static_cast<unsigned>(rng.below(10000)),
                  static_cast<unsigned>(rng.below(100000)),
                  static_cast<char>('A' + rng.below(26)))),
        value(2001, "customer_part_number",
              fmt("CPN-%u-%06u", 1000 + static_cast<unsigned>(rng.below(9000)),
                  static_cast<unsigned>(rng.below(1000000)))),
        value(2002, "serial_number", fmt("AP24%010llu", static_cast<unsigned long long>(i))),
        value(2003, "batch_no",
              fmt("L2024%02u%04u", month, static_cast<unsigned>(rng.below(10000)))),
        value(2004, "manufacture_date",
              fmt("2024-%02u-%02u", month, 1 + static_cast<unsigned>(rng.below(28)))),
        value(2005, "country_of_origin", pick(rng, countries)),
        value(2006, "vehicle_vin_link",
              fmt("LSV%c%c%06u%07u", static_cast<char>('A' + rng.below(26)),
                  static_cast<char>('A' + rng.below(26)), static_cast<unsigned>(rng.below(1000000)),
                  static_cast<unsigned>(rng.below(10000000)))),
        value(2007, "supplier_code", pick(rng, suppliers)),
        value(2008, "purchase_price_cny",
              fmt("%u.%02u", 10 + static_cast<unsigned>(rng.below(5000)),
                  static_cast<unsigned>(rng.below(100))))};
}

/// A drug package's record (conf/templates/pharma.json; the optional manufacturer and distributor
/// left out, as most packages carry only the authorisation holder).
std::vector<HandleValue> pharma_record(std::uint64_t i, std::uint64_t seed) {
    static const char* const products[] = {
        "Amoxicillin Capsules", "Metformin Hydrochloride Tablets", "Atorvastatin Calcium Tablets",
        "Omeprazole Enteric Capsules"};
    static const char* const forms[] = {"capsule", "tablet", "film-coated tablet", "injection"};
    static const char* const holders[] = {"Shanghai Example Pharmaceutical Co., Ltd.",
                                          "Zhejiang Sample Pharma Group Co., Ltd.",
                                          "Shandong Demo Biopharm Co., Ltd."};
    Rng rng{seed ^ (i * 0xD1B54A32D192ED03ull)};
    const unsigned month = 1 + static_cast<unsigned>(rng.below(12));
    const unsigned day = 1 + static_cast<unsigned>(rng.below(28));
    const char* holder = pick(rng, holders);
    return {
        value(
            2000, "drug_trace_code",
            fmt("8%019llu", static_cast<unsigned long long>(rng.next() % 10000000000000000000ull))),
        value(2001, "approval_no",
              fmt("国药准字H%08u", static_cast<unsigned>(rng.below(100000000)))),
        value(2002, "product_name", pick(rng, products)),
        value(2003, "dosage_form", pick(rng, forms)),
        value(2004, "strength", fmt("%u mg", 10 * (1 + static_cast<unsigned>(rng.below(50))))),
        value(2005, "pack_spec",
              fmt("%u x %u per box", 6 * (1 + static_cast<unsigned>(rng.below(4))),
                  1 + static_cast<unsigned>(rng.below(3)))),
        value(2006, "batch_no", fmt("24%02u%05u", month, static_cast<unsigned>(rng.below(100000)))),
        value(2007, "production_date", fmt("2024-%02u-%02u", month, day)),
        value(2008, "expiry_date", fmt("2026-%02u-%02u", month, day)),
        value(2009, "marketing_authorisation_holder", holder),
        value(2011, "leaflet_url",
              fmt("https://pharma.example.cn/leaflet/%05u.pdf",
                  static_cast<unsigned>(rng.below(100000))))};
}

/// An optical transceiver's record (conf/templates/optoelectronics.json).
std::vector<HandleValue> optoelectronics_record(std::uint64_t i, std::uint64_t seed) {
    static const char* const vendors[] = {"Example Photonics", "Sample Optolink", "Demo Optics"};
    static const char* const ouis[] = {"00-1B-21", "00-90-65", "AC-DE-48"};
    static const char* const wavelengths[] = {"850", "1310", "1550", "1270"};
    Rng rng{seed ^ (i * 0xA0761D6478BD642Full)};
    return {value(1, "URL",
                  fmt("https://opto.example.cn/module/SN-2024-%010llu",
                      static_cast<unsigned long long>(i))),
            value(2000, "vendor", pick(rng, vendors)),
            value(2001, "oui", pick(rng, ouis)),
            value(2002, "part_number",
                  fmt("SFP28-25G-%s-%02u", pick(rng, wavelengths),
                      static_cast<unsigned>(rng.below(100)))),
            value(2003, "revision",
                  fmt("%c%u", static_cast<char>('A' + rng.below(6)),
                      static_cast<unsigned>(rng.below(10)))),
            value(2004, "wavelength_nm", pick(rng, wavelengths)),
            value(2005, "serial_number", fmt("OP24%010llu", static_cast<unsigned long long>(i))),
            value(2006, "date_code",
                  fmt("24%02u%02u", 1 + static_cast<unsigned>(rng.below(12)),
                      1 + static_cast<unsigned>(rng.below(28)))),
            value(2007, "lot_no", fmt("LOT-%06u", static_cast<unsigned>(rng.below(1000000)))),
            value(2008, "test_report_url",
                  fmt("https://opto.example.cn/report/%010llu.pdf",
                      static_cast<unsigned long long>(i)))};
}

/// One NDJSON line of `idctl load` / POST /api/v1/bulk for a record of text values.
std::string ndjson_line(std::string_view handle, const std::vector<HandleValue>& values) {
    std::string out = "{\"handle\":";
    idnode::codec::append_json_string(out, handle);
    out += ",\"values\":[";
    for (std::size_t k = 0; k < values.size(); ++k) {
        if (k)
            out.push_back(',');
        out += "{\"index\":" + std::to_string(values[k].index) + ",\"type\":";
        idnode::codec::append_json_string(out, values[k].type);
        out += ",\"data\":{\"format\":\"string\",\"value\":";
        idnode::codec::append_json_string(out, values[k].data);
        out += "}}";
    }
    out += "]}\n";
    return out;
}

std::string iso8601(std::uint32_t unix_seconds) {
    const std::time_t t = static_cast<std::time_t>(unix_seconds);
    std::tm tm{};
    gmtime_r(&t, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
}

/// The anonymous GET /api/handles/{handle} body for a record of text values with default
/// permissions (public, "1110": no "permissions" key), as idnode's get_handle builds it.
std::string handle_body(std::string_view handle, const std::vector<HandleValue>& values,
                        const std::string& timestamp) {
    std::string out;
    out.reserve(1024);
    out += "{\"responseCode\":1,\"handle\":";
    idnode::codec::append_json_string(out, handle);
    out += ",\"values\":[";
    bool first = true;
    for (const auto& v : values) {
        if (!first)
            out.push_back(',');
        first = false;
        out += "{\"index\":" + std::to_string(v.index) + ",\"type\":";
        idnode::codec::append_json_string(out, v.type);
        out += ",\"data\":{\"format\":\"string\",\"value\":";
        idnode::codec::append_json_string(out, v.data);
        out += "},\"ttl\":" + std::to_string(v.ttl) + ",\"timestamp\":\"" + timestamp + "\"}";
    }
    out += "]}";
    return out;
}

void write_file(const fs::path& path, const std::string& body) {
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        die("cannot create " + path.string() + ": " + std::strerror(errno));
    std::size_t done = 0;
    while (done < body.size()) {
        const ssize_t n = ::write(fd, body.data() + done, body.size() - done);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            die("cannot write " + path.string() + ": " + std::strerror(errno));
        }
        done += static_cast<std::size_t>(n);
    }
    if (::close(fd) != 0)
        die("cannot close " + path.string() + ": " + std::strerror(errno));
}

} // namespace

int main(int argc, char** argv) {
    CLI::App app{"Preload identifiers (and nginx's static copies of their JSON bodies)"};
    std::string data_dir, static_root, handles_path, prefix = "88.118.8";
    std::uint64_t records = 1000000, batch_size = 1000, seed = 20241122;
    app.add_option("--data-dir", data_dir, "node data directory made by `idctl init`")->required();
    app.add_option("--records", records, "number of identifiers")->capture_default_str();
    app.add_option("--static-root", static_root,
                   "write WWW/api/handles/<handle> = the JSON body idnode serves");
    app.add_option("--handles", handles_path, "write the handle list here, one per line");
    app.add_option("--prefix", prefix, "enterprise prefix to allocate and load under")
        ->capture_default_str();
    app.add_option("--batch", batch_size, "PutRecord creates per Registry write")
        ->capture_default_str()
        ->check(CLI::Range(1, 20000));
    app.add_option("--seed", seed, "value generator seed")->capture_default_str();
    std::string mix = "steel", ndjson_path;
    app.add_option("--mix", mix,
                   "record shapes: steel, or industries (steel, auto parts, pharma and "
                   "optoelectronics in turn, conf/templates/*.json)")
        ->capture_default_str()
        ->check(CLI::IsMember({"steel", "industries"}));
    app.add_option("--ndjson", ndjson_path,
                   "also write the records as `idctl load` NDJSON here (key order)");
    CLI11_PARSE(app, argc, argv);

    if (!fs::exists(fs::path(data_dir) / "data.mdb"))
        die(data_dir + " is not a data directory: run `idctl init --data-dir " + data_dir +
            " --node-prefix 88.118` first");
    const auto folded_prefix = parse_prefix(prefix);
    if (!folded_prefix)
        die("--prefix: " + folded_prefix.error().message);

    const auto start = std::chrono::steady_clock::now();
    const auto now = static_cast<std::uint32_t>(std::time(nullptr));
    RegistryOptions options;
    options.data_dir = data_dir;
    options.durable = false; // offline load: one sync() at the end
    options.clock = [now] { return static_cast<std::int64_t>(now); };
    auto registry = Registry::open(options);

    // The enterprise prefix must lie under a node prefix homed by `idctl init`.
    {
        bool under_homed = false;
        registry->snapshot().for_each_prefix([&](const std::string& key, const PrefixRecord& rec) {
            if (rec.kind == PrefixKind::node && key != *folded_prefix &&
                prefix_is_under(*folded_prefix, key))
                under_homed = true;
        });
        if (!under_homed)
            die("prefix " + prefix + " is not below a node prefix homed in " + data_dir);
    }
    PrefixRecord rec;
    rec.prefix = prefix;
    rec.kind = PrefixKind::enterprise;
    rec.enterprise = EnterpriseInfo{"Benchmark Steel Co., Ltd.", "91310000631696382C", "C3120",
                                    "bench@steel.example.cn"};
    rec.created = now;
    const OpResult pr = registry->write(
        PutEntry{Table::prefixes, *folded_prefix, encode_prefix(rec), PutMode::create}, "admin");
    if (!pr.ok() && pr.error.code != Errc::already_exists)
        die("cannot register prefix " + prefix + ": " + pr.error.message);

    fs::path body_dir;
    if (!static_root.empty()) {
        body_dir = fs::path(static_root) / "api" / "handles" / prefix;
        fs::create_directories(body_dir);
    }
    std::ofstream handles_out;
    if (!handles_path.empty()) {
        handles_out.open(handles_path, std::ios::trunc);
        if (!handles_out)
            die("cannot create " + handles_path);
    }

    std::ofstream ndjson_out;
    if (!ndjson_path.empty()) {
        ndjson_out.open(ndjson_path, std::ios::trunc | std::ios::binary);
        if (!ndjson_out)
            die("cannot create " + ndjson_path);
    }
    const auto make_record = [&](std::uint64_t i) {
        if (mix == "steel")
            return steel_record(i, seed);
        switch (i % 4) {
        case 0:
            return steel_record(i, seed);
        case 1:
            return auto_parts_record(i, seed);
        case 2:
            return pharma_record(i, seed);
        default:
            return optoelectronics_record(i, seed);
        }
    };

    const std::string timestamp = iso8601(now);
    std::mutex mu;
    std::condition_variable cv;
    std::uint64_t batches_submitted = 0, batches_done = 0;
    std::string first_error;
    std::uint64_t record_bytes = 0, body_bytes = 0;

    for (std::uint64_t i = 0; i < records; i += batch_size) {
        const std::uint64_t end = std::min(records, i + batch_size);
        WriteBatch batch;
        batch.account = "admin";
        batch.ops.reserve(end - i);
        std::vector<std::vector<HandleValue>> values;
        std::vector<std::string> names;
        values.reserve(end - i);
        names.reserve(end - i);
        for (std::uint64_t n = i; n < end; ++n) {
            names.push_back(handle_text(prefix, n + 1));
            values.push_back(make_record(n + 1));
            auto h = parse_handle(names.back());
            if (!h)
                die("generated handle " + names.back() + " is invalid: " + h.error().message);
            record_bytes += encode_record(names.back(), values.back()).size();
            batch.ops.push_back(PutRecord{std::move(h).value(), values.back(), PutMode::create});
        }
        {
            std::lock_guard lock(mu);
            ++batches_submitted;
        }
        // The writer commits this batch while this thread writes its files.
        registry->submit(std::move(batch), [&](BatchResult results) {
            std::string error;
            for (const auto& r : results) {
                if (r.outcome != Outcome::created) {
                    error = std::string("a create reported ") + outcome_name(r.outcome) + ": " +
                            r.error.message;
                    break;
                }
            }
            std::lock_guard lock(mu);
            if (!error.empty() && first_error.empty())
                first_error = error;
            ++batches_done;
            cv.notify_all();
        });
        for (std::size_t k = 0; k < names.size(); ++k) {
            if (!body_dir.empty()) {
                const std::string body = handle_body(names[k], values[k], timestamp);
                body_bytes += body.size();
                write_file(body_dir / names[k].substr(prefix.size() + 1), body);
            }
            if (handles_out)
                handles_out << names[k] << '\n';
            if (ndjson_out)
                ndjson_out << ndjson_line(names[k], values[k]);
        }
        std::lock_guard lock(mu);
        if (!first_error.empty())
            break;
    }
    {
        std::unique_lock lock(mu);
        cv.wait(lock, [&] { return batches_done == batches_submitted; });
        if (!first_error.empty())
            die("load failed: " + first_error);
    }
    if (auto st = registry->sync(); !st)
        die("sync failed: " + st.error().message);
    if (ndjson_out) {
        ndjson_out.close();
        if (!ndjson_out)
            die("cannot write " + ndjson_path);
    }
    if (handles_out) {
        handles_out.close();
        if (!handles_out)
            die("cannot write " + handles_path);
    }
    const auto stats = registry->stats();
    registry.reset();
    const double secs =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::printf("load_registry: %llu identifiers under %s in %.1f s (%.0f/s); "
                "encoded record %.0f B avg, JSON body %.0f B avg, database %.0f B/identifier\n",
                static_cast<unsigned long long>(records), prefix.c_str(), secs,
                static_cast<double>(records) / secs,
                static_cast<double>(record_bytes) / static_cast<double>(records),
                body_dir.empty() ? 0.0
                                 : static_cast<double>(body_bytes) / static_cast<double>(records),
                static_cast<double>(stats.used_bytes) / static_cast<double>(records));
    return 0;
}
