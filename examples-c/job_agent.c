/*
 * job_agent.c: a device-side job agent for EMQX Fleets over HTTPS with libfleets.
 *
 *   1. poll the pending jobs;
 *   2. start the next job (start-next), read its job document with the JSON helpers;
 *   3. report IN_PROGRESS, "install" the document, report SUCCEEDED or FAILED with
 *      statusDetails, passing the execution's versionNumber for optimistic locking;
 *   4. repeat until no job is pending;
 *   5. answer a command execution (--command ID; over HTTPS-only the execution id reaches the
 *      device out of band, e.g. over MQTT or a local channel).
 *
 * The job documents it understands:
 *   {"operation":"install","package":"thermostat-firmware","version":"2.0.0", ...}
 * Anything else is reported FAILED with a reason in statusDetails.
 *
 * Configuration comes from the environment (fleets_config_from_env):
 *   FLEETS_ENDPOINT, FLEETS_API_KEY, FLEETS_API_SECRET and optionally FLEETS_CA_FILE.
 *
 * Usage: job_agent [--thing NAME] [--command EXECUTION_ID] [--max-jobs N]
 *
 * Exit status: 0 when every job and the command were answered (a job reported FAILED is
 * still a success of the agent), 1 on a failed call, 2 on bad usage.
 */
#include <fleets.h>

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RESPONSE_CAP 8192
#define FIELD_CAP 128

static const char *thing = "thermostat-001";
static char firmware_version[FIELD_CAP] = "1.0.0";

/* Prints why a libfleets call failed: result name, HTTP status, message, response body. */
static void report_failure(const char *what, fleets_result rc, const char *body)
{
    char msg[512];
    size_t len = fleets_last_error_message(msg, sizeof msg);
    int32_t status = fleets_last_http_status();

    fprintf(stderr, "job_agent: %s failed: %s (%u)", what, fleets_result_name(rc), (unsigned)rc);
    if (status != 0)
        fprintf(stderr, ", HTTP %d", (int)status);
    if (len > 0)
        fprintf(stderr, ": %s%s", msg, len >= sizeof msg ? "..." : "");
    fputc('\n', stderr);
    if (body != NULL && body[0] != '\0')
        fprintf(stderr, "job_agent:   response: %s\n", body);
}

/* Appends `s` as a JSON string literal to buf (of size cap, holding len bytes). */
static bool json_append_string(char *buf, size_t cap, size_t *len, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    size_t n = *len;

    if (n + 1 >= cap)
        return false;
    buf[n++] = '"';
    for (; *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;
        if (n + 7 >= cap)
            return false;
        if (c == '"' || c == '\\') {
            buf[n++] = '\\';
            buf[n++] = (char)c;
        } else if (c < 0x20) {
            memcpy(buf + n, "\\u00", 4);
            buf[n + 4] = hex[c >> 4];
            buf[n + 5] = hex[c & 0xf];
            n += 6;
        } else {
            buf[n++] = (char)c;
        }
    }
    buf[n++] = '"';
    buf[n] = '\0';
    *len = n;
    return true;
}

/* Builds {"<k1>":"<v1>","<k2>":"<v2>"} (k2 may be NULL) with the values JSON-escaped. */
static bool json_object2(char *buf, size_t cap, const char *k1, const char *v1, const char *k2,
                         const char *v2)
{
    size_t len = 0;
    int n = snprintf(buf, cap, "{\"%s\":", k1);
    if (n < 0 || (size_t)n >= cap)
        return false;
    len = (size_t)n;
    if (!json_append_string(buf, cap, &len, v1))
        return false;
    if (k2 != NULL) {
        n = snprintf(buf + len, cap - len, ",\"%s\":", k2);
        if (n < 0 || (size_t)n >= cap - len)
            return false;
        len += (size_t)n;
        if (!json_append_string(buf, cap, &len, v2))
            return false;
    }
    if (len + 2 > cap)
        return false;
    buf[len++] = '}';
    buf[len] = '\0';
    return true;
}

/*
 * Reports a status and returns the execution's new versionNumber in *version (the expected
 * version of the next update).
 */
static fleets_result update_job(fleets_client_t *client, const char *job_id,
                                fleets_execution_status status, const char *details,
                                int64_t *version)
{
    char out[RESPONSE_CAP];
    size_t out_len = 0;
    int64_t new_version = 0;
    fleets_result rc = fleets_jobs_update(client, thing, job_id, status, details,
                                          (uint64_t)*version, NULL, out, sizeof out, &out_len);
    if (rc != FLEETS_OK) {
        report_failure("job update", rc, out);
        return rc;
    }
    rc = fleets_json_get_i64(out, "/executionState/versionNumber", &new_version);
    if (rc != FLEETS_OK) {
        report_failure("reading /executionState/versionNumber", rc, out);
        return rc;
    }
    printf("  update   %s -> version %lld\n",
           status == FLEETS_EXECUTION_IN_PROGRESS ? "IN_PROGRESS"
           : status == FLEETS_EXECUTION_SUCCEEDED ? "SUCCEEDED"
                                                  : "FAILED",
           (long long)new_version);
    *version = new_version;
    return FLEETS_OK;
}

/*
 * "Installs" a job document: checks it and, for a real device, would download, verify and
 * flash the package. On failure writes a reason to `reason`.
 */
static bool install(const char *execution, char *reason, size_t reason_cap)
{
    char operation[FIELD_CAP];
    char package[FIELD_CAP];
    char version[FIELD_CAP];
    fleets_result rc;

    rc = fleets_json_get_string(execution, "/jobDocument/operation", operation, sizeof operation,
                                NULL);
    if (rc != FLEETS_OK) {
        snprintf(reason, reason_cap, "jobDocument.operation: %s", fleets_result_name(rc));
        return false;
    }
    if (strcmp(operation, "install") != 0) {
        snprintf(reason, reason_cap, "unsupported operation");
        return false;
    }
    rc = fleets_json_get_string(execution, "/jobDocument/package", package, sizeof package, NULL);
    if (rc != FLEETS_OK) {
        snprintf(reason, reason_cap, "jobDocument.package: %s", fleets_result_name(rc));
        return false;
    }
    rc = fleets_json_get_string(execution, "/jobDocument/version", version, sizeof version, NULL);
    if (rc != FLEETS_OK) {
        snprintf(reason, reason_cap, "jobDocument.version: %s", fleets_result_name(rc));
        return false;
    }
    printf("  install  %s %s (was %s)\n", package, version, firmware_version);
    memcpy(firmware_version, version, sizeof firmware_version);
    return true;
}

/* Runs one job. *none = true when nothing was pending. */
static fleets_result run_next_job(fleets_client_t *client, bool *none)
{
    char out[RESPONSE_CAP];
    char execution[RESPONSE_CAP];
    char job_id[FIELD_CAP];
    char details[256];
    char reason[160];
    size_t len = 0;
    int64_t version = 0;
    fleets_result rc;

    *none = false;
    rc = fleets_jobs_start_next(client, thing, "{\"agent\":\"job_agent\"}", 10, NULL, out,
                                sizeof out, &len);
    if (rc != FLEETS_OK) {
        report_failure("jobs start-next", rc, out);
        return rc;
    }
    /* {} when nothing is pending, else {"execution":{..}}. */
    rc = fleets_json_get(out, "/execution", execution, sizeof execution, &len);
    if (rc == FLEETS_ERR_JSON_NO_VALUE) {
        *none = true;
        return FLEETS_OK;
    }
    if (rc != FLEETS_OK) {
        report_failure("reading /execution", rc, out);
        return rc;
    }
    if ((rc = fleets_json_get_string(execution, "/jobId", job_id, sizeof job_id, NULL)) != FLEETS_OK ||
        (rc = fleets_json_get_i64(execution, "/versionNumber", &version)) != FLEETS_OK) {
        report_failure("reading the execution", rc, execution);
        return rc;
    }
    printf("  started  %s (version %lld): %s\n", job_id, (long long)version, execution);

    if (!json_object2(details, sizeof details, "step", "installing", NULL, NULL))
        return FLEETS_ERR_INTERNAL;
    rc = update_job(client, job_id, FLEETS_EXECUTION_IN_PROGRESS, details, &version);
    if (rc != FLEETS_OK)
        return rc;

    if (install(execution, reason, sizeof reason)) {
        if (!json_object2(details, sizeof details, "installedVersion", firmware_version, NULL,
                          NULL))
            return FLEETS_ERR_INTERNAL;
        return update_job(client, job_id, FLEETS_EXECUTION_SUCCEEDED, details, &version);
    }
    printf("  cannot install: %s\n", reason);
    if (!json_object2(details, sizeof details, "reason", reason, "firmwareVersion",
                      firmware_version))
        return FLEETS_ERR_INTERNAL;
    return update_job(client, job_id, FLEETS_EXECUTION_FAILED, details, &version);
}

static fleets_result answer_command(fleets_client_t *client, const char *execution_id,
                                    int jobs_done)
{
    char result[256];
    char out[RESPONSE_CAP];
    size_t len = 0;
    int n;
    fleets_result rc;

    if (!json_object2(result, sizeof result, "firmwareVersion", firmware_version, NULL, NULL))
        return FLEETS_ERR_INTERNAL;
    /* Append ,"jobsProcessed":N before the closing brace. */
    len = strlen(result);
    n = snprintf(result + len - 1, sizeof result - (len - 1), ",\"jobsProcessed\":%d}", jobs_done);
    if (n < 0 || (size_t)n >= sizeof result - (len - 1))
        return FLEETS_ERR_INTERNAL;

    rc = fleets_command_respond(client, thing, execution_id, FLEETS_EXECUTION_SUCCEEDED, result,
                                0 /* now */, out, sizeof out, &len);
    if (rc != FLEETS_OK) {
        report_failure("command response", rc, out);
        return rc;
    }
    printf("  sent     SUCCEEDED %s\n  response %s\n", result, out);
    return FLEETS_OK;
}

static int usage(void)
{
    fprintf(stderr, "usage: job_agent [--thing NAME] [--command EXECUTION_ID] [--max-jobs N]\n"
                    "environment: FLEETS_ENDPOINT, FLEETS_API_KEY, FLEETS_API_SECRET, "
                    "[FLEETS_CA_FILE]\n");
    return 2;
}

int main(int argc, char **argv)
{
    const char *command_id = NULL;
    long max_jobs = 10;
    fleets_config_t *config = NULL;
    fleets_client_t *client = NULL;
    char out[RESPONSE_CAP];
    size_t len = 0;
    fleets_result rc;
    int jobs_done = 0;
    int exit_code = 1;
    int i;

    for (i = 1; i + 1 < argc; i += 2) {
        char *end = NULL;
        if (strcmp(argv[i], "--thing") == 0) {
            thing = argv[i + 1];
        } else if (strcmp(argv[i], "--command") == 0) {
            command_id = argv[i + 1];
        } else if (strcmp(argv[i], "--max-jobs") == 0) {
            max_jobs = strtol(argv[i + 1], &end, 10);
            if (*end != '\0' || max_jobs < 0)
                return usage();
        } else {
            return usage();
        }
    }
    if (i != argc)
        return usage();

    printf("job_agent: libfleets %s, thing %s\n", fleets_version(), thing);

    rc = fleets_config_from_env(&config);
    if (rc != FLEETS_OK) {
        report_failure("configuration from the environment", rc, NULL);
        goto done;
    }
    rc = fleets_client_new(config, &client);
    fleets_config_free(config); /* only read by fleets_client_new */
    config = NULL;
    if (rc != FLEETS_OK) {
        report_failure("client creation", rc, NULL);
        goto done;
    }

    printf("[1/3] pending jobs\n");
    rc = fleets_jobs_get_pending(client, thing, "job-agent-poll", out, sizeof out, &len);
    if (rc != FLEETS_OK) {
        report_failure("jobs get", rc, out);
        goto done;
    }
    printf("  response %s\n", out);

    printf("[2/3] run jobs\n");
    while (jobs_done < max_jobs) {
        bool none = false;
        if (run_next_job(client, &none) != FLEETS_OK)
            goto done;
        if (none)
            break;
        jobs_done++;
    }
    printf("  %d job(s) done, firmware %s\n", jobs_done, firmware_version);

    if (command_id != NULL) {
        printf("[3/3] answer command %s\n", command_id);
        if (answer_command(client, command_id, jobs_done) != FLEETS_OK)
            goto done;
    } else {
        printf("[3/3] no command to answer\n");
    }

    printf("job_agent: done\n");
    exit_code = 0;

done:
    fleets_client_free(client);
    fleets_config_free(config);
    return exit_code;
}
