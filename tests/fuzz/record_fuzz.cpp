// libFuzzer entry point for the stored record encoding (registry value.hpp): RecordView::parse,
// iteration, to_record/decode_record and re-encoding. Stored bytes are trusted less than they
// look: a damaged database or a future bug must surface as Errc::corrupt, never as an over-read.
//
// Beyond "no crash": a record that parses iterates exactly size() values, every value's views
// lie inside the input, and decode -> encode -> parse gives the same spelling and values.
#include "idnode/registry/value.hpp"

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

namespace {

namespace reg = idnode::registry;

void require(bool condition) {
    if (!condition)
        std::abort();
}

bool inside(std::string_view part, std::string_view whole) {
    return part.empty() || (part.data() >= whole.data() &&
                            part.data() + part.size() <= whole.data() + whole.size());
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view bytes(reinterpret_cast<const char*>(data), size);
    auto view = reg::RecordView::parse(bytes);
    auto decoded = reg::decode_record(bytes);
    require(view.ok() == decoded.ok());
    if (!view) {
        require(view.error().code == reg::Errc::corrupt);
        return 0;
    }
    require(inside(view->spelling(), bytes));
    std::size_t count = 0;
    for (const reg::ValueView& value : *view) {
        require(inside(value.type, bytes) && inside(value.data, bytes) &&
                inside(value.references, bytes) && inside(value.wire, bytes));
        (void)value.to_value();
        ++count;
    }
    require(count == view->size());

    const reg::Record record = view->to_record();
    require(record.values.size() == count);
    const std::string encoded = reg::encode_record(record.spelling, record.values);
    auto again = reg::decode_record(encoded);
    require(again.ok());
    require(again->spelling == record.spelling);
    require(again->values.size() == record.values.size());
    for (std::size_t i = 0; i < record.values.size(); ++i) {
        require(again->values[i].index == record.values[i].index);
        require(again->values[i].type == record.values[i].type);
        require(again->values[i].data == record.values[i].data);
    }
    return 0;
}
