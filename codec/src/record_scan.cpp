#include "idnode/codec/record_scan.hpp"

#include "idnode/registry/identifier.hpp"

#include <bit>
#include <cstdint>
#include <cstring>

namespace idnode::codec {

namespace {

constexpr std::uint64_t kOnes = 0x0101010101010101ull;
constexpr std::uint64_t kHighs = 0x8080808080808080ull;

/// The high bit of every byte of `w` equal to `c` — and possibly of bytes above a matching one
/// (the borrow of the classic has-zero test), never of bytes below it: non-zero exactly when some
/// byte matches, and the lowest set bit (little-endian: the first byte) is a true match.
constexpr std::uint64_t bytes_equal(std::uint64_t w, unsigned char c) noexcept {
    const std::uint64_t x = w ^ (kOnes * c);
    return (x - kOnes) & ~x & kHighs;
}

/// The same for bytes below 0x20 (the has-less test, exact as above for a bound up to 0x80).
constexpr std::uint64_t bytes_below_space(std::uint64_t w) noexcept {
    return (w - kOnes * 0x20) & ~w & kHighs;
}

/// A minimal cursor over one line. Every failure just means "not the common shape".
class Cursor {
public:
    explicit Cursor(std::string_view text) : p_(text.data()), end_(text.data() + text.size()) {}

    void skip_ws() noexcept {
        // Compact lines have no whitespace: one comparison for the usual case.
        while (p_ != end_ && static_cast<unsigned char>(*p_) <= ' ' &&
               (*p_ == ' ' || *p_ == '\t' || *p_ == '\r' || *p_ == '\n'))
            ++p_;
    }
    bool at_end() noexcept {
        skip_ws();
        return p_ == end_;
    }
    bool eat(char c) noexcept {
        skip_ws();
        if (p_ != end_ && *p_ == c) {
            ++p_;
            return true;
        }
        return false;
    }
    /// The position, for going back after a member name that matched only in part.
    const char* mark() const noexcept { return p_; }
    void reset(const char* mark) noexcept { p_ = mark; }
    bool peek(char c) noexcept {
        skip_ws();
        return p_ != end_ && *p_ == c;
    }
    /// The next character after whitespace (0 at the end), not consumed.
    char next() noexcept {
        skip_ws();
        return p_ != end_ ? *p_ : '\0';
    }
    /// Consumes `token` if the text continues with exactly it (after whitespace). For the member
    /// names: a quoted name without quotes or backslashes inside matches exactly when string()
    /// would read that name, so names need not be scanned as strings and compared.
    template <std::size_t N> bool eat_token(const char (&token)[N]) noexcept {
        // A fixed-size comparison the compiler turns into a few loads (no memcmp call).
        constexpr std::size_t size = N - 1;
        skip_ws();
        if (static_cast<std::size_t>(end_ - p_) >= size && std::memcmp(p_, token, size) == 0) {
            p_ += size;
            return true;
        }
        return false;
    }
    /// The character after the opening quote of the string that comes next (0 if none), for
    /// choosing which member name to try.
    char name_initial() noexcept {
        skip_ws();
        return end_ - p_ >= 2 && *p_ == '"' ? p_[1] : '\0';
    }
    /// A string without escapes or control characters, valid UTF-8 (what a JSON parser that
    /// validates UTF-8 reads back unchanged).
    bool string(std::string_view& out) noexcept {
        if (!eat('"'))
            return false;
        const char* start = p_;
        std::uint64_t high = 0; // the high bits of the bytes looked at: non-ASCII if set
        // Eight bytes at a time while no byte is a quote, a backslash or a control character.
        while (end_ - p_ >= 8) {
            std::uint64_t w;
            std::memcpy(&w, p_, 8);
            const std::uint64_t stop =
                bytes_equal(w, '"') | bytes_equal(w, '\\') | bytes_below_space(w);
            high |= w & kHighs; // bytes after the stop too: at worst a needless UTF-8 check
            if (stop == 0) {
                p_ += 8;
                continue;
            }
            if constexpr (std::endian::native == std::endian::little) {
                p_ += std::countr_zero(stop) / 8; // the first flagged byte is a true stop
            } else {
                while (*p_ != '"' && *p_ != '\\' && static_cast<unsigned char>(*p_) >= 0x20)
                    ++p_;
            }
            return close_string(start, high, out);
        }
        while (p_ != end_) {
            const auto c = static_cast<unsigned char>(*p_);
            if (c == '"' || c == '\\' || c < 0x20)
                return close_string(start, high, out);
            high |= c & 0x80;
            ++p_;
        }
        return false;
    }
    /// A JSON integer within [min, INT32_MAX] written as plain digits (no sign, fraction or
    /// exponent, no leading zero).
    bool int32(std::int32_t min, std::int32_t& out) noexcept {
        skip_ws();
        const char* start = p_;
        std::int64_t v = 0;
        while (p_ != end_ && *p_ >= '0' && *p_ <= '9' && p_ - start < 11) {
            v = v * 10 + (*p_ - '0');
            ++p_;
        }
        const auto n = p_ - start;
        if (n == 0 || (n > 1 && *start == '0') || v < min || v > INT32_MAX ||
            (p_ != end_ && (*p_ == '.' || *p_ == 'e' || *p_ == 'E' || (*p_ >= '0' && *p_ <= '9'))))
            return false;
        out = static_cast<std::int32_t>(v);
        return true;
    }

private:
    /// At the first quote, backslash or control character of a string that began at `start`:
    /// only a quote ends a string of the common shape.
    bool close_string(const char* start, std::uint64_t high, std::string_view& out) noexcept {
        if (*p_ != '"')
            return false;
        out = std::string_view(start, static_cast<std::size_t>(p_ - start));
        ++p_;
        return high == 0 || registry::find_invalid_utf8(out) == std::string_view::npos;
    }

    const char* p_;
    const char* end_;
};

// The members of a value object this scanner knows; none for any other name (not handled).
enum class Member { index, type, data, ttl, permissions, timestamp, none };

/// Consumes the member name `quoted` (with its quotes) and the colon after it; on failure
/// consumes nothing, so that the caller can try the next name from the same place. (Consuming a
/// name whose colon is missing let `"ttl""timestamp":…` scan as a timestamp member: a line that
/// is not JSON accepted by the fast path.)
template <std::size_t N> bool eat_name(Cursor& s, const char (&quoted)[N]) {
    const char* const start = s.mark();
    if (s.eat_token(quoted) && s.eat(':'))
        return true;
    s.reset(start);
    return false;
}

/// The member name of a value object (and its colon), or none for anything else.
Member value_member(Cursor& s) {
    switch (s.name_initial()) {
    case 'i':
        return eat_name(s, "\"index\"") ? Member::index : Member::none;
    case 't':
        if (eat_name(s, "\"type\""))
            return Member::type;
        if (eat_name(s, "\"ttl\""))
            return Member::ttl;
        return eat_name(s, "\"timestamp\"") ? Member::timestamp : Member::none;
    case 'd':
        return eat_name(s, "\"data\"") ? Member::data : Member::none;
    case 'p':
        return eat_name(s, "\"permissions\"") ? Member::permissions : Member::none;
    default:
        return Member::none;
    }
}

/// One value object (the cursor is before its '{').
bool scan_value(Cursor& s, ScannedValue& v) {
    bool have_index = false, have_type = false, have_data = false, have_ttl = false,
         have_perms = false, have_ts = false;
    if (!s.eat('{'))
        return false;
    do {
        bool ok = false;
        switch (value_member(s)) {
        case Member::index:
            ok = !have_index && (have_index = s.int32(1, v.index));
            break;
        case Member::type:
            ok = !have_type && (have_type = s.string(v.type));
            break;
        case Member::data:
            if (have_data)
                break;
            if (s.next() == '"') {
                ok = s.string(v.data);
            } else {
                ok = s.eat('{') && eat_name(s, "\"format\"") && s.eat_token("\"string\"") &&
                     s.eat(',') && eat_name(s, "\"value\"") && s.string(v.data) && s.eat('}');
            }
            have_data = ok;
            break;
        case Member::ttl:
            ok = !have_ttl && (have_ttl = s.int32(0, v.ttl));
            break;
        case Member::permissions:
            if (std::string_view text; !have_perms && s.string(text)) {
                if (auto p = registry::Permissions::parse(text)) {
                    v.permissions = *p;
                    ok = have_perms = true;
                }
            }
            break;
        case Member::timestamp:
            if (std::string_view ignored; !have_ts) { // output for information, ignored on input
                ok = have_ts = s.string(ignored);
            }
            break;
        case Member::none:
            break;
        }
        if (!ok)
            return false;
    } while (s.eat(','));
    return s.eat('}') && have_index && have_type && have_data;
}

} // namespace

bool RecordLineScanner::scan(std::string_view line) {
    values_.clear();
    handle_ = {};
    template_version_ = {};
    Cursor s(line);
    bool have_handle = false, have_values = false, have_template = false;
    if (!s.eat('{'))
        return false;
    do {
        switch (s.name_initial()) {
        case 'h':
            if (have_handle || !eat_name(s, "\"handle\"") || !s.string(handle_))
                return false;
            have_handle = true;
            break;
        case 't':
            if (have_template || !eat_name(s, "\"templateVersion\"") ||
                !s.string(template_version_) || template_version_.empty())
                return false;
            have_template = true;
            break;
        case 'v':
            if (have_values || !eat_name(s, "\"values\""))
                return false;
            have_values = true;
            if (!s.eat('[') || s.peek(']'))
                return false;
            do {
                ScannedValue& v = values_.emplace_back();
                if (!scan_value(s, v))
                    return false;
            } while (s.eat(','));
            if (!s.eat(']'))
                return false;
            break;
        default:
            return false;
        }
    } while (s.eat(','));
    return s.eat('}') && s.at_end() && have_handle && have_values;
}

template <class Fn> void RecordLineScanner::for_each_stored(Fn&& fn) const {
    for (const ScannedValue& v : values_) {
        if (!template_version_.empty() && v.index == registry::kIndexTemplate)
            continue; // replaced by templateVersion, appended last
        fn(v);
    }
    if (!template_version_.empty())
        fn(ScannedValue{registry::kIndexTemplate, "TEMPLATE", template_version_,
                        registry::kDefaultTtl, registry::Permissions{}});
}

void RecordLineScanner::stored_values(std::vector<registry::HandleValue>& out) const {
    out.clear();
    out.reserve(values_.size() + (template_version_.empty() ? 0 : 1));
    for_each_stored([&out](const ScannedValue& v) {
        registry::HandleValue& h = out.emplace_back();
        h.index = v.index;
        h.type.assign(v.type);
        h.data.assign(v.data);
        h.ttl = v.ttl;
        h.permissions = v.permissions;
    });
}

void RecordLineScanner::encode(std::string& record, std::string_view spelling) const {
    registry::RecordEncoder encoder(record, spelling);
    for_each_stored([&encoder](const ScannedValue& v) {
        encoder.add(v.index, v.type, v.data, v.ttl, v.permissions);
    });
}

} // namespace idnode::codec
