#include "idnode/resolver/qr.hpp"

#include <qrencode.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <memory>

namespace idnode::qr {
using registry::Errc;
using registry::Error;
using registry::Result;

namespace {

Error size_error(int size_px) {
    return Error{Errc::invalid_value, "size must be " + std::to_string(kMinImagePixels) + " to " +
                                          std::to_string(kMaxImagePixels) + " pixels, not " +
                                          std::to_string(size_px)};
}

void put_u32(std::string& out, std::uint32_t v) {
    out.push_back(static_cast<char>(v >> 24));
    out.push_back(static_cast<char>(v >> 16));
    out.push_back(static_cast<char>(v >> 8));
    out.push_back(static_cast<char>(v));
}

/// Appends one PNG chunk: length, type, data, CRC-32 over type and data.
void put_chunk(std::string& out, const char (&type)[5], std::string_view data) {
    put_u32(out, static_cast<std::uint32_t>(data.size()));
    const std::size_t crc_from = out.size();
    out.append(type, 4);
    out.append(data);
    const auto* p = reinterpret_cast<const Bytef*>(out.data() + crc_from);
    put_u32(out, static_cast<std::uint32_t>(crc32(0, p, static_cast<uInt>(4 + data.size()))));
}

} // namespace

Result<QrMatrix> encode(std::string_view text) {
    if (text.empty())
        return Error{Errc::invalid_value, "nothing to encode"};
    std::unique_ptr<QRcode, void (*)(QRcode*)> code(
        QRcode_encodeData(static_cast<int>(text.size()),
                          reinterpret_cast<const unsigned char*>(text.data()), 0, QR_ECLEVEL_M),
        QRcode_free);
    if (!code) {
        if (errno == ERANGE)
            return Error{Errc::invalid_value,
                         "text too long for a QR code (" + std::to_string(text.size()) + " bytes)"};
        return Error{Errc::internal, "libqrencode failed to encode"};
    }
    QrMatrix m;
    m.width = code->width;
    const auto n = static_cast<std::size_t>(code->width) * static_cast<std::size_t>(code->width);
    m.modules.resize(n);
    for (std::size_t i = 0; i < n; ++i) // bit 0 = dark; the other bits describe module roles
        m.modules[i] = code->data[i] & 1;
    return m;
}

Result<std::string> to_svg(const QrMatrix& qr, int size_px) {
    if (size_px < kMinImagePixels || size_px > kMaxImagePixels)
        return size_error(size_px);
    const int total = qr.width + 2 * kQuietZone;
    std::string path;
    path.reserve(static_cast<std::size_t>(qr.width * qr.width) * 3);
    for (int y = 0; y < qr.width; ++y) {
        for (int x = 0; x < qr.width;) { // one horizontal run of dark modules per "h" segment
            if (!qr.dark(x, y)) {
                ++x;
                continue;
            }
            int run = 1;
            while (x + run < qr.width && qr.dark(x + run, y))
                ++run;
            path += "M" + std::to_string(x + kQuietZone) + " " + std::to_string(y + kQuietZone) +
                    "h" + std::to_string(run) + "v1h-" + std::to_string(run) + "z";
            x += run;
        }
    }
    const std::string s = std::to_string(size_px), t = std::to_string(total);
    return "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
           "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" +
           s + "\" height=\"" + s + "\" viewBox=\"0 0 " + t + " " + t +
           "\" shape-rendering=\"crispEdges\"><rect width=\"" + t + "\" height=\"" + t +
           "\" fill=\"#fff\"/><path fill=\"#000\" d=\"" + path + "\"/></svg>\n";
}

// A minimal PNG writer (IHDR, one IDAT, IEND) over zlib rather than libpng: a QR image is 1-bit
// greyscale without interlacing, palettes or metadata, so the whole format is ~30 lines here.
Result<std::string> to_png(const QrMatrix& qr, int size_px) {
    if (size_px < kMinImagePixels || size_px > kMaxImagePixels)
        return size_error(size_px);
    const int total = qr.width + 2 * kQuietZone;
    const int scale = size_px / total;
    if (scale < 1) {
        return Error{Errc::invalid_value, "size " + std::to_string(size_px) +
                                              " is too small for this code: it needs at least " +
                                              std::to_string(total) + " pixels"};
    }
    const int side = total * scale;
    const std::size_t row_bytes = 1 + (static_cast<std::size_t>(side) + 7) / 8; // filter byte
    std::string raw(row_bytes * static_cast<std::size_t>(side), '\0');
    std::string row(row_bytes, '\0'); // pixel rows repeat `scale` times: build each once
    for (int my = -kQuietZone; my < qr.width + kQuietZone; ++my) {
        std::fill(row.begin(), row.end(), '\0'); // byte 0: filter "none"
        for (int px = 0; px < side; ++px) {
            const int mx = px / scale - kQuietZone;
            const bool dark =
                mx >= 0 && my >= 0 && mx < qr.width && my < qr.width && qr.dark(mx, my);
            if (!dark) // greyscale 1 bit: 1 = white
                row[1 + static_cast<std::size_t>(px / 8)] |= static_cast<char>(0x80 >> (px % 8));
        }
        for (int i = 0; i < scale; ++i) {
            const auto py = static_cast<std::size_t>((my + kQuietZone) * scale + i);
            std::copy(row.begin(), row.end(),
                      raw.begin() + static_cast<std::ptrdiff_t>(py * row_bytes));
        }
    }
    // Identical pixel rows repeat at a distance of row_bytes (<= 513 bytes), so a 1 KiB window
    // and a small hash find them all; zlib's defaults (32 KiB window, memLevel 8) would allocate
    // and clear ~270 KB per image, which cost more than everything else here.
    z_stream zs{};
    if (deflateInit2(&zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 10, 2, Z_DEFAULT_STRATEGY) != Z_OK)
        return Error{Errc::internal, "zlib failed to initialise"};
    std::string packed(deflateBound(&zs, static_cast<uLong>(raw.size())), '\0');
    zs.next_in = reinterpret_cast<Bytef*>(raw.data());
    zs.avail_in = static_cast<uInt>(raw.size());
    zs.next_out = reinterpret_cast<Bytef*>(packed.data());
    zs.avail_out = static_cast<uInt>(packed.size());
    const int rc = deflate(&zs, Z_FINISH);
    packed.resize(zs.total_out);
    deflateEnd(&zs);
    if (rc != Z_STREAM_END)
        return Error{Errc::internal, "zlib failed to compress the image"};
    std::string png("\x89PNG\r\n\x1a\n", 8);
    std::string ihdr;
    put_u32(ihdr, static_cast<std::uint32_t>(side));
    put_u32(ihdr, static_cast<std::uint32_t>(side));
    ihdr += std::string("\x01\x00\x00\x00\x00", 5); // bit depth 1, greyscale, deflate, none, none
    put_chunk(png, "IHDR", ihdr);
    put_chunk(png, "IDAT", packed);
    put_chunk(png, "IEND", {});
    return png;
}

std::string resolution_url(std::string_view base_url, std::string_view handle) {
    while (!base_url.empty() && base_url.back() == '/')
        base_url.remove_suffix(1);
    static constexpr char kHex[] = "0123456789ABCDEF";
    std::string out(base_url);
    out.reserve(base_url.size() + 1 + handle.size() * 3);
    out.push_back('/');
    for (const char ch : handle) {
        const auto c = static_cast<unsigned char>(ch);
        const bool keep = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                          (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' || c == '~' ||
                          c == '/';
        if (keep) {
            out.push_back(ch);
        } else {
            out.push_back('%');
            out.push_back(kHex[c >> 4]);
            out.push_back(kHex[c & 15]);
        }
    }
    return out;
}

} // namespace idnode::qr
