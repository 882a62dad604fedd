// The passthrough half of a FUSE session (passthrough.cc): the file operations of a libfuse 3
// low-level filesystem that shows a backing directory as it is. It is not the lock session: it
// never sees getlk, setlk, flock, flush, release or interrupts, knows nothing of JavaScript or the
// pump, and decides nothing; fuse_session.cc owns those and the session's life.
//
// Interface:
// - A Passthrough holds the inode table. The session that mounts it derives from it, and the
//   userdata given to fuse_session_new must be that Passthrough* (passthroughOf reads it back).
// - passthroughOps fills in every file operation of a fuse_lowlevel_ops; the lock session adds
//   init and its lock operations to the same table.
// - Inode::key names the backing file ("fuse:<st_dev>:<st_ino>"): the lock session's lock key.
// - backingFlush / backingRelease are the backing halves of FLUSH and RELEASE, which the lock
//   session runs once JavaScript has dropped the locks.
#pragma once

#ifndef LOCKSMITH_HAVE_FUSE
#define LOCKSMITH_HAVE_FUSE 0
#endif

#if LOCKSMITH_HAVE_FUSE

#define FUSE_USE_VERSION 312
#include <fuse_lowlevel.h>
#include <sys/types.h>

#include <atomic>
#include <condition_variable>
#include <functional>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_set>
#include <utility>

namespace locksmith {

/** A backing file or directory the kernel knows (a lookup count above 0), by its O_PATH descriptor. */
struct Inode {
  int fd = -1;  // O_PATH
  dev_t dev = 0;
  ino_t ino = 0;
  uint64_t nlookup = 0;
  /** "fuse:<st_dev>:<st_ino>": stable across renames and hard links (the same type as pump.h Path). */
  std::shared_ptr<const std::string> key;
  /**
   * The open handles of this file through the mount (opened, not yet released: the low bits), and
   * LOCKED_HERE: a lock was granted on it through the mount since its handles opened (cleared when
   * the last one is released), so its I/O is fenced at the lease (Passthrough::fencedIo).
   * Conservative: it stays set after an unlock while a handle stays open. One word, so that a
   * release cannot clear the mark of a lock granted through a handle opened meanwhile.
   */
  std::atomic<uint32_t> handles{0};
  static constexpr uint32_t LOCKED_HERE = 1u << 31;
};

class Passthrough {
 public:
  /**
   * Key files by inode number alone ("ino:<st_ino>"), as every node over the same shared storage
   * sees it (NFS fileid), instead of "fuse:<st_dev>:<st_ino>": a shared lock space. Set before openRoot.
   */
  bool sharedKeys = false;
  /** Opens the backing directory as the root inode: 0, or the errno of the failed open. */
  int openRoot(const std::string& backing);
  Inode& inode(fuse_ino_t ino) {
    return ino == FUSE_ROOT_ID ? root_ : *reinterpret_cast<Inode*>(static_cast<uintptr_t>(ino));
  }
  /** Looks `name` up in `parent` and counts one more kernel reference to it: 0, or an errno. */
  int lookup(fuse_ino_t parent, const char* name, fuse_entry_param* e);
  /** The kernel dropped n references; the inode goes with the last one. */
  void forget(fuse_ino_t ino, uint64_t n);
  /** Closes every inode, the root too (once the libfuse loop has ended). */
  void freeInodes();

  /**
   * An open file's handle (fi->fh) for its backing descriptor `fd`, unique among the handles of
   * this session: a generation above the descriptor (fdOf), so that a descriptor number reused by
   * a later open is another handle (a markLost, or a JavaScript key, of the released one is not
   * the new one's). Counted open until clearLost. Below 2^53: JavaScript reads it as a number.
   */
  uint64_t newHandle(int fd);
  /**
   * A shared lock space lost this node's session, and with it the locks taken through open file
   * `fh`: reads and writes through it fail with EIO until it is released (the process must not
   * write as if it still held them). A handle released already is ignored (nothing would clear it).
   */
  void markLost(uint64_t fh);
  /** Whether I/O through `fh` must fail (lock-free while nothing is lost). */
  bool lostHandle(uint64_t fh) {
    if (lostCount_.load(std::memory_order_acquire) == 0) return false;
    std::lock_guard<std::mutex> g(lostMu_);
    return lost_.count(fh) != 0;
  }
  /** `fh` is released (before its descriptor closes): no longer open, nor lost. */
  void clearLost(uint64_t fh);

  /**
   * A store mount's lease (src/caller/shared-space.ts: [until, epoch, offset], until in ms on the
   * performance.timeOrigin + performance.now() scale, written by the JavaScript main thread), read
   * in place; `offsetMs` is that scale minus CLOCK_MONOTONIC in ms. The memory must outlive the
   * session's I/O (the addon holds the SharedArrayBuffer until the unmount). Set once, before any lock is granted.
   */
  void setLease(const double* lease, double offsetMs);
  /**
   * Whether I/O that reads or changes the data of `ino` must fail now: the mount has a lease, a
   * lock was granted on the file here (Inode::LOCKED_HERE), and the lease ran out (now >= until):
   * another node may be granted the bytes. A fence, not a loss: a renewed lease lifts it.
   * One relaxed load on a mount without a lease.
   */
  bool fencedIo(fuse_ino_t ino) {
    const double* l = lease_.load(std::memory_order_acquire);
    if (l == nullptr) return false;
    if ((inode(ino).handles.load(std::memory_order_acquire) & Inode::LOCKED_HERE) == 0) return false;
    bool out = leaseRanOut(l);
    // The watcher sleeps as if the lease ran out (parked) while it did not, or the other way round
    // (the lease was cut short): it looks again. Renewed, this I/O may cache pages it must drop at
    // the next deadline.
    if (fenceParked_.load(std::memory_order_seq_cst) != out) wakeFenceWatch();
    return out;
  }
  /**
   * fencedIo of the file open as `fd` (a backing descriptor), found by its (st_dev, st_ino) in the
   * inode table: false when the kernel knows no such inode here (nothing was locked through it).
   */
  bool fencedFile(int fd);
  /**
   * The fence's watcher (a store mount's own thread, run until stopFenceWatch): at the lease's
   * deadline, `drop` (hand on the dropping of a file's cached pages: notify_inval_inode, done
   * elsewhere, as it may wait on a write-back; never blocking) for every file locked here, and for
   * each file whose handle was marked lost (markLost), so that no read the kernel would answer from its cache escapes the fence: the
   * next read or page fault comes to opRead and gets EIO. It sleeps until the deadline on a
   * condition variable (no polling) and looks again when woken there, when the lease is set, or
   * when I/O of a locked file sees the lease other than the watcher believes (fencedIo: renewed
   * while it was parked, or cut short while it slept).
   */
  void fenceWatch(const std::function<void(fuse_ino_t)>& drop);
  void stopFenceWatch();
  /**
   * Drops of the watcher (a deadline's locked files, a lost handle's file) done (notify returned),
   * and the deadlines it acted at. `drop` only hands a file on (the session's invalidation pool),
   * which counts it done here: the watcher itself never waits for a write-back.
   */
  void fenceDropped(uint64_t n) { fenceDrops_.fetch_add(n, std::memory_order_relaxed); }
  uint64_t fenceDrops() const { return fenceDrops_.load(std::memory_order_relaxed); }
  uint64_t fenceDeadlines() const { return fenceDeadlines_.load(std::memory_order_relaxed); }
  /** A lock was granted on `ino` through the mount (before its answer). */
  void lockGranted(fuse_ino_t ino) { inode(ino).handles.fetch_or(Inode::LOCKED_HERE, std::memory_order_acq_rel); }
  /** A handle of `ino` opened (before its answer) / released. */
  void handleOpened(fuse_ino_t ino) { inode(ino).handles.fetch_add(1, std::memory_order_acq_rel); }
  void handleClosed(fuse_ino_t ino);

 protected:
  std::shared_ptr<const std::string> keyOf(dev_t dev, ino_t ino) const;

 private:
  Inode root_;
  std::mutex inodesMu_;
  std::map<std::pair<dev_t, ino_t>, Inode*> inodes_;
  std::mutex lostMu_;
  std::unordered_set<uint64_t> lost_;
  /** The file handles open now (newHandle until clearLost), under lostMu_. */
  std::unordered_set<uint64_t> open_;
  /** The next handle's generation (newHandle). */
  std::atomic<uint64_t> handleGen_{0};
  std::atomic<size_t> lostCount_{0};
  std::atomic<const double*> lease_{nullptr};
  double leaseOffsetMs_ = 0;
  bool leaseRanOut(const double* lease) const;
  /** ms on the lease's scale now (CLOCK_MONOTONIC + leaseOffsetMs_). */
  double leaseNowMs() const;
  double leaseUntil(const double* lease) const;
  void wakeFenceWatch();
  std::mutex fenceMu_;
  std::condition_variable fenceCv_;
  bool fenceWake_ = false;
  bool fenceStop_ = false;
  /** Files whose handles lost their locks (markLost): their pages dropped by the watcher now (under fenceMu_). */
  std::vector<fuse_ino_t> lostDrops_;
  /** The watcher handled the lease's running out and waits for a renewal (written under fenceMu_). */
  std::atomic<bool> fenceParked_{false};
  std::atomic<uint64_t> fenceDrops_{0};
  std::atomic<uint64_t> fenceDeadlines_{0};
};

/** The backing descriptor of an open file's handle (Passthrough::newHandle). */
inline int fdOf(uint64_t fh) { return static_cast<int>(fh & 0xffffffffu); }

/** The Passthrough a request belongs to (the session's fuse_session_new userdata). */
inline Passthrough* passthroughOf(fuse_req_t req) { return static_cast<Passthrough*>(fuse_req_userdata(req)); }

/** Sets every file operation of `ops`: all but init, getlk, setlk, flock, flush and release. */
void passthroughOps(fuse_lowlevel_ops& ops);

/** FLUSH against the backing file: close a duplicate of its descriptor (as passthrough_ll). 0 or an errno. */
int backingFlush(int fd);

/** RELEASE against the backing file: close its descriptor (the kernel ignores release errors). */
void backingRelease(int fd);

}  // namespace locksmith

#endif  // LOCKSMITH_HAVE_FUSE
