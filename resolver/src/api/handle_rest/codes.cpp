#include "api/handle_rest/codes.hpp"

#include "api/common.hpp"

#include <boost/json.hpp>

#include <array>

namespace idnode::resolver::api::handle_rest {
namespace json = boost::json;
namespace rc = handle::rc;
using node::Outcome;

WireCode wire_code(Outcome outcome) noexcept {
    // Indexed by node::Outcome (ok … internal).
    static constexpr std::array<WireCode, 14> kCodes{{
        {rc::kSuccess, http::status::ok},
        {rc::kSuccess, http::status::created},
        {rc::kSuccess, http::status::ok},
        {rc::kSuccess, http::status::ok},
        {rc::kAuthenticationNeeded, http::status::unauthorized},
        {rc::kInsufficientPermissions, http::status::forbidden},
        {rc::kHandleNotFound, http::status::not_found},
        {rc::kHandleAlreadyExists, http::status::conflict},
        {rc::kInvalidValue, http::status::bad_request},
        {rc::kHandleAlreadyExists, http::status::conflict},
        {rc::kServerTooBusy, http::status::too_many_requests},
        {rc::kServerTooBusy, http::status::service_unavailable},
        {rc::kError, http::status::insufficient_storage},
        {rc::kError, http::status::internal_server_error},
    }};
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
    switch (code) {
    case rc::kSuccess:
        return http::status::ok;
    case rc::kHandleNotFound:
        return http::status::not_found;
    case rc::kHandleAlreadyExists:
    case rc::kValueAlreadyExists:
        return http::status::conflict;
    case rc::kInvalidHandle:
    case rc::kInvalidValue:
    case rc::kServerNotResponsible:
        return http::status::bad_request;
    case rc::kAuthenticationNeeded:
        return http::status::unauthorized;
    case rc::kInvalidAdmin:
    case rc::kInsufficientPermissions:
        return http::status::forbidden;
    case rc::kServerTooBusy:
        return http::status::service_unavailable;
    default:
        return http::status::internal_server_error;
    }
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
