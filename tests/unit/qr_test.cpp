// QR images (resolver/include/idnode/resolver/qr.hpp): the matrix, the SVG and PNG encoders, the
// resolution URL; the PNG is decoded back with zbarimg (Debian zbar-tools) to prove it scans.
#include "idnode/resolver/qr.hpp"
#include "temp_dir.hpp"

#include <doctest/doctest.h>

#include <cstdio>
#include <fstream>
#include <string>
#include <sys/wait.h>

using namespace idnode;

namespace {

std::uint32_t be32(std::string_view s, std::size_t at) {
    auto b = [&](std::size_t i) {
        return static_cast<std::uint32_t>(static_cast<unsigned char>(s[at + i]));
    };
    return b(0) << 24 | b(1) << 16 | b(2) << 8 | b(3);
}

/// Runs zbarimg on `png` and returns what it decoded ("" on failure).
std::string zbar_decode(const std::string& png) {
    test::TempDir dir("qr-test");
    const auto path = dir / "code.png";
    std::ofstream(path, std::ios::binary) << png;
    const std::string cmd =
        "zbarimg --quiet --raw -Sdisable -Sqrcode.enable " + path.string() + " 2>/dev/null";
    FILE* pipe = ::popen(cmd.c_str(), "r");
    REQUIRE(pipe != nullptr);
    std::string out;
    char buf[4096];
    while (const auto n = std::fread(buf, 1, sizeof buf, pipe))
        out.append(buf, n);
    const int status = ::pclose(pipe);
    REQUIRE_MESSAGE(WIFEXITED(status), "zbarimg did not run (Debian zbar-tools)");
    while (!out.empty() && (out.back() == '\n' || out.back() == '\r'))
        out.pop_back();
    return out;
}

} // namespace

TEST_CASE("resolution_url percent-encodes everything but unreserved characters and '/'") {
    CHECK(qr::resolution_url("https://id.example.cn", "88.118.8/SN-2024_000.1~a") ==
          "https://id.example.cn/88.118.8/SN-2024_000.1~a");
    CHECK(qr::resolution_url("https://id.example.cn/", "88.118.8/A B?#%") ==
          "https://id.example.cn/88.118.8/A%20B%3F%23%25");
    CHECK(qr::resolution_url("https://n", "88.1/钢") == "https://n/88.1/%E9%92%A2");
    CHECK(qr::resolution_url("", "88.1/x") == "/88.1/x");
}

TEST_CASE("encode builds a square matrix with finder patterns; too much text is refused") {
    auto m = qr::encode("https://id.example.cn/88.118.8/SN-2024-000123");
    REQUIRE(m.ok());
    CHECK(m->width >= 21);
    CHECK((m->width - 17) % 4 == 0); // version v is 17 + 4v modules wide
    CHECK(m->modules.size() == static_cast<std::size_t>(m->width * m->width));
    // The top-left finder pattern: a dark 7x7 ring around a light ring around a dark 3x3 core.
    CHECK(m->dark(0, 0));
    CHECK(m->dark(6, 6));
    CHECK_FALSE(m->dark(1, 1));
    CHECK(m->dark(3, 3));
    CHECK_FALSE(m->dark(7, 7));

    CHECK(qr::encode("").code() == registry::Errc::invalid_value);
    CHECK(qr::encode(std::string(4000, 'x')).code() == registry::Errc::invalid_value);
}

TEST_CASE("SVG: requested size, quiet zone in the viewBox, no script") {
    auto m = qr::encode("https://n/88.1/x");
    REQUIRE(m.ok());
    auto svg = qr::to_svg(*m, 300);
    REQUIRE(svg.ok());
    const std::string total = std::to_string(m->width + 2 * qr::kQuietZone);
    CHECK(svg->find("width=\"300\" height=\"300\"") != std::string::npos);
    CHECK(svg->find("viewBox=\"0 0 " + total + " " + total + "\"") != std::string::npos);
    CHECK(svg->find("<script") == std::string::npos);
    CHECK(qr::to_svg(*m, qr::kMinImagePixels - 1).code() == registry::Errc::invalid_value);
    CHECK(qr::to_svg(*m, qr::kMaxImagePixels + 1).code() == registry::Errc::invalid_value);
}

TEST_CASE("PNG: whole-pixel modules, valid structure, and it scans back to the text") {
    const std::string url = "https://id.example.cn/88.118.8/SN-2024-000123";
    auto m = qr::encode(url);
    REQUIRE(m.ok());
    const int total = m->width + 2 * qr::kQuietZone;
    auto png = qr::to_png(*m, 256);
    REQUIRE(png.ok());
    REQUIRE(png->size() > 8 + 25 + 12 + 12);
    CHECK(png->substr(0, 8) == std::string("\x89PNG\r\n\x1a\n", 8));
    CHECK(png->substr(12, 4) == "IHDR");
    const auto side = static_cast<int>(be32(*png, 16));
    CHECK(side == (256 / total) * total); // the largest whole multiple not above 256
    CHECK(be32(*png, 20) == static_cast<std::uint32_t>(side));
    CHECK(png->substr(png->size() - 8, 4) == "IEND");

    CHECK(zbar_decode(*png) == url);
    // A non-ASCII identifier, percent-encoded in the URL, scans back too.
    const std::string url2 = qr::resolution_url("https://n.example", "88.118.8/钢卷 A-1");
    auto m2 = qr::encode(url2);
    REQUIRE(m2.ok());
    auto png2 = qr::to_png(*m2, 512);
    REQUIRE(png2.ok());
    CHECK(zbar_decode(*png2) == url2);

    // Fewer pixels than modules (plus quiet zone) cannot be drawn crisply: refused.
    auto big = qr::encode(std::string(600, 'A'));
    REQUIRE(big.ok());
    REQUIRE(big->width + 2 * qr::kQuietZone > qr::kMinImagePixels);
    CHECK(qr::to_png(*big, qr::kMinImagePixels).code() == registry::Errc::invalid_value);
    CHECK(qr::to_png(*m, 10).code() == registry::Errc::invalid_value);
}
