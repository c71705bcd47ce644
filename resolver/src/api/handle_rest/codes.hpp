// The Handle REST API's one table from outcomes to wire codes: a Handle response code
// (handle::rc, the numbers HANDLE.NET's REST API answers) and an HTTP status, and the body shape
// {"responseCode", "handle"?, "message"?}. See docs/api.md#handle-rest.
//
// Decisions where HANDLE.NET has no equivalent (docs/api.md#write-decisions):
// - not homed -> 400 RC 301; homed but not allocated -> 404 RC 100 with a message saying so;
// - anonymous write -> 401 RC 402; writing outside one's prefixes -> 403 RC 401; a suspended
//   prefix -> 403 RC 400; a prefix routed to an enterprise node -> 409 RC 301 (the server is not
//   responsible, as for a prefix not homed, but 409 like the native `routed_elsewhere`: the
//   request was fine, the identifiers live elsewhere; the message names the node);
// - storage full -> 507 RC 2; shutting down -> 503 RC 3.
// Internal to the resolver.
#pragma once

#include "idnode/node/outcome.hpp"
#include "idnode/registry/error.hpp"
#include "idnode/resolver/handle_protocol.hpp"
#include "idnode/resolver/http.hpp"

#include <cstdint>
#include <string_view>

namespace idnode::resolver::api::handle_rest {

struct WireCode {
    std::uint32_t rc;
    http::status status;
};

/// The response code and status of an outcome (refusals: of its reason, when it has one).
WireCode wire_code(const node::Refusal& refusal) noexcept;
WireCode wire_code(node::Outcome outcome) noexcept;
WireCode wire_code(registry::Errc code) noexcept;
/// The HTTP status that goes with a response code.
http::status status_of_rc(std::uint32_t rc) noexcept;

/// {"responseCode": rc, "handle"?: handle, "message"?: message} with `status`.
Response handle_json(const Request& req, std::uint32_t rc, std::string_view handle,
                     std::string_view message, http::status status);
/// handle_json with the status of `rc`.
Response handle_error(const Request& req, std::uint32_t rc, std::string_view handle,
                      std::string_view message);
/// handle_json of a node refusal.
Response handle_refusal(const Request& req, const node::Refusal& refusal, std::string_view handle);

} // namespace idnode::resolver::api::handle_rest
