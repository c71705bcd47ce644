#include "record_scan.hpp"

#include "idnode/registry/identifier.hpp"

#include <cstdint>

namespace idnode::resolver::api {

namespace {

/// A minimal cursor over one line. Every failure just means "not the common shape".
class Cursor {
public:
    explicit Cursor(std::string_view text) : p_(text.data()), end_(text.data() + text.size()) {}

    void skip_ws() noexcept {
        while (p_ != end_ && (*p_ == ' ' || *p_ == '\t' || *p_ == '\r' || *p_ == '\n'))
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
    bool peek(char c) noexcept {
        skip_ws();
        return p_ != end_ && *p_ == c;
    }
    /// A string without escapes or control characters, valid UTF-8 (what a JSON parser that
    /// validates UTF-8 reads back unchanged).
    bool string(std::string_view& out) noexcept {
        if (!eat('"'))
            return false;
        const char* start = p_;
        bool ascii = true;
        while (p_ != end_) {
            const auto c = static_cast<unsigned char>(*p_);
            if (c == '"') {
                out = std::string_view(start, static_cast<std::size_t>(p_ - start));
                ++p_;
                return ascii || registry::find_invalid_utf8(out) == std::string_view::npos;
            }
            if (c == '\\' || c < 0x20)
                return false;
            ascii = ascii && c < 0x80;
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
    const char* p_;
    const char* end_;
};

/// One value object (the cursor is before its '{').
bool scan_value(Cursor& s, ScannedValue& v) {
    bool have_index = false, have_type = false, have_data = false, have_ttl = false,
         have_perms = false, have_ts = false;
    if (!s.eat('{'))
        return false;
    do {
        std::string_view field;
        if (!s.string(field) || !s.eat(':'))
            return false;
        bool ok = false;
        if (field == "index" && !have_index) {
            ok = have_index = s.int32(1, v.index);
        } else if (field == "type" && !have_type) {
            ok = have_type = s.string(v.type);
        } else if (field == "data" && !have_data) {
            if (s.peek('"')) {
                ok = s.string(v.data);
            } else {
                std::string_view k1, k2, format;
                ok = s.eat('{') && s.string(k1) && k1 == "format" && s.eat(':') &&
                     s.string(format) && format == "string" && s.eat(',') && s.string(k2) &&
                     k2 == "value" && s.eat(':') && s.string(v.data) && s.eat('}');
            }
            have_data = ok;
        } else if (field == "ttl" && !have_ttl) {
            ok = have_ttl = s.int32(0, v.ttl);
        } else if (field == "permissions" && !have_perms) {
            std::string_view text;
            if (s.string(text)) {
                if (auto p = registry::Permissions::parse(text)) {
                    v.permissions = *p;
                    ok = have_perms = true;
                }
            }
        } else if (field == "timestamp" && !have_ts) {
            std::string_view ignored; // output for information, ignored on input
            ok = have_ts = s.string(ignored);
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
        std::string_view key;
        if (!s.string(key) || !s.eat(':'))
            return false;
        if (key == "handle" && !have_handle) {
            if (!s.string(handle_))
                return false;
            have_handle = true;
        } else if (key == "templateVersion" && !have_template) {
            if (!s.string(template_version_) || template_version_.empty())
                return false;
            have_template = true;
        } else if (key == "values" && !have_values) {
            have_values = true;
            if (!s.eat('[') || s.peek(']'))
                return false;
            do {
                ScannedValue v;
                if (!scan_value(s, v))
                    return false;
                values_.push_back(v);
            } while (s.eat(','));
            if (!s.eat(']'))
                return false;
        } else {
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

} // namespace idnode::resolver::api
