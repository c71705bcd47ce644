#include "idnode/resolver/node_api.hpp"

#include "api/common.hpp"
#include "api/families.hpp"
#include "api/html/page_routes.hpp"
#include "api/snms/answers.hpp"
#include "idnode/resolver/openapi.hpp"

#include <stdexcept>

namespace idnode::resolver {

namespace {

node::Homing load_homing(registry::Registry& registry, const std::vector<std::string>& configured) {
    auto homing = node::Homing::load(registry, configured);
    if (!homing)
        throw std::invalid_argument(homing.error().message);
    return std::move(homing).value();
}

} // namespace

class NodeApi::Impl {
public:
    Impl(registry::Registry& registry, NodeApiOptions options)
        : api_(registry, options, load_homing(registry, options.homed_prefixes)), pages_(api_) {
        if (options.metrics != nullptr) {
            api_.bulk_lines = &options.metrics->counter_family(
                "idnode_bulk_lines_total", "Bulk upload lines answered, by status", {"status"});
        }
        api::snms::SnmsOptions snms{options.snms_token_v1,        options.snms_token_ttl_s,
                                    options.handle_limits,        2000,
                                    options.max_batch_body_bytes, options.max_record_bytes};
        families_.push_back(api::handle_rest::make_routes(api_, pages_));
        families_.push_back(api::native::make_record_routes(api_));
        families_.push_back(api::native::make_prefix_routes(api_));
        families_.push_back(api::native::make_prefix_route_routes(api_));
        families_.push_back(api::native::make_account_routes(api_));
        families_.push_back(api::snms::make_identity_routes(api_, snms));
        families_.push_back(api::snms::make_template_routes(api_, snms));
    }

    void register_routes(Router& router) {
        register_openapi_route(router); // GET /api/openapi.json (docs/openapi.json)
        pages_.register_routes(router);
        for (const auto& family : families_)
            family->register_routes(router);
    }

    api::ApiContext api_;
    html::PageRoutes pages_;
    std::vector<std::unique_ptr<api::RouteFamily>> families_;
};

NodeApi::NodeApi(registry::Registry& registry, NodeApiOptions options)
    : impl_(std::make_unique<Impl>(registry, std::move(options))) {}
NodeApi::~NodeApi() = default;

void NodeApi::register_routes(Router& router) {
    impl_->register_routes(router);
}

void NodeApi::set_public_base_url(std::string url) {
    impl_->api_.options.public_base_url = std::move(url);
}

void NodeApi::set_site_info(handle::SiteInfo site) {
    impl_->api_.site = std::move(site);
}

const std::vector<std::string>& NodeApi::homed_prefixes() const noexcept {
    return impl_->api_.homing.node_prefixes();
}

node::Resolutions& NodeApi::resolutions() noexcept {
    return impl_->api_.resolutions;
}

node::Authenticator& NodeApi::authenticator() noexcept {
    return impl_->api_.auth;
}

node::AccountRateLimit& NodeApi::account_rate_limit() noexcept {
    return impl_->api_.account_limit;
}

const node::Homing& NodeApi::homing() const noexcept {
    return impl_->api_.homing;
}

} // namespace idnode::resolver
