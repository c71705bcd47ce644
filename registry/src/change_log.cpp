// Change-log entry decoding (change_log.hpp).
#include "change_log.hpp"

namespace idnode::registry::store {

bool decode_change(std::uint64_t seq, std::string_view bytes, ChangeEntry& e) {
    wire::Reader r(bytes);
    std::uint8_t kind, op;
    std::uint64_t time;
    std::string_view account, key, value;
    if (!r.u8(kind) || !r.u8(op) || !r.u64(time) || !r.bytes(account) || !r.bytes(key) ||
        !r.bytes(value) || r.remaining() != 0) {
        return false;
    }
    e.loaded = (op & kLoadedOpFlag) != 0;
    if (e.loaded && (!value.empty() || kind != static_cast<std::uint8_t>(ChangeKind::identifier))) {
        return false; // only identifier entries are written without their record
    }
    e.sequence = seq;
    e.kind = static_cast<ChangeKind>(kind);
    e.op = static_cast<ChangeOp>(op & ~kLoadedOpFlag);
    e.time = static_cast<std::int64_t>(time);
    e.account.assign(account);
    e.key.assign(key);
    e.value.assign(value);
    return true;
}

} // namespace idnode::registry::store
