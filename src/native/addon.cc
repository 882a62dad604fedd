// The JavaScript surface of the pump (index.ts documents each function). One Napi::Addon instance
// per thread that loads the module; sessions are process-wide, so any thread may answer requests,
// and each thread attaches its own destinations.
#include <napi.h>

#include <cmath>
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
                             InstanceMethod("replyErr", &Addon::ReplyErr, napi_enumerable),
                             InstanceMethod("replyLock", &Addon::ReplyLock, napi_enumerable),
                             InstanceMethod("unmount", &Addon::Unmount, napi_enumerable),
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
    Napi::Value locks = o.Get("locks");
    if (!locks.IsUndefined() && !locks.IsBoolean()) throw Napi::TypeError::New(env, "locks must be a boolean");
    m.locks = locks.IsUndefined() || locks.As<Napi::Boolean>().Value();
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

  Napi::Value ReplyLock(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    SessionPtr s = sessionArg(info, false);
    uint64_t reqId = u64Of(env, info[1], "reqId");
    int type = static_cast<int>(integerOf(env, info[2], "type", 0, 2));
    uint64_t start = u64Of(env, info[3], "start");
    uint64_t end = u64Of(env, info[4], "end");
    int pid = static_cast<int>(integerOf(env, info[5], "pid", -2147483648.0, 2147483647.0));
    if (type != 2 && !(start <= end && end <= OFFSET_MAX)) {
      typeError(env, "replyLock needs start <= end <= 2^63-1 (the kernel turns anything else into EIO)");
    }
    if (!s) return Napi::Boolean::New(env, false);
    return guarded(env, [&] { return Napi::Boolean::New(env, s->replyLock(reqId, type, start, end, pid)); });
  }

  Napi::Value Unmount(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    SessionPtr s = sessionArg(info, false);
    if (!s) return Napi::Boolean::New(env, false);
    if (!s->isFuse()) typeError(env, "session " + std::to_string(s->id) + " is a synthetic source: stop it with synthStop");
    return guarded(env, [&] {
      s->close();
      unregisterSession(s->id);
      return Napi::Boolean::New(env, true);
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
    return guarded(env, [&] { return Napi::Number::New(env, startSynth(so)->id); });
  }

  Napi::Value SynthStats(const Napi::CallbackInfo& info) { return SessionInfo(info); }

  Napi::Value SynthStop(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    SessionPtr s = sessionArg(info);
    if (s->isFuse()) typeError(env, "session " + std::to_string(s->id) + " is a FUSE session: unmount it");
    s->close();
    unregisterSession(s->id);
    Stats st;
    s->stats(st);
    Napi::Object o = statsObject(env, st);
    o.Set("kind", Napi::String::New(env, "synth"));
    return o;
  }

  Napi::Value RouteOf(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!info[0].IsString()) typeError(env, "path must be a string");
    uint32_t n = static_cast<uint32_t>(integerOf(env, info[1], "destinations", 1, 4294967295.0));
    return Napi::Number::New(env, fnv1a32(info[0].As<Napi::String>().Utf8Value()) % n);
  }
};

}  // namespace

NODE_API_ADDON(Addon)
