#include "api/handle_rest/codes.hpp"

#include "api/common.hpp"

#include <boost/json.hpp>

#include <array>

namespace idnode::resolver::api::handle_rest {
namespace json = boost::json;
namespace rc = handle::rc;
using node::Outcome;

WireCode wire_code(Outcome outcome) noexcept {
    using S = http::status;
    // Indexed by node::Outcome: ok, created, replaced, unchanged, unauthorized, forbidden,
    // not_found, conflict, invalid, in_use, routed_elsewhere, throttled, unavailable,
    // storage_full, internal.
    static constexpr std::array<WireCode, 15> kCodes{{{rc::kSuccess, S::ok},
                                                      {rc::kSuccess, S::created},
                                                      {rc::kSuccess, S::ok},
                                                      {rc::kSuccess, S::ok},
                                                      {rc::kAuthenticationNeeded, S::unauthorized},
                                                      {rc::kInsufficientPermissions, S::forbidden},
                                                      {rc::kHandleNotFound, S::not_found},
                                                      {rc::kHandleAlreadyExists, S::conflict},
                                                      {rc::kInvalidValue, S::bad_request},
                                                      {rc::kHandleAlreadyExists, S::conflict},
                                                      {rc::kServerNotResponsible, S::conflict},
                                                      {rc::kServerTooBusy, S::too_many_requests},
                                                      {rc::kServerTooBusy, S::service_unavailable},
                                                      {rc::kError, S::insufficient_storage},
                                                      {rc::kError, S::internal_server_error}}};
    static_assert(kCodes.size() == static_cast<std::size_t>(Outcome::internal) + 1);
    const auto i = static_cast<std::size_t>(outcome);
    return i < kCodes.size() ? kCodes[i] : kCodes.back();
}

WireCode wire_code(const node::Refusal& refusal) noexcept {
    if (refusal.reason == "prefix_suspended")
        return {rc::kInvalidAdmin, http::status::forbidden};
    return wire_code(refusal.outcome);
}

WireCode wire_code(registry::Errc code) noexcept {
    switch (code) {
    case registry::Errc::invalid_handle:
        return {rc::kInvalidHandle, http::status::bad_request};
    case registry::Errc::not_homed:
        return {rc::kServerNotResponsible, http::status::bad_request};
    default:
        return wire_code(node::outcome_of(code));
    }
}

http::status status_of_rc(std::uint32_t code) noexcept {
    using S = http::status;
    static constexpr WireCode kRows[] = {{rc::kSuccess, S::ok},
                                         {rc::kHandleNotFound, S::not_found},
                                         {rc::kHandleAlreadyExists, S::conflict},
                                         {rc::kValueAlreadyExists, S::conflict},
                                         {rc::kInvalidHandle, S::bad_request},
                                         {rc::kInvalidValue, S::bad_request},
                                         {rc::kServerNotResponsible, S::bad_request},
                                         {rc::kAuthenticationNeeded, S::unauthorized},
                                         {rc::kInvalidAdmin, S::forbidden},
                                         {rc::kInsufficientPermissions, S::forbidden},
                                         {rc::kServerTooBusy, S::service_unavailable}};
    for (const WireCode& row : kRows) {
        if (row.rc == code)
            return row.status;
    }
    return S::internal_server_error;
}

Response handle_json(const Request& req, std::uint32_t code, std::string_view handle,
                     std::string_view message, http::status status) {
    json::object body{{"responseCode", code}};
    if (!handle.empty())
        body["handle"] = echo_safe(handle);
    if (!message.empty())
        body["message"] = echo_safe(message);
    return json_response(req, status, json::serialize(body));
}

Response handle_error(const Request& req, std::uint32_t code, std::string_view handle,
                      std::string_view message) {
    return handle_json(req, code, handle, message, status_of_rc(code));
}

Response handle_refusal(const Request& req, const node::Refusal& refusal, std::string_view handle) {
    const auto w = wire_code(refusal);
    return handle_json(req, w.rc, handle, refusal.message, w.status);
}

} // namespace idnode::resolver::api::handle_rest
