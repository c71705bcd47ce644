#include "api/families.hpp"
#include "api/record_json.hpp"
#include "api/snms/answers.hpp"
#include "api/snms/snms_api.hpp"
#include "codec.hpp"
#include "idnode/node/policy.hpp"
#include "idnode/node/records.hpp"
#include "idnode/registry/admin.hpp"
#include "idnode/registry/template.hpp"

#include <boost/json.hpp>

#include <algorithm>
#include <map>

namespace idnode::resolver::api {
using registry::Errc;
using registry::Error;

registry::Result<SnmsRecord> snms_record_from_json(const boost::json::value& doc,
                                                   const registry::HandleLimits& limits,
                                                   std::string& handle_spelling) {
    if (const auto* o = doc.if_object()) {
        if (const auto* h = o->if_contains("handle"); h && h->is_string())
            handle_spelling = h->get_string();
    }
    auto in = record_from_json(doc, "value");
    if (!in)
        return Error{in.code(), "参数错误：" + in.error().message};
    if (in->handle.empty())
        return Error{Errc::invalid_value, "参数错误：缺少handle"};
    auto h = parse_handle(in->handle, limits);
    if (!h)
        return Error{Errc::invalid_handle, "标识格式错误：" + h.error().message};
    return SnmsRecord{std::move(h).value(), std::move(in->template_version), std::move(in->values)};
}

} // namespace idnode::resolver::api

namespace idnode::resolver::api::snms {
namespace json = boost::json;
using namespace registry;
using node::Principal;

class IdentityRoutes final : public SnmsFamily {
    using SnmsFamily::SnmsFamily;
    void register_routes(Router& router) override;

    void revoke_tokens(Request&& req, Responder responder) {
        Call call;
        if (auto r = begin(api_, req, responder.context(), call, true))
            return responder.send(native_answer(req, std::move(*r)));
        const Principal& who = call.who;
        const std::string name = percent_decode(responder.context().param("user")).value_or("");
        if (!who.is_admin() && who.username != name)
            return responder.send(error_response(req, http::status::forbidden, "forbidden",
                                                 "only an admin or the account itself"));
        const std::string keys = query_param(req, "keys");
        if (keys != "" && keys != "true" && keys != "false")
            return responder.send(error_response(req, http::status::bad_request, "invalid_query",
                                                 "keys must be true or false"));
        // The same lock as the native account changes (a key made meanwhile must not survive).
        auto lock = api_.auth.try_lock_account(name);
        if (!lock)
            return responder.send(
                error_response(req, http::status::conflict, "account_busy",
                               "another change of account " + name + " is under way; retry"));
        auto bytes = api_.registry.snapshot().get_entry(Table::accounts, name);
        if (!bytes)
            return responder.send(error_response(req, http::status::not_found, "not_found",
                                                 "account " + name + " does not exist"));
        auto a = decode_account(*bytes);
        if (!a)
            return responder.send(error_response(req, http::status::internal_server_error,
                                                 "corrupt", a.error().message));
        ++a->token_generation;
        WriteBatch batch;
        batch.account = who.username;
        batch.ops.push_back(PutEntry{Table::accounts, name, encode_account(*a), PutMode::replace});
        if (keys == "true") {
            for (auto& id : node::api_key_ids(api_.registry.snapshot(), name))
                batch.ops.push_back(DeleteEntry{Table::api_keys, std::move(id)});
        }
        api_.auth.forget(name);
        auto shared = std::make_shared<Request>(std::move(req));
        api_.registry.submit(std::move(batch), [shared, responder, lock](BatchResult results) {
            lock->release(); // before the answer: the client's next change must find it free
            const auto failed = std::find_if(results.begin(), results.end(),
                                             [](const OpResult& r) { return !r.ok(); });
            if (failed != results.end())
                return responder.send(
                    native_answer(*shared, outcome_of(failed->error.code, failed->error.message,
                                                      failed->error.message)));
            Response res{http::status::no_content, shared->version()};
            res.keep_alive(shared->keep_alive());
            res.prepare_payload();
            responder.send(std::move(res));
        });
    }

    // ---- SNMS: login ----------------------------------------------------------------------------

    Response token(const Request& req, RequestContext& ctx, bool v1) {
        auto body = parse_json_body(req.body());
        const json::object* o = body ? body->if_object() : nullptr;
        const json::value* user = o ? o->if_contains("username") : nullptr;
        const json::value* pass = o ? o->if_contains("password") : nullptr;
        if (!user || !pass || !user->is_string() || !pass->is_string())
            return envelope(req, kBusiness, "参数错误：需要username和password");
        const std::string username(user->get_string());
        auto outcome =
            v1 ? api_.auth.login_v1(username, pass->get_string(), ctx.client_ip, node::unix_now())
               : api_.auth.login(username, pass->get_string(), ctx.client_ip);
        if (!outcome.ok()) {
            // "disabled" is only said to a caller whose password was right
            // (node/authenticator.hpp).
            return envelope(
                req, kBusiness,
                outcome.outcome == node::Outcome::throttled ? "登录失败次数过多，请稍后再试"
                : outcome.message.find("disabled") != std::string::npos ? "账号已停用"
                                                                        : "用户名或密码错误");
        }
        ctx.account = outcome.principal.username;
        auto bytes = api_.registry.snapshot().get_entry(Table::accounts, username);
        auto account = bytes ? decode_account(*bytes)
                             : Result<Account>(Error{Errc::not_found, "account vanished"});
        if (!account)
            return envelope(req, kInternal, "内部错误：" + account.error().message);
        const auto expires = node::unix_now() + options_.token_ttl_s;
        return envelope(req, kOk, kSuccess,
                        json::object{{"token", node::issue_token(*account, expires)},
                                     {"expiresIn", options_.token_ttl_s}});
    }

    // ---- SNMS: identifiers ----------------------------------------------------------------------

    /// Per-request memo of a batch: templates and write checks per prefix (same snapshot).
    struct BatchMemo {
        node::TemplateCache templates;
        std::map<std::string, std::optional<node::Refusal>, std::less<>> writable;
    };

    /// Parses and checks one handle; on failure the Chinese message.
    std::optional<std::string> snms_handle(std::string_view text, std::optional<Handle>& out,
                                           const Principal* writer, const ReadSnapshot& snapshot,
                                           int& status, BatchMemo* memo = nullptr) {
        status = kBusiness;
        auto h = parse_handle(text, options_.handle_limits);
        if (!h)
            return "标识格式错误：" + h.error().message;
        if (auto refusal = snms_check(*h, writer, snapshot, status, memo))
            return refusal;
        out = std::move(h).value();
        return std::nullopt;
    }

    /// Is the handle homed here and (with a `writer`) may the writer write it? On refusal the
    /// Chinese message, and `status` says which SNMS status goes with it.
    std::optional<std::string> snms_check(const Handle& h, const Principal* writer,
                                          const ReadSnapshot& snapshot, int& status,
                                          BatchMemo* memo = nullptr) {
        status = kBusiness;
        if (!api_.homing.homes(h.prefix_key()))
            return "标识前缀" + std::string(h.prefix()) + "不在本节点管理范围内";
        if (writer == nullptr)
            return std::nullopt;
        std::optional<node::Refusal> refusal;
        const auto memo_it =
            memo ? memo->writable.find(h.prefix_key()) : decltype(memo->writable)::iterator{};
        if (memo && memo_it != memo->writable.end()) {
            refusal = memo_it->second;
        } else {
            refusal = node::write_refusal(snapshot, *writer, h);
            if (memo)
                memo->writable.emplace(std::string(h.prefix_key()), refusal);
        }
        if (!refusal)
            return std::nullopt;
        switch (refusal->outcome) {
        case node::Outcome::unauthorized:
            status = kNotLoggedIn;
            break;
        case node::Outcome::forbidden:
            status = kNoPermission;
            break;
        case node::Outcome::internal:
            status = kInternal;
            break;
        default:
            break;
        }
        return std::string(refusal->text(node::Language::zh));
    }

    struct PreparedOp {
        std::string handle; // as sent
        std::optional<WriteOp> op;
        int status = kBusiness; // when op is empty
        std::string message;    // when op is empty
    };

    /// One SNMS record document -> a validated write (create or replace), or why not.
    PreparedOp prepare(const ReadSnapshot& snapshot, const Principal& who, const json::value& doc,
                       PutMode mode, BatchMemo* memo = nullptr) {
        PreparedOp p;
        auto in = snms_record_from_json(doc, options_.handle_limits, p.handle);
        if (!in) {
            p.message = in.error().message;
            return p;
        }
        if (auto bad = snms_check(in->handle, &who, snapshot, p.status, memo)) {
            p.message = *bad;
            return p;
        }
        auto prepared =
            node::prepare_record(snapshot, in->handle, std::move(in->template_version),
                                 std::move(in->values), false, memo ? &memo->templates : nullptr);
        if (!prepared.ok()) {
            p.message = prepared.violations.empty()
                            ? (prepared.error->code == Errc::not_found
                                   ? "模板不存在：" + prepared.error->message
                                   : "数据不合法：" + prepared.error->message)
                            : prepared.message(true);
            return p;
        }
        p.op = PutRecord{std::move(in->handle), std::move(prepared.values), mode};
        return p;
    }

    Response detail(const Request& req, RequestContext& ctx) {
        Call call;
        if (auto r = begin(api_, req, ctx, call, false))
            return snms_answer(req, std::move(*r));
        const std::string text = query_param(req, "handle");
        if (text.empty())
            return envelope(req, kBusiness, "参数错误：缺少handle");
        auto snapshot = api_.registry.snapshot();
        std::optional<Handle> h;
        int status = kBusiness;
        if (auto bad = snms_handle(text, h, nullptr, snapshot, status))
            return envelope(req, status, *bad);
        json::array values;
        std::string template_version;
        auto st = api_.resolutions.resolve(
            snapshot, call.who, *h, [&](const RecordView& view, node::Visibility visibility) {
                for (const ValueView& v : view) {
                    if (v.index == kIndexTemplate)
                        template_version.assign(v.data);
                    if (!visibility.shows(v))
                        continue;
                    const bool text_data = find_invalid_utf8(v.data) == std::string_view::npos;
                    values.push_back(json::object{
                        {"index", v.index},
                        {"type", v.type},
                        {"data", json::object{{"format", text_data ? "string" : "base64"},
                                              {"value", text_data ? std::string(v.data)
                                                                  : base64_encode(v.data)}}},
                        {"auth", v.permissions.to_string()}});
                }
            });
        if (!st) {
            return st.code() == Errc::not_found
                       ? envelope(req, kBusiness, kNotFound)
                       : envelope(req, kInternal, "内部错误：" + st.error().message);
        }
        return envelope(req, kOk, kSuccess,
                        json::object{{"prefix", h->prefix()},
                                     {"handle", h->spelling()},
                                     {"templateVersion", template_version},
                                     {"value", std::move(values)}});
    }

    void write_one(Request&& req, Responder responder, PutMode mode) {
        Call call;
        if (auto r = begin(api_, req, responder.context(), call, true, Body::object))
            return responder.send(snms_answer(req, std::move(*r)));
        auto p = prepare(api_.registry.snapshot(), call.who, call.body, mode);
        if (!p.op)
            return responder.send(envelope(req, p.status, p.message));
        const bool creating = mode == PutMode::create;
        WriteBatch batch;
        batch.account = call.who.username;
        batch.ops.push_back(std::move(*p.op));
        auto shared = std::make_shared<Request>(std::move(req));
        api_.registry.submit(std::move(batch), [shared, responder, creating,
                                                handle = p.handle](BatchResult results) {
            const OpResult& r = results.front();
            if (record_ok(r, creating))
                return responder.send(
                    envelope(*shared, kOk, kSuccess, json::object{{"handle", handle}}));
            // storage_full is a business error (-2 with its message), see snms_answer.
            const bool server_fault =
                !r.ok() && (r.error.code == Errc::internal || r.error.code == Errc::unavailable ||
                            r.error.code == Errc::corrupt);
            responder.send(envelope(*shared, server_fault ? kInternal : kBusiness,
                                    record_message_zh(r, creating)));
        });
    }

    void delete_one(Request&& req, Responder responder) {
        Call call;
        if (auto r = begin(api_, req, responder.context(), call, true))
            return responder.send(snms_answer(req, std::move(*r)));
        std::string text = query_param(req, "handle");
        if (text.empty())
            body_strings(req, {{"handle", &text}});
        if (text.empty())
            return responder.send(envelope(req, kBusiness, "参数错误：缺少handle"));
        std::optional<Handle> h;
        int status = kBusiness;
        if (auto bad = snms_handle(text, h, &call.who, api_.registry.snapshot(), status))
            return responder.send(envelope(req, status, *bad));
        WriteBatch batch;
        batch.account = call.who.username;
        batch.ops.push_back(DeleteRecord{std::move(*h)});
        auto shared = std::make_shared<Request>(std::move(req));
        api_.registry.submit(std::move(batch), [shared, responder, text](BatchResult results) {
            const OpResult& r = results.front();
            if (r.ok())
                return responder.send(
                    envelope(*shared, kOk, kSuccess, json::object{{"handle", text}}));
            responder.send(envelope(*shared, kBusiness, record_message_zh(r, false)));
        });
    }

    /// batchCreate / batchUpdate / batchDelete: every valid record of the call goes to the
    /// writer as one WriteBatch; each record gets its own result, in input order.
    void batch(Request&& req, Responder responder, std::optional<PutMode> mode) {
        Call call;
        // The parsed batch lives in one arena, freed at once when the call ends.
        if (auto r = begin(api_, req, responder.context(), call, true, Body::array,
                           json::make_shared_resource<json::monotonic_resource>()))
            return responder.send(snms_answer(req, std::move(*r)));
        const Principal& who = call.who;
        const auto& items = call.body.get_array();
        if (items.size() > options_.max_batch)
            return responder.send(
                envelope(req, kBusiness, "每批最多" + std::to_string(options_.max_batch) + "条"));
        const bool deleting = !mode.has_value();
        const bool creating = mode == PutMode::create;
        struct Slot {
            std::string handle;
            int code = kOk;
            std::string msg;
            std::ptrdiff_t op = -1; // index into batch.ops
        };
        auto slots = std::make_shared<std::vector<Slot>>(items.size());
        WriteBatch batch;
        batch.account = who.username;
        batch.ops.reserve(items.size());
        BatchMemo memo; // one template lookup and one write check per prefix, not per record
        // The same per-record limit as a single write's body: a large record fails alone.
        const auto sizes = deleting ? std::vector<std::size_t>{} : record_json_sizes(req.body());
        // The snapshot ends with this loop, before the asynchronous hop to the writer. (Not a
        // range-for over std::views::iota: clang 14, which builds the fuzz preset, cannot compile
        // libstdc++ 12's.)
        std::optional<ReadSnapshot> snapshot(api_.registry.snapshot());
        for (std::size_t i = 0; i < items.size(); ++i) {
            Slot& slot = (*slots)[i];
            if (deleting) {
                const json::value& item = items[i];
                const json::value* hv = &item;
                if (const auto* o = item.if_object())
                    hv = o->if_contains("handle");
                if (hv == nullptr || !hv->is_string()) {
                    slot.code = kBusiness;
                    slot.msg = "参数错误：handle必须是字符串";
                    continue;
                }
                slot.handle = hv->get_string();
                std::optional<Handle> h;
                if (auto bad = snms_handle(slot.handle, h, &who, *snapshot, slot.code, &memo)) {
                    slot.msg = *bad;
                    continue;
                }
                slot.op = static_cast<std::ptrdiff_t>(batch.ops.size());
                batch.ops.push_back(DeleteRecord{std::move(*h)});
                continue;
            }
            if (i < sizes.size() && sizes[i] > options_.max_record_bytes) {
                if (const auto* o = items[i].if_object())
                    if (const auto* hv = o->if_contains("handle"); hv && hv->is_string())
                        slot.handle = hv->get_string();
                slot.code = kBusiness;
                slot.msg = "记录过大：" +
                           node::record_too_large(sizes[i], options_.max_record_bytes).message;
                continue;
            }
            auto p = prepare(*snapshot, who, items[i], *mode, &memo);
            slot.handle = p.handle;
            if (!p.op) {
                slot.code = p.status;
                slot.msg = std::move(p.message);
                continue;
            }
            slot.op = static_cast<std::ptrdiff_t>(batch.ops.size());
            batch.ops.push_back(std::move(*p.op));
        }
        snapshot.reset();
        auto shared = std::make_shared<Request>(std::move(req));
        auto finish = [shared, responder, slots, deleting, creating](const BatchResult* results) {
            json::array data;
            std::size_t failed = 0;
            for (auto& slot : *slots) {
                if (slot.op >= 0) {
                    const OpResult& r = (*results)[static_cast<std::size_t>(slot.op)];
                    slot.code = record_ok(r, creating) ? kOk : kBusiness;
                    slot.msg = record_message_zh(r, creating);
                }
                failed += slot.code != kOk;
                json::object o{{"handle", slot.handle}};
                if (deleting)
                    o["code"] = slot.code;
                o["msg"] = slot.msg;
                data.push_back(std::move(o));
            }
            const std::string message = "成功" + std::to_string(slots->size() - failed) +
                                        "条，失败" + std::to_string(failed) + "条";
            responder.send(envelope(*shared, kOk, message, std::move(data)));
        };
        if (batch.ops.empty())
            return finish(nullptr);
        api_.registry.submit(std::move(batch), [finish](BatchResult results) { finish(&results); });
    }
};

void IdentityRoutes::register_routes(Router& router) {
    using V = http::verb;
    router.add(V::post, "/identity/token",
               [this](const Request& req, RequestContext& ctx) { return token(req, ctx, false); });
    // snms.token_v1 = false switches the v1 login off: 404 (registered anyway, so that the
    // catch-all GET /{handle...} route does not turn it into a 405).
    router.add(V::post, "/identity/token/v1", [this](const Request& req, RequestContext& ctx) {
        if (!options_.token_v1) {
            Response r = envelope(req, kBusiness, "token/v1登录接口已关闭");
            r.result(http::status::not_found);
            return r;
        }
        return token(req, ctx, true);
    });
    router.add(V::get, "/identityv2/data/detail",
               [this](const Request& req, RequestContext& ctx) { return detail(req, ctx); });
    router.add_async(V::post, "/identityv2/data", [this](Request&& req, Responder r) {
        write_one(std::move(req), std::move(r), PutMode::create);
    });
    router.add_async(V::put, "/identityv2/data", [this](Request&& req, Responder r) {
        write_one(std::move(req), std::move(r), PutMode::replace);
    });
    router.add_async(V::delete_, "/identityv2/data", [this](Request&& req, Responder r) {
        delete_one(std::move(req), std::move(r));
    });
    // Batches of up to max_batch records need more than limits.max_body_bytes.
    const RouteOptions batch_body{options_.max_batch_body_bytes};
    router.add_async(
        V::post, "/identityv2/data/batchCreate",
        [this](Request&& req, Responder r) {
            batch(std::move(req), std::move(r), PutMode::create);
        },
        batch_body);
    router.add_async(
        V::put, "/identityv2/data/batchUpdate",
        [this](Request&& req, Responder r) {
            batch(std::move(req), std::move(r), PutMode::replace);
        },
        batch_body);
    router.add_async(
        V::delete_, "/identityv2/data/batchDelete",
        [this](Request&& req, Responder r) { batch(std::move(req), std::move(r), std::nullopt); },
        batch_body);
    router.add_async(
        V::delete_, "/api/v1/accounts/{user}/tokens",
        [this](Request&& req, Responder r) { revoke_tokens(std::move(req), std::move(r)); });
}

std::unique_ptr<RouteFamily> make_identity_routes(ApiContext& api, SnmsOptions options) {
    return std::make_unique<IdentityRoutes>(api, std::move(options));
}

} // namespace idnode::resolver::api::snms
