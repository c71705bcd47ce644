// idctl's connection settings: flags, else environment, else config file (idctl(1)).
#include "connection.hpp"
#include "temp_dir.hpp"

#include <doctest/doctest.h>

#include <fstream>
#include <map>

using namespace idnode::idctl;
using idnode::registry::Errc;

namespace {

EnvLookup env_of(std::map<std::string, std::string> vars) {
    return [vars = std::move(vars)](const char* name) -> std::optional<std::string> {
        auto it = vars.find(name);
        if (it == vars.end()) {
            return std::nullopt;
        }
        return it->second;
    };
}

std::filesystem::path write_config(const idnode::test::TempDir& dir, const std::string& text) {
    const auto path = dir.path() / "config.toml";
    std::ofstream(path) << text;
    return path;
}

} // namespace

TEST_CASE("each field comes from the flag, else the environment, else the config file") {
    idnode::test::TempDir dir;
    const auto file = write_config(dir, "url = \"https://file:8443/\"\nca_file = \"/file/ca.pem\"\n"
                                        "key = \"idn_file\"\n");
    SUBCASE("config file only") {
        auto s = resolve_connection({}, env_of({}), file);
        REQUIRE(s.ok());
        CHECK(s->url == "https://file:8443"); // trailing slash dropped
        CHECK(s->ca_file == "/file/ca.pem");
        CHECK(s->key == "idn_file");
        CHECK(s->url_source == Source::config_file);
        CHECK(s->credential_source == Source::config_file);
    }
    SUBCASE("environment over config file") {
        auto s = resolve_connection(
            {}, env_of({{"IDNODE_URL", "https://env"}, {"IDNODE_KEY", "idn_env"}}), file);
        REQUIRE(s.ok());
        CHECK(s->url == "https://env");
        CHECK(s->ca_file == "/file/ca.pem");
        CHECK(s->key == "idn_env");
        CHECK(s->url_source == Source::environment);
    }
    SUBCASE("flags over everything; user/password replace the key as a unit") {
        ConnectionFlags f;
        f.url = "https://flag";
        f.ca_file = "/flag/ca.pem";
        f.user = "ops";
        f.password = "secret";
        auto s = resolve_connection(f,
                                    env_of({{"IDNODE_URL", "https://env"},
                                            {"IDNODE_CA_FILE", "/env/ca.pem"},
                                            {"IDNODE_KEY", "idn_env"}}),
                                    file);
        REQUIRE(s.ok());
        CHECK(s->url == "https://flag");
        CHECK(s->ca_file == "/flag/ca.pem");
        CHECK(s->key.empty());
        CHECK(s->user == "ops");
        CHECK(s->password == "secret");
        CHECK(s->credential_source == Source::flag);
    }
}

TEST_CASE("a missing config file is fine; the URL is only required when asked") {
    auto s = resolve_connection({}, env_of({}), "/nonexistent/idctl/config.toml");
    REQUIRE(s.ok());
    CHECK(s->url.empty());
    CHECK_FALSE(s->has_credentials());
    const auto st = require_url(*s, "/nonexistent/idctl/config.toml");
    CHECK(st.code() == Errc::invalid_value);
    CHECK(st.error().message.find("IDNODE_URL") != std::string::npos);
}

TEST_CASE("bad settings are precise errors") {
    idnode::test::TempDir dir;
    SUBCASE("unknown key") {
        auto s = resolve_connection({}, env_of({}), write_config(dir, "urll = \"x\"\n"));
        REQUIRE_FALSE(s.ok());
        CHECK(s.error().message.find("unknown key \"urll\"") != std::string::npos);
    }
    SUBCASE("not a string") {
        auto s = resolve_connection({}, env_of({}), write_config(dir, "url = 3\n"));
        REQUIRE_FALSE(s.ok());
        CHECK(s.error().message.find("url must be a string") != std::string::npos);
    }
    SUBCASE("malformed TOML") {
        auto s = resolve_connection({}, env_of({}), write_config(dir, "url = \n"));
        REQUIRE_FALSE(s.ok());
        CHECK(s.error().code == Errc::invalid_value);
    }
    SUBCASE("not http(s)") {
        auto s = resolve_connection({}, env_of({{"IDNODE_URL", "ftp://x"}}), {});
        REQUIRE_FALSE(s.ok());
        CHECK(s.error().message.find("environment") != std::string::npos);
    }
    SUBCASE("--user without --password, and --key with --user") {
        ConnectionFlags f;
        f.user = "ops";
        CHECK_FALSE(resolve_connection(f, env_of({}), {}).ok());
        f.password = "p";
        f.key = "idn_x";
        CHECK_FALSE(resolve_connection(f, env_of({}), {}).ok());
    }
}

TEST_CASE("the default config path follows XDG_CONFIG_HOME, then HOME") {
    CHECK(default_config_path(env_of({{"HOME", "/home/op"}})) ==
          std::filesystem::path("/home/op/.config/idctl/config.toml"));
    CHECK(default_config_path(env_of({{"HOME", "/home/op"}, {"XDG_CONFIG_HOME", "/x"}})) ==
          std::filesystem::path("/x/idctl/config.toml"));
    CHECK(default_config_path(env_of({})).empty());
}
