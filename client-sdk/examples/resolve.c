/* Resolves one identifier through the C ABI of the idnode SDK (ISO C89).
 *
 *   resolve URL CA_FILE HANDLE [API_KEY [RECORD_JSON]]
 *
 * With API_KEY and RECORD_JSON it first registers the record (upsert), then resolves HANDLE and
 * prints the record as JSON on stdout. On failure it prints the status name, the HTTP status, the
 * Handle response code and the server's message on stderr and exits 1 (2 for usage errors).
 */
#include <idnode/sdk.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int report(const char* what, int status) {
    fprintf(stderr, "%s: %s (http %d, rc %d): %s\n", what, idnode_strerror(status),
            idnode_last_http_status(), idnode_last_response_code(), idnode_last_error());
    return 1;
}

/* Appends `text` as a JSON string literal to out (which has room for 2 * strlen + 3 bytes). */
static void quote(char* out, const char* text) {
    char* p = out + strlen(out);
    *p++ = '"';
    for (; *text != '\0'; ++text) {
        if (*text == '"' || *text == '\\')
            *p++ = '\\';
        *p++ = *text;
    }
    *p++ = '"';
    *p = '\0';
}

int main(int argc, char** argv) {
    idnode_client* client = NULL;
    char* record = NULL;
    char* options;
    size_t size;
    int status, created = 0;

    if (argc < 4 || argc > 6) {
        fprintf(stderr, "usage: %s URL CA_FILE HANDLE [API_KEY [RECORD_JSON]]\n", argv[0]);
        return 2;
    }
    size = 64 + 2 * (strlen(argv[1]) + strlen(argv[2]) + (argc > 4 ? strlen(argv[4]) : 0));
    options = (char*)malloc(size);
    if (options == NULL)
        return 1;
    strcpy(options, "{\"url\":");
    quote(options, argv[1]);
    strcat(options, ",\"ca_file\":");
    quote(options, argv[2]);
    if (argc > 4) {
        strcat(options, ",\"api_key\":");
        quote(options, argv[4]);
    }
    strcat(options, "}");

    status = idnode_client_open(options, &client);
    free(options);
    if (status != IDNODE_OK)
        return report("open", status);

    if (argc > 5) {
        status = idnode_put(client, "upsert", argv[5], &created);
        if (status != IDNODE_OK) {
            idnode_client_close(client);
            return report("put", status);
        }
        fprintf(stderr, "%s %s\n", created ? "created" : "replaced", argv[3]);
    }

    status = idnode_resolve(client, argv[3], NULL, &record);
    if (status != IDNODE_OK) {
        idnode_client_close(client);
        return report("resolve", status);
    }
    printf("%s\n", record);
    idnode_free(record);
    idnode_client_close(client);
    return 0;
}
