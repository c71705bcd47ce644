// Every public header of the client SDK compiles as C++17 (factory vendors often have older
// toolchains) and names no Boost or OpenSSL type; this TU is built with -std=c++17 and linked
// with the C89 TU below, against the shared library.
#include "idnode/sdk.h"
#include "idnode/sdk/client.hpp"
#include "idnode/sdk/export.hpp"
#include "idnode/sdk/handle_admin.hpp"
#include "idnode/sdk/result.hpp"
#include "idnode/sdk/version.hpp"

#if __cplusplus != 201703L
#error "this translation unit must be compiled as C++17"
#endif
#if defined(BOOST_VERSION) || defined(OPENSSL_VERSION_NUMBER)
#error "a public SDK header pulled in Boost or OpenSSL"
#endif

#include <cstdio>
#include <cstring>
#include <vector>

extern "C" int sdk_c89_check(void);

int main() {
    namespace sdk = idnode::sdk;
    int failures = 0;
    auto check = [&](bool ok, const char* what) {
        if (!ok) {
            std::printf("FAILED: %s\n", what);
            ++failures;
        }
    };
    // Record JSON round trip, base64 for bytes, templateVersion.
    sdk::Record r;
    r.handle = "88.118.8/x";
    r.template_version = "1.0";
    r.values.push_back(sdk::Value::text(1, "URL", "https://e.cn"));
    r.values.push_back(sdk::Value::text(2000, "blob", std::string("\0\x01", 2)));
    const std::string text = r.to_json();
    check(text.find("\"templateVersion\":\"1.0\"") != std::string::npos, "templateVersion");
    check(text.find("\"format\":\"base64\"") != std::string::npos, "base64 for bytes");
    auto back = sdk::Record::from_json(text);
    check(back.ok() && back->values.size() == 2 && back->values[1].data == std::string("\0\x01", 2),
          "round trip");
    check(back.ok() && back->template_version == "1.0", "template back");
    auto bad = sdk::Record::from_json(R"({"handle":"a/b","values":[{"index":"x"}]})");
    check(!bad.ok() && bad.error().kind == sdk::ErrorKind::invalid_argument &&
              bad.error().message.find("values[0]") != std::string::npos,
          "error says where");
    check(!sdk::Record::from_json("[").ok(), "not JSON");
    // the range overload compiles for a vector
    std::vector<sdk::Record> records{r};
    sdk::ClientOptions o;
    o.url = "https://127.0.0.1:1";
    o.retry.max_attempts = 1;
    o.connect_timeout = std::chrono::milliseconds(500);
    auto client = sdk::Client::create(o);
    check(client.ok(), "create");
    if (client.ok()) {
        auto res = client->bulk_range(records);
        check(!res.ok() && res.error().kind == sdk::ErrorKind::connect, "bulk to nothing");
    }
    // The Handle-protocol client validates its options without connecting.
    sdk::HandleAdminOptions ho;
    ho.port = 0;
    check(sdk::HandleAdminClient::create(ho).error().kind == sdk::ErrorKind::invalid_argument,
          "handle admin options");
    ho.port = 2641;
    auto handle_admin = sdk::HandleAdminClient::create(ho);
    check(handle_admin.ok() && !handle_admin->logged_in(), "handle admin create");
    check(std::strcmp(idnode_strerror(IDNODE_E_NOT_FOUND), "not found") == 0, "strerror");
    check(std::strcmp(idnode_strerror(999), "unknown status") == 0, "strerror unknown");
    check(static_cast<int>(sdk::ErrorKind::conflict) == IDNODE_E_CONFLICT, "codes agree");
    failures += sdk_c89_check();
    if (failures == 0)
        std::printf("ok\n");
    return failures == 0 ? 0 : 1;
}
