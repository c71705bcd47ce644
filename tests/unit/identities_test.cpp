// Handle-protocol identities in the domain layer (node/identities.hpp) over a real registry: the
// validation matrix (handle, index, keys, key algorithms and sizes), who may manage whose
// identities, where an account may hold them, duplicates, removal, and find_identity's view of
// the owning account.
#include "idnode/node/handle_public_key.hpp"
#include "idnode/node/identities.hpp"
#include "store_helpers.hpp"
#include "test_keys.hpp"

#include <doctest/doctest.h>

#include <future>

using namespace idnode;
using namespace idnode::test;

namespace {

OpResult write_op(Registry& reg, WriteOp op) {
    return reg.write(std::move(op), "test");
}

Account account(std::string name, Role role, std::vector<std::string> prefixes = {}) {
    Account a;
    a.username = std::move(name);
    a.role = role;
    a.prefixes = std::move(prefixes);
    a.created = kT0;
    return a;
}

node::Principal as(const Account& a) {
    return node::Principal{a.username, a.role, a.prefixes, node::Credential::password};
}

/// 88.118 (node), 88.118.8 (steel's), 88.118.9 (iron's); admin, steel, iron, reader (88.118.8).
struct Fixture {
    TempDir dir;
    std::unique_ptr<Registry> reg = Registry::open(options_in(dir));
    Account admin = account("admin", Role::admin);
    Account steel = account("steel", Role::enterprise, {"88.118.8"});
    Account iron = account("iron", Role::enterprise, {"88.118.9"});
    Account reader = account("viewer", Role::reader, {"88.118.8"});

    Fixture() {
        for (auto [prefix, kind] :
             {std::pair{"88.118", PrefixKind::node}, std::pair{"88.118.8", PrefixKind::enterprise},
              std::pair{"88.118.9", PrefixKind::enterprise}}) {
            PrefixRecord p;
            p.prefix = prefix;
            p.kind = kind;
            REQUIRE(write_op(*reg, PutEntry{Table::prefixes, prefix, encode_prefix(p)}).ok());
        }
        for (const Account* a : {&admin, &steel, &iron, &reader})
            REQUIRE(
                write_op(*reg, PutEntry{Table::accounts, a->username, encode_account(*a)}).ok());
    }

    node::PreparedIdentity prepare(const Account& owner, node::IdentityRequest request,
                                   const node::Principal* who = nullptr) {
        return node::prepare_identity(reg->snapshot(), who ? *who : as(owner), owner,
                                      std::move(request), kT0 + 5);
    }
    /// Prepares and stores; the refusal when refused.
    std::optional<node::Refusal> add(const Account& owner, node::IdentityRequest request) {
        auto prepared = prepare(owner, std::move(request));
        if (prepared.refusal)
            return prepared.refusal;
        auto r = write_op(*reg, prepared.entry());
        REQUIRE_MESSAGE(r.outcome == Outcome::created, describe(r));
        return std::nullopt;
    }
};

node::IdentityRequest secret(std::string handle, std::int64_t index, std::string key = "s3cret") {
    node::IdentityRequest r;
    r.handle = std::move(handle);
    r.index = index;
    r.secret_key = std::move(key);
    return r;
}

node::IdentityRequest public_key(std::string handle, std::int64_t index, std::string pem) {
    node::IdentityRequest r;
    r.handle = std::move(handle);
    r.index = index;
    r.public_key_pem = std::move(pem);
    return r;
}

void check_refused(const std::optional<node::Refusal>& refusal, node::Outcome outcome,
                   std::string_view message_part) {
    REQUIRE(refusal.has_value());
    CHECK(refusal->outcome == outcome);
    CHECK_MESSAGE(refusal->message.find(message_part) != std::string::npos, refusal->message);
}

} // namespace

TEST_CASE("identities: handle, index and key validation") {
    Fixture f;
    check_refused(f.prepare(f.steel, secret("no-slash", 300)).refusal, node::Outcome::invalid,
                  "handle: ");
    check_refused(f.prepare(f.steel, secret("88.118.8/bad\tsuffix", 300)).refusal,
                  node::Outcome::invalid, "handle: ");
    check_refused(f.prepare(f.steel, secret("88.118.8/" + std::string(300, 'x'), 300)).refusal,
                  node::Outcome::invalid, "handle: ");
    check_refused(f.prepare(f.steel, secret("88.118.8/ADMIN", 0)).refusal, node::Outcome::invalid,
                  "index must be 1 to 2147483647");
    check_refused(f.prepare(f.steel, secret("88.118.8/ADMIN", -5)).refusal, node::Outcome::invalid,
                  "index must be 1 to 2147483647");
    check_refused(f.prepare(f.steel, secret("88.118.8/ADMIN", 2147483648LL)).refusal,
                  node::Outcome::invalid, "index must be 1 to 2147483647");
    CHECK_FALSE(f.prepare(f.steel, secret("88.118.8/ADMIN", 2147483647LL)).refusal);

    auto both = secret("88.118.8/ADMIN", 300);
    both.public_key_pem = make_key("RSA", 2048).public_pem;
    check_refused(f.prepare(f.steel, both).refusal, node::Outcome::invalid,
                  "exactly one of secret_key, public_key and public_key_hs");
    node::IdentityRequest neither;
    neither.handle = "88.118.8/ADMIN";
    neither.index = 300;
    check_refused(f.prepare(f.steel, neither).refusal, node::Outcome::invalid,
                  "exactly one of secret_key, public_key and public_key_hs");
    auto pem_and_binary = public_key("88.118.8/ADMIN", 300, make_key("RSA", 2048).public_pem);
    pem_and_binary.public_key_hs = *node::hs_public_key_from_pem(*pem_and_binary.public_key_pem);
    check_refused(f.prepare(f.steel, pem_and_binary).refusal, node::Outcome::invalid,
                  "exactly one of secret_key, public_key and public_key_hs");
    check_refused(f.prepare(f.steel, secret("88.118.8/ADMIN", 300, "")).refusal,
                  node::Outcome::invalid, "secret_key must be 1 to 1024 bytes");
    check_refused(f.prepare(f.steel, secret("88.118.8/ADMIN", 300, std::string(1025, 'k'))).refusal,
                  node::Outcome::invalid, "secret_key must be 1 to 1024 bytes");
    auto longest = f.prepare(f.steel, secret("88.118.8/ADMIN", 300, std::string(1024, 'k')));
    REQUIRE_FALSE(longest.refusal);
    CHECK(longest.identity.secret == std::string(1024, 'k'));
    CHECK(longest.identity.kind == IdentityKeyKind::secret);
    CHECK(longest.identity.created == kT0 + 5);
    CHECK(longest.identity.account == "steel");
}

TEST_CASE("identities: public keys are RSA >= 2048, DSA or SM2; anything else is refused") {
    Fixture f;
    auto pub = [&](const std::string& pem) {
        return f.prepare(f.steel, public_key("88.118.8/ADMIN", 300, pem)).refusal;
    };
    const auto rsa2048 = make_key("RSA", 2048);
    CHECK_FALSE(pub(rsa2048.public_pem));
    CHECK_FALSE(pub(make_key("DSA", 2048).public_pem));
    CHECK_FALSE(pub(make_key("SM2").public_pem));
    CHECK_FALSE(pub(make_key("EC", 0, "SM2").public_pem));
    check_refused(pub(make_key("RSA", 1024).public_pem), node::Outcome::invalid,
                  "RSA of 1024 bits; at least 2048");
    check_refused(pub(make_key("EC", 0, "P-256").public_pem), node::Outcome::invalid,
                  "EC key on curve prime256v1; only the SM2 curve");
    check_refused(pub(make_key("ED25519").public_pem), node::Outcome::invalid,
                  "ED25519 key; RSA, DSA or SM2");
    check_refused(pub(rsa2048.private_pem), node::Outcome::invalid, "is a private key");
    check_refused(pub("hello"), node::Outcome::invalid, "BEGIN PUBLIC KEY");
    check_refused(pub("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"),
                  node::Outcome::invalid, "does not parse");
    check_refused(pub(""), node::Outcome::invalid, "PEM of 1 to");
    check_refused(pub(std::string(node::kMaxIdentityPublicKeyBytes + 1, 'A')),
                  node::Outcome::invalid, "PEM of 1 to");

    auto ok = f.prepare(f.steel, public_key("88.118.8/ADMIN", 300, rsa2048.public_pem));
    REQUIRE_FALSE(ok.refusal);
    CHECK(ok.identity.kind == IdentityKeyKind::public_key);
    CHECK(ok.identity.public_key_pem == rsa2048.public_pem);
    CHECK(ok.identity.secret.empty());
}

TEST_CASE("identities: a public key given as HS_PUBKEY bytes is stored as its PEM, by the same "
          "rules") {
    Fixture f;
    auto binary = [](const std::string& pem) {
        node::IdentityRequest r;
        r.handle = "88.118.8/ADMIN";
        r.index = 300;
        r.public_key_hs = node::hs_public_key_from_pem(pem).value();
        return r;
    };
    for (const auto& key : {make_key("RSA", 2048), make_key("DSA", 2048), make_key("SM2")}) {
        auto ok = f.prepare(f.steel, binary(key.public_pem));
        REQUIRE_FALSE(ok.refusal);
        CHECK(ok.identity.kind == IdentityKeyKind::public_key);
        // OpenSSL wrote both PEMs: the same key gives the same text.
        CHECK(ok.identity.public_key_pem == key.public_pem);
    }
    // The size rules of PEM keys, named after the field the key came in.
    check_refused(f.prepare(f.steel, binary(make_key("RSA", 1024).public_pem)).refusal,
                  node::Outcome::invalid, "public_key_hs is RSA of 1024 bits; at least 2048");
    // Bytes that are no key: the decoder's message, named after the field.
    auto truncated = binary(make_key("RSA", 2048).public_pem);
    truncated.public_key_hs->resize(100);
    check_refused(f.prepare(f.steel, truncated).refusal, node::Outcome::invalid,
                  "public_key_hs: the RSA modulus is cut short");
    node::IdentityRequest empty;
    empty.handle = "88.118.8/ADMIN";
    empty.index = 300;
    empty.public_key_hs = "";
    check_refused(f.prepare(f.steel, empty).refusal, node::Outcome::invalid,
                  "public_key_hs: the value is empty");
}

TEST_CASE("identities: admin for anyone, an account for itself, where it has standing") {
    Fixture f;
    const auto admin = as(f.admin), iron = as(f.iron);
    const node::Principal anonymous{};
    // Who.
    CHECK_FALSE(f.prepare(f.steel, secret("88.118.8/ADMIN", 300), &admin).refusal);
    check_refused(f.prepare(f.steel, secret("88.118.8/ADMIN", 300), &iron).refusal,
                  node::Outcome::forbidden, "only an admin or the account itself");
    check_refused(f.prepare(f.steel, secret("88.118.8/ADMIN", 300), &anonymous).refusal,
                  node::Outcome::unauthorized, "authentication");
    // Where: the owner's prefixes (0.NA/<prefix> too), granted ones for a reader, any for an admin.
    CHECK_FALSE(f.prepare(f.steel, secret("0.NA/88.118.8", 300)).refusal);
    CHECK_FALSE(f.prepare(f.steel, secret("0.na/88.118.8", 300)).refusal);
    CHECK_FALSE(f.prepare(f.reader, secret("88.118.8/VIEWER", 300)).refusal);
    CHECK_FALSE(f.prepare(f.admin, secret("0.NA/88.118", 301)).refusal);
    CHECK_FALSE(f.prepare(f.admin, secret("88.118.9/ADMIN", 300)).refusal);
    for (const char* elsewhere :
         {"88.118.9/ADMIN", "0.NA/88.118.9", "0.NA/88.118", "88.118/ADMIN"}) {
        CAPTURE(elsewhere);
        auto refused = f.prepare(f.steel, secret(elsewhere, 300), &admin).refusal;
        check_refused(refused, node::Outcome::forbidden, "may hold identities only under");
        CHECK(refused->code() == "identity_outside_prefixes");
    }
    // Listing and removal follow the same who-rule.
    CHECK(node::list_identities(f.reg->snapshot(), iron, "steel").refusal->outcome ==
          node::Outcome::forbidden);
    CHECK(node::list_identities(f.reg->snapshot(), anonymous, "steel").refusal->outcome ==
          node::Outcome::unauthorized);
    CHECK(node::prepare_identity_removal(f.reg->snapshot(), iron, "steel", "88.118.8/ADMIN", 300)
              .refusal->outcome == node::Outcome::forbidden);
}

TEST_CASE("identities: unique (case-insensitively), listed per account, removed, found") {
    Fixture f;
    REQUIRE_FALSE(f.add(f.steel, secret("88.118.8/Admin", 300, "interop-secret")));
    REQUIRE_FALSE(
        f.add(f.steel, public_key("0.NA/88.118.8", 301, make_key("RSA", 2048).public_pem)));
    REQUIRE_FALSE(f.add(f.iron, secret("88.118.9/ADMIN", 300)));

    // The pair is unique whatever the case of the prefix and suffix letters.
    auto dup = f.prepare(f.steel, secret("88.118.8/ADMIN", 300));
    check_refused(dup.refusal, node::Outcome::conflict,
                  "identity 300:88.118.8/ADMIN already exists");
    CHECK(dup.refusal->code() == "already_exists");
    CHECK_FALSE(f.prepare(f.steel, secret("88.118.8/ADMIN", 302)).refusal);
    // A racing create of the same pair fails in the registry.
    auto first = f.prepare(f.steel, secret("88.118.8/RACE", 300));
    auto second = f.prepare(f.steel, secret("88.118.8/race", 300, "other"));
    REQUIRE_FALSE(first.refusal);
    REQUIRE_FALSE(second.refusal);
    CHECK(write_op(*f.reg, first.entry()).outcome == Outcome::created);
    CHECK(write_op(*f.reg, second.entry()).error.code == Errc::already_exists);

    auto listed = node::list_identities(f.reg->snapshot(), as(f.steel), "steel");
    REQUIRE_FALSE(listed.refusal);
    REQUIRE(listed.identities.size() == 3);
    // Key order: by handle, then index ("0.NA/88.118.8" < "88.118.8/ADMIN" < "88.118.8/RACE").
    CHECK(listed.identities[0].handle == "0.NA/88.118.8");
    CHECK(listed.identities[0].index == 301);
    CHECK(listed.identities[1].handle == "88.118.8/Admin");
    CHECK(listed.identities[2].handle == "88.118.8/RACE");
    CHECK(node::list_identities(f.reg->snapshot(), as(f.admin), "iron").identities.size() == 1);

    // find_identity: any case, with the owner's rights.
    auto found = node::find_identity(f.reg->snapshot(), "88.118.8/admin", 300);
    REQUIRE(found.ok());
    CHECK(found.identity.secret == "interop-secret");
    CHECK(found.identity.account == "steel");
    CHECK(found.principal.username == "steel");
    CHECK(found.principal.role == Role::enterprise);
    CHECK(found.principal.prefixes == std::vector<std::string>{"88.118.8"});
    CHECK(found.principal.credential == node::Credential::none);
    CHECK(node::find_identity(f.reg->snapshot(), "88.118.8/ADMIN", 303).outcome ==
          node::Outcome::not_found);
    CHECK(node::find_identity(f.reg->snapshot(), "not a handle", 300).outcome ==
          node::Outcome::not_found);
    CHECK(node::find_identity(f.reg->snapshot(), "88.118.8/ADMIN", 0).outcome ==
          node::Outcome::not_found);
    CHECK(node::find_identity(f.reg->snapshot(), "88.118.8/ADMIN", 1LL << 40).outcome ==
          node::Outcome::not_found);

    // A disabled account's identities do not authenticate; a deleted account's are gone.
    Account disabled = f.steel;
    disabled.disabled = true;
    REQUIRE(write_op(*f.reg, PutEntry{Table::accounts, "steel", encode_account(disabled)}).ok());
    auto refused = node::find_identity(f.reg->snapshot(), "88.118.8/ADMIN", 300);
    CHECK(refused.outcome == node::Outcome::unauthorized);
    CHECK(refused.message.find("disabled") != std::string::npos);
    REQUIRE(write_op(*f.reg, DeleteEntry{Table::accounts, "steel"}).ok());
    CHECK(node::find_identity(f.reg->snapshot(), "88.118.8/ADMIN", 300).outcome ==
          node::Outcome::not_found);
    const auto keys = node::identity_keys_of(f.reg->snapshot(), "steel");
    CHECK(keys == std::vector<std::string>{registry::identity_key("0.NA/88.118.8", 301),
                                           registry::identity_key("88.118.8/ADMIN", 300),
                                           registry::identity_key("88.118.8/RACE", 300)});
    CHECK(node::find_identity(f.reg->snapshot(), "88.118.9/ADMIN", 300).ok());

    // A corrupt entry is internal, never a usable identity.
    REQUIRE(write_op(*f.reg, PutEntry{Table::identities,
                                      registry::identity_key("88.118.9/BROKEN", 7), "junk"})
                .ok());
    CHECK(node::find_identity(f.reg->snapshot(), "88.118.9/BROKEN", 7).outcome ==
          node::Outcome::internal);
    CHECK(
        node::prepare_identity_removal(f.reg->snapshot(), as(f.admin), "iron", "88.118.9/BROKEN", 7)
            .refusal->outcome == node::Outcome::internal);
}

TEST_CASE("identities: removal needs the identity to be the account's") {
    Fixture f;
    REQUIRE_FALSE(f.add(f.steel, secret("88.118.8/ADMIN", 300)));
    REQUIRE_FALSE(f.add(f.iron, secret("88.118.9/ADMIN", 300)));
    auto snap = f.reg->snapshot();
    // Another account's identity is not found (its existence is not disclosed).
    check_refused(
        node::prepare_identity_removal(snap, as(f.steel), "steel", "88.118.9/ADMIN", 300).refusal,
        node::Outcome::not_found, "account steel has no identity 300:88.118.9/ADMIN");
    check_refused(
        node::prepare_identity_removal(snap, as(f.steel), "steel", "88.118.8/ADMIN", 301).refusal,
        node::Outcome::not_found, "has no identity");
    check_refused(
        node::prepare_identity_removal(snap, as(f.steel), "steel", "88.118.8/ADMIN", 0).refusal,
        node::Outcome::invalid, "index must be");
    auto removal =
        node::prepare_identity_removal(snap, as(f.steel), "steel", "88.118.8/admin", 300);
    REQUIRE_FALSE(removal.refusal);
    CHECK(removal.entry.key == registry::identity_key("88.118.8/ADMIN", 300));
    CHECK(write_op(*f.reg, removal.entry).outcome == Outcome::deleted);
    CHECK(node::find_identity(f.reg->snapshot(), "88.118.8/ADMIN", 300).outcome ==
          node::Outcome::not_found);
    // Change-logged like accounts, and the registry stays consistent.
    const auto changes = f.reg->snapshot().changes(1, 100);
    CHECK(changes.back().kind == ChangeKind::identity);
    CHECK(changes.back().op == ChangeOp::remove);
    CHECK(changes.back().key == registry::identity_key("88.118.8/ADMIN", 300));
    CHECK(f.reg->verify().ok());
}
