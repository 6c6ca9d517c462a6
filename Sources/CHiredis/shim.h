// The hiredis headers Conveyor's RedisClient uses (Debian's libhiredis-dev, 0.14).
// pkg-config puts /usr/include/hiredis on the include path.
#ifndef CONVEYOR_CHIREDIS_SHIM_H
#define CONVEYOR_CHIREDIS_SHIM_H
#include <hiredis.h>
#include <sys/socket.h>
#include <poll.h>
#endif
