// Error model of the registry: expected outcomes are values, not exceptions.
//
// Every operation that can fail for a reason a caller must handle (not found, exists, invalid
// input, storage full) returns an `Error` (an std::error_code in the registry category plus a
// human-readable message naming the offending field) or a `Result<T>`. Exceptions are reserved
// for broken invariants and for startup failures (`StartupError`).
#pragma once

#include <cassert>
#include <stdexcept>
#include <string>
#include <system_error>
#include <type_traits>
#include <utility>
#include <variant>

namespace idnode::registry {

enum class Errc {
    ok = 0,
    not_found = 1,      // no such identifier / prefix / template / account
    already_exists = 2, // create on an existing key with different content
    invalid_handle = 3, // identifier grammar violation (see identifier.hpp)
    invalid_value = 4,  // value model violation (index, type, sizes, duplicates)
    too_large = 5,      // record or key exceeds a configured limit
    storage_full = 6,   // the database reached max_db_size; reads still work
    corrupt = 7,        // stored bytes fail validation (never expected; reported, not fixed)
    not_homed = 8,      // the prefix is not served by this node
    unavailable = 9,    // the registry is shutting down
    internal = 10,      // an unexpected LMDB error; the message carries LMDB's text
    in_use = 11,        // the entry is still referenced (a template used by identifiers)
};

const std::error_category& registry_category() noexcept;

inline std::error_code make_error_code(Errc e) noexcept {
    return {static_cast<int>(e), registry_category()};
}

/// snake_case name of a code ("not_found", "storage_full", ...), stable for APIs and logs.
const char* errc_name(Errc e) noexcept;

/// An expected failure: a code and a message for humans ("index 3: type is empty").
struct Error {
    Errc code = Errc::internal;
    std::string message;

    std::error_code error_code() const noexcept { return make_error_code(code); }
};

/// Either a T or an Error. Deliberately small (std::expected is C++23).
template <class T> class [[nodiscard]] Result {
public:
    Result(T value) : v_(std::in_place_index<0>, std::move(value)) {}
    Result(Error error) : v_(std::in_place_index<1>, std::move(error)) {}

    bool ok() const noexcept { return v_.index() == 0; }
    explicit operator bool() const noexcept { return ok(); }

    T& value() & {
        assert(ok());
        return std::get<0>(v_);
    }
    const T& value() const& {
        assert(ok());
        return std::get<0>(v_);
    }
    T&& value() && {
        assert(ok());
        return std::get<0>(std::move(v_));
    }
    T* operator->() { return &value(); }
    const T* operator->() const { return &value(); }
    T& operator*() & { return value(); }
    const T& operator*() const& { return value(); }

    const Error& error() const& {
        assert(!ok());
        return std::get<1>(v_);
    }
    Errc code() const noexcept { return ok() ? Errc::ok : std::get<1>(v_).code; }

private:
    std::variant<T, Error> v_;
};

/// Result of an operation that produces nothing on success.
class [[nodiscard]] Status {
public:
    Status() = default;
    Status(Error error) : error_(std::move(error)), failed_(true) {}
    bool ok() const noexcept { return !failed_; }
    explicit operator bool() const noexcept { return ok(); }
    const Error& error() const noexcept { return error_; }
    Errc code() const noexcept { return failed_ ? error_.code : Errc::ok; }

private:
    Error error_{};
    bool failed_ = false;
};

/// Thrown only when the registry cannot start (unreadable directory, newer schema, LMDB refuses
/// to open). Carries the code so that `idnode` can print a precise reason and exit non-zero.
class StartupError : public std::runtime_error {
public:
    StartupError(Errc code, const std::string& what) : std::runtime_error(what), code_(code) {}
    Errc code() const noexcept { return code_; }

private:
    Errc code_;
};

} // namespace idnode::registry

template <> struct std::is_error_code_enum<idnode::registry::Errc> : std::true_type {};
