/* dmview: the guest's own view of itself, for cross-checking the labeler (runs inside the guest).
 *
 *   dmview [--out PATH]     prints the view (format below) on stdout, or writes it to PATH itself: a
 *                           shell redirection would make the shell hold a saved copy of its stdout
 *                           (one extra fd in PID 1) exactly while the view is taken
 *   dmview --copy SRC DST   copies SRC ("-": stdin) to DST (a serial port) and waits until it is transmitted
 *
 * View format "deepmem guest view v1" (agreed with dmlabel --view):
 *   # deepmem guest view v1
 *   processes N     thread-group leaders = numeric dirs in /proc
 *   threads N       sum over processes of entries in /proc/PID/task
 *   fds N           sum over processes of entries in /proc/PID/fd
 *   module NAME     one line per line of /proc/modules
 *   modules N
 *   dentries N      nr_dentry of /proc/sys/fs/dentry-state, read last (the /proc walk above makes
 *                   dentries too): every allocated dentry, hashed or not, positive or negative.
 *                   Informative only (dmlabel ignores keys it does not check); absent if unreadable
 * dmview excludes itself from every count. It must run when the workload is quiescent, and nothing
 * may change between the view and the dump.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

/* entries of a directory, without . and ..; an unreadable directory (zombie's fd/) counts 0 */
static long count_entries(const char *path) {
    DIR *d = opendir(path);
    if (!d) return 0;
    long n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) ++n;
    }
    closedir(d);
    return n;
}

static int is_number(const char *s) {
    if (!*s) return 0;
    for (; *s; ++s) if (!isdigit((unsigned char)*s)) return 0;
    return 1;
}

/* transmit everything written to a tty before returning (serial ports drain asynchronously) */
static void drain(int fd) {
    if (isatty(fd)) tcdrain(fd);
}

static int copy(const char *src, const char *dst) {
    int in = strcmp(src, "-") == 0 ? 0 : open(src, O_RDONLY);   /* "-": stdin */
    if (in < 0) { fprintf(stderr, "dmview: cannot open %s: %s\n", src, strerror(errno)); return 1; }
    int out = open(dst, O_WRONLY | O_NOCTTY);
    if (out < 0) { fprintf(stderr, "dmview: cannot open %s: %s\n", dst, strerror(errno)); return 1; }
    if (isatty(out)) {      /* raw output: no \n -> \r\n translation */
        struct termios t;
        if (tcgetattr(out, &t) == 0) { cfmakeraw(&t); tcsetattr(out, TCSANOW, &t); }
    }
    static char buf[1 << 16];
    for (;;) {
        ssize_t n = read(in, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) { fprintf(stderr, "dmview: read %s: %s\n", src, strerror(errno)); return 1; }
        if (n == 0) break;
        for (ssize_t off = 0; off < n;) {
            ssize_t w = write(out, buf + off, (size_t)(n - off));
            if (w < 0 && errno == EINTR) continue;
            if (w < 0) { fprintf(stderr, "dmview: write %s: %s\n", dst, strerror(errno)); return 1; }
            off += w;
        }
    }
    drain(out);
    close(out);
    close(in);
    return 0;
}

int main(int argc, char **argv) {
    if (argc == 4 && strcmp(argv[1], "--copy") == 0) return copy(argv[2], argv[3]);
    if (argc == 3 && strcmp(argv[1], "--out") == 0) {
        int fd = open(argv[2], O_WRONLY | O_NOCTTY | O_CREAT | O_TRUNC, 0644);
        if (fd < 0 || dup2(fd, 1) < 0) { fprintf(stderr, "dmview: cannot open %s: %s\n", argv[2], strerror(errno)); return 1; }
        close(fd);
    } else if (argc != 1) {
        fprintf(stderr, "usage: dmview [--out PATH] | dmview --copy SRC DST\n");
        return 2;
    }
    if (isatty(1)) {
        struct termios t;
        if (tcgetattr(1, &t) == 0) { cfmakeraw(&t); tcsetattr(1, TCSANOW, &t); }
    }
    const pid_t self = getpid();
    long processes = 0, threads = 0, fds = 0;
    DIR *proc = opendir("/proc");
    if (!proc) { fprintf(stderr, "dmview: cannot open /proc: %s\n", strerror(errno)); return 1; }
    struct dirent *e;
    char path[300];
    while ((e = readdir(proc)) != NULL) {
        if (!is_number(e->d_name) || atol(e->d_name) == (long)self) continue;
        ++processes;
        snprintf(path, sizeof path, "/proc/%s/task", e->d_name);
        threads += count_entries(path);
        snprintf(path, sizeof path, "/proc/%s/fd", e->d_name);
        fds += count_entries(path);
    }
    closedir(proc);

    printf("# deepmem guest view v1\nprocesses %ld\nthreads %ld\nfds %ld\n", processes, threads, fds);
    FILE *m = fopen("/proc/modules", "r");
    if (!m) { fprintf(stderr, "dmview: cannot open /proc/modules: %s\n", strerror(errno)); return 1; }
    char line[1024];
    long modules = 0;
    while (fgets(line, sizeof line, m)) {
        char *sp = strchr(line, ' ');
        if (sp) *sp = '\0';
        printf("module %s\n", line);
        ++modules;
    }
    fclose(m);
    printf("modules %ld\n", modules);
    FILE *ds = fopen("/proc/sys/fs/dentry-state", "r");
    long nr_dentry = -1;
    if (ds) {
        if (fscanf(ds, "%ld", &nr_dentry) != 1) nr_dentry = -1;
        fclose(ds);
    }
    if (nr_dentry >= 0) printf("dentries %ld\n", nr_dentry);
    fflush(stdout);
    drain(1);
    return 0;
}
