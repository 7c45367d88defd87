/* The front of ctmq-train and ctmq-eval: holds the preemption signals until
 * the program can honour them.
 *
 * Loading LibTorch takes 0.05-0.5 s before main() runs; a SIGUSR1 or SIGTERM
 * in that window used to kill the process with the default action (exit
 * 138/143, empty log), so the batch script neither requeued nor resumed. This
 * launcher links only libc: it blocks SIGUSR1 and SIGTERM (a blocked signal
 * stays pending and the mask survives execve) and executes the real program,
 * CTMQ_PROGRAM-main in the launcher's own directory, with the same arguments.
 * The real program installs its handlers first thing in main() and unblocks
 * them (ctmq/common/preemption.h), so a signal at any moment of its life is
 * seen by the handler: before the first training step the stage exits 75
 * (docs/training.md, "Preemption").
 *
 * Exit status: the real program's; 127 when it cannot be executed (the
 * message names the path). */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#ifndef CTMQ_PROGRAM
#error "CTMQ_PROGRAM (the program's name, e.g. \"ctmq-train\") must be defined"
#endif

int main(int argc, char** argv) {
  (void)argc;
  sigset_t held;
  sigemptyset(&held);
  sigaddset(&held, SIGUSR1);
  sigaddset(&held, SIGTERM);
  sigprocmask(SIG_BLOCK, &held, NULL);

  char self[PATH_MAX];
  const ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  if (n <= 0) {
    fprintf(stderr, "%s: error: cannot read /proc/self/exe (%s)\n", CTMQ_PROGRAM, strerror(errno));
    return 127;
  }
  self[n] = '\0';
  char* slash = strrchr(self, '/');
  char target[PATH_MAX];
  const int length =
      snprintf(target, sizeof target, "%.*s/%s-main", (int)(slash - self), self, CTMQ_PROGRAM);
  if (length < 0 || (size_t)length >= sizeof target) {
    fprintf(stderr, "%s: error: the path of %s is too long\n", CTMQ_PROGRAM, self);
    return 127;
  }
  execv(target, argv);
  fprintf(stderr,
          "%s: error: cannot execute %s (%s); keep %s and %s-main in one directory "
          "(bash pipeline/build.sh builds both)\n",
          CTMQ_PROGRAM, target, strerror(errno), CTMQ_PROGRAM, CTMQ_PROGRAM);
  return 127;
}
