/*
 * job_agent.c: an over-the-air (OTA) firmware agent for EMQX Fleets over HTTPS, built on the
 * libfleets workflows:
 *
 *   1. shadow sync (fleets_shadow_sync_with_state_file): applies the desired "autoReboot"
 *      (whether the agent may reboot without asking) and reports the firmware version;
 *   2. job agent (fleets_job_agent_run_once): runs "updateFirmware" jobs until none is
 *      pending, surviving crashes and reboots; any other action is REJECTED by libfleets;
 *   3. resumable verified download (fleets_download) of the image the job names.
 *
 * An "updateFirmware" job document:
 *   {"action":"updateFirmware","params":{"version":"2.0.0","url":"https://...","sha256":"<64 hex>"}}
 * runs as four steps, each recorded by libfleets in the state directory before and after it
 * runs, so that a crash or power cut resumes the job where it was:
 *   0 download  fleets_download into <firmware-dir>/firmware.new: resumes a partial download,
 *               verifies the SHA-256, syncs and renames into place;
 *   1 install   renames firmware.new over firmware.bin (atomic: the installed image is the old
 *               one or the complete new one), writes firmware.version; the next step is a
 *               reboot, so it waits for the gate (autoReboot);
 *   2 reboot    asks for a reboot: the agent exits with status 3 and is started again (by
 *               systemd, a supervisor, or the test); the next start finds the step started
 *               (attempt 2): the reboot happened;
 *   3 confirm   checks the running version and reports SUCCEEDED {"installedVersion": ...}.
 *
 * Configuration comes from the environment (fleets_config_from_env):
 *   FLEETS_ENDPOINT, FLEETS_API_KEY, FLEETS_API_SECRET and optionally FLEETS_CA_FILE.
 *
 * Usage: job_agent [--thing NAME] [--state-dir DIR] [--firmware-dir DIR] [--journal FILE]
 *                  [--max-jobs N]
 *   --state-dir     where libfleets keeps the job and shadow state (default .)
 *   --firmware-dir  where firmware.bin, firmware.version and downloads live (default .)
 *   --journal       append "begin/end <job> <step> ..." lines, one per handler call (an audit
 *                   trail; the kill test reads it)
 *
 * Exit status: 0 when no job is left to run now (a job that FAILED is still a success of the
 * agent), 3 when it asks to be restarted after a reboot, 1 on a failed call, 2 on bad usage.
 */
#define _POSIX_C_SOURCE 200809L

#include <fleets.h>

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define FIELD_CAP 256
#define PATH_CAP 1024
#define EXIT_REBOOT 3

struct agent {
    const char *thing;
    const char *state_dir;
    const char *firmware_dir;
    const char *journal;
    bool auto_reboot;      /* desired "autoReboot", applied by the shadow sync */
    bool reboot_requested; /* step 2 asked for a reboot: exit 3 once the run is over */
    char version[FIELD_CAP];
};

/* Prints why a libfleets call failed: result name, HTTP status, message. */
static void report_failure(const char *what, fleets_result rc)
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
}

static bool join(char *out, const char *dir, const char *name)
{
    int n = snprintf(out, PATH_CAP, "%s/%s", dir, name);
    return n > 0 && n < PATH_CAP;
}

/* Appends one line to the journal (when there is one) with a single write(2). */
static void journal(const struct agent *a, const char *line)
{
    int fd;
    if (a->journal == NULL)
        return;
    fd = open(a->journal, O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd < 0)
        return;
    if (write(fd, line, strlen(line)) < 0)
        perror("job_agent: journal");
    close(fd);
}

/* Makes a rename in `dir` durable. */
static bool sync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY);
    bool ok = fd >= 0 && fsync(fd) == 0;
    if (fd >= 0)
        close(fd);
    return ok;
}

/* Replaces <dir>/<name> with `text` atomically (temporary file, fsync, rename, fsync dir). */
static bool write_file_atomic(const char *dir, const char *name, const char *text)
{
    char path[PATH_CAP], tmp[PATH_CAP];
    FILE *f;
    bool ok;

    if (!join(path, dir, name) || snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp)
        return false;
    f = fopen(tmp, "w");
    if (f == NULL)
        return false;
    ok = fputs(text, f) >= 0 && fflush(f) == 0 && fsync(fileno(f)) == 0;
    ok = fclose(f) == 0 && ok;
    return ok && rename(tmp, path) == 0 && sync_dir(dir);
}

/* The installed firmware version: <firmware-dir>/firmware.version, "1.0.0" when absent. */
static void read_version(struct agent *a)
{
    char path[PATH_CAP];
    FILE *f;

    strcpy(a->version, "1.0.0");
    if (!join(path, a->firmware_dir, "firmware.version") || (f = fopen(path, "r")) == NULL)
        return;
    if (fgets(a->version, sizeof a->version, f) == NULL)
        strcpy(a->version, "1.0.0");
    a->version[strcspn(a->version, "\r\n")] = '\0';
    fclose(f);
}

/* Writes {"<key>":"<value>"} into buf, the value JSON-escaped (control characters dropped). */
static void json_object1(char *buf, size_t cap, const char *key, const char *value)
{
    size_t n = (size_t)snprintf(buf, cap, "{\"%s\":\"", key);
    for (; *value != '\0' && n + 4 < cap; value++) {
        unsigned char c = (unsigned char)*value;
        if (c < 0x20)
            continue;
        if (c == '"' || c == '\\')
            buf[n++] = '\\';
        buf[n++] = (char)c;
    }
    if (n + 3 > cap)
        n = cap - 3;
    buf[n++] = '"';
    buf[n++] = '}';
    buf[n] = '\0';
}

/* ------------------------------------------------------------------------ shadow sync */

static bool on_delta(const char *key, const char *value_json, void *user)
{
    struct agent *a = user;
    if (strcmp(key, "autoReboot") == 0) {
        if (strcmp(value_json, "true") == 0 || strcmp(value_json, "false") == 0) {
            a->auto_reboot = value_json[0] == 't';
            printf("  desired autoReboot=%s applied\n", value_json);
            return true;
        }
    }
    printf("  desired %s=%s declined (not supported)\n", key, value_json);
    return false;
}

/* ------------------------------------------------------------------------ download */

static bool on_progress(uint64_t received, uint64_t total, void *user)
{
    uint64_t *next_report = user;
    if (received >= *next_report || received == total) {
        printf("  download %llu/%llu bytes\n", (unsigned long long)received,
               (unsigned long long)total);
        fflush(stdout);
        *next_report = received + (total > 0 ? total / 4 : 1048576);
    }
    return true;
}

/* ------------------------------------------------------------------------ the OTA handler */

static fleets_job_step_result fail(fleets_job_step_t *step, fleets_job_step_result result,
                                   const char *reason)
{
    printf("  job %s step %u: %s\n", step->job_id, (unsigned)step->step, reason);
    json_object1(step->details, step->details_cap, "reason", reason);
    return result;
}

static fleets_job_step_result download_step(struct agent *a, fleets_job_step_t *step,
                                            const char *url, const char *sha256)
{
    char dest[PATH_CAP];
    uint64_t next_report = 0;
    fleets_result rc;

    if (!join(dest, a->firmware_dir, "firmware.new"))
        return fail(step, FLEETS_JOB_STEP_FAILED, "firmware directory path too long");
    rc = fleets_download(step->client, url, sha256, dest, 0, on_progress, &next_report);
    switch (rc) {
    case FLEETS_OK:
        return FLEETS_JOB_STEP_NEXT;
    case FLEETS_ERR_HASH_MISMATCH:
        return fail(step, FLEETS_JOB_STEP_FAILED, "the image does not match its sha256");
    case FLEETS_ERR_INVALID_ARGUMENT:
        return fail(step, FLEETS_JOB_STEP_REJECTED, "bad url or sha256 in the job document");
    case FLEETS_ERR_CONNECT:
    case FLEETS_ERR_TIMEOUT:
    case FLEETS_ERR_IO:
    case FLEETS_ERR_SERVER:
    case FLEETS_ERR_RATE_LIMITED:
    case FLEETS_ERR_DISK_FULL:
        /* The partial download stays; a later run resumes it. */
        report_failure("firmware download", rc);
        return fail(step, FLEETS_JOB_STEP_RETRY, fleets_result_name(rc));
    default:
        report_failure("firmware download", rc);
        return fail(step, FLEETS_JOB_STEP_FAILED, fleets_result_name(rc));
    }
}

static fleets_job_step_result install_step(struct agent *a, fleets_job_step_t *step,
                                           const char *version)
{
    char from[PATH_CAP], to[PATH_CAP];

    if (!join(from, a->firmware_dir, "firmware.new") || !join(to, a->firmware_dir, "firmware.bin"))
        return fail(step, FLEETS_JOB_STEP_FAILED, "firmware directory path too long");
    /* Absent after a crash that followed the rename: the image is installed already. */
    if (rename(from, to) != 0 && errno != ENOENT)
        return fail(step, FLEETS_JOB_STEP_FAILED, "cannot install the image");
    if (!sync_dir(a->firmware_dir) || !write_file_atomic(a->firmware_dir, "firmware.version", version))
        return fail(step, FLEETS_JOB_STEP_RETRY, "cannot record the installed version");
    printf("  installed firmware %s; the next step reboots\n", version);
    return FLEETS_JOB_STEP_NEXT_GATED;
}

static fleets_job_step_result update_firmware(fleets_job_step_t *step, void *user)
{
    struct agent *a = user;
    char url[2048], sha256[FIELD_CAP], version[FIELD_CAP], line[512];
    fleets_job_step_result result;

    snprintf(line, sizeof line, "begin %s %u %u\n", step->job_id, (unsigned)step->step,
             (unsigned)step->attempt);
    journal(a, line);
    printf("  job %s step %u (attempt %u)\n", step->job_id, (unsigned)step->step,
           (unsigned)step->attempt);
    fflush(stdout);

    if (fleets_json_get_string(step->document_json, "/params/url", url, sizeof url, NULL) != FLEETS_OK ||
        fleets_json_get_string(step->document_json, "/params/sha256", sha256, sizeof sha256, NULL) != FLEETS_OK ||
        fleets_json_get_string(step->document_json, "/params/version", version, sizeof version, NULL) != FLEETS_OK)
        return fail(step, FLEETS_JOB_STEP_REJECTED, "params.url, params.sha256 and params.version are required");

    switch (step->step) {
    case 0:
        result = download_step(a, step, url, sha256);
        break;
    case 1:
        result = install_step(a, step, version);
        break;
    case 2:
        if (step->attempt == 1) {
            /* A real device would reboot here. The step stays started: the next start of
             * the agent sees attempt 2, which means the reboot happened. */
            printf("  rebooting into %s\n", version);
            a->reboot_requested = true;
            json_object1(step->details, step->details_cap, "state", "rebooting");
            result = FLEETS_JOB_STEP_RETRY;
        } else {
            result = FLEETS_JOB_STEP_NEXT;
        }
        break;
    default:
        read_version(a);
        if (strcmp(a->version, version) != 0) {
            result = fail(step, FLEETS_JOB_STEP_FAILED, "the new firmware did not boot");
        } else {
            json_object1(step->details, step->details_cap, "installedVersion", a->version);
            printf("  running firmware %s\n", a->version);
            result = FLEETS_JOB_STEP_SUCCEEDED;
        }
        break;
    }
    snprintf(line, sizeof line, "end %s %u %u\n", step->job_id, (unsigned)step->step,
             (unsigned)result);
    journal(a, line);
    return result;
}

/* The gate before the reboot step: only when the operator allows automatic reboots. */
static bool may_reboot(const fleets_job_step_t *step, void *user)
{
    struct agent *a = user;
    printf("  job %s: reboot %s\n", step->job_id,
           a->auto_reboot ? "allowed" : "deferred (desired autoReboot is false)");
    return a->auto_reboot;
}

static const char *outcome_name(fleets_job_outcome_kind kind)
{
    switch (kind) {
    case FLEETS_JOB_OUTCOME_NONE: return "no job pending";
    case FLEETS_JOB_OUTCOME_SUCCEEDED: return "SUCCEEDED";
    case FLEETS_JOB_OUTCOME_FAILED: return "FAILED";
    case FLEETS_JOB_OUTCOME_REJECTED: return "REJECTED";
    case FLEETS_JOB_OUTCOME_DEFERRED: return "deferred (waiting for the gate)";
    case FLEETS_JOB_OUTCOME_RETRY_LATER: return "to be retried later";
    case FLEETS_JOB_OUTCOME_ABANDONED: return "abandoned (canceled or timed out)";
    default: return "?";
    }
}

static int usage(void)
{
    fprintf(stderr, "usage: job_agent [--thing NAME] [--state-dir DIR] [--firmware-dir DIR] "
                    "[--journal FILE] [--max-jobs N]\n"
                    "environment: FLEETS_ENDPOINT, FLEETS_API_KEY, FLEETS_API_SECRET, "
                    "[FLEETS_CA_FILE]\n");
    return 2;
}

int main(int argc, char **argv)
{
    struct agent a = {"thermostat-001", ".", ".", NULL, true, false, ""};
    long max_jobs = 10;
    fleets_config_t *config = NULL;
    fleets_client_t *client = NULL;
    fleets_job_handler_t handler;
    fleets_job_handlers_t handlers;
    fleets_job_outcome_t outcome;
    char path[PATH_CAP], reported[512];
    uint64_t applied = 0;
    fleets_result rc;
    int exit_code = 1;
    long jobs = 0;
    int i;

    for (i = 1; i + 1 < argc; i += 2) {
        char *end = NULL;
        if (strcmp(argv[i], "--thing") == 0) {
            a.thing = argv[i + 1];
        } else if (strcmp(argv[i], "--state-dir") == 0) {
            a.state_dir = argv[i + 1];
        } else if (strcmp(argv[i], "--firmware-dir") == 0) {
            a.firmware_dir = argv[i + 1];
        } else if (strcmp(argv[i], "--journal") == 0) {
            a.journal = argv[i + 1];
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
    read_version(&a);
    printf("job_agent: libfleets %s, thing %s, firmware %s\n", fleets_version(), a.thing, a.version);

    rc = fleets_config_from_env(&config);
    if (rc != FLEETS_OK) {
        report_failure("configuration from the environment", rc);
        goto done;
    }
    rc = fleets_client_new(config, &client);
    fleets_config_free(config); /* only read by fleets_client_new */
    config = NULL;
    if (rc != FLEETS_OK) {
        report_failure("client creation", rc);
        goto done;
    }

    printf("[1/2] shadow sync\n");
    if (!join(path, a.state_dir, "shadow-sync.json"))
        goto done;
    rc = fleets_shadow_sync_with_state_file(client, a.thing, on_delta, &a, path, &applied);
    if (rc != FLEETS_OK) {
        report_failure("shadow sync", rc);
        goto done;
    }
    json_object1(reported, sizeof reported, "firmwareVersion", a.version);
    rc = fleets_shadow_report(client, a.thing, reported, NULL, 0, NULL, 0, NULL);
    if (rc != FLEETS_OK) {
        report_failure("shadow report", rc);
        goto done;
    }
    printf("  applied shadow version %llu, reported %s\n", (unsigned long long)applied, reported);

    printf("[2/2] jobs\n");
    handler.action = "updateFirmware";
    handler.run = update_firmware;
    handler.user = &a;
    memset(&handlers, 0, sizeof handlers);
    handlers.handlers = &handler;
    handlers.count = 1;
    handlers.gate = may_reboot;
    handlers.gate_user = &a;
    handlers.job_timeout_minutes = 60; /* the server times out a job this device abandons */
    handlers.max_attempts = 10;        /* starts of one step (crashes included) before FAILED */
    for (;;) {
        rc = fleets_job_agent_run_once(client, a.thing, &handlers, a.state_dir, &outcome);
        if (rc != FLEETS_OK) {
            report_failure("job agent", rc);
            goto done;
        }
        printf("  job %s: %s%s\n", outcome.job_id[0] ? outcome.job_id : "-",
               outcome_name(outcome.kind), outcome.resumed ? " (resumed)" : "");
        if (outcome.kind == FLEETS_JOB_OUTCOME_NONE || outcome.kind == FLEETS_JOB_OUTCOME_DEFERRED ||
            outcome.kind == FLEETS_JOB_OUTCOME_RETRY_LATER || ++jobs >= max_jobs)
            break;
    }
    if (a.reboot_requested) {
        printf("job_agent: rebooting (exit %d; start me again)\n", EXIT_REBOOT);
        exit_code = EXIT_REBOOT;
        goto done;
    }
    printf("job_agent: done\n");
    exit_code = 0;

done:
    fleets_client_free(client);
    fleets_config_free(config);
    return exit_code;
}
