// The JSON body of a response from the node, for the integration tests that read JSON answers.
#pragma once

#include "harness.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

namespace idnode::test {

/// The body parsed as JSON; a HarnessError naming the first 300 bytes when it is not JSON.
inline boost::json::value body_of(const Response& r) {
    boost::system::error_code ec;
    auto v = boost::json::parse(r.body(), ec);
    if (ec)
        throw HarnessError("response is not JSON: " + r.body().substr(0, 300));
    return v;
}

} // namespace idnode::test
