// The synthetic source (synth.h). Two patterns:
// - Pairs: thread t plays one POSIX owner (owner t + 1): it takes a write lock on a file and
//   releases it, file after file, so the events look like a busy FUSE client's (benchmarks).
// - Random: thread t plays `owners` owners (ids t * owners + 1 ...), each like a process with one
//   request outstanding at a time. Each owner's operations come from its own generator seeded by
//   (seed, owner id), so the same options give the same per-owner streams whatever the timing;
//   with `record`, every request's start and end is logged under one global sequence (synthLog).
//
// Flow control keeps memory bounded when JavaScript is slower than the producers:
// - 'reply' mode (awaitReplies): each event is a Request in the session's table, answered by
//   replyErr / replyBatch; a thread stops at `window` unanswered requests (Random: when all of its
//   owners wait for an answer) until replies come back. Pairs makes what its window allows in
//   batches of up to 256, each queued with one lock per destination (Session::deliverRequests).
// - 'deliver' mode: no requests, no replies; the producers stop while `window * threads` events
//   are queued but not yet handed to JavaScript. This measures the bare delivery rate.
#include "synth.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <map>
#include <set>
#include <thread>

namespace locksmith {
namespace {

using Clock = std::chrono::steady_clock;

uint64_t splitmix64(uint64_t& x) {
  uint64_t z = (x += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

/** Uniform in [0, 1) from 53 random bits. */
double unit(uint64_t& x) { return static_cast<double>(splitmix64(x) >> 11) * (1.0 / 9007199254740992.0); }

/**
 * Blocks of one size, reused instead of malloc/free per request. A request is made on a producer
 * thread and freed on the thread that answered it; freed one by one into malloc, every free went
 * to the producer's arena under its lock, against the producer's own mallocs (a quarter of the
 * CPU with the table's nodes). Here each thread keeps its own free list, and blocks travel between
 * threads in chains of kChain through one depot: a mutex per kChain requests. Never destroyed
 * (like the registry, pump.cc): a thread may return its blocks at exit, after static destructors.
 */
template <size_t Size>
class BlockPool {
 public:
  static BlockPool& get() {
    static BlockPool& pool = *new BlockPool;
    return pool;
  }
  void* allocate() {
    Cache& c = cache();
    if (c.head == nullptr) {
      std::lock_guard<std::mutex> g(mu_);
      if (!chains_.empty()) {
        c.head = chains_.back();
        chains_.pop_back();
        c.n = kChain;
      }
    }
    if (c.head == nullptr) return ::operator new(Size < sizeof(Free) ? sizeof(Free) : Size);
    Free* b = c.head;
    c.head = b->next;
    c.n--;
    return b;
  }
  void deallocate(void* p) {
    Cache& c = cache();
    auto* b = static_cast<Free*>(p);
    b->next = c.head;
    c.head = b;
    if (++c.n < 2 * kChain) return;
    // Keep kChain, hand the other kChain to the depot for the threads that allocate; past
    // kMaxChains in the depot (after a burst), back to malloc, which can return it to the system.
    Free* chain = c.head;
    Free* last = chain;
    for (size_t i = 1; i < kChain; i++) last = last->next;
    c.head = last->next;
    last->next = nullptr;
    c.n -= kChain;
    {
      std::lock_guard<std::mutex> g(mu_);
      if (chains_.size() < kMaxChains) {
        chains_.push_back(chain);
        return;
      }
    }
    freeChain(chain);
  }

 private:
  struct Free {
    Free* next;
  };
  static constexpr size_t kChain = 256;
  /** The depot keeps at most this many chains (64k blocks: more than a run's windows need). */
  static constexpr size_t kMaxChains = 256;
  static void freeChain(Free* chain) {
    while (chain != nullptr) {
      Free* next = chain->next;
      ::operator delete(chain);
      chain = next;
    }
  }
  struct Cache {
    Free* head = nullptr;
    size_t n = 0;
    ~Cache() {
      // The thread ends: its blocks go to the depot (a last chain may be short; allocate() takes
      // chains as lists, so its length only matters to the count, which starts from kChain).
      while (head != nullptr) {
        Free* chain = head;
        Free* last = chain;
        size_t k = 1;
        while (k < kChain && last->next != nullptr) {
          last = last->next;
          k++;
        }
        head = last->next;
        last->next = nullptr;
        if (k < kChain) {  // a short chain: free it rather than miscount it
          freeChain(chain);
          break;
        }
        BlockPool& pool = get();
        {
          std::lock_guard<std::mutex> g(pool.mu_);
          if (pool.chains_.size() < kMaxChains) {
            pool.chains_.push_back(chain);
            continue;
          }
        }
        freeChain(chain);
      }
      n = 0;
    }
  };
  static Cache& cache() {
    thread_local Cache c;
    return c;
  }
  std::mutex mu_;
  std::vector<Free*> chains_;
};

/** allocate_shared's allocator: the request and its control block in one pooled block. */
template <class T>
struct PoolAllocator {
  using value_type = T;
  PoolAllocator() = default;
  template <class U>
  PoolAllocator(const PoolAllocator<U>&) {}
  T* allocate(size_t n) {
    if (n != 1) return static_cast<T*>(::operator new(n * sizeof(T)));
    return static_cast<T*>(BlockPool<sizeof(T)>::get().allocate());
  }
  void deallocate(T* p, size_t n) {
    if (n != 1) {
      ::operator delete(p);
      return;
    }
    BlockPool<sizeof(T)>::get().deallocate(p);
  }
  template <class U>
  bool operator==(const PoolAllocator<U>&) const { return true; }
  template <class U>
  bool operator!=(const PoolAllocator<U>&) const { return false; }
};

#if defined(__SANITIZE_ADDRESS__)
#define LOCKSMITH_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define LOCKSMITH_ASAN 1
#endif
#endif

/**
 * `since` is left at 0: nothing reads it here, and a clock read cost ~7 % of the echo floor's CPU.
 * Under AddressSanitizer, from malloc: a pooled block is reused at once, which would hide a use
 * of a Request after its last owner let it go.
 */
RequestPtr newRequest() {
#ifdef LOCKSMITH_ASAN
  return std::make_shared<Request>(Request::NoClock{});
#else
  return std::allocate_shared<Request>(PoolAllocator<Request>(), Request::NoClock{});
#endif
}

class SynthSession : public Session {
 public:
  SynthSession(int id, const SynthOptions& o) : Session(id, o.destinations), o_(o) {}
  ~SynthSession() override { close(); }

  void start();
  bool replyErr(uint64_t reqId, int err) override;
  size_t replyErrBatch(const uint64_t* ids, const int* errs, size_t n) override;
  void close() override;
  void onDrained(Destination& dest, size_t n) override;
  void stats(Stats& out) override;
  bool recording() const { return o_.record; }
  void log(std::vector<SynthRecord>& out);

 private:
  struct Owner {
    uint32_t id = 0;
    uint64_t rng = 0;
    uint64_t opsLeft = 0;  // random operations still to send
    bool busy = false;     // a request is outstanding
    bool finished = false;
    std::set<uint32_t> touched;  // files its random operations named: unlocked at the end
    std::set<uint32_t>::const_iterator closing;
    bool closingStarted = false;
  };
  struct Producer {
    std::mutex mu;
    std::condition_variable cv;
    uint64_t outstanding = 0;
    std::atomic<uint64_t> generated{0};
    // Pattern Random; guarded by mu.
    std::vector<Owner> owners;
    uint32_t cursor = 0;
    uint32_t unfinished = 0;
    std::vector<SynthRecord> log;
  };
  void run(uint32_t t);
  /** Pattern Pairs, 'reply' mode. */
  void runPairs(uint32_t t, int32_t pid);
  /** Event i of thread t (pattern Pairs), all but its reqId; `file` its file. */
  void fill(uint32_t t, uint64_t i, int32_t pid, Event& e, uint32_t& file) const;
  void runRandom(uint32_t t);
  /** The next operation of owner o (Random), or false when it has none left. Caller holds p.mu. */
  bool nextOp(Owner& o, Event& e, uint32_t& file);
  /** The Request that stands for event `e` of thread t (its owner `slot`, pattern 'random') on `file`. */
  RequestPtr requestOf(uint32_t t, uint32_t slot, uint32_t file, const Event& e);
  void send(uint32_t t, uint32_t slot, uint32_t file, Event&& e);
  /** A reply for r arrived: frees its window slot or owner, logs its end. */
  void answered(const RequestPtr& r, int err);
  void noteProgress();
  uint64_t generatedTotal() const;

  const SynthOptions o_;
  std::vector<Path> paths_;
  /**
   * The same strings as non-owning Paths (shared_ptr's aliasing constructor with no owner): copying
   * and dropping them touches no reference count. Four counts per request (its event's and its
   * Request's, up on the producer, down on the answering thread), on 64 strings that every thread
   * shares, kept moving their cache lines between the cores. Safe because nothing of this
   * session's outlives it: close() joins the producers, empties the queues and takes every request
   * before paths_ goes, and a thread delivering a batch holds the session (callJs).
   */
  std::vector<Path> sharedPaths_;
  std::vector<uint32_t> routes_;
  std::vector<std::unique_ptr<Producer>> producers_;
  std::vector<std::thread> threads_;
  std::atomic<bool> stop_{false};
  std::atomic<uint32_t> running_{0};
  std::atomic<uint64_t> errors_{0};
  std::atomic<uint64_t> seq_{1};

  // 'deliver' mode: events queued and not yet drained.
  std::mutex flowMu_;
  std::condition_variable flowCv_;
  uint64_t undrained_ = 0;

  std::mutex timeMu_;
  Clock::time_point started_;
  Clock::time_point finished_;
  bool done_ = false;
  std::mutex closeMu_;
  bool closed_ = false;
};

/** The log record of request r's end: rec 1 (answered with err) or 2 (cancelled by the close). */
SynthRecord endRecord(const Request& r, uint64_t seq, int err, uint8_t rec) {
  SynthRecord out;
  out.seq = seq;
  out.reqId = r.id;
  out.start = r.start;
  out.end = r.end;
  out.owner = static_cast<uint32_t>(r.lockOwner);
  out.file = r.file;
  out.err = err;
  out.rec = rec;
  out.type = static_cast<uint8_t>(r.type);
  out.sleep = r.sleep ? 1 : 0;
  return out;
}

void SynthSession::start() {
  for (uint32_t f = 0; f < o_.files; f++) {
    paths_.push_back(std::make_shared<const std::string>("synth:" + std::to_string(f)));
    routes_.push_back(routeOf(*paths_.back()));
    sharedPaths_.push_back(Path(Path(), paths_.back().get()));
  }
  for (uint32_t t = 0; t < o_.threads; t++) {
    producers_.push_back(std::make_unique<Producer>());
    if (o_.pattern != SynthPattern::Random) continue;
    Producer& p = *producers_.back();
    p.owners.resize(o_.owners);
    p.unfinished = o_.owners;
    for (uint32_t k = 0; k < o_.owners; k++) {
      Owner& ow = p.owners[k];
      ow.id = t * o_.owners + k + 1;
      uint64_t s = o_.seed ^ (0xd1b54a32d192ed03ULL * ow.id);
      ow.rng = splitmix64(s);
      ow.opsLeft = o_.opsPerThread == 0 ? UINT64_MAX : o_.opsPerThread / o_.owners + (k < o_.opsPerThread % o_.owners ? 1 : 0);
    }
  }
  started_ = Clock::now();
  running_ = o_.threads;
  for (uint32_t t = 0; t < o_.threads; t++) {
    threads_.emplace_back([this, t] { o_.pattern == SynthPattern::Random ? runRandom(t) : run(t); });
  }
}

RequestPtr SynthSession::requestOf(uint32_t t, uint32_t slot, uint32_t file, const Event& e) {
  RequestPtr r = newRequest();
  r->id = e.reqId;
  r->kind = e.kind;
  r->dest = routes_[file];
  r->producer = t;
  r->slot = slot;
  r->file = file;
  r->session = this;
  r->type = e.type;
  r->lockPid = e.lockPid;
  r->fileHandle = e.fileHandle;
  r->lockOwner = e.lockOwner;
  r->start = e.start;
  r->end = e.end;
  r->sleep = e.sleep;
  r->path = e.path;
  return r;
}

void SynthSession::send(uint32_t t, uint32_t slot, uint32_t file, Event&& e) {
  deliverRequest(requestOf(t, slot, file, e), std::move(e));
}

void SynthSession::fill(uint32_t t, uint64_t i, int32_t pid, Event& e, uint32_t& file) const {
  // Pairs of events on one file: lock, then unlock; thread t walks the files from its own start.
  const uint64_t pair = i / 2;
  file = static_cast<uint32_t>((t + pair * o_.threads) % o_.files);
  const uint64_t start = (pair % 16) * 4096;
  e.kind = EventKind::Setlk;
  e.type = (i % 2 == 0) ? 1 : 2;  // F_WRLCK, then F_UNLCK
  e.sleep = false;
  e.lockPid = pid;
  e.fileHandle = t;
  e.lockOwner = t + 1;
  e.start = start;
  e.end = start + 4095;
  e.path = sharedPaths_[file];
}

void SynthSession::run(uint32_t t) {
  Producer& p = *producers_[t];
  const uint64_t window = o_.window;
  const uint64_t flowLimit = window * o_.threads;
  const int32_t pid = static_cast<int32_t>(getpid());
  if (o_.awaitReplies) {
    runPairs(t, pid);
  } else {
    for (uint64_t i = 0; o_.opsPerThread == 0 || i < o_.opsPerThread; i++) {
      {
        std::unique_lock<std::mutex> l(flowMu_);
        flowCv_.wait(l, [&] { return stop_.load() || undrained_ < flowLimit; });
        if (stop_.load()) break;
        undrained_++;
      }
      Event e;
      uint32_t f = 0;
      fill(t, i, pid, e, f);
      e.reqId = nextReqId.fetch_add(1, std::memory_order_relaxed);
      deliver(routes_[f], std::move(e));
      p.generated.fetch_add(1, std::memory_order_relaxed);
    }
  }
  running_.fetch_sub(1);
  noteProgress();
}

void SynthSession::runPairs(uint32_t t, int32_t pid) {
  // What the window allows, up to kSendBatch at a time, is made in one go and queued with one
  // lock of each destination (deliverRequests): per request, no lock and no wake-up of its own.
  constexpr uint64_t kSendBatch = 256;
  Producer& p = *producers_[t];
  const uint64_t window = o_.window;
  std::vector<std::vector<RequestPtr>> reqs(destinationCount);
  std::vector<std::vector<Event>> evs(destinationCount);
  for (uint64_t i = 0; o_.opsPerThread == 0 || i < o_.opsPerThread;) {
    uint64_t k = 0;
    {
      std::unique_lock<std::mutex> l(p.mu);
      p.cv.wait(l, [&] { return stop_.load() || p.outstanding < window; });
      if (stop_.load()) break;
      k = std::min(window - p.outstanding, kSendBatch);
      if (o_.opsPerThread != 0) k = std::min(k, o_.opsPerThread - i);
      p.outstanding += k;
    }
    const uint64_t firstId = nextReqId.fetch_add(k, std::memory_order_relaxed);
    for (uint64_t j = 0; j < k; j++) {
      Event e;
      uint32_t f = 0;
      fill(t, i + j, pid, e, f);
      e.reqId = firstId + j;
      const uint32_t d = routes_[f];
      reqs[d].push_back(requestOf(t, 0, f, e));
      evs[d].push_back(std::move(e));
    }
    // Counted before any of them can be answered: synthStats never shows more replies than requests.
    p.generated.fetch_add(k, std::memory_order_relaxed);
    for (uint32_t d = 0; d < destinationCount; d++) {
      deliverRequests(d, reqs[d].data(), evs[d].data(), evs[d].size());
      reqs[d].clear();
      evs[d].clear();
    }
    i += k;
  }
}

bool SynthSession::nextOp(Owner& o, Event& e, uint32_t& file) {
  e.kind = EventKind::Setlk;
  e.lockPid = static_cast<int32_t>(o.id);
  e.fileHandle = o.id;
  e.lockOwner = o.id;
  if (o.opsLeft > 0) {
    o.opsLeft--;
    // Always the same draws per operation, so one stream never depends on which branch ran.
    const uint64_t rf = splitmix64(o.rng), rs = splitmix64(o.rng), rl = splitmix64(o.rng);
    const double uKind = unit(o.rng), uRead = unit(o.rng), uSleep = unit(o.rng), uEof = unit(o.rng);
    file = static_cast<uint32_t>(rf % o_.files);
    const uint64_t space = o_.rangeSpace;
    const uint64_t maxLen = std::max<uint64_t>(1, space / 4);
    e.start = rs % space;
    const uint64_t len = 1 + rl % maxLen;
    e.end = uEof < 1.0 / 32 ? OFFSET_MAX : std::min(space - 1, e.start + len - 1);
    if (uKind < o_.unlockRatio) {
      e.type = 2;  // F_UNLCK
      e.sleep = false;
    } else {
      e.type = uRead < o_.readRatio ? 0 : 1;  // F_RDLCK : F_WRLCK
      e.sleep = uSleep < o_.sleepRatio;
    }
    o.touched.insert(file);
    return true;
  }
  // Then, like a process closing its files: unlock everything on each file it named.
  if (!o.closingStarted) {
    o.closingStarted = true;
    o.closing = o.touched.begin();
  }
  if (o.closing == o.touched.end()) return false;
  file = *o.closing++;
  e.type = 2;
  e.sleep = false;
  e.start = 0;
  e.end = OFFSET_MAX;
  return true;
}

void SynthSession::runRandom(uint32_t t) {
  Producer& p = *producers_[t];
  const uint32_t n = static_cast<uint32_t>(p.owners.size());
  for (;;) {
    Event e;
    uint32_t file = 0, slot = 0;
    {
      std::unique_lock<std::mutex> l(p.mu);
      bool found = false;
      p.cv.wait(l, [&] {
        if (stop_.load() || p.unfinished == 0) return true;
        for (uint32_t j = 0; j < n && !found; j++) {
          uint32_t k = (p.cursor + j) % n;
          Owner& o = p.owners[k];
          if (o.busy || o.finished) continue;
          if (!nextOp(o, e, file)) {
            o.finished = true;
            p.unfinished--;
            continue;
          }
          slot = k;
          found = true;
        }
        return found || p.unfinished == 0;
      });
      if (stop_.load() || !found) break;
      p.cursor = (slot + 1) % n;
      p.owners[slot].busy = true;
      p.outstanding++;
      e.reqId = nextReqId.fetch_add(1, std::memory_order_relaxed);
      e.path = sharedPaths_[file];
      if (o_.record) {
        SynthRecord r;
        r.seq = seq_.fetch_add(1);  // before the event is sent: a release is stamped before it happens
        r.reqId = e.reqId;
        r.start = e.start;
        r.end = e.end;
        r.owner = p.owners[slot].id;
        r.file = file;
        r.rec = 0;
        r.type = e.type;
        r.sleep = e.sleep ? 1 : 0;
        p.log.push_back(r);
      }
    }
    send(t, slot, file, std::move(e));
    p.generated.fetch_add(1, std::memory_order_relaxed);
  }
  running_.fetch_sub(1);
  noteProgress();
}

uint64_t SynthSession::generatedTotal() const {
  uint64_t n = 0;
  for (auto& p : producers_) n += p->generated.load(std::memory_order_relaxed);
  return n;
}

/** Records the time the run completed: producers finished and everything answered / delivered. */
void SynthSession::noteProgress() {
  if (running_.load() != 0) return;
  bool complete;
  if (o_.awaitReplies) {
    // Every request answered and counted. Not "the table is empty": an answering thread takes
    // its batch out of the table before it counts the replies, so another thread could see the
    // table empty and end the run with a batch still uncounted (runSynthetic then reported
    // "1000000 generated, 999018 answered").
    complete = replies.load() == generatedTotal();
  } else {
    std::lock_guard<std::mutex> g(flowMu_);
    complete = undrained_ == 0;
  }
  if (!complete) return;
  std::lock_guard<std::mutex> g(timeMu_);
  if (!done_) {
    done_ = true;
    finished_ = Clock::now();
  }
}

void SynthSession::answered(const RequestPtr& r, int err) {
  Producer& p = *producers_[r->producer];
  {
    std::lock_guard<std::mutex> g(p.mu);
    p.outstanding--;
    if (o_.pattern == SynthPattern::Random) p.owners[r->slot].busy = false;
    // After the reply arrived: a grant is stamped after it happened.
    if (o_.record) p.log.push_back(endRecord(*r, seq_.fetch_add(1), err, 1));
  }
  p.cv.notify_one();
}

bool SynthSession::replyErr(uint64_t reqId, int err) {
  RequestPtr r = requests.take(reqId);
  if (!r) return false;
  if (err != 0) errors_.fetch_add(1, std::memory_order_relaxed);
  answered(r, err);
  // Counted last, with the default order: a thread that sees every reply counted (noteProgress)
  // sees the rest of the answer too, and the producers' last check sees this count or we see it.
  replies.fetch_add(1);
  if (running_.load() == 0) noteProgress();
  return true;
}

size_t SynthSession::replyErrBatch(const uint64_t* ids, const int* errs, size_t n) {
  if (o_.pattern == SynthPattern::Random) return Session::replyErrBatch(ids, errs, n);
  // Pairs: one lock and one wake-up per producer for the whole batch.
  thread_local std::vector<uint64_t> credit;
  thread_local std::vector<RequestPtr> taken;
  credit.assign(producers_.size(), 0);
  taken.resize(n);
  requests.takeMany(ids, n, taken.data());
  size_t answeredCount = 0, failed = 0;
  for (size_t i = 0; i < n; i++) {
    if (!taken[i]) continue;
    answeredCount++;
    if (errs[i] != 0) failed++;
    credit[taken[i]->producer]++;
    taken[i].reset();
  }
  if (answeredCount == 0) return 0;
  if (failed != 0) errors_.fetch_add(failed, std::memory_order_relaxed);
  for (size_t t = 0; t < credit.size(); t++) {
    if (credit[t] == 0) continue;
    Producer& p = *producers_[t];
    {
      std::lock_guard<std::mutex> g(p.mu);
      p.outstanding -= credit[t];
    }
    p.cv.notify_one();
  }
  replies.fetch_add(answeredCount);  // last, as in replyErr
  if (running_.load() == 0) noteProgress();
  return answeredCount;
}

void SynthSession::onDrained(Destination&, size_t n) {
  if (o_.awaitReplies) return;
  {
    std::lock_guard<std::mutex> g(flowMu_);
    undrained_ = n > undrained_ ? 0 : undrained_ - n;
  }
  flowCv_.notify_all();
  if (running_.load(std::memory_order_relaxed) == 0) noteProgress();
}

void SynthSession::close() {
  std::lock_guard<std::mutex> cg(closeMu_);
  if (closed_) return;
  closed_ = true;
  stop_ = true;
  for (auto& p : producers_) {
    std::lock_guard<std::mutex> g(p->mu);
    p->cv.notify_all();
  }
  {
    std::lock_guard<std::mutex> g(flowMu_);
    flowCv_.notify_all();
  }
  for (auto& th : threads_) {
    if (th.joinable()) th.join();
  }
  detachAll();
  clearQueues();
  for (const RequestPtr& r : requests.takeAll()) {
    if (!o_.record) continue;
    Producer& p = *producers_[r->producer];
    std::lock_guard<std::mutex> g(p.mu);
    p.log.push_back(endRecord(*r, seq_.fetch_add(1), ECANCELED, 2));
  }
  std::lock_guard<std::mutex> g(timeMu_);
  if (!done_) {
    done_ = true;
    finished_ = Clock::now();
  }
}

void SynthSession::log(std::vector<SynthRecord>& out) {
  out.clear();
  for (auto& p : producers_) {
    std::lock_guard<std::mutex> g(p->mu);
    out.insert(out.end(), p->log.begin(), p->log.end());
  }
  std::sort(out.begin(), out.end(), [](const SynthRecord& a, const SynthRecord& b) { return a.seq < b.seq; });
}

void SynthSession::stats(Stats& out) {
  Session::stats(out);
  out.numbers.emplace_back("generated", static_cast<double>(generatedTotal()));
  out.numbers.emplace_back("errors", static_cast<double>(errors_.load()));
  out.numbers.emplace_back("redelivered", static_cast<double>(redelivered.load()));
  out.numbers.emplace_back("running", running_.load());
  std::lock_guard<std::mutex> g(timeMu_);
  auto end = done_ ? finished_ : Clock::now();
  out.numbers.emplace_back("elapsedMs", std::chrono::duration<double, std::milli>(end - started_).count());
  out.flags.emplace_back("done", done_);
  out.flags.emplace_back("awaitReplies", o_.awaitReplies);
  out.flags.emplace_back("record", o_.record);
  out.strings.emplace_back("pattern", o_.pattern == SynthPattern::Random ? "random" : "pairs");
}

// Final logs of stopped recording sessions, until synthLog takes them. Never destroyed (pump.cc).
std::mutex& gLogsMu = *new std::mutex;
std::map<int, std::vector<SynthRecord>>& gLogs = *new std::map<int, std::vector<SynthRecord>>;

}  // namespace

SessionPtr startSynth(const SynthOptions& o) {
  auto s = std::make_shared<SynthSession>(newSessionId(), o);
  s->spinUs = o.spinUs;
  s->createDestinations();
  registerSession(s);
  s->start();
  return s;
}

void synthKeepLog(const SessionPtr& s) {
  auto* synth = dynamic_cast<SynthSession*>(s.get());
  if (synth == nullptr || !synth->recording()) return;
  std::vector<SynthRecord> out;
  synth->log(out);
  std::lock_guard<std::mutex> g(gLogsMu);
  gLogs[s->id] = std::move(out);
}

bool synthLog(int sessionId, std::vector<SynthRecord>& out) {
  if (SessionPtr s = findSession(sessionId)) {
    auto* synth = dynamic_cast<SynthSession*>(s.get());
    if (synth == nullptr || !synth->recording()) return false;
    synth->log(out);
    return true;
  }
  std::lock_guard<std::mutex> g(gLogsMu);
  auto it = gLogs.find(sessionId);
  if (it == gLogs.end()) return false;
  out = std::move(it->second);
  gLogs.erase(it);
  return true;
}

}  // namespace locksmith
