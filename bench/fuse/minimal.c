/*
 * The floor for any user-space lock manager (bench/fuse.ts): a minimal libfuse 3 low-level server
 * that serves FILES empty regular files f0 ... f{FILES-1} in its root, negotiates
 * FUSE_CAP_POSIX_LOCKS and FUSE_CAP_FLOCK_LOCKS, and answers every getlk (F_UNLCK), setlk, setlkw
 * and flock at once with success: no table, no decision, no thread hand-off.
 * LOOP 'st' (the fastest bare server, bench:fuse's floor): libfuse's single-threaded
 * fuse_session_loop, one thread receiving and answering everything. LOOP 'mt': fuse_session_loop_mt
 * with THREADS workers, max_idle_threads = THREADS, no clone_fd (what locksmith used before issue 15;
 * with libfuse 3.14 it creates and destroys a thread for most requests).
 *
 *   cc -O2 -o minimal minimal.c $(pkg-config --cflags --libs fuse3)
 *   minimal MOUNTPOINT [FILES=8] [THREADS=4] [LOOP=mt|st]
 * Prints "ready" once the kernel's INIT arrived (the mount is usable); SIGTERM/SIGINT unmount.
 */
#define FUSE_USE_VERSION 34
#include <fuse_lowlevel.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int nfiles = 8;
static pthread_mutex_t initMu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t initCv = PTHREAD_COND_INITIALIZER;
static int initDone = 0;

static void attrOf(fuse_ino_t ino, struct stat *st) {
  memset(st, 0, sizeof *st);
  st->st_ino = ino;
  if (ino == FUSE_ROOT_ID) {
    st->st_mode = S_IFDIR | 0755;
    st->st_nlink = 2;
  } else {
    st->st_mode = S_IFREG | 0666;
    st->st_nlink = 1;
  }
}

static void m_init(void *userdata, struct fuse_conn_info *conn) {
  (void)userdata;
  if (conn->capable & FUSE_CAP_POSIX_LOCKS) conn->want |= FUSE_CAP_POSIX_LOCKS;
  if (conn->capable & FUSE_CAP_FLOCK_LOCKS) conn->want |= FUSE_CAP_FLOCK_LOCKS;
  pthread_mutex_lock(&initMu);
  initDone = 1;
  pthread_cond_broadcast(&initCv);
  pthread_mutex_unlock(&initMu);
}

static void m_lookup(fuse_req_t req, fuse_ino_t parent, const char *name) {
  int i;
  if (parent != FUSE_ROOT_ID || name[0] != 'f' || sscanf(name + 1, "%d", &i) != 1 || i < 0 || i >= nfiles) {
    fuse_reply_err(req, ENOENT);
    return;
  }
  struct fuse_entry_param e;
  memset(&e, 0, sizeof e);
  e.ino = (fuse_ino_t)i + 2;
  e.attr_timeout = 3600;
  e.entry_timeout = 3600;
  attrOf(e.ino, &e.attr);
  fuse_reply_entry(req, &e);
}

static void m_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
  (void)fi;
  struct stat st;
  attrOf(ino, &st);
  fuse_reply_attr(req, &st, 3600);
}

static void m_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set, struct fuse_file_info *fi) {
  (void)attr, (void)to_set;
  m_getattr(req, ino, fi);
}

static void m_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
  if (ino == FUSE_ROOT_ID) {
    fuse_reply_err(req, EISDIR);
    return;
  }
  fi->fh = ino;
  fuse_reply_open(req, fi);
}

static void m_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi) {
  (void)ino, (void)size, (void)off, (void)fi;
  fuse_reply_buf(req, NULL, 0);
}

static void m_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off, struct fuse_file_info *fi) {
  (void)ino, (void)buf, (void)off, (void)fi;
  fuse_reply_write(req, size);
}

static void m_ok(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
  (void)ino, (void)fi;
  fuse_reply_err(req, 0);
}

static void m_getlk(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi, struct flock *lock) {
  (void)ino, (void)fi;
  lock->l_type = F_UNLCK;
  fuse_reply_lock(req, lock);
}

static void m_setlk(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi, struct flock *lock, int sleep) {
  (void)ino, (void)fi, (void)lock, (void)sleep;
  fuse_reply_err(req, 0);
}

static void m_flock(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi, int op) {
  (void)ino, (void)fi, (void)op;
  fuse_reply_err(req, 0);
}

static const struct fuse_lowlevel_ops ops = {
    .init = m_init,
    .lookup = m_lookup,
    .getattr = m_getattr,
    .setattr = m_setattr,
    .open = m_open,
    .read = m_read,
    .write = m_write,
    .flush = m_ok,
    .release = m_ok,
    .fsync = NULL,
    .getlk = m_getlk,
    .setlk = m_setlk,
    .flock = m_flock,
};

static void *announce(void *arg) {
  (void)arg;
  pthread_mutex_lock(&initMu);
  while (!initDone) pthread_cond_wait(&initCv, &initMu);
  pthread_mutex_unlock(&initMu);
  printf("ready\n");
  fflush(stdout);
  return NULL;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: minimal MOUNTPOINT [FILES] [THREADS]\n");
    return 2;
  }
  if (argc > 2) nfiles = atoi(argv[2]);
  int threads = argc > 3 ? atoi(argv[3]) : 4;
  int single = argc > 4 && strcmp(argv[4], "st") == 0;
  char *fargv[] = {argv[0], "-o", "fsname=locksmith-minimal", NULL};
  struct fuse_args args = FUSE_ARGS_INIT(3, fargv);
  struct fuse_session *se = fuse_session_new(&args, &ops, sizeof ops, NULL);
  if (se == NULL) return 1;
  if (fuse_set_signal_handlers(se) != 0) return 1;
  if (fuse_session_mount(se, argv[1]) != 0) return 1;
  pthread_t th;
  pthread_create(&th, NULL, announce, NULL);
  pthread_detach(th);
  int res;
  if (single) {
    res = fuse_session_loop(se);
  } else {
    struct fuse_loop_config *cfg = fuse_loop_cfg_create();
    fuse_loop_cfg_set_clone_fd(cfg, 0);
    fuse_loop_cfg_set_max_threads(cfg, threads);
    fuse_loop_cfg_set_idle_threads(cfg, threads);
    res = fuse_session_loop_mt(se, cfg);
    fuse_loop_cfg_destroy(cfg);
  }
  fuse_session_unmount(se);
  fuse_remove_signal_handlers(se);
  fuse_session_destroy(se);
  fuse_opt_free_args(&args);
  return res == 0 ? 0 : 1;
}
