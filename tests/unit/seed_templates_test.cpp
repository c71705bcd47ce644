// The four seed templates in conf/templates/ (docs/data-model.md#templates) parse, pass the
// structural validation with a prefix, carry distinct versions, and each has at least one private
// (public:false) item.
#include "idnode/codec/template_json.hpp"

#include <boost/json.hpp>
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

using namespace idnode::registry;
namespace json = boost::json;

TEST_CASE("seed templates load and validate") {
    const std::filesystem::path dir = std::filesystem::path(IDNODE_SOURCE_DIR) / "conf/templates";
    std::set<std::string> versions, files;
    for (const auto& entry : std::filesystem::directory_iterator(dir)) {
        if (entry.path().extension() != ".json")
            continue;
        CAPTURE(entry.path().string());
        files.insert(entry.path().filename().string());
        std::ifstream in(entry.path());
        std::stringstream text;
        text << in.rdbuf();
        boost::system::error_code ec;
        auto doc = json::parse(text.str(), ec);
        REQUIRE(!ec);
        auto t = idnode::codec::template_from_json(doc);
        REQUIRE_MESSAGE(t.ok(), t.error().message);
        CHECK(t->prefix.empty()); // loaded under a prefix given at import time
        t->prefix = "88.118.8";
        Status st = validate_template(*t);
        CHECK_MESSAGE(st.ok(), st.error().message);
        CHECK(versions.insert(t->version).second);
        CHECK(std::any_of(t->items.begin(), t->items.end(),
                          [](const TemplateItem& i) { return !i.is_public; }));
        CHECK(std::any_of(t->items.begin(), t->items.end(),
                          [](const TemplateItem& i) { return i.type != FieldType::string; }));
        // Round trip through the JSON form the API returns.
        auto again =
            idnode::codec::template_from_json(json::value(idnode::codec::template_to_json(*t)));
        REQUIRE(again.ok());
        CHECK(again->items == t->items);
    }
    CHECK(files == std::set<std::string>{"auto-parts.json", "optoelectronics.json", "pharma.json",
                                         "steel.json"});
}
