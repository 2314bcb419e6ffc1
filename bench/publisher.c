/* Load generator for the ingest benchmark: publishes pre-generated messages at QoS 1.
 *
 *   publisher HOST PORT FILE MAX_INFLIGHT
 *
 * FILE holds one message per line: "<topic>\t<payload>\n" (payloads are JSON, so they
 * hold no tab or newline). Every line is read into memory first, so reading the file
 * costs nothing while publishing. The client publishes them all at QoS 1 with at most
 * MAX_INFLIGHT unacknowledged once the broker has accepted the connection, waits for every
 * PUBACK, then prints on stdout
 * "acknowledged <n> of <total> in <seconds>" (from the first publish to the last PUBACK)
 * and exits 0 only when n == total.
 *
 * Build: cc -O2 -o publisher publisher.c -lmosquitto
 */
#include <mosquitto.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define IDLE_TIMEOUT_S 60 /* give up when no PUBACK arrived for this long */
#define CONNACK_TIMEOUT_S 10

static atomic_long acknowledged;
static atomic_int connack = -1; /* the broker's CONNACK code, -1 until it arrives */

static void on_connect(struct mosquitto *m, void *obj, int rc) {
    (void)m; (void)obj;
    atomic_store(&connack, rc);
}

static void on_publish(struct mosquitto *m, void *obj, int mid) {
    (void)m; (void)obj; (void)mid;
    atomic_fetch_add(&acknowledged, 1);
}

static char *read_file(const char *path, long *size) {
    FILE *f = fopen(path, "rb");
    if (!f) { perror(path); return NULL; }
    fseek(f, 0, SEEK_END);
    *size = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *data = malloc(*size + 1);
    if (!data || fread(data, 1, *size, f) != (size_t)*size) {
        fprintf(stderr, "cannot read %s\n", path);
        fclose(f);
        return NULL;
    }
    fclose(f);
    data[*size] = '\0';
    return data;
}

int main(int argc, char **argv) {
    if (argc != 5) {
        fprintf(stderr, "usage: %s HOST PORT FILE MAX_INFLIGHT\n", argv[0]);
        return 2;
    }
    long size = 0;
    char *data = read_file(argv[3], &size);
    if (!data) return 2;
    long total = 0;
    for (long i = 0; i < size; i++) total += data[i] == '\n';
    char **topics = malloc(sizeof(char *) * (total + 1));
    char **payloads = malloc(sizeof(char *) * (total + 1));
    int *lengths = malloc(sizeof(int) * (total + 1));
    long n = 0;
    for (char *line = data; line < data + size && n < total;) {
        char *end = strchr(line, '\n');
        char *tab = memchr(line, '\t', end - line);
        if (!tab) { fprintf(stderr, "line %ld has no tab\n", n + 1); return 2; }
        *tab = '\0';
        *end = '\0';
        topics[n] = line;
        payloads[n] = tab + 1;
        lengths[n] = (int)(end - tab - 1);
        n++;
        line = end + 1;
    }

    mosquitto_lib_init();
    struct mosquitto *mosq = mosquitto_new(NULL, true, NULL);
    if (!mosq) { fprintf(stderr, "mosquitto_new failed\n"); return 1; }
    mosquitto_int_option(mosq, MOSQ_OPT_SEND_MAXIMUM, atoi(argv[4]));
    mosquitto_publish_callback_set(mosq, on_publish);
    mosquitto_connect_callback_set(mosq, on_connect);
    int rc = mosquitto_connect(mosq, argv[1], atoi(argv[2]), 60);
    if (rc != MOSQ_ERR_SUCCESS) {
        fprintf(stderr, "connect to %s:%s: %s\n", argv[1], argv[2], mosquitto_strerror(rc));
        return 1;
    }
    mosquitto_loop_start(mosq);
    time_t connect_started = time(NULL);
    while (atomic_load(&connack) < 0 && time(NULL) - connect_started < CONNACK_TIMEOUT_S) {
        struct timespec pause = {0, 1000000};
        nanosleep(&pause, NULL);
    }
    if (atomic_load(&connack) != 0) {
        fprintf(stderr, "broker %s:%s did not accept the connection (%s)\n", argv[1], argv[2],
                atomic_load(&connack) < 0 ? "no CONNACK" : mosquitto_connack_string(connack));
        return 1;
    }
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (long i = 0; i < n; i++) {
        rc = mosquitto_publish(mosq, NULL, topics[i], lengths[i], payloads[i], 1, false);
        if (rc != MOSQ_ERR_SUCCESS) {
            fprintf(stderr, "publish %ld: %s\n", i, mosquitto_strerror(rc));
            break;
        }
    }
    long seen = -1;
    time_t last_progress = time(NULL);
    while (atomic_load(&acknowledged) < n && time(NULL) - last_progress < IDLE_TIMEOUT_S) {
        long now = atomic_load(&acknowledged);
        if (now != seen) { seen = now; last_progress = time(NULL); }
        struct timespec pause = {0, 2000000};
        nanosleep(&pause, NULL);
    }
    long acked = atomic_load(&acknowledged);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double seconds = (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
    printf("acknowledged %ld of %ld in %.3f\n", acked, n, seconds);
    fflush(stdout);
    mosquitto_disconnect(mosq);
    mosquitto_loop_stop(mosq, false);
    mosquitto_destroy(mosq);
    mosquitto_lib_cleanup();
    return acked == n ? 0 : 1;
}
