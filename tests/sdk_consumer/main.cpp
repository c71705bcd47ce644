// Consumer of the installed SDK (C++17): builds a client and reports a local validation error.
#include <idnode/sdk/client.hpp>
#include <idnode/sdk/handle_admin.hpp>
#include <idnode/sdk/version.hpp>

#include <cstdio>

int main() {
    idnode::sdk::ClientOptions o;
    o.url = "http://not-https";
    auto c = idnode::sdk::Client::create(o);
    if (c.ok() || c.error().kind != idnode::sdk::ErrorKind::invalid_argument)
        return 1;
    idnode::sdk::HandleAdminOptions ho;
    ho.host = "";
    auto h = idnode::sdk::HandleAdminClient::create(ho);
    if (h.ok() || h.error().kind != idnode::sdk::ErrorKind::invalid_argument)
        return 1;
    std::printf("idnode-sdk %s: %s\n", idnode::sdk::version(), c.error().to_string().c_str());
    return 0;
}
