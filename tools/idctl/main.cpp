// idctl — operator and client command line for idnode.
#include "idnode/sdk/version.hpp"

#include <CLI/CLI.hpp>

#include <iostream>

int main(int argc, char** argv) {
    CLI::App app{"idctl — operate an idnode and register, resolve and load identifiers"};
    app.set_version_flag("--version", std::string("idctl ") + idnode::sdk::version());
    app.require_subcommand(0, 1);
    CLI11_PARSE(app, argc, argv);
    std::cerr << "idctl: no commands are built yet (see issues 3 and 7); only --version and "
                 "--help work in this build\n";
    return 2;
}
