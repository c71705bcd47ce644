// Errors and results of SDK calls. Every call returns a value: `Result<T>` holds either the T or
// an `Error`; `Status` (= Result<void>) only says whether it worked. Nothing is thrown for an
// expected outcome (a missing handle, a refused write, a network failure); `value()` on a failed
// result throws std::logic_error because that is a bug in the caller.
//
// C++17: this header is part of the public API.
#pragma once

#include "idnode/sdk/export.hpp"

#include <optional>
#include <stdexcept>
#include <string>
#include <utility>

namespace idnode::sdk {

/// What kind of failure an Error is. The numeric values are the C ABI's status codes
/// (idnode/sdk.h, IDNODE_E_*), so they never change.
enum class ErrorKind : int {
    ok = 0,
    invalid_argument = 1, ///< the caller's input was rejected before anything was sent
    connect = 2,          ///< TCP connection could not be established
    tls = 3,              ///< TLS handshake failed (untrusted certificate, wrong host name, ...)
    timeout = 4,          ///< connect or request timeout elapsed
    connection = 5,       ///< the connection broke while a request was in flight
    protocol = 6,         ///< the server's answer was not what the API promises
    http = 7,             ///< the server answered with an error status (see http_status etc.)
    auth = 8,             ///< credentials rejected (HTTP 401, or the token endpoint said no)
    not_found = 9,        ///< HTTP 404 / Handle RC 100: the handle (or object) does not exist
    conflict = 10,        ///< HTTP 409 / Handle RC 101: it already exists
    cancelled = 11,       ///< a callback asked to stop (bulk)
};

/// A failed call: what kind, and everything the server said about it.
struct Error {
    ErrorKind kind = ErrorKind::protocol;
    int http_status = 0;   ///< HTTP status of the answer; 0 when no answer arrived
    int response_code = 0; ///< Handle RC ("responseCode"); 0 when the answer carried none
    std::string code;      ///< native API error code ("not_found", "invalid_json"), may be empty
    std::string message;   ///< the server's message, or a description of the local failure

    /// One line for logs: "http 404, rc 100: handle not found".
    IDNODE_SDK_API std::string to_string() const;
};

/// Name of an ErrorKind ("not_found"), never null.
IDNODE_SDK_API const char* to_string(ErrorKind kind) noexcept;

template <class T> class Result {
public:
    Result(T value) : value_(std::move(value)) {}
    Result(Error error) : error_(std::move(error)) {}

    bool ok() const noexcept { return value_.has_value(); }
    explicit operator bool() const noexcept { return ok(); }

    /// The value; throws std::logic_error when the call failed.
    T& value() & {
        check();
        return *value_;
    }
    const T& value() const& {
        check();
        return *value_;
    }
    T&& value() && {
        check();
        return std::move(*value_);
    }
    T& operator*() & { return value(); }
    const T& operator*() const& { return value(); }
    T* operator->() { return &value(); }
    const T* operator->() const { return &value(); }

    /// The error; meaningful only when !ok().
    const Error& error() const noexcept { return error_; }

private:
    void check() const {
        if (!value_) {
            throw std::logic_error("idnode::sdk::Result::value() on an error: " +
                                   error_.to_string());
        }
    }
    std::optional<T> value_;
    Error error_;
};

template <> class Result<void> {
public:
    Result() = default;
    Result(Error error) : failed_(true), error_(std::move(error)) {}
    bool ok() const noexcept { return !failed_; }
    explicit operator bool() const noexcept { return ok(); }
    const Error& error() const noexcept { return error_; }

private:
    bool failed_ = false;
    Error error_;
};

using Status = Result<void>;

} // namespace idnode::sdk
