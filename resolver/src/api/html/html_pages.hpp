// The resolution pages for people (docs/api.md#pages-and-qr-codes): what a phone browser shows
// after scanning the code on a coil, a drug pack or a part. Internal to the resolver.
//
// Split in two so that the rendering is testable without a server:
// - `HandlePage` (the view model) is built from a read snapshot by `build_handle_page`;
// - `render_*` are pure functions from a view model to a complete HTML document.
//
// Pages are self-contained: inline CSS, no JavaScript, no external assets (nodes often sit on
// closed networks), a viewport meta for phones, Chinese text with English labels. Every piece of
// user data goes through `escape` (values, handles, enterprise names, template labels), and the
// responses carry a Content-Security-Policy that forbids scripts altogether, so an escaping bug
// would still not execute anything.
//
// Thread safety: pure functions; `build_handle_page` only reads the snapshot it is given.
#pragma once

#include "idnode/registry/identifier.hpp"
#include "idnode/registry/registry.hpp"
#include "idnode/resolver/http.hpp"

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace idnode::resolver::html {

/// What a metadata template says about one item (docs/data-model.md#templates): the label people
/// read.
struct ItemLabel {
    std::string name_zh;   // 炉号
    std::string id_type;   // heat_no (the value type the item expects)
    std::string data_type; // metadata.type: string, integer, number, date, datetime, url, enum,
                           // handle; empty = string
};

/// The template a record was registered against, as far as the page needs it.
struct TemplateSummary {
    std::string name;                        // human-readable template name
    std::string version;                     // the template version (value index 1001)
    std::string industry;                    // e.g. "C3120 钢压延加工"
    std::map<std::int32_t, ItemLabel> items; // by idIndex (>= 2000)
};

struct PageValue {
    std::int32_t index = 0;
    std::string type;
    std::string data; // raw bytes; not necessarily UTF-8
    std::uint32_t timestamp = 0;
    bool is_private = false;             // shown only because the caller may read it
    std::vector<std::string> references; // handles this value refers to (Handle value references)
};

struct HandlePage {
    std::string handle;           // as registered
    std::string prefix;           // the handle's prefix as spelled
    std::string enterprise_name;  // owner of the prefix; empty when the prefix has no record
    std::string enterprise_code;  // GB/T 4754 industry code of the enterprise; may be empty
    std::string template_version; // value 1001 TEMPLATE; empty when the record names none
    std::optional<TemplateSummary> template_info; // absent when no template is known
    std::vector<PageValue> values;                // already filtered by permission, index order
    std::string redirect_url;                     // the first public URL value (proxy target)
    bool private_view = false; // the caller may read private values (shown and marked)
};

/// The template named by a record: (prefix, version) -> summary (name = the template's
/// description, industry = its most specific GB/T 4754 code, item labels by idIndex), or nullopt
/// when none is stored under that key or it does not decode (the page then labels values by their
/// type).
std::optional<TemplateSummary> find_template(const registry::ReadSnapshot& snapshot,
                                             std::string_view prefix_key, std::string_view version);

/// Reads the record, its prefix's enterprise record and its template. Values the caller may not
/// read never enter the model. HS_ADMIN (protocol bookkeeping) and TEMPLATE (shown in the header)
/// are not listed as values. Errors: not_found, corrupt (from the registry).
registry::Result<HandlePage> build_handle_page(const registry::ReadSnapshot& snapshot,
                                               const registry::Handle& handle,
                                               bool include_private);

// ---- pure rendering ---------------------------------------------------------------------------

/// Text as HTML character data or a double- or single-quoted attribute value: & < > " ' become
/// entities; invalid UTF-8 bytes and control characters other than tab and newline become
/// U+FFFD. Everything else (RTL text, emoji) passes through unchanged; the pages isolate values
/// with <bdi> so that bidirectional text cannot reorder the surrounding labels.
std::string escape(std::string_view text);

/// One value as an HTML fragment, formatted by its kind: the template item's data type when
/// known, else the value type (URL / URL.* = link, HS_ALIAS = identifier). Links only for http and
/// https URLs (other schemes are shown as text) and for references that parse as handles
/// (href="/{handle}"); dates and datetimes in <time>; non-UTF-8 data as its size. Text over
/// 2 KiB is cut there (plain text, with the number of bytes left out).
std::string format_value(const PageValue& value, const ItemLabel* label);

/// The page for one identifier. Values stop once the page passes 512 KiB (a last row says how
/// many were left out; the JSON has them all).
std::string render_handle_page(const HandlePage& page);

/// The search page (GET /): one input, submitted with GET to "/?handle=". `prefill` is put back
/// into the input; `message` (may be empty) explains why the last search failed.
std::string render_search_page(std::string_view prefill, std::string_view message);

enum class Problem {
    not_found, // a valid, homed identifier that is not registered (404)
    invalid,   // not a valid identifier (400)
    not_homed, // a valid identifier whose prefix another node serves (400)
    no_page,   // a path that is not an identifier at all (404)
};
/// A helpful error page with the search form; `handle` is what the caller asked for and `detail`
/// the precise reason (both escaped).
std::string render_problem_page(Problem problem, std::string_view handle, std::string_view detail);
http::status problem_status(Problem problem) noexcept;

// ---- HTTP glue --------------------------------------------------------------------------------

/// True when `url` may go into a Location header: an absolute http:// or https:// URL with a
/// host (never javascript:, data: or a protocol-relative "//host"), at most 2048 bytes, valid
/// UTF-8 with no spaces or control characters (a CR/LF in a stored URL value must not split the
/// response). A URL value that fails this is shown on the page instead of being redirected to.
bool redirect_target_ok(std::string_view url) noexcept;

/// True when the Accept header asks for text/html (with a q-value above 0); browsers do, API
/// clients (*/*, application/json, none) do not.
bool wants_html(std::string_view accept) noexcept;

/// The page as a response with text/html, the Content-Security-Policy (no scripts, inline styles,
/// images only from this node, forms only to this node), nosniff, no framing, no referrer, and
/// "Vary: Accept" (the same URL also serves JSON). `private_view` pages are not cached.
Response page_response(const Request& request, http::status status, std::string body,
                       bool private_view = false);

/// The CSP the pages carry (also used for the QR SVG).
inline constexpr const char* kContentSecurityPolicy =
    "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; form-action 'self'; "
    "base-uri 'none'; frame-ancestors 'none'";

} // namespace idnode::resolver::html
