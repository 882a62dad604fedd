// The synthetic source (synth.h). Thread t plays one POSIX owner (owner t + 1): it takes a write
// lock on a file and releases it, file after file, so the events look like a busy FUSE client's.
//
// Flow control keeps memory bounded when JavaScript is slower than the producers:
// - 'reply' mode (awaitReplies): each event is a Request in the session's table, answered by
//   replyErr; a thread stops at `window` unanswered requests until replies come back.
// - 'deliver' mode: no requests, no replies; the producers stop while `window * threads` events
//   are queued but not yet handed to JavaScript. This measures the bare delivery rate.
#include "synth.h"

#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <thread>

namespace locksmith {
namespace {

using Clock = std::chrono::steady_clock;

class SynthSession : public Session {
 public:
  SynthSession(int id, const SynthOptions& o) : Session(id, o.destinations), o_(o) {}
  ~SynthSession() override { close(); }

  void start();
  bool replyErr(uint64_t reqId, int err) override;
  void close() override;
  void onDrained(Destination& dest, size_t n) override;
  void stats(Stats& out) override;

 private:
  struct Producer {
    std::mutex mu;
    std::condition_variable cv;
    uint64_t outstanding = 0;
    std::atomic<uint64_t> generated{0};
  };
  void run(uint32_t t);
  void noteProgress();
  uint64_t generatedTotal() const;

  const SynthOptions o_;
  std::vector<Path> paths_;
  std::vector<uint32_t> routes_;
  std::vector<std::unique_ptr<Producer>> producers_;
  std::vector<std::thread> threads_;
  std::atomic<bool> stop_{false};
  std::atomic<uint32_t> running_{0};
  std::atomic<uint64_t> errors_{0};

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

void SynthSession::start() {
  for (uint32_t f = 0; f < o_.files; f++) {
    paths_.push_back(std::make_shared<const std::string>("synth:" + std::to_string(f)));
    routes_.push_back(routeOf(*paths_.back()));
  }
  for (uint32_t t = 0; t < o_.threads; t++) producers_.push_back(std::make_unique<Producer>());
  started_ = Clock::now();
  running_ = o_.threads;
  for (uint32_t t = 0; t < o_.threads; t++) threads_.emplace_back([this, t] { run(t); });
}

void SynthSession::run(uint32_t t) {
  Producer& p = *producers_[t];
  const uint64_t window = o_.window;
  const uint64_t flowLimit = window * o_.threads;
  const int32_t pid = static_cast<int32_t>(getpid());
  for (uint64_t i = 0; o_.opsPerThread == 0 || i < o_.opsPerThread; i++) {
    if (o_.awaitReplies) {
      std::unique_lock<std::mutex> l(p.mu);
      p.cv.wait(l, [&] { return stop_.load() || p.outstanding < window; });
      if (stop_.load()) break;
      p.outstanding++;
    } else {
      std::unique_lock<std::mutex> l(flowMu_);
      flowCv_.wait(l, [&] { return stop_.load() || undrained_ < flowLimit; });
      if (stop_.load()) break;
      undrained_++;
    }
    // Pairs of events on one file: lock, then unlock; thread t walks the files from its own start.
    const uint64_t pair = i / 2;
    const uint32_t f = static_cast<uint32_t>((t + pair * o_.threads) % o_.files);
    const uint64_t start = (pair % 16) * 4096;
    Event e;
    e.kind = EventKind::Setlk;
    e.type = (i % 2 == 0) ? 1 : 2;  // F_WRLCK, then F_UNLCK
    e.sleep = false;
    e.pid = pid;
    e.reqId = nextReqId.fetch_add(1, std::memory_order_relaxed);
    e.fh = t;
    e.owner = t + 1;
    e.start = start;
    e.end = start + 4095;
    e.path = paths_[f];
    if (o_.awaitReplies) {
      auto r = std::make_shared<Request>();
      r->id = e.reqId;
      r->kind = EventKind::Setlk;
      r->dest = routes_[f];
      r->producer = t;
      r->session = this;
      r->type = e.type;
      r->pid = e.pid;
      r->fh = e.fh;
      r->owner = e.owner;
      r->start = e.start;
      r->end = e.end;
      r->path = e.path;
      deliverRequest(r, std::move(e));
    } else {
      deliver(routes_[f], std::move(e));
    }
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
    complete = requests.size() == 0;
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

bool SynthSession::replyErr(uint64_t reqId, int err) {
  RequestPtr r = requests.take(reqId);
  if (!r) return false;
  replies.fetch_add(1, std::memory_order_relaxed);
  if (err != 0) errors_.fetch_add(1, std::memory_order_relaxed);
  Producer& p = *producers_[r->producer];
  {
    std::lock_guard<std::mutex> g(p.mu);
    p.outstanding--;
  }
  p.cv.notify_one();
  if (running_.load(std::memory_order_relaxed) == 0) noteProgress();
  return true;
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
  requests.takeAll();
  std::lock_guard<std::mutex> g(timeMu_);
  if (!done_) {
    done_ = true;
    finished_ = Clock::now();
  }
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
}

}  // namespace

SessionPtr startSynth(const SynthOptions& o) {
  auto s = std::make_shared<SynthSession>(newSessionId(), o);
  s->createDestinations();
  registerSession(s);
  s->start();
  return s;
}

}  // namespace locksmith
