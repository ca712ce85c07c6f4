// Copied from Tern's shared benchmark yardsticks (shared/bench/udpfwd.c, written for this
// project's performance anchors; see docs/PERFORMANCE.md). Unchanged but for this header.
//
// udpfwd.c - bare single-threaded UDP forwarder: the "no-protocol" ceiling.
// Receives datagrams on one UDP socket and sends each one unchanged to a
// fixed destination address. Loopback only by default.
//
//   udpfwd -l 127.0.0.1:35000 -d 127.0.0.1:35001 [-b BATCH] [-t MAX_SECONDS] [-i IDLE_S]
//
//   -b 1      : plain recvfrom()/sendto(), one syscall each per packet
//   -b N (>1) : recvmmsg(MSG_WAITFORONE)/sendmmsg() batches of up to N
//   -t        : hard time limit (default 60 s)
//   -i        : exit after this many seconds without traffic once traffic started (default 2)
//
// On exit prints one line:  FWD pkts=.. bytes=.. active_s=.. cpu_user=.. cpu_sys=.. pps=.. pkts_per_cpu_s=..
// active_s is from the first to the last forwarded packet.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define MAXB 256
#define MAXLEN 2048

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int parse_addr(const char *s, struct sockaddr_in *a) {
    char buf[64];
    const char *c = strrchr(s, ':');
    if (!c || (size_t)(c - s) >= sizeof(buf)) return -1;
    memcpy(buf, s, c - s);
    buf[c - s] = 0;
    memset(a, 0, sizeof(*a));
    a->sin_family = AF_INET;
    a->sin_port = htons(atoi(c + 1));
    if (inet_pton(AF_INET, buf, &a->sin_addr) != 1) return -1;
    uint32_t ip = ntohl(a->sin_addr.s_addr);
    if ((ip >> 24) != 127) { fprintf(stderr, "refusing non-loopback address %s\n", s); return -1; }
    return 0;
}

int main(int argc, char **argv) {
    const char *laddr = "127.0.0.1:35000", *daddr = "127.0.0.1:35001";
    int batch = 64;
    double tmax = 60, idle = 2;
    int opt;
    while ((opt = getopt(argc, argv, "l:d:b:t:i:")) != -1) {
        switch (opt) {
        case 'l': laddr = optarg; break;
        case 'd': daddr = optarg; break;
        case 'b': batch = atoi(optarg); break;
        case 't': tmax = atof(optarg); break;
        case 'i': idle = atof(optarg); break;
        default: fprintf(stderr, "usage: %s -l ip:port -d ip:port [-b batch] [-t max_s] [-i idle_s]\n", argv[0]); return 2;
        }
    }
    if (batch < 1) batch = 1;
    if (batch > MAXB) batch = MAXB;
    struct sockaddr_in la, da;
    if (parse_addr(laddr, &la) || parse_addr(daddr, &da)) return 2;

    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    int sz = 4 << 20;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
    if (bind(fd, (struct sockaddr *)&la, sizeof(la)) < 0) { perror("bind"); return 1; }

    static char bufs[MAXB][MAXLEN];
    static struct mmsghdr rmsg[MAXB], smsg[MAXB];
    static struct iovec riov[MAXB], siov[MAXB];
    for (int i = 0; i < MAXB; i++) {
        riov[i].iov_base = bufs[i];
        riov[i].iov_len = MAXLEN;
        rmsg[i].msg_hdr.msg_iov = &riov[i];
        rmsg[i].msg_hdr.msg_iovlen = 1;
        siov[i].iov_base = bufs[i];
        smsg[i].msg_hdr.msg_iov = &siov[i];
        smsg[i].msg_hdr.msg_iovlen = 1;
        smsg[i].msg_hdr.msg_name = &da;
        smsg[i].msg_hdr.msg_namelen = sizeof(da);
    }

    unsigned long long pkts = 0, bytes = 0, senderr = 0;
    double t0 = now(), tfirst = 0, tlast = 0;
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    for (;;) {
        double t = now();
        if (t - t0 > tmax) break;
        if (pkts && t - tlast > idle) break;
        // poll with a timeout so the loop is bounded in time even if nothing arrives
        int pr = poll(&pfd, 1, 200);
        if (pr <= 0) continue;
        // drain until EAGAIN (like an edge-triggered mio/epoll loop), bounded per wakeup
        for (int iter = 0; iter < 4096; iter++) {
            if (batch == 1) {
                struct sockaddr_in src;
                socklen_t sl = sizeof(src);
                ssize_t n = recvfrom(fd, bufs[0], MAXLEN, MSG_DONTWAIT, (struct sockaddr *)&src, &sl);
                if (n < 0) break;
                if (sendto(fd, bufs[0], n, 0, (struct sockaddr *)&da, sizeof(da)) < 0) senderr++;
                pkts++;
                bytes += n;
            } else {
                int n = recvmmsg(fd, rmsg, batch, MSG_DONTWAIT, NULL);
                if (n <= 0) break;
                for (int i = 0; i < n; i++) {
                    siov[i].iov_len = rmsg[i].msg_len;
                    bytes += rmsg[i].msg_len;
                }
                int off = 0;
                while (off < n) {
                    int s = sendmmsg(fd, smsg + off, n - off, 0);
                    if (s <= 0) { senderr += n - off; break; }
                    off += s;
                }
                pkts += n;
            }
        }
        tlast = now();
        if (!tfirst) tfirst = tlast;
    }
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double cu = ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6;
    double cs = ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
    double act = tlast > tfirst ? tlast - tfirst : 0;
    printf("FWD batch=%d pkts=%llu bytes=%llu senderr=%llu active_s=%.3f cpu_user=%.3f cpu_sys=%.3f pps=%.0f pkts_per_cpu_s=%.0f\n",
           batch, pkts, bytes, senderr, act, cu, cs, act > 0 ? pkts / act : 0, (cu + cs) > 0 ? pkts / (cu + cs) : 0);
    return 0;
}
