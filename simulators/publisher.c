/* The C publisher: sends pre-generated messages at QoS 0 or 1, as fast as it can or at a rate.
 *
 *   publisher HOST PORT FILE MAX_INFLIGHT [QOS [RATE [STAMP [COUNT]]]]
 *
 * FILE holds one message per line: "<topic>\t<payload>\n" (payloads are JSON, so they hold no
 * tab or newline). Every line is read into memory first, so reading the file costs nothing while
 * publishing. QOS is 0 or 1 (default 1); RATE is messages per second (default 0: as fast as the
 * broker takes them); at most MAX_INFLIGHT QoS 1 messages are unacknowledged at a time.
 *
 * STAMP 1 (default 0): lines are "<slot>\t<topic>\t<payload>", and the first run of 13 zeros in
 * a payload is overwritten at publish time with the epoch milliseconds of the wall clock, kept
 * strictly increasing per slot (a device), so a message file can be sent again and again.
 * COUNT (default 0: the file once) is how many messages to send, going round the file.
 *
 * The broker's user and password, if it wants them, come from the environment variables
 * UW_MQTT_USERNAME and UW_MQTT_PASSWORD (never on the command line, which others can read).
 *
 * While publishing it prints "progress <seconds> <published> <acknowledged>" on stdout every
 * PROGRESS_S seconds; at the end it waits for every acknowledgement (for QoS 0: every socket write), then
 * prints "acknowledged <n> of <total> in <seconds>" (from the first publish to the last
 * acknowledgement) and exits 0 only when n == total.
 *
 * Build: cc -O2 -o publisher publisher.c -lmosquitto
 */
#include <mosquitto.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define IDLE_TIMEOUT_S 60 /* give up when no acknowledgement arrived for this long */
#define CONNACK_TIMEOUT_S 10
#define STAMP_DIGITS 13
#define PROGRESS_S 0.2 /* how often progress is printed */

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

static double seconds_since(const struct timespec *t0) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (t.tv_sec - t0->tv_sec) + (t.tv_nsec - t0->tv_nsec) / 1e9;
}

static long long wall_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

int main(int argc, char **argv) {
    if (argc < 5 || argc > 9) {
        fprintf(stderr, "usage: %s HOST PORT FILE MAX_INFLIGHT [QOS [RATE [STAMP [COUNT]]]]\n",
                argv[0]);
        return 2;
    }
    int qos = argc > 5 ? atoi(argv[5]) : 1;
    double rate = argc > 6 ? atof(argv[6]) : 0.0;
    int stamp = argc > 7 ? atoi(argv[7]) : 0;
    long count = argc > 8 ? atol(argv[8]) : 0;
    if ((qos != 0 && qos != 1) || rate < 0 || count < 0) {
        fprintf(stderr, "QOS must be 0 or 1, RATE and COUNT >= 0\n");
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
    long *slots = malloc(sizeof(long) * (total + 1));
    int *stamp_at = malloc(sizeof(int) * (total + 1));
    long n = 0, max_slot = -1;
    for (char *line = data; line < data + size && n < total;) {
        char *end = strchr(line, '\n');
        *end = '\0';
        slots[n] = 0;
        if (stamp) {
            char *tab = strchr(line, '\t');
            if (!tab) { fprintf(stderr, "line %ld has no slot\n", n + 1); return 2; }
            slots[n] = atol(line);
            if (slots[n] > max_slot) max_slot = slots[n];
            line = tab + 1;
        }
        char *tab = strchr(line, '\t');
        if (!tab) { fprintf(stderr, "line %ld has no tab\n", n + 1); return 2; }
        *tab = '\0';
        topics[n] = line;
        payloads[n] = tab + 1;
        lengths[n] = (int)(end - tab - 1);
        char *zeros = stamp ? strstr(payloads[n], "0000000000000") : NULL;
        stamp_at[n] = zeros ? (int)(zeros - payloads[n]) : -1;
        n++;
        line = end + 1;
    }
    if (n == 0) { fprintf(stderr, "%s holds no message\n", argv[3]); return 2; }
    long to_send = count > 0 ? count : n;
    long long *last_stamp = calloc(max_slot + 2, sizeof(long long));

    mosquitto_lib_init();
    struct mosquitto *mosq = mosquitto_new(NULL, true, NULL);
    if (!mosq) { fprintf(stderr, "mosquitto_new failed\n"); return 1; }
    mosquitto_int_option(mosq, MOSQ_OPT_SEND_MAXIMUM, atoi(argv[4]));
    const char *user = getenv("UW_MQTT_USERNAME");
    if (user && *user) mosquitto_username_pw_set(mosq, user, getenv("UW_MQTT_PASSWORD"));
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
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    double next_progress = PROGRESS_S;
    long sent = 0;
    for (long i = 0; i < to_send; i++) {
        long k = i % n;
        if (rate > 0 || (i & 1023) == 0) {
            double now = seconds_since(&t0);
            if (now >= next_progress) {
                printf("progress %.3f %ld %ld\n", now, i, atomic_load(&acknowledged));
                fflush(stdout);
                next_progress += PROGRESS_S;
            }
            double due = i / rate;
            if (rate > 0 && due > now + 0.001) { /* up to 1 ms early: fewer sleeps */
                double wait = due - now;
                struct timespec pause = {(time_t)wait, (long)((wait - (time_t)wait) * 1e9)};
                nanosleep(&pause, NULL);
            }
        }
        if (stamp_at[k] >= 0) {
            long long ms = wall_ms();
            if (ms <= last_stamp[slots[k]]) ms = last_stamp[slots[k]] + 1;
            last_stamp[slots[k]] = ms;
            char digits[STAMP_DIGITS + 1];
            snprintf(digits, sizeof digits, "%013lld", ms);
            memcpy(payloads[k] + stamp_at[k], digits, STAMP_DIGITS);
        }
        rc = mosquitto_publish(mosq, NULL, topics[k], lengths[k], payloads[k], qos, false);
        if (rc != MOSQ_ERR_SUCCESS) {
            fprintf(stderr, "publish %ld: %s\n", i, mosquitto_strerror(rc));
            break;
        }
        sent++;
    }
    long seen = -1;
    time_t last_progress = time(NULL);
    while (atomic_load(&acknowledged) < sent && time(NULL) - last_progress < IDLE_TIMEOUT_S) {
        long now = atomic_load(&acknowledged);
        if (now != seen) { seen = now; last_progress = time(NULL); }
        struct timespec pause = {0, 2000000};
        nanosleep(&pause, NULL);
    }
    long acked = atomic_load(&acknowledged);
    double seconds = seconds_since(&t0);
    printf("acknowledged %ld of %ld in %.3f\n", acked, to_send, seconds);
    fflush(stdout);
    mosquitto_disconnect(mosq);
    mosquitto_loop_stop(mosq, false);
    mosquitto_destroy(mosq);
    mosquitto_lib_cleanup();
    return acked == to_send ? 0 : 1;
}
