// idctl qr — QR codes of identifiers' resolution URLs for labels
// (docs/operator-guide.md#qr-codes-for-labels), made locally with the same library and URL form
// as the node's GET /api/v1/qr/{handle} (idnode::qr):
//   idctl qr HANDLE -o FILE.svg|FILE.png [--size N] [--base-url URL]
//   idctl qr --prefix P --out DIR --data-dir DATA [--format svg|png] [--size N] [--base-url URL]
// The base URL is --base-url, else the connection URL (--url, IDNODE_URL, config file). The single
// form does not look the identifier up (it needs no node); the bulk form lists the prefix from the
// node's data directory, opened read_only (safe while the node runs), one file per identifier
// named by file_name_for_suffix().
#include "cli.hpp"

#include "idnode/registry/registry.hpp"
#include "idnode/resolver/qr.hpp"

#include <boost/json.hpp>

#include <cctype>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <vector>

namespace idnode::idctl {

using namespace idnode::registry;
namespace fs = std::filesystem;

namespace {

enum class ImageFormat { svg, png };

const char* extension(ImageFormat f) {
    return f == ImageFormat::png ? ".png" : ".svg";
}

/// The suffix as a file name that is unique and reversible: every byte outside [A-Za-z0-9._-]
/// (so '/', '%' and all non-ASCII bytes) becomes %XX; "." and ".." have their dots encoded so
/// that no name means a directory.
std::string file_name_for_suffix(std::string_view suffix) {
    static constexpr char kHex[] = "0123456789ABCDEF";
    const bool dots_only = suffix == "." || suffix == "..";
    std::string out;
    out.reserve(suffix.size());
    for (unsigned char c : suffix) {
        const bool safe = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                          (c >= '0' && c <= '9') || c == '-' || c == '_' ||
                          (c == '.' && !dots_only);
        if (safe) {
            out += static_cast<char>(c);
        } else {
            out += '%';
            out += kHex[c >> 4];
            out += kHex[c & 0xF];
        }
    }
    return out;
}

/// The image of `handle`'s resolution URL, or the error message.
Result<std::string> render(const std::string& base_url, const Handle& handle, ImageFormat format,
                           int size_px) {
    auto matrix = qr::encode(qr::resolution_url(base_url, handle.spelling()));
    if (!matrix) {
        return matrix.error();
    }
    return format == ImageFormat::png ? qr::to_png(*matrix, size_px) : qr::to_svg(*matrix, size_px);
}

/// False when the file cannot be written completely.
bool write_whole_file(const fs::path& path, const std::string& bytes) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    out.close();
    return static_cast<bool>(out);
}

struct QrArgs {
    std::string handle, output, prefix, out_dir, data_dir, format = "svg", base_url;
    int size = qr::kDefaultImagePixels;
};

int qr_single(const QrArgs& a, const std::string& base_url, const GlobalOptions& global) {
    auto handle = parse_handle(a.handle, HandleLimits{kHandleProtocolMaxLength});
    if (!handle) {
        return fail("qr", "handle " + a.handle + ": " + handle.error().message, kExitUsage);
    }
    if (a.output.empty()) {
        return fail("qr", "a handle needs -o FILE.svg or -o FILE.png", kExitUsage);
    }
    std::string ext = fs::path(a.output).extension().string();
    for (char& c : ext) {
        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
    if (ext != ".svg" && ext != ".png") {
        return fail("qr", "-o " + a.output + ": the file name must end in .svg or .png",
                    kExitUsage);
    }
    auto image =
        render(base_url, *handle, ext == ".png" ? ImageFormat::png : ImageFormat::svg, a.size);
    if (!image) {
        return fail("qr", handle->spelling() + ": " + image.error().message);
    }
    if (!write_whole_file(a.output, *image)) {
        return fail("qr", "cannot write " + a.output);
    }
    const std::string url = qr::resolution_url(base_url, handle->spelling());
    if (global.json) {
        print_json(std::cout, boost::json::object{{"file", a.output}, {"url", url}});
    } else {
        std::cout << "wrote " << a.output << " (" << url << ")\n";
    }
    return kExitOk;
}

int qr_bulk(const QrArgs& a, const std::string& base_url, const GlobalOptions& global) {
    if (auto p = parse_prefix(a.prefix); !p) {
        return fail("qr", "--prefix: " + p.error().message, kExitUsage);
    }
    if (a.out_dir.empty() || a.data_dir.empty()) {
        return fail("qr", "--prefix needs --out DIR and --data-dir DIR", kExitUsage);
    }
    const ImageFormat format = a.format == "png" ? ImageFormat::png : ImageFormat::svg;
    RegistryOptions options;
    options.data_dir = a.data_dir;
    options.mode = OpenMode::read_only;
    std::unique_ptr<Registry> registry;
    try {
        registry = Registry::open(options);
    } catch (const StartupError& e) {
        return fail("qr", e.what());
    }
    std::error_code ec;
    fs::create_directories(a.out_dir, ec);
    if (ec) {
        return fail("qr", "cannot create " + a.out_dir + ": " + ec.message());
    }
    std::uint64_t written = 0;
    std::vector<std::string> failures;
    std::string cursor;
    // One snapshot per page, as in `export`: a long read transaction would pin a running node's
    // old pages.
    do {
        auto page = registry->snapshot().list(a.prefix, cursor, 1000);
        if (!page) {
            return fail("qr", page.error().message);
        }
        for (const auto& spelling : page->handles) {
            auto handle = parse_handle(spelling, HandleLimits{kHandleProtocolMaxLength});
            if (!handle) {
                failures.push_back(spelling + ": " + handle.error().message);
                continue;
            }
            auto image = render(base_url, *handle, format, a.size);
            if (!image) {
                failures.push_back(spelling + ": " + image.error().message);
                continue;
            }
            const fs::path file =
                fs::path(a.out_dir) / (file_name_for_suffix(handle->suffix()) + extension(format));
            if (!write_whole_file(file, *image)) {
                failures.push_back(spelling + ": cannot write " + file.string());
                continue;
            }
            ++written;
        }
        cursor = page->next_cursor;
    } while (!cursor.empty());

    for (const auto& f : failures) {
        std::cerr << "idctl qr: " << f << '\n';
    }
    if (global.json) {
        print_json(std::cout, boost::json::object{{"written", written},
                                                  {"failed", failures.size()},
                                                  {"dir", a.out_dir}});
    } else {
        std::cout << "wrote " << written << " QR codes to " << a.out_dir;
        if (!failures.empty()) {
            std::cout << " (" << failures.size() << " failed)";
        }
        std::cout << '\n';
    }
    if (failures.empty()) {
        return kExitOk;
    }
    return written > 0 ? kExitPartial : kExitFailed;
}

int run_qr(const QrArgs& a, const GlobalOptions& global) {
    if (a.handle.empty() == a.prefix.empty()) {
        return fail("qr", "give either a HANDLE (with -o FILE) or --prefix P (with --out DIR)",
                    kExitUsage);
    }
    if (!a.handle.empty() && (!a.out_dir.empty() || !a.data_dir.empty())) {
        return fail("qr", "--out and --data-dir belong to --prefix; a handle takes -o FILE",
                    kExitUsage);
    }
    if (!a.prefix.empty() && !a.output.empty()) {
        return fail("qr", "--prefix writes into --out DIR, not -o FILE", kExitUsage);
    }
    if (a.size < qr::kMinImagePixels || a.size > qr::kMaxImagePixels) {
        return fail("qr",
                    "--size must be " + std::to_string(qr::kMinImagePixels) + " to " +
                        std::to_string(qr::kMaxImagePixels) + " (pixels)",
                    kExitUsage);
    }
    std::string base_url = a.base_url;
    if (base_url.empty()) {
        const fs::path config = config_file_path(global.config_file, process_environment());
        auto settings = resolve_connection(global.connection, process_environment(), config);
        if (!settings) {
            return fail("qr", settings.error().message, kExitUsage);
        }
        if (settings->url.empty()) {
            return fail("qr",
                        "no base URL: pass --base-url, --url, set IDNODE_URL or put url in " +
                            config.string(),
                        kExitUsage);
        }
        base_url = settings->url;
    } else if (!base_url.starts_with("https://") && !base_url.starts_with("http://")) {
        return fail("qr", "--base-url must start with https:// or http://", kExitUsage);
    }
    return a.handle.empty() ? qr_bulk(a, base_url, global) : qr_single(a, base_url, global);
}

} // namespace

Command add_qr_command(CLI::App& root, const GlobalOptions& global) {
    auto a = std::make_shared<QrArgs>();
    auto* cmd = root.add_subcommand(
        "qr", "QR codes of identifiers' resolution URLs: one HANDLE to -o FILE.svg|.png, or every "
              "identifier under --prefix into --out DIR (offline, --data-dir)");
    cmd->add_option("handle", a->handle, "the identifier, e.g. 88.118.8/COIL-1");
    cmd->add_option("-o,--output", a->output, "image file for HANDLE; .svg or .png");
    cmd->add_option("--prefix", a->prefix, "every identifier under exactly this prefix");
    cmd->add_option("--out", a->out_dir,
                    "directory for --prefix (created), one file per identifier");
    cmd->add_option("--data-dir", a->data_dir, "the node's data directory (for --prefix)");
    cmd->add_option("--format", a->format, "image format for --prefix (default svg)")
        ->check(CLI::IsMember({"svg", "png"}));
    cmd->add_option("--size", a->size,
                    "image size in pixels, " + std::to_string(qr::kMinImagePixels) + " to " +
                        std::to_string(qr::kMaxImagePixels) + " (default " +
                        std::to_string(qr::kDefaultImagePixels) + ")");
    cmd->add_option("--base-url", a->base_url,
                    "URL the codes point to (default: the connection URL)");
    return {cmd, [a, &global] { return run_qr(*a, global); }};
}

} // namespace idnode::idctl
