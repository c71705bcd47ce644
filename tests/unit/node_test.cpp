// The domain layer (node/) against a real registry in a temporary directory, no network: the
// outcome vocabulary, the one write policy, homing, prefix allocation, resolution and its
// counters, authentication.
#include "idnode/node/authenticator.hpp"
#include "idnode/node/homing.hpp"
#include "idnode/node/outcome.hpp"
#include "idnode/node/policy.hpp"
#include "idnode/node/prefixes.hpp"
#include "idnode/node/resolution.hpp"
#include "store_helpers.hpp"

#include <doctest/doctest.h>

#include <future>
#include <set>
#include <thread>

using namespace idnode;
using namespace idnode::test;

namespace {

void write(Registry& reg, WriteOp op) {
    WriteBatch batch;
    batch.account = "test";
    batch.ops.push_back(std::move(op));
    std::promise<BatchResult> done;
    reg.submit(std::move(batch), [&](BatchResult r) { done.set_value(std::move(r)); });
    const auto results = done.get_future().get();
    REQUIRE_MESSAGE(results.front().ok(), describe(results.front()));
}

void add_prefix(Registry& reg, std::string prefix, PrefixKind kind,
                PrefixStatus status = PrefixStatus::active) {
    PrefixRecord p;
    p.prefix = prefix;
    p.kind = kind;
    p.status = status;
    if (kind == PrefixKind::enterprise)
        p.enterprise = EnterpriseInfo{"Steel Co", "91110000100000000A", "C3120", "ops"};
    write(reg, PutEntry{Table::prefixes, fold_case(prefix), encode_prefix(p), PutMode::upsert});
}

node::Principal principal(std::string name, std::optional<Role> role,
                          std::vector<std::string> prefixes = {}) {
    return node::Principal{std::move(name), role, std::move(prefixes), node::Credential::password};
}

/// 88.118 (node), 88.118.10 (steel's), 88.118.10.5 (nested, another enterprise's),
/// 88.118.11 (suspended), 88.118.12 (a corrupt record).
struct Node {
    TempDir dir;
    std::unique_ptr<Registry> reg = Registry::open(options_in(dir));

    Node() {
        add_prefix(*reg, "88.118", PrefixKind::node);
        add_prefix(*reg, "88.118.10", PrefixKind::enterprise);
        add_prefix(*reg, "88.118.10.5", PrefixKind::enterprise);
        add_prefix(*reg, "88.118.11", PrefixKind::enterprise, PrefixStatus::suspended);
        write(*reg, PutEntry{Table::prefixes, "88.118.12", "not a prefix record", PutMode::upsert});
    }
};

std::optional<node::Refusal> write_check(const Registry& reg, const node::Principal& who,
                                         std::string_view h) {
    return node::write_refusal(reg.snapshot(), who, handle(h));
}

std::optional<node::Refusal> template_check(const Registry& reg, const node::Principal& who,
                                            std::string_view prefix, node::Access access) {
    return node::access_refusal(reg.snapshot(), who, prefix, prefix, node::Subject::templates,
                                access);
}

} // namespace

TEST_CASE("outcomes: every outcome has a name and messages in both languages") {
    std::set<std::string_view> names;
    for (int i = 0; i <= static_cast<int>(node::Outcome::internal); ++i) {
        const auto o = static_cast<node::Outcome>(i);
        CHECK_FALSE(node::outcome_name(o).empty());
        CHECK_FALSE(node::outcome_message(o, node::Language::en).empty());
        CHECK_FALSE(node::outcome_message(o, node::Language::zh).empty());
        names.insert(node::outcome_name(o));
    }
    CHECK(names.size() == static_cast<std::size_t>(node::Outcome::internal) + 1);
    CHECK(node::outcome_of(Errc::already_exists) == node::Outcome::conflict);
    CHECK(node::outcome_of(Errc::corrupt) == node::Outcome::internal);
    CHECK(node::outcome_of(Errc::storage_full) == node::Outcome::storage_full);
    CHECK(node::outcome_of(Errc::not_homed) == node::Outcome::invalid);
    CHECK(node::succeeded(node::Outcome::unchanged));
    CHECK_FALSE(node::succeeded(node::Outcome::unauthorized));
}

TEST_CASE("write policy: one decision for identifiers and templates, nested prefixes included") {
    Node n;
    const auto admin = principal("root", Role::admin);
    const auto steel = principal("steel", Role::enterprise, {"88.118.10"});
    const auto other = principal("other", Role::enterprise, {"88.118.10.5"});
    const auto reader = principal("auditor", Role::reader, {"88.118.10"});
    const auto anonymous = principal("", std::nullopt);

    struct Row {
        const node::Principal* who;
        const char* handle;
        std::optional<node::Outcome> identifiers; // nullopt: may write
        const char* reason;
    };
    const Row rows[] = {
        {&admin, "88.118.10/A", std::nullopt, ""},
        {&admin, "88.118/A", std::nullopt, ""},
        {&steel, "88.118.10/A", std::nullopt, ""},
        {&steel, "88.118.10.5/A", node::Outcome::forbidden, ""}, // nested, someone else's
        {&other, "88.118.10.5/A", std::nullopt, ""},
        {&other, "88.118.10/A", node::Outcome::forbidden, ""},
        {&steel, "88.118/A", node::Outcome::forbidden, ""}, // a node prefix: admin only
        {&reader, "88.118.10/A", node::Outcome::forbidden, ""},
        {&anonymous, "88.118.10/A", node::Outcome::unauthorized, ""},
        {&admin, "88.118.99/A", node::Outcome::not_found, "prefix_not_allocated"},
        {&admin, "88.118.11/A", node::Outcome::forbidden, "prefix_suspended"},
        {&admin, "88.118.12/A", node::Outcome::internal, "corrupt"},
    };
    for (const Row& row : rows) {
        CAPTURE(row.who->username);
        CAPTURE(row.handle);
        const auto refusal = write_check(*n.reg, *row.who, row.handle);
        REQUIRE(refusal.has_value() == row.identifiers.has_value());
        if (!refusal)
            continue;
        CHECK(refusal->outcome == *row.identifiers);
        if (*row.reason != '\0')
            CHECK(refusal->reason == row.reason);
        CHECK_FALSE(refusal->message.empty());
        CHECK_FALSE(refusal->text(node::Language::zh).empty());
    }

    // Templates follow the same rule; reads need the owner's or a reader's grant.
    CHECK_FALSE(template_check(*n.reg, steel, "88.118.10", node::Access::write));
    CHECK(template_check(*n.reg, reader, "88.118.10", node::Access::write)->outcome ==
          node::Outcome::forbidden);
    CHECK_FALSE(template_check(*n.reg, reader, "88.118.10", node::Access::read));
    CHECK(template_check(*n.reg, steel, "88.118.10.5", node::Access::read)->outcome ==
          node::Outcome::forbidden);
    CHECK(template_check(*n.reg, admin, "88.118.11", node::Access::write)->reason ==
          "prefix_suspended");
    CHECK_FALSE(template_check(*n.reg, admin, "88.118.11", node::Access::read));
    // A corrupt prefix record is the same answer whatever is asked.
    CHECK(template_check(*n.reg, admin, "88.118.12", node::Access::write)->reason == "corrupt");
    CHECK(template_check(*n.reg, admin, "88.118.12", node::Access::read)->reason == "corrupt");

    const auto snapshot = n.reg->snapshot();
    CHECK(node::owning_prefix(snapshot, "88.118.10.5.7") == "88.118.10.5");
    CHECK(node::owning_prefix(snapshot, "88.118.10.6") == "88.118.10");
    CHECK_FALSE(node::owning_prefix(snapshot, "86.1"));
    CHECK(node::may_read_private(snapshot, reader, "88.118.10"));
    CHECK_FALSE(node::may_read_private(snapshot, reader, "88.118.10.5"));
    CHECK_FALSE(node::may_read_private(snapshot, anonymous, "88.118.10"));
}

TEST_CASE("homing: configured prefixes and the node prefixes recorded in the registry") {
    Node n;
    auto homing = node::Homing::load(*n.reg, {"86.100"});
    REQUIRE(homing.ok());
    CHECK(homing->node_prefixes() == std::vector<std::string>{"86.100", "88.118"});
    CHECK(homing->homes("88.118.10.5"));
    CHECK(homing->homes("86.100"));
    CHECK_FALSE(homing->homes("88.1180"));
    CHECK_FALSE(homing->homes("20.500"));
    CHECK(homing->is_node_prefix("88.118"));
    CHECK_FALSE(homing->is_node_prefix("88.118.10"));

    auto bad = node::Homing::load(*n.reg, {"88..118"});
    REQUIRE_FALSE(bad.ok());
    CHECK(bad.error().message.find("node.homed_prefixes") != std::string::npos);
}

namespace {
node::Allocation allocate(node::PrefixAllocator& allocator, node::AllocationRequest request) {
    std::promise<node::Allocation> done;
    allocator.allocate(std::move(request), [&](node::Allocation a) { done.set_value(a); });
    return done.get_future().get();
}

node::AllocationRequest next_under(std::string parent) {
    node::AllocationRequest r;
    r.enterprise = EnterpriseInfo{"Pharma Co", "91110000100000000B", "C27", ""};
    r.parent = std::move(parent);
    r.account = "root";
    r.now = kT0;
    return r;
}
} // namespace

TEST_CASE("prefix allocation: next free numbers, distinct under concurrency, taken ones skipped") {
    Node n;
    auto homing = node::Homing::load(*n.reg, {});
    REQUIRE(homing.ok());
    node::PrefixAllocator allocator(*n.reg, *homing);

    // 88.118.12 holds a record (a corrupt one), so the highest number is 12.
    auto first = allocate(allocator, next_under("88.118"));
    REQUIRE(first.outcome == node::Outcome::created);
    CHECK(first.record.prefix == "88.118.13");

    // Someone allocates 88.118.14 explicitly: the allocator's next number is taken and skipped.
    auto explicit_request = next_under("");
    explicit_request.prefix = "88.118.14";
    CHECK(allocate(allocator, explicit_request).outcome == node::Outcome::created);
    CHECK(allocate(allocator, explicit_request).outcome == node::Outcome::conflict);
    CHECK(allocate(allocator, next_under("88.118")).record.prefix == "88.118.15");

    // Eight threads at once: eight distinct prefixes, all stored.
    std::vector<std::future<node::Allocation>> futures;
    for (int i = 0; i < 8; ++i)
        futures.push_back(std::async(std::launch::async,
                                     [&] { return allocate(allocator, next_under("88.118")); }));
    std::set<std::string> got;
    for (auto& f : futures) {
        auto a = f.get();
        REQUIRE(a.outcome == node::Outcome::created);
        got.insert(a.record.prefix);
        CHECK(n.reg->snapshot().get_entry(Table::prefixes, a.record.prefix));
    }
    CHECK(got.size() == 8);
    CHECK(*got.begin() == "88.118.16");

    // Refusals before anything is written.
    auto bad_enterprise = next_under("88.118");
    bad_enterprise.enterprise.credit_code = "short";
    auto refused = allocate(allocator, bad_enterprise);
    CHECK(refused.outcome == node::Outcome::invalid);
    CHECK(refused.reason == "invalid_value");
    CHECK(allocate(allocator, next_under("88.118.10")).reason == "not_homed");
    auto node_itself = next_under("");
    node_itself.prefix = "88.118";
    CHECK(allocate(allocator, node_itself).reason == "not_homed");
    auto malformed = next_under("");
    malformed.prefix = "88..1";
    CHECK(allocate(allocator, malformed).reason == "invalid_prefix");
}

TEST_CASE("resolution: the caller sees what the policy lets it, and every resolution counts") {
    Node n;
    write(*n.reg, put("88.118.10/C1",
                      {val(1, "URL", "https://example.cn/c1"), val(2, "SECRET", "cost", "1100")}));
    node::Resolutions resolutions;
    const auto steel = principal("steel", Role::enterprise, {"88.118.10"});
    const auto anonymous = principal("", std::nullopt);
    auto count_values = [&](const node::Principal& who, std::string_view h) {
        std::size_t shown = 0;
        auto st = resolutions.resolve(n.reg->snapshot(), who, handle(h),
                                      [&](const RecordView& view, node::Visibility visibility) {
                                          for (const ValueView& v : view)
                                              shown += visibility.shows(v) ? 1 : 0;
                                      });
        return st ? static_cast<long>(shown) : -1L;
    };
    CHECK(count_values(anonymous, "88.118.10/C1") == 1);
    CHECK(count_values(steel, "88.118.10/c1") == 2);
    CHECK(count_values(steel, "88.118.10/missing") == -1);
    resolutions.count_unresolved(2);
    const auto now = node::unix_now();
    CHECK(resolutions.counter().total(now) == 5);
    CHECK(resolutions.counter().total_where(
              now, [](const std::string& prefix) { return prefix == "88.118.10"; }) == 2);
}

TEST_CASE("authentication: passwords, API keys, malformed credentials and the failure throttle") {
    Node n;
    Account a;
    a.username = "steel";
    a.role = Role::enterprise;
    a.prefixes = {"88.118.10"};
    a.password_hash = hash_password("correct horse", 1000);
    write(*n.reg, PutEntry{Table::accounts, a.username, encode_account(a), PutMode::create});
    auto key = generate_api_key("steel", kT0);
    write(*n.reg, PutEntry{Table::api_keys, key.record.key_id, encode_api_key(key.record),
                           PutMode::create});

    node::Authenticator auth(
        *n.reg, node::AuthOptions{3, std::chrono::seconds(60), 100, std::chrono::seconds(60)});
    auto ok = auth.password_login("steel", "correct horse", "10.0.0.1");
    REQUIRE(ok.ok());
    CHECK(ok.principal.prefixes == std::vector<std::string>{"88.118.10"});
    CHECK(ok.principal.credential == node::Credential::password);

    auto by_key = auth.bearer(key.key, "10.0.0.1");
    REQUIRE(by_key.ok());
    CHECK(by_key.principal.credential == node::Credential::api_key);

    CHECK(auth.password_login("steel", "wrong", "10.0.0.2").outcome == node::Outcome::unauthorized);
    CHECK(auth.refuse("10.0.0.2", "malformed").outcome == node::Outcome::unauthorized);
    CHECK(auth.bearer("idn_nonsense", "10.0.0.2").outcome == node::Outcome::unauthorized);
    // Three failures from 10.0.0.2: even the right password is refused from there, and said so.
    auto throttled = auth.password_login("steel", "correct horse", "10.0.0.2");
    CHECK(throttled.outcome == node::Outcome::throttled);
    CHECK(throttled.retry_after.count() > 0);
    CHECK(auth.password_login("steel", "correct horse", "10.0.0.3").ok());

    CHECK(auth.login("", "anything", "10.0.0.4").outcome == node::Outcome::unauthorized);
    CHECK(auth.confirm_password("steel", std::nullopt, "10.0.0.4").outcome ==
          node::Outcome::forbidden);
    CHECK(auth.confirm_password("steel", std::string_view("correct horse"), "10.0.0.5").ok());
}
