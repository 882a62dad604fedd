/*
 * The real client of bench/fuse.ts: SQLite in WAL mode, several processes writing one database.
 *
 *   cc -O2 -o sqlite sqlite.c -lsqlite3          (Debian: apt-get install libsqlite3-dev)
 *   sqlite DB init ROWS    creates table t(id, v) with ROWS rows of v = 0, journal_mode=WAL
 *   sqlite DB run MS ID    opens DB, prints "open", waits for one line on stdin, then runs
 *                          BEGIN IMMEDIATE; UPDATE t SET v = v + 1 WHERE id = ID % ROWS; COMMIT
 *                          for MS milliseconds and prints "tx N ns E busy B errors X"
 *   sqlite DB check        prints "sum S integrity ok" (or the integrity_check's first line)
 * Connections keep SQLite's defaults (synchronous=FULL: a commit fsyncs the WAL) and set
 * busy_timeout 10 s, SQLite's own busy handler, as an application would. Each transaction takes and
 * drops several fcntl locks on the database and its -shm file. A transaction that still fails
 * (SQLITE_BUSY after 10 s, or any other error) is an error, not a commit.
 */
#define _GNU_SOURCE
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static uint64_t now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int exec(sqlite3 *db, const char *sql) {
  char *msg = NULL;
  int rc = sqlite3_exec(db, sql, NULL, NULL, &msg);
  if (rc != SQLITE_OK && msg != NULL) {
    fprintf(stderr, "sqlite: %s: %s\n", sql, msg);
    sqlite3_free(msg);
  }
  return rc;
}

static sqlite3 *openDb(const char *path) {
  sqlite3 *db = NULL;
  if (sqlite3_open(path, &db) != SQLITE_OK) {
    printf("error open %s\n", db != NULL ? sqlite3_errmsg(db) : "?");
    exit(1);
  }
  sqlite3_busy_timeout(db, 10000);
  return db;
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: sqlite DB init ROWS | run MS ID | check\n");
    return 2;
  }
  sqlite3 *db = openDb(argv[1]);
  if (strcmp(argv[2], "init") == 0) {
    int rows = argc > 3 ? atoi(argv[3]) : 8;
    char sql[128];
    if (exec(db, "PRAGMA journal_mode=WAL") != SQLITE_OK || exec(db, "CREATE TABLE t(id INTEGER PRIMARY KEY, v INTEGER)") != SQLITE_OK ||
        exec(db, "BEGIN") != SQLITE_OK)
      return 1;
    for (int i = 0; i < rows; i++) {
      snprintf(sql, sizeof sql, "INSERT INTO t VALUES(%d, 0)", i);
      if (exec(db, sql) != SQLITE_OK) return 1;
    }
    if (exec(db, "COMMIT") != SQLITE_OK) return 1;
    sqlite3_close(db);
    printf("ok\n");
    return 0;
  }
  if (strcmp(argv[2], "check") == 0) {
    sqlite3_stmt *st = NULL;
    long long sum = -1;
    if (sqlite3_prepare_v2(db, "SELECT sum(v) FROM t", -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
      sum = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    char integrity[256] = "?";
    if (sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
      snprintf(integrity, sizeof integrity, "%s", (const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    sqlite3_close(db);
    printf("sum %lld integrity %s\n", sum, integrity);
    return 0;
  }
  if (strcmp(argv[2], "run") != 0 || argc < 5) {
    fprintf(stderr, "usage: sqlite DB init ROWS | run MS ID | check\n");
    return 2;
  }
  const uint64_t limitNs = (uint64_t)atoll(argv[3]) * 1000000ull;
  const int id = atoi(argv[4]);
  sqlite3_stmt *begin = NULL, *update = NULL, *commit = NULL, *rollback = NULL;
  if (sqlite3_prepare_v2(db, "BEGIN IMMEDIATE", -1, &begin, NULL) != SQLITE_OK ||
      sqlite3_prepare_v2(db, "UPDATE t SET v = v + 1 WHERE id = ?1 % (SELECT count(*) FROM t)", -1, &update, NULL) != SQLITE_OK ||
      sqlite3_prepare_v2(db, "COMMIT", -1, &commit, NULL) != SQLITE_OK || sqlite3_prepare_v2(db, "ROLLBACK", -1, &rollback, NULL) != SQLITE_OK) {
    printf("error prepare %s\n", sqlite3_errmsg(db));
    return 1;
  }
  sqlite3_bind_int(update, 1, id);
  printf("open\n");
  fflush(stdout);
  char line[16];
  if (fgets(line, sizeof line, stdin) == NULL) return 1;
  uint64_t tx = 0, busy = 0, errors = 0;
  const uint64_t t0 = now();
  uint64_t t = t0;
  while (t - t0 < limitNs) {
    int rc = sqlite3_step(begin);
    sqlite3_reset(begin);
    if (rc != SQLITE_DONE) {
      if (rc == SQLITE_BUSY) busy++;
      else errors++;
      t = now();
      continue;
    }
    rc = sqlite3_step(update);
    sqlite3_reset(update);
    if (rc == SQLITE_DONE) rc = sqlite3_step(commit);
    sqlite3_reset(commit);
    if (rc == SQLITE_DONE) {
      tx++;
    } else {
      errors++;
      sqlite3_step(rollback);
      sqlite3_reset(rollback);
    }
    t = now();
  }
  printf("tx %llu ns %llu busy %llu errors %llu\n", (unsigned long long)tx, (unsigned long long)(t - t0), (unsigned long long)busy,
         (unsigned long long)errors);
  fflush(stdout);
  sqlite3_finalize(begin);
  sqlite3_finalize(update);
  sqlite3_finalize(commit);
  sqlite3_finalize(rollback);
  sqlite3_close(db);
  return 0;
}
