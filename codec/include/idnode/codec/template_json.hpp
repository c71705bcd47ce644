// JSON form of metadata templates (docs/data-model.md#templates, docs/api.md#templates): the SNMS
// v5 document plus our typed extension.
//
//   {"prefix":"88.118.8","version":"1.0","industryCategory":"C","industrySpecific":"31",
//    "industryTrade":"312","industrySubclass":"3120","type":1,"description":"...",
//    "items":[{"name":"炉号","idType":"heat_no","idIndex":2000,"required":true,"state":1,
//              "public":true,"metadata":{"type":"string","minLength":1,"maxLength":32,
//                                        "values":[...enum only]}}]}
//
// Lenient where SNMS clients differ: numbers may be sent as strings, `required` as 0/1, `type`
// as "1". `metadata` is optional (string, 0..65536). Unknown members are ignored.
#pragma once

#include "idnode/registry/template.hpp"

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

namespace idnode::codec {

/// Parses a template document; invalid_value naming the member on failure. Does not run
/// registry::validate_template (callers do, after filling prefix/version from the path).
registry::Result<registry::Template> template_from_json(const boost::json::value& json);

boost::json::object template_to_json(const registry::Template& t);

} // namespace idnode::codec
