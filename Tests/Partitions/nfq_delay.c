// nfq_delay QUEUE DELAY_MS: holds every packet that nftables sends to NFQUEUE number QUEUE for DELAY_MS milliseconds,
// then accepts it (in arrival order). The kernel here has no netem qdisc; this stands in for `tc netem delay`.
//
// Used by the network-partition tests (Tests/ConveyorTests/NetworkNamespace.swift), which compile it with
// `cc nfq_delay.c -lnetfilter_queue` (Debian's libnetfilter-queue-dev) and run it inside the namespace whose rules
// queue the packets. Prints "ready" once bound to the queue; runs until killed. A packet is never released early:
// it is accepted at the first wake-up at or after its due time.
#include <arpa/inet.h>
#include <errno.h>
#include <linux/netfilter.h>
#include <libnetfilter_queue/libnetfilter_queue.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#ifndef SOL_NETLINK
#define SOL_NETLINK 270
#endif
#ifndef NETLINK_NO_ENOBUFS
#define NETLINK_NO_ENOBUFS 5
#endif

#define CAPACITY 65536

struct held {
    uint32_t id;
    int64_t due_ns;
};

static struct held ring[CAPACITY];
static size_t head = 0, count = 0;
static int64_t delay_ns;

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int on_packet(struct nfq_q_handle *queue, struct nfgenmsg *message, struct nfq_data *data, void *context) {
    (void)message;
    (void)context;
    struct nfqnl_msg_packet_hdr *header = nfq_get_msg_packet_hdr(data);
    if (header == NULL) return 0;
    uint32_t id = ntohl(header->packet_id);
    if (count == CAPACITY) {
        // Full: let it through at once rather than drop it (a test asks for a delay, not more loss).
        return nfq_set_verdict(queue, id, NF_ACCEPT, 0, NULL);
    }
    ring[(head + count) % CAPACITY] = (struct held){id, now_ns() + delay_ns};
    count += 1;
    return 0;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: nfq_delay QUEUE DELAY_MS\n");
        return 2;
    }
    int number = atoi(argv[1]);
    delay_ns = (int64_t)atol(argv[2]) * 1000000;
    struct nfq_handle *handle = nfq_open();
    if (handle == NULL) {
        perror("nfq_open");
        return 1;
    }
    struct nfq_q_handle *queue = nfq_create_queue(handle, (uint16_t)number, on_packet, NULL);
    if (queue == NULL) {
        perror("nfq_create_queue");
        return 1;
    }
    if (nfq_set_mode(queue, NFQNL_COPY_META, 0) < 0) {
        perror("nfq_set_mode");
        return 1;
    }
    nfq_set_queue_maxlen(queue, CAPACITY);
    int fd = nfq_fd(handle);
    nfnl_rcvbufsiz(nfq_nfnlh(handle), 8 << 20);
    int on = 1;
    setsockopt(fd, SOL_NETLINK, NETLINK_NO_ENOBUFS, &on, sizeof on);
    printf("ready\n");
    fflush(stdout);

    static char buffer[65536];
    for (;;) {
        int timeout_ms = -1;
        if (count > 0) {
            int64_t wait = ring[head].due_ns - now_ns();
            // Rounded up: never woken before the head packet is due.
            timeout_ms = wait <= 0 ? 0 : (int)((wait + 999999) / 1000000);
        }
        struct pollfd ready = {fd, POLLIN, 0};
        int polled = poll(&ready, 1, timeout_ms);
        if (polled < 0 && errno != EINTR) {
            perror("poll");
            return 1;
        }
        if (polled > 0) {
            for (;;) {
                ssize_t got = recv(fd, buffer, sizeof buffer, MSG_DONTWAIT);
                if (got < 0) {
                    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) break;
                    if (errno == ENOBUFS) continue;
                    perror("recv");
                    return 1;
                }
                nfq_handle_packet(handle, buffer, (int)got);
            }
        }
        int64_t now = now_ns();
        while (count > 0 && ring[head].due_ns <= now) {
            nfq_set_verdict(queue, ring[head].id, NF_ACCEPT, 0, NULL);
            head = (head + 1) % CAPACITY;
            count -= 1;
        }
    }
}
