#include "idnode/registry/admin.hpp"

#include <doctest/doctest.h>

#include <string>
#include <vector>

using namespace idnode::registry;

TEST_CASE("password hashes verify the right password only") {
    const std::string stored = hash_password("s3cret-密码", 1000);
    CHECK(stored.rfind("pbkdf2-sha256$1000$", 0) == 0);
    CHECK(verify_password("s3cret-密码", stored));
    CHECK_FALSE(verify_password("s3cret-密", stored));
    CHECK_FALSE(verify_password("", stored));
    // salted: the same password hashes differently
    CHECK(hash_password("same", 1000) != hash_password("same", 1000));
}

TEST_CASE("malformed stored password hashes never verify") {
    for (const char* bad :
         {"", "pbkdf2-sha256$", "pbkdf2-sha256$x$00$00", "pbkdf2-sha256$1000$zz$00",
          "pbkdf2-sha256$1000$00$0011", "md5$1$00$00", "pbkdf2-sha256$0$00$"}) {
        CAPTURE(bad);
        CHECK_FALSE(verify_password("anything", bad));
    }
}

TEST_CASE("API keys: generated, parsed, matched, and nothing else matches") {
    const auto k = generate_api_key("factory-a", 1700000000);
    auto parsed = parse_api_key(k.key);
    REQUIRE(parsed.has_value());
    CHECK(parsed->key_id == k.record.key_id);
    CHECK(api_key_matches(k.record, parsed->secret));
    const auto other = generate_api_key("factory-a", 1700000000);
    CHECK_FALSE(api_key_matches(k.record, parse_api_key(other.key)->secret));
    CHECK(k.key != other.key);
    for (const std::string& bad :
         {std::string(""), std::string("idn_"), k.key.substr(1), k.key + "0",
          "xdn_" + k.key.substr(4), std::string(k.key).replace(20, 1, "-"),
          std::string(k.key).replace(30, 1, "G")}) {
        CAPTURE(bad);
        CHECK_FALSE(parse_api_key(bad).has_value());
    }
}

TEST_CASE("admin records round-trip and reject truncation") {
    PrefixRecord p{"88.118.8",
                   PrefixKind::enterprise,
                   PrefixStatus::suspended,
                   {"宝钢股份", "91310000631696382C", "C3120", "ops@example.cn"},
                   1700000000};
    auto pd = decode_prefix(encode_prefix(p));
    REQUIRE(pd.ok());
    CHECK(pd->prefix == p.prefix);
    CHECK(pd->status == PrefixStatus::suspended);
    CHECK(pd->enterprise.name == "宝钢股份");
    CHECK(pd->enterprise.credit_code == p.enterprise.credit_code);

    Account a{"mes-1",
              Role::enterprise,
              {"88.118.8", "88.118.9"},
              hash_password("pw", 1000),
              sha256_hex("pw"),
              3,
              42};
    auto ad = decode_account(encode_account(a));
    REQUIRE(ad.ok());
    CHECK(ad->username == "mes-1");
    CHECK(ad->role == Role::enterprise);
    CHECK(ad->prefixes == a.prefixes);
    CHECK(ad->token_generation == 3);
    CHECK(verify_password("pw", ad->password_hash));

    const auto key = generate_api_key("mes-1", 5).record;
    auto kd = decode_api_key(encode_api_key(key));
    REQUIRE(kd.ok());
    CHECK(kd->secret_sha256 == key.secret_sha256);

    for (const std::string& bytes : {encode_prefix(p), encode_account(a), encode_api_key(key)}) {
        for (std::size_t n = 0; n < bytes.size(); ++n) {
            const std::string_view cut(bytes.data(), n);
            CHECK_FALSE(decode_prefix(cut).ok());
            CHECK_FALSE(decode_account(cut).ok());
            CHECK_FALSE(decode_api_key(cut).ok());
        }
    }
}

TEST_CASE("accounts written before the disabled flag still decode; disabled ones use format 2") {
    // An enterprise account as binaries before the flag wrote it (entry format 1): username
    // "mes-1", role 2, token generation 3, created 42, password hash "h", v1 secret "v",
    // prefixes ["88.118.8"].
    const std::string old_hex = "01"
                                "02"
                                "0000000000000003"
                                "000000000000002a"
                                "00000005"
                                "6d65732d31"
                                "00000001"
                                "68"
                                "00000001"
                                "76"
                                "00000001"
                                "00000008"
                                "38382e3131382e38";
    std::string old_bytes;
    for (std::size_t i = 0; i < old_hex.size(); i += 2)
        old_bytes.push_back(static_cast<char>(std::stoi(old_hex.substr(i, 2), nullptr, 16)));
    auto old = decode_account(old_bytes);
    REQUIRE(old.ok());
    CHECK(old->username == "mes-1");
    CHECK(old->role == Role::enterprise);
    CHECK(old->token_generation == 3);
    CHECK(old->created == 42);
    CHECK(old->password_hash == "h");
    CHECK(old->v1_secret == "v");
    CHECK(old->prefixes == std::vector<std::string>{"88.118.8"});
    CHECK_FALSE(old->disabled);
    // An enabled account is written exactly as before (an older binary still reads it) ...
    CHECK(encode_account(*old) == old_bytes);

    // ... a disabled one gets format 2 and a trailing flags byte, which round-trips.
    Account off = *old;
    off.disabled = true;
    const std::string bytes = encode_account(off);
    CHECK(bytes[0] == '\x02');
    CHECK(bytes.size() == old_bytes.size() + 1);
    auto back = decode_account(bytes);
    REQUIRE(back.ok());
    CHECK(back->disabled);
    CHECK(back->prefixes == off.prefixes);
    off.disabled = false;
    CHECK(encode_account(off) == old_bytes);

    // Unknown formats, unknown flag bits, a missing flags byte and trailing bytes are corrupt.
    std::string bad = bytes;
    bad[0] = '\x03';
    CHECK(decode_account(bad).code() == Errc::corrupt);
    bad = bytes;
    bad.back() = '\x02';
    CHECK(decode_account(bad).code() == Errc::corrupt);
    bad = old_bytes;
    bad[0] = '\x02';
    CHECK(decode_account(bad).code() == Errc::corrupt);
    CHECK(decode_account(old_bytes + '\x01').code() == Errc::corrupt);
}

TEST_CASE("roles and usernames") {
    CHECK(parse_role("admin") == Role::admin);
    CHECK(parse_role("enterprise") == Role::enterprise);
    CHECK(parse_role("reader") == Role::reader);
    CHECK_FALSE(parse_role("Admin").has_value());
    CHECK(std::string(role_name(Role::reader)) == "reader");
    CHECK(validate_username("mes.line-2_a@plant").ok());
    CHECK_FALSE(validate_username("").ok());
    CHECK_FALSE(validate_username(std::string(65, 'a')).ok());
    CHECK_FALSE(validate_username("a b").ok());
    CHECK_FALSE(validate_username("用户").ok());
}

TEST_CASE("sha256 and constant-time comparison") {
    CHECK(sha256_hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    CHECK(constant_time_equal("abc", "abc"));
    CHECK_FALSE(constant_time_equal("abc", "abd"));
    CHECK_FALSE(constant_time_equal("abc", "ab"));
    CHECK(random_hex(16).size() == 32);
}

TEST_CASE("bulk outcomes round-trip; damaged bytes are a clear corrupt error") {
    BulkOutcome o;
    o.expires_ms = 1'800'000'000'123;
    o.lines = 10;
    o.created = 4;
    o.replaced = 2;
    o.unchanged = 1;
    o.errors = 3;
    o.error_lines = "{\"line\":2}\n{\"line\":7}\n"; // 2 of the 3 errors kept
    const std::string bytes = encode_bulk_outcome(o);
    auto back = decode_bulk_outcome(bytes);
    REQUIRE(back.ok());
    CHECK(back->expires_ms == o.expires_ms);
    CHECK(back->lines == 10);
    CHECK(back->created == 4);
    CHECK(back->replaced == 2);
    CHECK(back->unchanged == 1);
    CHECK(back->errors == 3);
    CHECK(back->error_lines == o.error_lines);
    CHECK(back->kept_error_lines() == 2);
    CHECK(decode_bulk_outcome(encode_bulk_outcome(BulkOutcome{})).ok());

    auto corrupt_with = [](std::string_view b, std::string_view why) {
        auto r = decode_bulk_outcome(b);
        REQUIRE_FALSE(r.ok());
        CHECK(r.error().code == Errc::corrupt);
        CHECK(r.error().message == "stored bulk outcome is corrupt: " + std::string(why));
    };
    // Every truncation and any trailing byte.
    for (std::size_t n = 1; n < bytes.size(); ++n) {
        CAPTURE(n);
        corrupt_with(bytes.substr(0, n), "truncated or trailing bytes");
    }
    corrupt_with(bytes + "x", "truncated or trailing bytes");
    corrupt_with("", "unknown format");
    corrupt_with("\x02" + bytes.substr(1), "unknown format");

    auto variant = [&](auto&& change) {
        BulkOutcome v = o;
        change(v);
        return encode_bulk_outcome(v);
    };
    corrupt_with(variant([](BulkOutcome& v) { v.created = 5; }), "counts do not add up to lines");
    // Counts that would wrap around when summed.
    corrupt_with(variant([](BulkOutcome& v) {
                     v.created = ~0ull;
                     v.replaced = 11;
                 }),
                 "counts do not add up to lines");
    corrupt_with(variant([](BulkOutcome& v) { v.error_lines += "{}"; }),
                 "last error line is unterminated");
    corrupt_with(variant([](BulkOutcome& v) { v.error_lines = "a\nb\nc\nd\n"; }),
                 "more error lines than errors or than are kept");
    corrupt_with(variant([](BulkOutcome& v) {
                     v.lines = v.errors = 1000;
                     v.created = v.replaced = v.unchanged = 0;
                     v.error_lines.clear();
                     for (std::size_t i = 0; i <= kMaxOutcomeErrorLines; ++i)
                         v.error_lines += "{}\n";
                 }),
                 "more error lines than errors or than are kept");
    corrupt_with(variant([](BulkOutcome& v) {
                     v.error_lines = std::string(kMaxOutcomeErrorBytes, 'x') + "\n";
                 }),
                 "error lines exceed the kept bytes");
    // A length prefix that claims more bytes than there are (and one claiming 4 GiB).
    std::string long_prefix = bytes;
    long_prefix[1 + 6 * 8] = '\x7f';
    corrupt_with(long_prefix, "truncated or trailing bytes");
    // Any single flipped byte decodes to an error or to an outcome that is internally consistent.
    for (std::size_t i = 0; i < bytes.size(); ++i) {
        std::string flipped = bytes;
        flipped[i] = static_cast<char>(flipped[i] ^ 0x5a);
        auto r = decode_bulk_outcome(flipped);
        if (r.ok())
            CHECK(r->created + r->replaced + r->unchanged + r->errors == r->lines);
        else
            CHECK(r.error().code == Errc::corrupt);
    }
}

TEST_CASE("identities round-trip under their handle-first key; damaged bytes are corrupt") {
    CHECK(identity_key("88.118.8/ADMIN", 300) == std::string("88.118.8/ADMIN\0000000000300", 25));
    CHECK(identity_key("88.118.8/admin", 300).starts_with(identity_key_prefix("88.118.8/admin")));
    // Handle-first keys sort by handle, then numerically by index.
    CHECK(identity_key("88.118.8/admin", 300) < identity_key("88.118.8/admin", 1000));
    CHECK(identity_key("88.118.8/admin", 70000) < identity_key("88.118.8/admin0", 1));
    // The layout before: "<index>:<handle>".
    CHECK(identity_key_from_schema1("300:88.118.8/admin") == identity_key("88.118.8/admin", 300));
    CHECK_FALSE(identity_key_from_schema1(identity_key("88.118.8/admin", 300)));
    for (const char* junk : {"", ":88.118.8/a", "300:", "x300:88.118.8/a", "0:88.118.8/a",
                             "2147483648:88.118.8/a", "12345678901:88.118.8/a", "88.118.8/a"}) {
        INFO(junk);
        CHECK_FALSE(identity_key_from_schema1(junk));
    }

    Identity secret;
    secret.handle = "88.118.8/Admin";
    secret.index = 300;
    secret.account = "ent1";
    secret.kind = IdentityKeyKind::secret;
    secret.secret = std::string("interop-secret\0\xff", 16); // raw bytes, kept as given
    secret.created = 1'700'000'000;
    const std::string bytes = encode_identity(secret);
    auto back = decode_identity(bytes);
    REQUIRE(back.ok());
    CHECK(back->handle == "88.118.8/Admin");
    CHECK(back->index == 300);
    CHECK(back->account == "ent1");
    CHECK(back->kind == IdentityKeyKind::secret);
    CHECK(back->secret == secret.secret);
    CHECK(back->public_key_pem.empty());
    CHECK(back->created == 1'700'000'000);

    Identity pub = secret;
    pub.kind = IdentityKeyKind::public_key;
    pub.secret.clear();
    pub.public_key_pem = "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n";
    pub.index = 0x7fffffff;
    auto pub_back = decode_identity(encode_identity(pub));
    REQUIRE(pub_back.ok());
    CHECK(pub_back->kind == IdentityKeyKind::public_key);
    CHECK(pub_back->public_key_pem == pub.public_key_pem);
    CHECK(pub_back->secret.empty());
    CHECK(pub_back->index == 0x7fffffff);

    auto corrupt = [](std::string_view b) {
        auto r = decode_identity(b);
        REQUIRE_FALSE(r.ok());
        CHECK(r.error().code == Errc::corrupt);
        CHECK(r.error().message == "stored identity is corrupt");
    };
    for (std::size_t n = 0; n < bytes.size(); ++n) {
        CAPTURE(n);
        corrupt(bytes.substr(0, n));
    }
    corrupt(bytes + "x");
    corrupt("\x02" + bytes.substr(1));                      // unknown format
    corrupt(bytes.substr(0, 1) + "\x03" + bytes.substr(2)); // unknown kind
    auto variant = [&](auto&& change) {
        Identity v = secret;
        change(v);
        return encode_identity(v);
    };
    corrupt(variant([](Identity& v) { v.index = 0; }));
    corrupt(variant([](Identity& v) { v.index = -1; }));
    corrupt(variant([](Identity& v) { v.handle.clear(); }));
    corrupt(variant([](Identity& v) { v.account.clear(); }));
    corrupt(variant([](Identity& v) { v.secret.clear(); }));
    // A length prefix claiming more bytes than there are.
    std::string long_prefix = bytes;
    long_prefix[1 + 1 + 4 + 8] = '\x7f';
    corrupt(long_prefix);
    // Any single flipped byte decodes to an error or to a well-formed identity.
    for (std::size_t i = 0; i < bytes.size(); ++i) {
        std::string flipped = bytes;
        flipped[i] = static_cast<char>(flipped[i] ^ 0x5a);
        auto r = decode_identity(flipped);
        if (r.ok()) {
            CHECK(r->index > 0);
            CHECK_FALSE(r->handle.empty());
            CHECK_FALSE(r->account.empty());
        } else {
            CHECK(r.error().code == Errc::corrupt);
        }
    }
}
