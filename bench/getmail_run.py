#!/usr/bin/python3
"""Runs Debian's getmail (getmail6) with one fix: a lost-wakeup race in its child handling.

getmail6 delivers every message in a forked child. `ForkingBase.forkchild()` installs its
SIGCHLD handler only after fork(), and the handler wakes a Condition that the parent may not
be waiting on yet; when the child exits first (likely on tmpfs, where delivery is quick) the
wakeup is lost and getmail waits out its socket timeout (180 s) and then fails the run. On this
machine that happened about once per 1000 deliveries (upstream reports: getmail6 issues #52,
#64, #226, #245). Here the parent waits for the child with a plain blocking waitpid() instead:
same fork, same delivery code, same exit-status checks, no race. Everything else is getmail's.

    getmail_run.py GETMAIL-ARGS...
"""

import os
import runpy
import sys

from getmailcore import baseclasses
from getmailcore.exceptions import getmailOperationError


def forkchild(self, childfun, with_out=True):
    self.child = child = baseclasses.Namespace()
    child.stdout = baseclasses.TemporaryFile23()
    child.stderr = baseclasses.TemporaryFile23()
    child.childpid = os.fork()
    if child.childpid != 0:  # the parent
        _, status = os.waitpid(child.childpid, 0)
        if os.WIFSIGNALED(status):
            raise getmailOperationError(
                f"child pid {child.childpid} killed by signal {os.WTERMSIG(status)}")
        if not os.WIFEXITED(status):
            raise getmailOperationError(f"child pid {child.childpid} failed to exit")
        child.exitcode = os.WEXITSTATUS(status)
        child.stderr.seek(0)
        child.err = child.stderr.read().strip().decode()
        child.stdout.seek(0)
        if with_out:
            child.out = child.stdout.read().strip()
        return child
    childfun(child.stdout, child.stderr)  # the child: delivers, then _exit()s


baseclasses.ForkingBase.forkchild = forkchild
sys.argv = ["getmail"] + sys.argv[1:]
runpy.run_path("/usr/bin/getmail", run_name="__main__")
