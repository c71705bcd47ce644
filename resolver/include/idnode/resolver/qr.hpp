// QR codes for identifier carriers (labels on coils, packs, parts): the node's resolution URL of a
// handle as an SVG or PNG image. A small library of its own (`idnode::qr`, libqrencode + zlib) so
// that both the node (GET /api/v1/qr/{handle}) and idctl can use it without the HTTP stack.
//
// Errors are values: Errc::invalid_value for a bad size or text that does not fit a QR code
// (more than ~2.3 KB at level M). Thread safety: pure functions (libqrencode is built thread-safe
// on Debian).
#pragma once

#include "idnode/registry/error.hpp"

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace idnode::qr {

/// The modules of one QR code, row-major, `width` x `width`, true = dark. No quiet zone.
struct QrMatrix {
    int width = 0;
    std::vector<std::uint8_t> modules;
    bool dark(int x, int y) const noexcept {
        return modules[static_cast<std::size_t>(y) * static_cast<std::size_t>(width) +
                       static_cast<std::size_t>(x)] != 0;
    }
};

/// The quiet zone every image gets on each side, in modules (ISO/IEC 18004 asks for 4).
inline constexpr int kQuietZone = 4;
/// Bounds of the requested image size in pixels.
inline constexpr int kMinImagePixels = 64;
inline constexpr int kMaxImagePixels = 4096;
inline constexpr int kDefaultImagePixels = 256;

/// Encodes `text` byte for byte (8-bit mode), error correction level M (15 %), the smallest
/// version that fits.
registry::Result<QrMatrix> encode(std::string_view text);

/// An SVG document `size_px` wide and high (the modules scale as vectors), dark modules as one
/// path. Errc::invalid_value when size_px is outside [kMinImagePixels, kMaxImagePixels].
registry::Result<std::string> to_svg(const QrMatrix& qr, int size_px);

/// A 1-bit greyscale PNG. Modules are whole pixels (crisp print), so the image is the largest
/// multiple of (width + 2 * kQuietZone) not above `size_px`; Errc::invalid_value when size_px is
/// out of bounds or smaller than one pixel per module.
registry::Result<std::string> to_png(const QrMatrix& qr, int size_px);

/// `base_url` + "/" + the handle with every byte outside RFC 3986 unreserved characters and '/'
/// percent-encoded ("88.118.8/A B" -> "https://id.example.cn/88.118.8/A%20B"). A trailing '/' of
/// base_url is dropped.
std::string resolution_url(std::string_view base_url, std::string_view handle);

} // namespace idnode::qr
