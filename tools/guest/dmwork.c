/* dmwork: the randomized guest workload for deepmem dumps (runs inside the QEMU guest, static).
 *
 *   dmwork SEED PROCS MAX_THREADS MAX_FILES EXIT_PCT CHURN_KB
 *
 * Plans PROCS processes from SEED (each may have threads, open files of many kinds, pipes, sockets,
 * file and anonymous mappings, and children of its own), forks them, and returns only when the
 * workload is quiescent: every surviving process and thread is parked in pause(), every process
 * meant to exit before the dump has exited and been reaped (its memory is freed residue), and no
 * fork is in flight. The survivors stay behind under a master process that is also parked.
 * Prints one summary line (planned counts) on stdout. Exits non-zero with a one-line error when
 * the workload could not be built (the init script then reports the failure on the console).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/mman.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

static void die(const char *what) {
    fprintf(stderr, "dmwork: %s: %s\n", what, strerror(errno));
    _exit(2);
}

/* splitmix64: tiny, seedable, identical on every libc */
static uint64_t rng_next(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
static unsigned rng_below(uint64_t *s, unsigned n) { return n ? (unsigned)(rng_next(s) % n) : 0; }

struct plan {
    int parent;      /* index of the planning parent, -1 = master */
    int exits;       /* exits (and is reaped) before the dump */
    unsigned threads;
    unsigned files;
    unsigned churn_kb;
    uint64_t seed;
};

static struct plan *plans;
static int nplans;
static int ready_w = -1;     /* every process writes one byte here when settled: 'R' parked, 'X' exiting */

/* ---- memory churn: fill buffers with a recognizable pattern, keep some, free the rest ---- */
static void churn(uint64_t *s, unsigned kb, int tag) {
    unsigned done = 0;
    while (done < kb) {
        unsigned chunk = 4 + rng_below(s, 252);              /* 4..255 KiB */
        if (chunk > kb - done) chunk = kb - done;
        size_t n = (size_t)chunk * 1024;
        unsigned char *p = malloc(n);
        if (!p) die("malloc");
        for (size_t i = 0; i < n; i += 64) {
            snprintf((char *)p + i, 64 < n - i ? 64 : n - i, "dmwork-%d-%zu", tag, i);
        }
        if (rng_below(s, 3) == 0) { /* keep a third, free the rest: both live data and freed residue */ }
        else free(p);
        done += chunk;
    }
}

/* ---- open files of several kinds; every fd stays open until the dump ---- */
static void open_files(uint64_t *s, unsigned n, int idx) {
    char path[128];
    for (unsigned k = 0; k < n; ++k) {
        switch (rng_below(s, 14)) {
        case 0: {   /* regular file written on tmpfs */
            snprintf(path, sizeof path, "/tmp/work/f-%d-%u", idx, k);
            int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
            if (fd < 0) die("open tmpfs file");
            char buf[256];
            int len = snprintf(buf, sizeof buf, "deepmem workload file %d/%u\n", idx, k);
            if (write(fd, buf, (size_t)len) != len) die("write tmpfs file");
            break;
        }
        case 1: if (open("/dev/null", O_RDWR) < 0) die("open /dev/null"); break;
        case 2: if (open("/dev/zero", O_RDONLY) < 0) die("open /dev/zero"); break;
        case 3: if (open("/proc/self/status", O_RDONLY) < 0) die("open /proc/self/status"); break;
        case 4: if (open("/", O_RDONLY | O_DIRECTORY) < 0) die("open /"); break;
        case 5: { int p[2]; if (pipe(p) < 0) die("pipe"); break; }
        case 6: { int p[2]; if (socketpair(AF_UNIX, SOCK_STREAM, 0, p) < 0) die("socketpair"); break; }
        case 7: {   /* TCP over loopback: listener, client and accepted end */
            int l = socket(AF_INET, SOCK_STREAM, 0);
            if (l < 0) die("socket tcp");
            struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
            if (bind(l, (struct sockaddr *)&a, sizeof a) < 0 || listen(l, 4) < 0) die("bind/listen tcp");
            socklen_t al = sizeof a;
            if (getsockname(l, (struct sockaddr *)&a, &al) < 0) die("getsockname");
            int c = socket(AF_INET, SOCK_STREAM, 0);
            if (c < 0 || connect(c, (struct sockaddr *)&a, sizeof a) < 0) die("connect tcp");
            if (accept(l, NULL, NULL) < 0) die("accept tcp");
            if (write(c, "hello", 5) != 5) die("write tcp");
            break;
        }
        case 8: {   /* UDP socket bound to loopback */
            int u = socket(AF_INET, SOCK_DGRAM, 0);
            struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
            if (u < 0 || bind(u, (struct sockaddr *)&a, sizeof a) < 0) die("udp socket");
            break;
        }
        case 9: if (eventfd(0, 0) < 0) die("eventfd"); break;
        case 10: if (epoll_create1(0) < 0) die("epoll_create1"); break;
        case 11: if (timerfd_create(CLOCK_MONOTONIC, 0) < 0) die("timerfd_create"); break;
        case 12: {  /* memfd with a little data, also mapped */
            int fd = memfd_create("dmwork", 0);
            if (fd < 0 || ftruncate(fd, 8192) < 0) die("memfd_create");
            char *m = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
            if (m == MAP_FAILED) die("mmap memfd");
            snprintf(m, 8192, "memfd of process %d", idx);
            break;
        }
        case 13: {  /* unix datagram socket bound to a path, or inotify */
            if (rng_below(s, 2)) {
                if (inotify_init1(0) < 0) die("inotify_init1");
            } else {
                int u = socket(AF_UNIX, SOCK_DGRAM, 0);
                struct sockaddr_un a = {.sun_family = AF_UNIX};
                snprintf(a.sun_path, sizeof a.sun_path, "/tmp/work/s-%d-%u", idx, k);
                if (u < 0 || bind(u, (struct sockaddr *)&a, sizeof a) < 0) die("unix socket");
            }
            break;
        }
        }
    }
}

/* ---- threads: each allocates a little and parks ---- */
static pthread_barrier_t settled;

static void *thread_main(void *arg) {
    uint64_t s = (uint64_t)(uintptr_t)arg;
    churn(&s, 16 + rng_below(&s, 64), (int)(s & 0xffff));
    pthread_barrier_wait(&settled);
    for (;;) pause();
    return NULL;
}

static void run_process(int idx);

/* fork every planned child of `idx` (idx = -1: the master's children); returns their count */
static int spawn_children(int idx, pid_t *pids) {
    int n = 0;
    for (int i = 0; i < nplans; ++i) {
        if (plans[i].parent != idx) continue;
        pid_t p = fork();
        if (p < 0) die("fork");
        if (p == 0) { run_process(i); _exit(0); }
        pids[i] = p;
        ++n;
    }
    return n;
}

/* reap the children of `idx` that exit before the dump (each wrote 'X' just before exiting) */
static void reap_exiters(int idx, pid_t *pids) {
    for (int i = 0; i < nplans; ++i) {
        if (plans[i].parent != idx || !plans[i].exits) continue;
        if (waitpid(pids[i], NULL, 0) < 0) die("waitpid");
    }
}

static void run_process(int idx) {
    struct plan *pl = &plans[idx];
    uint64_t s = pl->seed;
    pid_t *pids = calloc((size_t)nplans, sizeof *pids);
    if (!pids) die("calloc");
    spawn_children(idx, pids);

    churn(&s, pl->churn_kb, idx);
    open_files(&s, pl->files, idx);
    if (rng_below(&s, 2)) {     /* a private file mapping and an anonymous shared mapping */
        int fd = open("/init", O_RDONLY);
        if (fd >= 0) { mmap(NULL, 4096, PROT_READ, MAP_PRIVATE, fd, 0); close(fd); }
        char *sh = mmap(NULL, 65536, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        if (sh != MAP_FAILED) memset(sh, 0x5a, 65536);
    }
    pthread_barrier_init(&settled, NULL, pl->threads + 1);
    for (unsigned t = 0; t < pl->threads; ++t) {
        pthread_t th;
        pthread_attr_t at;
        pthread_attr_init(&at);
        pthread_attr_setstacksize(&at, 64 * 1024);
        if (pthread_create(&th, &at, thread_main, (void *)(uintptr_t)rng_next(&s)) != 0) die("pthread_create");
    }
    pthread_barrier_wait(&settled);
    reap_exiters(idx, pids);    /* our exiting children have written 'X' before this returns */

    char tok = pl->exits ? 'X' : 'R';
    if (write(ready_w, &tok, 1) != 1) die("write ready pipe");
    close(ready_w);
    if (pl->exits) _exit(0);    /* exit_group: all threads go with it */
    for (;;) pause();
}

int main(int argc, char **argv) {
    if (argc != 7) {
        fprintf(stderr, "usage: dmwork SEED PROCS MAX_THREADS MAX_FILES EXIT_PCT CHURN_KB\n");
        return 2;
    }
    uint64_t seed = strtoull(argv[1], NULL, 0);
    int procs = atoi(argv[2]);
    unsigned max_threads = (unsigned)atoi(argv[3]), max_files = (unsigned)atoi(argv[4]);
    unsigned exit_pct = (unsigned)atoi(argv[5]), churn_kb = (unsigned)atoi(argv[6]);
    if (procs < 1 || procs > 4000) { fprintf(stderr, "dmwork: PROCS must be 1..4000, got %s\n", argv[2]); return 2; }

    /* plan: about a quarter of processes are children of an earlier planned process (a tree) */
    uint64_t s = seed;
    nplans = procs;
    plans = calloc((size_t)procs, sizeof *plans);
    if (!plans) die("calloc");
    int survivors = 0, threads = 0;
    for (int i = 0; i < procs; ++i) {
        struct plan *p = &plans[i];
        p->parent = -1;
        if (i > 0 && rng_below(&s, 4) == 0) {
            int par = (int)rng_below(&s, (unsigned)i);
            if (!plans[par].exits) p->parent = par;   /* exiting parents would orphan it: keep the tree simple */
        }
        p->exits = rng_below(&s, 100) < exit_pct;
        p->threads = rng_below(&s, 4) == 0 ? 0 : rng_below(&s, max_threads + 1);
        p->files = rng_below(&s, max_files + 1);
        p->churn_kb = churn_kb ? 1 + rng_below(&s, churn_kb) : 0;
        p->seed = rng_next(&s);
        if (!p->exits) { ++survivors; threads += (int)p->threads + 1; }
    }
    if (mkdir("/tmp/work", 0755) < 0 && errno != EEXIST) die("mkdir /tmp/work");

    int rp[2];
    if (pipe(rp) < 0) die("pipe");
    pid_t master = fork();
    if (master < 0) die("fork master");
    if (master == 0) {
        /* the master: parent of the top-level processes, parked with them afterwards */
        close(rp[0]);
        ready_w = rp[1];
        pid_t *pids = calloc((size_t)nplans, sizeof *pids);
        if (!pids) die("calloc");
        spawn_children(-1, pids);
        uint64_t ms = seed ^ 0xd00dull;
        churn(&ms, churn_kb * 4, -1);
        reap_exiters(-1, pids);
        char tok = 'M';
        if (write(ready_w, &tok, 1) != 1) die("write ready pipe");
        close(ready_w);
        for (;;) pause();
    }
    close(rp[1]);
    /* every planned process writes one token; then the master writes 'M' after reaping its exiters */
    int want = procs + 1, got = 0, parked = 0, exited = 0;
    char buf[256];
    while (got < want) {
        ssize_t n = read(rp[0], buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) { fprintf(stderr, "dmwork: workload died before settling (%d of %d ready)\n", got, want); return 1; }
        for (ssize_t i = 0; i < n; ++i) {
            if (buf[i] == 'R') ++parked; else if (buf[i] == 'X') ++exited;
        }
        got += (int)n;
    }
    /* A parent writes its own token only after reaping its exiting children, and the master writes
     * 'M' after reaping its own, so once every token is in, every exiter has been reaped. */
    printf("dmwork: settled seed=%llu planned=%d parked=%d exited=%d threads=%d master=%d\n",
           (unsigned long long)seed, procs, parked, exited, threads, (int)master);
    fflush(stdout);
    (void)survivors;
    return 0;
}
