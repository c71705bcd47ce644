#include "idnode/resolver/node_api.hpp"

#include "auth.hpp"
#include "bulk.hpp"
#include "codec.hpp"
#include "html_pages.hpp"
#include "idnode/registry/admin.hpp"
#include "idnode/resolver/metrics.hpp"
#include "idnode/resolver/qr.hpp"
#include "idnode/resolver/rate_limiter.hpp"
#include "record_write.hpp"
#include "resolution_counter.hpp"
#include "snms_api.hpp"

#include <boost/json.hpp>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <ctime>
#include <mutex>
#include <unordered_map>

namespace idnode::resolver {
namespace json = boost::json;
using namespace registry;
using api::Principal;

namespace {

// ---- the one table from outcomes to HTTP ------------------------------------------------------

// Handle response codes (DESIGN §5.1).
constexpr std::size_t kMaxBatchResolve = 1000; // handles per POST /api/v1/resolve
// The body of a POST /api/v1/resolve answer stops growing past this: later records are answered
// RC 3 "ask again" (the first record is always answered, whatever its size), so that a small
// request for large records cannot make the node build and send an answer of any size.
constexpr std::size_t kMaxResolveAnswerBytes = 4 * 1024 * 1024;

constexpr int kRcSuccess = 1, kRcError = 2, kRcServerBusy = 3, kRcNotFound = 100, kRcExists = 101,
              kRcInvalidHandle = 102, kRcInsufficientPermissions = 400, kRcInvalidAdmin = 401,
              kRcAuthNeeded = 402, kRcNotHomed = 301, kRcInvalidValue = 202;

http::status status_of_rc(int rc) {
    switch (rc) {
    case kRcSuccess:
        return http::status::ok;
    case kRcNotFound:
        return http::status::not_found;
    case kRcExists:
        return http::status::conflict;
    case 201:
        return http::status::conflict;
    case kRcInvalidHandle:
    case kRcInvalidValue:
    case kRcNotHomed:
        return http::status::bad_request;
    case kRcAuthNeeded:
        return http::status::unauthorized;
    case kRcInsufficientPermissions:
    case kRcInvalidAdmin:
        return http::status::forbidden;
    case kRcServerBusy:
        return http::status::service_unavailable;
    default:
        return http::status::internal_server_error;
    }
}

struct Mapped {
    int rc;
    http::status status;
};

Mapped map_errc(Errc e) {
    switch (e) {
    case Errc::not_found:
        return {kRcNotFound, http::status::not_found};
    case Errc::already_exists:
    case Errc::in_use:
        return {kRcExists, http::status::conflict};
    case Errc::invalid_handle:
        return {kRcInvalidHandle, http::status::bad_request};
    case Errc::invalid_value:
    case Errc::too_large:
        return {kRcInvalidValue, http::status::bad_request};
    case Errc::not_homed:
        return {kRcNotHomed, http::status::bad_request};
    case Errc::storage_full:
        return {kRcError, http::status::insufficient_storage};
    case Errc::unavailable:
        return {kRcServerBusy, http::status::service_unavailable};
    default:
        return {kRcError, http::status::internal_server_error};
    }
}

// ---- small helpers ----------------------------------------------------------------------------

std::int64_t unix_now() {
    return std::chrono::duration_cast<std::chrono::seconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

std::string pretty(const json::value& v, int indent = 0) {
    const std::string pad(static_cast<std::size_t>(indent + 2), ' '),
        end_pad(static_cast<std::size_t>(indent), ' ');
    if (const auto* o = v.if_object()) {
        if (o->empty())
            return "{}";
        std::string s = "{\n";
        bool first = true;
        for (const auto& [k, val] : *o) {
            s += (first ? "" : ",\n") + pad + json::serialize(json::string(k)) + ": " +
                 pretty(val, indent + 2);
            first = false;
        }
        return s + "\n" + end_pad + "}";
    }
    if (const auto* a = v.if_array()) {
        if (a->empty())
            return "[]";
        std::string s = "[\n";
        for (std::size_t i = 0; i < a->size(); ++i) {
            s += (i ? ",\n" : "") + pad + pretty((*a)[i], indent + 2);
        }
        return s + "\n" + end_pad + "]";
    }
    return json::serialize(v);
}

struct Query {
    std::vector<std::pair<std::string, std::string>> items;
    bool has(std::string_view name) const {
        return std::any_of(items.begin(), items.end(),
                           [&](const auto& p) { return p.first == name; });
    }
    std::string get(std::string_view name, std::string fallback = {}) const {
        for (const auto& [k, v] : items) {
            if (k == name)
                return v;
        }
        return fallback;
    }
    std::vector<std::string> all(std::string_view name) const {
        std::vector<std::string> out;
        for (const auto& [k, v] : items) {
            if (k == name)
                out.push_back(v);
        }
        return out;
    }
    /// "true"/"1"/present without value -> true.
    bool flag(std::string_view name, bool fallback) const {
        for (const auto& [k, v] : items) {
            if (k == name)
                return v.empty() || v == "true" || v == "1";
        }
        return fallback;
    }
};

bool parse_uint(std::string_view s, std::uint64_t& out) {
    const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
    return ec == std::errc{} && p == s.data() + s.size() && !s.empty();
}

/// Client text echoed in a response: invalid UTF-8 bytes become U+FFFD so that the JSON stays
/// valid (the input itself was rejected, never "fixed").
std::string echo_safe(std::string_view text) {
    std::string out;
    while (!text.empty()) {
        const auto bad = find_invalid_utf8(text);
        out.append(text.substr(0, bad));
        if (bad == std::string_view::npos)
            break;
        out.append("\xEF\xBF\xBD");
        text.remove_prefix(bad + 1);
    }
    return out;
}

Response handle_json(const Request& req, int rc, std::string_view handle, std::string_view message,
                     http::status status) {
    json::object body{{"responseCode", rc}};
    if (!handle.empty())
        body["handle"] = echo_safe(handle);
    if (!message.empty())
        body["message"] = echo_safe(message);
    return json_response(req, status, json::serialize(body));
}

Response handle_error(const Request& req, int rc, std::string_view handle,
                      std::string_view message) {
    return handle_json(req, rc, handle, message, status_of_rc(rc));
}

Response native_error(const Request& req, Errc e, std::string_view message) {
    const auto m = map_errc(e);
    return error_response(req, m.status, errc_name(e), message);
}

/// The Handle proxy's answer for a record with a public URL value.
Response redirect_to(const Request& req, std::string_view location) {
    Response r{http::status::found, req.version()};
    r.set(http::field::location, location);
    r.set(http::field::content_type, "text/plain; charset=utf-8");
    r.keep_alive(req.keep_alive());
    r.body() = "see " + std::string(location) + "\n";
    r.prepare_payload();
    return r;
}

std::string uuid4() {
    std::string hex = random_hex(16);
    hex[12] = '4';
    hex[16] = "89ab"[static_cast<unsigned char>(hex[16]) % 4];
    return hex.substr(0, 8) + "-" + hex.substr(8, 4) + "-" + hex.substr(12, 4) + "-" +
           hex.substr(16, 4) + "-" + hex.substr(20);
}

json::object prefix_json(const PrefixRecord& p) {
    json::object o{{"prefix", p.prefix},
                   {"kind", p.kind == PrefixKind::node ? "node" : "enterprise"},
                   {"status", p.status == PrefixStatus::active ? "active" : "suspended"},
                   {"created", api::iso8601(static_cast<std::uint32_t>(p.created))}};
    if (p.kind == PrefixKind::enterprise) {
        o["enterprise"] = json::object{{"name", p.enterprise.name},
                                       {"credit_code", p.enterprise.credit_code},
                                       {"industry", p.enterprise.industry},
                                       {"contact", p.enterprise.contact}};
    }
    return o;
}

json::object account_json(const Account& a) {
    json::array prefixes;
    for (const auto& p : a.prefixes)
        prefixes.emplace_back(p);
    return json::object{{"username", a.username},
                        {"role", role_name(a.role)},
                        {"prefixes", std::move(prefixes)},
                        {"has_password", !a.password_hash.empty()},
                        {"disabled", a.disabled},
                        {"created", api::iso8601(static_cast<std::uint32_t>(a.created))}};
}

} // namespace

// ------------------------------------------------------------------------------------------------

class NodeApi::Impl {
public:
    Impl(Registry& registry, NodeApiOptions options)
        : registry_(registry), options_(std::move(options)), auth_(registry, api::AuthOptions{}),
          account_limit_(options_.rate_per_account) {
        if (options_.metrics != nullptr) {
            bulk_lines_ = &options_.metrics->counter_family(
                "idnode_bulk_lines_total", "Bulk upload lines answered, by status", {"status"});
        }
        for (const auto& p : options_.homed_prefixes) {
            auto folded = parse_prefix(p);
            if (!folded) {
                throw std::invalid_argument("node.homed_prefixes: " + folded.error().message);
            }
            homed_.push_back(*folded);
        }
        auto snapshot = registry_.snapshot();
        snapshot.for_each_entry(Table::prefixes,
                                [&](const std::string& key, const std::string& bytes) {
                                    auto rec = decode_prefix(bytes);
                                    if (rec && rec->kind == PrefixKind::node) {
                                        homed_.push_back(key);
                                    }
                                });
        api::SnmsOptions snms_options{options_.snms_token_v1,        options_.snms_token_ttl_s,
                                      options_.handle_limits,        2000,
                                      options_.max_batch_body_bytes, options_.max_record_bytes};
        snms_options.resolutions = &resolutions_;
        snms_ = std::make_unique<api::SnmsApi>(
            registry_, auth_, account_limit_,
            [this](std::string_view prefix_key) { return homed(prefix_key); }, snms_options);
    }

    void register_routes(Router& router);
    const std::vector<std::string>& homed() const noexcept { return homed_; }
    void set_public_base_url(std::string url) { options_.public_base_url = std::move(url); }

private:
    // ---- shared steps ---------------------------------------------------------------------------

    bool homed(std::string_view prefix_key) const {
        return std::any_of(homed_.begin(), homed_.end(),
                           [&](const std::string& h) { return prefix_is_under(prefix_key, h); });
    }

    /// Authenticates; on failure returns the response to send.
    std::optional<Response> authenticate(const Request& req, RequestContext& ctx, Principal& who,
                                         bool handle_api) {
        auto outcome = auth_.authenticate(req[http::field::authorization], ctx.client_ip);
        if (!outcome.ok()) {
            if (outcome.status == 429) { // failed logins throttled: the server-level refusal
                Response r = refusal_response(req, Refusal::rate_limited, outcome.message);
                r.set(http::field::retry_after, std::to_string(outcome.retry_after.count()));
                return r;
            }
            Response r = handle_api ? handle_json(req, kRcAuthNeeded, {}, outcome.message,
                                                  http::status::unauthorized)
                                    : error_response(req, http::status::unauthorized,
                                                     "unauthorized", outcome.message);
            r.set(http::field::www_authenticate, "Basic realm=\"idnode\", Bearer");
            return r;
        }
        who = std::move(outcome.principal);
        ctx.account = who.username;
        if (const auto wait = account_limit_.refuse(who)) {
            Response r =
                refusal_response(req, Refusal::rate_limited, "rate limit of this account exceeded");
            r.set(http::field::retry_after, std::to_string(wait->count()));
            return r;
        }
        return std::nullopt;
    }

    /// The handle named by the route's {handle...} parameter, percent-decoded once.
    std::optional<Response> path_handle(const Request& req, const RequestContext& ctx,
                                        std::optional<Handle>& out,
                                        std::string suffix_to_append = {}) {
        auto decoded = percent_decode(ctx.param("handle"));
        if (!decoded) {
            return handle_error(req, kRcInvalidHandle, ctx.param("handle"),
                                "malformed percent-encoding in the handle");
        }
        *decoded += suffix_to_append;
        auto parsed = parse_handle(*decoded, options_.handle_limits);
        if (!parsed) {
            return handle_error(req, kRcInvalidHandle, *decoded, parsed.error().message);
        }
        if (!homed(parsed->prefix_key())) {
            return handle_error(req, kRcNotHomed, *decoded,
                                "prefix " + std::string(parsed->prefix()) +
                                    " is not homed on this node");
        }
        out = std::move(parsed).value();
        return std::nullopt;
    }

    /// Why `who` may not write under the handle's prefix (the Handle RC and a native error
    /// code for bulk lines), or nullopt when the write may go ahead. Shared by PUT and bulk.
    struct WriteRefusal {
        int rc;
        const char* code;
        std::string message;
    };
    std::optional<WriteRefusal> write_refusal(const Principal& who, const Handle& h) const {
        if (who.anonymous())
            return WriteRefusal{kRcAuthNeeded, "unauthorized", "authentication is needed to write"};
        auto snapshot = registry_.snapshot();
        if (!who.may_write(snapshot, h.prefix_key())) {
            return WriteRefusal{kRcInvalidAdmin, "forbidden",
                                "account " + who.username + " may not write under prefix " +
                                    std::string(h.prefix())};
        }
        auto bytes = snapshot.get_entry(Table::prefixes, h.prefix_key());
        if (!bytes) {
            return WriteRefusal{kRcNotFound, "prefix_not_allocated",
                                "prefix " + std::string(h.prefix()) +
                                    " is not allocated on this node"};
        }
        auto rec = decode_prefix(*bytes);
        if (!rec)
            return WriteRefusal{kRcError, "corrupt", rec.error().message};
        if (rec->status == PrefixStatus::suspended) {
            return WriteRefusal{kRcInsufficientPermissions, "prefix_suspended",
                                "prefix " + rec->prefix + " is suspended"};
        }
        if (rec->kind == PrefixKind::node && !who.is_admin()) {
            return WriteRefusal{kRcInvalidAdmin, "forbidden",
                                "only an admin writes under a node prefix"};
        }
        return std::nullopt;
    }

    /// Checks that `who` may write under the handle's prefix and that the prefix is usable.
    std::optional<Response> check_write(const Request& req, const Principal& who, const Handle& h) {
        if (auto refusal = write_refusal(who, h))
            return handle_error(req, refusal->rc, h.spelling(), refusal->message);
        return std::nullopt;
    }

    /// A request body that must be a JSON object; otherwise the 400 to send.
    struct ObjectBody {
        json::value value;
        Response refusal;
        bool ok() const { return value.is_object(); }
    };
    static ObjectBody object_body(const Request& req) {
        auto body = api::parse_json_body(req.body());
        if (body && body->is_object())
            return {std::move(*body), {}};
        return {json::value{},
                error_response(req, http::status::bad_request, "invalid_json",
                               body ? "body must be a JSON object" : body.error().message)};
    }

    void submit(WriteOp op, const std::string& account,
                std::function<Response(const OpResult&)> respond, Responder responder) {
        WriteBatch batch;
        batch.account = account;
        batch.ops.push_back(std::move(op));
        registry_.submit(std::move(batch),
                         [respond = std::move(respond), responder](BatchResult results) {
                             responder.send(respond(results.front()));
                         });
    }

    // ---- bulk, batch resolve, stats (DESIGN §5.3) ---------------------------------------------

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
        api::BulkOptions options;
        options.handle_limits = options_.handle_limits;
        options.max_line_bytes = options_.max_record_bytes;
        const std::string mode = q.get("mode", "create");
        if (mode == "create") {
            options.mode = PutMode::create;
        } else if (mode == "upsert" || mode == "replace") {
            options.mode = PutMode::upsert; // DESIGN: replace on a missing record creates it
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
        if (auto r = authenticate(req, ctx, who, false)) {
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
            switch (idempotency_.claim(key, replay)) {
            case api::IdempotencyStore::Claim::fresh:
                break;
            case api::IdempotencyStore::Claim::in_progress:
                return refuse(http::status::conflict, "idempotency_key_in_use",
                              "an upload with this Idempotency-Key is still running");
            case api::IdempotencyStore::Claim::done: {
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
            std::make_shared<std::unordered_map<std::string, std::optional<api::LineError>>>();
        struct Rights {
            Principal who;
            bool stale = false;
            std::optional<api::LineError> refusal; // the account may no longer write at all
        };
        auto rights = std::make_shared<Rights>(Rights{who, false, std::nullopt});
        options.on_group_closed = [decisions, rights] {
            decisions->clear();
            rights->stale = true;
        };
        // Templates are cached for the upload too (items are only ever added or disabled).
        auto templates = std::make_shared<api::TemplateCache>();
        auto authorise = [this, rights,
                          decisions](const Handle& h) -> std::optional<api::LineError> {
            if (rights->stale) {
                rights->stale = false;
                if (auto reason = auth_.recheck(rights->who))
                    rights->refusal = api::LineError{"unauthorized", std::move(*reason)};
            }
            if (rights->refusal)
                return rights->refusal;
            const Principal& who = rights->who;
            const std::string prefix(h.prefix_key());
            if (auto it = decisions->find(prefix); it != decisions->end())
                return it->second;
            std::optional<api::LineError> decision;
            if (!homed(prefix)) {
                decision = api::LineError{"not_homed", "prefix " + std::string(h.prefix()) +
                                                           " is not homed on this node"};
            } else if (auto refusal = write_refusal(who, h)) {
                decision = api::LineError{refusal->code, std::move(refusal->message)};
            }
            if (decisions->size() > 4096)
                decisions->clear();
            decisions->emplace(prefix, decision);
            return decision;
        };
        auto check = [this, authorise, templates](
                         const Handle& h,
                         std::vector<HandleValue>& values) -> std::optional<api::LineError> {
            if (auto refusal = authorise(h))
                return refusal;
            // The shared write step (record_write.hpp), only for records that name a template:
            // free-form records have nothing to prepare, and stay on the fast path.
            if (std::none_of(values.begin(), values.end(), [](const HandleValue& v) {
                    return v.index == registry::kIndexTemplate;
                }))
                return std::nullopt;
            if (templates->size() > 256)
                templates->clear();
            auto prepared = api::prepare_record(registry_.snapshot(), h, std::nullopt,
                                                std::move(values), false, templates.get());
            if (!prepared.ok()) {
                return api::LineError{prepared.error->code == Errc::not_found ? "template_not_found"
                                                                              : "invalid_value",
                                      prepared.message(false)};
            }
            values = std::move(prepared.values);
            return std::nullopt;
        };
        // Never blocks this I/O thread when the writer's queue is full (bulk.hpp).
        auto submit = [this](WriteBatch& batch, Completion& done, std::function<void()> on_space) {
            return registry_.try_submit(batch, done, std::move(on_space));
        };
        api::BulkLineObserver observer;
        if (bulk_lines_ != nullptr) {
            observer = [family = bulk_lines_](const char* status, std::uint64_t n) {
                family->with({status}).inc(n);
            };
        }
        return api::BulkUpload::start(std::move(options), who.username, channel, std::move(check),
                                      std::move(submit), std::move(observer), &idempotency_,
                                      std::move(key));
    }

    Response batch_resolve(const Request& req, RequestContext& ctx) {
        Principal who;
        if (auto r = authenticate(req, ctx, who, false))
            return *r;
        auto body = api::parse_json_body(req.body());
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
                wait = account_limit_.charge(who, extra);
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
        auto snapshot = registry_.snapshot(); // one consistent view for the whole batch
        for (std::size_t i = 0; i < handles->size(); ++i) {
            const std::string_view spelling = (*handles)[i].get_string();
            out += i == 0 ? "{\"handle\":" : ",{\"handle\":";
            api::append_json_string(out, echo_safe(spelling));
            auto finish = [&](int rc, std::string_view message) {
                codes[i] = rc;
                out += ",\"responseCode\":" + std::to_string(rc);
                if (!message.empty()) {
                    out += ",\"message\":";
                    api::append_json_string(out, message);
                }
                out += '}';
            };
            auto h = parse_handle(spelling, options_.handle_limits);
            if (!h) {
                resolutions_.count(unix_now());
                finish(kRcInvalidHandle, echo_safe(h.error().message));
                continue;
            }
            if (!homed(h->prefix_key())) {
                resolutions_.count(unix_now());
                finish(kRcNotHomed,
                       "prefix " + echo_safe(h->prefix()) + " is not homed on this node");
                continue;
            }
            if (auto [it, fresh] = first_of.try_emplace(h->key(), i); !fresh) {
                codes[i] = codes[it->second];
                if (codes[i] != kRcServerBusy)
                    count_resolution(*h, codes[i] == kRcSuccess);
                out += ",\"responseCode\":" + std::to_string(codes[i]) +
                       ",\"sameAs\":" + std::to_string(it->second) + "}";
                continue;
            }
            const bool include_private = who.may_read_private(snapshot, h->prefix_key());
            const std::size_t mark = out.size();
            bool over_budget = false;
            auto st = snapshot.visit(*h, [&](const RecordView& view) {
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
                        api::append_value_json(out, v);
                    }
                }
                out += "]}";
                if (answered > 0 && out.size() > kMaxResolveAnswerBytes) {
                    out.resize(mark);
                    over_budget = true;
                }
            });
            if (over_budget) {
                finish(kRcServerBusy, "not resolved: this answer reached its limit of " +
                                          std::to_string(kMaxResolveAnswerBytes / (1024 * 1024)) +
                                          " MiB; ask again for the handles answered 3");
            } else if (st) {
                count_resolution(*h, true);
                codes[i] = kRcSuccess;
                ++answered;
            } else {
                count_resolution(*h, false);
                finish(map_errc(st.code()).rc,
                       st.code() != Errc::not_found ? st.error().message : std::string());
            }
        }
        out += ']';
        return json_response(req, http::status::ok, std::move(out));
    }

    Response stats(const Request& req, RequestContext& ctx) {
        Principal who;
        if (auto r = authenticate(req, ctx, who, false))
            return *r;
        if (who.anonymous())
            return error_response(req, http::status::unauthorized, "unauthorized",
                                  "authentication is needed for statistics");
        auto snapshot = registry_.snapshot();
        const std::int64_t now = unix_now();
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
            who.is_admin() ? resolutions_.total(now)
                           : resolutions_.total_where(now, [&](const std::string& prefix) {
                                 return who.may_read_private(snapshot, prefix);
                             });
        json::object body{{"identifiers", identifiers},
                          {"prefixes", std::move(prefixes)},
                          {"registrations_today", today},
                          {"resolutions_today", resolved}};
        return json_response(req, http::status::ok, json::serialize(body));
    }

    /// Counts one HTTPS resolution of `h` by its outcome (found: under the handle's prefix too).
    void count_resolution(const Handle& h, bool found) {
        if (found)
            resolutions_.count_found(unix_now(), h.prefix_key());
        else
            resolutions_.count(unix_now());
    }

    // ---- Handle REST --------------------------------------------------------------------------

    Response get_handle(const Request& req, RequestContext& ctx) {
        if (html::wants_html(req[http::field::accept]))
            return html_resolution(req, ctx, false);
        std::optional<Handle> h;
        if (auto r = path_handle(req, ctx, h))
            return *r;
        Principal who;
        if (auto r = authenticate(req, ctx, who, true))
            return *r;
        auto query = parse_query(req.target());
        if (!query)
            return handle_error(req, kRcInvalidValue, h->spelling(), "malformed query string");
        const Query q{std::move(*query)};
        ValueFilter filter;
        filter.types = q.all("type");
        for (const auto& i : q.all("index")) {
            std::uint64_t n;
            if (!parse_uint(i, n) || n == 0 || n > INT32_MAX) {
                return handle_error(req, kRcInvalidValue, h->spelling(),
                                    "index must be a positive integer");
            }
            filter.indices.push_back(static_cast<std::int32_t>(n));
        }
        auto snapshot = registry_.snapshot();
        const bool include_private = who.may_read_private(snapshot, h->prefix_key());
        const bool want_pretty = q.has("pretty");
        json::array values;  // only for ?pretty
        std::string compact; // the usual case: serialized straight from the stored record
        auto st = snapshot.visit(*h, [&](const RecordView& view) {
            if (!want_pretty) {
                compact.reserve(96 + view.bytes().size() * 2);
                compact += "{\"responseCode\":1,\"handle\":";
                api::append_json_string(compact, h->spelling());
                compact += ",\"values\":[";
            }
            bool first = true;
            for (const ValueView& v : view) {
                if (filter.selects(v.index, v.type) &&
                    (include_private || v.permissions.public_read())) {
                    if (want_pretty) {
                        json::object o;
                        api::value_to_json(o, v);
                        values.push_back(std::move(o));
                    } else {
                        if (!first)
                            compact += ',';
                        first = false;
                        api::append_value_json(compact, v);
                    }
                }
            }
            if (!want_pretty)
                compact += "]}";
        });
        count_resolution(*h, static_cast<bool>(st));
        if (!st) {
            const auto m = map_errc(st.code());
            return handle_json(req, m.rc, h->spelling(),
                               st.code() == Errc::not_found ? "" : st.error().message, m.status);
        }
        if (!want_pretty)
            return json_response(req, http::status::ok, std::move(compact));
        json::object body{
            {"responseCode", kRcSuccess}, {"handle", h->spelling()}, {"values", std::move(values)}};
        return json_response(req, http::status::ok, pretty(body));
    }

    void put_handle(Request&& req, Responder responder) {
        RequestContext& ctx = responder.context();
        auto query = parse_query(req.target());
        if (!query)
            return responder.send(handle_error(req, kRcInvalidValue, {}, "malformed query string"));
        const Query q{std::move(*query)};
        const bool mint = q.flag("mintNewSuffix", false);
        std::optional<Handle> h;
        if (auto r = path_handle(req, ctx, h, mint ? uuid4() : std::string{}))
            return responder.send(*r);
        Principal who;
        if (auto r = authenticate(req, ctx, who, true))
            return responder.send(*r);
        if (auto r = check_write(req, who, *h))
            return responder.send(*r);

        auto body = api::parse_json_body(req.body());
        if (!body)
            return responder.send(
                handle_error(req, kRcInvalidValue, h->spelling(), body.error().message));
        auto values = api::record_values_from_json(*body);
        if (!values)
            return responder.send(
                handle_error(req, kRcInvalidValue, h->spelling(), values.error().message));
        const auto indices = q.all("index");
        // The one shared step (record_write.hpp): template lookup, validation, TEMPLATE value,
        // non-public template items.
        auto prepared = api::prepare_record(registry_.snapshot(), *h, std::nullopt,
                                            std::move(*values), !indices.empty());
        if (!prepared.ok()) {
            const auto m = map_errc(prepared.error->code);
            return responder.send(
                handle_json(req, m.rc == kRcNotFound ? kRcInvalidValue : m.rc, h->spelling(),
                            prepared.message(false),
                            m.rc == kRcNotFound ? http::status::bad_request : m.status));
        }
        values = std::move(prepared.values);
        const bool overwrite = q.flag("overwrite", true);
        WriteOp op;
        if (!indices.empty()) {
            std::vector<HandleValue> selected;
            for (const auto& i : indices) {
                std::uint64_t n;
                if (!parse_uint(i, n) || n == 0 || n > INT32_MAX) {
                    return responder.send(handle_error(req, kRcInvalidValue, h->spelling(),
                                                       "index must be a positive integer"));
                }
                auto it = std::find_if(values->begin(), values->end(), [&](const HandleValue& v) {
                    return v.index == static_cast<std::int32_t>(n);
                });
                if (it == values->end()) {
                    return responder.send(
                        handle_error(req, kRcInvalidValue, h->spelling(),
                                     "index " + i + " is named in the query but not in the body"));
                }
                selected.push_back(*it);
            }
            op = SetValues{*h, std::move(selected), true};
        } else {
            op = PutRecord{*h, std::move(*values), overwrite ? PutMode::upsert : PutMode::create};
        }
        const std::string spelling = h->spelling();
        submit(
            std::move(op), who.username,
            [req = std::move(req), spelling, overwrite](const OpResult& r) {
                if (r.outcome == Outcome::failed) {
                    const auto m = map_errc(r.error.code);
                    return handle_json(req, m.rc, spelling, r.error.message, m.status);
                }
                if (r.outcome == Outcome::unchanged && !overwrite) {
                    return handle_error(req, kRcExists, spelling, "handle already exists");
                }
                return handle_json(req, kRcSuccess, spelling, {},
                                   r.outcome == Outcome::created ? http::status::created
                                                                 : http::status::ok);
            },
            responder);
    }

    void delete_handle(Request&& req, Responder responder) {
        RequestContext& ctx = responder.context();
        std::optional<Handle> h;
        if (auto r = path_handle(req, ctx, h))
            return responder.send(*r);
        Principal who;
        if (auto r = authenticate(req, ctx, who, true))
            return responder.send(*r);
        if (auto r = check_write(req, who, *h))
            return responder.send(*r);
        auto query = parse_query(req.target());
        if (!query)
            return responder.send(
                handle_error(req, kRcInvalidValue, h->spelling(), "malformed query string"));
        const Query q{std::move(*query)};
        WriteOp op = DeleteRecord{*h};
        const auto indices = q.all("index");
        if (!indices.empty()) {
            RemoveValues rv{*h, {}};
            for (const auto& i : indices) {
                std::uint64_t n;
                if (!parse_uint(i, n) || n == 0 || n > INT32_MAX) {
                    return responder.send(handle_error(req, kRcInvalidValue, h->spelling(),
                                                       "index must be a positive integer"));
                }
                rv.indices.push_back(static_cast<std::int32_t>(n));
            }
            op = std::move(rv);
        }
        const std::string spelling = h->spelling();
        submit(
            std::move(op), who.username,
            [req = std::move(req), spelling](const OpResult& r) {
                if (r.outcome == Outcome::failed) {
                    const auto m = map_errc(r.error.code);
                    return handle_json(req, m.rc, spelling,
                                       r.error.code == Errc::not_found ? "" : r.error.message,
                                       m.status);
                }
                return handle_json(req, kRcSuccess, spelling, {}, http::status::ok);
            },
            responder);
    }

    Response list_handles(const Request& req, RequestContext& ctx) {
        Principal who;
        if (auto r = authenticate(req, ctx, who, true))
            return *r;
        if (who.anonymous())
            return handle_error(req, kRcAuthNeeded, {}, "listing needs authentication");
        auto query = parse_query(req.target());
        if (!query)
            return handle_error(req, kRcInvalidValue, {}, "malformed query string");
        const Query q{std::move(*query)};
        const std::string prefix = q.get("prefix");
        auto folded = parse_prefix(prefix);
        if (!folded)
            return handle_error(req, kRcInvalidHandle, {}, "prefix: " + folded.error().message);
        if (!homed(*folded))
            return handle_error(req, kRcNotHomed, {},
                                "prefix " + prefix + " is not homed on this node");
        auto snapshot = registry_.snapshot();
        if (!who.may_read_private(snapshot, *folded)) {
            return handle_error(req, kRcInsufficientPermissions, {},
                                "account " + who.username + " may not list " + prefix);
        }
        std::uint64_t page = 0, page_size = 100;
        if ((q.has("page") && !parse_uint(q.get("page"), page)) ||
            (q.has("pageSize") &&
             (!parse_uint(q.get("pageSize"), page_size) || page_size == 0 || page_size > 10000))) {
            return handle_error(req, kRcInvalidValue, {},
                                "page must be >= 0 and pageSize 1 to 10000");
        }
        std::string cursor = q.get("cursor");
        if (cursor.empty() &&
            page > 0) { // skip whole pages (the cursor parameter avoids this walk)
            for (std::uint64_t skipped = 0; skipped < page * page_size;) {
                const auto step = std::min<std::uint64_t>(page * page_size - skipped, 10000);
                auto p = snapshot.list(prefix, cursor, step);
                if (!p)
                    return handle_error(req, kRcInvalidValue, {}, p.error().message);
                skipped += p->handles.size();
                cursor = p->next_cursor;
                if (cursor.empty())
                    break;
            }
        }
        json::array handles;
        std::string next;
        if (page == 0 || !cursor.empty()) {
            auto p = snapshot.list(prefix, cursor, page_size);
            if (!p)
                return handle_error(req, kRcInvalidValue, {}, p.error().message);
            for (auto& s : p->handles)
                handles.emplace_back(std::move(s));
            next = p->next_cursor;
        }
        json::object body{{"responseCode", kRcSuccess},
                          {"prefix", prefix},
                          {"totalCount", std::to_string(snapshot.count(*folded))},
                          {"page", page},
                          {"pageSize", page_size},
                          {"handles", std::move(handles)}};
        if (!next.empty())
            body["nextCursor"] = next;
        return json_response(req, http::status::ok, json::serialize(body));
    }

    /// GET /api/prefixes: public, but credentials that are sent must be valid (bad credentials
    /// are a 401 on every route, never a silent downgrade to anonymous).
    Response list_homed(const Request& req, RequestContext& ctx) {
        Principal who;
        if (auto r = authenticate(req, ctx, who, true))
            return *r;
        json::array prefixes;
        auto snapshot = registry_.snapshot();
        snapshot.for_each_entry(Table::prefixes, [&](const std::string&, const std::string& bytes) {
            if (auto rec = decode_prefix(bytes); rec && rec->status == PrefixStatus::active) {
                prefixes.emplace_back(rec->prefix);
            }
        });
        for (const auto& p : options_.homed_prefixes) {
            if (std::none_of(prefixes.begin(), prefixes.end(), [&](const json::value& v) {
                    return equals_folded(v.get_string(), p);
                })) {
                prefixes.emplace_back(p);
            }
        }
        json::object body{{"responseCode", kRcSuccess},
                          {"totalCount", std::to_string(prefixes.size())},
                          {"prefixes", std::move(prefixes)}};
        return json_response(req, http::status::ok, json::serialize(body));
    }

    /// GET /{handle}: a path that is not a handle homed here is simply an unknown route (the
    /// catch-all must not turn every typo into a Handle error).
    Response proxy(const Request& req, RequestContext& ctx) {
        if (html::wants_html(req[http::field::accept]))
            return html_resolution(req, ctx, true);
        std::optional<Handle> h;
        if (path_handle(req, ctx, h)) {
            ctx.route = "unmatched";
            return refusal_response(req, Refusal::unknown_route, "unknown route");
        }
        std::string location;
        json::array values;
        std::string html_rows;
        auto st = registry_.snapshot().visit(*h, [&](const RecordView& view) {
            for (const ValueView& v : view) {
                if (!v.permissions.public_read())
                    continue;
                if (location.empty() && equals_folded(v.type, "URL") &&
                    html::redirect_target_ok(v.data))
                    location.assign(v.data);
                json::object o;
                api::value_to_json(o, v);
                values.push_back(std::move(o));
            }
        });
        count_resolution(*h, static_cast<bool>(st));
        if (!st) {
            const auto m = map_errc(st.code());
            return handle_json(req, m.rc, h->spelling(), {}, m.status);
        }
        auto query = parse_query(req.target());
        const bool noredirect = query && Query{*query}.has("noredirect");
        if (!location.empty() && !noredirect)
            return redirect_to(req, location);
        json::object body{
            {"responseCode", kRcSuccess}, {"handle", h->spelling()}, {"values", std::move(values)}};
        return json_response(req, http::status::ok, json::serialize(body));
    }

    // ---- pages for people and QR codes (html_pages.hpp, qr.hpp) --------------------------------

    /// GET /{handle} (proxy) and GET /api/handles/{handle} for browsers. The proxy route stays
    /// anonymous and keeps its 302 to the URL value; the API route honours credentials (private
    /// values are then shown, marked). Filters (type=, index=) are a JSON feature.
    enum class PageRoute { proxy, api, search };

    Response html_resolution(const Request& req, RequestContext& ctx, bool proxy_route) {
        const std::string_view raw = ctx.param("handle");
        auto decoded = percent_decode(raw);
        if (!decoded) {
            return html::page_response(req, http::status::bad_request,
                                       html::render_problem_page(html::Problem::invalid, raw,
                                                                 "malformed percent-encoding"));
        }
        return html_page(req, ctx, *decoded, proxy_route ? PageRoute::proxy : PageRoute::api);
    }

    Response html_page(const Request& req, RequestContext& ctx, const std::string& text,
                       PageRoute route) {
        using html::Problem;
        const bool proxy_route = route != PageRoute::api;
        auto problem = [&](Problem p, std::string_view handle, std::string_view detail) {
            if (route == PageRoute::proxy && p == Problem::no_page)
                ctx.route = "unmatched";
            return html::page_response(req, html::problem_status(p),
                                       html::render_problem_page(p, handle, detail));
        };
        auto h = parse_handle(text, options_.handle_limits);
        if (!h) { // on the catch-all route a path without '/' is no identifier at all
            return problem(route == PageRoute::proxy && text.find('/') == std::string::npos
                               ? Problem::no_page
                               : Problem::invalid,
                           text, h.error().message);
        }
        if (!homed(h->prefix_key())) {
            return problem(Problem::not_homed, h->spelling(),
                           "prefix " + std::string(h->prefix()) + " is not homed on this node");
        }
        Principal who;
        if (!proxy_route) {
            if (auto r = authenticate(req, ctx, who, true))
                return *r;
        }
        auto snapshot = registry_.snapshot();
        const bool include_private =
            !proxy_route && who.may_read_private(snapshot, h->prefix_key());
        auto page = html::build_handle_page(snapshot, *h, include_private);
        count_resolution(*h, static_cast<bool>(page));
        if (!page) {
            if (page.code() == Errc::not_found)
                return problem(Problem::not_found, h->spelling(), {});
            return native_error(req, page.code(), page.error().message);
        }
        auto query = parse_query(req.target());
        if (route == PageRoute::proxy && !page->redirect_url.empty() &&
            !(query && Query{*query}.has("noredirect"))) {
            return redirect_to(req, page->redirect_url);
        }
        return html::page_response(req, http::status::ok, html::render_handle_page(*page),
                                   include_private);
    }

    /// GET / — the search page; GET /?handle=X shows X's page directly (no redirect to its URL
    /// value: someone who searched wants to see the record).
    Response search_page(const Request& req, RequestContext& ctx) {
        auto query = parse_query(req.target());
        if (!query) {
            return html::page_response(
                req, http::status::bad_request,
                html::render_search_page({}, "查询参数无效 Malformed query"));
        }
        const Query q{std::move(*query)};
        std::string wanted = q.get("handle");
        const auto first = wanted.find_first_not_of(" \t\r\n");
        wanted.erase(0, first == std::string::npos ? wanted.size() : first);
        wanted.erase(wanted.find_last_not_of(" \t\r\n") + 1);
        if (wanted.empty()) {
            return html::page_response(
                req, q.has("handle") ? http::status::bad_request : http::status::ok,
                html::render_search_page({},
                                         q.has("handle") ? "请输入标识 Enter an identifier" : ""));
        }
        return html_page(req, ctx, wanted, PageRoute::search);
    }

    /// GET /api/v1/qr/{handle}?format=svg|png&size=N — the handle's resolution URL on this node
    /// (options.public_base_url: node.public_base_url, or derived from https.listen at startup)
    /// as a QR code. Never from the request's Host header: the image is served cacheable, so a
    /// forged Host would poison caches and printed labels. The identifier must be registered:
    /// labels are printed for identifiers that resolve.
    Response qr_code(const Request& req, RequestContext& ctx) {
        auto query = parse_query(req.target());
        if (!query)
            return native_error(req, Errc::invalid_value, "malformed query string");
        const Query q{std::move(*query)};
        const std::string format = q.get("format", "svg");
        if (format != "svg" && format != "png")
            return native_error(req, Errc::invalid_value, "format must be svg or png");
        std::uint64_t size = qr::kDefaultImagePixels;
        if (q.has("size") && (!parse_uint(q.get("size"), size) || size < qr::kMinImagePixels ||
                              size > qr::kMaxImagePixels)) {
            return native_error(req, Errc::invalid_value,
                                "size must be an integer from " +
                                    std::to_string(qr::kMinImagePixels) + " to " +
                                    std::to_string(qr::kMaxImagePixels) + " (pixels)");
        }
        auto decoded = percent_decode(ctx.param("handle"));
        if (!decoded)
            return native_error(req, Errc::invalid_handle, "malformed percent-encoding");
        auto h = parse_handle(*decoded, options_.handle_limits);
        if (!h)
            return native_error(req, Errc::invalid_handle, h.error().message);
        if (!homed(h->prefix_key()))
            return native_error(req, Errc::not_homed,
                                "prefix " + std::string(h->prefix()) +
                                    " is not homed on this node");
        if (!registry_.snapshot().contains(*h))
            return native_error(req, Errc::not_found,
                                "identifier " + h->spelling() + " is not registered");
        if (options_.public_base_url.empty())
            return native_error(req, Errc::unavailable,
                                "this node has no public base URL (node.public_base_url)");
        auto matrix = qr::encode(qr::resolution_url(options_.public_base_url, h->spelling()));
        if (!matrix)
            return native_error(req, matrix.code(), matrix.error().message);
        const int px = static_cast<int>(size);
        auto image = format == "png" ? qr::to_png(*matrix, px) : qr::to_svg(*matrix, px);
        if (!image)
            return native_error(req, image.code(), image.error().message);
        Response r{http::status::ok, req.version()};
        r.set(http::field::content_type, format == "png" ? "image/png" : "image/svg+xml");
        r.set("Content-Security-Policy", html::kContentSecurityPolicy);
        r.set("X-Content-Type-Options", "nosniff");
        r.set(http::field::cache_control, "public, max-age=3600");
        r.keep_alive(req.keep_alive());
        r.body() = std::move(*image);
        r.prepare_payload();
        return r;
    }

    // ---- native admin API ---------------------------------------------------------------------

    std::optional<Response> require_admin(const Request& req, RequestContext& ctx, Principal& who) {
        if (auto r = authenticate(req, ctx, who, false))
            return r;
        if (who.anonymous())
            return error_response(req, http::status::unauthorized, "unauthorized",
                                  "authentication is needed");
        if (!who.is_admin())
            return error_response(req, http::status::forbidden, "forbidden", "admin role required");
        return std::nullopt;
    }

    void create_prefix(Request&& req, Responder responder) {
        Principal who;
        if (auto r = require_admin(req, responder.context(), who))
            return responder.send(*r);
        auto body = object_body(req);
        if (!body.ok())
            return responder.send(std::move(body.refusal));
        const json::object& o = body.value.get_object();
        PrefixRecord rec;
        rec.kind = PrefixKind::enterprise;
        rec.created = unix_now();
        const auto* ent = o.if_contains("enterprise");
        if (ent == nullptr || !ent->is_object()) {
            return responder.send(error_response(req, http::status::bad_request, "invalid_value",
                                                 "\"enterprise\" object is required"));
        }
        auto field = [&](const char* name) -> std::string {
            const auto* v = ent->get_object().if_contains(name);
            return v && v->is_string() ? std::string(v->get_string()) : std::string();
        };
        rec.enterprise = EnterpriseInfo{field("name"), field("credit_code"), field("industry"),
                                        field("contact")};
        if (auto bad = validate_enterprise(rec.enterprise)) {
            return responder.send(
                error_response(req, http::status::bad_request, "invalid_value", *bad));
        }
        std::string parent;
        if (const auto* p = o.if_contains("prefix")) {
            if (!p->is_string())
                return responder.send(error_response(req, http::status::bad_request,
                                                     "invalid_value", "prefix must be a string"));
            auto folded = parse_prefix(p->get_string());
            if (!folded)
                return responder.send(error_response(req, http::status::bad_request,
                                                     "invalid_prefix", folded.error().message));
            if (!homed(*folded) ||
                std::find(homed_.begin(), homed_.end(), *folded) != homed_.end()) {
                return responder.send(
                    error_response(req, http::status::bad_request, "not_homed",
                                   "prefix must lie below a node prefix homed here"));
            }
            rec.prefix = std::string(p->get_string());
        } else if (const auto* par = o.if_contains("parent"); par && par->is_string()) {
            auto folded = parse_prefix(par->get_string());
            if (!folded || std::find(homed_.begin(), homed_.end(), *folded) == homed_.end()) {
                return responder.send(error_response(req, http::status::bad_request, "not_homed",
                                                     "parent must be a node prefix homed here"));
            }
            parent = *folded;
        } else {
            return responder.send(error_response(req, http::status::bad_request, "invalid_value",
                                                 "give \"prefix\" or \"parent\""));
        }
        allocate(std::move(req), responder, std::move(rec), parent, who.username, 0);
    }

    /// Allocates `rec` (or the next free number under `parent`), retrying when a concurrent
    /// allocation took the same number.
    void allocate(Request req, Responder responder, PrefixRecord rec, std::string parent,
                  std::string account, int attempt) {
        if (!parent.empty()) {
            std::uint64_t highest = 0;
            auto snapshot = registry_.snapshot();
            const std::string start = parent + ".";
            snapshot.for_each_entry(
                Table::prefixes, [&](const std::string& key, const std::string&) {
                    std::uint64_t n;
                    if (key.size() > start.size() && key.compare(0, start.size(), start) == 0 &&
                        parse_uint(std::string_view(key).substr(start.size()), n)) {
                        highest = std::max(highest, n);
                    }
                });
            rec.prefix =
                parent + "." + std::to_string(highest + 1 + static_cast<unsigned>(attempt));
        }
        const std::string key = fold_case(rec.prefix);
        WriteBatch batch;
        batch.account = account;
        batch.ops.push_back(PutEntry{Table::prefixes, key, encode_prefix(rec), PutMode::create});
        registry_.submit(std::move(batch), [this, req = std::move(req), responder, rec, parent,
                                            account, attempt](BatchResult results) mutable {
            const OpResult& r = results.front();
            if (r.outcome == Outcome::created) {
                return responder.send(
                    json_response(req, http::status::created, json::serialize(prefix_json(rec))));
            }
            if (r.error.code == Errc::already_exists && !parent.empty() && attempt < 5) {
                return allocate(std::move(req), responder, std::move(rec), parent, account,
                                attempt + 1);
            }
            if (r.outcome == Outcome::unchanged || r.error.code == Errc::already_exists) {
                return responder.send(
                    error_response(req, http::status::conflict, "already_exists",
                                   "prefix " + rec.prefix + " is already allocated"));
            }
            responder.send(native_error(req, r.error.code, r.error.message));
        });
    }

    static std::optional<std::string> validate_enterprise(const EnterpriseInfo& e) {
        if (e.name.empty() || e.name.size() > 256 ||
            find_invalid_utf8(e.name) != std::string::npos) {
            return "enterprise.name is required (UTF-8, at most 256 bytes)";
        }
        // Unified social credit code: 18 characters of digits and upper-case letters (GB 32100).
        if (e.credit_code.size() != 18 ||
            e.credit_code.find_first_not_of("0123456789ABCDEFGHJKLMNPQRTUWXY") !=
                std::string::npos) {
            return "enterprise.credit_code must be an 18-character unified social credit code";
        }
        // GB/T 4754 industry code: a section letter A-T, optionally 2 to 4 digits ("C3120").
        const auto& i = e.industry;
        if (i.empty() || i.size() > 5 || i.size() == 2 || i[0] < 'A' || i[0] > 'T' ||
            i.find_first_not_of("0123456789", 1) != std::string::npos) {
            return "enterprise.industry must be a GB/T 4754 code such as C3120";
        }
        if (e.contact.size() > 256 || find_invalid_utf8(e.contact) != std::string::npos) {
            return "enterprise.contact must be UTF-8, at most 256 bytes";
        }
        return std::nullopt;
    }

    Response list_prefixes(const Request& req, RequestContext& ctx) {
        Principal who;
        if (auto r = require_admin(req, ctx, who))
            return *r;
        json::array out;
        auto snapshot = registry_.snapshot();
        snapshot.for_each_entry(Table::prefixes,
                                [&](const std::string& key, const std::string& bytes) {
                                    if (auto rec = decode_prefix(bytes)) {
                                        auto o = prefix_json(*rec);
                                        o["identifiers"] = snapshot.count(key);
                                        out.push_back(std::move(o));
                                    }
                                });
        return json_response(req, http::status::ok,
                             json::serialize(json::object{{"prefixes", std::move(out)}}));
    }

    Response get_prefix(const Request& req, RequestContext& ctx) {
        Principal who;
        if (auto r = require_admin(req, ctx, who))
            return *r;
        auto decoded = percent_decode(ctx.param("prefix"));
        auto folded = decoded ? parse_prefix(*decoded)
                              : Result<std::string>(Error{Errc::invalid_value, "bad escape"});
        if (!folded)
            return error_response(req, http::status::bad_request, "invalid_prefix",
                                  folded.error().message);
        auto snapshot = registry_.snapshot();
        auto bytes = snapshot.get_entry(Table::prefixes, *folded);
        if (!bytes)
            return error_response(req, http::status::not_found, "not_found",
                                  "prefix " + *decoded + " is not allocated");
        auto rec = decode_prefix(*bytes);
        if (!rec)
            return native_error(req, rec.code(), rec.error().message);
        auto o = prefix_json(*rec);
        o["identifiers"] = snapshot.count(*folded);
        return json_response(req, http::status::ok, json::serialize(o));
    }

    void set_prefix_status(Request&& req, Responder responder, PrefixStatus status) {
        Principal who;
        RequestContext& ctx = responder.context();
        if (auto r = require_admin(req, ctx, who))
            return responder.send(*r);
        auto decoded = percent_decode(ctx.param("prefix"));
        auto folded = decoded ? parse_prefix(*decoded)
                              : Result<std::string>(Error{Errc::invalid_value, "bad escape"});
        if (!folded)
            return responder.send(error_response(req, http::status::bad_request, "invalid_prefix",
                                                 folded.error().message));
        auto bytes = registry_.snapshot().get_entry(Table::prefixes, *folded);
        if (!bytes)
            return responder.send(error_response(req, http::status::not_found, "not_found",
                                                 "prefix is not allocated"));
        auto rec = decode_prefix(*bytes);
        if (!rec)
            return responder.send(native_error(req, rec.code(), rec.error().message));
        if (rec->kind != PrefixKind::enterprise) {
            return responder.send(error_response(req, http::status::bad_request, "invalid_prefix",
                                                 "node prefixes cannot be suspended"));
        }
        rec->status = status;
        const PrefixRecord updated = *rec;
        submit(
            PutEntry{Table::prefixes, *folded, encode_prefix(updated), PutMode::replace},
            who.username,
            [req = std::move(req), updated](const OpResult& r) {
                if (!r.ok())
                    return native_error(req, r.error.code, r.error.message);
                return json_response(req, http::status::ok, json::serialize(prefix_json(updated)));
            },
            responder);
    }

    void create_account(Request&& req, Responder responder) {
        Principal who;
        if (auto r = require_admin(req, responder.context(), who))
            return responder.send(*r);
        auto body = object_body(req);
        if (!body.ok())
            return responder.send(std::move(body.refusal));
        const json::object& o = body.value.get_object();
        Account a;
        a.created = unix_now();
        const auto* user = o.if_contains("username");
        a.username = user && user->is_string() ? std::string(user->get_string()) : "";
        if (Status st = validate_username(a.username); !st) {
            return responder.send(error_response(req, http::status::bad_request, "invalid_value",
                                                 st.error().message));
        }
        const auto* role = o.if_contains("role");
        auto parsed_role =
            role && role->is_string() ? parse_role(role->get_string()) : std::nullopt;
        if (!parsed_role) {
            return responder.send(error_response(req, http::status::bad_request, "invalid_value",
                                                 "role must be admin, enterprise or reader"));
        }
        a.role = *parsed_role;
        if (const auto* prefixes = o.if_contains("prefixes")) {
            if (!prefixes->is_array()) {
                return responder.send(error_response(req, http::status::bad_request,
                                                     "invalid_value", "prefixes must be an array"));
            }
            auto snapshot = registry_.snapshot();
            for (const auto& p : prefixes->get_array()) {
                auto folded = p.is_string()
                                  ? parse_prefix(p.get_string())
                                  : Result<std::string>(Error{Errc::invalid_value, "not a string"});
                if (!folded)
                    return responder.send(error_response(req, http::status::bad_request,
                                                         "invalid_prefix", folded.error().message));
                if (!snapshot.get_entry(Table::prefixes, *folded) && !homed(*folded)) {
                    return responder.send(error_response(
                        req, http::status::bad_request, "invalid_prefix",
                        "prefix " + std::string(p.get_string()) + " is not allocated here"));
                }
                a.prefixes.push_back(*folded);
            }
        }
        if (a.role == Role::enterprise && a.prefixes.empty()) {
            return responder.send(
                error_response(req, http::status::bad_request, "invalid_value",
                               "an enterprise account needs at least one prefix"));
        }
        if (const auto* pw = o.if_contains("password")) {
            if (!pw->is_string() || pw->get_string().size() < 8 || pw->get_string().size() > 256) {
                return responder.send(error_response(req, http::status::bad_request,
                                                     "invalid_value",
                                                     "password must be 8 to 256 characters"));
            }
            a.password_hash = hash_password(pw->get_string());
            a.v1_secret = sha256_hex(pw->get_string());
        }
        const Account created = a;
        submit(
            PutEntry{Table::accounts, a.username, encode_account(a), PutMode::create}, who.username,
            [req = std::move(req), created](const OpResult& r) {
                if (r.outcome == Outcome::created) {
                    return json_response(req, http::status::created,
                                         json::serialize(account_json(created)));
                }
                if (r.outcome == Outcome::unchanged || r.error.code == Errc::already_exists) {
                    return error_response(req, http::status::conflict, "already_exists",
                                          "account " + created.username + " already exists");
                }
                return native_error(req, r.error.code, r.error.message);
            },
            responder);
    }

    Response list_accounts(const Request& req, RequestContext& ctx) {
        Principal who;
        if (auto r = require_admin(req, ctx, who))
            return *r;
        json::array out;
        auto snapshot = registry_.snapshot();
        snapshot.for_each_entry(Table::accounts, [&](const std::string&, const std::string& bytes) {
            if (auto a = decode_account(bytes))
                out.push_back(account_json(*a));
        });
        return json_response(req, http::status::ok,
                             json::serialize(json::object{{"accounts", std::move(out)}}));
    }

    /// The account named by the {user} parameter when `who` is an admin or that account, read
    /// under the account's lock (api::AccountLock), which `lock` then holds.
    std::optional<Response> own_or_admin(const Request& req, RequestContext& ctx, Principal& who,
                                         Account& target, std::shared_ptr<api::AccountLock>& lock) {
        if (auto r = authenticate(req, ctx, who, false))
            return r;
        if (who.anonymous())
            return error_response(req, http::status::unauthorized, "unauthorized",
                                  "authentication is needed");
        auto name = percent_decode(ctx.param("user")).value_or("");
        if (!who.is_admin() && who.username != name) {
            return error_response(req, http::status::forbidden, "forbidden",
                                  "only an admin or the account itself");
        }
        return locked_account(req, name, target, lock);
    }

    /// Takes the lock of account `name` and reads it (404 when absent, 409 when another change
    /// of it is under way).
    std::optional<Response> locked_account(const Request& req, const std::string& name,
                                           Account& target,
                                           std::shared_ptr<api::AccountLock>& lock) {
        lock = auth_.try_lock_account(name);
        if (!lock)
            return busy(req, name);
        auto bytes = registry_.snapshot().get_entry(Table::accounts, name);
        if (!bytes)
            return error_response(req, http::status::not_found, "not_found",
                                  "account " + name + " does not exist");
        auto a = decode_account(*bytes);
        if (!a)
            return native_error(req, a.code(), a.error().message);
        target = std::move(a).value();
        return std::nullopt;
    }

    static Response busy(const Request& req, const std::string& name) {
        return error_response(req, http::status::conflict, "account_busy",
                              "another change of account " + name + " is under way; retry");
    }

    /// A token or an API key may be a stolen copy: before it mints a lasting credential (a key,
    /// a password) its holder must show the current password, unless an admin acts or the
    /// caller authenticated with the password itself. `body` is the request's JSON object (null
    /// for none).
    std::optional<Response> require_current_password(const Request& req, RequestContext& ctx,
                                                     const Principal& who, const json::object* body,
                                                     const Account& target) {
        if (who.is_admin() || who.credential == api::Credential::password)
            return std::nullopt;
        if (target.password_hash.empty()) {
            return error_response(req, http::status::forbidden, "current_password_required",
                                  "account " + target.username +
                                      " has no password to confirm this with: an admin must do it");
        }
        const json::value* given = body ? body->if_contains("current_password") : nullptr;
        if (given != nullptr && !given->is_string())
            return error_response(req, http::status::bad_request, "invalid_value",
                                  "current_password must be a string");
        auto outcome = auth_.confirm_password(
            who.username,
            given ? std::optional<std::string_view>(given->get_string()) : std::nullopt,
            ctx.client_ip);
        if (outcome.ok())
            return std::nullopt;
        if (outcome.status == 429) {
            Response r = refusal_response(req, Refusal::rate_limited, outcome.message);
            r.set(http::field::retry_after, std::to_string(outcome.retry_after.count()));
            return r;
        }
        return error_response(req, http::status::forbidden,
                              given ? "wrong_current_password" : "current_password_required",
                              outcome.message);
    }

    /// Submits an account change while `locks` are held; they are released before the answer
    /// goes out, so that the client's next change never finds them still taken.
    void submit_locked(WriteBatch batch, std::vector<std::shared_ptr<api::AccountLock>> locks,
                       std::function<Response(const BatchResult&)> respond, Responder responder) {
        registry_.submit(std::move(batch), [locks = std::move(locks), respond = std::move(respond),
                                            responder](BatchResult results) {
            Response r = respond(results);
            for (const auto& lock : locks)
                lock->release();
            responder.send(std::move(r));
        });
    }

    void set_password(Request&& req, Responder responder) {
        Principal who;
        Account a;
        std::shared_ptr<api::AccountLock> lock;
        if (auto r = own_or_admin(req, responder.context(), who, a, lock))
            return responder.send(*r);
        auto body = api::parse_json_body(req.body());
        const json::object* o = body ? body->if_object() : nullptr;
        const json::value* pw = o ? o->if_contains("password") : nullptr;
        if (pw == nullptr || !pw->is_string() || pw->get_string().size() < 8 ||
            pw->get_string().size() > 256) {
            return responder.send(error_response(
                req, http::status::bad_request, "invalid_value",
                body ? "body must be {\"password\": 8 to 256 characters}" : body.error().message));
        }
        if (auto r = require_current_password(req, responder.context(), who, o, a))
            return responder.send(*r);
        a.password_hash = hash_password(pw->get_string());
        a.v1_secret = sha256_hex(pw->get_string());
        ++a.token_generation; // a new password revokes outstanding bearer tokens
        auth_.forget(a.username);
        WriteBatch batch;
        batch.account = who.username;
        batch.ops.push_back(
            PutEntry{Table::accounts, a.username, encode_account(a), PutMode::replace});
        submit_locked(
            std::move(batch), {lock},
            [req = std::move(req)](const BatchResult& r) {
                if (!r.front().ok())
                    return native_error(req, r.front().error.code, r.front().error.message);
                return json_response(req, http::status::ok, "{\"password\":\"changed\"}");
            },
            responder);
    }

    void create_key(Request&& req, Responder responder) {
        Principal who;
        Account a;
        std::shared_ptr<api::AccountLock> lock;
        if (auto r = own_or_admin(req, responder.context(), who, a, lock))
            return responder.send(*r);
        // The body is optional: {"current_password": …} when require_current_password wants it.
        json::value body;
        if (!req.body().empty()) {
            auto parsed = object_body(req);
            if (!parsed.ok())
                return responder.send(std::move(parsed.refusal));
            body = std::move(parsed.value);
        }
        if (auto r = require_current_password(req, responder.context(), who, body.if_object(), a))
            return responder.send(*r);
        auto key = generate_api_key(a.username, unix_now());
        const std::string shown = key.key, id = key.record.key_id;
        WriteBatch batch;
        batch.account = who.username;
        batch.ops.push_back(PutEntry{Table::api_keys, key.record.key_id, encode_api_key(key.record),
                                     PutMode::create});
        submit_locked(
            std::move(batch), {lock},
            [req = std::move(req), shown, id](const BatchResult& r) {
                if (!r.front().ok())
                    return native_error(req, r.front().error.code, r.front().error.message);
                return json_response(req, http::status::created,
                                     json::serialize(json::object{{"key_id", id}, {"key", shown}}));
            },
            responder);
    }

    /// POST /api/v1/accounts/{user}/disable|enable (admin). Disabling also bumps the token
    /// generation: the login tokens issued before stay dead after a later enable, while the API
    /// keys and the password work again.
    void set_disabled(Request&& req, Responder responder, bool disabled) {
        Principal who;
        if (auto r = require_admin(req, responder.context(), who))
            return responder.send(*r);
        const std::string name = percent_decode(responder.context().param("user")).value_or("");
        if (disabled && name == who.username)
            return responder.send(error_response(req, http::status::conflict, "own_account",
                                                 "an admin cannot disable its own account"));
        Account a;
        std::vector<std::shared_ptr<api::AccountLock>> locks(1);
        if (auto r = locked_account(req, name, a, locks[0]))
            return responder.send(*r);
        if (a.disabled == disabled)
            return responder.send(
                json_response(req, http::status::ok, json::serialize(account_json(a))));
        if (disabled) {
            if (auto r = keep_an_admin(req, a, locks))
                return responder.send(*r);
            ++a.token_generation;
        }
        a.disabled = disabled;
        auth_.forget(a.username);
        WriteBatch batch;
        batch.account = who.username;
        batch.ops.push_back(
            PutEntry{Table::accounts, a.username, encode_account(a), PutMode::replace});
        submit_locked(
            std::move(batch), std::move(locks),
            [req = std::move(req), a](const BatchResult& r) {
                if (!r.front().ok())
                    return native_error(req, r.front().error.code, r.front().error.message);
                return json_response(req, http::status::ok, json::serialize(account_json(a)));
            },
            responder);
    }

    /// Before `target` stops being a working admin: refuses (409) unless another enabled admin
    /// remains. Admin changes are serialised by one more lock, taken here and added to `locks`,
    /// so that two admins cannot disable each other at once; the count is read after it.
    std::optional<Response> keep_an_admin(const Request& req, const Account& target,
                                          std::vector<std::shared_ptr<api::AccountLock>>& locks) {
        if (target.role != Role::admin || target.disabled)
            return std::nullopt;
        auto lock = auth_.try_lock_account(std::string("\0admins", 7));
        if (!lock)
            return busy(req, target.username);
        locks.push_back(std::move(lock));
        bool another = false;
        registry_.snapshot().for_each_entry(
            Table::accounts, [&](const std::string& key, const std::string& bytes) {
                auto other = decode_account(bytes);
                another = another || (other && key != target.username &&
                                      other->role == Role::admin && !other->disabled);
            });
        if (another)
            return std::nullopt;
        return error_response(req, http::status::conflict, "last_admin",
                              "account " + target.username + " is the last enabled admin");
    }

    /// DELETE /api/v1/accounts/{user} (admin): the account and its API keys go; its login tokens
    /// die with it (a new account of the same name has a new password hash, hence new token
    /// keys). Its prefixes, their records and templates stay, owned by nobody until an admin
    /// names them in another account.
    void delete_account(Request&& req, Responder responder) {
        Principal who;
        if (auto r = require_admin(req, responder.context(), who))
            return responder.send(*r);
        const std::string name = percent_decode(responder.context().param("user")).value_or("");
        if (name == who.username)
            return responder.send(error_response(req, http::status::conflict, "own_account",
                                                 "an admin cannot delete its own account"));
        Account a;
        std::vector<std::shared_ptr<api::AccountLock>> locks(1);
        if (auto r = locked_account(req, name, a, locks[0]))
            return responder.send(*r);
        if (auto r = keep_an_admin(req, a, locks))
            return responder.send(*r);
        WriteBatch batch;
        batch.account = who.username;
        batch.ops.push_back(DeleteEntry{Table::accounts, a.username});
        for (auto& id : api::api_key_ids(registry_.snapshot(), a.username))
            batch.ops.push_back(DeleteEntry{Table::api_keys, std::move(id)});
        auth_.forget(a.username);
        submit_locked(
            std::move(batch), std::move(locks),
            [req = std::move(req)](const BatchResult& results) {
                for (const OpResult& r : results) {
                    if (!r.ok())
                        return native_error(req, r.error.code, r.error.message);
                }
                Response res{http::status::no_content, req.version()};
                res.keep_alive(req.keep_alive());
                res.prepare_payload();
                return res;
            },
            responder);
    }

    /// DELETE /api/v1/accounts/{user}/prefixes/{prefix} (admin): the account no longer owns
    /// (enterprise) or may read privately (reader) under the prefix, from its next request on.
    void remove_account_prefix(Request&& req, Responder responder) {
        Principal who;
        RequestContext& ctx = responder.context();
        if (auto r = require_admin(req, ctx, who))
            return responder.send(*r);
        const auto decoded = percent_decode(ctx.param("prefix"));
        auto folded = decoded ? parse_prefix(*decoded)
                              : Result<std::string>(Error{Errc::invalid_value, "bad escape"});
        if (!folded)
            return responder.send(error_response(req, http::status::bad_request, "invalid_prefix",
                                                 folded.error().message));
        const std::string name = percent_decode(ctx.param("user")).value_or("");
        Account a;
        std::shared_ptr<api::AccountLock> lock;
        if (auto r = locked_account(req, name, a, lock))
            return responder.send(*r);
        const auto it = std::find(a.prefixes.begin(), a.prefixes.end(), *folded);
        if (it == a.prefixes.end())
            return responder.send(
                error_response(req, http::status::not_found, "not_found",
                               "account " + a.username + " has no prefix " + *decoded));
        a.prefixes.erase(it);
        WriteBatch batch;
        batch.account = who.username;
        batch.ops.push_back(
            PutEntry{Table::accounts, a.username, encode_account(a), PutMode::replace});
        submit_locked(
            std::move(batch), {lock},
            [req = std::move(req), a](const BatchResult& r) {
                if (!r.front().ok())
                    return native_error(req, r.front().error.code, r.front().error.message);
                return json_response(req, http::status::ok, json::serialize(account_json(a)));
            },
            responder);
    }

    void revoke_key(Request&& req, Responder responder) {
        Principal who;
        Account a;
        RequestContext& ctx = responder.context();
        std::shared_ptr<api::AccountLock> lock;
        if (auto r = own_or_admin(req, ctx, who, a, lock))
            return responder.send(*r);
        const std::string key_id = percent_decode(ctx.param("key_id")).value_or("");
        auto bytes = registry_.snapshot().get_entry(Table::api_keys, key_id);
        auto rec =
            bytes ? decode_api_key(*bytes) : Result<ApiKeyRecord>(Error{Errc::not_found, ""});
        if (!rec || rec->username != a.username) {
            return responder.send(
                error_response(req, http::status::not_found, "not_found",
                               "account " + a.username + " has no key " + key_id));
        }
        WriteBatch batch;
        batch.account = who.username;
        batch.ops.push_back(DeleteEntry{Table::api_keys, key_id});
        submit_locked(
            std::move(batch), {lock},
            [req = std::move(req)](const BatchResult& r) {
                if (!r.front().ok())
                    return native_error(req, r.front().error.code, r.front().error.message);
                Response res{http::status::no_content, req.version()};
                res.keep_alive(req.keep_alive());
                res.prepare_payload();
                return res;
            },
            responder);
    }

    Registry& registry_;
    NodeApiOptions options_;
    api::Authenticator auth_;
    api::AccountRateLimit account_limit_; // shared with the SNMS API
    std::vector<std::string> homed_;      // folded; fixed after construction
    std::unique_ptr<api::SnmsApi> snms_;
    // Bulk outcomes by (account, Idempotency-Key): in the registry, limits.idempotency_ttl_s.
    api::IdempotencyStore idempotency_{&registry_,
                                       std::chrono::seconds(options_.idempotency_ttl_s)};
    Family<Counter>* bulk_lines_ = nullptr; // idnode_bulk_lines_total{status}
    api::ResolutionCounter resolutions_;    // resolutions_today of /api/v1/stats
};

void NodeApi::Impl::register_routes(Router& router) {
    using V = http::verb;
    auto sync = [this](Response (Impl::*fn)(const Request&, RequestContext&)) {
        return
            [this, fn](const Request& req, RequestContext& ctx) { return (this->*fn)(req, ctx); };
    };
    auto async = [this](void (Impl::*fn)(Request&&, Responder)) {
        return
            [this, fn](Request&& req, Responder r) { (this->*fn)(std::move(req), std::move(r)); };
    };
    router.add(V::get, "/api/handles/{handle...}", sync(&Impl::get_handle));
    router.add_async(V::put, "/api/handles/{handle...}", async(&Impl::put_handle));
    router.add_async(V::delete_, "/api/handles/{handle...}", async(&Impl::delete_handle));
    router.add(V::get, "/api/handles", sync(&Impl::list_handles));
    router.add(V::get, "/api/prefixes", sync(&Impl::list_homed));
    router.add(V::get, "/{handle...}", sync(&Impl::proxy));
    router.add(V::get, "/", sync(&Impl::search_page));
    router.add(V::get, "/api/v1/qr/{handle...}", sync(&Impl::qr_code));

    router.add_streaming(V::post, "/api/v1/bulk",
                         [this](const Request& req, const std::shared_ptr<StreamChannel>& channel) {
                             return bulk(req, channel);
                         });
    // Sized for its documented maximum: kMaxBatchResolve handles of the longest allowed length,
    // each quoted and escaped (a \u escape of a non-ASCII character is at most 3 times its UTF-8
    // bytes), with separators.
    const std::size_t longest =
        std::min(options_.handle_limits.max_length, registry::kHandleProtocolMaxLength);
    router.add(V::post, "/api/v1/resolve", sync(&Impl::batch_resolve),
               RouteOptions{kMaxBatchResolve * (3 * longest + 3) + 2});
    router.add(V::get, "/api/v1/stats", sync(&Impl::stats));

    router.add_async(V::post, "/api/v1/prefixes", async(&Impl::create_prefix));
    router.add(V::get, "/api/v1/prefixes", sync(&Impl::list_prefixes));
    router.add(V::get, "/api/v1/prefixes/{prefix}", sync(&Impl::get_prefix));
    router.add_async(V::post, "/api/v1/prefixes/{prefix}/suspend",
                     [this](Request&& req, Responder r) {
                         set_prefix_status(std::move(req), std::move(r), PrefixStatus::suspended);
                     });
    router.add_async(V::post, "/api/v1/prefixes/{prefix}/resume",
                     [this](Request&& req, Responder r) {
                         set_prefix_status(std::move(req), std::move(r), PrefixStatus::active);
                     });
    router.add_async(V::post, "/api/v1/accounts", async(&Impl::create_account));
    router.add(V::get, "/api/v1/accounts", sync(&Impl::list_accounts));
    router.add_async(V::put, "/api/v1/accounts/{user}/password", async(&Impl::set_password));
    router.add_async(V::post, "/api/v1/accounts/{user}/keys", async(&Impl::create_key));
    router.add_async(V::delete_, "/api/v1/accounts/{user}/keys/{key_id}", async(&Impl::revoke_key));
    router.add_async(
        V::post, "/api/v1/accounts/{user}/disable",
        [this](Request&& req, Responder r) { set_disabled(std::move(req), std::move(r), true); });
    router.add_async(V::post, "/api/v1/accounts/{user}/enable", [this](Request&& req, Responder r) {
        set_disabled(std::move(req), std::move(r), false);
    });
    router.add_async(V::delete_, "/api/v1/accounts/{user}", async(&Impl::delete_account));
    router.add_async(V::delete_, "/api/v1/accounts/{user}/prefixes/{prefix}",
                     async(&Impl::remove_account_prefix));
    snms_->register_routes(router); // SNMS API, template routes, token revocation
}

NodeApi::NodeApi(Registry& registry, NodeApiOptions options)
    : impl_(std::make_unique<Impl>(registry, std::move(options))) {}
NodeApi::~NodeApi() = default;
void NodeApi::register_routes(Router& router) {
    impl_->register_routes(router);
}
void NodeApi::set_public_base_url(std::string url) {
    impl_->set_public_base_url(std::move(url));
}
const std::vector<std::string>& NodeApi::homed_prefixes() const noexcept {
    return impl_->homed();
}

} // namespace idnode::resolver
