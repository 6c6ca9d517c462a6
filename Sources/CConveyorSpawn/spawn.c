#define _GNU_SOURCE
#include "conveyor_spawn.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

// Only async-signal-safe calls between fork and exec: the caller is multithreaded.

static void kill_group(int signal_number) {
    (void)signal_number;
    kill(0, SIGKILL);
}

static void close_from(int first) {
#ifdef SYS_close_range
    if (syscall(SYS_close_range, (unsigned int)first, ~0U, 0) == 0) return;
#endif
    long limit = sysconf(_SC_OPEN_MAX);
    for (int descriptor = first; descriptor < limit; descriptor++) close(descriptor);
}

// Messages on the report pipe: {0, pid} from the supervisor once the handler is forked, {1, errno} when a step fails.
static void report_to(int descriptor, int kind, int value) {
    int message[2] = {kind, value};
    ssize_t ignored = write(descriptor, message, sizeof message);
    (void)ignored;
}

static void reset_signals(void) {
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = SIG_DFL;
    for (int signal_number = 1; signal_number < NSIG; signal_number++) {
        if (signal_number == SIGKILL || signal_number == SIGSTOP) continue;
        sigaction(signal_number, &action, NULL);
    }
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
}

int conveyor_pipe_cloexec(int descriptors[2]) { return pipe2(descriptors, O_CLOEXEC); }

pid_t conveyor_spawn(const char *file, char *const argv[], char *const envp[], int input, int output, int error_output,
                     pid_t *handler_pid, int *error) {
    int report[2];
    if (pipe2(report, O_CLOEXEC) != 0) {
        *error = errno;
        return -1;
    }
    pid_t parent = getpid();
    pid_t supervisor = fork();
    if (supervisor < 0) {
        *error = errno;
        close(report[0]);
        close(report[1]);
        return -1;
    }
    if (supervisor == 0) {
        // The supervisor: leads a new group, dies with the forking thread's process, and outlives the handler only
        // to pass its end on.
        setpgid(0, 0);
        reset_signals();
        struct sigaction action;
        memset(&action, 0, sizeof action);
        action.sa_handler = kill_group;
        sigaction(SIGUSR1, &action, NULL);
        action.sa_handler = SIG_IGN;
        sigaction(SIGTERM, &action, NULL);
        sigaction(SIGINT, &action, NULL);
        sigaction(SIGHUP, &action, NULL);
        sigaction(SIGPIPE, &action, NULL);
        prctl(PR_SET_PDEATHSIG, SIGUSR1);
        if (getppid() != parent) kill(0, SIGKILL);  // the worker died before the line above
        pid_t handler = fork();
        if (handler < 0) {
            report_to(report[1], 1, errno);
            _exit(127);
        }
        if (handler == 0) {
            reset_signals();
            if (dup2(input, 0) < 0 || dup2(output, 1) < 0 || dup2(error_output, 2) < 0) {
                report_to(report[1], 1, errno);
                _exit(127);
            }
            int keep = report[1];
            if (keep != 3) {
                if (dup3(keep, 3, O_CLOEXEC) < 0) _exit(127);
                keep = 3;
            }
            close_from(4);
            execvpe(file, argv, envp);
            report_to(keep, 1, errno);
            _exit(127);
        }
        report_to(report[1], 0, handler);
        close(report[1]);
        close_from(3);
        int status = 0;
        while (waitpid(handler, &status, 0) < 0) {
            if (errno != EINTR) _exit(127);
        }
        if (WIFSIGNALED(status)) {
            int signal_number = WTERMSIG(status);
            memset(&action, 0, sizeof action);
            action.sa_handler = SIG_DFL;
            sigaction(signal_number, &action, NULL);
            sigset_t only;
            sigemptyset(&only);
            sigaddset(&only, signal_number);
            sigprocmask(SIG_UNBLOCK, &only, NULL);
            kill(getpid(), signal_number);
            _exit(128 + signal_number);
        }
        _exit(WEXITSTATUS(status));
    }
    // Also set here, so the group exists before the caller signals it.
    setpgid(supervisor, supervisor);
    close(report[1]);
    // Read until end of file: it comes once the handler has exec'd (its copy is close-on-exec) or failed.
    *handler_pid = 0;
    int failure = 0;
    int message[2];
    size_t filled = 0;
    for (;;) {
        ssize_t count = read(report[0], (char *)message + filled, sizeof message - filled);
        if (count < 0 && errno == EINTR) continue;
        if (count <= 0) break;
        filled += (size_t)count;
        if (filled < sizeof message) continue;
        filled = 0;
        if (message[0] == 0) *handler_pid = message[1];
        else failure = message[1];
    }
    close(report[0]);
    if (failure != 0 || *handler_pid == 0) {
        int status;
        while (waitpid(supervisor, &status, 0) < 0 && errno == EINTR) {}
        *error = failure != 0 ? failure : ECHILD;
        return -1;
    }
    return supervisor;
}
