"""popwire.Poller and popwire.AsyncPoller: call a handler for each new message, and delete it
from the server only after the handler returned and that was recorded.

The poll itself is Rust (``popwire::fetch::Poller``, the commit protocol of ``popwire fetch``)
with the GIL released; the GIL is taken only to call the handler. A handler that raises leaves
its message on the server: the poll goes on with the next message, and the message is retried
at a later poll after a per-message backoff (``retry_base`` doubling up to ``retry_max``).

The handler is called *at least once* per message: if the process dies after the handler
returned but before popwire recorded it, the next poll hands the message over again. Use
:attr:`Message.uid` as a unique key in your own store to make your side exactly-once.
"""

import asyncio
import concurrent.futures
import email
import email.message
import email.policy
import logging
import os
import threading
from typing import Any, Awaitable, Callable, List, Optional, Union

from ._popwire import PollerCore

__all__ = ["AsyncPoller", "HandlerFailure", "Message", "PollReport", "Poller"]

PathLike = Union[str, "os.PathLike[str]"]
log = logging.getLogger("popwire.poller")


class Message:
    """One message handed to a handler: its UID, listed size, number and bytes as received
    (CRLF line ends, dot-unstuffed)."""

    __slots__ = ("uid", "size", "number", "data")

    def __init__(self, uid: str, size: int, number: int, data: bytes) -> None:
        self.uid = uid
        self.size = size
        self.number = number
        self.data = data

    def email(self, policy: email.policy.Policy = email.policy.default) -> email.message.Message:
        """The message parsed by the standard library (``email.policy.default``: an
        ``EmailMessage`` with ``get_body()``, decoded headers), with LF line ends as Python's
        ``email`` expects (it would keep a CR in every body line)."""
        return email.message_from_bytes(self.data.replace(b"\r\n", b"\n"), policy=policy)

    def __repr__(self) -> str:
        return f"<popwire.Message uid={self.uid!r} size={self.size}>"


class HandlerFailure:
    """A message whose handler raised: it stays on the server and is retried after
    ``retry_after`` seconds. ``error`` is the exception the handler raised."""

    __slots__ = ("uid", "error", "attempts", "retry_after")

    def __init__(self, uid: str, error: BaseException, attempts: int, retry_after: float) -> None:
        self.uid = uid
        self.error = error
        self.attempts = attempts
        self.retry_after = retry_after

    def __repr__(self) -> str:
        return f"<HandlerFailure uid={self.uid!r} error={self.error!r} attempts={self.attempts}>"


class PollReport:
    """What one poll did."""

    def __init__(
        self, listed: int, fetched: int, handled: List[str], failed: List[HandlerFailure],
        deferred: int, deleted: int, kept: int, skipped_too_large: int, skipped_unidentified: int,
    ) -> None:
        self.listed = listed  #: messages the server listed
        self.fetched = fetched  #: messages retrieved and handed to the handler
        self.handled = handled  #: UIDs the handler took (recorded; deleted unless kept)
        self.failed = failed  #: messages whose handler raised, left on the server
        self.deferred = deferred  #: failed earlier, waiting for their retry: not retrieved
        self.deleted = deleted  #: messages deleted from the server
        self.kept = kept  #: handled before and kept on the server
        self.skipped_too_large = skipped_too_large  #: over max_message_size, left alone
        self.skipped_unidentified = skipped_unidentified  #: no unique UID, left alone

    @property
    def ok(self) -> bool:
        """True when no handler call failed."""
        return not self.failed

    def raise_for_failures(self) -> None:
        """Raises the first handler exception, if any."""
        if self.failed:
            raise self.failed[0].error

    def __repr__(self) -> str:
        return (f"<PollReport fetched={self.fetched} handled={len(self.handled)} "
                f"failed={len(self.failed)} deleted={self.deleted} kept={self.kept}>")


def _report(raw: Any) -> PollReport:
    listed, fetched, handled, failed, deferred, deleted, kept, too_large, unidentified = raw
    return PollReport(
        listed, fetched, list(handled), [HandlerFailure(*f) for f in failed],
        deferred, deleted, kept, too_large, unidentified,
    )


def _log_report(report: PollReport) -> None:
    for failure in report.failed:
        log.error("handler failed for message %s (retry in %.0f s, attempt %d)", failure.uid,
                  failure.retry_after, failure.attempts, exc_info=failure.error)


class Poller:
    """Polls one POP3 mailbox and calls ``handler(message)`` for each new message.

    ``security``: ``"tls"`` (default, port 995), ``"starttls"`` or ``"none"`` (port 110).
    ``keep``: ``False`` (delete once handled), ``True``, or a duration such as ``"30d"``.
    ``state_dir``: where the UID journal lives (default ``$XDG_STATE_HOME/popwire``); pollers
    with the same ``name`` and mailbox share it, and take turns. ``retry_base``/``retry_max``:
    seconds of backoff for a message whose handler raised. ``memory_limit``: octets of a body
    kept in memory before it is staged in a temporary file.
    """

    def __init__(
        self,
        host: str,
        user: str,
        password: str,
        *,
        port: Optional[int] = None,
        security: str = "tls",
        keep: Union[bool, str] = False,
        state_dir: Optional[PathLike] = None,
        ca_file: Optional[PathLike] = None,
        timeout: float = 60.0,
        name: str = "poller",
        retry_base: float = 60.0,
        retry_max: float = 3600.0,
        max_message_size: Optional[int] = None,
        memory_limit: Optional[int] = None,
    ) -> None:
        self._core = PollerCore(
            host, user, password, port=port, security=security, keep=keep,
            state_dir=os.fspath(state_dir) if state_dir is not None else None,
            ca_file=os.fspath(ca_file) if ca_file is not None else None, timeout=timeout,
            name=name, retry_base=retry_base, retry_max=retry_max,
            max_message_size=max_message_size, memory_limit=memory_limit,
        )
        self.host = host
        self.user = user

    def poll_once(self, handler: Callable[[Message], Any]) -> PollReport:
        """Polls now. Returns a :class:`PollReport`; handler exceptions are in its ``failed``
        (their messages stay on the server). ``KeyboardInterrupt`` stops between messages,
        keeping what was handled, and is re-raised. Raises :class:`popwire.Error` when the
        session fails (what was handled before is recorded all the same)."""

        def call(uid: str, size: int, number: int, data: bytes) -> None:
            handler(Message(uid, size, number, data))

        return _report(self._core.poll_once(call))

    def run(
        self,
        handler: Callable[[Message], Any],
        interval: float = 300.0,
        on_report: Optional[Callable[[PollReport], Any]] = None,
    ) -> None:
        """Polls every ``interval`` seconds until :meth:`stop` or Ctrl-C (which returns
        quietly). Handler failures go to ``on_report``, or are logged (logger
        ``popwire.poller``) when there is none. Temporary errors (network, server busy,
        ``LOGIN-DELAY``) are logged and retried with backoff; others (a wrong password, a bad
        certificate) are raised."""
        from ._errors import Cancelled, Error

        self._core.set_interval(interval)
        self._core.reset()
        try:
            while not self._core.wait(self._core.next_poll_in()):
                try:
                    report = self.poll_once(handler)
                except Cancelled:
                    return
                except Error as e:
                    if not e.temporary:
                        raise
                    log.warning("poll of %s@%s failed, retrying later: %s", self.user, self.host, e)
                    continue
                if on_report is not None:
                    on_report(report)
                else:
                    _log_report(report)
        except KeyboardInterrupt:
            return

    def stop(self) -> None:
        """Stops :meth:`run`, or a poll between messages; safe from any thread."""
        self._core.stop()

    def next_poll_in(self) -> float:
        """Seconds until the schedule's next poll (interval, backoff, LOGIN-DELAY)."""
        return self._core.next_poll_in()

    def __repr__(self) -> str:
        return f"<popwire.Poller {self.user}@{self.host}>"


class AsyncPoller:
    """:class:`Poller` for asyncio, with an ``async def handler(message)``.

    The POP3 session runs on a worker thread (the loop is never blocked); each handler
    coroutine runs on your event loop, one message at a time. Cancelling :meth:`poll_once`
    stops the poll after the current message, keeping what was handled.
    """

    def __init__(self, host: str, user: str, password: str, **options: Any) -> None:
        self._poller = Poller(host, user, password, **options)

    async def poll_once(self, handler: Callable[[Message], Awaitable[Any]]) -> PollReport:
        """Polls now (see :meth:`Poller.poll_once`)."""
        loop = asyncio.get_running_loop()
        running: List["concurrent.futures.Future[None]"] = []
        lock = threading.Lock()
        cancelled = threading.Event()

        def call(message: Message) -> None:
            future = asyncio.run_coroutine_threadsafe(_call(handler, message), loop)
            # Under the lock, so a cancel either sees this future or is seen here.
            with lock:
                running.append(future)
                if cancelled.is_set():
                    future.cancel()
            try:
                future.result()
            finally:
                with lock:
                    running.remove(future)

        work = loop.run_in_executor(None, self._poller.poll_once, call)
        try:
            return await asyncio.shield(work)
        except asyncio.CancelledError:
            # Stop first: the handler cut short below is then not counted as its failure.
            self._poller.stop()
            with lock:
                cancelled.set()
                for future in running:
                    future.cancel()
            try:
                await work
            except BaseException:
                pass
            finally:
                self._poller._core.reset()
            raise

    async def run(
        self,
        handler: Callable[[Message], Awaitable[Any]],
        interval: float = 300.0,
        on_report: Optional[Callable[[PollReport], Any]] = None,
    ) -> None:
        """Polls every ``interval`` seconds until the task is cancelled (see
        :meth:`Poller.run` for what is retried and what is raised)."""
        from ._errors import Error

        self._poller._core.set_interval(interval)
        while True:
            await asyncio.sleep(self._poller.next_poll_in())
            try:
                report = await self.poll_once(handler)
            except Error as e:
                if not e.temporary:
                    raise
                log.warning("poll failed, retrying later: %s", e)
                continue
            if on_report is not None:
                on_report(report)
            else:
                _log_report(report)

    def stop(self) -> None:
        """Stops a poll in progress between messages."""
        self._poller.stop()


async def _call(handler: Callable[[Message], Awaitable[Any]], message: Message) -> None:
    await handler(message)
