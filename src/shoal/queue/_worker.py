"""The queue-fed worker: request messages in, through the one runner, result messages out.

Each job named by the messages gets a ``JobRunner`` (joining the job, so any
number of workers and commands can share it) whose admission lives as long as
the worker: messages are admitted to the job's frontier in batches as they
arrive, and the run fetches them with the job's politeness, retries and robots.

A request is answered once its result is committed to the store: from the
runner's listener (results this worker recorded), or from the store
(``find_requests``) for a request the job had finished already (a redelivery,
or a URL asked for twice) and for rows another worker of the job recorded.
The answer is published with publisher confirms; only then is the request
acked (``shoal.queue._answering``). So each request is recorded at most once
per job in the store, and answered at least once on the results exchange.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from aio_pika.abc import AbstractIncomingMessage, AbstractQueue, AbstractRobustConnection

from shoal.core.errors import ConfigError, InputError, JobConflict
from shoal.core.jobspec import JobSpec
from shoal.core.model import FetchResult, JobInfo
from shoal.core.ports import Store
from shoal.core.secrets import HeldSecrets
from shoal.engine.run.runner import AdmitContext, JobRunner
from shoal.queue._amqp import Topology, connect, declare_requests, declare_results, publish_errors
from shoal.queue._answering import BROKER_WAIT, Answerer, Delivery, settled
from shoal.queue._messages import CrawlOrder, RequestOrder, parse_order, request_id_of

__all__ = ["QueueStats", "QueueWorker"]

log = logging.getLogger("shoal.queue")

_ADMIT_BATCH = 256  # deliveries worth admitting to the store at once
_ADMIT_GATHER = 0.005  # seconds a smaller batch waits for more deliveries
_SWEEP_INTERVAL = 2.0  # how often requests still open are looked up in the store


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueStats:
    """What a worker has done so far: messages ``received``, requests ``answered`` (result
    published, request acked; ``from_store`` of them were finished before), crawl
    ``results`` published, and messages ``dead_lettered``."""

    received: int = 0
    answered: int = 0
    from_store: int = 0
    results: int = 0
    dead_lettered: int = 0


@dataclass(eq=False, slots=True)
class _Slot:
    """One job this worker admits to: its runner, and the requests waiting for results."""

    name: str
    job: JobInfo
    runner: JobRunner
    context: AdmitContext | None = None
    waiting: dict[int, list[Delivery]] = field(default_factory=dict)
    fingerprints: dict[int, bytes] = field(default_factory=dict)
    task: asyncio.Task[None] | None = None


class QueueWorker:
    """Consumes ``topology.requests`` at ``url`` until ``stop()``; see the module docstring.

    ``template`` is the spec of a job the worker creates (a message naming a job the
    store does not have, or ``default_job``); a job that exists runs with the spec it
    stored, passed through ``adjust`` (this worker's concurrency, say). ``prefetch``
    bounds the messages the worker holds unacked. ``emit``, if given, is called with
    every committed batch of every job (``--emit``).
    """

    def __init__(
        self,
        store: Store,
        url: str,
        *,
        template: JobSpec,
        topology: Topology | None = None,
        prefetch: int = 512,
        default_job: str = "queue",
        adjust: Callable[[JobSpec], JobSpec] | None = None,
        shutdown_grace: float = 60.0,
        lease_ttl: float = 60.0,
        emit: Callable[[str, Sequence[FetchResult]], None] | None = None,
    ) -> None:
        if template.kind != "fetch":
            raise ConfigError("a queue worker's template is a fetch job's spec")
        if not 1 <= prefetch <= 65_535:
            raise ConfigError(f"prefetch must be 1 to 65535, got {prefetch}")
        self.store = store
        self._url = url
        self._template = template
        self._topology = topology or Topology()
        self._prefetch = prefetch
        self._default_job = default_job
        self._adjust = adjust
        self._grace = shutdown_grace
        self._lease_ttl = lease_ttl
        self._emit = emit
        self._slots: dict[str, _Slot] = {}
        # Header values a store may not keep (core.secrets): held here, sent by this worker.
        self._secrets = HeldSecrets()
        self._incoming: list[Delivery] = []
        self._arrived = asyncio.Event()
        self._answerer: Answerer | None = None
        self._stop = asyncio.Event()
        self._closing = asyncio.Event()
        self._consuming = False
        self._open = 0  # deliveries taken and not yet settled (acked or dead-lettered)
        self._settled = asyncio.Event()
        self._tasks: asyncio.TaskGroup | None = None
        self._stats: dict[str, int] = dict.fromkeys(
            ("received", "answered", "from_store", "results", "dead_lettered"), 0
        )
        self.ready = asyncio.Event()
        """Set once the worker consumes (topology declared)."""

    # -- public ---------------------------------------------------------------

    def stop(self) -> None:
        """Stop consuming, answer what is in flight, then make ``run`` return."""
        self._stop.set()

    def statistics(self) -> QueueStats:
        return QueueStats(**self._stats)

    async def run(self) -> QueueStats:
        async with contextlib.AsyncExitStack() as connections:
            consuming = await connect(self._url)
            connections.push_async_callback(_closed, consuming)
            # Results go out on a connection of their own: their confirms then do not
            # queue behind a prefetch window of deliveries on one socket, and the broker's
            # flow control of a busy publisher does not hold up this worker's acks.
            publishing = await connect(self._url)
            connections.push_async_callback(_closed, publishing)
            channel = await consuming.channel()
            await channel.set_qos(prefetch_count=self._prefetch)
            requests, _dead = await declare_requests(channel, self._topology)
            out = await publishing.channel(publisher_confirms=True)
            exchange = await declare_results(out, self._topology)
            answerer = self._answerer = Answerer(
                publishing,
                out,
                exchange,
                results=self._topology.results,
                dead=self._topology.dead,
                stats=self._stats,
                on_acked=self._settle,
            )
            try:
                await self._consume(requests, answerer)
            finally:
                self._consuming = False
                self._closing.set()
        return self.statistics()

    async def _consume(self, requests: AbstractQueue, answerer: Answerer) -> None:
        async with asyncio.TaskGroup() as tasks:
            self._tasks = tasks
            helpers = [
                tasks.create_task(self._admit_loop(), name="shoal-queue-admit"),
                tasks.create_task(self._sweep(), name="shoal-queue-sweep"),
                tasks.create_task(answerer.run(tasks), name="shoal-queue-answer"),
            ]
            self._consuming = True
            # aio-pika runs a plain function as a callback too (aio_pika.tools
            # .create_task), with no task per delivery; its annotation asks for a
            # coroutine function.
            on_message = cast(Callable[[AbstractIncomingMessage], Awaitable[Any]], self._on_message)
            tag = await requests.consume(on_message)
            self.ready.set()
            await self._stop.wait()
            self._consuming = False
            with contextlib.suppress(*publish_errors):
                async with asyncio.timeout(BROKER_WAIT):
                    await requests.cancel(tag)
            await self._drain()
            for helper in helpers:
                helper.cancel()

    # -- receiving --------------------------------------------------------------

    def _on_message(self, message: AbstractIncomingMessage) -> None:
        # A plain function: aio-pika calls it without a task of its own per delivery.
        assert self._tasks is not None
        if not self._consuming:
            # Delivered as the consumer was cancelled: another worker takes it.
            self._tasks.create_task(settled(message.nack(requeue=True)))
            return
        self._stats["received"] += 1
        try:
            order = parse_order(message.body)
        except InputError as exc:
            assert self._answerer is not None
            self._tasks.create_task(self._answerer.dead_letter(message, exc.reason))
            return
        delivery = Delivery(message, order, request_id_of(message.message_id, message.body))
        self._open += 1
        self._settled.clear()
        if isinstance(order, CrawlOrder):
            self._tasks.create_task(self._crawl(delivery), name="shoal-queue-crawl")
            return
        incoming = self._incoming
        incoming.append(delivery)
        if len(incoming) == 1 or len(incoming) >= _ADMIT_BATCH:
            self._arrived.set()

    async def _admit_loop(self) -> None:
        arrived = self._arrived
        while True:
            await arrived.wait()
            arrived.clear()
            if len(self._incoming) < _ADMIT_BATCH:
                # Admitting costs store round trips per batch, whatever its size: let a
                # burst of deliveries gather, a few milliseconds at most.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(_ADMIT_GATHER):
                        await arrived.wait()
                arrived.clear()
            batch, self._incoming = self._incoming, []
            if not batch:
                continue
            by_job: dict[str, list[Delivery]] = {}
            for delivery in batch:
                by_job.setdefault(delivery.order.job or self._default_job, []).append(delivery)
            for name, deliveries in by_job.items():
                try:
                    slot = await self._slot(name)
                except (InputError, ConfigError, JobConflict) as exc:
                    for delivery in deliveries:
                        await self._reject(delivery, str(exc))
                    continue
                await self._admit(slot, deliveries)

    async def _admit(self, slot: _Slot, deliveries: list[Delivery]) -> None:
        store, job = self.store, slot.job
        hold = self._secrets.hold
        requests = [hold(d.order.request) for d in deliveries if isinstance(d.order, RequestOrder)]
        added = await store.add_requests(job.id, requests, now=time.time())
        if added and slot.context is not None:
            slot.context.on_admitted(added)
        found = await store.find_requests(job.id, [r.fingerprint for r in requests])
        for delivery in deliveries:
            assert isinstance(delivery.order, RequestOrder)
            fingerprint = delivery.order.request.fingerprint
            row = found.get(fingerprint)
            if row is None:
                await self._reject(delivery, f"job {slot.name!r} admits no more URLs (its limits)")
            elif row.result is not None:
                self._stats["from_store"] += 1
                self._answer(delivery, row.result, slot.name)
            else:
                slot.waiting.setdefault(row.id, []).append(delivery)
                slot.fingerprints[row.id] = fingerprint

    async def _slot(self, name: str) -> _Slot:
        existing = self._slots.get(name)
        if existing is not None:
            return existing
        store = self.store
        job = await store.get_job(name)
        if job is None:
            job = await store.ensure_job(name, mode="fetch", config=self._template.as_record())
        if job.mode != "fetch":
            raise InputError(f"job {name!r} is a {job.mode} job: send it a crawl order")
        spec = JobSpec.from_record(job.mode, job.config)
        if self._adjust is not None:
            spec = self._adjust(spec)
        runner = JobRunner(
            store,
            spec,
            name=name,
            join=True,
            before_fetch=self._secrets.restore,
            # ``slot`` is bound below, before the run (and so any result) starts.
            listeners=[lambda batch: self._on_results(slot, batch)],
            lease_ttl=self._lease_ttl,
        )
        slot = _Slot(name=name, job=job, runner=runner)
        await slot.runner.open()
        started = asyncio.Event()

        async def admission(context: AdmitContext) -> None:
            slot.context = context
            started.set()
            await self._closing.wait()

        assert self._tasks is not None
        slot.task = self._tasks.create_task(
            self._run_slot(slot, admission), name=f"shoal-queue-job-{name}"
        )
        waiting = asyncio.ensure_future(started.wait())
        try:
            await asyncio.wait({waiting, slot.task}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiting.cancel()
        if slot.task.done():
            slot.task.result()  # raises what the run raised
            raise ConfigError(f"job {name!r}: its run ended at once")
        self._slots[name] = slot
        return slot

    async def _run_slot(self, slot: _Slot, admission: Callable[[AdmitContext], Any]) -> None:
        await slot.runner.run(admission)

    def _on_results(self, slot: _Slot, batch: Sequence[FetchResult]) -> None:
        """A committed batch of the job's results (called on the loop: never blocks)."""
        if self._emit is not None:
            self._emit(slot.name, batch)
        for result in batch:
            deliveries = slot.waiting.pop(result.request_id, None)
            if deliveries is None:
                continue
            slot.fingerprints.pop(result.request_id, None)
            for delivery in deliveries:
                self._answer(delivery, result, slot.name)

    async def _sweep(self) -> None:
        """Requests whose rows another worker of the job finished (or that were committed
        while this worker looked them up) are answered from the store."""
        while True:
            await asyncio.sleep(_SWEEP_INTERVAL)
            for slot in list(self._slots.values()):
                if not slot.fingerprints:
                    continue
                rows = dict(slot.fingerprints)
                found = await self.store.find_requests(slot.job.id, list(rows.values()))
                for row_id in rows:
                    row = found.get(rows[row_id])
                    if row is None or row.result is None:
                        continue
                    deliveries = slot.waiting.pop(row_id, None)
                    slot.fingerprints.pop(row_id, None)
                    for delivery in deliveries or ():
                        self._answer(delivery, row.result, slot.name)

    # -- crawl orders -----------------------------------------------------------------

    async def _crawl(self, delivery: Delivery) -> None:
        order = delivery.order
        assert isinstance(order, CrawlOrder)
        try:
            spec = order.spec(self._template)
        except InputError as exc:
            await self._reject(delivery, exc.reason)
            return
        name = order.job or spec.default_name()

        def on_results(batch: Sequence[FetchResult]) -> None:
            if self._emit is not None:
                self._emit(name, batch)
            for result in batch:
                self._answer(delivery, result, name, ack=False)

        runner = JobRunner(
            self.store, spec, name=name, listeners=[on_results], lease_ttl=self._lease_ttl
        )
        try:
            job = await runner.open()
        except (JobConflict, ConfigError) as exc:
            await self._reject(delivery, str(exc))
            return
        stop_on_close = asyncio.ensure_future(self._stop.wait())
        stop_on_close.add_done_callback(lambda _: runner.stop())
        try:
            # A redelivered order resumes its job: what it recorded before is sent again.
            async for batch in self.store.iter_results(job.id):
                for result in batch:
                    self._answer(delivery, result, name, ack=False)
            outcome = await runner.run()
        finally:
            stop_on_close.cancel()
        delivery.published = published = asyncio.Event()
        while delivery.publishing:
            published.clear()
            await published.wait()
        if outcome.completed:
            await settled(delivery.message.ack())
            self._stats["answered"] += 1
        self._settle()

    def _answer(self, delivery: Delivery, result: FetchResult, job: str, ack: bool = True) -> None:
        assert self._answerer is not None
        self._answerer.answer(delivery, result, job, ack)

    async def _reject(self, delivery: Delivery, reason: str) -> None:
        assert self._answerer is not None
        await self._answerer.dead_letter(delivery.message, reason)
        self._settle()

    def _settle(self) -> None:
        self._open -= 1
        if self._open <= 0:
            self._settled.set()

    # -- stopping -----------------------------------------------------------------

    async def _drain(self) -> None:
        """Answer what was taken (within the grace period), then end every job's run."""
        if self._open > 0:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._grace):
                    while self._open > 0:
                        self._settled.clear()
                        await self._settled.wait()
        if self._open > 0:
            log.warning(
                "%d requests unanswered at shutdown: the broker delivers them again", self._open
            )
        for slot in self._slots.values():
            slot.runner.stop()
        self._closing.set()
        runs = [slot.task for slot in self._slots.values() if slot.task is not None]
        if runs:
            await asyncio.wait(runs)
        try:
            async with asyncio.timeout(self._grace):
                if self._answerer is not None:
                    await self._answerer.wait_answered()
        except TimeoutError:
            log.warning("results still unpublished at shutdown: their requests are redelivered")


async def _closed(connection: AbstractRobustConnection) -> None:
    """Close ``connection`` within a bounded time, whatever state it is in."""
    with contextlib.suppress(Exception):
        async with asyncio.timeout(BROKER_WAIT):
            await connection.close()
