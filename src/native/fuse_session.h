// A FUSE low-level session: a passthrough of a backing directory (passthrough.cc) whose lock
// traffic (getlk, setlk, flock, flush, release, interrupts) becomes events for JavaScript
// (fuse_session.cc).
#pragma once

#include <string>

#include "pump.h"

#ifndef LOCKSMITH_HAVE_FUSE
#define LOCKSMITH_HAVE_FUSE 0
#endif

namespace locksmith {

constexpr bool kHaveFuse = LOCKSMITH_HAVE_FUSE != 0;

struct MountOptions {
  std::string backing;
  std::string mountpoint;
  uint32_t destinations = 1;
  uint32_t threads = 4;
  /**
   * How long requests that would otherwise hold a process unkillable wait for a thread to attach
   * to their destination: after that, flush and release are completed here (their events stay
   * queued so the next thread still drops the locks) and non-blocking lock requests get ENOLCK
   * (their events are withdrawn). Waiting lock requests stay queued: they can be interrupted.
   */
  uint32_t graceMs = 2000;
  /**
   * Negotiate FUSE_CAP_POSIX_LOCKS and FUSE_CAP_FLOCK_LOCKS (the default). False leaves both
   * unwanted, so the kernel decides locks on the mount itself: bench:fuse's kernel reference.
   */
  bool locks = true;
  /** Session::spinUs: how long a receiving thread polls for the next request after a callback. */
  uint32_t spinUs = 200;
  /** Passthrough::sharedKeys: files keyed by inode number alone, for a lock space shared across nodes. */
  bool sharedKeys = false;
};

/**
 * Mounts the passthrough and starts its libfuse loop; the session is registered. Throws
 * std::runtime_error whose message is one sentence naming what is wrong (no /dev/fuse, no
 * permission, missing or busy mountpoint, missing backing directory, built without FUSE).
 */
SessionPtr mountFuse(const MountOptions& o);

/**
 * Closes the FUSE session `s` (Session::close: answers what is outstanding, unmounts, joins the
 * threads) and returns how many lock requests (getlk, setlk, setlkw, flock) it answered itself:
 * those still unanswered when it closed, and those that arrived while it closed. A second call
 * closes nothing more and returns the same count. 0 for a session that is not a FUSE mount's.
 */
uint64_t unmountFuse(Session& s);

}  // namespace locksmith
