#include "ctmq/common/preemption.h"

#include <csignal>
#include <cstdlib>
#include <cstring>

#include "ctmq/common/log.h"

namespace ctmq {
namespace {
volatile std::sig_atomic_t g_signal = 0;

extern "C" void on_preemption_signal(int signal) { g_signal = signal; }
}  // namespace

void install_preemption_handlers() {
  struct sigaction action {};
  action.sa_handler = on_preemption_signal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART;  // interrupted system calls resume; the loop polls the flag
  sigaction(SIGUSR1, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);
  sigset_t held;
  sigemptyset(&held);
  sigaddset(&held, SIGUSR1);
  sigaddset(&held, SIGTERM);
  sigprocmask(SIG_UNBLOCK, &held, nullptr);  // a signal pending since the launcher arrives now
}

bool preemption_requested() { return g_signal != 0; }
int preemption_signal() { return g_signal; }
void reset_preemption_request() { g_signal = 0; }

void signal_at_test_point(const char* point) {
  const char* wanted = std::getenv("CTMQ_TEST_SIGNAL_AT");
  if (wanted && std::strcmp(wanted, point) == 0) {
    CTMQ_WARN("test: sending SIGUSR1 to this process at point '" << point << "'");
    std::raise(SIGUSR1);
  }
}

}  // namespace ctmq
