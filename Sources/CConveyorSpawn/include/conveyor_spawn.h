// Starting a handler's process so that it cannot outlive its worker (Conveyor's --exec handlers).
#ifndef CONVEYOR_SPAWN_H
#define CONVEYOR_SPAWN_H

#include <sys/types.h>

/// Starts `argv` (argv[0] looked up in PATH) with environment `envp`, its standard input, output and error the
/// given descriptors, in a new process group led by a small supervisor process, and returns the supervisor's pid
/// (which is also the group id), with the handler's own pid in `*handler_pid`; or -1 with `*error` set to the errno
/// of the step that failed (the command not found, for instance).
///
/// The supervisor ignores SIGTERM, SIGINT and SIGHUP, waits for the handler and ends the way it ended (the same exit
/// status, or the same signal), so the caller waits for it as for the handler itself and signals the group to stop
/// the handler. When the thread that called this function ends first (its process was killed, even by SIGKILL),
/// the kernel signals the supervisor, which kills the whole group at once: no handler outlives its worker.
/// Every descriptor but the three given is closed in the handler.
pid_t conveyor_spawn(const char *file, char *const argv[], char *const envp[], int input, int output, int error_output,
                     pid_t *handler_pid, int *error);

/// pipe2(descriptors, O_CLOEXEC): a pipe no process started meanwhile inherits. Returns 0, or -1 with errno set.
int conveyor_pipe_cloexec(int descriptors[2]);

#endif
