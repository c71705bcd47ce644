#include "api/families.hpp"

#include "api/handle_rest/codes.hpp"
#include "codec.hpp"
#include "idnode/node/policy.hpp"
#include "idnode/node/records.hpp"
#include "idnode/node/resolution.hpp"

#include <boost/json.hpp>

#include <algorithm>
#include <unordered_map>

namespace idnode::resolver::api::native {
namespace json = boost::json;
namespace rc = handle::rc;
using namespace registry;
using node::Principal;

namespace {
constexpr std::size_t kMaxBatchResolve = 1000; // handles per POST /api/v1/resolve
// The body of a POST /api/v1/resolve answer stops growing past this: later records are answered
// RC 3 "ask again" (the first record is always answered, whatever its size), so that a small
// request for large records cannot make the node build and send an answer of any size.
constexpr std::size_t kMaxResolveAnswerBytes = 4 * 1024 * 1024;
} // namespace

class RecordRoutes final : public RouteFamily {
    using RouteFamily::RouteFamily;
    void register_routes(Router& router) override;

    std::unique_ptr<BodyConsumer> bulk(const Request& req,
                                       const std::shared_ptr<StreamChannel>& channel) {
        RequestContext& ctx = channel->context();
        auto refuse = [&](http::status status, std::string_view code, std::string_view message) {
            channel->send(error_response(req, status, code, message));
            return std::unique_ptr<BodyConsumer>{};
        };
        auto query = parse_query(req.target());
        if (!query)
            return refuse(http::status::bad_request, "invalid_query", "malformed query string");
        const Query q{std::move(*query)};
        BulkOptions options;
        options.handle_limits = api_.options.handle_limits;
        options.max_line_bytes = api_.options.max_record_bytes;
        const std::string mode = q.get("mode", "create");
        if (mode == "create") {
            options.mode = PutMode::create;
        } else if (mode == "upsert" || mode == "replace") {
            options.mode = PutMode::upsert; // docs/api.md#bulk: replace creates a missing record
        } else {
            return refuse(http::status::bad_request, "invalid_query",
                          "mode must be create, upsert or replace");
        }
        const std::string results = q.get("results", "all");
        if (results != "all" && results != "errors")
            return refuse(http::status::bad_request, "invalid_query",
                          "results must be all or errors");
        options.errors_only = results == "errors";

        Principal who;
        if (auto r = authenticate(api_, req, ctx, who, ApiFamily::native)) {
            channel->send(std::move(*r));
            return nullptr;
        }
        if (who.anonymous())
            return refuse(http::status::unauthorized, "unauthorized",
                          "authentication is needed to write");
        if (!who.is_admin() && who.role != Role::enterprise)
            return refuse(http::status::forbidden, "forbidden",
                          "account " + who.username + " may not register identifiers");

        std::string key;
        if (const auto header = req["Idempotency-Key"]; !header.empty()) {
            if (header.size() > 255)
                return refuse(http::status::bad_request, "invalid_idempotency_key",
                              "Idempotency-Key must be at most 255 bytes");
            key = who.username;
            key += '\0';
            key.append(header.data(), header.size());
            std::string replay;
            switch (api_.idempotency.claim(key, replay)) {
            case IdempotencyStore::Claim::fresh:
                break;
            case IdempotencyStore::Claim::in_progress:
                return refuse(http::status::conflict, "idempotency_key_in_use",
                              "an upload with this Idempotency-Key is still running");
            case IdempotencyStore::Claim::done: {
                Response r{http::status::ok, req.version()};
                r.set(http::field::content_type, "application/x-ndjson");
                r.set("Idempotent-Replayed", "true");
                r.body() = std::move(replay);
                channel->send(std::move(r));
                return nullptr;
            }
            }
        }

        // Prefix decisions are cached for one group (a batch) of the upload and made again for
        // the next one, so a suspension takes effect within a group; bounded by the prefixes seen.
        // The account is read again with them: one disabled, deleted or deprived of a prefix
        // meanwhile loses those rights from the next group on too.
        auto decisions =
            std::make_shared<std::unordered_map<std::string, std::optional<LineError>>>();
        struct Rights {
            Principal who;
            bool stale = false;
            std::optional<LineError> refusal; // the account may no longer write at all
        };
        auto rights = std::make_shared<Rights>(Rights{who, false, std::nullopt});
        options.on_group_closed = [decisions, rights] {
            decisions->clear();
            rights->stale = true;
        };
        // Templates are cached for the upload too (items are only ever added or disabled).
        auto templates = std::make_shared<node::TemplateCache>();
        auto authorise = [this, rights, decisions](const Handle& h) -> std::optional<LineError> {
            if (rights->stale) {
                rights->stale = false;
                if (auto reason = api_.auth.recheck(rights->who))
                    rights->refusal = LineError{"unauthorized", std::move(*reason)};
            }
            if (rights->refusal)
                return rights->refusal;
            const Principal& who = rights->who;
            const std::string prefix(h.prefix_key());
            if (auto it = decisions->find(prefix); it != decisions->end())
                return it->second;
            std::optional<LineError> decision;
            if (!api_.homing.homes(prefix)) {
                decision = LineError{"not_homed", not_homed_message(h.prefix())};
            } else if (auto refusal = node::write_refusal(api_.registry.snapshot(), who, h)) {
                decision = LineError{std::string(refusal->code()), std::move(refusal->message)};
            }
            if (decisions->size() > 4096)
                decisions->clear();
            decisions->emplace(prefix, decision);
            return decision;
        };
        auto check = [this, authorise,
                      templates](const Handle& h,
                                 std::vector<HandleValue>& values) -> std::optional<LineError> {
            if (auto refusal = authorise(h))
                return refusal;
            // The shared write step (node/records.hpp), only for records that name a template:
            // free-form records have nothing to prepare, and stay on the fast path.
            if (std::none_of(values.begin(), values.end(), [](const HandleValue& v) {
                    return v.index == registry::kIndexTemplate;
                }))
                return std::nullopt;
            if (templates->size() > 256)
                templates->clear();
            auto prepared = node::prepare_record(api_.registry.snapshot(), h, std::nullopt,
                                                 std::move(values), false, templates.get());
            if (!prepared.ok()) {
                return LineError{prepared.error->code == Errc::not_found ? "template_not_found"
                                                                         : "invalid_value",
                                 prepared.message(false)};
            }
            values = std::move(prepared.values);
            return std::nullopt;
        };
        // Never blocks this I/O thread when the writer's queue is full (bulk.hpp).
        auto submit = [this](WriteBatch& batch, Completion& done, std::function<void()> on_space) {
            return api_.registry.try_submit(batch, done, std::move(on_space));
        };
        BulkLineObserver observer;
        if (api_.bulk_lines != nullptr) {
            observer = [family = api_.bulk_lines](const char* status, std::uint64_t n) {
                family->with({status}).inc(n);
            };
        }
        return BulkUpload::start(std::move(options), who.username, channel, std::move(check),
                                 std::move(submit), std::move(observer), &api_.idempotency,
                                 std::move(key));
    }

    Response batch_resolve(const Request& req, RequestContext& ctx) {
        Principal who;
        if (auto r = authenticate(api_, req, ctx, who, ApiFamily::native))
            return *r;
        auto body = parse_json_body(req.body());
        if (!body)
            return error_response(req, http::status::bad_request, "invalid_json",
                                  body.error().message);
        const auto* handles = body->if_array();
        if (handles == nullptr)
            return error_response(req, http::status::bad_request, "invalid_json",
                                  "body must be a JSON array of handles");
        if (handles->size() > kMaxBatchResolve)
            return error_response(req, http::status::bad_request, "too_many_handles",
                                  "at most " + std::to_string(kMaxBatchResolve) +
                                      " handles per request");
        for (std::size_t i = 0; i < handles->size(); ++i)
            if (!(*handles)[i].is_string())
                return error_response(req, http::status::bad_request, "invalid_json",
                                      "element " + std::to_string(i) + " is not a string");

        // Every handle costs one request's worth of the caller's rate (the request itself paid
        // for the first): per account when authenticated, per address otherwise.
        if (const double extra = static_cast<double>(handles->size()) - 1; extra > 0) {
            std::optional<std::chrono::seconds> wait;
            if (!who.anonymous()) {
                wait = api_.account_limit.charge(who, extra);
            } else if (ctx.ip_limiter != nullptr) {
                const auto d = ctx.ip_limiter->charge(ctx.client_ip, extra);
                if (!d.allowed)
                    wait = std::chrono::ceil<std::chrono::seconds>(d.retry_after);
            }
            if (wait) {
                Response r =
                    refusal_response(req, Refusal::rate_limited,
                                     "a batch of " + std::to_string(handles->size()) +
                                         " handles exceeds the rate limit of this " +
                                         (who.anonymous() ? "address" : "account") +
                                         " (each handle counts as one request); retry after " +
                                         std::to_string(wait->count()) + " s");
                r.set(http::field::retry_after, std::to_string(wait->count()));
                return r;
            }
        }

        // Serialized entry by entry into one string bounded by kMaxResolveAnswerBytes (plus one
        // record): never a JSON document of the whole answer. A handle asked again in the same
        // request (same registry key) is answered once; its later entries say {"sameAs": i}.
        std::string out = "[";
        std::unordered_map<std::string, std::size_t> first_of; // handle key -> entry index
        std::vector<int> codes(handles->size(), 0);            // responseCode of each entry
        std::size_t answered = 0;                              // records answered with their values
        auto snapshot = api_.registry.snapshot(); // one consistent view for the whole batch
        for (std::size_t i = 0; i < handles->size(); ++i) {
            const std::string_view spelling = (*handles)[i].get_string();
            out += i == 0 ? "{\"handle\":" : ",{\"handle\":";
            append_json_string(out, echo_safe(spelling));
            auto finish = [&](int rc, std::string_view message) {
                codes[i] = rc;
                out += ",\"responseCode\":" + std::to_string(rc);
                if (!message.empty()) {
                    out += ",\"message\":";
                    append_json_string(out, message);
                }
                out += '}';
            };
            auto h = parse_handle(spelling, api_.options.handle_limits);
            if (!h) {
                api_.resolutions.count_unresolved();
                finish(rc::kInvalidHandle, echo_safe(h.error().message));
                continue;
            }
            if (!api_.homing.homes(h->prefix_key())) {
                api_.resolutions.count_unresolved();
                finish(rc::kServerNotResponsible, not_homed_message(echo_safe(h->prefix())));
                continue;
            }
            if (auto [it, fresh] = first_of.try_emplace(h->key(), i); !fresh) {
                codes[i] = codes[it->second];
                if (codes[i] != rc::kServerTooBusy)
                    api_.resolutions.count(*h, codes[i] == rc::kSuccess);
                out += ",\"responseCode\":" + std::to_string(codes[i]) +
                       ",\"sameAs\":" + std::to_string(it->second) + "}";
                continue;
            }
            const bool include_private = node::may_read_private(snapshot, who, h->prefix_key());
            const std::size_t mark = out.size();
            bool over_budget = false;
            auto st = node::visit_resolvable(snapshot, *h, [&](const RecordView& view) {
                // The stored size is a cheap lower bound of the JSON: skip the work when even
                // that cannot fit.
                if (answered > 0 && mark + view.bytes().size() > kMaxResolveAnswerBytes) {
                    over_budget = true;
                    return;
                }
                out += ",\"responseCode\":1,\"values\":[";
                bool first = true;
                for (const ValueView& v : view) {
                    if (include_private || v.permissions.public_read()) {
                        if (!first)
                            out += ',';
                        first = false;
                        append_value_json(out, v);
                    }
                }
                out += "]}";
                if (answered > 0 && out.size() > kMaxResolveAnswerBytes) {
                    out.resize(mark);
                    over_budget = true;
                }
            });
            if (over_budget) {
                finish(rc::kServerTooBusy,
                       "not resolved: this answer reached its limit of " +
                           std::to_string(kMaxResolveAnswerBytes / (1024 * 1024)) +
                           " MiB; ask again for the handles answered 3");
            } else if (st) {
                api_.resolutions.count(*h, true);
                codes[i] = rc::kSuccess;
                ++answered;
            } else {
                api_.resolutions.count(*h, false);
                finish(handle_rest::wire_code(st.code()).rc,
                       st.code() != Errc::not_found ? st.error().message : std::string());
            }
        }
        out += ']';
        return json_response(req, http::status::ok, std::move(out));
    }

    Response stats(const Request& req, RequestContext& ctx) {
        Principal who;
        if (auto r = authenticate(api_, req, ctx, who, ApiFamily::native))
            return *r;
        if (who.anonymous())
            return error_response(req, http::status::unauthorized, "unauthorized",
                                  "authentication is needed for statistics");
        auto snapshot = api_.registry.snapshot();
        const std::int64_t now = node::unix_now();
        json::array prefixes;
        std::uint64_t identifiers = 0, today = 0;
        for (const auto& [prefix, count] : snapshot.prefix_counts()) {
            if (!who.is_admin() &&
                std::find(who.prefixes.begin(), who.prefixes.end(), prefix) == who.prefixes.end())
                continue;
            prefixes.push_back(json::object{{"prefix", prefix}, {"identifiers", count}});
            identifiers += count;
            if (!who.is_admin())
                today += snapshot.registrations(now, prefix);
        }
        if (who.is_admin()) {
            identifiers = snapshot.count_all();
            today = snapshot.registrations(now);
        }
        // An admin sees the node's resolutions; anyone else those of records under the prefixes
        // it owns or was granted (the same ownership rule as for private values).
        const std::uint64_t resolved =
            who.is_admin()
                ? api_.resolutions.counter().total(now)
                : api_.resolutions.counter().total_where(now, [&](const std::string& prefix) {
                      return node::may_read_private(snapshot, who, prefix);
                  });
        json::object body{{"identifiers", identifiers},
                          {"prefixes", std::move(prefixes)},
                          {"registrations_today", today},
                          {"resolutions_today", resolved}};
        return json_response(req, http::status::ok, json::serialize(body));
    }
};

void RecordRoutes::register_routes(Router& router) {
    using V = http::verb;
    RecordRoutes* self = this;
    router.add_streaming(V::post, "/api/v1/bulk",
                         [self](const Request& req, const std::shared_ptr<StreamChannel>& channel) {
                             return self->bulk(req, channel);
                         });
    // Sized for its documented maximum: kMaxBatchResolve handles of the longest allowed length,
    // each quoted and escaped (a \u escape of a non-ASCII character is at most 3 times its UTF-8
    // bytes), with separators.
    const std::size_t longest =
        std::min(api_.options.handle_limits.max_length, registry::kHandleProtocolMaxLength);
    router.add(V::post, "/api/v1/resolve", bind_sync(self, &RecordRoutes::batch_resolve),
               RouteOptions{kMaxBatchResolve * (3 * longest + 3) + 2});
    router.add(V::get, "/api/v1/stats", bind_sync(self, &RecordRoutes::stats));
}

std::unique_ptr<RouteFamily> make_record_routes(ApiContext& api) {
    return std::make_unique<RecordRoutes>(api);
}

} // namespace idnode::resolver::api::native
