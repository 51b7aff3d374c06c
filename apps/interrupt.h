// apps/interrupt.h: Ctrl-C as an orderly stop.
//
// install_interrupt_handler() makes SIGINT (and SIGTERM) set a flag instead of killing the process; the
// long loops (feature extraction, training steps) call check_interrupt() between units of work, which
// throws Interrupted. The exception unwinds like any error, so temporary files are removed by their
// AtomicFile owners and every file already committed (a cached feature file, the last complete epoch's
// checkpoint) stays whole. A second Ctrl-C while unwinding kills the process the default way.
// The command line maps Interrupted to exit code 130, the shell's convention for SIGINT.
#pragma once

#include <stdexcept>
#include <string>

namespace sanf::apps {

struct Interrupted : std::runtime_error {
  using std::runtime_error::runtime_error;
};

void install_interrupt_handler();
bool interrupted();
// Throws Interrupted("interrupted " + where) when a signal has arrived.
void check_interrupt(const std::string& where);
// For tests: pretend a signal arrived (or clear it).
void set_interrupted(bool value);

}  // namespace sanf::apps
