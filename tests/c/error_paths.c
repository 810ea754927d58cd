/*
 * Error paths through the C ABI: NULL and invalid arguments, an unknown thing, a wrong
 * secret, a stale version, a buffer too small followed by fleets_last_response, and the JSON
 * helpers' errors. Configured like device_flow.c.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

int main(void) {
    const char *thing = getenv("FLEETS_TEST_THING");
    fleets_config_t *cfg = NULL;
    fleets_config_t *wrong = NULL;
    fleets_client_t *client = NULL;
    fleets_client_t *intruder = NULL;
    char small[16];
    char *big = NULL;
    char body[4096];
    size_t len = 0;
    size_t needed = 0;
    double number = 0;
    bool flag = false;

    if (thing == NULL) {
        return 2;
    }
    EXPECT_CODE(fleets_config_from_env(&cfg), FLEETS_OK, "config from env");
    EXPECT_CODE(fleets_client_new(cfg, &client), FLEETS_OK, "client");
    if (client == NULL) {
        fleets_config_free(cfg);
        return 1;
    }

    /* Arguments rejected before sending. */
    EXPECT_CODE(fleets_shadow_get(NULL, thing, body, sizeof body, &len), FLEETS_ERR_NULL_ARGUMENT,
                "NULL client");
    EXPECT_CODE(fleets_shadow_get(client, NULL, body, sizeof body, &len), FLEETS_ERR_NULL_ARGUMENT,
                "NULL thing");
    EXPECT_CODE(fleets_shadow_get(client, "a/b", body, sizeof body, &len),
                FLEETS_ERR_INVALID_ARGUMENT, "thing with a slash");
    EXPECT_CODE(fleets_shadow_report(client, thing, "[1]", NULL, 0, body, sizeof body, &len),
                FLEETS_ERR_INVALID_JSON, "reported is an array");
    EXPECT_CODE(fleets_event_publish(client, thing, "boot", (fleets_severity)7, 0, NULL, NULL, body,
                                     sizeof body, &len),
                FLEETS_ERR_INVALID_ARGUMENT, "unknown severity");
    EXPECT_CODE(fleets_shadow_get(client, thing, NULL, 10, &len), FLEETS_ERR_NULL_ARGUMENT,
                "NULL out with capacity");

    /* Server answers. */
    EXPECT_CODE(fleets_shadow_get(client, "never-registered", body, sizeof body, &len),
                FLEETS_ERR_NOT_FOUND, "unknown thing");
    EXPECT_TRUE(fleets_last_http_status() == 404, "last status 404");
    EXPECT_TRUE(strstr(body, "\"code\"") != NULL, "error body copied");

    EXPECT_CODE(fleets_shadow_report(client, thing, "{\"v\":1}", NULL, 0, NULL, 0, NULL), FLEETS_OK,
                "report");
    EXPECT_CODE(fleets_shadow_report(client, thing, "{\"v\":2}", NULL, 999, NULL, 0, NULL),
                FLEETS_ERR_CONFLICT, "stale version");

    /* Buffer too small: the body is kept for fleets_last_response. */
    EXPECT_CODE(fleets_shadow_get(client, thing, small, sizeof small, &needed),
                FLEETS_ERR_BUFFER_TOO_SMALL, "small buffer");
    EXPECT_TRUE(needed >= sizeof small, "needed size reported");
    big = malloc(needed + 1);
    if (big != NULL) {
        EXPECT_CODE(fleets_last_response(big, needed + 1, &len), FLEETS_OK, "last response");
        EXPECT_TRUE(len == needed && big[len] == '\0', "whole body, NUL-terminated");
        EXPECT_CODE(fleets_json_get_f64(big, "/reported/v", &number), FLEETS_OK, "read body");
        EXPECT_TRUE(number == 1.0, "reported v is 1");
        free(big);
    }

    /* Wrong secret. */
    EXPECT_CODE(fleets_config_new(getenv("FLEETS_ENDPOINT"), getenv("FLEETS_API_KEY"),
                                  "not-the-secret", &wrong),
                FLEETS_OK, "config with wrong secret");
    EXPECT_CODE(fleets_config_set_ca_file(wrong, getenv("FLEETS_CA_FILE")), FLEETS_OK, "CA");
    EXPECT_CODE(fleets_client_new(wrong, &intruder), FLEETS_OK, "intruder client");
    EXPECT_CODE(fleets_shadow_get(intruder, thing, body, sizeof body, &len),
                FLEETS_ERR_UNAUTHORIZED, "wrong secret");
    fleets_last_error_message(body, sizeof body);
    EXPECT_TRUE(strstr(body, "not-the-secret") == NULL, "secret not in the message");
    EXPECT_CODE(fleets_config_set_ca_file(wrong, "/nonexistent.pem"), FLEETS_ERR_INVALID_CONFIG,
                "missing CA file");

    /* JSON helpers. */
    EXPECT_CODE(fleets_json_get_bool("{\"a\":1}", "/a", &flag), FLEETS_ERR_JSON_TYPE, "type");
    EXPECT_CODE(fleets_json_get_bool("{\"a\":1}", "/b", &flag), FLEETS_ERR_JSON_NO_VALUE, "missing");
    EXPECT_CODE(fleets_json_get_bool("{\"a\":", "/a", &flag), FLEETS_ERR_INVALID_JSON, "bad doc");
    EXPECT_TRUE(strcmp(fleets_result_name(4242), "FLEETS_ERR_UNKNOWN") == 0, "unknown name");
    EXPECT_TRUE(strcmp(fleets_version(), FLEETS_VERSION) == 0, "version matches header");

    fleets_client_free(intruder);
    fleets_client_free(client);
    fleets_config_free(wrong);
    fleets_config_free(cfg);
    fleets_client_free(NULL);
    fleets_config_free(NULL);
    if (check_failures == 0) {
        printf("error paths: all checks passed\n");
    }
    return check_failures == 0 ? 0 : 1;
}
