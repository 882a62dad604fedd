// The lock session of a FUSE mount (fuse_session.h): a libfuse 3 low-level session over a
// passthrough of a backing directory, whose lock traffic goes to JavaScript, and the session's life:
// mount, the receiving threads, the grace sweep, unmount. It decides no lock, and it is not the
// passthrough: every file operation that is not lock traffic (lookup, open, read, write, readdir ...)
// and the inode table are passthrough.cc's; this file adds init and the lock operations to its table.
//
// getlk, setlk, flock, flush and release become events for the file's destination thread and the
// handler returns at once without replying, so a blocked F_SETLKW never occupies a libfuse worker
// (SEMANTICS-POSIX.md §12.3). JavaScript answers later through replyErr / replyLock:
// - getlk: replyLock (or replyErr: 0 means "no conflict", F_UNLCK with the request's range);
// - setlk, flock: the errno (0 granted);
// - flush: JS drops the owner's locks and answers; then the backing flush (backingFlush: close of a
//   dup, as passthrough_ll) runs and its result is the reply unless JS answered an error;
// - release: JS drops the handle's locks and answers; then the backing descriptor is closed
//   (backingRelease) and the reply is 0 (the kernel ignores release errors).
// Interrupts (§12.4): every getlk, setlk and flock registers an interrupt callback (a blocking
// one waits for a conflict, any one for a shared lock space's grace period to end); an interrupt becomes an event {kind:'interrupt', reqId} to the same destination, after
// the request's own event. If no thread is attached to that destination, nobody could cancel the
// waiter, and a process whose request the server ignores cannot even be killed: the request is then
// answered EINTR here (it was interrupted, so EINTR is the right answer) and its queued event is
// dropped; if JS had already seen it, the interrupt event waits in the queue for the next thread.
//
// Who reads /dev/fuse (the device is non-blocking): the reader threads (`threads`), each sleeping
// on its own epoll set that holds the device exclusively, so the kernel wakes one per request; and,
// while it polls after a callback (Session::spinUs), one worker thread at a time
// (readWhilePolling), during which the readers take the device out of their sets. A request the
// worker reads is lock traffic (getlk, setlk, setlkw, interrupt, flush, release: its op only queues
// an event, for that worker or another) and runs where it was read, or anything else, which may
// block on the backing file system and goes to the readers as a job. So one process locking in
// turn has its requests read by the thread that decides them, and no slow file operation ever
// runs on a worker.
//
// A store mount (sharedKeys: several nodes over one storage, each with its own page cache) answers
// a granted setlk or flock only after the kernel wrote back the file's dirty pages (mmap stores)
// and dropped its cached pages and attributes (notify_inval_inode, whole file), and hands an unlock
// to JS (which releases it in the shared lock space) only after the same, as NFS at each lock and
// unlock: written back at the unlock's answer, a waiter on another node would read the storage
// first. That notify blocks until the kernel is done, and writing back is WRITE requests to this
// very server, so it runs on threads of its own (invalidationLoop), never on a reader nor on a
// JavaScript thread (one may be the thread polling the device): the answering (or, for an unlock,
// the receiving) thread queues the request, an invalidation thread invalidates, then replies (or
// admits the unlock). A small pool, a file at a time each: a file's requests stay in order, and
// one file whose write-back cannot end holds no other file's answers. At the lease's end the
// fence watcher (Passthrough::fenceWatch) has the same threads drop the pages of the files locked
// here (queueFenceDrop), so that one such file holds no other file's drop either; a drop that no
// thread is free to take (all held, each in such a file) goes to a short-lived drop thread of its
// own (bounded), so that no number of them holds the fence. A mount
// without a store has no such threads and answers at once.
//
// Unmount answers every outstanding request itself, so no process stays blocked: a lock request
// that was interrupted gets EINTR, any other lock request gets ENOLCK ("no locks available": the
// lock service is going away; EINTR would reach a process with no signal pending as errno 512),
// flush and release do their backing part and reply. Requests that arrive while closing get the
// same treatment. The invalidation threads answer what they hold, then end: a notify may wait for
// a WRITE, which the readers serve until the connection goes. Then the mount is unmounted (umount2;
// if busy, MNT_FORCE, which aborts the FUSE connection and so ends any notify still waiting, then
// MNT_DETACH), the loop ends and its threads are joined, the invalidation and fence threads last.
#include "fuse_session.h"

#include <stdexcept>

#if LOCKSMITH_HAVE_FUSE

#include "passthrough.h"  // defines FUSE_USE_VERSION and includes <fuse_lowlevel.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <fstream>
#include <map>
#include <shared_mutex>
#include <sstream>
#include <system_error>
#include <thread>

extern char** environ;

namespace locksmith {
namespace {

bool isLockKind(EventKind k) { return k == EventKind::Getlk || k == EventKind::Setlk || k == EventKind::Flock; }

// ---- reading the device ------------------------------------------------------------------------

/** The header of every request read from /dev/fuse (linux/fuse.h fuse_in_header). */
struct InHeader {
  uint32_t len;
  uint32_t opcode;
  uint64_t unique;
  uint64_t nodeid;
  uint32_t uid, gid, pid;
  uint16_t totalExtlen, padding;
};
// Opcodes (linux/fuse.h) of the requests a polling JavaScript thread handles where it reads them.
constexpr uint32_t kOpRelease = 18, kOpFlush = 25, kOpGetlk = 31, kOpSetlk = 32, kOpSetlkw = 33, kOpInterrupt = 36;
/**
 * Bytes read per request: more than the largest request the kernel may send (a write of
 * max_write, at most 256 pages here, plus its headers); a smaller buffer fails every read.
 */
constexpr size_t kReadBuf = 2 * (1 << 20) + 2 * 4096;
/**
 * How long a reader that ran a job (a request a polling worker read and handed over) looks for the
 * next one, jobs and the device, before it sleeps again: a process doing file I/O sends its next
 * request right after the answer (SQLite's commit: pwrite, pwrite, fdatasync), which then needs
 * no wake-up of a reader.
 */
constexpr auto kJobSpin = std::chrono::microseconds(50);

// ---- libfuse log messages: captured while mounting (for the Error), else to stderr -------------

thread_local std::string* tlsLogCapture = nullptr;

void fuseLog(enum fuse_log_level level, const char* fmt, va_list ap) {
  char buf[1024];
  vsnprintf(buf, sizeof buf, fmt, ap);
  if (tlsLogCapture != nullptr) {
    tlsLogCapture->append(buf);
    return;
  }
  if (level <= FUSE_LOG_ERR) fprintf(stderr, "locksmith fuse: %s", buf);
}

std::string oneLine(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ' || s.back() == '.')) s.pop_back();
  for (char& c : s) {
    if (c == '\n') c = ';';
  }
  return s;
}

/** Every mountpoint still mounted by this process, for the exit handler. */
std::mutex* gLiveMu = new std::mutex;
std::map<int, std::string>* gLive = new std::map<int, std::string>;

/** At process exit, detach what is still mounted so no dead mount is left behind. */
void unmountAtExit() {
  if (!gLiveMu->try_lock()) return;
  for (auto& kv : *gLive) umount2(kv.second.c_str(), MNT_DETACH);
  gLiveMu->unlock();
}

/** The lock session; its Passthrough base is the fuse_session_new userdata (passthrough.h). */
class FuseSession : public Session, public Passthrough {
 public:
  FuseSession(int id, const MountOptions& o) : Session(id, o.destinations), opts_(o) {}
  ~FuseSession() override { close(); }

  bool isFuse() const override { return true; }
  void markLost(uint64_t fh) override { Passthrough::markLost(fh); }
  void setLease(const double* lease, double offsetMs) override { Passthrough::setLease(lease, offsetMs); }
  void start();
  bool replyErr(uint64_t reqId, int err) override;
  bool replyLock(uint64_t reqId, int type, uint64_t start, uint64_t end, int lockPid) override;
  void close() override;
  /** Lock requests (getlk, setlk, setlkw, flock) close() answered itself, with ENOLCK or EINTR (unmountFuse). */
  uint64_t closeAnsweredLocks() const { return closeAnsweredLocks_.load(); }
  void stats(Stats& out) override;

  // ---- used by the lock operations and init ----
  void lockRequest(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi, EventKind kind, int type, uint64_t start,
                   uint64_t end, int lockPid, bool sleep, bool flockRelease);
  void interrupted(Request* r);
  void onInit(fuse_conn_info* conn);

  bool readsWhilePolling() override { return opts_.locks && !deviceGone_.load(std::memory_order_relaxed); }
  bool pollStarted() override;
  void pollEnded() override;
  size_t readWhilePolling(std::vector<char>& buf) override;
  bool handedBusy(std::chrono::steady_clock::time_point since) override {
    return jobsUnanswered_.load(std::memory_order_relaxed) != 0 ||
           lastJobEndNs_.load(std::memory_order_relaxed) > since.time_since_epoch().count();
  }

 private:
  /** A reader thread: reads the device (non-blocking, sleeping on its epoll set) and runs the session's jobs. */
  void serve(std::atomic<int>& firstError);
  /** Runs one request read from the device on this thread (libfuse parses it and calls the ops). */
  void process(char* mem, size_t n);
  /** Hands a request read by a polling JavaScript thread to the reader threads. */
  void pushJob(const char* mem, size_t n);
  bool popJob(std::vector<char>& out);
  /** Puts the device in (or takes it out of) every reader's epoll set. Caller holds readersMu_. */
  void armReadersLocked(bool arm);
  void sendInterrupt(Request* r, bool insideCallback);
  /** Sends the reply of a request already taken from the table. */
  void finish(const RequestPtr& r, int err, bool unregisterInterrupt);
  /**
   * A store mount's grant or unlock (setlk, flock; err 0): queued for the invalidation threads,
   * which answers it after the kernel dropped (and first wrote back) the file's cached pages.
   * False when that thread is not running: the caller answers.
   */
  bool queueInvalidation(const RequestPtr& r, bool thenAdmit);
  /**
   * The fence watcher's drop of a file's pages (no request): queued for the same threads, after
   * the file's requests already queued; one already queued and not yet taken serves. False when
   * those threads are not running (the session closes: nothing is dropped).
   */
  bool queueFenceDrop(fuse_ino_t ino);
  /** Makes a lock request visible to JS (its destination's queue), or answers it if closing. */
  void admit(const RequestPtr& r);
  void invalidationLoop(bool dropThread = false);
  /** Ends the invalidation threads once they have answered every queued request (close()). */
  void stopInvalidations();
  void unmountKernel();
  /** Completes overdue requests of destinations nobody attached (MountOptions::graceMs). */
  void graceLoop();
  void sweepUnattended();
  bool waitLoopEnd(std::chrono::milliseconds d);
  void abortConnection();

  const MountOptions opts_;
  std::string mountpoint_;  // resolved
  struct fuse_session* se_ = nullptr;
  std::thread loop_;
  int loopResult_ = 0;
  std::thread grace_;
  std::mutex graceMu_;
  std::condition_variable graceCv_;
  bool graceStop_ = false;
  unsigned connId_ = 0;

  std::mutex stateMu_;
  std::condition_variable stateCv_;
  bool initDone_ = false;
  bool loopEnded_ = false;
  bool posixLocks_ = false;
  bool flockLocks_ = false;
  bool posixOffered_ = false;
  bool flockOffered_ = false;
  unsigned protoMajor_ = 0, protoMinor_ = 0;

  /** New requests are admitted under a shared lock; close() flips `closing_` under the exclusive one. */
  std::shared_mutex admitMu_;
  bool closing_ = false;
  std::mutex closeMu_;
  bool closed_ = false;
  bool leaked_ = false;
  std::atomic<uint64_t> interrupts_{0};
  std::atomic<uint64_t> nativeAnswers_{0};
  /** Of those, the lock requests answered because the session closed (closeAnsweredLocks). */
  std::atomic<uint64_t> closeAnsweredLocks_{0};

  /** The device (non-blocking), read by the reader threads and by JavaScript threads while they poll. */
  int devFd_ = -1;
  std::atomic<bool> deviceGone_{false};
  /** Held shared while a polling thread reads and runs requests; close() takes it before the session goes. */
  std::shared_mutex ioMu_;
  bool ioClosed_ = false;
  /** Requests read by a polling thread that are not lock traffic (they may block: file I/O), for the readers. */
  std::mutex jobsMu_;
  std::deque<std::vector<char>> jobs_;
  /** Readers looking for jobs after one (kJobSpin), under jobsMu_: a job pushed then needs no wake-up. */
  int spinningReaders_ = 0;
  /** Wakes one reader per write while jobs wait (exclusive in every reader's epoll set). */
  int jobsFd_ = -1;
  /** Wakes every reader to stop. */
  int stopFd_ = -1;
  std::mutex readersMu_;
  /** The readers' epoll sets; while pollers_ is 1 (a JavaScript thread polls) the device is not in them. */
  std::vector<int> readerEps_;
  int pollers_ = 0;
  std::atomic<uint64_t> polledReads_{0};
  std::atomic<uint64_t> jobsRun_{0};
  /** Jobs pushed and not yet run to their end, and when the last one ended (steady clock): handedBusy. */
  std::atomic<int64_t> jobsUnanswered_{0};
  std::atomic<int64_t> lastJobEndNs_{0};

  /**
   * Store mounts (sharedKeys): the threads that invalidate a file's pages before a lock request's
   * answer (queueInvalidation). The notify blocks until the kernel has written back the dirty pages
   * (WRITE requests to this very server) and dropped them, so it never runs on a thread that reads
   * the device, nor on a JavaScript thread (which may be the one polling the device meanwhile).
   * A small pool sharing one queue, a file at a time each: one file's requests stay in order (its
   * file is busy while a thread invalidates it), and one file whose write-back cannot end (a
   * stopped backing store) holds only its own requests, not every other file's.
   */
  static constexpr int kInvalThreads = 4;
  std::vector<std::thread> invals_;
  std::mutex invalMu_;
  std::condition_variable invalCv_;
  /**
   * A file (nodeId) and what to do once its pages are dropped: `r` with `thenAdmit`, an unlock,
   * admitted (to JS); without, a grant, answered; no `r`, nothing (the fence watcher's drop).
   */
  struct Invalidation {
    uint64_t node;
    RequestPtr r;
    bool thenAdmit;
  };
  std::deque<Invalidation> invalQueue_;
  /** The files (nodeId) a thread is invalidating now: their queued requests wait for it. */
  std::vector<uint64_t> invalBusy_;
  bool invalStop_ = false;
  bool invalRunning_ = false;
  int invalThreadsLeft_ = 0;
  /**
   * A fence drop is a fence: at the deadline no cached page of a file locked here may be read on.
   * So when every thread (pool and drop threads) is busy, each in a file whose write-back may never
   * end (a stopped backing store), queueFenceDrop starts a short-lived drop thread
   * ("locksmith-drop"): it serves what no thread can take (the drop, and anything queued before
   * it), then ends once nothing is left that it may take. At most kDropThreads at a time (each one
   * alive is held in a file's write-back, or about to end): past that a drop waits for a thread, as
   * a grant or unlock always does (a late answer, never a wrong one). Its std::thread is kept
   * (dropThreads_) and joined by the next queueFenceDrop once it ended (dropEnded_), or at close.
   */
  static constexpr int kDropThreads = 16;
  std::vector<std::thread> dropThreads_;
  std::vector<std::thread::id> dropEnded_;
  int dropThreadsAlive_ = 0;
  std::atomic<uint64_t> invalidations_{0};
  std::atomic<uint64_t> invalidationErrors_{0};
  /** Store mounts: the fence's watcher (Passthrough::fenceWatch), dropping locked files' pages at the lease's end. */
  std::thread fence_;

  friend SessionPtr locksmith::mountFuse(const MountOptions& o);
};

FuseSession* sessionOf(fuse_req_t req) { return static_cast<FuseSession*>(passthroughOf(req)); }

// ---- init: the lock capabilities ---------------------------------------------------------------

void opInit(void* userdata, struct fuse_conn_info* conn) {
  static_cast<FuseSession*>(static_cast<Passthrough*>(userdata))->onInit(conn);
}

// ---- lock traffic: events for JavaScript ------------------------------------------------------

uint64_t endOf(const struct flock* l) {
  return l->l_len == 0 ? OFFSET_MAX : static_cast<uint64_t>(l->l_start + l->l_len - 1);
}

void opGetlk(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi, struct flock* lock) {
  sessionOf(req)->lockRequest(req, ino, fi, EventKind::Getlk, lock->l_type, static_cast<uint64_t>(lock->l_start),
                              endOf(lock), lock->l_pid, false, false);
}

void opSetlk(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi, struct flock* lock, int sleep) {
  sessionOf(req)->lockRequest(req, ino, fi, EventKind::Setlk, lock->l_type, static_cast<uint64_t>(lock->l_start),
                              endOf(lock), lock->l_pid, sleep != 0, false);
}

void opFlock(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi, int op) {
  int type = (op & LOCK_SH) ? F_RDLCK : (op & LOCK_EX) ? F_WRLCK : F_UNLCK;
  sessionOf(req)->lockRequest(req, ino, fi, EventKind::Flock, type, 0, OFFSET_MAX, fuse_req_ctx(req)->pid,
                              (op & LOCK_NB) == 0, false);
}

void opFlush(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  sessionOf(req)->lockRequest(req, ino, fi, EventKind::Flush, F_UNLCK, 0, OFFSET_MAX, fuse_req_ctx(req)->pid, false,
                              false);
}

void opRelease(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  sessionOf(req)->lockRequest(req, ino, fi, EventKind::Release, F_UNLCK, 0, OFFSET_MAX, fuse_req_ctx(req)->pid, false,
                              fi->flock_release != 0);
}

void onInterrupt(fuse_req_t, void* data) {
  auto* r = static_cast<Request*>(data);
  static_cast<FuseSession*>(r->session)->interrupted(r);
}

struct fuse_lowlevel_ops makeOps() {
  struct fuse_lowlevel_ops ops;
  memset(&ops, 0, sizeof ops);
  passthroughOps(ops);
  ops.init = opInit;
  ops.flush = opFlush;
  ops.release = opRelease;
  ops.getlk = opGetlk;
  ops.setlk = opSetlk;
  ops.flock = opFlock;
  return ops;
}

const struct fuse_lowlevel_ops kOps = makeOps();

// ---- FuseSession ------------------------------------------------------------------------------

void FuseSession::onInit(fuse_conn_info* conn) {
  // libfuse turns both on by itself when getlk/setlk/flock exist, so off must be said explicitly.
  if (opts_.locks) {
    if (conn->capable & FUSE_CAP_POSIX_LOCKS) conn->want |= FUSE_CAP_POSIX_LOCKS;
    if (conn->capable & FUSE_CAP_FLOCK_LOCKS) conn->want |= FUSE_CAP_FLOCK_LOCKS;
  } else {
    conn->want &= ~(FUSE_CAP_POSIX_LOCKS | FUSE_CAP_FLOCK_LOCKS);
  }
  conn->want &= ~FUSE_CAP_WRITEBACK_CACHE;  // FOPEN_NOFLUSH-like effects must not hide FLUSH
  // libfuse asks for splice reads because write_buf exists: every request, a lock request too, then
  // costs splice into a pipe and a read from it instead of one read. Lock latency comes first here.
  conn->want &= ~FUSE_CAP_SPLICE_READ;
  std::lock_guard<std::mutex> g(stateMu_);
  posixOffered_ = (conn->capable & FUSE_CAP_POSIX_LOCKS) != 0;
  flockOffered_ = (conn->capable & FUSE_CAP_FLOCK_LOCKS) != 0;
  posixLocks_ = posixOffered_ && (conn->want & FUSE_CAP_POSIX_LOCKS) != 0;
  flockLocks_ = flockOffered_ && (conn->want & FUSE_CAP_FLOCK_LOCKS) != 0;
  protoMajor_ = conn->proto_major;
  protoMinor_ = conn->proto_minor;
  initDone_ = true;
  stateCv_.notify_all();
}

void FuseSession::lockRequest(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi, EventKind kind, int type,
                              uint64_t start, uint64_t end, int lockPid, bool sleep, bool flockRelease) {
  Inode& in = inode(ino);
  auto r = std::make_shared<Request>();
  r->id = nextReqId.fetch_add(1);
  r->kind = kind;
  r->req = req;
  r->fileHandle = fi->fh;
  r->lockOwner = fi->lock_owner;
  r->nodeId = ino;
  r->start = start;
  r->end = end;
  r->type = type;
  r->lockPid = lockPid;
  r->path = in.key;
  r->session = this;
  r->dest = routeOf(*in.key);
  r->sleep = sleep;
  r->flockRelease = flockRelease;
  // Every lock request, not only one that sleeps: in a shared lock space's grace period even
  // F_GETLK and F_SETLK wait (for its end), and fcntl(2) allows EINTR for them too.
  r->interruptible = kind == EventKind::Getlk || kind == EventKind::Setlk || kind == EventKind::Flock;
  // Registered before the request becomes visible: once JS can answer, `req` may be gone. If the
  // interrupt already happened, the callback runs now and only marks the request.
  if (r->interruptible) fuse_req_interrupt_func(req, onInterrupt, r.get());
  if (!opts_.locks && (kind == EventKind::Flush || kind == EventKind::Release)) {
    // The kernel keeps the locks of this mount (MountOptions::locks): only the backing part is ours.
    r->replied = true;
    finish(r, 0, true);
    return;
  }
  // A store mount's unlock (setlk F_UNLCK, flock LOCK_UN): the file's dirty pages (mmap stores) are
  // written back before the unlock reaches the shared lock space, as NFS (do_unlk: nfs_sync_mapping,
  // then the unlock to the server). Written back only at the answer, a waiter on another node is
  // granted (and reads the storage) before them. An invalidation thread does it, then admits.
  if (sharedKeys && type == F_UNLCK && (kind == EventKind::Setlk || kind == EventKind::Flock) &&
      queueInvalidation(r, true)) {
    return;
  }
  admit(r);
}

void FuseSession::admit(const RequestPtr& r) {
  bool admitted = false;
  {
    std::shared_lock<std::shared_mutex> g(admitMu_);
    if (!closing_) {
      deliverRequest(r, r->toEvent());
      admitted = true;
    }
  }
  if (!admitted) {
    r->replied = true;
    nativeAnswers_++;
    if (isLockKind(r->kind)) closeAnsweredLocks_++;
    finish(r, isLockKind(r->kind) ? ENOLCK : 0, true);
    return;
  }
  if (!r->interruptible) return;
  bool interruptNow = requests.locked(r.get(), [&] {
    r->delivered = true;
    return r->interrupted && !r->replied;
  });
  if (interruptNow) sendInterrupt(r.get(), false);
}

void FuseSession::interrupted(Request* r) {
  interrupts_++;
  bool send = requests.locked(r, [&] {
    if (r->interrupted) return false;
    r->interrupted = true;
    return r->delivered && !r->replied;
  });
  if (send) sendInterrupt(r, true);
}

void FuseSession::sendInterrupt(Request* r, bool insideCallback) {
  Event e = r->toEvent();
  e.kind = EventKind::Interrupt;
  if (attached(r->dest)) {
    deliver(r->dest, std::move(e));
    return;
  }
  // Nobody can cancel this waiter now, and an unanswered interrupted request leaves its process
  // unkillable: answer EINTR here. If JS already saw the request, tell the next attached thread.
  if (!purgeQueued(r->dest, r->id)) deliver(r->dest, std::move(e));
  RequestPtr taken = requests.take(r->id);
  if (taken) {
    nativeAnswers_++;
    // Inside the interrupt callback libfuse holds the request's lock: unregistering would deadlock,
    // and libfuse clears the callback itself when the reply frees the request.
    finish(taken, EINTR, !insideCallback);
  }
}

void FuseSession::finish(const RequestPtr& r, int err, bool unregisterInterrupt) {
  auto req = static_cast<fuse_req_t>(r->req);
  // Waits for a running interrupt callback to return and stops later ones, so `r` may go.
  if (r->interruptible && unregisterInterrupt) fuse_req_interrupt_func(req, nullptr, nullptr);
  switch (r->kind) {
    case EventKind::Getlk:
      if (err != 0) {
        fuse_reply_err(req, err);
      } else {
        struct flock fl;
        memset(&fl, 0, sizeof fl);
        fl.l_type = F_UNLCK;
        fl.l_whence = SEEK_SET;
        fl.l_start = static_cast<off_t>(r->start);
        fl.l_len = r->end == OFFSET_MAX ? 0 : static_cast<off_t>(r->end - r->start + 1);
        fl.l_pid = r->lockPid;
        fuse_reply_lock(req, &fl);
      }
      break;
    case EventKind::Setlk:
    case EventKind::Flock:
      // In a shared lock space another node (another mount, another machine: another page cache)
      // may have written the bytes this grant now covers, and may read next what this node wrote
      // under the lock it now gives up. As NFS at each lock and unlock (do_setlk, do_unlk:
      // nfs_sync_mapping, nfs_zap_caches), the kernel writes back the file's dirty pages (mmap
      // stores: write(2) already reached the backing file) and drops its cached pages and
      // attributes before the answer: an invalidation thread does it, then answers.
      // An unlock was written back before it was admitted (lockRequest): answered at once.
      if (err == 0 && sharedKeys && r->type != F_UNLCK) {
        // From now on the file's I/O is fenced at the lease (Passthrough::fencedIo).
        lockGranted(static_cast<fuse_ino_t>(r->nodeId));
        if (queueInvalidation(r, false)) return;
        // No invalidation threads (the session closes): the attributes at least, which never blocks.
        if (se_ != nullptr) fuse_lowlevel_notify_inval_inode(se_, static_cast<fuse_ino_t>(r->nodeId), -1, 0);
      }
      fuse_reply_err(req, err);
      break;
    case EventKind::Flush: {
      int res = backingFlush(fdOf(r->fileHandle));
      fuse_reply_err(req, err != 0 ? err : res);
      break;
    }
    case EventKind::Release:
      clearLost(r->fileHandle);
      backingRelease(fdOf(r->fileHandle));
      handleClosed(static_cast<fuse_ino_t>(r->nodeId));
      fuse_reply_err(req, 0);
      break;
    case EventKind::Interrupt:
      break;
  }
  replies.fetch_add(1, std::memory_order_relaxed);
}

bool FuseSession::queueInvalidation(const RequestPtr& r, bool thenAdmit) {
  std::lock_guard<std::mutex> g(invalMu_);
  if (!invalRunning_ || invalStop_) return false;
  invalQueue_.push_back(Invalidation{r->nodeId, r, thenAdmit});
  invalCv_.notify_one();
  return true;
}

bool FuseSession::queueFenceDrop(fuse_ino_t ino) {
  std::vector<std::thread> ended;
  {
    std::lock_guard<std::mutex> g(invalMu_);
    if (!invalRunning_ || invalStop_) return false;
    // Drop threads that ended: joined below, outside the lock (they hold nothing, and are past it).
    for (const std::thread::id& id : dropEnded_) {
      auto it = std::find_if(dropThreads_.begin(), dropThreads_.end(), [&](const std::thread& t) { return t.get_id() == id; });
      if (it == dropThreads_.end()) continue;
      ended.push_back(std::move(*it));
      dropThreads_.erase(it);
    }
    dropEnded_.clear();
    const uint64_t node = static_cast<uint64_t>(ino);
    // Deadlines while one file's write-back cannot end queue no more than one drop of it.
    bool queued = false;
    for (const Invalidation& q : invalQueue_) {
      if (q.node == node && !q.r) queued = true;
    }
    if (!queued) {
      invalQueue_.push_back(Invalidation{node, nullptr, false});
      invalCv_.notify_one();
    }
    // What a thread could take now (its file not busy), against the threads not busy (idle, or
    // started and not yet at the queue). More of it than threads: this drop would wait behind
    // files being invalidated (and a held write-back may never end), so a drop thread takes it.
    const auto busy = [&](uint64_t n) { return std::find(invalBusy_.begin(), invalBusy_.end(), n) != invalBusy_.end(); };
    if (!busy(node)) {
      std::vector<uint64_t> runnable;
      for (const Invalidation& q : invalQueue_) {
        if (!busy(q.node) && std::find(runnable.begin(), runnable.end(), q.node) == runnable.end()) runnable.push_back(q.node);
      }
      const int free = invalThreadsLeft_ + dropThreadsAlive_ - static_cast<int>(invalBusy_.size());
      if (static_cast<int>(runnable.size()) > free && dropThreadsAlive_ < kDropThreads) {
        try {
          dropThreads_.emplace_back([this] {
            sigset_t all;
            sigfillset(&all);
            pthread_sigmask(SIG_BLOCK, &all, nullptr);
            pthread_setname_np(pthread_self(), "locksmith-drop");
            invalidationLoop(true);
          });
          dropThreadsAlive_++;  // before the thread can take invalMu_ (held here)
        } catch (const std::system_error&) {
          // No thread to be had (EAGAIN): the drop stays queued for the pool.
        }
      }
    }
  }
  for (std::thread& t : ended) t.join();
  return true;
}

void FuseSession::invalidationLoop(bool dropThread) {
  std::vector<Invalidation> batch;
  std::unique_lock<std::mutex> l(invalMu_);
  auto busy = [&](uint64_t node) { return std::find(invalBusy_.begin(), invalBusy_.end(), node) != invalBusy_.end(); };
  for (;;) {
    // The first queued request whose file no other thread is invalidating.
    auto next = invalQueue_.end();
    const auto ready = [&] {
      next = std::find_if(invalQueue_.begin(), invalQueue_.end(), [&](const Invalidation& q) { return !busy(q.node); });
      // A drop thread takes a fence drop first (a grant's file may be the next held write-back).
      if (dropThread) {
        auto drop = std::find_if(invalQueue_.begin(), invalQueue_.end(), [&](const Invalidation& q) { return !q.r && !busy(q.node); });
        if (drop != invalQueue_.end()) next = drop;
      }
      return next != invalQueue_.end() || invalStop_;
    };
    // A drop thread never waits: nothing it may take, it ends (the pool serves what comes next).
    if (dropThread) {
      ready();
    } else {
      invalCv_.wait(l, ready);
    }
    // Stopping and nothing this thread may take: what is left is a busy file's, which its thread
    // answers after the one it holds.
    if (next == invalQueue_.end()) break;
    // Every queued request of that file, in order: one invalidation serves them all (all were
    // decided before it).
    const uint64_t node = next->node;
    batch.clear();
    for (auto it = next; it != invalQueue_.end();) {
      if (it->node == node) {
        batch.push_back(std::move(*it));
        it = invalQueue_.erase(it);
      } else {
        ++it;
      }
    }
    invalBusy_.push_back(node);
    l.unlock();
    // offset 0, len 0: the whole file. The kernel (fuse_reverse_inval_inode) marks the attributes
    // stale and runs invalidate_inode_pages2_range: mapped pages are unmapped, dirty ones laundered
    // (a WRITE each, served by the readers), all dropped. It returns when done; -ENOENT: the kernel
    // has no such inode cached (nothing to drop). Any other error (the connection going away)
    // leaves nothing to do but answer.
    int res = fuse_lowlevel_notify_inval_inode(se_, static_cast<fuse_ino_t>(node), 0, 0);
    const uint64_t drops = static_cast<uint64_t>(std::count_if(batch.begin(), batch.end(), [](const Invalidation& q) { return !q.r; }));
    // A request's invalidation (counted as one, a fence drop served with it or not) or a fence drop alone.
    if (drops != batch.size()) {
      invalidations_.fetch_add(1, std::memory_order_relaxed);
      if (res != 0 && res != -ENOENT) invalidationErrors_.fetch_add(1, std::memory_order_relaxed);
    }
    for (const Invalidation& q : batch) {
      if (!q.r) continue;
      if (q.thenAdmit) {
        admit(q.r);  // closing: answered ENOLCK there
        continue;
      }
      fuse_reply_err(static_cast<fuse_req_t>(q.r->req), 0);
      replies.fetch_add(1, std::memory_order_relaxed);
    }
    if (drops != 0) fenceDropped(drops);
    batch.clear();
    l.lock();
    invalBusy_.erase(std::find(invalBusy_.begin(), invalBusy_.end(), node));
    // Requests of this file queued meanwhile may go now, on any thread.
    invalCv_.notify_all();
  }
  if (dropThread) {
    dropThreadsAlive_--;
    dropEnded_.push_back(std::this_thread::get_id());
    return;
  }
  if (--invalThreadsLeft_ == 0) invalRunning_ = false;
}

void FuseSession::stopInvalidations() {
  std::lock_guard<std::mutex> g(invalMu_);
  invalStop_ = true;
  invalCv_.notify_all();
}

bool FuseSession::replyErr(uint64_t reqId, int err) {
  RequestPtr r = requests.take(reqId);
  if (!r) return false;
  finish(r, err, true);
  return true;
}

bool FuseSession::replyLock(uint64_t reqId, int type, uint64_t start, uint64_t end, int lockPid) {
  RequestPtr peeked = requests.peek(reqId);
  if (!peeked) return false;
  if (peeked->kind != EventKind::Getlk) {
    throw std::invalid_argument("request " + std::to_string(reqId) + " is a " + kindName(peeked->kind) +
                                ", not a getlk: answer it with replyErr");
  }
  RequestPtr r = requests.take(reqId);
  if (!r) return false;
  struct flock fl;
  memset(&fl, 0, sizeof fl);
  fl.l_type = static_cast<short>(type);
  fl.l_whence = SEEK_SET;
  fl.l_start = static_cast<off_t>(start);
  fl.l_len = end == OFFSET_MAX ? 0 : static_cast<off_t>(end - start + 1);
  fl.l_pid = lockPid;
  fuse_reply_lock(static_cast<fuse_req_t>(r->req), &fl);
  replies.fetch_add(1, std::memory_order_relaxed);
  return true;
}

void FuseSession::start() {
  loop_ = std::thread([this] {
    // libfuse's workers inherit this mask: signals stay with Node's threads.
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, nullptr);
    // A fixed set of threads, each receiving and processing requests itself: the kernel wakes one
    // reader per request, nothing is handed over and no thread is created or destroyed while the
    // mount serves. libfuse 3.14's fuse_session_loop_mt (max_idle_threads = max_threads) created
    // and destroyed a thread for most requests here (~900 clone3 for ~4,000 lock operations).
    // A slow backing operation holds one of them; the others go on serving.
    std::vector<std::thread> readers;
    std::atomic<int> firstError{0};
    auto serve = [this, &firstError] { this->serve(firstError); };
    for (uint32_t i = 1; i < opts_.threads; i++) readers.emplace_back(serve);
    serve();
    for (std::thread& t : readers) t.join();
    int res = firstError.load();
    std::lock_guard<std::mutex> g(stateMu_);
    loopResult_ = res;
    loopEnded_ = true;
    stateCv_.notify_all();
  });
  grace_ = std::thread([this] {
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, nullptr);
    pthread_setname_np(pthread_self(), "locksmith-grace");
    graceLoop();
  });
  if (sharedKeys) {
    {
      std::lock_guard<std::mutex> g(invalMu_);
      invalRunning_ = true;
      invalThreadsLeft_ = kInvalThreads;
    }
    for (int i = 0; i < kInvalThreads; i++) {
      invals_.emplace_back([this] {
        sigset_t all;
        sigfillset(&all);
        pthread_sigmask(SIG_BLOCK, &all, nullptr);
        pthread_setname_np(pthread_self(), "locksmith-inval");
        invalidationLoop();
      });
    }
    fence_ = std::thread([this] {
      sigset_t all;
      sigfillset(&all);
      pthread_sigmask(SIG_BLOCK, &all, nullptr);
      pthread_setname_np(pthread_self(), "locksmith-fence");
      // Whole file, as at a grant: mapped pages unmapped, dirty ones written back (their WRITE is
      // fenced: such a page stays, the writer's own bytes), all others dropped. On the
      // invalidation threads, as a grant's: a notify held in a write-back that cannot end (a
      // stopped backing store) holds that file's drop, not this thread nor another file's; with
      // every thread so held, a drop thread takes the drop (queueFenceDrop).
      // Closing (the threads gone), nothing is dropped: every request is answered, the unmount next.
      fenceWatch([this](fuse_ino_t ino) { queueFenceDrop(ino); });
    });
  }
}

void FuseSession::process(char* mem, size_t n) {
  struct fuse_buf fb;
  memset(&fb, 0, sizeof fb);
  fb.mem = mem;
  fb.size = n;
  fuse_session_process_buf(se_, &fb);
}

void FuseSession::pushJob(const char* mem, size_t n) {
  jobsUnanswered_.fetch_add(1, std::memory_order_relaxed);
  std::lock_guard<std::mutex> g(jobsMu_);
  jobs_.emplace_back(mem, mem + n);
  if (jobs_.size() == 1 && spinningReaders_ == 0) {
    uint64_t one = 1;
    ssize_t ignored = write(jobsFd_, &one, sizeof one);
    (void)ignored;
  }
}

bool FuseSession::popJob(std::vector<char>& out) {
  std::lock_guard<std::mutex> g(jobsMu_);
  if (jobs_.empty()) return false;
  out.swap(jobs_.front());
  jobs_.pop_front();
  uint64_t x = 1;
  ssize_t ignored = jobs_.empty() ? read(jobsFd_, &x, sizeof x) : write(jobsFd_, &x, sizeof x);  // reset, or wake another reader
  (void)ignored;
  return true;
}

void FuseSession::armReadersLocked(bool arm) {
  struct epoll_event ev {};
  ev.events = EPOLLIN | EPOLLEXCLUSIVE;
  ev.data.u32 = 0;
  for (int ep : readerEps_) epoll_ctl(ep, arm ? EPOLL_CTL_ADD : EPOLL_CTL_DEL, devFd_, arm ? &ev : nullptr);
}

bool FuseSession::pollStarted() {
  // A JavaScript thread reads the device while it polls: were the readers still sleeping on it,
  // the kernel would wake one of them for every request (and that one would race the poller).
  std::lock_guard<std::mutex> g(readersMu_);
  if (pollers_ != 0) return false;
  pollers_ = 1;
  armReadersLocked(false);
  return true;
}

void FuseSession::pollEnded() {
  // The readers sleep on the device again; a request that came meanwhile wakes one at once.
  std::lock_guard<std::mutex> g(readersMu_);
  pollers_ = 0;
  armReadersLocked(true);
}

void FuseSession::serve(std::atomic<int>& firstError) {
  pthread_setname_np(pthread_self(), "locksmith-fuse");
  // The kernel applied the caller's umask to a CREATE, MKDIR or MKNOD's mode already (no
  // FUSE_CAP_DONT_MASK): this thread makes files with none of its own, as a passthrough server
  // must, so the bits asked are the bits made (and a directory's default ACL rules, as for the
  // caller). The umask is the process's, shared with Node's threads: this reader takes a file
  // system context of its own first (unshare(CLONE_FS): umask, working and root directory; every
  // path here is descriptor-relative). Refused, the process's umask applies once more, as before.
  if (unshare(CLONE_FS) == 0) umask(0);
  // The device is non-blocking (JavaScript threads read it too while they poll): each reader
  // sleeps on its own epoll set, holding the device exclusively (the kernel wakes one sleeper per
  // request) unless a JavaScript thread polls, and the jobs likewise.
  int ep = epoll_create1(EPOLL_CLOEXEC);
  struct epoll_event ev {};
  ev.events = EPOLLIN | EPOLLEXCLUSIVE;
  ev.data.u32 = 1;
  bool ok = ep >= 0 && epoll_ctl(ep, EPOLL_CTL_ADD, jobsFd_, &ev) == 0;
  ev.events = EPOLLIN;
  ev.data.u32 = 2;
  ok = ok && epoll_ctl(ep, EPOLL_CTL_ADD, stopFd_, &ev) == 0;
  if (!ok) {
    int expected = 0;
    firstError.compare_exchange_strong(expected, -errno);
    if (ep >= 0) ::close(ep);
    fuse_session_exit(se_);
    uint64_t one = 1;
    ssize_t ignored = write(stopFd_, &one, sizeof one);
    (void)ignored;
    return;
  }
  {
    std::lock_guard<std::mutex> g(readersMu_);
    ev.events = EPOLLIN | EPOLLEXCLUSIVE;
    ev.data.u32 = 0;
    if (pollers_ == 0) epoll_ctl(ep, EPOLL_CTL_ADD, devFd_, &ev);
    readerEps_.push_back(ep);
  }
  std::vector<char> buf(kReadBuf);
  std::vector<char> job;
  using Clock = std::chrono::steady_clock;
  // After a job: look for the next request until then (kJobSpin), counted in spinningReaders_.
  Clock::time_point spinUntil{};
  bool spinning = false;
  // A looking reader that takes work is no longer counted: a job pushed while it runs (file I/O
  // that may block) must wake another reader, and one pushed just before is woken for now.
  const auto unspin = [&] {
    std::lock_guard<std::mutex> g(jobsMu_);
    spinningReaders_--;
    spinning = false;
    if (!jobs_.empty()) {
      uint64_t one = 1;
      ssize_t ignored = write(jobsFd_, &one, sizeof one);
      (void)ignored;
    }
  };
  while (!fuse_session_exited(se_)) {
    if (popJob(job)) {
      if (spinning) unspin();
      process(job.data(), job.size());
      jobsRun_.fetch_add(1, std::memory_order_relaxed);
      const auto end = Clock::now();
      lastJobEndNs_.store(end.time_since_epoch().count(), std::memory_order_relaxed);
      jobsUnanswered_.fetch_sub(1, std::memory_order_relaxed);
      spinUntil = end + kJobSpin;
      continue;
    }
    ssize_t res = ::read(devFd_, buf.data(), buf.size());
    if (res >= static_cast<ssize_t>(sizeof(InHeader))) {
      const bool looked = spinning;
      if (spinning) unspin();
      process(buf.data(), static_cast<size_t>(res));
      if (looked) spinUntil = Clock::now() + kJobSpin;
      continue;
    }
    int err = res < 0 ? errno : res == 0 ? ENODEV : EIO;
    if (err == EAGAIN) {
      if (Clock::now() < spinUntil) {
        if (!spinning) {
          std::lock_guard<std::mutex> g(jobsMu_);
          spinningReaders_++;
          spinning = true;
        }
        sched_yield();
        continue;
      }
      if (spinning) {
        std::lock_guard<std::mutex> g(jobsMu_);
        spinningReaders_--;
        spinning = false;
        if (!jobs_.empty()) continue;  // pushed while this reader looked: nobody was woken for it
      }
      struct epoll_event evs[4];
      epoll_wait(ep, evs, 4, -1);
      continue;
    }
    if (err == EINTR || err == ENOENT) continue;  // ENOENT: the request was interrupted before we read it
    if (err != ENODEV) {
      int expected = 0;
      firstError.compare_exchange_strong(expected, -err);
    }
    deviceGone_ = true;
    fuse_session_exit(se_);  // unmounted (ENODEV) or the device failed: all stop
    uint64_t one = 1;
    ssize_t ignored = write(stopFd_, &one, sizeof one);
    (void)ignored;
    break;
  }
  if (spinning) {
    std::lock_guard<std::mutex> g(jobsMu_);
    spinningReaders_--;
  }
  std::lock_guard<std::mutex> g(readersMu_);
  readerEps_.erase(std::remove(readerEps_.begin(), readerEps_.end(), ep), readerEps_.end());
  ::close(ep);
}

size_t FuseSession::readWhilePolling(std::vector<char>& buf) {
  std::shared_lock<std::shared_mutex> g(ioMu_, std::try_to_lock);
  if (!g.owns_lock() || ioClosed_ || deviceGone_.load(std::memory_order_relaxed)) return 0;
  if (buf.size() < kReadBuf) buf.resize(kReadBuf);
  size_t n = 0;
  while (n < 64) {
    ssize_t res = ::read(devFd_, buf.data(), buf.size());
    if (res < static_cast<ssize_t>(sizeof(InHeader))) {
      if (res < 0 && (errno == EINTR || errno == ENOENT)) continue;
      if (res < 0 && errno == EAGAIN) break;
      // The device is gone (or failed): the readers see it too (pollEnded puts it back in their
      // sets) and end the session.
      deviceGone_ = true;
      break;
    }
    n++;
    polledReads_.fetch_add(1, std::memory_order_relaxed);
    const auto* in = reinterpret_cast<const InHeader*>(buf.data());
    switch (in->opcode) {
      case kOpGetlk:
      case kOpSetlk:
      case kOpSetlkw:
      case kOpInterrupt:
      case kOpFlush:
      case kOpRelease:
        // Lock traffic: its op only queues an event (flush and release do their backing part
        // when answered), so it runs here.
        process(buf.data(), static_cast<size_t>(res));
        break;
      default:
        // Anything else may block on the backing file system: a reader thread runs it.
        pushJob(buf.data(), static_cast<size_t>(res));
    }
  }
  return n;
}

void FuseSession::graceLoop() {
  std::unique_lock<std::mutex> l(graceMu_);
  while (!graceStop_) {
    graceCv_.wait_for(l, std::chrono::milliseconds(std::min<uint32_t>(50, std::max<uint32_t>(5, opts_.graceMs / 4))));
    if (graceStop_) break;
    l.unlock();
    sweepUnattended();
    l.lock();
  }
}

void FuseSession::sweepUnattended() {
  const auto now = std::chrono::steady_clock::now();
  const auto grace = std::chrono::milliseconds(opts_.graceMs);
  for (auto& dp : dests) {
    std::vector<uint64_t> ids;
    std::chrono::steady_clock::time_point since;
    {
      std::lock_guard<std::mutex> g(dp->mu);
      if (dp->current != nullptr || dp->queue.empty() || now - dp->unattendedSince < grace) continue;
      since = dp->unattendedSince;
      for (const Event& e : dp->queue) {
        if (e.kind == EventKind::Interrupt || (isLockKind(e.kind) && e.sleep)) continue;
        ids.push_back(e.reqId);
      }
    }
    for (uint64_t id : ids) {
      RequestPtr r = requests.peek(id);
      if (!r || now - std::max(r->since, since) < grace) continue;
      r = requests.take(id);
      if (!r) continue;
      // A lock answered here must never be decided again; a flush or release must still reach JS.
      if (isLockKind(r->kind)) purgeQueued(dp->index, id);
      nativeAnswers_++;
      finish(r, isLockKind(r->kind) ? ENOLCK : 0, true);
    }
  }
}

bool FuseSession::waitLoopEnd(std::chrono::milliseconds d) {
  std::unique_lock<std::mutex> l(stateMu_);
  return stateCv_.wait_for(l, d, [&] { return loopEnded_; });
}

bool isMounted(const std::string& mp) {
  std::ifstream f("/proc/self/mountinfo");
  std::string line;
  while (std::getline(f, line)) {
    std::istringstream in(line);
    std::string id, parent, devno, root, point;
    in >> id >> parent >> devno >> root >> point;
    if (point == mp) return true;
  }
  return false;
}

/** The "major:minor" of what is mounted at mp (the last mount there), or "" if nothing. */
std::string mountDevice(const std::string& mp) {
  std::ifstream f("/proc/self/mountinfo");
  std::string line, found;
  while (std::getline(f, line)) {
    std::istringstream in(line);
    std::string id, parent, devno, root, point;
    in >> id >> parent >> devno >> root >> point;
    if (point == mp) found = devno;
  }
  return found;
}

int runFusermount(const std::string& mp) {
  pid_t pid;
  const char* argv[] = {"fusermount3", "-u", "-z", "-q", mp.c_str(), nullptr};
  if (posix_spawnp(&pid, "fusermount3", nullptr, nullptr, const_cast<char* const*>(argv), environ) != 0) return -1;
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

void FuseSession::unmountKernel() {
  if (geteuid() != 0) {
    runFusermount(mountpoint_);
    return;
  }
  // Processes that just got their answers may still be closing files: give them a moment.
  for (int i = 0; i < 40; i++) {
    if (umount2(mountpoint_.c_str(), 0) == 0) return;
    if (errno != EBUSY) return;  // EINVAL: not mounted any more (someone else unmounted it)
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
  }
  // Still busy (files held open on the mount): for FUSE, MNT_FORCE aborts the connection, so
  // every pending request ends and the loop stops; then detach the mount from the tree.
  if (umount2(mountpoint_.c_str(), MNT_FORCE) == 0) return;
  umount2(mountpoint_.c_str(), MNT_DETACH);
}

void FuseSession::abortConnection() {
  if (connId_ == 0) return;
  std::string path = "/sys/fs/fuse/connections/" + std::to_string(connId_) + "/abort";
  int fd = open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0 && geteuid() == 0) {
    mount("fusectl", "/sys/fs/fuse/connections", "fusectl", 0, nullptr);
    fd = open(path.c_str(), O_WRONLY | O_CLOEXEC);
  }
  if (fd < 0) return;
  ssize_t ignored = write(fd, "1", 1);
  (void)ignored;
  ::close(fd);
}

void FuseSession::close() {
  std::lock_guard<std::mutex> cg(closeMu_);
  if (closed_) return;
  closed_ = true;
  {
    std::unique_lock<std::shared_mutex> g(admitMu_);
    closing_ = true;
  }
  {
    std::lock_guard<std::mutex> g(graceMu_);
    graceStop_ = true;
    graceCv_.notify_all();
  }
  if (grace_.joinable()) grace_.join();
  for (const RequestPtr& r : requests.takeAll()) {
    bool wasInterrupted = requests.locked(r.get(), [&] { return r->interrupted; });
    nativeAnswers_++;
    if (isLockKind(r->kind)) closeAnsweredLocks_++;
    finish(r, isLockKind(r->kind) ? (wasInterrupted ? EINTR : ENOLCK) : 0, true);
  }
  // No request can be granted from now on (all are answered, none admitted): the invalidation
  // thread answers what it holds and ends. Its notify may wait for WRITE requests, which the
  // readers serve until the connection goes; joined once they are gone (the connection with them,
  // so no notify can wait any more).
  stopInvalidations();
  stopFenceWatch();
  detachAll();
  clearQueues();
  if (se_ != nullptr) {
    unmountKernel();
    if (!waitLoopEnd(std::chrono::milliseconds(2000))) {
      abortConnection();
      if (!waitLoopEnd(std::chrono::milliseconds(10000))) {
        // The loop cannot be stopped (no way to abort the connection): leave it running rather
        // than hang this thread forever; the session's memory is leaked on purpose.
        fprintf(stderr, "locksmith fuse: the FUSE loop for %s did not stop; leaving it behind\n", mountpoint_.c_str());
        loop_.detach();
        for (std::thread& t : invals_) {
          if (t.joinable()) t.detach();
        }
        for (std::thread& t : dropThreads_) {
          if (t.joinable()) t.detach();
        }
        if (fence_.joinable()) fence_.detach();
        leaked_ = true;
      }
    }
    if (!leaked_) {
      if (loop_.joinable()) loop_.join();
      for (std::thread& t : invals_) {
        if (t.joinable()) t.join();
      }
      // The fence watcher first: its last queueFenceDrop (refused once stopping) may be joining
      // ended drop threads. None is started after stopInvalidations, so dropThreads_ is final.
      if (fence_.joinable()) fence_.join();
      for (std::thread& t : dropThreads_) {
        if (t.joinable()) t.join();
      }
      {
        // No polling thread reads the device or runs a request from now on.
        std::unique_lock<std::shared_mutex> g(ioMu_);
        ioClosed_ = true;
      }
      fuse_session_exit(se_);
      fuse_session_unmount(se_);  // the connection is gone: this only closes /dev/fuse
      fuse_session_destroy(se_);
      se_ = nullptr;
    }
  }
  if (!leaked_) {
    freeInodes();
    std::lock_guard<std::mutex> g(jobsMu_);
    jobs_.clear();
    if (jobsFd_ >= 0) ::close(jobsFd_);
    if (stopFd_ >= 0) ::close(stopFd_);
    jobsFd_ = stopFd_ = -1;
  }
  std::lock_guard<std::mutex> lg(*gLiveMu);
  gLive->erase(id);
}

void FuseSession::stats(Stats& out) {
  Session::stats(out);
  std::lock_guard<std::mutex> g(stateMu_);
  out.flags.emplace_back("initialized", initDone_);
  out.flags.emplace_back("posixLocks", posixLocks_);
  out.flags.emplace_back("flockLocks", flockLocks_);
  out.flags.emplace_back("posixLocksOffered", posixOffered_);
  out.flags.emplace_back("flockLocksOffered", flockOffered_);
  out.flags.emplace_back("loopEnded", loopEnded_);
  out.numbers.emplace_back("protoMajor", protoMajor_);
  out.numbers.emplace_back("protoMinor", protoMinor_);
  out.numbers.emplace_back("interrupts", static_cast<double>(interrupts_.load()));
  out.numbers.emplace_back("nativeAnswers", static_cast<double>(nativeAnswers_.load()));
  out.numbers.emplace_back("redelivered", static_cast<double>(redelivered.load()));
  out.numbers.emplace_back("polledReads", static_cast<double>(polledReads_.load()));
  out.numbers.emplace_back("handedToReaders", static_cast<double>(jobsRun_.load()));
  out.numbers.emplace_back("invalidations", static_cast<double>(invalidations_.load()));
  out.numbers.emplace_back("invalidationErrors", static_cast<double>(invalidationErrors_.load()));
  out.numbers.emplace_back("fenceDeadlines", static_cast<double>(fenceDeadlines()));
  out.numbers.emplace_back("fenceDrops", static_cast<double>(fenceDrops()));
  out.numbers.emplace_back("connection", connId_);
  out.strings.emplace_back("mountpoint", mountpoint_);
  out.strings.emplace_back("backing", opts_.backing);
}

std::string errnoText(int err) { return std::string(strerror(err)); }

[[noreturn]] void fail(const std::string& sentence) { throw std::runtime_error(sentence); }

}  // namespace

uint64_t unmountFuse(Session& s) {
  s.close();
  auto* f = dynamic_cast<FuseSession*>(&s);
  return f == nullptr ? 0 : f->closeAnsweredLocks();
}

SessionPtr mountFuse(const MountOptions& o) {
  static std::once_flag once;
  std::call_once(once, [] {
    fuse_set_log_func(fuseLog);
    atexit(unmountAtExit);
  });

  int devFd = open("/dev/fuse", O_RDWR | O_CLOEXEC);
  if (devFd < 0) {
    int err = errno;
    if (err == ENOENT) fail("/dev/fuse is missing: load the fuse kernel module (or give the container the device)");
    if (err == EACCES || err == EPERM) fail("no permission to open /dev/fuse: run as root, or give its group read and write access (chmod g+rw /dev/fuse) and join that group");
    fail("cannot open /dev/fuse: " + errnoText(err));
  }
  ::close(devFd);

  struct stat st;
  if (stat(o.backing.c_str(), &st) < 0) {
    if (errno == ENOENT) fail("the backing directory " + o.backing + " does not exist");
    fail("cannot use the backing directory " + o.backing + ": " + errnoText(errno));
  }
  if (!S_ISDIR(st.st_mode)) fail("the backing path " + o.backing + " is not a directory");

  char resolved[PATH_MAX];
  if (realpath(o.mountpoint.c_str(), resolved) == nullptr) {
    if (errno == ENOENT) fail("the mountpoint " + o.mountpoint + " does not exist");
    if (errno == ENOTCONN) fail("the mountpoint " + o.mountpoint + " is busy: a dead FUSE mount is still there (fusermount3 -u -z it)");
    fail("cannot use the mountpoint " + o.mountpoint + ": " + errnoText(errno));
  }
  std::string mp = resolved;
  if (stat(mp.c_str(), &st) < 0) fail("cannot use the mountpoint " + o.mountpoint + ": " + errnoText(errno));
  if (!S_ISDIR(st.st_mode)) fail("the mountpoint " + o.mountpoint + " is not a directory");
  if (isMounted(mp)) fail("the mountpoint " + o.mountpoint + " is busy: something is already mounted there");
  if (geteuid() != 0 && access("/usr/bin/fusermount3", X_OK) != 0 && access("/bin/fusermount3", X_OK) != 0) {
    fail("no permission to mount FUSE at " + o.mountpoint + ": not root and fusermount3 is not installed");
  }

  auto s = std::make_shared<FuseSession>(newSessionId(), o);
  s->spinUs = o.spinUs;
  s->createDestinations();
  s->mountpoint_ = mp;
  s->sharedKeys = o.sharedKeys;
  if (int err = s->openRoot(o.backing)) fail("cannot open the backing directory " + o.backing + ": " + errnoText(err));

  std::string log;
  tlsLogCapture = &log;
  const char* argv[] = {"locksmith", "-o", "fsname=locksmith,subtype=locksmith", nullptr};
  struct fuse_args args = FUSE_ARGS_INIT(3, const_cast<char**>(argv));
  s->se_ = fuse_session_new(&args, &kOps, sizeof kOps, static_cast<Passthrough*>(s.get()));
  fuse_opt_free_args(&args);
  if (s->se_ == nullptr) {
    tlsLogCapture = nullptr;
    fail("could not create a FUSE session: " + oneLine(log));
  }
  errno = 0;
  if (fuse_session_mount(s->se_, mp.c_str()) != 0) {
    int err = errno;
    tlsLogCapture = nullptr;
    fuse_session_destroy(s->se_);
    s->se_ = nullptr;
    std::string why = oneLine(log);
    if (err == EPERM || err == EACCES || why.find("ermission") != std::string::npos) {
      fail("no permission to mount FUSE at " + o.mountpoint + (why.empty() ? "" : ": " + why));
    }
    if (err == EBUSY) fail("the mountpoint " + o.mountpoint + " is busy");
    fail("could not mount FUSE at " + o.mountpoint + ": " + (why.empty() ? errnoText(err) : why));
  }
  tlsLogCapture = nullptr;
  {
    std::lock_guard<std::mutex> g(*gLiveMu);
    (*gLive)[s->id] = mp;
  }
  std::string dev = mountDevice(mp);
  auto colon = dev.find(':');
  if (colon != std::string::npos) {
    // fusectl names a connection by the kernel's dev_t; for the anonymous devices FUSE uses (major
    // 0) that is the minor number.
    s->connId_ = static_cast<unsigned>(std::stoul(dev.substr(colon + 1))) |
                 (static_cast<unsigned>(std::stoul(dev.substr(0, colon))) << 20);
  }
  s->devFd_ = fuse_session_fd(s->se_);
  s->jobsFd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  s->stopFd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  int fl = fcntl(s->devFd_, F_GETFL);
  if (s->jobsFd_ < 0 || s->stopFd_ < 0 || fl < 0 || fcntl(s->devFd_, F_SETFL, fl | O_NONBLOCK) < 0) {
    int err = errno;
    s->close();
    fail("could not set up the FUSE device for " + o.mountpoint + ": " + errnoText(err));
  }
  s->start();
  {
    // The kernel sent INIT at mount time; wait for the answer so the lock capabilities are known.
    std::unique_lock<std::mutex> l(s->stateMu_);
    s->stateCv_.wait_for(l, std::chrono::seconds(5), [&] { return s->initDone_ || s->loopEnded_; });
  }
  registerSession(s);
  return s;
}

}  // namespace locksmith

#else  // !LOCKSMITH_HAVE_FUSE

namespace locksmith {

uint64_t unmountFuse(Session& s) {
  s.close();
  return 0;
}

SessionPtr mountFuse(const MountOptions&) {
  throw std::runtime_error(
      "locksmith_native was built without FUSE support: install libfuse3-dev (pkg-config fuse3) and rebuild it");
}

}  // namespace locksmith

#endif
