#include "connection.hpp"

#include <toml++/toml.h>

#include <cstdlib>
#include <iterator>

namespace idnode::idctl {

using registry::Errc;
using registry::Error;

const char* source_name(Source s) noexcept {
    // Indexed by the enumerator's value.
    static constexpr const char* kNames[] = {"none", "flag", "environment", "config file"};
    static_assert(std::size(kNames) == static_cast<std::size_t>(Source::config_file) + 1);
    const auto i = static_cast<std::size_t>(s);
    return i < std::size(kNames) ? kNames[i] : "none";
}

EnvLookup process_environment() {
    return [](const char* name) -> std::optional<std::string> {
        const char* v = std::getenv(name);
        if (v == nullptr || *v == '\0') {
            return std::nullopt;
        }
        return std::string(v);
    };
}

std::filesystem::path default_config_path(const EnvLookup& env) {
    if (auto xdg = env("XDG_CONFIG_HOME")) {
        return std::filesystem::path(*xdg) / "idctl" / "config.toml";
    }
    if (auto home = env("HOME")) {
        return std::filesystem::path(*home) / ".config" / "idctl" / "config.toml";
    }
    return {};
}

namespace {

struct FileSettings {
    std::optional<std::string> url, ca_file, key;
};

registry::Result<FileSettings> read_config(const std::filesystem::path& path) {
    FileSettings out;
    std::error_code ec;
    if (path.empty() || !std::filesystem::exists(path, ec)) {
        return out;
    }
    toml::table table;
    try {
        table = toml::parse_file(path.string());
    } catch (const toml::parse_error& e) {
        return Error{Errc::invalid_value, path.string() + ": " + std::string(e.description())};
    }
    for (const auto& [k, v] : table) {
        const std::string key(k.str());
        std::optional<std::string>* slot = key == "url"       ? &out.url
                                           : key == "ca_file" ? &out.ca_file
                                           : key == "key"     ? &out.key
                                                              : nullptr;
        if (slot == nullptr) {
            return Error{Errc::invalid_value,
                         path.string() + ": unknown key \"" + key + "\" (url, ca_file, key)"};
        }
        if (!v.is_string()) {
            return Error{Errc::invalid_value, path.string() + ": " + key + " must be a string"};
        }
        *slot = std::string(*v.value<std::string>());
    }
    return out;
}

template <class T>
Source pick(std::string& out, const std::optional<T>& flag, const std::optional<T>& env,
            const std::optional<T>& file) {
    if (flag) {
        out = *flag;
        return Source::flag;
    }
    if (env) {
        out = *env;
        return Source::environment;
    }
    if (file) {
        out = *file;
        return Source::config_file;
    }
    return Source::none;
}

} // namespace

std::filesystem::path config_file_path(const std::string& flag, const EnvLookup& env) {
    return flag.empty() ? default_config_path(env) : std::filesystem::path(flag);
}

registry::Result<ConnectionSettings> resolve_connection(const ConnectionFlags& flags,
                                                        const EnvLookup& env,
                                                        const std::filesystem::path& config_file) {
    if (flags.key && flags.user) {
        return Error{Errc::invalid_value, "--key and --user are alternatives; give one"};
    }
    if (flags.user.has_value() != flags.password.has_value()) {
        return Error{Errc::invalid_value, "--user and --password go together"};
    }
    auto file = read_config(config_file);
    if (!file) {
        return file.error();
    }
    ConnectionSettings s;
    s.url_source = pick(s.url, flags.url, env("IDNODE_URL"), file->url);
    pick(s.ca_file, flags.ca_file, env("IDNODE_CA_FILE"), file->ca_file);
    if (flags.user) {
        s.user = *flags.user;
        s.password = *flags.password;
        s.credential_source = Source::flag;
    } else {
        s.credential_source = pick(s.key, flags.key, env("IDNODE_KEY"), file->key);
    }
    while (!s.url.empty() && s.url.back() == '/') {
        s.url.pop_back();
    }
    if (!s.url.empty() && s.url.rfind("https://", 0) != 0 && s.url.rfind("http://", 0) != 0) {
        return Error{Errc::invalid_value, std::string("URL from ") + source_name(s.url_source) +
                                              " must start with https:// (got \"" + s.url + "\")"};
    }
    return s;
}

registry::Status require_url(const ConnectionSettings& settings,
                             const std::filesystem::path& config_file) {
    if (!settings.url.empty()) {
        return {};
    }
    return Error{Errc::invalid_value,
                 "no node URL: pass --url, set IDNODE_URL or put url in " +
                     (config_file.empty() ? std::string("the config file") : config_file.string())};
}

} // namespace idnode::idctl
