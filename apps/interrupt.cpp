// apps/interrupt.cpp: a signal handler that only sets a flag (the one thing a handler may safely do).
#include "apps/interrupt.h"

#include <csignal>

namespace sanf::apps {

namespace {
volatile std::sig_atomic_t g_flag = 0;

extern "C" void on_signal(int sig) {
  g_flag = 1;
  std::signal(sig, SIG_DFL);  // a second signal terminates at once
}
}  // namespace

void install_interrupt_handler() {
  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);
}

bool interrupted() { return g_flag != 0; }

void set_interrupted(bool value) { g_flag = value ? 1 : 0; }

void check_interrupt(const std::string& where) {
  if (g_flag != 0) throw Interrupted("interrupted " + where);
}

}  // namespace sanf::apps
