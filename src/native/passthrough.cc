// The passthrough file operations of a FUSE session (passthrough.h): a libfuse 3 low-level
// filesystem that shows a backing directory as it is, modelled on libfuse's
// example/passthrough_ll.c: inodes keyed by the backing (st_dev, st_ino), each holding an O_PATH
// descriptor, files reopened through /proc/self/fd, and an open file's handle (fi->fh) its backing
// descriptor (fdOf) under a generation that makes each open's handle a new one (newHandle).
//
// This is not the lock session: getlk, setlk, flock, flush, release and interrupts, the mount, the
// loop and the unmount are fuse_session.cc's. Nothing here blocks on JavaScript or knows it exists;
// every operation answers from the backing directory at once.
#include "passthrough.h"

#if LOCKSMITH_HAVE_FUSE

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <vector>

namespace locksmith {
namespace {

constexpr double kTimeout = 1.0;  // seconds the kernel may cache entries and attributes

struct DirHandle {
  DIR* dp = nullptr;
  off_t offset = 0;
  struct dirent* entry = nullptr;
};

std::shared_ptr<const std::string> makeKey(bool sharedKeys, dev_t dev, ino_t ino) {
  if (sharedKeys) return std::make_shared<const std::string>("ino:" + std::to_string(static_cast<unsigned long long>(ino)));
  return std::make_shared<const std::string>("fuse:" + std::to_string(static_cast<unsigned long long>(dev)) + ":" +
                                             std::to_string(static_cast<unsigned long long>(ino)));
}

std::string procPath(int fd) { return "/proc/self/fd/" + std::to_string(fd); }

// ---- the operations ----------------------------------------------------------------------------

void opLookup(fuse_req_t req, fuse_ino_t parent, const char* name) {
  fuse_entry_param e;
  int err = passthroughOf(req)->lookup(parent, name, &e);
  if (err != 0) {
    fuse_reply_err(req, err);
  } else if (fuse_reply_entry(req, &e) != 0) {
    passthroughOf(req)->forget(e.ino, 1);
  }
}

void opForget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup) {
  passthroughOf(req)->forget(ino, nlookup);
  fuse_reply_none(req);
}

void opForgetMulti(fuse_req_t req, size_t count, struct fuse_forget_data* forgets) {
  for (size_t i = 0; i < count; i++) passthroughOf(req)->forget(forgets[i].ino, forgets[i].nlookup);
  fuse_reply_none(req);
}

void replyAttr(fuse_req_t req, int fd) {
  struct stat st;
  if (fstatat(fd, "", &st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0) {
    fuse_reply_err(req, errno);
    return;
  }
  fuse_reply_attr(req, &st, kTimeout);
}

void opGetattr(fuse_req_t req, fuse_ino_t ino, fuse_file_info*) { replyAttr(req, passthroughOf(req)->inode(ino).fd); }

void opSetattr(fuse_req_t req, fuse_ino_t ino, struct stat* attr, int toSet, fuse_file_info* fi) {
  Inode& in = passthroughOf(req)->inode(ino);
  // A size change is a write of the data: fenced as one, lost as one, before anything changes.
  if ((toSet & FUSE_SET_ATTR_SIZE) &&
      ((fi != nullptr && passthroughOf(req)->lostHandle(fi->fh)) || passthroughOf(req)->fencedIo(ino))) {
    return (void)fuse_reply_err(req, EIO);
  }
  const std::string proc = procPath(in.fd);
  int res = 0;
  if (toSet & FUSE_SET_ATTR_MODE) {
    res = fi != nullptr ? fchmod(fdOf(fi->fh), attr->st_mode) : chmod(proc.c_str(), attr->st_mode);
    if (res < 0) return (void)fuse_reply_err(req, errno);
  }
  if (toSet & (FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID)) {
    uid_t uid = (toSet & FUSE_SET_ATTR_UID) ? attr->st_uid : static_cast<uid_t>(-1);
    gid_t gid = (toSet & FUSE_SET_ATTR_GID) ? attr->st_gid : static_cast<gid_t>(-1);
    if (fchownat(in.fd, "", uid, gid, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0) return (void)fuse_reply_err(req, errno);
  }
  if (toSet & FUSE_SET_ATTR_SIZE) {
    res = fi != nullptr ? ftruncate(fdOf(fi->fh), attr->st_size) : truncate(proc.c_str(), attr->st_size);
    if (res < 0) return (void)fuse_reply_err(req, errno);
  }
  if (toSet & (FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_MTIME)) {
    struct timespec tv[2];
    tv[0].tv_sec = 0;
    tv[1].tv_sec = 0;
    tv[0].tv_nsec = UTIME_OMIT;
    tv[1].tv_nsec = UTIME_OMIT;
    if (toSet & FUSE_SET_ATTR_ATIME_NOW) tv[0].tv_nsec = UTIME_NOW;
    else if (toSet & FUSE_SET_ATTR_ATIME) tv[0] = attr->st_atim;
    if (toSet & FUSE_SET_ATTR_MTIME_NOW) tv[1].tv_nsec = UTIME_NOW;
    else if (toSet & FUSE_SET_ATTR_MTIME) tv[1] = attr->st_mtim;
    res = fi != nullptr ? futimens(fdOf(fi->fh), tv) : utimensat(AT_FDCWD, proc.c_str(), tv, 0);
    if (res < 0) return (void)fuse_reply_err(req, errno);
  }
  replyAttr(req, in.fd);
}

void opReadlink(fuse_req_t req, fuse_ino_t ino) {
  char buf[PATH_MAX + 1];
  ssize_t n = readlinkat(passthroughOf(req)->inode(ino).fd, "", buf, sizeof buf);
  if (n < 0) return (void)fuse_reply_err(req, errno);
  if (n == static_cast<ssize_t>(sizeof buf)) return (void)fuse_reply_err(req, ENAMETOOLONG);
  buf[n] = '\0';
  fuse_reply_readlink(req, buf);
}

void replyNewEntry(fuse_req_t req, fuse_ino_t parent, const char* name, int res) {
  if (res < 0) return (void)fuse_reply_err(req, errno);
  Passthrough* s = passthroughOf(req);
  fuse_entry_param e;
  int err = s->lookup(parent, name, &e);
  if (err != 0) return (void)fuse_reply_err(req, err);
  if (fuse_reply_entry(req, &e) != 0) s->forget(e.ino, 1);
}

void opMknod(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode, dev_t rdev) {
  replyNewEntry(req, parent, name, mknodat(passthroughOf(req)->inode(parent).fd, name, mode, rdev));
}

void opMkdir(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode) {
  replyNewEntry(req, parent, name, mkdirat(passthroughOf(req)->inode(parent).fd, name, mode));
}

void opSymlink(fuse_req_t req, const char* link, fuse_ino_t parent, const char* name) {
  replyNewEntry(req, parent, name, symlinkat(link, passthroughOf(req)->inode(parent).fd, name));
}

void opLink(fuse_req_t req, fuse_ino_t ino, fuse_ino_t parent, const char* name) {
  Passthrough* s = passthroughOf(req);
  int res = linkat(AT_FDCWD, procPath(s->inode(ino).fd).c_str(), s->inode(parent).fd, name, AT_SYMLINK_FOLLOW);
  replyNewEntry(req, parent, name, res);
}

void opUnlink(fuse_req_t req, fuse_ino_t parent, const char* name) {
  int res = unlinkat(passthroughOf(req)->inode(parent).fd, name, 0);
  fuse_reply_err(req, res < 0 ? errno : 0);
}

void opRmdir(fuse_req_t req, fuse_ino_t parent, const char* name) {
  int res = unlinkat(passthroughOf(req)->inode(parent).fd, name, AT_REMOVEDIR);
  fuse_reply_err(req, res < 0 ? errno : 0);
}

void opRename(fuse_req_t req, fuse_ino_t parent, const char* name, fuse_ino_t newparent, const char* newname,
              unsigned int flags) {
  Passthrough* s = passthroughOf(req);
  int from = s->inode(parent).fd, to = s->inode(newparent).fd;
  long res = flags != 0 ? syscall(SYS_renameat2, from, name, to, newname, flags) : renameat(from, name, to, newname);
  fuse_reply_err(req, res < 0 ? errno : 0);
}

void opOpen(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  // O_TRUNC at open (FUSE_CAP_ATOMIC_O_TRUNC) is a size change: fenced as setattr(size) is.
  if ((fi->flags & O_TRUNC) && passthroughOf(req)->fencedIo(ino)) return (void)fuse_reply_err(req, EIO);
  int fd = open(procPath(passthroughOf(req)->inode(ino).fd).c_str(), (fi->flags & ~O_NOFOLLOW) | O_CLOEXEC);
  if (fd < 0) return (void)fuse_reply_err(req, errno);
  fi->fh = passthroughOf(req)->newHandle(fd);
  fi->noflush = 0;  // FLUSH carries the close-time unlock of classic POSIX locks (§12.5)
  passthroughOf(req)->handleOpened(ino);
  if (fuse_reply_open(req, fi) != 0) {
    passthroughOf(req)->clearLost(fi->fh);
    ::close(fd);
    passthroughOf(req)->handleClosed(ino);
  }
}

void opCreate(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode, fuse_file_info* fi) {
  Passthrough* s = passthroughOf(req);
  // The kernel sends CREATE when its LOOKUP found no such name; one that appeared since (linked or
  // renamed there by another node) names an existing file, maybe one locked here. As open(2)
  // (do_open: a file it created is neither truncated nor checked for write permission), a file
  // this CREATE makes (O_EXCL) is not truncated: truncating it through a writable reopen would
  // fail (EACCES) for O_RDONLY | O_TRUNC and mode 0444 after the file was made. An existing file's
  // O_TRUNC is a size change, fenced as at OPEN: opened without it, checked, then truncated.
  const int parentFd = s->inode(parent).fd;
  const int flags = (fi->flags | O_CLOEXEC) & ~O_TRUNC;
  const bool trunc = (fi->flags & O_TRUNC) != 0;
  // What the name is when the CREATE comes may not be what the kernel's LOOKUP found: another node
  // (or a process on the backing directory) made or replaced it in between. Only a regular file is
  // ever opened here, and the entry answered is the one opened: the kernel refuses a CREATE whose
  // entry is not a regular file (EIO, and its handle is never released), and an open of a FIFO
  // waits for the other end, holding a reader thread (a few of them and the mount stops). For
  // anything else the answer is ESTALE, which makes the kernel's open (do_filp_open) walk the path
  // once more with LOOKUP_REVAL: it looks the name up again and opens what it finds as it would
  // have at the first LOOKUP, as a local file system does (a FIFO as its own pipe, waiting for a
  // reader; a symbolic link followed, or ELOOP for O_NOFOLLOW; a device as a device). A second
  // ESTALE goes to the caller, which retries as it would after an NFS server's.
  //   The name is made (O_EXCL: a regular file), or else looked at without opening it (O_PATH),
  // and a regular file found is opened through that descriptor: the file looked at, whatever the
  // name is by then. The entry answered is the name's as a LOOKUP finds it after the open; if
  // another node replaced the name in between, this is tried again on what the name is now.
  int fd = -1;
  bool existing = false;
  fuse_entry_param e;
  for (int attempt = 0;; attempt++) {
    if (attempt == 8) return (void)fuse_reply_err(req, ESTALE);
    fd = openat(parentFd, name, flags | O_CREAT | O_EXCL, mode);
    existing = false;
    if (fd < 0 && errno == EEXIST && (fi->flags & O_EXCL) == 0) {
      existing = true;
      int path = openat(parentFd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
      if (path < 0 && errno == ENOENT) continue;  // gone meanwhile: made again
      if (path < 0) return (void)fuse_reply_err(req, errno);
      struct stat st;
      int err = fstat(path, &st) < 0 ? errno : 0;
      if (err == 0 && S_ISDIR(st.st_mode)) err = EISDIR;  // as open(2) says of O_CREAT on one
      // O_NOFOLLOW: a symbolic link fails ELOOP, as open(2) says.
      else if (err == 0 && S_ISLNK(st.st_mode) && (fi->flags & O_NOFOLLOW)) err = ELOOP;
      else if (err == 0 && !S_ISREG(st.st_mode)) err = ESTALE;
      if (err == 0) {
        fd = open(procPath(path).c_str(), flags & ~(O_CREAT | O_EXCL | O_NOFOLLOW));
        if (fd < 0) err = errno;
      }
      ::close(path);
      if (err != 0) return (void)fuse_reply_err(req, err);
    }
    if (fd < 0) return (void)fuse_reply_err(req, errno);
    int err = s->lookup(parent, name, &e);
    if (err != 0) {
      ::close(fd);
      if (err == ENOENT) continue;  // removed since the open: made again, never ENOENT for O_CREAT
      return (void)fuse_reply_err(req, err);
    }
    struct stat st;
    if (fstat(fd, &st) == 0 && st.st_dev == e.attr.st_dev && st.st_ino == e.attr.st_ino) break;
    s->forget(e.ino, 1);
    ::close(fd);
  }
  if (trunc && existing) {
    int err = 0;
    if (s->fencedFile(fd)) {
      err = EIO;
    } else if ((fi->flags & O_ACCMODE) != O_RDONLY) {
      if (ftruncate(fd, 0) < 0) err = errno;
    } else {
      // O_RDONLY | O_TRUNC truncates on Linux (with write permission): through a writable open.
      int w = open(procPath(fd).c_str(), O_WRONLY | O_TRUNC | O_CLOEXEC);
      if (w < 0) err = errno;
      else ::close(w);
    }
    if (err != 0) {
      ::close(fd);
      s->forget(e.ino, 1);
      return (void)fuse_reply_err(req, err);
    }
  }
  fi->fh = s->newHandle(fd);
  fi->noflush = 0;
  s->handleOpened(e.ino);
  if (fuse_reply_create(req, &e, fi) != 0) {
    s->clearLost(fi->fh);
    ::close(fd);
    s->handleClosed(e.ino);
    s->forget(e.ino, 1);
  }
}

void opRead(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* fi) {
  if (passthroughOf(req)->lostHandle(fi->fh) || passthroughOf(req)->fencedIo(ino)) {
    fuse_reply_err(req, EIO);
    return;
  }
  fuse_bufvec buf;
  memset(&buf, 0, sizeof buf);
  buf.count = 1;
  buf.buf[0].size = size;
  buf.buf[0].flags = static_cast<fuse_buf_flags>(FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK);
  buf.buf[0].fd = fdOf(fi->fh);
  buf.buf[0].pos = off;
  fuse_reply_data(req, &buf, FUSE_BUF_SPLICE_MOVE);
}

void opWriteBuf(fuse_req_t req, fuse_ino_t ino, fuse_bufvec* in, off_t off, fuse_file_info* fi) {
  if (passthroughOf(req)->lostHandle(fi->fh) || passthroughOf(req)->fencedIo(ino)) {
    fuse_reply_err(req, EIO);
    return;
  }
  fuse_bufvec out;
  memset(&out, 0, sizeof out);
  out.count = 1;
  out.buf[0].size = fuse_buf_size(in);
  out.buf[0].flags = static_cast<fuse_buf_flags>(FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK);
  out.buf[0].fd = fdOf(fi->fh);
  out.buf[0].pos = off;
  ssize_t res = fuse_buf_copy(&out, in, static_cast<fuse_buf_copy_flags>(0));
  if (res < 0) fuse_reply_err(req, static_cast<int>(-res));
  else fuse_reply_write(req, static_cast<size_t>(res));
}

void opFsync(fuse_req_t req, fuse_ino_t, int datasync, fuse_file_info* fi) {
  int fd = fdOf(fi->fh);
  int res = datasync ? fdatasync(fd) : fsync(fd);
  fuse_reply_err(req, res < 0 ? errno : 0);
}

void opOpendir(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  int fd = openat(passthroughOf(req)->inode(ino).fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return (void)fuse_reply_err(req, errno);
  DIR* dp = fdopendir(fd);
  if (dp == nullptr) {
    int err = errno;
    ::close(fd);
    return (void)fuse_reply_err(req, err);
  }
  auto* d = new DirHandle{dp, 0, nullptr};
  fi->fh = reinterpret_cast<uintptr_t>(d);
  if (fuse_reply_open(req, fi) != 0) {
    closedir(dp);
    delete d;
  }
}

void opReaddir(fuse_req_t req, fuse_ino_t, size_t size, off_t offset, fuse_file_info* fi) {
  auto* d = reinterpret_cast<DirHandle*>(static_cast<uintptr_t>(fi->fh));
  std::string buf(size, '\0');
  size_t used = 0;
  int err = 0;
  if (offset != d->offset) {
    seekdir(d->dp, offset);
    d->entry = nullptr;
    d->offset = offset;
  }
  for (;;) {
    if (d->entry == nullptr) {
      errno = 0;
      d->entry = readdir(d->dp);
      if (d->entry == nullptr) {
        err = errno;
        break;
      }
    }
    struct stat st;
    memset(&st, 0, sizeof st);
    st.st_ino = d->entry->d_ino;
    st.st_mode = static_cast<mode_t>(d->entry->d_type) << 12;
    off_t next = d->entry->d_off;
    size_t n = fuse_add_direntry(req, &buf[used], size - used, d->entry->d_name, &st, next);
    if (n > size - used) break;  // full: this entry comes first next time
    used += n;
    d->entry = nullptr;
    d->offset = next;
  }
  if (err != 0 && used == 0) fuse_reply_err(req, err);
  else fuse_reply_buf(req, buf.data(), used);
}

void opReleasedir(fuse_req_t req, fuse_ino_t, fuse_file_info* fi) {
  auto* d = reinterpret_cast<DirHandle*>(static_cast<uintptr_t>(fi->fh));
  closedir(d->dp);
  delete d;
  fuse_reply_err(req, 0);
}

void opFsyncdir(fuse_req_t req, fuse_ino_t, int datasync, fuse_file_info* fi) {
  auto* d = reinterpret_cast<DirHandle*>(static_cast<uintptr_t>(fi->fh));
  int fd = dirfd(d->dp);
  int res = datasync ? fdatasync(fd) : fsync(fd);
  fuse_reply_err(req, res < 0 ? errno : 0);
}

void opStatfs(fuse_req_t req, fuse_ino_t ino) {
  struct statvfs sv;
  if (fstatvfs(passthroughOf(req)->inode(ino).fd, &sv) < 0) return (void)fuse_reply_err(req, errno);
  fuse_reply_statfs(req, &sv);
}

}  // namespace

std::shared_ptr<const std::string> Passthrough::keyOf(dev_t dev, ino_t ino) const { return makeKey(sharedKeys, dev, ino); }

uint64_t Passthrough::newHandle(int fd) {
  // Generations 1 .. 2^21 - 1 above a 32-bit descriptor: below 2^53. A number comes back only
  // after 2^21 - 1 more opens, and markLost ignores one not open, so a stale mark stays harmless.
  constexpr uint64_t kGenerations = (uint64_t{1} << 21) - 1;
  const uint64_t gen = handleGen_.fetch_add(1, std::memory_order_relaxed) % kGenerations + 1;
  const uint64_t fh = gen << 32 | static_cast<uint32_t>(fd);
  std::lock_guard<std::mutex> g(lostMu_);
  open_.insert(fh);
  return fh;
}

void Passthrough::markLost(uint64_t fh) {
  struct stat st;
  bool stated = false;
  {
    std::lock_guard<std::mutex> g(lostMu_);
    // Released already (a worker's word on a handle whose RELEASE came first): nothing to fence,
    // and nothing would ever clear the mark. RELEASE leaves open_ before it closes the descriptor,
    // so while the handle is found here its descriptor is its own.
    if (open_.count(fh) == 0) return;
    if (!lost_.insert(fh).second) return;
    lostCount_.fetch_add(1, std::memory_order_release);
    stated = lease_.load(std::memory_order_acquire) != nullptr && fstat(fdOf(fh), &st) == 0;
  }
  // The kernel's pages of the file are dropped too (handed on by the watcher: the drop may wait on
  // a write-back, this thread must not): a read it would serve from them never reaches opRead. A lease cut short (a
  // session lost before its deadline) wakes nothing else: the deadline moves on with the next.
  if (!stated) return;
  fuse_ino_t ino = 0;
  {
    std::lock_guard<std::mutex> g(inodesMu_);
    auto it = inodes_.find(std::make_pair(st.st_dev, st.st_ino));
    if (it != inodes_.end()) ino = reinterpret_cast<uintptr_t>(it->second);
  }
  if (ino == 0) return;
  std::lock_guard<std::mutex> g(fenceMu_);
  lostDrops_.push_back(ino);
  fenceWake_ = true;
  fenceCv_.notify_one();
}

void Passthrough::setLease(const double* lease, double offsetMs) {
  leaseOffsetMs_ = offsetMs;
  lease_.store(lease, std::memory_order_release);
  wakeFenceWatch();
}

double Passthrough::leaseUntil(const double* lease) const {
  // lease[0] is a Float64Array element the JavaScript main thread stores whole (8 aligned bytes).
  uint64_t bits = __atomic_load_n(reinterpret_cast<const uint64_t*>(lease), __ATOMIC_ACQUIRE);
  double until;
  memcpy(&until, &bits, sizeof until);
  return until;
}

double Passthrough::leaseNowMs() const {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<double>(ts.tv_sec) * 1e3 + static_cast<double>(ts.tv_nsec) / 1e6 + leaseOffsetMs_;
}

bool Passthrough::leaseRanOut(const double* lease) const {
  return !(leaseNowMs() < leaseUntil(lease));  // NaN: fenced
}

void Passthrough::wakeFenceWatch() {
  std::lock_guard<std::mutex> g(fenceMu_);
  fenceWake_ = true;
  fenceCv_.notify_one();
}

void Passthrough::stopFenceWatch() {
  std::lock_guard<std::mutex> g(fenceMu_);
  fenceStop_ = true;
  fenceCv_.notify_one();
}

void Passthrough::fenceWatch(const std::function<void(fuse_ino_t)>& drop) {
  std::unique_lock<std::mutex> l(fenceMu_);
  std::vector<fuse_ino_t> locked;
  for (;;) {
    fenceWake_ = false;
    if (fenceStop_) break;
    if (!lostDrops_.empty()) {
      std::vector<fuse_ino_t> lost;
      lost.swap(lostDrops_);
      l.unlock();
      for (fuse_ino_t ino : lost) drop(ino);
      l.lock();
      continue;
    }
    const double* lease = lease_.load(std::memory_order_acquire);
    if (lease == nullptr) {
      fenceCv_.wait(l, [&] { return fenceStop_ || fenceWake_; });
      continue;
    }
    double left = leaseUntil(lease) - leaseNowMs();
    if (left > 0) {
      // Valid: asleep until the deadline (capped: a far one is looked at again, nothing more).
      fenceParked_.store(false, std::memory_order_relaxed);
      fenceCv_.wait_for(l, std::chrono::duration<double, std::milli>(std::min(left, 3600e3)),
                        [&] { return fenceStop_ || fenceWake_; });
      continue;
    }
    if (!fenceParked_.load(std::memory_order_relaxed)) {
      // Ran out: parked first, so that I/O seeing a renewal from now on wakes this thread again.
      fenceParked_.store(true, std::memory_order_relaxed);
      std::atomic_thread_fence(std::memory_order_seq_cst);
      fenceDeadlines_.fetch_add(1, std::memory_order_relaxed);
      locked.clear();
      // fenceMu_ is let go before inodesMu_ is taken: fencedFile (CREATE) holds inodesMu_ and
      // may wake this thread (fenceMu_), and the two in the other order would deadlock. The
      // lease is looked at again once fenceMu_ is held again: no wake is lost.
      l.unlock();
      {
        std::lock_guard<std::mutex> g(inodesMu_);
        for (auto& kv : inodes_) {
          if (kv.second->handles.load(std::memory_order_acquire) & Inode::LOCKED_HERE) {
            locked.push_back(reinterpret_cast<uintptr_t>(kv.second));
          }
        }
      }
      // An inode forgotten meanwhile is one the kernel no longer has: its notify finds nothing.
      // `drop` hands each file on and returns: one file whose write-back cannot end holds only
      // its own drop, never this thread nor the other files' drops.
      for (fuse_ino_t ino : locked) drop(ino);
      l.lock();
      continue;  // renewed meanwhile: asleep until the new deadline
    }
    std::atomic_thread_fence(std::memory_order_seq_cst);
    fenceCv_.wait(l, [&] { return fenceStop_ || fenceWake_; });
  }
}

bool Passthrough::fencedFile(int fd) {
  if (lease_.load(std::memory_order_acquire) == nullptr) return false;
  struct stat st;
  if (fstat(fd, &st) < 0) return false;
  std::lock_guard<std::mutex> g(inodesMu_);
  auto it = inodes_.find(std::make_pair(st.st_dev, st.st_ino));
  return it != inodes_.end() && fencedIo(reinterpret_cast<uintptr_t>(it->second));
}

void Passthrough::handleClosed(fuse_ino_t ino) {
  Inode& in = inode(ino);
  uint32_t s = in.handles.fetch_sub(1, std::memory_order_acq_rel) - 1;
  // The last handle gone: the mark too, unless a handle opened meanwhile (the count no longer 0).
  while ((s & ~Inode::LOCKED_HERE) == 0 && (s & Inode::LOCKED_HERE) != 0) {
    if (in.handles.compare_exchange_weak(s, 0, std::memory_order_acq_rel)) break;
  }
}

void Passthrough::clearLost(uint64_t fh) {
  std::lock_guard<std::mutex> g(lostMu_);
  open_.erase(fh);
  if (lost_.erase(fh) != 0) lostCount_.fetch_sub(1, std::memory_order_release);
}

void passthroughOps(fuse_lowlevel_ops& ops) {
  ops.lookup = opLookup;
  ops.forget = opForget;
  ops.forget_multi = opForgetMulti;
  ops.getattr = opGetattr;
  ops.setattr = opSetattr;
  ops.readlink = opReadlink;
  ops.mknod = opMknod;
  ops.mkdir = opMkdir;
  ops.symlink = opSymlink;
  ops.link = opLink;
  ops.unlink = opUnlink;
  ops.rmdir = opRmdir;
  ops.rename = opRename;
  ops.open = opOpen;
  ops.create = opCreate;
  ops.read = opRead;
  ops.write_buf = opWriteBuf;
  ops.fsync = opFsync;
  ops.opendir = opOpendir;
  ops.readdir = opReaddir;
  ops.releasedir = opReleasedir;
  ops.fsyncdir = opFsyncdir;
  ops.statfs = opStatfs;
}

// ---- the inode table ---------------------------------------------------------------------------

int Passthrough::openRoot(const std::string& backing) {
  root_.fd = open(backing.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (root_.fd < 0) return errno;
  struct stat rootSt;
  fstat(root_.fd, &rootSt);
  root_.dev = rootSt.st_dev;
  root_.ino = rootSt.st_ino;
  root_.nlookup = 2;
  root_.key = keyOf(rootSt.st_dev, rootSt.st_ino);
  return 0;
}

int Passthrough::lookup(fuse_ino_t parent, const char* name, fuse_entry_param* e) {
  memset(e, 0, sizeof *e);
  e->attr_timeout = kTimeout;
  // In a shared lock space other nodes change the directory too (another mount, another machine):
  // a name they removed or renamed away must not resolve here to the file it named, openable
  // through its O_PATH descriptor with its old contents (SQLite would replay a journal the other
  // node had deleted after committing). So the kernel asks again at every path walk, as NFS
  // revalidates a name at open.
  e->entry_timeout = sharedKeys ? 0.0 : kTimeout;
  int fd = openat(inode(parent).fd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return errno;
  if (fstatat(fd, "", &e->attr, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0) {
    int err = errno;
    ::close(fd);
    return err;
  }
  std::lock_guard<std::mutex> g(inodesMu_);
  auto key = std::make_pair(e->attr.st_dev, e->attr.st_ino);
  Inode* in;
  auto it = inodes_.find(key);
  if (it != inodes_.end()) {
    in = it->second;
    ::close(fd);
  } else {
    in = new Inode{fd, e->attr.st_dev, e->attr.st_ino, 0, keyOf(e->attr.st_dev, e->attr.st_ino)};
    inodes_.emplace(key, in);
  }
  in->nlookup++;
  e->ino = reinterpret_cast<uintptr_t>(in);
  return 0;
}

void Passthrough::forget(fuse_ino_t ino, uint64_t n) {
  if (ino == FUSE_ROOT_ID) return;
  Inode* in = &inode(ino);
  std::lock_guard<std::mutex> g(inodesMu_);
  in->nlookup = n >= in->nlookup ? 0 : in->nlookup - n;
  if (in->nlookup != 0) return;
  inodes_.erase(std::make_pair(in->dev, in->ino));
  ::close(in->fd);
  delete in;
}

void Passthrough::freeInodes() {
  std::lock_guard<std::mutex> g(inodesMu_);
  for (auto& kv : inodes_) {
    ::close(kv.second->fd);
    delete kv.second;
  }
  inodes_.clear();
  if (root_.fd >= 0) ::close(root_.fd);
  root_.fd = -1;
}

// ---- the backing halves of FLUSH and RELEASE ---------------------------------------------------

int backingFlush(int fd) {
  // `fd` is the handle's low 32 bits (fdOf), which the caller's cast to int keeps.
  int dupd = dup(fd);
  if (dupd < 0) return errno;
  return ::close(dupd) < 0 ? errno : 0;
}

void backingRelease(int fd) { ::close(fd); }

}  // namespace locksmith

#endif  // LOCKSMITH_HAVE_FUSE
