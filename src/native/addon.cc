// The JavaScript surface of the pump (index.ts documents each function). One Napi::Addon instance
// per thread that loads the module; sessions are process-wide, so any thread may answer requests,
// and each thread attaches its own destinations.
#include <napi.h>

#include <cmath>
#include <ctime>
#include <map>
#include <stdexcept>

#include "fuse_session.h"
#include "pump.h"
#include "synth.h"

using namespace locksmith;

namespace {

[[noreturn]] void typeError(Napi::Env env, const std::string& m) { throw Napi::TypeError::New(env, m); }

double integerOf(Napi::Env env, Napi::Value v, const std::string& name, double min, double max) {
  if (!v.IsNumber()) typeError(env, name + " must be an integer from " + std::to_string(static_cast<long long>(min)) +
                                        " to " + std::to_string(static_cast<long long>(max)));
  double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= min && d <= max) || std::floor(d) != d) {
    typeError(env, name + " must be an integer from " + std::to_string(static_cast<long long>(min)) + " to " +
                       std::to_string(static_cast<long long>(max)));
  }
  return d;
}

/** A non-negative 64-bit value given as a bigint or a safe integer. */
uint64_t u64Of(Napi::Env env, Napi::Value v, const std::string& name) {
  if (v.IsBigInt()) {
    bool lossless = false;
    int64_t i = v.As<Napi::BigInt>().Int64Value(&lossless);
    if (!lossless || i < 0) typeError(env, name + " must be a bigint from 0 to 2^63-1");
    return static_cast<uint64_t>(i);
  }
  return static_cast<uint64_t>(integerOf(env, v, name, 0, 9007199254740991.0));
}

uint32_t u32Prop(Napi::Env env, Napi::Object o, const char* name, uint32_t def, uint32_t min, uint32_t max) {
  Napi::Value v = o.Get(name);
  if (v.IsUndefined()) return def;
  return static_cast<uint32_t>(integerOf(env, v, std::string("options.") + name, min, max));
}

double ratioProp(Napi::Env env, Napi::Object o, const char* name, double def) {
  Napi::Value v = o.Get(name);
  if (v.IsUndefined()) return def;
  double d = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : -1;
  if (!(d >= 0 && d <= 1)) typeError(env, std::string("options.") + name + " must be a number from 0 to 1");
  return d;
}

std::string stringProp(Napi::Env env, Napi::Object o, const char* name) {
  Napi::Value v = o.Get(name);
  if (!v.IsString() || v.As<Napi::String>().Utf8Value().empty()) {
    typeError(env, std::string("options.") + name + " must be a non-empty string");
  }
  return v.As<Napi::String>().Utf8Value();
}

Napi::Object optionsArg(const Napi::CallbackInfo& info) {
  if (!info[0].IsObject()) typeError(info.Env(), "options must be an object");
  return info[0].As<Napi::Object>();
}

SessionPtr sessionArg(const Napi::CallbackInfo& info, bool required = true) {
  int id = static_cast<int>(integerOf(info.Env(), info[0], "sessionId", 1, 2147483647.0));
  SessionPtr s = findSession(id);
  if (!s && required) {
    throw Napi::Error::New(info.Env(), "there is no session " + std::to_string(id) + ": it was unmounted or stopped");
  }
  return s;
}

/** A Float64Array or Int32Array argument, read in place. */
struct TypedNumbers {
  napi_typedarray_type type = napi_float64_array;
  void* data = nullptr;
  size_t length = 0;
  double at(size_t i) const {
    return type == napi_float64_array ? static_cast<const double*>(data)[i] : static_cast<const int32_t*>(data)[i];
  }
};

TypedNumbers typedNumbers(Napi::Env env, Napi::Value v, const std::string& name) {
  TypedNumbers t;
  napi_value ab = nullptr;
  size_t offset = 0;
  if (!v.IsTypedArray() ||
      napi_get_typedarray_info(env, v, &t.type, &t.length, &t.data, &ab, &offset) != napi_ok ||
      (t.type != napi_float64_array && t.type != napi_int32_array)) {
    typeError(env, name + " must be a Float64Array or an Int32Array");
  }
  return t;
}

Napi::Object statsObject(Napi::Env env, const Stats& st) {
  Napi::Object o = Napi::Object::New(env);
  for (auto& kv : st.numbers) o.Set(kv.first, Napi::Number::New(env, kv.second));
  for (auto& kv : st.flags) o.Set(kv.first, Napi::Boolean::New(env, kv.second));
  for (auto& kv : st.strings) o.Set(kv.first, Napi::String::New(env, kv.second));
  return o;
}

/** Turns native failures into JavaScript errors: invalid_argument is a TypeError. */
template <class F>
Napi::Value guarded(Napi::Env env, F&& f) {
  try {
    return f();
  } catch (const Napi::Error&) {
    throw;
  } catch (const std::invalid_argument& e) {
    throw Napi::TypeError::New(env, e.what());
  } catch (const std::exception& e) {
    throw Napi::Error::New(env, e.what());
  }
}

class Addon : public Napi::Addon<Addon> {
 public:
  Addon(Napi::Env env, Napi::Object exports) {
    DefineAddon(exports, {
                             InstanceValue("hasFuse", Napi::Boolean::New(env, kHaveFuse), napi_enumerable),
                             InstanceMethod("mount", &Addon::Mount, napi_enumerable),
                             InstanceMethod("attach", &Addon::Attach, napi_enumerable),
                             InstanceMethod("detach", &Addon::Detach, napi_enumerable),
                             InstanceMethod("attachFlat", &Addon::AttachFlat, napi_enumerable),
                             InstanceMethod("replyErr", &Addon::ReplyErr, napi_enumerable),
                             InstanceMethod("replyBatch", &Addon::ReplyBatch, napi_enumerable),
                             InstanceMethod("replyLockBatch", &Addon::ReplyLockBatch, napi_enumerable),
                             InstanceMethod("synthLog", &Addon::SynthLog, napi_enumerable),
                             InstanceMethod("replyLock", &Addon::ReplyLock, napi_enumerable),
                             InstanceMethod("unmount", &Addon::Unmount, napi_enumerable),
                             InstanceMethod("markLost", &Addon::MarkLost, napi_enumerable),
                             InstanceMethod("setLease", &Addon::SetLease, napi_enumerable),
                             InstanceMethod("sessionInfo", &Addon::SessionInfo, napi_enumerable),
                             InstanceMethod("synthStart", &Addon::SynthStart, napi_enumerable),
                             InstanceMethod("synthStats", &Addon::SynthStats, napi_enumerable),
                             InstanceMethod("synthStop", &Addon::SynthStop, napi_enumerable),
                             InstanceMethod("routeOf", &Addon::RouteOf, napi_enumerable),
                         });
  }

 private:
  Napi::Value Mount(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Napi::Object o = optionsArg(info);
    MountOptions m;
    m.backing = stringProp(env, o, "backing");
    m.mountpoint = stringProp(env, o, "mountpoint");
    m.destinations = u32Prop(env, o, "destinations", 1, 1, 1024);
    m.threads = u32Prop(env, o, "threads", 4, 1, 64);
    m.graceMs = u32Prop(env, o, "graceMs", 2000, 0, 86400000);
    m.spinUs = u32Prop(env, o, "spinUs", m.spinUs, 0, 100000);
    Napi::Value locks = o.Get("locks");
    if (!locks.IsUndefined() && !locks.IsBoolean()) throw Napi::TypeError::New(env, "locks must be a boolean");
    m.locks = locks.IsUndefined() || locks.As<Napi::Boolean>().Value();
    Napi::Value sharedKeys = o.Get("sharedKeys");
    if (!sharedKeys.IsUndefined() && !sharedKeys.IsBoolean()) throw Napi::TypeError::New(env, "sharedKeys must be a boolean");
    m.sharedKeys = !sharedKeys.IsUndefined() && sharedKeys.As<Napi::Boolean>().Value();
    return guarded(env, [&] { return Napi::Number::New(env, mountFuse(m)->id); });
  }

  Napi::Value Attach(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    SessionPtr s = sessionArg(info);
    uint32_t index = static_cast<uint32_t>(integerOf(env, info[1], "index", 0, s->destinationCount - 1.0));
    if (!info[2].IsFunction()) typeError(env, "callback must be a function");
    return guarded(env, [&] {
      attachDestination(env, s, index, info[2]);
      return env.Undefined();
    });
  }

  Napi::Value AttachFlat(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    SessionPtr s = sessionArg(info);
    uint32_t index = static_cast<uint32_t>(integerOf(env, info[1], "index", 0, s->destinationCount - 1.0));
    if (!info[2].IsFunction()) typeError(env, "callback must be a function");
    if (!info[3].IsUndefined() && !info[3].IsFunction()) typeError(env, "idle must be a function");
    return guarded(env, [&] {
      attachDestination(env, s, index, info[2], true, info[3].IsUndefined() ? nullptr : static_cast<napi_value>(info[3]));
      return env.Undefined();
    });
  }

  Napi::Value Detach(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    SessionPtr s = sessionArg(info, false);
    if (!s) return Napi::Boolean::New(env, false);
    uint32_t index = static_cast<uint32_t>(integerOf(env, info[1], "index", 0, s->destinationCount - 1.0));
    return guarded(env, [&] { return Napi::Boolean::New(env, detachDestination(env, s, index)); });
  }

  Napi::Value ReplyErr(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    SessionPtr s = sessionArg(info, false);
    uint64_t reqId = u64Of(env, info[1], "reqId");
    int err = static_cast<int>(integerOf(env, info[2], "errno", -4095, 4095));
    if (!s) return Napi::Boolean::New(env, false);
    return guarded(env, [&] { return Napi::Boolean::New(env, s->replyErr(reqId, err < 0 ? -err : err)); });
  }

  /** replyBatch(sessionId, Float64Array | Int32Array of [reqId, errno] pairs, count) -> answered. */
  Napi::Value ReplyBatch(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    SessionPtr s = sessionArg(info, false);
    TypedNumbers pairs = typedNumbers(env, info[1], "pairs");
    size_t count = static_cast<size_t>(integerOf(env, info[2], "count", 0, pairs.length / 2));
    thread_local std::vector<uint64_t> ids;
    thread_local std::vector<int> errs;
    ids.resize(count);
    errs.resize(count);
    for (size_t i = 0; i < count; i++) {
      double id = pairs.at(2 * i), err = pairs.at(2 * i + 1);
      if (!(id >= 0 && id <= 9007199254740991.0) || std::floor(id) != id) {
        typeError(env, "replyBatch: pairs[" + std::to_string(2 * i) + "] (reqId) must be a non-negative integer");
      }
      if (!(err >= -4095 && err <= 4095) || std::floor(err) != err) {
        typeError(env, "replyBatch: pairs[" + std::to_string(2 * i + 1) + "] (errno) must be an integer from -4095 to 4095");
      }
      ids[i] = static_cast<uint64_t>(id);
      errs[i] = err < 0 ? static_cast<int>(-err) : static_cast<int>(err);
    }
    if (!s) return Napi::Number::New(env, 0);
    return guarded(env, [&] { return Napi::Number::New(env, static_cast<double>(s->replyErrBatch(ids.data(), errs.data(), count))); });
  }

  /** replyLockBatch(sessionId, Float64Array of [reqId, type, start, end, pid] quintuples, count) -> answered. */
  Napi::Value ReplyLockBatch(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    SessionPtr s = sessionArg(info, false);
    TypedNumbers q = typedNumbers(env, info[1], "locks");
    if (q.type != napi_float64_array) typeError(env, "replyLockBatch needs a Float64Array");
    size_t count = static_cast<size_t>(integerOf(env, info[2], "count", 0, q.length / 5));
    struct L {
      uint64_t id, start, end;
      int type, lockPid;
    };
    std::vector<L> ls(count);
    for (size_t i = 0; i < count; i++) {
      const double* r = static_cast<const double*>(q.data) + 5 * i;
      const std::string at = "replyLockBatch: entry " + std::to_string(i);
      auto exact = [&](double v) { return v >= 0 && v <= 9007199254740991.0 && std::floor(v) == v; };
      if (!exact(r[0])) typeError(env, at + ": reqId must be a non-negative integer");
      if (!(r[1] == 0 || r[1] == 1 || r[1] == 2)) typeError(env, at + ": type must be 0, 1 or 2");
      if (!exact(r[2])) typeError(env, at + ": start must be a non-negative integer below 2^53 (use replyLock beyond)");
      if (!(exact(r[3]) || r[3] == INFINITY)) typeError(env, at + ": end must be an integer below 2^53 or Infinity");
      if (!(r[4] >= -2147483648.0 && r[4] <= 2147483647.0) || std::floor(r[4]) != r[4]) typeError(env, at + ": pid must be an int32");
      L l{static_cast<uint64_t>(r[0]), static_cast<uint64_t>(r[2]), r[3] == INFINITY ? OFFSET_MAX : static_cast<uint64_t>(r[3]),
          static_cast<int>(r[1]), static_cast<int>(r[4])};
      if (l.type != 2 && l.start > l.end) typeError(env, at + ": start must be <= end");
      ls[i] = l;
    }
    if (!s) return Napi::Number::New(env, 0);
    size_t answered = 0;
    std::string firstError;
    for (const L& l : ls) {
      try {
        answered += s->replyLock(l.id, l.type, l.start, l.end, l.lockPid) ? 1 : 0;
      } catch (const std::exception& e) {
        if (firstError.empty()) firstError = e.what();
      }
    }
    if (!firstError.empty()) typeError(env, firstError + " (the other entries were answered)");
    return Napi::Number::New(env, static_cast<double>(answered));
  }

  Napi::Value ReplyLock(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    SessionPtr s = sessionArg(info, false);
    uint64_t reqId = u64Of(env, info[1], "reqId");
    int type = static_cast<int>(integerOf(env, info[2], "type", 0, 2));
    uint64_t start = u64Of(env, info[3], "start");
    uint64_t end = u64Of(env, info[4], "end");
    int lockPid = static_cast<int>(integerOf(env, info[5], "pid", -2147483648.0, 2147483647.0));
    if (type != 2 && !(start <= end && end <= OFFSET_MAX)) {
      typeError(env, "replyLock needs start <= end <= 2^63-1 (the kernel turns anything else into EIO)");
    }
    if (!s) return Napi::Boolean::New(env, false);
    return guarded(env, [&] { return Napi::Boolean::New(env, s->replyLock(reqId, type, start, end, lockPid)); });
  }

  Napi::Value Unmount(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    SessionPtr s = sessionArg(info, false);
    if (!s) return Napi::Boolean::New(env, false);
    if (!s->isFuse()) typeError(env, "session " + std::to_string(s->id) + " is a synthetic source: stop it with synthStop");
    return guarded(env, [&] {
      // The lock requests the unmount answered itself (still waiting, or arriving meanwhile): read
      // here, as the session is unregistered right after.
      uint64_t answered = unmountFuse(*s);
      unregisterSession(s->id);
      leases_.erase(s->id);  // the session's threads are joined: nothing reads the lease any more
      return Napi::Number::New(env, static_cast<double>(answered));
    });
  }

  Napi::Value MarkLost(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    SessionPtr s = sessionArg(info);
    uint64_t fh = static_cast<uint64_t>(integerOf(env, info[1], "fileHandle", 0, 9007199254740991.0));
    return guarded(env, [&] {
      s->markLost(fh);
      return env.Undefined();
    });
  }

  /**
   * setLease(sessionId, lease: a Float64Array [until, epoch, offset] over a SharedArrayBuffer,
   * nowMs: performance.timeOrigin + performance.now() just before the call). Held until the unmount.
   */
  Napi::Value SetLease(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    SessionPtr s = sessionArg(info);
    if (!s->isFuse()) typeError(env, "session " + std::to_string(s->id) + " is a synthetic source: it has no lease");
    TypedNumbers t = typedNumbers(env, info[1], "lease");
    if (t.type != napi_float64_array || t.length < 3 || reinterpret_cast<uintptr_t>(t.data) % alignof(double) != 0) {
      typeError(env, "lease must be a Float64Array of 3 elements");
    }
    if (!info[2].IsNumber() || !std::isfinite(info[2].As<Napi::Number>().DoubleValue())) typeError(env, "nowMs must be a finite number");
    // Set once: the session's threads may be reading the first one.
    if (leases_.count(s->id) != 0) typeError(env, "session " + std::to_string(s->id) + " already has a lease: it is set once");
    double nowMs = info[2].As<Napi::Number>().DoubleValue();
    return guarded(env, [&] {
      struct timespec ts;
      clock_gettime(CLOCK_MONOTONIC, &ts);
      double mono = static_cast<double>(ts.tv_sec) * 1e3 + static_cast<double>(ts.tv_nsec) / 1e6;
      leases_[s->id] = Napi::Persistent(info[1].As<Napi::Object>());
      s->setLease(static_cast<const double*>(t.data), nowMs - mono);
      return env.Undefined();
    });
  }

  Napi::Value SessionInfo(const Napi::CallbackInfo& info) {
    SessionPtr s = sessionArg(info);
    Stats st;
    s->stats(st);
    Napi::Object o = statsObject(info.Env(), st);
    o.Set("kind", Napi::String::New(info.Env(), s->isFuse() ? "fuse" : "synth"));
    return o;
  }

  Napi::Value SynthStart(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Napi::Object o = optionsArg(info);
    SynthOptions so;
    so.destinations = u32Prop(env, o, "destinations", 1, 1, 1024);
    so.threads = u32Prop(env, o, "threads", 1, 1, 256);
    so.files = u32Prop(env, o, "files", 1, 1, 1u << 24);
    Napi::Value ops = o.Get("opsPerThread");
    so.opsPerThread = ops.IsUndefined() ? 0 : static_cast<uint64_t>(integerOf(env, ops, "options.opsPerThread", 0, 1e15));
    so.window = u32Prop(env, o, "window", 256, 1, 1u << 20);
    Napi::Value mode = o.Get("mode");
    if (!mode.IsUndefined()) {
      std::string m = mode.IsString() ? mode.As<Napi::String>().Utf8Value() : "";
      if (m != "reply" && m != "deliver") typeError(env, "options.mode must be 'reply' or 'deliver'");
      so.awaitReplies = m == "reply";
    }
    Napi::Value pattern = o.Get("pattern");
    if (!pattern.IsUndefined()) {
      std::string pn = pattern.IsString() ? pattern.As<Napi::String>().Utf8Value() : "";
      if (pn != "pairs" && pn != "random") typeError(env, "options.pattern must be 'pairs' or 'random'");
      so.pattern = pn == "random" ? SynthPattern::Random : SynthPattern::Pairs;
    }
    Napi::Value seed = o.Get("seed");
    if (!seed.IsUndefined()) so.seed = u64Of(env, seed, "options.seed");
    so.owners = u32Prop(env, o, "owners", 1, 1, 1u << 16);
    so.spinUs = u32Prop(env, o, "spinUs", 0, 0, 100000);
    Napi::Value space = o.Get("rangeSpace");
    if (!space.IsUndefined()) so.rangeSpace = static_cast<uint64_t>(integerOf(env, space, "options.rangeSpace", 1, 9007199254740991.0));
    so.readRatio = ratioProp(env, o, "readRatio", so.readRatio);
    so.sleepRatio = ratioProp(env, o, "sleepRatio", so.sleepRatio);
    so.unlockRatio = ratioProp(env, o, "unlockRatio", so.unlockRatio);
    Napi::Value record = o.Get("record");
    if (!record.IsUndefined() && !record.IsBoolean()) typeError(env, "options.record must be a boolean");
    so.record = !record.IsUndefined() && record.As<Napi::Boolean>().Value();
    if (so.pattern == SynthPattern::Random && !so.awaitReplies) typeError(env, "pattern 'random' needs mode 'reply'");
    if (so.record && so.pattern != SynthPattern::Random) typeError(env, "record needs pattern 'random'");
    return guarded(env, [&] { return Napi::Number::New(env, startSynth(so)->id); });
  }

  Napi::Value SynthStats(const Napi::CallbackInfo& info) { return SessionInfo(info); }

  Napi::Value SynthStop(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    SessionPtr s = sessionArg(info);
    if (s->isFuse()) typeError(env, "session " + std::to_string(s->id) + " is a FUSE session: unmount it");
    s->close();
    synthKeepLog(s);
    unregisterSession(s->id);
    Stats st;
    s->stats(st);
    Napi::Object o = statsObject(env, st);
    o.Set("kind", Napi::String::New(env, "synth"));
    return o;
  }

  /** synthLog(sessionId) -> SynthLog (index.ts), or null if the session records nothing. */
  Napi::Value SynthLog(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    int id = static_cast<int>(integerOf(env, info[0], "sessionId", 1, 2147483647.0));
    std::vector<SynthRecord> recs;
    if (!synthLog(id, recs)) return env.Null();
    const size_t n = recs.size();
    auto seq = Napi::Float64Array::New(env, n), reqId = Napi::Float64Array::New(env, n);
    auto start = Napi::Float64Array::New(env, n), end = Napi::Float64Array::New(env, n);
    auto owner = Napi::Uint32Array::New(env, n), file = Napi::Uint32Array::New(env, n);
    auto err = Napi::Int32Array::New(env, n);
    auto rec = Napi::Uint8Array::New(env, n), type = Napi::Uint8Array::New(env, n), sleep = Napi::Uint8Array::New(env, n);
    for (size_t i = 0; i < n; i++) {
      const SynthRecord& r = recs[i];
      seq[i] = static_cast<double>(r.seq);
      reqId[i] = static_cast<double>(r.reqId);
      start[i] = static_cast<double>(r.start);
      end[i] = r.end == OFFSET_MAX ? INFINITY : static_cast<double>(r.end);
      owner[i] = r.owner;
      file[i] = r.file;
      err[i] = r.err;
      rec[i] = r.rec;
      type[i] = r.type;
      sleep[i] = r.sleep;
    }
    Napi::Object o = Napi::Object::New(env);
    o.Set("count", Napi::Number::New(env, static_cast<double>(n)));
    o.Set("seq", seq);
    o.Set("rec", rec);
    o.Set("reqId", reqId);
    o.Set("owner", owner);
    o.Set("file", file);
    o.Set("type", type);
    o.Set("sleep", sleep);
    o.Set("start", start);
    o.Set("end", end);
    o.Set("errno", err);
    return o;
  }

  Napi::Value RouteOf(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!info[0].IsString()) typeError(env, "path must be a string");
    uint32_t n = static_cast<uint32_t>(integerOf(env, info[1], "destinations", 1, 4294967295.0));
    return Napi::Number::New(env, fnv1a32(info[0].As<Napi::String>().Utf8Value()) % n);
  }

  /** Each FUSE session's lease array (SetLease), kept alive until its unmount. */
  std::map<int, Napi::ObjectReference> leases_;
};

}  // namespace

NODE_API_ADDON(Addon)
