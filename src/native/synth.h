// The synthetic source: native threads that generate setlk / unlock events at full speed through
// the same routing, queues and delivery as a FUSE session, with no kernel in the way (synth.cc).
#pragma once

#include "pump.h"

namespace locksmith {

struct SynthOptions {
  uint32_t destinations = 1;
  uint32_t threads = 1;
  uint32_t files = 1;
  /** Events each thread generates; 0: until synthStop. */
  uint64_t opsPerThread = 0;
  /** Per thread: requests awaiting a reply ('reply' mode) or events not yet drained ('deliver'). */
  uint32_t window = 256;
  /** true: every event is a request answered by replyErr; false: bare delivery, no replies. */
  bool awaitReplies = true;
};

/** Starts the producer threads; the session is registered. */
SessionPtr startSynth(const SynthOptions& o);

}  // namespace locksmith
