/*
 * The workflows from C: argument checks, callbacks that call back into libfleets with the
 * same client (re-entrancy), a handler that writes bad details or returns a value that is
 * not a step result, and the new result codes. Run by tests/c_programs.rs::c_workflows,
 * which sets up the emulator (desired state, three jobs) and checks the outcome.
 *
 * Environment: the FLEETS_* variables, FLEETS_TEST_THING, FLEETS_TEST_STATE_DIR.
 */
#include "check.h"

#include <string.h>

static const char *thing;

struct delta_seen {
    const fleets_client_t *client;
    int calls;
    int reentrant_calls_ok;
};

static bool on_delta(const char *key, const char *value_json, void *user)
{
    struct delta_seen *seen = user;
    char body[4096];
    size_t len = 0;

    seen->calls++;
    /* Another call with the same client, on the same thread, from inside the callback. */
    if (fleets_shadow_get(seen->client, thing, body, sizeof body, &len) == FLEETS_OK &&
        fleets_last_http_status() == 200 && len > 0)
        seen->reentrant_calls_ok++;
    printf("  offered %s=%s\n", key, value_json);
    return strcmp(key, "targetTemperature") == 0 && strcmp(value_json, "24") == 0;
}

/* 0: details without a NUL; 1: a value that is not a step result; 2: success with details. */
static int handler_mode;

static fleets_job_step_result probe(fleets_job_step_t *step, void *user)
{
    (void)user;
    EXPECT_TRUE(step->client != NULL && step->details != NULL, "step has a client and details");
    EXPECT_TRUE(step->details_cap == FLEETS_JOB_DETAILS_CAP && step->details[0] == '\0',
                "details buffer is FLEETS_JOB_DETAILS_CAP bytes, empty");
    EXPECT_TRUE(strstr(step->document_json, "\"probe\"") != NULL, "document_json is the document");
    printf("  handler: job %s step %u attempt %u mode %d\n", step->job_id, (unsigned)step->step,
           (unsigned)step->attempt, handler_mode);
    switch (handler_mode) {
    case 0:
        memset(step->details, 'x', step->details_cap);
        return FLEETS_JOB_STEP_NEXT;
    case 1:
        return 42;
    default:
        snprintf(step->details, step->details_cap, "{\"step\":%u,\"attempt\":%u}",
                 (unsigned)step->step, (unsigned)step->attempt);
        return FLEETS_JOB_STEP_SUCCEEDED;
    }
}

int main(void)
{
    fleets_config_t *config = NULL;
    fleets_client_t *client = NULL;
    const char *state_dir = getenv("FLEETS_TEST_STATE_DIR");
    struct delta_seen seen = {NULL, 0, 0};
    fleets_job_handler_t entry = {"probe", probe, NULL};
    fleets_job_handler_t no_run = {"probe", NULL, NULL};
    fleets_job_handlers_t handlers;
    fleets_job_outcome_t outcome;
    uint64_t applied = 0;
    const char *sha = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    thing = getenv("FLEETS_TEST_THING");
    if (thing == NULL || state_dir == NULL) {
        fprintf(stderr, "FLEETS_TEST_THING and FLEETS_TEST_STATE_DIR are required\n");
        return 2;
    }
    EXPECT_CODE(fleets_config_from_env(&config), FLEETS_OK, "config from env");
    EXPECT_CODE(fleets_client_new(config, &client), FLEETS_OK, "client");
    fleets_config_free(config);
    if (client == NULL)
        return 1;
    seen.client = client;
    memset(&handlers, 0, sizeof handlers);
    handlers.handlers = &entry;
    handlers.count = 1;

    printf("[1] arguments\n");
    EXPECT_CODE(fleets_shadow_sync(NULL, thing, on_delta, &seen, &applied), FLEETS_ERR_NULL_ARGUMENT, "sync client");
    EXPECT_CODE(fleets_shadow_sync(client, NULL, on_delta, &seen, &applied), FLEETS_ERR_NULL_ARGUMENT, "sync thing");
    EXPECT_CODE(fleets_shadow_sync(client, thing, NULL, &seen, &applied), FLEETS_ERR_NULL_ARGUMENT, "sync callback");
    EXPECT_CODE(fleets_shadow_sync(client, thing, on_delta, &seen, NULL), FLEETS_ERR_NULL_ARGUMENT, "sync version");
    EXPECT_CODE(fleets_shadow_sync(client, "bad thing", on_delta, &seen, &applied), FLEETS_ERR_INVALID_ARGUMENT, "sync bad thing");
    EXPECT_CODE(fleets_shadow_sync_with_state_file(client, thing, on_delta, &seen, NULL, NULL), FLEETS_ERR_NULL_ARGUMENT, "sync state path");
    EXPECT_CODE(fleets_job_agent_run_once(client, thing, NULL, state_dir, &outcome), FLEETS_ERR_NULL_ARGUMENT, "agent handlers");
    EXPECT_CODE(fleets_job_agent_run_once(client, thing, &handlers, NULL, &outcome), FLEETS_ERR_NULL_ARGUMENT, "agent state dir");
    EXPECT_CODE(fleets_job_agent_run_once(client, thing, &handlers, state_dir, NULL), FLEETS_ERR_NULL_ARGUMENT, "agent outcome");
    handlers.handlers = NULL;
    EXPECT_CODE(fleets_job_agent_run_once(client, thing, &handlers, state_dir, &outcome), FLEETS_ERR_NULL_ARGUMENT, "agent table");
    handlers.handlers = &no_run;
    EXPECT_CODE(fleets_job_agent_run_once(client, thing, &handlers, state_dir, &outcome), FLEETS_ERR_NULL_ARGUMENT, "agent run");
    handlers.handlers = &entry;
    EXPECT_CODE(fleets_download(client, "https://127.0.0.1:1/f", sha, "f", 0x80, NULL, NULL), FLEETS_ERR_INVALID_ARGUMENT, "download flags");
    EXPECT_CODE(fleets_download(client, "https://127.0.0.1:1/f", "xyz", "f", 0, NULL, NULL), FLEETS_ERR_INVALID_ARGUMENT, "download sha");
    EXPECT_CODE(fleets_download(client, "http://example.com/f", sha, "f", 0, NULL, NULL), FLEETS_ERR_INVALID_ARGUMENT, "download http");
    EXPECT_CODE(fleets_download(client, NULL, sha, "f", 0, NULL, NULL), FLEETS_ERR_NULL_ARGUMENT, "download url");
    EXPECT_CODE(fleets_download(client, "https://127.0.0.1:1/f", sha, NULL, 0, NULL, NULL), FLEETS_ERR_NULL_ARGUMENT, "download dest");

    printf("[2] shadow sync with a re-entrant callback\n");
    EXPECT_CODE(fleets_shadow_sync(client, thing, on_delta, &seen, &applied), FLEETS_OK, "sync");
    EXPECT_TRUE(seen.calls == 2 && seen.reentrant_calls_ok == 2, "two offers, each made a call of its own");
    EXPECT_TRUE(applied > 0, "applied version set");
    EXPECT_CODE(fleets_shadow_sync(client, thing, on_delta, &seen, &applied), FLEETS_OK, "sync again");
    EXPECT_TRUE(seen.calls == 3, "the declined value is offered again");

    printf("[3] job agent\n");
    handler_mode = 0;
    EXPECT_CODE(fleets_job_agent_run_once(client, thing, &handlers, state_dir, &outcome), FLEETS_ERR_INVALID_JSON, "details without a NUL");
    handler_mode = 2;
    EXPECT_CODE(fleets_job_agent_run_once(client, thing, &handlers, state_dir, &outcome), FLEETS_OK, "resumed job");
    EXPECT_TRUE(outcome.kind == FLEETS_JOB_OUTCOME_SUCCEEDED && outcome.resumed, "SUCCEEDED, resumed");
    EXPECT_TRUE(strlen(outcome.job_id) > 0, "outcome names the job");
    printf("  job %s SUCCEEDED at step %u\n", outcome.job_id, (unsigned)outcome.step);
    handler_mode = 1;
    EXPECT_CODE(fleets_job_agent_run_once(client, thing, &handlers, state_dir, &outcome), FLEETS_OK, "bad result");
    EXPECT_TRUE(outcome.kind == FLEETS_JOB_OUTCOME_FAILED && !outcome.resumed, "FAILED");
    EXPECT_CODE(fleets_job_agent_run_once(client, thing, &handlers, state_dir, &outcome), FLEETS_OK, "unknown action");
    EXPECT_TRUE(outcome.kind == FLEETS_JOB_OUTCOME_REJECTED, "REJECTED");
    EXPECT_CODE(fleets_job_agent_run_once(client, thing, &handlers, state_dir, &outcome), FLEETS_OK, "no job");
    EXPECT_TRUE(outcome.kind == FLEETS_JOB_OUTCOME_NONE && outcome.job_id[0] == '\0', "no job left");

    printf("[4] result codes\n");
    EXPECT_TRUE(strcmp(fleets_result_name(FLEETS_ERR_CANCELED), "FLEETS_ERR_CANCELED") == 0, "107 named");
    EXPECT_TRUE(strcmp(fleets_result_name(FLEETS_ERR_HASH_MISMATCH), "FLEETS_ERR_HASH_MISMATCH") == 0, "310 named");
    EXPECT_TRUE(strcmp(fleets_result_name(FLEETS_ERR_RANGE_NOT_SUPPORTED), "FLEETS_ERR_RANGE_NOT_SUPPORTED") == 0, "311 named");
    EXPECT_TRUE(strcmp(fleets_result_name(FLEETS_ERR_DISK_FULL), "FLEETS_ERR_DISK_FULL") == 0, "420 named");
    EXPECT_TRUE(strcmp(fleets_result_name(FLEETS_ERR_LOCAL_FILE), "FLEETS_ERR_LOCAL_FILE") == 0, "421 named");
    EXPECT_TRUE(fleets_result_request_sent(FLEETS_ERR_CANCELED), "a canceled workflow may have sent requests");

    fleets_client_free(client);
    if (check_failures == 0)
        printf("all checks passed\n");
    return check_failures == 0 ? 0 : 1;
}
