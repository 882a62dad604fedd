/*
 * The stress runner's client process (driver/targets/process.ts compiles it with cc at run time).
 * One process = one POSIX client: classic fcntl locks (owner: this process), OFD locks and flock
 * (owner: an open file description), one descriptor per file for each of the three.
 *
 *   lockclient DIR   files are DIR/f<i>; operations arrive on stdin, one per line:
 *     L p|o TYPE WAIT FILE START LEN LIMIT   fcntl F_SETLK/F_SETLKW (p) or F_OFD_SETLK/F_OFD_SETLKW (o)
 *     G p|o TYPE FILE START LEN              fcntl F_GETLK (p) or F_OFD_GETLK (o)
 *     F TYPE WAIT FILE LIMIT                 flock LOCK_SH/LOCK_EX/LOCK_UN (TYPE 0/1/2), LOCK_NB unless WAIT
 *     C p|o|f FILE                           close(2) that descriptor (opened first if needed; reopened on next use)
 *     Q                                      close everything and exit
 *   TYPE is F_RDLCK 0, F_WRLCK 1, F_UNLCK 2; LIMIT > 0 bounds a wait: SIGALRM (no SA_RESTART) every
 *   LIMIT ms until the call returns, so it ends with EINTR (a timeout or a cancel).
 *
 * Output: "ready PID", then one line per operation, in order:
 *     T0 T1 RESULT [TYPE START LEN PID]      RESULT 0 or -errno; F_GETLK adds its answer
 * T0 is CLOCK_MONOTONIC (ns, system-wide) just before the call, T1 just after it returned: the
 * release and grant stamps of the oracle's observed intervals.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define MAX_FILES 4096

static const char *dir;
static int fds[3][MAX_FILES]; /* [p, o, f][file]; -1 closed */

static long long now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void onAlarm(int sig) { (void)sig; }

static void arm(int ms) {
  struct itimerval it;
  memset(&it, 0, sizeof it);
  if (ms > 0) {
    it.it_value.tv_sec = ms / 1000;
    it.it_value.tv_usec = (ms % 1000) * 1000;
    it.it_interval = it.it_value; /* repeats: a signal that lands just before the call is not the last */
  }
  setitimer(ITIMER_REAL, &it, NULL);
}

static int roleOf(char c) { return c == 'p' ? 0 : c == 'o' ? 1 : 2; }

static int fdOf(int role, int file) {
  if (fds[role][file] < 0) {
    char path[4096];
    snprintf(path, sizeof path, "%s/f%d", dir, file);
    fds[role][file] = open(path, O_RDWR | O_CREAT, 0644);
  }
  return fds[role][file];
}

static void setRange(struct flock *fl, int type, long long start, long long len) {
  memset(fl, 0, sizeof *fl);
  fl->l_type = (short)type;
  fl->l_whence = SEEK_SET;
  fl->l_start = start;
  fl->l_len = len;
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: lockclient DIR < operations\n");
    return 2;
  }
  dir = argv[1];
  memset(fds, -1, sizeof fds);
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = onAlarm;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGALRM, &sa, NULL);
  printf("ready %d\n", (int)getpid());
  fflush(stdout);

  char line[256];
  while (fgets(line, sizeof line, stdin) != NULL) {
    char role = 0;
    int type = 0, wait = 0, file = 0, limit = 0, rc;
    long long start = 0, len = 0, t0, t1;
    struct flock fl;
    switch (line[0]) {
      case 'L':
        if (sscanf(line + 1, " %c %d %d %d %lld %lld %d", &role, &type, &wait, &file, &start, &len, &limit) != 7 || file >= MAX_FILES) return 2;
        setRange(&fl, type, start, len);
        {
          int fd = fdOf(roleOf(role), file);
          int cmd = role == 'o' ? (wait ? F_OFD_SETLKW : F_OFD_SETLK) : (wait ? F_SETLKW : F_SETLK);
          if (wait) arm(limit);
          t0 = now();
          rc = fcntl(fd, cmd, &fl);
          t1 = now();
          if (wait) arm(0);
        }
        printf("%lld %lld %d\n", t0, t1, rc < 0 ? -errno : 0);
        break;
      case 'G':
        if (sscanf(line + 1, " %c %d %d %lld %lld", &role, &type, &file, &start, &len) != 5 || file >= MAX_FILES) return 2;
        setRange(&fl, type, start, len);
        {
          int fd = fdOf(roleOf(role), file);
          t0 = now();
          rc = fcntl(fd, role == 'o' ? F_OFD_GETLK : F_GETLK, &fl);
          t1 = now();
        }
        if (rc < 0) printf("%lld %lld %d\n", t0, t1, -errno);
        else printf("%lld %lld 0 %d %lld %lld %d\n", t0, t1, fl.l_type, (long long)fl.l_start, (long long)fl.l_len, (int)fl.l_pid);
        break;
      case 'F':
        if (sscanf(line + 1, " %d %d %d %d", &type, &wait, &file, &limit) != 4 || file >= MAX_FILES) return 2;
        {
          int fd = fdOf(2, file);
          int op = (type == 0 ? LOCK_SH : type == 1 ? LOCK_EX : LOCK_UN) | (wait ? 0 : LOCK_NB);
          if (wait) arm(limit);
          t0 = now();
          rc = flock(fd, op);
          t1 = now();
          if (wait) arm(0);
        }
        printf("%lld %lld %d\n", t0, t1, rc < 0 ? -errno : 0);
        break;
      case 'C':
        if (sscanf(line + 1, " %c %d", &role, &file) != 2 || file >= MAX_FILES) return 2;
        {
          int r = roleOf(role);
          int fd = fdOf(r, file); /* a close always happens, so it always drops the classic locks */
          t0 = now();
          rc = close(fd);
          t1 = now();
          fds[r][file] = -1;
        }
        printf("%lld %lld %d\n", t0, t1, rc < 0 ? -errno : 0);
        break;
      case 'Q':
        for (int r = 0; r < 3; r++)
          for (int f = 0; f < MAX_FILES; f++)
            if (fds[r][f] >= 0) close(fds[r][f]);
        return 0;
      default:
        fprintf(stderr, "lockclient: bad operation: %s", line);
        return 2;
    }
    fflush(stdout);
  }
  return 0;
}
