/*
 * The whole device flow through the C ABI: report, read the shadow and apply its delta with
 * the JSON helpers, publish an event, answer a command, take and finish a job.
 * Configured from FLEETS_ENDPOINT/FLEETS_API_KEY/FLEETS_API_SECRET/FLEETS_CA_FILE; the test
 * harness passes FLEETS_TEST_THING and FLEETS_TEST_EXECUTION_ID.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

/* Counts debug lines from the log callback; `user` points at the counter. */
static void count_requests(fleets_log_level level, const char *message, void *user) {
    if (level == FLEETS_LOG_DEBUG && strstr(message, " -> 200 in ") != NULL) {
        ++*(int *)user;
    }
}

int main(void) {
    const char *thing = getenv("FLEETS_TEST_THING");
    const char *execution_id = getenv("FLEETS_TEST_EXECUTION_ID");
    fleets_config_t *cfg = NULL;
    fleets_client_t *client = NULL;
    char body[8192];
    char job_id[129];
    size_t len = 0;
    int64_t target = 0;
    int64_t version = 0;
    char reported[128];
    int logged_requests = 0;
    fleets_client_stats_t stats;

    if (thing == NULL || execution_id == NULL) {
        fprintf(stderr, "FLEETS_TEST_THING and FLEETS_TEST_EXECUTION_ID must be set\n");
        return 2;
    }
    EXPECT_CODE(fleets_config_from_env(&cfg), FLEETS_OK, "config from env");
    EXPECT_CODE(fleets_config_set_timeouts(cfg, 5000, 15000), FLEETS_OK, "timeouts");
    EXPECT_CODE(fleets_client_new(cfg, &client), FLEETS_OK, "client");
    fleets_config_free(cfg); /* the client does not need it any more */
    if (client == NULL) {
        return 1;
    }
    EXPECT_CODE(fleets_set_log_callback(FLEETS_LOG_DEBUG, count_requests, &logged_requests),
                FLEETS_OK, "log callback");

    EXPECT_CODE(fleets_shadow_report(client, thing, "{\"temperature\":21.5,\"targetTemperature\":20}",
                                     "tok-001", 0, body, sizeof body, &len),
                FLEETS_OK, "report");
    EXPECT_TRUE(len == strlen(body), "out_len is the body length");

    EXPECT_CODE(fleets_shadow_get(client, thing, body, sizeof body, &len), FLEETS_OK, "get shadow");
    EXPECT_CODE(fleets_json_get_i64(body, "/delta/targetTemperature", &target), FLEETS_OK,
                "delta target");
    EXPECT_TRUE(target == 24, "desired targetTemperature is 24");
    EXPECT_CODE(fleets_json_get_i64(body, "/version", &version), FLEETS_OK, "version");

    snprintf(reported, sizeof reported, "{\"targetTemperature\":%lld}", (long long)target);
    EXPECT_CODE(fleets_shadow_report(client, thing, reported, NULL, (uint64_t)version, body,
                                     sizeof body, &len),
                FLEETS_OK, "report applied delta");
    EXPECT_CODE(fleets_shadow_get(client, thing, body, sizeof body, &len), FLEETS_OK, "get again");
    EXPECT_CODE(fleets_json_get(body, "/delta", body, sizeof body, &len), FLEETS_OK, "delta");
    EXPECT_TRUE(strcmp(body, "{}") == 0, "delta empty after applying it");

    EXPECT_CODE(fleets_event_publish(client, thing, "highTemperature", FLEETS_SEVERITY_WARN,
                                     1748390400000LL, "{\"currentTemp\":45.2}", NULL, body,
                                     sizeof body, &len),
                FLEETS_OK, "event");

    EXPECT_CODE(fleets_command_respond(client, thing, execution_id, FLEETS_EXECUTION_SUCCEEDED,
                                       "{\"currentTemperature\":24}", 0, NULL, 0, NULL),
                FLEETS_OK, "command response");

    EXPECT_CODE(fleets_jobs_get_pending(client, thing, "req-1", body, sizeof body, &len), FLEETS_OK,
                "pending jobs");
    EXPECT_CODE(fleets_jobs_start_next(client, thing, "{\"step\":\"download\"}", 30, NULL, body,
                                       sizeof body, &len),
                FLEETS_OK, "start next");
    EXPECT_CODE(fleets_json_get_string(body, "/execution/jobId", job_id, sizeof job_id, &len),
                FLEETS_OK, "job id");
    EXPECT_CODE(fleets_json_get_i64(body, "/execution/versionNumber", &version), FLEETS_OK,
                "execution version");
    EXPECT_CODE(fleets_jobs_describe(client, thing, job_id, NULL, body, sizeof body, &len), FLEETS_OK,
                "describe job");
    EXPECT_CODE(fleets_jobs_update(client, thing, job_id, FLEETS_EXECUTION_IN_PROGRESS,
                                   "{\"step\":\"install\"}", (uint64_t)version, "req-2", body,
                                   sizeof body, &len),
                FLEETS_OK, "job in progress");
    EXPECT_CODE(fleets_json_get_i64(body, "/executionState/versionNumber", &version), FLEETS_OK,
                "updated version");
    EXPECT_CODE(fleets_jobs_update(client, thing, job_id, FLEETS_EXECUTION_SUCCEEDED,
                                   "{\"installedVersion\":\"2.0.0\"}", (uint64_t)version, "req-3",
                                   body, sizeof body, &len),
                FLEETS_OK, "job succeeded");

    EXPECT_CODE(fleets_set_log_callback(FLEETS_LOG_OFF, NULL, NULL), FLEETS_OK, "log off");
    EXPECT_TRUE(logged_requests == 11, "one debug line per request");
    EXPECT_CODE(fleets_client_stats(client, &stats), FLEETS_OK, "stats");
    EXPECT_TRUE(stats.calls == 11 && stats.requests == 11 && stats.failures == 0, "stats counts");
    EXPECT_TRUE(stats.connections >= 1 && stats.bytes_sent > 0 && stats.bytes_received > 0,
                "stats bytes");

    fleets_client_free(client);
    if (check_failures == 0) {
        printf("device flow: all steps passed\n");
    }
    return check_failures == 0 ? 0 : 1;
}
