// A test helper shared by unit and integration tests: holds a registry's writer thread inside a
// batch completion until open() (or destruction), so that the writer queue behind it fills
// deterministically (try_submit refusals, bulk uploads pausing on a full queue).
//
// The held batch deletes `absent_handle`, a record the test never creates (the outcome does not
// matter, only that the writer runs the completion). Construction waits (up to 10 s, REQUIRE)
// until the writer is inside the gate; destruction opens it and waits until the writer has left,
// because the completion refers to this object. Not copyable; one thread constructs and destroys.
#pragma once

#include "idnode/registry/identifier.hpp"
#include "idnode/registry/registry.hpp"

#include <doctest/doctest.h>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string_view>

namespace idnode::test {

class WriterGate {
public:
    explicit WriterGate(registry::Registry& store,
                        std::string_view absent_handle = "88.1/gate-absent") {
        registry::WriteBatch batch;
        batch.ops.push_back(registry::DeleteRecord{*registry::parse_handle(absent_handle, {})});
        store.submit(std::move(batch), [this](registry::BatchResult) {
            std::unique_lock lock(m_);
            held_ = true;
            cv_.notify_all();
            cv_.wait(lock, [&] { return open_; });
            left_ = true;
            cv_.notify_all();
        });
        std::unique_lock lock(m_);
        REQUIRE(cv_.wait_for(lock, std::chrono::seconds(10), [&] { return held_; }));
    }
    ~WriterGate() {
        open();
        std::unique_lock lock(m_);
        cv_.wait(lock, [&] { return left_; });
    }
    WriterGate(const WriterGate&) = delete;
    WriterGate& operator=(const WriterGate&) = delete;

    /// Lets the writer go on (idempotent).
    void open() {
        std::lock_guard lock(m_);
        open_ = true;
        cv_.notify_all();
    }

private:
    std::mutex m_;
    std::condition_variable cv_;
    bool held_ = false;
    bool open_ = false;
    bool left_ = false;
};

} // namespace idnode::test
