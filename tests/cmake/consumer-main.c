/*
 * A minimal program linked against an installed libfleets (the consumer tests). Without
 * network access it checks that the header and the library agree and that the library
 * works: version, result names, the JSON helpers, a configuration and client handle pair,
 * and an argument rejected before anything is sent. Exit 0 on success.
 */
#include <fleets.h>

#include <stdio.h>
#include <string.h>

static int fail(const char *what, fleets_result rc)
{
    char msg[256];
    fleets_last_error_message(msg, sizeof msg);
    fprintf(stderr, "consumer: %s: %s: %s\n", what, fleets_result_name(rc), msg);
    return 1;
}

int main(void)
{
    fleets_config_t *config = NULL;
    fleets_client_t *client = NULL;
    char buf[64];
    size_t len = 0;
    fleets_result rc;
    int exit_code = 1;

    if (strcmp(fleets_version(), FLEETS_VERSION) != 0) {
        fprintf(stderr, "consumer: header %s but library %s\n", FLEETS_VERSION, fleets_version());
        return 1;
    }
    if (strcmp(fleets_result_name(FLEETS_ERR_CONFLICT), "FLEETS_ERR_CONFLICT") != 0)
        return 1;
    rc = fleets_json_get_string("{\"a\":{\"b\":\"c\"}}", "/a/b", buf, sizeof buf, &len);
    if (rc != FLEETS_OK || len != 1 || strcmp(buf, "c") != 0)
        return fail("fleets_json_get_string", rc);

    rc = fleets_config_new("https://127.0.0.1:9", "ak_consumer", "consumer-secret", &config);
    if (rc != FLEETS_OK)
        return fail("fleets_config_new", rc);
    rc = fleets_client_new(config, &client);
    if (rc != FLEETS_OK) {
        fail("fleets_client_new", rc);
        goto done;
    }
    rc = fleets_shadow_get(client, "not a valid thing name", NULL, 0, NULL);
    if (rc != FLEETS_ERR_INVALID_ARGUMENT) {
        fail("fleets_shadow_get with a bad thing name", rc);
        goto done;
    }
    printf("consumer: libfleets %s OK\n", fleets_version());
    exit_code = 0;
done:
    fleets_client_free(client);
    fleets_config_free(config);
    return exit_code;
}
