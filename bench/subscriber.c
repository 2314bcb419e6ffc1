/* The `bench limits` subscriber: counts the messages of one topic filter, as fast as it can.
 *
 *   subscriber HOST PORT TOPIC QOS EXPECTED
 *
 * Subscribes at QOS, prints "ready" once the broker has acknowledged the subscription, then
 * counts messages until EXPECTED arrived or none came for IDLE_S seconds (QoS 0 may lose some),
 * and prints "received <n> in <seconds>" (from the first message to the last). Exit 0.
 *
 * Build: cc -O2 -o subscriber subscriber.c -lmosquitto
 */
#include <mosquitto.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define IDLE_S 3.0
#define START_TIMEOUT_S 120.0 /* no message at all for this long: give up */

static atomic_long received;
static atomic_int subscribed;
static struct timespec first, last;

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

static void on_subscribe(struct mosquitto *m, void *obj, int mid, int n, const int *granted) {
    (void)m; (void)obj; (void)mid; (void)n; (void)granted;
    atomic_store(&subscribed, 1);
}

static void on_message(struct mosquitto *m, void *obj, const struct mosquitto_message *msg) {
    (void)m; (void)obj; (void)msg;
    /* only the network thread writes these; main reads them after loop_stop */
    clock_gettime(CLOCK_MONOTONIC, &last);
    if (atomic_fetch_add(&received, 1) == 0) first = last;
}

int main(int argc, char **argv) {
    if (argc != 6) {
        fprintf(stderr, "usage: %s HOST PORT TOPIC QOS EXPECTED\n", argv[0]);
        return 2;
    }
    long expected = atol(argv[5]);
    mosquitto_lib_init();
    struct mosquitto *mosq = mosquitto_new(NULL, true, NULL);
    if (!mosq) { fprintf(stderr, "mosquitto_new failed\n"); return 1; }
    mosquitto_subscribe_callback_set(mosq, on_subscribe);
    mosquitto_message_callback_set(mosq, on_message);
    int rc = mosquitto_connect(mosq, argv[1], atoi(argv[2]), 60);
    if (rc != MOSQ_ERR_SUCCESS) {
        fprintf(stderr, "connect to %s:%s: %s\n", argv[1], argv[2], mosquitto_strerror(rc));
        return 1;
    }
    mosquitto_subscribe(mosq, NULL, argv[3], atoi(argv[4]));
    mosquitto_loop_start(mosq);
    double started = now_s();
    while (!atomic_load(&subscribed)) {
        if (now_s() - started > 10) { fprintf(stderr, "no SUBACK\n"); return 1; }
        struct timespec pause = {0, 1000000};
        nanosleep(&pause, NULL);
    }
    printf("ready\n");
    fflush(stdout);
    long seen = 0;
    double moved = now_s();
    for (;;) {
        struct timespec pause = {0, 20000000};
        nanosleep(&pause, NULL);
        long n = atomic_load(&received);
        if (n >= expected) break;
        if (n != seen) { seen = n; moved = now_s(); }
        else if (now_s() - moved > (n ? IDLE_S : START_TIMEOUT_S)) break;
    }
    mosquitto_disconnect(mosq);
    mosquitto_loop_stop(mosq, false);
    double seconds = (last.tv_sec - first.tv_sec) + (last.tv_nsec - first.tv_nsec) / 1e9;
    printf("received %ld in %.3f\n", atomic_load(&received), seconds);
    mosquitto_destroy(mosq);
    mosquitto_lib_cleanup();
    return 0;
}
