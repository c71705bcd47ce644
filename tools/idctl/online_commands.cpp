#include "online_commands.hpp"

#include <iostream>

#include <termios.h>
#include <unistd.h>

namespace idnode::idctl {

namespace json = boost::json;

std::optional<json::value> parse_json_text(const std::string& text) {
    boost::system::error_code ec;
    json::value v = json::parse(text, ec);
    if (ec) {
        return std::nullopt;
    }
    return v;
}

std::string str(const json::value* v) {
    if (v == nullptr || v->is_null()) {
        return "";
    }
    if (v->is_string()) {
        return std::string(v->get_string());
    }
    return json::serialize(*v);
}

std::string field(const json::object& o, std::string_view key) {
    return str(o.if_contains(key));
}

/// Prints the node's JSON answer as is (--json) or lets `human` render it. A body that is not
/// JSON is a protocol failure of the node.
int show(const std::string& command, const GlobalOptions& global, const std::string& body,
         const std::function<void(const json::value&)>& human) {
    auto v = parse_json_text(body);
    if (!v) {
        return fail(command, "the node's answer is not JSON");
    }
    if (global.json) {
        print_json(std::cout, *v);
    } else {
        human(*v);
    }
    return kExitOk;
}

/// Most admin subcommands: open a client, make one call that answers JSON, show the answer.
int call_and_show(const std::string& command, const GlobalOptions& global,
                  const std::function<sdk::Result<std::string>(sdk::Client&)>& call,
                  const std::function<void(const json::value&)>& human) {
    std::optional<sdk::Client> client;
    if (int rc = open_client(command, global, client)) {
        return rc;
    }
    auto r = call(*client);
    if (!r) {
        return sdk_fail(command, r.error());
    }
    return show(command, global, *r, human);
}

/// The subcommands whose call answers only "done": open a client, call, then print `done`
/// (--json) or the line `text`.
int call_and_report(const std::string& command, const GlobalOptions& global,
                    const std::function<sdk::Status(sdk::Client&)>& call, const json::object& done,
                    const std::string& text) {
    std::optional<sdk::Client> client;
    if (int rc = open_client(command, global, client)) {
        return rc;
    }
    if (auto st = call(*client); !st) {
        return sdk_fail(command, st.error());
    }
    if (global.json) {
        print_json(std::cout, done);
    } else {
        std::cout << text << '\n';
    }
    return kExitOk;
}

const json::array& array_at(const json::value& v, std::string_view key) {
    static const json::array empty;
    const auto* o = v.if_object();
    const auto* a = o ? o->if_contains(key) : nullptr;
    return a && a->is_array() ? a->get_array() : empty;
}

/// A table of the objects of the array `v[key]`, one row each.
void print_rows(const json::value& v, std::string_view key, const std::vector<std::string>& headers,
                std::vector<std::string> (*row)(const json::value&)) {
    std::vector<std::vector<std::string>> rows;
    for (const auto& item : array_at(v, key)) {
        rows.push_back(row(item));
    }
    print_table(std::cout, headers, rows);
}

/// Reads a secret from stdin: without echo on a terminal (after a prompt on stderr), else one
/// line of the pipe. The trailing newline is removed.
std::optional<std::string> read_secret(const char* prompt) {
    const bool tty = isatty(STDIN_FILENO) != 0;
    termios old{};
    if (tty) {
        std::cerr << prompt << std::flush;
        tcgetattr(STDIN_FILENO, &old);
        termios quiet = old;
        quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
        tcsetattr(STDIN_FILENO, TCSANOW, &quiet);
    }
    std::string line;
    const bool got = static_cast<bool>(std::getline(std::cin, line));
    if (tty) {
        tcsetattr(STDIN_FILENO, TCSANOW, &old);
        std::cerr << '\n';
    }
    if (!got) {
        return std::nullopt;
    }
    if (!line.empty() && line.back() == '\r') {
        line.pop_back();
    }
    return line;
}

} // namespace idnode::idctl
