/* The pod sandbox's process: it holds the pod's namespaces, reaps orphans, and exits on SIGTERM or SIGINT. */
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

static void leave(int sig) {
    (void)sig;
    _exit(0);
}

static void reap(int sig) {
    (void)sig;
    while (waitpid(-1, 0, WNOHANG) > 0) {
    }
}

int main(void) {
    struct sigaction stop = {0}, child = {0};
    stop.sa_handler = leave;
    sigaction(SIGINT, &stop, 0);
    sigaction(SIGTERM, &stop, 0);
    child.sa_handler = reap;
    child.sa_flags = SA_NOCLDSTOP | SA_RESTART;
    sigaction(SIGCHLD, &child, 0);
    for (;;) {
        pause();
    }
    return 0;
}
