"""Answers one line per request: `info` (what this process is), `exit N`, `raise`, `sleep`."""

import atexit
import json
import os
import signal
import sys
import time

from forkprobe import pre

pre.STARTS.append(os.getpid())
atexit.register(lambda: print("atexit ran", file=sys.stderr, flush=True))


def main() -> int:
    for line in sys.stdin:
        word, _, arg = line.strip().partition(" ")
        if word == "info":
            reply = {
                "pid": os.getpid(), "sid": os.getsid(0), "argv": sys.argv, "cwd": os.getcwd(), "path0": sys.path[0],
                "path": sys.path, "name": __name__, "no_site": sys.flags.no_site, "env": os.environ.get("FORKPROBE"),
                "imported_in": pre.IMPORTED_IN, "starts": pre.STARTS,
                "stdio_seekable": [f.seekable() for f in (sys.stdin, sys.stdout, sys.stderr)],
                "fds": sorted(os.listdir("/proc/self/fd")), "wakeup_fd": signal.set_wakeup_fd(-1),
                "handlers": {s.name: str(signal.getsignal(s)) for s in signal.Signals},
                "blocked": sorted(signal.pthread_sigmask(signal.SIG_BLOCK, [])),
            }
            print(json.dumps(reply), flush=True)
        elif word == "exit":
            return int(arg)
        elif word == "raise":
            raise RuntimeError("asked to raise")
        elif word == "sleep":
            time.sleep(60)
    return 0


if __name__ == "__main__":
    sys.exit(main())
