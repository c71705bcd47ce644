/* idnode/sdk.h - the C ABI of the idnode client SDK (C89; C#, Java/JNA and Python/ctypes bind
 * to this).
 *
 *   idnode_client *c = NULL;
 *   char *rec = NULL;
 *   int st = idnode_client_open("{\"url\":\"https://127.0.0.1:8443\",\"ca_file\":\"ca.pem\"}", &c);
 *   if (st == IDNODE_OK) st = idnode_resolve(c, "88.118.8/SN-1", NULL, &rec);
 *   if (st != IDNODE_OK) fprintf(stderr, "%s: %s\n", idnode_strerror(st), idnode_last_error());
 *   idnode_free(rec);
 *   idnode_client_close(c);
 *
 * Conventions
 * - Every call returns an int status: IDNODE_OK (0) or one of IDNODE_E_*.
 * - Records, filters and options are JSON text (UTF-8, NUL-terminated) in and out; the record
 *   shape is the Handle REST one: {"handle":...,"values":[{"index","type","data",...}]}.
 * - Strings returned through `char **` are allocated by the SDK; free them with idnode_free().
 *   On failure *out is set to NULL.
 * - After a failed call, idnode_last_error(), idnode_last_http_status() and
 *   idnode_last_response_code() describe it; they are per thread and valid until the thread's
 *   next call into the SDK.
 * - An idnode_client may be used from many threads at once (it pools TLS connections).
 *   idnode_client_close must not race with other calls on the same client.
 */
#ifndef IDNODE_SDK_H
#define IDNODE_SDK_H

#if defined(IDNODE_SDK_BUILDING) && defined(__GNUC__)
#define IDNODE_C_API __attribute__((visibility("default")))
#else
#define IDNODE_C_API
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* Status codes (the same numbers as idnode::sdk::ErrorKind). */
#define IDNODE_OK 0
#define IDNODE_E_INVALID_ARGUMENT 1 /* input rejected before anything was sent */
#define IDNODE_E_CONNECT 2          /* TCP connection failed */
#define IDNODE_E_TLS 3              /* TLS handshake / certificate verification failed */
#define IDNODE_E_TIMEOUT 4
#define IDNODE_E_CONNECTION 5 /* connection broke during a request */
#define IDNODE_E_PROTOCOL 6   /* unexpected answer */
#define IDNODE_E_HTTP 7       /* the server answered with an error status */
#define IDNODE_E_AUTH 8       /* credentials rejected */
#define IDNODE_E_NOT_FOUND 9  /* HTTP 404 / Handle RC 100 */
#define IDNODE_E_CONFLICT 10  /* HTTP 409 / Handle RC 101 */
#define IDNODE_E_CANCELLED 11

typedef struct idnode_client idnode_client;

/* A static, human-readable name for a status ("not found"); never NULL. */
IDNODE_C_API const char* idnode_strerror(int status);
/* The SDK version, e.g. "0.1.0". */
IDNODE_C_API const char* idnode_version(void);

/* Details of this thread's last failed call ("" / 0 when there is none). */
IDNODE_C_API const char* idnode_last_error(void);
IDNODE_C_API int idnode_last_http_status(void);
IDNODE_C_API int idnode_last_response_code(void);

/* Frees a string returned by the SDK; NULL is fine. */
IDNODE_C_API void idnode_free(char* p);

/* options_json: {"url", "ca_file", "insecure_skip_verify", "api_key", "username", "password",
 * "password_auth": "automatic"|"token"|"basic", "connect_timeout_ms", "request_timeout_ms",
 * "max_connections", "max_attempts"}; every key optional. No connection is made yet. */
IDNODE_C_API int idnode_client_open(const char* options_json, idnode_client** out);
IDNODE_C_API void idnode_client_close(idnode_client* client);

/* GET a record. filter_json may be NULL or {"types":[...],"indices":[...]}.
 * *record_json: {"handle":...,"values":[...]} */
IDNODE_C_API int idnode_resolve(idnode_client* client, const char* handle, const char* filter_json,
                                char** record_json);
/* handles_json: ["88.1/a", ...] -> *records_json: [{"handle","responseCode","values"}, ...] */
IDNODE_C_API int idnode_resolve_many(idnode_client* client, const char* handles_json,
                                     char** records_json);
/* record_json: {"handle":...,"templateVersion"?:...,"values":[...]}.
 * mode: "create" (fails with IDNODE_E_CONFLICT if it exists), "replace" or "upsert".
 * *created (may be NULL) is set to 1 when the record was new, else 0. */
IDNODE_C_API int idnode_put(idnode_client* client, const char* mode, const char* record_json,
                            int* created);
IDNODE_C_API int idnode_delete(idnode_client* client, const char* handle);
/* Adds values or replaces those with the same index, keeping the others; a record that does not
 * exist is created with these values (as the Handle REST PUT ?index= does).
 * values_json: [{"index":2000,"type":"batch","data":"B7"}, ...] (the record's "values" shape). */
IDNODE_C_API int idnode_set_values(idnode_client* client, const char* handle,
                                   const char* values_json);
/* Removes the values with these indices; indices_json: [2000, 2001]. An index that is absent is
 * not an error; removing every value deletes the record. */
IDNODE_C_API int idnode_remove_values(idnode_client* client, const char* handle,
                                      const char* indices_json);
/* One page of the identifiers under exactly `prefix`, in key order. cursor: NULL or "" for the
 * first page, else the previous page's "nextCursor". page_size: 1..1000 (0 = 1000).
 * *page_json: {"handles":["88.118.8/A", ...],"nextCursor":"..."}; no nextCursor on the last page.
 * Walking a prefix this way skips nothing when records are added meanwhile. */
IDNODE_C_API int idnode_list_handles(idnode_client* client, const char* prefix, const char* cursor,
                                     unsigned page_size, char** page_json);

/* Any request with the client's credentials; any HTTP status is success at this level.
 * body may be NULL. *http_status and *response_body receive the answer. */
IDNODE_C_API int idnode_request(idnode_client* client, const char* method, const char* target,
                                const char* body, int* http_status, char** response_body);

/* Bulk load (POST /api/v1/bulk) of NDJSON text (one record per line).
 * options_json: {"mode": "create"|"upsert"|"replace", "streams": N}; may be NULL.
 * *summary_json: {"records","created","replaced","unchanged","errors","resent","elapsed_s",
 *                 "rejected":[{"index","handle","code","message"}, ...]} */
IDNODE_C_API int idnode_bulk(idnode_client* client, const char* options_json, const char* ndjson,
                             char** summary_json);

#ifdef __cplusplus
}
#endif

#endif /* IDNODE_SDK_H */
