/*
 * A scripted lock client for test/native/pump.test.ts: runs the commands given as arguments on
 * one file, one after another, and prints one line per finished command, so the test can follow
 * (and wait for) each step of a separate process.
 *
 *   lockclient FILE CMD...
 *   open                 open FILE O_RDWR|O_CREAT             -> "open ok" | "open err N"
 *   close                close it (sends FUSE FLUSH, then RELEASE)
 *   lock  r|w|u START LEN    fcntl F_SETLK                    -> "lock ok" | "lock err N"
 *   lockw r|w|u START LEN    fcntl F_SETLKW (blocks)          -> "lockw ok" | "lockw err N"
 *   get   r|w START LEN      fcntl F_GETLK  -> "get TYPE START LEN PID" (TYPE r|w|u)
 *   flock sh|ex|un [nb]      flock(2)                         -> "flock ok" | "flock err N"
 *   wait                 read one line from stdin (the test says when to go on)
 *   sleep MS
 * Several descriptors (test/native/mount.test.ts): the commands above act on the current slot.
 *   file PATH            later opens use PATH instead of FILE
 *   fd N                 make slot N (0-7) current            -> "fd ok"
 *   dup                  dup the current descriptor into the next free slot and make it current
 *                                                             -> "dup ok N"
 *   ofd   r|w|u START LEN   fcntl F_OFD_SETLK                -> "ofd ok" | "ofd err N"
 *   ofdw  r|w|u START LEN   fcntl F_OFD_SETLKW (blocks)      -> "ofdw ok" | "ofdw err N"
 *   trapint              catch SIGINT too (as SIGUSR1)        -> "trapint ok"
 *
 * It starts by printing "ready PID". SIGUSR1 has a handler installed without SA_RESTART, so a
 * blocked F_SETLKW or flock that the signal interrupts returns EINTR ("lockw err 4").
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

static void onUsr1(int sig) { (void)sig; }

static short typeOf(const char *s) {
  return s[0] == 'r' ? F_RDLCK : s[0] == 'w' ? F_WRLCK : F_UNLCK;
}

static const char *nameOf(short t) {
  return t == F_RDLCK ? "r" : t == F_WRLCK ? "w" : "u";
}

static void result(const char *cmd, int rc) {
  if (rc == 0) printf("%s ok\n", cmd);
  else printf("%s err %d\n", cmd, errno);
  fflush(stdout);
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: lockclient FILE CMD...\n");
    return 2;
  }
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = onUsr1;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0; /* no SA_RESTART: an interrupted lock call returns EINTR */
  sigaction(SIGUSR1, &sa, NULL);
  setvbuf(stdout, NULL, _IOLBF, 0);

  const char *file = argv[1];
  int fds[8] = {-1, -1, -1, -1, -1, -1, -1, -1};
  int cur = 0;
#define fd fds[cur]
  printf("ready %d\n", (int)getpid());
  fflush(stdout);
  for (int i = 2; i < argc; i++) {
    const char *cmd = argv[i];
    if (strcmp(cmd, "open") == 0) {
      fd = open(file, O_RDWR | O_CREAT, 0644);
      result(cmd, fd < 0 ? -1 : 0);
    } else if (strcmp(cmd, "close") == 0) {
      int rc = close(fd);
      fd = -1;
      result(cmd, rc);
    } else if (strcmp(cmd, "trapint") == 0) {
      result(cmd, sigaction(SIGINT, &sa, NULL));
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
      while (n < 8 && fds[n] >= 0) n++;
      if (n == 8) return 2;
      fds[n] = dup(fd);
      if (fds[n] < 0) {
        result(cmd, -1);
      } else {
        cur = n;
        printf("dup ok %d\n", n);
        fflush(stdout);
      }
    } else if (strcmp(cmd, "ofd") == 0 || strcmp(cmd, "ofdw") == 0) {
      if (i + 3 >= argc) return 2;
      struct flock fl;
      memset(&fl, 0, sizeof fl);
      fl.l_type = typeOf(argv[i + 1]);
      fl.l_whence = SEEK_SET;
      fl.l_start = atoll(argv[i + 2]);
      fl.l_len = atoll(argv[i + 3]);
      i += 3;
      result(cmd, fcntl(fd, strcmp(cmd, "ofd") == 0 ? F_OFD_SETLK : F_OFD_SETLKW, &fl));
    } else if (strcmp(cmd, "lock") == 0 || strcmp(cmd, "lockw") == 0 || strcmp(cmd, "get") == 0) {
      if (i + 3 >= argc) return 2;
      struct flock fl;
      memset(&fl, 0, sizeof fl);
      fl.l_type = typeOf(argv[i + 1]);
      fl.l_whence = SEEK_SET;
      fl.l_start = atoll(argv[i + 2]);
      fl.l_len = atoll(argv[i + 3]);
      i += 3;
      if (strcmp(cmd, "get") == 0) {
        if (fcntl(fd, F_GETLK, &fl) < 0) {
          result(cmd, -1);
        } else {
          printf("get %s %lld %lld %d\n", nameOf(fl.l_type), (long long)fl.l_start, (long long)fl.l_len, (int)fl.l_pid);
          fflush(stdout);
        }
      } else {
        result(cmd, fcntl(fd, strcmp(cmd, "lock") == 0 ? F_SETLK : F_SETLKW, &fl));
      }
    } else if (strcmp(cmd, "flock") == 0) {
      if (i + 1 >= argc) return 2;
      const char *how = argv[++i];
      int op = strcmp(how, "sh") == 0 ? LOCK_SH : strcmp(how, "ex") == 0 ? LOCK_EX : LOCK_UN;
      if (i + 1 < argc && strcmp(argv[i + 1], "nb") == 0) {
        op |= LOCK_NB;
        i++;
      }
      result(cmd, flock(fd, op));
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
