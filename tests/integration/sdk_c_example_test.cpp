// The SDK's C example (client-sdk/examples/resolve.c, C89 over idnode/sdk.h) against the real
// node: it registers a record through idnode_put and prints it back through idnode_resolve; a
// missing handle and an untrusted CA come back as status names with HTTP status and Handle RC.
#include "harness.hpp"

#include <boost/json.hpp>
#include <doctest/doctest.h>

using namespace idnode::test;
namespace json = boost::json;

TEST_CASE("the C example registers and resolves a record") {
    NodeProcess node{"sdk-c"};
    const auto init = run_command({IDNODE_IDCTL_BINARY, "init", "--data-dir",
                                   (node.dir() / "db").string(), "--node-prefix", "88.118"});
    REQUIRE_MESSAGE(init.exit_code == 0, init.err);
    const std::string admin_key(json::parse(init.out).at("admin_key").as_string());
    node.start();
    const std::string url = "https://127.0.0.1:" + std::to_string(node.https_port());
    const std::string ca = node.pki().ca_cert.string();

    // the admin writes under the homed node prefix
    const std::string record =
        R"({"handle":"88.118/C-1","values":[{"index":1,"type":"URL","data":"https://e.cn/c"},)"
        R"({"index":2000,"type":"batch","data":"批次 7"}]})";
    auto put = run_command({IDNODE_SDK_EXAMPLE, url, ca, "88.118/C-1", admin_key, record});
    REQUIRE_MESSAGE(put.exit_code == 0, put.err);
    CHECK(put.err.find("created 88.118/C-1") != std::string::npos);
    const auto printed = json::parse(put.out);
    CHECK(printed.at("handle").as_string() == "88.118/C-1");
    CHECK(printed.at("responseCode").as_int64() == 1);
    const auto& values = printed.at("values").as_array();
    REQUIRE(values.size() == 2);
    CHECK(values[1].at("data").at("value").as_string() == "批次 7");
    CHECK(values[1].at("timestamp").as_string().size() == 20);

    // anonymous resolve of the same record
    auto get = run_command({IDNODE_SDK_EXAMPLE, url, ca, "88.118/c-1"});
    REQUIRE_MESSAGE(get.exit_code == 0, get.err);
    CHECK(json::parse(get.out).at("values").as_array().size() == 2);

    auto missing = run_command({IDNODE_SDK_EXAMPLE, url, ca, "88.118/none"});
    CHECK(missing.exit_code == 1);
    CHECK(missing.err.find("resolve: not found (http 404, rc 100)") != std::string::npos);

    auto untrusted =
        run_command({IDNODE_SDK_EXAMPLE, url, node.pki().other_ca_cert.string(), "88.118/C-1"});
    CHECK(untrusted.exit_code == 1);
    CHECK(untrusted.err.find("TLS failure") != std::string::npos);
    CHECK(untrusted.err.find("certificate verify failed") != std::string::npos);

    auto bad_json = run_command({IDNODE_SDK_EXAMPLE, url, ca, "88.118/C-2", admin_key, "{oops"});
    CHECK(bad_json.exit_code == 1);
    CHECK(bad_json.err.find("put: invalid argument") != std::string::npos);

    auto usage = run_command({IDNODE_SDK_EXAMPLE});
    CHECK(usage.exit_code == 2);
    CHECK(node.stop() == 0);
}
