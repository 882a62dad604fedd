// Routing, queues, batched delivery to JavaScript threads, and the request table (pump.h).
#include "pump.h"

#include <pthread.h>
#include <sched.h>

#include <algorithm>
#include <cmath>
#include <iterator>
#include <map>
#include <stdexcept>

namespace locksmith {

const char* kindName(EventKind k) {
  switch (k) {
    case EventKind::Getlk: return "getlk";
    case EventKind::Setlk: return "setlk";
    case EventKind::Flock: return "flock";
    case EventKind::Flush: return "flush";
    case EventKind::Release: return "release";
    case EventKind::Interrupt: return "interrupt";
  }
  return "?";
}

uint32_t fnv1a32(const std::string& path) {
  uint32_t h = 0x811c9dc5u;
  for (unsigned char c : path) {
    h ^= c;
    h *= 0x01000193u;
  }
  return h;
}

// ---- RequestTable ----------------------------------------------------------------------------

namespace {
/** Shards start at this many slots, and never shrink below it. */
constexpr size_t kMinSlots = 64;
}  // namespace

size_t RequestTable::Shard::find(uint64_t id) const {
  if (id == 0 || count == 0) return kNone;
  const size_t mask = slots.size() - 1;
  size_t i = home(id, mask);
  for (size_t dist = 0;; dist++, i = (i + 1) & mask) {
    const uint64_t here = slots[i].id;
    if (here == id) return i;
    // Robin Hood order: past an empty slot or an entry nearer its home than we are, id is absent.
    if (here == 0 || ((i - home(here, mask)) & mask) < dist) return kNone;
  }
}

void RequestTable::Shard::resize(size_t cap) {
  std::vector<Slot> old;
  old.swap(slots);
  slots.resize(cap);
  count = 0;
  for (Slot& e : old) {
    if (e.id != 0) place(e.id, std::move(e.r));
  }
  peak = count;
  erases = 0;
}

void RequestTable::Shard::place(uint64_t id, RequestPtr&& r) {
  const size_t mask = slots.size() - 1;
  size_t i = home(id, mask);
  Slot in;
  in.id = id;
  in.r = std::move(r);
  for (size_t dist = 0;; dist++, i = (i + 1) & mask) {
    Slot& here = slots[i];
    if (here.id == 0) {
      here = std::move(in);
      count++;
      return;
    }
    // Robin Hood: the entry nearer its home gives its slot to the one farther from its own.
    const size_t hereDist = (i - home(here.id, mask)) & mask;
    if (hereDist < dist) {
      std::swap(here, in);
      dist = hereDist;
    }
  }
}

void RequestTable::Shard::insert(uint64_t id, RequestPtr&& r) {
  // At most half full: probes stay short even when ids are not consecutive.
  if (slots.empty()) {
    slots.resize(kMinSlots);
  } else if (2 * (count + 1) > slots.size()) {
    resize(2 * slots.size());
  }
  place(id, std::move(r));
  if (count > peak) peak = count;
}

void RequestTable::Shard::erase(size_t i) {
  const size_t mask = slots.size() - 1;
  slots[i].r.reset();
  // Backward shift until an empty slot or an entry at its home (Robin Hood order keeps every
  // entry between its home and here, so none after that could move).
  for (size_t j = (i + 1) & mask; slots[j].id != 0 && ((j - home(slots[j].id, mask)) & mask) != 0;
       j = (j + 1) & mask) {
    slots[i].id = slots[j].id;
    slots[i].r = std::move(slots[j].r);
    i = j;
  }
  slots[i].id = 0;
  count--;
  // After a burst (a FUSE mount with many waiters), give the memory back: when the table stayed
  // below an eighth full over as many removals as it has slots (not at every dip: the synthetic
  // source empties and refills it many times a second).
  if (++erases >= slots.size()) {
    if (slots.size() > kMinSlots && 8 * peak < slots.size()) {
      resize(slots.size() / 2);
    } else {
      erases = 0;
      peak = count;
    }
  }
}

void RequestTable::put(const RequestPtr& r) {
  Shard& s = shard(r->id);
  std::lock_guard<std::mutex> g(s.mu);
  s.insert(r->id, RequestPtr(r));
}

void RequestTable::putMany(RequestPtr* rs, size_t n) {
  // Usually consecutive ids: every shard gets a few; one lock per shard.
  std::array<bool, kShards> used{};
  for (size_t i = 0; i < n; i++) used[shardOf(rs[i]->id)] = true;
  for (size_t sh = 0; sh < kShards; sh++) {
    if (!used[sh]) continue;
    Shard& s = shards_[sh];
    std::lock_guard<std::mutex> g(s.mu);
    for (size_t i = 0; i < n; i++) {
      if (!rs[i] || shardOf(rs[i]->id) != sh) continue;  // moved into an earlier shard
      const uint64_t id = rs[i]->id;
      s.insert(id, std::move(rs[i]));
    }
  }
}

RequestPtr RequestTable::takeLocked(Shard& s, uint64_t id) {
  const size_t i = s.find(id);
  if (i == Shard::kNone) return nullptr;
  RequestPtr r = std::move(s.slots[i].r);
  s.erase(i);
  r->replied = true;
  return r;
}

RequestPtr RequestTable::take(uint64_t id) {
  Shard& s = shard(id);
  std::lock_guard<std::mutex> g(s.mu);
  return takeLocked(s, id);
}

void RequestTable::takeMany(const uint64_t* ids, size_t n, RequestPtr* out) {
  // Indices of ids grouped by shard (a counting sort), then one lock per shard.
  thread_local std::vector<uint32_t> order;
  std::array<uint32_t, kShards + 1> first{};
  for (size_t i = 0; i < n; i++) first[shardOf(ids[i]) + 1]++;
  for (size_t s = 0; s < kShards; s++) first[s + 1] += first[s];
  std::array<uint32_t, kShards> next{};
  for (size_t s = 0; s < kShards; s++) next[s] = first[s];
  order.resize(n);
  for (size_t i = 0; i < n; i++) order[next[shardOf(ids[i])]++] = static_cast<uint32_t>(i);
  for (size_t sh = 0; sh < kShards; sh++) {
    if (first[sh] == first[sh + 1]) continue;
    Shard& s = shards_[sh];
    std::lock_guard<std::mutex> g(s.mu);
    for (uint32_t k = first[sh]; k < first[sh + 1]; k++) out[order[k]] = takeLocked(s, ids[order[k]]);
  }
}

RequestPtr RequestTable::peek(uint64_t id) {
  Shard& s = shard(id);
  std::lock_guard<std::mutex> g(s.mu);
  const size_t i = s.find(id);
  return i == Shard::kNone ? nullptr : s.slots[i].r;
}

std::vector<RequestPtr> RequestTable::takeAll() {
  std::vector<RequestPtr> out;
  for (Shard& s : shards_) {
    std::lock_guard<std::mutex> g(s.mu);
    for (Slot& e : s.slots) {
      if (e.id == 0) continue;
      e.r->replied = true;
      out.push_back(std::move(e.r));
      e.id = 0;
    }
    s.count = 0;
    s.peak = 0;
    s.erases = 0;
    std::vector<Slot>().swap(s.slots);
  }
  std::sort(out.begin(), out.end(), [](const RequestPtr& a, const RequestPtr& b) { return a->id < b->id; });
  return out;
}

size_t RequestTable::size() {
  size_t n = 0;
  for (Shard& s : shards_) {
    std::lock_guard<std::mutex> g(s.mu);
    n += s.count;
  }
  return n;
}

Event Request::toEvent() const {
  Event e;
  e.kind = kind;
  e.type = static_cast<uint8_t>(type);
  e.sleep = sleep;
  e.flockRelease = flockRelease;
  e.lockPid = lockPid;
  e.reqId = id;
  e.fileHandle = fileHandle;
  e.lockOwner = lockOwner;
  e.start = start;
  e.end = end;
  e.path = path;
  return e;
}

// ---- delivery --------------------------------------------------------------------------------

namespace {

/** The attached thread of d is gone for good (not a detach() call). Caller holds d.mu. */
void lostThreadLocked(Destination& d) {
  d.current = nullptr;
  d.wakePending = false;
  d.unattendedSince = std::chrono::steady_clock::now();
  if (auto s = d.session.lock()) s->requeueUnanswered(d);
}

/** Asks the attached thread to drain the queue. Caller holds d.mu and d.current is set. */
void wakeLocked(Destination& d) {
  napi_status st = napi_call_threadsafe_function(d.current->tsfn, nullptr, napi_tsfn_nonblocking);
  if (st == napi_ok) {
    d.wakePending = true;
    return;
  }
  // napi_closing: the thread is going away. Never touch this thread-safe function again; its
  // finalizer frees the Attachment. The events stay queued for the next attach().
  lostThreadLocked(d);
}

// Every napi_value starts null: during a worker's teardown a call may fail, and a null argument
// makes the next call fail cleanly (napi_invalid_arg) instead of reading garbage.
napi_value bigint(napi_env env, uint64_t v) {
  napi_value out = nullptr;
  napi_create_bigint_uint64(env, v, &out);
  return out;
}

napi_value eventObject(napi_env env, const Event& e, napi_value const* kinds, napi_value t, napi_value f) {
  napi_value obj = nullptr, reqId = nullptr, path = nullptr, type = nullptr, lockPid = nullptr;
  if (napi_create_object(env, &obj) != napi_ok) return nullptr;
  napi_create_double(env, static_cast<double>(e.reqId), &reqId);
  napi_create_string_latin1(env, e.path ? e.path->data() : "", e.path ? e.path->size() : 0, &path);
  napi_create_int32(env, e.type, &type);
  napi_create_int32(env, e.lockPid, &lockPid);
  const napi_property_attributes a = napi_default_jsproperty;
  napi_property_descriptor p[] = {
      {"kind", nullptr, nullptr, nullptr, nullptr, kinds[static_cast<int>(e.kind)], a, nullptr},
      {"reqId", nullptr, nullptr, nullptr, nullptr, reqId, a, nullptr},
      {"path", nullptr, nullptr, nullptr, nullptr, path, a, nullptr},
      {"fileHandle", nullptr, nullptr, nullptr, nullptr, bigint(env, e.fileHandle), a, nullptr},
      {"lockOwner", nullptr, nullptr, nullptr, nullptr, bigint(env, e.lockOwner), a, nullptr},
      {"start", nullptr, nullptr, nullptr, nullptr, bigint(env, e.start), a, nullptr},
      {"end", nullptr, nullptr, nullptr, nullptr, bigint(env, e.end), a, nullptr},
      {"type", nullptr, nullptr, nullptr, nullptr, type, a, nullptr},
      {"lockPid", nullptr, nullptr, nullptr, nullptr, lockPid, a, nullptr},
      {"sleep", nullptr, nullptr, nullptr, nullptr, e.sleep ? t : f, a, nullptr},
      {"flockRelease", nullptr, nullptr, nullptr, nullptr, e.flockRelease ? t : f, a, nullptr},
  };
  napi_define_properties(env, obj, sizeof(p) / sizeof(p[0]), p);
  return obj;
}

constexpr double kTwo53 = 9007199254740992.0;
/** attachFlat: at most this many events per callback call (bounds the reused buffer). */
constexpr size_t kFlatMaxBatch = 8192;

/** Creates (or replaces, when too small or detached by a transfer) the flat batch's buffer. */
bool ensureFlatBuffer(napi_env env, Attachment& a, napi_value batchObj, size_t n) {
  if (a.bufferRef != nullptr && a.cap >= n) {
    napi_value ab = nullptr;
    bool detached = true;
    if (napi_get_reference_value(env, a.bufferRef, &ab) == napi_ok && ab != nullptr &&
        napi_is_detached_arraybuffer(env, ab, &detached) == napi_ok && !detached) {
      return true;
    }
  }
  size_t cap = 256;
  while (cap < n) cap *= 2;
  if (cap < a.cap) cap = a.cap;
  const size_t wideOffset = cap * kFlatStride * sizeof(double);
  void* data = nullptr;
  napi_value ab = nullptr, f64 = nullptr, u64 = nullptr;
  if (napi_create_arraybuffer(env, wideOffset + cap * kFlatWide * sizeof(uint64_t), &data, &ab) != napi_ok) return false;
  if (napi_create_typedarray(env, napi_float64_array, cap * kFlatStride, ab, 0, &f64) != napi_ok) return false;
  if (napi_create_typedarray(env, napi_biguint64_array, cap * kFlatWide, ab, wideOffset, &u64) != napi_ok) return false;
  if (napi_set_named_property(env, batchObj, "f64", f64) != napi_ok) return false;
  if (napi_set_named_property(env, batchObj, "u64", u64) != napi_ok) return false;
  napi_ref ref = nullptr;
  if (napi_create_reference(env, ab, 1, &ref) != napi_ok) return false;
  if (a.bufferRef != nullptr) napi_delete_reference(env, a.bufferRef);
  a.bufferRef = ref;
  a.bufferData = data;
  a.cap = cap;
  return true;
}

/** The reused batch object of a flat attachment, filled with `batch`; null if napi failed. */
napi_value flatBatch(napi_env env, Attachment& a, const std::vector<Event>& batch) {
  napi_value obj = nullptr;
  if (a.batchRef != nullptr) napi_get_reference_value(env, a.batchRef, &obj);
  if (obj == nullptr) {
    napi_value stride = nullptr, wide = nullptr;
    if (napi_create_object(env, &obj) != napi_ok) return nullptr;
    napi_create_uint32(env, kFlatStride, &stride);
    napi_create_uint32(env, kFlatWide, &wide);
    // Every property exists from the start, in one order: one hidden class for every batch.
    napi_value zero = nullptr, nul = nullptr;
    napi_create_uint32(env, 0, &zero);
    napi_get_null(env, &nul);
    napi_set_named_property(env, obj, "n", zero);
    napi_set_named_property(env, obj, "stride", stride);
    napi_set_named_property(env, obj, "wide", wide);
    napi_set_named_property(env, obj, "f64", nul);
    napi_set_named_property(env, obj, "u64", nul);
    napi_set_named_property(env, obj, "paths", nul);
    if (napi_create_reference(env, obj, 1, &a.batchRef) != napi_ok) return nullptr;
  }
  const size_t n = batch.size();
  if (!ensureFlatBuffer(env, a, obj, n)) return nullptr;
  auto* f = static_cast<double*>(a.bufferData);
  auto* w = reinterpret_cast<uint64_t*>(f + a.cap * kFlatStride);
  // Paths: a table per batch, each distinct path once (events of one file tend to come together).
  std::vector<const std::string*> table;
  std::unordered_map<const std::string*, uint32_t> index;
  const std::string* lastPath = nullptr;
  uint32_t lastIndex = 0;
  static const std::string kEmpty;
  for (size_t i = 0; i < n; i++) {
    const Event& e = batch[i];
    const std::string* p = e.path ? e.path.get() : &kEmpty;
    if (p != lastPath) {
      auto it = index.find(p);
      if (it == index.end()) {
        it = index.emplace(p, static_cast<uint32_t>(table.size())).first;
        table.push_back(p);
      }
      lastPath = p;
      lastIndex = it->second;
    }
    double* r = f + i * kFlatStride;
    uint32_t flags = (e.sleep ? uint32_t{kFlagSleep} : 0u) | (e.flockRelease ? uint32_t{kFlagFlockRelease} : 0u);
    r[kFReqId] = static_cast<double>(e.reqId);
    r[kFKind] = static_cast<double>(static_cast<int>(e.kind));
    r[kFType] = e.type;
    r[kFLockPid] = e.lockPid;
    r[kFPath] = lastIndex;
    r[kFFileHandle] = static_cast<double>(e.fileHandle);
    r[kFLockOwner] = static_cast<double>(e.lockOwner);
    r[kFStart] = static_cast<double>(e.start);
    if (e.end == OFFSET_MAX) {
      r[kFEnd] = INFINITY;
    } else {
      r[kFEnd] = static_cast<double>(e.end);
      if (e.end >= static_cast<uint64_t>(kTwo53)) flags |= kFlagWideEnd;
    }
    if (e.fileHandle >= static_cast<uint64_t>(kTwo53)) flags |= kFlagWideFileHandle;
    if (e.lockOwner >= static_cast<uint64_t>(kTwo53)) flags |= kFlagWideLockOwner;
    if (e.start >= static_cast<uint64_t>(kTwo53)) flags |= kFlagWideStart;
    r[kFFlags] = flags;
    uint64_t* x = w + i * kFlatWide;
    x[0] = e.fileHandle;
    x[1] = e.lockOwner;
    x[2] = e.start;
    x[3] = e.end;
  }
  napi_value paths = nullptr, count = nullptr;
  if (napi_create_array_with_length(env, table.size(), &paths) != napi_ok) return nullptr;
  for (size_t k = 0; k < table.size(); k++) {
    napi_value str = nullptr;
    napi_create_string_latin1(env, table[k]->data(), table[k]->size(), &str);
    if (str == nullptr || napi_set_element(env, paths, static_cast<uint32_t>(k), str) != napi_ok) return nullptr;
  }
  napi_create_double(env, static_cast<double>(n), &count);
  if (napi_set_named_property(env, obj, "n", count) != napi_ok) return nullptr;
  if (napi_set_named_property(env, obj, "paths", paths) != napi_ok) return nullptr;
  return obj;
}

/**
 * Drains the queue (a flat attachment: at most kFlatMaxBatch events, then wakes itself again for
 * the rest) and calls the callback once. Returns false when nothing was delivered or the call
 * failed (a throwing callback, a terminating thread): the caller must not call again.
 * The status of napi_call_function is otherwise ignored on purpose: while a worker terminates,
 * calls fail and there is nothing useful to do about it. (A callback that throws is an uncaught
 * exception of its thread, as for any event callback.)
 */
bool deliverOnce(napi_env env, napi_value jsCallback, Attachment* a) {
  Destination& d = *a->dest;
  std::vector<Event> batch;
  batch.swap(a->spare);
  batch.clear();
  {
    std::lock_guard<std::mutex> g(d.mu);
    if (d.current != a) return false;  // detached (and maybe attached again by a newer call)
    d.wakePending = false;
    if (a->flat && d.queue.size() > kFlatMaxBatch) {
      batch.assign(std::make_move_iterator(d.queue.begin()), std::make_move_iterator(d.queue.begin() + kFlatMaxBatch));
      d.queue.erase(d.queue.begin(), d.queue.begin() + kFlatMaxBatch);
      wakeLocked(d);  // the rest in the next call
    } else {
      batch.swap(d.queue);
      d.hasEvents.store(false, std::memory_order_relaxed);
    }
  }
  if (batch.empty()) {
    a->spare.swap(batch);
    return false;
  }
  // The batch has left the queue: account for it however the delivery below ends (a thread being
  // torn down can fail it midway; its requests are queued again by requeueUnanswered, and the
  // synthetic source's flow control must not wait for events that will never be drained).
  struct Drained {
    Destination& d;
    Attachment* a;
    std::vector<Event>& batch;
    ~Drained() {
      if (auto s = d.session.lock()) s->onDrained(d, batch.size());
      batch.clear();  // drops the path references now, not at the next drain
      if (a->spare.capacity() < batch.capacity()) a->spare.swap(batch);
    }
  } drained{d, a, batch};
  napi_value undefined = nullptr, arg = nullptr;
  napi_get_undefined(env, &undefined);
  if (a->flat) {
    arg = flatBatch(env, *a, batch);
    if (arg == nullptr) return false;
  } else {
    napi_value kinds[6] = {}, t = nullptr, f = nullptr;
    for (int k = 0; k < 6; k++) {
      const char* name = kindName(static_cast<EventKind>(k));
      napi_create_string_latin1(env, name, NAPI_AUTO_LENGTH, &kinds[k]);
    }
    napi_get_boolean(env, true, &t);
    napi_get_boolean(env, false, &f);
    if (napi_create_array_with_length(env, batch.size(), &arg) != napi_ok) return false;
    for (size_t i = 0; i < batch.size(); i++) {
      napi_value obj = eventObject(env, batch[i], kinds, t, f);
      if (obj == nullptr || napi_set_element(env, arg, static_cast<uint32_t>(i), obj) != napi_ok) return false;
    }
  }
  d.delivered.fetch_add(batch.size(), std::memory_order_relaxed);
  d.batches.fetch_add(1, std::memory_order_relaxed);
  return napi_call_function(env, undefined, jsCallback, 1, &arg, nullptr) == napi_ok;
}

inline void cpuRelax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

/**
 * Polls the queue of `d` until `deadline`: looks at hasEvents, and first reads the session's
 * source when the session lets its polling threads read it (Session::readsWhilePolling), yielding
 * the core between looks. True when events came. A thread reading the source goes on past
 * `deadline`, up to `limit`, while a request it handed to the readers is unanswered or was
 * answered less than `spin` ago (Session::handedBusy): SQLite's commit is pwrite, pwrite,
 * fdatasync (250 us and more here), then the unlock; a poll ending among them made that unlock
 * wake a reader and this thread.
 */
bool pollForEvents(Session* s, Attachment& a, Destination& d, std::chrono::steady_clock::time_point deadline,
                   std::chrono::steady_clock::time_point limit, std::chrono::nanoseconds spin) {
  for (;;) {
    if (s != nullptr) s->readWhilePolling(a.readBuf);
    if (d.hasEvents.load(std::memory_order_acquire)) return true;
    cpuRelax();
    const auto now = std::chrono::steady_clock::now();
    if (now >= deadline && (s == nullptr || now >= limit || !s->handedBusy(now - spin))) return false;
    // A polling thread that only pauses holds its core against the very threads it waits for
    // (the process on the mount, the libfuse thread that receives its request): on a loaded
    // machine that made one process's lock+unlock 3-5x slower. Yielding lets them run, and the
    // thread stays runnable, so the request still needs no wake-up. Measured (8,000 operations,
    // load 20 on 2 cores, interleaved): yielding every 64 pauses 0.5-1.8 s, every 16 1.2-2.1 s,
    // every pause 0.36-0.47 s (the bare single-threaded server: 0.18-0.53 s).
    sched_yield();
  }
}

/**
 * A thread about to poll its own queue while another thread of the session polls the source
 * (Session::readsWhilePolling) moves to that thread's CPU, when this process may run on at most
 * two CPUs; the caller restores `own` (the thread's CPUs) when the wake-up ends, at most ~2 ms
 * later. True if it moved. Neither thread ever sleeps while they poll: on two CPUs they held both,
 * and every answer woke its process on a busy CPU, an IPI and a preemption (bench/NOTES.md
 * 2026-12-03 "the 8-process row": the reply's wake-up ~10 us per operation here against ~3 in the
 * bare server). Side by side they share one CPU, each yielding between looks, and the processes on
 * the mount have the other: server CPU per operation 25-31 -> 17-23 us, 8 processes 0.68 -> 0.75x
 * the bare server. With more CPUs the pollers leave the processes room anyway, and stay apart.
 */
bool runBesidePoller(Session& s, cpu_set_t& own) {
  const int cpu = s.pollerCpu.load(std::memory_order_relaxed);
  if (cpu < 0 || cpu >= CPU_SETSIZE) return false;
  if (pthread_getaffinity_np(pthread_self(), sizeof own, &own) != 0) return false;
  if (CPU_COUNT(&own) > 2 || !CPU_ISSET(cpu, &own)) return false;
  cpu_set_t one;
  CPU_ZERO(&one);
  CPU_SET(cpu, &one);
  return pthread_setaffinity_np(pthread_self(), sizeof one, &one) == 0;
}

/**
 * Runs on the attached thread when woken: delivers, then (Session::spinUs) polls the queue for a
 * while and delivers again what arrives, so a steady trickle of requests needs no wake-ups. At most
 * ~2 ms per wake-up, so the thread's event loop still turns.
 */
void callJs(napi_env env, napi_value jsCallback, void* context, void* /*data*/) {
  if (env == nullptr || jsCallback == nullptr) return;  // the thread-safe function is being torn down
  auto* a = static_cast<Attachment*>(context);
  Destination& d = *a->dest;
  // Kept while polling: readWhilePolling reads the session's source.
  auto session = d.session.lock();
  const int64_t spinNs = session ? static_cast<int64_t>(session->spinUs) * 1000 : 0;
  using Clock = std::chrono::steady_clock;
  const auto entered = Clock::now();
  if (spinNs > 0 && a->spinBudgetNs == 0 && a->lastEnd != Clock::time_point{} &&
      std::chrono::duration_cast<std::chrono::nanoseconds>(entered - a->lastEnd).count() < spinNs) {
    a->spinBudgetNs = spinNs;  // woken again soon after the last callback: traffic is steady
  }
  // The session's source is read here while polling: its readers stand aside until the end.
  Session* reader = session && spinNs > 0 && session->readsWhilePolling() ? session.get() : nullptr;
  bool polling = false;
  // runBesidePoller: this thread's CPUs before it moved beside the polling thread.
  cpu_set_t ownCpus;
  bool beside = false;
  bool delivered = false;
  for (;;) {
    if (!deliverOnce(env, jsCallback, a)) break;
    delivered = true;
    a->lastEnd = Clock::now();
    if (a->spinBudgetNs <= 0) break;
    if (std::chrono::duration_cast<std::chrono::milliseconds>(a->lastEnd - entered).count() >= 2) {
      std::lock_guard<std::mutex> g(d.mu);  // let the event loop turn; come back for what is queued
      if (d.current == a && !d.queue.empty() && !d.wakePending) wakeLocked(d);
      break;
    }
    if (reader != nullptr && !polling) {
      if (reader->pollStarted()) {
        polling = true;
        reader->pollerCpu.store(sched_getcpu(), std::memory_order_relaxed);
      } else {
        // Another thread reads the source while it polls, and two threads reading it would only
        // share the cores. That thread queues this one's events as it reads them: poll this
        // queue alone, so they arrive without a thread-safe call (a wake-up of this thread) per
        // batch, and this wake-up's journal records leave once, not once per batch.
        reader = nullptr;
        beside = runBesidePoller(*session, ownCpus);
      }
    }
    {
      std::lock_guard<std::mutex> g(d.mu);
      if (d.current != a) break;
      d.spinning = true;
    }
    const auto deadline = a->lastEnd + std::chrono::nanoseconds(a->spinBudgetNs);
    bool got = pollForEvents(reader, *a, d, deadline, entered + std::chrono::milliseconds(2), std::chrono::nanoseconds(spinNs));
    {
      std::lock_guard<std::mutex> g(d.mu);
      d.spinning = false;
      if (d.current != a) break;
      if (!d.queue.empty()) got = true;  // arrived while we stopped looking: no wake-up was sent
    }
    if (!got) {
      a->spinBudgetNs /= 2;
      if (a->spinBudgetNs < 2000) a->spinBudgetNs = 0;
      break;
    }
    a->spinBudgetNs = spinNs;
  }
  if (polling) {
    reader->pollerCpu.store(-1, std::memory_order_relaxed);
    reader->pollEnded();
  }
  if (beside) pthread_setaffinity_np(pthread_self(), sizeof ownCpus, &ownCpus);
  session.reset();
  if (delivered && a->idleRef != nullptr) {
    // The thread goes back to its event loop: what the callbacks deferred to this point leaves now
    // (NativeFeed: the journal records of the answers sent during this wake-up). Status ignored,
    // as for the callback itself.
    napi_value idle = nullptr, undefined = nullptr;
    napi_get_undefined(env, &undefined);
    if (napi_get_reference_value(env, a->idleRef, &idle) == napi_ok && idle != nullptr) {
      napi_call_function(env, undefined, idle, 0, nullptr, nullptr);
    }
  }
}

/** The attaching thread's env is going away: from now on no native thread may use its function. */
void envCleanup(void* arg) {
  auto* a = static_cast<Attachment*>(arg);
  std::lock_guard<std::mutex> g(a->dest->mu);
  if (a->dest->current == a) lostThreadLocked(*a->dest);
}

/** The thread-safe function is gone (released, or its env torn down): free the Attachment. */
void finalizeAttachment(napi_env env, void* data, void* /*hint*/) {
  auto* a = static_cast<Attachment*>(data);
  {
    std::lock_guard<std::mutex> g(a->dest->mu);
    if (a->dest->current == a) lostThreadLocked(*a->dest);  // closed without detach: the thread is gone
  }
  napi_remove_env_cleanup_hook(env, envCleanup, a);
  if (a->batchRef != nullptr) napi_delete_reference(env, a->batchRef);
  if (a->bufferRef != nullptr) napi_delete_reference(env, a->bufferRef);
  if (a->idleRef != nullptr) napi_delete_reference(env, a->idleRef);
  delete a;
}

}  // namespace

void Session::createDestinations() {
  dests.reserve(destinationCount);
  for (uint32_t i = 0; i < destinationCount; i++) {
    dests.push_back(std::make_shared<Destination>(weak_from_this(), i));
  }
}

namespace {
/** A new event is queued: wake the attached thread unless it is awake or polling. Caller holds d.mu. */
void notifyLocked(Destination& d) {
  if (d.current != nullptr && !d.wakePending && !d.spinning) wakeLocked(d);
}
}  // namespace

void Session::deliver(uint32_t dest, Event&& e) {
  Destination& d = *dests[dest];
  eventsQueued.fetch_add(1, std::memory_order_relaxed);
  std::lock_guard<std::mutex> g(d.mu);
  d.queue.push_back(std::move(e));
  d.hasEvents.store(true, std::memory_order_release);
  notifyLocked(d);
}

void Session::deliverRequest(const RequestPtr& r, Event&& e) {
  Destination& d = *dests[r->dest];
  eventsQueued.fetch_add(1, std::memory_order_relaxed);
  std::lock_guard<std::mutex> g(d.mu);
  requests.put(r);
  d.queue.push_back(std::move(e));
  d.hasEvents.store(true, std::memory_order_release);
  notifyLocked(d);
}

void Session::deliverRequests(uint32_t dest, RequestPtr* rs, Event* es, size_t n) {
  if (n == 0) return;
  Destination& d = *dests[dest];
  eventsQueued.fetch_add(n, std::memory_order_relaxed);
  std::lock_guard<std::mutex> g(d.mu);
  requests.putMany(rs, n);
  d.queue.insert(d.queue.end(), std::make_move_iterator(es), std::make_move_iterator(es + n));
  d.hasEvents.store(true, std::memory_order_release);
  notifyLocked(d);
}

void Session::detachAll() {
  for (auto& dp : dests) {
    Destination& d = *dp;
    std::lock_guard<std::mutex> g(d.mu);
    if (d.current == nullptr) continue;
    // Under d.mu: the owner's env cleanup hook cannot have run yet, so the function is alive.
    napi_release_threadsafe_function(d.current->tsfn, napi_tsfn_release);
    d.current = nullptr;
    d.wakePending = false;
    d.unattendedSince = std::chrono::steady_clock::now();
  }
}

void Session::clearQueues() {
  for (auto& dp : dests) {
    std::lock_guard<std::mutex> g(dp->mu);
    dp->queue.clear();
  }
}

bool Session::purgeQueued(uint32_t dest, uint64_t reqId) {
  Destination& d = *dests[dest];
  std::lock_guard<std::mutex> g(d.mu);
  auto it = std::remove_if(d.queue.begin(), d.queue.end(), [&](const Event& e) { return e.reqId == reqId; });
  bool found = it != d.queue.end();
  d.queue.erase(it, d.queue.end());
  return found;
}

void Session::requeueUnanswered(Destination& d) {
  std::unordered_map<uint64_t, bool> queued;  // reqId -> its own event is still queued
  for (const Event& e : d.queue) {
    if (e.kind != EventKind::Interrupt) queued[e.reqId] = true;
  }
  std::vector<Event> again;
  requests.forEach([&](const Request& r) {
    if (r.dest != d.index || queued.count(r.id) != 0) return;
    again.push_back(r.toEvent());
    if (r.interrupted) {
      Event i = r.toEvent();
      i.kind = EventKind::Interrupt;
      again.push_back(std::move(i));
    }
  });
  if (again.empty()) return;
  redelivered.fetch_add(again.size(), std::memory_order_relaxed);
  for (Event& e : d.queue) again.push_back(std::move(e));
  // Request order; a request's interrupt right after the request.
  std::stable_sort(again.begin(), again.end(), [](const Event& a, const Event& b) {
    if (a.reqId != b.reqId) return a.reqId < b.reqId;
    return a.kind != EventKind::Interrupt && b.kind == EventKind::Interrupt;
  });
  d.queue.swap(again);
  d.hasEvents.store(true, std::memory_order_release);
}

size_t Session::replyErrBatch(const uint64_t* ids, const int* errs, size_t n) {
  size_t answered = 0;
  for (size_t i = 0; i < n; i++) answered += replyErr(ids[i], errs[i]) ? 1 : 0;
  return answered;
}

bool Session::attached(uint32_t dest) {
  Destination& d = *dests[dest];
  std::lock_guard<std::mutex> g(d.mu);
  return d.current != nullptr;
}

// ---- registry --------------------------------------------------------------------------------

namespace {
// Never destroyed: at process exit, native threads may still hold sessions, and a static
// destructor running under them would be a crash instead of a clean exit.
std::mutex& gRegistryMu = *new std::mutex;
std::map<int, SessionPtr>& gSessions = *new std::map<int, SessionPtr>;
std::atomic<int> gNextSessionId{1};
}  // namespace

int newSessionId() { return gNextSessionId.fetch_add(1); }

int registerSession(const SessionPtr& s) {
  std::lock_guard<std::mutex> g(gRegistryMu);
  gSessions[s->id] = s;
  return s->id;
}

SessionPtr findSession(int id) {
  std::lock_guard<std::mutex> g(gRegistryMu);
  auto it = gSessions.find(id);
  return it == gSessions.end() ? nullptr : it->second;
}

void unregisterSession(int id) {
  std::lock_guard<std::mutex> g(gRegistryMu);
  gSessions.erase(id);
}

std::vector<SessionPtr> allSessions() {
  std::lock_guard<std::mutex> g(gRegistryMu);
  std::vector<SessionPtr> out;
  for (auto& kv : gSessions) out.push_back(kv.second);
  return out;
}

// ---- attach / detach -------------------------------------------------------------------------

void attachDestination(napi_env env, const SessionPtr& s, uint32_t index, napi_value callback, bool flat,
                       napi_value idle) {
  std::shared_ptr<Destination> dest = s->dests.at(index);
  {
    std::lock_guard<std::mutex> g(dest->mu);
    if (dest->current != nullptr) {
      throw std::runtime_error("destination " + std::to_string(index) + " of session " + std::to_string(s->id) +
                               " is already attached; detach it first");
    }
  }
  auto* a = new Attachment;
  a->dest = dest;
  a->env = env;
  a->flat = flat;
  if (idle != nullptr && napi_create_reference(env, idle, 1, &a->idleRef) != napi_ok) {
    delete a;
    throw std::runtime_error("could not keep the idle callback for destination " + std::to_string(index));
  }
  napi_value name;
  napi_create_string_utf8(env, "locksmith.pump", NAPI_AUTO_LENGTH, &name);
  napi_status st = napi_create_threadsafe_function(env, callback, nullptr, name, 0, 1, a, finalizeAttachment, a,
                                                   callJs, &a->tsfn);
  if (st != napi_ok) {
    if (a->idleRef != nullptr) napi_delete_reference(env, a->idleRef);
    delete a;
    throw std::runtime_error("could not create a thread-safe function for destination " + std::to_string(index));
  }
  // Registered after the function, so it runs before Node's own teardown of it (hooks run LIFO,
  // and the function is only freed after every hook has run).
  napi_add_env_cleanup_hook(env, envCleanup, a);
  std::lock_guard<std::mutex> g(dest->mu);
  if (dest->current != nullptr) {  // another thread won a race to attach the same index
    napi_release_threadsafe_function(a->tsfn, napi_tsfn_release);
    throw std::runtime_error("destination " + std::to_string(index) + " of session " + std::to_string(s->id) +
                             " is already attached; detach it first");
  }
  dest->current = a;
  dest->wakePending = false;
  dest->spinning = false;
  if (!dest->queue.empty()) wakeLocked(*dest);
}

bool detachDestination(napi_env env, const SessionPtr& s, uint32_t index) {
  Destination& d = *s->dests.at(index);
  std::lock_guard<std::mutex> g(d.mu);
  Attachment* a = d.current;
  if (a == nullptr) return false;
  if (a->env != env) {
    throw std::runtime_error("destination " + std::to_string(index) + " of session " + std::to_string(s->id) +
                             " was attached by another thread; detach it there");
  }
  napi_release_threadsafe_function(a->tsfn, napi_tsfn_release);
  d.current = nullptr;
  d.wakePending = false;
  d.unattendedSince = std::chrono::steady_clock::now();
  return true;
}

}  // namespace locksmith

namespace locksmith {

void Session::stats(Stats& out) {
  uint64_t delivered = 0, batches = 0, queued = 0, attachedCount = 0;
  for (auto& dp : dests) {
    delivered += dp->delivered.load(std::memory_order_relaxed);
    batches += dp->batches.load(std::memory_order_relaxed);
    std::lock_guard<std::mutex> g(dp->mu);
    queued += dp->queue.size();
    if (dp->current != nullptr) attachedCount++;
  }
  out.numbers.emplace_back("destinations", destinationCount);
  out.numbers.emplace_back("attached", static_cast<double>(attachedCount));
  out.numbers.emplace_back("events", static_cast<double>(eventsQueued.load(std::memory_order_relaxed)));
  out.numbers.emplace_back("delivered", static_cast<double>(delivered));
  out.numbers.emplace_back("batches", static_cast<double>(batches));
  out.numbers.emplace_back("queued", static_cast<double>(queued));
  out.numbers.emplace_back("outstanding", static_cast<double>(requests.size()));
  out.numbers.emplace_back("replied", static_cast<double>(replies.load(std::memory_order_relaxed)));
}

}  // namespace locksmith
