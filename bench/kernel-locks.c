/*
 * kernel-locks: the Linux kernel's own POSIX lock table (fcntl F_SETLK on a tmpfs file), measured
 * with the same pattern as bench/core.ts measures LockTable. Built and driven by bench/core.ts:
 *
 *   cc -O2 -o bench/bin/kernel-locks bench/kernel-locks.c
 *   bench/bin/kernel-locks [/dev/shm]
 *
 * It opens (and at once unlinks) a scratch file in the given tmpfs directory, then reads commands,
 * one per line, on stdin and answers each with one JSON line on stdout:
 *
 *   hold N   Ends the previous holder, forks a new holder process (another lock owner) that takes N
 *            write locks [20i, 20i+9], i = 0..N-1 (never adjacent), reports, then sleeps on a pipe
 *            until it is told to go. Checks the result from this process (F_GETLK, /proc/locks).
 *            The measured range becomes [20k+12, 20k+16] with k = N/2: between two held locks in
 *            the middle of the set, touching neither. The answer's procLocks is the holder's line
 *            count in /proc/locks (-1: not read, above 10,000 locks).
 *   run I    I pairs of F_SETLK F_WRLCK + F_SETLK F_UNLCK of the measured range by this process;
 *            answers the elapsed CLOCK_MONOTONIC nanoseconds.
 *   quit     (or EOF) Ends the holder and exits.
 *
 * Building N locks one F_SETLK at a time costs O(N^2) in the kernel (each new lock scans the whole
 * per-inode list for conflicts), minutes at N = 100,000. Unlocks skip the conflict scan, and an
 * unlock that splits the owner's first lock stops right there, so the holder locks [0, 20N-11] once
 * and punches the N-1 holes from the top down: O(1) per call, the same final lock list.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int fd = -1;
static pid_t holder = -1;
static int holder_ctl = -1; /* write end of the holder's control pipe: closing it ends the holder */
static long held_n = 0;
static off_t m_start = 12, m_len = 5;

static long long now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void fail(const char *what, int err) {
  printf("{\"ok\":false,\"error\":\"%s: %s\"}\n", what, strerror(err));
  fflush(stdout);
  exit(1);
}

static int setlk(short type, off_t start, off_t len) {
  struct flock fl;
  memset(&fl, 0, sizeof fl);
  fl.l_type = type;
  fl.l_whence = SEEK_SET;
  fl.l_start = start;
  fl.l_len = len;
  return fcntl(fd, F_SETLK, &fl);
}

/* F_GETLK of [start, start+len-1] for a write lock: the conflicting lock's pid, 0 when none. */
static pid_t getlk(off_t start, off_t len) {
  struct flock fl;
  memset(&fl, 0, sizeof fl);
  fl.l_type = F_WRLCK;
  fl.l_whence = SEEK_SET;
  fl.l_start = start;
  fl.l_len = len;
  if (fcntl(fd, F_GETLK, &fl) != 0) fail("F_GETLK", errno);
  return fl.l_type == F_UNLCK ? 0 : fl.l_pid;
}

static void stop_holder(void) {
  if (holder <= 0) return;
  close(holder_ctl);
  int st;
  while (waitpid(holder, &st, 0) < 0 && errno == EINTR) {
  }
  holder = -1;
  holder_ctl = -1;
}

/* Lines of /proc/locks whose pid field is `pid`. */
static long proc_locks_of(pid_t pid) {
  FILE *f = fopen("/proc/locks", "r");
  if (f == NULL) return -1;
  char line[512];
  long n = 0;
  while (fgets(line, sizeof line, f) != NULL) {
    /* "1: POSIX  ADVISORY  WRITE 1234 00:1a:5678 0 9"; waiters start with "1: -> POSIX". */
    char kind[32], adv[32], type[32];
    long p;
    if (strstr(line, "->") != NULL) continue;
    if (sscanf(line, "%*s %31s %31s %31s %ld", kind, adv, type, &p) == 4 && p == pid) n++;
  }
  fclose(f);
  return n;
}

static void hold(long n) {
  stop_holder();
  int ready[2], ctl[2];
  if (pipe(ready) != 0 || pipe(ctl) != 0) fail("pipe", errno);
  pid_t p = fork();
  if (p < 0) fail("fork", errno);
  if (p == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    close(ready[0]);
    close(ctl[1]);
    struct {
      int err;
      long long ns;
    } msg = {0, 0};
    long long t0 = now_ns();
    if (n > 0) {
      if (setlk(F_WRLCK, 0, 20 * (off_t)(n - 1) + 10) != 0) msg.err = errno;
      for (long i = n - 1; i >= 1 && msg.err == 0; i--) {
        if (setlk(F_UNLCK, 20 * (off_t)i - 10, 10) != 0) msg.err = errno;
      }
    }
    msg.ns = now_ns() - t0;
    if (write(ready[1], &msg, sizeof msg) != (ssize_t)sizeof msg) _exit(2);
    char c;
    for (;;) {
      ssize_t r = read(ctl[0], &c, 1);
      if (r == 0 || (r < 0 && errno != EINTR)) break;
    }
    _exit(0);
  }
  close(ready[1]);
  close(ctl[0]);
  holder = p;
  holder_ctl = ctl[1];
  struct {
    int err;
    long long ns;
  } msg;
  ssize_t r;
  while ((r = read(ready[0], &msg, sizeof msg)) < 0 && errno == EINTR) {
  }
  close(ready[0]);
  if (r != (ssize_t)sizeof msg) fail("holder died", EPIPE);
  if (msg.err != 0) fail("holder F_SETLK", msg.err);
  held_n = n;
  long k = n / 2;
  m_start = 20 * (off_t)k + 12;
  m_len = 5;
  /* Check from this process: held locks belong to the holder, the gaps and our range are free. */
  if (n > 0) {
    long probe[3] = {0, k < n ? k : n - 1, n - 1};
    for (int i = 0; i < 3; i++) {
      if (getlk(20 * (off_t)probe[i], 10) != p) fail("held lock missing", ESRCH);
      if (getlk(20 * (off_t)probe[i] + 10, 10) != 0) fail("gap is locked", EEXIST);
    }
  }
  if (getlk(m_start - 2, m_len + 4) != 0) fail("measured range (with margins) is locked", EEXIST);
  /* Reading /proc/locks costs O(lines^2) (each read() walks the list from the start): only up to
   * 10,000 locks; -1 in the answer means not checked. */
  long listed = n <= 10000 ? proc_locks_of(p) : -1;
  if (listed >= 0 && listed != n) fail("/proc/locks does not list N locks for the holder", EPROTO);
  printf("{\"ok\":true,\"held\":%ld,\"holderPid\":%d,\"setupNs\":%lld,\"procLocks\":%ld,\"start\":%lld,\"len\":%lld}\n", n, (int)p,
         msg.ns, listed, (long long)m_start, (long long)m_len);
  fflush(stdout);
}

static void run(long iters) {
  long long t0 = now_ns();
  for (long i = 0; i < iters; i++) {
    if (setlk(F_WRLCK, m_start, m_len) != 0) fail("F_SETLK F_WRLCK", errno);
    if (setlk(F_UNLCK, m_start, m_len) != 0) fail("F_SETLK F_UNLCK", errno);
  }
  long long ns = now_ns() - t0;
  printf("{\"ok\":true,\"iters\":%ld,\"ns\":%lld}\n", iters, ns);
  fflush(stdout);
}

int main(int argc, char **argv) {
  const char *dir = argc > 1 ? argv[1] : "/dev/shm";
  char path[4096];
  snprintf(path, sizeof path, "%s/locksmith-bench-%d", dir, (int)getpid());
  fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) fail("open", errno);
  unlink(path);
  signal(SIGPIPE, SIG_IGN);
  char line[256];
  while (fgets(line, sizeof line, stdin) != NULL) {
    long v;
    if (sscanf(line, "hold %ld", &v) == 1 && v >= 0) {
      hold(v);
    } else if (sscanf(line, "run %ld", &v) == 1 && v > 0) {
      run(v);
    } else if (strncmp(line, "quit", 4) == 0) {
      break;
    } else {
      printf("{\"ok\":false,\"error\":\"unknown command\"}\n");
      fflush(stdout);
    }
  }
  stop_holder();
  return 0;
}
