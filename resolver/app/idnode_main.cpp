// idnode — the secondary-node server.
#include "idnode/resolver/version.hpp"

#include <CLI/CLI.hpp>

#include <iostream>

int main(int argc, char** argv) {
    CLI::App app{"idnode — secondary node of an industrial-internet identifier resolution system"};
    app.set_version_flag("--version", std::string("idnode ") + idnode::resolver::version());
    std::string config;
    app.add_option("--config", config, "TOML configuration file (conf/idnode.toml)");
    CLI11_PARSE(app, argc, argv);
    std::cerr << "idnode: the network server is not built yet (see issue 3); only --version and "
                 "--help work in this build\n";
    return 1;
}
