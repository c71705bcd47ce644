// The outcome vocabulary of the domain layer: what every service returns, whichever protocol
// asked. Each front end maps these to its own wire codes in one table of its own (Handle REST
// response codes and HTTP status, native error codes, SNMS status, Handle protocol RC); nothing in
// node/ knows those codes. See docs/architecture.md#outcomes.
//
// A `Refusal` is an outcome that stops a request, with the reason in words (English and Chinese:
// the SNMS API answers in Chinese) and, where a front end must tell refusals of one outcome apart
// (a suspended prefix is `forbidden` like a foreign one, but the Handle REST API answers it with
// its own response code), a stable `reason` code in snake_case.
// Thread safety: plain values.
#pragma once

#include "idnode/registry/error.hpp"

#include <cstdint>
#include <string>
#include <string_view>

namespace idnode::node {

enum class Outcome : std::uint8_t {
    ok,               // done; nothing was created or changed (a read)
    created,          // a new record/prefix/account
    replaced,         // an existing one changed
    unchanged,        // a write that found exactly what it would have written
    unauthorized,     // no (valid) credential where one is needed
    forbidden,        // the principal may not do this (or not here, or not now)
    not_found,        // no such record, template, prefix, account
    conflict,         // exists already, or a concurrent change of the same thing
    invalid,          // the request is malformed or breaks a rule (grammar, template, limits)
    in_use,           // still referred to (a template version in use)
    routed_elsewhere, // the prefix's identifiers live on another node (an enterprise node)
    throttled,        // over a rate limit or a failed-login limit; retry later
    unavailable,      // the node cannot take it now (shutting down, writer busy)
    storage_full,     // the disk is full; nothing was written
    internal,         // a broken invariant or a corrupt stored record
};

enum class Language : std::uint8_t { en, zh };

/// "not_found", "storage_full", ...: stable, also used as native error codes.
std::string_view outcome_name(Outcome outcome) noexcept;
/// A short generic message, for answers that have nothing more specific to say.
std::string_view outcome_message(Outcome outcome, Language language) noexcept;
/// ok, created, replaced, unchanged.
constexpr bool succeeded(Outcome outcome) noexcept {
    return outcome <= Outcome::unchanged;
}

/// The outcome of a registry error code (already_exists is a conflict; corrupt is internal).
Outcome outcome_of(registry::Errc code) noexcept;

struct Refusal {
    Outcome outcome = Outcome::internal;
    /// Finer than the outcome where a front end needs it ("prefix_not_allocated",
    /// "prefix_suspended", "corrupt"); empty = outcome_name(outcome).
    std::string_view reason;
    std::string message;    // English, for the client
    std::string message_zh; // Chinese (SNMS); empty = outcome_message(outcome, zh)

    std::string_view code() const noexcept {
        return reason.empty() ? outcome_name(outcome) : reason;
    }
    std::string_view text(Language language) const noexcept;
};

} // namespace idnode::node
