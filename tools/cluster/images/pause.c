/* The sandbox ("pause") container of every pod, modelled on kubernetes build/pause/linux/pause.c:
   nothing can be pulled on the test cluster's machine, so it is compiled here. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>
static void sigdown(int signo) { psignal(signo, "Shutting down, got signal"); exit(0); }
static void sigreap(int signo) { (void)signo; while (waitpid(-1, NULL, WNOHANG) > 0); }
int main(void) {
  if (getpid() != 1) fprintf(stderr, "Warning: pause should be the first process\n");
  struct sigaction a = {.sa_handler = sigdown};
  if (sigaction(SIGINT, &a, NULL) < 0) return 1;
  if (sigaction(SIGTERM, &a, NULL) < 0) return 2;
  struct sigaction r = {.sa_handler = sigreap, .sa_flags = SA_NOCLDSTOP};
  if (sigaction(SIGCHLD, &r, NULL) < 0) return 3;
  for (;;) pause();
  return 42;
}
