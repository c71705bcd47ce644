#include "api/families.hpp"
#include "api/snms/answers.hpp"
#include "codec.hpp"
#include "idnode/node/policy.hpp"
#include "idnode/node/records.hpp"
#include "idnode/registry/admin.hpp"
#include "idnode/registry/template.hpp"

#include <boost/json.hpp>

#include <algorithm>
#include <map>

namespace idnode::resolver::api::snms {
namespace json = boost::json;
using namespace registry;
using node::Principal;

class TemplateRoutes final : public SnmsFamily {
    using SnmsFamily::SnmsFamily;
    void register_routes(Router& router) override;

    // ---- templates --------------------------------------------------------------------------

    /// May `who` read (or write) the templates of `prefix`, and is the prefix allocated here?
    static std::optional<ApiOutcome> template_access(const ReadSnapshot& snapshot,
                                                     const Principal& who,
                                                     const std::string& prefix_key,
                                                     std::string_view prefix, bool write) {
        auto refusal =
            node::access_refusal(snapshot, who, prefix_key, prefix, node::Subject::templates,
                                 write ? node::Access::write : node::Access::read);
        if (!refusal)
            return std::nullopt;
        return ApiOutcome{refusal->outcome, refusal->message,
                          std::string(refusal->text(node::Language::zh)), nullptr};
    }

    ApiOutcome template_get(const Principal& who, const std::string& prefix,
                            const std::string& version) {
        auto key = template_key(prefix, version);
        if (!key)
            return ApiOutcome{Kind::invalid, key.error().message,
                              "参数错误：" + key.error().message, nullptr};
        auto snapshot = api_.registry.snapshot();
        const std::string prefix_key = key->substr(0, key->find('/'));
        if (auto refusal = template_access(snapshot, who, prefix_key, prefix, false))
            return *refusal;
        auto t = node::load_template(snapshot, prefix, version);
        if (!t)
            return outcome_of(t.code(), t.error().message, "模板不存在");
        auto o = template_to_json(*t);
        o["usage"] = snapshot.template_usage(*key);
        return ApiOutcome{Kind::ok, {}, {}, std::move(o)};
    }

    ApiOutcome template_list(const Principal& who, const std::string& prefix) {
        if (who.anonymous())
            return ApiOutcome{Kind::unauthorized, "authentication is needed", "未登录或token无效",
                              nullptr};
        std::string filter;
        if (!prefix.empty()) {
            auto folded = parse_prefix(prefix);
            if (!folded)
                return ApiOutcome{Kind::invalid, folded.error().message,
                                  "参数错误：" + folded.error().message, nullptr};
            filter = *folded + "/";
        }
        json::array out;
        auto snapshot = api_.registry.snapshot();
        snapshot.for_each_entry(
            Table::templates, [&](const std::string& key, const std::string& bytes) {
                if (!filter.empty() && key.compare(0, filter.size(), filter) != 0)
                    return;
                if (!node::may_read_private(snapshot, who, key.substr(0, key.find('/'))))
                    return;
                if (auto t = decode_template(bytes)) {
                    auto o = template_to_json(*t);
                    o["usage"] = snapshot.template_usage(key);
                    out.push_back(std::move(o));
                }
            });
        return ApiOutcome{Kind::ok, {}, {}, json::object{{"templates", std::move(out)}}};
    }

    /// Creates (`create`) or updates a template from a document; `done` gets the outcome (on the
    /// writer thread when a write happened).
    void template_write(const Principal& who, const json::value& doc, bool create,
                        const std::string& path_prefix, const std::string& path_version,
                        std::function<void(ApiOutcome)> done) {
        auto parsed = template_from_json(doc);
        if (!parsed)
            return done(ApiOutcome{Kind::invalid, parsed.error().message,
                                   "模板不合法：" + parsed.error().message, nullptr});
        Template t = std::move(parsed).value();
        if (!path_prefix.empty()) {
            if ((!t.prefix.empty() && !equals_folded(t.prefix, path_prefix)) ||
                (!t.version.empty() && t.version != path_version)) {
                return done(ApiOutcome{Kind::invalid,
                                       "prefix and version in the body differ from the path",
                                       "模板不合法：前缀或版本与路径不一致", nullptr});
            }
            t.prefix = path_prefix;
            t.version = path_version;
        }
        if (Status st = validate_template(t); !st)
            return done(ApiOutcome{Kind::invalid, st.error().message,
                                   "模板不合法：" + st.error().message, nullptr});
        const std::string key = template_key(t.prefix, t.version).value();
        const std::string prefix_key = key.substr(0, key.find('/'));
        auto snapshot = api_.registry.snapshot();
        if (auto refusal = template_access(snapshot, who, prefix_key, t.prefix, true))
            return done(*refusal);
        const auto now = node::unix_now();
        t.created = t.updated = now;
        if (!create) {
            auto stored = node::load_template(snapshot, t.prefix, t.version);
            if (!stored)
                return done(outcome_of(stored.code(), stored.error().message, "模板不存在"));
            if (Status st = check_template_update(*stored, t); !st)
                return done(ApiOutcome{Kind::invalid, st.error().message,
                                       "模板不合法：" + st.error().message, nullptr});
            t.created = stored->created;
            t.prefix = stored->prefix;
        }
        WriteBatch batch;
        batch.account = who.username;
        batch.ops.push_back(PutEntry{Table::templates, key, encode_template(t),
                                     create ? PutMode::create : PutMode::replace});
        api_.registry.submit(std::move(batch), [t, create, done](BatchResult results) {
            const OpResult& r = results.front();
            if (r.ok() && !(create && r.outcome == Outcome::unchanged))
                return done(
                    ApiOutcome{create ? Kind::created : Kind::ok, {}, {}, template_to_json(t)});
            if (r.outcome == Outcome::unchanged || r.error.code == Errc::already_exists)
                return done(
                    ApiOutcome{Kind::conflict,
                               "template " + t.prefix + " version " + t.version + " already exists",
                               "模板已存在", nullptr});
            done(outcome_of(r.error.code, r.error.message,
                            r.error.code == Errc::not_found ? "模板不存在" : r.error.message));
        });
    }

    void template_delete(const Principal& who, const std::string& prefix,
                         const std::string& version, std::function<void(ApiOutcome)> done) {
        auto key = template_key(prefix, version);
        if (!key)
            return done(ApiOutcome{Kind::invalid, key.error().message,
                                   "参数错误：" + key.error().message, nullptr});
        const std::string prefix_key = key->substr(0, key->find('/'));
        if (auto refusal = template_access(api_.registry.snapshot(), who, prefix_key, prefix, true))
            return done(*refusal);
        WriteBatch batch;
        batch.account = who.username;
        batch.ops.push_back(DeleteEntry{Table::templates, *key});
        api_.registry.submit(std::move(batch), [done](BatchResult results) {
            const OpResult& r = results.front();
            if (r.ok())
                return done(ApiOutcome{Kind::ok, {}, {}, json::object{{"deleted", true}}});
            if (r.error.code == Errc::in_use)
                return done(ApiOutcome{Kind::in_use, r.error.message,
                                       "模板正在被标识使用，不能删除（" + r.error.message + "）",
                                       nullptr});
            done(outcome_of(r.error.code, r.error.message,
                            r.error.code == Errc::not_found ? "模板不存在" : r.error.message));
        });
    }

    // ---- native template routes ---------------------------------------------------------------

    struct PathKey {
        std::string prefix, version;
        bool ok = false;
    };
    static PathKey path_key(const RequestContext& ctx) {
        auto p = percent_decode(ctx.param("prefix"));
        auto v = percent_decode(ctx.param("version"));
        if (!p || !v)
            return {};
        return {*p, *v, true};
    }

    Response native_list(const Request& req, RequestContext& ctx) {
        Call call;
        if (auto r = begin(api_, req, ctx, call, true))
            return native_answer(req, std::move(*r));
        return native_answer(req, template_list(call.who, query_param(req, "prefix")));
    }

    Response native_get(const Request& req, RequestContext& ctx) {
        Call call;
        if (auto r = begin(api_, req, ctx, call, true))
            return native_answer(req, std::move(*r));
        auto k = path_key(ctx);
        if (!k.ok)
            return error_response(req, http::status::bad_request, "invalid_value",
                                  "malformed percent-encoding in the path");
        return native_answer(req, template_get(call.who, k.prefix, k.version));
    }

    void native_write(Request&& req, Responder responder, bool create) {
        Call call;
        if (auto r = begin(api_, req, responder.context(), call, true, Body::any))
            return responder.send(native_answer(req, std::move(*r)));
        // POST /api/v1/templates?prefix=P loads a prefix-less document (conf/templates/*.json)
        // under P.
        if (const std::string qp = query_param(req, "prefix"); create && !qp.empty()) {
            auto* o = call.body.if_object();
            const auto* given = o ? o->if_contains("prefix") : nullptr;
            if (o && given && !(given->is_string() && equals_folded(given->get_string(), qp)))
                return responder.send(error_response(req, http::status::bad_request,
                                                     "invalid_value",
                                                     "prefix in the body differs from ?prefix="));
            if (o)
                (*o)["prefix"] = qp;
        }
        PathKey k;
        if (!create) {
            k = path_key(responder.context());
            if (!k.ok)
                return responder.send(error_response(req, http::status::bad_request,
                                                     "invalid_value",
                                                     "malformed percent-encoding in the path"));
        }
        auto shared = std::make_shared<Request>(std::move(req));
        template_write(call.who, call.body, create, k.prefix, k.version,
                       [shared, responder](ApiOutcome o) {
                           responder.send(native_answer(*shared, std::move(o)));
                       });
    }

    void native_delete(Request&& req, Responder responder) {
        Call call;
        if (auto r = begin(api_, req, responder.context(), call, true))
            return responder.send(native_answer(req, std::move(*r)));
        auto k = path_key(responder.context());
        if (!k.ok)
            return responder.send(error_response(req, http::status::bad_request, "invalid_value",
                                                 "malformed percent-encoding in the path"));
        auto shared = std::make_shared<Request>(std::move(req));
        template_delete(call.who, k.prefix, k.version, [shared, responder](ApiOutcome o) {
            if (o.kind == Kind::ok) {
                Response res{http::status::no_content, shared->version()};
                res.keep_alive(shared->keep_alive());
                res.prepare_payload();
                return responder.send(std::move(res));
            }
            responder.send(native_answer(*shared, std::move(o)));
        });
    }

    /// DELETE /api/v1/accounts/{user}/tokens[?keys=true]: bumps the account's token generation,
    /// which invalidates every login token issued to it, and with keys=true also deletes every
    /// API key of it (admin or the account itself).
    // ---- SNMS: templates ------------------------------------------------------------------------

    Response snms_template_get(const Request& req, RequestContext& ctx) {
        Call call;
        if (auto r = begin(api_, req, ctx, call, true))
            return snms_answer(req, std::move(*r));
        const Principal& who = call.who;
        const std::string prefix = query_param(req, "prefix");
        const std::string version = query_param(req, "version");
        if (prefix.empty())
            return envelope(req, kBusiness, "参数错误：缺少prefix");
        if (version.empty()) {
            auto o = template_list(who, prefix);
            if (o.kind == Kind::ok)
                o.data = std::move(o.data.get_object()["templates"]);
            return snms_answer(req, std::move(o));
        }
        return snms_answer(req, template_get(who, prefix, version));
    }

    void snms_template_write(Request&& req, Responder responder, bool create) {
        Call call;
        if (auto r = begin(api_, req, responder.context(), call, true, Body::any))
            return responder.send(snms_answer(req, std::move(*r)));
        auto shared = std::make_shared<Request>(std::move(req));
        template_write(call.who, call.body, create, {}, {}, [shared, responder](ApiOutcome o) {
            responder.send(snms_answer(*shared, std::move(o)));
        });
    }

    void snms_template_delete(Request&& req, Responder responder) {
        Call call;
        if (auto r = begin(api_, req, responder.context(), call, true))
            return responder.send(snms_answer(req, std::move(*r)));
        std::string prefix = query_param(req, "prefix"), version = query_param(req, "version");
        if (prefix.empty() || version.empty())
            body_strings(req, {{"prefix", &prefix}, {"version", &version}});
        if (prefix.empty() || version.empty())
            return responder.send(envelope(req, kBusiness, "参数错误：需要prefix和version"));
        auto shared = std::make_shared<Request>(std::move(req));
        template_delete(call.who, prefix, version, [shared, responder](ApiOutcome o) {
            responder.send(snms_answer(*shared, std::move(o)));
        });
    }
};

void TemplateRoutes::register_routes(Router& router) {
    using V = http::verb;
    for (const char* base : {"/snms/api/v5/template", "/snms/api/v3/template"}) {
        router.add(V::get, base, [this](const Request& req, RequestContext& ctx) {
            return snms_template_get(req, ctx);
        });
        router.add_async(V::post, base, [this](Request&& req, Responder r) {
            snms_template_write(std::move(req), std::move(r), true);
        });
        router.add_async(V::put, base, [this](Request&& req, Responder r) {
            snms_template_write(std::move(req), std::move(r), false);
        });
        router.add_async(V::delete_, base, [this](Request&& req, Responder r) {
            snms_template_delete(std::move(req), std::move(r));
        });
    }

    router.add(V::get, "/api/v1/templates",
               [this](const Request& req, RequestContext& ctx) { return native_list(req, ctx); });
    router.add_async(V::post, "/api/v1/templates", [this](Request&& req, Responder r) {
        native_write(std::move(req), std::move(r), true);
    });
    router.add(V::get, "/api/v1/templates/{prefix}/{version}",
               [this](const Request& req, RequestContext& ctx) { return native_get(req, ctx); });
    router.add_async(
        V::put, "/api/v1/templates/{prefix}/{version}",
        [this](Request&& req, Responder r) { native_write(std::move(req), std::move(r), false); });
    router.add_async(
        V::delete_, "/api/v1/templates/{prefix}/{version}",
        [this](Request&& req, Responder r) { native_delete(std::move(req), std::move(r)); });
}

std::unique_ptr<RouteFamily> make_template_routes(ApiContext& api, SnmsOptions options) {
    return std::make_unique<TemplateRoutes>(api, std::move(options));
}

} // namespace idnode::resolver::api::snms
