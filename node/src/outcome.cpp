#include "idnode/node/outcome.hpp"

#include <array>

namespace idnode::node {
namespace {

struct Words {
    std::string_view name, en, zh;
};

// Indexed by Outcome; the static_assert below keeps the table and the enum in step.
constexpr std::array<Words, 15> kWords{{
    {"ok", "ok", "成功"},
    {"created", "created", "创建成功"},
    {"replaced", "replaced", "更新成功"},
    {"unchanged", "unchanged", "未变化"},
    {"unauthorized", "authentication is needed", "未登录或token无效"},
    {"forbidden", "not permitted", "没有权限"},
    {"not_found", "not found", "不存在"},
    {"conflict", "already exists or changed concurrently", "已存在或正被修改"},
    {"invalid", "invalid request", "参数错误"},
    {"in_use", "still in use", "仍在使用中"},
    {"routed_elsewhere", "the prefix is served by another node", "该前缀由其他节点提供服务"},
    {"throttled", "too many requests; retry later", "请求过于频繁，请稍后再试"},
    {"unavailable", "the node is busy or shutting down; retry later", "服务暂不可用，请稍后再试"},
    {"storage_full", "the node's storage is full; nothing was written", "存储空间已满，未写入"},
    {"internal", "internal error", "内部错误"},
}};
static_assert(kWords.size() == static_cast<std::size_t>(Outcome::internal) + 1);

const Words& words(Outcome outcome) noexcept {
    const auto i = static_cast<std::size_t>(outcome);
    return kWords[i < kWords.size() ? i : kWords.size() - 1];
}

} // namespace

std::string_view outcome_name(Outcome outcome) noexcept {
    return words(outcome).name;
}

std::string_view outcome_message(Outcome outcome, Language language) noexcept {
    return language == Language::zh ? words(outcome).zh : words(outcome).en;
}

Outcome outcome_of(registry::Errc code) noexcept {
    // Indexed by registry::Errc (ok = 0 … in_use = 11).
    static constexpr std::array<Outcome, 12> kOutcome{
        Outcome::ok,      Outcome::not_found,   Outcome::conflict,     Outcome::invalid,
        Outcome::invalid, Outcome::invalid,     Outcome::storage_full, Outcome::internal,
        Outcome::invalid, Outcome::unavailable, Outcome::internal,     Outcome::in_use};
    static_assert(static_cast<std::size_t>(registry::Errc::in_use) + 1 == kOutcome.size());
    const auto i = static_cast<std::size_t>(code);
    return i < kOutcome.size() ? kOutcome[i] : Outcome::internal;
}

std::string_view Refusal::text(Language language) const noexcept {
    if (language == Language::zh)
        return message_zh.empty() ? outcome_message(outcome, Language::zh)
                                  : std::string_view(message_zh);
    return message.empty() ? outcome_message(outcome, Language::en) : std::string_view(message);
}

} // namespace idnode::node
