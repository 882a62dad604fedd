// The synthetic source: native threads that generate setlk / unlock events at full speed through
// the same routing, queues and delivery as a FUSE session, with no kernel in the way (synth.cc).
#pragma once

#include "pump.h"

namespace locksmith {

enum class SynthPattern : uint8_t {
  /** Thread t is owner t + 1: write lock, then unlock, file after file (benchmarks). */
  Pairs,
  /** Seeded random traffic of `owners` owners per thread, each with one request at a time (stress). */
  Random,
};

struct SynthOptions {
  uint32_t destinations = 1;
  uint32_t threads = 1;
  uint32_t files = 1;
  /** Events each thread generates (Random: split among its owners, plus closing unlocks); 0: until synthStop. */
  uint64_t opsPerThread = 0;
  /** Per thread: requests awaiting a reply ('reply' mode) or events not yet drained ('deliver'). */
  uint32_t window = 256;
  /** true: every event is a request answered by replyErr; false: bare delivery, no replies. */
  bool awaitReplies = true;
  SynthPattern pattern = SynthPattern::Pairs;
  // Pattern Random
  uint64_t seed = 1;
  uint32_t owners = 1;
  uint64_t rangeSpace = 4096;
  double readRatio = 0.5;
  double sleepRatio = 0.1;
  double unlockRatio = 0.35;
  /** Keep the log of starts and ends (synthLog). */
  bool record = false;
  /** Session::spinUs (default 0: the synthetic source is never idle long enough to need it). */
  uint32_t spinUs = 0;
};

/** One record of a recording session's log (synthLog). */
struct SynthRecord {
  uint64_t seq = 0;
  uint64_t reqId = 0;
  uint64_t start = 0;
  uint64_t end = 0;
  uint32_t owner = 0;
  uint32_t file = 0;
  int32_t err = 0;
  uint8_t rec = 0;  // 0 start, 1 end (reply arrived), 2 cancelled (session closed first)
  uint8_t type = 0;
  uint8_t sleep = 0;
};

/** Starts the producer threads; the session is registered. */
SessionPtr startSynth(const SynthOptions& o);

/**
 * The log of a recording session, sorted by seq: a copy while it runs; after synthStop, the final
 * log once (it is then freed). False if there is no such log.
 */
bool synthLog(int sessionId, std::vector<SynthRecord>& out);

/** Called by synthStop: keeps the stopped session's final log for one synthLog call. */
void synthKeepLog(const SessionPtr& s);

}  // namespace locksmith
