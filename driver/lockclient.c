/*
 * The lock client process: one process is one POSIX client, calling fcntl (classic locks, owned by
 * the process; OFD locks, owned by an open file description) and flock on real files. One program
 * for the stress runner and the tests, driven two ways.
 *
 * 1. The stress runner's (driver/targets/process.ts compiles it with cc at run time): one
 *    descriptor per file for each of classic, OFD and flock locks.
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
 *   Output: "ready PID", then one line per operation, in order:
 *     T0 T1 RESULT [TYPE START LEN PID]      RESULT 0 or -errno; F_GETLK adds its answer
 *   T0 is CLOCK_MONOTONIC (ns, system-wide) just before the call, T1 just after it returned: the
 *   release and grant stamps of the oracle's observed intervals.
 *
 * 2. The tests' (test/native/proc.ts): the commands given as arguments run one after another on
 *    one file, each printing one line, so a test can follow (and wait for) each step of a separate
 *    process.
 *
 *   lockclient --script FILE CMD...
 *     open                     open FILE O_RDWR|O_CREAT             -> "open ok" | "open err N"
 *     close                    close it (sends FUSE FLUSH, then RELEASE)
 *     lock  r|w|u START LEN    fcntl F_SETLK                        -> "lock ok" | "lock err N"
 *     lockw r|w|u START LEN    fcntl F_SETLKW (blocks)              -> "lockw ok" | "lockw err N"
 *     get   r|w START LEN      fcntl F_GETLK  -> "get TYPE START LEN PID" (TYPE r|w|u)
 *     ofd   r|w|u START LEN    fcntl F_OFD_SETLK                    -> "ofd ok" | "ofd err N"
 *     ofdw  r|w|u START LEN    fcntl F_OFD_SETLKW (blocks)          -> "ofdw ok" | "ofdw err N"
 *     flock sh|ex|un [nb]      flock(2)                             -> "flock ok" | "flock err N"
 *     wait                     read one line from stdin (the test says when to go on)
 *     sleep MS
 *     trapint                  catch SIGINT too (as SIGUSR1)        -> "trapint ok"
 *   Several descriptors: the commands above act on the current slot.
 *     file PATH                later opens use PATH instead of FILE
 *     fd N                     make slot N (0-7) current            -> "fd ok"
 *     dup                      dup the current descriptor into the next free slot and make it
 *                              current                              -> "dup ok N"
 *   N in "err N" is errno. It starts by printing "ready PID". SIGUSR1 is caught without
 *   SA_RESTART, so a blocked F_SETLKW, F_OFD_SETLKW or flock that it interrupts returns EINTR
 *   ("lockw err 4").
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

static void onSignal(int sig) { (void)sig; }

/* Catches `sig` without SA_RESTART: a lock call it interrupts returns EINTR. */
static int catchSignal(int sig) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = onSignal;
  sigemptyset(&sa.sa_mask);
  return sigaction(sig, &sa, NULL);
}

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

/* ---- 2. the tests' scripted commands ---- */

static short typeOf(const char *s) { return s[0] == 'r' ? F_RDLCK : s[0] == 'w' ? F_WRLCK : F_UNLCK; }

static const char *nameOf(short t) { return t == F_RDLCK ? "r" : t == F_WRLCK ? "w" : "u"; }

static void result(const char *cmd, int rc) {
  if (rc == 0) printf("%s ok\n", cmd);
  else printf("%s err %d\n", cmd, errno);
}

static int script(const char *file, int argc, char **argv) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  int slots[8] = {-1, -1, -1, -1, -1, -1, -1, -1};
  int cur = 0;
  printf("ready %d\n", (int)getpid());
  for (int i = 0; i < argc; i++) {
    const char *cmd = argv[i];
    if (strcmp(cmd, "open") == 0) {
      slots[cur] = open(file, O_RDWR | O_CREAT, 0644);
      result(cmd, slots[cur] < 0 ? -1 : 0);
    } else if (strcmp(cmd, "close") == 0) {
      int rc = close(slots[cur]);
      slots[cur] = -1;
      result(cmd, rc);
    } else if (strcmp(cmd, "trapint") == 0) {
      result(cmd, catchSignal(SIGINT));
    } else if (strcmp(cmd, "file") == 0) {
      if (i + 1 >= argc) return 2;
      file = argv[++i];
    } else if (strcmp(cmd, "fd") == 0) {
      if (i + 1 >= argc) return 2;
      int n = atoi(argv[++i]);
      if (n < 0 || n > 7) return 2;
      cur = n;
      result(cmd, 0);
    } else if (strcmp(cmd, "dup") == 0) {
      int n = 0;
      while (n < 8 && slots[n] >= 0) n++;
      if (n == 8) return 2;
      slots[n] = dup(slots[cur]);
      if (slots[n] < 0) {
        result(cmd, -1);
      } else {
        cur = n;
        printf("dup ok %d\n", n);
      }
    } else if (strcmp(cmd, "lock") == 0 || strcmp(cmd, "lockw") == 0 || strcmp(cmd, "get") == 0 || strcmp(cmd, "ofd") == 0 || strcmp(cmd, "ofdw") == 0) {
      if (i + 3 >= argc) return 2;
      struct flock fl;
      setRange(&fl, typeOf(argv[i + 1]), atoll(argv[i + 2]), atoll(argv[i + 3]));
      i += 3;
      if (strcmp(cmd, "get") == 0) {
        if (fcntl(slots[cur], F_GETLK, &fl) < 0) result(cmd, -1);
        else printf("get %s %lld %lld %d\n", nameOf(fl.l_type), (long long)fl.l_start, (long long)fl.l_len, (int)fl.l_pid);
      } else {
        int fcmd = strcmp(cmd, "lock") == 0 ? F_SETLK : strcmp(cmd, "lockw") == 0 ? F_SETLKW : strcmp(cmd, "ofd") == 0 ? F_OFD_SETLK : F_OFD_SETLKW;
        result(cmd, fcntl(slots[cur], fcmd, &fl));
      }
    } else if (strcmp(cmd, "flock") == 0) {
      if (i + 1 >= argc) return 2;
      const char *how = argv[++i];
      int op = strcmp(how, "sh") == 0 ? LOCK_SH : strcmp(how, "ex") == 0 ? LOCK_EX : LOCK_UN;
      if (i + 1 < argc && strcmp(argv[i + 1], "nb") == 0) {
        op |= LOCK_NB;
        i++;
      }
      result(cmd, flock(slots[cur], op));
    } else if (strcmp(cmd, "wait") == 0) {
      char line[64];
      if (fgets(line, sizeof line, stdin) == NULL) return 0;
    } else if (strcmp(cmd, "sleep") == 0) {
      if (i + 1 >= argc) return 2;
      usleep((useconds_t)atoi(argv[++i]) * 1000);
    } else {
      fprintf(stderr, "lockclient: unknown command %s\n", cmd);
      return 2;
    }
  }
  return 0;
}

int main(int argc, char **argv) {
  catchSignal(SIGALRM);
  catchSignal(SIGUSR1);
  if (argc >= 3 && strcmp(argv[1], "--script") == 0) return script(argv[2], argc - 3, argv + 3);
  if (argc != 2) {
    fprintf(stderr, "usage: lockclient DIR < operations\n       lockclient --script FILE CMD...\n");
    return 2;
  }

  /* ---- 1. the stress runner's operations ---- */
  dir = argv[1];
  memset(fds, -1, sizeof fds);
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
