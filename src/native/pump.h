// The event pump: native threads (a FUSE session's libfuse workers, or the synthetic source) turn
// lock traffic into events and deliver them, in batches, to JavaScript threads that decide them.
//
// Model, in the terms used everywhere in locksmith:
// - A Session owns N destinations. An event for a file goes to destination fnv1a32(path) % N, the
//   same function as src/wire/route.ts routeOf, so every event of a file reaches one thread in order.
// - A Destination is a queue plus, while some JS thread has called attach(), that thread's
//   Attachment (one thread-safe function created on that thread). A native thread appends to the
//   queue and wakes the thread at most once until it drains: one wake-up delivers the whole queue
//   as one array.
// - A Request is an event that needs an answer (everything but 'interrupt'). It stays in the
//   session's RequestTable until JS answers (replyErr / replyLock) or the session closes; take()
//   removes it, so every request is answered exactly once.
// - detach() leaves the requests a thread has received with that thread (it may still answer
//   them). A thread that ends without detaching (a terminated worker) loses them: they are queued
//   again, in request order, for the next thread that attaches (requeueUnanswered).
//
// Lock order: Destination::mu before a RequestTable shard mutex; nothing holds a shard mutex while
// taking a destination's, and no libfuse call is made with either held.
//
// Thread-safety rules that keep a terminating worker from crashing the process (FIELD-NOTES.md):
// - napi_call_threadsafe_function and napi_release_threadsafe_function are only called with the
//   destination's mutex held and only while the Attachment is the destination's current one.
// - The attaching thread's env cleanup hook takes the same mutex and clears `current`, so no native
//   thread can touch the thread-safe function after its env starts going away; a napi_closing
//   status clears `current` the same way.
// - The JS callback is called with raw napi_call_function and its status is ignored.
#pragma once

#include <node_api.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

namespace locksmith {

constexpr uint64_t OFFSET_MAX = 0x7fffffffffffffffULL;

enum class EventKind : uint8_t { Getlk, Setlk, Flock, Flush, Release, Interrupt };

const char* kindName(EventKind k);

using Path = std::shared_ptr<const std::string>;

/** One event on its way to JavaScript. Field meanings: index.ts NativeEvent. */
struct Event {
  EventKind kind = EventKind::Setlk;
  uint8_t type = 0;
  bool sleep = false;
  bool flockRelease = false;
  int32_t lockPid = 0;
  uint64_t reqId = 0;
  uint64_t fileHandle = 0;
  uint64_t lockOwner = 0;
  uint64_t start = 0;
  uint64_t end = 0;
  Path path;
};

/**
 * FNV-1a over the path's bytes. For the ASCII keys the pump makes ("fuse:<dev>:<ino>",
 * "synth:<n>") the bytes are the UTF-16 code units that src/wire/route.ts routeOf hashes, so both
 * sides agree (test/native/synth.test.ts checks it).
 */
uint32_t fnv1a32(const std::string& path);

class Session;
struct Attachment;

struct Destination {
  Destination(std::weak_ptr<Session> s, uint32_t i) : session(std::move(s)), index(i) {}
  std::mutex mu;
  std::vector<Event> queue;
  /** The attached thread, or null: events then wait in the queue until a thread attaches. */
  Attachment* current = nullptr;
  /** A wake-up is on its way to `current`; more events need no other. */
  bool wakePending = false;
  /** `current` is polling the queue right after a callback (Session::spinUs): no wake-up needed. */
  bool spinning = false;
  /** The queue may hold events: what a polling thread watches without taking mu. */
  std::atomic<bool> hasEvents{false};
  /** When `current` last became null (or the destination was created). */
  std::chrono::steady_clock::time_point unattendedSince = std::chrono::steady_clock::now();
  std::atomic<uint64_t> delivered{0};
  std::atomic<uint64_t> batches{0};
  const std::weak_ptr<Session> session;
  const uint32_t index;
};

/**
 * Layout of a flat batch (attachFlat; index.ts FlatBatch documents the JavaScript side). Event i
 * occupies f64[i * kFlatStride + field] and u64[i * kFlatWide + k] of one ArrayBuffer.
 */
enum FlatField : uint32_t {
  kFReqId = 0,
  kFKind = 1,
  kFType = 2,
  kFFlags = 3,
  kFLockPid = 4,
  kFPath = 5,
  kFFileHandle = 6,
  kFLockOwner = 7,
  kFStart = 8,
  kFEnd = 9,
};
constexpr uint32_t kFlatStride = 10;
/** Exact 64-bit fileHandle, lockOwner, start, end of each event, for the values a double cannot hold. */
constexpr uint32_t kFlatWide = 4;
enum FlatFlag : uint32_t {
  kFlagSleep = 1,
  kFlagFlockRelease = 2,
  kFlagWideFileHandle = 4,
  kFlagWideLockOwner = 8,
  kFlagWideStart = 16,
  kFlagWideEnd = 32,
};

/** One attach() call: the thread-safe function of the thread that receives a destination's events. */
struct Attachment {
  std::shared_ptr<Destination> dest;
  napi_env env = nullptr;
  napi_threadsafe_function tsfn = nullptr;
  /** attachFlat: deliver FlatBatch objects instead of arrays of event objects. */
  bool flat = false;
  // Touched only on the attaching thread (callJs, finalizeAttachment).
  /** The drained queue's storage, kept so the queue need not grow from nothing after every drain. */
  std::vector<Event> spare;
  /** attachFlat: the reused batch object and its ArrayBuffer (capacity `cap` events). */
  napi_ref batchRef = nullptr;
  napi_ref bufferRef = nullptr;
  void* bufferData = nullptr;
  size_t cap = 0;
  /**
   * attachFlat's optional second function: called once when a wake-up that delivered something
   * ends (after the polling), right before the thread returns to its event loop.
   */
  napi_ref idleRef = nullptr;
  /** Adaptive polling (Session::spinUs): the current budget, and when the last callback ended. */
  int64_t spinBudgetNs = 0;
  std::chrono::steady_clock::time_point lastEnd{};
  /** Session::readWhilePolling: the buffer this thread reads requests into. */
  std::vector<char> readBuf;
};

/** A request waiting for its answer from JavaScript. */
struct Request {
  Request() = default;
  /** A source that never reads `since` (the synthetic source): no clock read per request. */
  struct NoClock {};
  explicit Request(NoClock) : since() {}
  uint64_t id = 0;
  EventKind kind = EventKind::Setlk;
  uint32_t dest = 0;
  void* req = nullptr;  // fuse_req_t for FUSE sessions
  uint64_t fileHandle = 0;
  uint64_t start = 0;
  uint64_t end = 0;
  int type = 0;
  int lockPid = 0;
  uint32_t producer = 0;  // the synthetic source's thread
  uint32_t slot = 0;      // and its owner (pattern 'random')
  uint32_t file = 0;      // the synthetic file
  uint64_t lockOwner = 0;
  uint64_t nodeId = 0;  // the FUSE inode (fuse_ino_t) of a FUSE session's request
  bool sleep = false;
  bool flockRelease = false;
  Path path;
  Session* session = nullptr;
  std::chrono::steady_clock::time_point since = std::chrono::steady_clock::now();
  /** The request's event, as first delivered (for delivering it again). */
  Event toEvent() const;
  // Guarded by the RequestTable shard's mutex.
  bool interruptible = false;
  bool delivered = false;
  bool interrupted = false;
  bool replied = false;
};

using RequestPtr = std::shared_ptr<Request>;

/**
 * Requests by id, sharded so producer threads and the answering threads rarely meet on a mutex.
 * Each shard is an open-addressing table (Robin Hood linear probing, backward-shift deletion)
 * indexed by the id itself: ids are handed out in sequence (Session::nextReqId), so the ids in
 * flight fill consecutive slots, a lookup is one or two probes, and neither put nor take allocates
 * (a map node per request, freed on the answering thread, was part of the quarter of the synthetic
 * source's CPU that went to malloc and the table).
 */
class RequestTable {
 public:
  void put(const RequestPtr& r);
  /** put() of n requests at once (moved from), locking each shard once. */
  void putMany(RequestPtr* rs, size_t n);
  /** Removes and returns the request, marking it replied; null if it was already answered. */
  RequestPtr take(uint64_t id);
  /**
   * take() of n ids at once, locking each shard once instead of once per id: out[i] is the request
   * of ids[i] or null. Answer batches are hundreds of ids.
   */
  void takeMany(const uint64_t* ids, size_t n, RequestPtr* out);
  /** The request if still unanswered, without removing it. */
  RequestPtr peek(uint64_t id);
  /** Runs f() with the request's shard locked (its flags are guarded by that mutex). */
  template <class F>
  auto locked(const Request* r, F&& f) {
    Shard& s = shard(r->id);
    std::lock_guard<std::mutex> g(s.mu);
    return f();
  }
  std::vector<RequestPtr> takeAll();
  size_t size();
  /** Calls f(request) for every unanswered request, each with its shard locked. */
  template <class F>
  void forEach(F&& f) {
    for (Shard& s : shards_) {
      std::lock_guard<std::mutex> g(s.mu);
      for (Slot& e : s.slots) {
        if (e.id != 0) f(*e.r);
      }
    }
  }

 private:
  /** id 0: empty (ids start at 1). */
  struct Slot {
    uint64_t id = 0;
    RequestPtr r;
  };
  struct alignas(64) Shard {
    std::mutex mu;
    std::vector<Slot> slots;  // a power of two, or empty
    size_t count = 0;
    /** The most entries since the last resize or shrink check, and removals since then. */
    size_t peak = 0;
    size_t erases = 0;
    static constexpr size_t kNone = ~size_t{0};
    /** The slot holding id, or kNone. */
    size_t find(uint64_t id) const;
    /** Adds id (absent, with room for it), keeping the Robin Hood order. */
    void place(uint64_t id, RequestPtr&& r);
    /** place() after growing the table if it would be more than half full. */
    void insert(uint64_t id, RequestPtr&& r);
    /** Empties slot i, shifting the entries after it back so no probe is cut short. */
    void erase(size_t i);
    void resize(size_t cap);
  };
  static constexpr size_t kShards = 16;
  static constexpr unsigned kShardBits = 4;
  static size_t shardOf(uint64_t id) { return id & (kShards - 1); }
  /** The slot an id starts its probe at, in a shard of `mask + 1` slots. */
  static size_t home(uint64_t id, size_t mask) { return (id >> kShardBits) & mask; }
  Shard& shard(uint64_t id) { return shards_[shardOf(id)]; }
  /** take() with `s`, the id's shard, already locked. */
  static RequestPtr takeLocked(Shard& s, uint64_t id);
  std::array<Shard, kShards> shards_;
};

/** Named values a session reports (sessionInfo / synthStats). */
struct Stats {
  std::vector<std::pair<std::string, double>> numbers;
  std::vector<std::pair<std::string, bool>> flags;
  std::vector<std::pair<std::string, std::string>> strings;
};

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(int id, uint32_t destinations) : id(id), destinationCount(destinations) {}
  virtual ~Session() = default;
  /** Creates the destinations (needs shared_from_this, so not in the constructor). */
  void createDestinations();

  const int id;
  const uint32_t destinationCount;
  /**
   * After a callback, the receiving thread polls its queue for up to this many µs before going
   * back to its event loop, so a request arriving right after the last answer (one process doing
   * lock, unlock, lock ...) costs no thread wake-up. Adaptive: a poll that finds nothing halves the
   * budget (down to 0: no polling, nothing burnt on an idle destination); a wake-up that comes
   * within spinUs of the last callback restores it. 0: never poll. The poll yields the core
   * (sched_yield) between looks, so it never holds a core another thread needs. A session that
   * lets its polling thread read its source (readsWhilePolling: a FUSE device) is read on each look.
   */
  uint32_t spinUs = 0;
  std::vector<std::shared_ptr<Destination>> dests;
  RequestTable requests;
  std::atomic<uint64_t> nextReqId{1};
  std::atomic<uint64_t> eventsQueued{0};
  std::atomic<uint64_t> replies{0};

  uint32_t routeOf(const std::string& path) const { return fnv1a32(path) % destinationCount; }
  /** Appends the event to the destination's queue and wakes its thread if it is not awake. */
  void deliver(uint32_t dest, Event&& e);
  /**
   * Registers the request and queues its event in one step under the destination's mutex, so a
   * dying thread's requeue (requeueUnanswered) sees both or neither.
   */
  void deliverRequest(const RequestPtr& r, Event&& e);
  /**
   * deliverRequest() of n requests of one destination at once (moved from): one lock of the
   * destination, one lock per table shard, at most one wake-up.
   */
  void deliverRequests(uint32_t dest, RequestPtr* rs, Event* es, size_t n);

  virtual bool isFuse() const { return false; }
  /**
   * Whether the polling thread of a destination reads the session's source itself (a FUSE device)
   * while it polls (Session::spinUs): requests then reach JavaScript with no other thread woken on
   * their way. One thread at a time: pollStarted() says whether this one may (then the session's
   * own readers stand aside until pollEnded()); a thread that may not polls its own queue only,
   * which the one that does fills as it reads. readWhilePolling() reads, without blocking, what the
   * source holds now and queues it as a reader thread would (for any destination); it returns how
   * many it read.
   */
  virtual bool readsWhilePolling() { return false; }
  /** The CPU of the thread that reads the source while it polls (pollStarted), or -1. */
  std::atomic<int> pollerCpu{-1};
  virtual bool pollStarted() { return true; }
  virtual void pollEnded() {}
  virtual size_t readWhilePolling(std::vector<char>& buf) { return 0; }
  /**
   * Whether a request the polling thread read and handed to other threads (a FUSE file operation,
   * run by a reader) is still unanswered, or was answered after `since`: its process was waiting,
   * and often sends its next request as soon as it has the answer (SQLite: pwrite, pwrite,
   * fdatasync, then the unlock). The polling thread goes on polling meanwhile, within its
   * wake-up's ~2 ms.
   */
  virtual bool handedBusy(std::chrono::steady_clock::time_point since) { return false; }
  /** A FUSE mount's open file `fh` lost its locks with this node's session: its I/O fails (Passthrough::markLost). */
  virtual void markLost(uint64_t fh) {}
  /** A FUSE store mount's lease, read in place to fence its locked files' I/O (Passthrough::setLease). */
  virtual void setLease(const double* lease, double offsetMs) {}
  /** JS answered request `reqId` with errno `err` (0 success). False if it was already answered. */
  virtual bool replyErr(uint64_t reqId, int err) = 0;
  /**
   * replyBatch: answers n requests; returns how many were still unanswered. The default calls
   * replyErr for each; the synthetic source groups its bookkeeping.
   */
  virtual size_t replyErrBatch(const uint64_t* ids, const int* errs, size_t n);
  /** JS answered an F_GETLK. False if it was already answered; throws for a non-getlk request. */
  virtual bool replyLock(uint64_t reqId, int type, uint64_t start, uint64_t end, int lockPid) { return false; }
  /** Stops the source, answers what is outstanding, detaches every destination. Idempotent. */
  virtual void close() = 0;
  /** Called on the receiving thread after it drained `n` events of `dest`. */
  virtual void onDrained(Destination& dest, size_t n) {}
  /** Counters common to every session; subclasses add theirs. */
  virtual void stats(Stats& out);

  /** Releases every destination's thread-safe function (any thread). */
  void detachAll();
  /** Drops queued events (after the session answered their requests itself). */
  void clearQueues();
  /** Removes queued events of one request; true if one was found (JS never saw it). */
  bool purgeQueued(uint32_t dest, uint64_t reqId);
  /** True if some thread is attached to the destination. */
  bool attached(uint32_t dest);
  /**
   * The attached thread of `d` died (its env is going away) with requests it had received and not
   * answered: queue their events again, in request order with what is still queued, so the next
   * thread that attaches decides them. Caller holds d.mu.
   */
  void requeueUnanswered(Destination& d);
  std::atomic<uint64_t> redelivered{0};
};

using SessionPtr = std::shared_ptr<Session>;

// ---- registry --------------------------------------------------------------------------------

int registerSession(const SessionPtr& s);
SessionPtr findSession(int id);
void unregisterSession(int id);
std::vector<SessionPtr> allSessions();
int newSessionId();

// ---- attach / detach (called on the attaching JS thread) --------------------------------------

/**
 * Creates this thread's thread-safe function for the destination; throws a message on failure.
 * flat: the callback receives FlatBatch objects (attachFlat) instead of event arrays. idle (flat
 * only, may be null): called with no arguments at the end of every wake-up that delivered events.
 */
void attachDestination(napi_env env, const SessionPtr& s, uint32_t index, napi_value callback, bool flat = false,
                       napi_value idle = nullptr);
/** Detaches the destination if this thread attached it; false if nothing was attached. */
bool detachDestination(napi_env env, const SessionPtr& s, uint32_t index);

}  // namespace locksmith
