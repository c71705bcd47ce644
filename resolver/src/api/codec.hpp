// The codec (idnode::codec: value JSON, the record-line scanner, template JSON, base64;
// its UTF-8 validator is registry::find_invalid_utf8 here) as the
// resolver's API code names it: unqualified inside idnode::resolver::api, and as api::… from
// idnode::resolver.
#pragma once

#include "idnode/codec/base64.hpp"
#include "idnode/codec/record_scan.hpp"
#include "idnode/codec/template_json.hpp"
#include "idnode/codec/values_json.hpp"

namespace idnode::resolver::api {
using namespace idnode::codec;
} // namespace idnode::resolver::api
