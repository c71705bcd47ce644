// Typed reads of the administrative tables (registry.hpp, ReadSnapshot "administrative tables,
// typed"): the one place that pairs each table with its codec (admin.hpp, template.hpp).
#include "idnode/registry/registry.hpp"

#include <string>

namespace idnode::registry {

namespace {

/// Reads the entry under `key` and decodes it with `decode`; `what` names it in the not_found
/// message ("account alice does not exist").
template <class Decode>
auto get_decoded(const ReadSnapshot& snap, Table table, std::string_view key, const char* what,
                 Decode decode) -> decltype(decode(std::string_view{})) {
    auto bytes = snap.get_entry(table, key);
    if (!bytes) {
        return Error{Errc::not_found,
                     std::string(what) + " " + std::string(key) + " does not exist"};
    }
    return decode(*bytes);
}

/// Every entry of `table` that `decode` accepts, in key order.
template <class T, class Decode>
void for_each_decoded(const ReadSnapshot& snap, Table table, Decode decode,
                      const std::function<void(const std::string&, const T&)>& fn) {
    snap.for_each_entry(table, [&](const std::string& key, const std::string& bytes) {
        if (auto decoded = decode(bytes)) {
            fn(key, *decoded);
        }
    });
}

} // namespace

Result<PrefixRecord> ReadSnapshot::prefix_record(std::string_view folded_prefix) const {
    return get_decoded(*this, Table::prefixes, folded_prefix, "prefix", decode_prefix);
}

void ReadSnapshot::for_each_prefix(
    const std::function<void(const std::string&, const PrefixRecord&)>& fn) const {
    for_each_decoded(*this, Table::prefixes, decode_prefix, fn);
}

Result<Account> ReadSnapshot::account(std::string_view username) const {
    return get_decoded(*this, Table::accounts, username, "account", decode_account);
}

void ReadSnapshot::for_each_account(
    const std::function<void(const std::string&, const Account&)>& fn) const {
    for_each_decoded(*this, Table::accounts, decode_account, fn);
}

Result<ApiKeyRecord> ReadSnapshot::api_key(std::string_view key_id) const {
    return get_decoded(*this, Table::api_keys, key_id, "API key", decode_api_key);
}

void ReadSnapshot::for_each_api_key(
    const std::function<void(const std::string&, const ApiKeyRecord&)>& fn) const {
    for_each_decoded(*this, Table::api_keys, decode_api_key, fn);
}

Result<Template> ReadSnapshot::template_entry(std::string_view template_key) const {
    return get_decoded(*this, Table::templates, template_key, "template", decode_template);
}

void ReadSnapshot::for_each_template(
    const std::function<void(const std::string&, const Template&)>& fn) const {
    for_each_decoded(*this, Table::templates, decode_template, fn);
}

Result<BulkOutcome> ReadSnapshot::bulk_outcome(std::string_view key) const {
    return get_decoded(*this, Table::idempotency, key, "bulk outcome", decode_bulk_outcome);
}

Result<Identity> ReadSnapshot::identity(std::string_view handle, std::int32_t index) const {
    auto parsed = parse_handle(handle, HandleLimits{kHandleProtocolMaxLength});
    if (!parsed) {
        return Error{Errc::not_found, "identity " + std::to_string(index) + ":" +
                                          std::string(handle) + " does not exist"};
    }
    return get_decoded(*this, Table::identities, identity_key(parsed->key(), index), "identity",
                       decode_identity);
}

void ReadSnapshot::for_each_identity(
    const std::function<void(const std::string&, const Identity&)>& fn,
    std::string_view account) const {
    for_each_decoded<Identity>(*this, Table::identities, decode_identity,
                               [&](const std::string& key, const Identity& identity) {
                                   if (account.empty() || identity.account == account) {
                                       fn(key, identity);
                                   }
                               });
}

bool ReadSnapshot::has_entries(Table table) const {
    return !list_entries(table, {}, 1).entries.empty();
}

} // namespace idnode::registry
