/*
 * The load generator of bench/fuse.ts: one process, one file, lock+unlock pairs.
 *
 *   cc -O2 -o loader loader.c
 *   loader FILE MS [MAXPAIRS] [HOLD]
 * Opens FILE (O_RDWR), takes HOLD write locks of its own first (bytes 2, 4, 6, ...: apart, so
 * they never merge; default 0), prints "open", waits for one line on stdin (so that several loaders start
 * together), then loops fcntl(F_SETLK, F_WRLCK [0, 1)) / fcntl(F_SETLK, F_UNLCK [0, 1)) for MS
 * milliseconds (or MAXPAIRS pairs), timing every call, and prints one line:
 *   "ops N ns E p50 P p99 Q errors X"
 * N operations (a lock or an unlock each) in E ns; P, Q: per-operation latency percentiles in ns.
 * The file is closed after the line is printed, outside the timed part.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static uint64_t now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Latency histogram: 64 ns buckets up to ~1 ms, then one overflow bucket. */
#define BUCKET_NS 64
#define BUCKETS 16384
static uint64_t hist[BUCKETS + 1];

static uint64_t percentile(uint64_t total, double q) {
  uint64_t want = (uint64_t)(q * (double)total), seen = 0;
  for (int b = 0; b <= BUCKETS; b++) {
    seen += hist[b];
    if (seen > want) return (uint64_t)b * BUCKET_NS + BUCKET_NS / 2;
  }
  return (uint64_t)BUCKETS * BUCKET_NS;
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: loader FILE MS [MAXPAIRS]\n");
    return 2;
  }
  const uint64_t limitNs = (uint64_t)atoll(argv[2]) * 1000000ull;
  const uint64_t maxPairs = argc > 3 && atoll(argv[3]) > 0 ? (uint64_t)atoll(argv[3]) : UINT64_MAX;
  const long hold = argc > 4 ? atol(argv[4]) : 0;
  int fd = open(argv[1], O_RDWR);
  if (fd < 0) {
    printf("error open %d\n", errno);
    return 1;
  }
  for (long i = 0; i < hold; i++) {
    struct flock h;
    memset(&h, 0, sizeof h);
    h.l_type = F_WRLCK;
    h.l_whence = SEEK_SET;
    h.l_start = 2 + 2 * (off_t)i;
    h.l_len = 1;
    if (fcntl(fd, F_SETLK, &h) != 0) {
      printf("error hold %d\n", errno);
      return 1;
    }
  }
  printf("open\n");
  fflush(stdout);
  char line[16];
  if (fgets(line, sizeof line, stdin) == NULL) return 1;
  struct flock lk, un;
  memset(&lk, 0, sizeof lk);
  lk.l_type = F_WRLCK;
  lk.l_whence = SEEK_SET;
  lk.l_start = 0;
  lk.l_len = 1;
  un = lk;
  un.l_type = F_UNLCK;
  uint64_t ops = 0, errors = 0;
  const uint64_t t0 = now();
  uint64_t t = t0;
  for (uint64_t pair = 0; pair < maxPairs && t - t0 < limitNs; pair++) {
    for (int k = 0; k < 2; k++) {
      if (fcntl(fd, F_SETLK, k == 0 ? &lk : &un) != 0) errors++;
      uint64_t t2 = now();
      uint64_t d = (t2 - t) / BUCKET_NS;
      hist[d < BUCKETS ? d : BUCKETS]++;
      t = t2;
      ops++;
    }
  }
  const uint64_t elapsed = t - t0;
  printf("ops %llu ns %llu p50 %llu p99 %llu errors %llu\n", (unsigned long long)ops, (unsigned long long)elapsed,
         (unsigned long long)percentile(ops, 0.5), (unsigned long long)percentile(ops, 0.99), (unsigned long long)errors);
  fflush(stdout);
  close(fd);
  return 0;
}
