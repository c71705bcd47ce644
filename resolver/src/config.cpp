#include "idnode/resolver/config.hpp"

#include "idnode/registry/identifier.hpp"

#include <toml++/toml.h>

#include <arpa/inet.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <iterator>
#include <limits>
#include <map>
#include <sstream>
#include <thread>

namespace idnode::resolver {

// ---- small parsers shared with tests ----------------------------------------------------------

namespace {

bool is_ipv4(const std::string& s) {
    in_addr a{};
    return ::inet_pton(AF_INET, s.c_str(), &a) == 1;
}

bool is_ipv6(const std::string& s) {
    in6_addr a{};
    return ::inet_pton(AF_INET6, s.c_str(), &a) == 1;
}

/// 0.0.0.0 or :: (any spelling): a listen address that names no host a client could use.
bool is_wildcard(const std::string& s) {
    in_addr a4{};
    if (::inet_pton(AF_INET, s.c_str(), &a4) == 1)
        return a4.s_addr == 0;
    in6_addr a6{};
    if (::inet_pton(AF_INET6, s.c_str(), &a6) != 1)
        return false;
    return std::all_of(std::begin(a6.s6_addr), std::end(a6.s6_addr),
                       [](unsigned char b) { return b == 0; });
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front())))
        s.remove_prefix(1);
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back())))
        s.remove_suffix(1);
    return s;
}

} // namespace

std::string HostPort::to_string() const {
    if (host.find(':') != std::string::npos)
        return "[" + host + "]:" + std::to_string(port);
    return host + ":" + std::to_string(port);
}

std::optional<HostPort> parse_host_port(std::string_view text, std::string& why) {
    std::string host;
    std::string_view port_text;
    if (!text.empty() && text.front() == '[') {
        const auto close = text.find(']');
        if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
            why = "expected \"[ipv6]:port\"";
            return std::nullopt;
        }
        host = std::string(text.substr(1, close - 1));
        port_text = text.substr(close + 2);
        if (!is_ipv6(host)) {
            why = "'" + host + "' is not an IPv6 address";
            return std::nullopt;
        }
    } else {
        const auto colon = text.rfind(':');
        if (colon == std::string_view::npos) {
            why = "expected \"host:port\"";
            return std::nullopt;
        }
        host = std::string(text.substr(0, colon));
        port_text = text.substr(colon + 1);
        if (host == "localhost")
            host = "127.0.0.1";
        if (host.find(':') != std::string::npos) {
            why = "IPv6 addresses must be bracketed, e.g. \"[::1]:8443\"";
            return std::nullopt;
        }
        if (!is_ipv4(host)) {
            why = "'" + host + "' is not an IP address (use a numeric address or localhost)";
            return std::nullopt;
        }
    }
    unsigned port = 0;
    const auto* end = port_text.data() + port_text.size();
    const auto [ptr, ec] = std::from_chars(port_text.data(), end, port);
    if (port_text.empty() || ec != std::errc() || ptr != end || port > 65535) {
        why = "port '" + std::string(port_text) + "' is not a number in 0..65535";
        return std::nullopt;
    }
    return HostPort{std::move(host), static_cast<std::uint16_t>(port)};
}

std::optional<std::uint64_t> parse_size(std::string_view text, std::string& why) {
    const std::string_view original = text;
    text = trim(text);
    std::size_t digits = 0;
    while (digits < text.size() && std::isdigit(static_cast<unsigned char>(text[digits])))
        ++digits;
    if (digits == 0) {
        why =
            "size '" + std::string(original) + "' must start with a whole number (e.g. \"64GiB\")";
        return std::nullopt;
    }
    std::uint64_t number = 0;
    const auto [ptr, ec] = std::from_chars(text.data(), text.data() + digits, number);
    if (ec != std::errc() || ptr != text.data() + digits) {
        why = "size '" + std::string(original) + "' is too large";
        return std::nullopt;
    }
    const std::string_view unit = trim(text.substr(digits));
    static constexpr std::pair<std::string_view, std::uint64_t> kUnits[] = {
        {"", 1},
        {"B", 1},
        {"KiB", 1ull << 10},
        {"MiB", 1ull << 20},
        {"GiB", 1ull << 30},
        {"TiB", 1ull << 40},
        {"KB", 1000ull},
        {"MB", 1000ull * 1000},
        {"GB", 1000ull * 1000 * 1000},
        {"TB", 1000ull * 1000 * 1000 * 1000},
    };
    for (const auto& [name, factor] : kUnits) {
        if (unit != name)
            continue;
        if (number > std::numeric_limits<std::uint64_t>::max() / factor) {
            why = "size '" + std::string(original) + "' is too large";
            return std::nullopt;
        }
        return number * factor;
    }
    why = "size '" + std::string(original) +
          "' has an unknown unit (use B, KiB, MiB, GiB, TiB, KB, MB, GB or TB)";
    return std::nullopt;
}

unsigned NodeConfig::effective_threads() const noexcept {
    if (https.threads != 0)
        return https.threads;
    return std::max(1u, std::thread::hardware_concurrency());
}

// ---- the TOML reader ----------------------------------------------------------------------------

namespace {

const char* type_name(toml::node_type t) {
    switch (t) {
    case toml::node_type::table:
        return "table";
    case toml::node_type::array:
        return "array";
    case toml::node_type::string:
        return "string";
    case toml::node_type::integer:
        return "integer";
    case toml::node_type::floating_point:
        return "float";
    case toml::node_type::boolean:
        return "boolean";
    case toml::node_type::date:
        return "date";
    case toml::node_type::time:
        return "time";
    case toml::node_type::date_time:
        return "date-time";
    case toml::node_type::none:
        break;
    }
    return "nothing";
}

/// Reads one document into a NodeConfig. Each known key has a setter that validates the node
/// and stores it; anything without a setter is an unknown key.
class Reader {
public:
    Reader(std::string_view source, NodeConfig& out) : source_(source), out_(out) { bind_all(); }

    void read(const toml::table& root) {
        for (const auto& [section_key, section_node] : root) {
            const std::string section(section_key.str());
            const bool known = std::any_of(setters_.begin(), setters_.end(), [&](const auto& kv) {
                return kv.first.compare(0, section.size() + 1, section + ".") == 0;
            });
            if (!known)
                fail_at(section_key.source(), "unknown key '" + section + "'");
            const toml::table* table = section_node.as_table();
            if (table == nullptr)
                fail(section_node, "key '" + section + "' must be a table (got " +
                                       type_name(section_node.type()) + ")");
            for (const auto& [key, node] : *table) {
                const std::string dotted = section + "." + std::string(key.str());
                const auto setter = setters_.find(dotted);
                if (setter == setters_.end())
                    fail_at(key.source(), "unknown key '" + dotted + "'");
                current_key_ = dotted;
                setter->second(node);
            }
        }
        check_cross_fields();
    }

private:
    using Setter = std::function<void(const toml::node&)>;

    [[noreturn]] void fail(const toml::node& at, const std::string& message) const {
        fail_at(at.source(), message);
    }

    [[noreturn]] void fail_at(const toml::source_region& where, const std::string& message) const {
        const auto& begin = where.begin;
        std::ostringstream text;
        text << source_;
        if (begin.line != 0)
            text << ':' << begin.line << ':' << begin.column;
        text << ": " << message;
        throw ConfigError(text.str());
    }

    [[noreturn]] void fail_type(const toml::node& at, const char* expected) const {
        fail(at, "key '" + current_key_ + "' must be " + expected + " (got " +
                     type_name(at.type()) + ")");
    }

    [[noreturn]] void fail_value(const toml::node& at, const std::string& why) const {
        fail(at, "key '" + current_key_ + "': " + why);
    }

    const std::string& string_of(const toml::node& n) const {
        const auto* s = n.as_string();
        if (s == nullptr)
            fail_type(n, "a string");
        return s->get();
    }

    std::int64_t integer_of(const toml::node& n, std::int64_t min, std::int64_t max) const {
        const auto* i = n.as_integer();
        if (i == nullptr)
            fail_type(n, "an integer");
        const std::int64_t v = i->get();
        if (v < min || v > max)
            fail_value(n, "must be in " + std::to_string(min) + ".." + std::to_string(max) +
                              " (got " + std::to_string(v) + ")");
        return v;
    }

    Setter text(std::string& field, bool allow_empty = true) {
        return [this, &field, allow_empty](const toml::node& n) {
            field = string_of(n);
            if (!allow_empty && field.empty())
                fail_value(n, "must not be empty");
        };
    }

    Setter path(std::filesystem::path& field) {
        return [this, &field](const toml::node& n) {
            const std::string& s = string_of(n);
            if (s.empty())
                fail_value(n, "must not be empty");
            field = s;
        };
    }

    template <class Int> Setter integer(Int& field, std::int64_t min, std::int64_t max) {
        return [this, &field, min, max](const toml::node& n) {
            field = static_cast<Int>(integer_of(n, min, max));
        };
    }

    Setter seconds(std::chrono::seconds& field, std::int64_t min, std::int64_t max) {
        return [this, &field, min, max](const toml::node& n) {
            field = std::chrono::seconds(integer_of(n, min, max));
        };
    }

    Setter size(std::uint64_t& field, std::uint64_t min, std::uint64_t max) {
        return [this, &field, min, max](const toml::node& n) {
            std::uint64_t v = 0;
            if (const auto* i = n.as_integer()) {
                if (i->get() < 0)
                    fail_value(n, "a size must not be negative");
                v = static_cast<std::uint64_t>(i->get());
            } else if (const auto* s = n.as_string()) {
                std::string why;
                const auto parsed = parse_size(s->get(), why);
                if (!parsed)
                    fail_value(n, why);
                v = *parsed;
            } else {
                fail_type(n, "a size (integer bytes or a string like \"64GiB\")");
            }
            if (v < min || v > max)
                fail_value(n, "must be between " + std::to_string(min) + " and " +
                                  std::to_string(max) + " bytes (got " + std::to_string(v) + ")");
            field = v;
        };
    }

    Setter rate(double& field) {
        return [this, &field](const toml::node& n) {
            double v = 0;
            if (const auto* i = n.as_integer())
                v = static_cast<double>(i->get());
            else if (const auto* f = n.as_floating_point())
                v = f->get();
            else
                fail_type(n, "a number (requests per second)");
            if (!std::isfinite(v) || v < 0 || v > 1e9)
                fail_value(n, "must be a number >= 0 (0 = off)");
            field = v;
        };
    }

    Setter boolean(bool& field) {
        return [this, &field](const toml::node& n) {
            const auto* b = n.as_boolean();
            if (b == nullptr)
                fail_type(n, "a boolean");
            field = b->get();
        };
    }

    Setter host_port(HostPort& field) {
        return [this, &field](const toml::node& n) {
            std::string why;
            auto parsed = parse_host_port(string_of(n), why);
            if (!parsed)
                fail_value(n, why);
            field = std::move(*parsed);
        };
    }

    Setter one_of(std::string& field, std::vector<std::string> choices) {
        return [this, &field, choices = std::move(choices)](const toml::node& n) {
            const std::string& s = string_of(n);
            if (std::find(choices.begin(), choices.end(), s) == choices.end()) {
                std::string list;
                for (const auto& c : choices)
                    list += (list.empty() ? "" : ", ") + c;
                fail_value(n, "'" + s + "' is not one of " + list);
            }
            field = s;
        };
    }

    void bind_all() {
        auto& c = out_;
        setters_["node.data_dir"] = path(c.node.data_dir);
        setters_["node.homed_prefixes"] = [this, &c](const toml::node& n) {
            const auto* array = n.as_array();
            if (array == nullptr)
                fail_type(n, "an array of prefix strings");
            c.node.homed_prefixes.clear();
            std::vector<std::string> folded;
            for (const auto& element : *array) {
                const std::string& s = string_of(element);
                auto prefix = registry::parse_prefix(s);
                if (!prefix.ok())
                    fail_value(element, "'" + s + "': " + prefix.error().message);
                if (std::find(folded.begin(), folded.end(), *prefix) != folded.end())
                    fail_value(element, "prefix '" + s + "' is listed twice");
                folded.push_back(*prefix);
                c.node.homed_prefixes.push_back(s);
            }
        };
        setters_["node.max_db_size"] = size(c.node.max_db_size, MiB, 1ull << 50);
        setters_["node.public_base_url"] = [this, &c](const toml::node& n) {
            const std::string& s = string_of(n);
            if (!s.empty() && s.rfind("https://", 0) != 0 && s.rfind("http://", 0) != 0)
                fail_value(n, "must start with https:// or http://");
            c.node.public_base_url = s;
        };

        setters_["https.listen"] = host_port(c.https.listen);
        setters_["https.cert"] = path(c.https.cert);
        setters_["https.key"] = path(c.https.key);
        setters_["https.threads"] = integer(c.https.threads, 0, 1024);
        setters_["https.hsts_max_age_s"] = integer(c.https.hsts_max_age_s, 0, 0xFFFFFFFF);

        setters_["handle.listen"] = host_port(c.handle.listen);
        setters_["handle.advertise_address"] = [this, &c](const toml::node& n) {
            const std::string& s = string_of(n);
            if (!s.empty() && !is_ipv4(s) && !is_ipv6(s))
                fail_value(n, "'" + s + "' is not an IP address");
            c.handle.advertise_address = s;
        };
        setters_["handle.site_serial"] = integer(c.handle.site_serial, 0, 65535);
        setters_["handle.public_key"] = [this, &c](const toml::node& n) {
            c.handle.public_key = string_of(n); // "" = no key published
        };
        setters_["handle.private_key"] = path(c.handle.private_key);
        setters_["handle.allow_password_login"] = boolean(c.handle.allow_password_login);
        setters_["handle.udp_max_reply_bytes"] = size(c.handle.udp_max_reply_bytes, 512, 1 * MiB);

        setters_["ops.listen"] = host_port(c.ops.listen);

        setters_["snms.token_v1"] = boolean(c.snms.token_v1);
        setters_["snms.token_ttl_s"] = integer(c.snms.token_ttl_s, 1, 30 * 86400);

        setters_["limits.max_header_bytes"] = size(c.limits.max_header_bytes, 1 * KiB, 1 * MiB);
        setters_["limits.max_body_bytes"] = size(c.limits.max_body_bytes, 0, 1 * GiB);
        setters_["limits.max_batch_body_bytes"] = size(c.limits.max_batch_body_bytes, 0, 1 * GiB);
        setters_["limits.header_timeout_s"] = seconds(c.limits.header_timeout, 1, 3600);
        setters_["limits.idle_timeout_s"] = seconds(c.limits.idle_timeout, 1, 86400);
        setters_["limits.max_connections"] = integer(c.limits.max_connections, 1, 1000000);
        setters_["limits.rate_per_ip"] = rate(c.limits.rate_per_ip);
        setters_["limits.rate_per_account"] = rate(c.limits.rate_per_account);
        setters_["limits.idempotency_ttl_s"] = integer(c.limits.idempotency_ttl_s, 1, 30 * 86400);

        setters_["log.level"] =
            one_of(c.log.level, {"trace", "debug", "info", "warn", "error", "critical", "off"});
        setters_["log.access"] = text(c.log.access, /*allow_empty=*/false);
        setters_["log.format"] = [this, &c](const toml::node& n) {
            const std::string& s = string_of(n);
            if (s == "text")
                c.log.format = LogFormat::text;
            else if (s == "json")
                c.log.format = LogFormat::json;
            else
                fail_value(n, "'" + s + "' is not one of text, json");
        };
    }

    void check_cross_fields() const {
        const auto clash = [](const HostPort& a, const HostPort& b) {
            return a.port != 0 && a == b;
        };
        const auto& c = out_;
        std::string message;
        if (clash(c.https.listen, c.ops.listen))
            message = "https.listen and ops.listen are the same address";
        else if (clash(c.https.listen, c.handle.listen))
            message = "https.listen and handle.listen are the same address";
        else if (clash(c.ops.listen, c.handle.listen))
            message = "ops.listen and handle.listen are the same address";
        if (!message.empty())
            throw ConfigError(source_ + ": " + message + " (" + c.https.listen.to_string() + ")");
        if (c.node.public_base_url.empty() && is_wildcard(c.https.listen.host))
            throw ConfigError(source_ +
                              ": node.public_base_url must be set when https.listen is a "
                              "wildcard address (" +
                              c.https.listen.to_string() +
                              "): QR codes carry the URL clients reach this node at, e.g. "
                              "\"https://id.example.com\"");
    }

    std::string source_;
    NodeConfig& out_;
    std::map<std::string, Setter> setters_;
    std::string current_key_;
};

} // namespace

NodeConfig parse_config(std::string_view toml_text, std::string_view source_name) {
    toml::table root;
    try {
        root = toml::parse(toml_text, source_name);
    } catch (const toml::parse_error& e) {
        const auto& begin = e.source().begin;
        throw ConfigError(std::string(source_name) + ":" + std::to_string(begin.line) + ":" +
                          std::to_string(begin.column) + ": " + std::string(e.description()));
    }
    NodeConfig config;
    Reader(source_name, config).read(root);
    return config;
}

NodeConfig load_config(const std::filesystem::path& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in)
        throw ConfigError(path.string() + ": cannot read the configuration file");
    std::ostringstream text;
    text << in.rdbuf();
    if (in.bad())
        throw ConfigError(path.string() + ": error while reading the configuration file");
    NodeConfig config = parse_config(text.str(), path.string());
    apply_environment(config);
    return config;
}

void apply_environment(NodeConfig& config) {
    if (const char* password = std::getenv("IDNODE_HTTPS_KEY_PASSWORD"))
        config.https.key_password = password;
}

} // namespace idnode::resolver
